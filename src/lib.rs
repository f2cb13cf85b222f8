#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod close_info;
mod connection;
pub mod dispatcher;
mod error;
pub mod handshake;
pub mod proto;
mod server;
mod stream;
mod websocket;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use close_info::CloseInfo;
pub use connection::{DEFAULT_CLOSE_TIMEOUT, Keepalive};
pub use dispatcher::{
    Agent, AgentOptions, Dispatcher, EnvHttpProxyAgent, EnvHttpProxyOptions, NoProxy, ProxyAgent,
    ProxyAgentBuilder, ProxyError, TcpKeepalive, TlsRoots,
};
pub use error::{Error, Failure, WebSocketError};
pub use proto::{CloseCode, CloseFrame, Limits, Message, ProtocolError, Utf8Bytes};
pub use server::{H2Connection, ServerOptions, accept, accept_h2, accept_upgraded};
pub use stream::{
    DEFAULT_HIGH_WATER_MARK, DEFAULT_READ_AHEAD_AFTER, Opened, Pong, Readable, StreamOptions,
    WebSocketStream, Writable,
};
pub use tokio_util::sync::CancellationToken;
pub use websocket::{
    AddEventListenerOptions, BinaryType, CloseEventInit, Event, EventInterface, EventListener,
    MessageData, MessageEventInit, ReadyState, WeakWebSocket, WebSocket, WebSocketInit, ping,
};
