//! Masking (RFC 6455 section 5.3): XOR of the payload with a repeating 4-byte key.
//!
//! The work is done a machine word at a time in a loop the compiler vectorises. On x86-64 the
//! same loop is also compiled for AVX2 and chosen at run time when the CPU has it, so masking
//! runs at close to memory speed without hand-written intrinsics.

use std::mem::MaybeUninit;

use bytes::BytesMut;

/// Masks (or unmasks: the operation is its own inverse) `buf` with `key`, as if `buf` were the
/// start of a payload.
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4]) {
    apply_mask_at(buf, key, 0);
}

/// Masks `buf` as the part of a payload that starts `offset` bytes in, so that a payload can be
/// masked in pieces as it arrives.
#[inline]
pub fn apply_mask_at(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let key = rotate_key(key, offset);
    if buf.len() < SMALL {
        mask_bytes(buf, key);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `mask_avx2` only requires the AVX2 target feature, and the CPU was just
        // found to support it.
        unsafe { mask_avx2(buf, key) };
        return;
    }
    mask_words(buf, key);
}

/// Appends `src` to `dst` masked with `key` (as a payload's start), in one pass: the bytes are
/// read, masked and written once, with no copy made first and masked after.
#[inline]
pub fn extend_masked(dst: &mut BytesMut, src: &[u8], key: [u8; 4]) {
    dst.reserve(src.len());
    let len = dst.len();
    let spare = &mut dst.spare_capacity_mut()[..src.len()];
    copy_masked(src, spare, key);
    // SAFETY: `copy_masked` initialised all `src.len()` bytes after `len`, within capacity.
    unsafe { dst.set_len(len + src.len()) };
}

/// Writes `src ^ key` into `dst`, which has the same length.
#[inline]
fn copy_masked(src: &[u8], dst: &mut [MaybeUninit<u8>], key: [u8; 4]) {
    if src.len() < SMALL {
        copy_small(src, dst, key);
        return;
    }
    if src.len() < COPY_VECTOR {
        copy_lanes(src, dst, key);
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: `copy_avx2` only requires the AVX2 target feature, and the CPU was just
        // found to support it.
        unsafe { copy_avx2(src, dst, key) };
        return;
    }
    copy_lanes(src, dst, key);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn copy_avx2(src: &[u8], dst: &mut [MaybeUninit<u8>], key: [u8; 4]) {
    copy_lanes(src, dst, key);
}

/// Below this length a copy skips the feature detection: the few words there are go through
/// the baseline build of the loop.
const COPY_VECTOR: usize = 256;

/// Eight bytes at a time, then the tail: a loop the compiler vectorises (with 32-byte
/// registers in the AVX2 build).
#[inline(always)]
fn copy_lanes(src: &[u8], dst: &mut [MaybeUninit<u8>], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut from = src.chunks_exact(8);
    let mut to = dst.chunks_exact_mut(8);
    for (lane, slot) in (&mut from).zip(&mut to) {
        let value = u64::from_ne_bytes(lane.try_into().unwrap_or([0; 8])) ^ word;
        if let Ok(slot) = <&mut [MaybeUninit<u8>; 8]>::try_from(slot) {
            *slot = value.to_ne_bytes().map(MaybeUninit::new);
        }
    }
    copy_small(from.remainder(), to.into_remainder(), key);
}

/// Short inputs and tails: four bytes at a time, then byte by byte.
#[inline(always)]
fn copy_small(src: &[u8], dst: &mut [MaybeUninit<u8>], key: [u8; 4]) {
    let word = u32::from_ne_bytes(key);
    let mut from = src.chunks_exact(4);
    let mut to = dst.chunks_exact_mut(4);
    for (lane, slot) in (&mut from).zip(&mut to) {
        let value = u32::from_ne_bytes(lane.try_into().unwrap_or([0; 4])) ^ word;
        if let Ok(slot) = <&mut [MaybeUninit<u8>; 4]>::try_from(slot) {
            *slot = value.to_ne_bytes().map(MaybeUninit::new);
        }
    }
    for ((byte, slot), k) in from.remainder().iter().zip(to.into_remainder()).zip(key) {
        slot.write(byte ^ k);
    }
}

/// Below this length the byte loop wins over feature detection and the word loop's setup.
const SMALL: usize = 32;

/// The key as seen by a byte `offset` bytes into the payload.
#[inline]
fn rotate_key(key: [u8; 4], offset: usize) -> [u8; 4] {
    let k = u32::from_be_bytes(key).rotate_left(8 * (offset % 4) as u32);
    k.to_be_bytes()
}

/// The reference implementation: one byte at a time.
#[inline]
fn mask_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn mask_avx2(buf: &mut [u8], key: [u8; 4]) {
    mask_words(buf, key);
}

/// XORs 32-byte blocks as four `u64` words, then finishes the tail byte by byte. The key is
/// repeated to 64 bits; 32 is a multiple of 4, so every block starts at key phase 0.
#[inline(always)]
fn mask_words(buf: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut blocks = buf.chunks_exact_mut(32);
    for block in &mut blocks {
        for lane in block.chunks_exact_mut(8) {
            let value = u64::from_ne_bytes(lane.try_into().unwrap_or([0; 8])) ^ word;
            lane.copy_from_slice(&value.to_ne_bytes());
        }
    }
    mask_bytes(blocks.into_remainder(), key);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(31) ^ (i >> 3)) as u8)
            .collect()
    }

    #[test]
    fn rfc_6455_example_masks_hello() {
        // RFC 6455 section 5.7: "Hello" masked with 37 fa 21 3d.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn every_length_and_alignment_matches_the_byte_loop() {
        let key = [0x12, 0x34, 0x56, 0x78];
        let data = pattern(300);
        for start in 0..8 {
            for len in 0..(data.len() - start) {
                let mut fast = data[start..start + len].to_vec();
                let mut slow = fast.clone();
                apply_mask(&mut fast, key);
                mask_bytes(&mut slow, key);
                assert_eq!(fast, slow, "start {start} len {len}");
            }
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let key = [0xde, 0xad, 0xbe, 0xef];
        let data = pattern(200);
        let mut whole = data.clone();
        apply_mask(&mut whole, key);
        for cut in 0..data.len() {
            let mut pieces = data.clone();
            let (head, tail) = pieces.split_at_mut(cut);
            apply_mask_at(head, key, 0);
            apply_mask_at(tail, key, cut);
            assert_eq!(pieces, whole, "cut {cut}");
        }
    }

    #[test]
    fn the_run_time_choice_is_the_vector_path_when_the_cpu_has_avx2() {
        // Under Miri this runs only when the build enables AVX2 (as `.ci/run` does), so that
        // the `unsafe` call of the AVX2 path is checked too.
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            let mut buf = pattern(100);
            let mut expected = buf.clone();
            // SAFETY: AVX2 was just detected.
            unsafe { mask_avx2(&mut buf, [9, 8, 7, 6]) };
            mask_bytes(&mut expected, [9, 8, 7, 6]);
            assert_eq!(buf, expected);
        }
    }

    #[test]
    fn extending_masked_equals_copying_then_masking() {
        let key = [0xa1, 0xb2, 0xc3, 0xd4];
        let data = pattern(300);
        // Every length up to 70 (each short path and its tails), then around the vector
        // threshold; every source alignment within a word.
        let lengths = (0..=70).chain([255, 256, 257, 291]);
        for start in 0..8 {
            for len in lengths.clone() {
                let src = &data[start..start + len];
                let mut dst = BytesMut::from(&b"head"[..]);
                extend_masked(&mut dst, src, key);
                let mut expected = src.to_vec();
                mask_bytes(&mut expected, key);
                assert_eq!(&dst[..4], b"head");
                assert_eq!(&dst[4..], &expected[..], "start {start} len {len}");
            }
        }
    }

    #[test]
    fn copy_loops_match_the_byte_loop_without_feature_detection() {
        let key = [5, 6, 7, 8];
        for len in [0, 1, 3, 4, 5, 31, 32, 33, 64, 65, 100] {
            let src = pattern(len);
            let mut expected = src.clone();
            mask_bytes(&mut expected, key);
            let mut small = vec![MaybeUninit::new(0u8); len];
            copy_small(&src, &mut small, key);
            let mut lanes = vec![MaybeUninit::new(0u8); len];
            copy_lanes(&src, &mut lanes, key);
            for out in [small, lanes] {
                // SAFETY: every element was initialised above (and overwritten by the copy).
                let out: Vec<u8> = out.iter().map(|b| unsafe { b.assume_init() }).collect();
                assert_eq!(out, expected, "len {len}");
            }
        }
    }

    #[test]
    fn word_loop_matches_byte_loop_without_feature_detection() {
        let key = [1, 2, 3, 4];
        for len in [0, 1, 31, 32, 33, 64, 65, 100] {
            let mut words = pattern(len);
            let mut bytes = words.clone();
            mask_words(&mut words, key);
            mask_bytes(&mut bytes, key);
            assert_eq!(words, bytes, "len {len}");
        }
    }
}
