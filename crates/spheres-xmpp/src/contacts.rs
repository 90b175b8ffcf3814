//! Contacts and 1:1 chat: the roster (RFC 6121) with the subscription handshake, message
//! carbons (XEP-0280) so every device of ours sees the whole conversation, and the account's
//! archive (XEP-0313) for history.

use xmpp_parsers::carbons;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Lang;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::roster::Roster;
pub use xmpp_parsers::roster::{Item as RosterItem, Subscription};

use crate::muc::Archived;
use crate::{BareJid, Client, Jid, XmppError};

const NS_CARBONS: &str = "urn:xmpp:carbons:2";

/// A line of a one-to-one conversation, from the account's archive.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatLine {
    pub body: String,
    /// An MLS message of an encrypted conversation (its body says so), when it is one.
    pub sealed: Option<crate::sealed::Sealed>,
    /// Said by us (from any of our devices).
    pub mine: bool,
    /// When the server archived it (RFC 3339).
    pub stamp: Option<String>,
    /// A call (its ringing messages folded into one line; `body` is empty).
    pub call: Option<crate::call::CallRecord>,
}

/// What a presence says about a contact relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionEvent {
    /// `from` asks to see our presence: answer with [`Client::accept_contact`] or
    /// [`Client::refuse_contact`].
    Request(BareJid),
    /// `from` accepted our request.
    Accepted(BareJid),
    /// `from` refused our request or stopped sharing their presence with us.
    Refused(BareJid),
    /// `from` stopped following our presence.
    Unfollowed(BareJid),
}

impl SubscriptionEvent {
    pub fn from_presence(p: &Presence) -> Option<SubscriptionEvent> {
        let from = p.from.as_ref()?.to_bare();
        match p.type_ {
            PresenceType::Subscribe => Some(SubscriptionEvent::Request(from)),
            PresenceType::Subscribed => Some(SubscriptionEvent::Accepted(from)),
            PresenceType::Unsubscribed => Some(SubscriptionEvent::Refused(from)),
            PresenceType::Unsubscribe => Some(SubscriptionEvent::Unfollowed(from)),
            _ => None,
        }
    }
}

/// A message copied to us by the server from another device of ours (XEP-0280).
#[derive(Debug, Clone, PartialEq)]
pub enum Carbon {
    /// Another device of ours received this.
    Received(Message),
    /// Another device of ours sent this.
    Sent(Message),
}

impl Carbon {
    /// The carbon in `m`, if `m` is one that really comes from our own account (`me`):
    /// anyone else sending a "carbon" is forging it, and it is ignored.
    pub fn from_message(m: &Message, me: &BareJid) -> Option<Carbon> {
        let el = m.payloads.iter().find(|p| p.ns() == NS_CARBONS)?;
        if m.from.as_ref().map(|f| f.to_bare()).as_ref() != Some(me) {
            tracing::info!(from = ?m.from, "ignoring a forged carbon");
            return None;
        }
        let parsed = match el.name() {
            "received" => carbons::Received::try_from(el.clone())
                .map(|c| Carbon::Received(c.forwarded.message)),
            "sent" => {
                carbons::Sent::try_from(el.clone()).map(|c| Carbon::Sent(c.forwarded.message))
            }
            _ => return None,
        };
        match parsed {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::info!(error = %e, "ignoring a malformed carbon");
                None
            }
        }
    }
}

pub(crate) fn expect_result(answer: Iq, what: &str) -> Result<Option<minidom::Element>, XmppError> {
    match answer {
        Iq::Result { payload, .. } => Ok(payload),
        Iq::Error { error, .. } => Err(XmppError::Refused(format!(
            "{what}: {:?}",
            error.defined_condition
        ))),
        _ => Err(XmppError::Protocol(format!("odd answer to {what}"))),
    }
}

impl Client {
    /// Our contact list.
    pub async fn roster(&self) -> Result<Vec<RosterItem>, XmppError> {
        let answer = self
            .iq(Iq::from_get(
                "",
                Roster {
                    ver: None,
                    items: vec![],
                },
            ))
            .await?;
        match expect_result(answer, "the contact list")? {
            Some(p) => Roster::try_from(p)
                .map(|r| r.items)
                .map_err(|e| XmppError::Protocol(format!("bad contact list: {e}"))),
            None => Ok(Vec::new()),
        }
    }

    async fn roster_set(&self, item: RosterItem) -> Result<(), XmppError> {
        let answer = self
            .iq(Iq::from_set(
                "",
                Roster {
                    ver: None,
                    items: vec![item],
                },
            ))
            .await?;
        expect_result(answer, "a contact list change").map(|_| ())
    }

    /// Adds `who` to our contacts and asks to see their presence. We also pre-approve
    /// theirs (RFC 6121 §3.4), so the relationship becomes mutual as soon as they accept.
    pub async fn add_contact(&self, who: &BareJid, name: Option<&str>) -> Result<(), XmppError> {
        self.roster_set(RosterItem {
            jid: who.clone(),
            name: name.map(str::to_owned),
            subscription: Subscription::None,
            ask: Default::default(),
            groups: vec![],
            approved: None,
        })
        .await?;
        self.send(Presence::new(PresenceType::Subscribe).with_to(Jid::from(who.clone())))
            .await?;
        self.send(Presence::new(PresenceType::Subscribed).with_to(Jid::from(who.clone())))
            .await
    }

    /// Accepts `who`'s request to see our presence, and asks for theirs in return.
    pub async fn accept_contact(&self, who: &BareJid) -> Result<(), XmppError> {
        self.send(Presence::new(PresenceType::Subscribed).with_to(Jid::from(who.clone())))
            .await?;
        self.send(Presence::new(PresenceType::Subscribe).with_to(Jid::from(who.clone())))
            .await
    }

    /// Refuses `who`'s request (or stops sharing our presence with them).
    pub async fn refuse_contact(&self, who: &BareJid) -> Result<(), XmppError> {
        self.send(Presence::new(PresenceType::Unsubscribed).with_to(Jid::from(who.clone())))
            .await
    }

    /// Removes `who` from our contacts; the server cancels both subscriptions.
    pub async fn remove_contact(&self, who: &BareJid) -> Result<(), XmppError> {
        self.roster_set(RosterItem {
            jid: who.clone(),
            name: None,
            subscription: Subscription::Remove,
            ask: Default::default(),
            groups: vec![],
            approved: None,
        })
        .await
    }

    /// Asks the server to copy to this connection the messages our other devices send and
    /// receive (XEP-0280).
    pub async fn enable_carbons(&self) -> Result<(), XmppError> {
        let answer = self.iq(Iq::from_set("", carbons::Enable)).await?;
        expect_result(answer, "enabling carbons").map(|_| ())
    }

    /// Sends `body` to `to` as a one-to-one chat message.
    pub async fn send_chat(&self, to: &BareJid, body: &str) -> Result<(), XmppError> {
        self.send(
            Message::chat(Some(Jid::from(to.clone()))).with_body(Lang::from(""), body.to_owned()),
        )
        .await
    }

    /// Tells our server (and through it our contacts) that we are online, with our entity
    /// capabilities (XEP-0115): the server learns from them that we want our contacts' posts.
    pub async fn available(&self) -> Result<(), XmppError> {
        let mut p = Presence::available();
        if let Some(caps) = crate::client::caps() {
            p.add_payload(caps);
        }
        self.send(p).await
    }

    /// The last `last` lines of our conversation with `with`, from our account's archive,
    /// oldest first: what was said, whether by us, and when.
    pub async fn conversation(
        &self,
        with: &BareJid,
        last: usize,
    ) -> Result<Vec<ChatLine>, XmppError> {
        let me = self.jid().to_bare();
        let history = self.chat_history(with, None).await?;
        let skip = history.len().saturating_sub(last);
        let mut lines: Vec<ChatLine> = Vec::new();
        let mut calls = Vec::new();
        // Where each call's line is, by its place in `calls`.
        let mut at = Vec::new();
        for a in history.into_iter().skip(skip) {
            let mine = a.message.from.as_ref().is_some_and(|f| f.to_bare() == me);
            if let Some(ring) = crate::call::Ring::from_message(&a.message) {
                if crate::call::fold_ring(&mut calls, &ring, mine, a.unix_time).is_some() {
                    at.push(lines.len());
                    lines.push(ChatLine {
                        body: String::new(),
                        sealed: None,
                        mine,
                        stamp: a.stamp,
                        call: None,
                    });
                }
                continue;
            }
            let Some(body) = a.message.bodies.values().next().cloned() else {
                continue;
            };
            lines.push(ChatLine {
                body,
                sealed: crate::sealed::Sealed::from_message(&a.message)
                    .filter(|s| s.group.is_some()),
                mine,
                stamp: a.stamp,
                call: None,
            });
        }
        for (record, i) in calls.into_iter().zip(at) {
            if let Some(line) = lines.get_mut(i) {
                line.call = Some(record);
            }
        }
        Ok(lines)
    }

    /// Our 1:1 conversation with `with`, from our account's archive, after the archive id
    /// `after` (all when `None`), oldest first.
    pub async fn chat_history(
        &self,
        with: &BareJid,
        after: Option<String>,
    ) -> Result<Vec<Archived>, XmppError> {
        let form = DataForm::new(
            DataFormType::Submit,
            "urn:xmpp:mam:2",
            vec![Field::text_single("with", with.as_str())],
        );
        self.history_filtered(None, Some(form), after).await
    }
}
