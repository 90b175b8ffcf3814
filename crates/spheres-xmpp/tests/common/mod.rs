//! Helpers shared by the XMPP tests: a Prosody with two accounts, an ejabberd, logins,
//! bounded waits.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
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

/// A throwaway ejabberd (see `spheres_testkit::ejabberd`), with where it listens.
pub struct Ejabberd {
    pub server: Server,
    inner: spheres_testkit::ejabberd::Ejabberd,
}

impl Ejabberd {
    pub fn start() -> Ejabberd {
        let inner = spheres_testkit::ejabberd::Ejabberd::start();
        let server = Server {
            domain: inner.domain.clone(),
            muc: inner.muc.clone(),
            c2s: inner.c2s,
            tls: inner.tls,
            ca: inner.ca.clone(),
        };
        Ejabberd { server, inner }
    }

    /// Creates accounts `USER` with password `USER-secret`.
    pub fn register(&self, users: &[&str]) {
        self.inner.register(users);
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
