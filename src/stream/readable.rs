//! The readable side of a `WebSocketStream`: a `futures::Stream` of messages.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::connection::hub::Slot;
use crate::connection::shared::{Phase, Shared};
use crate::{CloseInfo, Message, WebSocketError};

/// The messages the peer sends, in order. Ends after a clean close; yields the
/// `WebSocketError` once if the connection fails.
///
/// While it is not polled, the connection reads for it only up to the read high-water mark
/// (answering pings on the way): past that the socket is not read (backpressure), and the
/// peer's data waits in the kernel and then on the peer.
pub struct Readable {
    pub(crate) shared: Arc<Shared>,
    pub(crate) done: bool,
}

impl Stream for Readable {
    type Item = Result<Message, WebSocketError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let shared = &this.shared;
        shared.hub.register(Slot::Read, cx.waker());
        let mut state = shared.lock();
        let item = match &mut state.phase {
            Phase::Connecting => return Poll::Pending,
            Phase::Failed(error) => Some(Err(error.clone())),
            Phase::Open(connection) => {
                let had_read_ahead = connection.has_read_ahead();
                match connection.poll_next_message() {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Some(message)) => {
                        if had_read_ahead {
                            // `closed` or the closer may be waiting for the reader to make room.
                            shared.hub.wake_drivers();
                        }
                        return Poll::Ready(Some(Ok(message)));
                    }
                    Poll::Ready(None) => connection.end_error().cloned().map(Err),
                }
            }
        };
        drop(state);
        this.done = true;
        // The closing has started (or is over): it ends even if nobody awaits `closed`, which
        // is woken to finish it.
        shared.closing_started();
        shared.hub.wake_drivers();
        Poll::Ready(item)
    }
}

impl Readable {
    /// The WHATWG `readable.cancel(reason)`: closes the connection with the code and reason of
    /// `reason` when it is a `WebSocketError` with a code, with an empty Close otherwise.
    pub fn cancel(mut self, reason: Option<&WebSocketError>) {
        self.done = true;
        self.shared.close(&close_info_of(reason));
    }
}

/// The Close a stream's cancel or abort sends for `reason`.
pub(crate) fn close_info_of(reason: Option<&WebSocketError>) -> CloseInfo {
    match reason {
        Some(error) if error.close_code().is_some() => CloseInfo {
            close_code: error.close_code(),
            reason: error.reason().to_owned(),
        },
        _ => CloseInfo::default(),
    }
}

impl std::fmt::Debug for Readable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readable")
            .field("done", &self.done)
            .finish()
    }
}
