//! permessage-deflate against a real peer: Python `websockets` (PyPI), as a server for our
//! client and as a client of our server, on 127.0.0.1, started from `tests/interop/*.py` and
//! stopped by PID.
//!
//! The Python: see `support::python` (skipped locally without one, failing under CI).
#![cfg(feature = "deflate")]

mod support;

use futures_util::{SinkExt, StreamExt};
use support::python::{PythonEcho, python, scripts};
use support::*;
use whatwg_websocket::proto::deflate::DeflateOptions;
use whatwg_websocket::{CloseInfo, Message, ServerOptions, StreamOptions};

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
