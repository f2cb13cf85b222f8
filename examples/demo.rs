//! An embedded echo server on 127.0.0.1 (the server role) and a `WebSocketStream` client that
//! exchanges text and binary with it, then closes cleanly. No network beyond loopback.
//!
//! `cargo run --example demo`

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use whatwg_websocket::{
    CloseInfo, Message, Opened, ServerOptions, StreamOptions, WebSocketStream, accept,
};

/// Echoes every message back until the client closes.
async fn echo(socket: tokio::net::TcpStream) -> Result<(), Box<dyn std::error::Error>> {
    let options = ServerOptions {
        protocols: vec!["echo".into()],
        ..Default::default()
    };
    let ws = accept(socket, options).await?;
    let Opened {
        mut readable,
        mut writable,
        ..
    } = ws.opened().await?;
    while let Some(message) = readable.next().await {
        writable.send(message?).await?;
    }
    let info = ws.closed().await?;
    println!(
        "server: client closed with {:?} {:?}",
        info.close_code, info.reason
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/demo", listener.local_addr()?);
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await?;
        echo(socket)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    });
    println!("echo server on {url}");

    let options = StreamOptions {
        protocols: vec!["echo".into()],
        ..Default::default()
    };
    let ws = WebSocketStream::new(&url, options)?;
    let Opened {
        mut readable,
        mut writable,
        protocol,
        ..
    } = ws.opened().await?;
    println!("client: open, subprotocol {protocol:?}");

    for message in [
        Message::text("hello, κόσμε"),
        Message::binary(vec![0xDE, 0xAD, 0xBE, 0xEF]),
    ] {
        writable.send(message.clone()).await?;
        let echoed = readable.next().await.ok_or("connection ended")??;
        assert_eq!(echoed, message);
        println!("client: sent and got back {echoed:?}");
    }

    ws.close(CloseInfo {
        close_code: Some(1000),
        reason: "done".into(),
    })?;
    let info = ws.closed().await?;
    println!(
        "client: closed cleanly, server echoed code {:?}",
        info.close_code
    );
    server.await??;
    Ok(())
}
