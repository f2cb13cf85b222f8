//! web-platform-tests `websockets/stream/tentative/`: `WebSocketStream`, its `opened` and
//! `closed`, `close()`, the readable and the writable (with backpressure both ways), the abort
//! signal, and `WebSocketError`. Each test names the upstream file it mirrors and, where it uses
//! the network, runs over `ws://` and `wss://`.
//!
//! Not mirrored (JavaScript-only):
//! - `constructor.any.js`: no URL, options `true`, `protocols: "hi"` (TypeError): Rust's types
//!   rule them out.
//! - `close.any.js`: `close(true)` (TypeError); `abort`/`cancel` with a plain object or a
//!   `DOMException` carrying `closeCode`: Rust takes only a `WebSocketError` there (a
//!   `WebSocketError` without a code stands in for "a reason that supplies no code").
//! - `write.any.js`: the forced-GC variant, a value whose `toString` returns itself, resizable
//!   `ArrayBuffer`s and views on shared memory (TypeError).

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::net::TcpListener;
use whatwg_websocket::{
    CancellationToken, CloseInfo, Error, Failure, Message, Opened, StreamOptions, WebSocketError,
    WebSocketStream, Writable,
};

const MIB: usize = 1 << 20;

/// `new WebSocketStream(SCHEME_DOMAIN_PORT + path, {protocols})`, opened.
async fn open(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    path: &str,
    protocols: &[&str],
) -> (WebSocketStream, Opened) {
    let ws = WebSocketStream::new(&wpt.url(scheme, path), wpt.options(protocols)).unwrap();
    let opened = ws.opened().await.expect("opened");
    (ws, opened)
}

fn info(code: Option<u16>, reason: &str) -> CloseInfo {
    CloseInfo {
        close_code: code,
        reason: reason.to_owned(),
    }
}

/// `writable.getWriter().ready`.
async fn ready(writable: &mut Writable) -> Result<(), Error> {
    poll_fn(|cx| Pin::new(&mut *writable).poll_ready(cx)).await
}

/// Whether `a` and `b` are the same error object: equal, and sharing the same cause.
fn same_error(a: &WebSocketError, b: &WebSocketError) -> bool {
    a == b
        && match (a.failure(), b.failure()) {
            (Some(x), Some(y)) => std::ptr::eq(x, y),
            (None, None) => true,
            _ => false,
        }
}

fn is_aborted(error: &WebSocketError) -> bool {
    matches!(error.failure(), Some(Failure::Aborted))
}

// ----- constructor.any.js -----

wpt! {
    /// `constructor.any.js`: an invalid URL throws SyntaxError; ECHOURL opens, `url` is
    /// ECHOURL, and `protocol`/`extensions` are strings (""); `/protocol_array` with
    /// ["alpha", "beta"] selects "alpha" and its first message is the text "alpha"; `/404`
    /// rejects both `opened` and `closed` with a WebSocketError.
    fn constructor(wpt, scheme) {
        let error = WebSocketStream::new("invalid:", wpt.options(&[])).unwrap_err();
        assert_eq!(error.name(), "SyntaxError");

        let echo = wpt.url(scheme, "/echo");
        let (ws, opened) = open(&wpt, scheme, "/echo", &[]).await;
        assert_eq!(ws.url(), echo);
        assert_eq!((opened.protocol.as_str(), opened.extensions.as_str()), ("", ""));
        ws.close(CloseInfo::default()).unwrap();
        assert!(ws.closed().await.is_ok());

        let (ws, mut opened) = open(&wpt, scheme, "/protocol_array", &["alpha", "beta"]).await;
        assert_eq!(opened.protocol, "alpha");
        let first = opened.readable.next().await.unwrap().unwrap();
        assert_eq!(first, Message::text("alpha"));
        assert!(first.is_text());
        ws.close(CloseInfo::default()).unwrap();

        let ws = WebSocketStream::new(&wpt.url(scheme, "/404"), wpt.options(&[])).unwrap();
        assert_eq!(ws.opened().await.unwrap_err().name(), "WebSocketError");
        assert_eq!(ws.closed().await.unwrap_err().name(), "WebSocketError");
    }
}

// ----- close.any.js -----

/// Opens ECHO, calls close(`info`), and returns `closed`.
async fn echo_closed_after(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    info: CloseInfo,
) -> Result<CloseInfo, WebSocketError> {
    let (ws, _opened) = open(wpt, scheme, "/echo", &[]).await;
    ws.close(info).unwrap();
    ws.closed().await
}

/// The reasons `abort`/`cancel` are given, and the close they must produce.
fn stream_reasons() -> Vec<(Option<WebSocketError>, CloseInfo)> {
    vec![
        (None, info(Some(1005), "")),
        // A reason that supplies no code (upstream: a plain object, a DOMException).
        (Some(WebSocketError::default()), info(Some(1005), "")),
        (
            Some(WebSocketError::new(Some(3333), "").unwrap()),
            info(Some(3333), ""),
        ),
        (
            Some(WebSocketError::new(Some(3456), "set").unwrap()),
            info(Some(3456), "set"),
        ),
        (
            Some(WebSocketError::new(None, "specified").unwrap()),
            info(Some(1000), "specified"),
        ),
    ]
}

wpt! {
    /// `close.any.js`: close() sends the given code and reason, which the echo reflects;
    /// without a code (or with an empty reason) the Close is empty (1005, ""); a reason alone
    /// means 1000; a 124-byte reason throws SyntaxError, codes 999, 1001, 2999 and 5000
    /// InvalidAccessError; close() while connecting rejects `opened` and `closed`; the
    /// writable's close sends an empty Close and resolves only when the closing handshake
    /// completes (≥ 900 ms with `/delayed-passive-close`); a server that drops TCP instead of
    /// answering rejects `closed` (1006); `writable.abort(x)` and `readable.cancel(x)` close
    /// with the code and reason of a WebSocketError `x`, with an empty Close otherwise.
    fn close(wpt, scheme) {
        assert_eq!(
            echo_closed_after(&wpt, scheme, info(Some(3456), "pizza")).await,
            Ok(info(Some(3456), "pizza"))
        );
        for empty in [CloseInfo::default(), info(None, "")] {
            assert_eq!(
                echo_closed_after(&wpt, scheme, empty).await,
                Ok(info(Some(1005), ""))
            );
        }
        assert_eq!(
            echo_closed_after(&wpt, scheme, info(None, "non-empty")).await,
            Ok(info(Some(1000), "non-empty"))
        );

        let (ws, mut opened) = open(&wpt, scheme, "/echo", &[]).await;
        let long = ".".repeat(124);
        assert_eq!(ws.close(info(Some(1000), &long)).unwrap_err().name(), "SyntaxError");
        assert_eq!(ws.close(info(None, &long)).unwrap_err().name(), "SyntaxError");
        for code in [999, 1001, 2999, 5000] {
            assert_eq!(
                ws.close(info(Some(code), "")).unwrap_err().name(),
                "InvalidAccessError",
                "{code}"
            );
        }
        // None of these had an effect.
        opened.writable.send(Message::text("still open")).await.unwrap();
        assert_eq!(opened.readable.next().await.unwrap().unwrap(), Message::text("still open"));

        // close() before the opening handshake completes.
        let ws = WebSocketStream::new(&wpt.url(scheme, "/echo"), wpt.options(&[])).unwrap();
        ws.close(CloseInfo::default()).unwrap();
        assert_eq!(ws.opened().await.unwrap_err().name(), "WebSocketError");
        assert_eq!(ws.closed().await.unwrap_err().name(), "WebSocketError");

        // writable.getWriter().close()
        let (ws, mut opened) = open(&wpt, scheme, "/echo", &[]).await;
        opened.writable.close().await.unwrap();
        assert_eq!(ws.closed().await, Ok(info(Some(1005), "")));

        // The writer's close waits for the server's (delayed) Close.
        let (ws, mut opened) = open(&wpt, scheme, "/delayed-passive-close", &[]).await;
        let start = Instant::now();
        opened.writable.close().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());
        assert_eq!(ws.closed().await, Ok(info(Some(1005), "")));

        // The server drops TCP instead of answering the Close.
        let (ws, _opened) = open(&wpt, scheme, "/passive-close-abort", &[]).await;
        ws.close(info(Some(4000), "because")).unwrap();
        let error = ws.closed().await.unwrap_err();
        assert_eq!(error.name(), "WebSocketError");
        assert_eq!(error.close_code(), Some(1006));

        for (reason, expected) in stream_reasons() {
            let (ws, opened) = open(&wpt, scheme, "/echo", &[]).await;
            opened.writable.abort(reason.as_ref());
            assert_eq!(ws.closed().await, Ok(expected.clone()), "abort({reason:?})");
            let (ws, opened) = open(&wpt, scheme, "/echo", &[]).await;
            opened.readable.cancel(reason.as_ref());
            assert_eq!(ws.closed().await, Ok(expected), "cancel({reason:?})");
        }
    }
}

// ----- remote-close.any.js -----

/// Opens `/remote-close` with `query`, and returns `closed` and the halves.
async fn remote_closed(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    query: &str,
) -> (Result<CloseInfo, WebSocketError>, Opened) {
    let (ws, opened) = open(wpt, scheme, &format!("/remote-close{query}"), &[]).await;
    (ws.closed().await, opened)
}

wpt! {
    /// `remote-close.any.js`: the server's code and reason reach `closed` (1000 and ""; 1005
    /// for an empty Close; 4000 "robot"; a UTF-8 reason); afterwards the readable is done and
    /// the writer's `ready` rejects with InvalidStateError. The remote Close wins over a
    /// later local close(). An abrupt TCP drop rejects `closed` with a WebSocketError (1006),
    /// and the readable and the writable fail with that same error.
    fn remote_close(wpt, scheme) {
        let (closed, mut opened) = remote_closed(&wpt, scheme, "?code=1000").await;
        assert_eq!(closed, Ok(info(Some(1000), "")));
        assert!(opened.readable.next().await.is_none());
        assert_eq!(ready(&mut opened.writable).await.unwrap_err().name(), "InvalidStateError");

        let (closed, _) = remote_closed(&wpt, scheme, "").await;
        assert_eq!(closed, Ok(info(Some(1005), "")));
        let (closed, _) = remote_closed(&wpt, scheme, "?code=4000&reason=robot").await;
        assert_eq!(closed, Ok(info(Some(4000), "robot")));
        let (closed, _) = remote_closed(
            &wpt,
            scheme,
            "?code=4000&reason=%E3%83%AD%E3%83%9C%E3%83%83%E3%83%88",
        )
        .await;
        assert_eq!(closed, Ok(info(Some(4000), "ロボット")));

        // The remote Close wins over a local one sent after it.
        let (ws, _opened) = open(&wpt, scheme, "/remote-close?code=4222&reason=remote", &[]).await;
        ws.close(info(Some(4111), "local")).unwrap();
        assert_eq!(ws.closed().await, Ok(info(Some(4222), "remote")));

        // An abrupt close: everything fails with the same WebSocketError.
        let (closed, mut opened) = remote_closed(&wpt, scheme, "?abrupt=1").await;
        let error = closed.unwrap_err();
        assert_eq!(error.name(), "WebSocketError");
        assert_eq!(error.close_code(), Some(1006));
        match opened.readable.next().await {
            Some(Err(read)) => assert!(same_error(&read, &error), "{read:?} vs {error:?}"),
            other => panic!("the read should fail, got {other:?}"),
        }
        match ready(&mut opened.writable).await {
            Err(Error::WebSocket(write)) => assert!(same_error(&write, &error), "{write:?}"),
            other => panic!("ready should fail with the WebSocketError, got {other:?}"),
        }
    }
}

wpt! {
    /// `remote-close.any.js`, "close with unwritten data is not clean": `?code=4567` while a
    /// 20 MiB write is pending: `closed` rejects with a WebSocketError whose code is 4567,
    /// and the write rejects. (Upstream's check of the write's error is not awaited; we follow
    /// `write.any.js`, which awaits it: an InvalidStateError.)
    fn remote_close_with_unwritten_data(wpt, scheme) {
        let (ws, mut opened) = open(&wpt, scheme, "/remote-close?code=4567", &[]).await;
        let big = Message::binary(vec![0u8; 20 * MIB]);
        let (write, closed) = tokio::join!(opened.writable.send(big), ws.closed());
        let error = closed.expect_err("closed should reject: data was left unwritten");
        assert_eq!(error.close_code(), Some(4567));
        assert!(matches!(error.failure(), Some(Failure::UnsentData)), "{error:?}");
        assert_eq!(write.unwrap_err().name(), "InvalidStateError");
    }
}

// ----- abort.any.js -----

wpt! {
    /// `abort.any.js`: a signal aborted before construction rejects `opened` and `closed`
    /// (AbortError: `Failure::Aborted`) and makes no connection; aborting during the opening
    /// handshake (`/handshake_sleep_2`) does the same; aborting after `opened` has no effect.
    fn abort(wpt, scheme) {
        // Already aborted: nothing may connect to this listener.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let url = match scheme {
            server::Scheme::Ws => format!("ws://{address}/"),
            server::Scheme::Wss | server::Scheme::H2 => format!("wss://{address}/"),
        };
        let signal = CancellationToken::new();
        signal.cancel();
        let options = StreamOptions { signal: Some(signal), ..wpt.options(&[]) };
        let ws = WebSocketStream::new(&url, options).unwrap();
        assert!(is_aborted(&ws.opened().await.unwrap_err()));
        assert!(is_aborted(&ws.closed().await.unwrap_err()));
        let connect = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(connect.is_err(), "an aborted WebSocketStream connected");

        // Aborted during the handshake.
        let signal = CancellationToken::new();
        let options = StreamOptions { signal: Some(signal.clone()), ..wpt.options(&[]) };
        let ws = WebSocketStream::new(&wpt.url(scheme, "/handshake_sleep_2"), options).unwrap();
        tokio::task::yield_now().await;
        signal.cancel();
        let start = Instant::now();
        let error = ws.opened().await.unwrap_err();
        assert!(is_aborted(&error), "{error:?}");
        assert_eq!(error.name(), "WebSocketError");
        assert!(is_aborted(&ws.closed().await.unwrap_err()));
        assert!(start.elapsed() < Duration::from_secs(1), "the abort waited for the handshake");

        // Aborted after opening: no effect.
        let signal = CancellationToken::new();
        let options = StreamOptions { signal: Some(signal.clone()), ..wpt.options(&[]) };
        let ws = WebSocketStream::new(&wpt.url(scheme, "/echo"), options).unwrap();
        let mut opened = ws.opened().await.unwrap();
        signal.cancel();
        opened.writable.send(Message::text("connected")).await.unwrap();
        assert_eq!(opened.readable.next().await.unwrap().unwrap(), Message::text("connected"));
        ws.close(CloseInfo::default()).unwrap();
        assert!(ws.closed().await.is_ok());
    }
}

// ----- write.any.js -----

wpt! {
    /// `write.any.js`: `/echo_exit` closes after "Goodbye"; an 8 MiB write queued right after
    /// it: `closed` rejects with a WebSocketError (the server closed with data unsent), the big
    /// write rejects with InvalidStateError, and a later write rejects with that same error.
    fn write(wpt, scheme) {
        let (ws, mut opened) = open(&wpt, scheme, "/echo_exit", &[]).await;
        opened.writable.send(Message::text("Goodbye")).await.unwrap();
        let big = Message::binary(vec![0u8; 8 * MIB]);
        let (write, closed) = tokio::join!(opened.writable.send(big), ws.closed());
        let closed = closed.expect_err("closed should reject: data was left unwritten");
        assert_eq!(closed.name(), "WebSocketError");
        let write = write.unwrap_err();
        assert_eq!(write.name(), "InvalidStateError");
        let later = opened.writable.send(Message::text("word")).await.unwrap_err();
        assert_eq!(later, write);
    }
}

wpt! {
    /// `write.any.js`, "dropping everything with pending writes": 20 writes of 100000 bytes
    /// pending (behind 8 MiB the socket cannot take) towards a server that is not reading, then
    /// every handle dropped: no panic, and the runtime carries on.
    fn write_drop_with_pending_writes(wpt, scheme) {
        let (ws, Opened { readable, mut writable, .. }) =
            open(&wpt, scheme, "/receive-backpressure", &[]).await;
        let pending = async {
            // More than the socket buffers hold, so that the 20 writes after it wait.
            writable.feed(Message::binary(vec![0u8; 8 * MIB])).await.unwrap();
            for _ in 0..20 {
                writable.feed(Message::binary(vec![0u8; 100_000])).await.unwrap();
            }
            writable.flush().await.unwrap();
        };
        // Some of the writes are still pending when the handles go.
        let finished = tokio::time::timeout(Duration::from_millis(100), pending).await;
        assert!(finished.is_err(), "no write was pending");
        drop((ws, readable, writable));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Still working: a new connection echoes.
        let (_ws, mut opened) = open(&wpt, scheme, "/echo", &[]).await;
        opened.writable.send(Message::text("alive")).await.unwrap();
        assert_eq!(opened.readable.next().await.unwrap().unwrap(), Message::text("alive"));
    }
}

// ----- backpressure-send.any.js / backpressure-receive.any.js -----

wpt! {
    /// `backpressure-send.any.js`: `/receive-backpressure` reads nothing for 2 s; an 8 MiB
    /// write resolves only once the network has taken it: ≥ 1800 ms.
    fn backpressure_send(wpt, scheme) {
        let (_ws, mut opened) = open(&wpt, scheme, "/receive-backpressure", &[]).await;
        let start = Instant::now();
        opened.writable.send(Message::binary(vec![0u8; 8 * MIB])).await.unwrap();
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(1800), "the write resolved after {elapsed:?}");
    }
}

wpt! {
    /// `backpressure-receive.any.js`: `/send-backpressure` sends an empty message, 16 × 1 MiB
    /// and then how long that took; nothing is read for 2 s, so the socket must not be read
    /// either and the server's sends take ≥ 1.8 s.
    fn backpressure_receive(wpt, scheme) {
        let (_ws, mut opened) = open(&wpt, scheme, "/send-backpressure", &[]).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let first = opened.readable.next().await.unwrap().unwrap();
        assert_eq!(first, Message::binary(Bytes::new()));
        for i in 0..16 {
            let message = opened.readable.next().await.unwrap().unwrap();
            assert!(!message.is_text(), "message {i}");
            assert_eq!(message.len(), MIB, "message {i}");
        }
        let timing = opened.readable.next().await.unwrap().unwrap();
        let Message::Text(seconds) = timing else {
            panic!("expected the timing text, got {timing:?}");
        };
        let seconds: f64 = seconds.as_str().parse().unwrap();
        assert!(seconds >= 1.8, "the server sent 16 MiB in {seconds} s");
    }
}

// ----- websocket-error.any.js -----

/// `websocket-error.any.js` (no network): a default WebSocketError has no code and an empty
/// reason; code and reason are kept; codes 999, 1001, 2999 and 5000 throw InvalidAccessError;
/// a reason alone means 1000; a reason over 123 UTF-8 bytes throws SyntaxError (32 × "🔌" is
/// 32 characters but 128 bytes).
#[test]
fn websocket_error() {
    let error = WebSocketError::default();
    assert_eq!(error.name(), "WebSocketError");
    assert_eq!(error.close_code(), None);
    assert_eq!(error.reason(), "");
    assert!(error.failure().is_none());

    let error = WebSocketError::new(Some(3456), "reason").unwrap();
    assert_eq!((error.close_code(), error.reason()), (Some(3456), "reason"));

    for code in [999, 1001, 2999, 5000] {
        let error = WebSocketError::new(Some(code), "").unwrap_err();
        assert_eq!(error.name(), "InvalidAccessError", "{code}");
    }

    let error = WebSocketError::new(Some(3333), "").unwrap();
    assert_eq!((error.close_code(), error.reason()), (Some(3333), ""));

    let error = WebSocketError::new(None, "specified").unwrap();
    assert_eq!(
        (error.close_code(), error.reason()),
        (Some(1000), "specified")
    );

    let error = WebSocketError::new(Some(1000), "x".repeat(124)).unwrap_err();
    assert_eq!(error.name(), "SyntaxError");
    let plugs = "🔌".repeat(32);
    assert_eq!((plugs.chars().count(), plugs.len()), (32, 128));
    assert_eq!(
        WebSocketError::new(None, plugs).unwrap_err().name(),
        "SyntaxError"
    );
}

// ----- read.any.js -----

wpt! {
    /// `read.any.js`: a 16-byte binary write to ECHO reads back as 16 bytes of binary.
    fn read(wpt, scheme) {
        let (ws, mut opened) = open(&wpt, scheme, "/echo", &[]).await;
        let bytes: Vec<u8> = (0..16).collect();
        opened.writable.send(Message::binary(bytes.clone())).await.unwrap();
        let message = opened.readable.next().await.unwrap().unwrap();
        assert!(!message.is_text());
        assert_eq!(message.len(), 16);
        assert_eq!(message.as_bytes(), bytes.as_slice());
        ws.close(CloseInfo::default()).unwrap();
        assert!(ws.closed().await.is_ok());
    }
}
