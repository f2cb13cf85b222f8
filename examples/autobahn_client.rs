//! The Autobahn|Testsuite client driver: runs every case of a `fuzzingserver` with default
//! settings, echoing what the case sends. Used by `autobahn/run`.
//!
//! Two settings differ for the runner's sake (see `autobahn/README.md`): every message is
//! compressed (kosoku errors on an uncompressed one in the compression cases, which RFC 7692
//! allows), and the offer names `client_no_context_takeover` (without it kosoku skips 13.2,
//! 13.5 and 13.6).
//!
//! `cargo run --release --example autobahn_client -- ws://127.0.0.1:9001`

use futures_util::{SinkExt, StreamExt};
use whatwg_websocket::proto::deflate::DeflateOptions;
use whatwg_websocket::{Message, Opened, StreamOptions, WebSocketStream};

const AGENT: &str = "whatwg-websocket";

/// Opens `url` and echoes every message until the connection ends.
async fn echo(url: &str) -> Result<Vec<Message>, Box<dyn std::error::Error>> {
    let options = StreamOptions {
        deflate: Some(DeflateOptions {
            min_message_size: 0,
            always_compress: true,
            client_no_context_takeover: true,
            ..DeflateOptions::default()
        }),
        ..StreamOptions::default()
    };
    let ws = WebSocketStream::new(url, options)?;
    let Opened {
        mut readable,
        mut writable,
        ..
    } = ws.opened().await?;
    let mut received = Vec::new();
    while let Some(message) = readable.next().await {
        let message = message?;
        received.push(message.clone());
        if writable.send(message).await.is_err() {
            break;
        }
    }
    let _ = ws.closed().await;
    Ok(received)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let count = match echo(&format!("{base}/getCaseCount")).await?.first() {
        Some(Message::Text(text)) => text.parse::<u32>()?,
        other => return Err(format!("unexpected case count {other:?}").into()),
    };
    println!("running {count} cases");
    for case in 1..=count {
        if let Err(error) = echo(&format!("{base}/runCase?case={case}&agent={AGENT}")).await {
            // A case that fails the connection on purpose ends here; the report judges it.
            eprintln!("case {case}: {error}");
        }
    }
    // The fuzzing server writes its reports and exits; how it ends this connection is not
    // judged.
    if let Err(error) = echo(&format!("{base}/updateReports?agent={AGENT}")).await {
        eprintln!("updateReports: {error}");
    }
    println!("reports requested");
    Ok(())
}
