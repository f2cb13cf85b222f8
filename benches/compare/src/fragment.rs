//! Scenario 5b's echo: each message goes back as frames of a fixed size (the first with the
//! message's opcode, the rest continuations), so that the clients reassemble it. Built on the
//! crate's sans-IO parts: the server handshake, the message decoder and the frame encoder.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use whatwg_websocket::handshake::ServerHandshake;
use whatwg_websocket::proto::{
    Frame, FrameEncoder, Incoming, Limits, Message, MessageDecoder, OpCode, Role,
};

/// The longest request head accepted.
const MAX_HEAD: usize = 16 << 10;

/// Serves one connection until it closes or breaks.
pub async fn echo(mut socket: TcpStream, fragment: usize) {
    let _ = serve(&mut socket, fragment).await;
}

async fn serve(socket: &mut TcpStream, fragment: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let (request, head) = loop {
        if let Some(parsed) = ServerHandshake::decode_request(&buf, MAX_HEAD)? {
            break parsed;
        }
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    };
    buf.advance(head);
    let handshake = ServerHandshake::new(request)?;
    let mut response = String::new();
    handshake.encode_response(None, &mut response);
    socket.write_all(response.as_bytes()).await?;

    let mut decoder = MessageDecoder::new(Role::Server, Limits::unlimited());
    let mut encoder = FrameEncoder::new(Role::Server);
    let mut out = BytesMut::new();
    loop {
        while let Some(incoming) = decoder.decode(&mut buf)? {
            match incoming {
                Incoming::Message(message) => {
                    let opcode = match &message {
                        Message::Text(_) => OpCode::Text,
                        Message::Binary(_) => OpCode::Binary,
                    };
                    let payload = message.into_bytes();
                    let count = payload.len().div_ceil(fragment).max(1);
                    for i in 0..count {
                        let end = ((i + 1) * fragment).min(payload.len());
                        let frame = Frame {
                            fin: i + 1 == count,
                            rsv: 0,
                            opcode: if i == 0 { opcode } else { OpCode::Continuation },
                            payload: payload.slice(i * fragment..end),
                        };
                        encoder.encode(&frame, &mut out);
                    }
                }
                Incoming::Ping(payload) => {
                    encoder.encode(&Frame::new(OpCode::Pong, payload), &mut out);
                }
                Incoming::Pong(_) => {}
                Incoming::Close(_) => {
                    encoder.encode(&Frame::new(OpCode::Close, bytes::Bytes::new()), &mut out);
                    socket.write_all(&out).await?;
                    return Ok(());
                }
            }
        }
        if !out.is_empty() {
            socket.write_all(&out).await?;
            out.clear();
        }
        if socket.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}
