//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 section 4).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A fresh `Sec-WebSocket-Key`: 16 bytes from the OS CSPRNG, base64-encoded (24 characters).
///
/// # Panics
/// If the operating system cannot provide random bytes.
pub(crate) fn generate_key() -> String {
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).expect("the operating system's random source failed");
    STANDARD.encode(nonce)
}

/// The `Sec-WebSocket-Accept` value for `key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(GUID);
    STANDARD.encode(sha1.finalize())
}

/// Whether `key` is a valid `Sec-WebSocket-Key`: base64 of exactly 16 bytes.
pub(crate) fn is_valid_key(key: &[u8]) -> bool {
    key.len() == 24 && STANDARD.decode(key).is_ok_and(|nonce| nonce.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6455_sample_accept() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn generated_keys_are_valid_and_fresh() {
        let a = generate_key();
        let b = generate_key();
        assert!(is_valid_key(a.as_bytes()) && is_valid_key(b.as_bytes()));
        assert_ne!(a, b);
        assert!(!is_valid_key(b"c2hvcnQ="));
        assert!(!is_valid_key(b"!!!!!!!!!!!!!!!!!!!!!!!!"));
    }
}
