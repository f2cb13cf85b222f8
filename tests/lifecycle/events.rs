//! No lost events on a multi-thread runtime, where the socket's task runs in parallel with the
//! code that called `new`: listeners added late (before that code looks at the socket) get the
//! `open`, `error` and `close` that already fired, in the order they fired, even when the
//! connection was over at once; listeners added in `with_listeners` get every event. Under
//! load, over loopback, counted.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver};
use whatwg_websocket::proto::{CloseCode, CloseFrame, Frame, Incoming, OpCode};
use whatwg_websocket::{Event, WebSocket};

use crate::support::{Load, raw_server, record, within};

/// A server that opens, sends `greeting` if any, and closes at once (1000 "bye").
async fn quick_server(greeting: Option<&'static str>) -> SocketAddr {
    raw_server("", move |mut peer| async move {
        if let Some(text) = greeting {
            peer.send(Frame::new(OpCode::Text, text)).await;
        }
        let close = CloseFrame::new(CloseCode::NORMAL, "bye").unwrap();
        peer.send(Frame::new(OpCode::Close, close.to_payload()))
            .await;
        // The client's Close, then the server closes TCP first.
        while let Some(incoming) = peer.receive().await {
            if matches!(incoming, Incoming::Close(_)) {
                break;
            }
        }
    })
    .await
}

/// An address that refuses connections: bound, not listening (no other test can take it).
fn refusing_address() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

/// The types of every event recorded until the listeners are dropped (after `close`).
async fn all_events(mut events: UnboundedReceiver<Event>) -> Vec<String> {
    let mut types = Vec::new();
    while let Some(event) = within(events.recv()).await {
        types.push(event.event_type().to_owned());
    }
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_added_300_ms_late_to_a_socket_that_opened_and_closed_get_open_then_close() {
    let address = quick_server(None).await;
    for _ in 0..3 {
        let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
        // A synchronous stretch, without looking at the socket: it opens and closes meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        let (tx, rx) = mpsc::unbounded_channel();
        let open = tx.clone();
        ws.add_event_listener("open", move |event: &Event| {
            let _ = open.send(event.clone());
        });
        ws.add_event_listener("close", move |event: &Event| {
            assert_eq!((event.code(), event.reason()), (1000, "bye"));
            assert!(event.was_clean());
            let _ = tx.send(event.clone());
        });
        assert_eq!(all_events(rx).await, ["open", "close"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_opening_replays_error_before_close_to_late_listeners() {
    let (_refusing, address) = refusing_address();
    for round in 0..20 {
        let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        let types: &[&'static str] = if round % 2 == 0 {
            &["error", "close", "open"]
        } else {
            &["open", "error", "message", "close"]
        };
        assert_eq!(all_events(record(&ws, types)).await, ["error", "close"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_one_of_500_sockets_under_load_gets_open_then_close() {
    let address = quick_server(None).await;
    let _load = Load::start(4);
    for _batch in 0..5 {
        let mut recorded = Vec::new();
        let mut sockets = Vec::new();
        for _ in 0..100 {
            let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
            recorded.push(record(&ws, &["open", "message", "error", "close"]));
            sockets.push(ws);
        }
        for events in recorded {
            assert_eq!(all_events(events).await, ["open", "close"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_listeners_every_one_of_500_sockets_under_load_gets_every_event() {
    let address = quick_server(Some("hello")).await;
    let _load = Load::start(4);
    for _batch in 0..5 {
        let mut recorded = Vec::new();
        let mut sockets = Vec::new();
        for _ in 0..100 {
            let mut events = None;
            let ws = WebSocket::with_listeners(&format!("ws://{address}/"), (), |ws| {
                events = Some(record(ws, &["open", "message", "error", "close"]));
            })
            .unwrap();
            recorded.push(events.unwrap());
            sockets.push(ws);
        }
        for events in recorded {
            assert_eq!(all_events(events).await, ["open", "message", "close"]);
        }
    }
}

/// While an early listener is slow, the owner adds `error` and `close` listeners: the `error`
/// that already fired is replayed before the `close` that fires next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_listeners_get_error_before_close_while_an_early_listener_is_slow() {
    let (_refusing, address) = refusing_address();
    let (started, slow_started) = std::sync::mpsc::channel();
    let _ws = WebSocket::with_listeners(&format!("ws://{address}/"), (), |ws| {
        ws.add_event_listener("error", move |_: &Event| {
            let _ = started.send(());
            std::thread::sleep(Duration::from_millis(300));
        });
    })
    .unwrap();
    let ws = _ws.clone();
    let events = tokio::task::spawn_blocking(move || {
        slow_started.recv().unwrap();
        record(&ws, &["error", "close"])
    })
    .await
    .unwrap();
    assert_eq!(all_events(events).await, ["error", "close"]);
}

/// After the socket's task has ended, a listener added on a thread without a runtime still
/// gets its replay (on the socket's runtime).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_added_after_the_end_on_a_thread_without_a_runtime_gets_its_replay() {
    let address = quick_server(None).await;
    let mut first = None;
    let ws = WebSocket::with_listeners(&format!("ws://{address}/"), (), |ws| {
        first = Some(record(ws, &["close"]));
    })
    .unwrap();
    assert_eq!(all_events(first.unwrap()).await, ["close"]);
    let late = std::thread::spawn(move || record(&ws, &["close"]))
        .join()
        .unwrap();
    assert_eq!(all_events(late).await, ["close"]);
}
