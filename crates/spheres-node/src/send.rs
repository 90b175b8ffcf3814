//! Sending shares: a file or folder hashed into a private torrent seeded in place, a dropped
//! `.torrent` or `.magnet` passed on, and the announcement sent to the room through the outbox
//! until the room confirms it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use spheres_metainfo::{CreateOptions, Metainfo};
use spheres_store::{NewShare, Sphere};
use spheres_xmpp::BareJid;
use spheres_xmpp::protocol::Share;

use crate::api::types;
use crate::api::types::ShareState;
use crate::error::{NodeError, refuse};
use crate::events::NodeEvent;
use crate::rooms::Outgoing;
use crate::rooms::Sender;
use crate::{Node, lock, now_secs};

/// What a file is, from its name's extension.
fn kind_of(f: &spheres_metainfo::FileEntry) -> &'static str {
    let ext = f
        .path
        .last()
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "mkv" | "webm" | "mov" | "avi" | "m4v" | "ogv" => "video",
        "mp3" | "flac" | "ogg" | "opus" | "m4a" | "wav" | "aac" => "audio",
        "jpg" | "jpeg" | "png" | "gif" | "webp" | "heic" | "avif" | "tif" | "tiff" => "image",
        "pdf" | "txt" | "odt" | "doc" | "docx" | "md" | "epub" => "document",
        "zip" | "tar" | "gz" | "7z" | "xz" | "zst" | "rar" => "archive",
        _ => "other",
    }
}

/// The media hint of a share, from its files' extensions, weighted by size.
pub(crate) fn media_of(meta: &Metainfo) -> &'static str {
    let mut by_kind: HashMap<&'static str, u64> = HashMap::new();
    for (_, f) in meta.visible_files() {
        *by_kind.entry(kind_of(f)).or_default() += f.length;
    }
    by_kind
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or("other", |(k, _)| k)
}

/// Whether a share has something people play while it downloads (a video, a song).
fn playable(meta: &Metainfo) -> bool {
    meta.visible_files()
        .any(|(_, f)| matches!(kind_of(f), "video" | "audio"))
}

/// How long a dropped magnet's metadata is looked for before the watcher starts over.
pub(crate) const MAGNET_PATIENCE: Duration = Duration::from_secs(30 * 60);

/// A share's torrent, what it describes, and for a sealed one its seal, files and whether it
/// is a folder.
type Made = (
    Vec<u8>,
    Metainfo,
    Option<(
        spheres_metainfo::seal::Seal,
        Vec<spheres_metainfo::seal::SealedFile>,
        bool,
    )>,
);

impl Node {
    /// Shares a file or folder in a sphere: hash it (progress visible in `shares`), seed it
    /// in place, announce it in the room.
    pub async fn share(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
    ) -> Result<types::Shared, NodeError> {
        let sphere = self.sphere_named(name).await?;
        if sphere.holding {
            refuse!(
                Forbidden,
                "this node holds {name:?}'s encrypted files for its members, without the keys: it cannot share there"
            );
        }
        let path = path.canonicalize().map_err(|e| {
            NodeError::NotFound(format!(
                "cannot find {} on this machine: {e}",
                path.display()
            ))
        })?;
        let announce = self
            .announce_url(&sphere)
            .await
            .ok_or_else(|| NodeError::Unavailable("the sphere's owner has not given this node its tracker key yet; try again in a moment".into()))?;
        let key = (name.to_owned(), path.to_string_lossy().into_owned());
        lock(&self.hashing).insert(key.clone(), (0, 0));
        let opts = CreateOptions {
            private: true,
            trackers: vec![vec![announce]],
            created_by: Some(format!("spheres {}", env!("CARGO_PKG_VERSION"))),
            creation_date: Some(now_secs()),
            ..Default::default()
        };
        // In an encrypted sphere the share is sealed: a key of its own, a torrent over the
        // encrypted bytes that names nothing (docs/decisions/0015). Files put back by an import
        // take their old key back, when they are still the same files (a key never seals two
        // different contents: that would give away both).
        let again = if sphere.encrypted {
            self.remembered_seal(&path).await
        } else {
            None
        };
        let fresh = || spheres_metainfo::seal::Seal::new(rand::random());
        let seal = sphere.encrypted.then(|| match &again {
            Some((key, _)) => spheres_metainfo::seal::Seal::new(*key),
            None => fresh(),
        });
        let mut made = self.hash_share(&key, &path, &opts, seal).await;
        if let (Some((_, hash)), Ok((_, meta, _))) = (&again, &made)
            && meta.info_hash.to_hex() != *hash
        {
            made = self.hash_share(&key, &path, &opts, Some(fresh())).await;
        }
        lock(&self.hashing).remove(&key);
        let (torrent, meta, sealed) =
            made.with_context(|| format!("cannot share {}", path.display()))?;
        let mut share = self.share_of(&meta, torrent.clone());
        if let Some((seal, files, folder)) = sealed {
            share.sealed = Some(spheres_xmpp::protocol::SealedShare {
                key: hex::encode(seal.key()),
                kind: if folder { "folder" } else { "file" }.to_owned(),
                files: files
                    .into_iter()
                    .map(|f| spheres_xmpp::protocol::SealedFileEntry {
                        path: f.path.join("/"),
                        length: f.length,
                    })
                    .collect(),
            });
        }
        let path_text = path.to_string_lossy().into_owned();
        self.store
            .add_share(
                sphere.id,
                &NewShare {
                    info_hash: &share.id,
                    name: &share.name,
                    size: share.size,
                    files: share.files,
                    media: &share.media,
                    sharer: share.sharer.as_str(),
                    magnet: &share.magnet,
                    torrent: Some(&torrent),
                    path: Some(&path_text),
                    state: ShareState::Seeding.as_str(),
                    sealed: crate::receive::sealed_text(&share).as_deref(),
                },
            )
            .await?;
        self.sphere_owned_grant(&sphere, &meta.info_hash).await;
        self.emit(NodeEvent::Share {
            sphere: sphere.name.clone(),
        });
        self.add_to_engine(&sphere, &share, Some(&path_text))
            .await
            .context("cannot seed the share")?;
        // The first seed of new photos or documents super-seeds: each member gets pieces of
        // its own and they trade for the rest, so our upload goes out about once (over once
        // every piece went out). Not what plays while it downloads: a viewer needs the pieces
        // where it reads, which super-seeding would not offer it.
        if !playable(&meta) {
            let _ = self.engine.set_super_seeding(&meta.info_hash, true);
        }
        self.feed_endpoints(&sphere).await;
        self.announce(&sphere, &share).await?;
        self.send_holds(&sphere, std::slice::from_ref(&share)).await;
        Ok(types::Shared {
            info_hash: share.id,
            name: share.name,
            size: share.size,
            files: share.files,
            magnet: share.magnet,
        })
    }

    /// Hashes what is shared at `path` into its torrent (sealed with `seal` when given), with
    /// progress under `progress_key` in `shares`.
    async fn hash_share(
        self: &Arc<Self>,
        progress_key: &(String, String),
        path: &Path,
        opts: &CreateOptions,
        seal: Option<spheres_metainfo::seal::Seal>,
    ) -> anyhow::Result<Made> {
        let (me, path, opts, progress_key) = (
            self.clone(),
            path.to_owned(),
            opts.clone(),
            progress_key.clone(),
        );
        tokio::task::spawn_blocking(move || -> Result<Made, spheres_metainfo::CreateError> {
            let mut progress = |p: spheres_metainfo::Progress| {
                lock(&me.hashing).insert(progress_key.clone(), (p.hashed_bytes, p.total_bytes));
            };
            match seal {
                Some(seal) => {
                    let made =
                        spheres_metainfo::create_sealed(&path, seal.clone(), &opts, &mut progress)?;
                    let view = made
                        .meta
                        .with_layout(&made.name, &made.files, made.folder)?;
                    Ok((made.torrent, view, Some((seal, made.files, made.folder))))
                }
                None => spheres_metainfo::create_torrent(&path, &opts, &mut progress)
                    .map(|(t, m)| (t, m, None)),
            }
        })
        .await
        .map_err(|e| anyhow!("hashing stopped: {e}"))?
        .map_err(Into::into)
    }

    /// Our announcement of a torrent.
    pub(crate) fn share_of(&self, meta: &Metainfo, torrent: Vec<u8>) -> Share {
        Share {
            id: meta.info_hash.to_hex(),
            name: meta.name.clone(),
            size: meta.total_length,
            files: meta.visible_files().count() as u64,
            media: media_of(meta).to_owned(),
            sharer: self.me.clone(),
            magnet: meta.magnet().to_string(),
            torrent: Some(torrent),
            sealed: None,
        }
    }

    /// Whether a `.torrent` at `path` was already passed on.
    pub(crate) async fn dropped_already(&self, path: &Path) -> bool {
        let key = format!("dropped:{}", path.display());
        matches!(self.store.meta(&key).await, Ok(Some(_)))
    }

    /// A `.torrent` dropped into a sphere's folder: passed on as it is (a public torrent keeps
    /// its trackers), fetched into the folder here as on every member's node.
    pub(crate) async fn share_dropped_torrent(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
    ) -> Result<()> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        self.pass_on_torrent(name, path, bytes).await
    }

    /// A `.magnet` file (a text file holding a magnet link) dropped into a sphere's folder:
    /// its metadata is fetched in the background from the magnet's trackers (and DHT when
    /// on), then it is passed on like a dropped `.torrent`, so members get the whole
    /// .torrent in the announcement and never wait for metadata themselves.
    pub(crate) async fn share_dropped_magnet(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
    ) -> Result<()> {
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if text.len() > 64 * 1024 {
            bail!("{} is too large to be a magnet link", path.display());
        }
        let text = String::from_utf8_lossy(&text);
        let link = text
            .split_whitespace()
            .find(|w| w.starts_with("magnet:"))
            .ok_or_else(|| anyhow!("{} holds no magnet link", path.display()))?
            .to_owned();
        let magnet: spheres_metainfo::Magnet = link
            .parse()
            .with_context(|| format!("{} holds a damaged magnet link", path.display()))?;
        if magnet.trackers.is_empty() && magnet.peers.is_empty() && !self.settings.dht {
            bail!(
                "the magnet link in {} names no tracker and no peer; start the node with --dht to find peers for it",
                path.display()
            );
        }
        // Marked at once: the watcher does not take it again while the metadata comes.
        let key = format!("dropped:{}", path.display());
        self.store
            .set_meta(&key, &magnet.info_hash.to_string())
            .await?;
        tracing::info!(sphere = name, hash = %magnet.info_hash, "fetching the metadata of a dropped magnet");
        let (node, name, path) = (self.clone(), name.to_owned(), path.to_owned());
        tokio::spawn(async move {
            let fetched = node
                .engine
                .metadata(
                    &link,
                    Vec::new(),
                    Duration::from_secs(60),
                    MAGNET_PATIENCE,
                    &spheres_torrent::Admit::Anyone,
                )
                .await;
            let result = match fetched {
                Ok(bytes) => node.pass_on_torrent(&name, &path, bytes).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "cannot pass on a dropped magnet; will try again");
                // Unmarked: the watcher tries again (after its retry delay).
                let _ = node.store.remove_meta(&key).await;
            }
        });
        Ok(())
    }

    /// Passes on a torrent (dropped in, or fetched for a dropped magnet) as it is.
    pub(crate) async fn pass_on_torrent(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let sphere = self.sphere_named(name).await?;
        let meta = Metainfo::from_bytes(&bytes)
            .with_context(|| format!("{} is not a usable torrent", path.display()))?;
        let share = self.share_of(&meta, bytes);
        self.store
            .set_meta(&format!("dropped:{}", path.display()), &share.id)
            .await?;
        tracing::info!(sphere = %sphere.name, torrent = %meta.name, private = meta.private, "passing on a dropped torrent");
        // Recorded and fetched like any announced share, then announced to the others.
        let us = Sender {
            jid: self.me.clone(),
            owner: sphere.owned,
        };
        self.on_share(&sphere, share.clone(), &us).await?;
        self.announce(&sphere, &share).await
    }

    /// Announces one of our shares in its sphere's room, through the outbox: it stays there
    /// (in the store) until the room's copy of our message comes back, and is sent again
    /// when the node is next in the room (after a crash, a restart, time offline).
    pub(crate) async fn announce(&self, sphere: &Sphere, share: &Share) -> Result<()> {
        self.store.add_outbox(sphere.id, &share.id).await?;
        self.send_announcement(sphere, share).await
    }

    /// Sends an announcement now, unless we are at the budget other members hold us to (it
    /// then waits in the outbox for the next round: members would drop it). Each send is
    /// remembered, so a repeat comes only after a while that grows with each try.
    pub(crate) async fn send_announcement(&self, sphere: &Sphere, share: &Share) -> Result<()> {
        let verdict = lock(&self.rooms).may_send(
            &sphere.room,
            (&share.id, share.size),
            &self.me,
            (now_secs(), Instant::now()),
        );
        match verdict {
            Outgoing::Now => {}
            Outgoing::NotYet(_) => return Ok(()),
            Outgoing::OverBudget => {
                tracing::info!(sphere = %sphere.name, share = %share.name, "many announcements this hour: this one waits in the outbox");
                return Ok(());
            }
        }
        let room = BareJid::new(&sphere.room)?;
        self.send_in_room(sphere, share.clone().into_message(room, &self.nick))
            .await?;
        Ok(())
    }

    /// Sends again what the room has not confirmed (called once we are in the room and have
    /// read its archive, where a confirmation may have been waiting).
    pub(crate) async fn flush_outbox(&self, sphere: &Sphere) {
        let Ok(waiting) = self.store.outbox(sphere.id).await else {
            return;
        };
        for hash in waiting {
            let Ok(Some(row)) = self.store.share(sphere.id, &hash).await else {
                let _ = self.store.remove_outbox(sphere.id, &hash).await;
                continue;
            };
            if let Err(e) = self
                .send_announcement(sphere, &self.share_from_row(&row))
                .await
            {
                tracing::warn!(share = %row.name, error = %e, "cannot announce a share");
            }
        }
    }
}
