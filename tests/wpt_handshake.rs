//! web-platform-tests `websockets/closing-handshake/` and `websockets/opening-handshake/`.
//! Each test names the upstream file it mirrors and runs over `ws://` and `wss://`.
//!
//! Upstream checks "single close" by waiting 50 ms after the first close event for a second.

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::sync::Arc;
use std::time::Duration;

use client::{types, watch};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use whatwg_websocket::dispatcher::{DispatchFuture, Dispatcher, upgrade_http1};
use whatwg_websocket::handshake::HandshakeRequest;
use whatwg_websocket::{Event, EventInterface, Failure, ReadyState, WebSocket, WebSocketInit};

const QUIET: Duration = Duration::from_millis(50);

// ----- closing-handshake/ -----

/// Opens `path`, sends "Goodbye" once open (the handler then closes without echoing), and
/// asserts a clean close with nothing in between.
async fn goodbye_then_server_close(wpt: &server::Wpt, scheme: server::Scheme, path: &str) {
    let ws = WebSocket::new(&wpt.url(scheme, path), wpt.init(&[])).unwrap();
    let mut events = watch(&ws);
    events.expect("open").await;
    ws.send("Goodbye").unwrap();
    let all = events.until_close().await;
    assert_eq!(types(&all), ["close"], "{all:?}");
    let close = &all[0];
    assert!(close.event.was_clean(), "{close:?}");
    assert_eq!(close.event.code(), 1000);
    assert_eq!(close.ready_state, ReadyState::Closed);
    events.assert_quiet(QUIET).await;
}

wpt! {
    /// `closing-handshake/002.html`: the server starts the closing handshake (`/echo_exit`
    /// after "Goodbye"); the close is clean; no message, no error; a single close.
    fn closing_handshake_002_server_sends(wpt, scheme) {
        goodbye_then_server_close(&wpt, scheme, "/echo_exit").await;
    }
}

wpt! {
    /// `closing-handshake/003.html`: the client starts it with close(): code 1005, clean; no
    /// message, no error; a single close.
    fn closing_handshake_003_client_sends(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.close(None, None).unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"], "{all:?}");
        assert_eq!(all[0].event.code(), 1005);
        assert_eq!(all[0].event.reason(), "");
        assert!(all[0].event.was_clean());
        events.assert_quiet(QUIET).await;
    }
}

wpt! {
    /// `closing-handshake/004.html`: `/echo_close_data` closes after "Goodbye" without sending
    /// data: clean; no message, no error; a single close.
    fn closing_handshake_004_data_after_closing_handshake(wpt, scheme) {
        goodbye_then_server_close(&wpt, scheme, "/echo_close_data").await;
    }
}

// ----- opening-handshake/ -----

wpt! {
    /// `opening-handshake/001.html`: `/invalid` answers `FOO BAR BAZ`: the opening fails, so
    /// error then a close with `wasClean` false (1006); never open or message; a single close.
    fn opening_handshake_001_invalid(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/invalid"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        let all = events.until_close().await;
        assert_eq!(types(&all), ["error", "close"], "{all:?}");
        let close = &all[1];
        assert!(!close.event.was_clean());
        assert_eq!(close.event.code(), 1006);
        assert_eq!(close.ready_state, ReadyState::Closed);
        let failure = close.event.error().and_then(|e| e.failure());
        if scheme == server::Scheme::H2 {
            // HTTP/2 cannot carry a head that is not HTTP: the handler's answer resets the
            // stream before any response.
            assert!(matches!(failure, Some(Failure::Io(_))), "{close:?}");
        } else {
            assert!(matches!(failure, Some(Failure::Handshake(_))), "{close:?}");
        }
        events.assert_quiet(QUIET).await;
    }
}

wpt! {
    /// `opening-handshake/002.html`: a valid handshake opens; onclose set in onopen, then
    /// close(): clean; no error or message; a single close.
    fn opening_handshake_002_valid(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let weak = ws.downgrade();
        ws.set_onopen(move |_: &Event| {
            let ws = weak.upgrade().unwrap();
            let tx = tx.clone();
            ws.set_onclose(move |event: &Event| {
                let _ = tx.send(event.clone());
            });
            ws.close(None, None).unwrap();
        });
        let mut events = watch(&ws);
        let close = server::within(rx.recv()).await.unwrap();
        assert!(close.was_clean(), "{close:?}");
        let all = events.until_close().await;
        assert_eq!(types(&all), ["open", "close"], "{all:?}");
        events.assert_quiet(QUIET).await;
    }
}

/// A dispatcher that connects every URL to 127.0.0.1 at the URL's port (the handlers' server),
/// whatever its host: a name like `天気の良い日.web-platform.test` does not resolve here. Over
/// `wss`, it verifies the test server's certificate (`localhost`).
struct Loopback {
    tls: Arc<rustls::ClientConfig>,
}

impl Dispatcher for Loopback {
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture {
        let tls = self.tls.clone();
        Box::pin(async move {
            let (_, port) = request.host_and_port();
            let tcp = TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(Failure::Io)?;
            if request.is_secure() {
                let name = ServerName::try_from("localhost").unwrap();
                let tls = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await
                    .map_err(Failure::Io)?;
                upgrade_http1(tls, &request, 65536).await
            } else {
                upgrade_http1(tcp, &request, 65536).await
            }
        })
    }
}

wpt! {
    /// `opening-handshake/003.html`: a host with an IDN label is punycoded, in `url()` and in
    /// the message event's `origin` (the serialized origin of the ws URL). `/origin` sends back
    /// the request's `Origin`: a browser sends the page's origin; a Rust client sends the one
    /// it is given (upstream's `e.data` check, with a configured header). Then a clean close.
    fn opening_handshake_003_origin(wpt, scheme) {
        if scheme == server::Scheme::H2 {
            // The loopback dispatcher below speaks HTTP/1.1 only (upstream has no h2 variant).
            return;
        }
        let server = url::Url::parse(&wpt.url(scheme, "/")).unwrap();
        let port = server.port().unwrap();
        let (ws_scheme, http_scheme) = match scheme {
            server::Scheme::Ws => ("ws", "http"),
            server::Scheme::Wss | server::Scheme::H2 => ("wss", "https"),
        };
        let url = format!("{ws_scheme}://天気の良い日.web-platform.test:{port}/origin");
        let page_origin = format!("{http_scheme}://web-platform.test:{port}");
        let mut init = WebSocketInit {
            dispatcher: Some(Arc::new(Loopback {
                tls: Arc::new(server::tls_client_config()),
            })),
            ..Default::default()
        };
        init.headers.insert("origin", page_origin.parse().unwrap());
        let ws = WebSocket::new(&url, init).unwrap();
        let punycoded = format!("{ws_scheme}://xn--n8j6ds53lwwkrqhv28a.web-platform.test:{port}");
        assert_eq!(ws.url(), format!("{punycoded}/origin"));
        let mut events = watch(&ws);
        events.expect("open").await;
        let message = events.expect("message").await;
        assert_eq!(message.event.interface(), EventInterface::MessageEvent);
        assert_eq!(message.event.origin(), punycoded);
        assert_eq!(message.text(), Some(page_origin.as_str()));
        ws.close(None, None).unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"], "{all:?}");
        assert!(all[0].event.was_clean());
    }
}

wpt! {
    /// `opening-handshake/005.html`: the 101 and the server's Close (1001 "PASS") arrive in
    /// one packet (`/simple_handshake`). open fires; close() in onopen (the server's Close
    /// is already buffered): the close event reports the server's 1001 "PASS", clean; no
    /// message; a single close.
    fn opening_handshake_005_response_and_close_in_one_packet(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/simple_handshake"), wpt.init(&[])).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let weak = ws.downgrade();
        ws.set_onopen(move |_: &Event| {
            let ws = weak.upgrade().unwrap();
            let tx = tx.clone();
            ws.set_onclose(move |event: &Event| {
                let _ = tx.send(event.clone());
            });
            ws.close(None, None).unwrap();
        });
        let mut events = watch(&ws);
        let close = server::within(rx.recv()).await.unwrap();
        assert!(close.was_clean(), "{close:?}");
        assert_eq!(close.code(), 1001);
        assert_eq!(close.reason(), "PASS");
        let all = events.until_close().await;
        assert_eq!(types(&all), ["open", "close"], "{all:?}");
        events.assert_quiet(QUIET).await;
    }
}

wpt! {
    /// `opening-handshake/006.html`: connection attempts one after another, each started after
    /// the previous close event: `/invalid1`, `/invalid2`, `/invalid3` (404: error, then close
    /// with `wasClean` false), then `/echo` (open, close(), clean).
    fn opening_handshake_006_serialized_attempts(wpt, scheme) {
        for path in ["/invalid1", "/invalid2", "/invalid3"] {
            let ws = WebSocket::new(&wpt.url(scheme, path), wpt.init(&[])).unwrap();
            let mut events = watch(&ws);
            let all = events.until_close().await;
            assert_eq!(types(&all), ["error", "close"], "{path}: {all:?}");
            assert!(!all[1].event.was_clean(), "{path}");
            assert_eq!(all[1].event.code(), 1006, "{path}");
            assert_eq!(ws.ready_state(), ReadyState::Closed);
        }
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.close(None, None).unwrap();
        let all = events.until_close().await;
        assert_eq!(types(&all), ["close"], "{all:?}");
        assert!(all[0].event.was_clean());
    }
}
