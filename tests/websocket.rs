//! The EventTarget `WebSocket` over loopback: the rules that are ours rather than a
//! web-platform test's (the opening guarantee on a busy multi-thread runtime, handles and drop,
//! the Rust-side error detail, the `ping` helper).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{busy, echo_server, next_event as next, raw_once, record, serve_once, within};
use tokio::sync::mpsc;
use whatwg_websocket::proto::{CloseFrame, Frame, Incoming, OpCode};
use whatwg_websocket::{
    Event, Failure, MessageData, ReadyState, ServerOptions, WebSocket, WebSocketInit, ping,
};

#[tokio::test]
async fn echo_open_message_close_in_order() {
    let address = echo_server(ServerOptions::default()).await;
    let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
    let mut events = record(&ws, &["open", "message", "error", "close"]);
    assert_eq!(ws.ready_state(), ReadyState::Connecting);
    assert_eq!(next(&mut events).await.event_type(), "open");
    assert_eq!(ws.ready_state(), WebSocket::OPEN);
    let deflate = if cfg!(feature = "deflate") {
        "permessage-deflate; server_no_context_takeover"
    } else {
        ""
    };
    assert_eq!(ws.extensions(), deflate);
    ws.send("hello").unwrap();
    ws.send(vec![1u8, 2, 3]).unwrap();
    let text = next(&mut events).await;
    assert_eq!(text.data().and_then(MessageData::as_text), Some("hello"));
    assert_eq!(text.origin(), format!("ws://{address}"));
    let binary = next(&mut events).await;
    assert_eq!(
        binary.data(),
        Some(&MessageData::Blob(vec![1u8, 2, 3].into()))
    );
    ws.close(Some(1000), Some("done")).unwrap();
    assert_eq!(ws.ready_state(), ReadyState::Closing);
    let close = next(&mut events).await;
    assert_eq!(close.event_type(), "close");
    assert!(close.was_clean());
    assert_eq!((close.code(), close.reason()), (1000, "done"));
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    assert_eq!(ws.buffered_amount(), 0);
}

/// The opening rule, under load: on a multi-thread runtime whose workers are busy and
/// whose handshakes complete long before the constructing code registers its listeners, every
/// listener registered before that code looks at the socket still gets `open` (and a failed
/// opening's `error` and `close`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_registered_after_a_slow_synchronous_stretch_still_see_open() {
    let address = echo_server(ServerOptions::default()).await;
    // Load: tasks that keep both workers busy in short slices.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    busy(Duration::from_micros(200));
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let opened = Arc::new(AtomicUsize::new(0));
    let mut sockets = Vec::new();
    for round in 0..20 {
        let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
        // The synchronous stretch: long enough for the handshake to finish meanwhile.
        busy(Duration::from_millis(if round % 2 == 0 { 20 } else { 2 }));
        let counter = opened.clone();
        ws.set_onopen(move |_: &Event| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let counter = opened.clone();
        ws.add_event_listener("open", move |_: &Event| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        sockets.push(ws);
    }
    within(async {
        while opened.load(Ordering::SeqCst) < 40 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    // Each listener got it exactly once.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(opened.load(Ordering::SeqCst), 40);
    for ws in &sockets {
        assert_eq!(ws.ready_state(), ReadyState::Open);
    }

    // A refused connection fails fast; listeners registered afterwards still get error and close.
    // Bound but not listening: connections are refused, and no other test can take the port.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed_port = refusing.local_addr().unwrap();
    let ws = WebSocket::new(&format!("ws://{closed_port}/"), ()).unwrap();
    busy(Duration::from_millis(30));
    let mut events = record(&ws, &["open", "error", "close"]);
    let error = next(&mut events).await;
    assert_eq!(error.event_type(), "error");
    assert!(matches!(
        error.error().and_then(|e| e.failure()),
        Some(Failure::Io(_))
    ));
    let close = next(&mut events).await;
    assert_eq!(
        (close.event_type(), close.code(), close.was_clean()),
        ("close", 1006, false)
    );
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
}

/// Once the owner has looked at the socket, a late listener gets nothing it missed, as on the
/// web.
#[tokio::test]
async fn a_listener_added_after_the_owner_saw_the_socket_open_gets_no_replay() {
    let address = echo_server(ServerOptions::default()).await;
    let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
    let mut events = record(&ws, &["open"]);
    next(&mut events).await;
    assert_eq!(ws.ready_state(), ReadyState::Open);
    let mut late = record(&ws, &["open", "close"]);
    ws.close(None, None).unwrap();
    let close = next(&mut late).await;
    assert_eq!((close.event_type(), close.code()), ("close", 1005));
}

#[tokio::test]
async fn dropping_the_last_handle_closes_with_1001_and_still_fires_close() {
    let (address, peer) = raw_once(|mut peer| async move {
        let close = within(peer.receive()).await;
        peer.send(Frame::new(
            OpCode::Close,
            CloseFrame::new(1001.try_into().unwrap(), "")
                .unwrap()
                .to_payload(),
        ))
        .await;
        drop(peer);
        close
    })
    .await;
    let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
    let mut events = record(&ws, &["open", "close"]);
    next(&mut events).await;
    let weak = ws.downgrade();
    let clone = ws.clone();
    drop(ws);
    assert!(weak.upgrade().is_some(), "a clone keeps it");
    drop(clone);
    assert!(weak.upgrade().is_none());
    let close = next(&mut events).await;
    assert_eq!(close.code(), 1001);
    match peer.await.unwrap() {
        Some(Incoming::Close(Some(frame))) => assert_eq!(frame.code().as_u16(), 1001),
        other => panic!("expected a Close 1001, got {other:?}"),
    }
    // The event loop has ended and dropped its listeners: the channel closes.
    assert!(within(events.recv()).await.is_none());
}

#[tokio::test]
async fn a_listener_holding_a_handle_is_released_after_close() {
    let address = echo_server(ServerOptions::default()).await;
    let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
    let weak = ws.downgrade();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = ws.clone();
    ws.set_onopen(move |_: &Event| {
        handle.send("from onopen").unwrap();
    });
    let handle = ws.clone();
    ws.set_onmessage(move |event: &Event| {
        let _ = tx.send(event.clone());
        handle.close(Some(3000), None).unwrap();
    });
    drop(ws);
    let message = within(rx.recv()).await.unwrap();
    assert_eq!(
        message.data().and_then(MessageData::as_text),
        Some("from onopen")
    );
    within(async {
        while weak.upgrade().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn the_error_event_carries_the_rust_side_cause() {
    let (address, _peer) = serve_once(|mut socket| async move {
        use tokio::io::AsyncWriteExt;
        let _ = support::read_request(&mut socket).await;
        socket
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
    })
    .await;
    let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
    let mut events = record(&ws, &["open", "error", "close"]);
    let error = next(&mut events).await;
    assert_eq!(error.event_type(), "error");
    assert!(matches!(
        error.error().and_then(|e| e.failure()),
        Some(Failure::Handshake(_))
    ));
    assert_eq!(next(&mut events).await.code(), 1006);
    assert_eq!(ws.ready_state(), ReadyState::Closed);
}

#[tokio::test]
async fn ping_helper_checks_its_payload_and_sends_when_open() {
    let (address, peer) = raw_once(|mut peer| async move {
        let ping = within(peer.receive()).await;
        let _ = within(peer.receive()).await; // the Close
        ping
    })
    .await;
    let ws = WebSocket::new(&format!("ws://{address}/"), WebSocketInit::default()).unwrap();
    assert!(
        ping(&ws, b"before open").is_ok(),
        "a no-op while connecting"
    );
    let mut events = record(&ws, &["open"]);
    next(&mut events).await;
    assert_eq!(ping(&ws, &[0; 126]).unwrap_err().name(), "TypeError");
    ping(&ws, b"hb").unwrap();
    ws.close(None, None).unwrap();
    assert_eq!(peer.await.unwrap(), Some(Incoming::Ping(b"hb"[..].into())));
}

#[tokio::test]
async fn buffered_amount_counts_sends_until_the_event_loop_sees_them_written() {
    let address = echo_server(ServerOptions::default()).await;
    let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
    let mut events = record(&ws, &["open", "message"]);
    next(&mut events).await;
    ws.send("héllo").unwrap();
    ws.send(vec![0u8; 10]).unwrap();
    // No await in between: the event loop has not run (current-thread runtime).
    assert_eq!(ws.buffered_amount(), 6 + 10);
    next(&mut events).await;
    next(&mut events).await;
    assert_eq!(ws.buffered_amount(), 0);
    ws.close(None, None).unwrap();
    ws.send("dropped").unwrap();
    assert_eq!(ws.buffered_amount(), 7);
    let counter = Arc::new(Mutex::new(0));
    let _ = counter;
}

/// The peer's Close arriving while a large message is still going out: the handshake completes,
/// but the close is not clean (the peer may never read that data), with the peer's code, and
/// no `error` (the connection was not failed).
#[tokio::test]
async fn a_close_received_with_data_still_unsent_is_not_clean() {
    let (address, peer) = raw_once(|mut peer| async move {
        // Close once the client has started sending.
        assert!(matches!(
            within(peer.receive()).await,
            Some(Incoming::Message(_))
        ));
        let close = CloseFrame::new(4567.try_into().unwrap(), "bye").unwrap();
        peer.send(Frame::new(OpCode::Close, close.to_payload()))
            .await;
        // Read (and discard) everything until the client's Close.
        loop {
            match within(peer.receive()).await {
                Some(Incoming::Close(frame)) => return frame.map(|f| f.code().as_u16()),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await;
    let ws = WebSocket::new(&format!("ws://{address}/"), ()).unwrap();
    let mut events = record(&ws, &["open", "error", "close"]);
    next(&mut events).await;
    ws.send("go").unwrap();
    ws.send(vec![0u8; 32 << 20]).unwrap();
    let close = next(&mut events).await;
    assert_eq!(close.event_type(), "close");
    assert!(!close.was_clean());
    assert_eq!((close.code(), close.reason()), (4567, "bye"));
    assert!(matches!(
        close.error().and_then(|e| e.failure()),
        Some(Failure::UnsentData)
    ));
    // The data went out, then our reply.
    assert_eq!(peer.await.unwrap(), Some(4567));
}
