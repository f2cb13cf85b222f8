//! Entry points of the fuzz targets in `fuzz/` (feature `fuzzing`; not a stable API).
//!
//! Each checks properties that must hold for any input and panics when one does not. A stable
//! `cargo test` replays the committed corpus through them.

use bytes::BytesMut;

use crate::proto::{
    CloseCode, Frame, FrameDecoder, Incoming, Limits, MAX_CONTROL_PAYLOAD, Message, MessageDecoder,
    Role,
};

/// Small limits, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_message_size: 1024,
    max_fragments: 8,
};

/// Feeds arbitrary bytes to the frame and message decoders in both roles, in chunks whose size
/// the first byte picks, and checks that every decoded frame re-encodes to an equivalent one and
/// that every message respects the limits and UTF-8.
pub fn frame_parser(data: &[u8]) {
    let Some((&control, data)) = data.split_first() else {
        return;
    };
    let step = usize::from(control) % 67 + 1;
    for role in [Role::Client, Role::Server] {
        frames(role, data, step);
        messages(role, data, step);
    }
}

fn frames(role: Role, data: &[u8], step: usize) {
    let mut decoder = FrameDecoder::new(role, LIMITS);
    let mut buf = BytesMut::new();
    for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => check_frame(role, &frame),
                Ok(None) => break,
                Err(error) => {
                    let _ = CloseCode::from(&error);
                    return;
                }
            }
        }
    }
}

fn check_frame(role: Role, frame: &Frame) {
    assert!(frame.payload.len() <= LIMITS.max_message_size);
    assert_eq!(frame.rsv, 0, "no extension is negotiated");
    if frame.opcode.is_control() {
        assert!(frame.fin && frame.payload.len() <= MAX_CONTROL_PAYLOAD);
    }
    // Re-encode as the peer would have sent it, and decode that again.
    let mask = match role {
        Role::Client => None,
        Role::Server => Some([0xA5, 0x5A, 0x3C, 0xC3]),
    };
    let mut wire = BytesMut::new();
    frame.encode(mask, &mut wire);
    assert_eq!(
        wire.len(),
        frame.header(mask).encoded_len() + frame.payload.len()
    );
    let again = FrameDecoder::new(role, LIMITS).decode(&mut wire);
    assert_eq!(
        again.as_ref(),
        Ok(&Some(frame.clone())),
        "re-encoded frame differs"
    );
    assert!(wire.is_empty());
}

fn messages(role: Role, data: &[u8], step: usize) {
    feed(MessageDecoder::new(role, LIMITS), data, step);
}

/// Feeds `data` to `decoder` in chunks of `step` bytes, checking every message, until the end
/// or the first error (which must map to a close code).
fn feed(mut decoder: MessageDecoder, data: &[u8], step: usize) {
    let mut buf = BytesMut::new();
    for chunk in data.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(incoming)) => check_incoming(&incoming),
                Ok(None) => break,
                Err(error) => {
                    let _ = CloseCode::from(&error);
                    return;
                }
            }
        }
    }
}

fn check_incoming(incoming: &Incoming) {
    match incoming {
        Incoming::Message(message) => {
            assert!(message.len() <= LIMITS.max_message_size);
            if let Message::Text(text) = message {
                assert!(std::str::from_utf8(text.as_bytes()).is_ok());
            }
        }
        Incoming::Ping(payload) | Incoming::Pong(payload) => {
            assert!(payload.len() <= MAX_CONTROL_PAYLOAD)
        }
        Incoming::Close(Some(close)) => {
            assert!(close.code().is_valid_on_wire());
            assert!(std::str::from_utf8(close.reason().as_bytes()).is_ok());
        }
        Incoming::Close(None) => {}
    }
}

/// Sends arbitrary bytes through the permessage-deflate receive path as compressed messages
/// (split into frames and fed in chunks as the first two bytes pick, with context takeover on
/// or off) under small limits: every message must respect the limits and UTF-8, every error
/// must map to a close code. Then compresses the bytes and checks they inflate back.
#[cfg(feature = "deflate")]
pub fn inflate(data: &[u8]) {
    use crate::proto::deflate::DeflateParams;
    use crate::proto::deflate::codec::Deflater;
    use crate::proto::{OpCode, RSV1};

    let [control, split, data @ ..] = data else {
        return;
    };
    let params = DeflateParams {
        server_no_context_takeover: control & 1 != 0,
        client_no_context_takeover: control & 2 != 0,
        ..DeflateParams::default()
    };
    let text = control & 4 != 0;
    let frame_len = usize::from(*split) % 97 + 1;
    let step = usize::from(control >> 3) % 31 + 1;

    // Arbitrary bytes as the payload of compressed messages: two messages, so that the
    // context carried from the first matters for the second.
    let mut wire = BytesMut::new();
    for half in [&data[..data.len() / 2], &data[data.len() / 2..]] {
        let chunks: Vec<&[u8]> = half.chunks(frame_len).collect();
        let count = chunks.len().max(1);
        for i in 0..count {
            let payload = chunks.get(i).copied().unwrap_or_default();
            let opcode = match (i, text) {
                (0, true) => OpCode::Text,
                (0, false) => OpCode::Binary,
                _ => OpCode::Continuation,
            };
            Frame {
                fin: i + 1 == count,
                rsv: if i == 0 { RSV1 } else { 0 },
                opcode,
                payload: bytes::Bytes::copy_from_slice(payload),
            }
            .encode(None, &mut wire);
        }
    }
    feed(
        MessageDecoder::with_deflate(Role::Client, LIMITS, &params),
        &wire,
        step,
    );

    // And the bytes, compressed by us, inflate back (below the limit, exactly), whether each
    // message is compressed always or only when it shrinks (then the next ones still inflate).
    let mut deflater = Deflater::new(Role::Server, &params, u32::from(control % 10));
    let mut decoder = MessageDecoder::with_deflate(Role::Client, LIMITS, &params);
    for (message, if_smaller) in [(data, true), (data, false), (data, true)] {
        let message = &message[..message.len().min(LIMITS.max_message_size)];
        let (rsv, payload) = if if_smaller {
            match deflater.compress_if_smaller(message) {
                Some(payload) => (RSV1, payload),
                None => (0, bytes::Bytes::copy_from_slice(message)),
            }
        } else {
            (RSV1, deflater.compress(message))
        };
        let mut wire = BytesMut::new();
        Frame {
            fin: true,
            rsv,
            opcode: OpCode::Binary,
            payload,
        }
        .encode(None, &mut wire);
        match decoder.decode(&mut wire) {
            Ok(Some(Incoming::Message(Message::Binary(got)))) => assert_eq!(&got[..], message),
            other => panic!("our own compression did not inflate back: {other:?}"),
        }
    }
}

/// Feeds arbitrary bytes to the HTTP/1.1 handshake parsers of both roles (with a 4 KiB head
/// limit) and runs every check on what parses: nothing may panic, and a response that passes
/// must carry the right accept value and an offered protocol. The same bytes are then judged as
/// a proxy's answer (to CONNECT, and to each SOCKS5 step).
pub fn handshake(data: &[u8]) {
    use crate::handshake::{HandshakeRequest, Http1Handshake, ServerHandshake, negotiate};

    const LIMIT: usize = 4096;
    if let Ok(Some((response, len))) = Http1Handshake::decode_response(data, LIMIT) {
        assert!(len <= data.len() && len <= LIMIT);
        let client = Http1Handshake::new();
        // The key is random, so a fuzzed Accept value cannot match it.
        assert!(client.validate(&response).is_err() || response.status() != 101);
        let request = HandshakeRequest {
            url: url::Url::parse("ws://fuzz.test/").expect("a valid URL"),
            protocols: vec!["a".into(), "b".into()],
            extensions: Some("permessage-deflate; client_max_window_bits".into()),
            headers: http::HeaderMap::new(),
        };
        if let Ok(negotiated) = negotiate(&request, response.headers()) {
            assert!(request.protocols.contains(&negotiated.protocol));
        }
    }
    if let Ok(Some((request, len))) = ServerHandshake::decode_request(data, LIMIT) {
        assert!(len <= data.len() && len <= LIMIT);
        if let Ok(handshake) = ServerHandshake::new(request) {
            let supported = ["a".to_string(), "b".to_string()];
            let _ = handshake.select_protocol(&supported);
            let mut response = String::new();
            handshake.encode_response(Some("a"), &mut response);
            assert!(response.ends_with("\r\n\r\n"));
        }
    }
    // The same bytes as a proxy's answer to CONNECT or to the SOCKS5 steps.
    crate::dispatcher::judge_answers(data);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Runs `target` on every file of `fuzz/corpus/<name>`; returns how many there were.
    fn replay(name: &str, target: fn(&[u8])) -> usize {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(name);
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus folder exists") {
            let path = entry.expect("readable corpus entry").path();
            target(&std::fs::read(&path).expect("readable corpus file"));
            replayed += 1;
        }
        replayed
    }

    #[test]
    fn the_committed_frame_parser_corpus_replays() {
        let replayed = replay("frame_parser", super::frame_parser);
        assert!(replayed >= 8, "only {replayed} frame_parser corpus files");
    }

    #[cfg(feature = "deflate")]
    #[test]
    fn the_committed_inflate_corpus_replays() {
        let replayed = replay("inflate", super::inflate);
        assert!(replayed >= 4, "only {replayed} inflate corpus files");
    }

    #[test]
    fn the_committed_handshake_corpus_replays() {
        let replayed = replay("handshake", super::handshake);
        assert!(replayed >= 4, "only {replayed} handshake corpus files");
    }
}
