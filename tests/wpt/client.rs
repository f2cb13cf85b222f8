//! Client-side helpers for the `WebSocket` tests: every event, with the `readyState` seen
//! while it was dispatched, in a channel the test reads in order; and the test macro that runs
//! a body against both `ws://` and `wss://`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use tokio::sync::mpsc;
use whatwg_websocket::{Event, MessageData, ReadyState, WebSocket};

/// An event and the `readyState` during its dispatch.
#[derive(Clone, Debug)]
pub struct Seen {
    pub event: Event,
    pub ready_state: ReadyState,
}

impl Seen {
    pub fn event_type(&self) -> &str {
        self.event.event_type()
    }

    pub fn text(&self) -> Option<&str> {
        self.event.data().and_then(MessageData::as_text)
    }
}

/// The events of one socket, in dispatch order.
pub struct Events {
    rx: mpsc::UnboundedReceiver<Seen>,
}

/// Listens for open, message, error and close on `ws`.
pub fn watch(ws: &WebSocket) -> Events {
    let (tx, rx) = mpsc::unbounded_channel();
    for event_type in ["open", "message", "error", "close"] {
        let tx = tx.clone();
        let weak = ws.downgrade();
        ws.add_event_listener(event_type, move |event: &Event| {
            let ready_state = weak
                .upgrade()
                .map_or(ReadyState::Closed, |ws| ws.ready_state());
            let _ = tx.send(Seen {
                event: event.clone(),
                ready_state,
            });
        });
    }
    Events { rx }
}

impl Events {
    /// The next event (waits at most 20 s).
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(super::server::LIMIT, self.rx.recv())
            .await
            .expect("timed out waiting for an event")
            .expect("the socket dropped its listeners")
    }

    /// The next event, which must be of type `event_type`.
    pub async fn expect(&mut self, event_type: &str) -> Seen {
        let seen = self.next().await;
        assert_eq!(seen.event_type(), event_type, "{seen:?}");
        seen
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Every event up to and including `close`.
    pub async fn until_close(&mut self) -> Vec<Seen> {
        let mut all = Vec::new();
        loop {
            let seen = self.next().await;
            let done = seen.event_type() == "close";
            all.push(seen);
            if done {
                return all;
            }
        }
    }

    /// Asserts that no event comes within `period` (e.g. a second close event: upstream's
    /// "single close" checks wait 50 ms).
    pub async fn assert_quiet(&mut self, period: Duration) {
        if let Ok(Some(seen)) = tokio::time::timeout(period, self.rx.recv()).await {
            panic!("unexpected event {seen:?}");
        }
    }
}

/// The types of `events`, in order.
pub fn types(events: &[Seen]) -> Vec<&str> {
    events.iter().map(Seen::event_type).collect()
}

/// `wpt! { /// docs  fn name(wpt, scheme) { body } }`: a Tokio test that starts the handlers
/// and runs `body` with `scheme` = `Scheme::Ws`, `Scheme::Wss`, then `Scheme::H2` (`wss` over
/// HTTP/2).
macro_rules! wpt {
    ($(#[$meta:meta])* fn $name:ident($wpt:ident, $scheme:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test]
        async fn $name() {
            let $wpt = server::Wpt::start().await;
            for $scheme in server::SCHEMES {
                server::within(async { $body }).await;
            }
        }
    };
}
