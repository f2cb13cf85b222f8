//! A decompression bomb: a 1.7 MB compressed frame that inflates to 256 MiB ends the connection
//! with 1009 once the inflated size passes the limit, and the process's peak memory shows it was
//! never inflated in full. Alone in its test binary so that the peak is this test's.
#![cfg(all(feature = "deflate", target_os = "linux"))]

mod support;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use support::*;
use whatwg_websocket::proto::{Frame, Incoming, Limits, OpCode, RSV1};
use whatwg_websocket::{Failure, ProtocolError, StreamOptions};

/// Writes DEFLATE's bits least significant first; Huffman codes go most significant first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl Bits {
    fn put(&mut self, value: u64, count: u32) {
        self.acc |= value << self.len;
        self.len += count;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }

    fn code(&mut self, code: u64, count: u32) {
        let reversed = (0..count).fold(0, |r, i| r | ((code >> i) & 1) << (count - 1 - i));
        self.put(reversed, count);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.len > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A permessage-deflate payload inflating to `1 + 258 * copies` zero bytes: one fixed-Huffman
/// block with a literal 0 and `copies` matches of length 258 at distance 1, then the header of
/// the empty stored block whose 4-byte rest the receiver appends.
fn bomb(copies: usize) -> Bytes {
    let mut bits = Bits::default();
    bits.put(0, 1); // BFINAL = 0
    bits.put(1, 2); // BTYPE = 01, fixed Huffman
    bits.code(0b0011_0000, 8); // literal 0
    for _ in 0..copies {
        bits.code(0b1100_0101, 8); // length code 285: 258 bytes
        bits.code(0, 5); // distance code 0: distance 1
    }
    bits.code(0, 7); // end of block (256)
    bits.put(0, 3); // a stored block, BFINAL = 0; its LEN/NLEN are the removed tail
    Bytes::from(bits.finish())
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

#[tokio::test]
async fn a_bomb_ends_in_1009_with_peak_memory_bounded() {
    let copies = (256usize << 20) / 258; // 256 MiB inflated
    let payload = bomb(copies);
    assert!(payload.len() < 2 << 20, "{}", payload.len());
    let (address, peer) = serve_once(move |mut socket| async move {
        let rest = answer_handshake(
            &mut socket,
            "Sec-WebSocket-Extensions: permessage-deflate\r\n",
        )
        .await;
        let mut peer = RawPeer::new(socket, rest);
        peer.send(Frame {
            rsv: RSV1,
            ..Frame::new(OpCode::Binary, payload)
        })
        .await;
        within(peer.receive()).await
    })
    .await;
    let before = peak_rss_kib();
    let limit = 16 << 20;
    let options = StreamOptions {
        limits: Limits {
            max_message_size: limit,
            ..Limits::default()
        },
        ..Default::default()
    };
    let (ws, mut opened) = connect(&format!("ws://{address}/"), options).await;
    let error = within(opened.readable.next()).await.unwrap().unwrap_err();
    assert!(
        matches!(
            error.failure(),
            Some(Failure::Protocol(ProtocolError::MessageTooLarge { .. }))
        ),
        "{error:?}"
    );
    match peer.await.unwrap() {
        Some(Incoming::Close(Some(frame))) => assert_eq!(frame.code().as_u16(), 1009),
        other => panic!("expected Close 1009, got {other:?}"),
    }
    let grown_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    // At most the limit (16 MiB) and a few buffers: far from the 256 MiB the frame claims.
    assert!(grown_mib < 48, "peak memory grew by {grown_mib} MiB");
    drop(ws);

    // The same bomb below the limit inflates correctly (the builder makes valid DEFLATE).
    let small = bomb(1000);
    let params = whatwg_websocket::proto::deflate::DeflateParams::default();
    let mut decoder = whatwg_websocket::proto::MessageDecoder::with_deflate(
        whatwg_websocket::proto::Role::Client,
        Limits::default(),
        &params,
    );
    let mut buf = BytesMut::new();
    Frame {
        rsv: RSV1,
        ..Frame::new(OpCode::Binary, small)
    }
    .encode(None, &mut buf);
    match decoder.decode(&mut buf).unwrap() {
        Some(Incoming::Message(message)) => {
            assert_eq!(message.len(), 1 + 258 * 1000);
            assert!(message.as_bytes().iter().all(|&b| b == 0));
        }
        other => panic!("{other:?}"),
    }
}
