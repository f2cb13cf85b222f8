//! `ProxyAgent`: WebSockets through an HTTP, HTTPS or SOCKS5 proxy; `EnvHttpProxyAgent`: the
//! proxy from `http_proxy`, `https_proxy` and `no_proxy`.
//!
//! An HTTP proxy is always asked for a CONNECT tunnel, for `ws` as well as `wss`; the opening
//! handshake (and TLS for `wss`) then runs inside the tunnel, end to end with the server. An
//! `https` proxy is reached over TLS first, so a `wss` connection is TLS inside TLS.

mod env;
mod error;
mod http_connect;
mod no_proxy;
mod socks5;
mod uri;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tokio::time::timeout;

use super::agent::{connect_tcp, open_over};
use super::tls::TlsCache;
use super::{AgentOptions, DispatchFuture, Dispatcher, Io, TlsRoots, Upgraded};
use crate::Failure;
use crate::handshake::HandshakeRequest;
pub use env::{EnvHttpProxyAgent, EnvHttpProxyOptions};
pub use error::ProxyError;
pub use no_proxy::NoProxy;
use uri::{Credentials, ProxyUri, Scheme};

/// The dispatcher that reaches every server through one proxy (undici's `ProxyAgent`).
///
/// ```no_run
/// # fn main() -> Result<(), whatwg_websocket::ProxyError> {
/// use whatwg_websocket::{ProxyAgent, WebSocketInit};
///
/// let proxy = ProxyAgent::builder("http://proxy.internal:3128")
///     .auth("alice", "s3cret")
///     .build()?;
/// let init = WebSocketInit {
///     dispatcher: Some(proxy.into()),
///     ..Default::default()
/// };
/// # let _ = init;
/// # Ok(())
/// # }
/// ```
///
/// Proxy URL schemes:
/// - `http://`: CONNECT over TCP;
/// - `https://`: TLS to the proxy (checked against [`ProxyAgentBuilder::proxy_tls`]), then
///   CONNECT;
/// - `socks5://`: SOCKS5 (RFC 1928), the server's name resolved here;
/// - `socks5h://`: SOCKS5, the name resolved by the proxy.
///
/// Credentials for the proxy come from [`token`](ProxyAgentBuilder::token) (the whole
/// `Proxy-Authorization` value), [`auth`](ProxyAgentBuilder::auth), or the URL's userinfo
/// (percent-decoded), in that order; for SOCKS5 they are its username and password (RFC 1929).
/// They go to the proxy only, never to the server.
///
/// When the proxy refuses, the connection fails: the Rust side gets [`Failure::Proxy`] with
/// [`ProxyError::Refused`] (the status and, for a 407, the `Proxy-Authenticate` challenges);
/// the web side gets the standard's `error` and `close` (1006).
#[derive(Clone)]
pub struct ProxyAgent {
    inner: Arc<Inner>,
}

struct Inner {
    uri: ProxyUri,
    /// The CONNECT request's headers: the caller's, then `Proxy-Authorization`.
    connect_headers: HeaderMap,
    /// SOCKS5's username and password.
    socks_credentials: Option<Credentials>,
    options: AgentOptions,
    proxy_tls: TlsCache,
    request_tls: TlsCache,
}

/// Settings for a [`ProxyAgent`]: [`ProxyAgent::builder`], then [`build`](Self::build).
#[derive(Clone)]
pub struct ProxyAgentBuilder {
    uri: String,
    token: Option<String>,
    auth: Option<Credentials>,
    headers: HeaderMap,
    options: AgentOptions,
    proxy_tls: TlsRoots,
}

impl ProxyAgent {
    /// A proxy agent for `uri` with the default settings; credentials may be in the URL
    /// (`http://user:password@proxy:3128`).
    pub fn new(uri: &str) -> Result<Self, ProxyError> {
        Self::builder(uri).build()
    }

    /// Settings for a proxy agent for `uri`.
    pub fn builder(uri: impl Into<String>) -> ProxyAgentBuilder {
        ProxyAgentBuilder {
            uri: uri.into(),
            token: None,
            auth: None,
            headers: HeaderMap::new(),
            options: AgentOptions::default(),
            proxy_tls: TlsRoots::default(),
        }
    }

    /// Connects through the proxy and runs the handshake for `request` in the tunnel.
    pub(crate) async fn connect(&self, request: HandshakeRequest) -> Result<Upgraded, Failure> {
        let inner = &self.inner;
        let (host, port) = request.host_and_port();
        let within = inner.options.connect_timeout;
        let proxy = connect_tcp(&inner.uri.host, inner.uri.port, &inner.options);
        if inner.uri.scheme == Scheme::Https {
            let tunnel = async {
                let proxy = inner
                    .proxy_tls
                    .connect(&inner.uri.host, proxy.await?)
                    .await?;
                inner.open_tunnel(proxy, host, port).await
            };
            let tunnel = timeout(within, tunnel).await.map_err(|_| TIMEOUT)??;
            open_over(tunnel, &request, &inner.options, &inner.request_tls).await
        } else {
            let tunnel = async { inner.open_tunnel(proxy.await?, host, port).await };
            let tunnel = timeout(within, tunnel).await.map_err(|_| TIMEOUT)??;
            open_over(tunnel, &request, &inner.options, &inner.request_tls).await
        }
    }
}

/// The failure when the proxy is not reached and through within the connect timeout.
const TIMEOUT: Failure = Failure::Timeout("connecting through the proxy");

impl Inner {
    /// Asks the proxy at the other end of `io` for a tunnel to `host:port`.
    async fn open_tunnel<S: Io>(&self, mut io: S, host: &str, port: u16) -> Result<S, Failure> {
        match self.uri.scheme {
            Scheme::Http | Scheme::Https => {
                let authority = uri::authority(host, port);
                let max_head = self.options.max_response_head_size;
                http_connect::tunnel(&mut io, &authority, &self.connect_headers, max_head).await?;
            }
            Scheme::Socks5 => {
                let address = match host.parse::<IpAddr>() {
                    Ok(ip) => ip,
                    Err(_) => tokio::net::lookup_host((host, port))
                        .await
                        .map_err(Failure::Io)?
                        .next()
                        .ok_or_else(|| {
                            Failure::Io(std::io::Error::other(format!("{host} has no address")))
                        })?
                        .ip(),
                };
                let target = socks5::Target::Ip(address);
                socks5::handshake(&mut io, target, port, self.socks_credentials.as_ref()).await?;
            }
            Scheme::Socks5h => {
                let target = match host.parse::<IpAddr>() {
                    Ok(ip) => socks5::Target::Ip(ip),
                    Err(_) => socks5::Target::Domain(host),
                };
                socks5::handshake(&mut io, target, port, self.socks_credentials.as_ref()).await?;
            }
        }
        Ok(io)
    }
}

impl Dispatcher for ProxyAgent {
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture {
        let agent = self.clone();
        Box::pin(async move { agent.connect(request).await })
    }
}

impl From<ProxyAgent> for Arc<dyn Dispatcher> {
    fn from(agent: ProxyAgent) -> Self {
        Arc::new(agent)
    }
}

impl fmt::Debug for ProxyAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The proxy's address only: headers and userinfo may hold credentials.
        f.debug_struct("ProxyAgent")
            .field("uri", &self.inner.uri)
            .finish_non_exhaustive()
    }
}

impl ProxyAgentBuilder {
    /// The `Proxy-Authorization` value sent with CONNECT, whole (`Bearer ...`, `Basic ...`).
    /// Not with [`auth`](Self::auth), nor with a SOCKS5 proxy.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// A username and password for the proxy: `Basic` for an HTTP proxy, RFC 1929 for
    /// SOCKS5. They replace any in the URL. (undici's `auth` takes the base64 of
    /// `user:password` instead; pass `token(format!("Basic {auth}"))` for that.)
    pub fn auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some(Credentials {
            username: username.into().into_bytes(),
            password: password.into().into_bytes(),
        });
        self
    }

    /// Extra headers for the CONNECT request (HTTP proxies only); credentials set by
    /// [`token`](Self::token), [`auth`](Self::auth) or the URL replace a
    /// `Proxy-Authorization` among them.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// The certificates that a `wss` server is checked against (undici's `requestTls`);
    /// the same as `options.tls`.
    pub fn request_tls(mut self, roots: TlsRoots) -> Self {
        self.options.tls = roots;
        self
    }

    /// The certificates that an `https` proxy is checked against (undici's `proxyTls`).
    pub fn proxy_tls(mut self, roots: TlsRoots) -> Self {
        self.proxy_tls = roots;
        self
    }

    /// How long reaching the proxy and opening the tunnel may take: DNS, TCP, TLS to an
    /// `https` proxy, and CONNECT or the SOCKS5 exchange (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How long the TLS and HTTP handshakes with the server may take inside the tunnel
    /// (default 30 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.options.handshake_timeout = timeout;
        self
    }

    /// All the [`AgentOptions`] at once (the timeouts, the server's certificates, the largest
    /// response head, which also bounds the proxy's answer to CONNECT, the TCP keepalive of the
    /// connection to the proxy). The HTTP/2 options do not apply: inside a tunnel the
    /// WebSocket speaks HTTP/1.1.
    pub fn options(mut self, options: AgentOptions) -> Self {
        self.options = options;
        self
    }

    /// The agent, or what is wrong with the settings: a URL that does not parse or has
    /// another scheme, both a token and credentials, a token or headers for a SOCKS5 proxy,
    /// a token that is not a header value, SOCKS5 credentials longer than 255 bytes.
    pub fn build(self) -> Result<ProxyAgent, ProxyError> {
        let uri = ProxyUri::parse(&self.uri)?;
        if self.token.is_some() && self.auth.is_some() {
            return Err(ProxyError::InvalidOption(
                "token and auth cannot both be given".into(),
            ));
        }
        let credentials = self.auth.or_else(|| uri.credentials.clone());
        let mut connect_headers = self.headers;
        let mut socks_credentials = None;
        if matches!(uri.scheme, Scheme::Socks5 | Scheme::Socks5h) {
            if self.token.is_some() || !connect_headers.is_empty() {
                return Err(ProxyError::InvalidOption(
                    "a token and headers apply to HTTP proxies, not SOCKS5".into(),
                ));
            }
            if let Some(credentials) = &credentials {
                socks5::check_credentials(credentials)?;
            }
            socks_credentials = credentials;
        } else if let Some(token) = self.token {
            let mut value = HeaderValue::try_from(token).map_err(|_| {
                ProxyError::InvalidOption("the token is not a valid header value".into())
            })?;
            value.set_sensitive(true);
            connect_headers.insert(http::header::PROXY_AUTHORIZATION, value);
        } else if let Some(credentials) = credentials {
            connect_headers.insert(http::header::PROXY_AUTHORIZATION, credentials.basic());
        }
        Ok(ProxyAgent {
            inner: Arc::new(Inner {
                uri,
                connect_headers,
                socks_credentials,
                proxy_tls: TlsCache::new(self.proxy_tls),
                request_tls: TlsCache::new(self.options.tls.clone()),
                options: self.options,
            }),
        })
    }
}

impl fmt::Debug for ProxyAgentBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyAgentBuilder").finish_non_exhaustive()
    }
}

/// Judges arbitrary bytes as a proxy's answers: to CONNECT, and to each step of SOCKS5. For
/// the `handshake` fuzz target; panics when a property does not hold.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn judge_answers(data: &[u8]) {
    const LIMIT: usize = 4096;
    if let Ok(true) = http_connect::decode_connect_response(data, LIMIT) {
        // The whole input is the head (httparse also ends a head with a bare `\n\n`).
        assert!(data.len() <= LIMIT && data.ends_with(b"\n"));
    }
    if let [first, second, ..] = *data {
        assert!(socks5::chosen_method([first, second], false) != Ok(true));
        let _ = socks5::chosen_method([first, second], true);
        let _ = socks5::auth_status([first, second]);
    }
    if let Some(Ok(rest)) = data
        .first_chunk::<5>()
        .map(|head| socks5::reply_rest(*head))
    {
        assert!(rest <= 257, "the bound address fits the buffer");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(agent: &ProxyAgent) -> Option<&HeaderValue> {
        agent
            .inner
            .connect_headers
            .get(http::header::PROXY_AUTHORIZATION)
    }

    #[test]
    fn credentials_come_from_token_auth_or_the_url_in_that_order() {
        let url = "http://from:url@proxy:3128";
        let from_url = ProxyAgent::new(url).unwrap();
        assert_eq!(authorization(&from_url).unwrap(), "Basic ZnJvbTp1cmw=");
        let auth = ProxyAgent::builder(url).auth("a", "b").build().unwrap();
        assert_eq!(authorization(&auth).unwrap(), "Basic YTpi");
        let token = ProxyAgent::builder(url).token("Bearer t").build().unwrap();
        assert_eq!(authorization(&token).unwrap(), "Bearer t");
        assert!(authorization(&token).unwrap().is_sensitive());
        assert!(authorization(&ProxyAgent::new("http://proxy").unwrap()).is_none());
    }

    #[test]
    fn contradictory_or_invalid_settings_are_refused_at_construction() {
        let both = ProxyAgent::builder("http://proxy")
            .token("Bearer t")
            .auth("a", "b");
        assert!(matches!(both.build(), Err(ProxyError::InvalidOption(_))));
        let bad_token = ProxyAgent::builder("http://proxy").token("a\r\nb");
        assert!(matches!(
            bad_token.build(),
            Err(ProxyError::InvalidOption(_))
        ));
        let socks_token = ProxyAgent::builder("socks5://proxy").token("Bearer t");
        assert!(matches!(
            socks_token.build(),
            Err(ProxyError::InvalidOption(_))
        ));
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        let socks_headers = ProxyAgent::builder("socks5h://proxy").headers(headers);
        assert!(matches!(
            socks_headers.build(),
            Err(ProxyError::InvalidOption(_))
        ));
        let long_user = ProxyAgent::builder("socks5://proxy").auth("u".repeat(256), "p");
        assert!(matches!(
            long_user.build(),
            Err(ProxyError::InvalidOption(_))
        ));
        assert!(matches!(
            ProxyAgent::new("gopher://proxy"),
            Err(ProxyError::InvalidUri(_))
        ));
    }

    #[test]
    fn socks_credentials_come_from_auth_or_the_url() {
        let agent = ProxyAgent::new("socks5://u%20s:p@proxy").unwrap();
        let credentials = agent.inner.socks_credentials.clone().unwrap();
        assert_eq!(
            (&credentials.username[..], &credentials.password[..]),
            (&b"u s"[..], &b"p"[..])
        );
        assert!(authorization(&agent).is_none());
    }

    #[test]
    fn the_extra_headers_go_with_connect_and_credentials_replace_theirs() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tenant", HeaderValue::from_static("7"));
        headers.insert("proxy-authorization", HeaderValue::from_static("Basic old"));
        let agent = ProxyAgent::builder("http://proxy")
            .headers(headers)
            .auth("a", "b")
            .build()
            .unwrap();
        assert_eq!(agent.inner.connect_headers["x-tenant"], "7");
        assert_eq!(authorization(&agent).unwrap(), "Basic YTpi");
    }

    #[test]
    fn debug_output_holds_no_credentials() {
        let agent = ProxyAgent::builder("http://user:pw@proxy:3128")
            .build()
            .unwrap();
        let printed = format!("{agent:?}");
        assert!(printed.contains("proxy:3128"), "{printed}");
        assert!(
            !printed.contains("pw") && !printed.contains("user"),
            "{printed}"
        );
    }
}
