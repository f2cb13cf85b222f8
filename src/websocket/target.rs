//! The EventTarget part of a `WebSocket`: listeners in registration order, `once`, the `on*`
//! handler attributes, and dispatch that holds no lock while a listener runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::event::{Event, EventListener};

/// The four event handler attributes (`onopen`, `onmessage`, `onerror`, `onclose`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Handler {
    Open = 0,
    Message = 1,
    Error = 2,
    Close = 3,
}

impl Handler {
    fn event_type(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Message => "message",
            Self::Error => "error",
            Self::Close => "close",
        }
    }
}

enum Callback {
    Listener(EventListener),
    /// Calls the handler attribute's value at the time of the call.
    Handler(Handler),
}

/// One registration. `removed` is shared with dispatches in progress, which skip it.
pub(crate) struct Entry {
    event_type: Box<str>,
    callback: Callback,
    once: bool,
    removed: AtomicBool,
}

struct Registry {
    entries: Vec<Arc<Entry>>,
    handlers: [Option<EventListener>; 4],
    /// The replayable events already dispatched (the opening's, and the closing's), in order,
    /// while they may still be replayed.
    replayable: Vec<Event>,
    replaying: bool,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            handlers: Default::default(),
            replayable: Vec::new(),
            replaying: true,
        }
    }
}

/// A replayable event a registration missed, with its place among them (to replay several
/// registrations' events in the order they fired).
pub(crate) type Missed = (usize, Event);

/// A new registration, and the replayable events it missed (to be replayed to it).
pub(crate) type Registered = Option<(Arc<Entry>, Vec<Missed>)>;

impl Registry {
    fn register(&mut self, entry: Entry, replay: bool) -> Registered {
        let entry = Arc::new(entry);
        self.entries.push(entry.clone());
        let missed = if replay && self.replaying {
            self.replayable
                .iter()
                .enumerate()
                .filter(|(_, event)| event.event_type() == &*entry.event_type)
                .map(|(place, event)| (place, event.clone()))
                .collect()
        } else {
            Vec::new()
        };
        Some((entry, missed))
    }
}

/// Listeners of one event type that a dispatch snapshots without allocating.
const INLINE_LISTENERS: usize = 4;

#[derive(Default)]
pub(crate) struct EventTarget {
    registry: Mutex<Registry>,
}

impl EventTarget {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `addEventListener`: appends the listener unless it is registered for `event_type`
    /// already. Returns the new registration and, when `replay`, the replayable events it
    /// missed.
    pub(crate) fn add(
        &self,
        event_type: &str,
        listener: EventListener,
        once: bool,
        replay: bool,
    ) -> Registered {
        let mut registry = self.lock();
        let duplicate = registry.entries.iter().any(|entry| {
            &*entry.event_type == event_type
                && matches!(&entry.callback, Callback::Listener(l) if l.same(&listener))
        });
        if duplicate {
            return None;
        }
        let entry = Entry {
            event_type: event_type.into(),
            callback: Callback::Listener(listener),
            once,
            removed: AtomicBool::new(false),
        };
        registry.register(entry, replay)
    }

    /// `removeEventListener`.
    pub(crate) fn remove(&self, event_type: &str, listener: &EventListener) {
        self.lock().entries.retain(|entry| {
            let hit = &*entry.event_type == event_type
                && matches!(&entry.callback, Callback::Listener(l) if l.same(listener));
            if hit {
                entry.removed.store(true, Ordering::Release);
            }
            !hit
        });
    }

    /// Sets an `on*` attribute. The first non-null value registers the handler at the end of
    /// the list; replacing it keeps its place; null removes it. Returns the new registration.
    pub(crate) fn set_handler(
        &self,
        handler: Handler,
        value: Option<EventListener>,
        replay: bool,
    ) -> Registered {
        let mut registry = self.lock();
        let was_set = registry.handlers[handler as usize].is_some();
        registry.handlers[handler as usize] = value.clone();
        match (was_set, value.is_some()) {
            (false, true) => {
                let entry = Entry {
                    event_type: handler.event_type().into(),
                    callback: Callback::Handler(handler),
                    once: false,
                    removed: AtomicBool::new(false),
                };
                registry.register(entry, replay)
            }
            (true, false) => {
                registry.entries.retain(|entry| {
                    let hit = matches!(entry.callback, Callback::Handler(h) if h == handler);
                    if hit {
                        entry.removed.store(true, Ordering::Release);
                    }
                    !hit
                });
                None
            }
            _ => None,
        }
    }

    /// The value of an `on*` attribute.
    pub(crate) fn handler(&self, handler: Handler) -> Option<EventListener> {
        self.lock().handlers[handler as usize].clone()
    }

    /// Calls every listener registered for the event's type when the dispatch starts, in
    /// order, skipping those removed meanwhile. A panicking listener is reported (by the panic
    /// hook) and the others still run, as an exception in a listener is on the web.
    pub(crate) fn dispatch(&self, event: &Event) {
        self.dispatch_inner(event, false);
    }

    /// Dispatches a replayable event (`open`, and the `error` and `close` that end the
    /// connection), which listeners registered later may still get, until
    /// [`end_replay`](Self::end_replay). Recorded in the same critical section as the
    /// snapshot, so a concurrent registration gets the event exactly once.
    pub(crate) fn dispatch_replayable(&self, event: &Event) {
        self.dispatch_inner(event, true);
    }

    /// The events are no longer replayed to new listeners.
    pub(crate) fn end_replay(&self) {
        let mut registry = self.lock();
        registry.replaying = false;
        registry.replayable = Vec::new();
    }

    fn dispatch_inner(&self, event: &Event, replayable: bool) {
        // The listeners as they are now (those added during the dispatch do not run), kept
        // inline for the usual few so that a dispatch allocates nothing.
        let mut inline: [Option<Arc<Entry>>; INLINE_LISTENERS] = Default::default();
        let mut more = Vec::new();
        {
            let mut registry = self.lock();
            if replayable && registry.replaying {
                registry.replayable.push(event.clone());
            }
            let matching = registry
                .entries
                .iter()
                .filter(|entry| &*entry.event_type == event.event_type());
            for (i, entry) in matching.enumerate() {
                match inline.get_mut(i) {
                    Some(slot) => *slot = Some(entry.clone()),
                    None => more.push(entry.clone()),
                }
            }
        }
        for entry in inline.iter().flatten().chain(&more) {
            self.invoke(entry, event);
        }
    }

    /// Calls one registration with `event`, unless it was removed.
    #[inline]
    pub(crate) fn invoke(&self, entry: &Arc<Entry>, event: &Event) {
        self.invoke_with(entry, None, event);
    }

    /// The listener a registration calls now (a handler attribute's current value).
    pub(crate) fn listener_of(&self, entry: &Entry) -> Option<EventListener> {
        match &entry.callback {
            Callback::Listener(listener) => Some(listener.clone()),
            Callback::Handler(handler) => self.handler(*handler),
        }
    }

    /// [`invoke`](Self::invoke) for a replay: `resolved` is the listener when the replay was
    /// queued, called if the registration has none now because [`clear`](Self::clear) ran
    /// in between (a registration the user removed is skipped).
    #[inline]
    pub(crate) fn invoke_with(
        &self,
        entry: &Arc<Entry>,
        resolved: Option<&EventListener>,
        event: &Event,
    ) {
        if entry.removed.load(Ordering::Acquire) {
            return;
        }
        if entry.once {
            if entry.removed.swap(true, Ordering::AcqRel) {
                return;
            }
            self.lock().entries.retain(|e| !Arc::ptr_eq(e, entry));
        }
        let listener = match &entry.callback {
            Callback::Listener(listener) => Some(listener.clone()),
            Callback::Handler(handler) => self.handler(*handler).or_else(|| resolved.cloned()),
        };
        if let Some(listener) = listener {
            // The panic hook has reported it; the other listeners still run.
            let _ = catch_unwind(AssertUnwindSafe(|| listener.call(event)));
        }
    }

    /// Drops every listener (after `close`, so that listeners holding a handle of the socket
    /// do not keep it alive). Replays already queued still run.
    pub(crate) fn clear(&self) {
        let mut registry = self.lock();
        registry.handlers = Default::default();
        registry.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn recorder(log: &Arc<Mutex<Vec<&'static str>>>, name: &'static str) -> EventListener {
        let log = log.clone();
        EventListener::new(move |_| log.lock().unwrap().push(name))
    }

    #[test]
    fn listeners_run_in_registration_order_with_handlers_in_their_place() {
        let target = EventTarget::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        target.add("open", recorder(&log, "a"), false, false);
        target.set_handler(Handler::Open, Some(recorder(&log, "on1")), false);
        target.add("open", recorder(&log, "b"), false, false);
        // Replacing the handler keeps its place.
        target.set_handler(Handler::Open, Some(recorder(&log, "on2")), false);
        target.add("message", recorder(&log, "m"), false, false);
        target.dispatch(&Event::new("open"));
        assert_eq!(*log.lock().unwrap(), ["a", "on2", "b"]);
        // Null then a value again: at the end now.
        target.set_handler(Handler::Open, None, false);
        target.set_handler(Handler::Open, Some(recorder(&log, "on3")), false);
        log.lock().unwrap().clear();
        target.dispatch(&Event::new("open"));
        assert_eq!(*log.lock().unwrap(), ["a", "b", "on3"]);
    }

    #[test]
    fn duplicates_are_ignored_once_runs_once_and_removal_works_mid_dispatch() {
        let target = Arc::new(EventTarget::default());
        let count = Arc::new(AtomicUsize::new(0));
        let counting = {
            let count = count.clone();
            EventListener::new(move |_| {
                count.fetch_add(1, Ordering::SeqCst);
            })
        };
        assert!(target.add("x", counting.clone(), false, false).is_some());
        assert!(target.add("x", counting.clone(), true, false).is_none());
        target.add("y", counting.clone(), true, false);
        target.dispatch(&Event::new("x"));
        target.dispatch(&Event::new("y"));
        target.dispatch(&Event::new("y"));
        assert_eq!(count.load(Ordering::SeqCst), 2);
        // A listener that removes the next one during the dispatch: the next does not run.
        let second = counting.clone();
        let remover = {
            let target = target.clone();
            let second = second.clone();
            EventListener::new(move |_| target.remove("x", &second))
        };
        target.remove("x", &counting);
        target.add("x", remover, false, false);
        target.add("x", second, false, false);
        target.dispatch(&Event::new("x"));
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn replayable_events_are_replayed_to_late_registrations_until_the_replay_ends() {
        let target = EventTarget::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        target.add("open", recorder(&log, "early"), false, true);
        target.dispatch_replayable(&Event::new("open"));
        target.dispatch(&Event::new("message"));
        target.dispatch_replayable(&Event::new("close"));
        // Each missed event comes with its place among the replayable ones.
        let (_, missed) = target
            .add("close", recorder(&log, "late close"), false, true)
            .unwrap();
        assert_eq!(missed.len(), 1);
        assert_eq!(missed[0].0, 1);
        // Registered after the dispatch: it is owed the opening, not the message.
        let (_, missed) = target
            .add("open", recorder(&log, "late"), false, true)
            .unwrap();
        assert_eq!(missed.len(), 1);
        let (_, missed) = target
            .add("message", recorder(&log, "m"), false, true)
            .unwrap();
        assert!(missed.is_empty());
        // From inside a listener (replay = false), nothing is owed.
        let (_, missed) = target
            .add("open", recorder(&log, "inner"), false, false)
            .unwrap();
        assert!(missed.is_empty());
        target.end_replay();
        let (_, missed) = target
            .add("open", recorder(&log, "after"), false, true)
            .unwrap();
        assert!(missed.is_empty());
        assert_eq!(*log.lock().unwrap(), ["early"]);
    }

    #[test]
    fn a_panicking_listener_does_not_stop_the_others() {
        let target = EventTarget::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        target.add(
            "x",
            EventListener::new(|_| panic!("listener failed")),
            false,
            false,
        );
        target.add("x", recorder(&log, "after"), false, false);
        target.dispatch(&Event::new("x"));
        assert_eq!(*log.lock().unwrap(), ["after"]);
    }
}
