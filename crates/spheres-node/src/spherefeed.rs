//! Posts for a sphere's members: they travel in the sphere's room (`spheres_xmpp::roomfeed`),
//! which only members may read, and the room says who sent each. A post or comment is
//! believed as the room's sender's, whatever its entry claims; a new version of a post or
//! comment is taken from its author only; a post is deleted by its author, a comment by its
//! author or the post's.

use spheres_store::{CommentRow, PostRow, Sphere};
use spheres_xmpp::BareJid;
use spheres_xmpp::roomfeed::{RoomPost, RoomRetract};

use crate::Node;
use crate::error::NodeError;
use crate::events::NodeEvent;

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
