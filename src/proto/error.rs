//! Protocol violations by the peer, and the one mapping from each to its close code.

use std::fmt;

use super::CloseCode;

/// A rule of RFC 6455 (or a configured limit) that the peer's bytes broke.
///
/// Each variant maps to exactly one close code through `CloseCode::from(&error)`; that mapping
/// is the only place in the crate that decides which code a failure is reported with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame used a reserved opcode (0x3-0x7, 0xB-0xF).
    ReservedOpCode(u8),
    /// An RSV bit was set that no negotiated extension defines.
    ReservedBits,
    /// A frame sent to a client was masked (servers must not mask).
    UnexpectedMask,
    /// A frame sent to a server was not masked (clients must mask).
    MissingMask,
    /// A 64-bit payload length had its most significant bit set.
    InvalidPayloadLength,
    /// A control frame carried more than 125 bytes of payload.
    ControlFrameTooLong,
    /// A control frame had FIN clear.
    FragmentedControlFrame,
    /// A continuation frame arrived with no fragmented message in progress.
    UnexpectedContinuation,
    /// A Text or Binary frame arrived while a fragmented message was in progress.
    ExpectedContinuation,
    /// A Close frame had a one-byte body (a code takes two).
    InvalidCloseBody,
    /// A Close frame carried a code that may not be sent on the wire.
    InvalidCloseCode(u16),
    /// A text message was not valid UTF-8.
    InvalidUtf8,
    /// A Close frame's reason was not valid UTF-8.
    InvalidCloseReason,
    /// A compressed message (permessage-deflate) did not inflate.
    InvalidCompressedData,
    /// A frame or message was larger than the configured maximum.
    MessageTooLarge {
        /// The configured maximum, in bytes.
        limit: usize,
    },
    /// A message was split into more frames than the configured maximum.
    TooManyFragments {
        /// The configured maximum number of frames per message.
        limit: usize,
    },
    /// (Server) An incomplete message made no progress for the configured
    /// `incomplete_message_timeout`.
    IncompleteMessageTimeout,
}

impl From<&ProtocolError> for CloseCode {
    fn from(error: &ProtocolError) -> Self {
        use ProtocolError::*;
        match error {
            ReservedOpCode(_)
            | ReservedBits
            | UnexpectedMask
            | MissingMask
            | InvalidPayloadLength
            | ControlFrameTooLong
            | FragmentedControlFrame
            | UnexpectedContinuation
            | ExpectedContinuation
            | InvalidCloseBody
            | InvalidCloseCode(_) => CloseCode::PROTOCOL_ERROR,
            InvalidUtf8 | InvalidCloseReason | InvalidCompressedData => CloseCode::INVALID_PAYLOAD,
            MessageTooLarge { .. } => CloseCode::MESSAGE_TOO_BIG,
            TooManyFragments { .. } | IncompleteMessageTimeout => CloseCode::POLICY_VIOLATION,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ProtocolError::*;
        match self {
            ReservedOpCode(op) => write!(f, "reserved opcode {op:#x}"),
            ReservedBits => f.write_str("reserved bits set without a negotiated extension"),
            UnexpectedMask => f.write_str("masked frame from a server"),
            MissingMask => f.write_str("unmasked frame from a client"),
            InvalidPayloadLength => f.write_str("64-bit payload length with the high bit set"),
            ControlFrameTooLong => f.write_str("control frame longer than 125 bytes"),
            FragmentedControlFrame => f.write_str("fragmented control frame"),
            UnexpectedContinuation => f.write_str("continuation frame without a message"),
            ExpectedContinuation => f.write_str("new message inside a fragmented message"),
            InvalidCloseBody => f.write_str("close frame with a one-byte body"),
            InvalidCloseCode(code) => write!(f, "close code {code} is not allowed on the wire"),
            InvalidUtf8 => f.write_str("text message is not valid UTF-8"),
            InvalidCloseReason => f.write_str("close reason is not valid UTF-8"),
            InvalidCompressedData => f.write_str("compressed message does not inflate"),
            MessageTooLarge { limit } => write!(f, "message larger than {limit} bytes"),
            TooManyFragments { limit } => write!(f, "message in more than {limit} fragments"),
            IncompleteMessageTimeout => f.write_str("incomplete message made no progress"),
        }
    }
}

impl std::error::Error for ProtocolError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_maps_to_the_close_code_rfc_6455_names() {
        use ProtocolError::*;
        let cases = [
            (ReservedOpCode(3), 1002),
            (ReservedBits, 1002),
            (UnexpectedMask, 1002),
            (MissingMask, 1002),
            (InvalidPayloadLength, 1002),
            (ControlFrameTooLong, 1002),
            (FragmentedControlFrame, 1002),
            (UnexpectedContinuation, 1002),
            (ExpectedContinuation, 1002),
            (InvalidCloseBody, 1002),
            (InvalidCloseCode(1005), 1002),
            (InvalidUtf8, 1007),
            (InvalidCloseReason, 1007),
            (InvalidCompressedData, 1007),
            (MessageTooLarge { limit: 1 }, 1009),
            (TooManyFragments { limit: 1 }, 1008),
            (IncompleteMessageTimeout, 1008),
        ];
        for (error, code) in cases {
            assert_eq!(CloseCode::from(&error).as_u16(), code, "{error}");
        }
    }
}
