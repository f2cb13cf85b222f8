//! The end of a connection: the closing handshake, its timeout, failing, terminating, and
//! giving everything back once the outcome is known.
//!
//! The close timeout is absolute: from the moment closing starts (our Close queued, the
//! peer's Close received, or a failure), the connection reaches its outcome within
//! `close_timeout`, whichever of its polls runs (`poll_next_message`, `poll_flush` or
//! `poll_closed` all look at the deadline). Once the outcome is set, the socket is dropped
//! and the buffers and codec state are released; only messages already read for the reader
//! stay.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;

use super::{Connection, Outcome};
use crate::proto::{CloseCode, CloseFrame, Frame, MessageDecoder, OpCode, ProtocolError, Role};
use crate::{CloseInfo, Failure, WebSocketError};

/// Messages an abandoned connection discards per poll before it lets other tasks run.
const DISCARDED_PER_POLL: usize = 64;

impl Connection {
    /// Starts the closing handshake with `info` (already validated), unless it has started.
    pub(crate) fn close(&mut self, info: &CloseInfo) {
        if self.is_closing() {
            return;
        }
        let payload = match info.close_code.and_then(|c| CloseCode::try_from(c).ok()) {
            Some(code) => CloseFrame::new(code, info.reason.as_str())
                .map(|f| f.to_payload())
                .unwrap_or_default(),
            None => Bytes::new(),
        };
        self.send_close_frame(payload);
        self.start_deadline();
    }

    /// Every handle is gone: close with 1001 unless closing already, send what the socket
    /// takes now, and discard what arrives from now on (nobody will read it). Whoever drives
    /// the connection to its outcome afterwards starts the close timeout: this may run outside
    /// the runtime, when the last handle is dropped.
    pub(crate) fn abandon(&mut self) {
        self.abandoned = true;
        self.inbound.clear();
        self.inbound_bytes = 0;
        if !self.is_closing() {
            let close = CloseFrame::new(CloseCode::GOING_AWAY, "").map(|f| f.to_payload());
            self.send_close_frame(close.unwrap_or_default());
        }
        let _ = self.poll_send();
    }

    /// Closes at once, without the closing handshake (Node `ws`'s `terminate()`): the outcome
    /// is unclean (1006) and the socket is dropped.
    pub(crate) fn terminate(&mut self) {
        if self.outcome.is_none() {
            let error = WebSocketError::from_parts(
                Some(CloseCode::ABNORMAL_CLOSURE.as_u16()),
                String::new(),
                Some(Arc::new(Failure::Terminated)),
            );
            self.finish(Outcome::Unclean(error));
        }
    }

    pub(super) fn send_close_frame(&mut self, payload: Bytes) {
        self.encoder
            .encode(&Frame::new(OpCode::Close, payload), &mut self.write_buf);
        self.close_sent = true;
        self.closing = true;
    }

    /// The read path once closing has started: whether no more messages come (the peer's
    /// Close arrived, the connection failed or ended, or the close timeout passed after our
    /// Close); then what is queued (a reply to a Close) goes out without waiting for `closed`.
    #[inline(never)]
    pub(super) fn messages_ended(&mut self) -> bool {
        if self.close_received.is_none() && self.failure.is_none() && self.outcome.is_none() {
            // Only our Close: reading goes on until the close timeout, which starts here if
            // the close began outside the runtime, and is checked by the clock, since a peer
            // that keeps sending may never let reading wait (where `poll_deadline` would).
            self.start_deadline();
            if !self.deadline_passed() {
                return false;
            }
            self.time_out();
        }
        let _ = self.poll_send();
        true
    }

    /// Starts the close timeout. Outside a Tokio runtime (a handle dropped after the runtime,
    /// another executor) there is no timer to start; the next poll within one starts it.
    pub(super) fn start_deadline(&mut self) {
        if self.deadline.is_none() && tokio::runtime::Handle::try_current().is_ok() {
            self.deadline = Some(Box::pin(tokio::time::sleep(self.config.close_timeout)));
        }
    }

    /// Whether the close timeout has passed, by the clock (for loops that never wait, such as
    /// reading from a peer that keeps sending after our Close).
    pub(super) fn deadline_passed(&self) -> bool {
        self.deadline
            .as_ref()
            .is_some_and(|deadline| tokio::time::Instant::now() >= deadline.deadline())
    }

    /// Polls the close timeout once closing has started; when it has passed, sets the outcome
    /// (see [`time_out`](Self::time_out)) and returns `true`.
    pub(super) fn poll_deadline(&mut self) -> bool {
        if self.outcome.is_some() || !self.is_closing() {
            return false;
        }
        self.start_deadline();
        let Some(deadline) = &mut self.deadline else {
            return false;
        };
        let waker = self.waker.clone();
        if deadline
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
        {
            return false;
        }
        self.time_out();
        true
    }

    /// Fails the connection because the peer broke the protocol: sends the mapped close code.
    pub(super) fn fail_protocol(&mut self, error: ProtocolError) {
        if !self.close_sent {
            let code = CloseCode::from(&error);
            let payload = CloseFrame::new(code, "")
                .map(|f| f.to_payload())
                .unwrap_or_default();
            self.send_close_frame(payload);
        }
        self.fail(Failure::Protocol(error));
    }

    /// Records the first failure; the connection is then wound down. Once the peer's Close has
    /// arrived, a broken socket no longer fails the connection: the peer was done with it.
    pub(super) fn fail(&mut self, failure: Failure) {
        if self.close_received.is_some() {
            self.eof = true;
            self.shut_down = true;
            return;
        }
        if self.failure.is_none() && self.outcome.is_none() {
            self.closing = true;
            let code = Some(CloseCode::ABNORMAL_CLOSURE.as_u16());
            self.failure = Some(WebSocketError::from_parts(
                code,
                String::new(),
                Some(Arc::new(failure)),
            ));
            // No more messages will be read: a partly received (or inflated) one goes now.
            self.decoder = MessageDecoder::new(self.config.role, self.config.limits);
            self.start_deadline();
        }
    }

    /// Drives the connection to its end once closing has started (or it failed), reading
    /// messages into the inbound queue (up to the high-water mark) while the Close is awaited.
    /// Ends with the outcome within the close timeout.
    pub(crate) fn poll_closed(&mut self) -> Poll<Outcome> {
        self.owner_read = true;
        if let Poll::Ready(outcome) = self.poll_progress() {
            return Poll::Ready(outcome);
        }
        if self.poll_deadline() {
            return self.poll_progress();
        }
        Poll::Pending
    }

    fn poll_progress(&mut self) -> Poll<Outcome> {
        // Messages discarded in this poll (an abandoned connection has no reader to wait for).
        let mut discarded = 0;
        loop {
            if let Some(outcome) = &self.outcome {
                return Poll::Ready(outcome.clone());
            }
            if let Some(failure) = &self.failure {
                let failure = failure.clone();
                // Send our Close if the socket still works, then close it.
                let _ = ready!(self.poll_send());
                ready!(self.poll_shutdown());
                self.finish(Outcome::Unclean(failure));
                continue;
            }
            // Writing does not hold up reading: the peer's Close may arrive while a large
            // message is still going out.
            let sent = self.poll_send();
            if let Poll::Ready(Err(())) = sent
                && self.failure.is_some()
            {
                continue;
            }
            if self.close_received.is_none() {
                if !self.abandoned && self.inbound_bytes >= self.config.read_high_water_mark {
                    return Poll::Pending; // The reader makes room, and wakes us.
                }
                let Some(message) = ready!(self.poll_incoming()) else {
                    continue;
                };
                if !self.abandoned {
                    self.inbound_bytes += message.len();
                    self.inbound.push_back(message);
                } else {
                    discarded += 1;
                    if discarded == DISCARDED_PER_POLL {
                        // A socket that is always readable must not hold the task's thread.
                        self.waker.wake_by_ref();
                        return Poll::Pending;
                    }
                }
                continue;
            }
            if sent.is_pending() {
                return Poll::Pending; // Our Close goes out first.
            }
            // Both Close frames are exchanged. The server closes TCP first (RFC 6455 7.1.1);
            // the client waits for that, up to the deadline.
            if self.config.role == Role::Client {
                if self.end_after_close {
                    self.end_stream();
                } else {
                    ready!(self.poll_eof());
                }
            }
            ready!(self.poll_shutdown());
            if let Some(info) = self.close_received.clone() {
                let outcome = self.clean(info);
                self.finish(outcome);
            }
        }
    }

    /// The outcome of a completed closing handshake: clean, unless data was left unsent.
    fn clean(&self, info: CloseInfo) -> Outcome {
        if self.unsent_at_close {
            Outcome::Unclean(WebSocketError::from_parts(
                info.close_code,
                info.reason,
                Some(Arc::new(Failure::UnsentData)),
            ))
        } else {
            Outcome::Clean(info)
        }
    }

    /// The close timeout passed: clean if the handshake completed (we close TCP ourselves),
    /// unclean otherwise.
    pub(super) fn time_out(&mut self) {
        let outcome = match (&self.failure, &self.close_received) {
            (Some(failure), _) => Outcome::Unclean(failure.clone()),
            (None, Some(info)) if self.close_sent => self.clean(info.clone()),
            _ => Outcome::Unclean(WebSocketError::from_parts(
                Some(CloseCode::ABNORMAL_CLOSURE.as_u16()),
                String::new(),
                Some(Arc::new(Failure::Timeout("closing handshake"))),
            )),
        };
        // Best effort: the socket is dropped right after.
        let _ = self.poll_shutdown();
        self.finish(outcome);
    }

    /// Sets the outcome and gives back what the connection holds: the socket is dropped (which
    /// closes it), and the buffers and the codec state (a partly inflated message, the
    /// compressor's window) are freed. Messages read ahead for the reader stay.
    pub(super) fn finish(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.closing = true;
        // Dropping the socket and the timer drops the wakers they hold without waking them:
        // every party learns of the outcome here.
        self.waker.wake_by_ref();
        self.io = Box::new(tokio::io::empty());
        self.eof = true;
        self.shut_down = true;
        self.unflushed = false;
        self.read_buf = BytesMut::new();
        self.read_alloc = 0;
        self.write_buf = BytesMut::new();
        self.write_pos = 0;
        self.pending_pong = None;
        self.decoder = MessageDecoder::new(self.config.role, self.config.limits);
        #[cfg(feature = "deflate")]
        {
            self.deflater = None;
        }
        self.deadline = None;
        self.live.clear();
    }

    /// The outcome, once known.
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Ends a client's HTTP/2 stream once the closing handshake is done. There is no TIME_WAIT
    /// to spare the server, so the client does not wait for it: the stream ends with
    /// END_STREAM if the server has ended its side already, and is reset (CANCEL) otherwise,
    /// so that it stops counting against the connection's concurrent streams at once. (Some
    /// servers, such as hypercorn 0.18, never end their side, and drop the whole connection
    /// when an END_STREAM comes for a stream they are done with.)
    fn end_stream(&mut self) {
        let _ = self.poll_eof();
        if !self.eof {
            // Dropping the stream resets it.
            self.io = Box::new(tokio::io::empty());
            self.eof = true;
            self.shut_down = true;
        }
    }

    /// Reads and discards until the peer closes the TCP connection.
    fn poll_eof(&mut self) -> Poll<()> {
        while !self.eof {
            self.read_buf.clear();
            match ready!(self.poll_fill()) {
                Ok(0) | Err(_) => self.eof = true,
                Ok(_) => {}
            }
        }
        Poll::Ready(())
    }

    pub(super) fn poll_shutdown(&mut self) -> Poll<()> {
        if !self.shut_down {
            let mut cx = Context::from_waker(&self.waker);
            let _ = ready!(Pin::new(&mut self.io).poll_shutdown(&mut cx));
            self.shut_down = true;
        }
        Poll::Ready(())
    }
}
