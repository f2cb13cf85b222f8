//! Messages, and what a decoder hands up: a message or a control frame.

use bytes::Bytes;

use super::{CloseFrame, Utf8Bytes};

/// A complete data message.
///
/// Text is validated UTF-8. Either payload shares the buffer it was received into: nothing is
/// copied after a message leaves the read buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// The payload: UTF-8 bytes for text.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) => data,
        }
    }

    /// The payload's length in bytes (the UTF-8 length for text).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload buffer.
    pub fn into_bytes(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(data) => data,
        }
    }
}

impl From<Utf8Bytes> for Message {
    fn from(text: Utf8Bytes) -> Self {
        Self::Text(text)
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

impl From<&[u8]> for Message {
    fn from(data: &[u8]) -> Self {
        Self::Binary(Bytes::copy_from_slice(data))
    }
}

/// What the peer sent: a whole message, or a control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A complete text or binary message.
    Message(Message),
    /// A ping; the endpoint answers with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A Close frame; `None` when it had no body (reported as 1005).
    Close(Option<CloseFrame>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_accessors_agree() {
        let text = Message::text("héllo");
        assert!(text.is_text());
        assert_eq!(text.len(), 6);
        assert_eq!(text.as_bytes(), "héllo".as_bytes());
        let binary = Message::binary(vec![1, 2, 3]);
        assert!(!binary.is_text());
        assert_eq!(binary.clone().into_bytes(), Bytes::from_static(&[1, 2, 3]));
        assert!(Message::from(Vec::new()).is_empty());
        assert_eq!(
            Message::from("a"),
            Message::Text(Utf8Bytes::from_static("a"))
        );
    }
}
