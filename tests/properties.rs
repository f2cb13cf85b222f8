//! Property tests of the sans-IO core: round trips, masking, and UTF-8 across fragments.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use whatwg_websocket::proto::{
    CloseCode, Frame, FrameDecoder, FrameHeader, Incoming, Limits, MAX_HEADER_LEN, Message,
    MessageDecoder, OpCode, ProtocolError, Role, apply_mask, apply_mask_at,
};

fn data_opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary)
    ]
}

fn control_opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![Just(OpCode::Close), Just(OpCode::Ping), Just(OpCode::Pong)]
}

/// Any frame a decoder without extensions accepts: data frames of any length form, control
/// frames final and short.
fn frame() -> impl Strategy<Value = Frame> {
    let data = (
        data_opcode(),
        any::<bool>(),
        prop_oneof![0usize..=125, 126usize..=70_000],
    )
        .prop_map(|(opcode, fin, len)| Frame {
            fin,
            rsv: 0,
            opcode,
            payload: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()),
        });
    let control = (
        control_opcode(),
        prop::collection::vec(any::<u8>(), 0..=125),
    )
        .prop_map(|(opcode, payload)| Frame::new(opcode, payload));
    prop_oneof![data, control]
}

/// The peer's role and the mask it puts on frames.
fn direction() -> impl Strategy<Value = (Role, Option<[u8; 4]>)> {
    prop_oneof![
        Just((Role::Client, None)),
        any::<[u8; 4]>().prop_map(|key| (Role::Server, Some(key)))
    ]
}

fn decode_all(
    role: Role,
    wire: &[u8],
    step: usize,
    limits: Limits,
) -> Result<Vec<Incoming>, ProtocolError> {
    let mut decoder = MessageDecoder::new(role, limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in wire.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        while let Some(incoming) = decoder.decode(&mut buf)? {
            out.push(incoming);
        }
    }
    Ok(out)
}

proptest! {
    #[test]
    fn any_header_encodes_then_decodes_to_itself(
        fin: bool, rsv in 0u8..8, opcode in prop_oneof![data_opcode(), control_opcode()],
        mask: Option<[u8; 4]>, payload_len in 0u64..=(i64::MAX as u64),
    ) {
        let payload_len = if opcode.is_control() { payload_len % 126 } else { payload_len };
        let fin = fin || opcode.is_control();
        let header = FrameHeader { fin, rsv, opcode, mask, payload_len };
        let mut raw = [0; MAX_HEADER_LEN];
        let n = header.encode(&mut raw);
        prop_assert_eq!(n, header.encoded_len());
        prop_assert_eq!(FrameHeader::decode(&raw[..n]), Ok(Some((header, n))));
    }

    #[test]
    fn any_frame_round_trips_through_encode_and_decode(
        frames in prop::collection::vec(frame(), 1..6), (role, mask) in direction(), step in 1usize..5000,
    ) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            frame.encode(mask, &mut wire);
        }
        let mut decoder = FrameDecoder::new(role, Limits::default());
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(step) {
            buf.extend_from_slice(chunk);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                out.push(frame);
            }
        }
        prop_assert_eq!(out, frames);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn masking_twice_is_identity(data: Vec<u8>, key: [u8; 4], offset in 0usize..8) {
        let mut buf = data.clone();
        apply_mask_at(&mut buf, key, offset);
        apply_mask_at(&mut buf, key, offset);
        prop_assert_eq!(buf, data);
    }

    #[test]
    fn masking_xors_the_key_cyclically(data in prop::collection::vec(any::<u8>(), 0..2000), key: [u8; 4]) {
        let mut buf = data.clone();
        apply_mask(&mut buf, key);
        for (i, (&masked, &plain)) in buf.iter().zip(&data).enumerate() {
            prop_assert_eq!(masked, plain ^ key[i % 4]);
        }
    }

    #[test]
    fn valid_text_in_fragments_split_anywhere_is_one_text_message(
        text in "\\PC{0,60}", cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        (role, mask) in direction(), step in 1usize..40,
    ) {
        let wire = fragmented(text.as_bytes(), cut_points(text.as_bytes(), &cuts), mask);
        let got = decode_all(role, &wire, step, Limits::default()).unwrap();
        prop_assert_eq!(got, vec![Incoming::Message(Message::text(text.as_str()))]);
    }

    #[test]
    fn invalid_text_in_fragments_split_anywhere_is_1007(
        prefix in "\\PC{0,20}", bad in prop_oneof![
            Just(&b"\xff"[..]), Just(&b"\xc0\x80"[..]), Just(&b"\xed\xa0\x80"[..]), Just(&b"\xf4\x90\x80\x80"[..]), Just(&b"\xe2\x82"[..]),
        ],
        suffix in "\\PC{0,20}", cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        (role, mask) in direction(), step in 1usize..40,
    ) {
        let mut text = prefix.into_bytes();
        text.extend_from_slice(bad);
        // Every character of the suffix starts with a leading byte, so it never completes an
        // incomplete sequence: the text stays invalid.
        text.extend_from_slice(suffix.as_bytes());
        let wire = fragmented(&text, cut_points(&text, &cuts), mask);
        let err = decode_all(role, &wire, step, Limits::default()).unwrap_err();
        prop_assert_eq!(&err, &ProtocolError::InvalidUtf8);
        prop_assert_eq!(CloseCode::from(&err), CloseCode::INVALID_PAYLOAD);
    }
}

/// A text message split into fragments at the given cut points (in any order, repeats allowed).
fn fragmented(
    text: &[u8],
    cuts: impl IntoIterator<Item = usize>,
    mask: Option<[u8; 4]>,
) -> BytesMut {
    let mut points: Vec<usize> = cuts.into_iter().collect();
    points.push(text.len());
    points.sort_unstable();
    points.dedup();
    let mut wire = BytesMut::new();
    let mut start = 0;
    for (n, &end) in points.iter().enumerate() {
        let opcode = if n == 0 {
            OpCode::Text
        } else {
            OpCode::Continuation
        };
        let frame = Frame {
            fin: n + 1 == points.len(),
            rsv: 0,
            opcode,
            payload: Bytes::copy_from_slice(&text[start..end]),
        };
        frame.encode(mask, &mut wire);
        start = end;
    }
    wire
}

/// Cut points picked by proptest.
fn cut_points(text: &[u8], cuts: &[prop::sample::Index]) -> Vec<usize> {
    cuts.iter().map(|i| i.index(text.len() + 1)).collect()
}

#[test]
fn valid_text_split_at_every_byte_offset_into_two_and_three_fragments_is_accepted() {
    let text = "A€𝄞é日本語🎉z".as_bytes();
    for i in 0..=text.len() {
        for j in i..=text.len() {
            let cuts = [i, j];
            let wire = fragmented(text, cuts, None);
            let got = decode_all(Role::Client, &wire, 7, Limits::default());
            assert_eq!(
                got,
                Ok(vec![Incoming::Message(Message::text(
                    std::str::from_utf8(text).unwrap()
                ))]),
                "cuts {cuts:?}"
            );
        }
    }
}

#[test]
fn invalid_text_split_at_every_byte_offset_is_rejected_with_1007() {
    let text =
        b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64";
    for i in 0..=text.len() {
        for j in i..=text.len() {
            let wire = fragmented(text, [i, j], None);
            let err = decode_all(Role::Client, &wire, 3, Limits::default()).unwrap_err();
            assert_eq!(
                CloseCode::from(&err),
                CloseCode::INVALID_PAYLOAD,
                "cuts {i},{j}"
            );
        }
    }
}
