//! `WebSocket`: the WHATWG EventTarget-style WebSocket.

mod core;
mod event;
mod event_loop;
mod target;

use std::sync::{Arc, Weak};
use std::time::Duration;

use http::HeaderMap;
use tokio_util::sync::CancellationToken;

use self::core::Core;
pub use self::core::ReadyState;
pub use event::{
    BinaryType, CloseEventInit, Event, EventInterface, EventListener, MessageData, MessageEventInit,
};
use target::Handler;

use crate::close_info::validate_close;
use crate::connection::shared::{Driver, Phase, Shared};
use crate::connection::{Config, DEFAULT_CLOSE_TIMEOUT, Keepalive, Timeouts, default_deflate};
use crate::dispatcher::{Agent, Dispatcher};
use crate::handshake::HandshakeRequest;
use crate::handshake::url::{parse_url, validate_protocols};
use crate::proto::deflate::DeflateOptions;
use crate::proto::{CloseCode, Limits, MAX_CONTROL_PAYLOAD, Role};
use crate::stream::DEFAULT_HIGH_WATER_MARK;
use crate::{CloseInfo, Error, Message};

/// The second argument of [`WebSocket::new`]: undici's `WebSocketInit` (`protocols`,
/// `headers`, `dispatcher`), plus the limits. A protocol or a list of protocols converts into
/// it, as the web's constructor accepts them in its place.
#[derive(Clone)]
pub struct WebSocketInit {
    /// Subprotocols to offer, in order of preference.
    pub protocols: Vec<String>,
    /// Extra request headers.
    pub headers: HeaderMap,
    /// How to connect; `None` is a new default [`Agent`].
    pub dispatcher: Option<Arc<dyn Dispatcher>>,
    /// Limits on incoming messages.
    pub limits: Limits,
    /// How long a close may take, from its start to the `close` event, whatever the peer does;
    /// `None` is 5 s.
    pub close_timeout: Option<Duration>,
    /// permessage-deflate to offer (on by default with the `deflate` feature; ignored
    /// without it); `None` offers no compression.
    pub deflate: Option<DeflateOptions>,
    /// Pings a quiet peer and fails the connection (`error`, then `close` 1006) when nothing
    /// comes back (default 20 s and 20 s, see [`Keepalive`]); `None` turns it off.
    pub keepalive: Option<Keepalive>,
}

impl Default for WebSocketInit {
    fn default() -> Self {
        Self {
            protocols: Vec::new(),
            headers: HeaderMap::new(),
            dispatcher: None,
            limits: Limits::default(),
            close_timeout: None,
            deflate: default_deflate(),
            keepalive: Some(Keepalive::default()),
        }
    }
}

impl std::fmt::Debug for WebSocketInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocketInit")
            .field("protocols", &self.protocols)
            .field("limits", &self.limits)
            .field("close_timeout", &self.close_timeout)
            .finish_non_exhaustive()
    }
}

impl From<()> for WebSocketInit {
    fn from((): ()) -> Self {
        Self::default()
    }
}

impl From<&str> for WebSocketInit {
    fn from(protocol: &str) -> Self {
        vec![protocol.to_owned()].into()
    }
}

impl From<String> for WebSocketInit {
    fn from(protocol: String) -> Self {
        vec![protocol].into()
    }
}

impl From<Vec<String>> for WebSocketInit {
    fn from(protocols: Vec<String>) -> Self {
        Self {
            protocols,
            ..Self::default()
        }
    }
}

impl From<&[&str]> for WebSocketInit {
    fn from(protocols: &[&str]) -> Self {
        protocols
            .iter()
            .map(|&p| p.to_owned())
            .collect::<Vec<_>>()
            .into()
    }
}

impl<const N: usize> From<[&str; N]> for WebSocketInit {
    fn from(protocols: [&str; N]) -> Self {
        protocols.as_slice().into()
    }
}

/// Options of [`WebSocket::add_event_listener_with_options`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddEventListenerOptions {
    /// Remove the listener after its first call.
    pub once: bool,
}

/// A WebSocket with the WHATWG `WebSocket` interface: events, `readyState`,
/// `bufferedAmount`, `send` and `close`.
///
/// `new` must be called within a Tokio runtime: a task of the socket's own runs the opening
/// handshake, reads, and calls the listeners, one event at a time and never from inside a
/// method call of this type.
///
/// # Handles and lifetime
///
/// Clones are handles to the same socket. When the last handle is dropped, an open socket is
/// closed with 1001 (going away), a connecting one is aborted, and the task ends once the
/// closing handshake is over (bounded by the close timeout); listeners still get the `close`
/// event. A listener that holds a handle keeps the socket alive until it closes, as a listener
/// does on the web; after `close` the socket drops its listeners. Use
/// [`downgrade`](Self::downgrade) for a handle that does not keep it alive.
///
/// # Closing
///
/// `close()` starts the closing handshake; `close` fires when it completes, or when the close
/// timeout (`close_timeout`, 5 s) has passed since it started, whether the peer stays silent,
/// keeps sending or answers late (then with 1006, `wasClean` false). The socket is then
/// closed and the task ends. [`terminate`](Self::terminate) closes at once, without the
/// handshake.
///
/// # Which listeners see which events
///
/// On the web, listeners added right after the constructor see every event: events wait for
/// the script to finish. Here the socket's task dispatches them, one at a time and in the
/// standard's order (`open`, `message`*, `error` if failed, `close`; or `error`, `close` when the
/// opening fails), and what is guaranteed depends on when a listener is added:
///
/// - **In [`with_listeners`](Self::with_listeners)'s setup** (before the task starts): every
///   event, on every runtime. This is the way to add listeners on a multi-thread runtime.
/// - **Before the constructing task's next `.await`, on a current-thread runtime**: every
///   event too, since nothing runs until that task yields.
/// - **After `new`, on a multi-thread runtime**, where the task runs in parallel with the code
///   that called `new`: until that code looks at the socket (calls `ready_state`,
///   `protocol`, `extensions`, `buffered_amount`, `send`, `close`, `terminate` or [`ping`]
///   outside a listener), a listener added late still receives the `open`, `error` and
///   `close` events that have already fired, queued like any event and in the order they
///   fired, even when the connection was over at once. `message` events that fired before it
///   was added are not replayed. For the same reason `readyState` may have moved on when that
///   code first reads it: right after `close()` during the opening it reads CLOSED rather
///   than CLOSING if the task has already failed the connection.
#[derive(Clone)]
pub struct WebSocket {
    handle: Arc<Handle>,
}

/// A handle that does not keep the socket open; see [`WebSocket::downgrade`].
#[derive(Clone, Debug)]
pub struct WeakWebSocket(Weak<Handle>);

impl WeakWebSocket {
    /// The socket, if a handle of it still exists.
    pub fn upgrade(&self) -> Option<WebSocket> {
        self.0.upgrade().map(|handle| WebSocket { handle })
    }
}

struct Handle {
    core: Arc<Core>,
}

impl Drop for Handle {
    /// The last handle is gone: abort the opening, or close with 1001.
    fn drop(&mut self) {
        self.core.start_closing(false, |shared| {
            shared.close(&CloseInfo {
                close_code: Some(CloseCode::GOING_AWAY.as_u16()),
                reason: String::new(),
            });
        });
    }
}

macro_rules! handler_attribute {
    ($get:ident, $set:ident, $clear:ident, $handler:expr, $name:literal) => {
        #[doc = concat!("The `", $name, "` attribute: the handler set with [`", stringify!($set), "`](Self::", stringify!($set), ").")]
        pub fn $get(&self) -> Option<EventListener> {
            self.core().target.handler($handler)
        }

        #[doc = concat!("Sets `", $name, "`: a handler that runs in the place it was first set among the listeners.")]
        pub fn $set(&self, handler: impl Into<EventListener>) {
            self.core().set_handler($handler, Some(handler.into()));
        }

        #[doc = concat!("Sets `", $name, "` to null, removing the handler.")]
        pub fn $clear(&self) {
            self.core().set_handler($handler, None);
        }
    };
}

impl WebSocket {
    /// `WebSocket.CONNECTING`.
    pub const CONNECTING: ReadyState = ReadyState::Connecting;
    /// `WebSocket.OPEN`.
    pub const OPEN: ReadyState = ReadyState::Open;
    /// `WebSocket.CLOSING`.
    pub const CLOSING: ReadyState = ReadyState::Closing;
    /// `WebSocket.CLOSED`.
    pub const CLOSED: ReadyState = ReadyState::Closed;

    /// Starts connecting to `url` (`ws`, `wss`, `http` or `https`). `init` is a
    /// [`WebSocketInit`], a protocol (`"chat"`) or a list of protocols (`["a", "b"]`).
    ///
    /// Fails at once with `SyntaxError` for a bad URL or protocol list, and with
    /// `InvalidStateError` outside a Tokio runtime; network failures come later, as the `error`
    /// and `close` (1006) events.
    pub fn new(url: &str, init: impl Into<WebSocketInit>) -> Result<Self, Error> {
        Self::with_listeners(url, init, |_| {})
    }

    /// [`new`](Self::new), with `setup` run on the socket before its task starts, so that the
    /// listeners it adds see every event, in order, on every runtime (as graphql-ws's `on`
    /// option registers listeners before the client starts).
    ///
    /// ```no_run
    /// use whatwg_websocket::{Event, WebSocket};
    ///
    /// # async fn run() -> Result<(), whatwg_websocket::Error> {
    /// let ws = WebSocket::with_listeners("wss://chat.example/ws", (), |ws| {
    ///     let target = ws.downgrade();
    ///     ws.set_onopen(move |_: &Event| {
    ///         if let Some(ws) = target.upgrade() {
    ///             let _ = ws.send("hi");
    ///         }
    ///     });
    ///     ws.set_onmessage(|event: &Event| println!("{:?}", event.data()));
    ///     ws.add_event_listener("close", |event: &Event| println!("closed: {}", event.code()));
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn with_listeners(
        url: &str,
        init: impl Into<WebSocketInit>,
        setup: impl FnOnce(&WebSocket),
    ) -> Result<Self, Error> {
        let init = init.into();
        let url = parse_url(url)?;
        validate_protocols(&init.protocols)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::InvalidState("WebSocket::new must be called within a Tokio runtime".into())
        })?;
        let config = Config {
            role: Role::Client,
            limits: init.limits,
            close_timeout: init.close_timeout.unwrap_or(DEFAULT_CLOSE_TIMEOUT),
            read_high_water_mark: DEFAULT_HIGH_WATER_MARK,
            write_high_water_mark: DEFAULT_HIGH_WATER_MARK,
            deflate: init.deflate,
            timeouts: Timeouts {
                keepalive: init.keepalive,
                ..Timeouts::default()
            },
            // Unused: the event loop always reads.
            read_ahead_after: crate::stream::DEFAULT_READ_AHEAD_AFTER,
        };
        let offer = config.extensions_offer();
        let abort = CancellationToken::new();
        let shared = Shared::new(config, abort.clone(), Driver::EventLoop);
        let core = Arc::new(Core::new(shared, url.clone()));
        let request = HandshakeRequest {
            url,
            protocols: init.protocols,
            extensions: offer,
            headers: init.headers,
        };
        let dispatcher = init.dispatcher.unwrap_or_else(|| Arc::new(Agent::new()));
        let ws = Self {
            handle: Arc::new(Handle { core: core.clone() }),
        };
        setup(&ws);
        runtime.spawn(event_loop::run(core, request, dispatcher, abort));
        Ok(ws)
    }

    fn core(&self) -> &Arc<Core> {
        &self.handle.core
    }

    /// A handle that does not keep the socket alive.
    pub fn downgrade(&self) -> WeakWebSocket {
        WeakWebSocket(Arc::downgrade(&self.handle))
    }

    /// The URL, after the standard's parsing (scheme `ws` or `wss`).
    pub fn url(&self) -> &str {
        self.core().url.as_str()
    }

    /// `readyState`.
    pub fn ready_state(&self) -> ReadyState {
        self.core().observe();
        self.core().state().ready_state
    }

    /// `bufferedAmount`: bytes of application data (UTF-8 bytes of text) accepted by `send`
    /// and not yet handed to the network. Data sent while closing or closed stays counted.
    pub fn buffered_amount(&self) -> u64 {
        self.core().observe();
        self.core().state().buffered_amount
    }

    /// The last round-trip time measured, by [`ping`] or by the keepalive's pings; `None`
    /// before the first pong. (Not in the web platform, which has no pings.)
    pub fn latency(&self) -> Option<Duration> {
        crate::stream::connection_latency(&self.core().shared)
    }

    /// `protocol`: the subprotocol the server selected, `""` before `open` or if none.
    pub fn protocol(&self) -> String {
        self.core().observe();
        self.core().state().protocol.clone()
    }

    /// `extensions`: the extensions the server accepted, `""` before `open` or if none.
    pub fn extensions(&self) -> String {
        self.core().observe();
        self.core().state().extensions.clone()
    }

    /// `binaryType`: how binary messages are given to `message` listeners.
    pub fn binary_type(&self) -> BinaryType {
        self.core().state().binary_type
    }

    /// Sets `binaryType` to `"blob"` or `"arraybuffer"`; any other value is ignored, as the web
    /// ignores an invalid enumeration value. Applies to messages dispatched from now on.
    pub fn set_binary_type(&self, value: &str) {
        if let Some(binary_type) = BinaryType::parse(value) {
            self.core().state().binary_type = binary_type;
        }
    }

    /// `send(data)`: queues a text (`&str`, `String`) or binary (`Bytes`, `Vec<u8>`, `&[u8]`)
    /// message. `InvalidStateError` while connecting; while closing or closed the data is
    /// dropped, but still counted in `bufferedAmount`, as the standard says.
    pub fn send(&self, data: impl Into<Message>) -> Result<(), Error> {
        let core = self.core();
        core.observe();
        let message = data.into();
        let len = message.len() as u64;
        let mut face = core.state();
        match face.ready_state {
            ReadyState::Connecting => {
                return Err(Error::InvalidState(
                    "the WebSocket is still connecting".into(),
                ));
            }
            ReadyState::Closing | ReadyState::Closed => {
                face.buffered_amount += len;
                return Ok(());
            }
            ReadyState::Open => face.buffered_amount += len,
        }
        let mut state = core.shared.lock();
        if let Phase::Open(connection) = &mut state.phase
            && connection.send(message).is_ok()
        {
            let (_, end) = connection.write_progress();
            face.in_flight.push_back((end, len));
            let _ = connection.poll_flush();
        }
        drop(state);
        drop(face);
        // The event loop moves bufferedAmount down once the socket has taken the data.
        core.shared
            .hub
            .wake_slot(crate::connection::hub::Slot::Read);
        Ok(())
    }

    /// `close(code, reason)`: the code must be 1000 or 3000-4999 (`InvalidAccessError`), the
    /// reason at most 123 UTF-8 bytes (`SyntaxError`), checked in every state. While
    /// connecting, it fails the connection (`error`, then `close` with 1006); while open, it
    /// starts the closing handshake (a reason without a code sends 1000); otherwise it does
    /// nothing.
    pub fn close(&self, code: Option<u16>, reason: Option<&str>) -> Result<(), Error> {
        let reason = reason.unwrap_or("");
        let close_code = validate_close(code, reason)?;
        let core = self.core();
        core.observe();
        core.start_closing(false, |shared| {
            shared.close(&CloseInfo {
                close_code,
                reason: reason.to_owned(),
            });
        });
        Ok(())
    }

    /// Node `ws`'s `terminate()`: closes at once, without the closing handshake. While open or
    /// closing, the socket is dropped and `close` fires with 1006 (`wasClean` false, no
    /// `error`); while connecting, it fails the connection as `close()` does; once closed, it
    /// does nothing.
    pub fn terminate(&self) {
        let core = self.core();
        core.observe();
        core.start_closing(true, Shared::terminate);
    }

    /// `addEventListener(type, listener)`. A listener already registered for `event_type` is
    /// not added again.
    pub fn add_event_listener(&self, event_type: &str, listener: impl Into<EventListener>) {
        self.add_event_listener_with_options(
            event_type,
            listener,
            AddEventListenerOptions::default(),
        );
    }

    /// `addEventListener(type, listener, { once })`.
    pub fn add_event_listener_with_options(
        &self,
        event_type: &str,
        listener: impl Into<EventListener>,
        options: AddEventListenerOptions,
    ) {
        self.core()
            .add_listener(event_type, listener.into(), options.once);
    }

    /// `removeEventListener(type, listener)`.
    pub fn remove_event_listener(&self, event_type: &str, listener: &EventListener) {
        self.core().target.remove(event_type, listener);
    }

    /// `dispatchEvent(event)`: calls the listeners for the event's type now, on this thread,
    /// as the web does. Returns `true` (events here are not cancelable).
    pub fn dispatch_event(&self, event: Event) -> bool {
        self.core().target.dispatch(&event);
        true
    }

    handler_attribute!(onopen, set_onopen, clear_onopen, Handler::Open, "onopen");
    handler_attribute!(
        onmessage,
        set_onmessage,
        clear_onmessage,
        Handler::Message,
        "onmessage"
    );
    handler_attribute!(
        onerror,
        set_onerror,
        clear_onerror,
        Handler::Error,
        "onerror"
    );
    handler_attribute!(
        onclose,
        set_onclose,
        clear_onclose,
        Handler::Close,
        "onclose"
    );
}

/// undici's `ping(ws, payload)`: sends a ping with `payload` (at most 125 bytes, else
/// `TypeError`). Does nothing unless the socket is open. `QuotaExceededError` while the write
/// high-water mark (64 KiB) or more is queued for a peer that does not read: pings cannot grow
/// the write buffer without bound.
pub fn ping(ws: &WebSocket, payload: &[u8]) -> Result<(), Error> {
    if payload.len() > MAX_CONTROL_PAYLOAD {
        return Err(Error::Type(format!(
            "ping payload of {} bytes exceeds 125",
            payload.len()
        )));
    }
    let core = ws.core();
    core.observe();
    let face = core.state();
    if face.ready_state != ReadyState::Open {
        return Ok(());
    }
    crate::stream::ping_connection(&core.shared, payload, None)
}

impl std::fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket")
            .field("url", &self.url())
            .field("ready_state", &self.core().state().ready_state)
            .finish_non_exhaustive()
    }
}
