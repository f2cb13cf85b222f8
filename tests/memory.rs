//! Memory that a peer cannot pin, measured with a counting global allocator (so this test
//! binary is its own): the heap of an idle server connection with and without
//! permessage-deflate negotiated, 10,000 kept 16-byte messages, a small message kept after a
//! large one, and a failed connection's buffers while its handles live.
//!
//! Timers run in virtual time over the in-memory socket of `support::mock`. The tests take a
//! lock each, so that one's allocations never count in another's figures.

#[path = "support/mock.rs"]
#[allow(dead_code, unreachable_pub)]
mod mock;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use mock::{Mock, MockIo, MockPeer};
use whatwg_websocket::proto::{Frame, OpCode};
use whatwg_websocket::{Limits, Message, ServerOptions, StreamOptions, WebSocketStream, accept};

struct Counting;

static HEAP: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the same arguments; the
// counter only observes the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HEAP.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` was allocated by this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static SERIAL: Mutex<()> = Mutex::new(());

fn heap() -> isize {
    HEAP.load(Ordering::Relaxed)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

const CONNECTIONS: usize = 10_000;

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: mock\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n";

/// A GraphQL subscription event of about 1 KiB: compressible, as such traffic is.
fn event(n: usize) -> String {
    let items: Vec<String> = (0..12)
        .map(|i| {
            format!(
                r#"{{"id":"{n}-{i}","price":{},"symbol":"SYM{i}","ts":1700000{n:03}}}"#,
                100 + i
            )
        })
        .collect();
    format!(
        r#"{{"type":"next","id":"{n}","payload":{{"data":{{"trades":[{}]}}}}}}"#,
        items.join(",")
    )
}

/// Heap per idle server connection (accepted with `offer` as the client's extensions),
/// 10,000 of them, after one message each way (compressed when deflate is agreed), once every
/// keeper has taken over and the connections sit idle.
fn idle_server_heap(offer: Option<&str>) -> (f64, String) {
    runtime().block_on(async {
        let text = event(1);
        // What each client sends: compressed as a client that keeps its context would.
        let client_message = match offer {
            #[cfg(feature = "deflate")]
            Some(_) => {
                let mut deflater = whatwg_websocket::proto::deflate::Deflater::new(
                    whatwg_websocket::proto::Role::Client,
                    &Default::default(),
                    1,
                );
                Frame {
                    rsv: whatwg_websocket::proto::RSV1,
                    ..Frame::new(OpCode::Text, deflater.compress(text.as_bytes()))
                }
            }
            _ => Frame::new(OpCode::Text, text.clone()),
        };
        let mut pairs: Vec<(MockIo, MockPeer)> = (0..CONNECTIONS)
            .map(|_| {
                mock::pair(&Mock {
                    peer_is_client: true,
                    ..Mock::default()
                })
            })
            .collect();
        let mut request = REQUEST.to_owned();
        if let Some(offer) = offer {
            request.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        }
        request.push_str("\r\n");
        let mut peers = Vec::with_capacity(CONNECTIONS);
        let mut servers = Vec::with_capacity(CONNECTIONS);
        let before = heap();
        let mut extensions = String::new();
        for (io, peer) in pairs.drain(..) {
            peer.send_raw(request.as_bytes());
            let ws = accept(io, ServerOptions::default()).await.unwrap();
            let opened = ws.opened().await.unwrap();
            extensions.clone_from(&opened.extensions);
            peer.take_written();
            servers.push((ws, opened));
            peers.push(peer);
        }
        for ((_, opened), peer) in servers.iter_mut().zip(&mut peers) {
            peer.send(client_message.clone());
            opened.readable.next().await.unwrap().unwrap();
            futures_util::SinkExt::send(&mut opened.writable, Message::text(text.clone()))
                .await
                .unwrap();
            peer.take_written();
        }
        // Idle: the keepers take over after their first second, and the first keepalive ping
        // goes out after 20 s of quiet (the peers do not answer: they would be failed at 40 s).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let active = (heap() - before) as f64 / CONNECTIONS as f64;
        println!("  5 s after the last message: {active:.0} bytes per connection");
        tokio::time::sleep(Duration::from_secs(25)).await;
        let per_connection = (heap() - before) as f64 / CONNECTIONS as f64;
        drop(servers);
        (per_connection, extensions)
    })
}

#[test]
fn an_idle_server_connection_without_deflate_holds_at_most_8_kib() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (per_connection, extensions) = idle_server_heap(None);
    assert_eq!(extensions, "");
    println!("idle server connection, no deflate: {per_connection:.0} bytes");
    assert!(per_connection <= 8.0 * 1024.0, "{per_connection:.0} bytes");
}

#[cfg(feature = "deflate")]
#[test]
fn an_idle_server_connection_with_deflate_negotiated_holds_at_most_64_kib() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (per_connection, extensions) =
        idle_server_heap(Some("permessage-deflate; client_max_window_bits"));
    assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    println!("idle server connection, deflate negotiated: {per_connection:.0} bytes");
    assert!(per_connection <= 64.0 * 1024.0, "{per_connection:.0} bytes");
}

async fn client(peer_mock: Mock, limits: Limits) -> (WebSocketStream, MockPeer) {
    let (dispatcher, peer) = mock::socket(peer_mock);
    let options = StreamOptions {
        dispatcher: Some(dispatcher),
        limits,
        ..StreamOptions::default()
    };
    let ws = WebSocketStream::new("ws://mock/", options).unwrap();
    ws.opened().await.unwrap();
    (ws, peer)
}

#[test]
fn ten_thousand_kept_16_byte_messages_hold_at_most_twice_their_payload() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (ws, mut peer) = client(Mock::default(), Limits::default()).await;
        let mut readable = ws.opened().await.unwrap().readable;
        let mut kept: Vec<Message> = Vec::with_capacity(CONNECTIONS);
        // Warm up the read buffer, so that only the messages count.
        peer.send(Frame::new(OpCode::Text, "warm up, warm up"));
        readable.next().await.unwrap().unwrap();
        let before = heap();
        for n in 0..10_000u32 {
            // One message per read, as a quiet feed delivers them.
            peer.send(Frame::new(OpCode::Text, format!("message {n:>8}")));
            kept.push(readable.next().await.unwrap().unwrap());
        }
        assert!(kept.iter().all(|m| m.len() == 16));
        let per_message = (heap() - before) as f64 / kept.len() as f64;
        println!("kept 16-byte message: {per_message:.1} bytes of heap");
        assert!(
            per_message <= 32.0,
            "{per_message:.1} bytes per kept message"
        );
    });
}

#[test]
fn sixty_bytes_kept_after_a_large_message_do_not_pin_its_buffer() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let (ws, mut peer) = client(Mock::default(), Limits::default()).await;
        let mut readable = ws.opened().await.unwrap().readable;
        let before = heap();
        // Large messages, each with 60 bytes right behind it (some in the same read).
        let mut small = Vec::new();
        for k in 0..8 {
            let size = (4 << 20) - k * 7919 - 20_000;
            peer.send(Frame::new(OpCode::Binary, vec![7u8; size]));
            peer.send(Frame::new(OpCode::Binary, vec![1u8; 60]));
            let large = readable.next().await.unwrap().unwrap();
            assert_eq!(large.len(), size);
            small.push(readable.next().await.unwrap().unwrap());
            drop(large);
        }
        // The reader waits again (the read buffer is given back once empty).
        peer.send(Frame::new(OpCode::Text, "next"));
        readable.next().await.unwrap().unwrap();
        let held = heap() - before;
        println!("8 x 60 bytes kept after 4 MiB each: {held} bytes held");
        assert!(held < 128 * 1024, "{held} bytes held for 8 x 60 kept bytes");
        drop(small);
    });
}

#[cfg(feature = "deflate")]
#[test]
fn a_failed_connection_releases_its_partly_inflated_message_while_handles_live() {
    use whatwg_websocket::handshake::Negotiated;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    runtime().block_on(async {
        let mock = Mock {
            negotiated: Negotiated {
                protocol: String::new(),
                extensions: "permessage-deflate".into(),
            },
            ..Mock::default()
        };
        let limits = Limits {
            max_message_size: 16 << 20,
            ..Limits::default()
        };
        let (ws, mut peer) = client(mock, limits).await;
        let opened = ws.opened().await.unwrap();
        // A compressed fragment that inflates to 12 MiB, then more that passes the limit.
        let mut deflater = whatwg_websocket::proto::deflate::Deflater::new(
            whatwg_websocket::proto::Role::Server,
            &Default::default(),
            1,
        );
        let compressed = deflater.compress(&vec![0u8; 12 << 20]);
        drop(deflater);
        let before = heap();
        peer.send(Frame {
            fin: false,
            rsv: whatwg_websocket::proto::RSV1,
            ..Frame::new(OpCode::Binary, compressed.clone())
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        let holding = heap() - before;
        assert!(
            holding >= 12 << 20,
            "the fragment was not inflated: {holding}"
        );
        peer.send(Frame::new(OpCode::Continuation, compressed));
        let error = ws.closed().await.unwrap_err();
        assert_eq!(error.close_code(), Some(1006));
        let held = heap() - before;
        println!("failed connection, handles alive: {held} bytes held");
        assert!(held < 256 * 1024, "{held} bytes held after the failure");
        drop(opened);
    });
}
