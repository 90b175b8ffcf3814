//! Helpers shared by the XMPP tests: a Prosody with two accounts, an ejabberd, logins,
//! bounded waits.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};
use spheres_xmpp::{BareJid, Client, ConnectConfig, Event, TlsMode};
use tokio::sync::mpsc::Receiver;
use xmpp_parsers::message::{Message, MessageType};

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn server(dir: &std::path::Path) -> ManagedProsody {
    let s = ManagedProsody::start(ProsodyConfig::new(dir.join("prosody"), "spheres.test"))
        .await
        .unwrap();
    s.register("alice", "alice-secret").await.unwrap();
    s.register("bob", "bob-secret").await.unwrap();
    s
}

/// Where a test server listens, whichever server it is.
pub struct Server {
    pub domain: String,
    /// The MUC service's domain.
    pub muc: String,
    pub c2s: SocketAddr,
    pub tls: SocketAddr,
    pub ca: PathBuf,
}

impl Server {
    pub fn config(&self, user: &str, password: &str, tls: TlsMode) -> ConnectConfig {
        let mut c = ConnectConfig::new(
            BareJid::new(&format!("{user}@{}", self.domain)).unwrap(),
            password,
        );
        c.server = Some(match tls {
            TlsMode::StartTls => self.c2s,
            TlsMode::Direct => self.tls,
        });
        c.tls = tls;
        c.extra_ca = Some(self.ca.clone());
        c
    }

    /// Logs `user` in with the password the harness gave it (`USER-secret`).
    pub async fn login(&self, user: &str, tls: TlsMode) -> (Client, Receiver<Event>) {
        Client::connect(self.config(user, &format!("{user}-secret"), tls))
            .await
            .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"))
    }

    pub fn room(&self, name: &str) -> BareJid {
        BareJid::new(&format!("{name}@{}", self.muc)).unwrap()
    }
}

pub fn prosody_server(s: &ManagedProsody) -> Server {
    Server {
        domain: s.domain().to_owned(),
        muc: s.muc_domain(),
        c2s: s.c2s_addr(),
        tls: s.tls_addr(),
        ca: s.ca_file(),
    }
}

pub fn config(s: &ManagedProsody, user: &str, password: &str, tls: TlsMode) -> ConnectConfig {
    prosody_server(s).config(user, password, tls)
}

/// Logs `user` in with the password `server()` gave it.
pub async fn login(s: &ManagedProsody, user: &str, tls: TlsMode) -> (Client, Receiver<Event>) {
    prosody_server(s).login(user, tls).await
}

/// A throwaway ejabberd (Debian's), run by `tests/peers/ejabberd.sh` from a temp dir: its own
/// ports, certificates, spool and Erlang node, no epmd. Stopped when dropped.
pub struct Ejabberd {
    dir: tempfile::TempDir,
    pub server: Server,
}

fn ejabberd_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/ejabberd.sh")
}

impl Ejabberd {
    pub fn start() -> Ejabberd {
        // A chosen port can be taken by someone else before ejabberd binds it; the script
        // notices and fails, and a new attempt picks new ports.
        let mut last = String::new();
        for attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("ejabberd");
            let out = std::process::Command::new(ejabberd_script())
                .arg("start")
                .arg(&home)
                .output()
                .expect("run tests/peers/ejabberd.sh (is ejabberd installed?)");
            if !out.status.success() {
                last = String::from_utf8_lossy(&out.stderr).into_owned();
                eprintln!("ejabberd start attempt {attempt} failed: {last}");
                continue;
            }
            let vars: std::collections::HashMap<String, String> =
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect();
            let get = |k: &str| {
                vars.get(k)
                    .cloned()
                    .unwrap_or_else(|| panic!("no {k} in {vars:?}"))
            };
            let port = |k: &str| -> u16 { get(k).parse().unwrap() };
            let server = Server {
                domain: get("XMPP_DOMAIN"),
                muc: get("XMPP_MUC"),
                c2s: SocketAddr::from(([127, 0, 0, 1], port("XMPP_C2S_PORT"))),
                tls: SocketAddr::from(([127, 0, 0, 1], port("XMPP_TLS_PORT"))),
                ca: PathBuf::from(get("XMPP_CA")),
            };
            return Ejabberd { dir, server };
        }
        panic!("ejabberd did not start: {last}");
    }

    /// Creates accounts `USER` with password `USER-secret`.
    pub fn register(&self, users: &[&str]) {
        let mut cmd = std::process::Command::new(ejabberd_script());
        cmd.arg("register").arg(self.dir.path().join("ejabberd"));
        for u in users {
            cmd.arg(u).arg(format!("{u}-secret"));
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "ejabberd register: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        let _ = std::process::Command::new(ejabberd_script())
            .arg("stop")
            .arg(self.dir.path().join("ejabberd"))
            .status();
    }
}

pub async fn next_message(events: &mut Receiver<Event>, kind: MessageType) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(Event::Message(m))) if m.type_ == kind && !m.bodies.is_empty() => return m,
            Ok(Some(Event::Disconnected(e))) => panic!("disconnected: {e}"),
            Ok(Some(_)) => {}
            Ok(None) => panic!("event stream ended"),
            Err(_) => panic!("no {kind:?} message within {WAIT:?}"),
        }
    }
}

pub fn body(m: &Message) -> String {
    m.bodies.values().next().cloned().unwrap_or_default()
}

/// Waits for the first event `pick` accepts; panics naming `what` after [`WAIT`]. Events it
/// returns `None` for are skipped.
pub async fn next_event<T>(
    events: &mut Receiver<Event>,
    what: &str,
    mut pick: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(ev)) => {
                if let Some(v) = pick(&ev) {
                    return v;
                }
                if let Event::Disconnected(e) = ev {
                    panic!("disconnected while waiting for {what}: {e}");
                }
            }
            Ok(None) => panic!("event stream ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {WAIT:?}"),
        }
    }
}
