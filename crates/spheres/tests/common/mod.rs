//! Test harness: run our binary and peers we did not write as real processes, wait on
//! conditions (never on sleeps), and clean up (processes killed, temp dirs removed) on drop.
#![allow(dead_code)]

pub mod node;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(90);

pub fn spheres() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spheres"));
    c.env(
        "RUST_LOG",
        std::env::var("SPHERES_TEST_LOG").unwrap_or("warn".into()),
    );
    c
}

pub fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is not installed: run scripts/install-test-deps"
    );
}

/// The libtorrent helper script, run with Debian's python (python3-libtorrent lives there).
pub fn lt_peer() -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/lt_peer.py");
    let mut c = Command::new("/usr/bin/python3");
    c.arg(script);
    c
}

/// A child process whose stdout lines are collected; killed on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    stdin: Option<std::process::ChildStdin>,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null());
        Proc::start(name, cmd)
    }

    /// The same, with a standard input the test writes to ([`Proc::send`]).
    pub fn spawn_interactive(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::piped());
        let mut p = Proc::start(name, cmd);
        p.stdin = p.child.stdin.take();
        p
    }

    /// Writes one line to the process's standard input.
    pub fn send(&mut self, line: &str) {
        use std::io::Write as _;
        let stdin = self.stdin.as_mut().expect("started with spawn_interactive");
        writeln!(stdin, "{line}").expect("write to the process");
        stdin.flush().expect("flush");
    }

    fn start(name: &str, mut cmd: Command) -> Proc {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_owned(),
            child,
            lines: rx,
            seen: Vec::new(),
            stdin: None,
        }
    }

    /// Waits for a JSON line whose `event` is `event`; panics after `TIMEOUT` or if the
    /// process exits first.
    pub fn wait_event(&mut self, event: &str) -> serde_json::Value {
        self.try_wait_event(event)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    /// The same, saying why instead of panicking.
    pub fn try_wait_event(&mut self, event: &str) -> Result<serde_json::Value, String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && v["event"] == event
                    {
                        return Ok(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no {event:?} event within {TIMEOUT:?}; saw {:?}",
                        self.name, self.seen
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    return Err(format!(
                        "{}: exited ({status:?}) before {event:?}; saw {:?}",
                        self.name, self.seen
                    ));
                }
            }
        }
    }

    /// Everything the process printed so far, and whether it has exited: for a failure report.
    pub fn report(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let exited = self.child.try_wait().ok().flatten();
        format!("{} (exited: {exited:?}) printed {:?}", self.name, self.seen)
    }

    /// Asks the process to stop (SIGTERM); see [`Proc::wait_exit`].
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// `kill -9`, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `kill -9`, then every line it printed is in `seen`.
    pub fn kill_and_collect(&mut self) {
        self.kill();
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            self.seen.push(line);
        }
    }

    /// Waits for the process to exit (bounded) and returns whether it succeeded.
    pub fn wait_exit(&mut self) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                while let Ok(line) = self.lines.try_recv() {
                    self.seen.push(line);
                }
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running after {TIMEOUT:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to completion; returns (success, stdout, stderr).
pub fn run(mut cmd: Command) -> (bool, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("run command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub use spheres_testkit::write_random;

/// Waits until `cond` holds, polling; fails the test after [`TIMEOUT`].
#[allow(dead_code)] // not every test binary waits this way
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A folder with the awkward cases: nested folders, unicode and spaces in names, an empty
/// file, and a size that is not a multiple of anything.
pub fn awkward_folder(root: &Path) {
    write_random(&root.join("photos/été 2024/IMG 001.jpg"), 300_000, 1);
    write_random(&root.join("photos/été 2024/IMG 002.jpg"), 123_457, 2);
    write_random(&root.join("video.mp4"), 2_000_003, 3);
    write_random(&root.join("日本語.txt"), 777, 4);
    std::fs::write(root.join("zz-empty.txt"), b"").unwrap();
}

/// Every regular file under `a` has an identical twin under `b`, and vice versa.
pub fn assert_same_tree(a: &Path, b: &Path) {
    fn files(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(root).unwrap().to_owned());
                }
            }
        }
        out.sort();
        out
    }
    let (fa, fb) = (files(a), files(b));
    assert_eq!(fa, fb, "different file lists");
    for f in fa {
        let (x, y) = (
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
        );
        assert!(
            x == y,
            "{} differs ({} vs {} bytes)",
            f.display(),
            x.len(),
            y.len()
        );
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An open tracker of ours, HTTP and UDP on free loopback ports.
pub struct TestTracker {
    pub proc: Proc,
    pub http: String,
    pub udp: String,
}

pub fn tracker(keys: &[&str]) -> TestTracker {
    let mut cmd = spheres();
    cmd.args([
        "--json",
        "tracker",
        "--http",
        "127.0.0.1:0",
        "--udp",
        "127.0.0.1:0",
        "--interval",
        "5",
    ]);
    for k in keys {
        cmd.args(["--key", k]);
    }
    let mut proc = Proc::spawn("tracker", cmd);
    let ev = proc.wait_event("listening");
    TestTracker {
        http: ev["http"].as_str().unwrap().to_owned(),
        udp: ev["udp"].as_str().unwrap().to_owned(),
        proc,
    }
}

/// `spheres torrent create` with the given extra arguments; returns the parsed JSON result.
pub fn create(path: &Path, out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut cmd = spheres();
    cmd.arg("--json")
        .arg("torrent")
        .arg("create")
        .arg(path)
        .arg("-o")
        .arg(out)
        .args(extra);
    let (ok, stdout, stderr) = run(cmd);
    assert!(ok, "create failed: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

pub fn seed(torrent: &Path, data: &Path, extra: &[&str]) -> Proc {
    let mut cmd = spheres();
    cmd.arg("--json")
        .arg("torrent")
        .arg("seed")
        .arg(torrent)
        .arg("--data")
        .arg(data)
        .args(extra);
    let mut p = Proc::spawn("spheres seed", cmd);
    p.wait_event("seeding");
    p
}

pub fn get(source: &str, out: &Path, extra: &[&str]) -> Proc {
    let mut cmd = spheres();
    cmd.arg("--json")
        .arg("torrent")
        .arg("get")
        .arg(source)
        .arg("--out")
        .arg(out)
        .args(extra);
    Proc::spawn("spheres get", cmd)
}
