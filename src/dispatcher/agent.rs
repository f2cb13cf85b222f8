//! `Agent`: the direct dispatcher. DNS, TCP (TCP_NODELAY, optional keepalive), TLS by rustls,
//! then HTTP/1.1.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use ::h2::client::SendRequest;
use bytes::Bytes;

use super::h2::{self, H2Pool, H2Settings, OpenError, Slot, open_stream};
use super::tls::TlsCache;
use super::{DispatchFuture, Dispatcher, Io, TlsRoots, Upgraded, upgrade_http1};
use crate::Failure;
use crate::handshake::{DEFAULT_MAX_HEAD_SIZE, HandshakeError, HandshakeRequest};

/// Settings of an [`Agent`].
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// How long DNS resolution and the TCP connect may take (default 10 s).
    pub connect_timeout: Duration,
    /// How long the TLS and HTTP handshakes may take once connected (default 30 s).
    pub handshake_timeout: Duration,
    /// The certificates `wss` trusts (default: the webpki roots).
    pub tls: TlsRoots,
    /// The largest HTTP response head accepted (default 64 KiB; over HTTP/2, the header list).
    pub max_response_head_size: usize,
    /// Offer HTTP/2 to `wss` servers (ALPN `h2, http/1.1`) and open WebSockets over it by
    /// extended CONNECT (RFC 8441), many on one connection, where the server allows it; others
    /// get HTTP/1.1 (default `false`; undici's `allowH2`). Experimental.
    pub allow_h2: bool,
    /// Speak HTTP/2 to `ws` servers from the first byte, without TLS (h2c with prior
    /// knowledge), as `allow_h2` does for `wss` (default `false`). Experimental.
    pub h2_prior_knowledge: bool,
    /// With `allow_h2` or `h2_prior_knowledge`: fail with
    /// [`HandshakeError::NoExtendedConnect`](crate::handshake::HandshakeError::NoExtendedConnect)
    /// rather than fall back to HTTP/1.1 (default `false`).
    pub h2_only: bool,
    /// How many bytes an HTTP/2 server may send on one WebSocket ahead of its reader (the
    /// stream's flow-control window; default 256 KiB).
    pub h2_stream_window: u32,
    /// How many bytes an HTTP/2 server may send on one connection ahead of its readers (the
    /// connection's flow-control window; default 16 MiB, so that 64 stalled readers hold it
    /// up before the connection's other WebSockets wait).
    pub h2_connection_window: u32,
    /// TCP keepalive on every connection the agent opens: to the server (HTTP/1.1 or HTTP/2)
    /// or, for a [`ProxyAgent`](crate::ProxyAgent), to the proxy (default `None`: the OS
    /// default, which is off). Probes find a peer or a NAT mapping that vanished without a
    /// word while the WebSocket is idle; [`TcpKeepalive::default`] takes libcurl's settings.
    pub tcp_keepalive: Option<TcpKeepalive>,
}

/// TCP keepalive settings ([`AgentOptions::tcp_keepalive`]), applied with `SO_KEEPALIVE` and
/// the per-socket options below. Most systems count in whole seconds (Windows in
/// milliseconds); Linux refuses an `idle` or `interval` under one second, and then the
/// connection fails with [`Failure::Io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpKeepalive {
    /// How long the connection stays idle before the first probe (`TCP_KEEPIDLE`,
    /// `TCP_KEEPALIVE` on macOS).
    pub idle: Duration,
    /// The time between unanswered probes (`TCP_KEEPINTVL`); `None` keeps the OS default.
    /// Ignored where it cannot be set per socket (OpenBSD, Solaris, Haiku, among others).
    pub interval: Option<Duration>,
    /// How many unanswered probes fail the connection (`TCP_KEEPCNT`); `None` keeps the OS
    /// default. Ignored where `interval` is.
    pub retries: Option<u32>,
}

impl Default for TcpKeepalive {
    /// libcurl's defaults (`CURLOPT_TCP_KEEPIDLE` 60 s, `CURLOPT_TCP_KEEPINTVL` 60 s,
    /// `CURLOPT_TCP_KEEPCNT` 9): a dead peer is noticed after 10 minutes of silence, where
    /// Linux's own defaults (7200 s, 75 s, 9) take 2 h 11 min.
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(60),
            interval: Some(Duration::from_secs(60)),
            retries: Some(9),
        }
    }
}

impl TcpKeepalive {
    /// The settings as socket2 takes them. Interval and count: where socket2 0.6 sets them.
    fn to_socket2(self) -> socket2::TcpKeepalive {
        let params = socket2::TcpKeepalive::new().with_time(self.idle);
        #[cfg(any(
            target_os = "android",
            target_os = "dragonfly",
            target_os = "freebsd",
            target_os = "fuchsia",
            target_os = "illumos",
            target_os = "ios",
            target_os = "visionos",
            target_os = "linux",
            target_os = "macos",
            target_os = "netbsd",
            target_os = "tvos",
            target_os = "watchos",
            target_os = "windows",
            target_os = "cygwin",
        ))]
        let params = {
            let params = match self.interval {
                Some(interval) => params.with_interval(interval),
                None => params,
            };
            match self.retries {
                Some(retries) => params.with_retries(retries),
                None => params,
            }
        };
        params
    }
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(30),
            tls: TlsRoots::default(),
            max_response_head_size: DEFAULT_MAX_HEAD_SIZE,
            allow_h2: false,
            h2_prior_knowledge: false,
            h2_only: false,
            h2_stream_window: 256 * 1024,
            h2_connection_window: 16 * 1024 * 1024,
            tcp_keepalive: None,
        }
    }
}

/// The direct dispatcher: connects to the URL's host itself, over TCP or TLS.
#[derive(Clone, Debug, Default)]
pub struct Agent {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    options: AgentOptions,
    /// For HTTP/1.1: ALPN `http/1.1`.
    tls: TlsCache,
    /// With `allow_h2`: ALPN `h2, http/1.1`.
    tls_h2: TlsCache,
    pool: H2Pool,
}

/// What a new connection to an origin turned out to be.
enum Setup {
    /// An HTTP/2 connection, if the server allows extended CONNECT on it.
    H2(Option<SendRequest<Bytes>>),
    /// The TLS server chose HTTP/1.1: the WebSocket opened on it.
    Http1(Upgraded),
}

impl Agent {
    /// An agent with the default options.
    pub fn new() -> Self {
        Self::default()
    }

    /// An agent with `options`.
    pub fn with_options(options: AgentOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                tls: TlsCache::new(options.tls.clone()),
                tls_h2: TlsCache::offering(options.tls.clone(), &[b"h2", b"http/1.1"]),
                options,
                pool: H2Pool::default(),
            }),
        }
    }

    /// The options.
    pub fn options(&self) -> &AgentOptions {
        &self.inner.options
    }

    /// Connects directly to the URL's host and runs the handshake.
    pub(super) async fn connect(&self, request: HandshakeRequest) -> Result<Upgraded, Failure> {
        let options = &self.inner.options;
        let h2 = if request.is_secure() {
            options.allow_h2
        } else {
            options.h2_prior_knowledge
        };
        if h2 {
            self.connect_h2(&request).await
        } else {
            self.connect_http1(&request).await
        }
    }

    /// A WebSocket over HTTP/1.1 on a connection of its own.
    async fn connect_http1(&self, request: &HandshakeRequest) -> Result<Upgraded, Failure> {
        let inner = &self.inner;
        let tcp = self.connect_tcp(request).await?;
        open_over(tcp, request, &inner.options, &inner.tls).await
    }

    async fn connect_tcp(&self, request: &HandshakeRequest) -> Result<TcpStream, Failure> {
        let (host, port) = request.host_and_port();
        let options = &self.inner.options;
        timeout(options.connect_timeout, connect_tcp(host, port, options))
            .await
            .map_err(|_| Failure::Timeout("connect"))?
    }

    /// A WebSocket over the origin's HTTP/2 connection (set up if there is none), or over
    /// HTTP/1.1 when the origin does not allow that.
    async fn connect_h2(&self, request: &HandshakeRequest) -> Result<Upgraded, Failure> {
        let options = &self.inner.options;
        let slot = self.inner.pool.slot(request);
        // A pooled connection may turn out to be gone: then one new one is tried.
        for _ in 0..2 {
            let mut guard = slot.lock().await;
            let send_request = match &*guard {
                Slot::Open(send_request) => send_request.clone(),
                Slot::Http1 => {
                    drop(guard);
                    return self.fall_back(request).await;
                }
                Slot::Unknown => match self.new_connection(request).await? {
                    Setup::Http1(upgraded) => {
                        *guard = Slot::Http1;
                        return Ok(upgraded);
                    }
                    Setup::H2(None) => {
                        *guard = Slot::Http1;
                        drop(guard);
                        return self.fall_back(request).await;
                    }
                    Setup::H2(Some(send_request)) => {
                        *guard = Slot::Open(send_request.clone());
                        send_request
                    }
                },
            };
            drop(guard);
            match timeout(
                options.handshake_timeout,
                open_stream(send_request, request),
            )
            .await
            {
                Err(_) => return Err(Failure::Timeout("opening handshake")),
                Ok(Ok(upgraded)) => return Ok(upgraded),
                Ok(Err(OpenError::Failed(failure))) => return Err(failure),
                Ok(Err(OpenError::Gone)) => *slot.lock().await = Slot::Unknown,
            }
        }
        Err(Failure::ConnectionClosed)
    }

    /// HTTP/1.1 for an origin that does not do WebSockets over HTTP/2, unless `h2_only`.
    async fn fall_back(&self, request: &HandshakeRequest) -> Result<Upgraded, Failure> {
        if self.inner.options.h2_only {
            return Err(Failure::Handshake(HandshakeError::NoExtendedConnect));
        }
        self.connect_http1(request).await
    }

    /// Connects to the origin offering HTTP/2 and finds out what the server speaks.
    async fn new_connection(&self, request: &HandshakeRequest) -> Result<Setup, Failure> {
        let inner = &self.inner;
        let options = &inner.options;
        let settings = H2Settings {
            stream_window: options.h2_stream_window,
            connection_window: options.h2_connection_window,
            max_head: u32::try_from(options.max_response_head_size).unwrap_or(u32::MAX),
        };
        let tcp = self.connect_tcp(request).await?;
        let setup = async {
            if !request.is_secure() {
                // A server that does not answer in HTTP/2 is taken for an HTTP/1.1 one.
                return Ok(Setup::H2(h2::handshake(tcp, settings).await.ok().flatten()));
            }
            let (host, _) = request.host_and_port();
            let tls = inner.tls_h2.connect(host, tcp).await?;
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                Ok(Setup::H2(h2::handshake(tls, settings).await?))
            } else {
                let max_head = options.max_response_head_size;
                Ok(Setup::Http1(upgrade_http1(tls, request, max_head).await?))
            }
        };
        timeout(options.handshake_timeout, setup)
            .await
            .map_err(|_| Failure::Timeout("opening handshake"))?
    }
}

impl Dispatcher for Agent {
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture {
        let agent = self.clone();
        Box::pin(async move { agent.connect(request).await })
    }
}

/// Opens a TCP connection with TCP_NODELAY set (WebSocket frames are written whole) and the
/// options' keepalive, if any.
pub(super) async fn connect_tcp(
    host: &str,
    port: u16,
    options: &AgentOptions,
) -> Result<TcpStream, Failure> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(Failure::Io)?;
    tcp.set_nodelay(true).map_err(Failure::Io)?;
    if let Some(keepalive) = options.tcp_keepalive {
        set_keepalive(&tcp, keepalive).map_err(Failure::Io)?;
    }
    Ok(tcp)
}

/// Turns TCP keepalive on for `tcp` with `keepalive`'s settings.
fn set_keepalive(tcp: &TcpStream, keepalive: TcpKeepalive) -> io::Result<()> {
    socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive.to_socket2())
}

/// Runs the opening handshake for `request` over `io`, a byte stream that reaches the URL's
/// host (directly or through a tunnel): TLS first for `wss`, then the HTTP/1.1 upgrade, all
/// within the handshake timeout.
pub(super) async fn open_over(
    io: impl Io,
    request: &HandshakeRequest,
    options: &AgentOptions,
    tls: &TlsCache,
) -> Result<Upgraded, Failure> {
    let handshake = async {
        if request.is_secure() {
            let (host, _) = request.host_and_port();
            let tls = tls.connect(host, io).await?;
            upgrade_http1(tls, request, options.max_response_head_size).await
        } else {
            upgrade_http1(io, request, options.max_response_head_size).await
        }
    };
    timeout(options.handshake_timeout, handshake)
        .await
        .map_err(|_| Failure::Timeout("opening handshake"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::SockRef;
    use tokio::net::TcpListener;

    /// A connection to a listener on 127.0.0.1 made by `connect_tcp` with `options`; the
    /// listener is returned too, so that the connection stays open.
    async fn connected(options: &AgentOptions) -> (TcpStream, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tcp = connect_tcp("127.0.0.1", port, options).await.unwrap();
        (tcp, listener)
    }

    fn with_keepalive(keepalive: TcpKeepalive) -> AgentOptions {
        AgentOptions {
            tcp_keepalive: Some(keepalive),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn keepalive_is_off_by_default() {
        assert_eq!(AgentOptions::default().tcp_keepalive, None);
        let (tcp, _listener) = connected(&AgentOptions::default()).await;
        assert!(!SockRef::from(&tcp).keepalive().unwrap());
        assert!(tcp.nodelay().unwrap());
    }

    #[tokio::test]
    async fn connect_tcp_turns_keepalive_on() {
        let keepalive = TcpKeepalive {
            idle: Duration::from_secs(37),
            interval: Some(Duration::from_secs(11)),
            retries: Some(4),
        };
        let (tcp, _listener) = connected(&with_keepalive(keepalive)).await;
        let socket = SockRef::from(&tcp);
        assert!(socket.keepalive().unwrap());
        assert!(tcp.nodelay().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(
                socket.tcp_keepalive_time().unwrap(),
                Duration::from_secs(37)
            );
            assert_eq!(
                socket.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(11)
            );
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
        }
    }

    /// The default settings reach the socket; `None` leaves the system's interval and count.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn keepalive_defaults_and_unset_parts() {
        let (tcp, _listener) = connected(&with_keepalive(TcpKeepalive::default())).await;
        let socket = SockRef::from(&tcp);
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(socket.tcp_keepalive_retries().unwrap(), 9);

        let (plain, _other) = connected(&AgentOptions::default()).await;
        let system = SockRef::from(&plain);
        let idle_only = TcpKeepalive {
            idle: Duration::from_secs(5),
            interval: None,
            retries: None,
        };
        let (tcp, _listener) = connected(&with_keepalive(idle_only)).await;
        let socket = SockRef::from(&tcp);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(5));
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            system.tcp_keepalive_interval().unwrap()
        );
        assert_eq!(
            socket.tcp_keepalive_retries().unwrap(),
            system.tcp_keepalive_retries().unwrap()
        );
    }

    /// A setting the system refuses fails the connection rather than pass unnoticed.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_refused_setting_fails_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let options = with_keepalive(TcpKeepalive {
            idle: Duration::ZERO,
            ..Default::default()
        });
        let failure = connect_tcp("127.0.0.1", port, &options).await.unwrap_err();
        assert!(matches!(failure, Failure::Io(_)), "{failure:?}");
    }
}
