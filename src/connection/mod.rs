//! The connection driver: one WebSocket connection over an upgraded byte stream, driven by
//! polls from whichever face needs progress (the readable, the writable, `closed`, or the
//! EventTarget task). It owns the buffers and the codec, answers pings, runs the closing
//! handshake with its timeout, and turns every failure into the web's outcome.
//!
//! Nothing here spawns or locks: the faces wrap it in their own synchronisation (and
//! [`shared`] spawns the task that finishes a closing nobody drives), and every poll of the
//! socket or timer uses the [`WakerHub`]'s waker so that all waiting faces wake.
//!
//! This file holds the state and the receiving half; `sending.rs` the sending half;
//! `closing.rs` the closing handshake, its timeout, and the end of a connection.

mod closing;
pub(crate) mod hub;
mod liveness;
mod sending;
pub(crate) mod shared;

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::proto::deflate::DeflateOptions;
#[cfg(feature = "deflate")]
use crate::proto::deflate::{DeflateParams, codec::Deflater};
use crate::proto::{
    CloseCode, CloseFrame, Frame, FrameEncoder, Incoming, Limits, Message, MessageDecoder, OpCode,
    Role,
};
use crate::{CloseInfo, Failure, WebSocketError};
pub use liveness::Keepalive;
use liveness::Liveness;
pub(crate) use liveness::{MAX_PINGS_AWAITING, Timeouts};

/// An upgraded byte stream: what a dispatcher hands over after the opening handshake.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// The default close timeout: how long to wait for the closing handshake (RFC 6455 7.1.1).
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A read is made with at least this much free space...
const MIN_READ: usize = 1024;
/// ...and when there is less, this much more is reserved (so that small messages split off the
/// buffer do not make every read reserve again). It is also where the read size starts.
const READ_CHUNK: usize = 4 * 1024;
/// Reads that fill what they asked for double the read size, up to this; reads that come back
/// mostly empty halve it again. A stream of small frames (fragments of a large message, many
/// small messages in a row) is then read in few system calls, while an idle or quiet
/// connection keeps a small buffer. Well below [`KEEP_CAPACITY`], so that the buffer is kept.
const MAX_READ_CHUNK: usize = 32 * 1024;
/// The most a read reserves ahead for a frame whose length is known.
const MAX_READ_RESERVE: usize = 1024 * 1024;
/// Read and write buffers larger than this are given back once empty. Smaller ones are kept,
/// so that a connection exchanging messages of up to a few hundred KiB reuses its buffers
/// instead of allocating (and faulting in) fresh ones per message; an idle connection never
/// grows its buffers in the first place.
const KEEP_CAPACITY: usize = 512 * 1024;

/// A message the application keeps holds at most this multiple of its own size: shorter
/// ones are copied out of the read buffer they arrived in (see
/// [`MessageDecoder::copy_below`]), so that the peer cannot make a few kept bytes pin a large
/// buffer...
const MAX_PIN_RATIO: usize = 4;
/// ...once the buffer is larger than this, or once a message the application kept was found
/// still sharing a buffer due for reuse. Before that (an application that drops its messages,
/// read buffers of the adaptive read size), messages share the buffer, which costs no copy
/// and no allocation; the first kept ones hold at most this much.
const SHARED_READ_BUFFER: usize = 2 * MAX_READ_CHUNK;

/// Settings of one connection.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) role: Role,
    pub(crate) limits: Limits,
    pub(crate) close_timeout: Duration,
    /// Bytes of received messages that may wait for the reader when `closed` drives reads.
    pub(crate) read_high_water_mark: usize,
    /// Bytes of encoded frames that may wait for the socket before writes wait.
    pub(crate) write_high_water_mark: usize,
    /// permessage-deflate as offered (client) or accepted (server); `None` disables it.
    pub(crate) deflate: Option<DeflateOptions>,
    /// Keepalive, and the idle and incomplete-message timeouts.
    pub(crate) timeouts: Timeouts,
    /// (Stream face) How long the owner may go without reading before the keeper reads for
    /// it.
    pub(crate) read_ahead_after: Duration,
}

impl Config {
    /// The `Sec-WebSocket-Extensions` offer of a client with this configuration.
    pub(crate) fn extensions_offer(&self) -> Option<String> {
        if cfg!(feature = "deflate") {
            self.deflate.as_ref().map(DeflateOptions::offer)
        } else {
            None
        }
    }
}

/// The default of the `deflate` options: on when the `deflate` feature is.
pub(crate) fn default_deflate() -> Option<DeflateOptions> {
    cfg!(feature = "deflate").then(DeflateOptions::default)
}

/// How a connection ended.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// Close frames sent and received, then the TCP connection closed.
    Clean(CloseInfo),
    /// Anything else; reported as 1006 with the Rust-side cause.
    Unclean(WebSocketError),
}

/// Why a send was refused.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The closing handshake has started or finished cleanly.
    Closing,
    /// The connection failed.
    Failed(WebSocketError),
    /// (Pings) the write buffer holds the write high-water mark or more.
    Full,
}

pub(crate) struct Connection {
    io: Box<dyn Io>,
    /// The hub's waker: every poll of `io` and `deadline` uses it.
    waker: Waker,
    config: Config,
    read_buf: BytesMut,
    /// The size of the read buffer's allocation (its capacity counts only from where its
    /// unread bytes start).
    read_alloc: usize,
    /// How much a read asks for when no large frame is arriving: see [`MAX_READ_CHUNK`].
    read_size: usize,
    /// Encoded frames; those before `write_pos` are already written. The buffer is cleared
    /// (not advanced) once all of it is written, so that encoding the next frame does not make
    /// `BytesMut` reclaim space.
    write_buf: BytesMut,
    write_pos: usize,
    /// Bytes went to the socket since its last flush (a TLS stream may hold them until then).
    unflushed: bool,
    /// Bytes of frames handed to the socket so far (for the EventTarget's `bufferedAmount`).
    written: u64,
    /// Where the last queued data frame ends, in the same count as `written`.
    data_end: u64,
    /// The peer's Close arrived while data of ours was still unsent: the close is not clean.
    unsent_at_close: bool,
    decoder: MessageDecoder,
    encoder: FrameEncoder,
    /// permessage-deflate's compressor and the size below which messages go uncompressed.
    #[cfg(feature = "deflate")]
    deflater: Option<(Deflater, DeflateOptions)>,
    /// Messages read by `closed` while the reader was not reading.
    inbound: VecDeque<Message>,
    inbound_bytes: usize,
    /// The payload of the latest ping not answered yet, while the write buffer is full.
    pending_pong: Option<Bytes>,
    close_sent: bool,
    close_received: Option<CloseInfo>,
    /// The closing has started or the connection is over (our Close queued, the peer's Close
    /// received, a failure, or an outcome): one flag for the hot paths to test.
    closing: bool,
    /// Every handle is gone: messages that arrive are discarded.
    abandoned: bool,
    eof: bool,
    shut_down: bool,
    /// The byte stream is one of several on a connection (an HTTP/2 stream): see
    /// [`Connection::end_stream`].
    end_after_close: bool,
    failure: Option<WebSocketError>,
    outcome: Option<Outcome>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Keepalive, round trips, and the idle and incomplete-message timeouts.
    live: Liveness,
    /// The owner read (the readable or `closed` polled) since the keeper last looked.
    owner_read: bool,
    /// A kept message was found sharing the read buffer: small messages are copied out.
    copy_small: bool,
    /// The keeper reads: reading stops once the read high-water mark is buffered, counting
    /// the message still arriving.
    keeping: bool,
}

impl Connection {
    /// A connection over `io`, whose first bytes may already be in `read_buf` (what followed
    /// the handshake response), with the extensions the handshake agreed (`extensions`, as the
    /// server answered them).
    pub(crate) fn new(
        io: Box<dyn Io>,
        read_buf: BytesMut,
        extensions: &str,
        end_after_close: bool,
        config: Config,
        waker: Waker,
    ) -> Self {
        #[cfg(feature = "deflate")]
        let deflate = config.deflate.as_ref().and_then(|options| {
            let params = match config.role {
                Role::Client => options.accept_answer(extensions).ok().flatten(),
                Role::Server => DeflateParams::from_answer(extensions),
            }?;
            Some((*options, params))
        });
        #[cfg(not(feature = "deflate"))]
        let _ = extensions;
        #[cfg(feature = "deflate")]
        let decoder = match &deflate {
            Some((_, params)) => MessageDecoder::with_deflate(config.role, config.limits, params),
            None => MessageDecoder::new(config.role, config.limits),
        };
        #[cfg(not(feature = "deflate"))]
        let decoder = MessageDecoder::new(config.role, config.limits);
        // What followed the handshake response moves to a buffer of the connection's own: the
        // handshake's may still be shared with its parsed head.
        let read_buf = BytesMut::from(&read_buf[..]);
        Self {
            #[cfg(feature = "deflate")]
            deflater: deflate.map(|(options, params)| {
                (
                    Deflater::with_options(config.role, &params, &options),
                    options,
                )
            }),
            io,
            waker,
            read_alloc: read_buf.capacity(),
            read_buf,
            read_size: READ_CHUNK,
            write_buf: BytesMut::new(),
            write_pos: 0,
            unflushed: false,
            written: 0,
            data_end: 0,
            unsent_at_close: false,
            decoder,
            encoder: FrameEncoder::new(config.role),
            inbound: VecDeque::new(),
            inbound_bytes: 0,
            pending_pong: None,
            close_sent: false,
            close_received: None,
            closing: false,
            abandoned: false,
            eof: false,
            shut_down: false,
            end_after_close,
            failure: None,
            outcome: None,
            deadline: None,
            live: Liveness::new(&config.timeouts),
            owner_read: false,
            keeping: false,
            copy_small: false,
            config,
        }
    }

    /// Whether the closing handshake has started or the connection is over.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing
    }

    // ----- receiving -----

    /// The next message for the reader: `Ready(None)` once no more will come (a Close was
    /// received, or the connection failed: see [`failure`](Self::failure)).
    pub(crate) fn poll_next_message(&mut self) -> Poll<Option<Message>> {
        self.owner_read = true;
        if let Some(message) = self.inbound.pop_front() {
            self.inbound_bytes -= message.len();
            return Poll::Ready(Some(message));
        }
        self.poll_incoming()
    }

    /// Whether the owner read (polled the readable or `closed`) since the last call.
    pub(crate) fn take_owner_read(&mut self) -> bool {
        std::mem::take(&mut self.owner_read)
    }

    /// Reads for an owner that does not (the stream face's keeper): control frames are
    /// answered and the timers run, while messages wait for the reader up to the read
    /// high-water mark. `Ready` once closing has started (the caller then drives the close).
    pub(crate) fn poll_keep(&mut self) -> Poll<()> {
        loop {
            if self.closing {
                return Poll::Ready(());
            }
            self.keeping = true;
            let incoming = self.poll_incoming();
            self.keeping = false;
            if incoming.is_pending() && self.closing {
                // A close started on the way (an idle timeout): the caller drives it.
                return Poll::Ready(());
            }
            match ready!(incoming) {
                Some(message) => {
                    self.inbound_bytes += message.len();
                    self.inbound.push_back(message);
                }
                None => return Poll::Ready(()),
            }
        }
    }

    /// What the keeper has read for the reader (queued messages, the one still arriving, and
    /// the bytes not decoded yet) has reached the read high-water mark. The reader makes room
    /// and wakes the keeper; meanwhile the peer is held back.
    #[cold]
    fn read_ahead_full(&self) -> bool {
        self.inbound_bytes + self.decoder.buffered() + self.read_buf.len()
            >= self.config.read_high_water_mark
    }

    /// Whether `closed` has read messages ahead of the reader.
    pub(crate) fn has_read_ahead(&self) -> bool {
        !self.inbound.is_empty()
    }

    /// Why no more messages come, when it is an error: the failure the connection met, or an
    /// unclean outcome (a closing handshake that timed out, `terminate()`).
    pub(crate) fn end_error(&self) -> Option<&WebSocketError> {
        match (&self.failure, &self.outcome) {
            (Some(failure), _) => Some(failure),
            (None, Some(Outcome::Unclean(error))) => Some(error),
            _ => None,
        }
    }

    /// Reads and decodes until a data message arrives, handling control frames on the way.
    /// After our Close, the close timeout ends it (`Ready(None)`) even while the peer keeps
    /// sending.
    fn poll_incoming(&mut self) -> Poll<Option<Message>> {
        loop {
            if self.closing && self.messages_ended() {
                return Poll::Ready(None);
            }
            // An empty buffer holds no frame (a partial frame's header stays in the buffer
            // until its payload is complete): skip straight to reading.
            let decoded = if self.read_buf.is_empty() {
                Ok(None)
            } else {
                self.decoder.decode(&mut self.read_buf)
            };
            match decoded {
                Ok(Some(Incoming::Message(message))) => {
                    self.note_activity();
                    if self.queued() != 0 {
                        // A pong (or a Close reply) queued on the way: send it now.
                        let _ = self.poll_send();
                    }
                    return Poll::Ready(Some(message));
                }
                Ok(Some(Incoming::Ping(payload))) => {
                    self.answer_ping(payload);
                    continue;
                }
                Ok(Some(Incoming::Pong(payload))) => {
                    if !self.live_pings_empty() {
                        self.on_pong(&payload);
                    }
                    continue;
                }
                Ok(Some(Incoming::Close(frame))) => {
                    self.on_close_frame(frame);
                    continue;
                }
                Err(error) => {
                    self.fail_protocol(error);
                    continue;
                }
                Ok(None) => {}
            }
            // Answer pings (and send anything else queued, or a flush that had to wait) before
            // waiting for more input.
            if self.queued() != 0 || self.unflushed {
                let _ = self.poll_send();
            }
            if self.keeping && self.read_ahead_full() {
                // The peer waits for the reader; the timers still run, knowing that the quiet
                // is ours, and so does the close timeout.
                self.held_back();
                if self.closing && self.poll_deadline() || self.poll_timers() {
                    continue;
                }
                return Poll::Pending;
            }
            match self.poll_fill() {
                Poll::Pending if self.closing && self.poll_deadline() => {}
                Poll::Pending if self.poll_timers() => {}
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.eof = true;
                    self.fail(Failure::ConnectionClosed);
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => {
                    self.eof = true;
                    self.shut_down = true;
                    self.fail(Failure::Io(error));
                }
            }
        }
    }

    /// Queues a pong with the ping's payload. While the peer does not read what we send, only
    /// the most recent ping is answered (RFC 6455 5.5.3), so that a ping flood cannot grow the
    /// write buffer.
    fn answer_ping(&mut self, payload: Bytes) {
        if self.close_sent {
            return;
        }
        if self.queued() < self.config.write_high_water_mark {
            self.encoder
                .encode(&Frame::new(OpCode::Pong, payload), &mut self.write_buf);
        } else {
            self.pending_pong = Some(payload);
        }
    }

    fn on_close_frame(&mut self, frame: Option<CloseFrame>) {
        let info = match &frame {
            Some(frame) => CloseInfo {
                close_code: Some(frame.code().as_u16()),
                reason: frame.reason().to_string(),
            },
            None => CloseInfo {
                close_code: Some(CloseCode::NO_STATUS_RECEIVED.as_u16()),
                reason: String::new(),
            },
        };
        self.close_received = Some(info);
        self.closing = true;
        // What is still queued goes out before our reply, but the peer has stopped reading
        // (RFC 6455 5.5.1): the close is not clean, as in the browsers' WebSocketStream.
        self.unsent_at_close = self.data_end > self.written;
        if !self.close_sent {
            // Echo the code and reason (RFC 6455 5.5.1), as pywebsocket and Python
            // `websockets` do; an empty Close gets an empty Close.
            let payload = frame.map(|f| f.to_payload()).unwrap_or_default();
            self.send_close_frame(payload);
        }
        self.start_deadline();
    }

    /// The read buffer was (re)allocated, or reclaimed from its front: either way it starts
    /// its allocation now, so its capacity is the allocation's size. Messages shorter than a
    /// [`MAX_PIN_RATIO`]th of it are copied out rather than keep it all allocated.
    fn read_buf_allocated(&mut self) {
        self.read_alloc = self.read_buf.capacity();
        let copy = self.copy_small || self.read_alloc > SHARED_READ_BUFFER;
        self.decoder.copy_below(if copy {
            self.read_alloc / MAX_PIN_RATIO
        } else {
            0
        });
    }

    /// Reads more bytes into the read buffer.
    fn poll_fill(&mut self) -> Poll<io::Result<usize>> {
        // A read takes whatever fits in the buffer, up to the rest of a large frame (at most
        // 1 MiB) or 32 KiB: never far past the frame being decoded, so that a reader that
        // stops reading holds the peer back (whatever a read takes is gone from the kernel's
        // buffers).
        let len = self.read_buf.len();
        let free = self.read_buf.capacity() - len;
        // Reserving may move what is buffered (to reclaim the front, or into a new
        // allocation): an empty buffer (which holds no partial frame) is grown to the adaptive
        // read size; one holding part of a frame only when it cannot take the rest of that
        // frame or is nearly full.
        let remaining = if len == 0 {
            if self.read_alloc > KEEP_CAPACITY {
                // Give back what a large message left.
                self.read_buf = BytesMut::with_capacity(self.read_size);
                self.read_buf_allocated();
            } else {
                // The common case: every message split off this buffer is gone, and it is
                // reused from its start. Otherwise a message the application keeps still
                // shares it: from now on, small messages are copied out.
                if self.read_alloc != 0
                    && !self.copy_small
                    && !self.read_buf.try_reclaim(self.read_alloc)
                {
                    // (The allocation is the same: only the policy changes.)
                    self.copy_small = true;
                    self.decoder.copy_below(self.read_alloc / MAX_PIN_RATIO);
                }
                if self.read_buf.capacity() < self.read_size {
                    self.read_buf.reserve(self.read_size);
                    self.read_buf_allocated();
                }
            }
            0
        } else {
            let remaining = self.decoder.remaining(len).min(MAX_READ_RESERVE);
            if free < MIN_READ || free < remaining {
                self.read_buf.reserve(remaining.max(self.read_size));
                self.read_buf_allocated();
            }
            remaining
        };
        let mut cx = Context::from_waker(&self.waker);
        let spare = self.read_buf.spare_capacity_mut();
        let take = spare.len().min(remaining.max(MAX_READ_CHUNK));
        let mut read = ReadBuf::uninit(&mut spare[..take]);
        ready!(Pin::new(&mut self.io).poll_read(&mut cx, &mut read))?;
        let filled = read.filled().len();
        if filled != 0 {
            self.note_arrival();
        }
        // SAFETY: `ReadBuf` guarantees that its filled part, the first `filled` bytes of the
        // spare capacity, is initialised.
        unsafe { self.read_buf.set_len(len + filled) };
        if filled == take && take >= self.read_size {
            self.read_size = (self.read_size * 2).min(MAX_READ_CHUNK);
        } else if filled < self.read_size / 4 {
            self.read_size = (self.read_size / 2).max(READ_CHUNK);
        }
        Poll::Ready(Ok(filled))
    }
}
