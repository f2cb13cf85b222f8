//! What a client run does, and what it reports.

use serde::{Deserialize, Serialize};

/// One measured pattern: `connections` sockets, each keeping `in_flight` messages of `size`
/// bytes outstanding against the echo server, until `messages` echoes (after `warmup`) arrived.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub connections: usize,
    pub size: usize,
    pub in_flight: usize,
    pub messages: u64,
    pub warmup: u64,
    #[serde(default)]
    pub latency: bool,
    #[serde(default)]
    pub text: bool,
    /// Open `connections` sockets, measure resident memory, send nothing.
    #[serde(default)]
    pub idle: bool,
    /// The echo comes back in frames of this many bytes (0: one frame per message), so that
    /// the client reassembles it.
    #[serde(default)]
    pub fragment: usize,
}

/// A client run's result, one JSON line on its stdout.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub messages: u64,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub user_cpu_s: f64,
    pub sys_cpu_s: f64,
    pub rss_bytes: u64,
    /// Idle runs: resident bytes added per open connection.
    #[serde(default)]
    pub bytes_per_connection: Option<f64>,
}

/// The scenarios of the issue, scaled by `scale` (1.0 = the full run).
pub fn all(scale: f64) -> Vec<Scenario> {
    let n = |full: u64| ((full as f64 * scale) as u64).max(200);
    let s = |name: &str, connections, size, in_flight, messages, latency, text| Scenario {
        name: name.into(),
        connections,
        size,
        in_flight,
        messages: n(messages),
        warmup: n(messages) / 10,
        latency,
        text,
        idle: false,
        fragment: 0,
    };
    vec![
        s("1 latency 16 B", 1, 16, 1, 40_000, true, false),
        s("1 latency 1 KiB", 1, 1024, 1, 40_000, true, false),
        s("1 latency 64 KiB", 1, 64 << 10, 1, 10_000, true, false),
        s("2 100 x 20 B", 100, 20, 1, 400_000, false, false),
        s("2 10 x 1 KiB", 10, 1024, 1, 200_000, false, false),
        s("3 10 x 16 KiB", 10, 16 << 10, 1, 100_000, false, false),
        s("3 500 x 16 KiB", 500, 16 << 10, 1, 100_000, false, false),
        s("4 1 x 64 B, 64 in flight", 1, 64, 64, 400_000, false, false),
        s("5 256 KiB", 1, 256 << 10, 1, 4_000, false, false),
        Scenario {
            fragment: 4 << 10,
            messages: ((40.0 * scale) as u64).max(8),
            warmup: 2,
            ..s(
                "5 16 MiB echoed in 4 KiB fragments",
                1,
                16 << 20,
                1,
                0,
                false,
                false,
            )
        },
        s(
            "6 64 KiB non-ASCII text",
            1,
            64 << 10,
            1,
            10_000,
            false,
            true,
        ),
        Scenario {
            idle: true,
            ..s(
                "7 idle memory, 10,000 connections",
                10_000,
                0,
                0,
                0,
                false,
                false,
            )
        },
    ]
}

/// `size` bytes of non-ASCII UTF-8 text (cut at a character boundary, padded with ASCII).
pub fn text(size: usize) -> String {
    let pattern = "héllo wörld ☃ κόσμε ";
    let mut out = String::with_capacity(size);
    while out.len() + pattern.len() <= size {
        out.push_str(pattern);
    }
    while out.len() < size {
        out.push('x');
    }
    out
}
