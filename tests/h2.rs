//! WebSockets over HTTP/2 (RFC 8441) against our own HTTP/2 server role: h2c and TLS, many
//! WebSockets on one connection, per-stream flow control, fallback to HTTP/1.1, GOAWAY.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::h2::*;
use support::pki::*;
use support::proxies::{opening_error, round_trip, through};
use support::*;
use whatwg_websocket::handshake::HandshakeError;
use whatwg_websocket::{
    Agent, AgentOptions, Event, Failure, Message, MessageData, Opened, ServerOptions,
    StreamOptions, WebSocket, WebSocketInit,
};

/// An agent speaking HTTP/2 to `ws` (prior knowledge) and `wss` (ALPN) URLs, trusting `pki`.
fn h2_agent(pki: Option<&TestPki>, h2_only: bool) -> Agent {
    Agent::with_options(AgentOptions {
        allow_h2: true,
        h2_prior_knowledge: true,
        h2_only,
        tls: pki.map(TestPki::roots).unwrap_or_default(),
        ..Default::default()
    })
}

#[tokio::test]
async fn ws_over_h2c_and_wss_over_h2_share_one_connection_each() {
    let pki = pki();
    let (plain, plain_counts) = h2_server(Speaks::H2, ServerOptions::default(), None).await;
    let (secure, secure_counts) = h2_server(
        Speaks::H2,
        ServerOptions::default(),
        Some(pki.server_config()),
    )
    .await;
    let agent = h2_agent(Some(&pki), true);
    for _ in 0..3 {
        round_trip(&format!("ws://{plain}/"), through(agent.clone()), "h2c").await;
        let url = format!("wss://localhost:{}/", secure.port());
        round_trip(&url, through(agent.clone()), "h2").await;
    }
    assert_eq!((plain_counts.h2(), plain_counts.http1()), (1, 0));
    assert_eq!((secure_counts.h2(), secure_counts.http1()), (1, 0));
}

#[tokio::test]
async fn subprotocols_and_deflate_are_negotiated_over_h2() {
    let options = ServerOptions {
        protocols: vec!["graphql-transport-ws".into()],
        ..Default::default()
    };
    let (address, _) = h2_server(Speaks::H2, options, None).await;
    let stream_options = StreamOptions {
        protocols: vec!["chat".into(), "graphql-transport-ws".into()],
        ..through(h2_agent(None, true))
    };
    let (
        ws,
        Opened {
            protocol,
            extensions,
            mut readable,
            mut writable,
            ..
        },
    ) = connect(&format!("ws://{address}/"), stream_options).await;
    assert_eq!(protocol, "graphql-transport-ws");
    if cfg!(feature = "deflate") {
        assert!(extensions.starts_with("permessage-deflate"), "{extensions}");
    }
    let text = "compressible ".repeat(1000);
    within(writable.send(Message::text(text.clone())))
        .await
        .unwrap();
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text(text)
    );
    ws.close(Default::default()).unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1005));
}

#[tokio::test]
async fn the_websocket_face_runs_over_h2() {
    let (address, counts) = h2_server(Speaks::H2, ServerOptions::default(), None).await;
    let init = WebSocketInit {
        dispatcher: Some(h2_agent(None, true).into()),
        ..Default::default()
    };
    let ws = WebSocket::new(&format!("ws://{address}/"), init).unwrap();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    for event_type in ["open", "message", "error", "close"] {
        let tx = tx.clone();
        ws.add_event_listener(event_type, move |event: &Event| {
            let _ = tx.send(event.clone());
        });
    }
    assert_eq!(within(events.recv()).await.unwrap().event_type(), "open");
    ws.send("over h2").unwrap();
    let message = within(events.recv()).await.unwrap();
    assert_eq!(
        message.data().and_then(MessageData::as_text),
        Some("over h2")
    );
    ws.close(Some(1000), Some("done")).unwrap();
    let close = within(events.recv()).await.unwrap();
    assert_eq!(
        (close.event_type(), close.code(), close.was_clean()),
        ("close", 1000, true)
    );
    assert_eq!(counts.h2(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_websockets_echo_over_one_connection() {
    let options = ServerOptions {
        h2_max_concurrent_streams: 2000,
        ..Default::default()
    };
    let (address, counts) = h2_server(Speaks::H2, options, None).await;
    let agent = h2_agent(None, true);
    let url = format!("ws://{address}/");
    let sockets = futures_util::future::join_all((0..1000).map(|i| {
        let options = through(agent.clone());
        let url = url.clone();
        async move {
            let (
                ws,
                Opened {
                    mut readable,
                    mut writable,
                    ..
                },
            ) = connect(&url, options).await;
            let payload = format!("socket {i}");
            writable.send(Message::text(payload.clone())).await.unwrap();
            let echoed = readable.next().await.unwrap().unwrap();
            assert_eq!(echoed, Message::text(payload));
            ws
        }
    }));
    let sockets = tokio::time::timeout(Duration::from_secs(60), sockets)
        .await
        .expect("1,000 echoes within a minute");
    assert_eq!(sockets.len(), 1000);
    assert_eq!(
        (counts.h2(), counts.http1()),
        (1, 0),
        "all on one connection"
    );
    for ws in &sockets {
        ws.close(Default::default()).unwrap();
    }
    for ws in sockets {
        assert!(within(ws.closed()).await.is_ok());
    }
}

#[tokio::test]
async fn a_stalled_reader_does_not_hold_up_the_other_websockets() {
    let (address, counts) = h2_server(Speaks::H2, ServerOptions::default(), None).await;
    let agent = h2_agent(None, true);
    // 32 MiB for a reader that reads nothing: more than the connection's window. Without
    // compression, which would shrink the flood to almost nothing.
    let stalled_options = StreamOptions {
        read_high_water_mark: 64 * 1024,
        deflate: None,
        ..through(agent.clone())
    };
    let (
        stalled,
        Opened {
            readable: mut flood,
            ..
        },
    ) = connect(&format!("ws://{address}/flood/128"), stalled_options).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20 {
        round_trip(
            &format!("ws://{address}/"),
            through(agent.clone()),
            &format!("{i}"),
        )
        .await;
    }
    assert_eq!(counts.h2(), 1, "the same connection");
    // The stalled stream's window holds the server back: 256 KiB in flight, 64 KiB read ahead,
    // the server's own write buffer.
    let sent = FLOODED.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        sent < 8,
        "{sent} of 128 messages sent to a reader that reads nothing"
    );
    for i in 0..128u8 {
        let message = within(flood.next()).await.unwrap().unwrap();
        assert_eq!(
            message.as_bytes(),
            vec![i; 256 * 1024].as_slice(),
            "message {i}"
        );
    }
    stalled.close(Default::default()).unwrap();
    assert!(within(stalled.closed()).await.is_ok());
}

#[tokio::test]
async fn without_extended_connect_the_agent_falls_back_to_http1() {
    let pki = pki();
    let (secure, counts) = h2_server(
        Speaks::H2WithoutConnect,
        ServerOptions::default(),
        Some(pki.server_config()),
    )
    .await;
    let url = format!("wss://localhost:{}/", secure.port());
    let agent = h2_agent(Some(&pki), false);
    round_trip(&url, through(agent.clone()), "one").await;
    assert_eq!((counts.h2(), counts.http1()), (1, 1));
    // The origin is remembered: straight to HTTP/1.1 the second time.
    round_trip(&url, through(agent), "two").await;
    assert_eq!((counts.h2(), counts.http1()), (1, 2));
    // Asked for HTTP/2 only, it fails.
    let error = opening_error(&url, through(h2_agent(Some(&pki), true))).await;
    assert!(
        matches!(
            error.failure(),
            Some(Failure::Handshake(HandshakeError::NoExtendedConnect))
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn h2c_to_an_http1_server_falls_back_and_tls_without_h2_stays_on_http1() {
    let pki = pki();
    let (plain, _) = recording_echo_server_plain().await;
    let agent = h2_agent(Some(&pki), false);
    round_trip(&format!("ws://{plain}/"), through(agent.clone()), "h1").await;
    // A TLS server that offers no ALPN: the WebSocket opens on that same connection.
    let secure = tls_echo_server(&pki).await;
    round_trip(
        &format!("wss://localhost:{}/", secure.port()),
        through(agent),
        "h1",
    )
    .await;
}

async fn recording_echo_server_plain() -> (std::net::SocketAddr, ()) {
    (echo_server(ServerOptions::default()).await, ())
}

#[tokio::test]
async fn goaway_fails_the_websockets_on_the_connection_and_a_new_one_is_made() {
    let (address, counts) = h2_server(Speaks::H2, ServerOptions::default(), None).await;
    let agent = h2_agent(None, true);
    let url = format!("ws://{address}/");
    let (first, _) = connect(&url, through(agent.clone())).await;
    let (second, _) = connect(&url, through(agent.clone())).await;
    counts.goaway.notify_waiters();
    for ws in [first, second] {
        let error = within(ws.closed()).await.expect_err("not a clean close");
        assert_eq!(error.close_code(), Some(1006));
    }
    // The next WebSocket to the origin gets a new connection.
    round_trip(&url, through(agent), "after goaway").await;
    assert_eq!(counts.h2(), 2);
}
