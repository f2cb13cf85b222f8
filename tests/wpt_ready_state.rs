//! web-platform-tests `websockets/interfaces/WebSocket/readyState/`: the value of `readyState`
//! in each phase of a connection. Each test names the upstream file it mirrors and runs over
//! `ws://` and `wss://`.
//!
//! Not mirrored (JavaScript property semantics, nothing a Rust client has):
//! - `002.html`: assigning to `readyState` is ignored (Rust: there is no setter).
//! - `004.html`, `005.html`: redefining the getter / setter on the prototype.

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::time::Duration;

use client::{types, watch};
use tokio::sync::mpsc;
use whatwg_websocket::{ReadyState, WebSocket};

const QUIET: Duration = Duration::from_millis(50);

wpt! {
    /// `001.html`: a new socket is CONNECTING (0) at once.
    fn ready_state_001_connecting(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Connecting);
        assert_eq!(ws.ready_state().as_u16(), 0);
        assert_eq!(WebSocket::CONNECTING, ReadyState::Connecting);
    }
}

wpt! {
    /// `003.html`: close() while connecting makes it CLOSING (2) at once (the delete parts of
    /// the upstream test are JavaScript-only); the failed opening then fires error and close.
    fn ready_state_003_closing_after_close(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        ws.close(None, None).unwrap();
        assert_eq!(ws.ready_state(), ReadyState::Closing);
        assert_eq!(ws.ready_state().as_u16(), 2);
        let all = events.until_close().await;
        assert_eq!(types(&all), ["error", "close"]);
        assert_eq!(ws.ready_state(), ReadyState::Closed);
    }
}

wpt! {
    /// `006.html`: OPEN (1) inside the open handler; no error, message or close before it.
    fn ready_state_006_open_in_onopen(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        let open = events.next().await;
        assert_eq!(open.event_type(), "open", "{open:?}");
        assert_eq!(open.ready_state, ReadyState::Open);
        assert_eq!(open.ready_state.as_u16(), 1);
        ws.close(None, None).unwrap();
        let rest = events.until_close().await;
        assert_eq!(types(&rest), ["close"]);
    }
}

wpt! {
    /// `007.html`: close() called inside the open handler makes it CLOSING (2) synchronously.
    fn ready_state_007_closing_in_onopen(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let weak = ws.downgrade();
        ws.set_onopen(move |_: &whatwg_websocket::Event| {
            let ws = weak.upgrade().unwrap();
            let before = ws.ready_state();
            let closed = ws.close(None, None);
            let _ = tx.send((before, closed, ws.ready_state()));
        });
        let mut events = watch(&ws);
        let (before, closed, after) = server::within(rx.recv()).await.unwrap();
        assert_eq!(before, ReadyState::Open);
        assert_eq!(closed, Ok(()));
        assert_eq!(after, ReadyState::Closing);
        let all = events.until_close().await;
        assert_eq!(types(&all), ["open", "close"]);
    }
}

wpt! {
    /// `008.html`: the onclose handler set in onopen (just before close()) sees CLOSED (3); no
    /// error or message event fires.
    fn ready_state_008_closed_in_onclose(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let weak = ws.downgrade();
        ws.set_onopen(move |_: &whatwg_websocket::Event| {
            let ws = weak.upgrade().unwrap();
            let tx = tx.clone();
            let inner = ws.downgrade();
            ws.set_onclose(move |event: &whatwg_websocket::Event| {
                let state = inner.upgrade().map(|ws| ws.ready_state());
                let _ = tx.send((state, event.was_clean()));
            });
            ws.close(None, None).unwrap();
        });
        let mut events = watch(&ws);
        let (state, was_clean) = server::within(rx.recv()).await.unwrap();
        assert_eq!(state, Some(ReadyState::Closed));
        assert_eq!(state.unwrap().as_u16(), 3);
        assert!(was_clean);
        let all = events.until_close().await;
        assert_eq!(types(&all), ["open", "close"]);
        events.assert_quiet(QUIET).await;
    }
}
