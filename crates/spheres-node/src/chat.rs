//! Contacts and chat: the roster, contacts' presence (bounded), contact requests, one-to-one
//! conversations and what is said in a sphere's room.

use anyhow::Result;
use spheres_xmpp::xmpp_parsers::message::Message;
use spheres_xmpp::xmpp_parsers::presence::Presence;
use spheres_xmpp::xmpp_parsers::roster::Subscription;
use spheres_xmpp::{BareJid, Jid};

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

impl Node {
    /// A contact's presence, or a subscription request.
    pub(crate) fn on_contact_presence(&self, p: &Presence) {
        use spheres_xmpp::contacts::SubscriptionEvent;
        use spheres_xmpp::xmpp_parsers::presence::Type as PresenceType;
        let Some(from) = p.from.as_ref() else { return };
        let bare = from.to_bare().to_string();
        if bare == self.me.as_str() {
            return;
        }
        if let Some(SubscriptionEvent::Request(who)) = SubscriptionEvent::from_presence(p) {
            // Anyone may ask: the list waiting for an answer is bounded.
            let mut asking = lock(&self.contact_requests);
            if asking.len() >= MAX_CONTACT_REQUESTS && !asking.contains(who.as_str()) {
                tracing::info!(from = %who, "too many contact requests waiting; ignoring one more");
                return;
            }
            asking.insert(who.to_string());
            drop(asking);
            self.emit(NodeEvent::Contacts);
            return;
        }
        let resource = from
            .resource()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        match p.type_ {
            PresenceType::None => {
                // Bounded too: directed presence can come from anyone.
                let mut online = lock(&self.contacts_online);
                let full = online.len() >= MAX_PRESENCES && !online.contains_key(&bare);
                let entry = online.entry(bare.clone());
                match entry {
                    _ if full => return,
                    e => {
                        let resources = e.or_default();
                        if resources.len() < MAX_RESOURCES {
                            resources.insert(resource);
                        }
                    }
                }
            }
            PresenceType::Unavailable => {
                let mut all = lock(&self.contacts_online);
                if let Some(r) = all.get_mut(&bare) {
                    r.remove(&resource);
                    if r.is_empty() {
                        all.remove(&bare);
                    }
                }
            }
            _ => return,
        }
        self.emit(NodeEvent::Contacts);
    }

    /// Our contacts, with presence, and who asks to become one.
    pub async fn contacts(&self) -> Result<types::Contacts, NodeError> {
        let items = self.xmpp.roster().await?;
        let online = lock(&self.contacts_online).clone();
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
        let requests: Vec<String> = lock(&self.contact_requests).iter().cloned().collect();
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
        lock(&self.contact_requests).remove(who.as_str());
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
        let asked = lock(&self.contact_requests).remove(who.as_str());
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
        lock(&self.contacts_online).remove(who.as_str());
        self.emit(NodeEvent::Contacts);
        Ok(())
    }

    /// A 1:1 conversation from the account's archive, oldest first.
    pub async fn conversation(&self, jid: &str) -> Result<Vec<types::ChatLine>, NodeError> {
        let who = address(jid)?;
        let history = self.xmpp.chat_history(&who, None).await?;
        let me = self.me.to_string();
        let list: Vec<_> = history
            .into_iter()
            .rev()
            .take(200)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .filter_map(|a| {
                let body = a.message.bodies.values().next()?.clone();
                let mine = a
                    .message
                    .from
                    .as_ref()
                    .is_some_and(|f| f.to_bare().to_string() == me);
                Some(types::ChatLine {
                    body,
                    mine,
                    stamp: a.stamp,
                })
            })
            .collect();
        Ok(list)
    }

    pub async fn send_chat(&self, jid: &str, body: &str) -> Result<(), NodeError> {
        let who = address(jid)?;
        let body = body.trim();
        if body.is_empty() || body.len() > 10_000 {
            refuse!(BadInput, "write between 1 and 10,000 characters");
        }
        let m = Message::chat(Some(Jid::from(who.clone()))).with_body(
            spheres_xmpp::xmpp_parsers::message::Lang::from(""),
            body.to_owned(),
        );
        self.xmpp.send(m).await?;
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
        let room = BareJid::new(&sphere.room)?;
        let m = Message::groupchat(Some(Jid::from(room))).with_body(
            spheres_xmpp::xmpp_parsers::message::Lang::from(""),
            body.to_owned(),
        );
        self.xmpp.send(m).await?;
        Ok(())
    }
}
