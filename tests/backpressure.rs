//! Backpressure both ways: an unread readable stops socket reads, and a peer that does not read
//! makes the writable wait.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::*;
use whatwg_websocket::{Message, Opened, ServerOptions, StreamOptions, accept};

const MIB: usize = 1 << 20;

/// The burst's size in MiB: far more than the client's fixed 256 KiB receive buffer and the
/// server's send buffer (autotuned up to `tcp_wmem`'s maximum, 4 MiB here) hold together.
const MESSAGES: u8 = 64;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_readable_holds_back_a_64_mib_burst() {
    let sent = Arc::new(AtomicUsize::new(0));
    let server_sent = sent.clone();
    let address = spawn_server(move |socket| {
        let sent = server_sent.clone();
        async move {
            let ws = accept(socket, ServerOptions::default()).await.unwrap();
            let Opened { mut writable, .. } = ws.opened().await.unwrap();
            for i in 0..MESSAGES {
                writable.send(Message::binary(vec![i; MIB])).await.unwrap();
                sent.fetch_add(1, Ordering::SeqCst);
            }
            let _ = ws.closed().await;
        }
    })
    .await;
    let options = StreamOptions {
        read_high_water_mark: 64 * 1024,
        // Autotuned, a loopback socket's receive buffer may grow to tens of MiB (tcp_rmem):
        // fixed at 256 KiB, only our backpressure can hold the burst back.
        dispatcher: Some(Arc::new(FixedReceiveBuffer(256 * 1024))),
        ..Default::default()
    };
    let (ws, Opened { mut readable, .. }) = connect(&format!("ws://{address}/"), options).await;
    // `closed` drives the connection while nobody reads: it may read ahead one message past
    // the high-water mark, no more; the rest stays with the sender.
    let _ = tokio::time::timeout(Duration::from_millis(500), ws.closed()).await;
    let held = sent.load(Ordering::SeqCst);
    assert!(
        held < MESSAGES as usize,
        "the server sent all {MESSAGES} MiB to a client that read nothing ({held} sent)"
    );
    for i in 0..MESSAGES {
        let message = within(readable.next()).await.unwrap().unwrap();
        assert_eq!(message.as_bytes(), vec![i; MIB].as_slice(), "message {i}");
    }
    assert_eq!(sent.load(Ordering::SeqCst), MESSAGES as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_read_makes_the_writable_wait() {
    let address = raw_server("", |peer| async move {
        // Accept the connection, then never read.
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(peer);
    })
    .await;
    let options = StreamOptions {
        write_high_water_mark: 64 * 1024,
        ..Default::default()
    };
    let (_ws, Opened { mut writable, .. }) = connect(&format!("ws://{address}/"), options).await;
    let mut sent = 0;
    let sending = async {
        for _ in 0..16 {
            writable
                .feed(Message::binary(vec![0u8; MIB]))
                .await
                .unwrap();
            sent += 1;
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(500), sending)
            .await
            .is_err(),
        "all 16 MiB were accepted"
    );
    assert!(
        sent < 16,
        "{sent} MiB accepted for a peer that reads nothing"
    );
}
