//! WebSockets over HTTP/2 (RFC 8441), the client side: one HTTP/2 connection per origin,
//! shared by every WebSocket to it (each is one stream), opened by an extended CONNECT.
//! Experimental, as in undici.
//!
//! Whether the server allows extended CONNECT is only known once its SETTINGS have been
//! processed, so a new connection first makes a PING round trip: the server's SETTINGS come
//! before its PING answer. A server that does not allow it (or that does not speak HTTP/2 at
//! all) is remembered, and its WebSockets use HTTP/1.1 on a connection of their own.

pub(crate) mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;

use super::{Io, Upgraded};
use crate::Failure;
use crate::handshake::{
    HandshakeError, HandshakeRequest, PROTOCOL, check_extended_connect_response,
    extended_connect_request,
};
pub use stream::H2Stream;

/// The HTTP/2 settings of a client connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct H2Settings {
    pub(super) stream_window: u32,
    pub(super) connection_window: u32,
    /// The largest response header list accepted (the HTTP/1.1 head limit).
    pub(super) max_head: u32,
}

/// Where an HTTP/2 connection goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Origin {
    secure: bool,
    host: String,
    port: u16,
}

/// What is known of an origin.
#[derive(Debug, Default)]
pub(super) enum Slot {
    /// Nothing yet, or its connection was lost.
    #[default]
    Unknown,
    /// An HTTP/2 connection that allows extended CONNECT.
    Open(SendRequest<Bytes>),
    /// The origin does not do WebSockets over HTTP/2: use HTTP/1.1.
    Http1,
}

/// The HTTP/2 connections of an agent, one per origin. Each origin's slot is locked while its
/// connection is being set up, so WebSockets opened together share one connection.
#[derive(Debug, Default)]
pub(super) struct H2Pool {
    slots: Mutex<HashMap<Origin, Arc<tokio::sync::Mutex<Slot>>>>,
}

impl H2Pool {
    /// The slot of `request`'s origin.
    pub(super) fn slot(&self, request: &HandshakeRequest) -> Arc<tokio::sync::Mutex<Slot>> {
        let (host, port) = request.host_and_port();
        let origin = Origin {
            secure: request.is_secure(),
            host: host.to_owned(),
            port,
        };
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // Forget origins whose connection is gone and that nobody is connecting to.
        if slots.len() >= 64 {
            slots.retain(|_, slot| {
                Arc::strong_count(slot) > 1
                    || slot
                        .try_lock()
                        .map_or(true, |slot| !matches!(*slot, Slot::Unknown))
            });
        }
        slots.entry(origin).or_default().clone()
    }
}

/// Runs the HTTP/2 handshake over `io`, drives the connection on a task of its own, and waits
/// for the server's SETTINGS (a PING round trip). Returns the connection when the server
/// allows extended CONNECT, `None` when it does not, and an error when the server did not
/// answer in HTTP/2.
pub(super) async fn handshake(
    io: impl Io,
    settings: H2Settings,
) -> Result<Option<SendRequest<Bytes>>, Failure> {
    let (send_request, mut connection) = h2::client::Builder::new()
        .initial_window_size(settings.stream_window)
        .initial_connection_window_size(settings.connection_window)
        .max_header_list_size(settings.max_head)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| Failure::Io(stream::to_io(e)))?;
    let mut ping_pong = connection.ping_pong().expect("taken once");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    ping_pong
        .ping(h2::Ping::opaque())
        .await
        .map_err(|e| Failure::Io(stream::to_io(e)))?;
    Ok(send_request
        .is_extended_connect_protocol_enabled()
        .then_some(send_request))
}

/// Why opening a stream failed.
pub(super) enum OpenError {
    /// The connection is gone (GOAWAY, closed): try a new one.
    Gone,
    /// The WebSocket failed.
    Failed(Failure),
}

/// Opens a WebSocket on the connection behind `send_request`.
pub(super) async fn open_stream(
    send_request: SendRequest<Bytes>,
    request: &HandshakeRequest,
) -> Result<Upgraded, OpenError> {
    let mut send_request = send_request.ready().await.map_err(|_| OpenError::Gone)?;
    let mut connect = extended_connect_request(request);
    connect
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static(PROTOCOL));
    let (response, mut send) = send_request
        .send_request(connect, false)
        .map_err(|_| OpenError::Gone)?;
    let response = response
        .await
        .map_err(|e| OpenError::Failed(Failure::Io(stream::to_io(e))))?;
    let (parts, recv) = response.into_parts();
    let head = http::Response::from_parts(parts, ());
    match check_extended_connect_response(request, &head) {
        Ok(negotiated) => Ok(
            Upgraded::new(H2Stream::new(send, recv), BytesMut::new(), negotiated)
                .ending_after_close(),
        ),
        Err(error @ HandshakeError::InvalidExtension(_)) => {
            // The stream is open: fail the WebSocket connection with 1010.
            super::http1::refuse_extension(&mut H2Stream::new(send, recv)).await;
            Err(OpenError::Failed(Failure::Handshake(error)))
        }
        Err(error) => {
            send.send_reset(h2::Reason::CANCEL);
            Err(OpenError::Failed(Failure::Handshake(error)))
        }
    }
}
