//! An in-memory socket for the connection tests: the test plays the peer, and controls what
//! the socket does. How many bytes it takes before writes wait (the peer's receive window),
//! whether what a write takes waits for a flush before the peer can read it (as a TLS
//! stream's records do), the end of the peer's stream, and errors. With
//! `tokio::time::pause`, every timer of a connection runs in virtual time over it.
//!
//! ```ignore
//! let (dispatcher, mut peer) = mock::socket(Mock::default());
//! let ws = WebSocketStream::new("ws://mock/", StreamOptions { dispatcher: Some(dispatcher), ..Default::default() })?;
//! peer.send(Frame::new(OpCode::Text, "hi")).await;
//! ```

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use whatwg_websocket::dispatcher::{DispatchFuture, Upgraded};
use whatwg_websocket::handshake::{HandshakeRequest, Negotiated};
use whatwg_websocket::proto::{
    Frame, FrameDecoder, FrameEncoder, Incoming, Limits, MessageDecoder, Role,
};
use whatwg_websocket::{Dispatcher, Failure};

/// How the socket behaves.
#[derive(Clone, Debug)]
pub struct Mock {
    /// Bytes the peer can have unread before our writes wait.
    pub capacity: usize,
    /// TLS-like: a write takes up to `held_capacity` bytes into a buffer of the socket's own,
    /// moves what fits to the peer, and leaves the rest for a later write or a flush.
    pub hold_until_flush: bool,
    /// What a TLS-like socket holds before writes wait.
    pub held_capacity: usize,
    /// What the handshake agreed (the `extensions` answer, for permessage-deflate).
    pub negotiated: Negotiated,
    /// A peer that never stops sending: these bytes (whole frames) come again whenever
    /// everything sent has been read, so that reads never wait.
    pub endless: Option<Vec<u8>>,
    /// The peer plays the client (it masks what it sends, and expects unmasked frames): for
    /// our server role.
    pub peer_is_client: bool,
}

impl Default for Mock {
    fn default() -> Self {
        Self {
            capacity: 16 << 20,
            hold_until_flush: false,
            held_capacity: 64 * 1024,
            negotiated: Negotiated::default(),
            endless: None,
            peer_is_client: false,
        }
    }
}

#[derive(Default)]
struct Link {
    // Peer to us.
    inbound: VecDeque<u8>,
    inbound_eof: bool,
    endless: Option<Vec<u8>>,
    read_error: Option<io::ErrorKind>,
    reader: Option<Waker>,
    // Us to peer.
    wire: BytesMut,
    held: BytesMut,
    capacity: usize,
    held_capacity: usize,
    hold_until_flush: bool,
    write_error: Option<io::ErrorKind>,
    writer: Option<Waker>,
    shut_down: bool,
    dropped: bool,
    flushes: usize,
    peer: Option<Waker>,
}

impl Link {
    /// Moves held bytes to the wire as far as the capacity allows; `true` once none are held.
    fn push_held(&mut self) -> bool {
        let room = self.capacity.saturating_sub(self.wire.len());
        let n = room.min(self.held.len());
        if n > 0 {
            let chunk = self.held.split_to(n);
            self.wire.extend_from_slice(&chunk);
            wake(&mut self.peer);
        }
        self.held.is_empty()
    }
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(waker) = slot.take() {
        waker.wake();
    }
}

fn lock(link: &Mutex<Link>) -> MutexGuard<'_, Link> {
    link.lock().unwrap_or_else(|e| e.into_inner())
}

/// Our end of the socket, handed to the connection.
pub struct MockIo {
    link: Arc<Mutex<Link>>,
}

impl AsyncRead for MockIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut link = lock(&self.link);
        if let Some(kind) = link.read_error.take() {
            return Poll::Ready(Err(kind.into()));
        }
        if link.inbound.is_empty()
            && let Some(again) = link.endless.clone()
        {
            link.inbound.extend(again);
        }
        if link.inbound.is_empty() {
            if link.inbound_eof {
                return Poll::Ready(Ok(()));
            }
            link.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.remaining().min(link.inbound.len());
        let (front, back) = link.inbound.as_slices();
        let from_front = n.min(front.len());
        buf.put_slice(&front[..from_front]);
        buf.put_slice(&back[..n - from_front]);
        link.inbound.drain(..n);
        if link.inbound.is_empty() && link.inbound.capacity() > 64 * 1024 {
            // Give back what a large burst took (the memory tests count every byte).
            link.inbound = VecDeque::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MockIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut link = lock(&self.link);
        if let Some(kind) = link.write_error.take() {
            return Poll::Ready(Err(kind.into()));
        }
        if link.shut_down {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if link.hold_until_flush {
            link.push_held();
            let room = link.held_capacity.saturating_sub(link.held.len());
            if room == 0 {
                link.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = room.min(buf.len());
            link.held.extend_from_slice(&buf[..n]);
            // As tokio-rustls does: write what the socket takes, and wait for room (with this
            // waker) for the rest, which only a later write or a flush sends.
            if !link.push_held() {
                link.writer = Some(cx.waker().clone());
            }
            return Poll::Ready(Ok(n));
        }
        let room = link.capacity.saturating_sub(link.wire.len());
        if room == 0 {
            link.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        link.wire.extend_from_slice(&buf[..n]);
        wake(&mut link.peer);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut link = lock(&self.link);
        link.flushes += 1;
        if link.push_held() {
            Poll::Ready(Ok(()))
        } else {
            link.writer = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut link = lock(&self.link);
        if !link.push_held() {
            link.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        link.shut_down = true;
        wake(&mut link.peer);
        Poll::Ready(Ok(()))
    }
}

impl Drop for MockIo {
    fn drop(&mut self) {
        let mut link = lock(&self.link);
        link.dropped = true;
        wake(&mut link.peer);
    }
}

/// A handle that sends as the peer, for a task of its own.
#[derive(Clone)]
pub struct PeerSender {
    link: Arc<Mutex<Link>>,
    role: Role,
}

impl PeerSender {
    /// Sends a frame to us, as a server does (unmasked).
    pub fn send(&self, frame: Frame) {
        let mut out = BytesMut::new();
        FrameEncoder::new(self.role).encode(&frame, &mut out);
        self.send_raw(&out);
    }

    /// Sends raw bytes to us.
    pub fn send_raw(&self, bytes: &[u8]) {
        let mut link = lock(&self.link);
        link.inbound.extend(bytes);
        wake(&mut link.reader);
    }
}

/// The peer's end: frames in and out, and the controls.
pub struct MockPeer {
    link: Arc<Mutex<Link>>,
    read_buf: BytesMut,
    messages: MessageDecoder,
    frames: FrameDecoder,
    encoder: FrameEncoder,
    role: Role,
}

impl MockPeer {
    /// Sends a frame to us (unmasked as a server, masked as a client).
    pub fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out);
        self.send_raw(&out);
    }

    /// A sender for another task.
    pub fn sender(&self) -> PeerSender {
        PeerSender {
            link: self.link.clone(),
            role: self.role,
        }
    }

    pub fn send_raw(&self, bytes: &[u8]) {
        let mut link = lock(&self.link);
        link.inbound.extend(bytes);
        wake(&mut link.reader);
    }

    /// Ends the peer's side of the stream (our reads see EOF).
    pub fn close_write(&self) {
        let mut link = lock(&self.link);
        link.inbound_eof = true;
        wake(&mut link.reader);
    }

    /// The next read (or write) on our end fails with `kind`.
    pub fn fail_next_read(&self, kind: io::ErrorKind) {
        let mut link = lock(&self.link);
        link.read_error = Some(kind);
        wake(&mut link.reader);
    }

    pub fn fail_next_write(&self, kind: io::ErrorKind) {
        lock(&self.link).write_error = Some(kind);
    }

    /// Sets how many bytes the peer can have unread before our writes wait.
    pub fn set_capacity(&self, capacity: usize) {
        let mut link = lock(&self.link);
        link.capacity = capacity;
        wake(&mut link.writer);
    }

    /// Takes what we have written that the peer has not read yet (raw bytes, such as a
    /// handshake response).
    pub fn take_written(&self) -> Vec<u8> {
        let mut link = lock(&self.link);
        let written = link.wire.to_vec();
        link.wire = BytesMut::new();
        wake(&mut link.writer);
        written
    }

    /// Bytes we have written that the peer has not read.
    pub fn unread(&self) -> usize {
        lock(&self.link).wire.len()
    }

    /// Bytes a TLS-like socket holds, not yet on the wire.
    pub fn held(&self) -> usize {
        lock(&self.link).held.len()
    }

    /// Whether our end has closed the socket (shut it down, or dropped it).
    pub fn closed_by_us(&self) -> bool {
        let link = lock(&self.link);
        link.shut_down || link.dropped
    }

    /// Whether our end has dropped the socket.
    pub fn dropped(&self) -> bool {
        lock(&self.link).dropped
    }

    /// Waits for bytes on the wire (moving them to the read buffer); `false` at our end of
    /// stream.
    async fn fill(&mut self) -> bool {
        poll_fn(|cx| {
            let mut link = lock(&self.link);
            if !link.wire.is_empty() {
                self.read_buf.extend_from_slice(&link.wire);
                link.wire.clear();
                // Room again: what a TLS-like socket holds moves on its next write or flush.
                wake(&mut link.writer);
                return Poll::Ready(true);
            }
            if link.shut_down || link.dropped {
                return Poll::Ready(false);
            }
            link.peer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// The next thing we sent (a message or a control frame), or `None` once our end closed.
    pub async fn receive(&mut self) -> Option<Incoming> {
        loop {
            if let Some(incoming) = self
                .messages
                .decode(&mut self.read_buf)
                .expect("the client sent a valid frame")
            {
                return Some(incoming);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// The next frame we sent, as it is on the wire (RSV1 and payload as sent, unmasked).
    pub async fn receive_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self
                .frames
                .decode(&mut self.read_buf)
                .expect("the client sent a valid frame")
            {
                return Some(frame);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// Reads and discards until our end closes the socket.
    pub async fn drain_until_closed(&mut self) {
        while self.fill().await {
            self.read_buf.clear();
        }
    }

    /// Reads until our Close arrives (discarding messages); `None` if the socket closed first.
    pub async fn receive_close(&mut self) -> Option<Incoming> {
        loop {
            if let close @ Incoming::Close(_) = self.receive().await? {
                return Some(close);
            }
        }
    }
}

/// A socket behaving as `mock` says: a dispatcher that hands out our end (once), and the
/// peer's end.
pub fn socket(mock: Mock) -> (Arc<dyn Dispatcher>, MockPeer) {
    let (io, peer) = pair(&mock);
    let dispatcher = Arc::new(Handover(Mutex::new(Some((io, mock.negotiated)))));
    (dispatcher, peer)
}

/// Both ends of a socket behaving as `mock` says.
pub fn pair(mock: &Mock) -> (MockIo, MockPeer) {
    let link = Arc::new(Mutex::new(Link {
        capacity: mock.capacity,
        held_capacity: mock.held_capacity,
        hold_until_flush: mock.hold_until_flush,
        endless: mock.endless.clone(),
        ..Link::default()
    }));
    let role = if mock.peer_is_client {
        Role::Client
    } else {
        Role::Server
    };
    let mut frames = FrameDecoder::new(role, Limits::unlimited());
    frames.allow_rsv1();
    let peer = MockPeer {
        link: link.clone(),
        read_buf: BytesMut::new(),
        messages: MessageDecoder::new(role, Limits::unlimited()),
        frames,
        encoder: FrameEncoder::new(role),
        role,
    };
    (MockIo { link }, peer)
}

/// A dispatcher that skips the HTTP handshake and hands over a mock socket.
struct Handover(Mutex<Option<(MockIo, Negotiated)>>);

impl Dispatcher for Handover {
    fn dispatch(&self, _request: HandshakeRequest) -> DispatchFuture {
        let socket = self.0.lock().unwrap().take();
        Box::pin(async move {
            let (io, negotiated) = socket.ok_or(Failure::ConnectionClosed)?;
            Ok(Upgraded::new(io, BytesMut::new(), negotiated))
        })
    }
}
