//! Two strictness fixes: an empty subprotocol answer to a request that offered none fails the
//! opening (RFC 6455 section 4.1), and a message that permessage-deflate would grow goes
//! uncompressed (RFC 7692 allows it per message).

use whatwg_websocket::handshake::HandshakeError;
use whatwg_websocket::{Failure, StreamOptions, WebSocketStream};

use crate::support::{answer_handshake, serve_once, within};

#[tokio::test]
async fn an_empty_protocol_answer_fails_the_opening_when_none_was_offered() {
    let (address, _done) = serve_once(|mut socket| async move {
        answer_handshake(&mut socket, "Sec-WebSocket-Protocol: \r\n").await;
        socket
    })
    .await;
    let ws = WebSocketStream::new(&format!("ws://{address}/"), StreamOptions::default()).unwrap();
    let error = within(ws.opened()).await.unwrap_err();
    assert_eq!(error.close_code(), Some(1006));
    assert!(
        matches!(
            error.failure(),
            Some(Failure::Handshake(HandshakeError::UnexpectedProtocol(p))) if p.is_empty()
        ),
        "{error:?}"
    );
}

#[cfg(feature = "deflate")]
mod deflate {
    use futures_util::SinkExt;
    use whatwg_websocket::handshake::Negotiated;
    use whatwg_websocket::proto::{Frame, RSV1};
    use whatwg_websocket::{Message, StreamOptions, WebSocketStream};

    use crate::support::mock::{self, Mock};
    use crate::support::within;

    /// Bytes that do not compress: every value equally likely.
    fn random_bytes(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_that_deflate_would_grow_goes_uncompressed_with_9_bit_windows() {
        let mock = Mock {
            negotiated: Negotiated {
                protocol: String::new(),
                extensions:
                    "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9".into(),
            },
            ..Mock::default()
        };
        let (dispatcher, mut peer) = mock::socket(mock);
        let options = StreamOptions {
            dispatcher: Some(dispatcher),
            ..StreamOptions::default()
        };
        let ws = WebSocketStream::new("ws://mock/", options).unwrap();
        let mut opened = within(ws.opened()).await.unwrap();
        let noise = random_bytes(1 << 20);
        opened
            .writable
            .send(Message::binary(noise.clone()))
            .await
            .unwrap();
        let frame: Frame = within(peer.receive_frame()).await.unwrap();
        assert_eq!(frame.rsv & RSV1, 0, "sent compressed");
        assert_eq!(frame.payload, noise);
        // What compresses still does, and the peer's window stays in step (checked by the
        // codec's tests).
        let json = r#"{"type":"next","payload":{"data":{"n":1}}}"#.repeat(50);
        opened
            .writable
            .send(Message::text(json.clone()))
            .await
            .unwrap();
        let frame = within(peer.receive_frame()).await.unwrap();
        assert_eq!(frame.rsv & RSV1, RSV1);
        assert!(frame.payload.len() < json.len() / 4);
    }
}
