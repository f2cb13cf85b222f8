//! Proxy URLs: `http://`, `https://`, `socks5://` and `socks5h://`, with optional credentials.

use std::fmt;

use base64::Engine;
use http::HeaderValue;

use super::ProxyError;

/// How the proxy is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scheme {
    /// HTTP CONNECT over TCP.
    Http,
    /// HTTP CONNECT over TLS to the proxy.
    Https,
    /// SOCKS5, the target's name resolved here.
    Socks5,
    /// SOCKS5, the target's name resolved by the proxy.
    Socks5h,
}

/// A username and password, never printed.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Credentials {
    pub(super) username: Vec<u8>,
    pub(super) password: Vec<u8>,
}

impl Credentials {
    /// The `Basic` authorization value (RFC 7617), marked sensitive.
    pub(super) fn basic(&self) -> HeaderValue {
        let mut pair = Vec::with_capacity(self.username.len() + 1 + self.password.len());
        pair.extend_from_slice(&self.username);
        pair.push(b':');
        pair.extend_from_slice(&self.password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        let mut value = HeaderValue::try_from(format!("Basic {encoded}"))
            .expect("base64 is a valid header value");
        value.set_sensitive(true);
        value
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// A parsed proxy URL.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ProxyUri {
    pub(super) scheme: Scheme,
    /// The host, without the brackets of an IPv6 literal.
    pub(super) host: String,
    pub(super) port: u16,
    /// From the URL's userinfo, percent-decoded.
    pub(super) credentials: Option<Credentials>,
}

impl ProxyUri {
    /// Parses a proxy URL. One without a scheme (`127.0.0.1:3128`, as often found in
    /// `http_proxy`) is taken as `http://`. Ports default to 80, 443 and 1080.
    pub(super) fn parse(input: &str) -> Result<Self, ProxyError> {
        let input = input.trim();
        let url = if input.contains("://") {
            url::Url::parse(input)
        } else {
            url::Url::parse(&format!("http://{input}"))
        }
        .map_err(|e| ProxyError::InvalidUri(format!("{input:?}: {e}")))?;
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            other => {
                return Err(ProxyError::InvalidUri(format!(
                    "scheme {other:?} is not http, https, socks5 or socks5h"
                )));
            }
        };
        let host = match url.host_str() {
            Some(h) if h.starts_with('[') => h[1..h.len() - 1].to_owned(),
            Some(h) if !h.is_empty() => h.to_owned(),
            _ => return Err(ProxyError::InvalidUri(format!("{input:?} has no host"))),
        };
        let port = url.port_or_known_default().unwrap_or(1080);
        let credentials = (!url.username().is_empty()).then(|| Credentials {
            username: percent_decode(url.username()),
            password: percent_decode(url.password().unwrap_or_default()),
        });
        Ok(Self {
            scheme,
            host,
            port,
            credentials,
        })
    }

    /// `host:port`, with brackets around an IPv6 literal.
    pub(super) fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
}

impl fmt::Debug for ProxyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No credentials: they would end up in logs.
        write!(f, "{:?}://{}", self.scheme, self.authority())
    }
}

/// `host:port`, with brackets around an IPv6 literal.
pub(super) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits stays as it is.
fn percent_decode(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_ports_and_hosts() {
        let cases = [
            ("http://proxy:3128", Scheme::Http, "proxy", 3128),
            ("http://proxy", Scheme::Http, "proxy", 80),
            ("https://proxy", Scheme::Https, "proxy", 443),
            ("socks5://127.0.0.1", Scheme::Socks5, "127.0.0.1", 1080),
            ("socks5h://[::1]:9050", Scheme::Socks5h, "::1", 9050),
            ("127.0.0.1:8888", Scheme::Http, "127.0.0.1", 8888),
            (
                "  HTTP://Proxy.Example/ignored/path  ",
                Scheme::Http,
                "proxy.example",
                80,
            ),
        ];
        for (input, scheme, host, port) in cases {
            let uri = ProxyUri::parse(input).unwrap();
            assert_eq!(
                (uri.scheme, uri.host.as_str(), uri.port),
                (scheme, host, port),
                "{input}"
            );
            assert!(uri.credentials.is_none(), "{input}");
        }
        assert_eq!(
            ProxyUri::parse("socks5h://[::1]:9050").unwrap().authority(),
            "[::1]:9050"
        );
    }

    #[test]
    fn unsupported_or_broken_urls_are_refused() {
        for input in [
            "ftp://proxy",
            "socks4://proxy:1080",
            "http://",
            "http://[::1",
            "",
        ] {
            assert!(
                matches!(ProxyUri::parse(input), Err(ProxyError::InvalidUri(_))),
                "{input}"
            );
        }
    }

    #[test]
    fn userinfo_is_percent_decoded_into_basic_credentials() {
        let uri = ProxyUri::parse("http://us%3Aer:p%40ss%zz@proxy:3128").unwrap();
        let credentials = uri.credentials.clone().unwrap();
        assert_eq!(credentials.username, b"us:er");
        assert_eq!(credentials.password, b"p@ss%zz");
        // base64("us:er:p@ss%zz")
        assert_eq!(credentials.basic(), "Basic dXM6ZXI6cEBzcyV6eg==");
        assert!(credentials.basic().is_sensitive());
        // A user without a password is still sent (as curl does), with an empty password.
        let user_only = ProxyUri::parse("http://user@proxy").unwrap();
        assert_eq!(user_only.credentials.unwrap().basic(), "Basic dXNlcjo=");
    }

    #[test]
    fn credentials_are_never_printed() {
        let uri = ProxyUri::parse("http://user:secret@proxy:3128").unwrap();
        let printed = format!("{uri:?} {:?}", uri.credentials);
        assert!(
            !printed.contains("secret") && !printed.contains("user"),
            "{printed}"
        );
    }
}
