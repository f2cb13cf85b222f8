//! permessage-deflate against a real peer: Python `websockets` (PyPI), as a server for our
//! client and as a client of our server, on 127.0.0.1, started from `tests/interop/*.py` and
//! stopped by PID.
//!
//! The Python comes from `INTEROP_PYTHON`, else `target/interop-venv/bin/python` (`.ci/run`
//! creates it: `python3 -m venv target/interop-venv && target/interop-venv/bin/pip install
//! websockets`). Without one the tests are skipped locally, and fail under CI.
#![cfg(feature = "deflate")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use futures_util::{SinkExt, StreamExt};
use support::*;
use whatwg_websocket::proto::deflate::DeflateOptions;
use whatwg_websocket::{CloseInfo, Message, ServerOptions, StreamOptions};

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python")
        });
    let works = Command::new(&candidate)
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide Python websockets at {}",
        candidate.display()
    );
    eprintln!(
        "skipped: no Python with `websockets` at {}",
        candidate.display()
    );
    None
}

/// A child process killed (by PID) and reaped when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the Python echo server with `args`; returns it and its port.
fn python_server(python: &Path, args: &[&str]) -> (Child, u16) {
    let mut child = Child(
        Command::new(python)
            .arg(scripts().join("echo_server.py"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python starts"),
    );
    let stdout = child.0.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the server prints its port");
    let port = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, port)
}

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
        let (_server, port) = python_server(&python, args);
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
