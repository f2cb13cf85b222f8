//! Frame encoding for a role: a client masks every frame with a fresh key from the operating
//! system's CSPRNG, a server masks none.

use std::cell::RefCell;

use bytes::BytesMut;

use super::{Frame, Role};

/// Encodes frames as an endpoint in a given role sends them.
#[derive(Debug)]
pub struct FrameEncoder {
    masks: bool,
}

impl FrameEncoder {
    /// An encoder for an endpoint in `role`.
    pub fn new(role: Role) -> Self {
        Self {
            masks: role == Role::Client,
        }
    }

    /// The mask for the next frame: a fresh random key for a client, none for a server.
    ///
    /// # Panics
    /// If the operating system cannot provide random bytes, which sending safely requires.
    #[inline]
    pub fn next_mask(&mut self) -> Option<[u8; 4]> {
        self.masks.then(next_key)
    }

    /// Appends `frame` to `dst`, masked as the role requires.
    ///
    /// # Panics
    /// As [`next_mask`](Self::next_mask).
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) {
        let mask = self.next_mask();
        frame.encode(mask, dst);
    }
}

/// Keys fetched from the OS at a time: 1 KiB of randomness per system call.
const POOL: usize = 256;

/// Random bytes from the OS, fetched a batch at a time per thread, so that a key costs no
/// system call and no connection carries a pool of its own.
struct MaskKeys {
    pool: [[u8; 4]; POOL],
    used: usize,
}

thread_local! {
    static KEYS: RefCell<MaskKeys> = const {
        RefCell::new(MaskKeys {
            pool: [[0; 4]; POOL],
            used: POOL,
        })
    };
}

fn next_key() -> [u8; 4] {
    KEYS.with_borrow_mut(|keys| {
        if keys.used >= POOL {
            getrandom::fill(keys.pool.as_flattened_mut())
                .expect("the operating system's random source failed");
            keys.used = 0;
        }
        let key = keys.pool.get(keys.used).copied().unwrap_or_default();
        keys.used += 1;
        key
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::proto::{FrameDecoder, Limits, OpCode};

    #[test]
    fn a_client_masks_and_a_server_does_not() {
        let frame = Frame::new(OpCode::Text, Bytes::from_static(b"hello"));
        let mut client = BytesMut::new();
        FrameEncoder::new(Role::Client).encode(&frame, &mut client);
        assert_eq!(client[1] & 0x80, 0x80);
        assert_eq!(client.len(), 2 + 4 + 5);
        let decoded = FrameDecoder::new(Role::Server, Limits::default())
            .decode(&mut client)
            .unwrap();
        assert_eq!(decoded, Some(frame.clone()));

        let mut server = BytesMut::new();
        FrameEncoder::new(Role::Server).encode(&frame, &mut server);
        assert_eq!(&server[..], b"\x81\x05hello");
    }

    #[test]
    fn client_keys_differ_from_frame_to_frame() {
        let mut encoder = FrameEncoder::new(Role::Client);
        let keys: std::collections::HashSet<_> =
            (0..1000).map(|_| encoder.next_mask().unwrap()).collect();
        // 1000 draws from 2^32 collide with probability about 1e-4; all-equal keys mean no randomness.
        assert!(keys.len() > 990, "{} distinct keys", keys.len());
        assert_eq!(FrameEncoder::new(Role::Server).next_mask(), None);
    }
}
