//! The errors the web platform names, as Rust types.
//!
//! Each variant of [`Error`] is one of the DOMException or JavaScript error names that the
//! WHATWG WebSockets Standard throws; [`WebSocketError`] is the rejection of `opened` and
//! `closed` and the error of the streams. `Display` text is not API; match on the variants.

use std::fmt;
use std::sync::Arc;

/// An error a method of `WebSocket` or `WebSocketStream` returns at once, by its web name.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `SyntaxError`: a bad URL or protocol list, or a close reason over 123 bytes.
    Syntax(String),
    /// `InvalidStateError`: the connection is not in a state that allows the call.
    InvalidState(String),
    /// `InvalidAccessError`: a close code other than 1000 or 3000-4999.
    InvalidAccess(String),
    /// `TypeError`: an argument of the wrong range or shape.
    Type(String),
    /// `QuotaExceededError`: a ping while the write buffer holds the write high-water mark or
    /// more for a peer that does not read. Wait for the buffer to drain (a send or a flush on
    /// the stream face; `buffered_amount` on the EventTarget face), then ping again.
    QuotaExceeded(String),
    /// `WebSocketError`: the connection failed or closed.
    WebSocket(WebSocketError),
}

impl Error {
    /// The web platform's name of the error, e.g. `"SyntaxError"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Syntax(_) => "SyntaxError",
            Self::InvalidState(_) => "InvalidStateError",
            Self::InvalidAccess(_) => "InvalidAccessError",
            Self::Type(_) => "TypeError",
            Self::QuotaExceeded(_) => "QuotaExceededError",
            Self::WebSocket(_) => "WebSocketError",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax(m)
            | Self::InvalidState(m)
            | Self::InvalidAccess(m)
            | Self::Type(m)
            | Self::QuotaExceeded(m) => {
                write!(f, "{}: {m}", self.name())
            }
            Self::WebSocket(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::WebSocket(e) => Some(e),
            _ => None,
        }
    }
}

impl From<WebSocketError> for Error {
    fn from(e: WebSocketError) -> Self {
        Self::WebSocket(e)
    }
}

/// Why a connection failed, for the Rust side (the web side sees only 1006).
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// The opening handshake was refused or invalid.
    Handshake(crate::handshake::HandshakeError),
    /// An I/O error: DNS, TCP, TLS, or the connection broke.
    Io(std::io::Error),
    /// The proxy refused the tunnel or broke its protocol.
    Proxy(crate::ProxyError),
    /// The peer broke the protocol; the connection was failed with the mapped close code.
    Protocol(crate::proto::ProtocolError),
    /// The abort signal fired.
    Aborted,
    /// A timeout expired (connect, opening handshake, or closing handshake).
    Timeout(&'static str),
    /// The connection closed before the closing handshake completed.
    ConnectionClosed,
    /// The peer closed while data we sent was still unsent (it may never be read): the
    /// closing handshake completed, but not cleanly. The error carries the peer's code.
    UnsentData,
    /// `terminate()` closed the connection without the closing handshake.
    Terminated,
    /// Nothing arrived from the peer within the keepalive timeout after a keepalive ping: the
    /// peer is gone (or its network is). The socket was closed at once.
    KeepaliveTimeout,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Handshake(e) => write!(f, "opening handshake failed: {e}"),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Proxy(e) => write!(f, "proxy: {e}"),
            Self::Protocol(e) => write!(f, "protocol error: {e}"),
            Self::Aborted => f.write_str("aborted"),
            Self::Timeout(what) => write!(f, "{what} timed out"),
            Self::ConnectionClosed => f.write_str("connection closed without a closing handshake"),
            Self::UnsentData => f.write_str("the peer closed while data was still unsent"),
            Self::Terminated => f.write_str("terminated without the closing handshake"),
            Self::KeepaliveTimeout => f.write_str("keepalive ping timeout"),
        }
    }
}

impl std::error::Error for Failure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Handshake(e) => Some(e),
            Self::Io(e) => Some(e),
            Self::Proxy(e) => Some(e),
            Self::Protocol(e) => Some(e),
            _ => None,
        }
    }
}

/// The WHATWG `WebSocketError`: a close code and reason, plus (Rust only) why it happened.
#[derive(Clone, Debug, Default)]
pub struct WebSocketError {
    close_code: Option<u16>,
    reason: String,
    failure: Option<Arc<Failure>>,
}

impl WebSocketError {
    /// `new WebSocketError(message, {closeCode, reason})`, validated like `close()`: a code
    /// must be 1000 or 3000-4999 (`InvalidAccessError`), the reason at most 123 UTF-8 bytes
    /// (`SyntaxError`); a reason without a code means 1000.
    pub fn new(close_code: Option<u16>, reason: impl Into<String>) -> Result<Self, Error> {
        let reason = reason.into();
        let close_code = crate::close_info::validate_close(close_code, &reason)?;
        Ok(Self {
            close_code,
            reason,
            failure: None,
        })
    }

    pub(crate) fn from_parts(
        close_code: Option<u16>,
        reason: String,
        failure: Option<Arc<Failure>>,
    ) -> Self {
        Self {
            close_code,
            reason,
            failure,
        }
    }

    /// The close code, if any.
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// The close reason, possibly empty.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Why the connection failed, when it did: the detail the web side does not see.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_deref()
    }

    /// Always `"WebSocketError"`.
    pub fn name(&self) -> &'static str {
        "WebSocketError"
    }
}

impl PartialEq for WebSocketError {
    fn eq(&self, other: &Self) -> bool {
        self.close_code == other.close_code && self.reason == other.reason
    }
}

impl Eq for WebSocketError {}

impl fmt::Display for WebSocketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebSocketError")?;
        if let Some(code) = self.close_code {
            write!(f, " {code}")?;
        }
        if !self.reason.is_empty() {
            write!(f, " {:?}", self.reason)?;
        }
        if let Some(failure) = &self.failure {
            write!(f, " ({failure})")?;
        }
        Ok(())
    }
}

impl std::error::Error for WebSocketError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.failure
            .as_deref()
            .map(|f| f as &(dyn std::error::Error + 'static))
    }
}
