//! The writable side of a `WebSocketStream`: a `futures::Sink` of messages.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_sink::Sink;

use crate::connection::hub::Slot;
use crate::connection::shared::{Phase, Shared};
use crate::connection::{Outcome, SendError};
use crate::{CloseInfo, Error, Message, WebSocketError};

/// Sends messages to the peer. `send` resolves once the message is buffered; it waits while
/// more than the write high-water mark is queued for a peer that does not read. `close`
/// starts the closing handshake (an empty Close) and resolves when it completes.
///
/// After the close has started, sending fails with `InvalidStateError`; after a failure, with
/// the `WebSocketError`.
pub struct Writable {
    pub(crate) shared: Arc<Shared>,
    /// This writable's last send or flush left the write buffer below the high-water mark, so
    /// `poll_ready` need not look (only this writable queues messages; what else is queued,
    /// pongs and the Close, is bounded). A connection that started closing since is reported
    /// by `start_send`, which always looks.
    pub(crate) room: bool,
}

pub(crate) fn to_error(error: SendError) -> Error {
    match error {
        SendError::Closing => Error::InvalidState("the WebSocket is closing or closed".into()),
        SendError::Failed(error) => Error::WebSocket(error),
        SendError::Full => Error::QuotaExceeded(
            "the write buffer is at its high-water mark; the peer is not reading".into(),
        ),
    }
}

impl Writable {
    /// Runs `f` on the connection. The task's waker is registered only when `f` cannot finish
    /// (a full socket, a closing handshake): then `f` runs once more, so that a wake-up between
    /// the first try and the registration is not lost. Sends that finish at once, the common
    /// case, skip the registration.
    fn with_connection<T>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&mut crate::connection::Connection) -> Poll<Result<T, SendError>>,
    ) -> Poll<Result<T, Error>> {
        if let Poll::Ready(result) = self.try_connection(&mut f) {
            return Poll::Ready(result);
        }
        self.shared.hub.register(Slot::Write, cx.waker());
        self.try_connection(&mut f)
    }

    fn try_connection<T>(
        &self,
        f: &mut impl FnMut(&mut crate::connection::Connection) -> Poll<Result<T, SendError>>,
    ) -> Poll<Result<T, Error>> {
        let mut state = self.shared.lock();
        match &mut state.phase {
            Phase::Connecting => Poll::Pending,
            Phase::Failed(error) => Poll::Ready(Err(Error::WebSocket(error.clone()))),
            Phase::Open(connection) => {
                let result = f(connection);
                if let Poll::Ready(Err(_)) = &result {
                    drop(state);
                    // The connection is closing or failed: make sure the closing ends.
                    self.shared.closing_started();
                }
                result.map_err(to_error)
            }
        }
    }
}

impl Writable {
    /// The WHATWG `writable.abort(reason)`: closes the connection with the code and reason of
    /// `reason` when it is a `WebSocketError` with a code, with an empty Close otherwise.
    pub fn abort(self, reason: Option<&WebSocketError>) {
        self.shared.close(&super::readable::close_info_of(reason));
    }
}

impl Sink<Message> for Writable {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.room {
            return Poll::Ready(Ok(()));
        }
        let this = self.get_mut();
        let ready = ready!(this.with_connection(cx, |c| c.poll_ready()));
        this.room = ready.is_ok();
        Poll::Ready(ready)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        let this = self.get_mut();
        let mut state = this.shared.lock();
        this.room = false;
        match &mut state.phase {
            Phase::Connecting => Err(Error::InvalidState("the WebSocket is not open".into())),
            Phase::Failed(error) => Err(Error::WebSocket(error.clone())),
            Phase::Open(connection) => {
                if let Err(error) = connection.send(message) {
                    drop(state);
                    this.shared.closing_started();
                    return Err(to_error(error));
                }
                this.room = connection.has_room();
                Ok(())
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let this = self.get_mut();
        let flushed = ready!(this.with_connection(cx, |c| c.poll_flush()));
        // Everything is written: there is room, unless the flush failed.
        this.room = flushed.is_ok();
        Poll::Ready(flushed)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let closing = self.with_connection(cx, |c| {
            c.close(&CloseInfo::default());
            c.poll_closed().map(Ok)
        });
        let Poll::Ready(outcome) = closing else {
            // This future may be dropped before the end: the closing ends anyway.
            self.shared.closing_started();
            return Poll::Pending;
        };
        let outcome = outcome?;
        Poll::Ready(match outcome {
            Outcome::Clean(_) => Ok(()),
            Outcome::Unclean(error) => Err(Error::WebSocket(error)),
        })
    }
}

impl std::fmt::Debug for Writable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writable").finish_non_exhaustive()
    }
}
