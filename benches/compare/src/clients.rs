//! Each implementation's client: connect with default settings, send, receive. Every one uses
//! its library's own idiomatic, cheapest path for a message of prepared bytes.

use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::driver::{Conn, Payload, drive};
use crate::scenario::{Report, Scenario};

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

async fn tcp(addr: SocketAddr) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Runs `scenario` with implementation `name` against the echo servers.
pub async fn run(
    name: &str,
    ws: SocketAddr,
    raw: SocketAddr,
    scenario: &Scenario,
) -> io::Result<Report> {
    let n = scenario.connections;
    let url = format!("ws://{ws}/");
    macro_rules! open {
        ($connect:expr) => {{
            let before = crate::measure::rss_bytes();
            let mut conns = Vec::with_capacity(n);
            for _ in 0..n {
                conns.push($connect.await?);
            }
            if scenario.idle {
                // Let every handshake's leftovers settle, then read the resident size.
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let after = crate::measure::rss_bytes();
                drop(conns);
                Ok(Report {
                    implementation: name.into(),
                    rss_bytes: after,
                    bytes_per_connection: Some(after.saturating_sub(before) as f64 / n as f64),
                    ..Report::default()
                })
            } else {
                drive(name, conns, scenario).await
            }
        }};
    }
    match name {
        "raw-tcp" => open!(RawTcp::connect(raw, scenario.size)),
        "ours-stream" => open!(OursStream::connect(&url)),
        "ours-websocket" => open!(OursWebSocket::connect(&url)),
        "tokio-tungstenite" => open!(Tungstenite::connect(ws)),
        "tokio-websockets" => open!(TokioWebsockets::connect(ws)),
        "fastwebsockets" => open!(FastWebsockets::connect(ws)),
        _ => Err(other(format!("unknown implementation {name}"))),
    }
}

/// The physical limit: the same bytes a WebSocket client puts on the wire (a 2-14 byte header
/// and the payload, masked), echoed by a raw TCP server.
pub struct RawTcp {
    tcp: TcpStream,
    size: usize,
    out: Vec<u8>,
    back: Vec<u8>,
    /// `send` has already read the echo (large messages).
    echoed: bool,
}

impl RawTcp {
    async fn connect(addr: SocketAddr, size: usize) -> io::Result<Self> {
        let header = match size {
            0..=125 => 2,
            126..=65535 => 4,
            _ => 10,
        };
        Ok(Self {
            tcp: tcp(addr).await?,
            size,
            // What a client puts on the wire (header, mask key, payload); the raw server
            // echoes the same bytes.
            out: vec![0x61; header + 4 + size],
            back: vec![0; header + 4 + size],
            echoed: false,
        })
    }
}

/// Above this, a raw send reads the echo while it writes: the echo server writes back as it
/// reads, and with neither side reading, both would block once the socket buffers fill.
const RAW_CONCURRENT: usize = 1 << 20;

impl Conn for RawTcp {
    async fn send(&mut self, _: &Payload) -> io::Result<()> {
        if self.out.len() > RAW_CONCURRENT {
            let (mut r, mut w) = self.tcp.split();
            let (wrote, read) = tokio::join!(w.write_all(&self.out), r.read_exact(&mut self.back));
            wrote?;
            read?;
            self.echoed = true;
            return Ok(());
        }
        self.tcp.write_all(&self.out).await
    }

    async fn recv(&mut self) -> io::Result<usize> {
        if !std::mem::take(&mut self.echoed) {
            self.tcp.read_exact(&mut self.back).await?;
        }
        Ok(self.size)
    }
}

/// Ours, through the `WebSocketStream` face.
pub struct OursStream {
    _ws: whatwg_websocket::WebSocketStream,
    readable: whatwg_websocket::Readable,
    writable: whatwg_websocket::Writable,
}

impl OursStream {
    async fn connect(url: &str) -> io::Result<Self> {
        let ws = whatwg_websocket::WebSocketStream::new(url, Default::default()).map_err(other)?;
        let opened = ws.opened().await.map_err(other)?;
        Ok(Self {
            _ws: ws,
            readable: opened.readable,
            writable: opened.writable,
        })
    }
}

fn ours_message(payload: &Payload) -> whatwg_websocket::Message {
    match &payload.ours_text {
        // Validated once when the payload was made; the clone is a reference count.
        Some(text) => whatwg_websocket::Message::Text(text.clone()),
        None => whatwg_websocket::Message::Binary(payload.bytes.clone()),
    }
}

impl Conn for OursStream {
    async fn send(&mut self, payload: &Payload) -> io::Result<()> {
        self.writable
            .send(ours_message(payload))
            .await
            .map_err(other)
    }

    async fn recv(&mut self) -> io::Result<usize> {
        match self.readable.next().await {
            Some(Ok(message)) => Ok(message.len()),
            Some(Err(e)) => Err(other(e)),
            None => Err(other("closed")),
        }
    }
}

/// Ours, through the EventTarget `WebSocket` face: the `message` listener forwards lengths to
/// the driver through a channel (what an application would do to get them into its task).
pub struct OursWebSocket {
    ws: whatwg_websocket::WebSocket,
    lengths: tokio::sync::mpsc::UnboundedReceiver<usize>,
}

impl OursWebSocket {
    async fn connect(url: &str) -> io::Result<Self> {
        let ws = whatwg_websocket::WebSocket::new(url, ()).map_err(other)?;
        let (open_tx, open_rx) = tokio::sync::oneshot::channel();
        let open_tx = std::sync::Mutex::new(Some(open_tx));
        ws.set_onopen(move |_: &whatwg_websocket::Event| {
            if let Some(tx) = open_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
        });
        let (tx, lengths) = tokio::sync::mpsc::unbounded_channel();
        ws.set_onmessage(move |event: &whatwg_websocket::Event| {
            let len = match event.data() {
                Some(whatwg_websocket::MessageData::Text(t)) => t.len(),
                Some(data) => data.as_binary().map_or(0, Bytes::len),
                None => 0,
            };
            let _ = tx.send(len);
        });
        open_rx.await.map_err(|_| other("did not open"))?;
        Ok(Self { ws, lengths })
    }
}

impl Conn for OursWebSocket {
    async fn send(&mut self, payload: &Payload) -> io::Result<()> {
        self.ws.send(ours_message(payload)).map_err(other)
    }

    async fn recv(&mut self) -> io::Result<usize> {
        self.lengths.recv().await.ok_or_else(|| other("closed"))
    }
}

/// tokio-tungstenite.
pub struct Tungstenite {
    ws: tokio_tungstenite::WebSocketStream<TcpStream>,
}

impl Tungstenite {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let (ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp(addr).await?)
            .await
            .map_err(other)?;
        Ok(Self { ws })
    }
}

impl Conn for Tungstenite {
    async fn send(&mut self, payload: &Payload) -> io::Result<()> {
        use tokio_tungstenite::tungstenite::Message;
        let message = match &payload.tungstenite_text {
            Some(text) => Message::Text(text.clone()),
            None => Message::Binary(payload.bytes.clone()),
        };
        self.ws.send(message).await.map_err(other)
    }

    async fn recv(&mut self) -> io::Result<usize> {
        loop {
            match self.ws.next().await {
                Some(Ok(message)) if message.is_text() || message.is_binary() => {
                    return Ok(message.len());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(other(e)),
                None => return Err(other("closed")),
            }
        }
    }
}

/// tokio-websockets.
pub struct TokioWebsockets {
    ws: tokio_websockets::WebSocketStream<TcpStream>,
}

impl TokioWebsockets {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let uri: hyper::Uri = format!("ws://{addr}/").parse().map_err(other)?;
        let (ws, _) = tokio_websockets::ClientBuilder::from_uri(uri)
            .connect_on(tcp(addr).await?)
            .await
            .map_err(other)?;
        Ok(Self { ws })
    }
}

impl Conn for TokioWebsockets {
    async fn send(&mut self, payload: &Payload) -> io::Result<()> {
        let message = if payload.text {
            tokio_websockets::Message::text(payload.bytes.clone())
        } else {
            tokio_websockets::Message::binary(payload.bytes.clone())
        };
        self.ws.send(message).await.map_err(other)
    }

    async fn recv(&mut self) -> io::Result<usize> {
        loop {
            match self.ws.next().await {
                Some(Ok(message)) if message.is_text() || message.is_binary() => {
                    return Ok(message.as_payload().len());
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(other(e)),
                None => return Err(other("closed")),
            }
        }
    }
}

/// fastwebsockets, with its `FragmentCollector` (whole messages, UTF-8 checked).
pub struct FastWebsockets {
    ws: fastwebsockets::FragmentCollector<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
}

struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}

impl FastWebsockets {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let request = hyper::Request::builder()
            .method("GET")
            .uri(format!("http://{addr}/"))
            .header("Host", addr.to_string())
            .header("Upgrade", "websocket")
            .header("Connection", "upgrade")
            .header(
                "Sec-WebSocket-Key",
                fastwebsockets::handshake::generate_key(),
            )
            .header("Sec-WebSocket-Version", "13")
            .body(http_body_util::Empty::<Bytes>::new())
            .map_err(other)?;
        let (ws, _) = fastwebsockets::handshake::client(&SpawnExecutor, request, tcp(addr).await?)
            .await
            .map_err(other)?;
        Ok(Self {
            ws: fastwebsockets::FragmentCollector::new(ws),
        })
    }
}

impl Conn for FastWebsockets {
    async fn send(&mut self, payload: &Payload) -> io::Result<()> {
        use fastwebsockets::{Frame, Payload as P};
        let body = P::Borrowed(&payload.bytes);
        let frame = if payload.text {
            Frame::text(body)
        } else {
            Frame::binary(body)
        };
        self.ws.write_frame(frame).await.map_err(other)
    }

    async fn recv(&mut self) -> io::Result<usize> {
        loop {
            let frame = self.ws.read_frame().await.map_err(other)?;
            match frame.opcode {
                fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                    return Ok(frame.payload.len());
                }
                fastwebsockets::OpCode::Close => return Err(other("closed")),
                _ => {}
            }
        }
    }
}
