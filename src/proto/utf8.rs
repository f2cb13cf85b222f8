//! UTF-8: the validated byte string that text messages carry, and incremental validation of
//! text that arrives in fragments split at arbitrary byte offsets.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

use super::ProtocolError;

/// Bytes known to be valid UTF-8: the payload of a text message.
///
/// Cloning and slicing share the buffer (it is a [`Bytes`]); the text is validated once, when it
/// arrives or is built, and never copied again.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a static string, without copying.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// Wraps bytes the caller has validated.
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8.
    pub(crate) unsafe fn from_bytes_unchecked(bytes: Bytes) -> Self {
        debug_assert!(simdutf8::basic::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor validates the bytes or is given validated bytes, and the
        // bytes are never mutated afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The UTF-8 bytes of the text.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The underlying buffer.
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    /// Copies the text; [`Utf8Bytes::from_static`] does not.
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Bytes {
        text.0
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = ProtocolError;

    /// Validates `bytes`; invalid UTF-8 is [`ProtocolError::InvalidUtf8`].
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        match simdutf8::basic::from_utf8(&bytes) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Validates UTF-8 that arrives in pieces, a code point possibly split across them.
///
/// Feed each piece in order with [`feed`](Self::feed), then call [`finish`](Self::finish) after
/// the last one. An error is reported as soon as the bytes seen so far cannot begin valid UTF-8,
/// so a peer sending invalid text is failed before the rest of its message arrives.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    /// The bytes of an incomplete code point at the end of the input so far.
    pending: [u8; 4],
    pending_len: u8,
}

impl Utf8Validator {
    /// A validator that has seen nothing.
    pub const fn new() -> Self {
        Self {
            pending: [0; 4],
            pending_len: 0,
        }
    }

    /// Validates the next piece of the text.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), ProtocolError> {
        if self.pending_len > 0 {
            let have = usize::from(self.pending_len);
            let width = sequence_width(self.pending[0]);
            let take = (width - have).min(input.len());
            self.pending[have..have + take].copy_from_slice(&input[..take]);
            input = &input[take..];
            let filled = have + take;
            self.pending_len = filled as u8;
            match simdutf8::compat::from_utf8(&self.pending[..filled]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => return Ok(()),
                Err(_) => return Err(ProtocolError::InvalidUtf8),
            }
        }
        // A piece usually ends in the middle of a code point: validate up to the start of the
        // last sequence when that sequence is incomplete, and keep its bytes for the next
        // piece. Each byte is validated once.
        let (body, tail) = input.split_at(incomplete_tail(input));
        if simdutf8::basic::from_utf8(body).is_err() {
            return Err(ProtocolError::InvalidUtf8);
        }
        if !tail.is_empty() {
            // At most 3 bytes: they must begin a valid sequence.
            match simdutf8::compat::from_utf8(tail) {
                Err(e) if e.error_len().is_none() && e.valid_up_to() == 0 => {}
                _ => return Err(ProtocolError::InvalidUtf8),
            }
            self.pending[..tail.len()].copy_from_slice(tail);
            self.pending_len = tail.len() as u8;
        }
        Ok(())
    }

    /// Ends the text: an incomplete code point at the end is an error.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }
}

/// Where an incomplete sequence at the end of `input` starts (`input.len()` when the end is
/// not inside a sequence): the last leading byte among the final three bytes, if the sequence
/// it starts is longer than what follows it. What is not a valid leading byte is left to the
/// validator.
fn incomplete_tail(input: &[u8]) -> usize {
    let len = input.len();
    for back in 1..=len.min(3) {
        let byte = input[len - back];
        match byte {
            0x80..=0xBF => continue,
            0xC2..=0xF4 if sequence_width(byte) > back => return len - back,
            _ => return len,
        }
    }
    len
}

/// The length of the sequence a valid leading byte starts. Only called on the first byte of an
/// incomplete but so far valid sequence, which is a leading byte of a 2-, 3- or 4-byte sequence.
fn sequence_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], cuts: &[usize]) -> Result<(), ProtocolError> {
        let mut validator = Utf8Validator::new();
        let mut start = 0;
        for &cut in cuts {
            validator.feed(&bytes[start..cut])?;
            start = cut;
        }
        validator.feed(&bytes[start..])?;
        validator.finish()
    }

    const SAMPLES: &[&str] = &[
        "",
        "a",
        "κόσμε",
        "Hello-µ@ßöäüàá-UTF-8!!",
        "🎉𝄞ﬀ€ü",
        "\u{10FFFF}\u{FFFD}",
    ];

    #[test]
    fn valid_text_split_at_every_pair_of_offsets_is_accepted() {
        for text in SAMPLES {
            let bytes = text.as_bytes();
            for i in 0..=bytes.len() {
                for j in i..=bytes.len() {
                    assert_eq!(
                        feed_split(bytes, &[i, j]),
                        Ok(()),
                        "{text:?} cut at {i},{j}"
                    );
                }
            }
        }
    }

    #[test]
    fn invalid_sequences_are_rejected_at_every_split() {
        let invalid: &[&[u8]] = &[
            b"\xff",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
            b"\xf8\x88\x80\x80\x80",
            b"ab\xce",
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\xf0\x9f\x8e",
        ];
        for bytes in invalid {
            assert!(std::str::from_utf8(bytes).is_err());
            for i in 0..=bytes.len() {
                for j in i..=bytes.len() {
                    assert_eq!(
                        feed_split(bytes, &[i, j]),
                        Err(ProtocolError::InvalidUtf8),
                        "{bytes:?} cut at {i},{j}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_impossible_prefix_fails_before_the_text_ends() {
        let mut validator = Utf8Validator::new();
        assert_eq!(validator.feed(b"ok \xe0"), Ok(()));
        assert_eq!(validator.feed(b"\x80"), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn a_truncated_code_point_fails_only_at_finish() {
        let mut validator = Utf8Validator::new();
        assert_eq!(validator.feed("é".as_bytes().split_at(1).0), Ok(()));
        assert_eq!(validator.finish(), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn utf8_bytes_validates_and_shares_its_buffer() {
        let bytes = Bytes::from_static("grüße".as_bytes());
        let text = Utf8Bytes::try_from(bytes.clone()).unwrap();
        assert_eq!(text.as_str(), "grüße");
        assert_eq!(text.as_bytes().as_ptr(), bytes.as_ptr());
        assert_eq!(text, "grüße");
        assert_eq!(
            Utf8Bytes::try_from(Bytes::from_static(b"\xc3")),
            Err(ProtocolError::InvalidUtf8)
        );
        assert_eq!(
            Utf8Bytes::from(String::from("a")).into_bytes(),
            Bytes::from_static(b"a")
        );
        assert_eq!(&*Utf8Bytes::from_static("static"), "static");
        assert_eq!(format!("{:?}", Utf8Bytes::from("q\"")), "\"q\\\"\"");
    }
}
