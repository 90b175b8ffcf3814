//! Spheres and membership: a sphere is a folder and a members-only room. Names from the network
//! become folders only once checked; who sent what in a room is who the room says; invitations,
//! joining, leaving, members, the fetch policy, and the per-sphere owner tracker key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use spheres_metainfo::InfoHash;
use spheres_store::Sphere;
use spheres_tracker::KeyScope;
use spheres_xmpp::BareJid;
use spheres_xmpp::muc::Affiliation;
use spheres_xmpp::muc::RoomSettings;

use crate::RowState as _;
use crate::api::types;
use crate::chat::address;
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::rooms::Sender;
use crate::{Node, lock, now_secs, random_token};

/// A room's local part from a sphere name: readable, unique with a random suffix.
pub(crate) fn room_local(name: &str) -> String {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() {
        "sphere".to_owned()
    } else {
        slug
    };
    let slug: String = slug.chars().take(40).collect();
    format!("{slug}-{}", random_token(3))
}

/// A sphere name must make a folder name on every system.
pub(crate) fn check_sphere_name(name: &str) -> Result<()> {
    let bad = name.trim().is_empty()
        || name.len() > 100
        || name.starts_with('.')
        || name.chars().any(|c| {
            c.is_control()
                || "/\\:*?\"<>|".contains(c)
                // Bidirectional overrides make a name read as another ("gpj.exe").
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        });
    if bad {
        refuse!(
            BadInput,
            "{name:?} cannot be a sphere name: use letters, digits, spaces and - _ ( ) ' ,"
        );
    }
    Ok(())
}

/// The name (and so the folder) of a sphere joined by invitation: what the inviter called it
/// when that is a usable name, else the room's local part when that is, else "Sphere". Both
/// come from the network: `..`, `.`, an empty name, an absolute path or separators would put
/// the folder outside the spheres folder, so neither is used unchecked.
pub(crate) fn sphere_name_from_invite(reason: Option<&str>, room: &str) -> String {
    let local = room.split_once('@').map_or("", |(l, _)| l);
    [reason.unwrap_or_default().trim(), local]
        .into_iter()
        .find(|n| check_sphere_name(n).is_ok())
        .unwrap_or("Sphere")
        .to_owned()
}

/// The folder of sphere `name` under `spheres_dir`, made if missing, and proved to be inside
/// it once both are canonical (no `..`, no symbolic link leading elsewhere).
pub(crate) fn sphere_folder(spheres_dir: &Path, name: &str) -> Result<PathBuf> {
    check_sphere_name(name)?;
    std::fs::create_dir_all(spheres_dir)
        .with_context(|| format!("cannot create {}", spheres_dir.display()))?;
    let root = spheres_dir
        .canonicalize()
        .with_context(|| format!("cannot use the spheres folder {}", spheres_dir.display()))?;
    let folder = root.join(name);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let real = folder
        .canonicalize()
        .with_context(|| format!("cannot use {}", folder.display()))?;
    if real.parent() != Some(root.as_path()) {
        refuse!(
            Forbidden,
            "{} leads outside the spheres folder {}; refusing to use it",
            folder.display(),
            root.display()
        );
    }
    Ok(real)
}

pub(crate) const MAX_PENDING_INVITES: usize = 50;

/// A sphere as the API shows it.
impl Node {
    /// Whether a sphere is encrypted, and whether this node is in its group.
    pub(crate) fn encryption(&self, s: &Sphere) -> types::Encryption {
        match (s.encrypted, self.in_group(s)) {
            _ if s.holding => types::Encryption::Holding,
            (false, _) => types::Encryption::Open,
            (true, true) => types::Encryption::Ready,
            (true, false) => types::Encryption::Waiting,
        }
    }

    pub(crate) fn sphere_info(&self, s: Sphere) -> types::SphereInfo {
        let encryption = self.encryption(&s);
        sphere_info(s, encryption)
    }
}

fn sphere_info(s: Sphere, encryption: types::Encryption) -> types::SphereInfo {
    types::SphereInfo {
        encryption,
        // A policy the store cannot read back (written by a newer node) reads as the default.
        policy: s.policy.parse().unwrap_or(types::Policy::All),
        name: s.name,
        room: s.room,
        folder: s.folder,
        owned: s.owned,
        announce: s.announce,
    }
}

impl Node {
    pub(crate) async fn join_sphere_room(self: &Arc<Self>, sphere: &Sphere) {
        let Ok(room) = BareJid::new(&sphere.room) else {
            return;
        };
        lock(&self.rooms).joining(&sphere.room);
        let muji = lock(&self.calls).muji_for(&room);
        if let Err(e) = self
            .xmpp
            .room_presence(&room, &self.nick, Some(self.endpoints()), muji.as_ref())
            .await
        {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot join the sphere's room");
            return;
        }
        // The room sends everyone's presence (with their endpoints) before ours: once ours is
        // in, the peers for what the catch-up adds are known.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let notified = self.joined_notify.notified();
            if lock(&self.rooms).joined(&sphere.room) {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(sphere = %sphere.name, "the room did not confirm our presence; catching up anyway");
                break;
            }
        }
        if let Err(e) = self.catch_up(sphere).await {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot catch up on the sphere");
        } else {
            self.flush_outbox(sphere).await;
        }
    }

    /// Reads the room's archive again in a few seconds (once, however many ask), for a live
    /// announcement whose sender the room had not named to us yet.
    pub(crate) fn catch_up_soon(self: &Arc<Self>, sphere: &Sphere) {
        if !lock(&self.catching_up).insert(sphere.room.clone()) {
            return;
        }
        let (node, sphere) = (self.clone(), sphere.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            if let Err(e) = node.catch_up(&sphere).await {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot catch up on the sphere");
            }
            lock(&node.catching_up).remove(&sphere.room);
        });
    }

    /// Processes what the room archived since we last looked.
    pub(crate) async fn catch_up(self: &Arc<Self>, sphere: &Sphere) -> Result<()> {
        let room = BareJid::new(&sphere.room)?;
        let owner = self.room_owner(sphere).await;
        let history = self
            .xmpp
            .room_history(&room, sphere.archive_after.clone())
            .await?;
        let mut last = None;
        for item in history {
            let m = item.into_room_message(&room);
            // Some servers (ejabberd) record who sent a message but not their affiliation:
            // the owner is then the account the room last showed as its owner. An encrypted
            // message before we know that waits for the next catch-up.
            let mut unplaced = false;
            let sender = match m.recorded_sender.clone() {
                Some((jid, Affiliation::None)) => match &owner {
                    Some(o) => Some(Sender {
                        owner: *o == jid,
                        jid,
                    }),
                    None => {
                        unplaced = true;
                        None
                    }
                },
                Some((jid, affiliation)) => Some(Sender {
                    owner: affiliation == Affiliation::Owner,
                    jid,
                }),
                None => None,
            };
            if unplaced
                && matches!(
                    m.payload,
                    Some(spheres_xmpp::protocol::SpherePayload::Sealed(_))
                )
            {
                tracing::info!(sphere = %sphere.name, "the room's owner is not known yet; reading its archive again later");
                self.catch_up_soon(sphere);
                break;
            }
            last = m.archive_id.clone();
            // What an epoch ahead of ours needs comes before it in the archive: such a
            // message is past repair here, and said in the log.
            let when = m.unix_time.unwrap_or_else(now_secs);
            self.take_room_message(sphere, m, sender, when).await;
        }
        if let Some(last) = last {
            self.store.set_archive_after(sphere.id, &last).await?;
        }
        Ok(())
    }

    pub(crate) async fn sphere_named(&self, name: &str) -> Result<Sphere, NodeError> {
        self.store.sphere(name).await?.ok_or_else(|| {
            NodeError::NotFound(format!(
                "there is no sphere named {name:?} (see `spheres sphere list`)"
            ))
        })
    }

    /// Makes a sphere; `encrypted`: its payloads go through an MLS group of its members'
    /// nodes (see `sealed`), else the clear protocol any XMPP client reads.
    pub async fn create_sphere(
        &self,
        name: &str,
        encrypted: bool,
    ) -> Result<types::SphereInfo, NodeError> {
        check_sphere_name(name)?;
        if self.store.sphere(name).await?.is_some() {
            refuse!(Conflict, "a sphere named {name:?} already exists");
        }
        let room = BareJid::new(&format!("{}@{}", room_local(name), self.muc))?;
        let settings = RoomSettings {
            name: name.to_owned(),
            description: None,
        };
        self.xmpp
            .create_room(&room, &self.nick, &settings)
            .await
            .context("the server refused to create the sphere's room")?;
        // Publish our endpoints in the room.
        self.xmpp
            .join_room(&room, &self.nick, Some(self.endpoints()))
            .await?;
        let folder = sphere_folder(&self.settings.spheres_dir, name)?;
        let sphere = self
            .store
            .add_sphere(name, room.as_str(), &folder.to_string_lossy(), true)
            .await?;
        // Left by a sphere that had this id before (older versions did not clear it).
        self.forget_sphere_settings(sphere.id).await;
        if encrypted {
            self.start_group(&sphere).await?;
        }
        let sphere = self.sphere_named(name).await?;
        tracing::info!(sphere = name, room = %room, encrypted, "created a sphere");
        self.emit(NodeEvent::Sphere {
            sphere: sphere.name.clone(),
        });
        Ok(self.sphere_info(sphere))
    }

    pub async fn list_spheres(&self) -> Result<Vec<types::SphereInfo>, NodeError> {
        Ok(self
            .store
            .spheres()
            .await?
            .into_iter()
            .map(|s| self.sphere_info(s))
            .collect())
    }

    /// Invites `jid` to a sphere we own (making them a member); a `seeder`'s node holds an
    /// encrypted sphere's files for its members and never gets its keys.
    pub async fn invite(&self, name: &str, jid: &str, seeder: bool) -> Result<(), NodeError> {
        let sphere = self.sphere_named(name).await?;
        if !sphere.owned {
            refuse!(
                Forbidden,
                "only the sphere's owner can invite (you are a member of {name:?})"
            );
        }
        if seeder && !sphere.encrypted {
            refuse!(
                BadInput,
                "{name:?} is open: every member's node holds its files as they are; a keyless seeder is for encrypted spheres"
            );
        }
        let who = address(jid)?;
        if who == self.me {
            refuse!(BadInput, "you own {name:?} already");
        }
        if let Some(m) = self
            .store
            .members(sphere.id)
            .await?
            .into_iter()
            .find(|m| m.jid == who.as_str())
            && m.seeder != seeder
        {
            let (was, asked) = if m.seeder {
                ("a keyless seeder", "a member")
            } else {
                ("a member with the keys", "a keyless seeder")
            };
            refuse!(
                Conflict,
                "{who} is {was} of {name:?}; to make them {asked}, remove them first (`spheres sphere remove {name} {who}`), then invite them again"
            );
        }
        let room = BareJid::new(&sphere.room)?;
        self.xmpp
            .set_affiliation(&room, &who, Affiliation::Member, None)
            .await?;
        let member = self
            .store
            .add_member(sphere.id, who.as_str(), &random_token(16), seeder)
            .await?;
        let hashes = self.sphere_hashes(&sphere).await;
        self.tracker
            .tracker
            .grant_key(member.tracker_key.clone(), KeyScope::Torrents(hashes));
        self.xmpp
            .invite(&room, &who, Some(name), sphere.encrypted, seeder)
            .await?;
        // Their node into the group now if it published its key package already (else when
        // it comes into the room): the welcome waits in the room's archive.
        self.add_to_group(&sphere, &who).await;
        Ok(())
    }

    /// A link for someone with no account: it creates one on the household server (this
    /// node's) and joins the sphere. One link, one person.
    pub async fn invite_link(&self, name: &str) -> Result<String, NodeError> {
        let sphere = self.sphere_named(name).await?;
        if !sphere.owned {
            refuse!(
                Forbidden,
                "only the sphere's owner can make invitation links"
            );
        }
        let (Some(p), Some(h)) = (&self.prosody, &self.household) else {
            refuse!(
                Conflict,
                "invitation links need the household server this node runs; invite an existing account with `spheres sphere invite`"
            );
        };
        let token = p.lock().await.invite().await?.token;
        self.store.set_meta(&format!("link:{token}"), name).await?;
        let pem = std::fs::read_to_string(&h.ca)
            .with_context(|| format!("cannot read {}", h.ca.display()))?;
        let link = spheres_xmpp::link::InviteLink {
            server: self.household_address_for_others(h.c2s)?.to_string(),
            domain: h.domain.clone(),
            token,
            room: sphere.room.clone(),
            owner: self.me.to_string(),
            ca_der: spheres_xmpp::link::der_of_pem(&pem)?,
            sphere: Some(sphere.name.clone()),
        };
        Ok(link.to_string())
    }

    pub async fn invites(&self) -> Result<Vec<types::Invite>, NodeError> {
        Ok(self
            .store
            .invites()
            .await?
            .into_iter()
            .map(|i| types::Invite {
                room: i.room,
                from_jid: i.from_jid,
                reason: i.reason,
                received_at: i.received_at,
                encrypted: i.encrypted,
                seeder: i.holding,
            })
            .collect())
    }

    /// Accepts an invitation: `invite` is the room's JID (or the sphere's name as invited).
    pub async fn join(self: &Arc<Self>, invite: &str) -> Result<types::SphereInfo, NodeError> {
        let invites = self.store.invites().await?;
        let inv = invites
            .iter()
            .find(|i| i.room == invite || i.reason.as_deref() == Some(invite))
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "no pending invitation to {invite:?} (see `spheres sphere invites`)"
                ))
            })?;
        let base = sphere_name_from_invite(inv.reason.as_deref(), &inv.room);
        let mut name = base.clone();
        let mut n = 2;
        while self.store.sphere(&name).await?.is_some()
            || self.settings.spheres_dir.join(&name).exists()
        {
            name = format!("{base} ({n})");
            n += 1;
        }
        let folder = sphere_folder(&self.settings.spheres_dir, &name)?;
        // Encrypted from its first moment when the invitation says so: this node never
        // speaks there in clear.
        let sphere = self
            .store
            .add_sphere_as(
                &name,
                &inv.room,
                &folder.to_string_lossy(),
                false,
                inv.encrypted,
                inv.holding,
            )
            .await?;
        self.store.remove_invite(&inv.room).await?;
        self.forget_sphere_settings(sphere.id).await;
        self.join_sphere_room(&sphere).await;
        self.emit(NodeEvent::Sphere {
            sphere: sphere.name.clone(),
        });
        Ok(self.sphere_info(sphere))
    }

    /// What the node keeps of a sphere outside its row, by the sphere's id (which SQLite gives
    /// again to the next sphere once this one is gone).
    const SPHERE_SETTINGS: [&'static str; 5] = [
        "owner_key",
        "public",
        "clients",
        "swarm_secret",
        "room_owner",
    ];

    /// The account the sphere's room last showed as its owner (us, for a sphere we own).
    pub(crate) async fn room_owner(&self, sphere: &Sphere) -> Option<BareJid> {
        if sphere.owned {
            return Some(self.me.clone());
        }
        let owner = self.store.meta(&format!("room_owner:{}", sphere.id)).await;
        owner.ok().flatten().and_then(|j| BareJid::new(&j).ok())
    }

    /// The room shows `owner` as its owner: remembered for reading its archive where the
    /// server does not record affiliations (see `catch_up`), which is read again when this is
    /// news.
    pub(crate) async fn owner_seen(self: &Arc<Self>, sphere: &Sphere, owner: &BareJid) {
        if sphere.owned || self.room_owner(sphere).await.as_ref() == Some(owner) {
            return;
        }
        let key = format!("room_owner:{}", sphere.id);
        if self.store.set_meta(&key, owner.as_str()).await.is_ok() {
            self.catch_up_soon(sphere);
        }
    }

    /// Forgets what the node kept of sphere `id`: a sphere made later with the same id starts
    /// afresh (its own swarm secret and tracker key, the default policies).
    pub(crate) async fn forget_sphere_settings(&self, id: i64) {
        for what in Self::SPHERE_SETTINGS {
            let _ = self.store.remove_meta(&format!("{what}:{id}")).await;
        }
        lock(&self.peers.swarms).remove(&id);
    }

    pub async fn leave(self: &Arc<Self>, name: &str) -> Result<(), NodeError> {
        let sphere = self.sphere_named(name).await?;
        let room = BareJid::new(&sphere.room)?;
        // Out of its call first (its connections end), then out of its room.
        self.end_sphere_call(&room).await;
        let _ = self.xmpp.leave_room(&room, &self.nick).await;
        for share in self.store.shares(sphere.id).await? {
            if let Ok(hash) = share.info_hash.parse::<InfoHash>() {
                let _ = self.engine.remove(&hash, false).await;
            }
        }
        self.store.remove_sphere(sphere.id).await?;
        self.forget_sphere_settings(sphere.id).await;
        self.forget_group(&sphere).await;
        lock(&self.rooms).forget(&sphere.room);
        self.emit(NodeEvent::Sphere {
            sphere: sphere.name,
        });
        Ok(())
    }

    pub async fn remove_member(&self, name: &str, jid: &str) -> Result<(), NodeError> {
        let sphere = self.sphere_named(name).await?;
        if !sphere.owned {
            refuse!(Forbidden, "only the sphere's owner can remove members");
        }
        let who = address(jid)?;
        let room = BareJid::new(&sphere.room)?;
        // No longer a member here first (so no presence of theirs brings their node back
        // into the group), then out of the encryption group while their node is still in the
        // room to hear it (nothing said from now on opens for it), then out of the room.
        if let Some(key) = self.store.remove_member(sphere.id, who.as_str()).await? {
            self.tracker.tracker.revoke_key(&key);
        }
        lock(&self.held_for).remove(&(sphere.id, who.to_string()));
        self.remove_from_group(&sphere, &who).await;
        self.xmpp.remove_member(&room, &who).await?;
        // A new swarm secret, which the removed member's node never gets: it can no longer
        // join the sphere's swarms (connections already made stay until they close). The
        // members here get it now; the others when they come back.
        self.set_swarm_secret(&sphere, rand::random()).await;
        let present = lock(&self.rooms).present(&sphere.room);
        for (jid, occ) in present {
            if jid != who.as_str()
                && let Ok(real) = BareJid::new(&jid)
            {
                self.send_grant(&sphere, &room, &occ.nick, real).await;
            }
        }
        Ok(())
    }

    pub async fn members(&self, name: &str) -> Result<Vec<types::Member>, NodeError> {
        let sphere = self.sphere_named(name).await?;
        let room = BareJid::new(&sphere.room)?;
        let affiliated = self.xmpp.room_members(&room).await?;
        let present = lock(&self.rooms).present(&sphere.room);
        let list: Vec<_> = affiliated
            .into_iter()
            .map(|(jid, aff)| {
                let j = jid.to_string();
                let online = j == self.me.as_str() || present.contains_key(&j);
                let endpoints: Vec<String> = present
                    .get(&j)
                    .and_then(|o| o.endpoints.clone())
                    .map(|e| {
                        e.endpoints
                            .iter()
                            .map(|x| format!("{}:{}", x.host, x.port))
                            .collect()
                    })
                    .unwrap_or_default();
                types::Member {
                    jid: j,
                    affiliation: format!("{aff:?}").to_lowercase(),
                    online,
                    endpoints,
                }
            })
            .collect();
        Ok(list)
    }

    /// Whether an always-on node joins an invitation from `from` (a bare JID) by itself: only
    /// from the JIDs and domains it was told (`--accept-invites-from`), by default the domain
    /// of its household server (or of its account).
    pub(crate) fn accepts_invites_from(&self, from: &str) -> bool {
        let domain = from.rsplit_once('@').map_or(from, |(_, d)| d);
        let allowed = &self.settings.accept_invites_from;
        if allowed.is_empty() {
            // The household this node runs; on someone else's server (perhaps a public one,
            // where anyone has an account) nobody, unless told.
            return self
                .household
                .as_ref()
                .is_some_and(|h| domain.eq_ignore_ascii_case(&h.domain));
        }
        allowed
            .iter()
            .map(|a| a.trim())
            .any(|a| a.eq_ignore_ascii_case(from) || a.eq_ignore_ascii_case(domain))
    }

    /// Who sent a live message in a sphere's room: the real JID and affiliation the room
    /// gave in that occupant's presence (never what the message says of itself).
    pub(crate) fn sender_in_room(&self, sphere: &Sphere, nick: &str) -> Option<Sender> {
        lock(&self.rooms).sender(&sphere.room, nick, (&self.me, &self.nick), sphere.owned)
    }

    /// What the node fetches in a sphere: `all`, `none` (on demand, `fetch`) or `max:SIZE`.
    pub async fn set_policy(&self, name: &str, policy: &str) -> Result<String, NodeError> {
        let sphere = self.sphere_named(name).await?;
        // Who joins the sphere's swarms: members' nodes only, or their plain clients too.
        if let Some(clients) = policy.trim().strip_prefix("clients:") {
            if !matches!(clients, "members" | "plain") {
                refuse!(
                    BadInput,
                    "{policy:?} is not a policy: use clients:members or clients:plain"
                );
            }
            if !sphere.owned {
                refuse!(
                    Forbidden,
                    "only the sphere's owner (whose tracker knows members' clients) can let plain clients in"
                );
            }
            self.store
                .set_meta(&format!("clients:{}", sphere.id), clients)
                .await?;
            self.swarm(&sphere)
                .await
                .plain
                .store(clients == "plain", std::sync::atomic::Ordering::Relaxed);
            self.emit(NodeEvent::Sphere {
                sphere: sphere.name,
            });
            return Ok(format!("clients:{clients}"));
        }
        // Public torrents members pass on: fetched by themselves, or left for the person.
        if let Some(public) = policy.trim().strip_prefix("public:") {
            if !matches!(public, "allow" | "ask") {
                refuse!(
                    BadInput,
                    "{policy:?} is not a policy: use public:allow or public:ask"
                );
            }
            self.store
                .set_meta(&format!("public:{}", sphere.id), public)
                .await?;
            self.emit(NodeEvent::Sphere {
                sphere: sphere.name,
            });
            return Ok(format!("public:{public}"));
        }
        let normal = policy
            .parse::<types::Policy>()
            .map_err(NodeError::BadInput)?
            .to_string();
        self.store.set_policy(sphere.id, &normal).await?;
        self.emit(NodeEvent::Sphere {
            sphere: sphere.name,
        });
        Ok(normal)
    }

    /// Grants a torrent of a sphere we own to its members' keys and to our own key for that
    /// sphere.
    pub(crate) async fn sphere_owned_grant(&self, sphere: &Sphere, hash: &InfoHash) {
        if !sphere.owned {
            return;
        }
        let tracker = &self.tracker.tracker;
        if let Ok(members) = self.store.members(sphere.id).await {
            for m in members {
                tracker.grant_torrent(&m.tracker_key, *hash);
            }
        }
        match self.owner_key(sphere).await {
            Ok(key) => tracker.grant_torrent(&key, *hash),
            Err(e) => {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot read the sphere's tracker key")
            }
        }
    }

    /// Our own tracker key for a sphere we own: it goes into every .torrent we share there,
    /// so it grants that sphere's torrents and nothing else (a member who reads it learns
    /// nothing of our other spheres).
    pub(crate) async fn owner_key(&self, sphere: &Sphere) -> Result<String> {
        let name = format!("owner_key:{}", sphere.id);
        if let Some(key) = self.store.meta(&name).await? {
            return Ok(key);
        }
        let key = random_token(16);
        self.store.set_meta(&name, &key).await?;
        Ok(key)
    }

    pub async fn shares(&self, name: &str) -> Result<Vec<types::ShareInfo>, NodeError> {
        let sphere = self.sphere_named(name).await?;
        let mut list = Vec::new();
        for ((sphere_name, path), (done, total)) in lock(&self.hashing).iter() {
            if *sphere_name == sphere.name {
                list.push(types::ShareInfo::hashing(path.clone(), *done, *total));
            }
        }
        let unconfirmed = self.store.outbox(sphere.id).await?;
        for s in self.store.shares(sphere.id).await? {
            let status = s
                .info_hash
                .parse::<InfoHash>()
                .ok()
                .and_then(|h| self.engine.status(&h));
            let state = s.share_state();
            let size = u64::try_from(s.size).unwrap_or(0);
            list.push(types::ShareInfo {
                have_bytes: status.as_ref().map_or(
                    if state == types::ShareState::Seeding {
                        size
                    } else {
                        0
                    },
                    |t| t.have_bytes,
                ),
                total_bytes: size,
                size: Some(size),
                files: Some(u64::try_from(s.files).unwrap_or(0)),
                // Ours, and the room has not confirmed it yet: members do not know of it.
                announced: Some(!unconfirmed.contains(&s.info_hash)),
                media: Some(s.media),
                sharer: Some(s.sharer),
                path: s.path,
                error: s.error,
                peers: Some(status.as_ref().map_or(0, |t| t.peers)),
                transfer: status
                    .as_ref()
                    .map(|t| format!("{:?}", t.state).to_lowercase()),
                download_bps: Some(status.as_ref().map_or(0, |t| t.download_bps)),
                upload_bps: Some(status.as_ref().map_or(0, |t| t.upload_bps)),
                info_hash: Some(s.info_hash),
                name: s.name,
                state,
            });
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: an invitation (from anyone who can send us a message) names a room whose
    /// local part or reason would make the sphere's folder the spheres folder's parent, the
    /// root, or a path elsewhere.
    #[test]
    fn names_from_invitations_never_leave_the_spheres_folder() {
        let hostile = [
            "..",
            ".",
            "",
            " ",
            "/etc",
            "../../.ssh",
            "a/b",
            "a\\b",
            ".bashrc",
            "C:",
            "\0x",
        ];
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Spheres");
        for reason in hostile {
            for local in hostile {
                let room = format!("{local}@rooms.evil.test");
                let name = sphere_name_from_invite(Some(reason), &room);
                let folder = sphere_folder(&root, &name).unwrap();
                assert_eq!(
                    folder.parent().unwrap(),
                    root.canonicalize().unwrap(),
                    "{reason:?} / {room:?} gave {name:?}"
                );
            }
        }
        assert_eq!(
            sphere_name_from_invite(Some("Family"), "x@rooms.home.test"),
            "Family"
        );
        assert_eq!(
            sphere_name_from_invite(Some("../x"), "family-1a2b@rooms.home.test"),
            "family-1a2b"
        );
        assert_eq!(
            sphere_name_from_invite(None, "..@rooms.evil.test"),
            "Sphere"
        );
        // A name whose folder is a link to elsewhere is refused, not followed.
        std::os::unix::fs::symlink(dir.path(), root.join("Elsewhere")).unwrap();
        let err = sphere_folder(&root, "Elsewhere").unwrap_err().to_string();
        assert!(err.contains("outside the spheres folder"), "{err}");
        for bad in ["..", ".", "", "a/b", "/etc"] {
            assert!(sphere_folder(&root, bad).is_err(), "{bad:?}");
        }
    }
}
