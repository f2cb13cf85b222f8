//! Message reassembly: fragments joined into messages, with the fragment and size limits and
//! UTF-8 validation that fails as soon as the text can no longer be valid.

use bytes::{Bytes, BytesMut};

use super::{
    CloseFrame, Frame, Incoming, Limits, Message, OpCode, ProtocolError, Utf8Bytes, Utf8Validator,
};

/// UTF-8 validation already done on the start of a frame's payload: the validator after it has
/// seen the first `usize` bytes.
pub(crate) type Checked = Option<(Utf8Validator, usize)>;

/// Joins frames into messages and passes control frames through.
#[derive(Debug)]
pub(crate) struct MessageAssembler {
    limits: Limits,
    partial: Option<Partial>,
}

/// A fragmented message in progress.
#[derive(Debug)]
struct Partial {
    /// The validator of a text message; `None` for binary.
    text: Option<Utf8Validator>,
    data: BytesMut,
    fragments: usize,
}

impl MessageAssembler {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            partial: None,
        }
    }

    /// Whether a fragmented message is in progress, and if it is text, its validator.
    /// Bytes of the message in progress held so far.
    pub(crate) fn buffered(&self) -> usize {
        self.partial
            .as_ref()
            .map_or(0, |partial| partial.data.len())
    }

    pub(crate) fn in_progress(&self) -> Option<Option<Utf8Validator>> {
        self.partial.as_ref().map(|partial| partial.text)
    }

    /// Takes the next frame (already checked by the frame decoder).
    pub(crate) fn push(
        &mut self,
        frame: Frame,
        checked: Checked,
    ) -> Result<Option<Incoming>, ProtocolError> {
        let Frame {
            fin,
            opcode,
            payload,
            ..
        } = frame;
        match opcode {
            OpCode::Ping => Ok(Some(Incoming::Ping(payload))),
            OpCode::Pong => Ok(Some(Incoming::Pong(payload))),
            OpCode::Close => Ok(Some(Incoming::Close(CloseFrame::parse(payload)?))),
            OpCode::Text | OpCode::Binary if self.partial.is_some() => {
                Err(ProtocolError::ExpectedContinuation)
            }
            OpCode::Text if fin => Ok(Some(Incoming::Message(Message::Text(whole_text(
                payload, checked,
            )?)))),
            OpCode::Binary if fin => Ok(Some(Incoming::Message(Message::Binary(payload)))),
            OpCode::Text | OpCode::Binary => {
                let text = match opcode {
                    OpCode::Text => Some(validate(Utf8Validator::new(), &payload, checked)?),
                    _ => None,
                };
                self.partial = Some(Partial {
                    text,
                    data: BytesMut::from(&payload[..]),
                    fragments: 1,
                });
                Ok(None)
            }
            OpCode::Continuation => self.continue_message(fin, payload, checked),
        }
    }

    fn continue_message(
        &mut self,
        fin: bool,
        payload: Bytes,
        checked: Checked,
    ) -> Result<Option<Incoming>, ProtocolError> {
        let partial = self
            .partial
            .as_mut()
            .ok_or(ProtocolError::UnexpectedContinuation)?;
        partial.fragments += 1;
        if self.limits.exceeds_fragments(partial.fragments) {
            return Err(ProtocolError::TooManyFragments {
                limit: self.limits.max_fragments,
            });
        }
        if self
            .limits
            .exceeds_message_size((partial.data.len() + payload.len()) as u64)
        {
            return Err(ProtocolError::MessageTooLarge {
                limit: self.limits.max_message_size,
            });
        }
        if let Some(validator) = partial.text {
            partial.text = Some(validate(validator, &payload, checked)?);
        }
        partial.data.extend_from_slice(&payload);
        if !fin {
            return Ok(None);
        }
        let Partial { text, data, .. } = self
            .partial
            .take()
            .ok_or(ProtocolError::UnexpectedContinuation)?;
        let data = data.freeze();
        let message = match text {
            Some(validator) => {
                validator.finish()?;
                // SAFETY: every fragment went through `validator`, which found no error, and
                // `finish` found no incomplete code point at the end.
                Message::Text(unsafe { Utf8Bytes::from_bytes_unchecked(data) })
            }
            None => Message::Binary(data),
        };
        Ok(Some(Incoming::Message(message)))
    }
}

/// Feeds the part of `payload` that `checked` has not seen to `validator` (or to the validator
/// in `checked`, which has seen the start of this payload).
fn validate(
    validator: Utf8Validator,
    payload: &[u8],
    checked: Checked,
) -> Result<Utf8Validator, ProtocolError> {
    let (mut validator, seen) = checked.unwrap_or((validator, 0));
    validator.feed(&payload[seen..])?;
    Ok(validator)
}

/// Validates the payload of an unfragmented text message.
fn whole_text(payload: Bytes, checked: Checked) -> Result<Utf8Bytes, ProtocolError> {
    match checked {
        None => Utf8Bytes::try_from(payload),
        Some(checked) => {
            validate(Utf8Validator::new(), &payload, Some(checked))?.finish()?;
            // SAFETY: the validator saw the whole payload, found no error, and `finish` found no
            // incomplete code point at the end.
            Ok(unsafe { Utf8Bytes::from_bytes_unchecked(payload) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> Frame {
        Frame {
            fin,
            rsv: 0,
            opcode,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    fn message(incoming: Option<Incoming>) -> Message {
        match incoming {
            Some(Incoming::Message(message)) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn fragments_join_and_control_frames_pass_between_them() {
        let mut asm = MessageAssembler::new(Limits::default());
        assert_eq!(
            asm.push(frame(false, OpCode::Binary, b"ab"), None),
            Ok(None)
        );
        assert_eq!(
            asm.push(frame(true, OpCode::Ping, b"p"), None),
            Ok(Some(Incoming::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(
            asm.push(frame(false, OpCode::Continuation, b""), None),
            Ok(None)
        );
        let done = asm
            .push(frame(true, OpCode::Continuation, b"cd"), None)
            .unwrap();
        assert_eq!(message(done), Message::binary(&b"abcd"[..]));
        assert!(asm.in_progress().is_none());
    }

    #[test]
    fn an_orphan_continuation_is_a_protocol_error() {
        let mut asm = MessageAssembler::new(Limits::default());
        let err = asm
            .push(frame(true, OpCode::Continuation, b"x"), None)
            .unwrap_err();
        assert_eq!(err, ProtocolError::UnexpectedContinuation);
    }

    #[test]
    fn a_new_message_inside_a_fragmented_one_is_a_protocol_error() {
        for opcode in [OpCode::Text, OpCode::Binary] {
            let mut asm = MessageAssembler::new(Limits::default());
            asm.push(frame(false, OpCode::Text, b"a"), None).unwrap();
            assert_eq!(
                asm.push(frame(true, opcode, b"b"), None),
                Err(ProtocolError::ExpectedContinuation)
            );
        }
    }

    #[test]
    fn the_fragment_limit_counts_frames_per_message() {
        let limits = Limits {
            max_fragments: 3,
            ..Limits::default()
        };
        let mut asm = MessageAssembler::new(limits);
        asm.push(frame(false, OpCode::Binary, b"1"), None).unwrap();
        asm.push(frame(false, OpCode::Continuation, b"2"), None)
            .unwrap();
        assert!(
            asm.push(frame(true, OpCode::Continuation, b"3"), None)
                .unwrap()
                .is_some()
        );
        asm.push(frame(false, OpCode::Binary, b"1"), None).unwrap();
        asm.push(frame(false, OpCode::Continuation, b"2"), None)
            .unwrap();
        asm.push(frame(false, OpCode::Continuation, b"3"), None)
            .unwrap();
        assert_eq!(
            asm.push(frame(false, OpCode::Continuation, b"4"), None),
            Err(ProtocolError::TooManyFragments { limit: 3 })
        );
    }

    #[test]
    fn the_size_limit_counts_the_whole_message() {
        let limits = Limits {
            max_message_size: 5,
            ..Limits::default()
        };
        let mut asm = MessageAssembler::new(limits);
        asm.push(frame(false, OpCode::Binary, b"abc"), None)
            .unwrap();
        assert!(
            asm.push(frame(false, OpCode::Continuation, b"de"), None)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            asm.push(frame(true, OpCode::Continuation, b"f"), None),
            Err(ProtocolError::MessageTooLarge { limit: 5 })
        );
    }

    #[test]
    fn text_split_inside_a_code_point_is_accepted_and_invalid_text_is_1007() {
        let text = "κόσμε".as_bytes();
        let mut asm = MessageAssembler::new(Limits::default());
        asm.push(frame(false, OpCode::Text, &text[..1]), None)
            .unwrap();
        let done = asm
            .push(frame(true, OpCode::Continuation, &text[1..]), None)
            .unwrap();
        assert_eq!(message(done), Message::text("κόσμε"));

        let mut asm = MessageAssembler::new(Limits::default());
        assert_eq!(
            asm.push(frame(true, OpCode::Text, b"\xff"), None),
            Err(ProtocolError::InvalidUtf8)
        );
        // Fails at the fragment that makes the text invalid, not at the end of the message.
        let mut asm = MessageAssembler::new(Limits::default());
        asm.push(frame(false, OpCode::Text, b"ok\xe0"), None)
            .unwrap();
        assert_eq!(
            asm.push(frame(false, OpCode::Continuation, b"\x80"), None),
            Err(ProtocolError::InvalidUtf8)
        );
        // An incomplete code point at the end fails when the message ends.
        let mut asm = MessageAssembler::new(Limits::default());
        asm.push(frame(false, OpCode::Text, b"ok\xe2\x82"), None)
            .unwrap();
        assert_eq!(
            asm.push(frame(true, OpCode::Continuation, b""), None),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    #[test]
    fn close_frames_are_parsed() {
        let mut asm = MessageAssembler::new(Limits::default());
        assert_eq!(
            asm.push(frame(true, OpCode::Close, b""), None),
            Ok(Some(Incoming::Close(None)))
        );
        assert_eq!(
            asm.push(frame(true, OpCode::Close, b"\x03"), None),
            Err(ProtocolError::InvalidCloseBody)
        );
    }
}
