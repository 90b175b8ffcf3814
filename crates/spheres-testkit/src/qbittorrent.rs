//! qBittorrent (Debian's `qbittorrent-nox`, on libtorrent-rasterbar 2) for interop tests: a
//! client we did not write, driven through its WebUI API with `curl`, on loopback only, with
//! a profile of its own (DHT, PEX, LSD, uTP, UPnP and encryption off; several connections from
//! one address allowed, since every peer of a test is on 127.0.0.1).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running qBittorrent; stopped when dropped.
pub struct Qbt {
    child: Child,
    web: u16,
    /// Its BitTorrent port on 127.0.0.1.
    pub port: u16,
    profile: PathBuf,
}

impl Drop for Qbt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now (qBittorrent takes ports from its configuration, not from us).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Qbt {
    /// Starts qBittorrent with a profile under `root`; returns once its WebUI answers.
    pub fn start(root: &Path) -> Qbt {
        let profile = root.join("qbittorrent");
        let config = profile.join("qBittorrent/config");
        std::fs::create_dir_all(&config).expect("qBittorrent's profile");
        let (web, port) = (free_port(), free_port());
        let conf = format!(
            "[LegalNotice]\nAccepted=true\n\n\
             [BitTorrent]\nSession\\Port={port}\nSession\\DHTEnabled=false\n\
             Session\\PeXEnabled=false\nSession\\LSDEnabled=false\nSession\\BTProtocol=TCP\n\
             Session\\Encryption=2\nSession\\MultiConnectionsPerIp=true\n\
             Session\\SSRFMitigation=false\nSession\\QueueingSystemEnabled=false\n\
             Session\\AddTorrentPaused=false\nSession\\TempPathEnabled=false\n\
             Session\\InterfaceAddress=127.0.0.1\n\n\
             [Preferences]\nWebUI\\Address=127.0.0.1\nWebUI\\Port={web}\n\
             WebUI\\LocalHostAuth=false\nWebUI\\CSRFProtection=false\n\
             WebUI\\HostHeaderValidation=false\nWebUI\\UseUPnP=false\nConnection\\UPnP=false\n\
             Connection\\ResolvePeerCountries=false\n"
        );
        std::fs::write(config.join("qBittorrent.conf"), conf).expect("qBittorrent.conf");
        let log = std::fs::File::create(root.join("qbittorrent.out")).expect("a log file");
        let child = Command::new("qbittorrent-nox")
            .arg(format!("--profile={}", profile.display()))
            .env("HOME", &profile)
            .env("XDG_CONFIG_HOME", &profile)
            .env("XDG_DATA_HOME", &profile)
            .env("XDG_CACHE_HOME", &profile)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("qbittorrent-nox: run scripts/install-test-deps");
        let q = Qbt {
            child,
            web,
            port,
            profile,
        };
        q.wait_until("qBittorrent's WebUI", Duration::from_secs(60), || {
            q.curl(&["/api/v2/app/version"]).is_some()
        });
        q
    }

    /// Its BitTorrent address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `curl` on its WebUI: the body of a successful answer.
    fn curl(&self, args: &[&str]) -> Option<String> {
        let (path, rest) = args.split_first()?;
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "10"])
            .args(rest)
            .arg(format!("http://127.0.0.1:{}{path}", self.web))
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Polls `cond` until it holds, at most `within`; panics with its log otherwise.
    fn wait_until(&self, what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + within;
        while !cond() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(
                    self.profile.join("qBittorrent/data/logs/qbittorrent.log"),
                )
                .unwrap_or_default();
                panic!("timed out waiting for {what}; qBittorrent's log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Adds `torrent`, its data in (or to go to) `save`.
    pub fn add(&self, torrent: &Path, save: &Path) {
        let body = self
            .curl(&[
                "/api/v2/torrents/add",
                "-F",
                &format!("torrents=@{}", torrent.display()),
                "-F",
                &format!("savepath={}", save.display()),
            ])
            .expect("qBittorrent's WebUI");
        // It answers 200 either way; the body says which.
        assert_eq!(body.trim(), "Ok.", "qBittorrent refused the torrent");
    }

    /// Tells it to connect to `peer` for torrent `hash` (hex).
    pub fn add_peer(&self, hash: &str, peer: SocketAddr) {
        self.curl(&[
            "/api/v2/torrents/addPeers",
            "--data-urlencode",
            &format!("hashes={hash}"),
            "--data-urlencode",
            &format!("peers={peer}"),
        ])
        .expect("qBittorrent took the peer");
    }

    /// The torrent's progress (0 to 1) and state, as its WebUI reports them.
    pub fn progress(&self, hash: &str) -> Option<(f64, String)> {
        let body = self.curl(&[&format!("/api/v2/torrents/info?hashes={hash}")])?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let t = v.as_array()?.first()?;
        Some((t["progress"].as_f64()?, t["state"].as_str()?.to_owned()))
    }

    /// Waits until it has every piece of `hash` and is no longer checking them.
    pub fn wait_complete(&self, hash: &str, within: Duration) {
        self.wait_until(&format!("qBittorrent to have {hash}"), within, || {
            self.progress(hash)
                .is_some_and(|(p, state)| p >= 1.0 && !state.starts_with("checking"))
        });
    }
}
