//! Contacts and chat: the roster, contacts' presence (bounded), contact requests, one-to-one
//! conversations and what is said in a sphere's room.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use anyhow::Result;
use spheres_xmpp::BareJid;
use spheres_xmpp::contacts::Subscription;

use crate::api::types;
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::{Node, lock};

/// What strangers can make the node remember, at most: contact requests waiting for an
/// answer, people whose presence is kept (and devices per person), invitations waiting.
pub(crate) const MAX_CONTACT_REQUESTS: usize = 100;

pub(crate) const MAX_PRESENCES: usize = 2000;

pub(crate) const MAX_RESOURCES: usize = 16;

/// Someone's address as a person typed it (surrounding spaces ignored).
pub(crate) fn address(jid: &str) -> Result<BareJid, NodeError> {
    BareJid::new(jid.trim()).map_err(|e| {
        NodeError::BadInput(format!("{jid:?} is not an XMPP address (name@server): {e}"))
    })
}

/// A call in a conversation, as the page shows it.
fn call_line(r: &spheres_xmpp::call::CallRecord) -> types::CallLine {
    types::CallLine {
        video: r.video,
        outcome: match (r.answered, r.declined, r.mine) {
            (true, _, _) => types::CallOutcome::Answered,
            (false, true, _) => types::CallOutcome::Declined,
            (false, false, true) => types::CallOutcome::NoAnswer,
            (false, false, false) => types::CallOutcome::Missed,
        },
        seconds: r.seconds,
    }
}

/// Contacts' presence and requests, as the server tells them (both bounded: anyone can send
/// them).
#[derive(Default)]
pub(crate) struct ContactState {
    /// Bare JID → online resources.
    pub(crate) online: Mutex<HashMap<String, HashSet<String>>>,
    /// People asking to be our contact, not answered yet.
    pub(crate) requests: Mutex<HashSet<String>>,
}

impl Node {
    /// Someone asks to be our contact: kept for a person to answer (the list is bounded:
    /// anyone may ask).
    pub(crate) fn on_contact_request(&self, who: BareJid) {
        let mut asking = lock(&self.contacts.requests);
        if asking.len() >= MAX_CONTACT_REQUESTS && !asking.contains(who.as_str()) {
            tracing::info!(from = %who, "too many contact requests waiting; ignoring one more");
            return;
        }
        asking.insert(who.to_string());
        drop(asking);
        self.emit(NodeEvent::Contacts);
    }

    /// A contact's device came online or left.
    pub(crate) fn on_contact_presence(&self, who: BareJid, resource: String, online: bool) {
        let bare = who.to_string();
        if online {
            // Bounded too: directed presence can come from anyone.
            let mut all = lock(&self.contacts.online);
            if all.len() >= MAX_PRESENCES && !all.contains_key(&bare) {
                return;
            }
            let resources = all.entry(bare).or_default();
            if resources.len() < MAX_RESOURCES {
                resources.insert(resource);
            }
        } else {
            if let Ok(device) = spheres_xmpp::FullJid::new(&format!("{who}/{resource}")) {
                self.call_peer_gone(&device);
            }
            let mut all = lock(&self.contacts.online);
            if let Some(r) = all.get_mut(&bare) {
                r.remove(&resource);
                if r.is_empty() {
                    all.remove(&bare);
                }
            }
        }
        self.emit(NodeEvent::Contacts);
    }

    /// Our contacts, with presence, and who asks to become one.
    pub async fn contacts(&self) -> Result<types::Contacts, NodeError> {
        let items = self.xmpp.roster().await?;
        let online = lock(&self.contacts.online).clone();
        let list: Vec<_> = items
            .into_iter()
            .filter(|i| i.subscription != Subscription::Remove)
            .map(|i| {
                let jid = i.jid.to_string();
                types::Contact {
                    online: online.contains_key(&jid),
                    jid,
                    name: i.name,
                    subscription: format!("{:?}", i.subscription).to_lowercase(),
                }
            })
            .collect();
        let requests: Vec<String> = lock(&self.contacts.requests).iter().cloned().collect();
        Ok(types::Contacts {
            contacts: list,
            requests,
        })
    }

    pub async fn add_contact(&self, jid: &str, name: Option<&str>) -> Result<(), NodeError> {
        let who = address(jid)?;
        if who == self.me {
            refuse!(BadInput, "that is you");
        }
        lock(&self.contacts.requests).remove(who.as_str());
        // Adding someone who asked is accepting them.
        self.xmpp.accept_contact(&who).await?;
        self.xmpp
            .add_contact(&who, name.filter(|n| !n.trim().is_empty()))
            .await?;
        self.emit(NodeEvent::Contacts);
        Ok(())
    }

    /// Removes someone from our contacts, or refuses their request.
    pub async fn remove_contact(&self, jid: &str) -> Result<(), NodeError> {
        let who = address(jid)?;
        let asked = lock(&self.contacts.requests).remove(who.as_str());
        let known = self
            .xmpp
            .roster()
            .await?
            .iter()
            .any(|i| i.jid == who && i.subscription != Subscription::Remove);
        if !asked && !known {
            refuse!(NotFound, "{who} is not one of your contacts");
        }
        if asked {
            self.xmpp.refuse_contact(&who).await?;
        }
        if known {
            self.xmpp.remove_contact(&who).await?;
        }
        lock(&self.contacts.online).remove(who.as_str());
        self.emit(NodeEvent::Contacts);
        Ok(())
    }

    /// A 1:1 conversation from the account's archive, oldest first; an encrypted line as
    /// this node read or wrote it (see `sealedchat`).
    pub async fn conversation(&self, jid: &str) -> Result<Vec<types::ChatLine>, NodeError> {
        let who = address(jid)?;
        let mut out = Vec::new();
        for l in self.xmpp.conversation(&who, 200).await? {
            let Some(sealed) = &l.sealed else {
                out.push(types::ChatLine {
                    call: l.call.as_ref().map(call_line),
                    body: l.body,
                    mine: l.mine,
                    stamp: l.stamp,
                    encrypted: false,
                    unreadable: false,
                });
                continue;
            };
            if sealed.is_handshake() {
                continue;
            }
            let key = crate::sealedchat::line_key(&sealed.bytes);
            let plain = self.store.chat_line(who.as_str(), &key, l.mine).await?;
            out.push(types::ChatLine {
                unreadable: plain.is_none(),
                body: plain.unwrap_or_default(),
                mine: l.mine,
                stamp: l.stamp,
                encrypted: true,
                call: None,
            });
        }
        Ok(out)
    }

    /// Whether what we write to `jid` goes end to end encrypted.
    pub async fn chat_security(&self, jid: &str) -> Result<types::ChatSecurity, NodeError> {
        let who = address(jid)?;
        Ok(types::ChatSecurity {
            encrypted: self.chat_encrypted(&who).await,
        })
    }

    pub async fn send_chat(&self, jid: &str, body: &str) -> Result<(), NodeError> {
        let who = address(jid)?;
        let body = body.trim();
        if body.is_empty() || body.len() > 10_000 {
            refuse!(BadInput, "write between 1 and 10,000 characters");
        }
        if !self.send_sealed_chat(&who, body).await? {
            self.xmpp.send_chat(&who, body).await?;
        }
        self.emit(NodeEvent::Chat {
            with: who.to_string(),
        });
        Ok(())
    }

    /// The last messages said in a sphere's room, oldest first.
    pub async fn messages(&self, name: &str) -> Result<Vec<types::RoomMessage>, NodeError> {
        let sphere = self.sphere_named(name).await?;
        let rows = self.store.messages(sphere.id, 200).await?;
        Ok(rows
            .into_iter()
            .map(|m| types::RoomMessage {
                mine: m.jid.as_deref() == Some(self.me.as_str()),
                nick: m.nick,
                jid: m.jid,
                body: m.body,
                stamp: m.stamp,
            })
            .collect())
    }

    /// Says something in a sphere's room.
    pub async fn say(&self, name: &str, body: &str) -> Result<(), NodeError> {
        let sphere = self.sphere_named(name).await?;
        let body = body.trim();
        if body.is_empty() {
            refuse!(BadInput, "nothing to say");
        }
        if body.len() > 10_000 {
            refuse!(
                BadInput,
                "that message is too long (10,000 characters at most)"
            );
        }
        self.send_in_room(&sphere, spheres_xmpp::sealed::chat_line(body))
            .await
    }
}
