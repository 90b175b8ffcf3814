use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use librqbit::dht::Id20;
use librqbit::limits::LimitsConfig;
use librqbit::{
    AddTorrent, AddTorrentOptions, AddTorrentResponse, ListenerMode, ListenerOptions, Session,
    SessionOptions, SessionPersistenceConfig, TorrentStatsState, api::TorrentIdOrHash,
};
use serde::Serialize;
use spheres_metainfo::{InfoHash, Magnet, Metainfo};
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::paths;

/// Blocking-semaphore permits kept for disk I/O, whatever the streams do (librqbit's default
/// total is 8; this many stay free for writes, uploads and hash checks).
pub const DISK_PERMITS: usize = 16;

/// How long opening a stream may wait for the torrent's initial check before giving up.
const STREAM_OPEN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where downloads go when no folder is given.
    pub download_dir: PathBuf,
    /// Session state (torrents, resume bitfields). `None`: nothing survives a restart.
    pub state_dir: Option<PathBuf>,
    /// Peer-wire listen address. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// The port to tell trackers, when it differs from the listen port (a mapped port).
    pub announce_port: Option<u16>,
    /// Streams open at once across all torrents; more are refused with [`EngineError::Busy`].
    pub max_streams: usize,
    /// Mainline DHT, for public torrents only (private torrents never use it).
    pub dht: bool,
    /// librqbit's own local service discovery (public torrents only).
    pub lsd: bool,
    pub upload_limit_bps: Option<NonZeroU32>,
    pub download_limit_bps: Option<NonZeroU32>,
    /// Which engine moves the data: librqbit (the default) or our own (`SPHERES_ENGINE=own`
    /// in the environment, while the switch-over of issue 13 is under way).
    pub backend: Backend,
}

/// The engine behind [`Engine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Librqbit,
    /// `spheres-engine`.
    Own,
}

impl Backend {
    /// `SPHERES_ENGINE=own` chooses our own engine; anything else (`librqbit`), librqbit.
    pub fn from_env() -> Backend {
        match std::env::var("SPHERES_ENGINE").as_deref() {
            Ok("own") => Backend::Own,
            _ => Backend::Librqbit,
        }
    }
}

impl EngineConfig {
    pub fn new(download_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            download_dir: download_dir.into(),
            state_dir: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            announce_port: None,
            max_streams: 64,
            dht: false,
            lsd: false,
            upload_limit_bps: None,
            download_limit_bps: None,
            backend: Backend::from_env(),
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

#[derive(Debug, Clone)]
pub struct AddOptions {
    pub output: Output,
    pub paused: bool,
    /// Peers to connect to, besides whatever the trackers say.
    pub peers: Vec<SocketAddr>,
    /// How long a magnet may take to find its metadata.
    pub metadata_timeout: Duration,
}

impl AddOptions {
    pub fn download(dir: impl Into<PathBuf>) -> Self {
        AddOptions {
            output: Output::Download(dir.into()),
            paused: false,
            peers: Vec::new(),
            metadata_timeout: Duration::from_secs(120),
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

/// The librqbit backend: a BitTorrent session. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Rqbit {
    session: Arc<Session>,
    streams: Arc<Semaphore>,
    max_streams: usize,
    metas: Arc<Mutex<HashMap<InfoHash, Arc<Metainfo>>>>,
    listen: SocketAddr,
    state_dir: Option<PathBuf>,
}

fn engine_err(e: anyhow::Error) -> EngineError {
    EngineError::Engine(e)
}

fn id(hash: &InfoHash) -> TorrentIdOrHash {
    TorrentIdOrHash::Hash(Id20::new(hash.0))
}

/// A free TCP port on `ip`, for when librqbit must be told its port before it binds.
fn free_port(ip: IpAddr) -> io::Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

impl Rqbit {
    /// Starts a session. Runs on either tokio runtime; the current-thread one moves data
    /// much faster (librqbit's per-block `block_in_place` is a plain call there).
    pub async fn start(config: EngineConfig) -> Result<Rqbit, EngineError> {
        let mut listen = config.listen;
        if listen.port() == 0 {
            // librqbit cannot report a loopback listener's port to trackers unless it knows it
            // in advance, so choose the port here.
            listen.set_port(
                free_port(listen.ip()).map_err(|source| EngineError::Listen {
                    addr: listen,
                    source,
                })?,
            );
        }
        let announce_port = config.announce_port.unwrap_or(listen.port());
        std::fs::create_dir_all(&config.download_dir).map_err(|e| EngineError::Data {
            path: config.download_dir.clone(),
            reason: e.to_string(),
        })?;
        let persistence = match &config.state_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| EngineError::Data {
                    path: dir.clone(),
                    reason: e.to_string(),
                })?;
                forget_fastresume_after_crash(dir);
                Some(SessionPersistenceConfig::Json {
                    folder: Some(dir.clone()),
                })
            }
            None => None,
        };
        let dht = config.dht.then(|| librqbit::DhtSessionConfig {
            persistence: config
                .state_dir
                .as_ref()
                .map(|d| librqbit::dht::DhtPersistenceConfig {
                    config_filename: Some(d.join("dht.json")),
                    ..Default::default()
                }),
            ..Default::default()
        });
        let opts = SessionOptions {
            dht,
            fastresume: persistence.is_some(),
            persistence,
            listen: Some(ListenerOptions {
                mode: ListenerMode::TcpOnly,
                listen_addr: listen,
                announce_port: Some(announce_port),
                enable_upnp_port_forwarding: false,
                ipv4_only: listen.is_ipv4(),
                ..Default::default()
            }),
            // See the crate docs: streams hold these permits for their whole life.
            runtime_worker_threads: Some(config.max_streams + DISK_PERMITS),
            ratelimits: LimitsConfig {
                upload_bps: config.upload_limit_bps,
                download_bps: config.download_limit_bps,
            },
            disable_local_service_discovery: !config.lsd,
            ipv4_only: listen.is_ipv4(),
            client_name_and_version: Some(format!("spheres {}", env!("CARGO_PKG_VERSION"))),
            ..Default::default()
        };
        let session = Session::new_with_opts(config.download_dir.clone(), opts)
            .await
            .map_err(engine_err)?;
        let listen = session.listen_addr().unwrap_or(listen);
        let engine = Rqbit {
            session,
            streams: Arc::new(Semaphore::new(config.max_streams)),
            max_streams: config.max_streams,
            metas: Arc::default(),
            listen,
            state_dir: config.state_dir.clone(),
        };
        engine.index_restored();
        Ok(engine)
    }

    /// Parses the torrents librqbit restored from its state folder.
    fn index_restored(&self) {
        let restored: Vec<bytes::Bytes> = self.session.with_torrents(|it| {
            it.filter_map(|(_, h)| h.metadata.load_full().map(|m| m.torrent_bytes.clone()))
                .collect()
        });
        let mut metas = self.lock_metas();
        for bytes in restored {
            match Metainfo::from_bytes(&bytes) {
                Ok(m) => {
                    metas.insert(m.info_hash, Arc::new(m));
                }
                Err(e) => tracing::warn!(error = %e, "a restored torrent does not parse"),
            }
        }
    }

    fn lock_metas(&self) -> std::sync::MutexGuard<'_, HashMap<InfoHash, Arc<Metainfo>>> {
        self.metas.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address peers connect to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Adds a torrent; returns once it is being checked or downloaded.
    pub async fn add(&self, source: Source, opts: AddOptions) -> Result<InfoHash, EngineError> {
        let (bytes, meta) = match source {
            Source::Torrent(bytes) => {
                let meta = Metainfo::from_bytes(&bytes)?;
                (bytes, meta)
            }
            Source::Magnet(link) => {
                let magnet: Magnet = link.parse()?;
                let bytes = self.resolve_magnet(&link, &magnet, &opts).await?;
                let meta = Metainfo::from_bytes(&bytes)?;
                (bytes, meta)
            }
        };
        let root = paths::place(&opts.output, &meta)?;
        let hash = meta.info_hash;
        let add = AddTorrentOptions {
            paused: opts.paused,
            overwrite: true,
            output_folder: Some(root.to_string_lossy().into_owned()),
            initial_peers: (!opts.peers.is_empty()).then(|| opts.peers.clone()),
            ..Default::default()
        };
        let response = self
            .session
            .add_torrent(AddTorrent::from_bytes(bytes), Some(add))
            .await
            .map_err(engine_err)?;
        if let AddTorrentResponse::AlreadyManaged(..) = response {
            tracing::info!(%hash, "torrent already in the session");
        }
        self.lock_metas().insert(hash, Arc::new(meta));
        Ok(hash)
    }

    /// See [`Engine::metadata`] (librqbit also asks the DHT when the session has it, and dials
    /// each address once per try).
    pub async fn metadata(
        &self,
        link: &str,
        peers: Vec<SocketAddr>,
        try_for: Duration,
        give_up_after: Duration,
    ) -> Result<Vec<u8>, EngineError> {
        let magnet: Magnet = link.parse()?;
        let opts = AddOptions {
            peers,
            metadata_timeout: try_for,
            ..AddOptions::download("")
        };
        let started = std::time::Instant::now();
        let bytes = loop {
            let tried = std::time::Instant::now();
            match self.resolve_magnet(link, &magnet, &opts).await {
                Ok(b) => break b,
                Err(e) if started.elapsed() + try_for <= give_up_after => {
                    tracing::info!(hash = %magnet.info_hash, error = %e, "no metadata yet; trying again");
                    // A try that failed at once (no peer yet) waits before the next.
                    let pause = Duration::from_secs(15).saturating_sub(tried.elapsed());
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e),
            }
        };
        let meta = Metainfo::from_bytes(&bytes)?;
        if meta.info_hash != magnet.info_hash {
            return Err(EngineError::Engine(anyhow::anyhow!(
                "the metadata received is for {}, not {}",
                meta.info_hash,
                magnet.info_hash
            )));
        }
        if meta.trackers.iter().all(Vec::is_empty) && !magnet.trackers.is_empty() {
            return Ok(spheres_metainfo::with_trackers(&bytes, &magnet.trackers)?);
        }
        Ok(bytes)
    }

    /// Fetches a magnet's metadata from its trackers and peers, and returns a .torrent.
    async fn resolve_magnet(
        &self,
        link: &str,
        magnet: &Magnet,
        opts: &AddOptions,
    ) -> Result<Vec<u8>, EngineError> {
        let mut peers = opts.peers.clone();
        peers.extend(
            magnet
                .peers
                .iter()
                .filter_map(|p| p.parse::<SocketAddr>().ok()),
        );
        let list = AddTorrentOptions {
            list_only: true,
            initial_peers: (!peers.is_empty()).then_some(peers),
            ..Default::default()
        };
        let response = tokio::time::timeout(
            opts.metadata_timeout,
            self.session.add_torrent(AddTorrent::from_url(link.to_owned()), Some(list)),
        )
        .await
        .map_err(|_| {
            EngineError::Engine(anyhow::anyhow!(
                "no peer sent the metadata of {} within {:?}; check that a peer or tracker is reachable",
                magnet.info_hash,
                opts.metadata_timeout
            ))
        })?
        .map_err(engine_err)?;
        match response {
            AddTorrentResponse::ListOnly(l) => Ok(l.torrent_bytes.to_vec()),
            AddTorrentResponse::AlreadyManaged(_, h) | AddTorrentResponse::Added(_, h) => h
                .metadata
                .load_full()
                .map(|m| m.torrent_bytes.to_vec())
                .ok_or(EngineError::NotReady),
        }
    }

    fn handle(&self, hash: &InfoHash) -> Result<Arc<librqbit::ManagedTorrent>, EngineError> {
        self.session
            .get(id(hash))
            .ok_or(EngineError::NotFound(*hash))
    }

    /// The parsed metainfo of a torrent in the session.
    pub fn metainfo(&self, hash: &InfoHash) -> Option<Arc<Metainfo>> {
        self.lock_metas().get(hash).cloned()
    }

    pub fn status(&self, hash: &InfoHash) -> Option<TorrentStatus> {
        let handle = self.session.get(id(hash))?;
        let meta = self.metainfo(hash)?;
        let stats = handle.stats();
        let (state, error) = match &stats.state {
            TorrentStatsState::Initializing { .. } => (TorrentState::Checking, None),
            TorrentStatsState::Live if stats.finished => (TorrentState::Seeding, None),
            TorrentStatsState::Live => (TorrentState::Downloading, None),
            TorrentStatsState::Paused => (TorrentState::Paused, None),
            TorrentStatsState::Error => (TorrentState::Error, stats.error.clone()),
        };
        let (download_bps, upload_bps, peers) = stats.live.as_ref().map_or((0, 0, 0), |l| {
            (
                (l.download_speed.mbps * 1024.0 * 1024.0) as u64,
                (l.upload_speed.mbps * 1024.0 * 1024.0) as u64,
                l.snapshot.peer_stats.live as usize,
            )
        });
        let files = meta
            .visible_files()
            .map(|(i, f)| FileStatus {
                index: i,
                path: f.display_path(),
                length: f.length,
                have_bytes: stats.file_progress.get(i).copied().unwrap_or(0),
            })
            .collect();
        Some(TorrentStatus {
            info_hash: hash.to_hex(),
            name: meta.name.clone(),
            state,
            error,
            have_bytes: if state == TorrentState::Checking {
                0
            } else {
                stats.progress_bytes
            },
            total_bytes: if state == TorrentState::Checking {
                meta.total_length
            } else {
                stats.total_bytes
            },
            uploaded_bytes: stats.uploaded_bytes,
            download_bps,
            upload_bps,
            peers,
            private: meta.private,
            root: handle.output_folder().to_owned(),
            files,
        })
    }

    pub fn list(&self) -> Vec<TorrentStatus> {
        let hashes: Vec<InfoHash> = self.lock_metas().keys().copied().collect();
        let mut out: Vec<_> = hashes.iter().filter_map(|h| self.status(h)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub async fn pause(&self, hash: &InfoHash) -> Result<(), EngineError> {
        let h = self.handle(hash)?;
        if h.is_paused() {
            return Ok(());
        }
        self.session.pause(&h).await.map_err(engine_err)
    }

    pub async fn resume(&self, hash: &InfoHash) -> Result<(), EngineError> {
        let h = self.handle(hash)?;
        if !h.is_paused() {
            return Ok(());
        }
        self.session.unpause(&h).await.map_err(engine_err)
    }

    /// Removes a torrent from the session; its files stay unless `delete_files`.
    pub async fn remove(&self, hash: &InfoHash, delete_files: bool) -> Result<(), EngineError> {
        self.handle(hash)?;
        self.session
            .delete(id(hash), delete_files)
            .await
            .map_err(engine_err)?;
        self.lock_metas().remove(hash);
        Ok(())
    }

    /// Waits until every wanted piece is downloaded and verified.
    pub async fn wait_complete(&self, hash: &InfoHash) -> Result<(), EngineError> {
        loop {
            let s = self.status(hash).ok_or(EngineError::NotFound(*hash))?;
            match s.state {
                TorrentState::Seeding => return Ok(()),
                TorrentState::Error => {
                    return Err(EngineError::Engine(anyhow::anyhow!(
                        s.error.unwrap_or_else(|| "unknown error".into())
                    )));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Opens file `index` of a torrent for reading from any position. Reads wait for pieces
    /// that are not there yet, and the pieces ahead of the read position are fetched first.
    pub async fn open_file(
        &self,
        hash: &InfoHash,
        index: usize,
    ) -> Result<FileReader, EngineError> {
        let meta = self.metainfo(hash).ok_or(EngineError::NotFound(*hash))?;
        let file = meta
            .files
            .get(index)
            .filter(|f| !f.padding)
            .ok_or(EngineError::NoSuchFile(*hash, index))?;
        let len = file.length;
        let handle = self.handle(hash)?;
        let permit = self
            .streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::Busy(self.max_streams))?;
        let stream = tokio::time::timeout(STREAM_OPEN_TIMEOUT, handle.stream(index))
            .await
            .map_err(|_| EngineError::NotReady)?
            .map_err(engine_err)?;
        Ok(FileReader {
            inner: Box::pin(stream),
            len,
            _permit: permit,
        })
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.max_streams - self.streams.available_permits()
    }

    /// Stops every torrent and closes the session; resume state is flushed to disk.
    /// Changes the session's bandwidth limits now (bytes per second; `None`: unlimited).
    pub fn set_limits(&self, download_bps: Option<NonZeroU32>, upload_bps: Option<NonZeroU32>) {
        self.session.ratelimits.set_download_bps(download_bps);
        self.session.ratelimits.set_upload_bps(upload_bps);
    }

    /// The session's bandwidth limits: (download, upload), bytes per second.
    pub fn limits(&self) -> (Option<NonZeroU32>, Option<NonZeroU32>) {
        (
            self.session.ratelimits.get_download_bps(),
            self.session.ratelimits.get_upload_bps(),
        )
    }

    pub async fn shutdown(&self) {
        self.session.stop().await;
        if let Some(dir) = &self.state_dir {
            let _ = std::fs::write(dir.join(CLEAN_MARKER), b"");
        }
    }
}

/// Written by a clean shutdown, removed at start: its absence means the last run crashed.
const CLEAN_MARKER: &str = "clean-shutdown";

/// librqbit trusts its saved piece bitfields (after checking a sample of the pieces they
/// claim), but it writes them lazily: after a crash they lag behind the data, and a download
/// would start over from the stale bitfield. So after a crash the bitfields go, and the
/// engine checks what is on disk instead: nothing verified before the crash is fetched again,
/// and nothing unverified is believed.
fn forget_fastresume_after_crash(dir: &std::path::Path) {
    let marker = dir.join(CLEAN_MARKER);
    if marker.exists() {
        let _ = std::fs::remove_file(&marker);
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut forgot = 0;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "bitv") && std::fs::remove_file(&p).is_ok() {
            forgot += 1;
        }
    }
    if forgot > 0 {
        tracing::warn!(
            torrents = forgot,
            "the last run did not stop cleanly; checking the data on disk instead of trusting saved progress"
        );
    }
}

pub(crate) trait ReadSeek: AsyncRead + AsyncSeek + Send {}
impl<T: AsyncRead + AsyncSeek + Send> ReadSeek for T {}

/// A file of a torrent, readable while it downloads. Holds one of the engine's stream slots
/// until dropped.
pub struct FileReader {
    pub(crate) inner: Pin<Box<dyn ReadSeek>>,
    pub(crate) len: u64,
    pub(crate) _permit: OwnedSemaphorePermit,
}

impl FileReader {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsyncRead for FileReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.inner.as_mut().poll_read(cx, buf)
    }
}

impl AsyncSeek for FileReader {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        self.inner.as_mut().start_seek(position)
    }

    fn poll_complete(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        self.inner.as_mut().poll_complete(cx)
    }
}

/// A BitTorrent session: librqbit, or our own engine ([`EngineConfig::backend`]). Cheap to
/// clone.
#[derive(Clone)]
pub struct Engine {
    backend: Inner,
}

#[derive(Clone)]
enum Inner {
    Rqbit(Rqbit),
    Own(crate::own::Own),
}

/// Calls the same method on whichever backend runs.
macro_rules! both {
    ($self:ident, $e:ident => $body:expr) => {
        match &$self.backend {
            Inner::Rqbit($e) => $body,
            Inner::Own($e) => $body,
        }
    };
}

impl Engine {
    /// Starts a session. Runs on either tokio runtime; the current-thread one moves data
    /// much faster with librqbit (its per-block `block_in_place` is a plain call there).
    pub async fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        tracing::info!(engine = ?config.backend, "starting the BitTorrent engine");
        let backend = match config.backend {
            Backend::Librqbit => Inner::Rqbit(Rqbit::start(config).await?),
            Backend::Own => Inner::Own(crate::own::Own::start(config).await?),
        };
        Ok(Engine { backend })
    }

    /// Which engine runs.
    pub fn backend(&self) -> Backend {
        match self.backend {
            Inner::Rqbit(_) => Backend::Librqbit,
            Inner::Own(_) => Backend::Own,
        }
    }

    /// The address peers connect to.
    pub fn listen_addr(&self) -> SocketAddr {
        both!(self, e => e.listen_addr())
    }

    /// Adds a torrent; returns once it is being checked or downloaded (librqbit) or checked
    /// (our own engine).
    pub async fn add(&self, source: Source, opts: AddOptions) -> Result<InfoHash, EngineError> {
        both!(self, e => e.add(source, opts).await)
    }

    /// Fetches a magnet's metadata (BEP 9) from its trackers and `peers`, without adding the
    /// torrent; returns a whole .torrent that names the magnet's trackers. Each try lasts at
    /// most `try_for`; tries repeat until `give_up_after`.
    pub async fn metadata(
        &self,
        link: &str,
        peers: Vec<SocketAddr>,
        try_for: Duration,
        give_up_after: Duration,
    ) -> Result<Vec<u8>, EngineError> {
        both!(self, e => e.metadata(link, peers, try_for, give_up_after).await)
    }

    /// The parsed metainfo of a torrent in the session.
    pub fn metainfo(&self, hash: &InfoHash) -> Option<Arc<Metainfo>> {
        both!(self, e => e.metainfo(hash))
    }

    pub fn status(&self, hash: &InfoHash) -> Option<TorrentStatus> {
        both!(self, e => e.status(hash))
    }

    pub fn list(&self) -> Vec<TorrentStatus> {
        both!(self, e => e.list())
    }

    pub async fn pause(&self, hash: &InfoHash) -> Result<(), EngineError> {
        both!(self, e => e.pause(hash).await)
    }

    pub async fn resume(&self, hash: &InfoHash) -> Result<(), EngineError> {
        both!(self, e => e.resume(hash).await)
    }

    /// Removes a torrent from the session; its files stay unless `delete_files`.
    pub async fn remove(&self, hash: &InfoHash, delete_files: bool) -> Result<(), EngineError> {
        both!(self, e => e.remove(hash, delete_files).await)
    }

    /// Waits until every wanted piece is downloaded and verified.
    pub async fn wait_complete(&self, hash: &InfoHash) -> Result<(), EngineError> {
        both!(self, e => e.wait_complete(hash).await)
    }

    /// Opens file `index` of a torrent for reading from any position. Reads wait for pieces
    /// that are not there yet, and the pieces ahead of the read position are fetched first.
    pub async fn open_file(
        &self,
        hash: &InfoHash,
        index: usize,
    ) -> Result<FileReader, EngineError> {
        both!(self, e => e.open_file(hash, index).await)
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        both!(self, e => e.open_streams())
    }

    /// Changes the session's bandwidth limits now (bytes per second; `None`: unlimited).
    pub fn set_limits(&self, download_bps: Option<NonZeroU32>, upload_bps: Option<NonZeroU32>) {
        both!(self, e => e.set_limits(download_bps, upload_bps))
    }

    /// The session's bandwidth limits: (download, upload), bytes per second.
    pub fn limits(&self) -> (Option<NonZeroU32>, Option<NonZeroU32>) {
        both!(self, e => e.limits())
    }

    /// Stops every torrent and closes the session; progress is saved.
    pub async fn shutdown(&self) {
        both!(self, e => e.shutdown().await)
    }
}
