//! Read sizing: a burst of small frames is read in large reads (the read size adapts), while
//! each read stays bounded.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use whatwg_websocket::proto::{Frame, FrameEncoder, OpCode, Role};
use whatwg_websocket::{Opened, ServerOptions, accept_upgraded};

/// Counts the reads that returned data, and the largest.
struct Counting<T> {
    inner: T,
    reads: Arc<AtomicUsize>,
    largest: Arc<AtomicUsize>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counting<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.largest.fetch_max(n, Ordering::SeqCst);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counting<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_burst_of_small_frames_is_read_in_few_large_reads() {
    const FRAMES: usize = 1024;
    const SIZE: usize = 4096;
    let (mut peer, ours) = tokio::io::duplex(8 << 20);
    // The peer's whole burst (4 MiB in 4 KiB messages) waits before the first read.
    let mut burst = BytesMut::new();
    let mut encoder = FrameEncoder::new(Role::Client);
    for i in 0..FRAMES {
        let frame = Frame::new(OpCode::Binary, vec![i as u8; SIZE]);
        encoder.encode(&frame, &mut burst);
    }
    peer.write_all(&burst).await.unwrap();

    let reads = Arc::new(AtomicUsize::new(0));
    let largest = Arc::new(AtomicUsize::new(0));
    let io = Counting {
        inner: ours,
        reads: reads.clone(),
        largest: largest.clone(),
    };
    let ws = accept_upgraded(io, None, &ServerOptions::default());
    let Opened { mut readable, .. } = ws.opened().await.unwrap();
    for i in 0..FRAMES {
        let message = readable.next().await.unwrap().unwrap();
        assert_eq!(
            message.as_bytes(),
            vec![i as u8; SIZE].as_slice(),
            "message {i}"
        );
    }
    let (reads, largest) = (reads.load(Ordering::SeqCst), largest.load(Ordering::SeqCst));
    // One read per frame would be 1,024; 32 KiB reads make about 130.
    assert!(reads < FRAMES / 4, "{reads} reads for {FRAMES} frames");
    assert!(largest <= 64 << 10, "a read of {largest} bytes");
    drop(peer);
}
