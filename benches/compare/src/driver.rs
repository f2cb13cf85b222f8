//! The client side of a run, the same for every implementation: each connection keeps
//! `in_flight` messages outstanding, sending the next as each echo arrives, until the total is
//! reached. Timing and CPU time cover the part after the warm-up.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::measure::{cpu_times, rss_bytes};
use crate::scenario::{Report, Scenario, text};

/// The message every send carries, prepared once. Text is validated once here, for the
/// clients whose text type checks UTF-8 when made, so that no send pays for validation.
#[derive(Clone)]
pub struct Payload {
    pub bytes: Bytes,
    pub text: bool,
    pub ours_text: Option<whatwg_websocket::Utf8Bytes>,
    pub tungstenite_text: Option<tokio_tungstenite::tungstenite::Utf8Bytes>,
}

impl Payload {
    pub fn new(scenario: &Scenario) -> Self {
        let bytes = if scenario.text {
            Bytes::from(text(scenario.size))
        } else {
            Bytes::from(vec![0x61; scenario.size])
        };
        let valid = |b: &Bytes| scenario.text.then(|| b.clone());
        Self {
            ours_text: valid(&bytes).map(|b| b.try_into().expect("UTF-8")),
            tungstenite_text: valid(&bytes).map(|b| b.try_into().expect("UTF-8")),
            bytes,
            text: scenario.text,
        }
    }
}

/// One open connection of some implementation.
pub trait Conn {
    /// Sends `payload` (flushed).
    async fn send(&mut self, payload: &Payload) -> io::Result<()>;
    /// Waits for the next message; returns its length.
    async fn recv(&mut self) -> io::Result<usize>;
}

#[derive(Default)]
struct Progress {
    echoes: Cell<u64>,
    started: Cell<Option<(Instant, Duration, Duration)>>,
    finished: Cell<Option<(Instant, Duration, Duration)>>,
    latencies: RefCell<Vec<Duration>>,
}

/// Runs `scenario` over `conns` (already open) on the current `LocalSet`.
pub async fn drive<C: Conn + 'static>(
    implementation: &str,
    conns: Vec<C>,
    scenario: &Scenario,
) -> io::Result<Report> {
    let payload = Payload::new(scenario);
    let progress = Rc::new(Progress::default());
    if scenario.warmup == 0 {
        let (user, sys) = cpu_times();
        progress.started.set(Some((Instant::now(), user, sys)));
    }
    let total = scenario.messages + scenario.warmup;
    let mut tasks = Vec::new();
    for mut conn in conns {
        let progress = progress.clone();
        let payload = payload.clone();
        let (in_flight, warmup, latency, size) = (
            scenario.in_flight,
            scenario.warmup,
            scenario.latency,
            scenario.size,
        );
        tasks.push(tokio::task::spawn_local(async move {
            for _ in 0..in_flight {
                conn.send(&payload).await?;
            }
            let mut sent_at = Instant::now();
            loop {
                let len = conn.recv().await?;
                if len != size {
                    return Err(io::Error::other(format!(
                        "echo of {len} bytes, sent {size}"
                    )));
                }
                let n = progress.echoes.get() + 1;
                progress.echoes.set(n);
                if latency && n > warmup {
                    progress.latencies.borrow_mut().push(sent_at.elapsed());
                }
                if n == warmup {
                    let (user, sys) = cpu_times();
                    progress.started.set(Some((Instant::now(), user, sys)));
                }
                if n == total {
                    let (user, sys) = cpu_times();
                    progress.finished.set(Some((Instant::now(), user, sys)));
                }
                if n >= total {
                    return Ok::<_, io::Error>(conn);
                }
                sent_at = Instant::now();
                conn.send(&payload).await?;
            }
        }));
    }
    let mut conns = Vec::new();
    for task in tasks {
        conns.push(task.await.map_err(io::Error::other)??);
    }
    let (Some((t0, u0, s0)), Some((t1, u1, s1))) =
        (progress.started.get(), progress.finished.get())
    else {
        return Err(io::Error::other("the run did not finish"));
    };
    let seconds = (t1 - t0).as_secs_f64();
    let messages = scenario.messages;
    let mut latencies = progress.latencies.take();
    latencies.sort();
    let percentile = |p: f64| {
        (!latencies.is_empty()).then(|| {
            let i = ((latencies.len() as f64 * p) as usize).min(latencies.len() - 1);
            latencies[i].as_secs_f64() * 1e6
        })
    };
    let report = Report {
        implementation: implementation.into(),
        messages,
        seconds,
        msgs_per_sec: messages as f64 / seconds,
        mb_per_sec: (messages as f64 * scenario.size as f64) / 1e6 / seconds,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        p999_us: percentile(0.999),
        user_cpu_s: (u1 - u0).as_secs_f64(),
        sys_cpu_s: (s1 - s0).as_secs_f64(),
        rss_bytes: rss_bytes(),
        bytes_per_connection: None,
    };
    drop(conns);
    Ok(report)
}
