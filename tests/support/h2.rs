//! Servers for the HTTP/2 tests: our server role over h2c or TLS (ALPN `h2` or `http/1.1`),
//! and an HTTP/2 server that does not allow extended CONNECT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::SinkExt;
use tokio::net::TcpStream;
use whatwg_websocket::{Message, Opened, ServerOptions, WebSocketStream, accept, accept_h2};

use super::{echo, spawn_server};

/// How many connections of each kind a test server took, and a switch that aborts (GOAWAY)
/// the HTTP/2 connections it holds at the time.
#[derive(Clone, Default)]
pub struct Counts {
    pub h2: Arc<AtomicUsize>,
    pub http1: Arc<AtomicUsize>,
    pub goaway: Arc<tokio::sync::Notify>,
}

impl Counts {
    pub fn h2(&self) -> usize {
        self.h2.load(Ordering::SeqCst)
    }
    pub fn http1(&self) -> usize {
        self.http1.load(Ordering::SeqCst)
    }
}

/// How many messages `/flood/<n>` WebSockets have sent so far, in this test binary.
pub static FLOODED: AtomicUsize = AtomicUsize::new(0);

/// Serves one WebSocket: `/flood/<n>` sends `n` binary messages of 256 KiB and then echoes;
/// anything else echoes.
pub async fn serve(ws: WebSocketStream) {
    let path = url::Url::parse(ws.url()).unwrap().path().to_owned();
    if let Some(n) = path.strip_prefix("/flood/") {
        let n: usize = n.parse().unwrap();
        let Ok(Opened { mut writable, .. }) = ws.opened().await else {
            return;
        };
        for i in 0..n {
            if writable
                .send(Message::binary(vec![i as u8; 256 * 1024]))
                .await
                .is_err()
            {
                return;
            }
            FLOODED.fetch_add(1, Ordering::SeqCst);
        }
        drop(writable);
    }
    echo(ws).await;
}

/// What the test server speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Speaks {
    /// Our HTTP/2 server role (extended CONNECT allowed), HTTP/1.1 when ALPN says so.
    H2,
    /// HTTP/2 without extended CONNECT when ALPN says `h2` (or always, without TLS).
    H2WithoutConnect,
}

/// A server on 127.0.0.1: over TLS with `tls` (ALPN decides between HTTP/2 and HTTP/1.1),
/// else h2c with prior knowledge.
pub async fn h2_server(
    speaks: Speaks,
    options: ServerOptions,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, Counts) {
    let counts = Counts::default();
    let acceptor = tls.map(|config| {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    });
    let shared = counts.clone();
    let address = spawn_server(move |socket: TcpStream| {
        let (counts, options, acceptor) = (shared.clone(), options.clone(), acceptor.clone());
        async move {
            match acceptor {
                None => h2_connection(socket, speaks, options, counts).await,
                Some(acceptor) => {
                    let Ok(tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                        h2_connection(tls, speaks, options, counts).await;
                    } else {
                        counts.http1.fetch_add(1, Ordering::SeqCst);
                        if let Ok(ws) = accept(tls, options).await {
                            serve(ws).await;
                        }
                    }
                }
            }
        }
    })
    .await;
    (address, counts)
}

async fn h2_connection<S>(io: S, speaks: Speaks, options: ServerOptions, counts: Counts)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    counts.h2.fetch_add(1, Ordering::SeqCst);
    if speaks == Speaks::H2WithoutConnect {
        // A plain HTTP/2 server: SETTINGS without ENABLE_CONNECT_PROTOCOL, 404 to everything.
        let Ok(mut connection) = h2::server::handshake(io).await else {
            return;
        };
        while let Some(Ok((_, mut respond))) = connection.accept().await {
            let mut response = http::Response::new(());
            *response.status_mut() = http::StatusCode::NOT_FOUND;
            let _ = respond.send_response(response, true);
        }
        return;
    }
    let Ok(mut connection) = accept_h2(io, options).await else {
        return;
    };
    loop {
        tokio::select! {
            ws = connection.accept() => match ws {
                Some(ws) => {
                    tokio::spawn(serve(ws));
                }
                None => return,
            },
            () = counts.goaway.notified() => {
                connection.abort();
                return;
            }
        }
    }
}
