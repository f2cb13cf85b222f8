//! Against a real peer, Python `websockets` (PyPI), on 127.0.0.1, started from
//! `tests/interop/*.py` and stopped by PID: permessage-deflate, as a server for our client and
//! as a client of our server; keepalive, with a server that pings us while our owner reads
//! nothing, and through a TCP relay that turns half-open.
//!
//! The Python: see `support::python` (skipped locally without one, failing under CI).
#![cfg(feature = "deflate")]

mod support;

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::python::{PythonEcho, python, scripts};
use support::*;
use whatwg_websocket::proto::deflate::DeflateOptions;

use whatwg_websocket::{CloseInfo, Failure, Keepalive, Message, ServerOptions, StreamOptions};

fn messages() -> Vec<Message> {
    let json = r#"{"type":"subscribe","id":"7","payload":{"query":"subscription { trades }"}}"#;
    vec![
        Message::text(json),
        Message::text("ü".repeat(20_000)),
        Message::binary((0..200_000u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()),
        Message::text(""),
        Message::text(json),
        Message::binary(vec![0u8; 1 << 20]),
    ]
}

#[tokio::test]
async fn our_client_talks_deflate_to_a_python_websockets_server() {
    let Some(python) = python() else { return };
    for (args, client, agreed) in [
        (&[][..], DeflateOptions::default(), "permessage-deflate"),
        (
            &["10", "1"][..],
            DeflateOptions::default(),
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=10",
        ),
        (
            &[][..],
            DeflateOptions {
                server_no_context_takeover: true,
                client_max_window_bits: Some(9),
                ..DeflateOptions::default()
            },
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=9",
        ),
    ] {
        let server = PythonEcho::start(&python, args, false);
        let port = server.port;
        let options = StreamOptions {
            deflate: Some(client),
            ..Default::default()
        };
        let (ws, mut opened) = connect(&format!("ws://127.0.0.1:{port}/"), options).await;
        assert_eq!(opened.extensions, agreed);
        for message in messages() {
            within(opened.writable.send(message.clone())).await.unwrap();
            assert_eq!(
                within(opened.readable.next()).await.unwrap().unwrap(),
                message,
                "{agreed}"
            );
        }
        ws.close(CloseInfo {
            close_code: Some(1000),
            reason: "done".into(),
        })
        .unwrap();
        assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1000));
    }
}

#[tokio::test]
async fn a_python_websockets_client_talks_deflate_to_our_server() {
    let Some(python) = python() else { return };
    let address = echo_server(ServerOptions::default()).await;
    for args in [&[][..], &["9"][..]] {
        let output = within(
            tokio::process::Command::new(&python)
                .arg(scripts().join("client.py"))
                .arg(format!("ws://{address}/"))
                .args(args)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("python runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.starts_with("ok permessage-deflate"),
            "{args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

// ----- keepalive against real peers -----

/// Short keepalive periods, so that real time stays short.
fn quick_keepalive() -> Keepalive {
    Keepalive {
        interval: Duration::from_millis(300),
        timeout: Duration::from_millis(300),
    }
}

#[tokio::test]
async fn a_python_websockets_server_that_pings_keeps_an_owner_that_reads_nothing() {
    let Some(python) = python() else { return };
    // websockets pings every second and closes with 1011 unless a pong comes within 2 s (our
    // keeper starts reading for an owner that reads nothing after a second, then at once).
    let server = PythonEcho::start_script(&python, "keepalive_server.py", &["1", "2"], false);
    let options = StreamOptions {
        keepalive: Some(quick_keepalive()),
        ..Default::default()
    };
    let (ws, mut opened) = connect(&format!("ws://127.0.0.1:{}/", server.port), options).await;
    // The owner is busy elsewhere for 4 s: neither the readable nor `closed` is polled.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Still open: an echo goes through, and our keepalive measured Python's round trip.
    let message = Message::text("still open");
    within(opened.writable.send(message.clone())).await.unwrap();
    assert_eq!(
        within(opened.readable.next()).await.unwrap().unwrap(),
        message
    );
    assert!(ws.latency().is_some(), "no round trip measured");
    let rtt = within(ws.ping(b"rtt").unwrap()).await.unwrap();
    assert!(rtt < Duration::from_secs(1), "{rtt:?}");
    ws.close(CloseInfo {
        close_code: Some(1000),
        reason: String::new(),
    })
    .unwrap();
    assert_eq!(within(ws.closed()).await.unwrap().close_code, Some(1000));
}

/// A TCP relay that forwards both ways until `stop` is set; from then on it forwards
/// nothing and keeps both connections open: a half-open path, as after a NAT or a peer's
/// machine drops off the network.
async fn relay(upstream: std::net::SocketAddr, stop: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let forward = |mut from: tokio::net::tcp::OwnedReadHalf,
                       mut to: tokio::net::tcp::OwnedWriteHalf,
                       stop: Arc<AtomicBool>| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if stop.load(Ordering::SeqCst) {
                    continue; // Swallowed: nothing gets through any more.
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            // Keep the other half open: the path is half-open, not closed.
            std::future::pending::<()>().await;
            drop(to);
        };
        tokio::join!(
            forward(client_read, server_write, stop.clone()),
            forward(server_read, client_write, stop)
        );
    });
    address
}

#[tokio::test]
async fn keepalive_detects_a_half_open_path_to_a_python_websockets_server() {
    let Some(python) = python() else { return };
    // The server does not ping: only our keepalive can notice.
    let server = PythonEcho::start(&python, &[], true);
    let stop = Arc::new(AtomicBool::new(false));
    let upstream = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let address = relay(upstream, stop.clone()).await;
    let keepalive = quick_keepalive();
    let options = StreamOptions {
        keepalive: Some(keepalive),
        ..Default::default()
    };
    let (ws, mut opened) = connect(&format!("ws://{address}/"), options).await;
    // Alive through the relay for a while, reading.
    let reader = tokio::spawn(async move {
        let mut last = None;
        while let Some(item) = opened.readable.next().await {
            last = Some(item);
        }
        last
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!reader.is_finished(), "a live path was failed");
    assert!(ws.latency().is_some(), "the relay carried no pong");
    stop.store(true, Ordering::SeqCst);
    let start = std::time::Instant::now();
    let error = within(ws.closed()).await.unwrap_err();
    let detected = start.elapsed();
    assert!(
        matches!(error.failure(), Some(Failure::KeepaliveTimeout)),
        "{error}"
    );
    // At most interval + timeout after the last arrival (the last pong), plus scheduling.
    assert!(
        detected <= keepalive.interval * 2 + keepalive.timeout + Duration::from_millis(500),
        "detected after {detected:?}"
    );
    let last = within(reader).await.unwrap();
    assert!(matches!(last, Some(Err(_))), "{last:?}");
}
