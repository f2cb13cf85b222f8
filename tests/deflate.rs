//! permessage-deflate over loopback: every negotiation outcome seen from a scripted peer, both
//! roles of ours talking to each other with each parameter, context takeover observed on the
//! wire, and the client's Close 1010 for an unacceptable answer.
#![cfg(feature = "deflate")]

mod support;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use whatwg_websocket::handshake::HandshakeError;
use whatwg_websocket::proto::deflate::DeflateOptions;
use whatwg_websocket::proto::{
    Frame, FrameDecoder, FrameEncoder, Incoming, Limits, Message, MessageDecoder, OpCode, RSV1,
    Role,
};
use whatwg_websocket::{CloseInfo, Failure, ServerOptions, StreamOptions, WebSocketStream};

const JSON: &str =
    r#"{"type":"next","id":"42","payload":{"data":{"ticker":"ABC","bid":101.25,"ask":101.5}}}"#;

/// A server that answers the upgrade with `extensions` (if any) and hands back the socket, the
/// request's offer, and the bytes after the request.
async fn answering(
    extensions: Option<&'static str>,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Receiver<(TcpStream, String, BytesMut)>,
) {
    serve_once(move |mut socket| async move {
        let (request, rest) = read_request(&mut socket).await;
        let offer = request
            .headers()
            .get("sec-websocket-extensions")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let extra = extensions
            .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
            .unwrap_or_default();
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            accept_for(&request)
        );
        socket.write_all(response.as_bytes()).await.unwrap();
        (socket, offer, rest)
    })
    .await
}

/// Reads raw frames (RSV1 allowed) from a client.
struct FrameReader {
    socket: TcpStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl FrameReader {
    fn new(socket: TcpStream, buf: BytesMut) -> Self {
        let mut decoder = FrameDecoder::new(Role::Server, Limits::unlimited());
        decoder.allow_rsv1();
        Self {
            socket,
            buf,
            decoder,
        }
    }

    async fn frame(&mut self) -> Frame {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                return frame;
            }
            assert_ne!(
                within(self.socket.read_buf(&mut self.buf)).await.unwrap(),
                0
            );
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        FrameEncoder::new(Role::Server).encode(&frame, &mut out);
        self.socket.write_all(&out).await.unwrap();
    }
}

#[tokio::test]
async fn the_client_offers_deflate_by_default_and_a_declining_server_gets_plain_frames() {
    let (address, server) = answering(None).await;
    let (ws, mut opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    let (socket, offer, rest) = server.await.unwrap();
    assert_eq!(offer, "permessage-deflate; client_max_window_bits");
    assert_eq!(opened.extensions, "");
    within(opened.writable.send(Message::text(JSON)))
        .await
        .unwrap();
    let mut reader = FrameReader::new(socket, rest);
    let frame = reader.frame().await;
    assert_eq!((frame.rsv, frame.payload.as_ref()), (0, JSON.as_bytes()));
    drop(ws);
}

#[tokio::test]
async fn no_offer_when_deflate_is_disabled() {
    let (address, server) = answering(None).await;
    let options = StreamOptions {
        deflate: None,
        ..Default::default()
    };
    let (_ws, _opened) = connect(&format!("ws://{address}/"), options).await;
    assert_eq!(server.await.unwrap().1, "");
}

/// Each parameter a server may answer with is accepted and obeyed: the client compresses
/// (RSV1), resets its context when told to, and inflates what the server sends.
#[tokio::test]
async fn each_answer_parameter_is_accepted_and_obeyed() {
    for (answer, client_resets) in [
        ("permessage-deflate", false),
        ("permessage-deflate; client_no_context_takeover", true),
        ("permessage-deflate; server_no_context_takeover", false),
        ("permessage-deflate; client_max_window_bits=9", false),
        ("permessage-deflate; client_max_window_bits=8", false),
        ("permessage-deflate; server_max_window_bits=10", false),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=12; client_max_window_bits=11",
            true,
        ),
    ] {
        let (address, server) = answering(Some(answer)).await;
        let (ws, mut opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
        assert_eq!(opened.extensions, answer);
        let (socket, _, rest) = server.await.unwrap();
        let mut reader = FrameReader::new(socket, rest);
        // Short enough for the smallest window to reach back over it (zlib can look back
        // 2^bits - 262 bytes).
        let message = JSON.repeat(2);
        let mut sizes = Vec::new();
        for _ in 0..2 {
            within(opened.writable.send(Message::text(message.as_str())))
                .await
                .unwrap();
            let frame = reader.frame().await;
            assert_eq!(frame.rsv, RSV1, "{answer}");
            sizes.push(frame.payload.len());
        }
        // Context takeover: the repeat refers back to the first message.
        assert_eq!(sizes[1] == sizes[0], client_resets, "{answer}: {sizes:?}");
        assert!(sizes[0] < message.len() * 2 / 3, "{answer}: {sizes:?}");
        // And the client inflates what the server compresses.
        let compressed = server_compress(message.as_bytes());
        reader
            .send(Frame {
                rsv: RSV1,
                ..Frame::new(OpCode::Text, compressed)
            })
            .await;
        assert_eq!(
            within(opened.readable.next()).await.unwrap().unwrap(),
            Message::text(message.as_str())
        );
        drop(ws);
    }
}

/// A raw DEFLATE sync-flushed segment without its 4-byte tail, as a server sends it.
fn server_compress(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut compress = flate2::Compress::new(flate2::Compression::default(), false);
    compress
        .compress_vec(data, &mut out, flate2::FlushCompress::Sync)
        .unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    Bytes::from(out)
}

/// Answers a client must refuse: the connection fails (the web sees 1006) with the Rust-side
/// cause, and the server receives Close 1010.
#[tokio::test]
async fn unacceptable_answers_fail_the_connection_with_1010() {
    let options = StreamOptions {
        deflate: Some(DeflateOptions {
            server_max_window_bits: Some(10),
            ..DeflateOptions::default()
        }),
        ..Default::default()
    };
    for answer in [
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=11",
        "permessage-deflate", // the requested window limit was ignored
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
        "permessage-deflate; server_max_window_bits=10; mystery",
        "permessage-deflate; server_max_window_bits=10; server_no_context_takeover=yes",
        "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=10",
    ] {
        let (address, server) = answering(Some(answer)).await;
        let ws = WebSocketStream::new(&format!("ws://{address}/"), options.clone()).unwrap();
        let error = within(ws.opened()).await.unwrap_err();
        assert_eq!(error.close_code(), Some(1006), "{answer}");
        assert!(
            matches!(
                error.failure(),
                Some(Failure::Handshake(HandshakeError::InvalidExtension(_)))
            ),
            "{answer}: {error:?}"
        );
        let (socket, _, rest) = server.await.unwrap();
        let mut peer = RawPeer::new(socket, rest);
        match within(peer.receive()).await {
            Some(Incoming::Close(Some(frame))) => assert_eq!(frame.code().as_u16(), 1010),
            other => panic!("{answer}: expected Close 1010, got {other:?}"),
        }
    }
}

/// Our client and our server, with each parameter on the client's and on the server's side:
/// large and small messages both ways, context kept or reset, in many messages.
#[tokio::test]
async fn our_roles_agree_on_every_parameter_combination() {
    let variants = [
        (
            DeflateOptions::default(),
            DeflateOptions::default(),
            "permessage-deflate",
        ),
        (
            DeflateOptions {
                client_no_context_takeover: true,
                server_no_context_takeover: true,
                ..DeflateOptions::default()
            },
            DeflateOptions::default(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            DeflateOptions {
                server_max_window_bits: Some(9),
                client_max_window_bits: Some(10),
                ..DeflateOptions::default()
            },
            DeflateOptions::default(),
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
        ),
        (
            DeflateOptions::default(),
            DeflateOptions {
                client_max_window_bits: Some(8),
                server_max_window_bits: Some(12),
                client_no_context_takeover: true,
                level: 9,
                ..DeflateOptions::default()
            },
            "permessage-deflate; client_no_context_takeover; server_max_window_bits=12; \
             client_max_window_bits=8",
        ),
    ];
    for (client, server, agreed) in variants {
        let address = echo_server(ServerOptions {
            deflate: Some(server),
            ..Default::default()
        })
        .await;
        let options = StreamOptions {
            deflate: Some(client),
            ..Default::default()
        };
        let (ws, mut opened) = connect(&format!("ws://{address}/"), options).await;
        assert_eq!(opened.extensions, agreed);
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 97) as u8).collect();
        for message in [
            Message::text(JSON),
            Message::text(""),
            Message::text("tiny"), // below min_message_size: sent plain
            Message::binary(big),
            Message::text(JSON.repeat(1000)),
            Message::text(JSON),
        ] {
            within(opened.writable.send(message.clone())).await.unwrap();
            assert_eq!(
                within(opened.readable.next()).await.unwrap().unwrap(),
                message,
                "{agreed}"
            );
        }
        ws.close(CloseInfo::default()).unwrap();
        assert!(within(ws.closed()).await.is_ok(), "{agreed}");
    }
}

/// A server declines offers it cannot take (invalid or out-of-range parameters) and takes the
/// next valid one; a malformed header declines them all.
#[tokio::test]
async fn our_server_declines_invalid_offers() {
    for (offer, answer) in [
        ("permessage-deflate; server_max_window_bits=7", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        ("permessage-deflate; unknown_param", None),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            None,
        ),
        (
            "permessage-deflate; server_max_window_bits=99, permessage-deflate; server_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        ("x-other, permessage-deflate", Some("permessage-deflate")),
        (
            "permessage-deflate; client_max_window_bits=\"12\"",
            Some("permessage-deflate; client_max_window_bits=12"),
        ),
    ] {
        // The client's defaults, which keep the server's context (ServerOptions' default adds
        // server_no_context_takeover to every answer).
        let options = ServerOptions {
            deflate: Some(DeflateOptions::default()),
            ..ServerOptions::default()
        };
        let address = echo_server(options).await;
        let mut socket = TcpStream::connect(address).await.unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Extensions: {offer}\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            within(socket.read_exact(&mut byte)).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let got = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "));
        assert_eq!(got, answer, "{offer}");
    }
}

/// A compressed frame from a client whose server declined deflate is a protocol error (RSV1
/// without an extension): 1002.
#[tokio::test]
async fn rsv1_without_negotiation_is_a_protocol_error() {
    let (address, server) = answering(None).await;
    let (ws, mut opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
    let (socket, _, rest) = server.await.unwrap();
    let mut reader = FrameReader::new(socket, rest);
    reader
        .send(Frame {
            rsv: RSV1,
            ..Frame::new(OpCode::Text, server_compress(b"hello"))
        })
        .await;
    let error = within(opened.readable.next()).await.unwrap().unwrap_err();
    assert!(
        matches!(error.failure(), Some(Failure::Protocol(_))),
        "{error:?}"
    );
    let close = reader.frame().await;
    assert_eq!(close.opcode, OpCode::Close);
    assert_eq!(&close.payload[..2], &1002u16.to_be_bytes());
    drop(ws);
}

/// RSV1 on a continuation frame, or a compressed message that does not inflate, fail the
/// connection (1002, 1007).
#[tokio::test]
async fn bad_compressed_frames_fail_with_the_right_code() {
    let cases: [(Vec<Frame>, u16); 2] = [
        (
            vec![
                Frame {
                    fin: false,
                    rsv: RSV1,
                    ..Frame::new(OpCode::Text, server_compress(b"hel"))
                },
                Frame {
                    rsv: RSV1,
                    ..Frame::new(OpCode::Continuation, Bytes::new())
                },
            ],
            1002,
        ),
        (
            vec![Frame {
                rsv: RSV1,
                ..Frame::new(OpCode::Binary, Bytes::from_static(&[0xff, 0xfe, 0xfd]))
            }],
            1007,
        ),
    ];
    for (frames, code) in cases {
        let (address, server) = answering(Some("permessage-deflate")).await;
        let (ws, mut opened) = connect(&format!("ws://{address}/"), StreamOptions::default()).await;
        let (socket, _, rest) = server.await.unwrap();
        let mut reader = FrameReader::new(socket, rest);
        for frame in frames {
            reader.send(frame).await;
        }
        assert!(within(opened.readable.next()).await.unwrap().is_err());
        let close = reader.frame().await;
        assert_eq!(close.opcode, OpCode::Close);
        assert_eq!(&close.payload[..2], &code.to_be_bytes(), "{code}");
        drop(ws);
    }
}

/// The sans-IO decoder inflates a message split over several frames, the compressed text
/// validated once whole.
#[test]
fn a_fragmented_compressed_message_is_inflated_whole() {
    let params = whatwg_websocket::proto::deflate::DeflateParams::default();
    let mut decoder = MessageDecoder::with_deflate(Role::Client, Limits::default(), &params);
    let compressed = server_compress("é".repeat(1000).as_bytes());
    let (a, b) = compressed.split_at(compressed.len() / 2);
    let mut buf = BytesMut::new();
    Frame {
        fin: false,
        rsv: RSV1,
        ..Frame::new(OpCode::Text, Bytes::copy_from_slice(a))
    }
    .encode(None, &mut buf);
    // A ping between the fragments is allowed.
    Frame::new(OpCode::Ping, Bytes::from_static(b"p")).encode(None, &mut buf);
    Frame::new(OpCode::Continuation, Bytes::copy_from_slice(b)).encode(None, &mut buf);
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Incoming::Ping(Bytes::from_static(b"p")))
    );
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Incoming::Message(Message::text("é".repeat(1000))))
    );
}
