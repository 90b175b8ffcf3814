//! The feed: posts and comments on standard XMPP (XEP-0277 over PEP, see
//! `spheres_xmpp::feed`), ours and our contacts', kept in the store as a cache of what their
//! accounts hold.
//!
//! Who may put what here: a post is believed only from the account that holds it (the
//! server says whose node notified us) and only if that account is ours or a contact's;
//! a comment only on the comments node its post names, with the server's `publisher` as its
//! author (or, fetched, its own claim, marked unverified); under our own posts for
//! contacts, only our contacts' comments. Everything read is bounded (entries by `spheres_xmpp::feed`, history by
//! [`HISTORY`]).

use spheres_store::{CommentRow, PostRow, Sphere};
use spheres_xmpp::BareJid;
use spheres_xmpp::contacts::Subscription;
use spheres_xmpp::feed::{self, Access, Entry, FeedEvent, Item};
use spheres_xmpp::protocol::xml_safe;
use spheres_xmpp::roomfeed::{RoomPost, RoomRetract};

use crate::Node;
use crate::api::types;
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::spherefeed::{media_links, stored_media};

/// Posts read from each account when the node comes online.
const HISTORY: u32 = 20;
/// The longest post or comment we write, in characters.
const MAX_TEXT: usize = 10_000;
/// How old a post may be, in seconds, for its comments to be fetched and followed when it is
/// read (a month).
const FOLLOW_COMMENTS_FOR: i64 = 30 * 24 * 3600;
/// Posts a feed page lists at most.
const PAGE: i64 = 50;

/// Who reads a post on our account (a sphere's posts are in its room: [`Target::Sphere`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// Our contacts.
    Contacts,
    /// Anyone with an XMPP address.
    Everyone,
    /// Anyone with an XMPP address, and the whole web: pages on the node's HTTP address.
    Public,
}

/// The audience of a post that travels in a sphere's room, as the store and the API say it.
pub(crate) const SPHERE: &str = "sphere";

/// Where a post goes.
enum Target {
    /// Our account (XEP-0277 over PEP).
    Account(Audience),
    /// A sphere's room: its members only.
    Sphere(Sphere),
}

impl Audience {
    pub(crate) fn parse(s: &str) -> Result<Audience, NodeError> {
        match s {
            "contacts" => Ok(Audience::Contacts),
            "everyone" => Ok(Audience::Everyone),
            "public" => Ok(Audience::Public),
            other => Err(NodeError::BadInput(format!(
                "{other:?} is not an audience: contacts, everyone, public or one of your spheres"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Audience::Contacts => "contacts",
            Audience::Everyone => "everyone",
            Audience::Public => "public",
        }
    }

    fn access(self) -> Access {
        match self {
            Audience::Contacts => Access::Presence,
            Audience::Everyone | Audience::Public => Access::Open,
        }
    }

    /// Whether it goes on the open node too.
    fn open(self) -> bool {
        self != Audience::Contacts
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn checked_text(text: &str) -> Result<&str, NodeError> {
    let text = text.trim();
    if text.is_empty() {
        refuse!(BadInput, "nothing to post: write a few words");
    }
    if text.chars().count() > MAX_TEXT {
        refuse!(BadInput, "that is too long (10,000 characters at most)");
    }
    Ok(text)
}

/// The post an item is, as the store keeps it; `audience` as the node it came from says,
/// unless the poster said who it is for.
fn post_row(service: &BareJid, item: &Item, audience: &str) -> PostRow {
    let e = &item.entry;
    let audience = match e.audience.as_deref() {
        Some(a @ ("contacts" | "everyone" | "public")) => a,
        _ => audience,
    };
    let published = e.published.or(e.updated).unwrap_or_else(now);
    PostRow {
        id: 0,
        service: service.to_string(),
        item_id: item.id.clone(),
        // The account that holds it is its author, whatever the entry claims.
        author: service.to_string(),
        author_name: e.author_name.clone(),
        audience: audience.to_owned(),
        title: e.title.clone(),
        content: text_of(e),
        comments_node: e.comments_on(service),
        published,
        updated: e.updated.unwrap_or(published),
        sphere_id: None,
        media: "[]".into(),
    }
}

fn api_post(
    p: PostRow,
    comments: i64,
    sphere: Option<String>,
    (media, reactions): (Vec<types::PostMedia>, Vec<types::Reaction>),
    me: &BareJid,
) -> types::Post {
    types::Post {
        rich: types::rich(&p.content),
        media,
        reactions,
        mine: p.author == me.as_str(),
        id: p.item_id,
        author: p.author,
        author_name: p.author_name,
        audience: p.audience,
        sphere,
        text: p.content,
        published: p.published,
        updated: p.updated,
        comments,
    }
}

/// The store's JSON for an entry's reactions, when it is a reaction.
pub(crate) fn reactions_json(e: &Entry) -> Option<String> {
    e.reactions
        .as_ref()
        .and_then(|r| serde_json::to_string(r).ok())
}

/// The text of an entry: its content, else its title.
pub(crate) fn text_of(e: &Entry) -> String {
    if e.content.is_empty() {
        e.title.clone()
    } else {
        e.content.clone()
    }
}

impl Node {
    /// Whether posts from `who` belong in our feed: ours and our contacts' (those whose
    /// presence we receive).
    async fn follows(&self, who: &BareJid) -> Result<bool, NodeError> {
        if *who == self.me {
            return Ok(true);
        }
        Ok(self.xmpp.roster().await?.iter().any(|i| {
            i.jid == *who && matches!(i.subscription, Subscription::To | Subscription::Both)
        }))
    }

    /// Where a public post is on the web (`alternate`, as Movim marks public posts), when
    /// the node serves HTTP.
    fn public_link(&self, audience: Audience, id: &str) -> Option<feed::Link> {
        if audience != Audience::Public {
            return None;
        }
        let base = self.public_pages()?;
        Some(feed::Link {
            rel: "alternate".into(),
            href: format!("{base}posts/{id}"),
            type_: Some("text/html".into()),
            title: None,
            length: None,
        })
    }

    /// The address of our public pages (`http://HOST:PORT/@USER/`), when the node serves HTTP.
    pub(crate) fn public_pages(&self) -> Option<String> {
        let user = self.me.node()?;
        self.web_address().map(|w| format!("{}/@{user}/", w.url))
    }

    /// Our posts for the public web, newest first, if `handle` (`@USER`) is ours: the name to
    /// show, our address and the posts; `None` for anyone else.
    pub(crate) async fn public_posts(
        &self,
        handle: &str,
    ) -> Result<Option<(String, String, Vec<PostRow>)>, NodeError> {
        let ours = handle
            .strip_prefix('@')
            .is_some_and(|u| self.me.node().is_some_and(|n| n.as_str() == u));
        if !ours {
            return Ok(None);
        }
        let posts = self
            .store
            .feed(None, Some(self.me.as_str()), Some("public"), PAGE)
            .await?
            .into_iter()
            .map(|r| r.post)
            .collect();
        Ok(Some((self.name.clone(), self.me.to_string(), posts)))
    }

    /// An entry of ours saying `text`, now.
    pub(crate) fn entry(&self, text: &str) -> Entry {
        let at = now();
        // Control characters cannot travel in XML.
        let text = xml_safe(text);
        Entry {
            title: text.clone(),
            content: text,
            published: Some(at),
            updated: Some(at),
            author_name: Some(self.name.clone()),
            author: Some(self.me.clone()),
            ..Default::default()
        }
    }

    /// Where `to` (`contacts`, `everyone`, `public`, a sphere's name or `sphere:NAME`) says
    /// a post goes.
    async fn target(&self, to: &str) -> Result<Target, NodeError> {
        let to = to.trim();
        if let Some(name) = to.strip_prefix("sphere:") {
            return Ok(Target::Sphere(self.sphere_named(name).await?));
        }
        match Audience::parse(to) {
            Ok(a) => Ok(Target::Account(a)),
            Err(e) => match self.store.sphere(to).await? {
                Some(s) => Ok(Target::Sphere(s)),
                None => Err(e),
            },
        }
    }

    /// Posts `text` for `to` (an audience, or a sphere), showing `shares` (info hashes of
    /// the sphere's shares); returns the post's id.
    pub async fn post(&self, text: &str, to: &str, shares: &[String]) -> Result<String, NodeError> {
        let text = checked_text(text)?;
        let audience = match self.target(to).await? {
            Target::Account(_) if !shares.is_empty() => refuse!(
                BadInput,
                "photos and videos go with posts to a sphere for now: post to one (--to SPHERE) \
                 and its members get the files peer to peer"
            ),
            Target::Account(a) => a,
            Target::Sphere(sphere) => {
                let media = media_links(&self.shares_to_show(&sphere, shares).await?);
                let id = feed::new_item_id();
                self.post_in_sphere(&sphere, &id, None, text, None, media)
                    .await?;
                return Ok(id);
            }
        };
        let id = feed::new_item_id();
        let comments = feed::comments_node(&id);
        // The comments node first, so the post's link leads somewhere.
        self.xmpp
            .create_comments_node(&comments, audience.access())
            .await?;
        // Told of comments as they come.
        if let Err(e) = self.xmpp.subscribe(&self.me, &comments).await {
            tracing::info!(error = %e, "comments under the new post will show after a restart");
        }
        self.publish_post(&id, text, audience, None).await?;
        Ok(id)
    }

    /// Publishes post `id` of ours again (from an export) on this account: its comments node
    /// first, then the post, first published at `published`.
    pub(crate) async fn republish_on_account(
        &self,
        id: &str,
        text: &str,
        audience: Audience,
        published: i64,
    ) -> Result<(), NodeError> {
        let text = checked_text(text)?;
        self.xmpp
            .create_comments_node(&feed::comments_node(id), audience.access())
            .await?;
        if let Err(e) = self
            .xmpp
            .subscribe(&self.me, &feed::comments_node(id))
            .await
        {
            tracing::info!(error = %e, "comments under an imported post will show after a restart");
        }
        self.publish_post(id, text, audience, Some(published)).await
    }

    /// Changes the text of one of our posts, for everyone who could read it (a new version
    /// of the same item: same id, first published when it was, updated now).
    pub async fn edit_post(&self, id: &str, text: &str) -> Result<(), NodeError> {
        let text = checked_text(text)?;
        let post = self.own_post(id, "change").await?;
        if let Some(sphere) = self.sphere_of(&post).await? {
            // The same shares as before, those still there.
            let mut kept = Vec::new();
            for m in stored_media(&post.media) {
                kept.extend(self.store.share(sphere.id, &m.info_hash).await?);
            }
            let media = media_links(&kept);
            return self
                .post_in_sphere(
                    &sphere,
                    &post.item_id,
                    None,
                    text,
                    Some(post.published),
                    media,
                )
                .await
                .map(drop);
        }
        let audience = Audience::parse(&post.audience)?;
        self.publish_post(&post.item_id, text, audience, Some(post.published))
            .await
    }

    /// Publishes post `id` of ours saying `text` for `audience` (first published at
    /// `published`, now when `None`), and keeps it.
    async fn publish_post(
        &self,
        id: &str,
        text: &str,
        audience: Audience,
        published: Option<i64>,
    ) -> Result<(), NodeError> {
        let comments = feed::comments_node(id);
        let mut entry = Entry {
            id: Some(format!(
                "xmpp:{}?;node={};item={id}",
                self.me,
                feed::MICROBLOG
            )),
            links: [
                Some(feed::replies_link(&self.me, &comments)),
                self.public_link(audience, id),
            ]
            .into_iter()
            .flatten()
            .collect(),
            audience: Some(audience.as_str().to_owned()),
            ..self.entry(text)
        };
        if published.is_some() {
            entry.published = published;
        }
        // Contacts read every post on the standard node; a wider one is also on the open one.
        self.xmpp
            .publish(None, feed::MICROBLOG, id, &entry, Access::Presence, false)
            .await?;
        if audience.open() {
            self.xmpp
                .publish(None, feed::EVERYONE, id, &entry, Access::Open, false)
                .await?;
        }
        let item = Item {
            id: id.to_owned(),
            publisher: Some(self.me.clone()),
            entry,
        };
        self.store
            .put_post(&post_row(&self.me, &item, audience.as_str()))
            .await?;
        self.emit(NodeEvent::Feed);
        Ok(())
    }

    /// The sphere a post was for, when it was for one (refused when we are no longer in it).
    async fn sphere_of(&self, post: &PostRow) -> Result<Option<Sphere>, NodeError> {
        if post.sphere_id.is_none() {
            return Ok(None);
        }
        match self.store.sphere_by_room(&post.service).await? {
            Some(s) => Ok(Some(s)),
            None => refuse!(NotFound, "that post's sphere is gone"),
        }
    }

    /// Sends post `id` (a comment under post `on` when given) saying `text` and showing
    /// `media` to a sphere's room, and keeps it; `published`: when it was first (now when
    /// `None`). Returns the post's row (for a comment, its post's).
    async fn post_in_sphere(
        &self,
        sphere: &Sphere,
        id: &str,
        on: Option<&PostRow>,
        text: &str,
        published: Option<i64>,
        media: Vec<feed::Link>,
    ) -> Result<PostRow, NodeError> {
        let mut entry = Entry {
            links: media,
            audience: Some(SPHERE.to_owned()),
            in_reply_to: on.map(|p| p.item_id.clone()),
            ..self.entry(text)
        };
        if published.is_some() {
            entry.published = published;
        }
        self.send_in_sphere(sphere, id, on, entry).await
    }

    /// Sends `entry` as post `id` (a comment under post `on` when given) to a sphere's room,
    /// and keeps it. Returns the post's row (for a comment, its post's).
    pub(crate) async fn send_in_sphere(
        &self,
        sphere: &Sphere,
        id: &str,
        on: Option<&PostRow>,
        entry: Entry,
    ) -> Result<PostRow, NodeError> {
        let room = BareJid::new(&sphere.room)?;
        let post = RoomPost {
            id: id.to_owned(),
            on: on.map(|p| p.item_id.clone()),
            entry,
        };
        self.send_in_room(sphere, post.clone().into_message(room, &self.nick))
            .await?;
        let me = self.me.clone();
        match self.take_sphere_post(sphere, &me, post, now()).await? {
            Some(row) => {
                self.emit(NodeEvent::Feed);
                Ok(row)
            }
            None => refuse!(Forbidden, "a post of that id is someone else's"),
        }
    }

    /// Our post with item id `id`, for us to `verb` (someone else's is refused, in words).
    async fn own_post(&self, id: &str, verb: &str) -> Result<PostRow, NodeError> {
        let post = self.post_by_id(id).await?;
        if post.author != self.me.as_str() {
            refuse!(
                Forbidden,
                "that post is {}'s: only they can {verb} it",
                post.author
            );
        }
        Ok(post)
    }

    /// The post with item id `id`: ours if we have one of that id, else the newest.
    pub(crate) async fn post_by_id(&self, id: &str) -> Result<PostRow, NodeError> {
        match self
            .store
            .posts_by_item(id.trim(), self.me.as_str())
            .await?
            .into_iter()
            .next()
        {
            Some(p) => Ok(p),
            None => refuse!(NotFound, "no post {id} in your feed (see `spheres feed`)"),
        }
    }

    /// Deletes one of our posts, for everyone who could read it.
    pub async fn delete_post(&self, id: &str) -> Result<(), NodeError> {
        let post = self.own_post(id, "delete").await?;
        if let Some(sphere) = self.sphere_of(&post).await? {
            let retract = RoomRetract {
                id: post.item_id.clone(),
                on: None,
            };
            self.send_in_room(
                &sphere,
                retract.into_message(BareJid::new(&sphere.room)?, &self.nick),
            )
            .await?;
            self.store.remove_post(&post.service, &post.item_id).await?;
            self.emit(NodeEvent::Feed);
            return Ok(());
        }
        self.xmpp
            .retract(None, feed::MICROBLOG, &post.item_id)
            .await?;
        if Audience::parse(&post.audience).is_ok_and(Audience::open) {
            self.xmpp
                .retract(None, feed::EVERYONE, &post.item_id)
                .await?;
        }
        self.store.remove_post(&post.service, &post.item_id).await?;
        self.emit(NodeEvent::Feed);
        Ok(())
    }

    /// The feed, newest first: a page of `PAGE` posts published before `before`, of
    /// `author` alone when given.
    pub async fn feed(
        &self,
        before: Option<i64>,
        author: Option<&str>,
    ) -> Result<Vec<types::Post>, NodeError> {
        let author = author
            .map(crate::chat::address)
            .transpose()?
            .map(|a| a.to_string());
        let mut out = Vec::new();
        for r in self
            .store
            .feed(before, author.as_deref(), None, PAGE)
            .await?
        {
            let media = match r.post.sphere_id {
                Some(sphere) => self.post_media(sphere, &r.post.media).await?,
                None => Vec::new(),
            };
            let reactions = self.reactions_to(&r.post).await?;
            out.push(api_post(
                r.post,
                r.comment_count,
                r.sphere,
                (media, reactions),
                &self.me,
            ));
        }
        Ok(out)
    }

    /// What `who` posts that we may read, from their account (not only what we follow):
    /// their contacts-only posts when we are a contact, and those for everyone.
    pub async fn posts_of(&self, who: &str) -> Result<Vec<types::Post>, NodeError> {
        let who = crate::chat::address(who)?;
        let mut out = Vec::new();
        // Their own node first: it holds all we may read, when we are a contact.
        let (items, audience) = match self.xmpp.items(&who, feed::MICROBLOG, Some(HISTORY)).await {
            Ok(items) => (items, Audience::Contacts),
            // Not a contact: what they post for everyone, if they do (Prosody refuses a
            // node that is not there as it refuses one we may not read).
            Err(_) => match self.xmpp.items(&who, feed::EVERYONE, Some(HISTORY)).await {
                Ok(items) => (items, Audience::Everyone),
                Err(spheres_xmpp::XmppError::Refused(_)) => (Vec::new(), Audience::Everyone),
                Err(e) => return Err(e.into()),
            },
        };
        for item in items {
            let row = post_row(&who, &item, audience.as_str());
            out.push(api_post(row, 0, None, (Vec::new(), Vec::new()), &self.me));
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.published));
        Ok(out)
    }

    /// Comments under a post, oldest first.
    pub async fn comments(&self, id: &str) -> Result<Vec<types::Comment>, NodeError> {
        let post = self.post_by_id(id).await?;
        Ok(self
            .store
            .comments(post.id)
            .await?
            .into_iter()
            // Reactions are counted on the post.
            .filter(|c| c.reactions.is_none())
            .map(|c| types::Comment {
                mine: c.author == self.me.as_str(),
                verified: c.verified,
                id: c.item_id,
                author: c.author,
                author_name: c.author_name,
                rich: types::rich(&c.content),
                text: c.content,
                published: c.published,
            })
            .collect())
    }

    /// Comments `text` under post `id`; returns the comment's id.
    pub async fn comment(&self, id: &str, text: &str) -> Result<String, NodeError> {
        let text = checked_text(text)?;
        let post = self.post_by_id(id).await?;
        let entry = Entry {
            in_reply_to: Some(post.item_id.clone()),
            ..self.entry(text)
        };
        let cid = feed::new_item_id();
        self.publish_comment(&post, &cid, entry).await?;
        Ok(cid)
    }

    /// Publishes `entry` as comment `cid` under `post` (in its sphere's room, or on its
    /// comments node), and keeps it.
    pub(crate) async fn publish_comment(
        &self,
        post: &PostRow,
        cid: &str,
        entry: Entry,
    ) -> Result<(), NodeError> {
        if let Some(sphere) = self.sphere_of(post).await? {
            self.send_in_sphere(&sphere, cid, Some(post), entry).await?;
            return Ok(());
        }
        let (Some(node), Ok(service)) = (post.comments_node.clone(), BareJid::new(&post.service))
        else {
            refuse!(Forbidden, "that post takes no comments");
        };
        let on = (service != self.me).then_some(&service);
        self.xmpp
            .publish(on, &node, cid, &entry, Access::Presence, true)
            .await?;
        self.store
            .put_comment(&CommentRow {
                id: 0,
                post_id: post.id,
                item_id: cid.to_owned(),
                author: self.me.to_string(),
                verified: true,
                author_name: Some(self.name.clone()),
                content: text_of(&entry),
                published: entry.published.unwrap_or_else(now),
                reactions: reactions_json(&entry),
            })
            .await?;
        self.emit(NodeEvent::Feed);
        Ok(())
    }

    /// Takes back comment `cid` of ours under `post`, for everyone who could read it.
    pub(crate) async fn retract_comment(&self, post: &PostRow, cid: &str) -> Result<(), NodeError> {
        if let Some(sphere) = self.sphere_of(post).await? {
            let retract = RoomRetract {
                id: cid.to_owned(),
                on: Some(post.item_id.clone()),
            };
            self.send_in_room(
                &sphere,
                retract.into_message(BareJid::new(&sphere.room)?, &self.nick),
            )
            .await?;
        } else if let (Some(node), Ok(service)) =
            (post.comments_node.as_deref(), BareJid::new(&post.service))
        {
            let on = (service != self.me).then_some(&service);
            self.xmpp.retract(on, node, cid).await?;
        }
        self.store.remove_comment(post.id, cid).await?;
        self.emit(NodeEvent::Feed);
        Ok(())
    }

    /// What the server told us of a feed node.
    pub(crate) async fn on_feed(&self, ev: FeedEvent) {
        if let Err(e) = self.take_feed(ev).await {
            tracing::info!(error = %e, "a feed notification was not taken");
        }
    }

    async fn take_feed(&self, ev: FeedEvent) -> Result<(), NodeError> {
        if !self.follows(&ev.service).await? {
            tracing::debug!(from = %ev.service, "ignoring posts from someone we do not follow");
            return Ok(());
        }
        let changed = if ev.node == feed::MICROBLOG || ev.node == feed::EVERYONE {
            self.take_posts(&ev.service, &ev.node, &ev.items, &ev.retracted)
                .await?
        } else {
            self.take_comments(&ev.service, &ev.node, &ev.items, &ev.retracted)
                .await?
        };
        if changed {
            self.emit(NodeEvent::Feed);
        }
        Ok(())
    }

    /// Posts of `service` from `node`: recorded (and their comments fetched and followed),
    /// or forgotten.
    async fn take_posts(
        &self,
        service: &BareJid,
        node: &str,
        items: &[Item],
        retracted: &[String],
    ) -> Result<bool, NodeError> {
        let audience = if node == feed::EVERYONE {
            Audience::Everyone
        } else {
            Audience::Contacts
        };
        let mut changed = false;
        for item in items {
            let Some(row) = self
                .store
                .put_post(&post_row(service, item, audience.as_str()))
                .await?
            else {
                continue;
            };
            changed = true;
            // Comments are followed for recent posts only: this runs for every post of
            // every contact at each login.
            if let Some(comments) = &row.comments_node
                && row.published > now() - FOLLOW_COMMENTS_FOR
            {
                self.follow_comments(service, comments).await;
            }
        }
        for id in retracted {
            changed |= self
                .store
                .remove_post(service.as_str(), id)
                .await?
                .is_some();
        }
        Ok(changed)
    }

    /// Reads a post's comments and asks to be told of new ones.
    async fn follow_comments(&self, service: &BareJid, node: &str) {
        if let Err(e) = self.xmpp.subscribe(service, node).await {
            tracing::debug!(error = %e, node, "cannot follow comments");
        }
        match self.xmpp.items(service, node, Some(HISTORY * 5)).await {
            Ok(items) => {
                if let Err(e) = self.take_comments(service, node, &items, &[]).await {
                    tracing::info!(error = %e, node, "comments not kept");
                }
            }
            Err(e) => tracing::debug!(error = %e, node, "cannot read comments"),
        }
    }

    /// Comments on `node` of `service`'s account, for the post that names that node. A
    /// comment's author is the server's `publisher` when it says (notifications), else what
    /// the comment claims (answers to a fetch, where Prosody leaves the publisher out), kept
    /// as unverified. Under our own post for contacts, a stranger's comment (anyone may write
    /// on a comments node) is not kept, and is taken off the node when the server says it is
    /// theirs.
    async fn take_comments(
        &self,
        service: &BareJid,
        node: &str,
        items: &[Item],
        retracted: &[String],
    ) -> Result<bool, NodeError> {
        let Some(post) = self.store.post_by_comments(service.as_str(), node).await? else {
            return Ok(false);
        };
        let guarded = *service == self.me && post.audience == Audience::Contacts.as_str();
        let mut changed = false;
        for item in items {
            let e = &item.entry;
            let (author, verified) = match (&item.publisher, &e.author) {
                (Some(p), _) => (p.clone(), true),
                (None, Some(claimed)) => (claimed.clone(), false),
                (None, None) => continue,
            };
            if guarded && !self.follows(&author).await? {
                tracing::info!(%author, node, "a comment from a stranger under a post for contacts");
                if verified && let Err(e) = self.xmpp.retract(None, node, &item.id).await {
                    tracing::info!(error = %e, "the stranger's comment stays on the server");
                }
                continue;
            }
            changed |= self
                .store
                .put_comment(&CommentRow {
                    id: 0,
                    post_id: post.id,
                    item_id: item.id.clone(),
                    author: author.to_string(),
                    verified,
                    author_name: e.author_name.clone(),
                    content: text_of(e),
                    published: e.published.unwrap_or_else(now),
                    reactions: reactions_json(e),
                })
                .await?;
        }
        for id in retracted {
            changed |= self.store.remove_comment(post.id, id).await?;
        }
        Ok(changed)
    }

    /// After login: our own posts and our contacts' latest, with their comments.
    pub(crate) async fn sync_feed(&self) {
        let mut people = vec![self.me.clone()];
        match self.xmpp.roster().await {
            Ok(items) => people.extend(
                items
                    .into_iter()
                    .filter(|i| matches!(i.subscription, Subscription::To | Subscription::Both))
                    .map(|i| i.jid),
            ),
            Err(e) => tracing::info!(error = %e, "no roster: the feed shows our posts only"),
        }
        for who in people {
            match self.xmpp.items(&who, feed::MICROBLOG, Some(HISTORY)).await {
                Ok(items) => {
                    if let Err(e) = self.take_posts(&who, feed::MICROBLOG, &items, &[]).await {
                        tracing::info!(error = %e, %who, "posts not kept");
                    }
                }
                Err(e) => tracing::debug!(error = %e, %who, "cannot read posts"),
            }
        }
        self.emit(NodeEvent::Feed);
    }
}
