//! web-platform-tests `websockets/eventhandlers.any.js` and
//! `websockets/interfaces/WebSocket/events/`: the `on*` handler attributes, listeners, their
//! order, and the events of a connection the server breaks. Each test names the upstream file
//! it mirrors and runs over `ws://` and `wss://`.
//!
//! Not mirrored (JavaScript-only: property existence and value coercion):
//! - `006.html`: the `on*` properties exist on the object (Rust: they are methods).
//! - `011.html`, `012.html`: assigning a non-callable (`1`, `";"`) reads back null (Rust: a
//!   handler is an `EventListener` or nothing; clearing is `clear_on*`, tested by 010/014).
//! - `013.html`: a `{handleEvent}` object as a handler attribute (Rust: no such objects).

#[path = "wpt/client.rs"]
#[macro_use]
mod client;
#[path = "wpt/server.rs"]
mod server;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use client::{Seen, types, watch};
use whatwg_websocket::{
    CloseEventInit, Event, EventInterface, EventListener, MessageData, MessageEventInit,
    ReadyState, WebSocket,
};

const QUIET: Duration = Duration::from_millis(50);

const KINDS: [&str; 4] = ["open", "message", "error", "close"];

/// `on<kind>`.
fn handler(ws: &WebSocket, kind: &str) -> Option<EventListener> {
    match kind {
        "open" => ws.onopen(),
        "message" => ws.onmessage(),
        "error" => ws.onerror(),
        "close" => ws.onclose(),
        _ => unreachable!(),
    }
}

/// `on<kind> = listener`.
fn set_handler(ws: &WebSocket, kind: &str, listener: EventListener) {
    match kind {
        "open" => ws.set_onopen(listener),
        "message" => ws.set_onmessage(listener),
        "error" => ws.set_onerror(listener),
        "close" => ws.set_onclose(listener),
        _ => unreachable!(),
    }
}

/// `on<kind> = null`.
fn clear_handler(ws: &WebSocket, kind: &str) {
    match kind {
        "open" => ws.clear_onopen(),
        "message" => ws.clear_onmessage(),
        "error" => ws.clear_onerror(),
        "close" => ws.clear_onclose(),
        _ => unreachable!(),
    }
}

/// A listener that counts its calls.
fn counting() -> (EventListener, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let listener = EventListener::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    (listener, count)
}

/// Whether `got` is the very listener `set` (a [`counting`] listener with `count`): `got` runs
/// `set`'s callback, and the EventTarget, which does not register one listener twice for a
/// type, treats the two as one.
fn is_same_listener(
    ws: &WebSocket,
    set: &EventListener,
    count: &AtomicUsize,
    got: &EventListener,
) -> bool {
    let probe = "same-listener-probe";
    let before = count.load(Ordering::SeqCst);
    ws.add_event_listener(probe, got.clone());
    ws.dispatch_event(Event::new(probe));
    let runs_the_callback = count.load(Ordering::SeqCst) == before + 1;
    ws.add_event_listener(probe, set.clone());
    ws.dispatch_event(Event::new(probe));
    let deduplicated = count.load(Ordering::SeqCst) == before + 2;
    ws.remove_event_listener(probe, got);
    ws.remove_event_listener(probe, set);
    runs_the_callback && deduplicated
}

/// Sets each handler to a new listener, then clears it: it reads back as none, and a
/// dispatched event no longer runs it.
fn set_then_clear_each(ws: &WebSocket) {
    for kind in KINDS {
        let (listener, count) = counting();
        set_handler(ws, kind, listener);
        assert!(handler(ws, kind).is_some(), "on{kind}");
        clear_handler(ws, kind);
        assert!(handler(ws, kind).is_none(), "on{kind}");
        ws.dispatch_event(Event::new(kind));
        assert_eq!(
            count.load(Ordering::SeqCst),
            0,
            "on{kind} ran after it was cleared"
        );
    }
}

wpt! {
    /// `eventhandlers.any.js`: for open, error, close and message (ECHO with "echo"), the
    /// handler is null at first, reads back the listener set, and null again once set to a
    /// non-callable (Rust: cleared).
    fn eventhandlers(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&["echo"])).unwrap();
        for kind in KINDS {
            assert!(handler(&ws, kind).is_none(), "on{kind}");
            let (listener, count) = counting();
            set_handler(&ws, kind, listener.clone());
            let got = handler(&ws, kind).expect("the handler that was set");
            assert!(is_same_listener(&ws, &listener, &count, &got), "on{kind}");
            clear_handler(&ws, kind);
            assert!(handler(&ws, kind).is_none(), "on{kind}");
        }
    }
}

wpt! {
    /// `events/001.html`: onopen, onmessage, onerror and onclose are null at first.
    fn events_001_handlers_initially_null(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        for kind in KINDS {
            assert!(handler(&ws, kind).is_none(), "on{kind}");
        }
    }
}

wpt! {
    /// `events/002.html`: each handler reads back the very function it was set to.
    fn events_002_handlers_read_back(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        for kind in KINDS {
            let (listener, count) = counting();
            set_handler(&ws, kind, listener.clone());
            let got = handler(&ws, kind).expect("the handler that was set");
            assert!(is_same_listener(&ws, &listener, &count, &got), "on{kind}");
            // A different listener is told apart.
            let (other, other_count) = counting();
            assert!(!is_same_listener(&ws, &other, &other_count, &got), "on{kind}");
        }
    }
}

/// Sets `on<kind>` to a recording handler, dispatches a (synthetic, untrusted) event of type
/// `kind`, and asserts the handler ran exactly once, synchronously, inside the dispatch.
fn handler_runs_for_dispatched_event(ws: &WebSocket, kind: &str) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    set_handler(
        ws,
        kind,
        EventListener::new(move |event| {
            log.lock().unwrap().push((
                event.event_type().to_owned(),
                event.interface(),
                event.is_trusted(),
            ));
        }),
    );
    assert!(ws.dispatch_event(Event::new(kind)));
    // No await in between: the handler ran inside dispatch_event.
    assert_eq!(
        *seen.lock().unwrap(),
        [(kind.to_owned(), EventInterface::Event, false)],
        "on{kind}"
    );
    clear_handler(ws, kind);
}

wpt! {
    /// `events/003.html`: onopen runs for a synthetic "open" event dispatched by the script
    /// (upstream's UIEvent `detail` is JavaScript-only; its type, and that it is not trusted,
    /// are checked).
    fn events_003_onopen_runs_for_dispatched_event(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        handler_runs_for_dispatched_event(&ws, "open");
    }
}

wpt! {
    /// `events/004.html`: addEventListener, removeEventListener and dispatchEvent work: an added
    /// listener runs for a dispatched event, once removed it no longer does.
    fn events_004_add_remove_dispatch(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        let (listener, count) = counting();
        ws.add_event_listener("foo", listener.clone());
        assert!(ws.dispatch_event(Event::new("foo")));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        ws.dispatch_event(Event::new("bar"));
        assert_eq!(count.load(Ordering::SeqCst), 1);
        ws.remove_event_listener("foo", &listener);
        ws.dispatch_event(Event::new("foo"));
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}

wpt! {
    /// `events/007.html`: onmessage runs for a synthetic "message" event.
    fn events_007_onmessage_runs_for_dispatched_event(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        handler_runs_for_dispatched_event(&ws, "message");
        // A dispatched MessageEvent reaches the handler with its fields.
        let seen = Arc::new(Mutex::new(None));
        let log = seen.clone();
        ws.set_onmessage(move |event: &Event| {
            *log.lock().unwrap() = Some((event.data().cloned(), event.origin().to_owned()));
        });
        let data = MessageData::Blob(Bytes::from_static(b"5"));
        ws.dispatch_event(Event::message(
            "message",
            MessageEventInit { data: data.clone(), origin: "ws://x".into() },
        ));
        assert_eq!(*seen.lock().unwrap(), Some((Some(data), "ws://x".to_owned())));
    }
}

wpt! {
    /// `events/008.html`: onerror runs for a synthetic "error" event.
    fn events_008_onerror_runs_for_dispatched_event(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        handler_runs_for_dispatched_event(&ws, "error");
    }
}

wpt! {
    /// `events/009.html`: onclose runs for a synthetic "close" event, and dispatching it does
    /// not close the socket.
    fn events_009_onclose_runs_for_dispatched_event(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let mut events = watch(&ws);
        handler_runs_for_dispatched_event(&ws, "close");
        // A dispatched CloseEvent reaches the handler with its fields.
        let seen = Arc::new(Mutex::new(None));
        let log = seen.clone();
        ws.set_onclose(move |event: &Event| {
            let fields = (event.was_clean(), event.code(), event.reason().to_owned());
            *log.lock().unwrap() = Some(fields);
        });
        let init = CloseEventInit { was_clean: true, code: 4005, reason: "five".into() };
        ws.dispatch_event(Event::close("close", init));
        assert_eq!(*seen.lock().unwrap(), Some((true, 4005, "five".to_owned())));
        ws.clear_onclose();
        // Our watcher saw the two synthetic close events, untrusted; the socket still opens.
        for _ in 0..2 {
            let close = events.expect("close").await;
            assert!(!close.event.is_trusted());
        }
        assert_eq!(events.expect("open").await.ready_state, ReadyState::Open);
        ws.send("still open").unwrap();
        assert_eq!(events.expect("message").await.text(), Some("still open"));
    }
}

wpt! {
    /// `events/010.html` (`/empty-message`): a handler set to a function and then to
    /// undefined reads back null (Rust: cleared), and no longer runs.
    fn events_010_handler_set_to_undefined(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/empty-message"), wpt.init(&[])).unwrap();
        set_then_clear_each(&ws);
    }
}

wpt! {
    /// `events/014.html`: a handler set to a function and then to null reads back null, and no
    /// longer runs.
    fn events_014_handler_set_to_null(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/"), wpt.init(&[])).unwrap();
        set_then_clear_each(&ws);
    }
}

/// The bytes `/echo_raw` writes back as they are: a text frame "test", then a frame with the
/// reserved opcode 0x3 (payload "LOL").
const TEST_THEN_RESERVED_OPCODE: [u8; 11] = [
    0x81, 0x04, b't', b'e', b's', b't', 0x83, 0x03, b'L', b'O', b'L',
];

/// Opens `/echo_raw`, makes the server send [`TEST_THEN_RESERVED_OPCODE`], and returns the
/// socket and every event up to close.
async fn reserved_opcode_events(
    wpt: &server::Wpt,
    scheme: server::Scheme,
) -> (WebSocket, Vec<Seen>) {
    let ws = WebSocket::new(&wpt.url(scheme, "/echo_raw"), wpt.init(&[])).unwrap();
    let mut events = watch(&ws);
    let open = events.expect("open").await;
    ws.send(Bytes::from_static(&TEST_THEN_RESERVED_OPCODE))
        .unwrap();
    let mut all = vec![open];
    all.extend(events.until_close().await);
    events.assert_quiet(QUIET).await;
    (ws, all)
}

wpt! {
    /// `events/015.html` (`/echo_raw`): a text frame then a frame with a reserved opcode: the
    /// message ("test") is delivered while OPEN, then the connection fails: error while CLOSED
    /// already, then close (1006, not clean).
    fn events_015_reserved_opcode_after_message(wpt, scheme) {
        let (_ws, all) = reserved_opcode_events(&wpt, scheme).await;
        assert_eq!(types(&all), ["open", "message", "error", "close"], "{all:?}");
        assert_eq!(all[0].event.interface(), EventInterface::Event);
        assert_eq!(all[1].event.interface(), EventInterface::MessageEvent);
        assert_eq!(all[1].text(), Some("test"));
        assert_eq!(all[1].ready_state, ReadyState::Open);
        assert_eq!(all[2].ready_state, ReadyState::Closed);
        assert_eq!(all[3].event.interface(), EventInterface::CloseEvent);
        assert_eq!(all[3].ready_state, ReadyState::Closed);
        assert!(!all[3].event.was_clean());
        assert_eq!(all[3].event.code(), 1006);
    }
}

wpt! {
    /// `events/016.html`: listeners and handlers run in registration order, a handler in the
    /// place where it was first set. open: listener (sends "Goodbye"), onopen, listener;
    /// message and close likewise; a shared counter sees 1 to 9 in order.
    fn events_016_listener_order(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo"), wpt.init(&[])).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let step = |n: u32| {
            let log = log.clone();
            EventListener::new(move |_| log.lock().unwrap().push(n))
        };
        let weak = ws.downgrade();
        let first = log.clone();
        ws.add_event_listener("open", move |_: &Event| {
            first.lock().unwrap().push(1);
            weak.upgrade().unwrap().send("Goodbye").unwrap();
        });
        ws.set_onopen(step(2));
        ws.add_event_listener("open", step(3));
        ws.add_event_listener("message", step(4));
        ws.set_onmessage(step(5));
        ws.add_event_listener("message", step(6));
        ws.add_event_listener("close", step(7));
        ws.set_onclose(step(8));
        ws.add_event_listener("close", step(9));
        let mut events = watch(&ws);
        let all = events.until_close().await;
        assert_eq!(types(&all), ["open", "message", "close"], "{all:?}");
        assert_eq!(all[1].text(), Some("Goodbye"));
        assert!(all[2].event.was_clean());
        assert_eq!(*log.lock().unwrap(), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
}

wpt! {
    /// `events/017.html` (`/echo_raw`, same bytes as 015): every listener (open, message,
    /// error, close) is called, once, with its own event, on the socket it was added to
    /// (upstream's `this`/`target`/`currentTarget`/`eventPhase` checks are DOM-only).
    fn events_017_listeners_see_their_events(wpt, scheme) {
        let ws = WebSocket::new(&wpt.url(scheme, "/echo_raw"), wpt.init(&[])).unwrap();
        let url = ws.url().to_owned();
        let calls = Arc::new(Mutex::new(Vec::new()));
        for kind in KINDS {
            let calls = calls.clone();
            let weak = ws.downgrade();
            ws.add_event_listener(kind, move |event: &Event| {
                let target = weak.upgrade().map(|ws| ws.url().to_owned());
                calls.lock().unwrap().push((kind, event.event_type().to_owned(), target));
            });
        }
        let mut events = watch(&ws);
        events.expect("open").await;
        ws.send(Bytes::from_static(&TEST_THEN_RESERVED_OPCODE)).unwrap();
        events.until_close().await;
        let expected: Vec<_> = KINDS
            .iter()
            .map(|&kind| (kind, kind.to_owned(), Some(url.clone())))
            .collect();
        assert_eq!(*calls.lock().unwrap(), expected);
    }
}

wpt! {
    /// `events/018.html` (`/echo_raw`, same bytes as 015): open, message, error and close all
    /// fire, in that order; open and error are plain `Event`s, message a `MessageEvent`, close
    /// a `CloseEvent`; all trusted (`bubbles`/`cancelable` are DOM-only).
    fn events_018_event_interfaces(wpt, scheme) {
        let (_ws, all) = reserved_opcode_events(&wpt, scheme).await;
        let kinds: Vec<_> = all
            .iter()
            .map(|seen| (seen.event_type(), seen.event.interface(), seen.event.is_trusted()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("open", EventInterface::Event, true),
                ("message", EventInterface::MessageEvent, true),
                ("error", EventInterface::Event, true),
                ("close", EventInterface::CloseEvent, true),
            ]
        );
    }
}
