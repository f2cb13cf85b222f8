//! Pings cannot grow the write buffer without bound: past the write high-water mark, `ping`
//! refuses with `QuotaExceededError` until the peer reads again.

use std::time::Duration;

use whatwg_websocket::{StreamOptions, WebSocket, WebSocketInit, WebSocketStream, ping};

use crate::support::mock::{self, Mock, MockPeer};
use crate::support::{next_event, record, within};

/// Masked ping frames of 125 bytes: 2 + 4 + 125 bytes each.
const PING_FRAME: usize = 131;
const HIGH_WATER_MARK: usize = 64 * 1024;

/// A peer that reads nothing: every byte we write waits in our buffer.
fn not_reading() -> Mock {
    Mock {
        capacity: 0,
        ..Mock::default()
    }
}

/// Pings until one is refused; returns how many were queued.
fn ping_until_refused(mut ping: impl FnMut() -> Result<(), whatwg_websocket::Error>) -> usize {
    for sent in 0..200_000 {
        if let Err(error) = ping() {
            assert_eq!(error.name(), "QuotaExceededError");
            return sent;
        }
    }
    panic!("200,000 pings queued for a peer that does not read");
}

/// The peer reads again: pings are accepted again once what was queued has gone.
async fn reads_again(peer: &mut MockPeer) {
    peer.set_capacity(1 << 20);
    tokio::time::sleep(Duration::from_millis(1)).await;
    within(peer.receive()).await.expect("the first ping");
}

#[tokio::test(start_paused = true)]
async fn stream_pings_to_a_peer_that_does_not_read_stop_at_the_write_high_water_mark() {
    let (dispatcher, mut peer) = mock::socket(not_reading());
    let options = StreamOptions {
        dispatcher: Some(dispatcher),
        ..StreamOptions::default()
    };
    let ws = WebSocketStream::new("ws://mock/", options).unwrap();
    let opened = within(ws.opened()).await.unwrap();
    let sent = ping_until_refused(|| ws.ping(&[b'.'; 125]).map(drop));
    assert!(
        sent * PING_FRAME <= HIGH_WATER_MARK + PING_FRAME,
        "{sent} pings"
    );
    assert!(sent * PING_FRAME >= HIGH_WATER_MARK, "{sent} pings");
    // The stream face writes when polled: a reader sends what is queued once the peer reads.
    let mut readable = opened.readable;
    tokio::spawn(async move {
        use futures_util::StreamExt;
        while readable.next().await.is_some() {}
    });
    reads_again(&mut peer).await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    let _pong = ws.ping(b"again").unwrap();
}

#[tokio::test(start_paused = true)]
async fn websocket_pings_to_a_peer_that_does_not_read_stop_at_the_write_high_water_mark() {
    let (dispatcher, mut peer) = mock::socket(not_reading());
    let init = WebSocketInit {
        dispatcher: Some(dispatcher),
        ..WebSocketInit::default()
    };
    let ws = WebSocket::new("ws://mock/", init).unwrap();
    let mut events = record(&ws, &["open"]);
    next_event(&mut events).await;
    let sent = ping_until_refused(|| ping(&ws, &[b'.'; 125]));
    assert!(
        sent * PING_FRAME <= HIGH_WATER_MARK + PING_FRAME,
        "{sent} pings"
    );
    reads_again(&mut peer).await;
    ping(&ws, b"again").unwrap();
}
