//! The sans-IO RFC 6455 core: no runtime, no sockets, only bytes in and bytes out.
//!
//! - [`FrameHeader`] and [`Frame`]: decode and encode of every length form.
//! - [`apply_mask`]: masking at close to memory speed.
//! - [`FrameDecoder`] and [`MessageDecoder`]: the receive path, enforcing the role, the control
//!   frame rules, the [`Limits`], fragment reassembly and UTF-8 validation.
//! - [`FrameEncoder`]: the send path, masking as the [`Role`] requires.
//! - [`CloseCode`] and [`CloseFrame`]: close codes and Close bodies; every [`ProtocolError`]
//!   maps to one close code through `CloseCode::from(&error)`.
//!
//! ```
//! use bytes::BytesMut;
//! use whatwg_websocket::proto::{Frame, FrameEncoder, Incoming, Limits, Message, MessageDecoder, OpCode, Role};
//!
//! // A client's frame, as it goes on the wire...
//! let mut wire = BytesMut::new();
//! FrameEncoder::new(Role::Client).encode(&Frame::new(OpCode::Text, "hi"), &mut wire);
//! // ...and as the server receives it.
//! let mut server = MessageDecoder::new(Role::Server, Limits::default());
//! assert_eq!(server.decode(&mut wire)?, Some(Incoming::Message(Message::text("hi"))));
//! # Ok::<(), whatwg_websocket::proto::ProtocolError>(())
//! ```

mod assembler;
mod close;
mod decoder;
pub mod deflate;
mod encoder;
mod error;
mod frame;
mod limits;
mod mask;
mod message;
mod opcode;
mod receiver;
mod utf8;

pub use close::{CloseCode, CloseFrame, InvalidCloseFrame, MAX_CLOSE_REASON_LEN};
pub use decoder::FrameDecoder;
pub use encoder::FrameEncoder;
pub use error::ProtocolError;
pub use frame::{Frame, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, RSV1, RSV2, RSV3};
pub use limits::{DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, Limits};
pub use mask::{apply_mask, apply_mask_at, extend_masked};
pub use message::{Incoming, Message};
pub use opcode::OpCode;
pub use receiver::MessageDecoder;
pub use utf8::{Utf8Bytes, Utf8Validator};

/// Which end of the connection an endpoint is. A client masks what it sends and rejects masked
/// frames; a server does the reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that opened the connection.
    Client,
    /// The end that accepted it.
    Server,
}
