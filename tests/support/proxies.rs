//! Proxies written for the tests (an HTTP CONNECT proxy, optionally behind TLS, and a SOCKS5
//! proxy), and an echo server that records what reached it, so that a test can check that
//! proxy credentials never did.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use whatwg_websocket::handshake::ServerHandshake;
use whatwg_websocket::{
    CancellationToken, Message, Opened, ServerOptions, StreamOptions, WebSocketError,
    WebSocketStream, accept,
};

use super::{connect, echo, spawn_server, within};

/// The bytes a server read, shared with the test.
pub type Seen = Arc<Mutex<Vec<u8>>>;

/// Reads through `inner`, keeping a copy of the first 64 KiB read.
pub struct Tap<S> {
    inner: S,
    seen: Seen,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let mut seen = self.seen.lock().unwrap();
        if seen.len() < 64 * 1024 {
            seen.extend_from_slice(&buf.filled()[before..]);
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// An echo server (TLS with `tls`) that records every byte its connections read.
pub async fn recording_echo_server(tls: Option<Arc<rustls::ServerConfig>>) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let recorder = seen.clone();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let address = spawn_server(move |socket| {
        let seen = recorder.clone();
        let acceptor = acceptor.clone();
        async move {
            let ws = match acceptor {
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    accept(Tap { inner: tls, seen }, ServerOptions::default()).await
                }
                None => {
                    accept(
                        Tap {
                            inner: socket,
                            seen,
                        },
                        ServerOptions::default(),
                    )
                    .await
                }
            };
            if let Ok(ws) = ws {
                echo(ws).await;
            }
        }
    })
    .await;
    (address, seen)
}

/// What the test CONNECT proxy does.
#[derive(Clone, Default)]
pub struct Behaviour {
    /// The `Proxy-Authorization` value required; anything else gets a 407.
    pub require: Option<String>,
    /// TLS in front of the proxy (an `https` proxy).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Never answer CONNECT.
    pub silent: bool,
    /// Close the connection right after the 200.
    pub close_after_200: bool,
}

/// A running test proxy: its address, the request heads it received (as text), and a token
/// that breaks every tunnel it holds when cancelled.
pub struct TestProxy {
    pub address: SocketAddr,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub kill: CancellationToken,
}

impl TestProxy {
    /// The request heads received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Starts an HTTP CONNECT proxy on 127.0.0.1.
pub async fn connect_proxy(behaviour: Behaviour) -> TestProxy {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let kill = CancellationToken::new();
    let (log, token) = (requests.clone(), kill.clone());
    let acceptor = behaviour.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let address = spawn_server(move |socket| {
        let (behaviour, log, token) = (behaviour.clone(), log.clone(), token.clone());
        let acceptor = acceptor.clone();
        async move {
            match acceptor {
                Some(acceptor) => {
                    if let Ok(tls) = acceptor.accept(socket).await {
                        tunnel(tls, &behaviour, &log, &token).await;
                    }
                }
                None => tunnel(socket, &behaviour, &log, &token).await,
            }
        }
    })
    .await;
    TestProxy {
        address,
        requests,
        kill,
    }
}

async fn tunnel<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    behaviour: &Behaviour,
    log: &Mutex<Vec<String>>,
    kill: &CancellationToken,
) {
    let mut buf = BytesMut::new();
    let (request, head) = loop {
        if let Ok(Some((request, len))) = ServerHandshake::decode_request(&buf, 65536) {
            break (request, String::from_utf8_lossy(&buf[..len]).into_owned());
        }
        if client.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    };
    log.lock().unwrap().push(head);
    if behaviour.silent {
        kill.cancelled().await;
        return;
    }
    let authorized = behaviour.require.as_deref().is_none_or(|required| {
        request
            .headers()
            .get("proxy-authorization")
            .is_some_and(|v| v == required)
    });
    if request.method() != "CONNECT" || !authorized {
        let _ = client
            .write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 6\r\n\r\ndenied",
            )
            .await;
        return;
    }
    let target = request.uri().to_string();
    let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    let _ = client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await;
    if behaviour.close_after_200 {
        return;
    }
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        () = kill.cancelled() => {}
    }
}

/// What the test SOCKS5 proxy saw: the CONNECT target of each request, as `ip <addr>` or
/// `domain <name>:<port>`.
pub type SocksTargets = Arc<Mutex<Vec<String>>>;

/// Starts a SOCKS5 proxy on 127.0.0.1, requiring `credentials` (RFC 1929) when given.
pub async fn socks5_proxy(
    credentials: Option<(&'static str, &'static str)>,
) -> (SocketAddr, SocksTargets) {
    let targets = SocksTargets::default();
    let log = targets.clone();
    let address = spawn_server(move |socket| {
        let log = log.clone();
        async move {
            let _ = socks5_session(socket, credentials, &log).await;
        }
    })
    .await;
    (address, targets)
}

async fn socks5_session(
    mut client: TcpStream,
    credentials: Option<(&str, &str)>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let mut head = [0; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    match credentials {
        Some((user, password)) if methods.contains(&2) => {
            client.write_all(&[5, 2]).await?;
            let mut version_and_len = [0; 2];
            client.read_exact(&mut version_and_len).await?;
            let mut name = vec![0; usize::from(version_and_len[1])];
            client.read_exact(&mut name).await?;
            let mut len = [0; 1];
            client.read_exact(&mut len).await?;
            let mut pass = vec![0; usize::from(len[0])];
            client.read_exact(&mut pass).await?;
            if name != user.as_bytes() || pass != password.as_bytes() {
                return client.write_all(&[1, 1]).await;
            }
            client.write_all(&[1, 0]).await?;
        }
        None if methods.contains(&0) => client.write_all(&[5, 0]).await?,
        _ => return client.write_all(&[5, 0xff]).await,
    }
    let mut request = [0; 4];
    client.read_exact(&mut request).await?;
    let target = match request[3] {
        1 => {
            let mut ip = [0; 6];
            client.read_exact(&mut ip).await?;
            let port = u16::from_be_bytes([ip[4], ip[5]]);
            format!(
                "ip {}:{port}",
                std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
            )
        }
        3 => {
            let mut len = [0; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0; usize::from(len[0]) + 2];
            client.read_exact(&mut name).await?;
            let port = u16::from_be_bytes([name[name.len() - 2], name[name.len() - 1]]);
            name.truncate(name.len() - 2);
            format!("domain {}:{port}", String::from_utf8_lossy(&name))
        }
        _ => return client.write_all(&[5, 8, 0, 1, 0, 0, 0, 0, 0, 0]).await,
    };
    log.lock().unwrap().push(target.clone());
    let address = target.split_once(' ').unwrap().1.to_owned();
    let Ok(mut upstream) = TcpStream::connect(address).await else {
        return client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    };
    // A domain-typed bound address, to exercise the variable-length reply.
    client
        .write_all(&[5, 0, 0, 3, 4, b'h', b'o', b's', b't', 0, 0])
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Stream options with `dispatcher`.
pub fn through(dispatcher: impl Into<Arc<dyn whatwg_websocket::Dispatcher>>) -> StreamOptions {
    StreamOptions {
        dispatcher: Some(dispatcher.into()),
        ..Default::default()
    }
}

/// Opens `url` with `options`, echoes `payload` and closes cleanly.
pub async fn round_trip(url: &str, options: StreamOptions, payload: &str) {
    let (
        ws,
        Opened {
            mut readable,
            mut writable,
            ..
        },
    ) = connect(url, options).await;
    within(writable.send(Message::text(payload.to_owned())))
        .await
        .unwrap();
    assert_eq!(
        within(readable.next()).await.unwrap().unwrap(),
        Message::text(payload.to_owned()),
        "{url}"
    );
    ws.close(Default::default()).unwrap();
    assert!(within(ws.closed()).await.is_ok(), "{url}");
}

/// Opens `url` with `options` and expects the opening to fail; returns the error.
pub async fn opening_error(url: &str, options: StreamOptions) -> WebSocketError {
    let ws = WebSocketStream::new(url, options).unwrap();
    within(ws.opened()).await.expect_err("the opening fails")
}
