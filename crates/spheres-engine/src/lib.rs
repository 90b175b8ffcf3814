//! spheres' own BitTorrent engine (issue 13): the driver on tokio around the sans-IO pieces,
//! `spheres-wire` (bytes) and `spheres-swarm` (decisions).
//!
//! - [`Engine`] listens for peers, dials them, and holds torrents;
//! - each torrent has its storage (files in place, positioned reads and writes on blocking
//!   threads, pieces hashed in memory and written only when right), a picker and a choker;
//! - each peer connection is a session ([`peer`]) admitted per torrent by an [`Admission`]
//!   hook before it gets anything: no pieces, no metadata;
//! - [`Transport`] is how bytes reach a peer (TCP today).
//!
//! Peer exchange (BEP 11) and the DHT for public torrents only.
//!
//! Web seeds (BEP 19) are sources of pieces like peers ([`webseed`]).
//!
//! Web seeds (BEP 19) are a source of pieces like peers (`webseed`).
//!
//! Not yet here (next steps of issue 13): uTP, v2 torrents,
//! staged downloads (the node stages them).

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod announce;
mod dht;
mod https;
mod limit;
mod members;
mod metadata;
mod peer;
mod resume;
mod storage;
mod stream;
mod superseed;
mod torrent;
mod transport;
mod webseed;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use spheres_metainfo::Metainfo;
use spheres_swarm::{Choker, Layout, Picker, Priority};
use spheres_wire::{HANDSHAKE_LEN, Handshake};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

pub use dht::DhtConfig;
pub use members::{Members, Proving};
pub use peer::SERVE_QUEUE;
pub use spheres_wire::ExtHandshake;
use storage::Storage;
pub use stream::FileReader;
use torrent::{Cmd, State, Torrent};
pub use transport::{Conn, Dialing, Tcp, Transport};

/// The most peers connected for one torrent.
pub const MAX_PEERS: usize = 80;
/// How many bytes of pieces under way a torrent holds in memory (at least 4 pieces).
const MAX_BUFFERED: u64 = 64 * 1024 * 1024;
/// Peers connected but not yet admitted (handshake, proof), all torrents together: past
/// this, new connections are closed at once (a flood of idle connections must not take the
/// file descriptors the disks need).
const MAX_UNADMITTED: usize = 128;
/// Of those, from one address: one stranger cannot take every place (a household behind one
/// router admits its peers in milliseconds; 16 at once is far more than it needs).
const MAX_UNADMITTED_PER_IP: usize = 16;
/// Web seeds used per torrent (the first ones its `url-list` gives).
const MAX_WEB_SEEDS: usize = 4;
/// How long a peer has to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the torrent is already added")]
    AlreadyAdded,
    #[error("no such torrent")]
    NotFound,
    #[error("the torrent has no file {0}")]
    NoSuchFile(usize),
    #[error("the torrent cannot be handled: {0}")]
    BadTorrent(String),
    #[error("the engine has stopped")]
    Stopped,
    #[error("no peer gave this torrent's metadata in time (are its trackers or peers reachable?)")]
    NoMetadata,
    #[error("cannot join the DHT: {0}")]
    Dht(std::io::Error),
    #[error("cannot set up HTTPS for trackers: {0}")]
    Https(String),
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where to listen for peers (loopback unless told otherwise; port 0: the OS chooses).
    pub listen: SocketAddr,
    /// Peers we send data to at once, per torrent (one of them the optimistic slot).
    pub upload_slots: usize,
    /// Bytes a second for the whole engine; `None`: unlimited. Changed later with
    /// [`Engine::set_limits`].
    pub download_limit: Option<NonZeroU64>,
    pub upload_limit: Option<NonZeroU64>,
    /// Where torrents' progress is kept across restarts; `None`: every piece is checked
    /// whenever a torrent is added.
    pub state_dir: Option<PathBuf>,
    /// The mainline DHT, for public torrents only; `None`: no DHT.
    pub dht: Option<DhtConfig>,
    /// Certificate authorities (a PEM file) that HTTPS trackers may use besides the system's.
    pub tracker_ca: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upload_slots: 4,
            download_limit: None,
            upload_limit: None,
            state_dir: None,
            dht: None,
            tracker_ca: None,
        }
    }
}

/// What a torrent's admission sees of a peer.
#[derive(Debug)]
pub struct PeerInfo<'a> {
    pub addr: SocketAddr,
    pub peer_id: [u8; 20],
    /// Its extended handshake (BEP 10), the latest once it came.
    pub extension: Option<&'a ExtHandshake>,
    pub info_hash: [u8; 20],
    pub our_peer_id: [u8; 20],
    /// The nonce we sent this peer (its proof must be bound to it).
    pub our_nonce: [u8; 16],
}

/// An admission decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admit,
    Refuse,
    /// Decide on its extended handshake (where a member proves membership); until then it
    /// gets our extended handshake and nothing else, not even the metadata's size.
    AfterExtension,
}

/// Who may take part in a torrent. Asked after the BitTorrent handshake, and again on the
/// peer's extended handshake when it answered [`Verdict::AfterExtension`].
pub trait Admission: Send + Sync + 'static {
    fn admit(&self, peer: &PeerInfo<'_>) -> Verdict;

    /// Our own proof to send a peer once we have its nonce (a sphere's torrents); `None`:
    /// nothing to prove.
    fn proof(&self, _: &Proving) -> Option<[u8; 32]> {
        None
    }
}

/// Everyone who knows the info hash (a public torrent).
pub struct Open;

impl Admission for Open {
    fn admit(&self, _: &PeerInfo<'_>) -> Verdict {
        Verdict::Admit
    }
}

/// What the engine reports (lossy for slow listeners: a status is always at hand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    PieceVerified {
        info_hash: [u8; 20],
        piece: u32,
    },
    Complete {
        info_hash: [u8; 20],
    },
    HashFailed {
        info_hash: [u8; 20],
        piece: u32,
    },
    DiskError {
        info_hash: [u8; 20],
        error: String,
    },
    PeerConnected {
        info_hash: [u8; 20],
        addr: SocketAddr,
    },
    PeerGone {
        info_hash: [u8; 20],
        addr: SocketAddr,
        reason: String,
    },
    /// The torrent left the engine (removed, or the engine stopped).
    Removed {
        info_hash: [u8; 20],
    },
    /// A tracker answered our announce with `peers` peers.
    Announced {
        info_hash: [u8; 20],
        url: String,
        peers: usize,
    },
    /// A web seed (BEP 19) failed: it is tried again later, unless `error` says it is no
    /// longer used.
    WebSeedError {
        info_hash: [u8; 20],
        url: String,
        error: String,
    },
    /// A tracker did not answer, or refused (its reason is in `error`).
    TrackerError {
        info_hash: [u8; 20],
        url: String,
        error: String,
    },
}

/// Where a torrent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TorrentState {
    /// Its data on disk is being checked; `checked` pieces so far.
    Checking {
        checked: u32,
    },
    Downloading,
    Seeding,
    /// Writing failed (a full disk, a folder gone): no more requests until it is re-added.
    Error(String),
}

/// One file of a torrent and how much of it is here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub path: String,
    pub length: u64,
    pub have_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentStatus {
    pub state: TorrentState,
    /// Bytes of verified pieces.
    pub have_bytes: u64,
    pub info_hash: [u8; 20],
    pub pieces: u32,
    pub have: u32,
    pub complete: bool,
    /// What we had came from saved progress (the files were as recorded), not a check.
    pub resumed: bool,
    /// Bytes of verified-or-pending blocks received, and sent.
    pub downloaded: u64,
    pub uploaded: u64,
    pub wasted: u64,
    pub hash_failures: u64,
    pub peers: usize,
    pub download_rate: u64,
    pub upload_rate: u64,
}

/// A torrent and its tasks (choker, saver).
type Held = (Arc<Torrent>, Vec<JoinHandle<()>>);

struct Inner {
    config: EngineConfig,
    peer_id: [u8; 20],
    listen: SocketAddr,
    torrents: Mutex<HashMap<[u8; 20], Held>>,
    events: broadcast::Sender<EngineEvent>,
    transport: Arc<dyn Transport>,
    stopped: AtomicBool,
    limits: Arc<Limits>,
    /// Places for peers not yet admitted ([`MAX_UNADMITTED`]).
    unadmitted: Arc<tokio::sync::Semaphore>,
    /// Places taken, by address ([`MAX_UNADMITTED_PER_IP`]).
    unadmitted_by_ip: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
    /// Our DHT node, if the engine joined the DHT.
    dht: Option<dht::Dht>,
    /// For HTTP and HTTPS trackers.
    http: reqwest::Client,
    /// The web seeds' client (redirects checked).
    web_seeds: reqwest::Client,
}

/// A place for a peer not yet admitted ([`MAX_UNADMITTED`], [`MAX_UNADMITTED_PER_IP`]),
/// given back when dropped.
pub(crate) struct Place {
    _global: tokio::sync::OwnedSemaphorePermit,
    ip: std::net::IpAddr,
    by_ip: Arc<Mutex<HashMap<std::net::IpAddr, usize>>>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut by_ip = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

impl Inner {
    /// A place for a connection from `ip` before it is admitted, if one is free.
    fn place(&self, ip: std::net::IpAddr) -> Option<Place> {
        let global = self.unadmitted.clone().try_acquire_owned().ok()?;
        let mut by_ip = self
            .unadmitted_by_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = by_ip.entry(ip).or_insert(0);
        if *n >= MAX_UNADMITTED_PER_IP {
            return None;
        }
        *n += 1;
        Some(Place {
            _global: global,
            ip,
            by_ip: self.unadmitted_by_ip.clone(),
        })
    }
}

impl Drop for Inner {
    /// An engine dropped without `shutdown`: its torrents' tasks stop too.
    fn drop(&mut self) {
        let map = self.torrents.get_mut().unwrap_or_else(|e| e.into_inner());
        for (t, tasks) in map.values() {
            close(t, tasks);
        }
    }
}

/// The engine's bandwidth limits, shared by every peer session.
pub(crate) struct Limits {
    pub download: limit::Limiter,
    pub upload: limit::Limiter,
}

impl Inner {
    fn torrent(&self, info_hash: &[u8; 20]) -> Option<Arc<Torrent>> {
        self.torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(info_hash)
            .map(|(t, _)| t.clone())
    }

    fn ctx(&self) -> peer::Ctx {
        peer::Ctx {
            our_id: self.peer_id,
            listen: self.listen,
            listen_port: self.listen.port(),
            limits: self.limits.clone(),
        }
    }
}

/// The engine: cheap to clone, stops with [`Engine::shutdown`].
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    accept: Arc<JoinHandle<()>>,
}

impl Engine {
    /// Listens and starts; dials over TCP.
    pub async fn start(config: EngineConfig) -> Result<Engine, EngineError> {
        Engine::with_transport(config, Arc::new(Tcp::default())).await
    }

    pub async fn with_transport(
        config: EngineConfig,
        transport: Arc<dyn Transport>,
    ) -> Result<Engine, EngineError> {
        let addr = config.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EngineError::Listen { addr, source })?;
        Engine::on_listener(config, transport, listener)
    }

    /// Starts on a socket already bound (and held) by the caller, e.g. one the OS chose and
    /// that was kept until now; `config.listen` is not used.
    pub fn start_on(
        config: EngineConfig,
        listener: std::net::TcpListener,
    ) -> Result<Engine, EngineError> {
        let addr = config.listen;
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .map_err(|source| EngineError::Listen { addr, source })?;
        Engine::on_listener(config, Arc::new(Tcp::default()), listener)
    }

    fn on_listener(
        config: EngineConfig,
        transport: Arc<dyn Transport>,
        listener: TcpListener,
    ) -> Result<Engine, EngineError> {
        let listen = listener
            .local_addr()
            .map_err(|source| EngineError::Listen {
                addr: config.listen,
                source,
            })?;
        // Azureus-style: client SP, version, then random.
        let mut peer_id = *b"-SP0100-000000000000";
        rand::rng().fill(&mut peer_id[8..]);
        let (events, _) = broadcast::channel(4096);
        let dht = match &config.dht {
            Some(c) => Some(dht::Dht::start(c, listen).map_err(EngineError::Dht)?),
            None => None,
        };
        let http = https::client(config.tracker_ca.as_deref(), Default::default())
            .map_err(EngineError::Https)?;
        let web_seeds = https::client(config.tracker_ca.as_deref(), webseed::redirects())
            .map_err(EngineError::Https)?;
        let inner = Arc::new(Inner {
            dht,
            http,
            web_seeds,
            peer_id,
            listen,
            torrents: Mutex::new(HashMap::new()),
            events,
            transport,
            stopped: AtomicBool::new(false),
            unadmitted: Arc::new(tokio::sync::Semaphore::new(MAX_UNADMITTED)),
            unadmitted_by_ip: Arc::default(),
            limits: Arc::new(Limits {
                download: limit::Limiter::new(config.download_limit),
                upload: limit::Limiter::new(config.upload_limit),
            }),
            config,
        });
        let weak = Arc::downgrade(&inner);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, addr)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let Some(inner) = weak.upgrade() else { return };
                // Full of peers not yet admitted: this one is closed at once.
                let Some(permit) = inner.place(addr.ip()) else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(incoming(inner, Box::new(stream), addr, permit));
            }
        });
        Ok(Engine {
            inner,
            accept: Arc::new(accept),
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.inner.listen
    }

    pub fn peer_id(&self) -> [u8; 20] {
        self.inner.peer_id
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.events.subscribe()
    }

    /// Adds a torrent whose files are (or will be) in `dir` (a multi-file torrent in a folder
    /// of its name there): what is there is checked first, on all cores; then it is seeded,
    /// and what is missing is downloaded from the peers given with [`Engine::connect`] or that
    /// connect to us. Returns once the check is done.
    pub async fn add(
        &self,
        meta: Arc<Metainfo>,
        dir: PathBuf,
        admission: Arc<dyn Admission>,
    ) -> Result<TorrentStatus, EngineError> {
        let root = if meta.multi_file {
            dir.join(&meta.name)
        } else {
            dir
        };
        self.add_at(meta, root, admission).await
    }

    /// [`Engine::add`] with the torrent's root given: its own folder (any name) for a
    /// multi-file torrent, the folder holding its file for a single file.
    pub async fn add_at(
        &self,
        meta: Arc<Metainfo>,
        root: PathBuf,
        admission: Arc<dyn Admission>,
    ) -> Result<TorrentStatus, EngineError> {
        self.add_with(meta, root, admission, None).await
    }

    /// Adds a sealed share (an encrypted sphere's): `view` is its sealed torrent seen with
    /// its real files ([`Metainfo::with_layout`]), which are plaintext under `dir` as for
    /// [`Engine::add`]; peers trade its bytes encrypted under `seal` and verify them so.
    pub async fn add_sealed(
        &self,
        view: Arc<Metainfo>,
        dir: PathBuf,
        admission: Arc<dyn Admission>,
        seal: spheres_metainfo::seal::Seal,
    ) -> Result<TorrentStatus, EngineError> {
        let root = if view.multi_file {
            dir.join(&view.name)
        } else {
            dir
        };
        self.add_sealed_at(view, root, admission, seal).await
    }

    /// [`Engine::add_sealed`] with the share's root given, as [`Engine::add_at`].
    pub async fn add_sealed_at(
        &self,
        view: Arc<Metainfo>,
        root: PathBuf,
        admission: Arc<dyn Admission>,
        seal: spheres_metainfo::seal::Seal,
    ) -> Result<TorrentStatus, EngineError> {
        self.add_with(view, root, admission, Some(seal)).await
    }

    async fn add_with(
        &self,
        meta: Arc<Metainfo>,
        root: PathBuf,
        admission: Arc<dyn Admission>,
        seal: Option<spheres_metainfo::seal::Seal>,
    ) -> Result<TorrentStatus, EngineError> {
        let inner = &self.inner;
        if inner.stopped.load(Ordering::Relaxed) {
            return Err(EngineError::Stopped);
        }
        let info_hash = meta.info_hash.0;
        if inner.torrent(&info_hash).is_some() {
            return Err(EngineError::AlreadyAdded);
        }
        let piece_length = u32::try_from(meta.piece_length)
            .map_err(|_| EngineError::BadTorrent("pieces longer than 4 GiB".into()))?;
        let layout = Layout::new(piece_length, meta.total_length)
            .map_err(|e| EngineError::BadTorrent(e.to_string()))?;
        let storage = Storage::new(&meta, &root);
        let storage = Arc::new(match seal {
            Some(seal) => storage.sealed(seal),
            None => storage,
        });
        let paths = resume::file_paths(&meta, &root);
        let record = inner
            .config
            .state_dir
            .as_ref()
            .map(|d| d.join(format!("{}.resume", meta.info_hash.to_hex())));
        let seed: u64 = rand::rng().random();
        let mut picker = Picker::new(layout, seed);
        // Pieces under way are held in memory until they hash: at most 64 MiB of them.
        picker.set_max_started((MAX_BUFFERED / u64::from(piece_length)).max(4) as usize);
        let t = Arc::new(Torrent {
            root: root.clone(),
            meta,
            storage,
            layout,
            admission,
            state: Mutex::new(State {
                picker,
                peers: HashMap::new(),
                choker: Choker::new(inner.config.upload_slots, seed),
                buffers: HashMap::new(),
                downloaded: 0,
                uploaded: 0,
                wasted: 0,
                hash_failures: 0,
                contributors: HashMap::new(),
                strikes: HashMap::new(),
                source_strikes: HashMap::new(),
                banned: Default::default(),
                disk_error: None,
                unwanted_files: Default::default(),
                super_seed: None,
            }),
            events: inner.events.clone(),
            verified: tokio::sync::watch::channel(0).0,
            rechoke: Notify::new(),
            closed: AtomicBool::new(false),
            next_key: AtomicU64::new(0),
            record,
            paths,
            dirty: AtomicBool::new(false),
            resumed: AtomicBool::new(false),
            finishing: AtomicBool::new(false),
            checking: AtomicBool::new(true),
            checked: std::sync::atomic::AtomicU32::new(0),
            saving: Mutex::new(()),
            trackers: Mutex::new(Vec::new()),
            announce_now: Notify::new(),
            known: Mutex::new(HashMap::new()),
            dial_now: Notify::new(),
        });
        t.set_trackers(
            t.meta
                .trackers
                .iter()
                .map(|tier| {
                    tier.iter()
                        .filter(|u| usable_tracker(u))
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .filter(|tier| !tier.is_empty())
                .collect(),
        );
        let mut tasks = vec![
            tokio::spawn(t.clone().choke_loop()),
            tokio::spawn(t.clone().save_loop()),
            tokio::spawn(announce::announce_loop(
                t.clone(),
                Arc::downgrade(&self.inner),
            )),
            tokio::spawn(dial_loop(t.clone(), Arc::downgrade(&self.inner))),
        ];
        // Web seeds (BEP 19), a task each (a few at most).
        let mut seen = std::collections::HashSet::new();
        let seeds: Vec<&String> = t
            .meta
            .web_seeds
            .iter()
            .filter(|u| webseed::usable(u) && seen.insert(u.as_str()))
            .collect();
        for url in seeds.into_iter().take(MAX_WEB_SEEDS) {
            tasks.push(tokio::spawn(webseed::webseed_loop(
                t.clone(),
                url.clone(),
                Arc::downgrade(&self.inner),
            )));
        }
        // The DHT, for a public torrent only.
        if let Some(d) = &inner.dht
            && !t.meta.private
        {
            tasks.push(tokio::spawn(dht::dht_loop(
                t.clone(),
                d.clone(),
                inner.listen.port(),
                Arc::downgrade(&self.inner),
            )));
        }
        {
            let mut map = inner.torrents.lock().unwrap_or_else(|e| e.into_inner());
            if map.contains_key(&info_hash) {
                tasks.iter().for_each(JoinHandle::abort);
                return Err(EngineError::AlreadyAdded);
            }
            // In the engine from now on, checking (status says how far; remove cancels).
            map.insert(info_hash, (t.clone(), tasks));
        }
        // The check runs on its own: a caller that stops waiting does not leave the torrent
        // checking for ever.
        let checked = tokio::spawn(check(t.clone()));
        if !checked.await.unwrap_or(false) {
            // The check failed (a thread panicked) or the torrent was removed meanwhile.
            if !t.closed() {
                let held = inner
                    .torrents
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&info_hash);
                if let Some((t, tasks)) = held {
                    close(&t, &tasks);
                }
                return Err(EngineError::BadTorrent(
                    "its data could not be checked".into(),
                ));
            }
            return Err(EngineError::NotFound);
        }
        let status = t.status();
        if status.complete {
            let _ = inner.events.send(EngineEvent::Complete { info_hash });
        }
        Ok(status)
    }

    /// The torrents in the engine.
    pub fn torrents(&self) -> Vec<[u8; 20]> {
        let map = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        map.keys().copied().collect()
    }

    /// A torrent's metainfo and the folder its files are under (see [`Engine::add_at`]).
    pub fn metainfo(&self, info_hash: &[u8; 20]) -> Option<(Arc<Metainfo>, PathBuf)> {
        self.inner
            .torrent(info_hash)
            .map(|t| (t.meta.clone(), t.root.clone()))
    }

    /// Each file of a torrent: its path (as the torrent names it), length and the bytes of it
    /// verified so far.
    pub fn files(&self, info_hash: &[u8; 20]) -> Option<Vec<FileStatus>> {
        let t = self.inner.torrent(info_hash)?;
        let st = t.lock();
        let pl = u64::from(t.layout.piece_length());
        Some(
            t.meta
                .files
                .iter()
                .filter(|f| !f.padding)
                .map(|f| {
                    let have_bytes = t
                        .layout
                        .pieces_of(f.offset, f.length)
                        .filter(|&p| st.picker.have().get(p))
                        .map(|p| {
                            let start = u64::from(p) * pl;
                            let end = start + u64::from(t.layout.piece_len(p));
                            end.min(f.offset + f.length) - start.max(f.offset)
                        })
                        .sum();
                    FileStatus {
                        path: f.display_path(),
                        length: f.length,
                        have_bytes,
                    }
                })
                .collect(),
        )
    }

    /// Dials `addr` for torrent `info_hash` (in the background), and again whenever the
    /// connection fails or ends (after 2 s, doubling up to 5 min) while the torrent is here.
    pub fn connect(&self, info_hash: [u8; 20], addr: SocketAddr) -> Result<(), EngineError> {
        self.add_peers(&info_hash, &[addr])
    }

    /// Peers to keep in touch with for a torrent (members' endpoints, peers found on the
    /// LAN): each is dialled now and again as [`Engine::connect`] says.
    pub fn add_peers(&self, info_hash: &[u8; 20], addrs: &[SocketAddr]) -> Result<(), EngineError> {
        let t = self.inner.torrent(info_hash).ok_or(EngineError::NotFound)?;
        t.add_known(
            addrs.iter().copied().filter(|a| *a != self.inner.listen),
            true,
        );
        Ok(())
    }

    /// Super-seeding (BEP 16) for a complete torrent no peer has seen yet (a file just
    /// shared): each peer is offered a few pieces of its own and trades for the rest, so our
    /// upload goes out about once whatever the number of peers; over by itself once every
    /// piece was offered or a peer lacks only two it never heard of. Not for a torrent of
    /// fewer than three pieces. `false` ends it at once. Returns whether it is on.
    pub fn set_super_seeding(&self, info_hash: &[u8; 20], on: bool) -> Result<bool, EngineError> {
        let t = self.inner.torrent(info_hash).ok_or(EngineError::NotFound)?;
        let mut st = t.lock();
        if on {
            // Every piece here (not only the wanted ones), nobody told yet, and pieces enough
            // to gain anything (see `superseed::MIN_PIECES`).
            if !st.picker.have().is_full()
                || !st.peers.is_empty()
                || t.layout.pieces() < superseed::MIN_PIECES
            {
                return Ok(st.super_seed.is_some());
            }
            st.super_seed = Some(superseed::SuperSeed::new(t.layout.pieces()));
            return Ok(true);
        }
        if st.super_seed.take().is_some() {
            for p in st.peers.values() {
                let _ = p.cmd.send(torrent::Cmd::Reveal);
            }
        }
        Ok(false)
    }

    /// Closes every connection of a torrent (its peers are dialled again as usual): who is
    /// admitted is asked again, for instance after a sphere's secret changed, so that a
    /// removed member's connections do not outlive its membership. Returns how many closed.
    pub fn drop_peers(&self, info_hash: &[u8; 20]) -> Result<usize, EngineError> {
        let t = self.inner.torrent(info_hash).ok_or(EngineError::NotFound)?;
        let st = t.lock();
        for p in st.peers.values() {
            let _ = p.cmd.send(torrent::Cmd::Close);
        }
        Ok(st.peers.len())
    }

    /// Every peer the torrent knows of (given, from trackers, the DHT or peer exchange),
    /// connected or not, in no particular order.
    pub fn known_peers(&self, info_hash: &[u8; 20]) -> Result<Vec<SocketAddr>, EngineError> {
        let t = self.inner.torrent(info_hash).ok_or(EngineError::NotFound)?;
        let known = t.known.lock().unwrap_or_else(|e| e.into_inner());
        Ok(known.keys().copied().collect())
    }

    /// Peers of a public torrent (or magnet) from the DHT, if the engine joined it (never
    /// ask for a private one: its info hash would leave its swarm).
    pub async fn dht_peers(&self, info_hash: [u8; 20]) -> Vec<SocketAddr> {
        match &self.inner.dht {
            Some(d) => d.lookup(info_hash, None).await,
            None => Vec::new(),
        }
    }

    /// Where our DHT node listens (UDP), if the engine joined the DHT.
    pub async fn dht_addr(&self) -> Option<SocketAddr> {
        match &self.inner.dht {
            Some(d) => Some(d.local_addr().await),
            None => None,
        }
    }

    /// The torrent of a magnet link: its info dictionary fetched from `peers` and from the
    /// peers `trackers` give (BEP 9), believed only if it hashes to `info_hash`, within
    /// `deadline`. Returns the torrent's bytes, announcing to `trackers`.
    pub async fn fetch_metadata(
        &self,
        info_hash: [u8; 20],
        trackers: &[String],
        peers: &[SocketAddr],
        deadline: Duration,
    ) -> Result<Vec<u8>, EngineError> {
        self.fetch_metadata_as(info_hash, trackers, peers, deadline, Arc::new(Open))
            .await
    }

    /// [`Engine::fetch_metadata`] from peers that want `admission`'s proof (a sphere's
    /// members, who give the metadata to members only).
    pub async fn fetch_metadata_as(
        &self,
        info_hash: [u8; 20],
        trackers: &[String],
        peers: &[SocketAddr],
        deadline: Duration,
        admission: Arc<dyn Admission>,
    ) -> Result<Vec<u8>, EngineError> {
        let info = metadata::fetch(
            self.inner.clone(),
            info_hash,
            trackers.to_vec(),
            peers.to_vec(),
            deadline,
            admission,
        )
        .await
        .ok_or(EngineError::NoMetadata)?;
        let mut torrent = b"d4:info".to_vec();
        torrent.extend_from_slice(&info);
        torrent.push(b'e');
        spheres_metainfo::with_trackers(&torrent, trackers)
            .map_err(|e| EngineError::BadTorrent(e.to_string()))
    }

    /// Replaces a torrent's trackers (tiers of announce URLs; `http://`, `https://` and
    /// `udp://`): the next announce goes to them.
    pub fn set_trackers(
        &self,
        info_hash: &[u8; 20],
        tiers: Vec<Vec<String>>,
    ) -> Result<(), EngineError> {
        let t = self.inner.torrent(info_hash).ok_or(EngineError::NotFound)?;
        t.set_trackers(tiers);
        t.announce_now.notify_one();
        Ok(())
    }

    /// A connection that came over another transport, before any handshake.
    pub fn incoming(&self, conn: Box<dyn Conn>, addr: SocketAddr) {
        if let Some(permit) = self.inner.place(addr.ip()) {
            tokio::spawn(incoming(self.inner.clone(), conn, addr, permit));
        }
    }

    pub fn status(&self, info_hash: &[u8; 20]) -> Option<TorrentStatus> {
        self.inner.torrent(info_hash).map(|t| t.status())
    }

    /// Chooses whether file `index` of a torrent is downloaded (a sphere's policy may leave
    /// big files aside). Pieces it shares with a wanted file stay wanted; a file left aside
    /// is still fetched as it is read ([`Engine::open_file`]).
    pub fn want_file(
        &self,
        info_hash: &[u8; 20],
        index: usize,
        wanted: bool,
    ) -> Result<(), EngineError> {
        let t = self.inner.torrent(info_hash).ok_or(EngineError::NotFound)?;
        let files = &t.meta.files;
        let file = files.get(index).ok_or(EngineError::NoSuchFile(index))?;
        let range = t.layout.pieces_of(file.offset, file.length);
        let mut st = t.lock();
        if wanted {
            st.unwanted_files.remove(&index);
        } else {
            st.unwanted_files.insert(index);
        }
        let pl = u64::from(t.layout.piece_length());
        for p in range {
            let (start, end) = (
                u64::from(p) * pl,
                u64::from(p) * pl + u64::from(t.layout.piece_len(p)),
            );
            let others_want = files.iter().enumerate().any(|(i, f)| {
                i != index
                    && !f.padding
                    && f.offset < end
                    && f.offset + f.length > start
                    && !st.unwanted_files.contains(&i)
            });
            let priority = st.picker.priority(p);
            if wanted && priority == Priority::Skip {
                st.picker.set_priority(p..p + 1, Priority::Normal);
            } else if !wanted && !others_want && priority != Priority::Skip {
                st.picker.set_priority(p..p + 1, Priority::Skip);
            }
        }
        let complete = st.picker.is_complete();
        st.refill_others(None);
        drop(st);
        if complete {
            let _ = self.inner.events.send(EngineEvent::Complete {
                info_hash: *info_hash,
            });
        }
        Ok(())
    }

    /// Opens file `index` of a torrent for reading from any position while it downloads:
    /// reads wait for the pieces they need, which are fetched before anything else (a
    /// window ahead of every reader, the file's first and last pieces first). Any number of
    /// readers at once; a file left aside (not wanted) is fetched as it is read.
    pub fn open_file(&self, info_hash: &[u8; 20], index: usize) -> Result<FileReader, EngineError> {
        let t = self.inner.torrent(info_hash).ok_or(EngineError::NotFound)?;
        FileReader::open(t, index).ok_or(EngineError::NoSuchFile(index))
    }

    /// Changes the bandwidth limits now (bytes a second; `None`: unlimited).
    pub fn set_limits(&self, download: Option<NonZeroU64>, upload: Option<NonZeroU64>) {
        self.inner.limits.download.set(download);
        self.inner.limits.upload.set(upload);
    }

    /// The bandwidth limits: (download, upload).
    pub fn limits(&self) -> (Option<NonZeroU64>, Option<NonZeroU64>) {
        (
            self.inner.limits.download.get(),
            self.inner.limits.upload.get(),
        )
    }

    /// Waits until every wanted piece is verified; an error if the torrent leaves the engine
    /// or cannot be written.
    pub async fn wait_complete(&self, info_hash: &[u8; 20]) -> Result<(), EngineError> {
        let mut events = self.subscribe();
        loop {
            let status = self.status(info_hash).ok_or(EngineError::NotFound)?;
            if status.complete {
                return Ok(());
            }
            if let TorrentState::Error(e) = status.state {
                return Err(EngineError::BadTorrent(e));
            }
            match events.recv().await {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Err(EngineError::Stopped),
            }
        }
    }

    /// Removes a torrent: its peers are disconnected, its progress saved; its files stay.
    pub async fn remove(&self, info_hash: &[u8; 20]) -> Result<(), EngineError> {
        let (t, tasks) = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(info_hash)
            .ok_or(EngineError::NotFound)?;
        close(&t, &tasks);
        t.save().await;
        announce::stopped(&t, &self.inner).await;
        Ok(())
    }

    /// Stops listening, disconnects every peer, saves every torrent's progress.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
        self.accept.abort();
        let all: Vec<_> = self
            .inner
            .torrents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (_, (t, tasks)) in all {
            close(&t, &tasks);
            t.save().await;
            announce::stopped(&t, &self.inner).await;
        }
    }
}

fn close(t: &Torrent, tasks: &[JoinHandle<()>]) {
    // Set before the state is locked: a session being admitted checks it under the lock.
    t.closed.store(true, Ordering::SeqCst);
    let _ = t.events.send(EngineEvent::Removed {
        info_hash: t.info_hash(),
    });
    tasks.iter().for_each(JoinHandle::abort);
    // Streams waiting for a piece: it will not come.
    t.verified.send_modify(|_| {});
    for p in t.lock().peers.values() {
        let _ = p.cmd.send(Cmd::Close);
    }
}

/// Checks what a torrent has on disk (its saved record if the files are as recorded, else
/// every piece) and opens it to peers; `false` if that failed or the torrent was removed.
async fn check(t: Arc<Torrent>) -> bool {
    let (checking, record, paths) = (t.clone(), t.record.clone(), t.paths.clone());
    let found = tokio::task::spawn_blocking(move || {
        let pieces = checking.layout.pieces();
        match record
            .as_deref()
            .and_then(|r| resume::load(r, pieces, &paths))
        {
            Some(have) => (
                (0..pieces).map(|p| have.get(p)).collect::<Vec<bool>>(),
                true,
            ),
            None => (
                checking
                    .storage
                    .check_all(&checking.checked, &checking.closed),
                false,
            ),
        }
    })
    .await;
    let Ok((present, resumed)) = found else {
        return false;
    };
    if t.closed() {
        return false;
    }
    {
        let mut st = t.lock();
        for (p, ok) in present.iter().enumerate() {
            if *ok {
                st.picker.verified(p as u32);
            }
        }
    }
    t.resumed.store(resumed, Ordering::Relaxed);
    // A checked start is saved at once: the next start need not check again.
    t.dirty.store(!resumed, Ordering::Relaxed);
    t.checking.store(false, Ordering::SeqCst);
    t.verified.send_modify(|_| {});
    true
}

/// Trackers we can announce to.
fn usable_tracker(url: &str) -> bool {
    ["http://", "https://", "udp://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

/// Dials the torrent's known peers that are due (not connected, their wait over), while
/// it has room for more; woken when peers are added.
async fn dial_loop(t: Arc<Torrent>, engine: std::sync::Weak<Inner>) {
    t.checked().await;
    loop {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        if t.closed() {
            return;
        }
        for addr in t.due_peers(std::time::Instant::now(), MAX_PEERS) {
            dial(&inner, t.clone(), addr);
        }
        drop(inner);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = t.dial_now.notified() => {}
        }
    }
}

/// Dials `addr` for `t` in the background; when it fails or ends, the peer is tried again
/// later (an event says why it failed).
fn dial(inner: &Arc<Inner>, t: Arc<Torrent>, addr: SocketAddr) {
    let inner = inner.clone();
    tokio::spawn(async move {
        let info_hash = t.info_hash();
        let result = outgoing(&inner, t.clone(), addr).await;
        t.dial_ended(addr, result.is_ok(), std::time::Instant::now());
        if let Err(e) = result {
            tracing::debug!(peer = %addr, error = %e, "could not connect");
            let _ = inner.events.send(EngineEvent::PeerGone {
                info_hash,
                addr,
                reason: e.to_string(),
            });
        }
    });
}

#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] spheres_wire::WireError),
    #[error("no handshake in time")]
    Timeout,
    #[error("the peer is for another torrent")]
    WrongTorrent,
    #[error("we are not serving that torrent")]
    UnknownTorrent,
    #[error("connected to ourselves")]
    Ourselves,
    #[error("refused by the torrent's admission, or banned")]
    Refused,
}

/// Reads a peer's handshake: the first 20 bytes at once (a peer speaking something else is
/// dropped before it sends more), then the rest.
async fn read_handshake(conn: &mut Box<dyn Conn>) -> Result<Handshake, HandshakeError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        conn.read_exact(&mut buf[..20]).await?;
        Handshake::parse(&buf[..20])?;
        conn.read_exact(&mut buf[20..]).await?;
        Ok::<_, HandshakeError>(())
    })
    .await
    .map_err(|_| HandshakeError::Timeout)??;
    Handshake::parse(&buf)?.ok_or(HandshakeError::Timeout)
}

async fn incoming(inner: Arc<Inner>, mut conn: Box<dyn Conn>, addr: SocketAddr, permit: Place) {
    let result = async {
        let theirs = read_handshake(&mut conn).await?;
        let t = inner
            .torrent(&theirs.info_hash)
            .ok_or(HandshakeError::UnknownTorrent)?;
        if theirs.peer_id == inner.peer_id {
            return Err(HandshakeError::Ourselves);
        }
        // Not ready while its data is checked: the peer will come back.
        if t.checking() {
            return Err(HandshakeError::UnknownTorrent);
        }
        // Refused outright: not even our handshake, which would say we hold the torrent.
        let info = PeerInfo {
            addr,
            peer_id: theirs.peer_id,
            extension: None,
            info_hash: theirs.info_hash,
            our_peer_id: inner.peer_id,
            our_nonce: [0; 16],
        };
        if t.admission.admit(&info) == Verdict::Refuse || t.lock().banned.contains(&addr.ip()) {
            return Err(HandshakeError::Refused);
        }
        let ours = Handshake::new(theirs.info_hash, inner.peer_id);
        conn.write_all(&ours.encode()).await?;
        Ok((t, theirs))
    }
    .await;
    match result {
        Ok((t, theirs)) => {
            peer::run(t, conn, addr, theirs, inner.ctx(), Some(permit)).await;
        }
        Err(e) => tracing::debug!(peer = %addr, error = %e, "incoming connection dropped"),
    }
}

async fn outgoing(
    inner: &Arc<Inner>,
    t: Arc<Torrent>,
    addr: SocketAddr,
) -> Result<(), HandshakeError> {
    let mut conn = inner.transport.dial(addr).await?;
    let ours = Handshake::new(t.info_hash(), inner.peer_id);
    conn.write_all(&ours.encode()).await?;
    let theirs = read_handshake(&mut conn).await?;
    if theirs.info_hash != t.info_hash() {
        return Err(HandshakeError::WrongTorrent);
    }
    if theirs.peer_id == inner.peer_id {
        return Err(HandshakeError::Ourselves);
    }
    if t.lock().banned.contains(&addr.ip()) {
        return Err(HandshakeError::Refused);
    }
    if peer::run(t, conn, addr, theirs, inner.ctx(), None).await {
        Ok(())
    } else {
        // Connected, never admitted (refused, a proof that did not come, full): try later.
        Err(HandshakeError::Refused)
    }
}
