//! Dispatchers: how the upgraded byte stream of a WebSocket is obtained.
//!
//! A dispatcher takes a [`HandshakeRequest`], runs the HTTP part of the opening handshake itself
//! (HTTP/1.1 `101` with `Sec-WebSocket-Accept`, or HTTP/2 extended CONNECT `200`, which differ),
//! and returns an [`Upgraded`] stream with what was negotiated. It knows nothing about frames.

mod agent;
pub(crate) mod h2;
mod http1;
mod proxy;
mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;

use crate::Failure;
pub use crate::connection::Io;
use crate::handshake::{HandshakeRequest, Negotiated};
pub use agent::{Agent, AgentOptions, TcpKeepalive};
pub use h2::H2Stream;
pub use http1::upgrade_http1;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use proxy::judge_answers;
pub use proxy::{
    EnvHttpProxyAgent, EnvHttpProxyOptions, NoProxy, ProxyAgent, ProxyAgentBuilder, ProxyError,
};
pub use tls::TlsRoots;

/// The byte stream of an open WebSocket, with what the handshake negotiated.
pub struct Upgraded {
    pub(crate) io: Box<dyn Io>,
    pub(crate) read_buf: BytesMut,
    pub(crate) negotiated: Negotiated,
    /// One of several streams on a connection (HTTP/2): see [`Upgraded::ending_after_close`].
    pub(crate) end_after_close: bool,
}

impl Upgraded {
    /// A stream after a successful handshake. `leftover` holds any bytes read past the end of
    /// the handshake response: they are the first WebSocket frames.
    pub fn new(io: impl Io, leftover: BytesMut, negotiated: Negotiated) -> Self {
        Self {
            io: Box::new(io),
            read_buf: leftover,
            negotiated,
            end_after_close: false,
        }
    }

    /// Marks the stream as one of several on a connection, as an HTTP/2 stream is: once the
    /// closing handshake is done, a client ends the stream at once rather than wait for the
    /// server to end its side first (RFC 6455 asks that of TCP, for TIME_WAIT's sake).
    pub fn ending_after_close(mut self) -> Self {
        self.end_after_close = true;
        self
    }

    /// What the handshake negotiated.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded")
            .field("negotiated", &self.negotiated)
            .finish_non_exhaustive()
    }
}

/// The future a dispatcher returns.
pub type DispatchFuture = Pin<Box<dyn Future<Output = Result<Upgraded, Failure>> + Send + 'static>>;

/// Obtains upgraded WebSocket byte streams (undici's `Dispatcher` for WebSockets).
pub trait Dispatcher: Send + Sync + 'static {
    /// Connects and runs the opening handshake for `request`.
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture;
}

impl From<Agent> for Arc<dyn Dispatcher> {
    fn from(agent: Agent) -> Self {
        Arc::new(agent)
    }
}
