//! WebSockets over HTTP/2 against real servers, started by `tests/h2peers/run` on 127.0.0.1
//! and stopped by PID (`tests/h2peers/install` sets them up; `.ci/run` does):
//! - RFC 8441 servers: Python hypercorn with an ASGI echo app (h2c and TLS) and Node's
//!   `http2` module with `enableConnectProtocol` (h2c and TLS);
//! - HTTP/2 servers without it, where the agent must fall back to HTTP/1.1: a Node HTTP/2
//!   server that also speaks HTTP/1.1, and nginx with `http2` in front of our echo server.
//!
//! Without them installed the tests are skipped locally, and fail under CI.

mod support;

use std::path::Path;

use futures_util::{SinkExt, StreamExt};
use support::daemon::Daemon;
use support::pki::*;
use support::proxies::{opening_error, through};
use support::*;
use whatwg_websocket::handshake::HandshakeError;
use whatwg_websocket::{
    Agent, AgentOptions, CloseInfo, Failure, Message, Opened, ServerOptions, StreamOptions,
};

fn installed() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/h2peers-venv/bin/python");
    let paths = [python.as_path(), Path::new("/usr/sbin/nginx")];
    support::daemon::installed(&paths, "tests/h2peers/install (and tests/proxies/install)")
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn start(kind: &str, extra: &[&str]) -> Daemon {
    Daemon::start("tests/h2peers/run", "target/h2peers", kind, extra)
}

fn agent(pki: &TestPki, h2_only: bool) -> Agent {
    Agent::with_options(AgentOptions {
        allow_h2: true,
        h2_prior_knowledge: true,
        h2_only,
        tls: pki.roots(),
        ..Default::default()
    })
}

/// Two WebSockets at once on `url` (so, over HTTP/2, on one connection): each echoes text and
/// binary of each length form, picks the subprotocol, and closes with a code.
async fn exercise(url: &str, agent: &Agent, what: &str) {
    let options = || StreamOptions {
        protocols: vec!["chat".into()],
        ..through(agent.clone())
    };
    let (a, mut a_open) = connect(url, options()).await;
    let (b, mut b_open) = connect(url, options()).await;
    for opened in [&a_open, &b_open] {
        assert_eq!(opened.protocol, "chat", "{what}");
    }
    for len in [5, 300, 70_000] {
        for (i, opened) in [&mut a_open, &mut b_open].into_iter().enumerate() {
            let text = format!("{i}").repeat(len);
            let binary = vec![i as u8; len];
            within(opened.writable.send(Message::text(text.clone())))
                .await
                .unwrap();
            within(opened.writable.send(Message::binary(binary.clone())))
                .await
                .unwrap();
            let echoed = within(opened.readable.next()).await.unwrap().unwrap();
            assert_eq!(echoed, Message::text(text), "{what}");
            let echoed = within(opened.readable.next()).await.unwrap().unwrap();
            assert_eq!(echoed, Message::binary(binary), "{what}");
        }
    }
    for (ws, code) in [(a, 4000), (b, 1000)] {
        ws.close(CloseInfo {
            close_code: Some(code),
            reason: "bye".into(),
        })
        .unwrap();
        let info = within(ws.closed())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(
            (info.close_code, info.reason.as_str()),
            (Some(code), "bye"),
            "{what}"
        );
    }
    drop((a_open, b_open));
}

#[tokio::test]
async fn hypercorn_over_h2c_and_tls() {
    if !installed() {
        return;
    }
    let pki = pki();
    let pem = PemFiles::new(&pki, "h2peers");
    let plain = start("hypercorn", &[]);
    let secure = start("hypercorn-tls", &[&pem.cert(), &pem.key()]);
    let h2_only = agent(&pki, true);
    exercise(
        &format!("ws://127.0.0.1:{}/echo", plain.port),
        &h2_only,
        &plain.what,
    )
    .await;
    let url = format!("wss://localhost:{}/echo", secure.port);
    exercise(&url, &h2_only, &secure.what).await;
}

#[tokio::test]
async fn node_http2_with_enable_connect_protocol() {
    if !installed() {
        return;
    }
    let pki = pki();
    let pem = PemFiles::new(&pki, "h2peers");
    let plain = start("node-h2", &[]);
    let secure = start("node-h2", &[&pem.cert(), &pem.key()]);
    let h2_only = agent(&pki, true);
    exercise(
        &format!("ws://127.0.0.1:{}/", plain.port),
        &h2_only,
        &plain.what,
    )
    .await;
    let url = format!("wss://localhost:{}/", secure.port);
    exercise(&url, &h2_only, &secure.what).await;
}

/// A server whose HTTP/2 lacks extended CONNECT: the agent falls back to HTTP/1.1, and an
/// HTTP/2-only agent fails.
async fn falls_back(url: &str, pki: &TestPki, what: &str) {
    exercise(url, &agent(pki, false), what).await;
    let error = opening_error(url, through(agent(pki, true))).await;
    assert!(
        matches!(
            error.failure(),
            Some(Failure::Handshake(HandshakeError::NoExtendedConnect))
        ),
        "{what}: {error:?}"
    );
}

#[tokio::test]
async fn node_http2_without_extended_connect_falls_back_to_http1() {
    if !installed() {
        return;
    }
    let pki = pki();
    let pem = PemFiles::new(&pki, "h2peers");
    let node = start("node-h2-noconnect", &[&pem.cert(), &pem.key()]);
    falls_back(&format!("wss://localhost:{}/", node.port), &pki, &node.what).await;
}

#[tokio::test]
async fn nginx_with_http2_falls_back_to_http1() {
    if !installed() {
        return;
    }
    let pki = pki();
    let pem = PemFiles::new(&pki, "h2peers");
    let backend = echo_server(ServerOptions {
        protocols: vec!["chat".into()],
        ..Default::default()
    })
    .await;
    let nginx = start(
        "nginx-h2",
        &[&backend.port().to_string(), &pem.cert(), &pem.key()],
    );
    falls_back(
        &format!("wss://localhost:{}/", nginx.port),
        &pki,
        &nginx.what,
    )
    .await;
}

#[tokio::test]
async fn the_stream_face_sees_opened_over_real_h2() {
    if !installed() {
        return;
    }
    let pki = pki();
    let node = start("node-h2", &[]);
    let url = format!("ws://127.0.0.1:{}/", node.port);
    let (
        ws,
        Opened {
            protocol,
            extensions,
            ..
        },
    ) = connect(&url, through(agent(&pki, true))).await;
    // Node's echo agrees to no extension and no subprotocol was offered.
    assert_eq!((protocol.as_str(), extensions.as_str()), ("", ""));
    ws.close(Default::default()).unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1005));
}
