//! The social feed on standard XMPP: microblog posts (XEP-0277) are Atom entries (RFC 4287)
//! published as items of PEP nodes (XEP-0163, XEP-0060) on the poster's own account, so that
//! Movim, any XEP-0277 client or a slixmpp script reads them.
//!
//! Who reads a post is the access model of the node it is in (Prosody 0.12 knows `presence`,
//! `open` and `whitelist`, not `roster`):
//! - [`MICROBLOG`] (`urn:xmpp:microblog:0`, access model `presence`): what the poster's
//!   contacts read, as every XEP-0277 client looks for it. Every post a contact may read is
//!   here, the wider ones included;
//! - [`EVERYONE`] (access model `open`): the posts for anyone with an XMPP address (and the
//!   public web), readable by people who are not contacts;
//! - comments under a post: `urn:xmpp:microblog:0:comments/ITEM` on the poster's account
//!   ([`comments_node`]), with the post's access model and open to publishing, as Movim
//!   makes them.
//!
//! Contacts are told of new posts by the server (XEP-0163 `+notify`, from the features our
//! client advertises in its entity capabilities); history is fetched with [`Client::items`].
//!
//! Parsing is pure and bounded ([`Entry::from_element`], [`FeedEvent::from_message`]): no
//! panics on what the network sends, at most [`MAX_CONTENT`] bytes of text per entry.

use std::str::FromStr;

use jid::{BareJid, Jid};
use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::Message;
use xmpp_parsers::stanza_error::DefinedCondition;

use crate::{Client, XmppError};

pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const NS_PUBSUB_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NS_ATOM: &str = "http://www.w3.org/2005/Atom";
pub const NS_THREAD: &str = "http://purl.org/syndication/thread/1.0";
const NS_DATA: &str = "jabber:x:data";

/// The microblog node of XEP-0277: posts for our contacts, and a copy of every wider one.
pub const MICROBLOG: &str = "urn:xmpp:microblog:0";
/// Posts for anyone with an XMPP address: an open node (XEP-0472's `pubsub#type` says it is
/// a microblog).
pub const EVERYONE: &str = "urn:spheres:microblog:0:everyone";
/// The feature that asks the server for new posts of our contacts (XEP-0163).
pub const NOTIFY: &str = "urn:xmpp:microblog:0+notify";

/// The most text an entry may carry (title and content each), in bytes.
pub const MAX_CONTENT: usize = 64 * 1024;
/// The most links (attachments, alternates) an entry may carry; more are ignored.
pub const MAX_LINKS: usize = 32;
/// The most items we read from one answer or notification; more are ignored.
pub const MAX_ITEMS: usize = 200;
/// The longest item id, URL or name we keep, in bytes.
const MAX_SHORT: usize = 2048;

/// The comments node of the post with item id `item`.
pub fn comments_node(item: &str) -> String {
    format!("{MICROBLOG}:comments/{item}")
}

/// Who may read a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The owner's contacts (those subscribed to the owner's presence).
    Presence,
    /// Anyone with an XMPP address.
    Open,
    /// Only those the owner lists.
    Whitelist,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Presence => "presence",
            Access::Open => "open",
            Access::Whitelist => "whitelist",
        }
    }
}

/// A link of an entry: an attachment (`enclosure`), the post on the web (`alternate`), the
/// comments (`replies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub rel: String,
    pub href: String,
    pub type_: Option<String>,
    pub title: Option<String>,
    pub length: Option<u64>,
}

/// An Atom entry as XEP-0277 uses it: a post or a comment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Atom's `id` (a URI), when there is one.
    pub id: Option<String>,
    /// The title; XEP-0277 clients put short posts' text here.
    pub title: String,
    /// The text (plain; XHTML content is read as its text).
    pub content: String,
    /// Seconds since 1970.
    pub published: Option<i64>,
    pub updated: Option<i64>,
    pub author_name: Option<String>,
    /// The author's address, from `<author><uri>xmpp:JID</uri>`.
    pub author: Option<BareJid>,
    pub links: Vec<Link>,
    /// For a comment or a reply: the `ref` of `thr:in-reply-to`.
    pub in_reply_to: Option<String>,
    /// Who the poster meant it for, as spheres says it (`<category scheme=AUDIENCE_SCHEME
    /// term='contacts|everyone'/>`; other clients ignore it). The poster's word, shown as such.
    pub audience: Option<String>,
    /// For a reaction to a post (a comment that says only that): the emojis, as XEP-0444
    /// writes them (`<reactions xmlns='urn:xmpp:reactions:0' id='POST'><reaction>👍
    /// </reaction></reactions>` inside the entry). Movim's like, a comment that says "♥", is
    /// read as one too.
    pub reactions: Option<Vec<String>>,
}

/// The namespace of XEP-0444 (message reactions).
pub const NS_REACTIONS: &str = "urn:xmpp:reactions:0";
/// The most reactions one person's entry may carry; more are ignored.
pub const MAX_REACTIONS: usize = 16;
/// Movim's like: a comment whose text is this.
pub const LIKE: &str = "♥";

/// Whether `s` may be a reaction: one short symbol (an emoji, with its modifiers), no
/// letters, digits, spaces or control characters.
pub fn is_reaction(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control())
}

/// The Atom category scheme spheres marks a post's audience with.
pub const AUDIENCE_SCHEME: &str = "urn:spheres:audience";

/// What is wrong with an entry we were sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("not an Atom entry")]
    NotAnEntry,
    #[error("the entry's {0} is longer than we accept")]
    TooLong(&'static str),
}

fn text_of(el: &Element) -> String {
    // XHTML content: its text, tags left out (never rendered as markup).
    if el.attr("type") == Some("xhtml") {
        let mut out = String::new();
        collect_text(el, &mut out);
        return out.trim().to_owned();
    }
    el.text()
}

fn collect_text(el: &Element, out: &mut String) {
    for node in el.nodes() {
        if out.len() > MAX_CONTENT {
            return;
        }
        match node {
            minidom::Node::Text(t) => out.push_str(t),
            minidom::Node::Element(e) => {
                collect_text(e, out);
                if matches!(e.name(), "p" | "br" | "div" | "li") {
                    out.push('\n');
                }
            }
        }
    }
}

fn short(s: Option<&str>) -> Option<String> {
    s.filter(|s| s.len() <= MAX_SHORT).map(str::to_owned)
}

fn unix_time(s: &str) -> Option<i64> {
    xmpp_parsers::date::DateTime::from_str(s.trim())
        .ok()
        .map(|d| d.0.timestamp())
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Entry {
    /// Reads an Atom entry; unknown children are ignored.
    pub fn from_element(el: &Element) -> Result<Entry, EntryError> {
        if !el.is("entry", NS_ATOM) {
            return Err(EntryError::NotAnEntry);
        }
        let mut e = Entry::default();
        for child in el.children() {
            if child.is("in-reply-to", NS_THREAD) {
                e.in_reply_to = short(child.attr("ref"));
                continue;
            }
            if child.is("reactions", NS_REACTIONS) {
                let mut set: Vec<String> = Vec::new();
                for r in child.children().filter(|r| r.is("reaction", NS_REACTIONS)) {
                    let r = r.text();
                    if is_reaction(&r) && !set.contains(&r) && set.len() < MAX_REACTIONS {
                        set.push(r);
                    }
                }
                e.reactions = Some(set);
                continue;
            }
            if child.ns() != NS_ATOM {
                continue;
            }
            match child.name() {
                "id" => e.id = short(Some(child.text().trim())),
                "title" => e.title = text_of(child),
                "content" => e.content = text_of(child),
                "published" => e.published = unix_time(&child.text()),
                "updated" => e.updated = unix_time(&child.text()),
                "author" => {
                    for a in child.children().filter(|a| a.ns() == NS_ATOM) {
                        match a.name() {
                            "name" => e.author_name = short(Some(a.text().trim())),
                            "uri" => {
                                e.author = a
                                    .text()
                                    .trim()
                                    .strip_prefix("xmpp:")
                                    .and_then(|j| BareJid::new(j).ok())
                            }
                            _ => {}
                        }
                    }
                }
                "category" if child.attr("scheme") == Some(AUDIENCE_SCHEME) => {
                    e.audience = short(child.attr("term"));
                }
                "link" if e.links.len() < MAX_LINKS => {
                    let (Some(rel), Some(href)) = (
                        short(Some(child.attr("rel").unwrap_or("alternate"))),
                        short(child.attr("href")),
                    ) else {
                        continue;
                    };
                    e.links.push(Link {
                        rel,
                        href,
                        type_: short(child.attr("type")),
                        title: short(child.attr("title")),
                        length: child.attr("length").and_then(|l| l.parse().ok()),
                    });
                }
                _ => {}
            }
        }
        if e.title.len() > MAX_CONTENT {
            return Err(EntryError::TooLong("title"));
        }
        if e.content.len() > MAX_CONTENT {
            return Err(EntryError::TooLong("content"));
        }
        let text = if e.content.is_empty() {
            &e.title
        } else {
            &e.content
        };
        if e.reactions.is_none() && text.trim() == LIKE {
            e.reactions = Some(vec![LIKE.to_owned()]);
        }
        Ok(e)
    }

    /// The entry as Atom. The text goes in `title` (as XEP-0277 clients show it) and in
    /// `content type='text'`.
    pub fn to_element(&self) -> Element {
        let text = |name: &str, value: &str| {
            Element::builder(name, NS_ATOM)
                .append(value.to_owned())
                .build()
        };
        let mut entry = Element::builder("entry", NS_ATOM).build();
        entry.append_child(text("title", &self.title));
        let mut content = text("content", &self.content);
        content.set_attr(rxml::Namespace::NONE, a!("type"), "text");
        entry.append_child(content);
        if let Some(id) = &self.id {
            entry.append_child(text("id", id));
        }
        if let Some(p) = self.published {
            entry.append_child(text("published", &rfc3339(p)));
        }
        if let Some(u) = self.updated.or(self.published) {
            entry.append_child(text("updated", &rfc3339(u)));
        }
        if self.author.is_some() || self.author_name.is_some() {
            let mut author = Element::builder("author", NS_ATOM).build();
            if let Some(name) = &self.author_name {
                author.append_child(text("name", name));
            }
            if let Some(jid) = &self.author {
                author.append_child(text("uri", &format!("xmpp:{jid}")));
            }
            entry.append_child(author);
        }
        for l in &self.links {
            let mut link = Element::builder("link", NS_ATOM)
                .attr(a!("rel"), l.rel.as_str())
                .attr(a!("href"), l.href.as_str())
                .build();
            if let Some(t) = &l.type_ {
                link.set_attr(rxml::Namespace::NONE, a!("type"), t.as_str());
            }
            if let Some(t) = &l.title {
                link.set_attr(rxml::Namespace::NONE, a!("title"), t.as_str());
            }
            if let Some(n) = l.length {
                link.set_attr(rxml::Namespace::NONE, a!("length"), n.to_string());
            }
            entry.append_child(link);
        }
        if let Some(a) = &self.audience {
            entry.append_child(
                Element::builder("category", NS_ATOM)
                    .attr(a!("scheme"), AUDIENCE_SCHEME)
                    .attr(a!("term"), a.as_str())
                    .build(),
            );
        }
        if let Some(set) = &self.reactions {
            let mut reactions = Element::builder("reactions", NS_REACTIONS).build();
            if let Some(on) = &self.in_reply_to {
                reactions.set_attr(rxml::Namespace::NONE, a!("id"), on.as_str());
            }
            for r in set {
                reactions.append_child(
                    Element::builder("reaction", NS_REACTIONS)
                        .append(r.clone())
                        .build(),
                );
            }
            entry.append_child(reactions);
        }
        if let Some(r) = &self.in_reply_to {
            entry.append_child(
                Element::builder("in-reply-to", NS_THREAD)
                    .attr(a!("ref"), r.as_str())
                    .build(),
            );
        }
        entry
    }

    /// The `xmpp:` URI of this post's comments node, from its `replies` link, when the
    /// link names a comments node on `service` (we read comments only where they belong).
    pub fn comments_on(&self, service: &BareJid) -> Option<String> {
        let link = self
            .links
            .iter()
            .find(|l| l.rel == "replies" && l.title.as_deref() != Some("likes"))?;
        let rest = link.href.strip_prefix("xmpp:")?;
        let (jid, query) = rest.split_once("?;node=")?;
        if BareJid::new(jid).ok()? != *service {
            return None;
        }
        let node = percent_encoding::percent_decode_str(query)
            .decode_utf8()
            .ok()?
            .into_owned();
        node.starts_with(&format!("{MICROBLOG}:comments/"))
            .then_some(node)
    }
}

/// The `replies` link of a post whose comments node is `node` on `service`, as Movim reads
/// it.
pub fn replies_link(service: &BareJid, node: &str) -> Link {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let encoded = percent_encoding::utf8_percent_encode(node, KEEP).to_string();
    Link {
        rel: "replies".into(),
        href: format!("xmpp:{service}?;node={encoded}"),
        type_: None,
        title: Some("comments".into()),
        length: None,
    }
}

/// An item of a node: its id, who published it (as the server stamped it), its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub publisher: Option<BareJid>,
    pub entry: Entry,
}

/// What the server told us of a node: new items, items withdrawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// Whose node (the account that owns it).
    pub service: BareJid,
    pub node: String,
    pub items: Vec<Item>,
    pub retracted: Vec<String>,
}

/// Reads the `<item>`s of an `<items>` element (in the pubsub or the event namespace);
/// entries that do not read are skipped, with a log line.
fn read_items(items: &Element, ns: &str) -> (Vec<Item>, Vec<String>) {
    let mut out = Vec::new();
    let mut retracted = Vec::new();
    for child in items.children().take(MAX_ITEMS) {
        if child.is("retract", ns) {
            if let Some(id) = short(child.attr("id")) {
                retracted.push(id);
            }
            continue;
        }
        if !child.is("item", ns) {
            continue;
        }
        let Some(id) = short(child.attr("id")) else {
            continue;
        };
        let Some(entry) = child.get_child("entry", NS_ATOM) else {
            continue;
        };
        match Entry::from_element(entry) {
            Ok(entry) => out.push(Item {
                id,
                publisher: child
                    .attr("publisher")
                    .and_then(|p| Jid::new(p).ok())
                    .map(|j| j.to_bare()),
                entry,
            }),
            Err(e) => tracing::info!(error = %e, item = id, "ignoring a feed item"),
        }
    }
    (out, retracted)
}

impl FeedEvent {
    /// A pubsub notification (XEP-0060 §7.1.2) about a microblog or comments node; `None`
    /// for any other message.
    pub fn from_message(m: &Message) -> Option<FeedEvent> {
        let service = m.from.as_ref()?.to_bare();
        let event = m.payloads.iter().find(|p| p.is("event", NS_PUBSUB_EVENT))?;
        let items = event.get_child("items", NS_PUBSUB_EVENT)?;
        let node = short(items.attr("node"))?;
        if !is_feed_node(&node) {
            return None;
        }
        let (items, retracted) = read_items(items, NS_PUBSUB_EVENT);
        Some(FeedEvent {
            service,
            node,
            items,
            retracted,
        })
    }
}

/// The nodes that hold posts or comments.
pub fn is_feed_node(node: &str) -> bool {
    node == MICROBLOG || node == EVERYONE || node.starts_with(&format!("{MICROBLOG}:comments/"))
}

/// A fresh item id: a random UUID (as Movim makes them).
pub fn new_item_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    // Version 4, variant 1.
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        h(0..4),
        h(4..6),
        &h(6..8)[1..],
        8 | (b[8] & 3),
        &h(8..10)[1..],
        h(10..16)
    )
}

fn field(var: &str, value: &str) -> Element {
    Element::builder("field", NS_DATA)
        .attr(a!("var"), var)
        .append(
            Element::builder("value", NS_DATA)
                .append(value.to_owned())
                .build(),
        )
        .build()
}

/// A submitted data form (XEP-0004) of type `form_type` with `fields`.
fn form(form_type: &str, fields: &[(&str, &str)]) -> Element {
    let mut x = Element::builder("x", NS_DATA)
        .attr(a!("type"), "submit")
        .append(
            Element::builder("field", NS_DATA)
                .attr(a!("var"), "FORM_TYPE")
                .attr(a!("type"), "hidden")
                .append(
                    Element::builder("value", NS_DATA)
                        .append(form_type.to_owned())
                        .build(),
                )
                .build(),
        )
        .build();
    for (var, value) in fields {
        x.append_child(field(var, value));
    }
    x
}

/// A node's settings (as publish options, XEP-0060 §7.1.5, or a new node's configuration):
/// kept items, who reads (`access`), who writes (anyone who may read, for comments). `full`:
/// also how many items it keeps (Prosody keeps one by default; `max` is as many as it
/// allows) and retractions told; without, what ejabberd 23.01 takes as publish options
/// (it refuses other fields: "Unknown field", resource-constraint).
fn node_settings(access: Access, comments: bool, full: bool) -> Vec<(&'static str, &'static str)> {
    let mut fields = vec![
        ("pubsub#access_model", access.as_str()),
        ("pubsub#persist_items", "true"),
    ];
    if full {
        fields.push(("pubsub#max_items", "max"));
        fields.push(("pubsub#notify_retract", "true"));
    }
    if comments {
        fields.push(("pubsub#publish_model", "open"));
    }
    fields
}

/// Whether the server refused a node's settings (a field it does not know or allow), so
/// that fewer may be asked.
fn settings_refused(answer: &Iq) -> bool {
    matches!(answer, Iq::Error { error, .. }
        if matches!(error.defined_condition,
            DefinedCondition::ResourceConstraint | DefinedCondition::NotAcceptable
            | DefinedCondition::PolicyViolation))
}

fn pubsub(child: Element) -> Element {
    Element::builder("pubsub", NS_PUBSUB).append(child).build()
}

fn set(to: Option<&BareJid>, payload: Element) -> Iq {
    Iq::Set {
        from: None,
        to: to.map(|t| Jid::from(t.clone())),
        id: String::new(),
        payload,
    }
}

impl Client {
    /// Publishes `entry` as item `id` of `node`: on our own account (`service` `None`; the
    /// node is made with `access` if it is not there yet, and `comments` lets anyone who may
    /// read it publish), or on another's (a comment under their post).
    pub async fn publish(
        &self,
        service: Option<&BareJid>,
        node: &str,
        id: &str,
        entry: &Entry,
        access: Access,
        comments: bool,
    ) -> Result<(), XmppError> {
        self.publish_item(service, node, id, entry.to_element(), access, comments)
            .await
    }

    /// Publishes `payload` as item `id` of `node`, as [`Client::publish`] does an entry.
    pub async fn publish_item(
        &self,
        service: Option<&BareJid>,
        node: &str,
        id: &str,
        payload: Element,
        access: Access,
        comments: bool,
    ) -> Result<(), XmppError> {
        let item = Element::builder("item", NS_PUBSUB)
            .attr(a!("id"), id)
            .append(payload)
            .build();
        let publish = Element::builder("publish", NS_PUBSUB)
            .attr(a!("node"), node)
            .append(item)
            .build();
        // Options are the owner's to set: a comment on someone else's node goes without.
        if service.is_some() {
            let answer = self.iq(set(service, pubsub(publish))).await?;
            return crate::contacts::expect_result(answer, "publishing").map(|_| ());
        }
        // The server creates the node with the options, or refuses the publish when an
        // existing node differs.
        let (answer, full) = self
            .with_settings(|full| {
                let mut ps = pubsub(publish.clone());
                let options = form(
                    &format!("{NS_PUBSUB}#publish-options"),
                    &node_settings(access, comments, full),
                );
                ps.append_child(
                    Element::builder("publish-options", NS_PUBSUB)
                        .append(options)
                        .build(),
                );
                ps
            })
            .await?;
        if !full && matches!(answer, Iq::Result { .. }) {
            // Published with fewer options: the rest set on the node itself.
            self.keep_items(node).await;
        }
        crate::contacts::expect_result(answer, "publishing").map(|_| ())
    }

    /// Sends the request `make(full)` makes with every setting we want (`full`), and again
    /// with fewer when the server refuses those (see [`node_settings`]); its answer, and
    /// whether it was the full one.
    async fn with_settings(&self, make: impl Fn(bool) -> Element) -> Result<(Iq, bool), XmppError> {
        let answer = self.iq(set(None, make(true))).await?;
        if !settings_refused(&answer) {
            return Ok((answer, true));
        }
        Ok((self.iq(set(None, make(false))).await?, false))
    }

    /// Asks that our node `node` keep as many items as the server allows, and tell
    /// retractions (XEP-0060 §8.2, by its owner): for servers whose publish options cannot
    /// say it (ejabberd keeps one item by default). Best effort: a refusal is logged.
    async fn keep_items(&self, node: &str) {
        const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
        for max in ["max", "1000", "256"] {
            let fields = [("pubsub#max_items", max), ("pubsub#notify_retract", "true")];
            let x = form(&format!("{NS_PUBSUB}#node_config"), &fields);
            let configure = Element::builder("configure", NS_OWNER)
                .attr(a!("node"), node)
                .append(x)
                .build();
            let ps = Element::builder("pubsub", NS_OWNER)
                .append(configure)
                .build();
            match self.iq(set(None, ps)).await {
                Ok(Iq::Result { .. }) => return,
                Ok(other) => tracing::debug!(node, max, answer = ?other, "node settings refused"),
                Err(e) => {
                    tracing::info!(error = %e, node, "cannot set how many posts the node keeps");
                    return;
                }
            }
        }
        tracing::info!(
            node,
            "the server keeps its own number of posts on this node"
        );
    }

    /// Makes the comments node of one of our posts (before the post goes out, so the link in
    /// it leads somewhere): read with `access`, open to publishing by whoever may read it.
    pub async fn create_comments_node(&self, node: &str, access: Access) -> Result<(), XmppError> {
        let (answer, _) = self
            .with_settings(|full| {
                let form = form(
                    &format!("{NS_PUBSUB}#node_config"),
                    &node_settings(access, true, full),
                );
                let mut ps = pubsub(
                    Element::builder("create", NS_PUBSUB)
                        .attr(a!("node"), node)
                        .build(),
                );
                ps.append_child(
                    Element::builder("configure", NS_PUBSUB)
                        .append(form)
                        .build(),
                );
                ps
            })
            .await?;
        crate::contacts::expect_result(answer, "making a comments node").map(|_| ())
    }

    /// Withdraws item `id` of `node` (on our account, or `service`'s), telling subscribers.
    pub async fn retract(
        &self,
        service: Option<&BareJid>,
        node: &str,
        id: &str,
    ) -> Result<(), XmppError> {
        let ps = pubsub(
            Element::builder("retract", NS_PUBSUB)
                .attr(a!("node"), node)
                .attr(a!("notify"), "true")
                .append(
                    Element::builder("item", NS_PUBSUB)
                        .attr(a!("id"), id)
                        .build(),
                )
                .build(),
        );
        crate::contacts::expect_result(self.iq(set(service, ps)).await?, "withdrawing").map(|_| ())
    }

    /// Asks `service`'s server to tell us of new items of `node` (with our bare address, so
    /// every device of ours hears).
    pub async fn subscribe(&self, service: &BareJid, node: &str) -> Result<(), XmppError> {
        let ps = pubsub(
            Element::builder("subscribe", NS_PUBSUB)
                .attr(a!("node"), node)
                .attr(a!("jid"), self.jid().to_bare().to_string())
                .build(),
        );
        crate::contacts::expect_result(self.iq(set(Some(service), ps)).await?, "following")
            .map(|_| ())
    }

    /// The items of `node` on `service`'s account (the latest `max`, when given). A node that
    /// is not there is no items; one we may not read is `Refused`.
    pub async fn items(
        &self,
        service: &BareJid,
        node: &str,
        max: Option<u32>,
    ) -> Result<Vec<Item>, XmppError> {
        Ok(match self.items_element(service, node, max).await? {
            Some(items) => read_items(&items, NS_PUBSUB).0,
            None => Vec::new(),
        })
    }

    /// The items of `node` on `service`'s account as they came: (id, payload), at most
    /// [`MAX_ITEMS`], those without an id or a payload skipped.
    pub async fn raw_items(
        &self,
        service: &BareJid,
        node: &str,
    ) -> Result<Vec<(String, Element)>, XmppError> {
        let Some(items) = self.items_element(service, node, None).await? else {
            return Ok(Vec::new());
        };
        Ok(items
            .children()
            .filter(|c| c.is("item", NS_PUBSUB))
            .take(MAX_ITEMS)
            .filter_map(|c| Some((short(c.attr("id"))?, c.children().next()?.clone())))
            .collect())
    }

    async fn items_element(
        &self,
        service: &BareJid,
        node: &str,
        max: Option<u32>,
    ) -> Result<Option<Element>, XmppError> {
        let mut items = Element::builder("items", NS_PUBSUB)
            .attr(a!("node"), node)
            .build();
        if let Some(m) = max {
            items.set_attr(rxml::Namespace::NONE, a!("max_items"), m.to_string());
        }
        let iq = Iq::Get {
            from: None,
            to: Some(Jid::from(service.clone())),
            id: String::new(),
            payload: pubsub(items),
        };
        let payload = match self.iq(iq).await? {
            Iq::Error { error, .. }
                if error.defined_condition == DefinedCondition::ItemNotFound =>
            {
                return Ok(None);
            }
            other => crate::contacts::expect_result(other, "reading a feed")?,
        };
        Ok(payload
            .as_ref()
            .and_then(|p| p.get_child("items", NS_PUBSUB))
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> BareJid {
        BareJid::new("alice@home.test").unwrap()
    }

    #[test]
    fn an_entry_goes_out_and_comes_back() {
        let e = Entry {
            id: Some("tag:home.test,2026:posts-1".into()),
            title: "Photos from Lyon <3 & more".into(),
            content: "Photos from Lyon <3 & more".into(),
            published: Some(1_800_000_000),
            updated: Some(1_800_000_060),
            author_name: Some("Alice".into()),
            author: Some(alice()),
            links: vec![replies_link(&alice(), &comments_node("abc"))],
            in_reply_to: None,
            audience: Some("everyone".into()),
            reactions: None,
        };
        let xml = String::from(&e.to_element());
        let back = Entry::from_element(&xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            back.comments_on(&alice()).as_deref(),
            Some("urn:xmpp:microblog:0:comments/abc")
        );
        // A replies link that points elsewhere is not followed.
        assert_eq!(
            back.comments_on(&BareJid::new("mallory@evil.test").unwrap()),
            None
        );
    }

    #[test]
    fn what_others_send_is_read_leniently_and_bounded() {
        // Movim's shape: XHTML content, a link without rel, unknown children.
        let xml = "<entry xmlns='http://www.w3.org/2005/Atom'><title type='text'>Hi</title>\
            <content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><p>One <b>two</b></p>\
            <script>alert(1)</script></div></content><link href='https://x.test/a'/>\
            <foo xmlns='urn:other'/><published>2026-11-30T10:00:00Z</published>\
            <author><uri>not-a-jid</uri></author></entry>";
        let e = Entry::from_element(&xml.parse().unwrap()).unwrap();
        assert_eq!(e.title, "Hi");
        assert_eq!(e.content, "One two\nalert(1)");
        assert_eq!(e.links[0].rel, "alternate");
        assert_eq!(e.published, Some(1_796_032_800));
        assert_eq!(e.author, None);

        let long = format!(
            "<entry xmlns='http://www.w3.org/2005/Atom'><content>{}</content></entry>",
            "x".repeat(MAX_CONTENT + 1)
        );
        assert_eq!(
            Entry::from_element(&long.parse().unwrap()),
            Err(EntryError::TooLong("content"))
        );
        let not = "<entry xmlns='urn:not-atom'/>".parse().unwrap();
        assert_eq!(Entry::from_element(&not), Err(EntryError::NotAnEntry));
    }

    #[test]
    fn reactions_ride_in_a_comment_and_movims_like_is_one() {
        let e = Entry {
            title: "👍❤️".into(),
            content: "👍❤️".into(),
            in_reply_to: Some("p1".into()),
            reactions: Some(vec!["👍".into(), "❤️".into()]),
            ..Default::default()
        };
        let xml = String::from(&e.to_element());
        assert!(xml.contains("urn:xmpp:reactions:0"), "{xml}");
        let back = Entry::from_element(&xml.parse::<Element>().unwrap()).unwrap();
        assert_eq!(back, e);
        // Words, repeats and too many are not reactions.
        let xml = format!(
            "<entry xmlns='http://www.w3.org/2005/Atom'><title>x</title>\
             <reactions xmlns='urn:xmpp:reactions:0' id='p1'><reaction>buy now</reaction>\
             <reaction>👍</reaction><reaction>👍</reaction>{}</reactions></entry>",
            "<reaction>🎉</reaction>".repeat(3)
                + &(0..40)
                    .map(|i| format!(
                        "<reaction>{}</reaction>",
                        char::from_u32(0x1F600 + i).unwrap()
                    ))
                    .collect::<String>()
        );
        let e = Entry::from_element(&xml.parse().unwrap()).unwrap();
        let set = e.reactions.unwrap();
        assert_eq!(set.len(), MAX_REACTIONS);
        assert_eq!(&set[..2], ["👍", "🎉"]);
        // Movim's like.
        let like = "<entry xmlns='http://www.w3.org/2005/Atom'><title>♥</title></entry>";
        let e = Entry::from_element(&like.parse().unwrap()).unwrap();
        assert_eq!(e.reactions, Some(vec![LIKE.to_owned()]));
        assert!(
            !is_reaction("a") && !is_reaction("") && !is_reaction("👍 👍") && is_reaction("👍🏽")
        );
    }

    #[test]
    fn a_notification_is_read_and_other_nodes_are_not() {
        let xml = "<message xmlns='jabber:client' from='alice@home.test' to='bob@home.test/x' type='headline'>\
            <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:microblog:0'>\
            <item id='p1' publisher='alice@home.test'><entry xmlns='http://www.w3.org/2005/Atom'><title>Hi</title></entry></item>\
            <item id='p2'><entry xmlns='urn:not-atom'/></item>\
            <retract id='p0'/></items></event></message>";
        let m = Message::try_from(xml.parse::<Element>().unwrap()).unwrap();
        let ev = FeedEvent::from_message(&m).unwrap();
        assert_eq!(ev.service, alice());
        assert_eq!(ev.items.len(), 1);
        assert_eq!(ev.items[0].id, "p1");
        assert_eq!(ev.items[0].publisher, Some(alice()));
        assert_eq!(ev.retracted, vec!["p0".to_owned()]);

        let other = xml.replace("urn:xmpp:microblog:0", "urn:xmpp:avatar:metadata");
        let m = Message::try_from(other.parse::<Element>().unwrap()).unwrap();
        assert_eq!(FeedEvent::from_message(&m), None);
    }

    #[test]
    fn item_ids_are_uuids() {
        let id = new_item_id();
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, new_item_id());
    }
}
