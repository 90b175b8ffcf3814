//! The backend over our own engine (`spheres-engine`, issue 13), with the same contract as the
//! librqbit one: the same paths and checks (`paths.rs`), the same statuses, a stream limit in
//! front of readers, the same errors.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spheres_engine as own;
use spheres_metainfo::{InfoHash, Magnet, Metainfo};
use tokio::sync::Semaphore;

use crate::engine::{
    AddOptions, EngineConfig, EngineError, FileReader, FileStatus, Source, TorrentState,
    TorrentStatus,
};
use crate::paths;

#[derive(Clone)]
pub(crate) struct Own {
    engine: own::Engine,
    streams: Arc<Semaphore>,
    max_streams: usize,
    /// Where the torrents of the session are kept across restarts (`.torrent` and `.root`
    /// files by info hash), with the state folder.
    kept: Option<PathBuf>,
    /// Paused torrents: out of the engine, their metainfo and root kept here.
    paused: Arc<Mutex<Paused>>,
}

/// Paused torrents, out of the engine: their metainfo and root.
type Paused = HashMap<InfoHash, (Arc<Metainfo>, PathBuf)>;

fn failed(e: own::EngineError) -> EngineError {
    match e {
        own::EngineError::Listen { addr, source } => EngineError::Listen { addr, source },
        other => EngineError::Engine(anyhow::anyhow!(other)),
    }
}

impl Own {
    pub async fn start(config: EngineConfig) -> Result<Own, EngineError> {
        if config.dht {
            return Err(EngineError::Engine(anyhow::anyhow!(
                "our own BitTorrent engine has no DHT yet: start without --dht, or with \
                 SPHERES_ENGINE=librqbit to use librqbit's"
            )));
        }
        std::fs::create_dir_all(&config.download_dir).map_err(|e| EngineError::Data {
            path: config.download_dir.clone(),
            reason: e.to_string(),
        })?;
        let engine = own::Engine::start(own::EngineConfig {
            listen: config.listen,
            state_dir: config.state_dir.clone(),
            download_limit: config.download_limit_bps.map(NonZeroU64::from),
            upload_limit: config.upload_limit_bps.map(NonZeroU64::from),
            ..Default::default()
        })
        .await
        .map_err(failed)?;
        let kept = config.state_dir.as_ref().map(|d| d.join("torrents"));
        let own = Own {
            engine,
            streams: Arc::new(Semaphore::new(config.max_streams)),
            max_streams: config.max_streams,
            kept,
            paused: Arc::default(),
        };
        own.restore().await;
        Ok(own)
    }

    /// Adds back the torrents the session had when it stopped (their progress is checked
    /// against the engine's saved record).
    async fn restore(&self) {
        let Some(dir) = &self.kept else { return };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "torrent") {
                continue;
            }
            let (Ok(bytes), Ok(root)) = (
                std::fs::read(&path),
                std::fs::read(path.with_extension("root")),
            ) else {
                continue;
            };
            let root = PathBuf::from(std::ffi::OsStr::from_bytes(&root));
            match Metainfo::from_bytes(&bytes) {
                Ok(meta) => {
                    if let Err(e) = self
                        .engine
                        .add_at(Arc::new(meta), root, Arc::new(own::Open))
                        .await
                    {
                        tracing::warn!(torrent = %path.display(), error = %e, "a kept torrent could not be added back");
                    }
                }
                Err(e) => {
                    tracing::warn!(torrent = %path.display(), error = %e, "a kept torrent does not parse")
                }
            }
        }
    }

    /// Keeps a torrent for the next start.
    fn keep(&self, meta: &Metainfo, bytes: &[u8], root: &Path) {
        let Some(dir) = &self.kept else { return };
        let name = dir.join(meta.info_hash.to_hex());
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(name.with_extension("torrent"), bytes))
            .and_then(|()| {
                std::fs::write(name.with_extension("root"), root.as_os_str().as_bytes())
            });
        if let Err(e) = written {
            tracing::warn!(error = %e, "cannot keep a torrent for the next start");
        }
    }

    fn forget(&self, hash: &InfoHash) {
        if let Some(dir) = &self.kept {
            let name = dir.join(hash.to_hex());
            let _ = std::fs::remove_file(name.with_extension("torrent"));
            let _ = std::fs::remove_file(name.with_extension("root"));
        }
    }

    fn lock_paused(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<InfoHash, (Arc<Metainfo>, PathBuf)>> {
        self.paused.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.engine.listen_addr()
    }

    pub async fn add(&self, source: Source, opts: AddOptions) -> Result<InfoHash, EngineError> {
        let bytes = match source {
            Source::Torrent(bytes) => bytes,
            Source::Magnet(link) => {
                self.metadata(
                    &link,
                    opts.peers.clone(),
                    opts.metadata_timeout,
                    opts.metadata_timeout,
                )
                .await?
            }
        };
        let meta = Metainfo::from_bytes(&bytes)?;
        let root = paths::place(&opts.output, &meta)?;
        let hash = meta.info_hash;
        self.keep(&meta, &bytes, &root);
        match self
            .engine
            .add_at(Arc::new(meta), root, Arc::new(own::Open))
            .await
        {
            Ok(_) => {}
            Err(own::EngineError::AlreadyAdded) => {
                tracing::info!(%hash, "torrent already in the session");
            }
            Err(e) => return Err(failed(e)),
        }
        if !opts.peers.is_empty() {
            self.engine
                .add_peers(&hash.0, &opts.peers)
                .map_err(failed)?;
        }
        Ok(hash)
    }

    pub async fn metadata(
        &self,
        link: &str,
        mut peers: Vec<SocketAddr>,
        try_for: Duration,
        give_up_after: Duration,
    ) -> Result<Vec<u8>, EngineError> {
        let magnet: Magnet = link.parse()?;
        peers.extend(
            magnet
                .peers
                .iter()
                .filter_map(|p| p.parse::<SocketAddr>().ok()),
        );
        let started = std::time::Instant::now();
        loop {
            let tried = std::time::Instant::now();
            match self
                .engine
                .fetch_metadata(magnet.info_hash.0, &magnet.trackers, &peers, try_for)
                .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(e) if started.elapsed() + try_for <= give_up_after => {
                    tracing::info!(hash = %magnet.info_hash, error = %e, "no metadata yet; trying again");
                    // A try that failed at once (no peer yet) waits before the next.
                    tokio::time::sleep(Duration::from_secs(15).saturating_sub(tried.elapsed()))
                        .await;
                }
                Err(e) => {
                    return Err(EngineError::Engine(anyhow::anyhow!(
                        "{e}: no peer sent the metadata of {} within {try_for:?}",
                        magnet.info_hash
                    )));
                }
            }
        }
    }

    pub fn metainfo(&self, hash: &InfoHash) -> Option<Arc<Metainfo>> {
        self.engine
            .metainfo(&hash.0)
            .map(|(m, _)| m)
            .or_else(|| self.lock_paused().get(hash).map(|(m, _)| m.clone()))
    }

    pub fn status(&self, hash: &InfoHash) -> Option<TorrentStatus> {
        if let Some((meta, root)) = self.lock_paused().get(hash).cloned() {
            return Some(TorrentStatus {
                info_hash: hash.to_hex(),
                name: meta.name.clone(),
                state: TorrentState::Paused,
                error: None,
                have_bytes: 0,
                total_bytes: meta.total_length,
                uploaded_bytes: 0,
                download_bps: 0,
                upload_bps: 0,
                peers: 0,
                private: meta.private,
                root,
                files: Vec::new(),
            });
        }
        let (meta, root) = self.engine.metainfo(&hash.0)?;
        let st = self.engine.status(&hash.0)?;
        let (state, error) = match st.state {
            own::TorrentState::Checking { .. } => (TorrentState::Checking, None),
            own::TorrentState::Downloading => (TorrentState::Downloading, None),
            own::TorrentState::Seeding => (TorrentState::Seeding, None),
            own::TorrentState::Error(e) => (TorrentState::Error, Some(e)),
        };
        let progress = self.engine.files(&hash.0).unwrap_or_default();
        let files = meta
            .visible_files()
            .zip(progress)
            .map(|((index, f), p)| FileStatus {
                index,
                path: f.display_path(),
                length: f.length,
                have_bytes: p.have_bytes,
            })
            .collect();
        Some(TorrentStatus {
            info_hash: hash.to_hex(),
            name: meta.name.clone(),
            state,
            error,
            have_bytes: st.have_bytes,
            total_bytes: meta.total_length,
            uploaded_bytes: st.uploaded,
            download_bps: st.download_rate,
            upload_bps: st.upload_rate,
            peers: st.peers,
            private: meta.private,
            root,
            files,
        })
    }

    pub fn list(&self) -> Vec<TorrentStatus> {
        let paused: Vec<InfoHash> = self.lock_paused().keys().copied().collect();
        let mut out: Vec<_> = self
            .engine
            .torrents()
            .into_iter()
            .map(InfoHash)
            .chain(paused)
            .filter_map(|h| self.status(&h))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Pausing takes the torrent out of the engine (its progress saved); resuming adds it
    /// back.
    pub async fn pause(&self, hash: &InfoHash) -> Result<(), EngineError> {
        if self.lock_paused().contains_key(hash) {
            return Ok(());
        }
        let (meta, root) = self
            .engine
            .metainfo(&hash.0)
            .ok_or(EngineError::NotFound(*hash))?;
        self.engine.remove(&hash.0).await.map_err(failed)?;
        self.lock_paused().insert(*hash, (meta, root));
        Ok(())
    }

    pub async fn resume(&self, hash: &InfoHash) -> Result<(), EngineError> {
        let Some((meta, root)) = self.lock_paused().remove(hash) else {
            return if self.engine.metainfo(&hash.0).is_some() {
                Ok(())
            } else {
                Err(EngineError::NotFound(*hash))
            };
        };
        self.engine
            .add_at(meta, root, Arc::new(own::Open))
            .await
            .map_err(failed)?;
        Ok(())
    }

    pub async fn remove(&self, hash: &InfoHash, delete_files: bool) -> Result<(), EngineError> {
        let paused = self.lock_paused().remove(hash);
        let (meta, root) = match paused {
            Some(kept) => kept,
            None => {
                let kept = self
                    .engine
                    .metainfo(&hash.0)
                    .ok_or(EngineError::NotFound(*hash))?;
                self.engine.remove(&hash.0).await.map_err(failed)?;
                kept
            }
        };
        self.forget(hash);
        if delete_files {
            for f in meta.files.iter().filter(|f| !f.padding) {
                let path = f.path.iter().fold(root.clone(), |p, c| p.join(c));
                let _ = tokio::fs::remove_file(path).await;
            }
        }
        Ok(())
    }

    pub async fn wait_complete(&self, hash: &InfoHash) -> Result<(), EngineError> {
        self.engine
            .wait_complete(&hash.0)
            .await
            .map_err(|e| match e {
                own::EngineError::NotFound => EngineError::NotFound(*hash),
                other => failed(other),
            })
    }

    pub async fn open_file(
        &self,
        hash: &InfoHash,
        index: usize,
    ) -> Result<FileReader, EngineError> {
        let meta = self.metainfo(hash).ok_or(EngineError::NotFound(*hash))?;
        if meta.files.get(index).is_none_or(|f| f.padding) {
            return Err(EngineError::NoSuchFile(*hash, index));
        }
        let permit = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::Busy(self.max_streams))?;
        let reader = self
            .engine
            .open_file(&hash.0, index)
            .map_err(|_| EngineError::NoSuchFile(*hash, index))?;
        Ok(FileReader {
            len: reader.len(),
            inner: Box::pin(reader),
            _permit: permit,
        })
    }

    pub fn open_streams(&self) -> usize {
        self.max_streams - self.streams.available_permits()
    }

    pub fn set_limits(&self, download_bps: Option<NonZeroU32>, upload_bps: Option<NonZeroU32>) {
        self.engine.set_limits(
            download_bps.map(NonZeroU64::from),
            upload_bps.map(NonZeroU64::from),
        );
    }

    pub fn limits(&self) -> (Option<NonZeroU32>, Option<NonZeroU32>) {
        let (d, u) = self.engine.limits();
        let narrow = |v: Option<NonZeroU64>| v.and_then(|v| NonZeroU32::try_from(v).ok());
        (narrow(d), narrow(u))
    }

    pub async fn shutdown(&self) {
        self.engine.shutdown().await;
    }
}
