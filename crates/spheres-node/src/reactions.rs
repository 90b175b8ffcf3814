//! Reactions to posts: a few emojis from one person under a post, as a comment that says only
//! that (XEP-0444's `<reactions>` inside the comment's entry, which Movim and other XEP-0277
//! clients show as a short comment; Movim's "♥" like is read as one). Each person has one
//! reaction item per post, whose id comes from their address, so a new set replaces the
//! last; the last one taken back retracts it (or, on someone else's account, where the server
//! lets only its owner retract, leaves an empty set).

use sha1::{Digest, Sha1};
use spheres_store::PostRow;
use spheres_xmpp::feed::{self, Entry, MAX_REACTIONS};

use crate::Node;
use crate::api::types;
use crate::error::{NodeError, refuse};

/// The emojis of a stored reaction (none for a comment).
fn set_of(json: Option<&str>) -> Option<Vec<String>> {
    json.and_then(|r| serde_json::from_str(r).ok())
}

impl Node {
    /// The id of our reaction item under any post.
    fn reaction_id(&self) -> String {
        let digest = hex::encode(Sha1::digest(self.me.as_str().as_bytes()));
        format!("reaction-{}", &digest[..20])
    }

    /// Adds `emoji` to our reactions to post `id`, or takes it away when it is there;
    /// returns the post's reactions.
    pub async fn react(&self, id: &str, emoji: &str) -> Result<Vec<types::Reaction>, NodeError> {
        let emoji = emoji.trim();
        if !feed::is_reaction(emoji) {
            refuse!(
                BadInput,
                "{emoji:?} is not a reaction: give one emoji, such as 👍"
            );
        }
        let post = self.post_by_id(id).await?;
        let rid = self.reaction_id();
        let mut set = match self.store.comment(post.id, &rid).await? {
            Some(c) => set_of(c.reactions.as_deref()).unwrap_or_default(),
            None => Vec::new(),
        };
        match set.iter().position(|e| e == emoji) {
            Some(i) => {
                set.remove(i);
            }
            None if set.len() >= MAX_REACTIONS => {
                refuse!(BadInput, "that is enough reactions to one post")
            }
            None => set.push(emoji.to_owned()),
        }
        // Servers let only a node's owner take items back (Prosody refuses a publisher): under
        // someone else's post on their account, an empty set stands for none.
        let theirs = post.sphere_id.is_none() && post.service != self.me.as_str();
        if set.is_empty() && !theirs {
            self.retract_comment(&post, &rid).await?;
        } else {
            let entry = Entry {
                in_reply_to: Some(post.item_id.clone()),
                reactions: Some(set.clone()),
                ..self.entry(&set.concat())
            };
            self.publish_comment(&post, &rid, entry).await?;
        }
        self.reactions_to(&post).await
    }

    /// The reactions to a post: each emoji, how many people, whether we are one of them;
    /// the most given first.
    pub(crate) async fn reactions_to(
        &self,
        post: &PostRow,
    ) -> Result<Vec<types::Reaction>, NodeError> {
        let mut out: Vec<types::Reaction> = Vec::new();
        for c in self.store.comments(post.id).await? {
            let Some(set) = set_of(c.reactions.as_deref()) else {
                continue;
            };
            let mine = c.author == self.me.as_str();
            for emoji in set.into_iter().take(MAX_REACTIONS) {
                match out.iter_mut().find(|r| r.emoji == emoji) {
                    Some(r) => {
                        r.count += 1;
                        r.mine |= mine;
                    }
                    None => out.push(types::Reaction {
                        emoji,
                        count: 1,
                        mine,
                    }),
                }
            }
        }
        // (Stable: among equals, the first given first.)
        out.sort_by_key(|r| std::cmp::Reverse(r.count));
        Ok(out)
    }
}
