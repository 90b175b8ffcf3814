//! One-to-one conversations between two spheres users, end to end encrypted with MLS like an
//! encrypted sphere (docs/decisions/0017): each sending device writes in a group of its own
//! (`chat:ME/DEVICE>THEM`) whose members are that device and the other account's devices,
//! and which only the sending account changes. An MLS message opens once: the plaintext of
//! what this node reads and writes is kept in the store, and the conversation shows the
//! archive's lines with it. With anyone whose account has no spheres node (no key package
//! published), the conversation stays plain XMPP, and each line says which it is.

use spheres_mls::Opened;
use spheres_xmpp::BareJid;
use spheres_xmpp::sealed::{
    MAX_SEALED, Sealed, chat_group, chat_line, open_inner, parse_chat_group, seal_inner,
};

use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::{Node, lock, random_token};

/// How many devices of one contact may write to us encrypted (each its own group, kept in
/// our MLS state: a contact cannot grow it without bound).
const MAX_CHAT_DEVICES: usize = 4;

/// What a line of an encrypted conversation is kept under: its ciphertext's SHA-256 (the
/// message's id is outside the encryption, and the server could swap or replay it).
pub(crate) fn line_key(sealed: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(sealed))
}

/// Where the devices of `who` that write to us encrypted are remembered.
fn devices_key(who: &BareJid) -> String {
    format!("chat_devices:{who}")
}

impl Node {
    /// The group in which this node writes to `who`.
    fn chat_group_to(&self, who: &BareJid) -> String {
        let device = lock(&self.mls).device.device_id();
        chat_group(&self.me, &device, who)
    }

    /// The devices of `who` that write to us encrypted.
    async fn chat_devices(&self, who: &BareJid) -> Vec<String> {
        let list = self.store.meta(&devices_key(who)).await.ok().flatten();
        list.map(|l| {
            l.split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
    }

    /// Whether a conversation with `who` is encrypted for good: we wrote to them encrypted, or
    /// they to us. It never goes plain again.
    async fn chat_pinned(&self, who: &BareJid) -> bool {
        let group = self.chat_group_to(who);
        lock(&self.mls).device.is_in(group.as_bytes()) || !self.chat_devices(who).await.is_empty()
    }

    /// Whether what we write to `who` goes end to end encrypted: the conversation is (see
    /// `chat_pinned`), or their account publishes key packages (it has a spheres node).
    pub async fn chat_encrypted(&self, who: &BareJid) -> bool {
        if self.chat_pinned(who).await {
            return true;
        }
        self.xmpp
            .key_packages(who)
            .await
            .is_ok_and(|p| !p.is_empty())
    }

    /// Sends `body` to `who` end to end encrypted, when they have a spheres node or the
    /// conversation is encrypted already (their new devices are added first); `Ok(false)` when
    /// it is to go in clear (nothing was sent). A conversation encrypted once never goes in
    /// clear: when their keys cannot be had, nothing is sent and the error says so.
    pub(crate) async fn send_sealed_chat(
        &self,
        who: &BareJid,
        body: &str,
    ) -> Result<bool, NodeError> {
        let group = self.chat_group_to(who);
        let gid = group.as_bytes();
        let _one_at_a_time = self.mls_changes.lock().await;
        let exists = lock(&self.mls).device.is_in(gid);
        let pinned = exists || !self.chat_devices(who).await.is_empty();
        // Once a conversation is encrypted it stays so: a server that hides or spoils the key
        // packages later gets no clear line out of us.
        let packages: Vec<Vec<u8>> = match self.xmpp.key_packages(who).await {
            Ok(p) => p.into_iter().map(|(_, b)| b).collect(),
            Err(e) => {
                tracing::info!(with = %who, error = %e, "cannot read the contact's key packages");
                Vec::new()
            }
        };
        let packages = lock(&self.mls)
            .device
            .usable_packages(who.as_str(), &packages);
        if !exists && packages.is_empty() {
            if pinned {
                refuse!(
                    Unavailable,
                    "{who}'s spheres node keys cannot be read from their server right now; nothing was sent (it would have gone unencrypted): try again later"
                );
            }
            return Ok(false);
        }
        let change = {
            let mls = lock(&self.mls);
            if !exists {
                mls.device
                    .create_group(gid)
                    .map_err(|e| NodeError::Internal(e.into()))?;
            }
            match packages.is_empty() {
                true => Ok(None),
                false => mls.device.add(gid, who.as_str(), &packages),
            }
        };
        let change = match change {
            Ok(c) => c,
            Err(e) if exists => {
                tracing::warn!(with = %who, error = %e, "cannot add the contact's new devices");
                None
            }
            Err(e) => {
                let _ = lock(&self.mls).device.forget(gid);
                return Err(NodeError::Internal(anyhow::anyhow!(
                    "cannot start an encrypted conversation with {who}: {e}"
                )));
            }
        };
        if let Some(change) = change {
            // The commit is for the devices in already (none in a new group).
            if exists {
                let commit = handshake(&group, change.commit);
                if let Err(e) = self
                    .xmpp
                    .send(commit.into_chat(who, &random_token(12)))
                    .await
                {
                    let _ = lock(&self.mls).device.abandon(gid);
                    return Err(e.into());
                }
            }
            lock(&self.mls)
                .device
                .confirm(gid)
                .map_err(|e| NodeError::Internal(e.into()))?;
            self.save_mls().await;
            if let Some(welcome) = change.welcome {
                let welcome = handshake(&group, welcome);
                self.xmpp
                    .send(welcome.into_chat(who, &random_token(12)))
                    .await?;
            }
        }
        let inner = chat_line(body);
        let bytes = lock(&self.mls)
            .device
            .seal(gid, &seal_inner(inner))
            .map_err(|e| NodeError::Internal(e.into()))?;
        self.save_mls().await;
        if bytes.len() > MAX_SEALED {
            refuse!(BadInput, "this message is too long to send encrypted");
        }
        let id = random_token(12);
        self.store
            .add_chat_line(who.as_str(), &line_key(&bytes), true, body)
            .await?;
        let sealed = Sealed {
            group: Some(group),
            kind: None,
            bytes,
        };
        self.xmpp.send(sealed.into_chat(who, &id)).await?;
        Ok(true)
    }

    /// An MLS message of a conversation, from `from` (as the server says): taken from a
    /// contact, in a group of theirs to us only; what it says is kept for the conversation.
    pub(crate) async fn on_sealed_chat(&self, from: BareJid, sealed: Sealed) {
        let Some(group) = sealed.group.as_deref() else {
            return;
        };
        let device = match parse_chat_group(group) {
            Some((sender, device, to)) if sender == from && to == self.me => device,
            _ => {
                tracing::info!(%from, group, "ignoring an encrypted message for a group that is not theirs to us");
                return;
            }
        };
        let mut devices = self.chat_devices(&from).await;
        let known = devices.contains(&device);
        if !known && devices.len() >= MAX_CHAT_DEVICES {
            tracing::info!(%from, "ignoring an encrypted message from one device too many");
            return;
        }
        let contact = self.xmpp.roster().await.is_ok_and(|r| {
            r.iter().any(|i| {
                i.jid == from && i.subscription != spheres_xmpp::contacts::Subscription::Remove
            })
        });
        if !contact {
            tracing::info!(%from, "ignoring an encrypted message from someone who is not a contact");
            return;
        }
        let opened =
            lock(&self.mls)
                .device
                .open(&sealed.bytes, group.as_bytes(), Some(from.as_str()));
        match opened {
            Ok(Opened::Message { sender, plain, .. }) if sender == from.as_str() => {
                match open_inner(&plain).and_then(|m| m.bodies.values().next().cloned()) {
                    Some(body) => {
                        let key = line_key(&sealed.bytes);
                        if let Err(e) = self
                            .store
                            .add_chat_line(from.as_str(), &key, false, &body)
                            .await
                        {
                            tracing::warn!(error = %e, "cannot keep a line of a conversation");
                        }
                    }
                    None => tracing::info!(%from, "ignoring an encrypted message with no text"),
                }
            }
            Ok(Opened::Message { sender, .. }) => {
                tracing::warn!(%from, sender, "ignoring an encrypted message whose author is not its sender");
            }
            Ok(Opened::Joined { .. }) => {
                tracing::info!(%from, "their conversation with us is encrypted from now on");
                if !known {
                    devices.push(device);
                    let _ = self
                        .store
                        .set_meta(&devices_key(&from), &devices.join(","))
                        .await;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::info!(%from, error = %e, "cannot open an encrypted message"),
        }
        self.save_mls().await;
        self.emit(NodeEvent::Chat {
            with: from.to_string(),
        });
    }
}

/// A welcome or a commit of a conversation's group.
fn handshake(group: &str, bytes: Vec<u8>) -> Sealed {
    Sealed {
        group: Some(group.to_owned()),
        kind: Some("handshake".to_owned()),
        bytes,
    }
}
