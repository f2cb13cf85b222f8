//! The web-platform-tests' websocket handlers (`websockets/handlers/*_wsh.py`), written again
//! in Rust: with our server role where the handler behaves, and frame by frame where it must
//! misbehave (delay or withhold its Close, drop TCP, answer the handshake wrongly).
//!
//! Every test starts its own [`Wpt`] server: plain TCP and TLS listeners on 127.0.0.1, with the
//! same handlers behind both, so each test runs against `ws://` and `wss://`.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use whatwg_websocket::handshake::{ServerHandshake, accept_key};
use whatwg_websocket::proto::{
    CloseCode, CloseFrame, Frame, FrameEncoder, Incoming, Limits, MessageDecoder, OpCode, Role,
};
use whatwg_websocket::{
    Agent, AgentOptions, CloseInfo, Message, Opened, ServerOptions, StreamOptions, TlsRoots,
    WebSocketInit, WebSocketStream, accept_upgraded,
};

/// A bound on every wait, so that a bug fails a test instead of hanging it.
pub const LIMIT: Duration = Duration::from_secs(20);

pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}

/// `ws://` or `wss://`: upstream runs most tests in both variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Ws,
    Wss,
    /// `wss://` over HTTP/2 (RFC 8441): upstream's `?wpt_flags=h2`.
    H2,
}

pub const SCHEMES: [Scheme; 3] = [Scheme::Ws, Scheme::Wss, Scheme::H2];

struct Pki {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca: ca.der().clone(),
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

#[path = "h2.rs"]
mod h2;

/// The handlers, listening on 127.0.0.1 over TCP, over TLS, and over HTTP/2 on TLS (ALPN
/// `h2` only, so that nothing else gets through).
pub struct Wpt {
    ws: SocketAddr,
    wss: SocketAddr,
    h2: SocketAddr,
}

impl Wpt {
    pub async fn start() -> Self {
        let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wss = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addresses = (ws.local_addr().unwrap(), wss.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((socket, _)) = ws.accept().await {
                socket.set_nodelay(true).unwrap();
                tokio::spawn(route(socket));
            }
        });
        let pki = pki();
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(pki.chain.clone(), PrivateKeyDer::Pkcs8(pki.key.clone_key()))
            .unwrap();
        let mut h2_config = config.clone();
        h2_config.alpn_protocols = vec![b"h2".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            while let Ok((socket, _)) = wss.accept().await {
                socket.set_nodelay(true).unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(socket).await {
                        route(tls).await;
                    }
                });
            }
        });
        let h2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let h2_address = h2.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(h2_config));
        tokio::spawn(async move {
            while let Ok((socket, _)) = h2.accept().await {
                socket.set_nodelay(true).unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(socket).await {
                        h2::serve(tls).await;
                    }
                });
            }
        });
        Self {
            ws: addresses.0,
            wss: addresses.1,
            h2: h2_address,
        }
    }

    /// `SCHEME_DOMAIN_PORT + path`, e.g. `ws://127.0.0.1:1234/echo`.
    pub fn url(&self, scheme: Scheme, path: &str) -> String {
        match scheme {
            Scheme::Ws => format!("ws://{}{path}", self.ws),
            Scheme::Wss => format!("wss://{}{path}", self.wss),
            Scheme::H2 => format!("wss://{}{path}", self.h2),
        }
    }

    /// `SCHEME_DOMAIN_PORT`, e.g. `ws://127.0.0.1:1234`.
    pub fn origin(&self, scheme: Scheme) -> String {
        self.url(scheme, "")
    }

    /// A `WebSocketInit` with `protocols` whose dispatcher trusts the test CA.
    pub fn init(&self, protocols: &[&str]) -> WebSocketInit {
        WebSocketInit {
            protocols: protocols.iter().map(|&p| p.to_owned()).collect(),
            dispatcher: Some(agent().into()),
            ..Default::default()
        }
    }

    /// `StreamOptions` with `protocols` whose dispatcher trusts the test CA.
    pub fn options(&self, protocols: &[&str]) -> StreamOptions {
        StreamOptions {
            protocols: protocols.iter().map(|&p| p.to_owned()).collect(),
            dispatcher: Some(agent().into()),
            ..Default::default()
        }
    }
}

/// An agent that trusts the test CA and offers HTTP/2 (the `ws` and `wss` listeners do not
/// take it; the `h2` one takes nothing else).
pub fn agent() -> Agent {
    Agent::with_options(AgentOptions {
        tls: TlsRoots::Custom(Arc::new(tls_client_config())),
        allow_h2: true,
        ..Default::default()
    })
}

/// A TLS client configuration that trusts the test CA (whose server certificate names
/// `localhost` and `127.0.0.1`), for tests with a dispatcher of their own.
pub fn tls_client_config() -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki().ca.clone()).unwrap();
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Reads the request head; `None` if the client went away.
async fn read_request(io: &mut impl Stream) -> Option<(http::Request<()>, BytesMut)> {
    let mut buf = BytesMut::new();
    loop {
        if let Some((request, len)) = ServerHandshake::decode_request(&buf, 65536).ok()? {
            return Some((request, buf.split_off(len)));
        }
        if io.read_buf(&mut buf).await.ok()? == 0 {
            return None;
        }
    }
}

fn query(request: &http::Request<()>) -> Vec<(String, String)> {
    let url = url::Url::parse(&format!("ws://h{}", request.uri())).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(query: &[(String, String)], name: &str) -> Option<String> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

async fn route(mut io: impl Stream) {
    let Some((request, rest)) = read_request(&mut io).await else {
        return;
    };
    let path = request.uri().path().trim_start_matches('/').to_owned();
    match path.as_str() {
        "" | "echo" | "handshake_no_extensions" => {
            echo(upgrade(io, &request, Some("echo")).await).await
        }
        "echo_exit" | "echo_close_data" => echo_exit(upgrade(io, &request, None).await).await,
        "echo_raw" => echo_raw(raw(io, &request, rest).await).await,
        "remote-close" => remote_close(io, &request, rest).await,
        "delayed-passive-close" => passive_close(raw(io, &request, rest).await, true).await,
        "passive-close-abort" => passive_close(raw(io, &request, rest).await, false).await,
        "simple_handshake" => simple_handshake(io, &request).await,
        "invalid" => {
            let _ = io.write_all(b"FOO BAR BAZ\r\n\r\n").await;
        }
        "wrong_accept_key" => {
            let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                        Connection: Upgrade\r\nSec-WebSocket-Accept: thisisawrongacceptkey\r\n\r\n";
            let _ = io.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        "handshake_no_protocol" => echo(upgrade(io, &request, None).await).await,
        "handshake_protocol" => {
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: foobar\r\n\r\n",
                key_of(&request)
            );
            let _ = io.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        "protocol_array" => {
            let first = offered(&request).into_iter().next();
            let ws = upgrade_with(io, &request, first.clone()).await;
            send_then_echo(ws, Message::text(first.unwrap_or_default())).await;
        }
        "sleep_10_v13" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            echo(upgrade(io, &request, None).await).await;
        }
        "handshake_sleep_2" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            echo(upgrade(io, &request, None).await).await;
        }
        "empty-message" => empty_message(upgrade(io, &request, None).await).await,
        "origin" => {
            // `origin_wsh.py`: sends the request's `Origin` ("" without one), then echoes.
            let origin = request
                .headers()
                .get("origin")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            send_then_echo(upgrade(io, &request, None).await, Message::text(origin)).await;
        }
        "send-backpressure" => send_backpressure(upgrade(io, &request, None).await).await,
        "receive-backpressure" => receive_backpressure(upgrade(io, &request, None).await).await,
        "receive-many-with-backpressure" => {
            receive_many_with_backpressure(upgrade(io, &request, None).await).await;
        }
        _ => {
            let _ = io
                .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    }
}

fn key_of(request: &http::Request<()>) -> String {
    accept_key(request.headers()["sec-websocket-key"].as_bytes())
}

fn offered(request: &http::Request<()>) -> Vec<String> {
    request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Answers the handshake with our server role, selecting `protocol` if the client offered it.
async fn upgrade(
    io: impl Stream,
    request: &http::Request<()>,
    protocol: Option<&str>,
) -> WebSocketStream {
    let selected = protocol.filter(|p| offered(request).iter().any(|o| o == p));
    upgrade_with(io, request, selected.map(str::to_owned)).await
}

async fn upgrade_with(
    mut io: impl Stream,
    request: &http::Request<()>,
    protocol: Option<String>,
) -> WebSocketStream {
    let handshake = ServerHandshake::new(request.clone()).expect("a valid upgrade request");
    let mut response = String::new();
    handshake.encode_response(protocol.as_deref(), &mut response);
    io.write_all(response.as_bytes()).await.unwrap();
    accept_upgraded(io, protocol, &ServerOptions::default())
}

/// `echo_wsh.py`: echoes text and binary; after echoing "Goodbye" it closes (1000).
async fn echo(ws: WebSocketStream) {
    let Ok(Opened {
        mut readable,
        mut writable,
        ..
    }) = ws.opened().await
    else {
        return;
    };
    while let Some(Ok(message)) = readable.next().await {
        let goodbye = message == Message::text("Goodbye");
        if writable.send(message).await.is_err() {
            break;
        }
        if goodbye {
            let _ = ws.close(CloseInfo {
                close_code: Some(1000),
                reason: String::new(),
            });
            break;
        }
    }
    let _ = ws.closed().await;
}

/// `echo_exit_wsh.py`: reads without echoing; closes (1000) after "Goodbye".
async fn echo_exit(ws: WebSocketStream) {
    let Ok(Opened { mut readable, .. }) = ws.opened().await else {
        return;
    };
    while let Some(Ok(message)) = readable.next().await {
        if message == Message::text("Goodbye") {
            let _ = ws.close(CloseInfo {
                close_code: Some(1000),
                reason: String::new(),
            });
            break;
        }
    }
    let _ = ws.closed().await;
}

/// Sends `first`, then echoes.
async fn send_then_echo(ws: WebSocketStream, first: Message) {
    if let Ok(Opened { mut writable, .. }) = ws.opened().await {
        let _ = writable.send(first).await;
    }
    echo(ws).await;
}

/// `remote-close_wsh.py`: closes with `code` and `reason` from the query (an empty Close
/// without `code`); with `abrupt=1`, pings and then drops TCP without a Close.
async fn remote_close(io: impl Stream, request: &http::Request<()>, rest: BytesMut) {
    let query = query(request);
    if param(&query, "abrupt").is_some() {
        let mut peer = raw(io, request, rest).await;
        peer.send(Frame::new(OpCode::Ping, Bytes::from_static(b"ping")))
            .await;
        return; // Dropping the socket: no Close.
    }
    let mut peer = raw(io, request, rest).await;
    let payload = match param(&query, "code") {
        Some(code) => {
            let code = CloseCode::try_from(code.parse::<u16>().unwrap()).unwrap();
            let reason = param(&query, "reason").unwrap_or_default();
            CloseFrame::new(code, reason).unwrap().to_payload()
        }
        None => Bytes::new(),
    };
    peer.send(Frame::new(OpCode::Close, payload)).await;
    // Wait for the client's reply (discarding any data it still sends), then close TCP.
    while let Some(incoming) = peer.receive().await {
        if matches!(incoming, Incoming::Close(_)) {
            break;
        }
    }
    let _ = peer.io.shutdown().await;
}

/// `delayed-passive-close_wsh.py` (`delay`): waits for the client's Close, sleeps 1 s, then
/// echoes it. `passive-close-abort_wsh.py` (`!delay`): drops TCP instead of answering.
async fn passive_close(mut peer: RawConn, delay: bool) {
    while let Some(incoming) = peer.receive().await {
        if let Incoming::Close(frame) = incoming {
            if !delay {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let payload = frame.map(|f| f.to_payload()).unwrap_or_default();
            peer.send(Frame::new(OpCode::Close, payload)).await;
            let _ = peer.io.shutdown().await;
            return;
        }
    }
}

/// `echo_raw_wsh.py`: writes each received payload to the socket as raw bytes (so the client
/// can make the "server" send any frame); stops at the binary message `exit`.
async fn echo_raw(mut peer: RawConn) {
    while let Some(incoming) = peer.receive().await {
        match incoming {
            Incoming::Message(message) => {
                if message.as_bytes() == b"exit" {
                    return;
                }
                let _ = peer.io.write_all(message.as_bytes()).await;
            }
            Incoming::Close(_) => return,
            _ => {}
        }
    }
}

/// `simple_handshake_wsh.py`: the 101 and a Close (1001, "PASS") in one write; then reads the
/// client's Close and drops the connection.
async fn simple_handshake(mut io: impl Stream, request: &http::Request<()>) {
    let mut packet = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\
         Set-Cookie: ws_test=test\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        key_of(request)
    )
    .into_bytes();
    let mut frame = BytesMut::new();
    let close = CloseFrame::new(CloseCode::GOING_AWAY, "PASS").unwrap();
    FrameEncoder::new(Role::Server)
        .encode(&Frame::new(OpCode::Close, close.to_payload()), &mut frame);
    packet.extend_from_slice(&frame);
    io.write_all(&packet).await.unwrap();
    let mut peer = RawConn::new(Box::new(io), BytesMut::new());
    let _ = tokio::time::timeout(LIMIT, peer.receive()).await;
}

/// `empty-message_wsh.py`: answers "pass" if the first message is empty text, else "fail".
async fn empty_message(ws: WebSocketStream) {
    let Ok(Opened {
        mut readable,
        mut writable,
        ..
    }) = ws.opened().await
    else {
        return;
    };
    if let Some(Ok(message)) = readable.next().await {
        let verdict = if message == Message::text("") {
            "pass"
        } else {
            "fail"
        };
        let _ = writable.send(Message::text(verdict)).await;
    }
    echo(ws).await;
}

/// `send-backpressure_wsh.py`: an empty binary message, 16 binary messages of 1 MiB of
/// spaces, then the seconds that took, as text.
async fn send_backpressure(ws: WebSocketStream) {
    let Ok(Opened { mut writable, .. }) = ws.opened().await else {
        return;
    };
    let start = Instant::now();
    let _ = writable.send(Message::binary(Bytes::new())).await;
    let mib = Bytes::from(vec![b' '; 1 << 20]);
    for _ in 0..16 {
        if writable.send(Message::binary(mib.clone())).await.is_err() {
            return;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let _ = writable.send(Message::text(seconds.to_string())).await;
    let _ = ws.closed().await;
}

/// `receive-backpressure_wsh.py`: sleeps 2 s, then reads one message.
async fn receive_backpressure(ws: WebSocketStream) {
    let Ok(Opened { mut readable, .. }) = ws.opened().await else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = readable.next().await;
    echo_exit_tail(ws, readable).await;
}

async fn echo_exit_tail(ws: WebSocketStream, mut readable: whatwg_websocket::Readable) {
    while let Some(Ok(_)) = readable.next().await {}
    let _ = ws.closed().await;
}

/// `receive-many-with-backpressure_wsh.py`: reads a message every 0.1 s and answers with its
/// length.
async fn receive_many_with_backpressure(ws: WebSocketStream) {
    let Ok(Opened {
        mut readable,
        mut writable,
        ..
    }) = ws.opened().await
    else {
        return;
    };
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(Ok(message)) = readable.next().await else {
            break;
        };
        if writable
            .send(Message::text(message.len().to_string()))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = ws.closed().await;
}

/// Answers the handshake (selecting no protocol) and hands over the frames.
async fn raw(mut io: impl Stream, request: &http::Request<()>, rest: BytesMut) -> RawConn {
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        key_of(request)
    );
    io.write_all(head.as_bytes()).await.unwrap();
    RawConn::new(Box::new(io), rest)
}

/// The server end of a connection, frame by frame.
pub struct RawConn {
    pub io: Box<dyn StreamObject>,
    read_buf: BytesMut,
    decoder: MessageDecoder,
    encoder: FrameEncoder,
}

pub trait StreamObject: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> StreamObject for T {}

impl RawConn {
    fn new(io: Box<dyn StreamObject>, read_buf: BytesMut) -> Self {
        Self {
            io,
            read_buf,
            decoder: MessageDecoder::new(Role::Server, Limits::unlimited()),
            encoder: FrameEncoder::new(Role::Server),
        }
    }

    pub async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out);
        let _ = self.io.write_all(&out).await;
    }

    /// The next thing the client sent; `None` at the end of the stream or on a bad frame.
    pub async fn receive(&mut self) -> Option<Incoming> {
        loop {
            if let Some(incoming) = self.decoder.decode(&mut self.read_buf).ok()? {
                return Some(incoming);
            }
            if self.io.read_buf(&mut self.read_buf).await.ok()? == 0 {
                return None;
            }
        }
    }
}
