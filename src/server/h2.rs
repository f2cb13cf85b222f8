//! The server role over HTTP/2 (RFC 8441): one HTTP/2 connection, on which the client opens any
//! number of WebSockets by extended CONNECT, each one stream.

use std::future::poll_fn;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use http::Request;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ServerOptions, accepted_extensions, server_config};
use crate::connection::Io;
use crate::dispatcher::Upgraded;
use crate::dispatcher::h2::H2Stream;
use crate::handshake::{H2ServerHandshake, Negotiated, h2_rejection};
use crate::{Failure, WebSocketStream};

/// An HTTP/2 connection accepting WebSockets: [`accept`](Self::accept) yields each one the
/// client opens. The connection is driven by a task of its own, so its WebSockets run whether
/// or not `accept` is being called; it ends when the client closes it, or at
/// [`abort`](Self::abort).
#[derive(Debug)]
pub struct H2Connection {
    incoming: mpsc::Receiver<WebSocketStream>,
    abort: CancellationToken,
}

impl H2Connection {
    /// The next WebSocket the client opened, or `None` once the connection has ended.
    pub async fn accept(&mut self) -> Option<WebSocketStream> {
        self.incoming.recv().await
    }

    /// Sends GOAWAY and closes the connection at once: every WebSocket on it fails (1006).
    pub fn abort(&self) {
        self.abort.cancel();
    }
}

/// Runs the server side of an HTTP/2 connection over `io` (h2c with prior knowledge, or TLS
/// after ALPN chose `h2`), allowing extended CONNECT. Requests that are not WebSocket
/// extended CONNECTs get `400`. Must be called within a Tokio runtime.
pub async fn accept_h2(io: impl Io, options: ServerOptions) -> Result<H2Connection, Failure> {
    let mut builder = h2::server::Builder::new();
    builder
        .enable_connect_protocol()
        .max_concurrent_streams(options.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(options.max_request_head_size).unwrap_or(u32::MAX))
        .initial_window_size(options.h2_stream_window)
        .initial_connection_window_size(options.h2_connection_window);
    let mut connection =
        tokio::time::timeout(options.handshake_timeout, builder.handshake::<_, Bytes>(io))
            .await
            .map_err(|_| Failure::Timeout("opening handshake"))?
            .map_err(|e| Failure::Io(crate::dispatcher::h2::stream::to_io(e)))?;
    // Bounded like the streams themselves: a client that opens and resets streams faster than
    // the application accepts them gets the excess reset, not queued.
    let backlog = usize::try_from(options.h2_max_concurrent_streams).unwrap_or(usize::MAX);
    let (sender, incoming) = mpsc::channel(backlog.clamp(1, 4096));
    let abort = CancellationToken::new();
    let aborted = abort.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = connection.accept() => match next {
                    Some(Ok((request, respond))) => {
                        if let Some(ws) = open(request, respond, &options) {
                            // Nobody accepting, or too many waiting: the stream is dropped,
                            // which resets it.
                            let _ = sender.try_send(ws);
                        }
                    }
                    Some(Err(_)) | None => break,
                },
                () = aborted.cancelled() => {
                    connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                    let _ = poll_fn(|cx| connection.poll_closed(cx)).await;
                    break;
                }
            }
        }
    });
    Ok(H2Connection { incoming, abort })
}

/// Answers one request: a WebSocket for a valid extended CONNECT, `400` otherwise.
fn open(
    request: Request<h2::RecvStream>,
    mut respond: SendResponse<Bytes>,
    options: &ServerOptions,
) -> Option<WebSocketStream> {
    let protocol = request
        .extensions()
        .get::<h2::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    let (parts, recv) = request.into_parts();
    let handshake =
        match H2ServerHandshake::new(Request::from_parts(parts, ()), protocol.as_deref()) {
            Ok(handshake) => handshake,
            Err(error) => {
                let _ = respond.send_response(h2_rejection(&error), true);
                return None;
            }
        };
    let protocol = handshake
        .select_protocol(&options.protocols)
        .map(str::to_owned);
    let extensions = accepted_extensions(options, &handshake.offered_extensions());
    let response = handshake.response(protocol.as_deref(), extensions.as_deref());
    let send = respond.send_response(response, false).ok()?;
    let uri = handshake.request().uri();
    let authority = uri.authority().map_or("localhost", |a| a.as_str());
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = url::Url::parse(&format!("ws://{authority}{path}"))
        .or_else(|_| url::Url::parse("ws://localhost/"))
        .ok()?;
    let negotiated = Negotiated {
        protocol: protocol.unwrap_or_default(),
        extensions: extensions.unwrap_or_default(),
    };
    Some(WebSocketStream::from_upgraded(
        Upgraded::new(H2Stream::new(send, recv), BytesMut::new(), negotiated).ending_after_close(),
        url,
        server_config(options),
    ))
}
