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
}

fn to_error(error: SendError) -> Error {
    match error {
        SendError::Closing => Error::InvalidState("the WebSocket is closing or closed".into()),
        SendError::Failed(error) => Error::WebSocket(error),
    }
}

impl Writable {
    fn with_connection<T>(
        &self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut crate::connection::Connection) -> Poll<Result<T, SendError>>,
    ) -> Poll<Result<T, Error>> {
        self.shared.hub.register(Slot::Write, cx.waker());
        let mut state = self.shared.lock();
        match &mut state.phase {
            Phase::Connecting => Poll::Pending,
            Phase::Failed(error) => Poll::Ready(Err(Error::WebSocket(error.clone()))),
            Phase::Open(connection) => f(connection).map_err(to_error),
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
        self.with_connection(cx, |c| c.poll_ready())
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        let mut state = self.shared.lock();
        match &mut state.phase {
            Phase::Connecting => Err(Error::InvalidState("the WebSocket is not open".into())),
            Phase::Failed(error) => Err(Error::WebSocket(error.clone())),
            Phase::Open(connection) => connection.send(message).map_err(to_error),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.with_connection(cx, |c| c.poll_flush())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let outcome = ready!(self.with_connection(cx, |c| {
            c.close(&CloseInfo::default());
            c.poll_closed().map(Ok)
        }))?;
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
