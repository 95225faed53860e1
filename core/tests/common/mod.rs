//! Test harness: the real `shardlog` binary on free ports with a temp data dir.
#![allow(dead_code)]

pub mod groups;
pub mod raw;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running broker; killed (SIGKILL) on drop unless stopped first.
pub struct Broker {
    child: Option<Child>,
    pub dir: PathBuf,
    pub ports: Vec<u16>,
    pub overrides: Vec<String>,
    _tmp: Option<tempfile::TempDir>,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// `n` distinct ports that are free right now (bound to port 0, then released).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl Broker {
    /// Starts a broker with `shards` shards and extra `key=value` overrides, and waits until
    /// it listens. Ports are picked free and released before the broker binds them, so a test
    /// running in parallel may grab one in between: then it starts again on other ports.
    pub fn start(shards: usize, extra: &[&str]) -> Broker {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut attempt = 0;
        let mut b = loop {
            attempt += 1;
            match Broker::try_start_in(&dir, shards, extra, None) {
                Ok(b) => break b,
                Err(log) if attempt < 3 && log.iter().any(|l| l.contains("Address already in use")) => {}
                Err(log) => panic!("broker did not start: {log:?}"),
            }
        };
        b._tmp = Some(tmp);
        b
    }

    /// Starts a broker on an existing data dir (for restarts), on `ports` if given.
    pub fn start_in(dir: &Path, shards: usize, extra: &[&str], ports: Option<Vec<u16>>) -> Broker {
        Broker::try_start_in(dir, shards, extra, ports)
            .unwrap_or_else(|log| panic!("broker did not start: {log:?}"))
    }

    /// [`Broker::start_in`], returning the broker's log lines if it does not start.
    pub fn try_start_in(
        dir: &Path,
        shards: usize,
        extra: &[&str],
        ports: Option<Vec<u16>>,
    ) -> Result<Broker, Vec<String>> {
        let ports = ports.unwrap_or_else(|| free_ports(shards));
        let mut overrides = vec![
            format!("log.dirs={}", dir.display()),
            format!("listeners=PLAINTEXT://127.0.0.1:{}", ports[0]),
            format!("num.shards={shards}"),
            format!("shard.ports={}", ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",")),
        ];
        overrides.extend(extra.iter().map(|s| s.to_string()));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shardlog"));
        cmd.arg("start");
        for o in &overrides {
            cmd.arg("--override").arg(o);
        }
        cmd.env("RUST_LOG", "info").stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start shardlog");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log_for_thread = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("shardlog started") {
                    let _ = tx.send(true);
                }
                if std::env::var("SHARDLOG_TEST_LOG").is_ok() {
                    eprintln!("broker: {line}");
                }
                log_for_thread.lock().unwrap().push(line);
            }
            // The broker closed its stderr: it exited (or is about to) without starting.
            let _ = tx.send(false);
        });
        if rx.recv_timeout(Duration::from_secs(30)) != Ok(true) {
            let _ = child.kill();
            let _ = child.wait();
            let lines = log.lock().unwrap().clone();
            return Err(lines);
        }
        Ok(Broker { child: Some(child), dir: dir.to_path_buf(), ports, overrides, _tmp: None, log })
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe_sigterm(child.id());
        child.wait().unwrap()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `kcat` with `args`, feeding `stdin`; returns stdout (panics on failure).
pub fn kcat(args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("kcat")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat is installed by scripts/test.sh");
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes()); // a failed kcat is reported below
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kcat {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Builds the Go program in `core/tests/compat/<name>` offline against Debian's packaged
/// sources; `tag` keeps concurrent tests from writing the same binary.
pub fn go_build(name: &str, tag: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat").join(name);
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compat");
    std::fs::create_dir_all(&out_dir).unwrap();
    let binary = out_dir.join(format!("{name}-{tag}"));
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        .env("GOPATH", "/usr/share/gocode")
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOPROXY", "off")
        .env("GOCACHE", out_dir.join("gocache"))
        .output()
        .expect("go is installed with golang-go");
    assert!(out.status.success(), "go build {name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    binary
}

/// Runs `shardlog` with `args`, feeding `input` on stdin. A tool that fails before reading its
/// input closes the pipe: its exit status says why, so the write error is ignored.
pub fn shardlog_with_input(args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardlog"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs shardlog");
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}
