//! `ProxyAgent` through real proxies from Debian packages: tinyproxy and squid (open and with
//! Basic auth), microsocks (SOCKS5, open and with username/password) and nginx's stream TLS in
//! front of tinyproxy (an HTTPS proxy). Each is started by `tests/proxies/run` on 127.0.0.1
//! and stopped by PID; `tests/proxies/install` installs them (`.ci/run` does).
//!
//! Without the proxies installed the tests are skipped locally, and fail under CI.

mod support;

use std::path::Path;

use support::daemon::Daemon;
use support::pki::*;
use support::proxies::*;
use support::*;
use whatwg_websocket::{Event, Failure, ProxyAgent, ProxyError, WebSocket, WebSocketInit};

const BINARIES: [&str; 4] = [
    "/usr/bin/tinyproxy",
    "/usr/sbin/squid",
    "/usr/bin/microsocks",
    "/usr/sbin/nginx",
];

/// Whether the proxies are installed; under CI they must be.
fn installed() -> bool {
    let paths = BINARIES.map(Path::new);
    support::daemon::installed(&paths, "tests/proxies/install")
}

/// Starts `tests/proxies/run <kind> <port> <extra...>` and waits until it listens.
fn start(kind: &'static str, extra: &[&str]) -> Daemon {
    Daemon::start("tests/proxies/run", "target/proxies", kind, extra)
}

/// The echo servers behind the proxies: `ws` and `wss` (for `localhost`, signed by `pki`).
struct Origins {
    ws: String,
    wss: String,
    seen: [Seen; 2],
}

async fn origins(pki: &TestPki) -> Origins {
    let (plain, plain_seen) = recording_echo_server(None).await;
    let (secure, secure_seen) = recording_echo_server(Some(pki.server_config())).await;
    Origins {
        ws: format!("ws://{plain}/echo"),
        wss: format!("wss://localhost:{}/echo", secure.port()),
        seen: [plain_seen, secure_seen],
    }
}

impl Origins {
    /// Echoes a message on `ws` and `wss` through `agent`.
    async fn round_trips(&self, agent: &ProxyAgent, what: &str) {
        for url in [&self.ws, &self.wss] {
            round_trip(url, through(agent.clone()), &format!("{what} {url}")).await;
        }
    }

    /// Checks that no proxy credentials reached the servers.
    fn saw_no_credentials(&self, secret: &str) {
        for seen in &self.seen {
            let seen = String::from_utf8_lossy(&seen.lock().unwrap()).to_ascii_lowercase();
            assert!(seen.contains("sec-websocket-key"), "the server was reached");
            assert!(!seen.contains("proxy-authorization"), "{seen}");
            assert!(!seen.contains(&secret.to_ascii_lowercase()), "{seen}");
        }
    }
}

/// Opens `url` through `agent` and returns why it failed.
async fn failure(url: &str, agent: ProxyAgent) -> String {
    let error = opening_error(url, through(agent)).await;
    format!("{:?}", error.failure().expect("a Rust-side cause"))
}

async fn refusal(url: &str, agent: ProxyAgent) -> (u16, Vec<String>) {
    match opening_error(url, through(agent)).await.failure() {
        Some(Failure::Proxy(ProxyError::Refused {
            status,
            proxy_authenticate,
        })) => (*status, proxy_authenticate.clone()),
        other => panic!("not a refusal: {other:?}"),
    }
}

fn http_agent(daemon: &Daemon, userinfo: &str, pki: &TestPki) -> ProxyAgent {
    ProxyAgent::builder(format!("http://{userinfo}127.0.0.1:{}", daemon.port))
        .request_tls(pki.roots())
        .build()
        .unwrap()
}

#[tokio::test]
async fn tinyproxy_tunnels_ws_and_wss() {
    if !installed() {
        return;
    }
    let pki = pki();
    let origins = origins(&pki).await;
    let tinyproxy = start("tinyproxy", &[]);
    origins
        .round_trips(&http_agent(&tinyproxy, "", &pki), &tinyproxy.what)
        .await;
    // The WebSocket face too.
    let init = WebSocketInit {
        dispatcher: Some(http_agent(&tinyproxy, "", &pki).into()),
        ..Default::default()
    };
    let ws = WebSocket::new(&origins.ws, init).unwrap();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    for event_type in ["open", "message", "close"] {
        let tx = tx.clone();
        ws.add_event_listener(event_type, move |event: &Event| {
            let _ = tx.send(event.clone());
        });
    }
    assert_eq!(within(events.recv()).await.unwrap().event_type(), "open");
    ws.send("face").unwrap();
    let message = within(events.recv()).await.unwrap();
    assert_eq!(message.data().and_then(|d| d.as_text()), Some("face"));
}

#[tokio::test]
async fn tinyproxy_with_basic_auth() {
    if !installed() {
        return;
    }
    let pki = pki();
    let origins = origins(&pki).await;
    let tinyproxy = start("tinyproxy", &["alice", "s3cret.1"]);
    let agent = http_agent(&tinyproxy, "alice:s3cret.1@", &pki);
    origins.round_trips(&agent, &tinyproxy.what).await;
    origins.saw_no_credentials("YWxpY2U6czNjcmV0LjE=");
    let (status, challenges) = refusal(&origins.ws, http_agent(&tinyproxy, "", &pki)).await;
    assert_eq!(status, 407);
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic")),
        "{challenges:?}"
    );
    // tinyproxy 1.11 answers wrong credentials with 401, not 407.
    let (status, _) = refusal(&origins.ws, http_agent(&tinyproxy, "alice:wrong@", &pki)).await;
    assert!(matches!(status, 401 | 407), "{status}");
}

#[tokio::test]
async fn squid_tunnels_ws_and_wss() {
    if !installed() {
        return;
    }
    let pki = pki();
    let origins = origins(&pki).await;
    let squid = start("squid", &[]);
    origins
        .round_trips(&http_agent(&squid, "", &pki), &squid.what)
        .await;
}

#[tokio::test]
async fn squid_with_basic_ncsa_auth() {
    if !installed() {
        return;
    }
    let pki = pki();
    let origins = origins(&pki).await;
    let squid = start("squid", &["bob", "p@ss word"]);
    // The password percent-encoded in the URL, and given to `auth`.
    let from_url = http_agent(&squid, "bob:p%40ss%20word@", &pki);
    origins.round_trips(&from_url, &squid.what).await;
    let from_auth = ProxyAgent::builder(format!("http://127.0.0.1:{}", squid.port))
        .auth("bob", "p@ss word")
        .request_tls(pki.roots())
        .build()
        .unwrap();
    origins.round_trips(&from_auth, &squid.what).await;
    origins.saw_no_credentials("Ym9iOnBAc3Mgd29yZA==");
    for userinfo in ["", "bob:wrong@"] {
        let (status, challenges) = refusal(&origins.wss, http_agent(&squid, userinfo, &pki)).await;
        assert_eq!(status, 407, "{userinfo}");
        assert!(
            challenges.iter().any(|c| c.starts_with("Basic")),
            "{challenges:?}"
        );
    }
}

#[tokio::test]
async fn microsocks_tunnels_with_local_and_remote_names() {
    if !installed() {
        return;
    }
    let pki = pki();
    let origins = origins(&pki).await;
    let microsocks = start("microsocks", &[]);
    for scheme in ["socks5", "socks5h"] {
        let agent = ProxyAgent::builder(format!("{scheme}://127.0.0.1:{}", microsocks.port))
            .request_tls(pki.roots())
            .build()
            .unwrap();
        origins.round_trips(&agent, scheme).await;
    }
}

#[tokio::test]
async fn microsocks_with_username_and_password() {
    if !installed() {
        return;
    }
    let pki = pki();
    let origins = origins(&pki).await;
    let microsocks = start("microsocks", &["carol", "c@rol pw"]);
    let port = microsocks.port;
    let agent = ProxyAgent::builder(format!("socks5h://carol:c%40rol%20pw@127.0.0.1:{port}"))
        .request_tls(pki.roots())
        .build()
        .unwrap();
    origins.round_trips(&agent, "microsocks with auth").await;
    for uri in [
        format!("socks5h://carol:nope@127.0.0.1:{port}"),
        format!("socks5://127.0.0.1:{port}"),
    ] {
        let why = failure(&origins.ws, ProxyAgent::new(&uri).unwrap()).await;
        assert!(why.contains("SocksAuth"), "{uri}: {why}");
    }
}

#[tokio::test]
async fn an_https_proxy_nginx_tls_in_front_of_tinyproxy() {
    if !installed() {
        return;
    }
    let proxy_pki = pki();
    let origin_pki = pki();
    let origins = origins(&origin_pki).await;
    let pem = PemFiles::new(&proxy_pki, "proxies");
    let https_proxy = |upstream: &Daemon| {
        start(
            "nginx-tls",
            &[&upstream.port.to_string(), &pem.cert(), &pem.key()],
        )
    };
    let agent = |nginx: &Daemon, userinfo: &str| {
        ProxyAgent::builder(format!("https://{userinfo}localhost:{}", nginx.port))
            .proxy_tls(proxy_pki.roots())
            .request_tls(origin_pki.roots())
            .build()
            .unwrap()
    };
    let open = start("tinyproxy", &[]);
    let nginx = https_proxy(&open);
    // wss here is TLS to the server inside TLS to nginx.
    origins.round_trips(&agent(&nginx, ""), &nginx.what).await;
    let guarded = start("tinyproxy", &["dave", "d4ve"]);
    let nginx = https_proxy(&guarded);
    origins
        .round_trips(&agent(&nginx, "dave:d4ve@"), &nginx.what)
        .await;
    origins.saw_no_credentials("ZGF2ZTpkNHZl");
    let (status, _) = refusal(&origins.wss, agent(&nginx, "")).await;
    assert_eq!(status, 407);
}
