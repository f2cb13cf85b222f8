//! Close codes and the body of a Close frame (RFC 6455 sections 5.5.1 and 7.4).

use std::fmt;
use std::num::NonZeroU16;

use bytes::{BufMut, Bytes, BytesMut};

use super::{ProtocolError, Utf8Bytes};

/// A close status code.
///
/// The constants name the codes of RFC 6455 section 7.4.1 and the IANA registry. Codes 1005,
/// 1006 and 1015 are only ever reported locally; [`CloseCode::is_valid_on_wire`] says which
/// codes a Close frame may carry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(NonZeroU16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self::from_const(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation, handle dropped).
    pub const GOING_AWAY: Self = Self::from_const(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self::from_const(1002);
    /// 1003: the endpoint received a type of data it cannot accept.
    pub const UNSUPPORTED_DATA: Self = Self::from_const(1003);
    /// 1005: reported when a Close frame had no code; never sent.
    pub const NO_STATUS_RECEIVED: Self = Self::from_const(1005);
    /// 1006: reported when the connection closed without a Close frame; never sent.
    pub const ABNORMAL_CLOSURE: Self = Self::from_const(1006);
    /// 1007: a message's data did not match its type (invalid UTF-8 in a text message).
    pub const INVALID_PAYLOAD: Self = Self::from_const(1007);
    /// 1008: a message broke the endpoint's policy (here: too many fragments).
    pub const POLICY_VIOLATION: Self = Self::from_const(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self::from_const(1009);
    /// 1010: the client expected the server to negotiate an extension it did not.
    pub const MANDATORY_EXTENSION: Self = Self::from_const(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self::from_const(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self::from_const(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self::from_const(1013);
    /// 1014: a gateway received an invalid response.
    pub const BAD_GATEWAY: Self = Self::from_const(1014);
    /// 1015: reported when the TLS handshake failed; never sent.
    pub const TLS_HANDSHAKE: Self = Self::from_const(1015);

    const fn from_const(code: u16) -> Self {
        match NonZeroU16::new(code) {
            Some(code) => Self(code),
            None => panic!("close code 0"),
        }
    }

    /// The numeric code.
    #[inline]
    pub const fn as_u16(self) -> u16 {
        self.0.get()
    }

    /// Whether a Close frame may carry this code: 1000-1003, 1007-1014 and 3000-4999.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0.get(), 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl TryFrom<u16> for CloseCode {
    type Error = ProtocolError;

    /// Any non-zero code is a `CloseCode`; whether it may be sent is
    /// [`CloseCode::is_valid_on_wire`].
    fn try_from(code: u16) -> Result<Self, Self::Error> {
        NonZeroU16::new(code)
            .map(Self)
            .ok_or(ProtocolError::InvalidCloseCode(code))
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.as_u16()
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.as_u16())
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.as_u16(), f)
    }
}

/// The most reason bytes a Close frame can carry: 125 bytes of control payload less the code.
pub const MAX_CLOSE_REASON_LEN: usize = 123;

/// The body of a Close frame that carries a code: the code and a UTF-8 reason.
///
/// A Close frame with an empty body has no `CloseFrame`; it is reported as 1005.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    code: CloseCode,
    reason: Utf8Bytes,
}

/// Why a [`CloseFrame`] could not be built for sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidCloseFrame {
    /// The code may not be sent on the wire (see [`CloseCode::is_valid_on_wire`]).
    Code(CloseCode),
    /// The reason is longer than [`MAX_CLOSE_REASON_LEN`] bytes of UTF-8.
    ReasonTooLong(usize),
}

impl fmt::Display for InvalidCloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "close code {code} may not be sent"),
            Self::ReasonTooLong(len) => {
                write!(
                    f,
                    "close reason of {len} bytes exceeds {MAX_CLOSE_REASON_LEN}"
                )
            }
        }
    }
}

impl std::error::Error for InvalidCloseFrame {}

impl CloseFrame {
    /// A Close body to send: the code must be valid on the wire and the reason at most
    /// [`MAX_CLOSE_REASON_LEN`] bytes.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Result<Self, InvalidCloseFrame> {
        let reason = reason.into();
        if !code.is_valid_on_wire() {
            return Err(InvalidCloseFrame::Code(code));
        }
        if reason.len() > MAX_CLOSE_REASON_LEN {
            return Err(InvalidCloseFrame::ReasonTooLong(reason.len()));
        }
        Ok(Self { code, reason })
    }

    /// The close code.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason, possibly empty.
    pub fn reason(&self) -> &Utf8Bytes {
        &self.reason
    }

    /// Parses a received Close frame's payload (control-frame length already checked).
    ///
    /// `Ok(None)` is an empty body. A one-byte body or a code not valid on the wire is 1002; a
    /// reason that is not UTF-8 is 1007.
    pub fn parse(payload: Bytes) -> Result<Option<Self>, ProtocolError> {
        match payload.len() {
            0 => Ok(None),
            1 => Err(ProtocolError::InvalidCloseBody),
            _ => {
                let raw = u16::from_be_bytes([payload[0], payload[1]]);
                let code = CloseCode::try_from(raw)?;
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(raw));
                }
                let reason = Utf8Bytes::try_from(payload.slice(2..))
                    .map_err(|_| ProtocolError::InvalidCloseReason)?;
                Ok(Some(Self { code, reason }))
            }
        }
    }

    /// Appends the payload of a Close frame with this body to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(2 + self.reason.len());
        dst.put_u16(self.code.as_u16());
        dst.put_slice(self.reason.as_bytes());
    }

    /// The payload of a Close frame with this body.
    pub fn to_payload(&self) -> Bytes {
        let mut payload = BytesMut::new();
        self.encode(&mut payload);
        payload.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_matches_rfc_6455_and_the_iana_registry() {
        let valid = |c: u16| CloseCode::try_from(c).is_ok_and(|c| c.is_valid_on_wire());
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ] {
            assert!(valid(code), "{code}");
        }
        for code in [3000, 3999, 4000, 4999] {
            assert!(valid(code), "{code}");
        }
        for code in [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!valid(code), "{code}");
        }
    }

    #[test]
    fn empty_body_has_no_code() {
        assert_eq!(CloseFrame::parse(Bytes::new()), Ok(None));
    }

    #[test]
    fn one_byte_body_is_a_protocol_error() {
        assert_eq!(
            CloseFrame::parse(Bytes::from_static(&[0x03])),
            Err(ProtocolError::InvalidCloseBody)
        );
    }

    #[test]
    fn code_and_reason_parse() {
        let frame = CloseFrame::parse(Bytes::from_static(b"\x03\xe8bye"))
            .unwrap()
            .unwrap();
        assert_eq!(frame.code(), CloseCode::NORMAL);
        assert_eq!(frame.reason().as_str(), "bye");
    }

    #[test]
    fn codes_never_sent_are_rejected_with_1002() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
            let body = Bytes::copy_from_slice(&code.to_be_bytes());
            let err = CloseFrame::parse(body).unwrap_err();
            assert_eq!(err, ProtocolError::InvalidCloseCode(code));
            assert_eq!(CloseCode::from(&err), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn invalid_utf8_reason_is_1007() {
        let err = CloseFrame::parse(Bytes::from_static(b"\x03\xe8\xce\xba\xe1\xbd")).unwrap_err();
        assert_eq!(err, ProtocolError::InvalidCloseReason);
        assert_eq!(CloseCode::from(&err), CloseCode::INVALID_PAYLOAD);
    }

    #[test]
    fn new_validates_code_and_reason_length() {
        assert!(CloseFrame::new(CloseCode::NORMAL, "x".repeat(123)).is_ok());
        assert_eq!(
            CloseFrame::new(CloseCode::NORMAL, "x".repeat(124)),
            Err(InvalidCloseFrame::ReasonTooLong(124))
        );
        assert_eq!(
            CloseFrame::new(CloseCode::ABNORMAL_CLOSURE, ""),
            Err(InvalidCloseFrame::Code(CloseCode::ABNORMAL_CLOSURE))
        );
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let frame = CloseFrame::new(CloseCode::try_from(4321).unwrap(), "état").unwrap();
        let payload = frame.to_payload();
        assert_eq!(&payload[..2], &4321u16.to_be_bytes());
        assert_eq!(CloseFrame::parse(payload), Ok(Some(frame)));
    }
}
