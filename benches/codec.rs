//! Codec micro-benchmarks, each beside a baseline measured in the same run:
//! masking against `memcpy` of the same buffer (the physical limit of one read+write pass) and
//! a byte-at-a-time loop; a client's copy-and-mask in one pass against copying then masking;
//! header and frame decoding in ns/frame; UTF-8 validation against the
//! standard library and a byte-at-a-time validator. After criterion's report it prints a
//! summary table with the ratios.
//!
//! `cargo bench --bench codec` (add `-- --quick` for a fast, rougher run).

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use whatwg_websocket::proto::{
    Frame, FrameEncoder, FrameHeader, Incoming, Limits, MessageDecoder, OpCode, Role,
    Utf8Validator, apply_mask, extend_masked,
};

#[path = "support/report.rs"]
mod report;
use report::mean_ns;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MASK_SIZES: [(usize, &str); 3] = [(1 << 10, "1KiB"), (64 << 10, "64KiB"), (1 << 20, "1MiB")];
/// Frames per iteration of the frame-decoding benchmark.
const BATCH: usize = 64;

fn mask_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for (size, label) in MASK_SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let src = vec![0x5Au8; size];
        let mut buf = vec![0u8; size];
        group.bench_function(BenchmarkId::new("apply_mask", label), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box(KEY)))
        });
        group.bench_function(BenchmarkId::new("memcpy", label), |b| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
        });
        group.bench_function(BenchmarkId::new("byte_loop", label), |b| {
            b.iter(|| mask_bytes(black_box(&mut buf), black_box(KEY)))
        });
        // What a client's send does with a payload it may not modify: copy it into the write
        // buffer masked, in one pass, or copied first and masked after.
        let mut out = BytesMut::with_capacity(size);
        group.bench_function(BenchmarkId::new("extend_masked", label), |b| {
            b.iter(|| {
                out.clear();
                extend_masked(black_box(&mut out), black_box(&src), black_box(KEY));
            })
        });
        group.bench_function(BenchmarkId::new("copy_then_mask", label), |b| {
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(&src));
                apply_mask(black_box(&mut out[..]), black_box(KEY));
            })
        });
    }
    group.finish();
}

fn header_decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("header_decode");
    for (len, label) in [(20u64, "7bit"), (1000, "16bit"), (100_000, "64bit")] {
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: None,
            payload_len: len,
        };
        let mut raw = [0; 14];
        let n = header.encode(&mut raw);
        group.bench_function(BenchmarkId::new("FrameHeader::decode", label), |b| {
            b.iter(|| FrameHeader::decode(black_box(&raw[..n])))
        });
    }
    group.finish();

    // The whole receive path for small messages: header, payload split, UTF-8, message.
    let mut group = c.benchmark_group("message_decode");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (role, peer, label) in [
        (Role::Client, Role::Server, "client_20B_text"),
        (Role::Server, Role::Client, "server_20B_text"),
    ] {
        let mut wire = BytesMut::new();
        let mut encoder = FrameEncoder::new(peer);
        for _ in 0..BATCH {
            encoder.encode(&Frame::new(OpCode::Text, "twenty bytes of text"), &mut wire);
        }
        group.bench_function(BenchmarkId::new("MessageDecoder::decode", label), |b| {
            b.iter_batched_ref(
                || (wire.clone(), MessageDecoder::new(role, Limits::default())),
                |(buf, decoder)| {
                    while let Some(incoming) = decoder.decode(buf).unwrap() {
                        black_box(&incoming);
                        debug_assert!(matches!(incoming, Incoming::Message(_)));
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A byte-at-a-time UTF-8 validator (RFC 3629 table), the baseline for the SIMD one.
fn utf8_bytewise(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (width, lo, hi) = match b {
            0x00..=0x7F => {
                i += 1;
                continue;
            }
            0xC2..=0xDF => (2, 0x80, 0xBF),
            0xE0 => (3, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
            0xED => (3, 0x80, 0x9F),
            0xF0 => (4, 0x90, 0xBF),
            0xF1..=0xF3 => (4, 0x80, 0xBF),
            0xF4 => (4, 0x80, 0x8F),
            _ => return false,
        };
        if i + width > bytes.len() || !(lo..=hi).contains(&bytes[i + 1]) {
            return false;
        }
        if bytes[i + 2..i + width]
            .iter()
            .any(|&c| !(0x80..=0xBF).contains(&c))
        {
            return false;
        }
        i += width;
    }
    true
}

/// 64 KiB of text (cut at a character boundary), ASCII and mixed scripts.
fn utf8_samples() -> [(&'static str, String); 2] {
    let cut = |text: String| {
        let end = (0..=64 << 10)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[..end].to_owned()
    };
    [
        (
            "ascii_64KiB",
            cut("The quick brown fox jumps over the lazy dog. ".repeat(1500)),
        ),
        (
            "mixed_64KiB",
            cut("Größe κόσμε 日本語 ascii text 🎉 ".repeat(1700)),
        ),
    ]
}

fn utf8(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    for (label, text) in &utf8_samples() {
        let bytes = text.as_bytes();
        assert!(utf8_bytewise(bytes));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("Utf8Validator", *label), |b| {
            b.iter(|| {
                let mut validator = Utf8Validator::new();
                validator.feed(black_box(bytes)).unwrap();
                validator.finish().unwrap();
            })
        });
        group.bench_function(BenchmarkId::new("std_from_utf8", *label), |b| {
            b.iter(|| std::str::from_utf8(black_box(bytes)).is_ok())
        });
        group.bench_function(BenchmarkId::new("byte_loop", *label), |b| {
            b.iter(|| utf8_bytewise(black_box(bytes)))
        });
    }
    group.finish();
}

fn summary(filter: Option<&str>) {
    let wanted = |group: &str| filter.is_none_or(|f| group.contains(f) || f.contains(group));
    println!("\nsummary (this run; GB/s = 1e9 bytes per second)");
    if wanted("mask") {
        for (size, label) in MASK_SIZES {
            let get = |f: &str| mean_ns("mask", f, label);
            if let (Some(mask), Some(copy), Some(bytes)) =
                (get("apply_mask"), get("memcpy"), get("byte_loop"))
            {
                let gbps = |ns: f64| size as f64 / ns;
                println!(
                    "mask {label:>6}: apply_mask {:6.2} GB/s | memcpy {:6.2} GB/s | byte loop {:6.2} GB/s | mask speed = {:.2}x memcpy, {:.1}x byte loop",
                    gbps(mask),
                    gbps(copy),
                    gbps(bytes),
                    copy / mask,
                    bytes / mask
                );
            }
            if let (Some(one), Some(two)) = (get("extend_masked"), get("copy_then_mask")) {
                let gbps = |ns: f64| size as f64 / ns;
                println!(
                    "copy+mask {label:>6}: extend_masked {:6.2} GB/s | copy then mask {:6.2} GB/s | one pass = {:.2}x two",
                    gbps(one),
                    gbps(two),
                    two / one
                );
            }
        }
    }
    if wanted("header_decode") {
        for label in ["7bit", "16bit", "64bit"] {
            if let Some(ns) = mean_ns("header_decode", "FrameHeader::decode", label) {
                println!("header decode {label:>5}: {ns:.2} ns/frame");
            }
        }
    }
    if wanted("message_decode") {
        for label in ["client_20B_text", "server_20B_text"] {
            if let Some(ns) = mean_ns("message_decode", "MessageDecoder::decode", label) {
                println!(
                    "message decode {label}: {:.1} ns/message",
                    ns / BATCH as f64
                );
            }
        }
    }
    if wanted("utf8") {
        for (label, text) in utf8_samples() {
            let get = |f: &str| mean_ns("utf8", f, label);
            if let (Some(ours), Some(std), Some(bytes)) =
                (get("Utf8Validator"), get("std_from_utf8"), get("byte_loop"))
            {
                let size = text.len() as f64;
                println!(
                    "utf8 {label}: Utf8Validator {:6.2} GB/s | std {:6.2} GB/s | byte loop {:6.2} GB/s | vs std {:.1}x | vs byte loop {:.1}x",
                    size / ours,
                    size / std,
                    size / bytes,
                    std / ours,
                    bytes / ours
                );
            }
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    masking(&mut c);
    header_decoding(&mut c);
    utf8(&mut c);
    c.final_summary();
    // `cargo bench` passes `--bench`; a filter is the first other free argument.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    summary(filter.as_deref());
}
