//! Servers outside the process (proxies, HTTP/2 peers), started by a repo script that `exec`s
//! them on 127.0.0.1, and stopped by PID.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed by PID and reaped when dropped.
pub struct Daemon {
    child: std::process::Child,
    /// Where the script keeps the server's scratch files (config, logs).
    scratch: std::path::PathBuf,
    pub port: u16,
    pub what: String,
}

impl Daemon {
    /// Runs `<script> <kind> <port> <extra...>` (paths relative to the repository) on a free
    /// port and waits until the server accepts connections; its scratch files are in
    /// `<scratch>/<kind>-<port>`.
    pub fn start(script: &str, scratch: &str, kind: &str, extra: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let port = free_port();
        let child = Command::new(root.join(script))
            .arg(kind)
            .arg(port.to_string())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{script} starts: {e}"));
        let mut daemon = Daemon {
            child,
            scratch: root.join(scratch).join(format!("{kind}-{port}")),
            port,
            what: format!("{kind} on port {port} (files in {scratch}/{kind}-{port})"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("{} exited with {status}", daemon.what);
            }
            assert!(Instant::now() < deadline, "{} never listened", daemon.what);
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The scratch files are kept when a test fails.
        if !std::thread::panicking() {
            if let Ok(target) = std::fs::read_link(&self.scratch) {
                let _ = std::fs::remove_dir_all(target);
                let _ = std::fs::remove_file(&self.scratch);
            }
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Whether every path exists; under CI they must (`install` names the script that provides
/// them).
pub fn installed(paths: &[&Path], install: &str) -> bool {
    if paths.iter().all(|p| p.exists()) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run {install} first"
    );
    eprintln!("skipped: run {install} first");
    false
}
