//! Encrypted spheres: the sphere's chat, announcements and posts go through its MLS group
//! (`spheres-mls`), carried in its room as `<mls/>` messages (`spheres_xmpp::sealed`), so
//! the server and its archive hold ciphertext and a body that says "encrypted".
//!
//! - This node is one MLS device (its keys saved in the store after every change); its key
//!   package is published on its account, once, and again when it is a month old.
//! - The owner's node adds a member's devices when it invites them and whenever they come
//!   into the room (their key package may come later than the invitation), and takes them
//!   out when they are removed. Only the owner's commits and welcomes are taken.
//! - What comes out of an opened message is read by the same code as the clear protocol,
//!   under the sender MLS authenticated, who must be the occupant the room says sent it.
//!
//! Known limits (see docs/decisions/0014): files still travel in clear between members'
//! nodes (the swarm is admitted by the sphere's secret, as in open spheres); a member sees
//! only what is said after their node joined the group.

use std::collections::VecDeque;
use std::path::Path;

use spheres_mls::{Device, MlsError, Opened};
use spheres_store::Sphere;
use spheres_xmpp::protocol::{Library, Share};
use spheres_xmpp::sealed::{MAX_SEALED, Sealed, open_inner, seal_inner};
use spheres_xmpp::{BareJid, Message, RoomMessage};

use crate::RowState as _;
use crate::api::types::ShareState;
use crate::error::NodeError;
use crate::rooms::Sender;
use crate::{Node, lock, now_secs};

/// How long a published key package serves before a new one replaces it (packages last
/// three months by default).
const KEY_PACKAGE_AGE: i64 = 30 * 24 * 3600;
/// How many of our own sealed messages we remember, to read them when the room echoes them
/// (MLS does not let a sender decrypt its own).
const REMEMBERED: usize = 256;

/// The node's MLS device and what it sent.
pub(crate) struct Mls {
    pub(crate) device: Device,
    /// Our latest MLS messages, newest last, with the plaintext of those that carried one
    /// (a commit or a welcome of ours carries none, and is not read again).
    sent: VecDeque<(Vec<u8>, Option<Message>)>,
}

impl Mls {
    pub(crate) fn new(device: Device) -> Mls {
        Mls {
            device,
            sent: VecDeque::new(),
        }
    }

    fn remember(&mut self, bytes: Vec<u8>, inner: Option<Message>) {
        if self.sent.len() == REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back((bytes, inner));
    }
}

/// The MLS group id of a sphere: its room's address.
fn group_of(sphere: &Sphere) -> &[u8] {
    sphere.room.as_bytes()
}

/// How many tracker grants are sealed for one member of a sphere in one epoch of its group.
const GRANTS_PER_EPOCH: u32 = 16;

/// Where an MLS state that did not read is kept (hex), once.
const UNREADABLE_MLS: &str = "mls_state_unreadable";

impl Node {
    /// This node's MLS state, from the store (made and saved the first time). A state that
    /// does not read (a damaged database, a format this version does not know) is kept aside
    /// under [`UNREADABLE_MLS`] and the node starts with new keys rather than not at all.
    pub(crate) async fn load_mls(
        store: &spheres_store::Store,
        me: &BareJid,
    ) -> anyhow::Result<Mls> {
        if let Some(saved) = store.mls_state().await? {
            match Device::restore(&saved) {
                Ok(d) if d.identity() == me.as_str() => return Ok(Mls::new(d)),
                Ok(d) => tracing::warn!(
                    was = d.identity(),
                    "the saved encryption keys are another account's; making new ones"
                ),
                Err(e) => {
                    // Kept aside, never overwritten: a later version may read it again.
                    if store.meta(UNREADABLE_MLS).await?.is_none() {
                        store.set_meta(UNREADABLE_MLS, &hex::encode(&saved)).await?;
                    }
                    tracing::error!(error = %e, kept_as = UNREADABLE_MLS, "the saved encryption keys do not read; they are kept aside and this node makes new ones: the owners' nodes add it again to each encrypted sphere when both are online")
                }
            }
        }
        let device = Device::new(me.as_str())?;
        store.set_mls_state(&device.snapshot()).await?;
        Ok(Mls::new(device))
    }

    /// Writes the MLS state down (after every change: a crash must not bring back keys that
    /// were used up, nor an epoch left behind). One save at a time, each taking the state as
    /// it is when its turn comes: an older state never lands after a newer one.
    pub(crate) async fn save_mls(&self) {
        let _turn = self.mls_saving.lock().await;
        let snapshot = lock(&self.mls).device.snapshot();
        if let Err(e) = self.store.set_mls_state(&snapshot).await {
            tracing::error!(error = %e, "cannot save the encryption state");
        }
    }

    /// Remembers that the files an import put back at `path` were shared sealed with `key`
    /// as the torrent `info_hash`: sharing them again takes that key back (see `share`).
    pub(crate) async fn remember_seal(&self, path: &Path, key: [u8; 32], info_hash: &str) {
        let value = format!("{}:{info_hash}", hex::encode(key));
        if let Err(e) = self.store.set_meta(&seal_again(path), &value).await {
            tracing::warn!(error = %e, "cannot keep an imported share's key");
        }
    }

    /// The key and torrent remembered for `path` by [`Node::remember_seal`], forgotten as
    /// they are taken.
    pub(crate) async fn remembered_seal(&self, path: &Path) -> Option<([u8; 32], String)> {
        let at = seal_again(path);
        let value = self.store.meta(&at).await.ok().flatten()?;
        let _ = self.store.remove_meta(&at).await;
        let (key, hash) = value.split_once(':')?;
        let key = hex::decode(key).ok()?.try_into().ok()?;
        Some((key, hash.to_owned()))
    }

    /// Publishes our key package on our account, unless the one there is recent.
    pub(crate) async fn publish_key_package(&self) {
        let device = lock(&self.mls).device.device_id();
        let key = format!("mls:published:{device}");
        let fresh = self
            .store
            .meta(&key)
            .await
            .ok()
            .flatten()
            .and_then(|t| t.parse::<i64>().ok())
            .is_some_and(|t| now_secs() - t < KEY_PACKAGE_AGE);
        if fresh {
            return;
        }
        let package = match lock(&self.mls).device.key_package() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot make a key package");
                return;
            }
        };
        self.save_mls().await;
        match self.xmpp.publish_key_package(&device, package).await {
            Ok(()) => {
                tracing::info!("published this node's key package (for encrypted spheres)");
                let _ = self.store.set_meta(&key, &now_secs().to_string()).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish this node's key package; encrypted spheres cannot add it yet")
            }
        }
    }

    /// Makes the MLS group of a sphere we just created.
    pub(crate) async fn start_group(&self, sphere: &Sphere) -> Result<(), NodeError> {
        lock(&self.mls)
            .device
            .create_group(group_of(sphere))
            .map_err(|e| NodeError::Internal(anyhow::anyhow!(e)))?;
        self.save_mls().await;
        self.store.set_encrypted(sphere.id, true).await?;
        Ok(())
    }

    /// Sends `msg` (a body and our payloads) to a sphere's room: as it is in an open sphere,
    /// sealed for the group in an encrypted one.
    pub(crate) async fn send_in_room(
        &self,
        sphere: &Sphere,
        msg: Message,
    ) -> Result<(), NodeError> {
        let room = BareJid::new(&sphere.room)?;
        if !sphere.encrypted {
            let mut msg = msg;
            msg.to = Some(room.into());
            self.xmpp.send(msg).await?;
            return Ok(());
        }
        let bytes = self.seal_for(sphere, msg, true)?;
        self.save_mls().await;
        self.xmpp
            .send(Sealed::new(bytes).into_message(&room))
            .await?;
        Ok(())
    }

    /// `msg` (a body and our payloads) as an application message of a sphere's group, in its
    /// current epoch; `echo`: it goes to the room, whose copy comes back to us and is read
    /// as what we sealed (kept under the same lock, so the echo cannot come first).
    pub(crate) fn seal_for(
        &self,
        sphere: &Sphere,
        msg: Message,
        echo: bool,
    ) -> Result<Vec<u8>, NodeError> {
        let mut inner = msg;
        inner.to = None;
        inner.from = None;
        let mut mls = lock(&self.mls);
        let bytes = mls
            .device
            .seal(group_of(sphere), &seal_inner(inner.clone()))
            .map_err(|e| match e {
                MlsError::NotOurs => NodeError::Unavailable(format!(
                    "this node is not in {:?}'s encryption group yet: the owner's node adds it when both are online",
                    sphere.name
                )),
                e => NodeError::Internal(anyhow::anyhow!(e)),
            })?;
        if echo {
            mls.remember(bytes.clone(), Some(inner));
        }
        Ok(bytes)
    }

    /// Whether to seal a tracker grant for `member` now: only when their node is in the
    /// group (they could not open it otherwise), and at most [`GRANTS_PER_EPOCH`] times per
    /// member and epoch. Each sealed message uses up a step of our key chain in the epoch,
    /// and a member who rejoins the room again and again would otherwise use it all up
    /// (then nobody could read what we say until the next change of the group).
    pub(crate) fn may_seal_grant(&self, sphere: &Sphere, member: &str) -> bool {
        let (epoch, members) = {
            let mls = lock(&self.mls);
            let group = group_of(sphere);
            (mls.device.epoch(group), mls.device.members(group))
        };
        let (Ok(epoch), Ok(members)) = (epoch, members) else {
            return false;
        };
        if !members.iter().any(|m| m == member) {
            tracing::info!(sphere = %sphere.name, member, "their node is not in the group yet: their tracker key waits");
            return false;
        }
        let mut sealed = lock(&self.sealed_grants);
        let count = sealed
            .entry((sphere.id, member.to_owned()))
            .or_insert((epoch, 0));
        if count.0 != epoch {
            *count = (epoch, 0);
        }
        if count.1 >= GRANTS_PER_EPOCH {
            tracing::warn!(sphere = %sphere.name, member, "too many tracker keys for one member in this epoch; not sealing another");
            return false;
        }
        count.1 += 1;
        true
    }

    /// An MLS message in a private message from `nick` in a sphere's room: the owner's
    /// tracker grant of an encrypted sphere, and nothing else (a change of the group comes
    /// through the room only). One this node cannot open yet (its welcome has not come, or
    /// the commit before it) waits, the latest per sphere, until the group changes.
    pub(crate) async fn on_sealed_private(&self, room: BareJid, nick: String, sealed: Sealed) {
        let Ok(Some(sphere)) = self.store.sphere_by_room(room.as_str()).await else {
            return;
        };
        if sphere.holding || sphere.owned {
            return;
        }
        let Some(owner) = self.sender_in_room(&sphere, &nick).filter(|s| s.owner) else {
            tracing::info!(sphere = %sphere.name, from = %nick, "ignoring a private encrypted message from someone who is not the sphere's owner");
            return;
        };
        if !sphere.encrypted {
            // As for the owner's MLS messages in the room (see `unseal`).
            tracing::info!(sphere = %sphere.name, "the sphere's owner encrypts it; so does this node from now on");
            let _ = self.store.set_encrypted(sphere.id, true).await;
        }
        // No owner named to `open`: a welcome or a commit in a private message is refused.
        let opened = lock(&self.mls)
            .device
            .open(&sealed.bytes, group_of(&sphere), None);
        let plain = match opened {
            Ok(Opened::Message {
                sender: by, plain, ..
            }) if by == owner.jid.as_str() => plain,
            Ok(_) => {
                tracing::warn!(sphere = %sphere.name, "ignoring a private encrypted message that is not the owner's");
                return;
            }
            Err(e @ (MlsError::Ahead(_) | MlsError::NotOurs | MlsError::NotForUs)) => {
                tracing::info!(sphere = %sphere.name, error = %e, "a private encrypted message this node cannot open yet; kept until the group changes");
                lock(&self.pending_private).insert(sphere.id, (nick, sealed));
                return;
            }
            Err(e) => {
                tracing::warn!(sphere = %sphere.name, error = %e, "ignoring a private encrypted message");
                return;
            }
        };
        self.save_mls().await;
        let grant = open_inner(&plain).and_then(|inner| {
            match spheres_xmpp::protocol::SpherePayload::from_message(&inner) {
                Some(spheres_xmpp::protocol::SpherePayload::Tracker(g)) => Some(g),
                _ => None,
            }
        });
        match grant {
            Some(grant) => self.take_grant(&sphere, grant).await,
            None => {
                tracing::info!(sphere = %sphere.name, "ignoring a private encrypted message that holds no tracker grant")
            }
        }
    }

    /// Reads again the private message that waited for this sphere's group to change.
    async fn retry_private(&self, sphere: &Sphere) {
        let waiting = lock(&self.pending_private).remove(&sphere.id);
        if let (Some((nick, sealed)), Ok(room)) = (waiting, BareJid::new(&sphere.room)) {
            self.on_sealed_private(room, nick, sealed).await;
        }
    }

    /// Opens an MLS message from a sphere's room: what it carried, as a room message of the
    /// clear protocol from the same sender, or `None` when it carried nothing to read (a
    /// change of the group, a welcome, something for others or unreadable, said in a log).
    /// `ahead` is set when it belongs to an epoch we have not reached: a commit is missing,
    /// and the archive will bring it.
    pub(crate) async fn unseal(
        &self,
        sphere: &Sphere,
        m: RoomMessage,
        sender: Option<&Sender>,
        ahead: &mut bool,
    ) -> Option<RoomMessage> {
        // A keyless seeder reads the owner's sealed torrents, and nothing else; they are
        // nobody else's.
        let holds = matches!(
            m.payload,
            Some(spheres_xmpp::protocol::SpherePayload::Holds(_))
        );
        if sphere.holding || holds {
            return (sphere.holding && holds).then_some(m);
        }
        let Some(spheres_xmpp::protocol::SpherePayload::Sealed(sealed)) = &m.payload else {
            // In an encrypted sphere only what the group authenticates counts: anything said
            // in clear (a member's plain client, a node not in the group, the server itself
            // under any nick) is dropped whole.
            if sphere.encrypted && (m.payload.is_some() || m.said.is_some()) {
                tracing::info!(sphere = %sphere.name, from = %m.nick, "ignoring a clear message in an encrypted sphere");
                return None;
            }
            return Some(m);
        };
        // Who sent it decides what it may do: one the room does not name yet is opened when
        // the archive, which records who sent it, brings it again (opening uses it up).
        let sender = sender?;
        // Who may change the group: the sphere's owner, when the room says they sent it.
        let owner = sender.owner.then_some(sender.jid.as_str());
        if !sphere.encrypted && sender.owner {
            // The owner speaks MLS here: this node never speaks in clear in this room again
            // (an invitation that did not say so, or one replaced by a stranger's).
            tracing::info!(sphere = %sphere.name, "the sphere's owner encrypts it; so does this node from now on");
            let _ = self.store.set_encrypted(sphere.id, true).await;
        }
        let opened = {
            let mut mls = lock(&self.mls);
            let ours = sender.jid == self.me;
            if let Some(i) = mls
                .sent
                .iter()
                .position(|(b, _)| ours && *b == sealed.bytes)
            {
                let (_, inner) = mls.sent.remove(i)?;
                return Some(opened_message(m, &inner?));
            }
            mls.device.open(&sealed.bytes, group_of(sphere), owner)
        };
        let sphere_name = &sphere.name;
        match opened {
            // Saved by the caller once what it carried is acted on (a crash before then reads
            // it again).
            Ok(Opened::Message {
                sender: by, plain, ..
            }) => {
                if sender.jid.as_str() != by {
                    tracing::warn!(sphere = %sphere_name, by, "ignoring an encrypted message whose author is not who the room says sent it");
                    return None;
                }
                let Some(inner) = open_inner(&plain) else {
                    tracing::info!(sphere = %sphere_name, "ignoring an encrypted message that holds no message");
                    return None;
                };
                Some(opened_message(m, &inner))
            }
            Ok(Opened::Joined { by, .. }) => {
                self.save_mls().await;
                tracing::info!(sphere = %sphere_name, by, "joined the sphere's encryption group");
                self.retry_private(sphere).await;
                // A sphere we did not know was encrypted (an invitation from an older node).
                if !sphere.encrypted {
                    let _ = self.store.set_encrypted(sphere.id, true).await;
                }
                self.emit(crate::events::NodeEvent::Sphere {
                    sphere: sphere.name.clone(),
                });
                None
            }
            Ok(Opened::Changed { removed_us, .. }) => {
                self.save_mls().await;
                if removed_us {
                    tracing::warn!(sphere = %sphere_name, "the owner took this node out of the sphere's encryption group");
                } else {
                    tracing::info!(sphere = %sphere_name, "the sphere's encryption group changed");
                    self.retry_private(sphere).await;
                }
                self.emit(crate::events::NodeEvent::Sphere {
                    sphere: sphere.name.clone(),
                });
                None
            }
            Ok(Opened::Own { .. }) => None,
            Err(MlsError::Ahead(epoch)) => {
                tracing::info!(sphere = %sphere_name, epoch, "an encrypted message from an epoch ahead of ours; reading the archive for the change before it");
                *ahead = true;
                None
            }
            Err(e @ (MlsError::Stale | MlsError::NotForUs | MlsError::NotOurs)) => {
                tracing::debug!(sphere = %sphere_name, error = %e, "an encrypted message we cannot or need not read");
                None
            }
            Err(e) => {
                tracing::warn!(sphere = %sphere_name, error = %e, "ignoring an encrypted message");
                None
            }
        }
    }

    /// Puts the devices of `who` into the group of a sphere we own, if they published a key
    /// package and are not in yet: the commit, then the welcome, go to the room.
    pub(crate) async fn add_to_group(&self, sphere: &Sphere, who: &BareJid) {
        if !sphere.owned || !sphere.encrypted {
            return;
        }
        let _one_at_a_time = self.mls_changes.lock().await;
        // Only the sphere's members (whoever else the room lets in: the server's admins).
        let Ok(members) = self.store.members(sphere.id).await else {
            return;
        };
        let Some(member) = members.iter().find(|m| m.jid == who.as_str()) else {
            return;
        };
        // A keyless seeder never joins: it gets the sealed torrents, in clear.
        if member.seeder {
            drop(_one_at_a_time);
            self.hold_all_for(sphere, who).await;
            return;
        }
        let group = group_of(sphere);
        // Devices already in are left out by `add`.
        let packages = match self.xmpp.key_packages(who).await {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => {
                tracing::info!(sphere = %sphere.name, member = %who, "the member's node has published no key package yet; they join the encryption group when it has");
                return;
            }
            Err(e) => {
                tracing::warn!(sphere = %sphere.name, member = %who, error = %e, "cannot read the member's key packages");
                return;
            }
        };
        let packages: Vec<Vec<u8>> = packages.into_iter().map(|(_, b)| b).collect();
        let change = lock(&self.mls).device.add(group, who.as_str(), &packages);
        match change {
            Ok(Some(change)) => self.send_change(sphere, change).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(sphere = %sphere.name, member = %who, error = %e, "cannot add the member to the encryption group")
            }
        }
    }

    /// Takes every device of `who` out of the group of a sphere we own.
    pub(crate) async fn remove_from_group(&self, sphere: &Sphere, who: &BareJid) {
        if !sphere.owned || !sphere.encrypted {
            return;
        }
        let _one_at_a_time = self.mls_changes.lock().await;
        let change = lock(&self.mls)
            .device
            .remove(group_of(sphere), who.as_str());
        match change {
            Ok(Some(change)) => self.send_change(sphere, change).await,
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(sphere = %sphere.name, member = %who, error = %e, "cannot remove the member from the encryption group")
            }
        }
    }

    /// Sends a change of a group we own (its commit, then its welcome), and applies it once
    /// the server took the commit; drops it when it could not.
    async fn send_change(&self, sphere: &Sphere, change: spheres_mls::Change) {
        // Kept pending across a crash: its echo from the room applies it.
        self.save_mls().await;
        let group = group_of(sphere);
        let Ok(room) = BareJid::new(&sphere.room) else {
            return;
        };
        // What members would drop (and servers refuse) is not sent, and not applied.
        let too_large = change.commit.len() > MAX_SEALED
            || change
                .welcome
                .as_ref()
                .is_some_and(|w| w.len() > MAX_SEALED);
        if too_large {
            tracing::warn!(sphere = %sphere.name, "a change of the encryption group would be too large to send; dropped");
            let _ = lock(&self.mls).device.abandon(group);
            self.save_mls().await;
            return;
        }
        {
            let mut mls = lock(&self.mls);
            mls.remember(change.commit.clone(), None);
            if let Some(w) = &change.welcome {
                mls.remember(w.clone(), None);
            }
        }
        let sent = self
            .xmpp
            .send(Sealed::new(change.commit).into_message(&room))
            .await;
        if let Err(e) = sent {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot send a change of the encryption group");
            let _ = lock(&self.mls).device.abandon(group);
            self.save_mls().await;
            return;
        }
        if let Err(e) = lock(&self.mls).device.confirm(group) {
            tracing::error!(sphere = %sphere.name, error = %e, "cannot apply a change of the encryption group");
        }
        self.save_mls().await;
        if let Some(welcome) = change.welcome {
            match self
                .xmpp
                .send(Sealed::new(welcome).into_message(&room))
                .await
            {
                // What was shared before they came, for them to see.
                Ok(()) => self.send_library(sphere).await,
                Err(e) => {
                    tracing::warn!(sphere = %sphere.name, error = %e, "cannot send the newcomer's welcome")
                }
            }
        }
        self.emit(crate::events::NodeEvent::Sphere {
            sphere: sphere.name.clone(),
        });
    }

    /// The sphere's shares that are not withdrawn, as announcements (`None` when the store
    /// cannot say).
    pub(crate) async fn live_shares(&self, sphere: &Sphere) -> Option<Vec<Share>> {
        let rows = self.store.shares(sphere.id).await.ok()?;
        Some(
            rows.iter()
                .filter(|r| r.share_state() != ShareState::Withdrawn)
                .map(|r| self.share_from_row(r))
                .collect(),
        )
    }

    /// Passes the sphere's shares on to its group as it is now (after a welcome: newcomers
    /// cannot read what was announced before they came), in as many `<library/>` messages
    /// as they need; the rest of each share (its .torrent) as each was announced.
    pub(crate) async fn send_library(&self, sphere: &Sphere) {
        let Some(shares) = self.live_shares(sphere).await else {
            return;
        };
        let total = shares.len();
        for chunk in library_chunks(shares) {
            let n = chunk.len();
            let body = format!(
                "{} passed on the sphere's library ({n} of {total} shares)",
                self.nick
            );
            let msg =
                spheres_xmpp::sealed::chat_line(&body).with_payload(Library { shares: chunk });
            if let Err(e) = self.send_in_room(sphere, msg).await {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot pass the library on");
                return;
            }
        }
        if total > 0 {
            tracing::info!(sphere = %sphere.name, shares = total, "passed the library on to the sphere's newcomers");
        }
    }

    /// The library of a sphere, from its owner: each share taken as its sharer's announcement.
    pub(crate) async fn on_library(
        self: &std::sync::Arc<Self>,
        sphere: &Sphere,
        l: Library,
        sender: &Sender,
    ) -> anyhow::Result<()> {
        if !sender.owner {
            anyhow::bail!(
                "{} is not the sphere's owner; a library from them is ignored",
                sender.jid
            );
        }
        for share in l.shares {
            let sharer = Sender {
                jid: share.sharer.clone(),
                owner: share.sharer == sender.jid,
            };
            let name = share.name.clone();
            if let Err(e) = self.on_share(sphere, share, &sharer).await {
                tracing::info!(sphere = %sphere.name, share = %name, error = %e, "ignoring a share of the library");
            }
        }
        Ok(())
    }

    /// Whether this node is in a sphere's encryption group (always for an open sphere).
    pub(crate) fn in_group(&self, sphere: &Sphere) -> bool {
        !sphere.encrypted || lock(&self.mls).device.is_in(group_of(sphere))
    }

    /// Forgets the group of a sphere we left or deleted.
    pub(crate) async fn forget_group(&self, sphere: &Sphere) {
        if sphere.encrypted {
            let _ = lock(&self.mls).device.forget(group_of(sphere));
            self.save_mls().await;
        }
    }
}

/// How many bytes of announcements one `<library/>` carries at most (its plaintext stays
/// well under [`spheres_xmpp::sealed::MAX_PLAINTEXT`]).
const LIBRARY_BYTES: usize = 96 * 1024;

/// Shares cut into runs whose announcements fit in one message each.
fn library_chunks(shares: Vec<Share>) -> Vec<Vec<Share>> {
    // The .torrent in base64 and the rest of the element.
    chunks(shares, |s| {
        s.torrent.as_ref().map_or(0, |t| t.len() * 4 / 3) + s.magnet.len() + s.name.len() + 256
    })
}

/// `items` cut into runs of at most [`LIBRARY_BYTES`] by their `weight` in a message (one
/// heavier item alone in its run).
pub(crate) fn chunks<T>(items: Vec<T>, weight: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = Vec::new();
    let mut size = 0;
    for s in items {
        let weight = weight(&s);
        if out.is_empty() || size + weight > LIBRARY_BYTES {
            out.push(Vec::new());
            size = 0;
        }
        size += weight;
        if let Some(last) = out.last_mut() {
            last.push(s);
        }
    }
    out
}

/// The room message `m` (an MLS message) as the clear one it carried.
fn opened_message(m: RoomMessage, inner: &Message) -> RoomMessage {
    let payload = spheres_xmpp::protocol::SpherePayload::from_message(inner)
        .filter(|p| !matches!(p, spheres_xmpp::protocol::SpherePayload::Sealed(_)));
    RoomMessage {
        said: spheres_xmpp::inbound::said(inner, payload.as_ref()),
        payload,
        ..m
    }
}

/// Where [`Node::remember_seal`] keeps the key for the files at `path`.
fn seal_again(path: &Path) -> String {
    format!("seal:again:{}", path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unreadable_keys_are_kept_aside_and_new_ones_made() {
        let dir = tempfile::tempdir().unwrap();
        let store = spheres_store::Store::open(&dir.path().join("node.db"))
            .await
            .unwrap();
        let me = BareJid::new("lea@home.test").unwrap();
        let first = Node::load_mls(&store, &me).await.unwrap();
        let saved = store.mls_state().await.unwrap().unwrap();
        assert_eq!(
            Node::load_mls(&store, &me).await.unwrap().device.snapshot(),
            first.device.snapshot(),
            "the same keys after a restart"
        );
        store.set_mls_state(b"\x00damaged").await.unwrap();
        let fresh = Node::load_mls(&store, &me).await.unwrap();
        assert_ne!(fresh.device.snapshot(), saved);
        assert_eq!(
            store.meta(UNREADABLE_MLS).await.unwrap(),
            Some(hex::encode(b"\x00damaged")),
            "the unreadable state is kept"
        );
        // A second bad start keeps the first state aside, not its own.
        store.set_mls_state(b"worse").await.unwrap();
        Node::load_mls(&store, &me).await.unwrap();
        assert_eq!(
            store.meta(UNREADABLE_MLS).await.unwrap(),
            Some(hex::encode(b"\x00damaged"))
        );
    }

    fn share(i: usize, torrent: usize) -> Share {
        Share {
            id: format!("{i:040x}"),
            name: format!("file {i}"),
            size: 1,
            files: 1,
            media: "other".into(),
            sharer: BareJid::new("lea@home.test").unwrap(),
            magnet: format!("magnet:?xt=urn:btih:{i:040x}"),
            torrent: Some(vec![0; torrent]),
            sealed: None,
        }
    }

    #[test]
    fn a_library_is_cut_into_messages_of_bounded_size() {
        assert!(library_chunks(Vec::new()).is_empty());
        let shares: Vec<Share> = (0..40).map(|i| share(i, 20_000)).collect();
        let chunks = library_chunks(shares);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 40);
        assert!(chunks.len() > 1);
        for c in &chunks {
            assert!(!c.is_empty());
            let xml: usize = c
                .iter()
                .map(|s| {
                    spheres_xmpp::sealed::seal_inner(
                        spheres_xmpp::sealed::chat_line("x").with_payload(s.clone()),
                    )
                    .len()
                })
                .sum();
            assert!(xml <= LIBRARY_BYTES, "{xml}");
        }
        // One share larger than a message still goes, alone.
        let chunks = library_chunks(vec![share(1, 10), share(2, 120_000), share(3, 10)]);
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 1, 1]
        );
    }
}
