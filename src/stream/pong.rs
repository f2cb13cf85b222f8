//! The answer to a ping: a future of its round-trip time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::connection::Outcome;
use crate::connection::shared::{Phase, Shared};
use crate::{Error, WebSocketError};

/// What [`WebSocketStream::ping`](crate::WebSocketStream::ping) returns: resolves with the
/// round-trip time once the matching pong arrives (or a pong to a later ping: a peer may
/// answer only the latest). The ping is sent whether this is awaited or not.
///
/// It fails when no pong can come any more: with the `WebSocketError` when the connection
/// failed, `InvalidStateError` when it closed (or was not open), and `QuotaExceededError`
/// when 32 later pings were sent before the pong came.
///
/// The pong is read by whoever reads: the readable, `closed`, or (when the owner reads
/// nothing) the connection's keeper, at once while this future waits.
///
/// ```no_run
/// # async fn run(ws: whatwg_websocket::WebSocketStream) -> Result<(), whatwg_websocket::Error> {
/// let rtt = ws.ping(b"hb")?.await?;
/// println!("round trip: {rtt:?}");
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pong {
    pub(crate) answer: Result<oneshot::Receiver<Duration>, Option<Error>>,
    pub(crate) shared: Weak<Shared>,
}

impl Future for Pong {
    type Output = Result<Duration, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let receiver = match &mut this.answer {
            Ok(receiver) => receiver,
            Err(error) => {
                return Poll::Ready(Err(error.take().unwrap_or_else(|| not_open("closed"))));
            }
        };
        match ready!(Pin::new(receiver).poll(cx)) {
            Ok(rtt) => Poll::Ready(Ok(rtt)),
            Err(_) => Poll::Ready(Err(why_no_pong(&this.shared))),
        }
    }
}

fn not_open(what: &str) -> Error {
    Error::InvalidState(format!("the WebSocket {what} before the pong arrived"))
}

/// Why a ping's answer was dropped: the end of the connection, or later pings.
fn why_no_pong(shared: &Weak<Shared>) -> Error {
    let Some(shared) = shared.upgrade() else {
        return not_open("was dropped");
    };
    let state = shared.lock();
    match &state.phase {
        Phase::Failed(error) => Error::WebSocket(error.clone()),
        Phase::Connecting => not_open("was not open"),
        Phase::Open(connection) => match (connection.outcome(), connection.end_error()) {
            (Some(Outcome::Unclean(error)), _) | (_, Some(error)) => {
                Error::WebSocket(WebSocketError::clone(error))
            }
            (Some(Outcome::Clean(_)), None) => not_open("closed"),
            (None, None) if connection.is_closing() => not_open("started closing"),
            (None, None) => Error::QuotaExceeded(format!(
                "{} later pings were sent before the pong arrived",
                crate::connection::MAX_PINGS_AWAITING
            )),
        },
    }
}
