//! `ProxyAgent` and `EnvHttpProxyAgent` against proxies written for the tests: HTTP CONNECT
//! (open, Basic auth, 407, TLS in front, silent, closing mid-tunnel) and SOCKS5, with `ws` and
//! `wss` servers behind them that record what reached them.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::pki::*;
use support::proxies::*;
use support::*;
use tokio::sync::mpsc;
use whatwg_websocket::{
    EnvHttpProxyAgent, EnvHttpProxyOptions, Event, Failure, Message, MessageData, Opened,
    ProxyAgent, ProxyError, WebSocket, WebSocketInit,
};

fn contains_ignoring_case(haystack: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(haystack)
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

#[tokio::test]
async fn ws_and_wss_go_through_a_connect_tunnel() {
    let pki = pki();
    let proxy = connect_proxy(Behaviour::default()).await;
    let (plain, _) = recording_echo_server(None).await;
    let (secure, _) = recording_echo_server(Some(pki.server_config())).await;
    let agent = ProxyAgent::builder(format!("http://{}", proxy.address))
        .request_tls(pki.roots())
        .build()
        .unwrap();
    round_trip(&format!("ws://{plain}/chat"), through(agent.clone()), "hi").await;
    let url = format!("wss://localhost:{}/chat", secure.port());
    round_trip(&url, through(agent), "hi").await;
    let requests = proxy.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    // ws is tunnelled too: a forwarded GET would lose its Upgrade header at many proxies.
    assert!(
        requests[0].starts_with(&format!("CONNECT {plain} HTTP/1.1\r\n")),
        "{requests:?}"
    );
    assert!(
        requests[0].contains(&format!("\r\nHost: {plain}\r\n")),
        "{requests:?}"
    );
    let authority = format!("localhost:{}", secure.port());
    assert!(
        requests[1].starts_with(&format!("CONNECT {authority} HTTP/1.1\r\n")),
        "{requests:?}"
    );
}

#[tokio::test]
async fn credentials_reach_the_proxy_and_never_the_server() {
    let pki = pki();
    let (plain, plain_seen) = recording_echo_server(None).await;
    let (secure, secure_seen) = recording_echo_server(Some(pki.server_config())).await;
    // base64("user:p w")
    let basic = "Basic dXNlcjpwIHc=";
    let proxy = connect_proxy(Behaviour {
        require: Some(basic.into()),
        ..Default::default()
    })
    .await;
    let from_url = ProxyAgent::builder(format!("http://user:p%20w@{}", proxy.address));
    let from_auth = ProxyAgent::builder(format!("http://{}", proxy.address)).auth("user", "p w");
    let from_token = ProxyAgent::builder(format!("http://{}", proxy.address)).token(basic);
    for builder in [from_url, from_auth, from_token] {
        let agent = builder.request_tls(pki.roots()).build().unwrap();
        round_trip(&format!("ws://{plain}/"), through(agent.clone()), "hi").await;
        let url = format!("wss://localhost:{}/", secure.port());
        round_trip(&url, through(agent), "hi").await;
    }
    for request in proxy.requests() {
        assert!(
            request.contains(&format!("\r\nproxy-authorization: {basic}\r\n")),
            "{request}"
        );
    }
    for seen in [plain_seen, secure_seen] {
        let seen = seen.lock().unwrap();
        assert!(contains_ignoring_case(&seen, "sec-websocket-key"));
        assert!(!contains_ignoring_case(&seen, "proxy-authorization"));
        assert!(!contains_ignoring_case(&seen, "dXNlcjpwIHc="));
    }
}

#[tokio::test]
async fn extra_connect_headers_go_to_the_proxy_only() {
    let (origin, seen) = recording_echo_server(None).await;
    let proxy = connect_proxy(Behaviour::default()).await;
    let mut headers = http::HeaderMap::new();
    headers.insert("x-proxy-tenant", "blue".parse().unwrap());
    let agent = ProxyAgent::builder(format!("http://{}", proxy.address))
        .headers(headers)
        .build()
        .unwrap();
    round_trip(&format!("ws://{origin}/"), through(agent), "hi").await;
    assert!(proxy.requests()[0].contains("\r\nx-proxy-tenant: blue\r\n"));
    assert!(!contains_ignoring_case(
        &seen.lock().unwrap(),
        "x-proxy-tenant"
    ));
}

#[tokio::test]
async fn a_407_fails_the_connection_with_status_and_challenge() {
    let (origin, seen) = recording_echo_server(None).await;
    let proxy = connect_proxy(Behaviour {
        require: Some("Basic dXNlcjpwYXNz".into()),
        ..Default::default()
    })
    .await;
    let url = format!("ws://{origin}/");
    let anonymous = ProxyAgent::new(&format!("http://{}", proxy.address)).unwrap();
    let wrong = ProxyAgent::new(&format!("http://user:wrong@{}", proxy.address)).unwrap();
    for agent in [anonymous.clone(), wrong] {
        let error = opening_error(&url, through(agent)).await;
        match error.failure() {
            Some(Failure::Proxy(ProxyError::Refused {
                status,
                proxy_authenticate,
            })) => {
                assert_eq!(*status, 407);
                assert_eq!(proxy_authenticate, &["Basic realm=\"test\"".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
    }
    // The WebSocket face: error, then close 1006, not clean.
    let init = WebSocketInit {
        dispatcher: Some(anonymous.into()),
        ..Default::default()
    };
    let ws = WebSocket::new(&url, init).unwrap();
    let mut events = record(&ws);
    let error = within(events.recv()).await.unwrap();
    assert_eq!(error.event_type(), "error");
    assert!(matches!(
        error.error().and_then(|e| e.failure()),
        Some(Failure::Proxy(ProxyError::Refused { status: 407, .. }))
    ));
    let close = within(events.recv()).await.unwrap();
    assert_eq!(
        (close.event_type(), close.code(), close.was_clean()),
        ("close", 1006, false)
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the server was never reached"
    );
}

fn record(ws: &WebSocket) -> mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = mpsc::unbounded_channel();
    for event_type in ["open", "message", "error", "close"] {
        let tx = tx.clone();
        ws.add_event_listener(event_type, move |event: &Event| {
            let _ = tx.send(event.clone());
        });
    }
    rx
}

/// `WebSocket` options through the test proxy.
fn face_through(proxy: &TestProxy) -> WebSocketInit {
    WebSocketInit {
        dispatcher: Some(
            ProxyAgent::new(&format!("http://{}", proxy.address))
                .unwrap()
                .into(),
        ),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_websocket_face_echoes_through_a_proxy() {
    let (origin, _) = recording_echo_server(None).await;
    let proxy = connect_proxy(Behaviour::default()).await;
    let init = face_through(&proxy);
    let ws = WebSocket::new(&format!("ws://{origin}/"), init).unwrap();
    let mut events = record(&ws);
    assert_eq!(within(events.recv()).await.unwrap().event_type(), "open");
    ws.send("hello").unwrap();
    let message = within(events.recv()).await.unwrap();
    assert_eq!(message.data().and_then(MessageData::as_text), Some("hello"));
    ws.close(None, None).unwrap();
    let close = within(events.recv()).await.unwrap();
    assert_eq!((close.code(), close.was_clean()), (1005, true));
    assert_eq!(proxy.requests().len(), 1);
}

#[tokio::test]
async fn an_https_proxy_has_its_own_tls_settings() {
    let proxy_pki = pki();
    let origin_pki = pki();
    let proxy = connect_proxy(Behaviour {
        tls: Some(proxy_pki.server_config()),
        ..Default::default()
    })
    .await;
    let (plain, _) = recording_echo_server(None).await;
    let (secure, _) = recording_echo_server(Some(origin_pki.server_config())).await;
    let proxy_url = format!("https://localhost:{}", proxy.address.port());
    let agent = ProxyAgent::builder(&proxy_url)
        .proxy_tls(proxy_pki.roots())
        .request_tls(origin_pki.roots())
        .build()
        .unwrap();
    round_trip(&format!("ws://{plain}/"), through(agent.clone()), "hi").await;
    // TLS to the server inside TLS to the proxy.
    let wss = format!("wss://localhost:{}/", secure.port());
    round_trip(&wss, through(agent), "hi").await;
    assert_eq!(proxy.requests().len(), 2);
    // Each side is checked against its own roots: swapped, the proxy is not trusted.
    let swapped = ProxyAgent::builder(&proxy_url)
        .proxy_tls(origin_pki.roots())
        .request_tls(proxy_pki.roots())
        .build()
        .unwrap();
    let error = opening_error(&wss, through(swapped)).await;
    assert!(matches!(error.failure(), Some(Failure::Io(_))), "{error:?}");
    assert_eq!(
        proxy.requests().len(),
        2,
        "no CONNECT without a trusted proxy"
    );
}

#[tokio::test]
async fn a_proxy_that_closes_mid_tunnel_fails_the_websocket() {
    let (origin, _) = recording_echo_server(None).await;
    let proxy = connect_proxy(Behaviour::default()).await;
    let agent = ProxyAgent::new(&format!("http://{}", proxy.address)).unwrap();
    let (
        ws,
        Opened {
            mut readable,
            mut writable,
            ..
        },
    ) = connect(&format!("ws://{origin}/"), through(agent.clone())).await;
    within(writable.send(Message::text("one"))).await.unwrap();
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text("one")
    );
    proxy.kill.cancel();
    assert!(within(readable.next()).await.is_none_or(|m| m.is_err()));
    let error = within(ws.closed()).await.expect_err("not a clean close");
    assert_eq!(error.close_code(), Some(1006));
    // The WebSocket face sees close 1006, not clean.
    let proxy = connect_proxy(Behaviour::default()).await;
    let init = face_through(&proxy);
    let ws = WebSocket::new(&format!("ws://{origin}/"), init).unwrap();
    let mut events = record(&ws);
    assert_eq!(within(events.recv()).await.unwrap().event_type(), "open");
    proxy.kill.cancel();
    let close = loop {
        let event = within(events.recv()).await.unwrap();
        if event.event_type() == "close" {
            break event;
        }
    };
    assert_eq!((close.code(), close.was_clean()), (1006, false));
}

#[tokio::test]
async fn a_proxy_that_closes_after_its_200_fails_the_opening() {
    let (origin, _) = recording_echo_server(None).await;
    let proxy = connect_proxy(Behaviour {
        close_after_200: true,
        ..Default::default()
    })
    .await;
    let agent = ProxyAgent::new(&format!("http://{}", proxy.address)).unwrap();
    let error = opening_error(&format!("ws://{origin}/"), through(agent)).await;
    assert!(
        matches!(
            error.failure(),
            Some(Failure::Handshake(_) | Failure::Io(_))
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_silent_proxy_times_out() {
    let proxy = connect_proxy(Behaviour {
        silent: true,
        ..Default::default()
    })
    .await;
    let agent = ProxyAgent::builder(format!("http://{}", proxy.address))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let error = opening_error("ws://127.0.0.1:9/", through(agent)).await;
    assert!(
        matches!(error.failure(), Some(Failure::Timeout(_))),
        "{error:?}"
    );
    proxy.kill.cancel();
}

#[tokio::test]
async fn a_proxy_that_is_not_there_fails_with_an_io_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let agent = ProxyAgent::new(&format!("http://{address}")).unwrap();
    let error = opening_error("ws://127.0.0.1:9/", through(agent)).await;
    assert!(matches!(error.failure(), Some(Failure::Io(_))), "{error:?}");
}

#[tokio::test]
async fn socks5_resolves_here_and_socks5h_at_the_proxy() {
    let pki = pki();
    let (plain, _) = recording_echo_server(None).await;
    let (secure, _) = recording_echo_server(Some(pki.server_config())).await;
    let (proxy, targets) = socks5_proxy(None).await;
    let url = format!("ws://localhost:{}/", plain.port());
    let local = ProxyAgent::new(&format!("socks5://{proxy}")).unwrap();
    round_trip(&url, through(local), "hi").await;
    let remote = ProxyAgent::builder(format!("socks5h://{proxy}"))
        .request_tls(pki.roots())
        .build()
        .unwrap();
    round_trip(&url, through(remote.clone()), "hi").await;
    round_trip(
        &format!("wss://localhost:{}/", secure.port()),
        through(remote.clone()),
        "hi",
    )
    .await;
    round_trip(&format!("ws://{plain}/"), through(remote), "hi").await;
    let targets = targets.lock().unwrap().clone();
    let port = plain.port();
    let resolved = targets[0].as_str();
    assert!(
        resolved == format!("ip 127.0.0.1:{port}") || resolved.starts_with("ip "),
        "{targets:?}"
    );
    assert_eq!(targets[1], format!("domain localhost:{port}"));
    assert_eq!(targets[2], format!("domain localhost:{}", secure.port()));
    // An address is sent as one even to socks5h.
    assert_eq!(targets[3], format!("ip {plain}"));
}

#[tokio::test]
async fn socks5_authenticates_with_username_and_password() {
    let (origin, _) = recording_echo_server(None).await;
    let (proxy, _) = socks5_proxy(Some(("alice", "s3cret"))).await;
    let url = format!("ws://{origin}/");
    let from_url = ProxyAgent::new(&format!("socks5h://alice:s3cret@{proxy}")).unwrap();
    round_trip(&url, through(from_url), "hi").await;
    let from_auth = ProxyAgent::builder(format!("socks5://{proxy}"))
        .auth("alice", "s3cret")
        .build()
        .unwrap();
    round_trip(&url, through(from_auth), "hi").await;
    for agent in [
        ProxyAgent::new(&format!("socks5://alice:wrong@{proxy}")).unwrap(),
        ProxyAgent::new(&format!("socks5://{proxy}")).unwrap(),
    ] {
        let error = opening_error(&url, through(agent)).await;
        assert!(
            matches!(
                error.failure(),
                Some(Failure::Proxy(ProxyError::SocksAuth(_)))
            ),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn a_socks5_refusal_carries_the_reply_code() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let (proxy, _) = socks5_proxy(None).await;
    let agent = ProxyAgent::new(&format!("socks5://{proxy}")).unwrap();
    let error = opening_error(&format!("ws://{address}/"), through(agent)).await;
    assert!(
        matches!(
            error.failure(),
            Some(Failure::Proxy(ProxyError::SocksRefused(5)))
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_env_agent_proxies_all_but_no_proxy_hosts() {
    let (origin, _) = recording_echo_server(None).await;
    let proxy = connect_proxy(Behaviour::default()).await;
    let agent = EnvHttpProxyAgent::with_options(EnvHttpProxyOptions {
        http_proxy: Some(format!("http://{}", proxy.address)),
        no_proxy: Some("localhost".into()),
        ..Default::default()
    })
    .unwrap();
    round_trip(&format!("ws://{origin}/"), through(agent.clone()), "hi").await;
    assert_eq!(proxy.requests().len(), 1);
    round_trip(
        &format!("ws://localhost:{}/", origin.port()),
        through(agent),
        "hi",
    )
    .await;
    assert_eq!(proxy.requests().len(), 1, "localhost is reached directly");
}
