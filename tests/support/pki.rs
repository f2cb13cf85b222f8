//! A test CA made by rcgen, a server certificate for `localhost` and `127.0.0.1` signed by it,
//! and the rustls configurations of both ends.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use whatwg_websocket::{ServerOptions, TlsRoots, accept};

use super::{echo, spawn_server};

pub struct TestPki {
    pub ca: CertificateDer<'static>,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: PrivatePkcs8KeyDer<'static>,
    /// The server certificate and key as PEM, for servers outside the process.
    pub server_pem: (String, String),
}

pub fn pki() -> TestPki {
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_params =
        CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = server_params.signed_by(&server_key, &issuer).unwrap();
    TestPki {
        ca: ca.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        server_pem: (server.pem(), server_key.serialize_pem()),
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TestPki {
    /// The server's rustls configuration.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                self.server_chain.clone(),
                PrivateKeyDer::Pkcs8(self.server_key.clone_key()),
            )
            .unwrap();
        Arc::new(config)
    }

    /// A client configuration that trusts the test CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// [`TlsRoots`] that trust the test CA only.
    pub fn roots(&self) -> TlsRoots {
        TlsRoots::Custom(self.client_config())
    }
}

/// An echo server behind TLS on 127.0.0.1.
pub async fn tls_echo_server(pki: &TestPki) -> std::net::SocketAddr {
    let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config());
    spawn_server(move |socket| {
        let acceptor = acceptor.clone();
        async move {
            let Ok(tls) = acceptor.accept(socket).await else {
                return;
            };
            if let Ok(ws) = accept(tls, ServerOptions::default()).await {
                echo(ws).await;
            }
        }
    })
    .await
}

/// `pki`'s server certificate and key written to files under `target/<scratch>`, for servers
/// outside the process; removed when dropped.
pub struct PemFiles(std::path::PathBuf);

impl PemFiles {
    pub fn new(pki: &TestPki, scratch: &str) -> Self {
        let unique = super::daemon::free_port();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join(scratch)
            .join(format!("pem-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), &pki.server_pem.0).unwrap();
        std::fs::write(dir.join("key.pem"), &pki.server_pem.1).unwrap();
        Self(dir)
    }

    /// The certificate's path.
    pub fn cert(&self) -> String {
        self.0.join("cert.pem").to_str().unwrap().to_owned()
    }

    /// The key's path.
    pub fn key(&self) -> String {
        self.0.join("key.pem").to_str().unwrap().to_owned()
    }
}

impl Drop for PemFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
