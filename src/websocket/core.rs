//! What every handle of one `WebSocket` shares: the connection, the listeners, and the state
//! the web exposes (`readyState`, `protocol`, `extensions`, `binaryType`, `bufferedAmount`).

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use url::Url;

use super::event::{BinaryType, Event, EventListener};
use super::target::{Entry, EventTarget, Handler, Missed, Registered};
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
}

/// Replays owed to late registrations, in the order their events fired, run by one drainer at
/// a time: the event loop while it runs, then a task of their own.
#[derive(Default)]
struct Replays {
    /// The event's place among the replayable ones, the registration, its listener when
    /// queued, and the event.
    queue: VecDeque<Replay>,
    /// Someone is running the queue: what is added meanwhile is theirs to run.
    draining: bool,
    /// The event loop has fired `close` and ended: a task of their own runs late replays.
    done: bool,
}

type Replay = (usize, Arc<Entry>, Option<EventListener>, Event);

impl Replays {
    /// Adds `missed` for `entry`, each after the replays of events that fired no later.
    fn add(&mut self, entry: &Arc<Entry>, listener: Option<EventListener>, missed: Vec<Missed>) {
        for (place, event) in missed {
            let at = self.queue.partition_point(|(p, ..)| *p <= place);
            self.queue
                .insert(at, (place, entry.clone(), listener.clone(), event));
        }
    }
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
    /// Listeners registered late that are owed replayable events.
    replays: Mutex<Replays>,
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
            }),
            observed: AtomicBool::new(false),
            replays: Mutex::default(),
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
    pub(crate) fn add_listener(
        self: &Arc<Self>,
        event_type: &str,
        listener: EventListener,
        once: bool,
    ) {
        let registered = self.target.add(event_type, listener, once, !in_listener());
        self.replay(registered);
    }

    /// Sets an `on*` attribute.
    pub(crate) fn set_handler(self: &Arc<Self>, handler: Handler, value: Option<EventListener>) {
        let registered = self.target.set_handler(handler, value, !in_listener());
        self.replay(registered);
    }

    /// Queues the replayable events a late registration missed. The event loop runs them
    /// before anything else; once it has ended, a task of their own does.
    fn replay(self: &Arc<Self>, registered: Registered) {
        let Some((entry, missed)) = registered else {
            return;
        };
        if missed.is_empty() {
            if self.replays_lock().done {
                // No event will come: as after `close`, the socket keeps no listener (one
                // holding a handle would keep it alive).
                self.target.clear();
            }
            return;
        }
        let listener = self.target.listener_of(&entry);
        let mut replays = self.replays_lock();
        replays.add(&entry, listener, missed);
        self.replays_queued.store(true, Ordering::Release);
        if replays.draining {
            return; // Whoever drains runs ours too.
        }
        let done = replays.done;
        drop(replays);
        if !done {
            self.shared.hub.wake_slot(Slot::Read);
            return;
        }
        let Some(runtime) = self.shared.runtime() else {
            return;
        };
        let core = self.clone();
        runtime.spawn(async move {
            core.drain_replays();
            // As after `close`: listeners holding a handle must not keep the socket alive.
            core.target.clear();
        });
    }

    fn replays_lock(&self) -> MutexGuard<'_, Replays> {
        self.replays.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the queued replays; `false` when there were none.
    #[inline]
    pub(crate) fn run_replays(&self) -> bool {
        // Set after the queue is extended: a replay queued after this look runs next time
        // (its registration wakes the event loop).
        self.replays_queued.load(Ordering::Relaxed) && self.drain_replays()
    }

    /// Runs the queue unless someone else is running it; `false` when nothing ran.
    #[inline(never)]
    fn drain_replays(&self) -> bool {
        {
            let mut replays = self.replays_lock();
            if replays.draining {
                return false;
            }
            replays.draining = true;
            self.replays_queued.store(false, Ordering::Relaxed);
        }
        let mut ran = false;
        loop {
            let next = {
                let mut replays = self.replays_lock();
                let next = replays.queue.pop_front();
                if next.is_none() {
                    replays.draining = false;
                }
                next
            };
            let Some((_, entry, listener, event)) = next else {
                return ran;
            };
            as_listener(|| {
                self.target.invoke_with(&entry, listener.as_ref(), &event);
            });
            ran = true;
        }
    }

    /// The event loop has fired `close`: replays owed from now on run in a task of their own,
    /// after those already queued (run here).
    pub(crate) fn end_event_loop(&self) {
        self.replays_lock().done = true;
        self.drain_replays();
    }

    /// Moves to CLOSING, as `close()`, `terminate()` and the last handle's drop do: while
    /// connecting, fails the opening (`error`, then `close` 1006); while open (or closing too,
    /// when `when_closing`), runs `end` on the connection; otherwise does nothing.
    pub(crate) fn start_closing(&self, when_closing: bool, end: impl FnOnce(&Shared)) {
        let mut face = self.state();
        match face.ready_state {
            ReadyState::Connecting => {
                face.ready_state = ReadyState::Closing;
                // Under the face lock: the event loop then sees CLOSING and a failed opening.
                self.shared.abort_opening();
            }
            ReadyState::Open => {
                face.ready_state = ReadyState::Closing;
                drop(face);
                end(&self.shared);
            }
            ReadyState::Closing if when_closing => {
                drop(face);
                end(&self.shared);
            }
            ReadyState::Closing | ReadyState::Closed => {}
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
