//! What the node tells the web interface as it happens (`/api/events`, Server-Sent Events):
//! one enum, one JSON object per event with its kind in `type`. docs/api.md lists them and the
//! page's `ui/events.js` handles each (a test fails when either misses one).

use serde::{Deserialize, Serialize};

/// Something that changed on the node. Events say *what* changed; the page asks the API for
/// the new state, so a missed event costs a refresh, never a wrong page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// Every second on each stream, so progress bars move.
    Tick,
    /// The stream fell behind and events were lost: refresh everything.
    Resync,
    /// A sphere's shares changed (new, progress state, withdrawn, completed; peers came or
    /// went; a disk error).
    Share { sphere: String },
    /// Someone came or went in a sphere's room.
    Presence { sphere: String },
    /// Someone said something in a sphere's room.
    Message { sphere: String },
    /// A sphere was created, joined or left, or its settings changed.
    Sphere { sphere: String },
    /// An invitation arrived.
    Invite,
    /// Contacts, their presence or contact requests changed.
    Contacts,
    /// A one-to-one conversation has a new message.
    Chat { with: String },
    /// The feed changed: a post or a comment came, changed or went.
    Feed,
    /// How reachable the node is from outside changed (see `/api/status`).
    Network,
    /// A call rang, was answered, got the other side's description or candidates, or ended
    /// (see `/api/calls`); `id` is empty when several changed.
    Call { id: String },
    /// The node's link to its XMPP server changed (the same object as `xmpp` in
    /// `/api/status`).
    Connection(Connection),
}

impl NodeEvent {
    /// Every kind of event, as the `type` field names it.
    pub const TYPES: &'static [&'static str] = &[
        "tick",
        "resync",
        "share",
        "presence",
        "message",
        "sphere",
        "invite",
        "contacts",
        "chat",
        "feed",
        "network",
        "call",
        "connection",
    ];

    /// The JSON the stream carries.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"resync"}"#.to_owned())
    }
}

/// The node's link to its XMPP server: rooms, chat and announcements need it; sharing and
/// seeding go on without it. Times are seconds since 1970.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Connection {
    Online {
        since: i64,
    },
    /// Lost, and being tried again: since when, the next attempt (when known) and why the
    /// last one failed.
    Connecting {
        since: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(test, ts(optional))]
        next_attempt: Option<i64>,
        error: String,
    },
    /// Given up for good (wrong password, another client took our place): the node has to
    /// be started again, with what `error` says fixed.
    Offline {
        since: i64,
        error: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<NodeEvent> {
        let sphere = || "Family".to_owned();
        vec![
            NodeEvent::Tick,
            NodeEvent::Resync,
            NodeEvent::Share { sphere: sphere() },
            NodeEvent::Presence { sphere: sphere() },
            NodeEvent::Message { sphere: sphere() },
            NodeEvent::Sphere { sphere: sphere() },
            NodeEvent::Invite,
            NodeEvent::Contacts,
            NodeEvent::Chat {
                with: "lea@home.test".into(),
            },
            NodeEvent::Feed,
            NodeEvent::Network,
            NodeEvent::Call { id: "4f2a".into() },
            NodeEvent::Connection(Connection::Connecting {
                since: 1,
                next_attempt: Some(2),
                error: "refused".into(),
            }),
        ]
    }

    /// Every kind has its name in `TYPES` (the list the page and the docs are checked
    /// against), and the JSON is the documented shape.
    #[test]
    fn every_event_has_its_type_listed() {
        let types: Vec<String> = samples()
            .iter()
            .map(|e| {
                let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
                v["type"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(types, NodeEvent::TYPES);
        // A variant added without a sample here makes this match fail to compile.
        for e in samples() {
            match e {
                NodeEvent::Tick
                | NodeEvent::Resync
                | NodeEvent::Share { .. }
                | NodeEvent::Presence { .. }
                | NodeEvent::Message { .. }
                | NodeEvent::Sphere { .. }
                | NodeEvent::Invite
                | NodeEvent::Contacts
                | NodeEvent::Chat { .. }
                | NodeEvent::Feed
                | NodeEvent::Network
                | NodeEvent::Call { .. }
                | NodeEvent::Connection(_) => {}
            }
        }
        assert_eq!(
            NodeEvent::Connection(Connection::Online { since: 5 }).to_json(),
            r#"{"type":"connection","state":"online","since":5}"#
        );
        assert_eq!(
            NodeEvent::Share {
                sphere: "Family".into()
            }
            .to_json(),
            r#"{"type":"share","sphere":"Family"}"#
        );
    }

    /// The page handles every event the node emits: `ui/events.js` lists them on one line,
    /// `export const KNOWN_EVENTS = [...]`.
    #[test]
    fn the_page_knows_every_event() {
        let js = include_str!("../../spheres-web/ui/events.js");
        let line = js
            .lines()
            .find(|l| l.starts_with("export const KNOWN_EVENTS"))
            .expect("ui/events.js exports KNOWN_EVENTS on one line");
        for t in NodeEvent::TYPES {
            assert!(
                line.contains(&format!("\"{t}\"")),
                "the page does not handle the {t:?} event: add it to ui/events.js"
            );
        }
    }

    /// docs/api.md documents every event (a `` `type` `` entry in its events list).
    #[test]
    fn the_docs_list_every_event() {
        let doc = include_str!("../../../docs/api.md");
        for t in NodeEvent::TYPES {
            assert!(
                doc.contains(&format!("- `{t}`")),
                "docs/api.md does not document the {t:?} event"
            );
        }
    }
}
