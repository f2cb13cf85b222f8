//! The state one connection's faces share: the phase, and the connection once open; and the
//! tasks that finish a closing when no face drives it.

use std::future::{Future, poll_fn};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::connection::hub::{Slot, WakerHub};
use crate::connection::{Config, Connection};
use crate::dispatcher::Upgraded;
use crate::handshake::Negotiated;
use crate::{CloseCode, CloseInfo, Failure, WebSocketError};

pub(crate) enum Phase {
    /// The opening handshake runs in its task.
    Connecting,
    /// Open, or closing: the connection decides.
    Open(Box<Connection>),
    /// The opening handshake failed, was aborted, or `close()` was called during it.
    Failed(WebSocketError),
}

pub(crate) struct State {
    pub(crate) phase: Phase,
    pub(crate) negotiated: Negotiated,
}

/// Who drives a connection once its closing has started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Driver {
    /// The EventTarget face's event loop, which polls until the outcome.
    EventLoop,
    /// Whoever polls the stream face, if anyone: a closer task makes sure the closing ends.
    Callers,
}

pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) hub: Arc<WakerHub>,
    hub_waker: Waker,
    pub(crate) config: Config,
    /// Cancels the opening handshake (the user's signal, or `close()` while connecting).
    pub(crate) abort: CancellationToken,
    driver: Driver,
    /// The runtime the connection was made in, where keeper tasks run.
    runtime: Option<Handle>,
    /// A keeper task has been spawned (at most one per connection).
    keeper: AtomicBool,
    me: Weak<Shared>,
}

impl Shared {
    pub(crate) fn new(config: Config, abort: CancellationToken, driver: Driver) -> Arc<Self> {
        let (hub, hub_waker) = WakerHub::new();
        let state = State {
            phase: Phase::Connecting,
            negotiated: Negotiated::default(),
        };
        Arc::new_cyclic(|me| Self {
            state: Mutex::new(state),
            hub,
            hub_waker,
            config,
            abort,
            driver,
            runtime: Handle::try_current().ok(),
            keeper: AtomicBool::new(false),
            me: me.clone(),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Completes the opening handshake, unless it was failed meanwhile.
    pub(crate) fn open(&self, upgraded: Upgraded) {
        let mut state = self.lock();
        if let Phase::Connecting = state.phase {
            let connection = Connection::new(
                upgraded.io,
                upgraded.read_buf,
                &upgraded.negotiated.extensions,
                upgraded.end_after_close,
                self.config.clone(),
                self.hub_waker.clone(),
            );
            state.phase = Phase::Open(Box::new(connection));
            state.negotiated = upgraded.negotiated;
            drop(state);
            if self.driver == Driver::Callers {
                self.spawn_keeper();
            }
        } else {
            drop(state);
        }
        self.wake_all();
    }

    /// Fails the opening handshake, unless it has completed.
    pub(crate) fn fail_opening(&self, failure: Failure) {
        let mut state = self.lock();
        if let Phase::Connecting = state.phase {
            let code = Some(CloseCode::ABNORMAL_CLOSURE.as_u16());
            state.phase = Phase::Failed(WebSocketError::from_parts(
                code,
                String::new(),
                Some(Arc::new(failure)),
            ));
        }
        drop(state);
        self.abort.cancel();
        self.wake_all();
    }

    /// Fails the connection as `close()` during the opening handshake does: a connection that
    /// opened meanwhile (not yet announced) is closed with 1001 in the background.
    pub(crate) fn abort_opening(&self) {
        let mut state = self.lock();
        if let Phase::Open(_) = &state.phase
            && let Phase::Open(connection) = std::mem::replace(&mut state.phase, Phase::Connecting)
        {
            retire(connection, &self.hub, self.runtime().as_ref());
        }
        drop(state);
        self.fail_opening(Failure::Aborted);
    }

    /// Starts the closing handshake with `info` (already validated); during the opening
    /// handshake, fails it instead. Does nothing once closing.
    pub(crate) fn close(&self, info: &CloseInfo) {
        let mut state = self.lock();
        match &mut state.phase {
            Phase::Connecting => {
                drop(state);
                self.fail_opening(Failure::Aborted);
            }
            Phase::Failed(_) => {}
            Phase::Open(connection) => {
                connection.close(info);
                // Send it now if the socket takes it; the drivers finish the handshake.
                let _ = connection.poll_flush();
                drop(state);
                self.closing_started();
                self.wake_all();
            }
        }
    }

    /// Closes an open connection at once, without the closing handshake.
    pub(crate) fn terminate(&self) {
        if let Phase::Open(connection) = &mut self.lock().phase {
            connection.terminate();
        }
        self.wake_all();
    }

    /// The connection's closing has started (a face saw it, or started it): on the stream
    /// face, the keeper task finishes it within the close timeout even if nobody polls, so
    /// that the socket is closed and the buffers are released.
    pub(crate) fn closing_started(&self) {
        if self.driver == Driver::EventLoop {
            return;
        }
        self.hub.set_keeper_drives(true);
        if self.keeper.load(Ordering::Relaxed) {
            self.hub.wake_slot(Slot::Keeper);
        } else {
            self.spawn_keeper();
        }
    }

    /// Spawns the stream face's keeper task, once (it holds the connection weakly: dropping
    /// every handle still closes it).
    fn spawn_keeper(&self) {
        if self.keeper.load(Ordering::Relaxed) || self.keeper.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(runtime) = self.runtime() {
            runtime.spawn(keep(self.me.clone(), self.config.read_ahead_after));
        } else {
            // Outside a runtime: the next `closing_started` within one tries again.
            self.keeper.store(false, Ordering::Release);
        }
    }

    /// The runtime the connection was made in, else the current one.
    pub(crate) fn runtime(&self) -> Option<Handle> {
        self.runtime.clone().or_else(|| Handle::try_current().ok())
    }

    pub(crate) fn wake_all(&self) {
        self.hub.wake_all();
    }
}

/// The default of `read_ahead_after` (`StreamOptions`, `ServerOptions`): how long an owner may
/// go without reading before the keeper reads for it, and how often the keeper looks while the
/// owner reads. A second answers the pings of peers with timeouts of a few seconds and up
/// (Python `websockets` waits 20 s) for one timer wake-up a second per connection that reads.
pub const DEFAULT_READ_AHEAD_AFTER: Duration = Duration::from_secs(1);

/// The keeper task of a stream face's connection. While the owner reads, it looks once per
/// `after` whether it still does, and costs nothing per message. While the owner
/// does not, it reads: control frames are answered and the timers run, messages wait for the
/// reader. Once closing has started, it drives the close to its outcome (bounded by the close
/// timeout), then wakes every face so that each sees the end.
async fn keep(shared: Weak<Shared>, after: Duration) {
    // The owner has a first `after` to start reading (what arrives meanwhile, a Close
    // included, is its to see first).
    let mut check = Box::pin(tokio::time::sleep(after));
    let mut started = false;
    poll_fn(|cx| {
        let Some(shared) = shared.upgrade() else {
            return Poll::Ready(()); // Every handle is gone: `retire` took over.
        };
        shared.hub.register(Slot::Keeper, cx.waker());
        let mut state = shared.lock();
        let Phase::Open(connection) = &mut state.phase else {
            return Poll::Ready(());
        };
        if !started {
            started = true;
            if check.as_mut().poll(cx).is_pending()
                && !connection.is_closing()
                && !connection.awaits_pong()
            {
                return Poll::Pending;
            }
        }
        loop {
            if connection.is_closing() {
                shared.hub.set_keeper_drives(true);
                if connection.poll_closed().is_pending() {
                    return Poll::Pending;
                }
                drop(state);
                shared.wake_all();
                return Poll::Ready(());
            }
            if connection.take_owner_read() && !connection.awaits_pong() {
                // The owner reads: step back, and look again later.
                shared.hub.set_keeper_drives(false);
                check.as_mut().reset(tokio::time::Instant::now() + after);
                if check.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                continue;
            }
            shared.hub.set_keeper_drives(true);
            let had_read_ahead = connection.has_read_ahead();
            let kept = connection.poll_keep();
            if kept.is_ready() || !had_read_ahead && connection.has_read_ahead() {
                // Messages for the reader, or the end of them (a Close, a failure).
                shared.hub.wake_slot(Slot::Read);
            }
            if kept.is_pending() {
                return Poll::Pending;
            }
            // Closing has started: drive it.
        }
    })
    .await;
}

/// Finishes a connection that no handle will drive any more: sends Close 1001 unless closing
/// already, discards what arrives, and drives it to its outcome in a task of its own, within
/// the close timeout (the Close reaches the socket even if the socket is full right now).
/// Without a runtime, sends what the socket takes now and drops it.
fn retire(mut connection: Box<Connection>, hub: &Arc<WakerHub>, runtime: Option<&Handle>) {
    connection.abandon();
    if connection.outcome().is_some() {
        return;
    }
    match runtime {
        Some(runtime) => {
            let hub = hub.clone();
            // On a runtime that has shut down, the task is dropped at once, with the socket.
            runtime.spawn(async move {
                poll_fn(|cx| {
                    hub.register(Slot::Retired, cx.waker());
                    connection.poll_closed().map(drop)
                })
                .await;
            });
        }
        None => {
            let _ = connection.poll_shutdown();
        }
    }
}

impl Drop for Shared {
    /// The last handle is gone: an open connection is closed with 1001 (going away) in the
    /// background, and the opening handshake is cancelled.
    fn drop(&mut self) {
        self.abort.cancel();
        // The keeper holds the connection weakly: woken, it finds it gone and ends.
        self.hub.wake_slot(Slot::Keeper);
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Open(connection) = std::mem::replace(&mut state.phase, Phase::Connecting) {
            retire(connection, &self.hub, self.runtime().as_ref());
        }
    }
}
