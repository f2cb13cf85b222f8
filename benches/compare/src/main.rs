//! Side-by-side WebSocket client benchmark. One run measures every client against the same
//! echo server on loopback and prints a table, ratios, and a `summary:` line.
//!
//! `benches/compare/run [--quick]` builds it and runs `compare run`. Processes:
//! - `compare server`: the echo servers (our server role without compression, and a raw TCP
//!   echo), one current-thread runtime pinned to CPU 0; prints `ports <ws> <raw>`.
//! - `compare client <impl> <ws-addr> <raw-addr> <scenario-json>`: one client run on a
//!   current-thread runtime pinned to CPU 1; prints one JSON `Report` line.
//! - undici: `node node/client.mjs <url> <scenario-json>`, pinned to CPU 1 the same way.

mod clients;
mod driver;
mod fragment;
mod measure;
mod scenario;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use scenario::{Report, Scenario};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const RUST_CLIENTS: [&str; 6] = [
    "raw-tcp",
    "ours-stream",
    "ours-websocket",
    "tokio-tungstenite",
    "tokio-websockets",
    "fastwebsockets",
];
/// The frame size of the fragmenting echo (scenario 5b).
const FRAGMENT: usize = 4 << 10;
const PEERS: [&str; 3] = ["tokio-tungstenite", "tokio-websockets", "fastwebsockets"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => server(),
        Some("client") => client(&args[2], &args[3], &args[4], &args[5]),
        _ => orchestrate(&args[1..]),
    }
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The echo servers, on CPU 0.
fn server() {
    measure::pin_to(0);
    measure::raise_fd_limit();
    current_thread().block_on(async {
        let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fragmenting = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!(
            "ports {} {} {}",
            ws.local_addr().unwrap().port(),
            raw.local_addr().unwrap().port(),
            fragmenting.local_addr().unwrap().port()
        );
        tokio::spawn(async move {
            while let Ok((socket, _)) = fragmenting.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(fragment::echo(socket, FRAGMENT));
            }
        });
        tokio::spawn(async move {
            while let Ok((socket, _)) = raw.accept().await {
                let _ = socket.set_nodelay(true);
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.into_split();
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = r.read(&mut buf).await {
                        if n == 0 || w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let options = whatwg_websocket::ServerOptions {
            deflate: None,
            limits: whatwg_websocket::Limits::unlimited(),
            ..Default::default()
        };
        while let Ok((socket, _)) = ws.accept().await {
            let _ = socket.set_nodelay(true);
            let options = options.clone();
            tokio::spawn(async move {
                let Ok(ws) = whatwg_websocket::accept(socket, options).await else {
                    return;
                };
                let Ok(mut opened) = ws.opened().await else {
                    return;
                };
                while let Some(Ok(message)) = opened.readable.next().await {
                    if opened.writable.send(message).await.is_err() {
                        break;
                    }
                }
                let _ = ws.closed().await;
            });
        }
    });
}

/// One client run, on CPU 1.
fn client(implementation: &str, ws: &str, raw: &str, scenario: &str) {
    measure::pin_to(1);
    measure::raise_fd_limit();
    let scenario: Scenario = serde_json::from_str(scenario).expect("a scenario");
    let ws: SocketAddr = ws.parse().expect("an address");
    let raw: SocketAddr = raw.parse().expect("an address");
    let runtime = current_thread();
    let local = tokio::task::LocalSet::new();
    match local.block_on(&runtime, clients::run(implementation, ws, raw, &scenario)) {
        Ok(report) => println!("{}", serde_json::to_string(&report).unwrap()),
        Err(error) => {
            eprintln!("{implementation}: {error}");
            std::process::exit(1);
        }
    }
}

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `command` pinned to `cpu`, returning its stdout's last line.
fn run_pinned(mut command: Command, cpu: usize) -> Option<String> {
    // SAFETY: only async-signal-safe calls (sched_setaffinity) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
    let output = command.stderr(Stdio::inherit()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .map(str::to_owned)
}

fn node_available() -> bool {
    here().join("node/node_modules/undici").exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
}

struct Server {
    child: Child,
    ws: SocketAddr,
    raw: SocketAddr,
    /// The echo that sends each message back in `FRAGMENT`-byte frames.
    fragmenting: SocketAddr,
}

impl Server {
    /// The WebSocket echo `scenario` runs against.
    fn ws_for(&self, scenario: &Scenario) -> SocketAddr {
        if scenario.fragment > 0 {
            self.fragmenting
        } else {
            self.ws
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("server")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the server's ports");
    let ports: Vec<u16> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|p| p.parse().ok())
        .collect();
    Server {
        child,
        ws: SocketAddr::from(([127, 0, 0, 1], ports[0])),
        raw: SocketAddr::from(([127, 0, 0, 1], ports[1])),
        fragmenting: SocketAddr::from(([127, 0, 0, 1], ports[2])),
    }
}

fn measure_once(
    server: &Server,
    implementation: &str,
    scenario: &Scenario,
) -> Option<(Report, f64)> {
    let json = serde_json::to_string(scenario).unwrap();
    let command = if implementation == "undici" {
        // The Node client counts the warm-up inside `messages`.
        let mut node = scenario.clone();
        node.messages += node.warmup;
        let mut command = Command::new("node");
        command
            .arg("--expose-gc")
            .arg(here().join("node/client.mjs"))
            .arg(format!("ws://{}/", server.ws_for(scenario)))
            .arg(serde_json::to_string(&node).unwrap());
        command
    } else {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .arg("client")
            .arg(implementation)
            .arg(server.ws_for(scenario).to_string())
            .arg(server.raw.to_string())
            .arg(&json);
        command
    };
    let before = measure::cpu_of(server.child.id());
    let line = run_pinned(command, 1)?;
    let server_cpu = (measure::cpu_of(server.child.id()) - before).as_secs_f64();
    let report: Report = serde_json::from_str(&line).ok()?;
    Some((report, server_cpu))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

#[derive(Default, Clone)]
struct Row {
    msgs_per_sec: f64,
    mb_per_sec: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    p999_us: Option<f64>,
    cpu_us_per_msg: f64,
    server_busy: f64,
    bytes_per_connection: Option<f64>,
    instructions_per_msg: Option<f64>,
    syscalls_per_msg: Option<f64>,
}

fn orchestrate(args: &[String]) {
    let quick = args.iter().any(|a| a == "--quick");
    let costs = !args.iter().any(|a| a == "--no-costs")
        && Command::new("valgrind").arg("--version").output().is_ok()
        && Command::new("strace").arg("-V").output().is_ok();
    let only: Option<&String> = args.iter().find(|a| !a.starts_with("--"));
    let (scale, samples) = if quick { (0.1, 1) } else { (1.0, 3) };
    let mut implementations: Vec<&str> = RUST_CLIENTS.to_vec();
    if node_available() {
        implementations.push("undici");
    } else {
        eprintln!("undici skipped: run `npm ci` in benches/compare/node");
    }
    let server = start_server();
    println!(
        "machine: {} CPUs; server on CPU 0, clients on CPU 1; {} sample(s) per cell after 2 warm-up runs",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        samples
    );
    let scenarios: Vec<Scenario> = scenario::all(scale)
        .into_iter()
        .filter(|s| only.is_none_or(|o| s.name.starts_with(o.as_str())))
        .collect();
    let mut table: Vec<(Scenario, Vec<(String, Row)>)> = Vec::new();
    for scenario in scenarios {
        if scenario.idle {
            let rows: Vec<(String, Row)> = implementations
                .iter()
                .filter_map(|implementation| {
                    let (report, _) = measure_once(&server, implementation, &scenario)?;
                    let row = Row {
                        bytes_per_connection: report.bytes_per_connection,
                        ..Row::default()
                    };
                    Some((implementation.to_string(), row))
                })
                .collect();
            print_idle(&scenario, &rows);
            table.push((scenario, rows));
            continue;
        }
        // Warm-ups: two short runs of each implementation.
        let mut warm = scenario.clone();
        warm.messages = (warm.messages / 10).max(100).min(warm.messages / 4).max(2);
        warm.warmup = warm.messages / 10;
        for _ in 0..2 {
            for implementation in &implementations {
                let _ = measure_once(&server, implementation, &warm);
            }
        }
        let mut results: Vec<(String, Vec<(Report, f64)>)> = implementations
            .iter()
            .map(|i| (i.to_string(), Vec::new()))
            .collect();
        // Implementations interleaved, sample by sample.
        for _ in 0..samples {
            for (implementation, runs) in &mut results {
                if let Some(run) = measure_once(&server, implementation, &scenario) {
                    runs.push(run);
                }
            }
        }
        let rows = results
            .into_iter()
            .filter(|(_, runs)| !runs.is_empty())
            .map(|(implementation, runs)| {
                let m = |f: &dyn Fn(&(Report, f64)) -> f64| median(runs.iter().map(f).collect());
                let o = |f: &dyn Fn(&Report) -> Option<f64>| {
                    runs.iter().filter_map(|r| f(&r.0)).collect::<Vec<_>>()
                };
                let opt = |v: Vec<f64>| (!v.is_empty()).then(|| median(v));
                let row = Row {
                    msgs_per_sec: m(&|r| r.0.msgs_per_sec),
                    mb_per_sec: m(&|r| r.0.mb_per_sec),
                    p50_us: opt(o(&|r| r.p50_us)),
                    p99_us: opt(o(&|r| r.p99_us)),
                    p999_us: opt(o(&|r| r.p999_us)),
                    cpu_us_per_msg: m(&|r| {
                        (r.0.user_cpu_s + r.0.sys_cpu_s) / r.0.messages as f64 * 1e6
                    }),
                    server_busy: m(&|r| r.1 / r.0.seconds.max(1e-9)),
                    ..Row::default()
                };
                (implementation, row)
            })
            .collect::<Vec<_>>();
        let mut rows = rows;
        if costs
            && matches!(scenario.name.as_bytes()[0], b'2' | b'3' | b'4')
            && scenario.connections <= 100
        {
            for (implementation, row) in &mut rows {
                if implementation != "undici" {
                    row.instructions_per_msg =
                        per_message(&server, implementation, &scenario, Tool::Callgrind);
                    row.syscalls_per_msg =
                        per_message(&server, implementation, &scenario, Tool::Strace);
                }
            }
        }
        print_scenario(&scenario, &rows);
        table.push((scenario, rows));
    }
    print_summary(&table);
    drop(server);
    std::thread::sleep(Duration::from_millis(10));
}

fn print_scenario(scenario: &Scenario, rows: &[(String, Row)]) {
    println!(
        "\n## {} (messages {}, connections {}, in flight {})",
        scenario.name, scenario.messages, scenario.connections, scenario.in_flight
    );
    let ours = rows
        .iter()
        .find(|(i, _)| i == "ours-stream")
        .map(|(_, r)| r.msgs_per_sec);
    println!(
        "{:<18} {:>12} {:>10} {:>9} {:>9} {:>9} {:>11} {:>8} {:>9} {:>10} {:>9}",
        "client",
        "msgs/s",
        "MB/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "CPU us/msg",
        "server",
        "ours/x",
        "instr/msg",
        "sys/msg"
    );
    for (implementation, row) in rows {
        let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
        println!(
            "{:<18} {:>12.0} {:>10.1} {:>9} {:>9} {:>9} {:>11.2} {:>7.0}% {:>9} {:>10} {:>9}",
            implementation,
            row.msgs_per_sec,
            row.mb_per_sec,
            f(row.p50_us),
            f(row.p99_us),
            f(row.p999_us),
            row.cpu_us_per_msg,
            row.server_busy * 100.0,
            ours.map_or("-".into(), |o| format!("{:.2}", o / row.msgs_per_sec)),
            row.instructions_per_msg
                .map_or("-".into(), |v| format!("{v:.0}")),
            row.syscalls_per_msg
                .map_or("-".into(), |v| format!("{v:.2}")),
        );
    }
}

fn print_idle(scenario: &Scenario, rows: &[(String, Row)]) {
    println!(
        "\n## {} (resident bytes added per open connection)",
        scenario.name
    );
    for (implementation, row) in rows {
        let bytes = row
            .bytes_per_connection
            .map_or("-".into(), |b| format!("{b:.0}"));
        println!("{implementation:<18} {bytes:>10} B");
    }
}

#[derive(Clone, Copy)]
enum Tool {
    Callgrind,
    Strace,
}

/// User-space instructions (callgrind) or system calls (strace) per message: two client runs
/// under the tool with different message counts, the difference divided by the difference in
/// messages, so that start-up and the handshakes cancel out.
fn per_message(
    server: &Server,
    implementation: &str,
    scenario: &Scenario,
    tool: Tool,
) -> Option<f64> {
    let count = |messages: u64| -> Option<f64> {
        let mut scenario = scenario.clone();
        scenario.messages = messages;
        scenario.warmup = 1;
        scenario.latency = false;
        let out = std::env::temp_dir().join(format!(
            "compare-{}-{implementation}.txt",
            std::process::id()
        ));
        let mut command = match tool {
            Tool::Callgrind => {
                let mut c = Command::new("valgrind");
                c.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"]);
                c
            }
            Tool::Strace => {
                let mut c = Command::new("strace");
                c.args(["-f", "-c", "-o"]).arg(&out);
                c
            }
        };
        command
            .arg(std::env::current_exe().unwrap())
            .arg("client")
            .arg(implementation)
            .arg(server.ws.to_string())
            .arg(server.raw.to_string())
            .arg(serde_json::to_string(&scenario).unwrap());
        // SAFETY: only async-signal-safe calls (sched_setaffinity) between fork and exec.
        unsafe {
            command.pre_exec(|| {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(1, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                Ok(())
            });
        }
        let output = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .ok()?;
        if !output.status.success() {
            return None;
        }
        let text = match tool {
            Tool::Callgrind => String::from_utf8_lossy(&output.stderr).into_owned(),
            Tool::Strace => std::fs::read_to_string(&out).ok()?,
        };
        let _ = std::fs::remove_file(&out);
        match tool {
            Tool::Callgrind => text
                .lines()
                .find_map(|l| l.split("Collected :").nth(1))
                .and_then(|v| v.trim().parse().ok()),
            Tool::Strace => text
                .lines()
                .rfind(|l| l.trim_end().ends_with("total"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok()),
        }
    };
    let (small, large) = (1_000u64, 3_000u64);
    let (a, b) = (count(small)?, count(large)?);
    Some((b - a) / (large - small) as f64)
}

fn print_summary(table: &[(Scenario, Vec<(String, Row)>)]) {
    let get = |rows: &[(String, Row)], name: &str| {
        rows.iter().find(|(i, _)| i == name).map(|(_, r)| r.clone())
    };
    let best_peer = |rows: &[(String, Row)], f: &dyn Fn(&Row) -> Option<f64>, lowest: bool| {
        PEERS
            .iter()
            .filter_map(|p| get(rows, p).as_ref().and_then(f))
            .reduce(|a, b| if (a < b) == lowest { a } else { b })
    };
    let mut throughput = f64::NAN;
    let mut instructions = f64::NAN;
    let (mut undici, mut raw_tcp, mut memory) = (f64::NAN, f64::NAN, f64::NAN);
    let min = |acc: f64, v: f64| if acc.is_nan() { v } else { acc.min(v) };
    for (scenario, rows) in table {
        let Some(ours) = get(rows, "ours-stream") else {
            continue;
        };
        if scenario.idle {
            if let (Some(peer), Some(o)) = (
                best_peer(rows, &|r| r.bytes_per_connection, true),
                ours.bytes_per_connection,
            ) {
                memory = peer / o;
            }
            continue;
        }
        if matches!(scenario.name.as_bytes()[0], b'2' | b'3' | b'4') {
            if let Some(best) = best_peer(rows, &|r| Some(r.msgs_per_sec), false) {
                throughput = min(throughput, ours.msgs_per_sec / best);
            }
            if let (Some(best), Some(o)) = (
                best_peer(rows, &|r| r.instructions_per_msg, true),
                ours.instructions_per_msg,
            ) {
                instructions = min(instructions, best / o);
            }
        }
        if scenario.name.starts_with("3 10 x") {
            if let Some(u) = get(rows, "undici") {
                undici = ours.msgs_per_sec / u.msgs_per_sec;
            }
            if let Some(r) = get(rows, "raw-tcp") {
                raw_tcp = ours.msgs_per_sec / r.msgs_per_sec;
            }
        }
    }
    let f = |v: f64| {
        if v.is_nan() {
            "nan".to_string()
        } else {
            format!("{v:.2}")
        }
    };
    println!(
        "\nsummary: throughput={} instructions={} undici={} raw-tcp={} memory={}",
        f(throughput),
        f(instructions),
        f(undici),
        f(raw_tcp),
        f(memory)
    );
}
