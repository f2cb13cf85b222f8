//! Every close ends within `close_timeout` from its start, whatever the peer does (stays
//! silent, keeps sending, answers late, never closes TCP) and whichever face is polled, or
//! none; then the socket is closed.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use whatwg_websocket::proto::{CloseCode, CloseFrame, Frame, Incoming, OpCode};
use whatwg_websocket::{
    CloseInfo, Event, Message, Opened, ReadyState, StreamOptions, WebSocket, WebSocketInit,
    WebSocketStream,
};

use crate::support::mock::{self, Mock, MockPeer};
use crate::support::{next_event, record, within};

/// The close timeout of these tests.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Virtual time is exact; this covers a few scheduling steps.
const SLACK: Duration = Duration::from_millis(50);

async fn open_websocket(mock: Mock) -> (WebSocket, UnboundedReceiver<Event>, MockPeer) {
    let (dispatcher, peer) = mock::socket(mock);
    let init = WebSocketInit {
        dispatcher: Some(dispatcher),
        close_timeout: Some(TIMEOUT),
        ..WebSocketInit::default()
    };
    let ws = WebSocket::new("ws://mock/", init).unwrap();
    let mut events = record(&ws, &["open", "error", "close"]);
    assert_eq!(next_event(&mut events).await.event_type(), "open");
    (ws, events, peer)
}

async fn open_stream(mock: Mock) -> (WebSocketStream, Opened, MockPeer) {
    let (dispatcher, peer) = mock::socket(mock);
    let options = StreamOptions {
        dispatcher: Some(dispatcher),
        close_timeout: TIMEOUT,
        ..StreamOptions::default()
    };
    let ws = WebSocketStream::new("ws://mock/", options).unwrap();
    let opened = within(ws.opened()).await.unwrap();
    (ws, opened, peer)
}

/// The next `close` event (skipping others), and how long after `start` it fired.
async fn close_event(events: &mut UnboundedReceiver<Event>, start: Instant) -> (Event, Duration) {
    loop {
        let event = next_event(events).await;
        if event.event_type() == "close" {
            return (event, start.elapsed());
        }
    }
}

fn assert_within_timeout(elapsed: Duration) {
    assert!(elapsed <= TIMEOUT + SLACK, "took {elapsed:?}");
}

/// The peer reads until our Close arrives; returns its code.
async fn our_close(peer: &mut MockPeer) -> Option<u16> {
    match within(peer.receive_close()).await {
        Some(Incoming::Close(frame)) => frame.map(|f| f.code().as_u16()),
        other => panic!("expected our Close, got {other:?}"),
    }
}

/// The peer sees our end close the socket within the timeout (counted from `start`).
async fn socket_closed_within_timeout(peer: &mut MockPeer, start: Instant) {
    within(peer.drain_until_closed()).await;
    assert!(peer.closed_by_us());
    assert_within_timeout(start.elapsed());
}

fn close_frame(code: u16, reason: &str) -> Frame {
    let code = CloseCode::try_from(code).unwrap();
    Frame::new(
        OpCode::Close,
        CloseFrame::new(code, reason).unwrap().to_payload(),
    )
}

/// A task that sends a text message every millisecond until aborted.
fn keep_sending(peer: &MockPeer) -> tokio::task::JoinHandle<()> {
    let sender = peer.sender();
    tokio::spawn(async move {
        loop {
            sender.send(Frame::new(OpCode::Text, "tick"));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
}

// ----- the EventTarget face -----

#[tokio::test(start_paused = true)]
async fn websocket_close_against_a_silent_peer_fires_close_within_the_timeout() {
    let (ws, mut events, mut peer) = open_websocket(Mock::default()).await;
    let start = Instant::now();
    ws.close(Some(1000), None).unwrap();
    assert_eq!(our_close(&mut peer).await, Some(1000));
    let (close, elapsed) = close_event(&mut events, start).await;
    assert_within_timeout(elapsed);
    assert_eq!((close.code(), close.was_clean()), (1006, false));
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    socket_closed_within_timeout(&mut peer, start).await;
}

#[tokio::test(start_paused = true)]
async fn websocket_close_against_a_peer_that_keeps_sending_fires_close_within_the_timeout() {
    let (ws, mut events, peer) = open_websocket(Mock::default()).await;
    let sending = keep_sending(&peer);
    tokio::time::sleep(Duration::from_millis(10)).await;
    let start = Instant::now();
    ws.close(Some(1000), None).unwrap();
    let (close, elapsed) = close_event(&mut events, start).await;
    assert_within_timeout(elapsed);
    assert_eq!((close.code(), close.was_clean()), (1006, false));
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    sending.abort();
    let mut peer = peer;
    socket_closed_within_timeout(&mut peer, start).await;
}

#[tokio::test(start_paused = true)]
async fn websocket_close_answered_after_20_s_fires_an_unclean_close_at_the_timeout() {
    let (ws, mut events, mut peer) = open_websocket(Mock::default()).await;
    let start = Instant::now();
    ws.close(Some(1000), None).unwrap();
    let late = tokio::spawn(async move {
        our_close(&mut peer).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
        peer.send(close_frame(1000, ""));
        peer
    });
    let (close, elapsed) = close_event(&mut events, start).await;
    assert_within_timeout(elapsed);
    assert_eq!((close.code(), close.was_clean()), (1006, false));
    // When the late answer comes, our end has long closed the socket.
    let peer = late.await.unwrap();
    assert!(peer.closed_by_us());
}

#[tokio::test(start_paused = true)]
async fn websocket_close_answered_by_a_peer_that_never_closes_tcp_is_clean_at_the_timeout() {
    let (ws, mut events, mut peer) = open_websocket(Mock::default()).await;
    let start = Instant::now();
    ws.close(Some(1000), None).unwrap();
    our_close(&mut peer).await;
    peer.send(close_frame(4001, "bye"));
    // The client waits for the server to close TCP first, up to the timeout.
    let (close, elapsed) = close_event(&mut events, start).await;
    assert_within_timeout(elapsed);
    assert_eq!(
        (close.code(), close.reason(), close.was_clean()),
        (4001, "bye", true)
    );
    socket_closed_within_timeout(&mut peer, start).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_last_websocket_handle_closes_the_socket_within_the_timeout() {
    let (ws, mut events, mut peer) = open_websocket(Mock::default()).await;
    let start = Instant::now();
    drop(ws);
    assert_eq!(our_close(&mut peer).await, Some(1001));
    socket_closed_within_timeout(&mut peer, start).await;
    let (close, _) = close_event(&mut events, start).await;
    assert_eq!(close.code(), 1006);
    // The task has ended and dropped its listeners: the channel closes.
    assert!(within(events.recv()).await.is_none());
}

#[tokio::test(start_paused = true)]
async fn terminate_closes_at_once_without_the_closing_handshake() {
    let (ws, mut events, mut peer) = open_websocket(Mock::default()).await;
    let start = Instant::now();
    ws.terminate();
    assert_eq!(ws.ready_state(), ReadyState::Closing);
    let close = next_event(&mut events).await;
    assert_eq!(
        (close.event_type(), close.code(), close.was_clean()),
        ("close", 1006, false),
        "close, and no error"
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(ws.ready_state(), ReadyState::Closed);
    // No Close frame: the socket is simply gone.
    assert!(within(peer.receive()).await.is_none());
    assert!(peer.dropped());
}

// ----- the stream face -----

#[tokio::test(start_paused = true)]
async fn stream_close_then_reading_only_the_readable_ends_within_the_timeout() {
    let (ws, mut opened, mut peer) = open_stream(Mock::default()).await;
    let start = Instant::now();
    ws.close(CloseInfo {
        close_code: Some(1000),
        reason: String::new(),
    })
    .unwrap();
    // As `for await` code does: only the readable is read.
    let end = within(opened.readable.next()).await;
    assert_within_timeout(start.elapsed());
    let error = end.expect("an error ends the readable").unwrap_err();
    assert_eq!(error.close_code(), Some(1006));
    assert!(within(opened.readable.next()).await.is_none());
    assert_eq!(our_close(&mut peer).await, Some(1000));
    socket_closed_within_timeout(&mut peer, start).await;
}

#[tokio::test(start_paused = true)]
async fn stream_close_then_reading_a_peer_that_keeps_sending_ends_within_the_timeout() {
    let (ws, mut opened, mut peer) = open_stream(Mock::default()).await;
    let sending = keep_sending(&peer);
    let start = Instant::now();
    ws.close(CloseInfo::default()).unwrap();
    let mut ticks = 0;
    let error = within(async {
        loop {
            match opened.readable.next().await {
                Some(Ok(_)) => ticks += 1,
                Some(Err(error)) => break error,
                None => panic!("the readable ended without the timeout's error"),
            }
        }
    })
    .await;
    assert_within_timeout(start.elapsed());
    assert!(ticks > 0);
    assert_eq!(error.close_code(), Some(1006));
    sending.abort();
    socket_closed_within_timeout(&mut peer, start).await;
}

#[tokio::test(start_paused = true)]
async fn stream_close_with_nobody_polling_closes_the_socket_within_the_timeout() {
    let (ws, opened, mut peer) = open_stream(Mock::default()).await;
    let start = Instant::now();
    ws.close(CloseInfo::default()).unwrap();
    // Nothing polls the stream: the handles are merely kept.
    our_close(&mut peer).await;
    socket_closed_within_timeout(&mut peer, start).await;
    // The outcome waits for whoever asks.
    let error = within(ws.closed()).await.unwrap_err();
    assert_eq!(error.close_code(), Some(1006));
    drop(opened);
}

#[tokio::test(start_paused = true)]
async fn stream_close_answered_after_20_s_is_unclean_at_the_timeout() {
    let (ws, _opened, mut peer) = open_stream(Mock::default()).await;
    let start = Instant::now();
    ws.close(CloseInfo::default()).unwrap();
    let late = tokio::spawn(async move {
        our_close(&mut peer).await;
        tokio::time::sleep(Duration::from_secs(20)).await;
        peer.send(close_frame(1000, ""));
    });
    let error = within(ws.closed()).await.unwrap_err();
    assert_within_timeout(start.elapsed());
    assert_eq!(error.close_code(), Some(1006));
    late.abort();
}

#[tokio::test(start_paused = true)]
async fn stream_close_answered_by_a_peer_that_never_closes_tcp_is_clean_at_the_timeout() {
    let (ws, _opened, mut peer) = open_stream(Mock::default()).await;
    let start = Instant::now();
    ws.close(CloseInfo::default()).unwrap();
    our_close(&mut peer).await;
    peer.send(close_frame(4002, "later"));
    let info = within(ws.closed()).await.unwrap();
    assert_within_timeout(start.elapsed());
    assert_eq!(
        (info.close_code, info.reason.as_str()),
        (Some(4002), "later")
    );
    socket_closed_within_timeout(&mut peer, start).await;
}

#[tokio::test(start_paused = true)]
async fn after_the_peers_close_the_socket_closes_without_closed_being_awaited() {
    let (_ws, mut opened, mut peer) = open_stream(Mock::default()).await;
    peer.send(close_frame(1000, "done"));
    let start = Instant::now();
    assert!(within(opened.readable.next()).await.is_none());
    // Our reply goes out; the peer keeps TCP open; nobody awaits `closed`.
    assert_eq!(our_close(&mut peer).await, Some(1000));
    socket_closed_within_timeout(&mut peer, start).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_every_stream_handle_sends_1001_through_a_full_socket_then_closes_it() {
    let mock = Mock {
        capacity: 1024,
        ..Mock::default()
    };
    let (ws, mut opened, mut peer) = open_stream(mock).await;
    // 4 KiB queued behind a socket that takes 1 KiB until the peer reads.
    opened
        .writable
        .feed(Message::binary(vec![7u8; 4096]))
        .await
        .unwrap();
    let start = Instant::now();
    drop(opened);
    drop(ws);
    match within(peer.receive()).await {
        Some(Incoming::Message(message)) => assert_eq!(message.len(), 4096),
        other => panic!("expected the queued message, got {other:?}"),
    }
    assert_eq!(our_close(&mut peer).await, Some(1001));
    socket_closed_within_timeout(&mut peer, start).await;
}

// ----- the EventTarget face on a multi-thread runtime (real time) -----

/// 100 sockets on busy workers close against silent peers, or are dropped: every one fires
/// `open` then `close` (1006) once, in that order, and every socket is closed, well within the
/// test's bound (the close timeout is 100 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_close_timeouts_hold_for_100_sockets_on_a_busy_multi_thread_runtime() {
    let _load = crate::support::Load::start(4);
    let mut sockets = Vec::new();
    for i in 0..100 {
        let (dispatcher, peer) = mock::socket(Mock::default());
        let init = WebSocketInit {
            dispatcher: Some(dispatcher),
            close_timeout: Some(Duration::from_millis(100)),
            ..WebSocketInit::default()
        };
        let mut events = None;
        let ws = WebSocket::with_listeners("ws://mock/", init, |ws| {
            events = Some(record(ws, &["open", "message", "error", "close"]));
        })
        .unwrap();
        sockets.push((i, ws, events.unwrap(), peer));
    }
    let mut closed = Vec::new();
    for (i, ws, mut events, peer) in sockets {
        assert_eq!(next_event(&mut events).await.event_type(), "open");
        if i % 2 == 0 {
            ws.close(Some(1000), None).unwrap();
        } else {
            drop(ws);
        }
        closed.push((events, peer));
    }
    for (mut events, mut peer) in closed {
        let close = next_event(&mut events).await;
        assert_eq!((close.event_type(), close.code()), ("close", 1006));
        assert!(
            within(events.recv()).await.is_none(),
            "one close, then nothing"
        );
        within(peer.drain_until_closed()).await;
    }
}

/// A peer whose frames never stop coming: reads never wait.
fn endless_peer() -> Mock {
    let mut frames = Vec::new();
    for _ in 0..64 {
        // Unmasked server frames: FIN + text, 4 bytes.
        frames.extend_from_slice(&[0x81, 4]);
        frames.extend_from_slice(b"tick");
    }
    Mock {
        endless: Some(frames),
        ..Mock::default()
    }
}

/// A close started on a thread without a runtime cannot start its timer there; the read path
/// starts it, although a peer that never stops sending never lets it wait (real time: virtual
/// time stands still while the runtime is busy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_started_outside_the_runtime_ends_against_a_peer_that_never_stops_sending() {
    let (dispatcher, peer) = mock::socket(endless_peer());
    let init = WebSocketInit {
        dispatcher: Some(dispatcher),
        close_timeout: Some(Duration::from_millis(200)),
        ..WebSocketInit::default()
    };
    let mut events = None;
    let ws = WebSocket::with_listeners("ws://mock/", init, |ws| {
        events = Some(record(ws, &["open", "close"]));
    })
    .unwrap();
    let mut events = events.unwrap();
    assert_eq!(next_event(&mut events).await.event_type(), "open");
    let closing = ws.clone();
    std::thread::spawn(move || closing.close(Some(1000), None).unwrap())
        .join()
        .unwrap();
    let close = next_event(&mut events).await;
    assert_eq!((close.event_type(), close.code()), ("close", 1006));
    assert!(peer.closed_by_us());
}

/// Every handle of a stream dropped on a thread without a runtime, over a socket that never
/// stops being readable: the task that finishes the connection discards what arrives in
/// slices, starts the timer itself, and closes the socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_handles_dropped_outside_the_runtime_end_against_a_peer_that_never_stops_sending() {
    let (dispatcher, mut peer) = mock::socket(endless_peer());
    let options = StreamOptions {
        dispatcher: Some(dispatcher),
        close_timeout: Duration::from_millis(200),
        ..StreamOptions::default()
    };
    let ws = WebSocketStream::new("ws://mock/", options).unwrap();
    let opened = within(ws.opened()).await.unwrap();
    std::thread::spawn(move || drop((ws, opened)))
        .join()
        .unwrap();
    assert_eq!(our_close(&mut peer).await, Some(1001));
    within(peer.drain_until_closed()).await;
    assert!(peer.closed_by_us());
}
