//! `AgentOptions::tcp_keepalive` on every TCP connection an agent opens: directly (ws and wss
//! over HTTP/1.1, h2c) and to a proxy. Each WebSocket echoes a message; on Linux the kernel's
//! socket table (`/proc/net/tcp`) then shows whether the client's socket has its keepalive
//! timer armed, and for how long, without any access to the socket from here.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::h2::{Speaks, h2_server};
use support::pki::pki;
use support::proxies::{Behaviour, connect_proxy, recording_echo_server, through};
use support::*;
use whatwg_websocket::dispatcher::TcpKeepalive;
use whatwg_websocket::{
    Agent, AgentOptions, Message, Opened, ProxyAgent, ServerOptions, StreamOptions, WebSocketStream,
};

/// An idle time that neither Linux's default (7200 s) nor ours (60 s) would give.
const IDLE: Duration = Duration::from_secs(300);

fn keepalive() -> Option<TcpKeepalive> {
    Some(TcpKeepalive {
        idle: IDLE,
        interval: Some(Duration::from_secs(7)),
        retries: Some(3),
    })
}

/// Opens `url` and echoes one message; the WebSocket stays open for the caller.
async fn open_and_echo(url: &str, options: StreamOptions) -> (WebSocketStream, Opened) {
    let (ws, mut opened) = connect(url, options).await;
    within(opened.writable.send(Message::text("ping")))
        .await
        .unwrap();
    let echoed = within(opened.readable.next()).await.unwrap().unwrap();
    assert_eq!(echoed, Message::text("ping"), "{url}");
    (ws, opened)
}

async fn close(ws: WebSocketStream) {
    ws.close(Default::default()).unwrap();
    assert!(within(ws.closed()).await.is_ok());
}

/// Checks the keepalive timer of the one established socket connected to `peer` (ours: the
/// peer's own sockets have other remote addresses): armed with `idle` or off.
async fn assert_keepalive(peer: SocketAddr, idle: Option<Duration>) {
    #[cfg(target_os = "linux")]
    {
        let (timer, when) = settled_timer(peer).await;
        match idle {
            Some(idle) => {
                // Timer 2 is the socket's own timer, keepalive's on an established socket;
                // `when` counts USER_HZ ticks (100 a second) until it expires.
                assert_eq!(timer, 2, "no keepalive timer on the socket to {peer}");
                let ticks = idle.as_secs() * 100;
                assert!(
                    (ticks - LIMIT.as_secs() * 100..=ticks).contains(&when),
                    "keepalive due in {when} ticks, not the idle time {idle:?}"
                );
            }
            None => assert_eq!(timer, 0, "a timer on the socket to {peer}"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (peer, idle);
}

/// The timer (kind and ticks left) of the socket connected to `peer`, once no retransmission
/// (kind 1) is pending on it.
#[cfg(target_os = "linux")]
async fn settled_timer(peer: SocketAddr) -> (u8, u64) {
    let SocketAddr::V4(peer) = peer else {
        panic!("{peer}: the servers listen on 127.0.0.1")
    };
    // As the kernel prints it: the address as a native-endian word, then the port.
    let remote = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(peer.ip().octets()),
        peer.port()
    );
    let mut last = Vec::new();
    for _ in 0..100 {
        let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
        // sl local_address rem_address st tx_queue:rx_queue tr:tm->when ...; st 01 is
        // ESTABLISHED.
        last = table
            .lines()
            .skip(1)
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|fields| fields[2] == remote && fields[3] == "01")
            .map(|fields| {
                let (timer, when) = fields[5].split_once(':').unwrap();
                let timer = u8::from_str_radix(timer, 16).unwrap();
                (timer, u64::from_str_radix(when, 16).unwrap())
            })
            .collect();
        if let [(timer, when)] = last[..]
            && timer != 1
        {
            return (timer, when);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("sockets to {peer}: {last:?}");
}

fn agent(tcp_keepalive: Option<TcpKeepalive>) -> AgentOptions {
    AgentOptions {
        tcp_keepalive,
        tls: pki().roots(),
        allow_h2: true,
        h2_prior_knowledge: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn ws_and_wss_over_http1_have_keepalive() {
    let pki = pki();
    let options = AgentOptions {
        tcp_keepalive: keepalive(),
        tls: pki.roots(),
        ..Default::default()
    };
    let agent = Agent::with_options(options);
    let (plain, _) = recording_echo_server(None).await;
    let (ws, _opened) = open_and_echo(&format!("ws://{plain}/"), through(agent.clone())).await;
    assert_keepalive(plain, Some(IDLE)).await;
    close(ws).await;

    let (secure, _) = recording_echo_server(Some(pki.server_config())).await;
    let url = format!("wss://localhost:{}/", secure.port());
    let (ws, _opened) = open_and_echo(&url, through(agent)).await;
    assert_keepalive(secure, Some(IDLE)).await;
    close(ws).await;
}

#[tokio::test]
async fn keepalive_is_off_by_default() {
    assert_eq!(AgentOptions::default().tcp_keepalive, None);
    let (plain, _) = recording_echo_server(None).await;
    let agent = Agent::with_options(AgentOptions::default());
    let (ws, _opened) = open_and_echo(&format!("ws://{plain}/"), through(agent)).await;
    assert_keepalive(plain, None).await;
    close(ws).await;
}

#[tokio::test]
async fn the_http2_connection_has_keepalive() {
    let (address, counts) = h2_server(Speaks::H2, ServerOptions::default(), None).await;
    let agent = Agent::with_options(agent(keepalive()));
    let url = format!("ws://{address}/");
    let (ws, _opened) = open_and_echo(&url, through(agent)).await;
    assert_eq!(counts.h2(), 1);
    assert_keepalive(address, Some(IDLE)).await;
    close(ws).await;
}

#[tokio::test]
async fn the_connection_to_a_proxy_has_keepalive() {
    let proxy = connect_proxy(Behaviour::default()).await;
    let (plain, _) = recording_echo_server(None).await;
    let agent = ProxyAgent::builder(format!("http://{}", proxy.address))
        .options(agent(keepalive()))
        .build()
        .unwrap();
    let (ws, _opened) = open_and_echo(&format!("ws://{plain}/"), through(agent)).await;
    assert_eq!(proxy.requests().len(), 1);
    assert_keepalive(proxy.address, Some(IDLE)).await;
    close(ws).await;
}
