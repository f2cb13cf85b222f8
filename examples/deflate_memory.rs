//! What permessage-deflate costs in memory and gives in ratio, per configuration, on GraphQL
//! subscription traffic (`benches/support/graphql.rs`: 3,000 `next` messages of ~100 B to
//! ~4 KiB). A counting global allocator measures the heap.
//!
//! `cargo run --release --example deflate_memory` prints three tables:
//! 1. the heap a compressor and an inflater hold, by window bits and memory level;
//! 2. the ratio (wire bytes / message bytes) by level, window and memory level, with context
//!    takeover (one stream) and without (each message alone), and the time per message;
//! 3. the heap of one idle server connection (`accept` over an in-memory pipe) after one
//!    compressed message each way, with and without permessage-deflate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use whatwg_websocket::proto::deflate::{DeflateOptions, DeflateParams, Deflater, Inflater};
use whatwg_websocket::proto::{Frame, FrameEncoder, OpCode, RSV1, Role};
use whatwg_websocket::{ServerOptions, accept};

#[path = "../benches/support/graphql.rs"]
mod graphql;

/// The system allocator, counting the bytes live and their peak.
struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc` requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        // SAFETY: the caller's layout, as `GlobalAlloc::alloc_zeroed` requires.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with this layout (every allocation is).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
        PEAK.fetch_max(live, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with `layout`, as the caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn kib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

/// Server-side parameters: our window `bits`, the client's 15, context takeover or not.
fn params(bits: u8, takeover: bool) -> DeflateParams {
    DeflateParams {
        server_max_window_bits: bits,
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        ..DeflateParams::default()
    }
}

fn deflater(level: u32, bits: u8, memory_level: u8, takeover: bool) -> Deflater {
    let options = DeflateOptions {
        level,
        memory_level,
        ..DeflateOptions::default()
    };
    Deflater::with_options(Role::Server, &params(bits, takeover), &options)
}

fn state_table(corpus: &[String]) {
    println!("1. heap held after one message with context takeover (KiB), and the peak");
    println!("window  memLevel | compressor   peak | inflater");
    let message = corpus[2].as_bytes();
    for bits in [9u8, 10, 12, 15] {
        let before = live();
        let mut inflater = Inflater::new(Role::Client, &params(bits, true));
        let mut out = Vec::new();
        let compressed = deflater(1, bits, 8, true).compress(message);
        inflater.push(&compressed, &mut out, 0).unwrap();
        inflater.finish(&mut out, 0).unwrap();
        drop((out, compressed));
        let inflating = live() - before;
        drop(inflater);
        for memory_level in [1u8, 4, 5, 6, 8, 9] {
            let before = live();
            PEAK.store(before, Ordering::Relaxed);
            let mut d = deflater(1, bits, memory_level, true);
            assert!(!d.holds_state());
            drop(d.compress_if_smaller(message).expect("JSON shrinks"));
            let peak = PEAK.load(Ordering::Relaxed) - before;
            println!(
                "{bits:>6}  {memory_level:>8} | {:>10}  {:>5} | {:>8}",
                kib(live() - before),
                kib(peak),
                kib(inflating)
            );
        }
    }
    let before = live();
    let mut d = deflater(1, 15, 8, false);
    drop(d.compress_if_smaller(message));
    println!(
        "without context takeover, held between messages: {} KiB (state: {})",
        kib(live() - before),
        d.holds_state()
    );
    println!();
}

/// (wire bytes / message bytes, ns per message: the best of 3 runs) over the corpus.
fn ratio(corpus: &[String], level: u32, bits: u8, memory_level: u8, takeover: bool) -> (f64, f64) {
    let runs = [(); 3].map(|()| ratio_once(corpus, level, bits, memory_level, takeover));
    (runs[0].0, runs.iter().map(|r| r.1).fold(f64::MAX, f64::min))
}

fn ratio_once(
    corpus: &[String],
    level: u32,
    bits: u8,
    memory_level: u8,
    takeover: bool,
) -> (f64, f64) {
    let mut d = deflater(level, bits, memory_level, takeover);
    let mut inflater = Inflater::new(Role::Client, &params(bits, takeover));
    let (mut original, mut wire) = (0usize, 0usize);
    let start = Instant::now();
    for message in corpus {
        original += message.len();
        wire += match d.compress_if_smaller(message.as_bytes()) {
            Some(compressed) => {
                if level == 1 && bits == 9 {
                    // Checked once per takeover mode: what is sent inflates back.
                    let mut out = Vec::new();
                    inflater.push(&compressed, &mut out, 0).unwrap();
                    inflater.finish(&mut out, 0).unwrap();
                    assert_eq!(out, message.as_bytes());
                }
                compressed.len()
            }
            None => message.len(),
        };
    }
    let ns = start.elapsed().as_nanos() as f64 / corpus.len() as f64;
    (wire as f64 / original as f64, ns)
}

fn ratio_table(corpus: &[String]) {
    let total: usize = corpus.iter().map(String::len).sum();
    println!(
        "2. ratio, wire/original, {} messages, {} bytes (mean {} B); ns per message",
        corpus.len(),
        total,
        total / corpus.len()
    );
    println!("level  window  memLevel | takeover  ns/msg | no takeover  ns/msg");
    for level in 1..=6 {
        for bits in [9u8, 10, 12, 15] {
            for memory_level in [1u8, 5, 8] {
                let (with, with_ns) = ratio(corpus, level, bits, memory_level, true);
                let (without, without_ns) = ratio(corpus, level, bits, memory_level, false);
                println!(
                    "{level:>5}  {bits:>6}  {memory_level:>8} | {:>7.1}%  {:>6.0} | {:>10.1}%  {:>6.0}",
                    with * 100.0,
                    with_ns,
                    without * 100.0,
                    without_ns
                );
            }
        }
    }
    println!();
}

/// The client's opening handshake, offering what browsers offer.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

/// Opens `count` server connections, exchanges one message each way on each (compressed when
/// negotiated), and returns the heap per connection kept while they are idle.
async fn idle_connections(deflate: Option<DeflateOptions>, corpus: &[String]) -> usize {
    let count = 200;
    let before = live();
    let mut kept = Vec::new();
    for i in 0..count {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let options = ServerOptions {
            deflate,
            ..ServerOptions::default()
        };
        let accepting = tokio::spawn(accept(server, options));
        client.write_all(REQUEST).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(client.read_u8().await.unwrap());
        }
        let negotiated = head.windows(18).any(|w| w == b"permessage-deflate");
        let ws = accepting.await.unwrap().unwrap();
        let mut opened = ws.opened().await.unwrap();
        // One message from the client, compressed if agreed (so the server inflates)...
        let text = corpus[i % corpus.len()].clone();
        let frame = if negotiated {
            let params = DeflateParams::default();
            Frame {
                rsv: RSV1,
                ..Frame::new(
                    OpCode::Text,
                    Deflater::new(Role::Client, &params, 1).compress(text.as_bytes()),
                )
            }
        } else {
            Frame::new(OpCode::Text, bytes::Bytes::from(text.clone()))
        };
        let mut wire = BytesMut::new();
        FrameEncoder::new(Role::Client).encode(&frame, &mut wire);
        client.write_all(&wire).await.unwrap();
        let received = opened.readable.next().await.unwrap().unwrap();
        // ...and one back (the server compresses it).
        opened.writable.send(received).await.unwrap();
        let mut sink = vec![0; 64 * 1024];
        let _ = client.read(&mut sink).await.unwrap();
        kept.push((ws, opened, client));
    }
    tokio::task::yield_now().await;
    let per_connection = (live() - before) / count;
    drop(kept);
    per_connection
}

fn main() {
    let corpus = graphql::corpus(3000);
    state_table(&corpus);
    ratio_table(&corpus);
    println!("3. heap per idle server connection (KiB), after one message each way");
    for (name, deflate) in [
        ("no deflate", None),
        ("DeflateOptions::default()", Some(DeflateOptions::default())),
        (
            "DeflateOptions::server_default()",
            Some(DeflateOptions::server_default()),
        ),
        (
            "no context takeover either way",
            Some(DeflateOptions {
                client_no_context_takeover: true,
                ..DeflateOptions::server_default()
            }),
        ),
    ] {
        // A runtime per row: dropping it ends the previous row's closing tasks.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let held = runtime.block_on(idle_connections(deflate, &corpus));
        println!("{name:>32}: {}", kib(held));
    }
}
