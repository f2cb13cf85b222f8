//! The events a `WebSocket` fires: `Event`, and the fields of `MessageEvent` and `CloseEvent`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::{Utf8Bytes, WebSocketError};

/// Which interface an [`Event`] has, as the web platform names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventInterface {
    /// A plain `Event` (`open`, `error`, or one made with [`Event::new`]).
    Event,
    /// A `MessageEvent` (`message`): [`Event::data`] and [`Event::origin`].
    MessageEvent,
    /// A `CloseEvent` (`close`): [`Event::was_clean`], [`Event::code`], [`Event::reason`].
    CloseEvent,
}

/// The data of a `MessageEvent`: text, or binary data in the form `binary_type` chose when the
/// event was dispatched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageData {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message while `binary_type` is `"blob"` (the default).
    Blob(Bytes),
    /// A binary message while `binary_type` is `"arraybuffer"`.
    ArrayBuffer(Bytes),
}

impl MessageData {
    /// The text, if this is a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }

    /// The bytes, if this is a binary message (either form).
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Self::Blob(bytes) | Self::ArrayBuffer(bytes) => Some(bytes),
            Self::Text(_) => None,
        }
    }
}

/// `binaryType`: how binary messages are presented to `message` listeners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BinaryType {
    /// `"blob"`, the default: [`MessageData::Blob`].
    #[default]
    Blob,
    /// `"arraybuffer"`: [`MessageData::ArrayBuffer`].
    ArrayBuffer,
}

impl BinaryType {
    /// The web platform's string for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blob => "blob",
            Self::ArrayBuffer => "arraybuffer",
        }
    }

    /// Parses `"blob"` or `"arraybuffer"` (exactly, as the IDL enumeration does).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "blob" => Some(Self::Blob),
            "arraybuffer" => Some(Self::ArrayBuffer),
            _ => None,
        }
    }
}

impl fmt::Display for BinaryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fields of a `CloseEvent`, for [`Event::close`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CloseEventInit {
    /// Whether the connection closed cleanly.
    pub was_clean: bool,
    /// The close code (1005 when the Close had none, 1006 when none arrived).
    pub code: u16,
    /// The close reason.
    pub reason: String,
}

/// The fields of a `MessageEvent`, for [`Event::message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEventInit {
    /// The message.
    pub data: MessageData,
    /// The serialized origin of the sender, e.g. `ws://example.com:8080`.
    pub origin: String,
}

#[derive(Clone, Debug)]
enum Detail {
    Plain,
    /// The data and the origin (shared by every message of a socket).
    Message(MessageData, Arc<str>),
    Close(CloseEventInit),
}

/// An event: a plain `Event`, a `MessageEvent` or a `CloseEvent`, told apart by
/// [`interface`](Self::interface). The fields of the other interfaces read as their defaults.
///
/// Events that the connection fires are *trusted*; the `error` and `close` events of a failed
/// connection carry the Rust-side cause in [`error`](Self::error), which the web does not show.
#[derive(Clone)]
pub struct Event {
    /// A `&'static str` for the events the connection fires: no allocation per message.
    event_type: Cow<'static, str>,
    detail: Detail,
    trusted: bool,
    error: Option<WebSocketError>,
}

impl Event {
    /// A plain event of type `event_type` (`new Event(type)`), for
    /// [`dispatch_event`](crate::WebSocket::dispatch_event).
    pub fn new(event_type: &str) -> Self {
        Self::build(event_type.to_owned().into(), Detail::Plain)
    }

    /// A `MessageEvent` of type `event_type` (`new MessageEvent(type, init)`).
    pub fn message(event_type: &str, init: MessageEventInit) -> Self {
        let detail = Detail::Message(init.data, init.origin.into());
        Self::build(event_type.to_owned().into(), detail)
    }

    /// A `CloseEvent` of type `event_type` (`new CloseEvent(type, init)`).
    pub fn close(event_type: &str, init: CloseEventInit) -> Self {
        Self::build(event_type.to_owned().into(), Detail::Close(init))
    }

    /// A plain event the connection fires (`open`, `error`).
    pub(crate) fn fired(event_type: &'static str) -> Self {
        Self::build(event_type.into(), Detail::Plain)
    }

    /// The `message` event the connection fires, sharing the socket's `origin`.
    pub(crate) fn fired_message(data: MessageData, origin: Arc<str>) -> Self {
        Self::build("message".into(), Detail::Message(data, origin)).trusted(None)
    }

    /// The `close` event the connection fires.
    pub(crate) fn fired_close(init: CloseEventInit) -> Self {
        Self::build("close".into(), Detail::Close(init))
    }

    fn build(event_type: Cow<'static, str>, detail: Detail) -> Self {
        Self {
            event_type,
            detail,
            trusted: false,
            error: None,
        }
    }

    /// An event the connection fires.
    pub(crate) fn trusted(mut self, error: Option<WebSocketError>) -> Self {
        self.trusted = true;
        self.error = error;
        self
    }

    /// The event's type, e.g. `"open"`.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The interface of the event.
    pub fn interface(&self) -> EventInterface {
        match self.detail {
            Detail::Plain => EventInterface::Event,
            Detail::Message(..) => EventInterface::MessageEvent,
            Detail::Close(_) => EventInterface::CloseEvent,
        }
    }

    /// `isTrusted`: fired by the connection rather than by `dispatch_event`.
    pub fn is_trusted(&self) -> bool {
        self.trusted
    }

    /// `MessageEvent.data`; `None` for other interfaces.
    pub fn data(&self) -> Option<&MessageData> {
        match &self.detail {
            Detail::Message(data, _) => Some(data),
            _ => None,
        }
    }

    /// `MessageEvent.origin`; `""` for other interfaces.
    pub fn origin(&self) -> &str {
        match &self.detail {
            Detail::Message(_, origin) => origin,
            _ => "",
        }
    }

    /// `CloseEvent.wasClean`; `false` for other interfaces.
    pub fn was_clean(&self) -> bool {
        matches!(&self.detail, Detail::Close(init) if init.was_clean)
    }

    /// `CloseEvent.code`; `0` for other interfaces.
    pub fn code(&self) -> u16 {
        match &self.detail {
            Detail::Close(init) => init.code,
            _ => 0,
        }
    }

    /// `CloseEvent.reason`; `""` for other interfaces.
    pub fn reason(&self) -> &str {
        match &self.detail {
            Detail::Close(init) => &init.reason,
            _ => "",
        }
    }

    /// Why the connection failed, on the `error` and `close` events of a connection that did
    /// not close cleanly (Rust only; the web shows just the event and code 1006).
    pub fn error(&self) -> Option<&WebSocketError> {
        self.error.as_ref()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Event");
        d.field("type", &self.event_type);
        match &self.detail {
            Detail::Plain => {}
            Detail::Message(data, origin) => {
                d.field("data", data).field("origin", origin);
            }
            Detail::Close(init) => {
                d.field("was_clean", &init.was_clean)
                    .field("code", &init.code)
                    .field("reason", &init.reason);
            }
        }
        if let Some(error) = &self.error {
            d.field("error", error);
        }
        d.finish()
    }
}

/// An event listener: a callback with an identity, so that it can be removed again and is
/// not added twice for the same type (as with `addEventListener` on the web).
///
/// Cloning gives the same listener.
#[derive(Clone)]
pub struct EventListener(Arc<dyn Fn(&Event) + Send + Sync>);

impl EventListener {
    /// A listener that calls `callback`.
    pub fn new(callback: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        Self(Arc::new(callback))
    }

    pub(crate) fn call(&self, event: &Event) {
        (self.0)(event);
    }

    pub(crate) fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<F: Fn(&Event) + Send + Sync + 'static> From<F> for EventListener {
    fn from(callback: F) -> Self {
        Self::new(callback)
    }
}

impl fmt::Debug for EventListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EventListener")
            .field(&Arc::as_ptr(&self.0).cast::<()>())
            .finish()
    }
}
