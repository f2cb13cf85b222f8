//! The task behind a `WebSocket`: it runs the opening handshake, drives the connection, and
//! fires the events in the standard's order (open, message*, [error], close), each from the
//! runtime and never from inside a method call.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio_util::sync::CancellationToken;

use super::core::{Core, ReadyState, as_listener};
use super::event::{BinaryType, CloseEventInit, Event, MessageData};
use crate::connection::Outcome;
use crate::connection::hub::Slot;
use crate::connection::shared::Phase;
use crate::dispatcher::Dispatcher;
use crate::handshake::HandshakeRequest;
use crate::{Failure, Message, WebSocketError};

/// Messages dispatched per poll before the task lets others run.
const MESSAGES_PER_POLL: usize = 32;

pub(crate) async fn run(
    core: Arc<Core>,
    request: HandshakeRequest,
    dispatcher: Arc<dyn Dispatcher>,
    abort: CancellationToken,
) {
    let result = tokio::select! {
        biased;
        () = abort.cancelled() => Err(Failure::Aborted),
        result = dispatcher.dispatch(request) => result,
    };
    match result {
        Ok(upgraded) => core.shared.open(upgraded),
        Err(failure) => core.shared.fail_opening(failure),
    }
    // Under the face lock: `close()` while connecting turns the phase to Failed under it too.
    let opened = {
        let mut face = core.state();
        let state = core.shared.lock();
        match &state.phase {
            Phase::Open(_) if face.ready_state == ReadyState::Connecting => {
                face.ready_state = ReadyState::Open;
                face.protocol.clone_from(&state.negotiated.protocol);
                face.extensions.clone_from(&state.negotiated.extensions);
                Ok(())
            }
            Phase::Failed(error) => {
                face.ready_state = ReadyState::Closed;
                Err(error.clone())
            }
            _ => unreachable!("the opening has ended, and close() fails it under the face lock"),
        }
    };
    if let Err(error) = opened {
        // Failing the connection: CLOSED, then error and close (1006).
        let close = unclean_close(&error);
        as_listener(|| {
            dispatch_replayable(&core, &Event::fired("error").trusted(Some(error.clone())));
            dispatch_replayable(&core, &close);
        });
        finish(&core);
        return;
    }
    as_listener(|| dispatch_replayable(&core, &Event::fired("open").trusted(None)));

    let mut driver = Driver {
        core: &core,
        closing: false,
        released: 0,
    };
    let outcome = poll_fn(|cx| driver.poll(cx)).await;

    core.state().ready_state = ReadyState::Closed;
    let close = match &outcome {
        Outcome::Clean(info) => Event::fired_close(CloseEventInit {
            was_clean: true,
            code: info.close_code.unwrap_or(1005),
            reason: info.reason.clone(),
        })
        .trusted(None),
        Outcome::Unclean(error) => unclean_close(error),
    };
    // Replayable as the opening's events are: a listener added before the owner looked at the
    // socket gets them (after `open`), even when the connection was over at once.
    as_listener(|| {
        if let Outcome::Unclean(error) = &outcome
            && was_failed(error)
        {
            dispatch_replayable(&core, &Event::fired("error").trusted(Some(error.clone())));
        }
        dispatch_replayable(&core, &close);
    });
    finish(&core);
}

/// Dispatches a replayable event after the replays owed so far, so that listeners added late
/// get the events in the order they fired.
fn dispatch_replayable(core: &Core, event: &Event) {
    core.run_replays();
    core.target.dispatch_replayable(event);
}

/// The close event of an unclean end: 1006, or the peer's code and reason when the peer closed
/// while data was still unsent.
fn unclean_close(error: &WebSocketError) -> Event {
    Event::fired_close(CloseEventInit {
        was_clean: false,
        code: error.close_code().unwrap_or(1006),
        reason: error.reason().to_owned(),
    })
    .trusted(Some(error.clone()))
}

/// Whether the connection was *failed* (RFC 6455 7.1.7), which fires `error` before `close`;
/// a connection that merely closed without a closing handshake does not.
fn was_failed(error: &WebSocketError) -> bool {
    !matches!(
        error.failure(),
        Some(
            Failure::ConnectionClosed
                | Failure::UnsentData
                | Failure::Terminated
                | Failure::Timeout("closing handshake")
        ) | None
    )
}

/// The close event has fired: late replays run in a task of their own, and the listeners are
/// dropped so that those holding a handle of the socket let it go.
fn finish(core: &Core) {
    core.end_event_loop();
    core.target.clear();
}

struct Driver<'a> {
    core: &'a Core,
    /// The peer's Close arrived, or the connection failed: no more messages.
    closing: bool,
    /// Bytes handed to the socket as of the last `bufferedAmount` update.
    released: u64,
}

impl Driver<'_> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Outcome> {
        let core = self.core;
        core.shared.hub.register(Slot::Read, cx.waker());
        let mut budget = MESSAGES_PER_POLL;
        loop {
            if core.run_replays() {
                continue;
            }
            let mut state = core.shared.lock();
            let Phase::Open(connection) = &mut state.phase else {
                unreachable!("the event loop drives an open connection");
            };
            if self.closing {
                let outcome = connection.poll_closed();
                let (written, _) = connection.write_progress();
                drop(state);
                self.release(written);
                return outcome;
            }
            // Read first: a Close that has arrived counts before more of our data goes out.
            let next = connection.poll_next_message();
            let _ = connection.poll_flush();
            let (written, _) = connection.write_progress();
            drop(state);
            self.release(written);
            match next {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The closing handshake has started (or the connection failed).
                    self.closing = true;
                    let mut face = core.state();
                    if face.ready_state == ReadyState::Open {
                        face.ready_state = ReadyState::Closing;
                    }
                }
                Poll::Ready(Some(message)) => {
                    let event = {
                        let face = core.state();
                        // After close() (CLOSING), messages are dropped.
                        (face.ready_state == ReadyState::Open)
                            .then(|| self.message_event(message, face.binary_type))
                    };
                    if let Some(event) = event {
                        as_listener(|| core.target.dispatch(&event));
                    }
                    budget -= 1;
                    if budget == 0 {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// Moves `bufferedAmount` down when the socket has taken more since the last time.
    fn release(&mut self, written: u64) {
        if written != self.released {
            self.released = written;
            self.core.release_written(written);
        }
    }

    fn message_event(&self, message: Message, binary_type: BinaryType) -> Event {
        let data = match (message, binary_type) {
            (Message::Text(text), _) => MessageData::Text(text),
            (Message::Binary(data), BinaryType::Blob) => MessageData::Blob(data),
            (Message::Binary(data), BinaryType::ArrayBuffer) => MessageData::ArrayBuffer(data),
        };
        Event::fired_message(data, self.core.origin.clone())
    }
}
