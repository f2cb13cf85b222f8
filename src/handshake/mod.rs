//! The opening handshake, sans-IO: building and checking the client's request and the server's
//! response (RFC 6455 section 4, as the WHATWG standard applies it), for both roles.
//!
//! A [`Dispatcher`](crate::Dispatcher) runs the HTTP exchange; this module only produces and
//! judges bytes and headers.

mod client;
mod h2;
mod key;
mod server;
pub(crate) mod url;

use std::fmt;

use http::HeaderMap;

pub use client::{Http1Handshake, negotiate};
pub use h2::{
    H2ServerHandshake, PROTOCOL, check_extended_connect_response, extended_connect_request,
    h2_rejection,
};
pub use key::accept_key;
pub use server::{ServerHandshake, encode_rejection};

/// The default bound on the size of an HTTP response or request head: 64 KiB.
pub const DEFAULT_MAX_HEAD_SIZE: usize = 64 * 1024;

/// The most header fields an HTTP head may have.
pub const MAX_HEADERS: usize = 128;

/// What a dispatcher needs to open a WebSocket: the `ws`/`wss` URL, the subprotocols to offer,
/// the extension offer, and the user's extra headers.
#[derive(Clone, Debug)]
pub struct HandshakeRequest {
    pub(crate) url: ::url::Url,
    pub(crate) protocols: Vec<String>,
    pub(crate) extensions: Option<String>,
    pub(crate) headers: HeaderMap,
}

impl HandshakeRequest {
    /// The URL, with scheme `ws` or `wss`.
    pub fn url(&self) -> &::url::Url {
        &self.url
    }

    /// The subprotocols offered, in order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The `Sec-WebSocket-Extensions` offer, if any.
    pub fn extensions(&self) -> Option<&str> {
        self.extensions.as_deref()
    }

    /// The caller's extra headers. Those the handshake itself sets (`Host`, `Upgrade`,
    /// `Connection`, `Sec-WebSocket-*`) are ignored.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The host and port to connect to; IPv6 literals without brackets.
    pub fn host_and_port(&self) -> (&str, u16) {
        let host = match self.url.host_str().unwrap_or_default() {
            h if h.starts_with('[') => &h[1..h.len() - 1],
            h => h,
        };
        let port = self.url.port_or_known_default().unwrap_or(80);
        (host, port)
    }

    /// Whether the URL is `wss`.
    pub fn is_secure(&self) -> bool {
        self.url.scheme() == "wss"
    }
}

/// What the server agreed to: the subprotocol and extensions (empty strings when none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// The selected subprotocol, or `""`.
    pub protocol: String,
    /// The accepted extensions as sent by the server, or `""`.
    pub extensions: String,
}

/// Why an opening handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The response was not `101 Switching Protocols` (a redirect included), or on HTTP/2 not 200.
    Status(u16),
    /// The `Upgrade` header was missing or not `websocket`.
    MissingUpgrade,
    /// The `Connection` header lacked the `upgrade` token.
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Accept` was missing or wrong.
    InvalidAccept,
    /// The server chose a subprotocol that was not offered.
    UnexpectedProtocol(String),
    /// Subprotocols were offered and the server chose none.
    MissingProtocol,
    /// The server accepted an extension that was not offered.
    UnexpectedExtension(String),
    /// The server's answer to an offered extension was unacceptable (a parameter invalid,
    /// repeated, unknown, or beyond what was offered). The client sends Close 1010.
    InvalidExtension(String),
    /// The HTTP head was malformed.
    Malformed(String),
    /// The HTTP head exceeded the size limit.
    HeadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The connection closed during the handshake.
    ConnectionClosed,
    /// (Server) The request was not a `GET` over HTTP/1.1.
    NotGet,
    /// (Server) `Sec-WebSocket-Key` was missing or not 16 bytes of base64.
    InvalidKey,
    /// (Server) `Sec-WebSocket-Version` was not 13.
    UnsupportedVersion,
    /// HTTP/2 only was asked for, and the server does not allow WebSockets over HTTP/2 (no
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL`, RFC 8441 section 3) or does not speak HTTP/2.
    NoExtendedConnect,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(code) => write!(f, "unexpected status {code}"),
            Self::MissingUpgrade => f.write_str("Upgrade header is not websocket"),
            Self::MissingConnectionUpgrade => f.write_str("Connection header lacks upgrade"),
            Self::InvalidAccept => f.write_str("Sec-WebSocket-Accept missing or wrong"),
            Self::UnexpectedProtocol(p) => {
                write!(f, "server chose subprotocol {p:?}, which was not offered")
            }
            Self::MissingProtocol => f.write_str("server chose none of the offered subprotocols"),
            Self::UnexpectedExtension(e) => {
                write!(f, "server accepted extension {e:?}, which was not offered")
            }
            Self::InvalidExtension(why) => write!(f, "unacceptable extension answer: {why}"),
            Self::Malformed(why) => write!(f, "malformed HTTP head: {why}"),
            Self::HeadTooLarge { limit } => write!(f, "HTTP head larger than {limit} bytes"),
            Self::ConnectionClosed => f.write_str("connection closed during the handshake"),
            Self::NotGet => f.write_str("not an HTTP/1.1 GET request"),
            Self::InvalidKey => f.write_str("Sec-WebSocket-Key missing or invalid"),
            Self::UnsupportedVersion => f.write_str("Sec-WebSocket-Version is not 13"),
            Self::NoExtendedConnect => {
                f.write_str("the server does not allow WebSockets over HTTP/2")
            }
        }
    }
}

impl std::error::Error for HandshakeError {}

/// The length of a parsed HTTP head, or `None` while incomplete; a head (or an incomplete one)
/// longer than `max_head` is an error.
pub(crate) fn head_len(
    status: httparse::Status<usize>,
    buffered: usize,
    max_head: usize,
) -> Result<Option<usize>, HandshakeError> {
    match status {
        httparse::Status::Complete(len) if len <= max_head => Ok(Some(len)),
        httparse::Status::Partial if buffered <= max_head => Ok(None),
        _ => Err(HandshakeError::HeadTooLarge { limit: max_head }),
    }
}

/// Whether `buf` holds the blank line that ends an HTTP head, looking only at bytes after
/// `scanned` (updated), so that a head arriving a byte at a time costs linear time.
pub fn has_head_end(buf: &[u8], scanned: &mut usize) -> bool {
    let from = scanned.saturating_sub(3);
    *scanned = buf.len();
    buf.get(from..)
        .is_some_and(|tail| tail.windows(4).any(|w| w == b"\r\n\r\n"))
}

/// Whether a comma-separated header (all its values) contains `token`, ignoring ASCII case.
pub(crate) fn header_has_token(
    headers: &HeaderMap,
    name: http::header::HeaderName,
    token: &str,
) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_end_is_found_across_reads_scanning_each_byte_about_once() {
        let head = b"HTTP/1.1 101 S\r\nA: b\r\n\r\nframes";
        let mut scanned = 0;
        let mut found_at = None;
        for end in 1..=head.len() {
            if has_head_end(&head[..end], &mut scanned) {
                found_at.get_or_insert(end);
            }
            assert_eq!(scanned, end);
        }
        assert_eq!(found_at, Some(24));
    }

    #[test]
    fn head_len_applies_the_limit_to_complete_and_partial_heads() {
        use httparse::Status::{Complete, Partial};
        assert_eq!(head_len(Complete(10), 20, 10), Ok(Some(10)));
        assert_eq!(
            head_len(Complete(11), 20, 10),
            Err(HandshakeError::HeadTooLarge { limit: 10 })
        );
        assert_eq!(head_len(Partial, 10, 10), Ok(None));
        assert_eq!(
            head_len(Partial, 11, 10),
            Err(HandshakeError::HeadTooLarge { limit: 10 })
        );
    }
}
