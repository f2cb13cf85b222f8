//! What a client can make the server hold, in virtual time: an incomplete message that makes
//! no progress fails the connection with 1008 after `incomplete_message_timeout`, even while
//! the client answers every keepalive ping; `idle_timeout` closes a live connection that
//! carries no messages.

use std::time::Duration;

use tokio::time::Instant;
use whatwg_websocket::proto::{Frame, Incoming, OpCode, ProtocolError};
use whatwg_websocket::{Failure, ServerOptions, WebSocketStream, accept_upgraded};

use crate::support::mock::{self, Mock, MockPeer};

fn server(options: &ServerOptions) -> (WebSocketStream, MockPeer) {
    let mock = Mock {
        peer_is_client: true,
        ..Mock::default()
    };
    let (io, peer) = mock::pair(&mock);
    (accept_upgraded(io, None, options), peer)
}

/// The client answers pings and otherwise waits for the server's Close, which it returns
/// with the time it came (answering it, so that the close is clean).
async fn client_until_close(mut peer: MockPeer) -> (Option<u16>, Option<String>, Instant) {
    loop {
        match peer.receive().await {
            Some(Incoming::Ping(payload)) => peer.send(Frame::new(OpCode::Pong, payload)),
            Some(Incoming::Close(frame)) => {
                let at = Instant::now();
                let code = frame.as_ref().map(|f| f.code().as_u16());
                let reason = frame.as_ref().map(|f| f.reason().to_string());
                let payload = frame.map(|f| f.to_payload()).unwrap_or_default();
                peer.send(Frame::new(OpCode::Close, payload));
                peer.close_write();
                return (code, reason, at);
            }
            Some(_) => {}
            None => return (None, None, Instant::now()),
        }
    }
}

fn fragment(text: &'static str) -> Frame {
    Frame {
        fin: false,
        ..Frame::new(OpCode::Text, text)
    }
}

#[tokio::test(start_paused = true)]
async fn an_unfinished_fragment_fails_the_server_connection_with_1008_after_30_s() {
    let (ws, mut peer) = server(&ServerOptions::default());
    let start = Instant::now();
    peer.send(fragment("the start of a message that never ends"));
    let client = tokio::spawn(client_until_close(peer));
    let error = ws.closed().await.unwrap_err();
    let (code, _, at) = client.await.unwrap();
    assert_eq!(code, Some(1008));
    let after = at - start;
    assert!(
        after >= Duration::from_secs(30) && after <= Duration::from_secs(33),
        "failed after {after:?}"
    );
    assert!(
        matches!(
            error.failure(),
            Some(Failure::Protocol(ProtocolError::IncompleteMessageTimeout))
        ),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_frame_stuck_halfway_fails_the_server_connection_with_1008() {
    let (ws, peer) = server(&ServerOptions {
        keepalive: None,
        ..ServerOptions::default()
    });
    // A masked binary frame announcing 1000 bytes, of which 10 arrive.
    let mut head = vec![0x82, 0xFE, 0x03, 0xE8, 1, 2, 3, 4];
    head.extend_from_slice(&[0; 10]);
    peer.send_raw(&head);
    let start = Instant::now();
    let client = tokio::spawn(client_until_close(peer));
    let error = ws.closed().await.unwrap_err();
    let (code, _, at) = client.await.unwrap();
    assert_eq!(code, Some(1008), "{error}");
    assert!(at - start <= Duration::from_secs(31), "{:?}", at - start);
}

#[tokio::test(start_paused = true)]
async fn a_message_that_progresses_slowly_is_not_failed() {
    let (ws, peer) = server(&ServerOptions::default());
    let mut opened = ws.opened().await.unwrap();
    let sender = peer.sender();
    let client = tokio::spawn(client_until_close(peer));
    for n in 0..6 {
        let opcode = if n == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        sender.send(Frame {
            opcode,
            // 2 KiB per 20 s: progress (at least 1 KiB per timeout, 34 bytes a second).
            payload: vec![b's'; 2048].into(),
            ..fragment("")
        });
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    sender.send(Frame::new(OpCode::Continuation, "end"));
    let message = futures_util::StreamExt::next(&mut opened.readable)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.len(), 6 * 2048 + 3);
    ws.close(Default::default()).unwrap();
    // The Close the client gets is ours (empty), not a 1008.
    assert_eq!(client.await.unwrap().0, None);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_closes_a_live_connection_without_messages_with_1001() {
    let idle = Duration::from_secs(60);
    let (ws, peer) = server(&ServerOptions {
        idle_timeout: Some(idle),
        ..ServerOptions::default()
    });
    let start = Instant::now();
    // The client answers every keepalive ping, but sends no message.
    let client = tokio::spawn(client_until_close(peer));
    let info = ws.closed().await.expect("a clean close");
    let (code, reason, at) = client.await.unwrap();
    assert_eq!(code, Some(1001));
    assert_eq!(reason.as_deref(), Some("idle timeout"));
    assert_eq!(info.close_code, Some(1001));
    let after = at - start;
    assert!(after >= idle && after <= 2 * idle, "closed after {after:?}");
}

#[tokio::test(start_paused = true)]
async fn a_frame_trickled_a_byte_at_a_time_fails_the_server_connection_with_1008() {
    let (ws, peer) = server(&ServerOptions {
        keepalive: None,
        ..ServerOptions::default()
    });
    // A masked binary frame announcing 1000 bytes; then a byte every 20 s.
    peer.send_raw(&[0x82, 0xFE, 0x03, 0xE8, 1, 2, 3, 4]);
    let start = Instant::now();
    let trickle = {
        let sender = peer.sender();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                sender.send_raw(&[0]);
            }
        })
    };
    let client = tokio::spawn(client_until_close(peer));
    let error = tokio::time::timeout(Duration::from_secs(120), ws.closed())
        .await
        .expect("still open after 2 minutes of trickling")
        .unwrap_err();
    let (code, _, at) = client.await.unwrap();
    trickle.abort();
    assert_eq!(code, Some(1008), "{error}");
    assert!(at - start <= Duration::from_secs(61), "{:?}", at - start);
}
