//! The MLS group of an encrypted sphere (RFC 9420, through `openmls`), as bytes in and bytes
//! out: no I/O, no clock, no XMPP. The node carries what comes out of here in the sphere's
//! room and saves [`Device::snapshot`] after every change.
//!
//! - A [`Device`] is one node: its signature key and credential (its account's bare JID),
//!   and the state of every group it is in. A person with two nodes has two leaves.
//! - Only a sphere's owner changes its group: [`Device::add`] and [`Device::remove`] make a
//!   commit (and a welcome for newcomers) that the owner sends, then [`Device::confirm`]s.
//!   Every other node refuses a commit or a welcome that does not come from the owner it
//!   knows for that group (see [`Device::open`]).
//! - [`Device::seal`] encrypts an application message for the group's current members;
//!   [`Device::open`] reads whatever MLS message the room brings and says what it was.
//!
//! The ciphersuite is `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`; handshake messages
//! travel encrypted too (openmls's default wire format policy), so the server sees neither
//! who was added nor who was removed.

use std::collections::HashMap;

use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// How many past epochs' secrets a node keeps, to read messages sent just before a change
/// that reach it after (the room delivers in order; the margin is for what crossed a commit).
const PAST_EPOCHS: usize = 4;
/// How far back within one sender's messages of an epoch a late one may still be read.
const OUT_OF_ORDER: u32 = 64;
/// How far ahead within one sender's messages we jump (messages we never see).
const FORWARD: u32 = 10_000;
/// The most devices of one account a group takes (each is a leaf every welcome carries).
pub const MAX_DEVICES: usize = 4;
/// What a snapshot starts with.
const MAGIC: &[u8; 8] = b"SPHMLS1\0";
/// The largest snapshot we read back, and the most entries in it.
const MAX_SNAPSHOT: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MlsError {
    /// Bytes that are not an MLS message or key package we can read.
    #[error("not a well-formed MLS message: {0}")]
    Malformed(String),
    /// A message of a group we are not in (or no longer in).
    #[error("not a group of ours")]
    NotOurs,
    /// A welcome that is not for one of our key packages.
    #[error("a welcome for someone else")]
    NotForUs,
    /// A message of an epoch we have left behind, or one we already read.
    #[error("a message we already read or that is too old")]
    Stale,
    /// A message of an epoch we have not reached yet: a commit is missing.
    #[error("a message from epoch {0}, ahead of ours")]
    Ahead(u64),
    /// A commit or welcome from someone who may not change the group.
    #[error("{0} may not change this group")]
    Refused(String),
    /// A key package whose credential is not the account it came from.
    #[error("a key package of {found:?} offered as {expected:?}")]
    WrongIdentity { expected: String, found: String },
    #[error("MLS: {0}")]
    Mls(String),
    #[error("the saved MLS state is damaged: {0}")]
    Snapshot(&'static str),
}

fn mls(e: impl std::fmt::Debug) -> MlsError {
    MlsError::Mls(format!("{e:?}"))
}

/// A commit to send to the group (and a welcome for newcomers), made by [`Device::add`] or
/// [`Device::remove`]; [`Device::confirm`] once the server took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub commit: Vec<u8>,
    pub welcome: Option<Vec<u8>>,
}

/// What an MLS message from the room turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// We were welcomed into `group` by `by`.
    Joined { group: Vec<u8>, by: String },
    /// An application message from `sender` (an account's bare JID).
    Message {
        group: Vec<u8>,
        sender: String,
        plain: Vec<u8>,
    },
    /// A change of the group's members by `by`, applied; `removed_us` when it took us out.
    Changed {
        group: Vec<u8>,
        by: String,
        removed_us: bool,
    },
    /// One of our own messages back from the room (MLS does not let its sender read it).
    Own { group: Vec<u8> },
}

/// One node's MLS identity and groups.
pub struct Device {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    identity: String,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

fn identity_of(c: &Credential) -> String {
    BasicCredential::try_from(c.clone())
        .map(|b| String::from_utf8_lossy(b.identity()).into_owned())
        .unwrap_or_default()
}

fn create_config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(OUT_OF_ORDER, FORWARD))
        .build()
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .sender_ratchet_configuration(SenderRatchetConfiguration::new(OUT_OF_ORDER, FORWARD))
        .build()
}

impl Device {
    /// A new device for the account `identity` (its bare JID), with a fresh signature key.
    pub fn new(identity: &str) -> Result<Device, MlsError> {
        let provider = OpenMlsRustCrypto::default();
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).map_err(mls)?;
        signer.store(provider.storage()).map_err(mls)?;
        Ok(Device {
            provider,
            signer,
            identity: identity.to_owned(),
        })
    }

    /// The account this device speaks for.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// A short stable name for this device: the start of its public signature key, in hex
    /// (the id of its key package item).
    pub fn device_id(&self) -> String {
        self.signer.public()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn credential(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(self.identity.as_bytes().to_vec()).into(),
            signature_key: self.signer.public().into(),
        }
    }

    /// A key package for others to add us with. It is a "last resort" one (RFC 9420 §16.8):
    /// several groups may use it, so one published package serves every sphere.
    pub fn key_package(&self) -> Result<Vec<u8>, MlsError> {
        // A leaf must say it understands the extensions its key package carries.
        let capabilities = Capabilities::builder()
            .extensions(vec![ExtensionType::LastResort])
            .build();
        let bundle = KeyPackage::builder()
            .leaf_node_capabilities(capabilities)
            .mark_as_last_resort()
            .build(SUITE, &self.provider, &self.signer, self.credential())
            .map_err(mls)?;
        bundle.key_package().tls_serialize_detached().map_err(mls)
    }

    fn load(&self, group: &[u8]) -> Result<MlsGroup, MlsError> {
        MlsGroup::load(self.provider.storage(), &GroupId::from_slice(group))
            .map_err(mls)?
            .ok_or(MlsError::NotOurs)
    }

    /// Whether we are in `group` (and not removed from it).
    pub fn is_in(&self, group: &[u8]) -> bool {
        self.load(group).is_ok_and(|g| g.is_active())
    }

    /// Starts `group` with us as its only member.
    pub fn create_group(&self, group: &[u8]) -> Result<(), MlsError> {
        MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &create_config(),
            GroupId::from_slice(group),
            self.credential(),
        )
        .map_err(mls)?;
        Ok(())
    }

    /// Forgets `group` (the sphere is gone, or we left it).
    pub fn forget(&self, group: &[u8]) -> Result<(), MlsError> {
        match self.load(group) {
            Ok(mut g) => g.delete(self.provider.storage()).map_err(mls),
            Err(MlsError::NotOurs) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The accounts in `group`, one entry per leaf (a person with two nodes shows twice).
    pub fn members(&self, group: &[u8]) -> Result<Vec<String>, MlsError> {
        let g = self.load(group)?;
        Ok(g.members().map(|m| identity_of(&m.credential)).collect())
    }

    /// The group's epoch (it moves on with every change).
    pub fn epoch(&self, group: &[u8]) -> Result<u64, MlsError> {
        Ok(self.load(group)?.epoch().as_u64())
    }

    /// Adds the devices of `who` whose key packages are `packages` (as published on their
    /// account) and are not in the group yet, [`MAX_DEVICES`] at most. `None` when there is
    /// nobody to add. A package whose credential is not `who` is refused.
    pub fn add(
        &self,
        group: &[u8],
        who: &str,
        packages: &[Vec<u8>],
    ) -> Result<Option<Change>, MlsError> {
        let mut g = self.load(group)?;
        let present: Vec<Vec<u8>> = g
            .members()
            .map(|m| m.signature_key.as_slice().to_vec())
            .collect();
        let mut new = Vec::new();
        for bytes in packages.iter().take(MAX_DEVICES) {
            let kp = KeyPackageIn::tls_deserialize_exact(bytes.as_slice())
                .map_err(|e| MlsError::Malformed(e.to_string()))?
                .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                .map_err(|e| MlsError::Malformed(format!("{e:?}")))?;
            let leaf = kp.leaf_node();
            let found = identity_of(leaf.credential());
            if found != who {
                return Err(MlsError::WrongIdentity {
                    expected: who.to_owned(),
                    found,
                });
            }
            let key = leaf.signature_key().as_slice().to_vec();
            if !present.contains(&key) && kp.ciphersuite() == SUITE {
                new.push(kp);
            }
        }
        if new.is_empty() {
            return Ok(None);
        }
        let (commit, welcome, _) = g
            .add_members(&self.provider, &self.signer, &new)
            .map_err(mls)?;
        Ok(Some(Change {
            commit: commit.to_bytes().map_err(mls)?,
            welcome: Some(welcome.to_bytes().map_err(mls)?),
        }))
    }

    /// The key packages among `packages` that [`Device::add`] would take for `who`: well
    /// formed, valid, of our ciphersuite, with `who` as their identity (the others are left
    /// out, not an error: one bad package does not stop the rest).
    pub fn usable_packages(&self, who: &str, packages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        packages
            .iter()
            .filter(|bytes| {
                KeyPackageIn::tls_deserialize_exact(bytes.as_slice())
                    .ok()
                    .and_then(|kp| {
                        kp.validate(self.provider.crypto(), ProtocolVersion::Mls10)
                            .ok()
                    })
                    .is_some_and(|kp| {
                        kp.ciphersuite() == SUITE && identity_of(kp.leaf_node().credential()) == who
                    })
            })
            .cloned()
            .collect()
    }

    /// Takes every device of `who` out of the group; `None` when none is in.
    pub fn remove(&self, group: &[u8], who: &str) -> Result<Option<Change>, MlsError> {
        let mut g = self.load(group)?;
        let leaves: Vec<LeafNodeIndex> = g
            .members()
            .filter(|m| identity_of(&m.credential) == who)
            .map(|m| m.index)
            .collect();
        if leaves.is_empty() {
            return Ok(None);
        }
        let (commit, _, _) = g
            .remove_members(&self.provider, &self.signer, &leaves)
            .map_err(mls)?;
        Ok(Some(Change {
            commit: commit.to_bytes().map_err(mls)?,
            welcome: None,
        }))
    }

    /// Applies our pending change once the server took its commit.
    pub fn confirm(&self, group: &[u8]) -> Result<(), MlsError> {
        self.load(group)?
            .merge_pending_commit(&self.provider)
            .map_err(mls)
    }

    /// Drops our pending change (its commit could not be sent).
    pub fn abandon(&self, group: &[u8]) -> Result<(), MlsError> {
        self.load(group)?
            .clear_pending_commit(self.provider.storage())
            .map_err(mls)
    }

    /// Encrypts `plain` for the group's members as they are now.
    pub fn seal(&self, group: &[u8], plain: &[u8]) -> Result<Vec<u8>, MlsError> {
        let mut g = self.load(group)?;
        if !g.is_active() {
            return Err(MlsError::NotOurs);
        }
        let out = g
            .create_message(&self.provider, &self.signer, plain)
            .map_err(mls)?;
        out.to_bytes().map_err(mls)
    }

    /// Reads an MLS message that came to `group` (a sphere's room): one of another group is
    /// [`MlsError::NotOurs`]. `owner` is the account that may change the group, when the
    /// message's sender is that account (the room says so), else `None`: a welcome or a
    /// commit is taken from it only (else [`MlsError::Refused`], and nothing changes).
    pub fn open(
        &self,
        bytes: &[u8],
        group: &[u8],
        owner: Option<&str>,
    ) -> Result<Opened, MlsError> {
        let msg = MlsMessageIn::tls_deserialize_exact(bytes)
            .map_err(|e| MlsError::Malformed(e.to_string()))?;
        // An owner with no name is no owner (a credential may hold an empty identity).
        let owner = owner.filter(|o| !o.is_empty());
        let protocol = match msg.extract() {
            MlsMessageBodyIn::Welcome(w) => return self.welcome(w, group, owner),
            MlsMessageBodyIn::PrivateMessage(m) => ProtocolMessage::from(m),
            MlsMessageBodyIn::PublicMessage(m) => ProtocolMessage::from(m),
            _ => return Err(MlsError::Malformed("not a group message".into())),
        };
        if protocol.group_id().as_slice() != group {
            return Err(MlsError::NotOurs);
        }
        let group = group.to_vec();
        let commit = protocol.content_type() == ContentType::Commit;
        let mut g = self.load(&group)?;
        // The content type is outside the encryption: a commit the room does not say the owner
        // sent is refused before it is opened (opening uses its key up).
        if commit && owner.is_none() {
            return Err(MlsError::Refused(
                "someone the room does not name as the owner".into(),
            ));
        }
        if !g.is_active() {
            return Err(MlsError::NotOurs);
        }
        let (theirs, ours) = (protocol.epoch().as_u64(), g.epoch().as_u64());
        if theirs > ours {
            return Err(MlsError::Ahead(theirs));
        }
        let processed = match g.process_message(&self.provider, protocol) {
            Ok(p) => p,
            Err(ProcessMessageError::ValidationError(
                ValidationError::WrongEpoch | ValidationError::UnableToDecrypt(_),
            )) => return Err(MlsError::Stale),
            Err(e) => return Err(mls(e)),
        };
        let sender = identity_of(processed.credential());
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(a) => Ok(Opened::Message {
                group,
                sender,
                plain: a.into_bytes(),
            }),
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                if owner != Some(sender.as_str()) {
                    return Err(MlsError::Refused(sender));
                }
                let removed_us = staged.self_removed();
                g.merge_staged_commit(&self.provider, *staged)
                    .map_err(mls)?;
                Ok(Opened::Changed {
                    group,
                    by: sender,
                    removed_us,
                })
            }
            // Our own commit, back from the room while still pending (we stopped between
            // sending it and applying it): the room has it, so it applies now.
            ProcessedMessageContent::OwnPrivateMessage
            | ProcessedMessageContent::OwnPendingCommit
                if commit && g.pending_commit().is_some() =>
            {
                g.merge_pending_commit(&self.provider).map_err(mls)?;
                Ok(Opened::Changed {
                    group,
                    by: self.identity.clone(),
                    removed_us: false,
                })
            }
            ProcessedMessageContent::OwnPrivateMessage
            | ProcessedMessageContent::OwnPendingCommit => Ok(Opened::Own { group }),
            // Proposals without a commit: only the owner's commits change the group.
            ProcessedMessageContent::ProposalMessage(_)
            | ProcessedMessageContent::ExternalJoinProposalMessage(_) => {
                Err(MlsError::Refused(sender))
            }
        }
    }

    fn welcome(&self, w: Welcome, group: &[u8], owner: Option<&str>) -> Result<Opened, MlsError> {
        // openmls stages a welcome only for a group it does not hold: the one we are in (or
        // were removed from) steps aside, and comes back unless the welcome is newer.
        let before = self.load(group).ok().map(|g| g.epoch());
        let backup = before.map(|_| self.values());
        if before.is_some() {
            self.forget(group)?;
        }
        let result = self.stage(w, group, owner, before);
        if let (Err(_), Some(values)) = (&result, backup) {
            *self
                .provider
                .storage()
                .values
                .write()
                .unwrap_or_else(|e| e.into_inner()) = values;
        }
        result
    }

    fn stage(
        &self,
        w: Welcome,
        group: &[u8],
        owner: Option<&str>,
        before: Option<GroupEpoch>,
    ) -> Result<Opened, MlsError> {
        let staged = match StagedWelcome::new_from_welcome(&self.provider, &join_config(), w, None)
        {
            Ok(s) => s,
            Err(WelcomeError::NoMatchingKeyPackage | WelcomeError::NoMatchingEncryptionKey) => {
                return Err(MlsError::NotForUs);
            }
            Err(e) => return Err(mls(e)),
        };
        if staged.group_context().group_id().as_slice() != group {
            return Err(MlsError::NotOurs);
        }
        let by = identity_of(staged.welcome_sender().map_err(mls)?.credential());
        if owner != Some(by.as_str()) {
            return Err(MlsError::Refused(by));
        }
        // A welcome into an epoch we know already, or left behind: a replay (our key package
        // is a last resort one, so an old welcome would still open). A later one (the owner
        // added this device anew) starts the group over from it.
        if before.is_some_and(|e| e >= staged.group_context().epoch()) {
            return Err(MlsError::Stale);
        }
        staged.into_group(&self.provider).map_err(mls)?;
        Ok(Opened::Joined {
            group: group.to_vec(),
            by,
        })
    }

    /// A copy of everything in storage (to put back when a step fails half way).
    fn values(&self) -> HashMap<Vec<u8>, Vec<u8>> {
        self.provider
            .storage()
            .values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Everything this device knows (its keys and its groups' states), to be written down
    /// after each change and given back to [`Device::restore`]. It holds private keys.
    pub fn snapshot(&self) -> Vec<u8> {
        let values = self
            .provider
            .storage()
            .values
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(MAGIC);
        put(&mut out, self.identity.as_bytes());
        put(&mut out, self.signer.public());
        out.extend_from_slice(&(values.len() as u32).to_be_bytes());
        let mut keys: Vec<&Vec<u8>> = values.keys().collect();
        keys.sort();
        for k in keys {
            put(&mut out, k);
            put(&mut out, &values[k]);
        }
        out
    }

    /// A device back from its [`Device::snapshot`].
    pub fn restore(bytes: &[u8]) -> Result<Device, MlsError> {
        if bytes.len() > MAX_SNAPSHOT {
            return Err(MlsError::Snapshot("too large"));
        }
        let mut r = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(MlsError::Snapshot("not an MLS state of spheres"))?;
        let identity = String::from_utf8(take(&mut r)?.to_vec())
            .map_err(|_| MlsError::Snapshot("identity"))?;
        let public = take(&mut r)?.to_vec();
        let count = u32::from_be_bytes(
            take_n(&mut r, 4)?
                .try_into()
                .map_err(|_| MlsError::Snapshot("count"))?,
        );
        let mut values = HashMap::new();
        for _ in 0..count {
            let k = take(&mut r)?.to_vec();
            let v = take(&mut r)?.to_vec();
            values.insert(k, v);
        }
        if !r.is_empty() {
            return Err(MlsError::Snapshot("trailing bytes"));
        }
        let provider = OpenMlsRustCrypto::default();
        *provider
            .storage()
            .values
            .write()
            .unwrap_or_else(|e| e.into_inner()) = values;
        let signer =
            SignatureKeyPair::read(provider.storage(), &public, SUITE.signature_algorithm())
                .ok_or(MlsError::Snapshot("the signature key is missing"))?;
        Ok(Device {
            provider,
            signer,
            identity,
        })
    }
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

fn take_n<'a>(r: &mut &'a [u8], n: usize) -> Result<&'a [u8], MlsError> {
    if r.len() < n {
        return Err(MlsError::Snapshot("cut short"));
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Ok(head)
}

fn take<'a>(r: &mut &'a [u8]) -> Result<&'a [u8], MlsError> {
    let len = take_n(r, 4)?;
    let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    take_n(r, n)
}

#[cfg(test)]
mod tests;
