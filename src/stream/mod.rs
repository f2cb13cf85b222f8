//! `WebSocketStream`: the WHATWG stream-based WebSocket.

mod pong;
mod readable;
mod writable;

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::HeaderMap;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use crate::connection::shared::DEFAULT_READ_AHEAD_AFTER;
use crate::connection::shared::{Driver, Phase, Shared};
pub use pong::Pong;
pub use readable::Readable;
pub use writable::Writable;

use crate::close_info::validate_close;
use crate::connection::hub::Slot;
use crate::connection::{
    Config, DEFAULT_CLOSE_TIMEOUT, Keepalive, Outcome, Timeouts, default_deflate,
};
use crate::dispatcher::{Agent, Dispatcher, Upgraded};
use crate::handshake::url::{parse_url, validate_protocols};
use crate::handshake::{HandshakeRequest, Negotiated};
use crate::proto::deflate::DeflateOptions;
use crate::proto::{Limits, MAX_CONTROL_PAYLOAD, Role};
use crate::{CloseInfo, Error, Failure, WebSocketError};

/// The default high-water marks of the readable and the writable: 64 KiB each.
pub const DEFAULT_HIGH_WATER_MARK: usize = 64 * 1024;

/// Options of [`WebSocketStream::new`] (the WHATWG `WebSocketStreamOptions`, and more).
#[derive(Clone)]
pub struct StreamOptions {
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// The abort signal: cancelling it before the connection opens fails it (`AbortError`).
    pub signal: Option<CancellationToken>,
    /// Extra request headers (undici's `headers`).
    pub headers: HeaderMap,
    /// How to connect; `None` is a new default [`Agent`].
    pub dispatcher: Option<Arc<dyn Dispatcher>>,
    /// Limits on incoming messages.
    pub limits: Limits,
    /// How long a close may take, from its start to the socket closed, whatever the peer does
    /// and whoever polls (default 5 s).
    pub close_timeout: Duration,
    /// Bytes of received messages `closed` may read ahead of the reader (default 64 KiB).
    pub read_high_water_mark: usize,
    /// Bytes of queued frames above which writes wait (default 64 KiB).
    pub write_high_water_mark: usize,
    /// permessage-deflate to offer (on by default with the `deflate` feature; ignored
    /// without it); `None` offers no compression.
    pub deflate: Option<DeflateOptions>,
    /// Pings a quiet peer and fails the connection when nothing comes back (default 20 s and
    /// 20 s, see [`Keepalive`]); `None` turns it off.
    pub keepalive: Option<Keepalive>,
    /// How long the owner may go without reading (the readable or `closed`) before the
    /// connection reads for it: pings answered, keepalive run, messages kept for the reader up
    /// to `read_high_water_mark` (default 1 s, [`DEFAULT_READ_AHEAD_AFTER`]).
    pub read_ahead_after: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            signal: None,
            headers: HeaderMap::new(),
            dispatcher: None,
            limits: Limits::default(),
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
            read_high_water_mark: DEFAULT_HIGH_WATER_MARK,
            write_high_water_mark: DEFAULT_HIGH_WATER_MARK,
            deflate: default_deflate(),
            keepalive: Some(Keepalive::default()),
            read_ahead_after: DEFAULT_READ_AHEAD_AFTER,
        }
    }
}

impl std::fmt::Debug for StreamOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamOptions")
            .field("protocols", &self.protocols)
            .field("limits", &self.limits)
            .field("close_timeout", &self.close_timeout)
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}

/// What `opened` resolves with.
#[derive(Debug)]
pub struct Opened {
    /// The messages from the peer.
    pub readable: Readable,
    /// The messages to the peer.
    pub writable: Writable,
    /// The negotiated subprotocol, or `""`.
    pub protocol: String,
    /// The negotiated extensions, or `""`.
    pub extensions: String,
}

/// A WebSocket with the WHATWG `WebSocketStream` interface: `opened`, `closed`, `close`, and a
/// readable and a writable with backpressure.
///
/// `new` must be called within a Tokio runtime: the opening handshake runs in a task of its
/// own. Everything after it is driven by whoever polls the readable, the writable or `closed`,
/// in the caller's task (no wake-up of another task per message). A keeper task per
/// connection steps in when nobody does: when the owner has not read for a second, it reads
/// for it (pings answered, keepalive run, messages kept for the reader up to the read
/// high-water mark); once a close starts (`close`, `cancel`, `abort`, the peer's Close, a
/// failure, a keepalive timeout, or the last handle dropped), it finishes the closing, so that
/// it ends within `close_timeout` whoever polls, or nobody, and the socket is closed.
///
/// ```no_run
/// use futures_util::{SinkExt, StreamExt};
/// use whatwg_websocket::{CloseInfo, Message, StreamOptions, WebSocketStream};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let ws = WebSocketStream::new("wss://echo.example/", StreamOptions::default())?;
/// let mut opened = ws.opened().await?;
/// opened.writable.send(Message::text("hello")).await?;
/// while let Some(message) = opened.readable.next().await {
///     println!("{:?}", message?);
///     ws.close(CloseInfo::default())?; // the readable ends once the peer's Close arrives
/// }
/// println!("{:?}", ws.closed().await);
/// # Ok(()) }
/// ```
pub struct WebSocketStream {
    shared: Arc<Shared>,
    url: Url,
}

impl WebSocketStream {
    /// Starts connecting to `url` (`ws`, `wss`, `http` or `https`).
    ///
    /// Fails at once with `SyntaxError` for a bad URL or protocol list; network failures come
    /// later, as a rejected `opened` and `closed`.
    pub fn new(url: &str, options: StreamOptions) -> Result<Self, Error> {
        let url = parse_url(url)?;
        validate_protocols(&options.protocols)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidState("WebSocketStream::new must be called within a Tokio runtime".into())
        })?;
        let config = Config {
            role: Role::Client,
            limits: options.limits,
            close_timeout: options.close_timeout,
            read_high_water_mark: options.read_high_water_mark,
            write_high_water_mark: options.write_high_water_mark,
            deflate: options.deflate,
            timeouts: Timeouts {
                keepalive: options.keepalive,
                ..Timeouts::default()
            },
            read_ahead_after: options.read_ahead_after,
        };
        let abort = options
            .signal
            .as_ref()
            .map(CancellationToken::child_token)
            .unwrap_or_default();
        let config_offer = config.extensions_offer();
        let shared = Shared::new(config, abort.clone(), Driver::Callers);
        if abort.is_cancelled() {
            shared.fail_opening(Failure::Aborted);
            return Ok(Self { shared, url });
        }
        let request = HandshakeRequest {
            url: url.clone(),
            protocols: options.protocols,
            extensions: config_offer,
            headers: options.headers,
        };
        let dispatcher = options.dispatcher.unwrap_or_else(|| Arc::new(Agent::new()));
        let task_shared = shared.clone();
        runtime.spawn(async move {
            tokio::select! {
                biased;
                () = abort.cancelled() => task_shared.fail_opening(Failure::Aborted),
                result = dispatcher.dispatch(request) => match result {
                    Ok(upgraded) => task_shared.open(upgraded),
                    Err(failure) => task_shared.fail_opening(failure),
                },
            }
        });
        Ok(Self { shared, url })
    }

    /// A stream over an already upgraded connection, as the server role or a custom
    /// dispatcher's caller has it.
    pub(crate) fn from_upgraded(upgraded: Upgraded, url: Url, config: Config) -> Self {
        let shared = Shared::new(config, CancellationToken::new(), Driver::Callers);
        shared.open(upgraded);
        Self { shared, url }
    }

    /// The URL, after the standard's parsing (scheme `ws` or `wss`).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Resolves when the connection is open, with the readable, the writable and what was
    /// negotiated; rejects with a `WebSocketError` (1006) if the opening handshake fails, is
    /// aborted, or `close()` is called during it. Each call returns handles to the same
    /// connection.
    pub async fn opened(&self) -> Result<Opened, WebSocketError> {
        poll_fn(|cx| {
            self.shared.hub.register(Slot::Opened, cx.waker());
            let state = self.shared.lock();
            match &state.phase {
                Phase::Connecting => Poll::Pending,
                Phase::Failed(error) => Poll::Ready(Err(error.clone())),
                Phase::Open(_) => {
                    let Negotiated {
                        protocol,
                        extensions,
                    } = state.negotiated.clone();
                    Poll::Ready(Ok(Opened {
                        readable: Readable {
                            shared: self.shared.clone(),
                            done: false,
                        },
                        writable: Writable {
                            shared: self.shared.clone(),
                            room: false,
                        },
                        protocol,
                        extensions,
                    }))
                }
            }
        })
        .await
    }

    /// Resolves with the peer's close code (1005 when its Close had none) and reason once the
    /// closing handshake completes cleanly; rejects with a `WebSocketError` (1006) otherwise.
    ///
    /// While awaited it drives the connection: it reads ahead of the readable up to the read
    /// high-water mark, and runs the closing handshake with its timeout. It need not be
    /// awaited for the closing to end: once it has started (`close`, the peer's Close, a
    /// failure), the connection is closed within the close timeout whoever polls, or nobody.
    pub async fn closed(&self) -> Result<CloseInfo, WebSocketError> {
        poll_fn(|cx| {
            self.shared.hub.register(Slot::Lifecycle, cx.waker());
            let mut state = self.shared.lock();
            match &mut state.phase {
                Phase::Connecting => Poll::Pending,
                Phase::Failed(error) => Poll::Ready(Err(error.clone())),
                Phase::Open(connection) => match connection.poll_closed() {
                    Poll::Ready(Outcome::Clean(info)) => Poll::Ready(Ok(info)),
                    Poll::Ready(Outcome::Unclean(error)) => Poll::Ready(Err(error)),
                    Poll::Pending => {
                        if connection.is_closing() {
                            drop(state);
                            // This future may be dropped before the end.
                            self.shared.closing_started();
                        }
                        Poll::Pending
                    }
                },
            }
        })
        .await
    }

    /// Starts the closing handshake with `info`: the code must be 1000 or 3000-4999
    /// (`InvalidAccessError`), the reason at most 123 UTF-8 bytes (`SyntaxError`). During the
    /// opening handshake it fails the connection instead. Does nothing once closing.
    pub fn close(&self, info: CloseInfo) -> Result<(), Error> {
        let close_code = validate_close(info.close_code, &info.reason)?;
        self.shared.close(&CloseInfo {
            close_code,
            reason: info.reason,
        });
        Ok(())
    }

    /// Sends a ping with `payload` (at most 125 bytes, else `TypeError`), and returns a
    /// [`Pong`] future of its round-trip time (which fails unless the connection is open).
    /// `QuotaExceededError` while the write high-water mark or more is queued for a peer that
    /// does not read: pings cannot grow the write buffer without bound.
    pub fn ping(&self, payload: &[u8]) -> Result<Pong, Error> {
        let (waiter, answer) = tokio::sync::oneshot::channel();
        ping_connection(&self.shared, payload, Some(waiter))?;
        // The keeper reads the pong if the owner does not.
        self.shared.hub.wake_slot(Slot::Keeper);
        Ok(Pong {
            answer: Ok(answer),
            shared: Arc::downgrade(&self.shared),
        })
    }

    /// The last round-trip time measured, by [`ping`](Self::ping) or by the keepalive's
    /// pings; `None` before the first pong.
    pub fn latency(&self) -> Option<Duration> {
        connection_latency(&self.shared)
    }
}

/// The last round-trip time an open connection measured (both faces' `latency`).
pub(crate) fn connection_latency(shared: &Shared) -> Option<Duration> {
    match &shared.lock().phase {
        Phase::Open(connection) => connection.latency(),
        _ => None,
    }
}

impl std::fmt::Debug for WebSocketStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketStream")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// Queues a ping on an open connection (both faces' `ping`).
pub(crate) fn ping_connection(
    shared: &Shared,
    payload: &[u8],
    waiter: Option<tokio::sync::oneshot::Sender<Duration>>,
) -> Result<(), Error> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(Error::Type(format!(
            "ping payload of {} bytes exceeds 125",
            payload.len()
        )));
    }
    let mut state = shared.lock();
    let Phase::Open(connection) = &mut state.phase else {
        return Ok(());
    };
    let queued = connection.ping(payload, waiter);
    let closing = connection.is_closing();
    drop(state);
    if closing {
        shared.closing_started();
    }
    queued.map_err(writable::to_error)
}
