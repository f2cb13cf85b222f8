#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod proto;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use proto::{CloseCode, CloseFrame, Limits, Message, ProtocolError, Utf8Bytes};
