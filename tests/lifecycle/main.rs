//! How connections end and which events they deliver: the close timeout on both faces whatever
//! the peer does, the Close flushed through a TLS-like socket, events on multi-thread runtimes,
//! and the bounds and strictness fixes that go with them. Timers run in virtual time
//! (`tokio::time::pause`) over the in-memory socket of `support::mock`; the event tests run on
//! multi-thread runtimes over loopback.
//!
//! Each test is named after the behaviour it pins, and each failed before its fix.

#[path = "../support/mod.rs"]
mod support;

mod close_timeout;
mod events;
mod flush;
mod keepalive;
mod pings;
mod server_timeouts;
mod strictness;
