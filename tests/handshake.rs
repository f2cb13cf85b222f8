//! Every rule of the opening handshake, against raw peers over loopback: each violation makes
//! `opened` and `closed` reject with 1006, and the Rust side learns which rule failed.

mod support;

use support::*;
use tokio::io::AsyncWriteExt;
use whatwg_websocket::handshake::HandshakeError;
use whatwg_websocket::{Failure, StreamOptions, WebSocketStream};

/// A peer answering the handshake with `head(accept)`.
async fn answering(head: fn(&str) -> String) -> std::net::SocketAddr {
    spawn_server(move |mut socket| async move {
        let (request, _) = read_request(&mut socket).await;
        let response = head(&accept_for(&request));
        let _ = socket.write_all(response.as_bytes()).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    })
    .await
}

async fn expect_failure(head: fn(&str) -> String, protocols: &[&str], expected: HandshakeError) {
    let address = answering(head).await;
    let options = StreamOptions {
        protocols: protocols.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    let ws = WebSocketStream::new(&format!("ws://{address}/"), options).unwrap();
    let error = within(ws.opened()).await.unwrap_err();
    assert_eq!(error.close_code(), Some(1006));
    assert_eq!(error.reason(), "");
    match error.failure() {
        Some(Failure::Handshake(got)) => assert_eq!(got, &expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
    assert_eq!(
        within(ws.closed()).await.unwrap_err().close_code(),
        Some(1006)
    );
}

const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n";

#[tokio::test]
async fn a_status_other_than_101_fails() {
    expect_failure(
        |_| "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into(),
        &[],
        HandshakeError::Status(200),
    )
    .await;
}

#[tokio::test]
async fn a_redirect_fails() {
    expect_failure(
        |_| "HTTP/1.1 301 Moved\r\nLocation: ws://127.0.0.1:1/\r\n\r\n".into(),
        &[],
        HandshakeError::Status(301),
    )
    .await;
}

#[tokio::test]
async fn upgrade_must_be_websocket() {
    expect_failure(
        |a| format!("HTTP/1.1 101 S\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {a}\r\n\r\n"),
        &[],
        HandshakeError::MissingUpgrade,
    )
    .await;
    expect_failure(
        |a| format!("HTTP/1.1 101 S\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {a}\r\n\r\n"),
        &[],
        HandshakeError::MissingUpgrade,
    )
    .await;
}

#[tokio::test]
async fn connection_must_contain_upgrade() {
    expect_failure(
        |a| format!("HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: close\r\nSec-WebSocket-Accept: {a}\r\n\r\n"),
        &[],
        HandshakeError::MissingConnectionUpgrade,
    )
    .await;
}

#[tokio::test]
async fn accept_must_match_the_key() {
    expect_failure(
        |_| format!("HTTP/1.1 101 S\r\n{UPGRADE}Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
        &[],
        HandshakeError::InvalidAccept,
    )
    .await;
    expect_failure(
        |_| format!("HTTP/1.1 101 S\r\n{UPGRADE}\r\n"),
        &[],
        HandshakeError::InvalidAccept,
    )
    .await;
}

#[tokio::test]
async fn the_protocol_must_be_one_offered_and_present_when_any_was() {
    expect_failure(
        |a| format!("HTTP/1.1 101 S\r\n{UPGRADE}Sec-WebSocket-Accept: {a}\r\nSec-WebSocket-Protocol: other\r\n\r\n"),
        &["chat"],
        HandshakeError::UnexpectedProtocol("other".into()),
    )
    .await;
    expect_failure(
        |a| format!("HTTP/1.1 101 S\r\n{UPGRADE}Sec-WebSocket-Accept: {a}\r\n\r\n"),
        &["chat"],
        HandshakeError::MissingProtocol,
    )
    .await;
    expect_failure(
        |a| format!("HTTP/1.1 101 S\r\n{UPGRADE}Sec-WebSocket-Accept: {a}\r\nSec-WebSocket-Protocol: chat\r\n\r\n"),
        &[],
        HandshakeError::UnexpectedProtocol("chat".into()),
    )
    .await;
}

#[tokio::test]
async fn an_extension_not_offered_fails() {
    expect_failure(
        |a| format!("HTTP/1.1 101 S\r\n{UPGRADE}Sec-WebSocket-Accept: {a}\r\nSec-WebSocket-Extensions: x-webkit-deflate-frame\r\n\r\n"),
        &[],
        HandshakeError::UnexpectedExtension("x-webkit-deflate-frame".into()),
    )
    .await;
}

#[tokio::test]
async fn a_peer_that_closes_during_the_handshake_fails_it() {
    expect_failure(|_| String::new(), &[], HandshakeError::ConnectionClosed).await;
}
