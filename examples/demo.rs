//! The RFC 6455 codec over a real loopback TCP connection, with no network beyond 127.0.0.1.
//!
//! An embedded echo server (server role) and a client (client role) exchange text, binary, a
//! ping and the closing handshake, both driving the sans-IO core over blocking sockets. The
//! opening HTTP handshake and the async `WebSocketStream`/`WebSocket` faces build on this core.
//!
//! `cargo run --example demo`

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use bytes::BytesMut;
use whatwg_websocket::proto::{
    CloseCode, CloseFrame, Frame, FrameEncoder, Incoming, Limits, Message, MessageDecoder, OpCode,
    ProtocolError, Role,
};

/// One endpoint: a socket, a read buffer, and the codec for its role.
struct Endpoint {
    socket: TcpStream,
    read_buf: BytesMut,
    decoder: MessageDecoder,
    encoder: FrameEncoder,
}

impl Endpoint {
    fn new(socket: TcpStream, role: Role) -> Self {
        socket.set_nodelay(true).expect("TCP_NODELAY");
        Self {
            socket,
            read_buf: BytesMut::with_capacity(4096),
            decoder: MessageDecoder::new(role, Limits::default()),
            encoder: FrameEncoder::new(role),
        }
    }

    fn send(&mut self, frame: Frame) -> std::io::Result<()> {
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out);
        self.socket.write_all(&out)
    }

    /// The next thing the peer sent, or `None` when it closed the connection.
    fn receive(&mut self) -> std::io::Result<Option<Result<Incoming, ProtocolError>>> {
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some(incoming)) => return Ok(Some(Ok(incoming))),
                Ok(None) => {}
                Err(error) => return Ok(Some(Err(error))),
            }
            let mut chunk = [0; 4096];
            let n = self.socket.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.read_buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn message_frame(message: Message) -> Frame {
    match message {
        Message::Text(text) => Frame::new(OpCode::Text, text.into_bytes()),
        Message::Binary(data) => Frame::new(OpCode::Binary, data),
    }
}

/// Echoes messages, answers pings, and completes the closing handshake.
fn echo_server(socket: TcpStream) -> std::io::Result<()> {
    let mut server = Endpoint::new(socket, Role::Server);
    while let Some(incoming) = server.receive()? {
        match incoming {
            Ok(Incoming::Message(message)) => server.send(message_frame(message))?,
            Ok(Incoming::Ping(payload)) => server.send(Frame::new(OpCode::Pong, payload))?,
            Ok(Incoming::Pong(_)) => {}
            Ok(Incoming::Close(close)) => {
                let payload = close.map(|c| c.to_payload()).unwrap_or_default();
                server.send(Frame::new(OpCode::Close, payload))?;
                break; // The server closes TCP first.
            }
            Err(error) => {
                let close = CloseFrame::new(CloseCode::from(&error), "")
                    .expect("protocol codes are sendable");
                server.send(Frame::new(OpCode::Close, close.to_payload()))?;
                break;
            }
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    println!("echo server listening on {address}");
    let server = thread::spawn(move || -> std::io::Result<()> {
        let (socket, _) = listener.accept()?;
        echo_server(socket)
    });

    let mut client = Endpoint::new(TcpStream::connect(address)?, Role::Client);
    let outgoing = [
        Message::text("hello, κόσμε"),
        Message::binary(vec![0xDE, 0xAD, 0xBE, 0xEF]),
    ];
    for message in outgoing {
        client.send(message_frame(message.clone()))?;
        match client.receive()? {
            Some(Ok(Incoming::Message(echo))) => {
                assert_eq!(echo, message);
                println!("sent and got back {echo:?}");
            }
            other => panic!("expected an echo, got {other:?}"),
        }
    }
    client.send(Frame::new(OpCode::Ping, "heartbeat"))?;
    if let Some(Ok(Incoming::Pong(payload))) = client.receive()? {
        println!("ping answered with pong {payload:?}");
    }
    let goodbye = CloseFrame::new(CloseCode::NORMAL, "done").expect("valid close");
    client.send(Frame::new(OpCode::Close, goodbye.to_payload()))?;
    match client.receive()? {
        Some(Ok(Incoming::Close(Some(reply)))) => {
            println!(
                "closed cleanly: code {} reason {:?}",
                reply.code(),
                reply.reason()
            );
        }
        other => panic!("expected the server's Close, got {other:?}"),
    }
    // The server closes TCP after its Close; the client sees end of stream.
    assert!(client.receive()?.is_none());
    server.join().expect("server thread")?;
    println!("server closed the TCP connection; done");
    Ok(())
}
