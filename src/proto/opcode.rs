//! Frame opcodes (RFC 6455 section 5.2).

use super::ProtocolError;

/// The opcode of a frame: what its payload means.
///
/// Reserved opcodes (0x3-0x7, 0xB-0xF) have no variant: decoding one is
/// [`ProtocolError::ReservedOpCode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: a further fragment of the message in progress.
    Continuation,
    /// 0x1: the first (or only) frame of a text message.
    Text,
    /// 0x2: the first (or only) frame of a binary message.
    Binary,
    /// 0x8: the closing handshake.
    Close,
    /// 0x9: a ping, answered by a pong with the same payload.
    Ping,
    /// 0xA: a pong.
    Pong,
}

impl OpCode {
    /// Whether this is a control opcode (Close, Ping, Pong): at most 125 bytes, never fragmented.
    #[inline]
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }

    /// The 4-bit wire value.
    #[inline]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }
}

impl TryFrom<u8> for OpCode {
    type Error = ProtocolError;

    /// Reads the low 4 bits of a frame's first byte.
    #[inline]
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        match value {
            0x0 => Ok(Self::Continuation),
            0x1 => Ok(Self::Text),
            0x2 => Ok(Self::Binary),
            0x8 => Ok(Self::Close),
            0x9 => Ok(Self::Ping),
            0xA => Ok(Self::Pong),
            other => Err(ProtocolError::ReservedOpCode(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nibble_is_either_an_opcode_that_round_trips_or_reserved() {
        let mut known = 0;
        for value in 0u8..16 {
            match OpCode::try_from(value) {
                Ok(op) => {
                    known += 1;
                    assert_eq!(op.as_u8(), value);
                    assert_eq!(op.is_control(), value >= 8);
                }
                Err(e) => assert_eq!(e, ProtocolError::ReservedOpCode(value)),
            }
        }
        assert_eq!(known, 6);
    }
}
