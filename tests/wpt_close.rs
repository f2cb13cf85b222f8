//! web-platform-tests `websockets/Close-*.any.js`, `close-invalid.any.js` and
//! `interfaces/WebSocket/close/close-connecting*`: `close()` validation and the close event.
//! Each test names the upstream file it mirrors and runs over `ws://` and `wss://`.

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::time::{Duration, Instant};

use client::{types, watch};
use whatwg_websocket::{ReadyState, WebSocket};

const QUIET: Duration = Duration::from_millis(50);

/// Opens `path` and closes it with `code` and `reason` once open; returns the close event.
async fn close_after_open(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    code: Option<u16>,
    reason: Option<&str>,
) -> client::Seen {
    let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
    let mut events = watch(&ws);
    events.expect("open").await;
    ws.close(code, reason).unwrap();
    let close = events.expect("close").await;
    events.assert_quiet(QUIET).await;
    close
}

/// Opens an echo socket and asserts that `close(code, reason)` throws `name` and has no effect.
async fn close_throws(
    wpt: &server::Wpt,
    scheme: server::Scheme,
    code: Option<u16>,
    reason: Option<&str>,
    name: &str,
) {
    let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
    let mut events = watch(&ws);
    events.expect("open").await;
    assert_eq!(ws.close(code, reason).unwrap_err().name(), name);
    assert_eq!(ws.ready_state(), ReadyState::Open);
    events.assert_quiet(QUIET).await;
    // Still usable.
    ws.send("still open").unwrap();
    assert_eq!(events.expect("message").await.text(), Some("still open"));
}

wpt! {
    /// `Close-1000.any.js`: close(1000) closes cleanly; readyState is CLOSED at the close event.
    fn close_1000(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, Some(1000), None).await;
        assert_eq!(close.ready_state, ReadyState::Closed);
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `Close-1000-reason.any.js`.
    fn close_1000_reason(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, Some(1000), Some("Clean Close")).await;
        assert_eq!(close.ready_state, ReadyState::Closed);
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `Close-1000-verify-code.any.js`: the echoed code and reason reach the close event.
    fn close_1000_verify_code(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, Some(1000), Some("Clean Close")).await;
        assert_eq!((close.event.code(), close.event.reason()), (1000, "Clean Close"));
    }
}

wpt! {
    /// `Close-1005.any.js`: close(1005) throws InvalidAccessError and leaves the socket open.
    fn close_1005(wpt, scheme) {
        close_throws(&wpt, scheme, Some(1005), Some("1005 - reserved code"), "InvalidAccessError").await;
    }
}

wpt! {
    /// `Close-1005-verify-code.any.js`: close() without a code reports 1005 and "".
    fn close_1005_verify_code(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, None, None).await;
        assert_eq!((close.event.code(), close.event.reason()), (1005, ""));
    }
}

wpt! {
    /// `Close-2999-reason.any.js`.
    fn close_2999_reason(wpt, scheme) {
        close_throws(&wpt, scheme, Some(2999), Some("Close not in range 3000-4999"), "InvalidAccessError").await;
    }
}

wpt! {
    /// `Close-3000-reason.any.js`.
    fn close_3000_reason(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, Some(3000), Some("Clean Close with code - 3000")).await;
        assert_eq!(close.ready_state, ReadyState::Closed);
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `Close-3000-verify-code.any.js`.
    fn close_3000_verify_code(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, Some(3000), Some("Clean Close")).await;
        assert_eq!(close.event.code(), 3000);
    }
}

wpt! {
    /// `Close-4999-reason.any.js` (upstream closes with 3000; 4999 is checked too).
    fn close_4999_reason(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, Some(3000), Some("Clean Close with code - 4999")).await;
        assert!(close.event.was_clean());
        let close = close_after_open(&wpt, scheme, Some(4999), Some("Clean Close with code - 4999")).await;
        assert_eq!((close.event.code(), close.ready_state), (4999, ReadyState::Closed));
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `Close-Reason-124Bytes.any.js`: a 124-byte reason throws SyntaxError.
    fn close_reason_124_bytes(wpt, scheme) {
        let reason = "0123456789".repeat(12) + "0123";
        assert_eq!(reason.len(), 124);
        close_throws(&wpt, scheme, Some(1000), Some(&reason), "SyntaxError").await;
        // Counted in UTF-8 bytes: 62 two-byte characters are 124 bytes.
        close_throws(&wpt, scheme, Some(1000), Some(&"é".repeat(62)), "SyntaxError").await;
    }
}

wpt! {
    /// `Close-onlyReason.any.js`: `close("reason")` converts the string to code 0, which
    /// throws InvalidAccessError.
    fn close_only_reason(wpt, scheme) {
        close_throws(&wpt, scheme, Some(0), Some("Close with only reason"), "InvalidAccessError").await;
    }
}

wpt! {
    /// `Close-undefined.any.js`: close() with no code closes.
    fn close_undefined(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, None, None).await;
        assert_eq!(close.event_type(), "close");
    }
}

wpt! {
    /// `Close-readyState-Closed.any.js`.
    fn close_ready_state_closed(wpt, scheme) {
        let close = close_after_open(&wpt, scheme, None, None).await;
        assert_eq!(close.ready_state, ReadyState::Closed);
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `Close-readyState-Closing.any.js`: CLOSING right after close(), before any event.
    fn close_ready_state_closing(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.close(None, None).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        events.expect("close").await;
    }
}

wpt! {
    /// `Close-server-initiated-close.any.js`: the echo handler closes after "Goodbye"; the
    /// client answers and the close is clean.
    fn close_server_initiated_close(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.send("Goodbye").unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["message", "close"]);
        assert_eq!(all[1].ready_state, ReadyState::Closed);
        assert!(all[1].event.was_clean());
        assert_eq!(all[1].event.code(), 1000);
    }
}

wpt! {
    /// `Close-delayed.any.js`: the close event waits for the server's Close (sent 1 s late).
    fn close_delayed(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/delayed-passive-close"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        let start = Instant::now();
        ws.close(None, None).unwrap();
        let close = events.expect("close").await;
        assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());
        assert_eq!(close.ready_state, ReadyState::Closed);
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `close-invalid.any.js`: while connecting, close(0), close(500), and the values the web
    /// converts to 0 (NaN, "string", null) or clamps to 65535 (66536) throw InvalidAccessError
    /// and fire nothing.
    fn close_invalid(wpt, scheme) {
        for code in [0, 500, 65535] {
            let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
            let mut events = watch(&ws);
            assert_eq!(ws.close(Some(code), None).unwrap_err().name(), "InvalidAccessError");
            assert_eq!(ws.ready_state(), ReadyState::Connecting);
            assert_eq!(events.expect("open").await.ready_state, ReadyState::Open);
        }
    }
}

wpt! {
    /// `interfaces/WebSocket/close/close-connecting.html`: a socket still connecting after
    /// 1 s (the server stalls its 101) is CLOSING after close(), then closes uncleanly
    /// without `open`.
    fn close_connecting(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/sleep_10_v13"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(ws.ready_state(), ReadyState::Connecting);
        ws.close(None, None).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        let all = events.until_close().await;
        assert_eq!(types(&all), ["error", "close"]);
        let close = &all[1];
        assert_eq!(close.ready_state, ReadyState::Closed);
        assert!(!close.event.was_clean());
        assert_eq!(close.event.code(), 1006);
    }
}

wpt! {
    /// `interfaces/WebSocket/close/close-connecting-async.any.js`: close() at once while
    /// connecting: CLOSING now; exactly one `error` then one `close`, both after close()
    /// returned.
    fn close_connecting_async(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/handshake_sleep_2"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        assert_eq!(ws.ready_state(), ReadyState::Connecting);
        ws.close(None, None).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        // Nothing was fired from inside close(): the channel is still empty.
        assert!(events.is_empty());
        let all = events.until_close().await;
        assert_eq!(types(&all), ["error", "close"]);
        assert_eq!(all[0].ready_state, ReadyState::Closed);
        assert_eq!(all[1].ready_state, ReadyState::Closed);
        assert!(!all[1].event.was_clean());
        events.assert_quiet(QUIET).await;
    }
}
