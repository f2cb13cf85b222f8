//! Why a proxy could not be set up or would not open a tunnel.

use std::fmt;

/// A proxy error: a bad proxy setting (from [`ProxyAgent`](super::ProxyAgent)'s builder or
/// [`EnvHttpProxyAgent`](super::EnvHttpProxyAgent)), or a proxy that refused or broke the
/// tunnel (inside [`Failure::Proxy`](crate::Failure::Proxy)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyError {
    /// The proxy URL did not parse, or its scheme is not `http`, `https`, `socks5` or `socks5h`.
    InvalidUri(String),
    /// The settings contradict each other or are not valid (both a token and credentials, a
    /// token for a SOCKS proxy, a header value that is not one).
    InvalidOption(String),
    /// The HTTP proxy answered CONNECT with a status other than 2xx (407: proxy
    /// authentication required).
    Refused {
        /// The status code.
        status: u16,
        /// The `Proxy-Authenticate` challenges of a 407, in order.
        proxy_authenticate: Vec<String>,
    },
    /// The SOCKS5 proxy refused the connection with this reply code (RFC 1928 section 6).
    SocksRefused(u8),
    /// The SOCKS5 proxy accepted none of the offered authentication methods, or rejected the
    /// username and password (RFC 1929).
    SocksAuth(&'static str),
    /// The proxy's answer broke its protocol.
    Malformed(String),
    /// The proxy closed the connection before the tunnel was open.
    ConnectionClosed,
}

impl ProxyError {
    /// The meaning of a SOCKS5 reply code.
    fn socks_reply(code: u8) -> &'static str {
        match code {
            1 => "general SOCKS server failure",
            2 => "connection not allowed by ruleset",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            8 => "address type not supported",
            _ => "unassigned reply code",
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUri(why) => write!(f, "invalid proxy URL: {why}"),
            Self::InvalidOption(why) => write!(f, "invalid proxy option: {why}"),
            Self::Refused {
                status,
                proxy_authenticate,
            } => {
                write!(f, "the proxy refused the tunnel with status {status}")?;
                if !proxy_authenticate.is_empty() {
                    write!(
                        f,
                        " (Proxy-Authenticate: {})",
                        proxy_authenticate.join(", ")
                    )?;
                }
                Ok(())
            }
            Self::SocksRefused(code) => write!(
                f,
                "the SOCKS5 proxy refused the connection: {} ({code})",
                Self::socks_reply(*code)
            ),
            Self::SocksAuth(why) => write!(f, "SOCKS5 authentication failed: {why}"),
            Self::Malformed(why) => write!(f, "malformed proxy response: {why}"),
            Self::ConnectionClosed => f.write_str("the proxy closed the connection"),
        }
    }
}

impl std::error::Error for ProxyError {}
