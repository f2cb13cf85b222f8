//! web-platform-tests `websockets/bufferedAmount-*.any.js` and
//! `interfaces/WebSocket/bufferedAmount/*.html`: `bufferedAmount` grows synchronously by the
//! UTF-8 or binary length of each send, and only the socket's task moves it down. Each test
//! names the upstream file it mirrors and runs over `ws://` and `wss://`.
//!
//! "Right after send" checks rely on the current-thread runtime of `#[tokio::test]`: the socket's
//! task cannot run between two statements without an `.await`.
//!
//! Not mirrored: `bufferedAmount-readonly.html` (there is no setter to call),
//! `bufferedAmount-defineProperty-getter.html` and `-setter.html` (JS prototype accessors).

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::time::Duration;

use bytes::Bytes;
use client::{types, watch};
use tokio::sync::mpsc;
use whatwg_websocket::{Event, Message, MessageData, ReadyState, WebSocket};

/// Opens `/echo`, sets `binary_type`, sends `data` and checks `bufferedAmount === buffered`
/// right after; then the echo must be the next event and equal `expected`. Closes cleanly.
async fn buffered_round_trip(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    binary_type: Option<&str>,
    data: Message,
    buffered: u64,
    expected: MessageData,
) {
    let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
    let mut events = watch(&ws);
    events.expect("open").await;
    if let Some(binary_type) = binary_type {
        ws.set_binary_type(binary_type);
    }
    assert_eq!(ws.buffered_amount(), 0);
    ws.send(data).unwrap();
    assert_eq!(ws.buffered_amount(), buffered);
    let message = events.expect("message").await;
    assert_eq!(message.event.data(), Some(&expected));
    ws.close(None, None).unwrap();
    assert!(events.expect("close").await.event.was_clean());
}

/// Each message's text with the `bufferedAmount` read while it was dispatched.
fn watch_buffered(ws: &WebSocket) -> mpsc::UnboundedReceiver<(String, u64)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let weak = ws.downgrade();
    ws.add_event_listener("message", move |event: &Event| {
        let ws = weak.upgrade().expect("the test holds the socket");
        let text = event
            .data()
            .and_then(MessageData::as_text)
            .unwrap_or_default();
        let _ = tx.send((text.to_owned(), ws.buffered_amount()));
    });
    rx
}

wpt! {
    /// `bufferedAmount-unchanged-by-sync-xhr.any.js` (sync XHR is browser-only): 0 at open, 5
    /// after send("hello"), and still 5 after blocking the thread for 1 s: only the event loop
    /// lowers it, never while the caller's code is running.
    fn buffered_amount_unchanged_by_sync_xhr(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        assert_eq!(ws.buffered_amount(), 0);
        ws.send("hello").unwrap();
        assert_eq!(ws.buffered_amount(), 5);
        // Blocks the (current-thread) runtime, as a synchronous XHR blocks the page.
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(ws.buffered_amount(), 5);
        ws.close(None, None).unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"]);
        assert!(all[0].event.was_clean());
    }
}

wpt! {
    /// `interfaces/WebSocket/bufferedAmount/bufferedAmount-initial.html`: 0 right after
    /// construction.
    fn buffered_amount_initial(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Connecting);
        assert_eq!(ws.buffered_amount(), 0);
    }
}

wpt! {
    /// `interfaces/WebSocket/bufferedAmount/bufferedAmount-deleting.html` (property deletion is
    /// browser-only): 0 after construction and still 0 after close() (close adds nothing).
    fn buffered_amount_deleting(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        ws.close(None, None).unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        // Also when closing an open socket.
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.close(None, None).unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        events.expect("close").await;
        assert_eq!(ws.buffered_amount(), 0);
    }
}

wpt! {
    /// `interfaces/WebSocket/bufferedAmount/bufferedAmount-getting.html`: "x", "å", "匶" and
    /// U+1047E add 1, 2, 3 and 4 (UTF-8 bytes) at once; the echoes come back in order, and at
    /// each one bufferedAmount is below what could still be unsent, and 0 at the last.
    fn buffered_amount_getting(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut buffered = watch_buffered(&ws);
        let mut events = watch(&ws);
        events.expect("open").await;
        let sends = [("x", 1), ("\u{00E5}", 3), ("\u{5336}", 6), ("\u{1047E}", 10)];
        for (text, total) in sends {
            ws.send(text).unwrap();
            assert_eq!(ws.buffered_amount(), total, "after sending {text:?}");
        }
        // Upstream's bounds: after the n-th echo, less than the later messages' bytes + 1.
        let bounds = [2 + 3 + 4 + 1, 3 + 4 + 1, 4 + 1];
        for (i, (text, _)) in sends.iter().enumerate() {
            let message = events.expect("message").await;
            assert_eq!(message.text(), Some(*text));
            let (seen, amount) = server::within(buffered.recv()).await.unwrap();
            assert_eq!(seen, *text);
            match bounds.get(i) {
                Some(&bound) => assert!(amount < bound, "echo {i}: {amount} >= {bound}"),
                None => assert_eq!(amount, 0, "at the last echo"),
            }
        }
        ws.close(None, None).unwrap();
        assert!(events.expect("close").await.event.was_clean());
    }
}

wpt! {
    /// `interfaces/WebSocket/bufferedAmount/bufferedAmount-arraybuffer.html`: 10 bytes with
    /// binaryType "arraybuffer": bufferedAmount 10; echo byteLength 10.
    fn buffered_amount_arraybuffer(wpt, scheme) {
        let data = Bytes::from(vec![0u8; 10]);
        let expected = MessageData::ArrayBuffer(data.clone());
        buffered_round_trip(&wpt, scheme, Some("arraybuffer"), data.into(), 10, expected).await;
    }
}

wpt! {
    /// `interfaces/WebSocket/bufferedAmount/bufferedAmount-blob.html` (Blob is browser-only):
    /// 10 bytes with binaryType "blob": bufferedAmount 10; the echo is a Blob of 10 bytes.
    fn buffered_amount_blob(wpt, scheme) {
        let data = Bytes::from(vec![0u8; 10]);
        let expected = MessageData::Blob(data.clone());
        buffered_round_trip(&wpt, scheme, Some("blob"), data.into(), 10, expected).await;
    }
}

wpt! {
    /// `interfaces/WebSocket/bufferedAmount/bufferedAmount-large.html`: 65000 "x":
    /// bufferedAmount 65000; echoed equal.
    fn buffered_amount_large(wpt, scheme) {
        let data = "x".repeat(65000);
        let expected = MessageData::Text(data.clone().into());
        buffered_round_trip(&wpt, scheme, None, data.into(), 65000, expected).await;
    }
}

wpt! {
    /// `interfaces/WebSocket/bufferedAmount/bufferedAmount-unicode.html`: six U+00A5:
    /// bufferedAmount 12 (UTF-8 bytes); echoed equal.
    fn buffered_amount_unicode(wpt, scheme) {
        let data = "\u{00A5}".repeat(6);
        let expected = MessageData::Text(data.clone().into());
        buffered_round_trip(&wpt, scheme, None, data.into(), 12, expected).await;
    }
}
