//! `WebSocketStream` over loopback: echo, subprotocols, headers, closing, limits, abort.

mod support;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use support::*;
use whatwg_websocket::proto::{
    CloseCode, CloseFrame, Frame, Incoming, Limits, OpCode, ProtocolError,
};
use whatwg_websocket::{
    CancellationToken, CloseInfo, Error, Failure, Message, Opened, ServerOptions, StreamOptions,
    WebSocketStream,
};

#[tokio::test]
async fn text_and_binary_round_trip_through_our_server() {
    let address = echo_server(ServerOptions::default()).await;
    let (
        ws,
        Opened {
            mut readable,
            mut writable,
            protocol,
            extensions,
        },
    ) = connect(&format!("ws://{address}/echo"), StreamOptions::default()).await;
    // permessage-deflate is on by default on both ends: every message below is compressed
    // (the server's afresh each time, by its default).
    let deflate = if cfg!(feature = "deflate") {
        "permessage-deflate; server_no_context_takeover"
    } else {
        ""
    };
    assert_eq!((protocol.as_str(), extensions.as_str()), ("", deflate));
    let big = Message::binary(vec![7u8; 300_000]);
    for message in [
        Message::text("héllo"),
        Message::binary(vec![1, 2, 3]),
        Message::text(""),
        big,
    ] {
        within(writable.send(message.clone())).await.unwrap();
        assert_eq!(within(readable.next()).await.unwrap().unwrap(), message);
    }
    ws.close(CloseInfo {
        close_code: Some(1000),
        reason: "done".into(),
    })
    .unwrap();
    // Our server echoes the code and reason of the Close it received.
    assert_eq!(
        within(ws.closed()).await,
        Ok(CloseInfo {
            close_code: Some(1000),
            reason: "done".into()
        })
    );
    assert!(within(readable.next()).await.is_none());
    assert!(matches!(
        within(writable.send(Message::text("late"))).await,
        Err(Error::InvalidState(_))
    ));
}

#[tokio::test]
async fn the_server_selects_the_first_offered_protocol_it_speaks() {
    let options = ServerOptions {
        protocols: vec!["v2".into(), "v1".into()],
        ..Default::default()
    };
    let address = echo_server(options).await;
    let options = StreamOptions {
        protocols: vec!["v1".into(), "v2".into()],
        ..Default::default()
    };
    let (_ws, opened) = connect(&format!("ws://{address}/"), options).await;
    assert_eq!(opened.protocol, "v2");
}

#[tokio::test]
async fn custom_headers_arrive_at_the_server() {
    let (address, rx) = serve_once(|mut socket| async move {
        let (request, _) = read_request(&mut socket).await;
        request
    })
    .await;
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer t0ken".parse().unwrap());
    headers.insert("x-trace", "abc".parse().unwrap());
    let options = StreamOptions {
        headers,
        protocols: vec!["graphql-transport-ws".into()],
        ..Default::default()
    };
    let ws = WebSocketStream::new(&format!("http://{address}/graphql?x=1"), options).unwrap();
    let request = within(rx).await.unwrap();
    assert_eq!(request.uri(), "/graphql?x=1");
    assert_eq!(request.headers()["authorization"], "Bearer t0ken");
    assert_eq!(request.headers()["x-trace"], "abc");
    assert_eq!(
        request.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    assert_eq!(request.headers()["host"], address.to_string());
    assert_eq!(ws.url(), format!("ws://{address}/graphql?x=1"));
}

#[tokio::test]
async fn a_4xxx_code_and_reason_reach_the_server_intact() {
    let (address, rx) = serve_once(|socket| async move {
        let ws = whatwg_websocket::accept(socket, ServerOptions::default())
            .await
            .unwrap();
        ws.closed().await
    })
    .await;
    let (ws, _opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    ws.close(CloseInfo {
        close_code: Some(4321),
        reason: "app: bye ✓".into(),
    })
    .unwrap();
    let at_server = within(rx).await.unwrap();
    assert_eq!(
        at_server,
        Ok(CloseInfo {
            close_code: Some(4321),
            reason: "app: bye ✓".into()
        })
    );
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(4321));
}

#[tokio::test]
async fn a_close_from_the_server_reaches_the_client_with_code_and_reason() {
    let address = raw_server("", |mut peer| async move {
        let close = CloseFrame::new(CloseCode::try_from(4001).unwrap(), "server says bye").unwrap();
        peer.send(Frame::new(OpCode::Text, "last words")).await;
        peer.send(Frame::new(OpCode::Close, close.to_payload()))
            .await;
        // The client echoes the code; then the server closes TCP.
        match peer.receive().await {
            Some(Incoming::Close(Some(reply))) => assert_eq!(reply.code().as_u16(), 4001),
            other => panic!("expected the client's Close, got {other:?}"),
        }
    })
    .await;
    let (ws, Opened { mut readable, .. }) =
        connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text("last words")
    );
    assert!(
        within(readable.next()).await.is_none(),
        "the readable ends after a clean close"
    );
    let info = within(ws.closed()).await.unwrap();
    assert_eq!(
        info,
        CloseInfo {
            close_code: Some(4001),
            reason: "server says bye".into()
        }
    );
}

#[tokio::test]
async fn an_empty_close_is_reported_as_1005() {
    let address = raw_server("", |mut peer| async move {
        peer.send(Frame::new(OpCode::Close, Bytes::new())).await;
        assert_eq!(peer.receive().await, Some(Incoming::Close(None)));
    })
    .await;
    let (ws, _opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1005));
}

#[tokio::test]
async fn the_close_timeout_ends_a_close_the_peer_never_answers_as_1006() {
    let address = raw_server("", |mut peer| async move {
        // Read the client's Close, never answer, keep TCP open.
        let _ = peer.receive().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let options = StreamOptions {
        close_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let (ws, _opened) = connect(&format!("ws://{address}/"), options).await;
    ws.close(CloseInfo::default()).unwrap();
    let started = tokio::time::Instant::now();
    let error = within(ws.closed()).await.unwrap_err();
    assert_eq!(error.close_code(), Some(1006));
    assert!(
        matches!(error.failure(), Some(Failure::Timeout(_))),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn the_close_timeout_ends_a_wait_for_a_peer_that_never_closes_tcp() {
    let address = raw_server("", |mut peer| async move {
        let close = peer.receive().await;
        assert!(matches!(close, Some(Incoming::Close(_))));
        peer.send(Frame::new(
            OpCode::Close,
            CloseFrame::new(CloseCode::NORMAL, "").unwrap().to_payload(),
        ))
        .await;
        // Never close TCP.
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let options = StreamOptions {
        close_timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let (ws, _opened) = connect(&format!("ws://{address}/"), options).await;
    ws.close(CloseInfo {
        close_code: Some(1000),
        reason: String::new(),
    })
    .unwrap();
    // Both Close frames were exchanged: the client closes TCP itself after the timeout, and
    // the close is clean.
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1000));
}

#[tokio::test]
async fn close_validates_code_and_reason_as_the_standard_says() {
    let address = echo_server(ServerOptions::default()).await;
    let (ws, _opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    for code in [999, 1001, 1005, 2999, 5000] {
        let result = ws.close(CloseInfo {
            close_code: Some(code),
            reason: String::new(),
        });
        assert!(matches!(result, Err(Error::InvalidAccess(_))), "{code}");
    }
    let result = ws.close(CloseInfo {
        close_code: Some(1000),
        reason: "é".repeat(62),
    });
    assert!(matches!(result, Err(Error::Syntax(_))));
    assert!(matches!(ws.ping(&[0; 126]), Err(Error::Type(_))));
    ws.ping(&[0; 125]).unwrap();
}

#[tokio::test]
async fn a_message_over_the_size_limit_fails_the_connection_with_1009() {
    let (address, rx) = raw_once(|mut peer| async move {
        peer.send(Frame::new(OpCode::Binary, vec![0; 1025])).await;
        peer.receive().await
    })
    .await;
    let options = StreamOptions {
        limits: Limits {
            max_message_size: 1024,
            ..Limits::default()
        },
        ..Default::default()
    };
    let (ws, Opened { mut readable, .. }) = connect(&format!("ws://{address}/"), options).await;
    let error = within(readable.next()).await.unwrap().unwrap_err();
    assert_eq!(error.close_code(), Some(1006), "the local report is 1006");
    assert!(matches!(
        error.failure(),
        Some(Failure::Protocol(ProtocolError::MessageTooLarge {
            limit: 1024
        }))
    ));
    match within(rx).await.unwrap() {
        Some(Incoming::Close(Some(close))) => assert_eq!(close.code(), CloseCode::MESSAGE_TOO_BIG),
        other => panic!("expected Close 1009 at the peer, got {other:?}"),
    }
    assert_eq!(
        within(ws.closed()).await.unwrap_err().close_code(),
        Some(1006)
    );
}

#[tokio::test]
async fn too_many_fragments_fail_the_connection_with_1008() {
    let (address, rx) = raw_once(|mut peer| async move {
        peer.send(Frame {
            fin: false,
            ..Frame::new(OpCode::Text, "a")
        })
        .await;
        for _ in 0..4 {
            peer.send(Frame {
                fin: false,
                ..Frame::new(OpCode::Continuation, "b")
            })
            .await;
        }
        peer.receive().await
    })
    .await;
    let options = StreamOptions {
        limits: Limits {
            max_fragments: 4,
            ..Limits::default()
        },
        ..Default::default()
    };
    let (_ws, Opened { mut readable, .. }) = connect(&format!("ws://{address}/"), options).await;
    assert!(within(readable.next()).await.unwrap().is_err());
    match within(rx).await.unwrap() {
        Some(Incoming::Close(Some(close))) => assert_eq!(close.code(), CloseCode::POLICY_VIOLATION),
        other => panic!("expected Close 1008 at the peer, got {other:?}"),
    }
}

#[tokio::test]
async fn pings_are_answered_with_identical_pongs() {
    let (address, rx) = raw_once(|mut peer| async move {
        peer.send(Frame::new(OpCode::Ping, "are you there")).await;
        peer.send(Frame::new(OpCode::Text, "after ping")).await;
        peer.receive().await
    })
    .await;
    let (_ws, Opened { mut readable, .. }) =
        connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text("after ping")
    );
    assert_eq!(
        within(rx).await.unwrap(),
        Some(Incoming::Pong(Bytes::from_static(b"are you there")))
    );
}

#[tokio::test]
async fn an_already_aborted_signal_rejects_without_connecting() {
    let signal = CancellationToken::new();
    signal.cancel();
    let ws = WebSocketStream::new(
        "ws://127.0.0.1:9/",
        StreamOptions {
            signal: Some(signal),
            ..Default::default()
        },
    )
    .unwrap();
    let error = within(ws.opened()).await.unwrap_err();
    assert!(matches!(error.failure(), Some(Failure::Aborted)));
    assert_eq!(
        within(ws.closed()).await.unwrap_err().close_code(),
        Some(1006)
    );
}

#[tokio::test]
async fn aborting_during_the_handshake_fails_it_and_after_open_does_nothing() {
    // A peer that accepts TCP and never answers.
    let silent = spawn_server(|socket| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    })
    .await;
    let signal = CancellationToken::new();
    let options = StreamOptions {
        signal: Some(signal.clone()),
        ..Default::default()
    };
    let ws = WebSocketStream::new(&format!("ws://{silent}/"), options).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    signal.cancel();
    assert!(matches!(
        within(ws.opened()).await.unwrap_err().failure(),
        Some(Failure::Aborted)
    ));
    assert!(within(ws.closed()).await.is_err());

    let address = echo_server(ServerOptions::default()).await;
    let signal = CancellationToken::new();
    let options = StreamOptions {
        signal: Some(signal.clone()),
        ..Default::default()
    };
    let (
        ws,
        Opened {
            mut readable,
            mut writable,
            ..
        },
    ) = connect(&format!("ws://{address}/"), options).await;
    signal.cancel();
    within(writable.send(Message::text("still open")))
        .await
        .unwrap();
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text("still open")
    );
    ws.close(CloseInfo::default()).unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1005));
}

#[tokio::test]
async fn close_during_the_handshake_rejects_opened_and_closed() {
    let silent = spawn_server(|socket| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    })
    .await;
    let ws = WebSocketStream::new(&format!("ws://{silent}/"), StreamOptions::default()).unwrap();
    ws.close(CloseInfo::default()).unwrap();
    assert_eq!(
        within(ws.opened()).await.unwrap_err().close_code(),
        Some(1006)
    );
    assert_eq!(
        within(ws.closed()).await.unwrap_err().close_code(),
        Some(1006)
    );
}

#[tokio::test]
async fn constructor_errors_are_syntax_errors_and_network_errors_come_later() {
    for url in ["ftp://x/", "ws://x/#f", "not a url", "ws://a b/"] {
        assert!(
            matches!(
                WebSocketStream::new(url, StreamOptions::default()),
                Err(Error::Syntax(_))
            ),
            "{url}"
        );
    }
    let options = StreamOptions {
        protocols: vec!["a".into(), "A".into()],
        ..Default::default()
    };
    assert!(matches!(
        WebSocketStream::new("ws://x/", options),
        Err(Error::Syntax(_))
    ));
    // Bound but not listening (so no other test takes the port): the constructor succeeds,
    // `opened` rejects.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed_port = refusing.local_addr().unwrap();
    let ws =
        WebSocketStream::new(&format!("ws://{closed_port}/"), StreamOptions::default()).unwrap();
    let error = within(ws.opened()).await.unwrap_err();
    assert!(matches!(error.failure(), Some(Failure::Io(_))), "{error}");
}

#[tokio::test]
async fn an_ipv6_literal_url_connects() {
    let listener = tokio::net::TcpListener::bind("[::1]:0")
        .await
        .expect("IPv6 loopback");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        echo(
            whatwg_websocket::accept(socket, ServerOptions::default())
                .await
                .unwrap(),
        )
        .await;
    });
    let (
        ws,
        Opened {
            mut readable,
            mut writable,
            ..
        },
    ) = connect(&format!("ws://[::1]:{port}/v6"), StreamOptions::default()).await;
    within(writable.send(Message::text("v6"))).await.unwrap();
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text("v6")
    );
    ws.close(CloseInfo::default()).unwrap();
    assert!(within(ws.closed()).await.is_ok());
}

/// A raw peer that reports the first thing the client sends after the handshake.
async fn reporting_peer() -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Receiver<Option<Incoming>>,
) {
    raw_once(|mut peer| async move { peer.receive().await }).await
}

fn close_code_of(incoming: Option<Incoming>) -> Option<(u16, String)> {
    match incoming {
        Some(Incoming::Close(Some(close))) => {
            Some((close.code().as_u16(), close.reason().to_string()))
        }
        _ => None,
    }
}

#[tokio::test]
async fn dropping_every_handle_of_an_open_stream_sends_1001() {
    let (address, rx) = reporting_peer().await;
    let (ws, opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    drop(opened);
    drop(ws);
    assert_eq!(
        close_code_of(within(rx).await.unwrap()),
        Some((1001, String::new()))
    );
}

#[tokio::test]
async fn cancelling_the_readable_with_a_websocket_error_sends_its_code_and_reason() {
    let (address, rx) = reporting_peer().await;
    let (_ws, opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    let reason = whatwg_websocket::WebSocketError::new(Some(4000), "no more").unwrap();
    opened.readable.cancel(Some(&reason));
    assert_eq!(
        close_code_of(within(rx).await.unwrap()),
        Some((4000, "no more".into()))
    );
}

#[tokio::test]
async fn aborting_the_writable_without_a_websocket_error_sends_an_empty_close() {
    let (address, rx) = reporting_peer().await;
    let (_ws, opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    opened.writable.abort(None);
    assert_eq!(within(rx).await.unwrap(), Some(Incoming::Close(None)));
}

#[tokio::test]
async fn websocket_error_validates_like_close() {
    assert!(matches!(
        whatwg_websocket::WebSocketError::new(Some(1001), ""),
        Err(Error::InvalidAccess(_))
    ));
    assert!(matches!(
        whatwg_websocket::WebSocketError::new(None, "x".repeat(124)),
        Err(Error::Syntax(_))
    ));
    let error = whatwg_websocket::WebSocketError::new(None, "why").unwrap();
    assert_eq!(
        (error.close_code(), error.reason(), error.name()),
        (Some(1000), "why", "WebSocketError")
    );
}

#[tokio::test]
async fn writer_close_resolves_when_the_closing_handshake_completes() {
    let address = echo_server(ServerOptions::default()).await;
    let (ws, Opened { mut writable, .. }) =
        connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    within(writable.close()).await.unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1005));
}

#[tokio::test]
async fn accept_upgraded_serves_a_connection_upgraded_elsewhere() {
    use tokio::io::AsyncWriteExt;
    let address = spawn_server(|mut socket| async move {
        // The HTTP part done by "another server": check the request, answer 101.
        let (request, _) = read_request(&mut socket).await;
        let handshake = whatwg_websocket::handshake::ServerHandshake::new(request).unwrap();
        let mut response = String::new();
        handshake.encode_response(Some("p"), &mut response);
        socket.write_all(response.as_bytes()).await.unwrap();
        let ws =
            whatwg_websocket::accept_upgraded(socket, Some("p".into()), &ServerOptions::default());
        let Opened {
            mut readable,
            mut writable,
            protocol,
            ..
        } = ws.opened().await.unwrap();
        assert_eq!(protocol, "p");
        while let Some(Ok(message)) = readable.next().await {
            let _ = writable.send(message).await;
        }
        let _ = ws.closed().await;
    })
    .await;
    let options = StreamOptions {
        protocols: vec!["p".into()],
        ..Default::default()
    };
    let (
        ws,
        Opened {
            mut readable,
            mut writable,
            ..
        },
    ) = connect(&format!("ws://{address}/"), options).await;
    within(writable.send(Message::text("via upgrade")))
        .await
        .unwrap();
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text("via upgrade")
    );
    ws.close(CloseInfo::default()).unwrap();
    assert!(within(ws.closed()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_peer_that_does_not_read_is_answered_with_the_latest_ping() {
    const PINGS: u32 = 40_000;
    let (address, rx) = raw_once(|mut peer| async move {
        // 40,000 pings of 125 bytes (5 MB) without reading a byte of the pongs.
        for i in 0..PINGS {
            let mut payload = vec![b'.'; 125];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            peer.send(Frame::new(OpCode::Ping, payload)).await;
        }
        peer.send(Frame::new(OpCode::Text, "done")).await;
        let mut last = None;
        let mut pongs = 0u32;
        while let Some(Incoming::Pong(payload)) = peer.receive().await {
            pongs += 1;
            last = Some(u32::from_be_bytes(payload[..4].try_into().unwrap()));
            if last == Some(PINGS - 1) {
                break;
            }
        }
        (pongs, last)
    })
    .await;
    let (_ws, Opened { mut readable, .. }) =
        connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text("done")
    );
    // Keep reading: the reader's polls are what send the remaining pongs.
    tokio::spawn(async move { while readable.next().await.is_some() {} });
    let (pongs, last) = within(rx).await.unwrap();
    assert_eq!(last, Some(PINGS - 1), "the latest ping is answered");
    assert!(pongs <= PINGS);
}

#[test]
fn dropping_the_last_handle_outside_the_runtime_does_not_panic() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (ws, opened) = runtime.block_on(async {
        let address = echo_server(ServerOptions::default()).await;
        connect(&format!("ws://{address}/"), StreamOptions::default()).await
    });
    drop(runtime);
    drop(opened);
    drop(ws);
}
