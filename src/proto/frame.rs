//! Frames and their header (RFC 6455 section 5.2): decode and encode of every length form.

use bytes::{BufMut, Bytes, BytesMut};

use super::mask::extend_masked;
use super::{OpCode, ProtocolError};

/// The longest a header can be: 2 bytes, an 8-byte length and a 4-byte mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload a control frame may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// The RSV1 bit, as it appears in [`Frame::rsv`] and [`FrameHeader::rsv`] (permessage-deflate
/// uses it to mark a compressed message).
pub const RSV1: u8 = 0b100;
/// The RSV2 bit.
pub const RSV2: u8 = 0b010;
/// The RSV3 bit.
pub const RSV3: u8 = 0b001;

/// A frame header as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// The three RSV bits, RSV1 as `0b100` down to RSV3 as `0b001`.
    pub rsv: u8,
    /// What the payload means.
    pub opcode: OpCode,
    /// The masking key, present on every frame a client sends.
    pub mask: Option<[u8; 4]>,
    /// The payload length.
    pub payload_len: u64,
}

impl FrameHeader {
    /// Parses a header from the start of `src`.
    ///
    /// Returns `Ok(None)` when `src` is too short to hold the whole header, otherwise the header
    /// and its length in bytes. Checks the rules that hold for every frame in either direction:
    /// no reserved opcode, no 64-bit length with the high bit set, and control frames unfragmented
    /// and at most 125 bytes. The rules that depend on the role, the negotiated extensions and the
    /// limits are [`FrameDecoder`](super::FrameDecoder)'s.
    #[inline]
    pub fn decode(src: &[u8]) -> Result<Option<(Self, usize)>, ProtocolError> {
        let [b0, b1, ..] = *src else { return Ok(None) };
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0b111;
        let opcode = OpCode::try_from(b0 & 0x0F)?;
        let masked = b1 & 0x80 != 0;
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                return Err(ProtocolError::ControlFrameTooLong);
            }
        }
        let len_bytes = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
        if src.len() < header_len {
            return Ok(None);
        }
        let payload_len = match len7 {
            126 => u64::from(u16::from_be_bytes([src[2], src[3]])),
            127 => {
                let mut raw = [0; 8];
                raw.copy_from_slice(&src[2..10]);
                let len = u64::from_be_bytes(raw);
                if len >> 63 != 0 {
                    return Err(ProtocolError::InvalidPayloadLength);
                }
                len
            }
            short => u64::from(short),
        };
        let mask = masked.then(|| {
            let at = 2 + len_bytes;
            [src[at], src[at + 1], src[at + 2], src[at + 3]]
        });
        Ok(Some((
            Self {
                fin,
                rsv,
                opcode,
                mask,
                payload_len,
            },
            header_len,
        )))
    }

    /// The length of this header on the wire, using the shortest length form.
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes this header into `dst` using the shortest length form; returns its length.
    ///
    /// A fixed-size buffer, so that a header can be written beside a payload that is sent
    /// without being copied.
    #[inline]
    pub fn encode(&self, dst: &mut [u8; MAX_HEADER_LEN]) -> usize {
        dst[0] = u8::from(self.fin) << 7 | (self.rsv & 0b111) << 4 | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut at = match self.payload_len {
            len @ 0..=125 => {
                dst[1] = mask_bit | len as u8;
                2
            }
            len @ 126..=0xFFFF => {
                dst[1] = mask_bit | 126;
                dst[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            len => {
                dst[1] = mask_bit | 127;
                dst[2..10].copy_from_slice(&len.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            dst[at..at + 4].copy_from_slice(&key);
            at += 4;
        }
        at
    }
}

/// A whole frame with its payload unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// The three RSV bits, RSV1 as `0b100` down to RSV3 as `0b001`.
    pub rsv: u8,
    /// What the payload means.
    pub opcode: OpCode,
    /// The application data, unmasked.
    pub payload: Bytes,
}

impl Frame {
    /// A final frame with no RSV bits set.
    pub fn new(opcode: OpCode, payload: impl Into<Bytes>) -> Self {
        Self {
            fin: true,
            rsv: 0,
            opcode,
            payload: payload.into(),
        }
    }

    /// The header for this frame with the given mask.
    #[inline]
    pub fn header(&self, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: self.fin,
            rsv: self.rsv,
            opcode: self.opcode,
            mask,
            payload_len: self.payload.len() as u64,
        }
    }

    /// Appends this frame to `dst`: the header, then the payload, masked with `mask` if given.
    ///
    /// The frame is written as it is; keeping control frames short and unfragmented is the
    /// caller's part.
    pub fn encode(&self, mask: Option<[u8; 4]>, dst: &mut BytesMut) {
        if let Some(key) = mask
            && self.payload.len() <= 125
        {
            // The common small masked frame: a fixed 6-byte header, no length form to pick.
            let b0 = u8::from(self.fin) << 7 | (self.rsv & 0b111) << 4 | self.opcode.as_u8();
            let b1 = 0x80 | self.payload.len() as u8;
            dst.reserve(6 + self.payload.len());
            dst.put_slice(&[b0, b1, key[0], key[1], key[2], key[3]]);
            extend_masked(dst, &self.payload, key);
            return;
        }
        let mut header = [0; MAX_HEADER_LEN];
        let header_len = self.header(mask).encode(&mut header);
        dst.reserve(header_len + self.payload.len());
        dst.put_slice(&header[..header_len]);
        match mask {
            Some(key) => extend_masked(dst, &self.payload, key),
            None => dst.put_slice(&self.payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::apply_mask;

    fn header(opcode: OpCode, len: u64, mask: Option<[u8; 4]>) -> FrameHeader {
        FrameHeader {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: len,
        }
    }

    #[test]
    fn each_length_form_uses_the_shortest_encoding_and_decodes_back() {
        let cases: [(u64, usize); 7] = [
            (0, 2),
            (125, 2),
            (126, 4),
            (0xFFFF, 4),
            (0x1_0000, 10),
            (u32::MAX as u64 + 1, 10),
            (i64::MAX as u64, 10),
        ];
        for (len, expected) in cases {
            for mask in [None, Some([9, 8, 7, 6])] {
                let h = header(OpCode::Binary, len, mask);
                let mut buf = [0; MAX_HEADER_LEN];
                let n = h.encode(&mut buf);
                let want = expected + if mask.is_some() { 4 } else { 0 };
                assert_eq!(n, want, "len {len}");
                assert_eq!(h.encoded_len(), want);
                assert_eq!(FrameHeader::decode(&buf[..n]), Ok(Some((h, n))));
                for short in 0..n {
                    assert_eq!(
                        FrameHeader::decode(&buf[..short]),
                        Ok(None),
                        "prefix {short}"
                    );
                }
            }
        }
    }

    #[test]
    fn known_bytes_decode() {
        // RFC 6455 section 5.7 examples.
        let (h, n) = FrameHeader::decode(&[0x81, 0x05, b'H']).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.mask, n),
            (true, OpCode::Text, 5, None, 2)
        );
        let (h, n) = FrameHeader::decode(&[0x01, 0x03]).unwrap().unwrap();
        assert_eq!((h.fin, h.opcode, n), (false, OpCode::Text, 2));
        let (h, _) = FrameHeader::decode(&[0x82, 0x7E, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!(h.payload_len, 256);
        let (h, _) = FrameHeader::decode(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!(h.payload_len, 65536);
        let (h, n) = FrameHeader::decode(&[0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d])
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.opcode, h.mask, n),
            (OpCode::Ping, Some([0x37, 0xfa, 0x21, 0x3d]), 6)
        );
    }

    #[test]
    fn rsv_bits_are_read_and_written() {
        for rsv in 0..8 {
            let mut h = header(OpCode::Text, 3, None);
            h.rsv = rsv;
            let mut buf = [0; MAX_HEADER_LEN];
            let n = h.encode(&mut buf);
            assert_eq!(buf[0], 0x81 | rsv << 4);
            assert_eq!(FrameHeader::decode(&buf[..n]).unwrap().unwrap().0.rsv, rsv);
        }
    }

    #[test]
    fn reserved_opcodes_are_rejected() {
        for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpCode(op))
            );
        }
    }

    #[test]
    fn control_frames_must_be_short_and_final() {
        for op in [0x8, 0x9, 0xA] {
            assert_eq!(
                FrameHeader::decode(&[op, 0]),
                Err(ProtocolError::FragmentedControlFrame)
            );
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 126]),
                Err(ProtocolError::ControlFrameTooLong)
            );
            assert_eq!(
                FrameHeader::decode(&[0x80 | op, 127]),
                Err(ProtocolError::ControlFrameTooLong)
            );
            assert!(FrameHeader::decode(&[0x80 | op, 125]).unwrap().is_some());
        }
    }

    #[test]
    fn a_64_bit_length_with_the_high_bit_set_is_rejected() {
        let buf = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            FrameHeader::decode(&buf),
            Err(ProtocolError::InvalidPayloadLength)
        );
    }

    #[test]
    fn encode_masks_the_payload_copy() {
        let frame = Frame::new(OpCode::Text, Bytes::from_static(b"Hello"));
        let mut dst = BytesMut::new();
        frame.encode(Some([0x37, 0xfa, 0x21, 0x3d]), &mut dst);
        assert_eq!(
            &dst[..],
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        assert_eq!(&frame.payload[..], b"Hello");
        let mut dst = BytesMut::new();
        frame.encode(None, &mut dst);
        assert_eq!(&dst[..], b"\x81\x05Hello");
    }

    #[test]
    fn masked_frames_of_every_length_form_append_after_what_is_buffered() {
        let key = [1, 2, 3, 4];
        for len in [
            0,
            1,
            7,
            8,
            13,
            14,
            15,
            125,
            126,
            255,
            256,
            300,
            0xFFFF,
            0x1_0000 + 3,
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let frame = Frame::new(OpCode::Binary, payload.clone());
            let mut dst = BytesMut::from(&b"before"[..]);
            frame.encode(Some(key), &mut dst);
            let h = frame.header(Some(key));
            let at = 6 + h.encoded_len();
            assert_eq!(&dst[..6], b"before");
            assert_eq!(
                FrameHeader::decode(&dst[6..]),
                Ok(Some((h, h.encoded_len())))
            );
            assert_eq!(dst.len(), at + len, "len {len}");
            let mut unmasked = dst[at..].to_vec();
            apply_mask(&mut unmasked, key);
            assert_eq!(unmasked, payload, "len {len}");
        }
    }
}
