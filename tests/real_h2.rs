//! WebSockets over HTTP/2 against real servers, started by `tests/h2peers/run` on 127.0.0.1
//! and stopped by PID (`tests/h2peers/install` sets them up; `.ci/run` does):
//! - RFC 8441 servers: Python hypercorn with an ASGI echo app (h2c and TLS) and Node's
//!   `http2` module with `enableConnectProtocol` (h2c and TLS);
//! - HTTP/2 servers without it, where the agent must fall back to HTTP/1.1: a Node HTTP/2
//!   server that also speaks HTTP/1.1, and nginx with `http2` in front of our echo server.
//!
//! The same nginx also fronts Python `websockets` (`tests/interop/echo_server.py`, with the
//! Python of `tests/interop_python.rs`) for a regression test of the closing handshake over
//! TLS right behind a large message.
//!
//! Without them installed the tests are skipped locally, and fail under CI.

mod support;

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::daemon::Daemon;
use support::pki::*;
use support::proxies::{opening_error, through};
use support::python::{PythonEcho, python};
use support::*;
use whatwg_websocket::dispatcher::{DispatchFuture, Dispatcher, upgrade_http1};
use whatwg_websocket::handshake::{HandshakeError, HandshakeRequest};
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

/// A dispatcher for `wss://localhost:<port>/`: TCP to 127.0.0.1 with a small send buffer, TLS
/// (tokio-rustls, as the agent's) with `tls`, and the HTTP/1.1 upgrade. With the kernel's
/// autotuned buffers a loopback socket swallows 1 MiB at once; a small one is full while a
/// large message goes out, as a socket is on a busy machine or a slow network.
struct SmallSendBuffer {
    tls: std::sync::Arc<rustls::ClientConfig>,
    send_buffer: u32,
}

impl Dispatcher for SmallSendBuffer {
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture {
        let tls = self.tls.clone();
        let send_buffer = self.send_buffer;
        Box::pin(async move {
            let (_, port) = request.host_and_port();
            let socket = tokio::net::TcpSocket::new_v4().map_err(Failure::Io)?;
            socket
                .set_send_buffer_size(send_buffer)
                .map_err(Failure::Io)?;
            let tcp = socket
                .connect(([127, 0, 0, 1], port).into())
                .await
                .map_err(Failure::Io)?;
            tcp.set_nodelay(true).map_err(Failure::Io)?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(Failure::Io)?;
            upgrade_http1(tls, &request, 65536).await
        })
    }
}

/// A regression test: the Close queued right behind a 1 MiB message over TLS must leave the
/// process. The connection used to write the last of the message and the Close into the TLS
/// stream (rustls took them into its buffer) when the socket was full, and never flushed that
/// stream again, so they stayed in rustls and the closing handshake timed out (1006).
#[tokio::test]
async fn a_close_right_behind_a_1_mib_message_through_nginx_tls_to_python_websockets_completes() {
    const TRIES: usize = 40;
    let Some(python) = python() else {
        return;
    };
    if !support::daemon::installed(&[Path::new("/usr/sbin/nginx")], "tests/proxies/install") {
        return;
    }
    let pki = pki();
    let pem = PemFiles::new(&pki, "h2peers");
    let backend = PythonEcho::start(&python, &[], true);
    let nginx = start(
        "nginx-h2",
        &[&backend.port.to_string(), &pem.cert(), &pem.key()],
    );
    // HTTP/1.1 through TLS, trusting the test CA only.
    let mut tls = (*pki.client_config()).clone();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let dispatcher: std::sync::Arc<dyn Dispatcher> = std::sync::Arc::new(SmallSendBuffer {
        tls: std::sync::Arc::new(tls),
        send_buffer: 32 * 1024,
    });
    let url = format!("wss://localhost:{}/", nginx.port);
    let payload = Message::binary((0..1u32 << 20).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    let mut failures = Vec::new();
    for attempt in 0..TRIES {
        let options = StreamOptions {
            dispatcher: Some(dispatcher.clone()),
            // A lost Close fails the try in 2 s instead of the default 5 s.
            close_timeout: Duration::from_secs(2),
            // `closed` reads the echo (if the server sends it before its Close) ahead.
            read_high_water_mark: 2 << 20,
            deflate: None,
            ..Default::default()
        };
        let (ws, mut opened) = connect(&url, options).await;
        // Queued, not flushed: the Close goes right behind it.
        within(opened.writable.feed(payload.clone())).await.unwrap();
        ws.close(CloseInfo {
            close_code: Some(4000),
            reason: "done".into(),
        })
        .unwrap();
        match within(ws.closed()).await {
            Ok(info) if (info.close_code, info.reason.as_str()) == (Some(4000), "done") => {
                // The server answers the Close at once, and echoes the message only if it got
                // to it first.
                if let Some(echoed) = within(opened.readable.next()).await {
                    assert!(
                        echoed.unwrap() == payload,
                        "{}: try {attempt}: a wrong echo",
                        nginx.what
                    );
                }
            }
            other => failures.push(format!("try {attempt}: {other:?}")),
        }
    }
    eprintln!(
        "{} of {TRIES} closing handshakes failed through {}",
        failures.len(),
        nginx.what
    );
    assert!(
        failures.is_empty(),
        "{} of {TRIES} closing handshakes failed through {}: {failures:#?}",
        failures.len(),
        nginx.what
    );
}
