//! An echo server for the Autobahn|Testsuite `fuzzingclient`, with default settings except
//! that every message is compressed (kosoku errors on an uncompressed one in the compression
//! cases, which RFC 7692 allows). Used by `autobahn/run`.
//!
//! `cargo run --release --example autobahn_server -- 127.0.0.1:9002`

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use whatwg_websocket::proto::deflate::DeflateOptions;
use whatwg_websocket::{Opened, ServerOptions, accept};

async fn echo(socket: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
    socket.set_nodelay(true)?;
    let options = ServerOptions {
        deflate: Some(DeflateOptions {
            min_message_size: 0,
            always_compress: true,
            ..DeflateOptions::default()
        }),
        ..ServerOptions::default()
    };
    let ws = accept(socket, options).await?;
    let Opened {
        mut readable,
        mut writable,
        ..
    } = ws.opened().await?;
    while let Some(message) = readable.next().await {
        if writable.send(message?).await.is_err() {
            break;
        }
    }
    let _ = ws.closed().await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = TcpListener::bind(&address).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(error) = echo(socket).await {
                eprintln!("connection: {error}");
            }
        });
    }
}
