//! web-platform-tests `websockets/binaryType-wrong-value.any.js` and `websockets/binary/*.html`:
//! `binaryType` and how binary messages are delivered. Each test names the upstream file it
//! mirrors and runs over `ws://` and `wss://`. (`binary/003.html` does not exist upstream.)

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use bytes::Bytes;
use client::watch;
use whatwg_websocket::{BinaryType, MessageData, ReadyState, WebSocket};

/// Upstream's `binary/` shape: open `/echo`, set `binary_type` at open, send `len` zero bytes;
/// the next event must be the echo (a close before it fails), delivered as `expected(bytes)`.
async fn binary_echo(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    binary_type: &str,
    len: usize,
    expected: fn(Bytes) -> MessageData,
) {
    let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
    let mut events = watch(&ws);
    events.expect("open").await;
    ws.set_binary_type(binary_type);
    assert_eq!(ws.binary_type().as_str(), binary_type);
    let data = Bytes::from(vec![0u8; len]);
    ws.send(data.clone()).unwrap();
    let message = events.expect("message").await;
    assert_eq!(message.ready_state, ReadyState::Open);
    let received = message.event.data().expect("a MessageEvent");
    assert_eq!(received.as_binary().map(Bytes::len), Some(len));
    assert_eq!(received, &expected(data));
    ws.close(None, None).unwrap();
    assert!(events.expect("close").await.event.was_clean());
}

wpt! {
    /// `binaryType-wrong-value.any.js`: binaryType is "blob" by default; assigning
    /// "notBlobOrArrayBuffer" is ignored without an error; the close is clean.
    fn binary_type_wrong_value(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        assert_eq!(ws.binary_type(), BinaryType::Blob);
        assert_eq!(ws.binary_type().as_str(), "blob");
        ws.set_binary_type("notBlobOrArrayBuffer");
        assert_eq!(ws.binary_type().as_str(), "blob");
        // Also from "arraybuffer", and enumeration values are case-sensitive.
        ws.set_binary_type("arraybuffer");
        assert_eq!(ws.binary_type(), BinaryType::ArrayBuffer);
        for wrong in ["notBlobOrArrayBuffer", "Blob", "ArrayBuffer", ""] {
            ws.set_binary_type(wrong);
            assert_eq!(ws.binary_type().as_str(), "arraybuffer", "after {wrong:?}");
        }
        ws.close(None, None).unwrap();
        let close = events.expect("close").await;
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `binary/001.html` (Blob is browser-only): binaryType "blob", 10 bytes come back as a
    /// Blob of size 10.
    fn binary_001(wpt, scheme) {
        binary_echo(&wpt, scheme, "blob", 10, MessageData::Blob).await;
    }
}

wpt! {
    /// `binary/002.html` (Blob is browser-only): binaryType "blob", 100000 bytes (more than one
    /// network buffer) come back as a Blob of size 100000.
    fn binary_002(wpt, scheme) {
        binary_echo(&wpt, scheme, "blob", 100_000, MessageData::Blob).await;
    }
}

wpt! {
    /// `binary/004.html`: binaryType "arraybuffer", 100000 bytes: byteLength 100000.
    fn binary_004(wpt, scheme) {
        binary_echo(&wpt, scheme, "arraybuffer", 100_000, MessageData::ArrayBuffer).await;
    }
}

wpt! {
    /// `binary/005.html`: binaryType "arraybuffer", 10 bytes: byteLength 10.
    fn binary_005(wpt, scheme) {
        binary_echo(&wpt, scheme, "arraybuffer", 10, MessageData::ArrayBuffer).await;
    }
}
