//! The session: torrents added, checked, downloaded, seeded and streamed by our own engine
//! (`spheres-engine`), with the paths and checks of `paths.rs`, the statuses the node shows, a
//! limit on open streams, and who may join each torrent's swarm ([`Admit`]).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use spheres_engine as own;
use spheres_metainfo::{InfoHash, Magnet, Metainfo};
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::paths;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where downloads go when no folder is given.
    pub download_dir: PathBuf,
    /// Session state (torrents, resume bitfields). `None`: nothing survives a restart.
    pub state_dir: Option<PathBuf>,
    /// Peer-wire listen address. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Streams open at once across all torrents; more are refused with [`EngineError::Busy`].
    pub max_streams: usize,
    /// Mainline DHT, for public torrents only (private torrents never use it).
    pub dht: bool,
    /// DHT nodes to start from (`host:port`); `None`: the well-known public ones.
    pub dht_bootstrap: Option<Vec<String>>,
    pub upload_limit_bps: Option<NonZeroU32>,
    pub download_limit_bps: Option<NonZeroU32>,
}

impl EngineConfig {
    pub fn new(download_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            download_dir: download_dir.into(),
            state_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_streams: 64,
            dht: false,
            dht_bootstrap: None,
            upload_limit_bps: None,
            download_limit_bps: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Metainfo(#[from] spheres_metainfo::MetainfoError),
    #[error("{0}")]
    Magnet(#[from] spheres_metainfo::MagnetError),
    #[error("{path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error("no torrent {0} in this session")]
    NotFound(InfoHash),
    #[error("torrent {0} has no file number {1}")]
    NoSuchFile(InfoHash, usize),
    #[error("too many streams are open ({0}); close one and try again")]
    Busy(usize),
    #[error("the torrent is still being checked; try again in a moment")]
    NotReady,
    #[error("cannot listen for peers on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("the BitTorrent engine failed: {0:#}")]
    Engine(anyhow::Error),
}

/// What to add.
#[derive(Debug, Clone)]
pub enum Source {
    /// The bytes of a .torrent file.
    Torrent(Vec<u8>),
    /// A magnet link; its metadata is fetched from peers first.
    Magnet(String),
}

/// Where the data is.
#[derive(Debug, Clone)]
pub enum Output {
    /// Download into this folder (a multi-file torrent gets its own sub-folder).
    Download(PathBuf),
    /// The data already exists here (the file or folder itself, or a folder holding it):
    /// seed it where it is, without copying.
    SeedInPlace(PathBuf),
}

/// Who may take part in a torrent's swarm.
#[derive(Clone, Default)]
pub enum Admit {
    /// Whoever knows the info hash (a public torrent, or a plain client's).
    #[default]
    Anyone,
    /// Those `Admission` lets in: for a sphere's torrents, its members' nodes, who prove
    /// they hold its secret ([`spheres_engine::Members`]; one value for all of a sphere's
    /// torrents, whose secret can change while they run).
    Only(Arc<dyn own::Admission>),
}

impl std::fmt::Debug for Admit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Admit::Anyone => f.write_str("Anyone"),
            Admit::Only(_) => f.write_str("Only"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AddOptions {
    pub output: Output,
    /// Who may take part (a torrent already in the session takes this one from now on).
    pub admit: Admit,
    pub paused: bool,
    /// Peers to connect to, besides whatever the trackers say.
    pub peers: Vec<SocketAddr>,
    /// How long a magnet may take to find its metadata.
    pub metadata_timeout: Duration,
    /// A sealed share (an encrypted sphere's): its key and real files.
    pub seal: Option<SealSpec>,
}

/// What makes a sealed torrent a share: its key, and its real name and files (from its
/// encrypted announcement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSpec {
    pub seal: spheres_metainfo::seal::Seal,
    pub name: String,
    pub files: Vec<spheres_metainfo::seal::SealedFile>,
    pub folder: bool,
}

impl SealSpec {
    /// The sealed torrent `meta` seen with these files.
    pub fn view(&self, meta: &Metainfo) -> Result<Metainfo, EngineError> {
        Ok(meta.with_layout(&self.name, &self.files, self.folder)?)
    }

    /// As kept beside the torrent for the next start (JSON).
    fn to_json(&self) -> String {
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|f| serde_json::json!([f.path, f.length]))
            .collect();
        serde_json::json!({
            "key": hex::encode(self.seal.key()),
            "name": self.name,
            "folder": self.folder,
            "files": files,
        })
        .to_string()
    }

    fn from_json(text: &str) -> Option<SealSpec> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let key: [u8; 32] = hex::decode(v["key"].as_str()?).ok()?.try_into().ok()?;
        let files = v["files"]
            .as_array()?
            .iter()
            .map(|f| {
                Some(spheres_metainfo::seal::SealedFile {
                    path: f[0]
                        .as_array()?
                        .iter()
                        .map(|c| c.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()?,
                    length: f[1].as_u64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(SealSpec {
            seal: spheres_metainfo::seal::Seal::new(key),
            name: v["name"].as_str()?.to_owned(),
            files,
            folder: v["folder"].as_bool()?,
        })
    }
}

impl AddOptions {
    pub fn download(dir: impl Into<PathBuf>) -> Self {
        AddOptions {
            output: Output::Download(dir.into()),
            admit: Admit::Anyone,
            paused: false,
            peers: Vec::new(),
            metadata_timeout: Duration::from_secs(120),
            seal: None,
        }
    }

    pub fn seed(data: impl Into<PathBuf>) -> Self {
        AddOptions {
            output: Output::SeedInPlace(data.into()),
            ..Self::download("")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TorrentState {
    /// Verifying data already on disk.
    Checking,
    Downloading,
    /// Complete and verified; serving peers.
    Seeding,
    Paused,
    Error,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub index: usize,
    /// Path inside the torrent, `/`-separated.
    pub path: String,
    pub length: u64,
    pub have_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TorrentStatus {
    pub info_hash: String,
    pub name: String,
    pub state: TorrentState,
    pub error: Option<String>,
    /// Verified bytes of the wanted files.
    pub have_bytes: u64,
    pub total_bytes: u64,
    pub uploaded_bytes: u64,
    pub download_bps: u64,
    pub upload_bps: u64,
    pub peers: usize,
    pub private: bool,
    /// Where the torrent's files are (the folder holding a single file, or the torrent's folder).
    pub root: PathBuf,
    pub files: Vec<FileStatus>,
}

impl TorrentStatus {
    pub fn is_complete(&self) -> bool {
        self.state == TorrentState::Seeding
    }
}

/// A file of a torrent, readable while it downloads (the engine's reader). Holds one of the
/// session's stream slots until dropped.
pub struct FileReader {
    inner: own::FileReader,
    _permit: OwnedSemaphorePermit,
}

impl FileReader {
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }
}

impl AsyncRead for FileReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncSeek for FileReader {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.inner).start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.inner).poll_complete(cx)
    }
}

#[derive(Clone)]
pub struct Engine {
    engine: own::Engine,
    streams: Arc<Semaphore>,
    max_streams: usize,
    /// Where the torrents of the session are kept across restarts (`.torrent` and `.root`
    /// files by info hash), with the state folder.
    kept: Option<PathBuf>,
    /// Paused torrents: out of the engine, their metainfo and root kept here.
    paused: Arc<Mutex<Paused>>,
    /// Each torrent's admission (kept while it is paused).
    gates: Arc<Mutex<HashMap<InfoHash, Arc<Gate>>>>,
}

/// A torrent's admission. Claimed once, by the first add that says who may come (or the
/// node's `set_admit` for a torrent kept from the last run, which starts unclaimed and, if
/// private, closed): a later add of the same torrent for another sphere does not change it,
/// so one sphere's member cannot open another sphere's torrent by announcing its info hash.
/// What a claimed admission lets in can still change (a sphere's new secret).
struct Gate {
    admit: std::sync::RwLock<Admit>,
    claimed: std::sync::atomic::AtomicBool,
}

impl Gate {
    fn new(admit: Admit, claimed: bool) -> Arc<Gate> {
        Arc::new(Gate {
            admit: std::sync::RwLock::new(admit),
            claimed: std::sync::atomic::AtomicBool::new(claimed),
        })
    }

    fn get(&self) -> Admit {
        self.admit.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets it if nobody claimed it yet; returns whether it did.
    fn claim(&self, admit: Admit) -> bool {
        use std::sync::atomic::Ordering;
        if self
            .claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        *self.admit.write().unwrap_or_else(|e| e.into_inner()) = admit;
        true
    }
}

impl own::Admission for Gate {
    fn admit(&self, peer: &own::PeerInfo<'_>) -> own::Verdict {
        match self.get() {
            Admit::Anyone => own::Verdict::Admit,
            Admit::Only(a) => a.admit(peer),
        }
    }

    fn proof(&self, p: &own::Proving) -> Option<[u8; 32]> {
        match self.get() {
            Admit::Anyone => None,
            Admit::Only(a) => a.proof(p),
        }
    }
}

/// Paused torrents, out of the engine: their metainfo and root.
type Paused = HashMap<InfoHash, (Arc<Metainfo>, PathBuf)>;

fn failed(e: own::EngineError) -> EngineError {
    match e {
        own::EngineError::Listen { addr, source } => EngineError::Listen { addr, source },
        other => EngineError::Engine(anyhow::anyhow!(other)),
    }
}

impl Engine {
    pub async fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(&config.download_dir).map_err(|e| EngineError::Data {
            path: config.download_dir.clone(),
            reason: e.to_string(),
        })?;
        let engine = own::Engine::start(own::EngineConfig {
            listen: config.listen,
            state_dir: config.state_dir.clone(),
            download_limit: config.download_limit_bps.map(NonZeroU64::from),
            upload_limit: config.upload_limit_bps.map(NonZeroU64::from),
            dht: config.dht.then(|| own::DhtConfig {
                bootstrap: config.dht_bootstrap.clone(),
                port: 0,
            }),
            ..Default::default()
        })
        .await
        .map_err(failed)?;
        let kept = config.state_dir.as_ref().map(|d| d.join("torrents"));
        let own = Engine {
            engine,
            streams: Arc::new(Semaphore::new(config.max_streams)),
            max_streams: config.max_streams,
            kept,
            paused: Arc::default(),
            gates: Arc::default(),
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
            // A sealed share's key and files, kept beside it.
            let seal = match std::fs::read_to_string(path.with_extension("seal")) {
                Ok(text) => match SealSpec::from_json(&text) {
                    Some(s) => Some(s),
                    None => {
                        tracing::warn!(torrent = %path.display(), "a kept sealed torrent's key does not read");
                        continue;
                    }
                },
                Err(_) => None,
            };
            let parsed = Metainfo::from_bytes(&bytes)
                .map_err(EngineError::from)
                .and_then(|m| match &seal {
                    Some(s) => s.view(&m),
                    None => Ok(m),
                });
            match parsed {
                Ok(meta) => {
                    // A private torrent lets nobody in until the node says who may come.
                    let admit = if meta.private {
                        Admit::Only(Arc::new(own::Members::with(None)))
                    } else {
                        Admit::Anyone
                    };
                    let gate = Gate::new(admit, false);
                    self.gates
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(meta.info_hash, gate.clone());
                    let added = match seal {
                        Some(s) => {
                            self.engine
                                .add_sealed_at(Arc::new(meta), root, gate, s.seal)
                                .await
                        }
                        None => self.engine.add_at(Arc::new(meta), root, gate).await,
                    };
                    if let Err(e) = added {
                        tracing::warn!(torrent = %path.display(), error = %e, "a kept torrent could not be added back");
                    }
                }
                Err(e) => {
                    tracing::warn!(torrent = %path.display(), error = %e, "a kept torrent does not parse")
                }
            }
        }
    }

    /// Keeps a torrent for the next start (a sealed one with its key and files: the engine's
    /// state folder is the node's, private to its user).
    fn keep(&self, meta: &Metainfo, bytes: &[u8], root: &Path, seal: Option<&SealSpec>) {
        let Some(dir) = &self.kept else { return };
        let name = dir.join(meta.info_hash.to_hex());
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| match seal {
                Some(s) => std::fs::write(name.with_extension("seal"), s.to_json()),
                None => Ok(()),
            })
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
            let _ = std::fs::remove_file(name.with_extension("seal"));
        }
    }

    /// A torrent's admission: the one it has, claimed with `admit` if nobody claimed it yet
    /// (a new torrent's is claimed at once).
    fn gate(&self, hash: InfoHash, admit: Admit) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        let gate = gates
            .entry(hash)
            .or_insert_with(|| Gate::new(Admit::Anyone, false))
            .clone();
        if !gate.claim(admit) {
            tracing::debug!(%hash, "the torrent's admission stays as it was first given");
        }
        gate
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
                    &opts.admit,
                )
                .await?
            }
        };
        let meta = Metainfo::from_bytes(&bytes)?;
        // A sealed share is placed, stored and shown under its real files.
        let meta = match &opts.seal {
            Some(s) => s.view(&meta)?,
            None => meta,
        };
        let root = paths::place(&opts.output, &meta)?;
        let hash = meta.info_hash;
        self.keep(&meta, &bytes, &root, opts.seal.as_ref());
        let gate = self.gate(hash, opts.admit.clone());
        let added = match opts.seal {
            Some(s) => {
                self.engine
                    .add_sealed_at(Arc::new(meta), root, gate, s.seal)
                    .await
            }
            None => self.engine.add_at(Arc::new(meta), root, gate).await,
        };
        match added {
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

    /// Fetches a magnet's metadata (BEP 9) from its trackers and `peers`, without adding the
    /// torrent; returns a whole .torrent that names the magnet's trackers. Each try lasts at
    /// most `try_for`; tries repeat until `give_up_after`. `admit`: a sphere's members give
    /// the metadata to members only, so we prove it the same way.
    pub async fn metadata(
        &self,
        link: &str,
        mut peers: Vec<SocketAddr>,
        try_for: Duration,
        give_up_after: Duration,
        admit: &Admit,
    ) -> Result<Vec<u8>, EngineError> {
        let proving = Gate::new(admit.clone(), true);
        // The DHT knows public torrents only: a sphere's magnet is never asked there.
        let public = matches!(admit, Admit::Anyone);
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
            if public {
                for p in self.engine.dht_peers(magnet.info_hash.0).await {
                    if !peers.contains(&p) {
                        peers.push(p);
                    }
                }
            }
            match self
                .engine
                .fetch_metadata_as(
                    magnet.info_hash.0,
                    &magnet.trackers,
                    &peers,
                    try_for,
                    proving.clone(),
                )
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

    /// Peers to keep in touch with for a torrent (members' endpoints, peers heard on the
    /// LAN), at any time: the engine dials those it is not connected to, again with backoff.
    pub fn add_peers(&self, hash: &InfoHash, peers: &[SocketAddr]) -> Result<(), EngineError> {
        if self.lock_paused().contains_key(hash) {
            return Ok(());
        }
        self.engine.add_peers(&hash.0, peers).map_err(|e| match e {
            own::EngineError::NotFound => EngineError::NotFound(*hash),
            other => failed(other),
        })
    }

    /// Closes a torrent's connections; its peers are dialled again and admitted anew (after
    /// a sphere's secret changed). Returns how many closed.
    pub fn drop_peers(&self, hash: &InfoHash) -> Result<usize, EngineError> {
        self.engine.drop_peers(&hash.0).map_err(|e| match e {
            own::EngineError::NotFound => EngineError::NotFound(*hash),
            other => failed(other),
        })
    }

    /// Super-seeding for a file just shared (complete, no peer yet): see
    /// `spheres_engine::Engine::set_super_seeding`. Returns whether it is on.
    pub fn set_super_seeding(&self, hash: &InfoHash, on: bool) -> Result<bool, EngineError> {
        self.engine
            .set_super_seeding(&hash.0, on)
            .map_err(|e| match e {
                own::EngineError::NotFound => EngineError::NotFound(*hash),
                other => failed(other),
            })
    }

    /// What happens in the session as it happens (pieces verified, torrents complete, peers
    /// come and go, disk errors). Lossy for a listener that falls behind: it hears `Lagged`
    /// and reads statuses instead.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<own::EngineEvent> {
        self.engine.subscribe()
    }

    /// Who may join a torrent's swarm, from now on (peers admitted stay).
    /// Only for a torrent kept from the last run, whose admission nobody claimed yet; returns
    /// whether it was set (a claimed one stays: see `Gate`).
    pub fn set_admit(&self, hash: &InfoHash, admit: Admit) -> bool {
        let gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates.get(hash).is_some_and(|g| g.claim(admit))
    }

    /// The parsed metainfo of a torrent in the session.
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
        // Kept while paused (a torrent is paused only once it is in the session); were it
        // lost, a private one comes back closed, for the node to claim.
        let gate = self
            .gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(*hash)
            .or_insert_with(|| {
                let closed = Admit::Only(Arc::new(own::Members::with(None)));
                Gate::new(if meta.private { closed } else { Admit::Anyone }, false)
            })
            .clone();
        self.engine.add_at(meta, root, gate).await.map_err(failed)?;
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
        self.gates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(hash);
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
            inner: reader,
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

#[cfg(test)]
mod seal_tests {
    use super::*;

    #[test]
    fn a_kept_seal_reads_back() {
        let spec = SealSpec {
            seal: spheres_metainfo::seal::Seal::new([5; 32]),
            name: "Lyon \"holidays\"".into(),
            files: vec![spheres_metainfo::seal::SealedFile {
                path: vec!["day one".into(), "beach.jpg".into()],
                length: 70_000,
            }],
            folder: true,
        };
        assert_eq!(SealSpec::from_json(&spec.to_json()), Some(spec));
        for bad in [
            "",
            "{}",
            "{\"key\": \"00\", \"name\": \"x\", \"folder\": true, \"files\": []}",
        ] {
            assert_eq!(SealSpec::from_json(bad), None, "{bad}");
        }
    }
}
