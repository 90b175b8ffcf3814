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

/// The longest message id we keep a line under.
const MAX_ID: usize = 128;

impl Node {
    /// The group in which this node writes to `who`.
    fn chat_group_to(&self, who: &BareJid) -> String {
        let device = lock(&self.mls).device.device_id();
        chat_group(&self.me, &device, who)
    }

    /// Whether what we write to `who` goes end to end encrypted: we wrote to them encrypted
    /// before, or their account publishes key packages (it has a spheres node).
    pub async fn chat_encrypted(&self, who: &BareJid) -> bool {
        let group = self.chat_group_to(who);
        if lock(&self.mls).device.is_in(group.as_bytes()) {
            return true;
        }
        self.xmpp
            .key_packages(who)
            .await
            .is_ok_and(|p| !p.is_empty())
    }

    /// Sends `body` to `who` end to end encrypted, when they have a spheres node or we wrote
    /// to them so before (their new devices are added first); `Ok(false)` when it is to go in
    /// clear (nothing was sent).
    pub(crate) async fn send_sealed_chat(
        &self,
        who: &BareJid,
        body: &str,
    ) -> Result<bool, NodeError> {
        let group = self.chat_group_to(who);
        let gid = group.as_bytes();
        let _one_at_a_time = self.mls_changes.lock().await;
        let exists = lock(&self.mls).device.is_in(gid);
        // Once a conversation is encrypted it stays so: a server that hides the key packages
        // later gets no clear line out of us.
        let packages: Vec<Vec<u8>> = match self.xmpp.key_packages(who).await {
            Ok(p) => p.into_iter().map(|(_, b)| b).collect(),
            Err(e) => {
                tracing::info!(with = %who, error = %e, "cannot read the contact's key packages");
                Vec::new()
            }
        };
        if !exists && packages.is_empty() {
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
                tracing::warn!(with = %who, error = %e, "the contact's key packages are unusable; writing in clear");
                return Ok(false);
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
            .add_chat_line(who.as_str(), &id, true, body)
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
    pub(crate) async fn on_sealed_chat(&self, from: BareJid, id: Option<String>, sealed: Sealed) {
        let Some(group) = sealed.group.as_deref() else {
            return;
        };
        match parse_chat_group(group) {
            Some((sender, _, to)) if sender == from && to == self.me => {}
            _ => {
                tracing::info!(%from, group, "ignoring an encrypted message for a group that is not theirs to us");
                return;
            }
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
                let body = open_inner(&plain).and_then(|m| m.bodies.values().next().cloned());
                match (body, id.filter(|i| !i.is_empty() && i.len() <= MAX_ID)) {
                    (Some(body), Some(id)) => {
                        if let Err(e) = self
                            .store
                            .add_chat_line(from.as_str(), &id, false, &body)
                            .await
                        {
                            tracing::warn!(error = %e, "cannot keep a line of a conversation");
                        }
                    }
                    _ => tracing::info!(%from, "ignoring an encrypted message with no text or id"),
                }
            }
            Ok(Opened::Message { sender, .. }) => {
                tracing::warn!(%from, sender, "ignoring an encrypted message whose author is not its sender");
            }
            Ok(Opened::Joined { .. }) => {
                tracing::info!(%from, "their conversation with us is encrypted from now on")
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
