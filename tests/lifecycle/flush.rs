//! Every Close we queue reaches the peer, through a socket that holds what it takes until it
//! is flushed (as a TLS stream holds its records).

use futures_util::SinkExt;
use whatwg_websocket::proto::{Incoming, Message as Frames};
use whatwg_websocket::{CloseInfo, Message, StreamOptions, WebSocketStream};

use crate::support::mock::{self, Mock};
use crate::support::within;

#[tokio::test(start_paused = true)]
async fn a_close_right_after_a_large_message_is_flushed_through_a_tls_like_socket() {
    let mock = Mock {
        capacity: 64 * 1024,
        hold_until_flush: true,
        held_capacity: 64 * 1024,
        ..Mock::default()
    };
    let (dispatcher, mut peer) = mock::socket(mock);
    let options = StreamOptions {
        dispatcher: Some(dispatcher),
        deflate: None,
        ..StreamOptions::default()
    };
    let ws = WebSocketStream::new("wss://mock/", options).unwrap();
    let mut opened = within(ws.opened()).await.unwrap();
    let large = vec![0x5au8; 1 << 20];
    opened
        .writable
        .feed(Message::binary(large.clone()))
        .await
        .unwrap();
    // The Close goes behind 1 MiB that the socket takes 64 KiB at a time.
    ws.close(CloseInfo {
        close_code: Some(4000),
        reason: "done".into(),
    })
    .unwrap();
    let peer_side = tokio::spawn(async move {
        match peer.receive().await {
            Some(Incoming::Message(Frames::Binary(data))) => assert_eq!(data.len(), large.len()),
            other => panic!("expected the 1 MiB message, got {other:?}"),
        }
        let close = match peer.receive().await {
            Some(Incoming::Close(frame)) => {
                frame.map(|f| (f.code().as_u16(), f.reason().to_string()))
            }
            other => panic!("expected the Close, got {other:?}"),
        };
        // Answer, and close TCP as a server does.
        peer.send_raw(&[0x88, 0x02, 0x0f, 0xa0]);
        peer.close_write();
        close
    });
    let info = within(ws.closed()).await.expect("a clean close");
    assert_eq!(info.close_code, Some(4000));
    assert_eq!(
        within(peer_side).await.unwrap(),
        Some((4000, "done".to_owned()))
    );
}
