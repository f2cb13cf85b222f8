#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod close_info;
mod error;
pub mod handshake;
pub mod proto;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use close_info::CloseInfo;
pub use error::{Error, Failure, WebSocketError};
pub use proto::{CloseCode, CloseFrame, Limits, Message, ProtocolError, Utf8Bytes};
