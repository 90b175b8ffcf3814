//! Keyless seeders of encrypted spheres (docs/decisions/0016): a member's node that holds a
//! sphere's ciphertext and serves it to the members' nodes, without the sphere's keys.
//!
//! The owner's node never adds a seeder's devices to the sphere's group. It gives the
//! seeders each sealed share's torrent in clear in the room (`<holds/>`): a sealed torrent
//! names nothing, so this tells the server and the seeder the share's size and no more. The
//! seeder's node fetches those torrents as they are (the bytes on its disk are ciphertext),
//! keeps them out of the sphere's folder, and seeds them to members, who decrypt as they
//! write and check every piece against hashes that came inside the group's messages.

use std::sync::Arc;

use anyhow::{Result, bail};
use spheres_store::Sphere;
use spheres_xmpp::BareJid;
use spheres_xmpp::protocol::{Hold, Holds, Share, Unhold, Withdraw};

use crate::rooms::Sender;
use crate::{Node, lock};

/// What a held share is called on the seeder's node: the sealed torrent's own name.
const HELD_NAME: &str = "sealed";

impl Node {
    /// The keyless seeders of a sphere we own.
    async fn seeders(&self, sphere: &Sphere) -> Vec<String> {
        if !sphere.owned || !sphere.encrypted {
            return Vec::new();
        }
        self.store
            .members(sphere.id)
            .await
            .map(|m| m.into_iter().filter(|m| m.seeder).map(|m| m.jid).collect())
            .unwrap_or_default()
    }

    /// Gives a sphere's keyless seeders the sealed torrents of `shares` (those that are
    /// sealed), in clear in its room. Nothing is sent when the sphere has no seeder.
    pub(crate) async fn send_holds(&self, sphere: &Sphere, shares: &[Share]) {
        if self.seeders(sphere).await.is_empty() {
            return;
        }
        let holds: Vec<Hold> = shares
            .iter()
            .filter(|s| s.sealed.is_some())
            .map(|s| Hold {
                id: s.id.clone(),
                size: s.size,
                // Its info dictionary alone: the trackers' announce URLs carry the sharer's own
                // key, and the rest (when it was made, by what) is nobody else's business.
                torrent: s.torrent.as_deref().and_then(info_only),
            })
            .collect();
        let weight = |h: &Hold| h.torrent.as_ref().map_or(0, |t| t.len() * 4 / 3) + 128;
        for holds in crate::sealed::chunks(holds, weight) {
            let holds = Holds {
                holds,
                ..Holds::default()
            };
            if let Err(e) = self.tell_seeders(sphere, holds).await {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot give the seeders a sealed torrent");
                return;
            }
        }
    }

    /// Tells a sphere's keyless seeders that a share was withdrawn: they stop serving it and
    /// delete its ciphertext (they cannot read the withdrawal itself).
    pub(crate) async fn send_unholds(&self, sphere: &Sphere, info_hash: &str) {
        if self.seeders(sphere).await.is_empty() {
            return;
        }
        let unholds = Holds {
            unholds: vec![Unhold {
                id: info_hash.to_owned(),
            }],
            ..Holds::default()
        };
        if let Err(e) = self.tell_seeders(sphere, unholds).await {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot tell the seeders of a withdrawal");
        }
    }

    async fn tell_seeders(&self, sphere: &Sphere, holds: Holds) -> Result<()> {
        let room = BareJid::new(&sphere.room)?;
        let mut msg =
            spheres_xmpp::sealed::chat_line("🔒 encrypted files, for the sphere's seeders")
                .with_payload(holds);
        msg.to = Some(room.into());
        self.xmpp.send(msg).await?;
        Ok(())
    }

    /// Gives `seeder` (a keyless seeder of a sphere we own) every sealed torrent of the
    /// sphere, once after this node starts (when invited, or at their first visit): the room's
    /// archive keeps them for the seeder's catch-up, and each new one follows by itself.
    pub(crate) async fn hold_all_for(&self, sphere: &Sphere, seeder: &BareJid) {
        if !lock(&self.held_for).insert((sphere.id, seeder.to_string())) {
            return;
        }
        if let Some(shares) = self.live_shares(sphere).await {
            self.send_holds(sphere, &shares).await;
        }
    }

    /// Sealed torrents from a sphere's room: a keyless seeder of it fetches and seeds each, as
    /// it is, and lets go of those withdrawn; anyone else ignores them.
    pub(crate) async fn on_holds(
        self: &Arc<Self>,
        sphere: &Sphere,
        holds: Holds,
        sender: &Sender,
    ) -> Result<()> {
        if !sphere.holding {
            return Ok(());
        }
        if !sender.owner {
            bail!(
                "{} is not the sphere's owner; sealed torrents from them are ignored",
                sender.jid
            );
        }
        for u in holds.unholds {
            let w = Withdraw { id: u.id };
            if let Err(e) = self.on_withdraw(sphere, w, sender).await {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot let a sealed torrent go");
            }
        }
        for h in holds.holds {
            let share = held_share(h, &sender.jid);
            let name = share.id.clone();
            if let Err(e) = self.on_share(sphere, share, sender).await {
                tracing::warn!(sphere = %sphere.name, share = name, error = %e, "cannot hold a sealed torrent");
            }
        }
        Ok(())
    }
}

/// A torrent reduced to its info dictionary (the same infohash, nothing else said).
fn info_only(torrent: &[u8]) -> Option<Vec<u8>> {
    let meta = spheres_metainfo::Metainfo::from_bytes(torrent).ok()?;
    let mut out = b"d4:info".to_vec();
    out.extend_from_slice(&meta.info_bytes);
    out.push(b'e');
    Some(out)
}

/// A sealed torrent to hold, as the share the seeder's node records and fetches: named as the
/// torrent names itself, one file, from the owner. What the torrent holds is checked against
/// this like any announcement's (`check_announced`), and it must be private (see `on_share`).
pub(crate) fn held_share(h: Hold, owner: &BareJid) -> Share {
    Share {
        magnet: format!("magnet:?xt=urn:btih:{}", h.id),
        id: h.id,
        name: HELD_NAME.to_owned(),
        size: h.size,
        files: 1,
        media: "other".to_owned(),
        sharer: owner.clone(),
        torrent: h.torrent,
        sealed: None,
    }
}
