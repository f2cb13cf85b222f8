//! Frame decoding from a read buffer: role rules, limits, and unmasking in place.

use bytes::{Buf, Bytes, BytesMut};

use super::{Frame, FrameHeader, Limits, ProtocolError, Role, apply_mask_at};

/// Decodes frames from the front of a read buffer.
///
/// Beyond [`FrameHeader::decode`]'s rules it enforces the role (a client rejects masked frames,
/// a server unmasked ones), rejects RSV bits (but RSV1 on the first frame of a message once
/// permessage-deflate is negotiated), and rejects a frame
/// whose announced length exceeds the message size limit before any of its payload is
/// buffered. A masked payload is unmasked in place as it arrives, and handed out as a slice of
/// the read buffer: no copy.
#[derive(Debug)]
pub struct FrameDecoder {
    role: Role,
    limits: Limits,
    /// RSV1 may mark a compressed message (permessage-deflate).
    rsv1: bool,
    /// The header of the frame whose payload is still arriving.
    pending: Option<Pending>,
    /// Payloads shorter than this are copied out of the read buffer instead of sharing it:
    /// see [`copy_below`](Self::copy_below).
    copy_below: usize,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    header: FrameHeader,
    header_len: usize,
    payload_len: usize,
    /// How many payload bytes at the front of the buffer are already unmasked.
    ready: usize,
}

impl FrameDecoder {
    /// A decoder for an endpoint in `role`, which receives frames from the other role.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            role,
            limits,
            rsv1: false,
            pending: None,
            copy_below: 0,
        }
    }

    /// Payloads shorter than `len` bytes are copied into an allocation of their own; longer
    /// ones share the read buffer (no copy). A payload that shares the buffer keeps all of it
    /// allocated for as long as it lives, so a reader passes a fraction of the buffer's
    /// allocation here: a message kept by the application then never holds more than that
    /// multiple of its own size. Default 0: every payload shares the buffer.
    pub fn copy_below(&mut self, len: usize) {
        self.copy_below = len;
    }

    /// Accepts RSV1 on Text and Binary frames, which permessage-deflate uses to mark a
    /// compressed message. Continuation and control frames must still have it clear.
    pub fn allow_rsv1(&mut self) {
        self.rsv1 = true;
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes the next whole frame off the front of `buf`, or returns `Ok(None)` when more bytes
    /// are needed. After an error the connection must be failed; the decoder is not reused.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        let pending = match self.pending {
            Some(pending) => pending,
            None => match self.start(buf)? {
                Some(pending) => pending,
                None => return Ok(None),
            },
        };
        let available = (buf.len() - pending.header_len).min(pending.payload_len);
        if let Some(key) = pending.header.mask
            && available > pending.ready
        {
            let from = pending.header_len + pending.ready;
            apply_mask_at(
                &mut buf[from..pending.header_len + available],
                key,
                pending.ready,
            );
        }
        if available < pending.payload_len {
            self.pending = Some(Pending {
                ready: available,
                ..pending
            });
            return Ok(None);
        }
        self.pending = None;
        buf.advance(pending.header_len);
        let payload = if pending.payload_len < self.copy_below {
            let payload = Bytes::copy_from_slice(&buf[..pending.payload_len]);
            buf.advance(pending.payload_len);
            payload
        } else {
            buf.split_to(pending.payload_len).freeze()
        };
        let FrameHeader {
            fin, rsv, opcode, ..
        } = pending.header;
        Ok(Some(Frame {
            fin,
            rsv,
            opcode,
            payload,
        }))
    }

    /// How many more bytes the frame whose payload is still arriving needs, beyond the `buffered`
    /// bytes of the buffer last passed to [`decode`](Self::decode); 0 when no frame is pending.
    /// A reader can size its next read by it.
    pub fn remaining(&self, buffered: usize) -> usize {
        self.pending.map_or(0, |pending| {
            (pending.header_len + pending.payload_len).saturating_sub(buffered)
        })
    }

    /// The header of a frame whose payload is still arriving, and the part of its payload
    /// already in `buf`, unmasked. `buf` is the buffer last passed to [`decode`](Self::decode);
    /// for any other buffer the answer is meaningless (or `None` if it is too short).
    pub fn partial<'b>(&self, buf: &'b [u8]) -> Option<(&FrameHeader, &'b [u8])> {
        let pending = self.pending.as_ref()?;
        let start = pending.header_len;
        Some((&pending.header, buf.get(start..start + pending.ready)?))
    }

    /// Parses and checks the header at the front of `buf`.
    fn start(&mut self, buf: &BytesMut) -> Result<Option<Pending>, ProtocolError> {
        let Some((header, header_len)) = FrameHeader::decode(buf)? else {
            return Ok(None);
        };
        match (self.role, header.mask.is_some()) {
            (Role::Client, true) => return Err(ProtocolError::UnexpectedMask),
            (Role::Server, false) => return Err(ProtocolError::MissingMask),
            _ => {}
        }
        let allowed = match header.opcode {
            super::OpCode::Text | super::OpCode::Binary if self.rsv1 => super::RSV1,
            _ => 0,
        };
        if header.rsv & !allowed != 0 {
            return Err(ProtocolError::ReservedBits);
        }
        if self.limits.exceeds_message_size(header.payload_len) {
            return Err(ProtocolError::MessageTooLarge {
                limit: self.limits.max_message_size,
            });
        }
        // The limit check bounds the length by isize::MAX, so it fits in a usize.
        let payload_len = header.payload_len as usize;
        let pending = Pending {
            header,
            header_len,
            payload_len,
            ready: 0,
        };
        self.pending = Some(pending);
        Ok(Some(pending))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::OpCode;

    fn encoded(frame: &Frame, mask: Option<[u8; 4]>) -> BytesMut {
        let mut buf = BytesMut::new();
        frame.encode(mask, &mut buf);
        buf
    }

    #[test]
    fn a_client_accepts_unmasked_and_rejects_masked_frames() {
        let frame = Frame::new(OpCode::Binary, Bytes::from_static(b"abc"));
        let mut decoder = FrameDecoder::new(Role::Client, Limits::default());
        assert_eq!(
            decoder.decode(&mut encoded(&frame, None)),
            Ok(Some(frame.clone()))
        );
        let mut decoder = FrameDecoder::new(Role::Client, Limits::default());
        assert_eq!(
            decoder.decode(&mut encoded(&frame, Some([1, 2, 3, 4]))),
            Err(ProtocolError::UnexpectedMask)
        );
    }

    #[test]
    fn a_server_unmasks_masked_and_rejects_unmasked_frames() {
        let frame = Frame::new(OpCode::Text, Bytes::from_static(b"Hello"));
        let mut decoder = FrameDecoder::new(Role::Server, Limits::default());
        assert_eq!(
            decoder.decode(&mut encoded(&frame, Some([0x37, 0xfa, 0x21, 0x3d]))),
            Ok(Some(frame.clone()))
        );
        let mut decoder = FrameDecoder::new(Role::Server, Limits::default());
        assert_eq!(
            decoder.decode(&mut encoded(&frame, None)),
            Err(ProtocolError::MissingMask)
        );
    }

    #[test]
    fn rsv_bits_without_an_extension_are_rejected() {
        for rsv in 1..8 {
            let frame = Frame {
                rsv,
                ..Frame::new(OpCode::Text, Bytes::new())
            };
            let mut decoder = FrameDecoder::new(Role::Client, Limits::default());
            assert_eq!(
                decoder.decode(&mut encoded(&frame, None)),
                Err(ProtocolError::ReservedBits)
            );
        }
    }

    #[test]
    fn an_oversized_frame_is_rejected_from_its_header_alone() {
        let limits = Limits {
            max_message_size: 100,
            ..Limits::default()
        };
        let mut decoder = FrameDecoder::new(Role::Client, limits);
        // A header announcing 101 bytes, with none of them sent.
        let mut buf = BytesMut::from(&[0x82, 101][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(ProtocolError::MessageTooLarge { limit: 100 })
        );
    }

    #[test]
    fn frames_fed_one_byte_at_a_time_decode_identically() {
        let frames = [
            Frame::new(OpCode::Text, Bytes::from(vec![b'x'; 300])),
            Frame {
                fin: false,
                ..Frame::new(OpCode::Binary, Bytes::from(vec![7; 70_000]))
            },
            Frame::new(OpCode::Ping, Bytes::from_static(b"p")),
            Frame::new(OpCode::Continuation, Bytes::new()),
        ];
        for (role, mask) in [(Role::Client, None), (Role::Server, Some([5, 6, 7, 8]))] {
            let mut wire = BytesMut::new();
            for frame in &frames {
                frame.encode(mask, &mut wire);
            }
            let mut decoder = FrameDecoder::new(role, Limits::default());
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for byte in wire.iter() {
                buf.extend_from_slice(&[*byte]);
                if let Some(frame) = decoder.decode(&mut buf).unwrap() {
                    out.push(frame);
                }
            }
            assert_eq!(out, frames, "{role:?}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn partial_exposes_the_unmasked_prefix_of_a_frame_in_flight() {
        let frame = Frame::new(OpCode::Text, Bytes::from_static(b"abcdefgh"));
        let mut wire = encoded(&frame, Some([9, 9, 9, 9]));
        let mut decoder = FrameDecoder::new(Role::Server, Limits::default());
        let mut buf = wire.split_to(6 + 3);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        let (header, prefix) = decoder.partial(&buf).unwrap();
        assert_eq!((header.opcode, prefix), (OpCode::Text, &b"abc"[..]));
        buf.unsplit(wire);
        assert_eq!(decoder.decode(&mut buf), Ok(Some(frame)));
        assert!(decoder.partial(&buf).is_none());
    }

    #[test]
    fn the_payload_is_a_view_of_the_read_buffer() {
        let mut buf = encoded(&Frame::new(OpCode::Binary, Bytes::from(vec![1; 64])), None);
        let start = buf.as_ptr() as usize;
        let frame = FrameDecoder::new(Role::Client, Limits::default())
            .decode(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(frame.payload.as_ptr() as usize, start + 2);
    }
}
