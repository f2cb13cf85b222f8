//! web-platform-tests `websockets/Send-*.any.js`, `send-many-64K-messages-with-backpressure`
//! and `interfaces/WebSocket/send/*.html`: `send()` in every state, what reaches the server,
//! and `bufferedAmount` right after it. Each test names the upstream file it mirrors and runs
//! over `ws://` and `wss://`.
//!
//! "Right after send" checks rely on the current-thread runtime of `#[tokio::test]`: the socket's
//! task cannot run between two statements without an `.await`.
//!
//! Not mirrored: `send/001.html` (`send()` without an argument: a compile error in Rust),
//! `send/002.html` (replacing `ws.send` on the instance), `send/006.html` (lone UTF-16
//! surrogates: a Rust string cannot hold them and no `send` takes UTF-16), `send/012.html`
//! (`send(null)` stringifies to "null": JS conversion; text round trips are `send/010.html`).

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use client::{types, watch};
use whatwg_websocket::{Error, Event, Message, MessageData, ReadyState, WebSocket};

const QUIET: Duration = Duration::from_millis(50);

/// The general shape of upstream's send tests: open `/echo` (with `binary_type` set at open),
/// send `data`, check `bufferedAmount` right after (if `buffered` is given), check the echoed
/// message, close(), and check the close is clean and the only event after the message.
async fn echo_round_trip(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    binary_type: Option<&str>,
    data: Message,
    buffered: Option<u64>,
    expected: MessageData,
) {
    let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
    let mut events = watch(&ws);
    events.expect("open").await;
    if let Some(binary_type) = binary_type {
        ws.set_binary_type(binary_type);
    }
    ws.send(data).unwrap();
    if let Some(buffered) = buffered {
        assert_eq!(ws.buffered_amount(), buffered);
    }
    let message = events.expect("message").await;
    assert_eq!(message.ready_state, ReadyState::Open);
    assert_eq!(message.event.data(), Some(&expected));
    ws.close(None, None).unwrap();
    let all = events.until_close().await;
    assert_eq!(types(&all), ["close"]);
    assert!(all[0].event.was_clean());
    events.assert_quiet(QUIET).await;
}

/// The bytes of a typed-array view: a zeroed `buffer_len`-byte `ArrayBuffer`, a view of
/// `W`-byte elements at `byte_offset` with `length` elements (default: to the end), `values`
/// written into it in order (writes past the view's end are dropped, as on the web); the result
/// is the view's window only, which is what `send(view)` sends.
fn typed_view<const W: usize>(
    buffer_len: usize,
    byte_offset: usize,
    length: Option<usize>,
    values: &[[u8; W]],
) -> Vec<u8> {
    let mut buffer = vec![0u8; buffer_len];
    let length = length.unwrap_or((buffer_len - byte_offset) / W);
    for (i, value) in values.iter().enumerate().take(length) {
        buffer[byte_offset + i * W..][..W].copy_from_slice(value);
    }
    buffer[byte_offset..byte_offset + length * W].to_vec()
}

/// `Send-binary-arraybufferview-*`: with binaryType "arraybuffer", exactly the view's bytes
/// come back (the received length is the view's byteLength, not the buffer's).
async fn send_view(wpt: &server::Wpt, scheme: server::Scheme, view: Vec<u8>, wire: &[u8]) {
    assert_eq!(view, wire, "the view's bytes");
    let expected = MessageData::ArrayBuffer(Bytes::copy_from_slice(wire));
    echo_round_trip(
        wpt,
        scheme,
        Some("arraybuffer"),
        view.into(),
        None,
        expected,
    )
    .await;
}

wpt! {
    /// `Send-before-open.any.js`: send() while connecting throws InvalidStateError.
    fn send_before_open(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Connecting);
        let error = ws.send("Message to send").unwrap_err();
        assert_eq!(error.name(), "InvalidStateError");
        assert_eq!(ws.buffered_amount(), 0);
    }
}

wpt! {
    /// `Send-0byte-data.any.js`: an empty text message: bufferedAmount 0, echoed as "".
    fn send_0byte_data(wpt, scheme) {
        echo_round_trip(&wpt, scheme, None, "".into(), Some(0), MessageData::Text("".into())).await;
    }
}

wpt! {
    /// `Send-65K-data.any.js`: 65000 "c": bufferedAmount 65000 right after send; echoed equal.
    fn send_65k_data(wpt, scheme) {
        let data = "c".repeat(65000);
        let expected = MessageData::Text(data.clone().into());
        echo_round_trip(&wpt, scheme, None, data.into(), Some(65000), expected).await;
    }
}

wpt! {
    /// `Send-unicode-data.any.js`: six U+00A5: bufferedAmount counts 12 UTF-8 bytes; echoed
    /// equal.
    fn send_unicode_data(wpt, scheme) {
        let data = "\u{00A5}".repeat(6);
        let expected = MessageData::Text(data.clone().into());
        echo_round_trip(&wpt, scheme, None, data.into(), Some(12), expected).await;
    }
}

wpt! {
    /// `Send-binary-arraybuffer.any.js`: 15 zero bytes: bufferedAmount 15; byteLength 15.
    fn send_binary_arraybuffer(wpt, scheme) {
        let data = vec![0u8; 15];
        let expected = MessageData::ArrayBuffer(data.clone().into());
        echo_round_trip(&wpt, scheme, Some("arraybuffer"), data.into(), Some(15), expected).await;
    }
}

wpt! {
    /// `Send-binary-65K-arraybuffer.any.js`: 65000 zero bytes: bufferedAmount 65000; byteLength
    /// 65000.
    fn send_binary_65k_arraybuffer(wpt, scheme) {
        let data = vec![0u8; 65000];
        let expected = MessageData::ArrayBuffer(data.clone().into());
        echo_round_trip(&wpt, scheme, Some("arraybuffer"), data.into(), Some(65000), expected)
            .await;
    }
}

wpt! {
    /// `Send-binary-blob.any.js` (Blob is browser-only): binaryType "blob", 65000 zero bytes
    /// come back as a Blob of 65000 bytes.
    fn send_binary_blob(wpt, scheme) {
        let data = vec![0u8; 65000];
        let expected = MessageData::Blob(data.clone().into());
        echo_round_trip(&wpt, scheme, Some("blob"), data.into(), None, expected).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-int8.any.js`: Int8Array [0..7].
    fn send_binary_arraybufferview_int8(wpt, scheme) {
        let view = typed_view(8, 0, None, &(0..8i8).map(i8::to_le_bytes).collect::<Vec<_>>());
        send_view(&wpt, scheme, view, &[0, 1, 2, 3, 4, 5, 6, 7]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-int16-offset.any.js`: Int16Array(8-byte buffer, 2): three
    /// elements [0, 1, 2]; the fourth write falls outside the view.
    fn send_binary_arraybufferview_int16_offset(wpt, scheme) {
        let view = typed_view(8, 2, None, &[0i16, 1, 2, 3].map(i16::to_le_bytes));
        send_view(&wpt, scheme, view, &[0, 0, 1, 0, 2, 0]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-int32.any.js`: Int32Array [0, 1].
    fn send_binary_arraybufferview_int32(wpt, scheme) {
        let view = typed_view(8, 0, None, &[0i32, 1].map(i32::to_le_bytes));
        send_view(&wpt, scheme, view, &[0, 0, 0, 0, 1, 0, 0, 0]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-uint8-offset.any.js`: Uint8Array(8-byte buffer, 2): [0..5].
    fn send_binary_arraybufferview_uint8_offset(wpt, scheme) {
        let view = typed_view(8, 2, None, &(0..8u8).map(u8::to_le_bytes).collect::<Vec<_>>());
        send_view(&wpt, scheme, view, &[0, 1, 2, 3, 4, 5]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-uint8-offset-length.any.js`: Uint8Array(buffer, 2, 4):
    /// [0, 1, 2, 3].
    fn send_binary_arraybufferview_uint8_offset_length(wpt, scheme) {
        let view = typed_view(8, 2, Some(4), &(0..8u8).map(u8::to_le_bytes).collect::<Vec<_>>());
        send_view(&wpt, scheme, view, &[0, 1, 2, 3]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-uint16-offset-length.any.js`: Uint16Array(buffer, 2, 2):
    /// [0, 1].
    fn send_binary_arraybufferview_uint16_offset_length(wpt, scheme) {
        let view = typed_view(8, 2, Some(2), &[0u16, 1, 2, 3].map(u16::to_le_bytes));
        send_view(&wpt, scheme, view, &[0, 0, 1, 0]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-uint32-offset.any.js`: Uint32Array(buffer, 0): [0, 1].
    fn send_binary_arraybufferview_uint32_offset(wpt, scheme) {
        let view = typed_view(8, 0, None, &[0u32, 1].map(u32::to_le_bytes));
        send_view(&wpt, scheme, view, &[0, 0, 0, 0, 1, 0, 0, 0]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-float16.any.js`: Float16Array [0.0, 1.0] (1.0 is 0x3C00).
    fn send_binary_arraybufferview_float16(wpt, scheme) {
        let view = typed_view(4, 0, None, &[0x0000u16, 0x3C00].map(u16::to_le_bytes));
        send_view(&wpt, scheme, view, &[0x00, 0x00, 0x00, 0x3C]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-float32.any.js`: Float32Array [0.0, 1.0].
    fn send_binary_arraybufferview_float32(wpt, scheme) {
        let view = typed_view(8, 0, None, &[0.0f32, 1.0].map(f32::to_le_bytes));
        send_view(&wpt, scheme, view, &[0, 0, 0, 0, 0, 0, 0x80, 0x3F]).await;
    }
}

wpt! {
    /// `Send-binary-arraybufferview-float64.any.js`: Float64Array [0.0].
    fn send_binary_arraybufferview_float64(wpt, scheme) {
        let view = typed_view(8, 0, None, &[0.0f64].map(f64::to_le_bytes));
        send_view(&wpt, scheme, view, &[0; 8]).await;
    }
}

wpt! {
    /// `send-many-64K-messages-with-backpressure.any.js`: 50 binary messages of 65536 bytes sent
    /// back to back to a server that reads one per 100 ms: every one arrives (each reply is
    /// "65536"), then the close is clean. bufferedAmount holds all of them right after the sends
    /// and is 0 once every reply is back.
    fn send_many_64k_messages_with_backpressure(wpt, scheme) {
        const COUNT: usize = 50;
        const SIZE: usize = 65536;
        let url = wpt.url(scheme, "/receive-many-with-backpressure");
        let ws = WebSocket::new(&url, wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        let data = Bytes::from(vec![0u8; SIZE]);
        for _ in 0..COUNT {
            ws.send(data.clone()).unwrap();
        }
        assert_eq!(ws.buffered_amount(), (COUNT * SIZE) as u64);
        for i in 0..COUNT {
            let reply = events.expect("message").await;
            assert_eq!(reply.text(), Some("65536"), "reply {i}");
        }
        assert_eq!(ws.buffered_amount(), 0);
        ws.close(None, None).unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"]);
        assert!(all[0].event.was_clean());
    }
}

wpt! {
    /// `interfaces/WebSocket/send/003.html`: send("a") while connecting throws
    /// InvalidStateError.
    fn send_003(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        assert_eq!(ws.send("a").unwrap_err().name(), "InvalidStateError");
        assert_eq!(ws.ready_state(), ReadyState::Connecting);
    }
}

wpt! {
    /// `interfaces/WebSocket/send/004.html`: while connecting, the state check throws
    /// InvalidStateError whatever the string. A Rust string cannot hold lone surrogates, so the
    /// three inputs are sent as an application would have to convert them (U+FFFD for each).
    fn send_004(wpt, scheme) {
        let inputs: [&[u16]; 3] = [
            &[0x61, 0xDC00, 0x78],
            &[0x61, 0xD800, 0x78],
            &[0x61, 0xDC00, 0xD800, 0x78],
        ];
        for units in inputs {
            let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
            let text = String::from_utf16_lossy(units);
            assert_eq!(ws.send(text).unwrap_err().name(), "InvalidStateError");
            assert_eq!(ws.ready_state(), ReadyState::Connecting);
        }
    }
}

wpt! {
    /// `interfaces/WebSocket/send/005.html`: send("test") when open returns nothing (`Ok(())`).
    fn send_005(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        let result: Result<(), Error> = ws.send("test");
        assert_eq!(result, Ok(()));
        assert_eq!(events.expect("message").await.text(), Some("test"));
        ws.close(None, None).unwrap();
        assert!(events.expect("close").await.event.was_clean());
    }
}

wpt! {
    /// `interfaces/WebSocket/send/007.html`: close() then send("test") while CLOSING: no
    /// exception; the data is counted in bufferedAmount but not sent, so no message (and no
    /// error) fires before the single close.
    fn send_007(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.close(None, None).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        assert_eq!(ws.send("test"), Ok(()));
        assert_eq!(ws.buffered_amount(), 4);
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"]);
        assert!(all[0].event.was_clean());
        events.assert_quiet(QUIET).await;
    }
}

wpt! {
    /// `interfaces/WebSocket/send/008.html`: the server closes after "Goodbye"; send("test")
    /// inside the close listener (CLOSED) returns normally and fires no error; one close.
    fn send_008(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        let in_close = Arc::new(Mutex::new(None));
        {
            let in_close = in_close.clone();
            let weak = ws.downgrade();
            ws.add_event_listener("close", move |_: &Event| {
                let ws = weak.upgrade().expect("the test holds the socket");
                *in_close.lock().unwrap() = Some((ws.ready_state(), ws.send("test")));
            });
        }
        events.expect("open").await;
        ws.send("Goodbye").unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["message", "close"]);
        assert_eq!(all[0].text(), Some("Goodbye"));
        assert!(all[1].event.was_clean());
        assert_eq!(in_close.lock().unwrap().take(), Some((ReadyState::Closed, Ok(()))));
        assert_eq!(ws.send("test"), Ok(()));
        events.assert_quiet(QUIET).await;
    }
}

wpt! {
    /// `interfaces/WebSocket/send/009.html`: send("") to `/empty-message`: the server saw an
    /// empty text message and answers "pass"; no error.
    fn send_009(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/empty-message"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.send("").unwrap();
        assert_eq!(events.expect("message").await.text(), Some("pass"));
        ws.close(None, None).unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"]);
        assert!(all[0].event.was_clean(), "{:?}", all[0]);
    }
}

wpt! {
    /// `interfaces/WebSocket/send/010.html` (JS stringification is browser-only): the strings
    /// upstream's values convert to, sent one after another, each echoed unchanged (including
    /// the empty one).
    fn send_010(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        let values = [
            "null",
            "undefined",
            "1",
            "[object Window]",
            "[object HTMLBodyElement]",
            "[object Object]",
            "",
            "[object WebSocket]",
            "function () {}",
            "Error",
        ];
        for value in values {
            ws.send(value).unwrap();
            let echo = events.expect("message").await;
            assert_eq!(echo.text(), Some(value));
        }
        ws.close(None, None).unwrap();
        assert!(events.expect("close").await.event.was_clean());
    }
}

wpt! {
    /// `interfaces/WebSocket/send/011.html`: "å a\u030A \u{1047E}" (precomposed, combining and
    /// non-BMP characters) is echoed unchanged (no normalization); one close.
    fn send_011(wpt, scheme) {
        let data = "\u{00E5} a\u{030A} \u{1047E}";
        echo_round_trip(&wpt, scheme, None, data.into(), None, MessageData::Text(data.into()))
            .await;
    }
}
