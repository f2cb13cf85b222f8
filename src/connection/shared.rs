//! The state one connection's faces share: the phase, and the connection once open.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tokio_util::sync::CancellationToken;

use crate::connection::hub::WakerHub;
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

pub(crate) struct Shared {
    state: Mutex<State>,
    pub(crate) hub: Arc<WakerHub>,
    hub_waker: Waker,
    pub(crate) config: Config,
    /// Cancels the opening handshake (the user's signal, or `close()` while connecting).
    pub(crate) abort: CancellationToken,
}

impl Shared {
    pub(crate) fn new(config: Config, abort: CancellationToken) -> Arc<Self> {
        let (hub, hub_waker) = WakerHub::new();
        let state = State {
            phase: Phase::Connecting,
            negotiated: Negotiated::default(),
        };
        Arc::new(Self {
            state: Mutex::new(state),
            hub,
            hub_waker,
            config,
            abort,
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
        }
        drop(state);
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
    /// opened meanwhile (not yet announced) is dropped after a best-effort Close (1001).
    pub(crate) fn abort_opening(&self) {
        let mut state = self.lock();
        if let Phase::Open(connection) = &mut state.phase {
            connection.abandon();
            state.phase = Phase::Connecting;
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
                // Send it now if the socket takes it; `closed` finishes the handshake.
                let _ = connection.poll_flush();
                drop(state);
                self.wake_all();
            }
        }
    }

    pub(crate) fn wake_all(&self) {
        self.hub.wake_all();
    }
}

impl Drop for Shared {
    /// The last handle is gone: an open connection is closed with 1001 (going away), as far as
    /// the socket takes it without waiting, and the opening handshake is cancelled.
    fn drop(&mut self) {
        self.abort.cancel();
        let state = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Open(connection) = &mut state.phase {
            connection.abandon();
        }
    }
}
