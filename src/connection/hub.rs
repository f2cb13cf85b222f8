//! One waker for the socket, many tasks behind it.
//!
//! The readable, the writable and the `closed` future of one connection may be polled from
//! different tasks, but a socket (and a timer) remembers only the last waker it was polled
//! with. Every poll of the socket therefore uses the hub's waker, and each face registers its
//! own waker in its slot: a wake-up from the socket reaches all of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Wake, Waker};

use atomic_waker::AtomicWaker;

/// The parties that wait on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The readable stream (or the EventTarget's task).
    Read = 0,
    /// The writable sink.
    Write = 1,
    /// `closed`, which drives the closing handshake.
    Lifecycle = 2,
    /// `opened`.
    Opened = 3,
    /// The stream face's keeper task, which reads for an owner that does not, and finishes a
    /// closing nobody else drives (see `shared::keep`). Readiness of the socket and the timers
    /// wakes it only while it drives (see [`WakerHub::set_keeper_drives`]).
    Keeper = 4,
    /// The task that finishes a connection every handle has dropped (see `shared::retire`).
    Retired = 5,
}

const SLOTS: usize = 6;

/// One lock-free waker slot per party: registering the same waker again costs a comparison,
/// not a lock.
#[derive(Default)]
pub(crate) struct WakerHub {
    wakers: [AtomicWaker; SLOTS],
    /// A bit per slot that has ever been registered: a wake-up skips the parties that never
    /// waited (most connections use two or three of the six). Bits are never cleared, so a
    /// registration can never be missed; but the keeper's, which says whether it drives
    /// (the keeper looks at the connection on its own clock when it does not).
    used: AtomicU8,
}

impl WakerHub {
    pub(crate) fn new() -> (Arc<Self>, Waker) {
        let hub = Arc::new(Self::default());
        let waker = Waker::from(hub.clone());
        (hub, waker)
    }

    /// Remembers `waker` as the one to wake for `slot`.
    pub(crate) fn register(&self, slot: Slot, waker: &Waker) {
        if slot == Slot::Keeper {
            // Its bit says whether it drives: see `set_keeper_drives`.
            self.wakers[slot as usize].register(waker);
            return;
        }
        let bit = 1 << slot as u8;
        if self.used.load(Ordering::Relaxed) & bit == 0 {
            // Set before the waker is stored: a wake-up that sees the waker sees the bit.
            self.used.fetch_or(bit, Ordering::AcqRel);
        }
        self.wakers[slot as usize].register(waker);
    }

    /// Wakes the party in `slot`, if one waits.
    pub(crate) fn wake_slot(&self, slot: Slot) {
        self.wakers[slot as usize].wake();
    }

    /// Wakes the parties that may wait for the reader to make room: `closed`, the keeper
    /// task, and the writable's `close`.
    pub(crate) fn wake_drivers(&self) {
        self.wake_slot(Slot::Lifecycle);
        self.wake_slot(Slot::Keeper);
        self.wake_slot(Slot::Write);
    }

    /// Whether the keeper task hears the socket's and the timers' wake-ups: while it drives
    /// the connection, its bit is set among the parties a wake-up reaches; while the owner
    /// reads, it is not, so that a message costs no wake-up of the keeper.
    pub(crate) fn set_keeper_drives(&self, drives: bool) {
        let bit = 1 << Slot::Keeper as u8;
        if (self.used.load(Ordering::Relaxed) & bit != 0) != drives {
            if drives {
                self.used.fetch_or(bit, Ordering::AcqRel);
            } else {
                self.used.fetch_and(!bit, Ordering::AcqRel);
            }
        }
    }

    /// Wakes every party that waits, the keeper included.
    pub(crate) fn wake_all(&self) {
        self.wake_used();
        self.wake_slot(Slot::Keeper);
    }

    /// A wake-up from the socket or a timer: every party that waits (the keeper only while
    /// it drives).
    fn wake_used(&self) {
        // A read-modify-write, not a load: it reads the latest bits, and a registration that
        // reads this wake-up's write also sees what happened before it (the readiness that
        // caused it), so its next poll finds that readiness even if its slot was skipped.
        let used = self.used.fetch_or(0, Ordering::AcqRel);
        for (slot, waker) in self.wakers.iter().enumerate() {
            if used & (1 << slot) != 0 {
                waker.wake();
            }
        }
    }
}

impl Wake for WakerHub {
    fn wake(self: Arc<Self>) {
        self.wake_used();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_used();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_of_the_hub_reaches_every_registered_party_once() {
        let (hub, hub_waker) = WakerHub::new();
        let counts: Vec<_> = (0..3)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        for (slot, count) in [Slot::Read, Slot::Write, Slot::Lifecycle]
            .into_iter()
            .zip(&counts)
        {
            hub.register(slot, &Waker::from(count.clone()));
        }
        hub_waker.wake_by_ref();
        hub_waker.wake_by_ref();
        for count in &counts {
            assert_eq!(count.0.load(Ordering::SeqCst), 1);
        }
        hub.register(Slot::Write, &Waker::from(counts[1].clone()));
        hub.wake_slot(Slot::Write);
        hub.wake_slot(Slot::Read);
        assert_eq!(counts[1].0.load(Ordering::SeqCst), 2);
        assert_eq!(counts[0].0.load(Ordering::SeqCst), 1);
    }
}
