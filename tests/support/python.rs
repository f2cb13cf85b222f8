//! Python `websockets` (PyPI) as a real peer: finding the interpreter, and the echo server of
//! `tests/interop/echo_server.py` on 127.0.0.1, stopped by PID.
//!
//! The Python comes from `INTEROP_PYTHON`, else `target/interop-venv/bin/python` (`.ci/run`
//! creates it: `python3 -m venv target/interop-venv && target/interop-venv/bin/pip install
//! websockets`). Without one the tests are skipped locally, and fail under CI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder of the Python scripts.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// A Python with `websockets`; `None` (skipped) locally without one, a panic under CI.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("INTEROP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python")
        });
    let works = Command::new(&candidate)
        .args(["-c", "import websockets"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide Python websockets at {}",
        candidate.display()
    );
    eprintln!(
        "skipped: no Python with `websockets` at {}",
        candidate.display()
    );
    None
}

/// The Python echo server, killed by PID and reaped when dropped.
pub struct PythonEcho {
    child: std::process::Child,
    pub port: u16,
}

impl PythonEcho {
    /// Starts `echo_server.py` with `args` (see the script); it runs until its stdin closes or
    /// it is killed. `quiet` discards its stderr (websockets logs a traceback for every close
    /// code but 1000 and 1001).
    pub fn start(python: &Path, args: &[&str], quiet: bool) -> Self {
        Self::start_script(python, "echo_server.py", args, quiet)
    }

    /// Starts another server script of `tests/interop` that prints its port first.
    pub fn start_script(python: &Path, script: &str, args: &[&str], quiet: bool) -> Self {
        let mut child = Command::new(python)
            .arg("-B")
            .arg(scripts().join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if quiet {
                Stdio::null()
            } else {
                Stdio::inherit()
            })
            .spawn()
            .expect("python starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the server prints its port");
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Self { child, port }
    }
}

impl Drop for PythonEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
