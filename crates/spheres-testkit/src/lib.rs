//! Helpers shared by the tests of several crates. Dev-only: no library crate depends on it
//! outside `[dev-dependencies]`.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod ejabberd;
pub mod libtorrent;
pub mod nginx;
pub mod qbittorrent;

use std::path::Path;
use std::time::{Duration, Instant};

/// Deterministic pseudo-random bytes (xorshift64): fast enough for hundreds of megabytes and
/// the same for the same seed, so a failing test is reproducible.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    data
}

/// Writes [`random_bytes`] to `path` (creating its folders) and returns them.
pub fn write_random(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create the test data folder");
    }
    let data = random_bytes(len, seed);
    std::fs::write(path, &data).expect("write test data");
    data
}

/// Whether the test runs as root (network namespaces need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Fails the test unless it runs as root: a test that needs root (network namespaces, mounts,
/// another user) never passes without doing what it says. The suite runs as root in CI.
pub fn require_root(why: &str) {
    assert!(
        is_root(),
        "this test needs root ({why}): run the suite as root, as CI does"
    );
}

/// How long a test waits for anything before it fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `cond` every 20 ms until it holds; panics naming `what` after [`WAIT`].
pub async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP relay between a client under test and a real server, whose connections the test can
/// cut at will: the way to make a network failure happen on loopback.
pub struct Relay {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let cuts = cut.subscribe();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cuts = cuts.clone();
                cuts.mark_unchanged();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Relay { addr, cut, task }
    }

    /// Where clients connect.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Drops every connection open now (both sides see the TCP connection close); new ones
    /// are relayed again.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `aria2c` set to download one torrent into `dir` and exit once it has it: no DHT, LSD or
/// peer exchange (peers come from the torrent's tracker only), quiet. aria2 takes no port 0:
/// it listens on one the OS chose, released just before.
pub fn aria2_download(dir: &Path) -> std::process::Command {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut cmd = std::process::Command::new("aria2c");
    cmd.args([
        "--seed-time=0",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        "--bt-stop-timeout=60",
        "--summary-interval=0",
        "--console-log-level=warn",
        &format!("--listen-port={port}"),
        &format!("--dir={}", dir.display()),
    ]);
    cmd
}
