//! Compressing and inflating message payloads (RFC 7692 section 7.2): raw DEFLATE, a sync flush
//! per message with its 4-byte tail removed, context takeover or a reset per message, and
//! inflation bounded by the message size limit. The compressor is zlib-rs's own `Deflate` (it
//! takes zlib's memLevel); the inflater is flate2's `Decompress` over the same zlib-rs.
//!
//! Both hold their zlib state only while they need it: from the first message they compress or
//! inflate, and, without context takeover for their direction, only until that message ends.
//! A connection that never compresses, or whose peer never does, holds none; one without
//! context takeover holds none between messages (see [`Deflater`] for what that costs).

use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use zlib_rs::{Deflate, DeflateConfig, DeflateFlush};

use super::params::DEFAULT_MEMORY_LEVEL;
use super::{DeflateOptions, DeflateParams};
use crate::proto::{ProtocolError, Role};

/// The tail a sync flush ends with, removed by the sender and restored by the receiver.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The first growth of an inflation buffer; later ones double it, up to the size limit, so
/// that a small input that inflates to a lot is stopped at the limit, not allocated in full.
const INFLATE_STEP: usize = 64 * 1024;

/// zlib's raw DEFLATE has no 8-bit window (it would be 9): an agreed 8 compresses with 9, as
/// zlib-based peers do.
fn zlib_window(bits: u8) -> u8 {
    bits.clamp(9, 15)
}

/// After this many messages in a row that compression did not make smaller...
const MISSES_BEFORE_SKIPPING: u32 = 4;
/// ...[`Deflater::compress_if_smaller`] sends this many more uncompressed without trying: a
/// stream of random or already compressed payloads then costs no compression (a try that
/// fails also drops the compressor, and the next try makes a new one).
const SKIPPED_AFTER_MISSES: u32 = 32;

/// The sending half of permessage-deflate: compresses whole messages (sans-IO).
///
/// The zlib compressor is made for the first message compressed: 134 KiB to 483 KiB by window
/// and memory level (273 KiB at 15 bits and the default memory level 5), of which zlib-rs's
/// hash table is a fixed 128 KiB. With context takeover it then stays, as it holds the window
/// the peer refers to. Without, it is dropped after each message and made again for the next,
/// so that a connection holds none between messages. That costs more than keeping it and
/// resetting it (`benches/deflate.rs`, group `deflate_state`, level 1, 15-bit window, memory
/// level 5): 4.2 us instead of 1.6 us for a 64-byte message, 5.3 us instead of 3.0 us for
/// 1 KiB, as making one clears its window and hash table (256 KiB) where resetting clears the
/// hash table only; a compressor kept with context takeover takes 0.12 us and 0.46 us.
/// Without context takeover each message already pays for a clear of the hash table; the
/// 2.5 us more buy 273 KiB less per connection between messages, which is what a server of
/// many mostly idle connections needs.
pub struct Deflater {
    /// The compressor, while one is needed.
    compress: Option<Deflate>,
    /// zlib level, window bits and memLevel of the compressor.
    level: u8,
    window_bits: u8,
    memory_level: u8,
    reset_each_message: bool,
    /// Messages in a row that did not shrink.
    misses: u32,
    /// Messages still to send uncompressed without trying.
    skip: u32,
}

impl Deflater {
    /// A compressor for an endpoint in `role` with the agreed `params`, at zlib `level` (0-9)
    /// and the default memory level (see [`DeflateOptions::memory_level`]).
    pub fn new(role: Role, params: &DeflateParams, level: u32) -> Self {
        Self::with_memory_level(role, params, level, DEFAULT_MEMORY_LEVEL)
    }

    /// A compressor for an endpoint in `role` with the agreed `params`, at the level and
    /// memory level of `options`.
    pub fn with_options(role: Role, params: &DeflateParams, options: &DeflateOptions) -> Self {
        Self::with_memory_level(role, params, options.level, options.memory_level)
    }

    fn with_memory_level(role: Role, params: &DeflateParams, level: u32, memory_level: u8) -> Self {
        let (bits, reset) = match role {
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
            ),
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
            ),
        };
        Self {
            compress: None,
            level: level.min(9) as u8,
            window_bits: zlib_window(bits),
            memory_level: memory_level.clamp(1, 9),
            reset_each_message: reset,
            misses: 0,
            skip: 0,
        }
    }

    /// Whether the compressor's zlib state is allocated (for tests and measurements).
    #[doc(hidden)]
    pub fn holds_state(&self) -> bool {
        self.compress.is_some()
    }

    /// The compressed payload of a message, to be sent with RSV1 set on its first frame.
    pub fn compress(&mut self, input: &[u8]) -> Bytes {
        let out = self
            .deflate(input, usize::MAX)
            .expect("compressing without a bound cannot give up");
        Bytes::from(out)
    }

    /// The compressed payload of a message if it is smaller than `input`; otherwise `None`,
    /// and the message goes uncompressed (RSV1 clear), which RFC 7692 allows per message.
    /// Compressing stops as soon as the output reaches the input's size, and the compressor
    /// then forgets the message (it is dropped: the next one starts afresh), so that later
    /// messages never refer to data the peer has not inflated.
    ///
    /// zlib-rs at level 1 (the default) codes literals with the fixed Huffman table: random
    /// bytes grow by 5.5% there, and a message of them would otherwise be sent larger than it is. After 4
    /// messages in a row that did not shrink, the next 32 are sent uncompressed without trying
    /// (`None` at once).
    pub fn compress_if_smaller(&mut self, input: &[u8]) -> Option<Bytes> {
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        // Output of input.len() bytes or more after the 4-byte tail is removed is no gain.
        let bound = input.len().saturating_add(TAIL.len());
        match self.deflate(input, bound) {
            Some(out) if out.len() < input.len() => {
                self.misses = 0;
                Some(Bytes::from(out))
            }
            _ => {
                self.compress = None;
                self.misses += 1;
                if self.misses == MISSES_BEFORE_SKIPPING {
                    self.misses = 0;
                    self.skip = SKIPPED_AFTER_MISSES;
                }
                None
            }
        }
    }

    /// The compressor, made if there is none.
    fn compressor(&mut self) -> &mut Deflate {
        let (level, window_bits, memory_level) = (self.level, self.window_bits, self.memory_level);
        self.compress.get_or_insert_with(|| {
            Deflate::new_with_config(DeflateConfig {
                level: i32::from(level),
                // Negative: raw DEFLATE, without zlib's header and checksum.
                window_bits: -i32::from(window_bits),
                mem_level: i32::from(memory_level),
                ..DeflateConfig::default()
            })
        })
    }

    /// Compresses `input` with a sync flush and removes the tail; `None` (the compressor left
    /// mid-message) once the output would pass `bound` bytes before the tail is removed.
    fn deflate(&mut self, input: &[u8], bound: usize) -> Option<Vec<u8>> {
        let compress = self.compressor();
        // The output is written into the initialised part of `out` (zeroed as it grows: a
        // memset of at most the output's size, next to compressing the input), then cut to
        // what zlib wrote.
        let mut out = vec![0; (input.len() / 2 + 64).min(bound.saturating_add(1))];
        let (start_in, start_out) = (compress.total_in(), compress.total_out());
        loop {
            let consumed = (compress.total_in() - start_in) as usize;
            let written = (compress.total_out() - start_out) as usize;
            if written == out.len() {
                if written > bound {
                    return None;
                }
                // Double, but never past one byte over the bound (which tells "at the bound"
                // from "over it").
                let room = written.max(64).min((bound - written).saturating_add(1));
                out.resize(written + room, 0);
            }
            compress
                .compress(
                    &input[consumed..],
                    &mut out[written..],
                    DeflateFlush::SyncFlush,
                )
                .expect("compressing into a buffer with room cannot fail");
            let consumed = (compress.total_in() - start_in) as usize;
            let written = (compress.total_out() - start_out) as usize;
            // The flush is complete once all input is in and zlib stopped short of the
            // buffer's end.
            if consumed == input.len() && written < out.len() {
                out.truncate(written);
                break;
            }
        }
        if out.len() > bound {
            return None;
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        if out.is_empty() {
            // Nothing was pending (an empty message): an empty stored block (RFC 7692 7.2.3.6).
            out.push(0x00);
        }
        if self.reset_each_message {
            self.compress = None;
        }
        Some(out)
    }
}

/// The receiving half of permessage-deflate: inflates messages frame by frame (sans-IO;
/// [`MessageDecoder::with_deflate`](crate::proto::MessageDecoder::with_deflate) uses it).
///
/// Its zlib state (46 KiB: zlib-rs allocates the 32 KiB window whatever the agreed window
/// bits) is made for the first compressed message; without the peer's context takeover it is
/// dropped after each message, which costs little: 0.60 us instead of 0.29 us (reset) to
/// inflate a 64-byte message, 1.33 us instead of 0.99 us for 1 KiB (`deflate_state`).
pub struct Inflater {
    /// The inflater, while one is needed.
    decompress: Option<Decompress>,
    reset_each_message: bool,
}

impl Inflater {
    /// An inflater for an endpoint in `role` with the agreed `params`.
    pub fn new(role: Role, params: &DeflateParams) -> Self {
        let reset = match role {
            Role::Client => params.server_no_context_takeover,
            Role::Server => params.client_no_context_takeover,
        };
        Self {
            decompress: None,
            reset_each_message: reset,
        }
    }

    /// Whether the inflater's zlib state is allocated (for tests and measurements).
    #[doc(hidden)]
    pub fn holds_state(&self) -> bool {
        self.decompress.is_some()
    }

    /// Inflates `input` (one frame's payload) onto `out`; `limit` bounds `out` (0: none).
    /// The buffer never grows past the limit (plus one byte), so a bomb stops there.
    pub fn push(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), ProtocolError> {
        // Always the full 15-bit window: it reads any smaller one (an agreed 8 included, which
        // zlib-based peers compress with 9), and zlib-rs allocates 32 KiB whatever the bits.
        let decompress = self
            .decompress
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        let start = decompress.total_in();
        loop {
            let consumed = (decompress.total_in() - start) as usize;
            if out.len() == out.capacity() {
                // Double as a Vec would, but never past one byte over the limit (which tells
                // "exactly at the limit" from "over it").
                let mut room = out.len().max(INFLATE_STEP);
                if limit != 0 {
                    let left = limit.saturating_add(1).saturating_sub(out.len());
                    room = room.min(left).max(1);
                }
                out.reserve_exact(room);
            }
            let before = out.len();
            let status = decompress.decompress_vec(&input[consumed..], out, FlushDecompress::Sync);
            if limit != 0 && out.len() > limit {
                return Err(ProtocolError::MessageTooLarge { limit });
            }
            let consumed = (decompress.total_in() - start) as usize;
            match status {
                Err(_) | Ok(Status::StreamEnd) => return Err(ProtocolError::InvalidCompressedData),
                // All input taken, and zlib had room left: nothing is pending.
                Ok(_) if consumed == input.len() && out.len() < out.capacity() => return Ok(()),
                // No progress with room to spare: zlib wants input we do not have.
                Ok(_) if out.len() == before && consumed == input.len() => return Ok(()),
                Ok(_) => {}
            }
        }
    }

    /// Ends a message: feeds the tail the sender removed, and drops the state if the peer
    /// takes no context over.
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), ProtocolError> {
        self.push(&TAIL, out, limit)?;
        if self.reset_each_message {
            self.decompress = None;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(
        inflater: &mut Inflater,
        payload: &[u8],
        limit: usize,
    ) -> Result<Vec<u8>, ProtocolError> {
        let mut out = Vec::new();
        inflater.push(payload, &mut out, limit)?;
        inflater.finish(&mut out, limit)?;
        Ok(out)
    }

    #[test]
    fn messages_round_trip_in_all_four_combinations_of_context_takeover() {
        let message = br#"{"type":"next","id":"1","payload":{"data":{"price":101.25}}}"#.repeat(20);
        for (client_takeover, server_takeover) in
            [(true, true), (true, false), (false, true), (false, false)]
        {
            let params = DeflateParams {
                client_no_context_takeover: !client_takeover,
                server_no_context_takeover: !server_takeover,
                ..DeflateParams::default()
            };
            for (sender, takeover) in [
                (Role::Client, client_takeover),
                (Role::Server, server_takeover),
            ] {
                let receiver = match sender {
                    Role::Client => Role::Server,
                    Role::Server => Role::Client,
                };
                let case = format!("{sender:?} sending, takeover {takeover}");
                let mut deflater = Deflater::new(sender, &params, 6);
                let mut inflater = Inflater::new(receiver, &params);
                let mut sizes = Vec::new();
                for _ in 0..3 {
                    let compressed = deflater.compress(&message);
                    assert!(!compressed.ends_with(&TAIL));
                    sizes.push(compressed.len());
                    assert_eq!(inflate(&mut inflater, &compressed, 0).unwrap(), message);
                    // The state stays between messages only with context takeover.
                    assert_eq!(deflater.holds_state(), takeover, "{case}");
                    assert_eq!(inflater.holds_state(), takeover, "{case}");
                }
                // With context takeover, repeats compress to almost nothing.
                assert_eq!(sizes[1] < sizes[0] / 4, takeover, "{case}: {sizes:?}");
                assert_eq!(
                    inflate(&mut inflater, &deflater.compress(b""), 0).unwrap(),
                    b""
                );
            }
        }
    }

    #[test]
    fn a_deflater_and_an_inflater_hold_no_zlib_state_until_their_first_message() {
        let params = DeflateParams::default();
        let mut deflater = Deflater::new(Role::Server, &params, 1);
        let mut inflater = Inflater::new(Role::Client, &params);
        assert!(!deflater.holds_state());
        assert!(!inflater.holds_state());
        let compressed = deflater.compress(b"hello, hello, hello");
        assert!(deflater.holds_state());
        assert!(!inflater.holds_state());
        assert_eq!(
            inflate(&mut inflater, &compressed, 0).unwrap(),
            b"hello, hello, hello"
        );
        assert!(inflater.holds_state());
    }

    #[test]
    fn every_memory_level_round_trips_and_the_default_is_5() {
        assert_eq!(DeflateOptions::default().memory_level, 5);
        let message = br#"{"id":"7","type":"next","payload":{"data":{"n":1}}}"#.repeat(200);
        for memory_level in [0, 1, 5, 8, 9, 200] {
            let options = DeflateOptions {
                memory_level,
                level: 6,
                ..DeflateOptions::default()
            };
            let params = DeflateParams::default();
            let mut deflater = Deflater::with_options(Role::Client, &params, &options);
            let mut inflater = Inflater::new(Role::Server, &params);
            for _ in 0..2 {
                let compressed = deflater.compress(&message);
                assert!(compressed.len() < message.len() / 10, "{memory_level}");
                assert_eq!(inflate(&mut inflater, &compressed, 0).unwrap(), message);
            }
        }
    }

    #[test]
    fn a_message_split_across_frames_inflates_frame_by_frame() {
        let params = DeflateParams::default();
        let mut deflater = Deflater::new(Role::Server, &params, 9);
        let mut inflater = Inflater::new(Role::Client, &params);
        let message: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let compressed = deflater.compress(&message);
        let mut out = Vec::new();
        for chunk in compressed.chunks(1000) {
            inflater.push(chunk, &mut out, 0).unwrap();
        }
        inflater.finish(&mut out, 0).unwrap();
        assert_eq!(out, message);
    }

    #[test]
    fn a_bomb_stops_at_the_limit_with_bounded_memory() {
        let params = DeflateParams::default();
        let mut deflater = Deflater::new(Role::Server, &params, 9);
        let bomb = deflater.compress(&vec![0u8; 16 << 20]);
        assert!(bomb.len() < 64 << 10, "{}", bomb.len());
        let limit = 1 << 20;
        let mut inflater = Inflater::new(Role::Client, &params);
        let mut out = Vec::new();
        assert_eq!(
            inflater.push(&bomb, &mut out, limit),
            Err(ProtocolError::MessageTooLarge { limit })
        );
        assert!(out.capacity() <= limit + 1, "{}", out.capacity());
        // Exactly at the limit is fine.
        let mut inflater = Inflater::new(Role::Client, &params);
        let exact = Deflater::new(Role::Server, &params, 1).compress(&vec![7u8; limit]);
        assert_eq!(inflate(&mut inflater, &exact, limit).unwrap().len(), limit);
    }

    #[test]
    fn garbage_and_a_final_block_are_invalid() {
        let params = DeflateParams::default();
        let mut inflater = Inflater::new(Role::Client, &params);
        assert_eq!(
            inflate(&mut inflater, &[0xff, 0xff, 0xff, 0xff, 0x00], 0),
            Err(ProtocolError::InvalidCompressedData)
        );
        // A stream with BFINAL set ends the DEFLATE stream: not allowed mid-session.
        let mut finished = Vec::with_capacity(64);
        flate2::Compress::new(flate2::Compression::default(), false)
            .compress_vec(b"hello", &mut finished, flate2::FlushCompress::Finish)
            .unwrap();
        let mut inflater = Inflater::new(Role::Client, &params);
        assert_eq!(
            inflate(&mut inflater, &finished, 0),
            Err(ProtocolError::InvalidCompressedData)
        );
    }

    /// Bytes a fixed-table DEFLATE cannot shrink: every value equally likely.
    fn random_bytes(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn a_message_that_does_not_shrink_goes_uncompressed_and_later_ones_still_inflate() {
        for (bits, takeover) in [(9, true), (9, false), (15, true)] {
            let params = DeflateParams {
                client_max_window_bits: bits,
                client_no_context_takeover: !takeover,
                ..DeflateParams::default()
            };
            let mut deflater = Deflater::new(Role::Client, &params, 1);
            let mut inflater = Inflater::new(Role::Server, &params);
            let json =
                br#"{"type":"next","id":"1","payload":{"data":{"price":101.25}}}"#.repeat(20);
            let first = deflater.compress_if_smaller(&json).expect("JSON shrinks");
            assert_eq!(inflate(&mut inflater, &first, 0).unwrap(), json);
            // 1 MiB of random bytes would grow (by 5.5% at level 1): it is not compressed, and
            // the peer never inflates it.
            let noise = random_bytes(1 << 20);
            assert_eq!(deflater.compress_if_smaller(&noise), None, "bits {bits}");
            assert!(
                !deflater.holds_state(),
                "a message that did not shrink drops it"
            );
            // The compressor forgot it: what follows inflates with the peer's window.
            for _ in 0..2 {
                let next = deflater.compress_if_smaller(&json).expect("JSON shrinks");
                assert!(next.len() < json.len());
                assert_eq!(inflate(&mut inflater, &next, 0).unwrap(), json);
            }
        }
    }

    #[test]
    fn after_four_messages_that_do_not_shrink_the_next_32_are_not_tried() {
        let params = DeflateParams::default();
        let mut deflater = Deflater::new(Role::Client, &params, 1);
        let mut inflater = Inflater::new(Role::Server, &params);
        let noise = random_bytes(64);
        let json = br#"{"id":"4f1c","type":"next"}"#.repeat(4);
        for _ in 0..MISSES_BEFORE_SKIPPING {
            assert_eq!(deflater.compress_if_smaller(&noise), None);
        }
        for _ in 0..SKIPPED_AFTER_MISSES {
            assert_eq!(deflater.compress_if_smaller(&json), None, "skipped");
        }
        let next = deflater.compress_if_smaller(&json).expect("tried again");
        assert_eq!(inflate(&mut inflater, &next, 0).unwrap(), json);
        // One miss between successes does not start skipping.
        for _ in 0..MISSES_BEFORE_SKIPPING * 2 {
            assert_eq!(deflater.compress_if_smaller(&noise), None);
            let next = deflater.compress_if_smaller(&json).expect("not skipped");
            assert_eq!(inflate(&mut inflater, &next, 0).unwrap(), json);
        }
    }

    #[test]
    fn an_agreed_window_of_8_bits_compresses_with_9() {
        let params = DeflateParams {
            client_max_window_bits: 8,
            ..DeflateParams::default()
        };
        let mut deflater = Deflater::new(Role::Client, &params, 6);
        let mut inflater = Inflater::new(Role::Server, &params);
        let message = b"abcdefgh".repeat(500);
        assert_eq!(
            inflate(&mut inflater, &deflater.compress(&message), 0).unwrap(),
            message
        );
    }
}
