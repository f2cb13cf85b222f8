//! Liveness: keepalive pings and their deadline, round-trip times, and the idle and
//! incomplete-message timeouts, all on one timer per connection.
//!
//! The timer is armed lazily. The hot paths only set a flag (a read that brought bytes, a
//! data message sent or received) and never read the clock; the timer looks at the flags when
//! it fires, and counts the quiet from then. A connection with traffic therefore pays a flag
//! store per read and per message, and a wake-up per period.
//!
//! Keepalive: a ping goes out once a whole `interval` has passed with nothing arriving (so
//! between `interval` and twice it after the last arrival; exactly `interval` after the last
//! pong on an idle connection, since a pong's arrival is timed); anything that arrives
//! afterwards proves the peer alive; nothing within `timeout` of the ping fails the connection
//! (`Failure::KeepaliveTimeout`: Close 1011 is tried, then the socket is closed at once). A
//! peer that dies while the connection is idle is detected `interval + timeout` after its
//! last pong; one that dies mid-traffic, up to `interval` later.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Context;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::{Instant, Sleep};

use super::{Connection, Outcome};
use crate::proto::{CloseCode, CloseFrame, ProtocolError};
use crate::{Failure, WebSocketError};

/// Keepalive settings: when to ping a quiet peer, and how long to wait for a sign of life.
///
/// On by default in both faces and the server role, at 20 s and 20 s (Python `websockets`'
/// `ping_interval` and `ping_timeout`): a dead peer, such as one behind a half-open TCP
/// connection, is detected about 40 s after it last sent anything.
///
/// ```
/// use std::time::Duration;
/// use whatwg_websocket::{Keepalive, StreamOptions};
///
/// let options = StreamOptions {
///     keepalive: Some(Keepalive { interval: Duration::from_secs(10), timeout: Duration::from_secs(5) }),
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// A ping goes out when nothing has arrived from the peer for this long.
    pub interval: Duration,
    /// The connection fails when nothing arrives within this long after the ping.
    pub timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(20),
        }
    }
}

/// The timers of one connection (`None`: off).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timeouts {
    pub(crate) keepalive: Option<Keepalive>,
    /// (Server) No data message either way for this long closes the connection (1001).
    pub(crate) idle: Option<Duration>,
    /// (Server) An incomplete message that makes no progress for this long fails the
    /// connection (1008).
    pub(crate) incomplete_message: Option<Duration>,
}

impl Timeouts {
    fn any(&self) -> bool {
        self.keepalive.is_some() || self.idle.is_some() || self.incomplete_message.is_some()
    }
}

/// Pings awaiting their pong at most (for round-trip times): a new ping past this forgets the
/// oldest, whose [`Pong`](crate::Pong) future then fails with `QuotaExceededError`.
pub(crate) const MAX_PINGS_AWAITING: usize = 32;

/// A ping sent, awaiting its pong.
struct PingRecord {
    payload: Bytes,
    sent: Instant,
    waiter: Option<oneshot::Sender<Duration>>,
}

/// How far an incomplete message had come at the last check: payload bytes of data frames
/// decoded so far plus bytes buffered.
type Mark = u64;

/// An incomplete message must grow by at least this much per `incomplete_message_timeout` to
/// count as progressing (34 bytes a second at the default 30 s): a peer trickling a byte at a
/// time cannot keep a partial message alive for ever.
const MIN_PROGRESS: u64 = 1024;

/// The liveness state of one connection.
pub(crate) struct Liveness {
    /// Keepalive, the idle timeout or the incomplete-message timeout is on.
    enabled: bool,
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer has been polled (with the hub's waker) since it was last reset: until it
    /// fires, a look at [`Sleep::is_elapsed`] is all the hot path does.
    registered: bool,
    /// Bytes arrived since the last check.
    heard: bool,
    /// The keepalive interval counts from here: the last check that saw an arrival, the last
    /// pong, or the opening.
    quiet_since: Instant,
    /// The keepalive ping awaiting a sign of life, sent at this time.
    keepalive_sent: Option<Instant>,
    /// Bytes written to the socket when it was sent.
    written_at_ping: u64,
    keepalive_count: u32,
    /// A data message went either way since the last check.
    active: bool,
    /// The idle timeout counts from here: the last check that saw a message, or the opening.
    idle_since: Instant,
    /// An incomplete message, and since when it has made no progress.
    stall: Option<(Mark, Instant)>,
    pings: VecDeque<PingRecord>,
    latency: Option<Duration>,
}

impl Liveness {
    pub(crate) fn new(timeouts: &Timeouts) -> Self {
        let enabled = timeouts.any();
        let now = Instant::now();
        Self {
            enabled,
            timer: None,
            registered: false,
            // Disabled: the flags stay set, so the hot paths never take the slow path.
            heard: !enabled,
            quiet_since: now,
            keepalive_sent: None,
            written_at_ping: 0,
            keepalive_count: 0,
            active: !enabled,
            idle_since: now,
            stall: None,
            pings: VecDeque::new(),
            latency: None,
        }
    }

    /// Forgets every ping awaiting its pong (their futures fail): the connection has ended.
    pub(crate) fn clear(&mut self) {
        self.pings = VecDeque::new();
        self.timer = None;
        self.registered = false;
    }
}

impl Connection {
    /// Bytes arrived from the peer (any frame proves it alive).
    #[inline]
    pub(super) fn note_arrival(&mut self) {
        self.live.heard = true;
    }

    /// A data message was sent or received (the idle timeout counts from the last one).
    #[inline]
    pub(super) fn note_activity(&mut self) {
        self.live.active = true;
    }

    /// Reading waits for the reader (the keeper holds the peer back at the read high-water
    /// mark): the quiet is ours, so neither keepalive nor the incomplete-message timeout may
    /// blame the peer for it, and messages wait, so the connection is not idle.
    pub(super) fn held_back(&mut self) {
        self.live.heard = true;
        self.live.active = true;
        self.live.stall = None;
    }

    /// The read path is about to wait: runs the timers if one is due (or was never armed, or
    /// a message became incomplete). Returns `true` when that changed something the caller
    /// must look at again (a ping queued, the connection failed or closing).
    #[inline]
    pub(super) fn poll_timers(&mut self) -> bool {
        if !self.live.enabled || self.closing {
            return false;
        }
        let waiting = match &self.live.timer {
            Some(timer) => self.live.registered && !timer.is_elapsed(),
            // Nothing was due at the last run.
            None => self.live.registered,
        };
        if waiting && !self.newly_incomplete() {
            return false;
        }
        self.run_timers()
    }

    /// A message is incomplete and its stall is not being watched yet.
    #[inline]
    fn newly_incomplete(&self) -> bool {
        self.config.timeouts.incomplete_message.is_some()
            && self.live.stall.is_none()
            && (!self.read_buf.is_empty() || self.decoder.in_message())
    }

    #[cold]
    #[inline(never)]
    fn run_timers(&mut self) -> bool {
        if tokio::runtime::Handle::try_current().is_err() {
            return false; // No timer outside a runtime: the next poll within one arms it.
        }
        let timeouts = self.config.timeouts;
        let mut acted = false;
        loop {
            let now = Instant::now();
            let mut due: Option<Instant> = None;
            let mut at = |when: Instant| due = Some(due.map_or(when, |d| d.min(when)));
            if let Some(keepalive) = timeouts.keepalive {
                if let Some(sent) = self.live.keepalive_sent {
                    // The peer reading what we send (while our ping waits behind it) is alive.
                    if self.written > self.live.written_at_ping {
                        self.live.heard = true;
                    }
                    if self.live.heard {
                        self.live.keepalive_sent = None;
                    } else if now >= sent + keepalive.timeout {
                        self.keepalive_failed();
                        return true;
                    }
                }
                if self.live.heard && self.live.keepalive_sent.is_none() {
                    self.live.quiet_since = now;
                    self.live.heard = false;
                }
                if self.live.keepalive_sent.is_none()
                    && now >= self.live.quiet_since + keepalive.interval
                {
                    self.release_idle_buffers();
                    self.send_keepalive_ping(now);
                    acted = true;
                }
                match self.live.keepalive_sent {
                    Some(sent) => at(sent + keepalive.timeout),
                    None => at(self.live.quiet_since + keepalive.interval),
                }
            }
            if let Some(idle) = timeouts.idle {
                if self.live.active {
                    self.live.idle_since = now;
                    self.live.active = false;
                }
                if now >= self.live.idle_since + idle {
                    let close = CloseFrame::new(CloseCode::GOING_AWAY, "idle timeout");
                    self.send_close_frame(close.map(|f| f.to_payload()).unwrap_or_default());
                    self.start_deadline();
                    return true;
                }
                at(self.live.idle_since + idle);
            }
            if let Some(limit) = timeouts.incomplete_message {
                let incomplete = !self.read_buf.is_empty() || self.decoder.in_message();
                let mark = self.decoder.data_bytes() + self.read_buf.len() as u64;
                match self.live.stall {
                    _ if !incomplete => self.live.stall = None,
                    Some((seen, since)) if mark < seen + MIN_PROGRESS => {
                        if now >= since + limit {
                            self.fail_protocol(ProtocolError::IncompleteMessageTimeout);
                            return true;
                        }
                        at(since + limit);
                    }
                    _ => {
                        self.live.stall = Some((mark, now));
                        at(now + limit);
                    }
                }
            }
            let Some(due) = due else {
                // Nothing is due until a message becomes incomplete (`newly_incomplete`).
                self.live.timer = None;
                self.live.registered = true;
                return acted;
            };
            if self.arm(due) {
                return acted;
            }
            // Due already: look again.
        }
    }

    /// Sets the timer to `due` and polls it once with the hub's waker; `false` if it has
    /// passed already.
    fn arm(&mut self, due: Instant) -> bool {
        let timer = match &mut self.live.timer {
            Some(timer) => {
                timer.as_mut().reset(due);
                timer
            }
            None => self
                .live
                .timer
                .insert(Box::pin(tokio::time::sleep_until(due))),
        };
        let waker = self.waker.clone();
        let pending = timer
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending();
        self.live.registered = pending;
        pending
    }

    /// A whole keepalive interval passed with nothing arriving: the read and write buffers
    /// are given back while empty (the next read or write allocates them again), so that an
    /// idle connection holds little more than its state.
    fn release_idle_buffers(&mut self) {
        if self.read_buf.is_empty() && self.read_alloc != 0 {
            self.read_buf = bytes::BytesMut::new();
            self.read_alloc = 0;
            self.read_size = super::READ_CHUNK;
        }
        if self.queued() == 0 && self.write_buf.capacity() != 0 {
            self.write_buf = bytes::BytesMut::new();
            self.write_pos = 0;
        }
    }

    fn send_keepalive_ping(&mut self, now: Instant) {
        self.live.keepalive_count = self.live.keepalive_count.wrapping_add(1);
        let payload = self.live.keepalive_count.to_be_bytes();
        // Past the write high-water mark too (one 10-byte frame per interval): a peer that
        // reads slowly still gets it, and reading what we sent counts as a sign of life.
        self.queue_ping(&payload, None);
        self.live.written_at_ping = self.written;
        self.live.keepalive_sent = Some(now);
        self.live.heard = false;
    }

    /// No sign of life within the keepalive timeout: tries to tell the peer (1011, as Python
    /// `websockets` does), then closes the socket at once.
    fn keepalive_failed(&mut self) {
        if !self.close_sent {
            let close = CloseFrame::new(CloseCode::INTERNAL_ERROR, "keepalive ping timeout");
            self.send_close_frame(close.map(|f| f.to_payload()).unwrap_or_default());
        }
        let _ = self.poll_send();
        let error = WebSocketError::from_parts(
            Some(CloseCode::ABNORMAL_CLOSURE.as_u16()),
            String::new(),
            Some(Arc::new(Failure::KeepaliveTimeout)),
        );
        self.failure.get_or_insert(error.clone());
        self.finish(Outcome::Unclean(error));
    }

    /// Remembers a ping just queued, for its round-trip time.
    pub(super) fn record_ping(
        &mut self,
        payload: &[u8],
        waiter: Option<oneshot::Sender<Duration>>,
    ) {
        if self.live.pings.len() == MAX_PINGS_AWAITING {
            self.live.pings.pop_front();
        }
        self.live.pings.push_back(PingRecord {
            payload: Bytes::copy_from_slice(payload),
            sent: Instant::now(),
            waiter,
        });
    }

    /// A pong arrived: the ping with its payload, and every ping before it (a peer may answer
    /// only the latest, RFC 6455 5.5.3), are answered.
    #[cold]
    pub(super) fn on_pong(&mut self, payload: &[u8]) {
        let Some(position) = self
            .live
            .pings
            .iter()
            .position(|ping| ping.payload == payload)
        else {
            return; // Unsolicited: a sign of life, no round trip.
        };
        let now = Instant::now();
        for ping in self.live.pings.drain(..=position) {
            let rtt = now - ping.sent;
            self.live.latency = Some(rtt);
            if let Some(waiter) = ping.waiter {
                let _ = waiter.send(rtt);
            }
        }
        if self.live.keepalive_sent.take().is_some() {
            self.live.quiet_since = now;
            self.live.heard = false;
        }
    }

    /// A [`Pong`](crate::Pong) future awaits its pong: the keeper reads for it, whether the
    /// owner reads or not, so that the round trip is timed when the pong arrives.
    pub(crate) fn awaits_pong(&self) -> bool {
        self.live
            .pings
            .iter()
            .any(|ping| ping.waiter.as_ref().is_some_and(|w| !w.is_closed()))
    }

    /// No ping awaits its pong (a pong then needs no look-up).
    #[inline]
    pub(super) fn live_pings_empty(&self) -> bool {
        self.live.pings.is_empty()
    }

    /// The last round-trip time measured.
    pub(crate) fn latency(&self) -> Option<Duration> {
        self.live.latency
    }
}
