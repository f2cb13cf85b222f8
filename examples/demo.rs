//! An embedded echo server on 127.0.0.1 (the server role), a `WebSocketStream` client that
//! exchanges text and binary with it and closes cleanly, then the same with the EventTarget
//! `WebSocket` and its listeners, then two WebSockets sharing one HTTP/2 connection (RFC 8441,
//! experimental). No network beyond loopback.
//!
//! `cargo run --example demo`

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use whatwg_websocket::{
    Agent, AgentOptions, CloseInfo, Event, Failure, Message, Opened, ServerOptions, StreamOptions,
    WebSocket, WebSocketStream, accept, accept_h2,
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
        // One connection for each face.
        for _ in 0..2 {
            let (socket, _) = listener.accept().await?;
            echo(socket)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Ok::<_, std::io::Error>(())
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

    // The EventTarget face: listeners run on the socket's task, in the standard's order.
    let ws = WebSocket::new(&url, "echo")?;
    let (done, finished) = tokio::sync::oneshot::channel();
    let done = std::sync::Mutex::new(Some(done));
    let target = ws.downgrade();
    ws.set_onopen(move |_: &Event| {
        if let Some(ws) = target.upgrade() {
            println!("WebSocket: open, subprotocol {:?}", ws.protocol());
            ws.send("hello from WebSocket").expect("open");
        }
    });
    let target = ws.downgrade();
    ws.set_onmessage(move |event: &Event| {
        println!("WebSocket: message {:?}", event.data());
        if let Some(ws) = target.upgrade() {
            ws.close(Some(1000), Some("done")).expect("a valid code");
        }
    });
    ws.set_onclose(move |event: &Event| {
        println!(
            "WebSocket: close, clean {} code {} reason {:?}",
            event.was_clean(),
            event.code(),
            event.reason()
        );
        if let Some(done) = done.lock().expect("not poisoned").take() {
            let _ = done.send(event.was_clean());
        }
    });
    assert!(finished.await?, "the WebSocket closed cleanly");
    server.await??;
    over_h2().await
}

/// Two WebSockets on one HTTP/2 connection (h2c with prior knowledge), each one stream.
async fn over_h2() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}/demo", listener.local_addr()?);
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.map_err(Failure::Io)?;
        let mut connection = accept_h2(socket, ServerOptions::default()).await?;
        while let Some(ws) = connection.accept().await {
            tokio::spawn(async move {
                let Ok(Opened {
                    mut readable,
                    mut writable,
                    ..
                }) = ws.opened().await
                else {
                    return;
                };
                while let Some(Ok(message)) = readable.next().await {
                    let _ = writable.send(message).await;
                }
                let _ = ws.closed().await;
            });
        }
        Ok::<_, Failure>(())
    });
    let agent = Agent::with_options(AgentOptions {
        h2_prior_knowledge: true,
        h2_only: true,
        ..Default::default()
    });
    for i in 1..=2 {
        let options = StreamOptions {
            dispatcher: Some(agent.clone().into()),
            ..Default::default()
        };
        let ws = WebSocketStream::new(&url, options)?;
        let mut opened = ws.opened().await?;
        opened
            .writable
            .send(Message::text(format!("stream {i}")))
            .await?;
        let echoed = opened.readable.next().await.ok_or("connection ended")??;
        println!("HTTP/2: sent and got back {echoed:?}");
        ws.close(CloseInfo::default())?;
        ws.closed().await?;
    }
    println!("HTTP/2: both WebSockets closed cleanly, over one connection");
    Ok(())
}
