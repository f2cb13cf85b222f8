//! The receive path in one piece: frames decoded from a read buffer and assembled into
//! messages, with text that turns invalid failing before the rest of its frame arrives.

use bytes::BytesMut;

use super::assembler::{Checked, MessageAssembler};
#[cfg(feature = "deflate")]
use super::deflate::{DeflateParams, codec::Inflater};
use super::{FrameDecoder, Incoming, Limits, OpCode, ProtocolError, RSV1, Role, Utf8Validator};

/// Decodes what the peer sends, from a read buffer into messages and control frames.
///
/// The frame rules are [`FrameDecoder`]'s; on top of them it joins fragments, enforces the
/// fragment and message size limits, validates text as it arrives, and parses Close bodies.
/// An error is the peer's fault: fail the connection with `CloseCode::from(&error)`.
#[derive(Debug)]
pub struct MessageDecoder {
    frames: FrameDecoder,
    assembler: MessageAssembler,
    /// Validation already done on the frame still arriving, when it carries text.
    early: Checked,
    /// permessage-deflate, when negotiated.
    #[cfg(feature = "deflate")]
    inflate: Option<Box<Inflate>>,
    /// Payload bytes of data frames (Text, Binary, Continuation) decoded so far.
    data_bytes: u64,
}

/// The receiving side of permessage-deflate: the inflater and the message being inflated.
#[cfg(feature = "deflate")]
#[derive(Debug)]
struct Inflate {
    inflater: Inflater,
    limits: Limits,
    /// A compressed message whose frames are still arriving.
    message: Option<Inflating>,
}

#[cfg(feature = "deflate")]
#[derive(Debug)]
struct Inflating {
    text: bool,
    data: Vec<u8>,
    fragments: usize,
}

impl MessageDecoder {
    /// A decoder for an endpoint in `role`.
    pub fn new(role: Role, limits: Limits) -> Self {
        Self {
            frames: FrameDecoder::new(role, limits),
            assembler: MessageAssembler::new(limits),
            early: None,
            #[cfg(feature = "deflate")]
            inflate: None,
            data_bytes: 0,
        }
    }

    /// A decoder for an endpoint in `role` that inflates messages compressed with the agreed
    /// permessage-deflate `params` (RSV1 on their first frame). The size limit applies to the
    /// inflated size: a message that inflates past it fails with `MessageTooLarge` (1009)
    /// without being inflated in full.
    #[cfg(feature = "deflate")]
    pub fn with_deflate(role: Role, limits: Limits, params: &DeflateParams) -> Self {
        let mut decoder = Self::new(role, limits);
        decoder.frames.allow_rsv1();
        decoder.inflate = Some(Box::new(Inflate {
            inflater: Inflater::new(role, params),
            limits,
            message: None,
        }));
        decoder
    }

    /// Takes the next message or control frame off the front of `buf`, or returns `Ok(None)`
    /// when more bytes are needed. After an error the decoder is not reused.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, ProtocolError> {
        while let Some(frame) = self.frames.decode(buf)? {
            let checked = self.early.take();
            if !frame.opcode.is_control() {
                self.data_bytes += frame.payload.len() as u64;
            }
            #[cfg(feature = "deflate")]
            let frame = match &mut self.inflate {
                Some(inflate) => {
                    match inflate.push(frame, self.assembler.in_progress().is_some())? {
                        Inflated::Message(incoming) => return Ok(Some(incoming)),
                        Inflated::Pending => continue,
                        Inflated::NotCompressed(frame) => frame,
                    }
                }
                None => frame,
            };
            if let Some(incoming) = self.assembler.push(frame, checked)? {
                return Ok(Some(incoming));
            }
        }
        self.check_partial_text(buf)?;
        Ok(None)
    }

    /// Payloads shorter than `len` are copied out of the read buffer: see
    /// [`FrameDecoder::copy_below`].
    pub fn copy_below(&mut self, len: usize) {
        self.frames.copy_below(len);
    }

    /// Whether a fragmented (or compressed) message has started and not ended.
    #[inline]
    pub fn in_message(&self) -> bool {
        #[cfg(feature = "deflate")]
        if self.inflate.as_ref().is_some_and(|i| i.message.is_some()) {
            return true;
        }
        self.assembler.in_progress().is_some()
    }

    /// Bytes of the message in progress held so far (inflated, when compressed).
    pub fn buffered(&self) -> usize {
        #[cfg(feature = "deflate")]
        if let Some(message) = self.inflate.as_ref().and_then(|i| i.message.as_ref()) {
            return message.data.len();
        }
        self.assembler.buffered()
    }

    /// Payload bytes of data frames (Text, Binary, Continuation) decoded so far: a count that
    /// stands still while a message makes no progress.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// How many more bytes the frame still arriving needs, beyond the `buffered` bytes of the
    /// buffer last passed to [`decode`](Self::decode): a reader can size its next read by it.
    pub fn remaining(&self, buffered: usize) -> usize {
        self.frames.remaining(buffered)
    }

    /// Validates the part of a text frame that has arrived so far, so that invalid UTF-8 fails
    /// the connection at once rather than when the whole frame is in.
    fn check_partial_text(&mut self, buf: &[u8]) -> Result<(), ProtocolError> {
        let Some((header, prefix)) = self.frames.partial(buf) else {
            return Ok(());
        };
        let (validator, seen) = match &mut self.early {
            Some(early) => early,
            None => {
                let start = match (header.opcode, self.assembler.in_progress()) {
                    // Compressed text is validated once inflated.
                    (OpCode::Text, None) if header.rsv & RSV1 != 0 => return Ok(()),
                    (OpCode::Text, None) => Utf8Validator::new(),
                    (OpCode::Continuation, Some(Some(validator))) => validator,
                    _ => return Ok(()),
                };
                self.early.insert((start, 0))
            }
        };
        validator.feed(&prefix[*seen..])?;
        *seen = prefix.len();
        Ok(())
    }
}

/// What the inflating stage made of a frame.
#[cfg(feature = "deflate")]
enum Inflated {
    /// A whole message, inflated.
    Message(Incoming),
    /// Part of a compressed message.
    Pending,
    /// Not part of a compressed message: for the assembler.
    NotCompressed(super::Frame),
}

#[cfg(feature = "deflate")]
impl Inflate {
    fn push(
        &mut self,
        frame: super::Frame,
        uncompressed_in_progress: bool,
    ) -> Result<Inflated, ProtocolError> {
        let limit = self.limits.max_message_size;
        let message = match (frame.opcode, frame.rsv & RSV1 != 0, &mut self.message) {
            (OpCode::Text | OpCode::Binary, true, _) if uncompressed_in_progress => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            (OpCode::Text | OpCode::Binary, _, Some(_)) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            (OpCode::Text | OpCode::Binary, true, None) => self.message.insert(Inflating {
                text: frame.opcode == OpCode::Text,
                data: Vec::new(),
                fragments: 1,
            }),
            (OpCode::Continuation, _, Some(message)) => {
                message.fragments += 1;
                if self.limits.exceeds_fragments(message.fragments) {
                    return Err(ProtocolError::TooManyFragments {
                        limit: self.limits.max_fragments,
                    });
                }
                message
            }
            _ => return Ok(Inflated::NotCompressed(frame)),
        };
        self.inflater
            .push(&frame.payload, &mut message.data, limit)?;
        if !frame.fin {
            return Ok(Inflated::Pending);
        }
        self.inflater.finish(&mut message.data, limit)?;
        let Inflating { text, mut data, .. } = self.message.take().expect("a message in progress");
        // Inflation grows its buffer in steps of 64 KiB and more: a message the application
        // keeps must not keep the rest.
        if data.capacity() > 2 * data.len() {
            data.shrink_to_fit();
        }
        let data = bytes::Bytes::from(data);
        let message = if text {
            super::Message::Text(
                super::Utf8Bytes::try_from(data).map_err(|_| ProtocolError::InvalidUtf8)?,
            )
        } else {
            super::Message::Binary(data)
        };
        Ok(Inflated::Message(Incoming::Message(message)))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::{Frame, Message};

    fn wire(frames: &[Frame], mask: Option<[u8; 4]>) -> BytesMut {
        let mut buf = BytesMut::new();
        for frame in frames {
            frame.encode(mask, &mut buf);
        }
        buf
    }

    #[test]
    fn invalid_text_fails_before_its_frame_is_complete() {
        for (role, mask) in [(Role::Client, None), (Role::Server, Some([1, 2, 3, 4]))] {
            let mut payload = b"valid start ".to_vec();
            payload.extend_from_slice(b"\xed\xa0\x80");
            payload.resize(1000, b'x');
            let mut all = wire(&[Frame::new(OpCode::Text, payload)], mask);
            let mut decoder = MessageDecoder::new(role, Limits::default());
            let mut buf = all.split_to(all.len() / 2);
            assert_eq!(
                decoder.decode(&mut buf),
                Err(ProtocolError::InvalidUtf8),
                "{role:?}"
            );
        }
    }

    #[test]
    fn invalid_text_in_a_continuation_fails_early_too() {
        let mut payload = b"\xa9 then bad \xc0".to_vec();
        payload.resize(500, b'y');
        let frames = [
            Frame {
                fin: false,
                ..Frame::new(OpCode::Text, Bytes::from_static(b"caf\xc3"))
            },
            Frame::new(OpCode::Continuation, payload),
        ];
        let mut all = wire(&frames, None);
        let mut decoder = MessageDecoder::new(Role::Client, Limits::default());
        let mut buf = all.split_to(100);
        assert_eq!(decoder.decode(&mut buf), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn text_arriving_in_pieces_is_delivered_whole() {
        let text = "ünïcödé ".repeat(50);
        for (role, mask) in [(Role::Client, None), (Role::Server, Some([7, 7, 1, 2]))] {
            let bytes = text.as_bytes();
            let frames = [
                Frame {
                    fin: false,
                    ..Frame::new(OpCode::Text, Bytes::copy_from_slice(&bytes[..101]))
                },
                Frame::new(OpCode::Ping, Bytes::from_static(b"hb")),
                Frame::new(OpCode::Continuation, Bytes::copy_from_slice(&bytes[101..])),
            ];
            let all = wire(&frames, mask);
            for step in [1, 3, 7, 64] {
                let mut decoder = MessageDecoder::new(role, Limits::default());
                let mut buf = BytesMut::new();
                let mut out = Vec::new();
                for chunk in all.chunks(step) {
                    buf.extend_from_slice(chunk);
                    while let Some(incoming) = decoder.decode(&mut buf).unwrap() {
                        out.push(incoming);
                    }
                }
                assert_eq!(
                    out,
                    [
                        Incoming::Ping(Bytes::from_static(b"hb")),
                        Incoming::Message(Message::text(text.as_str()))
                    ],
                    "{role:?} step {step}"
                );
            }
        }
    }
}
