//! Helpers shared by the XMPP tests: a Prosody with two accounts, logins, bounded waits.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};
use spheres_xmpp::xmpp_parsers::message::{Message, MessageType};
use spheres_xmpp::{BareJid, Client, ConnectConfig, Event, TlsMode};
use tokio::sync::mpsc::Receiver;

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn server(dir: &std::path::Path) -> ManagedProsody {
    let s = ManagedProsody::start(ProsodyConfig::new(dir.join("prosody"), "spheres.test"))
        .await
        .unwrap();
    s.register("alice", "alice-secret").await.unwrap();
    s.register("bob", "bob-secret").await.unwrap();
    s
}

pub fn config(s: &ManagedProsody, user: &str, password: &str, tls: TlsMode) -> ConnectConfig {
    let mut c = ConnectConfig::new(
        BareJid::new(&format!("{user}@spheres.test")).unwrap(),
        password,
    );
    c.server = Some(match tls {
        TlsMode::StartTls => s.c2s_addr(),
        TlsMode::Direct => s.tls_addr(),
    });
    c.tls = tls;
    c.extra_ca = Some(s.ca_file());
    c
}

/// Logs `user` in with the password `server()` gave it.
pub async fn login(s: &ManagedProsody, user: &str, tls: TlsMode) -> (Client, Receiver<Event>) {
    Client::connect(config(s, user, &format!("{user}-secret"), tls))
        .await
        .unwrap_or_else(|e| panic!("{user} cannot log in: {e}"))
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
