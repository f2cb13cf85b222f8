//! `Agent`: the direct dispatcher. DNS, TCP (TCP_NODELAY), TLS by rustls, then HTTP/1.1.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use super::tls::TlsCache;
use super::{DispatchFuture, Dispatcher, Io, TlsRoots, Upgraded, upgrade_http1};
use crate::Failure;
use crate::handshake::{DEFAULT_MAX_HEAD_SIZE, HandshakeRequest};

/// Settings of an [`Agent`].
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// How long DNS resolution and the TCP connect may take (default 10 s).
    pub connect_timeout: Duration,
    /// How long the TLS and HTTP handshakes may take once connected (default 30 s).
    pub handshake_timeout: Duration,
    /// The certificates `wss` trusts (default: the webpki roots).
    pub tls: TlsRoots,
    /// The largest HTTP response head accepted (default 64 KiB).
    pub max_response_head_size: usize,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(30),
            tls: TlsRoots::default(),
            max_response_head_size: DEFAULT_MAX_HEAD_SIZE,
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
    tls: TlsCache,
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
                options,
            }),
        }
    }

    /// The options.
    pub fn options(&self) -> &AgentOptions {
        &self.inner.options
    }

    /// Connects directly to the URL's host and runs the handshake.
    pub(super) async fn connect(&self, request: HandshakeRequest) -> Result<Upgraded, Failure> {
        let inner = &self.inner;
        let (host, port) = request.host_and_port();
        let tcp = timeout(inner.options.connect_timeout, connect_tcp(host, port))
            .await
            .map_err(|_| Failure::Timeout("connect"))??;
        open_over(tcp, &request, &inner.options, &inner.tls).await
    }
}

impl Dispatcher for Agent {
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture {
        let agent = self.clone();
        Box::pin(async move { agent.connect(request).await })
    }
}

/// Opens a TCP connection with TCP_NODELAY set (WebSocket frames are written whole).
pub(super) async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(Failure::Io)?;
    tcp.set_nodelay(true).map_err(Failure::Io)?;
    Ok(tcp)
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
