//! Sending: queueing messages and pings under the write high-water mark, writing the queue
//! out, and flushing the socket whenever bytes went to it since its last flush.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

use super::{Connection, KEEP_CAPACITY, Outcome, SendError};
use crate::Failure;
use crate::proto::{Frame, MAX_CONTROL_PAYLOAD, Message, OpCode};

impl Connection {
    /// Waits until the write buffer is below the high-water mark.
    pub(crate) fn poll_ready(&mut self) -> Poll<Result<(), SendError>> {
        self.check_can_send()?;
        if self.queued() >= self.config.write_high_water_mark {
            match self.poll_write_buf() {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(())) => return Poll::Ready(Err(self.send_error())),
                Poll::Pending if self.queued() >= self.config.write_high_water_mark => {
                    return Poll::Pending;
                }
                Poll::Pending => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Whether a message may be queued without waiting: what is queued is below the
    /// high-water mark (closing is not considered: [`send`](Self::send) reports it).
    pub(crate) fn has_room(&self) -> bool {
        self.queued() < self.config.write_high_water_mark
    }

    /// Queues a message (call after [`poll_ready`](Self::poll_ready)).
    pub(crate) fn send(&mut self, message: Message) -> Result<(), SendError> {
        self.check_can_send()?;
        #[cfg_attr(not(feature = "deflate"), allow(unused_mut))]
        let mut frame = match message {
            Message::Text(text) => Frame::new(OpCode::Text, text.into_bytes()),
            Message::Binary(data) => Frame::new(OpCode::Binary, data),
        };
        #[cfg(feature = "deflate")]
        if let Some((deflater, options)) = &mut self.deflater
            && frame.payload.len() >= options.min_message_size
        {
            let compressed = if options.always_compress {
                Some(deflater.compress(&frame.payload))
            } else {
                // A message that does not shrink goes as it is.
                deflater.compress_if_smaller(&frame.payload)
            };
            if let Some(compressed) = compressed {
                frame.payload = compressed;
                frame.rsv = crate::proto::RSV1;
            }
        }
        self.encoder.encode(&frame, &mut self.write_buf);
        self.data_end = self.written + self.queued() as u64;
        self.note_activity();
        Ok(())
    }

    /// Bytes of frames handed to the socket so far, and queued after them.
    pub(crate) fn write_progress(&self) -> (u64, u64) {
        (self.written, self.written + self.queued() as u64)
    }

    /// Bytes encoded and not yet written.
    pub(super) fn queued(&self) -> usize {
        self.write_buf.len() - self.write_pos
    }

    /// Queues a ping; `payload` must be at most 125 bytes. Ignored once closing; refused
    /// (`Full`) while the write high-water mark or more is queued for a peer that does not
    /// read, so that pings cannot grow the write buffer without bound.
    ///
    /// `waiter` gets the round-trip time when the pong comes; it is dropped if the ping is not
    /// sent, the connection ends first, or [`MAX_PINGS_AWAITING`](super::liveness) later pings
    /// await theirs.
    pub(crate) fn ping(
        &mut self,
        payload: &[u8],
        waiter: Option<oneshot::Sender<Duration>>,
    ) -> Result<(), SendError> {
        debug_assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
        if self.is_closing() {
            return Ok(());
        }
        if self.queued() >= self.config.write_high_water_mark {
            let _ = self.poll_send();
            if self.queued() >= self.config.write_high_water_mark {
                return Err(SendError::Full);
            }
        }
        self.queue_ping(payload, waiter);
        Ok(())
    }

    /// Queues a ping whatever is queued (the keepalive's, one per interval), remembering it
    /// for its round trip, and writes what the socket takes.
    pub(super) fn queue_ping(&mut self, payload: &[u8], waiter: Option<oneshot::Sender<Duration>>) {
        let frame = Frame::new(OpCode::Ping, Bytes::copy_from_slice(payload));
        self.encoder.encode(&frame, &mut self.write_buf);
        self.record_ping(payload, waiter);
        let _ = self.poll_send();
    }

    /// Writes everything queued and flushes the socket. Fails once the peer's Close arrived
    /// with data still unsent (that data may never be read), and once the connection ended
    /// uncleanly. Ends within the close timeout once closing has started.
    pub(crate) fn poll_flush(&mut self) -> Poll<Result<(), SendError>> {
        if self.closing {
            return self.poll_flush_closing();
        }
        match ready!(self.poll_send()) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(()) => Poll::Ready(Err(self.send_error())),
        }
    }

    #[inline(never)]
    fn poll_flush_closing(&mut self) -> Poll<Result<(), SendError>> {
        if self.unsent_at_close {
            return Poll::Ready(Err(SendError::Closing));
        }
        if let Some(Outcome::Unclean(error)) = &self.outcome {
            return Poll::Ready(Err(SendError::Failed(error.clone())));
        }
        match self.poll_send() {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(())) => Poll::Ready(Err(self.send_error())),
            Poll::Pending if self.poll_deadline() => self.poll_flush_closing(),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes everything queued, then flushes the socket if anything went to it since its
    /// last flush (a TLS stream may hold what it took until then). `Err(())` when the socket
    /// broke (the failure is recorded).
    pub(super) fn poll_send(&mut self) -> Poll<Result<(), ()>> {
        ready!(self.poll_write_buf())?;
        if !self.unflushed {
            return Poll::Ready(Ok(()));
        }
        if self.shut_down {
            self.unflushed = false;
            return Poll::Ready(Err(()));
        }
        let mut cx = Context::from_waker(&self.waker);
        match ready!(Pin::new(&mut self.io).poll_flush(&mut cx)) {
            Ok(()) => {
                self.unflushed = false;
                Poll::Ready(Ok(()))
            }
            Err(error) => {
                self.shut_down = true;
                self.fail(Failure::Io(error));
                Poll::Ready(Err(()))
            }
        }
    }

    fn check_can_send(&self) -> Result<(), SendError> {
        match &self.failure {
            Some(failure) => Err(SendError::Failed(failure.clone())),
            None if self.close_sent || self.close_received.is_some() => Err(SendError::Closing),
            None => Ok(()),
        }
    }

    pub(super) fn send_error(&self) -> SendError {
        self.failure
            .clone()
            .map_or(SendError::Closing, SendError::Failed)
    }

    /// Writes the write buffer out. `Err(())` when the socket broke (the failure is recorded).
    #[inline]
    pub(super) fn poll_write_buf(&mut self) -> Poll<Result<(), ()>> {
        if self.queued() == 0 {
            // The common case on the read path: nothing queued, and no call made.
            return Poll::Ready(Ok(()));
        }
        self.poll_write_queued()
    }

    #[inline(never)]
    fn poll_write_queued(&mut self) -> Poll<Result<(), ()>> {
        while self.queued() != 0 {
            if self.shut_down {
                // Nothing more can be sent on this socket.
                self.write_buf.clear();
                self.write_pos = 0;
                return Poll::Ready(Err(()));
            }
            let mut cx = Context::from_waker(&self.waker);
            let unwritten = &self.write_buf[self.write_pos..];
            match ready!(Pin::new(&mut self.io).poll_write(&mut cx, unwritten)) {
                Ok(0) => {
                    self.shut_down = true;
                    self.fail(Failure::ConnectionClosed);
                }
                Ok(n) => {
                    self.write_pos += n;
                    self.written += n as u64;
                    self.unflushed = true;
                    if self.write_pos == self.write_buf.len() {
                        self.write_buf.clear();
                        self.write_pos = 0;
                    } else if self.write_pos >= KEEP_CAPACITY {
                        // A slow peer: drop the written part, so that the buffer stays bounded
                        // by the high-water mark while new frames keep arriving behind it.
                        self.write_buf.advance(self.write_pos);
                        self.write_pos = 0;
                    }
                    if self.queued() == 0
                        && let Some(payload) = self.pending_pong.take()
                        && !self.close_sent
                    {
                        self.encoder
                            .encode(&Frame::new(OpCode::Pong, payload), &mut self.write_buf);
                    }
                }
                Err(error) => {
                    self.shut_down = true;
                    self.fail(Failure::Io(error));
                }
            }
        }
        if self.write_buf.capacity() > KEEP_CAPACITY {
            self.write_buf = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}
