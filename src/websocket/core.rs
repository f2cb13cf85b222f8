//! What every handle of one `WebSocket` shares: the connection, the listeners, and the state
//! the web exposes (`readyState`, `protocol`, `extensions`, `binaryType`, `bufferedAmount`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use url::Url;

use super::event::{BinaryType, Event, EventListener};
use super::target::{EventTarget, Handler, Registered};
use crate::connection::hub::Slot;
use crate::connection::shared::Shared;

/// `readyState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u16)]
pub enum ReadyState {
    /// `CONNECTING` (0): the opening handshake has not completed.
    Connecting = 0,
    /// `OPEN` (1): messages can be sent and received.
    Open = 1,
    /// `CLOSING` (2): the closing handshake has started.
    Closing = 2,
    /// `CLOSED` (3): the connection is closed, or could not be opened.
    Closed = 3,
}

impl ReadyState {
    /// The number the web uses.
    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

pub(crate) struct FaceState {
    pub(crate) ready_state: ReadyState,
    pub(crate) protocol: String,
    pub(crate) extensions: String,
    pub(crate) binary_type: BinaryType,
    /// `bufferedAmount`: application bytes accepted by `send` and not yet handed to the socket.
    pub(crate) buffered_amount: u64,
    /// Sent messages not yet written: where each ends in the connection's write stream, and its
    /// application length.
    pub(crate) in_flight: VecDeque<(u64, u64)>,
    /// The event loop has fired `close` and ended.
    pub(crate) done: bool,
}

pub(crate) struct Core {
    pub(crate) shared: Arc<Shared>,
    pub(crate) target: Arc<EventTarget>,
    pub(crate) url: Url,
    /// The serialized origin, shared by every `message` event.
    pub(crate) origin: Arc<str>,
    state: Mutex<FaceState>,
    /// The owner has looked at the socket: no more replays (a fast path for `observe`).
    observed: AtomicBool,
    /// Listeners registered late that are owed events of the opening (run by the event loop).
    replays: Mutex<VecDeque<(Arc<super::target::Entry>, Event)>>,
    /// Replays are queued: the event loop looks at the queue only then, not per message.
    replays_queued: AtomicBool,
}

thread_local! {
    /// How many listeners of any `WebSocket` this thread is running (nested dispatches).
    static IN_LISTENER: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` marked as listener code: what it does is not the owner's code looking at a socket.
pub(crate) fn as_listener<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_LISTENER.with(|depth| depth.set(depth.get() - 1));
        }
    }
    IN_LISTENER.with(|depth| depth.set(depth.get() + 1));
    let _reset = Reset;
    f()
}

fn in_listener() -> bool {
    IN_LISTENER.with(|depth| depth.get() > 0)
}

impl Core {
    pub(crate) fn new(shared: Arc<Shared>, url: Url) -> Self {
        let origin = url.origin().ascii_serialization().into();
        Self {
            shared,
            target: Arc::default(),
            url,
            origin,
            state: Mutex::new(FaceState {
                ready_state: ReadyState::Connecting,
                protocol: String::new(),
                extensions: String::new(),
                binary_type: BinaryType::Blob,
                buffered_amount: 0,
                in_flight: VecDeque::new(),
                done: false,
            }),
            observed: AtomicBool::new(false),
            replays: Mutex::new(VecDeque::new()),
            replays_queued: AtomicBool::new(false),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, FaceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The owner's code looks at the socket's state: from now on it has seen the opening, and
    /// listeners it registers later get only what happens after (as on the web).
    pub(crate) fn observe(&self) {
        if !self.observed.load(Ordering::Relaxed) && !in_listener() {
            self.observed.store(true, Ordering::Relaxed);
            self.target.end_replay();
        }
    }

    /// `addEventListener`.
    pub(crate) fn add_listener(&self, event_type: &str, listener: EventListener, once: bool) {
        let registered = self.target.add(event_type, listener, once, !in_listener());
        self.replay(registered);
    }

    /// Sets an `on*` attribute.
    pub(crate) fn set_handler(&self, handler: Handler, value: Option<EventListener>) {
        let registered = self.target.set_handler(handler, value, !in_listener());
        self.replay(registered);
    }

    /// Queues the opening's events a late registration missed. The event loop runs them before
    /// anything else; once it has ended, a task of their own does.
    fn replay(&self, registered: Registered) {
        let Some((entry, missed)) = registered else {
            return;
        };
        if missed.is_empty() {
            return;
        }
        let state = self.state();
        if !state.done {
            // Under the state lock: the event loop drains the queue after it sets `done`.
            self.replays_lock()
                .extend(missed.into_iter().map(|event| (entry.clone(), event)));
            self.replays_queued.store(true, Ordering::Release);
            drop(state);
            self.shared.hub.wake_slot(Slot::Read);
            return;
        }
        drop(state);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let target = self.target.clone();
        runtime.spawn(async move {
            for event in missed {
                as_listener(|| target.invoke(&entry, &event));
            }
        });
    }

    fn replays_lock(&self) -> MutexGuard<'_, VecDeque<(Arc<super::target::Entry>, Event)>> {
        self.replays.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the queued replays; `false` when there were none.
    #[inline]
    pub(crate) fn run_replays(&self) -> bool {
        // Set after the queue is extended: a replay queued after this look runs next time
        // (its registration wakes the event loop).
        self.replays_queued.load(Ordering::Relaxed) && self.drain_replays()
    }

    #[inline(never)]
    fn drain_replays(&self) -> bool {
        if !self.replays_queued.swap(false, Ordering::Acquire) {
            return false;
        }
        let mut ran = false;
        loop {
            let next = self.replays_lock().pop_front();
            let Some((entry, event)) = next else {
                return ran;
            };
            as_listener(|| self.target.invoke(&entry, &event));
            ran = true;
        }
    }

    /// Moves `bufferedAmount` down by the messages the socket has taken.
    pub(crate) fn release_written(&self, written: u64) {
        let mut state = self.state();
        while let Some(&(end, len)) = state.in_flight.front() {
            if end > written {
                break;
            }
            state.in_flight.pop_front();
            state.buffered_amount -= len;
        }
    }
}
