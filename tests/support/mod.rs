//! Test support: loopback servers (our server role, and raw scripted peers) and helpers.
#![allow(dead_code, unreachable_pub)]

pub mod daemon;
pub mod h2;
pub mod mock;
pub mod pki;
pub mod proxies;
pub mod python;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use whatwg_websocket::handshake::{ServerHandshake, accept_key};
use whatwg_websocket::proto::{Frame, FrameEncoder, Incoming, Limits, MessageDecoder, Role};
use whatwg_websocket::{Event, Opened, ServerOptions, WebSocket, WebSocketStream, accept};

/// A bound on every wait in the tests, so that a bug fails a test instead of hanging it.
pub const LIMIT: Duration = Duration::from_secs(10);

pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("timed out")
}

/// Forwards every event of the listed types to a channel.
pub fn record(
    ws: &WebSocket,
    types: &[&'static str],
) -> tokio::sync::mpsc::UnboundedReceiver<Event> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for &event_type in types {
        let tx = tx.clone();
        ws.add_event_listener(event_type, move |event: &Event| {
            let _ = tx.send(event.clone());
        });
    }
    rx
}

/// The next recorded event.
pub async fn next_event(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> Event {
    within(rx.recv()).await.expect("an event")
}

/// Keeps this thread busy for `duration` without yielding (a synchronous stretch, or load).
pub fn busy(duration: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < duration {
        std::hint::spin_loop();
    }
}

/// Tasks that keep the runtime's workers busy in short slices until the guard is dropped.
pub struct Load(Arc<AtomicBool>);

impl Load {
    pub fn start(tasks: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..tasks {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    busy(Duration::from_micros(300));
                    tokio::task::yield_now().await;
                }
            });
        }
        Self(stop)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `serve` on every connection accepted on 127.0.0.1; returns the address.
pub async fn spawn_server<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket));
        }
    });
    address
}

/// Echoes every message on an accepted connection until it closes.
pub async fn echo(ws: WebSocketStream) {
    let Ok(Opened {
        mut readable,
        mut writable,
        ..
    }) = ws.opened().await
    else {
        return;
    };
    while let Some(Ok(message)) = readable.next().await {
        if writable.send(message).await.is_err() {
            break;
        }
    }
    let _ = ws.closed().await;
}

/// Our server role, echoing every message.
pub async fn echo_server(options: ServerOptions) -> SocketAddr {
    spawn_server(move |socket| {
        let options = options.clone();
        async move {
            if let Ok(ws) = accept(socket, options).await {
                echo(ws).await;
            }
        }
    })
    .await
}

/// Reads an HTTP request head from `socket`; returns it and any bytes after it.
pub async fn read_request(socket: &mut TcpStream) -> (http::Request<()>, BytesMut) {
    let mut buf = BytesMut::new();
    loop {
        if let Some((request, len)) = ServerHandshake::decode_request(&buf, 65536).unwrap() {
            let rest = buf.split_off(len);
            return (request, rest);
        }
        assert_ne!(
            socket.read_buf(&mut buf).await.unwrap(),
            0,
            "client closed during its request"
        );
    }
}

/// The `Sec-WebSocket-Accept` for a request.
pub fn accept_for(request: &http::Request<()>) -> String {
    accept_key(request.headers()["sec-websocket-key"].as_bytes())
}

/// Runs `serve` on the first connection accepted on 127.0.0.1 and hands its result to the
/// returned receiver.
pub async fn serve_once<F, Fut, T>(serve: F) -> (SocketAddr, tokio::sync::oneshot::Receiver<T>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let _ = tx.send(serve(socket).await);
    });
    (address, rx)
}

/// Reads the client's request and answers it with a valid 101 (plus `extra` header lines);
/// returns the bytes read past the request.
pub async fn answer_handshake(socket: &mut TcpStream, extra: &str) -> BytesMut {
    let (request, rest) = read_request(socket).await;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        accept_for(&request)
    );
    socket.write_all(response.as_bytes()).await.unwrap();
    rest
}

/// A raw peer that answers the handshake with a valid 101 and then speaks frames through a
/// [`RawPeer`], on every connection.
pub async fn raw_server<F, Fut>(extra: &'static str, script: F) -> SocketAddr
where
    F: Fn(RawPeer) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let script = std::sync::Arc::new(script);
    spawn_server(move |mut socket| {
        let script = script.clone();
        async move {
            let rest = answer_handshake(&mut socket, extra).await;
            script(RawPeer::new(socket, rest)).await;
        }
    })
    .await
}

/// [`raw_server`] for one connection, handing `script`'s result to the returned receiver.
pub async fn raw_once<F, Fut, T>(script: F) -> (SocketAddr, tokio::sync::oneshot::Receiver<T>)
where
    F: FnOnce(RawPeer) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    serve_once(move |mut socket| async move {
        let rest = answer_handshake(&mut socket, "").await;
        script(RawPeer::new(socket, rest)).await
    })
    .await
}

/// The server end of a WebSocket, frame by frame, for scripting misbehaviour.
pub struct RawPeer {
    pub socket: TcpStream,
    read_buf: BytesMut,
    decoder: MessageDecoder,
    encoder: FrameEncoder,
}

impl RawPeer {
    pub fn new(socket: TcpStream, read_buf: BytesMut) -> Self {
        Self {
            socket,
            read_buf,
            decoder: MessageDecoder::new(Role::Server, Limits::unlimited()),
            encoder: FrameEncoder::new(Role::Server),
        }
    }

    pub async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out);
        self.socket.write_all(&out).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
    }

    /// The next thing the client sent, or `None` at end of stream.
    pub async fn receive(&mut self) -> Option<Incoming> {
        loop {
            if let Some(incoming) = self
                .decoder
                .decode(&mut self.read_buf)
                .expect("client sent a valid frame")
            {
                return Some(incoming);
            }
            if self.socket.read_buf(&mut self.read_buf).await.ok()? == 0 {
                return None;
            }
        }
    }
}

/// A dispatcher for `ws://127.0.0.1:<port>/` whose TCP socket has a fixed receive buffer of
/// this many bytes (no autotuning): the kernel then holds at most about that much of what the
/// peer sends, whatever the machine's `tcp_rmem`.
pub struct FixedReceiveBuffer(pub u32);

impl whatwg_websocket::Dispatcher for FixedReceiveBuffer {
    fn dispatch(
        &self,
        request: whatwg_websocket::handshake::HandshakeRequest,
    ) -> whatwg_websocket::dispatcher::DispatchFuture {
        let size = self.0;
        Box::pin(async move {
            use whatwg_websocket::Failure;
            let (_, port) = request.host_and_port();
            let socket = tokio::net::TcpSocket::new_v4().map_err(Failure::Io)?;
            socket.set_recv_buffer_size(size).map_err(Failure::Io)?;
            let tcp = socket
                .connect(([127, 0, 0, 1], port).into())
                .await
                .map_err(Failure::Io)?;
            whatwg_websocket::dispatcher::upgrade_http1(tcp, &request, 65536).await
        })
    }
}

/// Opens a `WebSocketStream` to `url` and waits until it is open.
pub async fn connect(
    url: &str,
    options: whatwg_websocket::StreamOptions,
) -> (WebSocketStream, Opened) {
    let ws = WebSocketStream::new(url, options).unwrap();
    let opened = within(ws.opened()).await.expect("opened");
    (ws, opened)
}
