//! web-platform-tests `websockets/Create-*.any.js`: the constructor's URL and protocol checks,
//! and `protocol` / `extensions` before and after the opening. Each test names the upstream
//! file it mirrors and runs over `ws://` and `wss://`.
//!
//! Not mirrored: `Create-non-absolute-url.any.js` resolves relative inputs against the page's
//! URL, and the Rust constructor has no base URL.

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::sync::{Arc, Mutex};

use client::{types, watch};
use whatwg_websocket::{Event, ReadyState, WebSocket};

/// Asserts that `new WebSocket(url, protocols)` throws SyntaxError.
fn assert_syntax_error(wpt: &server::Wpt, url: &str, protocols: &[&str]) {
    let error = WebSocket::new(url, wpt.init(protocols)).expect_err(url);
    assert_eq!(error.name(), "SyntaxError", "{url} {protocols:?}: {error}");
}

/// The page origin upstream builds some URLs from: `http://` for `ws://`, `https://` for
/// `wss://`, same host and port.
fn http_origin(wpt: &server::Wpt, scheme: server::Scheme) -> String {
    match scheme {
        server::Scheme::Ws => wpt.origin(scheme).replacen("ws://", "http://", 1),
        server::Scheme::Wss | server::Scheme::H2 => {
            wpt.origin(scheme).replacen("wss://", "https://", 1)
        }
    }
}

wpt! {
    /// `Create-invalid-urls.any.js`: a space in the host, a scheme other than ws/wss/http/https,
    /// and any fragment (even an empty one) throw SyntaxError.
    fn create_invalid_urls(wpt, scheme) {
        let origin = wpt.origin(scheme);
        let host = origin.split("://").nth(1).unwrap().to_owned();
        let page = http_origin(&wpt, scheme);
        let inputs = [
            "ws://foo bar.com/".to_owned(),
            "wss://foo bar.com/".to_owned(),
            format!("ftp://{host}/"),
            "mailto:example@example.org".to_owned(),
            "about:blank".to_owned(),
            // Built from the page origin (http, which would otherwise become ws) ...
            format!("{page}/#"),
            format!("{page}/#test"),
            // ... and from SCHEME_DOMAIN_PORT.
            format!("{origin}/#"),
            format!("{origin}/#test"),
            format!("{origin}/echo#"),
            "#test".to_owned(),
        ];
        for input in &inputs {
            assert_syntax_error(&wpt, input, &[]);
        }
    }
}

wpt! {
    /// `Create-http-urls.any.js`: `http:` becomes `ws:` and `https:` becomes `wss:`, the rest of
    /// the URL unchanged; the socket is closed at once. (Also: the rewritten URL connects.)
    fn create_http_urls(wpt, scheme) {
        let input = format!("{}/", http_origin(&wpt, scheme));
        let expected = format!("{}/", wpt.origin(scheme));
        let ws = WebSocket::new(&input, wpt.init(&[])).unwrap();
        assert_eq!(ws.url(), expected);
        ws.close(None, None).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);

        let ws = WebSocket::new(&input, wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        assert_eq!(ws.url(), expected);
        assert_eq!(events.expect("open").await.ready_state, ReadyState::Open);
        ws.close(None, None).unwrap();
        let close = events.expect("close").await;
        assert!(close.event.was_clean());
    }
}

wpt! {
    /// `Create-url-with-space.any.js`: `scheme://web platform.test:port/echo` throws SyntaxError.
    fn create_url_with_space(wpt, scheme) {
        let url = wpt.url(scheme, "/echo").replacen("127.0.0.1", "web platform.test", 1);
        assert!(url.contains("web platform.test:"), "{url}");
        assert_syntax_error(&wpt, &url, &[]);
    }
}

wpt! {
    /// `Create-protocols-repeated.any.js`: protocols `["echo", "echo"]` throw SyntaxError.
    fn create_protocols_repeated(wpt, scheme) {
        assert_syntax_error(&wpt, &wpt.url(scheme, "/echo"), &["echo", "echo"]);
    }
}

wpt! {
    /// `Create-protocols-repeated-case-insensitive.any.js`: protocols `["echo", "eCho"]` throw
    /// SyntaxError (duplicates are compared ASCII case-insensitively).
    fn create_protocols_repeated_case_insensitive(wpt, scheme) {
        assert_syntax_error(&wpt, &wpt.url(scheme, "/echo"), &["echo", "eCho"]);
    }
}

wpt! {
    /// `Create-protocol-with-space.any.js`: protocol `"ec ho"` throws SyntaxError.
    fn create_protocol_with_space(wpt, scheme) {
        assert_syntax_error(&wpt, &wpt.url(scheme, "/echo"), &["ec ho"]);
    }
}

wpt! {
    /// `Create-nonAscii-protocol-string.any.js`: protocol `"\u0080echo"` throws SyntaxError.
    fn create_non_ascii_protocol_string(wpt, scheme) {
        assert_syntax_error(&wpt, &wpt.url(scheme, "/echo"), &["\u{0080}echo"]);
    }
}

wpt! {
    /// `Create-valid-url-protocol-empty.any.js`: while connecting, `protocol` is `""` even though
    /// "echo" was offered.
    fn create_valid_url_protocol_empty(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&["echo"])).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Connecting);
        assert_eq!(ws.protocol(), "");
        ws.close(None, None).unwrap();
        assert_eq!(ws.protocol(), "");
    }
}

wpt! {
    /// `Create-valid-url-protocol-setCorrectly.any.js`: at `open`, `protocol` is the "echo" the
    /// server selected; closing after that is clean.
    fn create_valid_url_protocol_set_correctly(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&["echo"])).unwrap();
        let seen_at_open = Arc::new(Mutex::new(None));
        {
            let seen_at_open = seen_at_open.clone();
            let weak = ws.downgrade();
            ws.add_event_listener("open", move |_: &Event| {
                *seen_at_open.lock().unwrap() = weak.upgrade().map(|ws| ws.protocol());
            });
        }
        let mut events = watch(&ws);
        events.expect("open").await;
        assert_eq!(seen_at_open.lock().unwrap().as_deref(), Some("echo"));
        assert_eq!(ws.protocol(), "echo");
        ws.close(None, None).unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"]);
        assert!(all[0].event.was_clean());
    }
}

wpt! {
    /// `Create-extensions-empty.any.js`: the server (`/handshake_no_extensions`) accepts no
    /// extension, so `extensions` is `""` when open and still `""` after close().
    fn create_extensions_empty(wpt, scheme) {
        let ws =
            WebSocket::new(&wpt.url(scheme, "/handshake_no_extensions"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        assert_eq!(ws.extensions(), "");
        ws.close(None, None).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        assert_eq!(ws.extensions(), "");
        let close = events.expect("close").await;
        assert!(close.event.was_clean());
        assert_eq!(ws.extensions(), "");
    }
}
