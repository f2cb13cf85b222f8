//! TLS client configuration: rustls with the webpki roots, the system store, or the caller's.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio_rustls::client::TlsStream;

use super::Io;
use crate::Failure;

/// Which certificates a `wss` connection trusts.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// Mozilla's root store, compiled in (`webpki-roots`). The default.
    #[default]
    WebPki,
    /// The operating system's trust store (`rustls-native-certs`), read once per `Agent`.
    System,
    /// The caller's complete configuration. ALPN `http/1.1` is added when it names none.
    Custom(Arc<ClientConfig>),
}

impl TlsRoots {
    /// The rustls configuration for these roots offering `alpn` (a custom configuration keeps
    /// its own ALPN list when it has one and only `http/1.1` is asked for).
    pub(crate) fn client_config_offering(
        &self,
        alpn: &[&[u8]],
    ) -> Result<Arc<ClientConfig>, rustls::Error> {
        let mut config = match self {
            Self::Custom(config) => {
                if !config.alpn_protocols.is_empty() && alpn == [b"http/1.1"] {
                    return Ok(config.clone());
                }
                (**config).clone()
            }
            Self::WebPki => {
                let roots = rustls::RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                builder()?
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
            Self::System => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                builder()?
                    .with_root_certificates(roots)
                    .with_no_client_auth()
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }
}

/// A client configuration built on first use (loading the system store is not free), then
/// shared by every connection of a dispatcher.
#[derive(Debug)]
pub(super) struct TlsCache {
    roots: TlsRoots,
    alpn: &'static [&'static [u8]],
    config: OnceLock<Result<Arc<ClientConfig>, rustls::Error>>,
}

impl Default for TlsCache {
    fn default() -> Self {
        Self::new(TlsRoots::default())
    }
}

impl TlsCache {
    /// Configurations offering ALPN `http/1.1`.
    pub(super) fn new(roots: TlsRoots) -> Self {
        Self::offering(roots, &[b"http/1.1"])
    }

    /// Configurations offering `alpn`.
    pub(super) fn offering(roots: TlsRoots, alpn: &'static [&'static [u8]]) -> Self {
        Self {
            roots,
            alpn,
            config: OnceLock::new(),
        }
    }

    /// Runs a TLS client handshake with `host` over `io`.
    pub(super) async fn connect<S: Io>(&self, host: &str, io: S) -> Result<TlsStream<S>, Failure> {
        let config = self
            .config
            .get_or_init(|| self.roots.client_config_offering(self.alpn))
            .clone()
            .map_err(|e| Failure::Io(std::io::Error::other(e)))?;
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Failure::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, io)
            .await
            .map_err(Failure::Io)
    }
}

fn builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, rustls::Error> {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
}
