//! The HTTP/1.1 upgrade over an established byte stream, shared by the dispatchers.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Io, Upgraded};
use crate::Failure;
use crate::handshake::{HandshakeError, HandshakeRequest, Http1Handshake, has_head_end, negotiate};
use crate::proto::{CloseCode, CloseFrame, Frame, FrameEncoder, OpCode, Role};

/// Sends the upgrade request for `request` over `io` and checks the response; the response head
/// may be at most `max_head` bytes.
pub async fn upgrade_http1(
    mut io: impl Io,
    request: &HandshakeRequest,
    max_head: usize,
) -> Result<Upgraded, Failure> {
    let handshake = Http1Handshake::new();
    let mut head = String::with_capacity(256);
    handshake.encode_request(request, &mut head);
    io.write_all(head.as_bytes()).await.map_err(Failure::Io)?;
    io.flush().await.map_err(Failure::Io)?;
    let mut buf = BytesMut::with_capacity(1024);
    let mut scanned = 0;
    loop {
        // Parse only once the head can be complete, so that a trickling peer costs linear time.
        if has_head_end(&buf, &mut scanned) || buf.len() > max_head {
            let decoded =
                Http1Handshake::decode_response(&buf, max_head).map_err(Failure::Handshake)?;
            if let Some((response, len)) = decoded {
                handshake.validate(&response).map_err(Failure::Handshake)?;
                let negotiated = match negotiate(request, response.headers()) {
                    Ok(negotiated) => negotiated,
                    Err(error @ HandshakeError::InvalidExtension(_)) => {
                        // The upgrade happened: fail the WebSocket connection with 1010.
                        refuse_extension(&mut io).await;
                        return Err(Failure::Handshake(error));
                    }
                    Err(error) => return Err(Failure::Handshake(error)),
                };
                buf.advance(len);
                return Ok(Upgraded::new(io, buf, negotiated));
            }
        }
        if io.read_buf(&mut buf).await.map_err(Failure::Io)? == 0 {
            return Err(Failure::Handshake(HandshakeError::ConnectionClosed));
        }
    }
}

/// Sends Close 1010 (mandatory extension: the answer was unacceptable) on an upgraded
/// connection and closes it, as far as the socket takes it at once.
pub(super) async fn refuse_extension(io: &mut impl Io) {
    let close = CloseFrame::new(CloseCode::MANDATORY_EXTENSION, "")
        .map(|f| f.to_payload())
        .unwrap_or_default();
    let mut frame = BytesMut::new();
    FrameEncoder::new(Role::Client).encode(&Frame::new(OpCode::Close, close), &mut frame);
    let _ = io.write_all(&frame).await;
    let _ = io.shutdown().await;
}
