//! A libtorrent peer (Debian's python3-libtorrent, through `tests/peers/lt_peer.py`) for
//! interop tests: a client we did not write, seeding to us or downloading from us.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running libtorrent peer; killed when dropped.
pub struct LtPeer {
    child: Child,
    events: mpsc::Receiver<serde_json::Value>,
    /// Every line it printed, for failure messages.
    pub seen: Vec<serde_json::Value>,
}

impl Drop for LtPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LtPeer {
    /// Runs `lt_peer.py ARGS`; its output is read on a thread of its own (it must keep being
    /// read, or the script dies of a broken pipe).
    pub fn spawn(args: &[&str]) -> LtPeer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/lt_peer.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with libtorrent: run scripts/install-test-deps");
        let stdout = child.stdout.take().expect("piped");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or(serde_json::Value::String(line));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        LtPeer {
            child,
            events,
            seen: Vec::new(),
        }
    }

    /// libtorrent seeding `torrent` from `data` on a port the OS chose; returns it and the
    /// port, once the data is checked.
    pub fn seed(torrent: &Path, data: &Path) -> (LtPeer, u16) {
        LtPeer::seed_with(torrent, data, &[])
    }

    /// The same, with more of `lt_peer.py seed`'s options (`--bind ::1`...).
    pub fn seed_with(torrent: &Path, data: &Path, options: &[&str]) -> (LtPeer, u16) {
        let (t, d) = (torrent.display().to_string(), data.display().to_string());
        let mut args = vec!["seed", &t, &d, "--listen", "0", "--no-utp"];
        args.extend_from_slice(options);
        let mut p = LtPeer::spawn(&args);
        let v = p.wait_for("seeding", Duration::from_secs(60));
        let port = v["port"].as_u64().expect("a port") as u16;
        (p, port)
    }

    /// libtorrent downloading `torrent` into `out` from `peers`.
    pub fn leech(torrent: &Path, out: &Path, peers: &[std::net::SocketAddr]) -> LtPeer {
        LtPeer::leech_with(torrent, out, peers, &[])
    }

    /// The same, with more of `lt_peer.py leech`'s options (`--log-peers`, `--dht-bootstrap
    /// ADDR`...).
    pub fn leech_with(
        torrent: &Path,
        out: &Path,
        peers: &[std::net::SocketAddr],
        options: &[&str],
    ) -> LtPeer {
        let (t, o) = (torrent.display().to_string(), out.display().to_string());
        let mut args = vec![
            "leech".to_owned(),
            t,
            o,
            "--no-utp".into(),
            "--timeout".into(),
            "90".into(),
        ];
        for p in peers {
            args.extend(["--peer".to_owned(), p.to_string()]);
        }
        args.extend(options.iter().map(|o| (*o).to_owned()));
        LtPeer::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Waits (at most `within`) for the event named `name`; panics, with everything the
    /// peer said, if it fails, exits or takes longer.
    pub fn wait_for(&mut self, name: &str, within: Duration) -> serde_json::Value {
        self.wait_until(within, |v| v["event"] == name)
    }

    /// Waits (at most `within`) for an event that `pred` accepts; panics, with everything
    /// the peer said, if it fails, exits or takes longer.
    pub fn wait_until(
        &mut self,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                    assert!(
                        v["event"] != "error" && v["event"] != "timeout",
                        "libtorrent: {v}; before: {:?}",
                        self.seen
                    );
                }
                Err(_) => panic!(
                    "libtorrent: nothing awaited within {within:?} (is python3-libtorrent installed?); it said {:?}",
                    self.seen
                ),
            }
        }
    }
}
