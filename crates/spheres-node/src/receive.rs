//! Receiving shares: an announcement is checked against its sender and its torrent, counted
//! against the member's hourly budget, then fetched when the sphere's policy and the free space
//! allow; downloads complete into the sphere's folder (see `incoming`); withdrawals.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use spheres_metainfo::{InfoHash, Metainfo};
use spheres_store::{NewShare, Sphere};
use spheres_torrent::{AddOptions, SealSpec, Source};
use spheres_xmpp::BareJid;
use spheres_xmpp::protocol::{SealedShare, Share, Withdraw};

use crate::RowState as _;
use crate::api::types;
use crate::api::types::{Policy, ShareState};
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::rooms::Sender;
use crate::send::MAGNET_PATIENCE;
use crate::units::human_bytes;
use crate::uploads::{UPLOAD_HEADROOM, free_bytes};
use crate::{Node, lock};

/// The key and real files of a sealed share (an encrypted sphere's, docs/decisions/0015),
/// from its announcement; `None` for a share in clear.
pub(crate) fn seal_spec(s: &Share) -> Result<Option<SealSpec>> {
    let Some(sealed) = &s.sealed else {
        return Ok(None);
    };
    let key = sealed
        .key_bytes()
        .ok_or_else(|| anyhow!("a sealed share's key is not 64 hex digits; ignored"))?;
    Ok(Some(SealSpec {
        seal: spheres_metainfo::seal::Seal::new(key),
        name: s.name.clone(),
        files: sealed
            .files
            .iter()
            .map(|f| spheres_metainfo::seal::SealedFile {
                path: f.path.split('/').map(str::to_owned).collect(),
                length: f.length,
            })
            .collect(),
        folder: sealed.folder(),
    }))
}

/// The torrent of an announcement as this node stores and shows it: a sealed one seen with
/// its real files (checked: see `Metainfo::with_layout`).
pub(crate) fn announced_meta(s: &Share, torrent: &[u8]) -> Result<Metainfo> {
    let meta = Metainfo::from_bytes(torrent).context("the announced torrent is invalid")?;
    match seal_spec(s)? {
        Some(spec) => spec
            .view(&meta)
            .context("the sealed share's files do not fit its torrent"),
        None => Ok(meta),
    }
}

/// A sealed share's `<sealed/>` as the store keeps it.
pub(crate) fn sealed_text(s: &Share) -> Option<String> {
    s.sealed.as_ref().map(SealedShare::to_text)
}

/// An announcement must say what its torrent holds: same name, total size and file count
/// (the gallery, the policy and the free-space checks go by what it says).
pub(crate) fn check_announced(s: &Share, meta: &Metainfo) -> Result<()> {
    if meta.info_hash.to_hex() != s.id {
        bail!("the announced torrent's info hash does not match the share id; ignored");
    }
    let comparable = |n: &str| spheres_xmpp::protocol::xml_safe(n).replace(['\t', '\n', '\r'], " ");
    let files = meta.visible_files().count() as u64;
    if comparable(&s.name) != comparable(&meta.name)
        || s.size != meta.total_length
        || s.files != files
    {
        bail!(
            "the announcement of {:?} ({} bytes, {} files) does not match its torrent ({:?}, {} bytes, {} files); ignored",
            s.name,
            s.size,
            s.files,
            meta.name,
            meta.total_length,
            files
        );
    }
    Ok(())
}

impl Node {
    pub(crate) fn share_from_row(&self, r: &spheres_store::ShareRow) -> Share {
        Share {
            id: r.info_hash.clone(),
            name: r.name.clone(),
            size: r.size.max(0) as u64,
            files: r.files.max(0) as u64,
            media: r.media.clone(),
            sharer: BareJid::new(&r.sharer).unwrap_or_else(|_| self.me.clone()),
            magnet: r.magnet.clone(),
            torrent: r.torrent.clone(),
            sealed: r.sealed.as_deref().and_then(SealedShare::from_text),
        }
    }

    /// A share announced in a sphere by `sender`: record it and fetch it by the sphere's
    /// policy. Only the sharer can announce their share, and what it says must be what its
    /// torrent holds.
    pub(crate) async fn on_share(
        self: &Arc<Self>,
        sphere: &Sphere,
        s: Share,
        sender: &Sender,
    ) -> Result<()> {
        if s.sharer != sender.jid {
            bail!("{} announced a share as {}; ignored", sender.jid, s.sharer);
        }
        let mut public = false;
        if let Some(torrent) = &s.torrent {
            // The .torrent must be what the announcement says: its paths are checked here
            // (a sealed one's, the real files the announcement lists).
            let meta = announced_meta(&s, torrent)?;
            check_announced(&s, &meta)?;
            public = !meta.private;
        }
        if sphere.holding && public {
            bail!("a keyless seeder holds sealed torrents, which are private; ignored");
        }
        // A public torrent passed on by a member would make this node a peer of a public
        // swarm: only when the member's policy says so. Our own are ours to fetch.
        let ask = public && sender.jid != self.me && !self.public_allowed(sphere).await;
        // A policy this version cannot read (written by a newer one) fetches as the default.
        let policy: Policy = sphere.policy.parse().unwrap_or(Policy::All);
        let mut wanted = !ask && policy.wants(s.size);
        // Never fetched by itself past what the disk can take (the person may still ask).
        let free = free_bytes(Path::new(&sphere.folder)).unwrap_or(0);
        let too_big = wanted && s.size.saturating_add(UPLOAD_HEADROOM) > free;
        if too_big {
            tracing::warn!(sphere = %sphere.name, share = %s.name, size = s.size, free, "not enough space to fetch a share by itself");
            wanted = false;
        }
        let state = if wanted {
            ShareState::Downloading
        } else {
            ShareState::Available
        }
        .as_str();
        let new = self
            .store
            .add_share(
                sphere.id,
                &NewShare {
                    info_hash: &s.id,
                    name: &s.name,
                    size: s.size,
                    files: s.files,
                    media: &s.media,
                    sharer: s.sharer.as_str(),
                    magnet: &s.magnet,
                    torrent: s.torrent.as_deref(),
                    path: None,
                    state,
                    sealed: sealed_text(&s).as_deref(),
                },
            )
            .await?;
        if too_big && new {
            let why = format!(
                "not enough space to fetch it by itself ({} needed, {} free); free some space, then fetch it",
                human_bytes(s.size),
                human_bytes(free.saturating_sub(UPLOAD_HEADROOM))
            );
            self.store
                .set_share_state(
                    sphere.id,
                    &s.id,
                    ShareState::Available.as_str(),
                    None,
                    Some(&why),
                )
                .await?;
        }
        if let Ok(hash) = s.id.parse::<InfoHash>() {
            self.sphere_owned_grant(sphere, &hash).await;
            self.feed_endpoints(sphere).await;
        }
        if new {
            self.emit(NodeEvent::Share {
                sphere: sphere.name.clone(),
            });
            // A member's sealed share, for the sphere's keyless seeders.
            if sphere.owned && sender.jid != self.me {
                self.send_holds(sphere, std::slice::from_ref(&s)).await;
            }
        }
        if !new || !wanted {
            return Ok(());
        }
        tracing::info!(sphere = %sphere.name, share = %s.name, "fetching a new share");
        // In its own task: a magnet can take a while to resolve, and announcements wait.
        self.fetch_in_background(sphere.clone(), s, false);
        Ok(())
    }

    /// Fetches a share in its own task; a failure is recorded on the share (`failed`, with
    /// why), for the person to see.
    fn fetch_in_background(self: &Arc<Self>, sphere: Sphere, share: Share, asked: bool) {
        let node = self.clone();
        tokio::spawn(async move {
            if let Err(e) = node.fetch_share(&sphere, &share, asked).await {
                tracing::warn!(share = %share.name, error = %e, "cannot fetch a share");
                let _ = node
                    .store
                    .set_share_state(
                        sphere.id,
                        &share.id,
                        ShareState::Failed.as_str(),
                        None,
                        Some(&format!("{e:#}")),
                    )
                    .await;
            }
        });
    }

    /// Starts fetching an announced share. One announced by its magnet alone has its
    /// metadata fetched first, and checked against the announcement (and against the
    /// sphere's policy on public torrents) before any of its data is.
    /// `asked`: the person asked for this share (public or not).
    pub(crate) async fn fetch_share(&self, sphere: &Sphere, s: &Share, asked: bool) -> Result<()> {
        if s.torrent.is_some() {
            return self.add_to_engine(sphere, s, None).await;
        }
        // From the sphere's own tracker and members only: the trackers and peers the
        // announcement names are the sender's choice, and nothing is checked yet.
        let mut magnet = format!("magnet:?xt=urn:btih:{}", s.id);
        if let Some(announce) = self.announce_url(sphere).await {
            magnet.push_str("&tr=");
            magnet.extend(percent_encoding::utf8_percent_encode(
                &announce,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        let peers = self.peers_for(&sphere.room, &s.id);
        let members = self.admit(sphere, true).await;
        let bytes = self
            .engine
            .metadata(
                &magnet,
                peers,
                Duration::from_secs(60),
                MAGNET_PATIENCE,
                &members,
            )
            .await?;
        let meta = announced_meta(s, &bytes).context("the share's metadata is invalid")?;
        check_announced(s, &meta)?;
        if sphere.holding && !meta.private {
            bail!("a keyless seeder holds sealed torrents, which are private; this one is not");
        }
        self.store
            .set_share_torrent(sphere.id, &s.id, &bytes)
            .await?;
        if !asked && !meta.private && s.sharer != self.me && !self.public_allowed(sphere).await {
            tracing::info!(share = %s.name, "a public torrent: waiting for the member to fetch it");
            self.store
                .set_share_state(sphere.id, &s.id, ShareState::Available.as_str(), None, None)
                .await?;
            return Ok(());
        }
        let mut full = s.clone();
        full.torrent = Some(bytes);
        self.add_to_engine(sphere, &full, None).await
    }

    /// Whether members' public torrents are fetched in this sphere without asking.
    pub(crate) async fn public_allowed(&self, sphere: &Sphere) -> bool {
        matches!(
            self.store.meta(&format!("public:{}", sphere.id)).await,
            Ok(Some(v)) if v == "allow"
        )
    }

    /// Adds a share to the engine: seeding `path` in place, or downloading into the sphere's
    /// folder. The torrent announces to the sphere's tracker with our own key.
    pub(crate) async fn add_to_engine(
        &self,
        sphere: &Sphere,
        s: &Share,
        path: Option<&str>,
    ) -> Result<()> {
        let hash: InfoHash = s.id.parse().map_err(|_| anyhow!("bad share id"))?;
        if self.engine.status(&hash).is_some() {
            // In the engine already, with the admission it was first given (`Gate`).
            return Ok(());
        }
        // Withdrawn meanwhile (while its metadata was being fetched): never fetched again.
        if let Some(row) = self.store.share(sphere.id, &s.id).await?
            && row.share_state() == ShareState::Withdrawn
        {
            return Ok(());
        }
        // A magnet is fetched from members as a private torrent would be.
        let private = s
            .torrent
            .as_ref()
            .is_none_or(|t| Metainfo::from_bytes(t).is_ok_and(|m| m.private));
        let admit = self.admit(sphere, private).await;
        let announce = self.announce_url(sphere).await;
        let source = match &s.torrent {
            Some(t) => {
                // A sphere torrent announces with our own key; a public torrent someone
                // passed on keeps its own trackers.
                let bytes = match &announce {
                    Some(a) if private => {
                        spheres_metainfo::with_trackers(t, std::slice::from_ref(a))?
                    }
                    _ => t.clone(),
                };
                Source::Torrent(bytes)
            }
            None => Source::Magnet(s.magnet.clone()),
        };
        let mut opts = match path {
            Some(p) => AddOptions::seed(p),
            None => {
                // Out of sight until complete and verified (see `incoming`).
                let staging = crate::incoming::incoming_dir(Path::new(&sphere.folder), &s.id);
                std::fs::create_dir_all(&staging)
                    .with_context(|| format!("cannot create {}", staging.display()))?;
                AddOptions::download(staging)
            }
        };
        opts.peers = self.peers_for(&sphere.room, &s.id);
        opts.admit = admit;
        opts.seal = seal_spec(s)?;
        self.engine.add(source, opts).await?;
        Ok(())
    }

    /// A share taken back, by its sharer or the sphere's owner. Members stop fetching and
    /// seeding it; what they already have in the sphere's folder stays theirs, and the rest
    /// (a download still arriving, a keyless seeder's ciphertext) goes. The owner's node
    /// tells the sphere's keyless seeders, who cannot read the withdrawal.
    pub(crate) async fn on_withdraw(
        &self,
        sphere: &Sphere,
        w: Withdraw,
        sender: &Sender,
    ) -> Result<()> {
        let Some(row) = self.store.share(sphere.id, &w.id).await? else {
            return Ok(());
        };
        if row.sharer != sender.jid.as_str() && !sender.owner {
            bail!(
                "{} tried to withdraw {}, shared by {}; ignored",
                sender.jid,
                row.name,
                row.sharer
            );
        }
        if row.share_state() == ShareState::Withdrawn {
            return Ok(());
        }
        self.store
            .set_share_state(
                sphere.id,
                &row.info_hash,
                ShareState::Withdrawn.as_str(),
                None,
                None,
            )
            .await?;
        let _ = self.store.remove_outbox(sphere.id, &row.info_hash).await;
        self.link_closed(crate::links::share_key(sphere.id, &row.info_hash));
        self.let_go(sphere, &row.info_hash).await;
        if sphere.owned {
            self.send_unholds(sphere, &row.info_hash).await;
        }
        self.emit(NodeEvent::Share {
            sphere: sphere.name.clone(),
        });
        Ok(())
    }

    /// Stops fetching and seeding a share here (withdrawn, or its copy deleted), unless
    /// another sphere of ours still fetches or seeds the same torrent, and removes what this
    /// node keeps of it out of sight (`incoming`: what is still arriving, a keyless seeder's
    /// ciphertext). What is in the sphere's folder (the sharer's own file, a member's
    /// finished copy, a hard link) stays.
    async fn let_go(&self, sphere: &Sphere, info_hash: &str) {
        for other in self.store.spheres().await.unwrap_or_default() {
            if other.id == sphere.id {
                continue;
            }
            if let Ok(Some(r)) = self.store.share(other.id, info_hash).await
                && matches!(
                    r.share_state(),
                    ShareState::Downloading | ShareState::Seeding
                )
            {
                return;
            }
        }
        if let Ok(hash) = info_hash.parse::<InfoHash>() {
            let _ = self.engine.remove(&hash, false).await;
        }
        let staging = crate::incoming::incoming_dir(Path::new(&sphere.folder), info_hash);
        match std::fs::remove_dir_all(&staging) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %staging.display(), error = %e, "cannot remove a share's data");
            }
            _ => {}
        }
    }

    /// One of a sphere's shares, by its name or info hash.
    pub(crate) async fn share_named(
        &self,
        sphere: &Sphere,
        share: &str,
    ) -> Result<spheres_store::ShareRow, NodeError> {
        let name = &sphere.name;
        self.store
            .shares(sphere.id)
            .await?
            .into_iter()
            .find(|r| r.info_hash == share || r.name == share)
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "{name:?} has no share {share:?} (see `spheres shares {name}`)"
                ))
            })
    }

    /// Takes back a share of ours (or, for the sphere's owner, anyone's): its members' nodes
    /// stop fetching and seeding it; the file stays where it is on this machine.
    pub async fn take_back(&self, name: &str, share: &str) -> Result<types::ShareInfo, NodeError> {
        let sphere = self.sphere_named(name).await?;
        let row = self.share_named(&sphere, share).await?;
        let us = Sender {
            jid: self.me.clone(),
            owner: sphere.owned,
        };
        if row.sharer != self.me.as_str() && !sphere.owned {
            refuse!(
                Forbidden,
                "{:?} was shared by {}: only they or the sphere's owner can take it back",
                row.name,
                row.sharer
            );
        }
        if row.share_state() != ShareState::Withdrawn {
            let w = Withdraw {
                id: row.info_hash.clone(),
            };
            let room = BareJid::new(&sphere.room)?;
            self.send_in_room(&sphere, w.clone().into_message(room, &self.nick, &row.name))
                .await?;
            self.on_withdraw(&sphere, w, &us).await?;
        }
        self.shares(name)
            .await?
            .into_iter()
            .find(|s| s.info_hash.as_deref() == Some(row.info_hash.as_str()))
            .ok_or_else(|| NodeError::NotFound(format!("{:?} is gone", row.name)))
    }

    /// A download is complete and verified: it appears in the sphere's folder (never over
    /// anything already there) and the share is `seeding`.
    pub(crate) async fn complete_download(
        &self,
        sphere: &Sphere,
        share: &spheres_store::ShareRow,
        hash: &InfoHash,
    ) {
        // Once: the engine's event and the housekeeping's look can both come.
        let key = (sphere.id, share.info_hash.clone());
        if !lock(&self.completing).insert(key.clone()) {
            return;
        }
        self.place_download(sphere, share, hash).await;
        lock(&self.completing).remove(&key);
    }

    async fn place_download(
        &self,
        sphere: &Sphere,
        share: &spheres_store::ShareRow,
        hash: &InfoHash,
    ) {
        // Still to be placed (the other caller may have done it meanwhile).
        match self.store.share(sphere.id, &share.info_hash).await {
            Ok(Some(row)) if row.share_state() == ShareState::Downloading => {}
            _ => return,
        }
        let Some(meta) = self.engine.metainfo(hash) else {
            return;
        };
        let Some(st) = self.engine.status(hash) else {
            return;
        };
        let folder = PathBuf::from(&sphere.folder);
        // Where the engine has it: this sphere's `incoming`, or another sphere's when the same
        // torrent is in both.
        let source = if meta.multi_file {
            st.root
                .parent()
                .map_or_else(|| st.root.clone(), Path::to_path_buf)
        } else {
            st.root.clone()
        };
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        let placed = if sphere.holding {
            // A keyless seeder's ciphertext stays where it was fetched, out of the sphere's
            // folder (one file, `sealed`).
            Ok(st.root.join(&meta.name))
        } else if same(&source, &folder) {
            // Downloaded before downloads were staged: already in place.
            Ok(st.root.clone())
        } else {
            tokio::task::spawn_blocking(move || crate::incoming::place(&source, &folder, &meta))
                .await
                .map_err(|e| anyhow!("{e}"))
                .and_then(|r| r.context("cannot put the download in the sphere's folder"))
        };
        let (state, path, error) = match placed {
            Ok(p) => {
                tracing::info!(share = %share.name, path = %p.display(), "download complete and verified");
                (
                    ShareState::Seeding.as_str(),
                    Some(p.to_string_lossy().into_owned()),
                    None,
                )
            }
            Err(e) => {
                tracing::warn!(share = %share.name, error = %format!("{e:#}"), "cannot place a download");
                (ShareState::Failed.as_str(), None, Some(format!("{e:#}")))
            }
        };
        let _ = self
            .store
            .set_share_state(
                sphere.id,
                &share.info_hash,
                state,
                path.as_deref(),
                error.as_deref(),
            )
            .await;
        self.emit(NodeEvent::Share {
            sphere: sphere.name.clone(),
        });
    }

    /// A fetched share whose copy in the sphere's folder the person deleted: the copy the
    /// engine seeds (out of sight, in `incoming`) goes too, and the share is `available`
    /// again. Deleting the file is how a person says "not on this computer".
    pub(crate) async fn forget_if_removed(&self, sphere: &Sphere, share: &spheres_store::ShareRow) {
        let staging = crate::incoming::incoming_dir(Path::new(&sphere.folder), &share.info_hash);
        let Some(path) = share.path.as_deref() else {
            return;
        };
        let gone = matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        if !gone || !staging.exists() {
            return;
        }
        tracing::info!(share = %share.name, "its copy was deleted from the sphere's folder; no longer kept here");
        self.let_go(sphere, &share.info_hash).await;
        let _ = self
            .store
            .set_share_state(
                sphere.id,
                &share.info_hash,
                ShareState::Available.as_str(),
                None,
                None,
            )
            .await;
        self.emit(NodeEvent::Share {
            sphere: sphere.name.clone(),
        });
    }

    /// Fetches a share the policy left aside (by name or info hash).
    pub async fn fetch(
        self: &Arc<Self>,
        name: &str,
        share: &str,
    ) -> Result<types::Fetching, NodeError> {
        let sphere = self.sphere_named(name).await?;
        let row = self.share_named(&sphere, share).await?;
        if row.share_state() == ShareState::Available || row.share_state() == ShareState::Failed {
            self.store
                .set_share_state(
                    sphere.id,
                    &row.info_hash,
                    ShareState::Downloading.as_str(),
                    None,
                    None,
                )
                .await?;
            let share = self.share_from_row(&row);
            if share.torrent.is_some() {
                self.add_to_engine(&sphere, &share, None).await?;
            } else {
                // Its metadata first, which can take a while: in the background.
                self.fetch_in_background(sphere, share, true);
            }
        }
        Ok(types::Fetching {
            name: row.name.clone(),
            info_hash: row.info_hash.clone(),
            state: types::ShareState::Downloading,
        })
    }
}
