//! The handlers over HTTP/2 (upstream's `?wpt_flags=h2` variants): each extended CONNECT
//! (RFC 8441) is handed to the same handlers as an HTTP/1.1 upgrade request, and what they
//! write back is translated: a `101` head becomes the `200` that opens the stream (with its
//! `Sec-WebSocket-Protocol` and `-Extensions`), any other status that status, and bytes that
//! are not an HTTP head a reset stream. Dropping the connection ends the stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::header::{self, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use whatwg_websocket::dispatcher::H2Stream;

/// A `Sec-WebSocket-Key` for the translated request (HTTP/2 has none; the handlers' accept
/// value is dropped in translation).
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Serves the handlers on one HTTP/2 connection.
pub async fn serve<S>(io: S)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut builder = h2::server::Builder::new();
    builder.enable_connect_protocol();
    let Ok(mut connection) = builder.handshake::<_, Bytes>(io).await else {
        return;
    };
    while let Some(Ok((request, respond))) = connection.accept().await {
        let is_websocket = request
            .extensions()
            .get::<h2::ext::Protocol>()
            .is_some_and(|p| p.as_str() == "websocket");
        let (parts, recv) = request.into_parts();
        let mut respond = respond;
        if parts.method != http::Method::CONNECT || !is_websocket {
            let mut response = http::Response::new(());
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            let _ = respond.send_response(response, true);
            continue;
        }
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut upgrade = http::Request::new(());
        *upgrade.uri_mut() = target.parse().unwrap();
        *upgrade.headers_mut() = parts.headers;
        let headers = upgrade.headers_mut();
        if let Some(authority) = parts.uri.authority() {
            headers.insert(header::HOST, authority.as_str().parse().unwrap());
        }
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        headers.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_static(KEY));
        let mut head = format!("GET {target} HTTP/1.1\r\n");
        for (name, value) in upgrade.headers() {
            head.push_str(&format!(
                "{name}: {}\r\n",
                value.to_str().unwrap_or_default()
            ));
        }
        head.push_str("\r\n");
        let stream = Translated {
            respond: Some((respond, recv)),
            stream: None,
            request_head: Bytes::from(head),
            response_head: BytesMut::new(),
            reader: None,
        };
        tokio::spawn(super::route(stream));
    }
}

/// An extended CONNECT stream that speaks HTTP/1.1 to the handler.
struct Translated {
    /// Until the handler's response head has been translated.
    respond: Option<(SendResponse<Bytes>, RecvStream)>,
    /// After a `101`: the stream itself.
    stream: Option<H2Stream>,
    /// The HTTP/1.1 request the handler reads first.
    request_head: Bytes,
    /// The handler's response head, until complete.
    response_head: BytesMut,
    /// A read waiting for the response (and so for the stream).
    reader: Option<Waker>,
}

impl Translated {
    /// Translates the handler's response head once complete; returns the bytes after it.
    fn respond(&mut self) -> io::Result<Option<Bytes>> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let len = match parsed.parse(&self.response_head) {
            Ok(httparse::Status::Partial) => return Ok(None),
            Ok(httparse::Status::Complete(len)) => Some(len),
            Err(_) => None,
        };
        let (mut respond, recv) = self.respond.take().expect("unanswered");
        let Some(len) = len else {
            // Not HTTP (`/invalid`): the stream is reset.
            respond.send_reset(Reason::PROTOCOL_ERROR);
            return Ok(Some(Bytes::new()));
        };
        let code = parsed.code.unwrap_or(500);
        let mut response = http::Response::new(());
        *response.status_mut() = match code {
            101 => http::StatusCode::OK,
            code => http::StatusCode::from_u16(code).unwrap(),
        };
        for h in parsed.headers.iter() {
            let name = header::HeaderName::from_bytes(h.name.as_bytes()).unwrap();
            if name == header::SEC_WEBSOCKET_PROTOCOL || name == header::SEC_WEBSOCKET_EXTENSIONS {
                response
                    .headers_mut()
                    .append(name, HeaderValue::from_bytes(h.value).unwrap());
            }
        }
        let rest = self.response_head.split_off(len).freeze();
        if code == 101 {
            let send = respond.send_response(response, false).map_err(to_io)?;
            self.stream = Some(H2Stream::new(send, recv));
            if let Some(reader) = self.reader.take() {
                reader.wake();
            }
        } else {
            let _ = respond.send_response(response, true);
        }
        Ok(Some(rest))
    }
}

fn to_io(error: h2::Error) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, error)
}

impl AsyncRead for Translated {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.request_head.is_empty() {
            let n = this.request_head.len().min(buf.remaining());
            buf.put_slice(&this.request_head[..n]);
            this.request_head.advance(n);
            return Poll::Ready(Ok(()));
        }
        match &mut this.stream {
            Some(stream) => Pin::new(stream).poll_read(cx, buf),
            // Frames come after the `101`.
            None if this.respond.is_some() => {
                this.reader = Some(cx.waker().clone());
                Poll::Pending
            }
            // Answered with another status, or reset.
            None => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Translated {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.respond.is_some() {
            this.response_head.extend_from_slice(buf);
            if let Some(rest) = this.respond()?
                && let Some(stream) = &mut this.stream
            {
                // The bytes that followed the head (a Close in `/simple_handshake`).
                let mut rest = &rest[..];
                while !rest.is_empty() {
                    let n = ready!(Pin::new(&mut *stream).poll_write(cx, rest))?;
                    rest = &rest[n..];
                }
            }
            return Poll::Ready(Ok(buf.len()));
        }
        match &mut this.stream {
            Some(stream) => Pin::new(stream).poll_write(cx, buf),
            // Answered without a stream to write on: discarded.
            None => Poll::Ready(Ok(buf.len())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Some(stream) => Pin::new(stream).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for Translated {
    /// A handler dropping its TCP socket sends FIN: here, END_STREAM (a reset could overtake
    /// the response and the bytes before it, as a TCP RST discards unread data).
    fn drop(&mut self) {
        if let Some(stream) = &mut self.stream {
            let mut cx = Context::from_waker(Waker::noop());
            let _ = Pin::new(stream).poll_shutdown(&mut cx);
        } else if let Some((respond, _)) = &mut self.respond {
            respond.send_reset(Reason::CANCEL);
        }
    }
}
