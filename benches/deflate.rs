//! permessage-deflate costs, each beside the uncompressed path measured in the same run: send
//! (compress + frame) and receive (decode + inflate + UTF-8) of 1 KiB and 64 KiB JSON-like text
//! messages. After criterion's report it prints the ratios and the compression achieved.
//!
//! `cargo bench --bench deflate` (add `-- --quick` for a fast, rougher run). Contexts are reset
//! per message (no context takeover) so that every iteration does the same work.
//!
//! Group `deflate_state`: what one small message costs with zlib state kept and reset, made
//! anew per message (what `Deflater` and `Inflater` do without context takeover, so that an
//! idle connection holds none), or made anew with the previous window as a dictionary.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput};
use whatwg_websocket::proto::deflate::{DeflateParams, Deflater};
use whatwg_websocket::proto::{Frame, FrameEncoder, Limits, MessageDecoder, OpCode, RSV1, Role};

#[path = "support/report.rs"]
mod report;
use report::mean_ns;

const SIZES: [(usize, &str); 2] = [(1 << 10, "1KiB"), (64 << 10, "64KiB")];
const LEVEL: u32 = 1;

fn params() -> DeflateParams {
    DeflateParams {
        client_no_context_takeover: true,
        server_no_context_takeover: true,
        ..DeflateParams::default()
    }
}

/// JSON-like text of `size` bytes: records with varying numbers and repeated keys.
fn json(size: usize) -> String {
    let mut out = String::from("[");
    let mut i = 0u64;
    while out.len() < size {
        let price = 100.0 + (i.wrapping_mul(7919) % 1000) as f64 / 100.0;
        out.push_str(&format!(
            r#"{{"id":{i},"symbol":"SYM{}","price":{price:.2},"side":"{}","ts":{}}},"#,
            i % 17,
            if i.is_multiple_of(3) { "buy" } else { "sell" },
            1_700_000_000_000u64 + i * 37
        ));
        i += 1;
    }
    out.truncate(size - 1);
    out.push(']');
    out
}

fn send(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_send");
    for (size, label) in SIZES {
        let text = json(size);
        group.throughput(Throughput::Bytes(size as u64));
        let mut encoder = FrameEncoder::new(Role::Client);
        let mut out = BytesMut::with_capacity(2 * size);
        group.bench_function(BenchmarkId::new("plain", label), |b| {
            b.iter(|| {
                out.clear();
                let frame = Frame::new(OpCode::Text, bytes::Bytes::from(text.clone()));
                encoder.encode(black_box(&frame), &mut out);
            })
        });
        let mut deflater = Deflater::new(Role::Client, &params(), LEVEL);
        group.bench_function(BenchmarkId::new("deflate", label), |b| {
            b.iter(|| {
                out.clear();
                let payload = deflater.compress(black_box(text.as_bytes()));
                let frame = Frame {
                    rsv: RSV1,
                    ..Frame::new(OpCode::Text, payload)
                };
                encoder.encode(&frame, &mut out);
            })
        });
    }
    group.finish();
}

/// The wire bytes of `text` as a server sends it, compressed or not.
fn wire(text: &str, compressed: bool) -> BytesMut {
    let payload = if compressed {
        Deflater::new(Role::Server, &params(), LEVEL).compress(text.as_bytes())
    } else {
        bytes::Bytes::copy_from_slice(text.as_bytes())
    };
    let frame = Frame {
        rsv: if compressed { RSV1 } else { 0 },
        ..Frame::new(OpCode::Text, payload)
    };
    let mut out = BytesMut::new();
    FrameEncoder::new(Role::Server).encode(&frame, &mut out);
    out
}

fn receive(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_receive");
    for (size, label) in SIZES {
        let text = json(size);
        group.throughput(Throughput::Bytes(size as u64));
        for (name, compressed) in [("plain", false), ("deflate", true)] {
            let wire = wire(&text, compressed);
            let mut decoder = if compressed {
                MessageDecoder::with_deflate(Role::Client, Limits::default(), &params())
            } else {
                MessageDecoder::new(Role::Client, Limits::default())
            };
            let mut buf = BytesMut::with_capacity(wire.len());
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter(|| {
                    buf.clear();
                    buf.extend_from_slice(&wire);
                    black_box(decoder.decode(&mut buf).unwrap().unwrap());
                })
            });
        }
    }
    group.finish();
}

/// The costs of keeping zlib state against making it per message: compressing (level 1) and
/// inflating one message with a compressor or inflater that is kept and reset, made anew
/// (what `Deflater` and `Inflater` do without context takeover), or made anew and given the
/// previous window as a dictionary; and, for reference, one kept with context takeover.
fn state(c: &mut Criterion) {
    use zlib_rs::{Deflate, DeflateConfig, DeflateFlush};
    let config = |bits: u8, memory_level: i32| DeflateConfig {
        level: 1,
        window_bits: -i32::from(bits),
        mem_level: memory_level,
        ..DeflateConfig::default()
    };
    let mut out = vec![0u8; 128 << 10];
    fn deflate(d: &mut Deflate, input: &[u8], out: &mut [u8]) -> usize {
        let before = d.total_out();
        d.compress(input, out, DeflateFlush::SyncFlush).unwrap();
        (d.total_out() - before) as usize
    }
    let mut group = c.benchmark_group("deflate_state");
    for (bits, memory_level) in [(15u8, 8), (15, 5), (12, 5)] {
        let history = json(1 << bits);
        for (size, label) in [(64, "64B"), (1 << 10, "1KiB")] {
            let text = json(size);
            let id = |name: &str| BenchmarkId::new(format!("{name}/w{bits}m{memory_level}"), label);
            let mut kept = Deflate::new_with_config(config(bits, memory_level));
            group.bench_function(id("takeover"), |b| {
                b.iter(|| deflate(&mut kept, black_box(text.as_bytes()), &mut out))
            });
            group.bench_function(id("reset"), |b| {
                b.iter(|| {
                    let n = deflate(&mut kept, black_box(text.as_bytes()), &mut out);
                    kept.reset();
                    n
                })
            });
            group.bench_function(id("create"), |b| {
                b.iter(|| {
                    let mut d = Deflate::new_with_config(config(bits, memory_level));
                    deflate(&mut d, black_box(text.as_bytes()), &mut out)
                })
            });
            group.bench_function(id("create_dictionary"), |b| {
                b.iter(|| {
                    let mut d = Deflate::new_with_config(config(bits, memory_level));
                    d.set_dictionary(history.as_bytes()).unwrap();
                    deflate(&mut d, black_box(text.as_bytes()), &mut out)
                })
            });
        }
    }
    for (size, label) in [(64, "64B"), (1 << 10, "1KiB")] {
        let text = json(size);
        let payload = Deflater::new(Role::Server, &params(), LEVEL).compress(text.as_bytes());
        let mut inflated = Vec::with_capacity(2 * size);
        let inflate = |d: &mut flate2::Decompress, inflated: &mut Vec<u8>| {
            inflated.clear();
            d.decompress_vec(black_box(&payload), inflated, flate2::FlushDecompress::Sync)
                .unwrap();
            d.decompress_vec(&[0, 0, 0xff, 0xff], inflated, flate2::FlushDecompress::Sync)
                .unwrap();
        };
        let mut kept = flate2::Decompress::new_with_window_bits(false, 15);
        group.bench_function(BenchmarkId::new("inflate_reset", label), |b| {
            b.iter(|| {
                inflate(&mut kept, &mut inflated);
                kept.reset(false);
            })
        });
        group.bench_function(BenchmarkId::new("inflate_create", label), |b| {
            b.iter(|| {
                let mut d = flate2::Decompress::new_with_window_bits(false, 15);
                inflate(&mut d, &mut inflated);
            })
        });
        let history = json(32 << 10);
        group.bench_function(BenchmarkId::new("inflate_create_dictionary", label), |b| {
            b.iter(|| {
                let mut d = flate2::Decompress::new_with_window_bits(false, 15);
                d.set_dictionary(history.as_bytes()).unwrap();
                inflate(&mut d, &mut inflated);
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    send(&mut c);
    receive(&mut c);
    state(&mut c);
    c.final_summary();
    println!("\nsummary (this run; MB/s of uncompressed message bytes)");
    for (size, label) in SIZES {
        let text = json(size);
        let ratio = wire(&text, true).len() as f64 / wire(&text, false).len() as f64;
        for group in ["deflate_send", "deflate_receive"] {
            if let (Some(plain), Some(deflate)) = (
                mean_ns(group, "plain", label),
                mean_ns(group, "deflate", label),
            ) {
                let mbps = |ns: f64| size as f64 / ns * 1000.0;
                println!(
                    "{group} {label:>5}: plain {:8.1} MB/s | deflate {:7.1} MB/s | deflate costs {:.1}x plain | wire {:.0}% of plain",
                    mbps(plain),
                    mbps(deflate),
                    deflate / plain,
                    ratio * 100.0
                );
            }
        }
    }
}
