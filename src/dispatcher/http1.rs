//! The HTTP/1.1 upgrade over an established byte stream, shared by the dispatchers.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Io, Upgraded};
use crate::Failure;
use crate::handshake::{HandshakeError, HandshakeRequest, Http1Handshake, has_head_end, negotiate};

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
                let negotiated =
                    negotiate(request, response.headers()).map_err(Failure::Handshake)?;
                buf.advance(len);
                return Ok(Upgraded::new(io, buf, negotiated));
            }
        }
        if io.read_buf(&mut buf).await.map_err(Failure::Io)? == 0 {
            return Err(Failure::Handshake(HandshakeError::ConnectionClosed));
        }
    }
}
