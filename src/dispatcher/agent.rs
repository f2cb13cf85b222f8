//! `Agent`: the direct dispatcher. DNS, TCP (TCP_NODELAY), TLS by rustls, then HTTP/1.1.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{DispatchFuture, Dispatcher, TlsRoots, upgrade_http1};
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
    /// Built on first `wss` use: loading the system store is not free.
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, rustls::Error>>,
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
                options,
                tls: OnceLock::new(),
            }),
        }
    }

    /// The options.
    pub fn options(&self) -> &AgentOptions {
        &self.inner.options
    }
}

impl Dispatcher for Agent {
    fn dispatch(&self, request: HandshakeRequest) -> DispatchFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.connect(request).await })
    }
}

impl Inner {
    async fn connect(&self, request: HandshakeRequest) -> Result<super::Upgraded, Failure> {
        let options = &self.options;
        let (host, port) = request.host_and_port();
        let tcp = timeout(options.connect_timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| Failure::Timeout("connect"))?
            .map_err(Failure::Io)?;
        tcp.set_nodelay(true).map_err(Failure::Io)?;
        let handshake = async {
            if request.is_secure() {
                let config = self
                    .tls
                    .get_or_init(|| options.tls.client_config())
                    .clone()
                    .map_err(|e| Failure::Io(std::io::Error::other(e)))?;
                let name = ServerName::try_from(host.to_owned()).map_err(|e| {
                    Failure::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
                })?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(Failure::Io)?;
                upgrade_http1(tls, &request, options.max_response_head_size).await
            } else {
                upgrade_http1(tcp, &request, options.max_response_head_size).await
            }
        };
        timeout(options.handshake_timeout, handshake)
            .await
            .map_err(|_| Failure::Timeout("opening handshake"))?
    }
}
