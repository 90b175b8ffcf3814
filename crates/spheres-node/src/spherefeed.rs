//! Posts for a sphere's members: they travel in the sphere's room (`spheres_xmpp::roomfeed`),
//! which only members may read, and the room says who sent each. A post or comment is
//! believed as the room's sender's, whatever its entry claims; a new version of a post or
//! comment is taken from its author only; a post is deleted by its author, a comment by its
//! author or the post's.

use serde::{Deserialize, Serialize};
use spheres_metainfo::Magnet;
use spheres_store::{CommentRow, PostRow, ShareRow, Sphere};
use spheres_xmpp::BareJid;
use spheres_xmpp::feed::{Entry, Link};
use spheres_xmpp::roomfeed::{RoomPost, RoomRetract};

use crate::Node;
use crate::api::types::PostMedia;
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;

/// A share a post shows, as its entry names it (kept in the store as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MediaRef {
    pub info_hash: String,
    pub name: String,
    pub size: u64,
    pub kind: String,
}

/// The MIME type of a file, from its name, for the kinds people attach.
fn mime_of(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "avif" => "image/avif",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "ogv" => "video/ogg",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "opus" => "audio/ogg",
        "flac" => "audio/flac",
        "wav" => "audio/wav",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// The enclosure links of a post showing `shares`: a magnet each (no tracker: members have
/// the share's announcement, and its tracker key, from the room), its name and size, and a
/// MIME type for a single file.
pub(crate) fn media_links(shares: &[ShareRow]) -> Vec<Link> {
    shares
        .iter()
        .map(|s| {
            let type_ = (s.files == 1).then(|| mime_of(&s.name)).flatten();
            enclosure(&s.info_hash, &s.name, u64::try_from(s.size).ok(), type_)
        })
        .collect()
}

/// The enclosure link of share `info_hash` named `name`: a magnet without tracker.
pub(crate) fn enclosure(
    info_hash: &str,
    name: &str,
    length: Option<u64>,
    type_: Option<&str>,
) -> Link {
    let dn = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    Link {
        rel: "enclosure".into(),
        href: format!("magnet:?xt=urn:btih:{info_hash}&dn={dn}"),
        type_: type_.map(str::to_owned),
        title: Some(name.to_owned()),
        length,
    }
}

/// The shares an entry shows: its enclosures that are magnets of a v1 info hash.
pub(crate) fn media_of(e: &Entry) -> Vec<MediaRef> {
    e.links
        .iter()
        .filter(|l| l.rel == "enclosure")
        .filter_map(|l| {
            let magnet: Magnet = l.href.parse().ok()?;
            let kind = match l.type_.as_deref().and_then(|t| t.split_once('/')) {
                Some(("image", _)) => "image",
                Some(("video", _)) => "video",
                Some(("audio", _)) => "audio",
                _ => "other",
            };
            Some(MediaRef {
                info_hash: magnet.info_hash.to_hex(),
                name: l
                    .title
                    .clone()
                    .or(magnet.display_name)
                    .unwrap_or_else(|| magnet.info_hash.to_hex()),
                size: l.length.unwrap_or(0),
                kind: kind.to_owned(),
            })
        })
        .collect()
}

/// The store's JSON for `media`.
pub(crate) fn media_json(media: &[MediaRef]) -> String {
    serde_json::to_string(media).unwrap_or_else(|_| "[]".into())
}

/// What the store keeps of a post's media (nothing when it cannot read it).
pub(crate) fn stored_media(json: &str) -> Vec<MediaRef> {
    serde_json::from_str(json).unwrap_or_default()
}

/// How far ahead of the room's clock a post may say it was written, in seconds: a member
/// cannot pin a post at the top of everyone's feed by dating it next year.
const AHEAD: i64 = 300;

impl Node {
    /// A post or comment `p` from `sender` in `sphere`'s room, heard at `when` (the room's
    /// time, seconds since 1970). Returns the post's row (a comment's post), or `None` when
    /// it was not taken: an id that is someone else's, a comment on a post we do not have.
    pub(crate) async fn take_sphere_post(
        &self,
        sphere: &Sphere,
        sender: &BareJid,
        p: RoomPost,
        when: i64,
    ) -> Result<Option<PostRow>, NodeError> {
        let e = &p.entry;
        let published = e.published.unwrap_or(when).min(when + AHEAD);
        let text = if e.content.is_empty() {
            e.title.clone()
        } else {
            e.content.clone()
        };
        let Some(on) = &p.on else {
            let media = media_json(&media_of(e));
            return Ok(self
                .store
                .put_post(&PostRow {
                    id: 0,
                    service: sphere.room.clone(),
                    item_id: p.id.clone(),
                    author: sender.to_string(),
                    author_name: e.author_name.clone(),
                    audience: super::feed::SPHERE.to_owned(),
                    title: e.title.clone(),
                    content: text,
                    comments_node: None,
                    published,
                    updated: e.updated.unwrap_or(published).min(when + AHEAD),
                    sphere_id: Some(sphere.id),
                    media,
                })
                .await?);
        };
        let Some(post) = self.store.post(&sphere.room, on).await? else {
            tracing::debug!(sphere = %sphere.name, "a comment on a post we do not have");
            return Ok(None);
        };
        self.store
            .put_comment(&CommentRow {
                id: 0,
                post_id: post.id,
                item_id: p.id.clone(),
                author: sender.to_string(),
                // The room says who sent it.
                verified: true,
                author_name: e.author_name.clone(),
                content: text,
                published,
                reactions: super::feed::reactions_json(e),
            })
            .await?;
        Ok(Some(post))
    }

    /// A post or comment of `sphere` taken back by `sender`.
    pub(crate) async fn take_sphere_retract(
        &self,
        sphere: &Sphere,
        sender: &BareJid,
        r: RoomRetract,
    ) -> Result<bool, NodeError> {
        let (post_id, comment) = match &r.on {
            None => (&r.id, None),
            Some(on) => (on, Some(&r.id)),
        };
        let Some(post) = self.store.post(&sphere.room, post_id).await? else {
            return Ok(false);
        };
        let by_poster = post.author == sender.as_str();
        match comment {
            None if by_poster => Ok(self
                .store
                .remove_post(&post.service, &post.item_id)
                .await?
                .is_some()),
            Some(cid) => {
                let Some(c) = self.store.comment(post.id, cid).await? else {
                    return Ok(false);
                };
                if !by_poster && c.author != sender.as_str() {
                    return Ok(false);
                }
                Ok(self.store.remove_comment(post.id, cid).await?)
            }
            None => {
                tracing::info!(sphere = %sphere.name, from = %sender, "ignoring the deletion of someone else's post");
                Ok(false)
            }
        }
    }

    /// The shares a post of `sphere` shows, as we have them there (else as the post names
    /// them).
    pub(crate) async fn post_media(
        &self,
        sphere_id: i64,
        media: &str,
    ) -> Result<Vec<PostMedia>, NodeError> {
        let mut out = Vec::new();
        for m in stored_media(media) {
            out.push(match self.store.share(sphere_id, &m.info_hash).await? {
                Some(s) => PostMedia {
                    info_hash: s.info_hash,
                    name: s.name,
                    size: u64::try_from(s.size).unwrap_or(0),
                    kind: s.media,
                    here: true,
                },
                None => PostMedia {
                    info_hash: m.info_hash,
                    name: m.name,
                    size: m.size,
                    kind: m.kind,
                    here: false,
                },
            });
        }
        Ok(out)
    }

    /// The shares of `sphere` named by `hashes`, for a post to show (each must be there).
    pub(crate) async fn shares_to_show(
        &self,
        sphere: &Sphere,
        hashes: &[String],
    ) -> Result<Vec<ShareRow>, NodeError> {
        if hashes.len() > spheres_xmpp::feed::MAX_LINKS - 2 {
            refuse!(BadInput, "a post shows 30 shares at most");
        }
        let mut out = Vec::new();
        for h in hashes {
            match self.store.share(sphere.id, h.trim()).await? {
                Some(s) => out.push(s),
                None => refuse!(
                    NotFound,
                    "{} has no share {h} (see `spheres shares {}`)",
                    sphere.name,
                    sphere.name
                ),
            }
        }
        Ok(out)
    }

    /// A sphere's post, comment or retraction from the room (live or from its archive).
    pub(crate) async fn on_sphere_feed(
        &self,
        sphere: &Sphere,
        sender: &BareJid,
        payload: Result<RoomPost, RoomRetract>,
        when: i64,
    ) {
        let taken = match payload {
            Ok(p) => self
                .take_sphere_post(sphere, sender, p, when)
                .await
                .map(|r| r.is_some()),
            Err(r) => self.take_sphere_retract(sphere, sender, r).await,
        };
        match taken {
            Ok(true) => self.emit(NodeEvent::Feed),
            Ok(false) => {}
            Err(e) => {
                tracing::info!(sphere = %sphere.name, error = %e, "a sphere's post was not taken")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(name: &str, files: i64) -> ShareRow {
        ShareRow {
            sphere_id: 1,
            info_hash: "0123456789abcdef0123456789abcdef01234567".into(),
            name: name.into(),
            size: 1_234,
            files,
            media: "image".into(),
            sharer: "lea@home.test".into(),
            magnet: "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&tr=http://secret/key/announce".into(),
            torrent: None,
            path: None,
            state: "seeding".into(),
            error: None,
            shared_at: 0,
            sealed: None,
        }
    }

    #[test]
    fn the_shares_a_post_shows_ride_as_enclosures_and_come_back() {
        let links = media_links(&[share("Fourvière & co.jpg", 1), share("Lyon", 12)]);
        // No tracker (with a member's key) in what the post carries.
        assert!(
            links.iter().all(|l| !l.href.contains("secret")),
            "{links:?}"
        );
        assert_eq!(links[0].type_.as_deref(), Some("image/jpeg"));
        assert_eq!(links[1].type_, None, "a folder has no MIME type");
        let mut entry = Entry {
            links,
            ..Default::default()
        };
        // Other links are not media.
        entry.links.push(Link {
            rel: "enclosure".into(),
            href: "https://example.test/a.jpg".into(),
            type_: Some("image/jpeg".into()),
            title: None,
            length: None,
        });
        let media = media_of(&entry);
        assert_eq!(media.len(), 2, "{media:?}");
        assert_eq!(media[0].name, "Fourvière & co.jpg");
        assert_eq!((media[0].size, media[0].kind.as_str()), (1_234, "image"));
        assert_eq!(media[1].kind, "other");
        assert_eq!(stored_media(&media_json(&media)), media);
        assert_eq!(stored_media("not json"), []);
    }
}
