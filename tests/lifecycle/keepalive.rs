//! Keepalive and liveness, in virtual time over the in-memory socket: a silent peer is
//! detected at interval + timeout on both faces and in the server role, a live idle peer is
//! kept, pings are answered while the owner polls nothing, and pings report round trips.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use whatwg_websocket::proto::{Frame, Incoming, OpCode};
use whatwg_websocket::{
    Failure, Keepalive, ServerOptions, StreamOptions, WebSocket, WebSocketInit, WebSocketStream,
    accept_upgraded,
};

use crate::support::mock::{self, Mock, MockPeer};
use crate::support::{next_event, record, within};

/// The defaults: a ping after 20 s of quiet, failure 20 s later.
const DETECTION: Duration = Duration::from_secs(40);

async fn open_stream(mock: Mock, keepalive: Option<Keepalive>) -> (WebSocketStream, MockPeer) {
    let (dispatcher, peer) = mock::socket(mock);
    let options = StreamOptions {
        dispatcher: Some(dispatcher),
        keepalive,
        ..StreamOptions::default()
    };
    let ws = WebSocketStream::new("ws://mock/", options).unwrap();
    within(ws.opened()).await.unwrap();
    (ws, peer)
}

/// An open `WebSocket` over the mock socket, recording its open, error and close events
/// (open already seen).
async fn open_websocket() -> (
    WebSocket,
    tokio::sync::mpsc::UnboundedReceiver<whatwg_websocket::Event>,
    MockPeer,
) {
    let (dispatcher, peer) = mock::socket(Mock::default());
    let init = WebSocketInit {
        dispatcher: Some(dispatcher),
        ..WebSocketInit::default()
    };
    let ws = WebSocket::new("ws://mock/", init).unwrap();
    let mut events = record(&ws, &["open", "error", "close"]);
    assert_eq!(next_event(&mut events).await.event_type(), "open");
    (ws, events, peer)
}

/// Answers every ping with a pong after `delay`, and counts the pings.
fn answer_pings(mut peer: MockPeer, delay: Duration) -> tokio::task::JoinHandle<(usize, MockPeer)> {
    tokio::spawn(async move {
        let mut pings = 0;
        let sender = peer.sender();
        while let Some(incoming) = peer.receive().await {
            match incoming {
                Incoming::Ping(payload) => {
                    pings += 1;
                    tokio::time::sleep(delay).await;
                    sender.send(Frame::new(OpCode::Pong, payload));
                }
                Incoming::Close(_) => break,
                _ => {}
            }
        }
        (pings, peer)
    })
}

fn assert_detected_in(elapsed: Duration) {
    println!("dead peer detected after {elapsed:?}");
    let (low, high) = (DETECTION.mul_f64(0.9), DETECTION.mul_f64(1.1));
    assert!(
        elapsed >= low && elapsed <= high,
        "dead peer detected after {elapsed:?}, expected 40 s +- 10%"
    );
}

fn is_keepalive_timeout(failure: Option<&Failure>) -> bool {
    matches!(failure, Some(Failure::KeepaliveTimeout))
}

#[tokio::test(start_paused = true)]
async fn keepalive_detects_a_silent_peer_at_interval_plus_timeout_on_the_stream_face() {
    let (ws, mut peer) = open_stream(Mock::default(), Some(Keepalive::default())).await;
    let start = Instant::now();
    // The owner awaits only `closed`.
    let error = ws
        .closed()
        .await
        .expect_err("a dead peer cannot close cleanly");
    assert_detected_in(start.elapsed());
    assert_eq!(error.close_code(), Some(1006));
    assert!(is_keepalive_timeout(error.failure()), "{error}");
    // The peer saw one ping at 20 s, then a Close 1011, and the socket closed.
    assert!(matches!(peer.receive().await, Some(Incoming::Ping(_))));
    match peer.receive().await {
        Some(Incoming::Close(Some(frame))) => assert_eq!(frame.code().as_u16(), 1011),
        other => panic!("expected Close 1011, got {other:?}"),
    }
    assert!(peer.dropped());
}

#[tokio::test(start_paused = true)]
async fn keepalive_closes_the_socket_of_a_silent_peer_while_the_owner_polls_nothing() {
    let (ws, peer) = open_stream(Mock::default(), Some(Keepalive::default())).await;
    let opened = ws.opened().await.unwrap();
    tokio::time::sleep(DETECTION.mul_f64(0.9)).await;
    assert!(!peer.dropped(), "closed before the timeout");
    tokio::time::sleep(DETECTION.mul_f64(0.2)).await;
    assert!(peer.dropped(), "the keeper ran no keepalive");
    let error = ws.closed().await.unwrap_err();
    assert!(is_keepalive_timeout(error.failure()), "{error}");
    drop(opened);
}

#[tokio::test(start_paused = true)]
async fn keepalive_fails_a_websocket_with_error_then_close_1006_at_interval_plus_timeout() {
    let (_ws, mut events, _peer) = open_websocket().await;
    let start = Instant::now();
    let error = events.recv().await.expect("an event");
    assert_eq!(error.event_type(), "error");
    assert_detected_in(start.elapsed());
    let failure = error.error().and_then(|e| e.failure());
    assert!(is_keepalive_timeout(failure), "{failure:?}");
    let close = next_event(&mut events).await;
    assert_eq!(close.event_type(), "close");
    assert_eq!(close.code(), 1006);
    assert!(!close.was_clean());
}

#[tokio::test(start_paused = true)]
async fn keepalive_detects_a_silent_client_in_the_server_role() {
    let mock = Mock {
        peer_is_client: true,
        ..Mock::default()
    };
    let (io, mut peer) = mock::pair(&mock);
    let ws = accept_upgraded(io, None, &ServerOptions::default());
    let start = Instant::now();
    let error = ws.closed().await.unwrap_err();
    assert_detected_in(start.elapsed());
    assert!(is_keepalive_timeout(error.failure()), "{error}");
    assert!(matches!(peer.receive().await, Some(Incoming::Ping(_))));
}

#[tokio::test(start_paused = true)]
async fn keepalive_keeps_a_live_idle_peer_for_10_minutes_and_measures_its_round_trip() {
    let (ws, peer) = open_stream(Mock::default(), Some(Keepalive::default())).await;
    let opened = ws.opened().await.unwrap();
    let answering = answer_pings(peer, Duration::from_millis(30));
    tokio::time::sleep(Duration::from_secs(600)).await;
    // Still open: a message goes out, and nothing ended.
    let mut writable = opened.writable;
    futures_util::SinkExt::send(&mut writable, whatwg_websocket::Message::text("still here"))
        .await
        .expect("the connection is still open");
    assert_eq!(ws.latency(), Some(Duration::from_millis(30)));
    ws.close(Default::default()).unwrap();
    let (pings, _peer) = answering.await.unwrap();
    // One ping per 20 s (plus the round trip) of quiet.
    assert!((28..=30).contains(&pings), "{pings} pings in 10 minutes");
}

#[tokio::test(start_paused = true)]
async fn keepalive_sends_no_ping_while_the_peer_keeps_talking() {
    let (ws, mut peer) = open_stream(Mock::default(), Some(Keepalive::default())).await;
    let mut readable = ws.opened().await.unwrap().readable;
    let reader = tokio::spawn(async move { while readable.next().await.is_some() {} });
    for _ in 0..24 {
        peer.send(Frame::new(OpCode::Text, "tick"));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    ws.close(Default::default()).unwrap();
    // The first thing we sent is the Close: no ping in 2 minutes of traffic.
    assert!(matches!(peer.receive().await, Some(Incoming::Close(_))));
    reader.abort();
}

#[tokio::test(start_paused = true)]
async fn keepalive_off_keeps_a_silent_peer_forever() {
    let (ws, mut peer) = open_stream(Mock::default(), None).await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert!(!peer.dropped());
    ws.close(Default::default()).unwrap();
    assert!(matches!(peer.receive().await, Some(Incoming::Close(_))));
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_owner_polls_nothing_answers_pings() {
    let (ws, mut peer) = open_stream(Mock::default(), None).await;
    // The owner holds the readable and the writable, and polls neither.
    let opened = ws.opened().await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for n in 0..3u8 {
        peer.send(Frame::new(OpCode::Ping, vec![n]));
        let start = Instant::now();
        match within(peer.receive()).await {
            Some(Incoming::Pong(payload)) => assert_eq!(&payload[..], &[n]),
            other => panic!("expected a pong, got {other:?}"),
        }
        assert!(
            start.elapsed() <= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    // A message that arrived meanwhile waits for the reader.
    peer.send(Frame::new(OpCode::Text, "kept"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut readable = opened.readable;
    let message = within(readable.next()).await.unwrap().unwrap();
    assert_eq!(message.len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_stream_whose_owner_only_writes_answers_pings() {
    let (ws, mut peer) = open_stream(Mock::default(), None).await;
    let mut writable = ws.opened().await.unwrap().writable;
    let sender = peer.sender();
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            futures_util::SinkExt::send(&mut writable, whatwg_websocket::Message::text("w"))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    sender.send(Frame::new(OpCode::Ping, &b"p"[..]));
    let start = Instant::now();
    loop {
        match within(peer.receive()).await {
            Some(Incoming::Pong(payload)) => {
                assert_eq!(&payload[..], b"p");
                break;
            }
            Some(Incoming::Message(_)) => {}
            other => panic!("expected a pong, got {other:?}"),
        }
    }
    assert!(
        start.elapsed() <= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    writer.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn ping_resolves_with_the_round_trip_time_and_fails_when_the_connection_ends() {
    let (ws, peer) = open_stream(Mock::default(), None).await;
    let _opened = ws.opened().await.unwrap();
    // The owner reads nothing: after its first second, the keeper reads for it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answering = answer_pings(peer, Duration::from_millis(150));
    let rtt = within(ws.ping(b"rtt").unwrap()).await.unwrap();
    assert_eq!(rtt, Duration::from_millis(150));
    assert_eq!(ws.latency(), Some(rtt));
    answering.abort();
    // A ping nobody answers fails once the connection ends.
    let pong = ws.ping(b"lost").unwrap();
    ws.close(Default::default()).unwrap();
    // Nobody answers the Close either: the close timeout ends it, uncleanly.
    let error = within(pong).await.unwrap_err();
    assert_eq!(error.name(), "WebSocketError", "{error}");
}

#[tokio::test(start_paused = true)]
async fn keepalive_keeps_a_live_idle_peer_of_a_websocket_for_10_minutes() {
    let (ws, mut events, peer) = open_websocket().await;
    let answering = answer_pings(peer, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        events.try_recv().is_err(),
        "an event fired on a live idle connection"
    );
    assert_eq!(ws.ready_state(), WebSocket::OPEN);
    assert_eq!(ws.latency(), Some(Duration::from_millis(20)));
    ws.close(None, None).unwrap();
    let (pings, _peer) = answering.await.unwrap();
    assert!((28..=30).contains(&pings), "{pings} pings in 10 minutes");
}

#[tokio::test(start_paused = true)]
async fn keepalive_keeps_a_live_idle_client_of_the_server_for_10_minutes() {
    let mock = Mock {
        peer_is_client: true,
        ..Mock::default()
    };
    let (io, peer) = mock::pair(&mock);
    let ws = accept_upgraded(io, None, &ServerOptions::default());
    let answering = answer_pings(peer, Duration::from_millis(20));
    let closed = tokio::time::timeout(Duration::from_secs(600), ws.closed()).await;
    assert!(closed.is_err(), "the connection ended: {closed:?}");
    ws.close(Default::default()).unwrap();
    let (pings, _peer) = answering.await.unwrap();
    assert!((28..=30).contains(&pings), "{pings} pings in 10 minutes");
}

#[tokio::test(start_paused = true)]
async fn dropping_every_handle_ends_the_keeper_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let (ws, peer) = open_stream(Mock::default(), Some(Keepalive::default())).await;
    let opened = ws.opened().await.unwrap();
    let mut readable = opened.readable;
    // The owner waits in `next` on a quiet connection, then goes away: the keeper drives.
    let reader = tokio::spawn(async move {
        let _ = readable.next().await;
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    reader.abort();
    let _ = reader.await;
    drop((ws, opened.writable));
    // The peer stays silent: the close timeout ends the connection, and every task of it.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(peer.dropped());
    assert_eq!(
        metrics.num_alive_tasks(),
        0,
        "a task of the connection lives on"
    );
}

#[tokio::test(start_paused = true)]
async fn keepalive_does_not_blame_a_peer_held_back_by_a_reader_that_reads_nothing() {
    let (ws, mut peer) = open_stream(Mock::default(), Some(Keepalive::default())).await;
    let mut readable = ws.opened().await.unwrap().readable;
    // 40 messages of 4 KiB: more than the read high-water mark (64 KiB); nothing afterwards.
    for _ in 0..40 {
        peer.send(Frame::new(OpCode::Binary, vec![0u8; 4096]));
    }
    tokio::time::sleep(Duration::from_secs(120)).await;
    // Not failed: every message is still there for the reader.
    for _ in 0..40 {
        let message = within(readable.next()).await.unwrap().unwrap();
        assert_eq!(message.len(), 4096);
    }
    ws.close(Default::default()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_a_peer_that_reads_slowly_past_the_write_high_water_mark() {
    let (ws, peer) = open_stream(
        Mock {
            capacity: 0,
            ..Mock::default()
        },
        Some(Keepalive::default()),
    )
    .await;
    let mut writable = ws.opened().await.unwrap().writable;
    // Our writes fill the write buffer: the peer reads nothing for 25 s.
    let writer = tokio::spawn(async move {
        loop {
            let sent = futures_util::SinkExt::send(
                &mut writable,
                whatwg_websocket::Message::binary(vec![0u8; 8192]),
            )
            .await;
            if sent.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    tokio::time::sleep(Duration::from_secs(25)).await;
    // Then it reads (slowly), answers pings, and sends nothing else.
    peer.set_capacity(1 << 20);
    let answering = answer_pings(peer, Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(!writer.is_finished(), "the connection failed");
    ws.close(Default::default()).unwrap();
    writer.abort();
    answering.abort();
}

#[tokio::test(start_paused = true)]
async fn read_ahead_after_sets_how_soon_the_pings_of_an_unread_stream_are_answered() {
    for after in [Duration::from_secs(1), Duration::from_secs(5)] {
        let (dispatcher, mut peer) = mock::socket(Mock::default());
        let options = StreamOptions {
            dispatcher: Some(dispatcher),
            keepalive: None,
            read_ahead_after: after,
            ..StreamOptions::default()
        };
        let ws = WebSocketStream::new("ws://mock/", options).unwrap();
        let _opened = within(ws.opened()).await.unwrap();
        let start = Instant::now();
        peer.send(Frame::new(OpCode::Ping, &b"now"[..]));
        assert!(matches!(
            within(peer.receive()).await,
            Some(Incoming::Pong(_))
        ));
        let answered = start.elapsed();
        assert!(
            answered <= after && answered >= after.mul_f64(0.9),
            "answered after {answered:?} with read_ahead_after {after:?}"
        );
    }
}
