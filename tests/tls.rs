//! `wss://` over loopback with real rustls on both ends and a test CA made by rcgen.

mod support;

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::*;
use whatwg_websocket::{
    Agent, AgentOptions, CloseInfo, Failure, Message, Opened, ServerOptions, StreamOptions,
    TlsRoots, WebSocketStream, accept,
};

struct TestPki {
    ca: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

fn pki() -> TestPki {
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
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// An echo server behind TLS on 127.0.0.1.
async fn tls_echo_server(pki: &TestPki) -> std::net::SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            pki.server_chain.clone(),
            PrivateKeyDer::Pkcs8(pki.server_key.clone_key()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
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

fn trusting(pki: &TestPki) -> StreamOptions {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let agent = Agent::with_options(AgentOptions {
        tls: TlsRoots::Custom(Arc::new(config)),
        ..Default::default()
    });
    StreamOptions {
        dispatcher: Some(agent.into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn wss_round_trips_with_a_trusted_certificate() {
    let pki = pki();
    let address = tls_echo_server(&pki).await;
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("wss://{host}:{}/secure", address.port());
        let (
            ws,
            Opened {
                mut readable,
                mut writable,
                ..
            },
        ) = connect(&url, trusting(&pki)).await;
        within(writable.send(Message::text("over TLS")))
            .await
            .unwrap();
        assert_eq!(
            within(readable.next()).await.unwrap().unwrap(),
            Message::text("over TLS")
        );
        ws.close(CloseInfo {
            close_code: Some(1000),
            reason: String::new(),
        })
        .unwrap();
        assert_eq!(
            within(ws.closed()).await.unwrap().close_code,
            Some(1000),
            "{host}"
        );
    }
}

#[tokio::test]
async fn an_untrusted_certificate_rejects_opened() {
    let pki = pki();
    let address = tls_echo_server(&pki).await;
    // The default agent trusts the webpki roots, which do not include the test CA.
    let ws = WebSocketStream::new(
        &format!("wss://localhost:{}/", address.port()),
        StreamOptions::default(),
    )
    .unwrap();
    let error = within(ws.opened()).await.unwrap_err();
    assert_eq!(error.close_code(), Some(1006));
    match error.failure() {
        Some(Failure::Io(io)) => assert!(io.to_string().contains("certificate"), "{io}"),
        other => panic!("expected a certificate error, got {other:?}"),
    }
}
