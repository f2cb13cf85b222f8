//! Limits on what a peer may make us buffer.

/// The default [`Limits::max_message_size`]: 128 MiB, as undici.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 128 * 1024 * 1024;

/// The default [`Limits::max_fragments`]: 131,072 frames per message, as undici.
pub const DEFAULT_MAX_FRAGMENTS: usize = 131_072;

/// Bounds on incoming data. Zero in a field means no limit.
///
/// A frame or message over `max_message_size` fails the connection with 1009 as soon as its
/// header announces it, before its payload is buffered; a message of more than `max_fragments`
/// frames fails it with 1008.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload of one frame, and of a whole message, in bytes (0 = unlimited).
    pub max_message_size: usize,
    /// The most frames one message may be split into (0 = unlimited).
    pub max_fragments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_fragments: DEFAULT_MAX_FRAGMENTS,
        }
    }
}

impl Limits {
    /// No limits at all.
    pub const fn unlimited() -> Self {
        Self {
            max_message_size: 0,
            max_fragments: 0,
        }
    }

    /// Whether `size` bytes exceed the message size limit.
    #[inline]
    pub(crate) fn exceeds_message_size(&self, size: u64) -> bool {
        (self.max_message_size != 0 && size > self.max_message_size as u64)
            || size > isize::MAX as u64
    }

    /// Whether `count` frames exceed the fragment limit.
    #[inline]
    pub(crate) fn exceeds_fragments(&self, count: usize) -> bool {
        self.max_fragments != 0 && count > self.max_fragments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_undicis() {
        let limits = Limits::default();
        assert_eq!(limits.max_message_size, 128 << 20);
        assert_eq!(limits.max_fragments, 131_072);
    }

    #[test]
    fn zero_means_unlimited_but_never_past_what_memory_can_address() {
        let limits = Limits::unlimited();
        assert!(!limits.exceeds_message_size(1 << 40));
        assert!(limits.exceeds_message_size(isize::MAX as u64 + 1));
        assert!(!limits.exceeds_fragments(usize::MAX));
        let small = Limits {
            max_message_size: 10,
            max_fragments: 2,
        };
        assert!(!small.exceeds_message_size(10));
        assert!(small.exceeds_message_size(11));
        assert!(!small.exceeds_fragments(2));
        assert!(small.exceeds_fragments(3));
    }
}
