//! `wss://` over loopback with real rustls on both ends and a test CA made by rcgen.

mod support;

use futures_util::{SinkExt, StreamExt};
use support::pki::*;
use support::*;
use whatwg_websocket::{
    Agent, AgentOptions, CloseInfo, Failure, Message, Opened, StreamOptions, WebSocketStream,
};

fn trusting(pki: &TestPki) -> StreamOptions {
    let agent = Agent::with_options(AgentOptions {
        tls: pki.roots(),
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
