//! The server role: accept an HTTP/1.1 upgrade on any byte stream and get a `WebSocketStream`,
//! or accept WebSockets over HTTP/2 ([`accept_h2`]).

mod h2;

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connection::{Config, DEFAULT_CLOSE_TIMEOUT, Io, Keepalive, Timeouts};
use crate::dispatcher::Upgraded;
use crate::handshake::{
    DEFAULT_MAX_HEAD_SIZE, HandshakeError, Negotiated, ServerHandshake, encode_rejection,
    has_head_end,
};
use crate::proto::deflate::DeflateOptions;
use crate::proto::{Limits, Role};
use crate::stream::DEFAULT_HIGH_WATER_MARK;
use crate::{Failure, WebSocketStream};
pub use h2::{H2Connection, accept_h2};

/// The default of [`ServerOptions::incomplete_message_timeout`]: 30 s.
pub(crate) const DEFAULT_INCOMPLETE_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of [`accept`].
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Subprotocols the server speaks, in order of preference; the first the client offered
    /// is selected.
    pub protocols: Vec<String>,
    /// Limits on incoming messages.
    pub limits: Limits,
    /// How long the closing handshake may take (default 5 s).
    pub close_timeout: Duration,
    /// The largest request head accepted (default 64 KiB; over HTTP/2, the header list).
    pub max_request_head_size: usize,
    /// How long the client may take to send its request (default 30 s).
    pub handshake_timeout: Duration,
    /// Read-ahead bound of `closed` (default 64 KiB).
    pub read_high_water_mark: usize,
    /// Bytes of queued frames above which writes wait (default 64 KiB).
    pub write_high_water_mark: usize,
    /// permessage-deflate to accept (on by default with the `deflate` feature; ignored
    /// without it); `None` declines every offer. The default is
    /// [`DeflateOptions::server_default`]: the server compresses each message afresh
    /// (`server_no_context_takeover`), so that a connection between messages holds no
    /// compressor (54 KiB per connection rather than 327 KiB, for server messages about twice
    /// as large on the wire).
    pub deflate: Option<DeflateOptions>,
    /// Pings a quiet client and fails the connection when nothing comes back (default 20 s
    /// and 20 s, see [`Keepalive`]); `None` turns it off.
    pub keepalive: Option<Keepalive>,
    /// Closes a connection (1001, "idle timeout") when no message has gone either way for
    /// this long (checked lazily: the close comes between once and twice this long after the
    /// last message); pings and pongs do not count, messages waiting for the reader do. Default `None`: keepalive already ends
    /// connections to peers that are gone; set this to bound how long live but idle clients
    /// hold a connection.
    pub idle_timeout: Option<Duration>,
    /// Fails a connection (1008) when a message it has started (a fragment, or part of a
    /// frame) makes no progress for this long, so that a client cannot make the server hold
    /// a partial message (up to the message size limit) for as long as it stays connected.
    /// Progress is at least 1 KiB more of the message per period (34 bytes a second at the
    /// default), so a client trickling bytes does not count; a reader that holds the client
    /// back does not fail it. Default 30 s; `None` turns it off.
    pub incomplete_message_timeout: Option<Duration>,
    /// How long the owner may go without reading (the readable or `closed`) before the
    /// connection reads for it: pings answered, keepalive run, messages kept for the reader up
    /// to `read_high_water_mark` (default 1 s).
    pub read_ahead_after: Duration,
    /// ([`accept_h2`]) How many WebSockets one HTTP/2 connection may carry at once (default
    /// 256).
    pub h2_max_concurrent_streams: u32,
    /// ([`accept_h2`]) How many bytes a client may send on one WebSocket ahead of its reader
    /// (default 256 KiB).
    pub h2_stream_window: u32,
    /// ([`accept_h2`]) How many bytes a client may send on one connection ahead of its
    /// readers (default 16 MiB).
    pub h2_connection_window: u32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            limits: Limits::default(),
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            max_request_head_size: DEFAULT_MAX_HEAD_SIZE,
            handshake_timeout: Duration::from_secs(30),
            read_high_water_mark: DEFAULT_HIGH_WATER_MARK,
            write_high_water_mark: DEFAULT_HIGH_WATER_MARK,
            deflate: cfg!(feature = "deflate").then(DeflateOptions::server_default),
            keepalive: Some(Keepalive::default()),
            idle_timeout: None,
            incomplete_message_timeout: Some(DEFAULT_INCOMPLETE_MESSAGE_TIMEOUT),
            read_ahead_after: crate::stream::DEFAULT_READ_AHEAD_AFTER,
            h2_max_concurrent_streams: 256,
            h2_stream_window: 256 * 1024,
            h2_connection_window: 16 * 1024 * 1024,
        }
    }
}

/// Reads a WebSocket upgrade request from `io`, answers it, and returns the open connection.
/// A bad request is answered with `400` (or `426` for a wrong version) and returned as an error.
/// Must be called within a Tokio runtime.
pub async fn accept(io: impl Io, options: ServerOptions) -> Result<WebSocketStream, Failure> {
    tokio::time::timeout(options.handshake_timeout, accept_inner(io, options))
        .await
        .map_err(|_| Failure::Timeout("opening handshake"))?
}

async fn accept_inner(mut io: impl Io, options: ServerOptions) -> Result<WebSocketStream, Failure> {
    let mut buf = BytesMut::with_capacity(1024);
    let mut scanned = 0;
    let (request, len) = loop {
        // Parse only once the head can be complete, so that a trickling peer costs linear time.
        if has_head_end(&buf, &mut scanned) || buf.len() > options.max_request_head_size {
            match ServerHandshake::decode_request(&buf, options.max_request_head_size) {
                Ok(Some(parsed)) => break parsed,
                Ok(None) => {}
                Err(error) => return Err(reject(io, error).await),
            }
        }
        if io.read_buf(&mut buf).await.map_err(Failure::Io)? == 0 {
            return Err(Failure::Handshake(HandshakeError::ConnectionClosed));
        }
    };
    buf.advance(len);
    let authority = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let url = url::Url::parse(&format!("ws://{authority}{}", request.uri()))
        .or_else(|_| url::Url::parse("ws://localhost/"))
        .map_err(|e| Failure::Io(std::io::Error::other(e)))?;
    let handshake = match ServerHandshake::new(request) {
        Ok(handshake) => handshake,
        Err(error) => return Err(reject(io, error).await),
    };
    let protocol = handshake
        .select_protocol(&options.protocols)
        .map(str::to_owned);
    let extensions = accepted_extensions(&options, &handshake.offered_extensions());
    let mut response = String::with_capacity(256);
    handshake.encode_response_with_extensions(
        protocol.as_deref(),
        extensions.as_deref(),
        &mut response,
    );
    io.write_all(response.as_bytes())
        .await
        .map_err(Failure::Io)?;
    io.flush().await.map_err(Failure::Io)?;
    let negotiated = Negotiated {
        protocol: protocol.unwrap_or_default(),
        extensions: extensions.unwrap_or_default(),
    };
    let config = server_config(&options);
    Ok(WebSocketStream::from_upgraded(
        Upgraded::new(io, buf, negotiated),
        url,
        config,
    ))
}

/// A server-side stream over a connection whose HTTP/1.1 upgrade was done elsewhere, e.g. by
/// hyper: check the request with [`ServerHandshake::new`], answer `101` with its
/// [`accept`](ServerHandshake::accept) value (and the selected `protocol`), then pass the
/// upgraded byte stream here.
pub fn accept_upgraded(
    io: impl Io,
    protocol: Option<String>,
    options: &ServerOptions,
) -> WebSocketStream {
    let negotiated = Negotiated {
        protocol: protocol.unwrap_or_default(),
        extensions: String::new(),
    };
    let url = url::Url::parse("ws://localhost/").expect("a valid URL");
    WebSocketStream::from_upgraded(
        Upgraded::new(io, BytesMut::new(), negotiated),
        url,
        server_config(options),
    )
}

/// The answer to the client's extension offers: permessage-deflate's, if configured and
/// offered.
fn accepted_extensions(options: &ServerOptions, offered: &str) -> Option<String> {
    match &options.deflate {
        Some(deflate) if cfg!(feature = "deflate") => {
            deflate.select(offered).map(|(_, answer)| answer)
        }
        _ => None,
    }
}

fn server_config(options: &ServerOptions) -> Config {
    Config {
        role: Role::Server,
        limits: options.limits,
        close_timeout: options.close_timeout,
        read_high_water_mark: options.read_high_water_mark,
        write_high_water_mark: options.write_high_water_mark,
        deflate: options.deflate,
        timeouts: Timeouts {
            keepalive: options.keepalive,
            idle: options.idle_timeout,
            incomplete_message: options.incomplete_message_timeout,
        },
        read_ahead_after: options.read_ahead_after,
    }
}

async fn reject(mut io: impl Io, error: HandshakeError) -> Failure {
    let mut response = String::new();
    encode_rejection(&error, &mut response);
    let _ = io.write_all(response.as_bytes()).await;
    let _ = io.shutdown().await;
    Failure::Handshake(error)
}
