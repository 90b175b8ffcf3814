//! One torrent: its storage, its picker and choker, and the peers connected for it. Peer
//! sessions lock its state briefly (never across an await) to ask the picker and record what
//! happened; pieces are hashed and written on blocking threads.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use spheres_metainfo::Metainfo;
use spheres_swarm::{Bitfield, Candidate, Choker, Has, Layout, PeerKey, Picker, Rate, Received};
use spheres_wire::Block;
use tokio::sync::{Notify, broadcast, mpsc};

use crate::storage::Storage;
use crate::{Admission, EngineEvent, TorrentState, TorrentStatus};

/// What a torrent tells a peer's session to do.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// We have a new piece: say so, and see whether the peer still interests us.
    Have(u32),
    Choke,
    Unchoke,
    /// Another peer sent this block first (endgame).
    Cancel(Block),
    /// Blocks went back to be asked for (a piece failed, a peer left or was slow): ask.
    Refill,
    /// A reader jumped to these pieces (a seek): cancel requests for others, ask for them.
    Hurry(std::ops::Range<u32>),
    /// Super-seeding is over: tell the peer every piece we have.
    Reveal,
    /// The torrent is removed, or the engine stops.
    Close,
}

/// What we know of a peer's pieces.
#[derive(Debug)]
pub(crate) struct PeerHas {
    pub all: bool,
    pub bits: Bitfield,
}

impl PeerHas {
    pub fn as_has(&self) -> Has<'_> {
        if self.all {
            Has::All
        } else {
            Has::Some(&self.bits)
        }
    }
}

/// A peer we dial (given, or from a tracker).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known {
    /// Dialling now, or connected.
    pub busy: bool,
    /// Failed tries in a row.
    pub failures: u32,
    pub next_try: Instant,
}

/// The most peers remembered per torrent (trackers give 50 at a time, members a few).
const MAX_KNOWN: usize = 1000;

pub(crate) struct PeerEntry {
    pub addr: SocketAddr,
    /// Where it listens (its extended handshake's `p`), when it said.
    pub listen: Option<SocketAddr>,
    pub peer_id: [u8; 20],
    pub has: PeerHas,
    /// It wants something we have.
    pub interested: bool,
    pub down: Rate,
    pub up: Rate,
    pub connected: Instant,
    /// When it last sent us a block we asked for (or when it unchoked us).
    pub last_block: Instant,
    pub waiting_for: usize,
    /// Pieces we offered it while super-seeding (it may ask for these only).
    pub offered: Vec<u32>,
    pub cmd: mpsc::UnboundedSender<Cmd>,
}

pub(crate) struct State {
    pub picker: Picker,
    pub peers: HashMap<PeerKey, PeerEntry>,
    pub choker: Choker<PeerKey>,
    /// Pieces under way: their blocks as they came, until the last one comes and the piece
    /// is hashed. Bounded by the pieces the picker may start.
    pub buffers: HashMap<u32, Vec<Vec<u8>>>,
    pub downloaded: u64,
    pub uploaded: u64,
    /// Bytes received that were not asked for, late, or of pieces that hashed wrong.
    pub wasted: u64,
    pub hash_failures: u64,
    /// Who sent blocks of each piece under way (to blame when it hashes wrong).
    pub contributors: HashMap<u32, Vec<PeerKey>>,
    /// Pieces that hashed wrong with a peer's blocks in them, by address.
    pub strikes: HashMap<IpAddr, u32>,
    /// Web seeds (by their key), and the pieces that hashed wrong with their blocks in them.
    pub source_strikes: HashMap<PeerKey, u32>,
    /// Addresses refused from now on: they sent a piece that hashed wrong alone, or had a
    /// part in [`STRIKES`] of them.
    pub banned: HashSet<IpAddr>,
    /// Writing failed (a full disk, a folder gone): no more requests until re-added.
    pub disk_error: Option<String>,
    /// Files left aside ([`crate::Engine::want_file`]).
    pub unwanted_files: HashSet<usize>,
    /// Super-seeding (BEP 16), the first seed of a new file.
    pub super_seed: Option<crate::superseed::SuperSeed>,
}

/// Pieces that hashed wrong with blocks from one address before it is banned.
pub(crate) const STRIKES: u32 = 3;

impl State {
    /// Tells every session but `except` that blocks are there to be asked for.
    pub fn refill_others(&self, except: Option<PeerKey>) {
        for (k, p) in &self.peers {
            if Some(*k) != except {
                let _ = p.cmd.send(Cmd::Refill);
            }
        }
    }
}

pub(crate) struct Torrent {
    pub meta: Arc<Metainfo>,
    /// The folder its files are under (the torrent's own folder for a multi-file torrent).
    pub root: std::path::PathBuf,
    pub storage: Arc<Storage>,
    pub layout: Layout,
    pub admission: Arc<dyn Admission>,
    pub state: Mutex<State>,
    pub events: broadcast::Sender<EngineEvent>,
    /// Wakes the choker before its time (a peer became interested, or left).
    pub rechoke: Notify,
    /// Counts verified pieces: streams waiting for a piece watch it.
    pub verified: tokio::sync::watch::Sender<u64>,
    pub closed: AtomicBool,
    pub next_key: AtomicU64,
    /// Where progress is kept across restarts (none: checked at every start).
    pub record: Option<std::path::PathBuf>,
    /// The torrent's files on disk, in order.
    pub paths: Vec<std::path::PathBuf>,
    /// Pieces were verified since progress was last saved.
    pub dirty: AtomicBool,
    /// Progress came from the record at start (no piece was hashed).
    pub resumed: AtomicBool,
    /// Every piece is in; the empty files are being created.
    pub finishing: AtomicBool,
    /// The data on disk is being checked (peers wait, nothing is announced).
    pub checking: AtomicBool,
    /// Pieces checked so far.
    pub checked: std::sync::atomic::AtomicU32,
    /// Held while progress is written (the saver and a final save may meet).
    pub saving: Mutex<()>,
    /// Trackers by tier (BEP 12), the one that last answered first in its tier.
    pub trackers: Mutex<Vec<Vec<String>>>,
    /// Wakes the announcer (trackers were changed).
    pub announce_now: Notify,
    /// Peers we keep in touch with, and when to try each next.
    pub known: Mutex<HashMap<SocketAddr, Known>>,
    /// Wakes the dialer (peers were added).
    pub dial_now: Notify,
}

impl Torrent {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding it is a bug already reported; the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn checking(&self) -> bool {
        self.checking.load(Ordering::SeqCst)
    }

    /// Waits until the data on disk is checked (returns at once if it is).
    pub async fn checked(&self) {
        let mut verified = self.verified.subscribe();
        while self.checking() && !self.closed() {
            if verified.changed().await.is_err() {
                return;
            }
        }
    }

    /// Remembers peers to dial. `given`: by the node (members' endpoints): tried now,
    /// whatever their wait; from a tracker, a peer keeps its wait. When the list is full, the
    /// peer that failed most makes room.
    pub fn add_known(&self, addrs: impl IntoIterator<Item = SocketAddr>, given: bool) {
        let now = Instant::now();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        for addr in addrs {
            if known.len() >= MAX_KNOWN && !known.contains_key(&addr) {
                let worst = known
                    .iter()
                    .filter(|(_, k)| !k.busy)
                    .max_by_key(|(_, k)| k.failures)
                    .map(|(a, _)| *a);
                match worst {
                    Some(w) => known.remove(&w),
                    None => break,
                };
            }
            let k = known.entry(addr).or_insert(Known {
                busy: false,
                failures: 0,
                next_try: now,
            });
            if given {
                k.next_try = now;
            }
        }
        drop(known);
        self.dial_now.notify_one();
    }

    /// The known peers due for a dial (marked busy), as many as there is room for, at most
    /// 8 at a time.
    pub fn due_peers(&self, now: Instant, max_peers: usize) -> Vec<SocketAddr> {
        let (connected, here): (usize, HashSet<SocketAddr>) = {
            let st = self.lock();
            // Peers connected to us already (their listen address, when they said it).
            let here = st
                .peers
                .values()
                .flat_map(|p| [Some(p.addr), p.listen])
                .flatten()
                .chain(st.banned.iter().map(|ip| SocketAddr::new(*ip, 0)))
                .collect();
            (st.peers.len(), here)
        };
        let banned = |a: &SocketAddr| here.contains(&SocketAddr::new(a.ip(), 0));
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let busy = known.values().filter(|k| k.busy).count();
        let room = max_peers.saturating_sub(connected.max(busy)).min(8);
        let mut due = Vec::new();
        for (addr, k) in known.iter_mut() {
            if due.len() >= room {
                break;
            }
            if !k.busy && k.next_try <= now && !here.contains(addr) && !banned(addr) {
                k.busy = true;
                due.push(*addr);
            }
        }
        due
    }

    /// A dial to `addr` ended: `ok` if a session ran (it ended since), else it failed. The
    /// next try waits 2 s after a session, and 2 s doubling up to 5 min after failures.
    pub fn dial_ended(&self, addr: SocketAddr, ok: bool, now: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = known.get_mut(&addr) {
            k.busy = false;
            k.failures = if ok { 0 } else { k.failures.saturating_add(1) };
            let wait = (2u64 << k.failures.saturating_sub(1).min(8)).min(300);
            k.next_try = now + std::time::Duration::from_secs(wait);
        }
    }

    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn trackers(&self) -> Vec<Vec<String>> {
        self.trackers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Moves `url` to the front of its tier (BEP 12: the tracker that answered).
    pub fn promote_tracker(&self, url: &str) {
        let mut tiers = self.trackers.lock().unwrap_or_else(|e| e.into_inner());
        for tier in tiers.iter_mut() {
            if let Some(i) = tier.iter().position(|u| u == url) {
                tier[..=i].rotate_right(1);
            }
        }
    }

    pub fn set_trackers(&self, tiers: Vec<Vec<String>>) {
        *self.trackers.lock().unwrap_or_else(|e| e.into_inner()) = tiers;
    }

    pub fn info_hash(&self) -> [u8; 20] {
        self.meta.info_hash.0
    }

    pub fn status(&self) -> TorrentStatus {
        let now = Instant::now();
        let mut st = self.lock();
        let (mut down, mut up) = (0, 0);
        for p in st.peers.values_mut() {
            down += p.down.per_second(now);
            up += p.up.per_second(now);
        }
        // One pass over the pieces (the picker scans them all), not one per field.
        let complete = st.picker.is_complete() && !self.finishing.load(Ordering::SeqCst);
        TorrentStatus {
            info_hash: self.info_hash(),
            pieces: self.layout.pieces(),
            have: st.picker.have().count(),
            complete,
            resumed: self.resumed.load(Ordering::Relaxed),
            have_bytes: st
                .picker
                .have()
                .ones()
                .map(|p| u64::from(self.layout.piece_len(p)))
                .sum(),
            state: if self.checking.load(Ordering::SeqCst) {
                TorrentState::Checking {
                    checked: self.checked.load(Ordering::Relaxed),
                }
            } else if let Some(e) = &st.disk_error {
                TorrentState::Error(e.clone())
            } else if complete {
                TorrentState::Seeding
            } else {
                TorrentState::Downloading
            },
            downloaded: st.downloaded,
            uploaded: st.uploaded,
            wasted: st.wasted,
            hash_failures: st.hash_failures,
            peers: st.peers.len(),
            download_rate: down,
            upload_rate: up,
        }
    }

    pub fn emit(&self, event: EngineEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    /// Piece `piece`'s last block came: hash it off the async threads, write it if right,
    /// and tell everyone.
    /// A block came from `from` (a peer, or a web seed): kept if it was `asked` for and its
    /// piece still wants it. Returns whether it was kept, and the piece's blocks when it was
    /// the last one (to hash and write with [`Torrent::complete_piece`]).
    pub fn take_block(
        &self,
        from: PeerKey,
        block: Block,
        data: Vec<u8>,
        asked: bool,
        now: Instant,
    ) -> (bool, Option<Vec<Vec<u8>>>) {
        let len = block.length;
        let mut guard = self.lock();
        let st = &mut *guard;
        let received = if asked {
            st.picker.received(from, &block)
        } else {
            Received::Ignored
        };
        match received {
            Received::Ignored => {
                st.wasted += u64::from(len);
                (false, None)
            }
            Received::Kept { piece_done, cancel } => {
                // Kept as it came (no copy): `received` checked it is exactly block
                // `begin / BLOCK` of the piece.
                let piece = block.piece;
                let blocks = self.layout.blocks(piece) as usize;
                let slots = st
                    .buffers
                    .entry(piece)
                    .or_insert_with(|| vec![Vec::new(); blocks]);
                if let Some(slot) = slots.get_mut((block.begin / spheres_wire::BLOCK) as usize) {
                    *slot = data;
                }
                st.downloaded += u64::from(len);
                let who = st.contributors.entry(piece).or_default();
                if !who.contains(&from) {
                    who.push(from);
                }
                let done = if piece_done {
                    st.buffers.remove(&piece)
                } else {
                    None
                };
                for k in cancel {
                    if let Some(p) = st.peers.get(&k) {
                        let _ = p.cmd.send(Cmd::Cancel(block));
                    }
                }
                if let Some(p) = st.peers.get_mut(&from) {
                    p.down.add(now, len.into());
                    p.last_block = now;
                }
                (true, done)
            }
        }
    }

    pub fn complete_piece(self: &Arc<Self>, piece: u32, data: Vec<Vec<u8>>) {
        let t = self.clone();
        tokio::spawn(async move {
            let storage = t.storage.clone();
            let result = tokio::task::spawn_blocking(move || {
                if !storage.matches(piece, &data) {
                    return Ok(false);
                }
                storage.write_piece(piece, data).map(|()| true)
            })
            .await;
            let verdict = match result {
                Ok(Ok(true)) => Ok(true),
                Ok(Ok(false)) => Ok(false),
                // Out of file descriptors (a flood of connections) is not a broken disk:
                // the piece is fetched again, the torrent goes on.
                Ok(Err(e)) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                    tracing::warn!(torrent = %t.meta.name, piece, error = %e, "cannot write a piece now; fetching it again");
                    t.lock().picker.failed(piece);
                    return;
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if t.piece_checked(piece, verdict) {
                // The last piece: the empty files too, then the download is complete.
                let storage = t.storage.clone();
                if let Ok(Err(e)) =
                    tokio::task::spawn_blocking(move || storage.create_empty_files()).await
                {
                    tracing::warn!(torrent = %t.meta.name, error = %e, "cannot create the torrent's empty files");
                }
                t.finishing.store(false, Ordering::SeqCst);
                tracing::info!(torrent = %t.meta.name, "download complete");
                t.emit(EngineEvent::Complete {
                    info_hash: t.info_hash(),
                });
                t.verified.send_modify(|_| {});
                // Seeding now: the ranking changes.
                t.rechoke.notify_one();
            }
        });
    }

    /// Records a piece's hash check; returns whether it completed the download.
    fn piece_checked(&self, piece: u32, verdict: Result<bool, String>) -> bool {
        let info_hash = self.info_hash();
        let mut st = self.lock();
        match verdict {
            Ok(true) => {
                st.picker.verified(piece);
                st.contributors.remove(&piece);
                self.verified.send_modify(|n| *n += 1);
                self.dirty.store(true, Ordering::Relaxed);
                for p in st.peers.values() {
                    let _ = p.cmd.send(Cmd::Have(piece));
                }
                let complete = st.picker.is_complete();
                if complete {
                    // Not complete to anyone until the empty files are there.
                    self.finishing.store(true, Ordering::SeqCst);
                }
                drop(st);
                self.emit(EngineEvent::PieceVerified { info_hash, piece });
                complete
            }
            Ok(false) => {
                st.picker.failed(piece);
                st.hash_failures += 1;
                st.wasted += u64::from(self.layout.piece_len(piece));
                let contributors = st.contributors.remove(&piece).unwrap_or_default();
                let blamed: Vec<IpAddr> = contributors
                    .iter()
                    .filter_map(|k| st.peers.get(k).map(|p| p.addr.ip()))
                    .collect();
                for k in &contributors {
                    if let Some(n) = st.source_strikes.get_mut(k) {
                        *n += 1;
                    }
                }
                // Alone: the only source of the piece (a web seed counts: a peer that shared a
                // bad piece with one is not banned at once).
                let alone = contributors.len() == 1;
                for ip in blamed {
                    let strikes = st.strikes.entry(ip).or_insert(0);
                    *strikes += 1;
                    if alone || *strikes >= STRIKES {
                        tracing::warn!(torrent = %self.meta.name, peer = %ip, "banned: sent pieces that hashed wrong");
                        st.banned.insert(ip);
                        for p in st.peers.values().filter(|p| p.addr.ip() == ip) {
                            let _ = p.cmd.send(Cmd::Close);
                        }
                    }
                }
                st.refill_others(None);
                drop(st);
                tracing::warn!(torrent = %self.meta.name, piece, "a piece hashed wrong");
                self.emit(EngineEvent::HashFailed { info_hash, piece });
                false
            }
            Err(error) => {
                st.picker.failed(piece);
                st.contributors.remove(&piece);
                st.disk_error = Some(error.clone());
                drop(st);
                tracing::error!(torrent = %self.meta.name, piece, %error, "cannot write a piece");
                self.emit(EngineEvent::DiskError { info_hash, error });
                false
            }
        }
    }

    /// Saves progress now if pieces were verified since the last save: the data first, then
    /// the record.
    pub async fn save(self: &Arc<Self>) {
        let Some(record) = self.record.clone() else {
            return;
        };
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let t = self.clone();
        let saved = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = t.saving.lock().unwrap_or_else(|e| e.into_inner());
            let have = t.lock().picker.have().clone();
            t.storage.sync()?;
            crate::resume::save(&record, &have, &t.paths)
        })
        .await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::warn!(torrent = %self.meta.name, "could not save progress; it will be checked at the next start");
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Saves progress every few seconds while pieces come.
    pub async fn save_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            self.save().await;
        }
    }

    /// The choker's loop: every 10 s, or when woken, ranks the peers and tells each session
    /// whether to choke or unchoke.
    pub async fn choke_loop(self: Arc<Self>) {
        loop {
            let due = {
                let now = Instant::now();
                let mut guard = self.lock();
                let st = &mut *guard;
                let seeding = st.picker.is_complete();
                let candidates: Vec<Candidate<PeerKey>> = st
                    .peers
                    .iter_mut()
                    .map(|(&key, p)| Candidate {
                        key,
                        interested: p.interested,
                        gives_us: p.down.per_second(now),
                        we_give: p.up.per_second(now),
                        connected: p.connected,
                        snubbed: p.waiting_for > 0
                            && now.saturating_duration_since(p.last_block).as_secs() > 60,
                    })
                    .collect();
                // Between rankings, only free slots are filled.
                let decision = if st.choker.due().is_some_and(|d| now < d) {
                    st.choker.fill(&candidates)
                } else {
                    st.choker.rechoke(now, seeding, &candidates)
                };
                for key in decision.unchoke {
                    if let Some(p) = st.peers.get(&key) {
                        let _ = p.cmd.send(Cmd::Unchoke);
                    }
                }
                for key in decision.choke {
                    if let Some(p) = st.peers.get(&key) {
                        let _ = p.cmd.send(Cmd::Choke);
                    }
                }
                st.choker.due()
            };
            if self.closed.load(Ordering::Relaxed) {
                return;
            }
            let sleep = due.map_or(std::time::Duration::from_secs(10), |d| {
                d.saturating_duration_since(Instant::now())
            });
            tokio::select! {
                () = tokio::time::sleep(sleep) => {}
                () = self.rechoke.notified() => {}
            }
        }
    }
}
