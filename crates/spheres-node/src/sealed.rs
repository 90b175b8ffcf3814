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

use spheres_mls::{Device, MlsError, Opened};
use spheres_store::Sphere;
use spheres_xmpp::sealed::{Sealed, open_inner, seal_inner};
use spheres_xmpp::{BareJid, Message, RoomMessage};

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

impl Node {
    /// Loads this node's MLS device from the store, or makes one for its account.
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
                    tracing::error!(error = %e, "the saved encryption keys do not read; making new ones (encrypted spheres need their owners to add this node again)")
                }
            }
        }
        let device = Device::new(me.as_str())?;
        store.set_mls_state(&device.snapshot()).await?;
        Ok(Mls::new(device))
    }

    /// Writes the MLS state down (after every change: a crash must not bring back keys that
    /// were used up, nor an epoch left behind).
    pub(crate) async fn save_mls(&self) {
        let snapshot = lock(&self.mls).device.snapshot();
        if let Err(e) = self.store.set_mls_state(&snapshot).await {
            tracing::error!(error = %e, "cannot save the encryption state");
        }
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
        let mut inner = msg;
        inner.to = None;
        inner.from = None;
        let bytes = {
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
            mls.remember(bytes.clone(), Some(inner));
            bytes
        };
        self.save_mls().await;
        self.xmpp.send(Sealed { bytes }.into_message(&room)).await?;
        Ok(())
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
        let Some(spheres_xmpp::protocol::SpherePayload::Sealed(sealed)) = &m.payload else {
            // In an encrypted sphere only what the group authenticates announces anything: a
            // clear announcement or post (from a member's plain client, or a member whose
            // node is not in the group) is dropped whole, its body with it.
            if sphere.encrypted && m.payload.is_some() {
                tracing::info!(sphere = %sphere.name, from = %m.nick, "ignoring a clear announcement in an encrypted sphere");
                return None;
            }
            return Some(m);
        };
        // Who sent it decides what it may do: one the room does not name yet is opened when
        // the archive, which records who sent it, brings it again (opening uses it up).
        let sender = sender?;
        let group = group_of(sphere).to_vec();
        // Who may change the group: the sphere's owner, as the room names them.
        let owner = sender.owner.then(|| sender.jid.to_string());
        let opened = {
            let mut mls = lock(&self.mls);
            if let Some(i) = mls.sent.iter().position(|(b, _)| *b == sealed.bytes) {
                let (_, inner) = mls.sent.remove(i)?;
                return Some(opened_message(m, &inner?));
            }
            mls.device.open(&sealed.bytes, |g| {
                (g == group.as_slice()).then(|| owner.clone().unwrap_or_default())
            })
        };
        let sphere_name = &sphere.name;
        match opened {
            Ok(Opened::Message {
                sender: by, plain, ..
            }) => {
                self.save_mls().await;
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
        let group = group_of(sphere);
        let Ok(room) = BareJid::new(&sphere.room) else {
            return;
        };
        {
            let mut mls = lock(&self.mls);
            mls.remember(change.commit.clone(), None);
            if let Some(w) = &change.welcome {
                mls.remember(w.clone(), None);
            }
        }
        let sent = self
            .xmpp
            .send(
                Sealed {
                    bytes: change.commit,
                }
                .into_message(&room),
            )
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
        if let Some(welcome) = change.welcome
            && let Err(e) = self
                .xmpp
                .send(Sealed { bytes: welcome }.into_message(&room))
                .await
        {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot send the newcomer's welcome");
        }
        self.emit(crate::events::NodeEvent::Sphere {
            sphere: sphere.name.clone(),
        });
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
