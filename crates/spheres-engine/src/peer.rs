//! One connection to one peer, after both handshakes: admission, then messages both ways.
//!
//! The session reads and decides; a writer task sends, so a peer that reads slowly never
//! stops us reading from it. What the session keeps for the peer is bounded: one message in
//! the decoder (and a 256 KiB read), at most [`SERVE_QUEUE`] of its requests (blocks are read
//! from disk a batch at a time, as they can be sent), at most [`MAX_UNSENT`] bytes of other
//! messages not yet sent (past that we stop reading from it until it reads), our own
//! requests sized by its rate.
//!
//! Until the torrent's admission lets the peer in, every peer is treated alike whatever the
//! torrent: the same longest message, its messages kept aside (a few) or ignored, nothing
//! answered but our extended handshake; so a refused peer learns nothing of the torrent.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spheres_swarm::{Bitfield, PeerKey, Rate, request_depth};
use spheres_wire::{
    BLOCK, Block, Decoder, ExtHandshake, Handshake, METADATA_PIECE, Message, MetadataMessage,
    UT_METADATA, UT_PEX, metadata_pieces,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Notify, mpsc};

use crate::torrent::{Cmd, PeerEntry, PeerHas, Torrent};
use crate::transport::Conn;
use crate::{EngineEvent, PeerInfo, Verdict};

mod pex;
mod superseed;

/// The most requests we queue for a peer (what we announce as `reqq`); more are rejected.
pub const SERVE_QUEUE: usize = 250;
/// Blocks read from disk in one trip to a blocking thread.
const SERVE_BATCH: usize = 64;
/// Bytes of answers queued for a peer before we stop reading what it sends.
const MAX_UNSENT: usize = 2 * 1024 * 1024;
/// The longest message before admission, whatever the torrent (a metadata piece and a bit).
const MAX_BEFORE_ADMISSION: u32 = METADATA_PIECE + 256;
/// Messages kept aside before admission (its pieces: a bitfield, some `Have`s).
const MAX_EARLY: usize = 256;
/// Bytes kept aside before admission (a bitfield of 130 000 pieces, and some `Have`s).
const MAX_EARLY_BYTES: usize = 16 * 1024 + 1024;
/// Blocks we stopped waiting for (timed out, choked) that we still take if they come.
const MAX_RELEASED: usize = 512;
/// The id under which we want to receive `ut_metadata` messages.
const OUR_UT_METADATA: u8 = 1;
/// The id under which we want to receive `ut_pex` messages (public torrents only).
const OUR_UT_PEX: u8 = 2;
/// How often we tell a peer whom else we are connected to (BEP 11: at most once a minute).
const PEX_EVERY: Duration = Duration::from_secs(60);
/// A peer's PEX messages closer together than this are ignored (a peer that floods us
/// with addresses must not make us dial the world).
const PEX_AT_MOST_EVERY: Duration = Duration::from_secs(30);
/// Addresses taken from one PEX message (BEP 11 asks senders for at most 50).
const PEX_TAKEN: usize = 50;
/// A peer that sends nothing (not even a keep-alive) for this long is gone.
const IDLE: Duration = Duration::from_secs(150);
/// Requests unanswered for this long go to other peers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// After a peer rejected or timed out a request, we wait this long before asking it again
/// (other peers get the blocks first).
const COOL_DOWN: Duration = Duration::from_secs(2);
/// How long a peer has to send its extended handshake when admission waits for it.
const EXTENSION_WAIT: Duration = Duration::from_secs(10);

/// What the writer sends.
enum Out {
    Msg(Message),
    /// The next block of the serve queue (if it was not cancelled meanwhile).
    Serve,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Ended {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] spheres_wire::WireError),
    #[error("the peer broke the protocol: {0}")]
    Protocol(&'static str),
    #[error("refused by the torrent's admission")]
    Refused,
    #[error("the peer sent nothing for too long")]
    Idle,
    #[error("closed by us")]
    Closed,
}

pub(crate) struct Ctx {
    pub our_id: [u8; 20],
    /// Where we listen (never dialled when a peer gossips it back).
    pub listen: SocketAddr,
    pub listen_port: u16,
    pub limits: Arc<crate::Limits>,
}

/// The writer's queue, counted in bytes.
struct Outbox {
    tx: mpsc::UnboundedSender<(Out, usize)>,
    unsent: Arc<AtomicUsize>,
    drained: Arc<Notify>,
}

impl Outbox {
    fn push(&self, out: Out, bytes: usize) {
        self.unsent.fetch_add(bytes, Ordering::Relaxed);
        let _ = self.tx.send((out, bytes));
    }

    fn full(&self) -> bool {
        self.unsent.load(Ordering::Relaxed) > MAX_UNSENT
    }
}

struct Session {
    t: Arc<Torrent>,
    key: PeerKey,
    addr: SocketAddr,
    their: Handshake,
    fast: bool,
    out: Outbox,
    serve: Arc<Mutex<VecDeque<Block>>>,
    /// Registered in the torrent (admitted): until then it gets nothing.
    registered: bool,
    /// What it sent before it was admitted, to read once it is (at most [`MAX_EARLY`]
    /// messages and [`MAX_EARLY_BYTES`]).
    early: Vec<Message>,
    early_bytes: usize,
    /// One of the engine's places for peers not yet admitted, given back on admission.
    waiting: Option<crate::Place>,
    /// It said which pieces it has. `HaveAll` and `HaveNone` may only be its first word (5
    /// bytes that cost a pass over every piece: again and again, an attack); a bitfield may
    /// come again (aria2 sends one as it progresses), its cost in proportion to its length.
    said_pieces: bool,
    their_ext: Option<ExtHandshake>,
    /// Sent in our extended handshake: the peer's proof of membership is bound to it.
    our_nonce: [u8; 16],
    our_id: [u8; 20],
    listen_port: u16,
    /// Our proof of membership, once we had its nonce (a sphere's torrents).
    our_proof: Option<[u8; 32]>,
    peer_interested: bool,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    /// Our requests it has not answered.
    outstanding: Vec<Block>,
    /// Requests we gave up on, still welcome.
    released: VecDeque<Block>,
    last_heard: Instant,
    last_block: Instant,
    last_sent: Instant,
    cool_down_until: Instant,
    rate: Rate,
    /// We dialled it (so its address is where it listens).
    outgoing: bool,
    /// Peer exchange (public torrents): the listen addresses we told it of, when we may
    /// tell it next, and when it last told us.
    pex_told: HashSet<SocketAddr>,
    pex_next: Instant,
    pex_heard: Option<Instant>,
    our_listen: SocketAddr,
}

pub(crate) async fn run(
    t: Arc<Torrent>,
    conn: Box<dyn Conn>,
    addr: SocketAddr,
    their: Handshake,
    ctx: Ctx,
    waiting: Option<crate::Place>,
) -> bool {
    let key = t.next_key.fetch_add(1, Ordering::Relaxed);
    let (rd, wr) = tokio::io::split(conn);
    let (tx, out_rx) = mpsc::unbounded_channel();
    let out = Outbox {
        tx,
        unsent: Arc::new(AtomicUsize::new(0)),
        drained: Arc::new(Notify::new()),
    };
    let serve = Arc::new(Mutex::new(VecDeque::new()));
    let mut writer = tokio::spawn(writer(
        wr,
        out_rx,
        Shared {
            limits: ctx.limits.clone(),
            serve: serve.clone(),
            t: t.clone(),
            key,
            unsent: out.unsent.clone(),
            drained: out.drained.clone(),
        },
    ));
    let now = Instant::now();
    let mut s = Session {
        t: t.clone(),
        key,
        addr,
        their,
        fast: their.fast(),
        out,
        serve,
        registered: false,
        early: Vec::new(),
        early_bytes: 0,
        waiting: None,
        said_pieces: false,
        their_ext: None,
        our_nonce: rand::random(),
        our_id: ctx.our_id,
        listen_port: ctx.listen_port,
        our_proof: None,
        peer_interested: false,
        am_choking: true,
        am_interested: false,
        peer_choking: true,
        outstanding: Vec::new(),
        released: VecDeque::new(),
        last_heard: now,
        last_block: now,
        last_sent: now,
        cool_down_until: now,
        rate: Rate::new(now),
        outgoing: waiting.is_none(),
        pex_told: HashSet::new(),
        pex_next: now,
        pex_heard: None,
        our_listen: ctx.listen,
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    s.waiting = waiting;
    let ended = s.run(rd, &ctx, cmd_tx, cmd_rx, &mut writer).await;
    tracing::debug!(peer = %addr, torrent = %t.meta.name, reason = %ended, "peer session ended");
    let admitted = s.registered;
    s.leave();
    writer.abort();
    t.events
        .send(EngineEvent::PeerGone {
            info_hash: t.info_hash(),
            addr,
            reason: ended.to_string(),
        })
        .ok();
    admitted
}

impl Session {
    fn send(&mut self, m: Message) {
        self.last_sent = Instant::now();
        let bytes = match &m {
            Message::Extended { payload, .. } => payload.len() + 6,
            Message::Bitfield(b) => b.len() + 5,
            _ => 17,
        };
        self.out.push(Out::Msg(m), bytes);
    }

    fn info(&self) -> PeerInfo<'_> {
        PeerInfo {
            addr: self.addr,
            peer_id: self.their.peer_id,
            extension: self.their_ext.as_ref(),
            info_hash: self.t.info_hash(),
            our_peer_id: self.our_id,
            our_nonce: self.our_nonce,
        }
    }

    /// Its extended handshake came: if the torrent wants us to prove membership and we have
    /// its nonce, our proof goes in a second extended handshake.
    /// Where it listens: its address with the port its extended handshake gave.
    fn their_listen(&self) -> Option<SocketAddr> {
        if self.outgoing {
            return Some(self.addr);
        }
        let port = self.their_ext.as_ref()?.listen_port?;
        Some(SocketAddr::new(self.addr.ip(), port))
    }

    fn on_their_extension(&mut self, h: ExtHandshake) {
        let nonce = h.nonce;
        self.their_ext = Some(h);
        if self.registered {
            let listen = self.their_listen();
            if let Some(p) = self.t.lock().peers.get_mut(&self.key) {
                p.listen = listen;
            }
        }
        if self.our_proof.is_some() {
            return;
        }
        let Some(their_nonce) = nonce else { return };
        self.our_proof = self.t.admission.proof(&crate::Proving {
            info_hash: self.t.info_hash(),
            from: self.our_id,
            from_nonce: self.our_nonce,
            to: self.their.peer_id,
            to_nonce: their_nonce,
        });
        if self.our_proof.is_some() {
            self.send_ext_handshake(self.registered);
        }
    }

    async fn run(
        &mut self,
        mut rd: ReadHalf<Box<dyn Conn>>,
        ctx: &Ctx,
        cmd_tx: mpsc::UnboundedSender<Cmd>,
        mut cmd_rx: mpsc::UnboundedReceiver<Cmd>,
        writer: &mut tokio::task::JoinHandle<std::io::Result<()>>,
    ) -> Ended {
        let mut decoder = Decoder::new(MAX_BEFORE_ADMISSION);
        let mut verdict = self.t.admission.admit(&self.info());
        if verdict == Verdict::AfterExtension && !self.their.extended() {
            verdict = Verdict::Refuse;
        }
        if verdict == Verdict::Refuse {
            return Ended::Refused;
        }
        // Our pieces first when admitted now, as BEP 6 asks, then the extended handshake.
        // When admission waits for the peer's extended handshake, ours goes first: it says
        // nothing of the torrent beyond what the info hash did (not the metadata's size).
        if verdict == Verdict::Admit
            && let Err(e) = self.admitted(&cmd_tx, &mut decoder)
        {
            return e;
        }
        if self.their.extended() {
            self.send_ext_handshake(verdict == Verdict::Admit);
        }
        let waiting_since = Instant::now();
        let mut buf = vec![0u8; 256 * 1024];
        // Each session ticks at its own phase: two peers that connected together do not hear
        // of each other (PEX) in the same millisecond and dial each other at once.
        let phase = Duration::from_millis(rand::random::<u64>() % 5000);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + phase, Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let drained = self.out.drained.clone();
        loop {
            let reading = !self.out.full();
            tokio::select! {
                // In chunks: the decoder holds at most a chunk and one message.
                read = rd.read(&mut buf), if reading => {
                    let n = match read {
                        Ok(0) => return Ended::Io(std::io::ErrorKind::UnexpectedEof.into()),
                        Ok(n) => n,
                        Err(e) => return Ended::Io(e),
                    };
                    self.last_heard = Instant::now();
                    // Over the download limit, we read again once it has paid back.
                    ctx.limits.download.take(n as u64).await;
                    decoder.push(&buf[..n]);
                    loop {
                        let m = match decoder.next_message() {
                            Ok(Some(m)) => m,
                            Ok(None) => break,
                            Err(e) => return Ended::Wire(e),
                        };
                        if let Err(e) = self.on_message(m, &cmd_tx, &mut decoder) {
                            return e;
                        }
                    }
                }
                () = drained.notified(), if !reading => {}
                done = &mut *writer => {
                    return match done {
                        Ok(Err(e)) => Ended::Io(e),
                        _ => Ended::Closed,
                    };
                }
                cmd = cmd_rx.recv() => {
                    match cmd {
                        Some(Cmd::Close) | None => return Ended::Closed,
                        Some(cmd) => self.on_cmd(cmd),
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    if now.saturating_duration_since(self.last_heard) > IDLE {
                        return Ended::Idle;
                    }
                    if !self.registered && now.saturating_duration_since(waiting_since) > EXTENSION_WAIT {
                        return Ended::Refused;
                    }
                    if now.saturating_duration_since(self.last_sent) > Duration::from_secs(60) {
                        self.send(Message::KeepAlive);
                    }
                    self.send_pex(now);
                    // Super-seeding, and it wants none of the pieces it was offered (files
                    // left aside): more offers, or it would wait for ever.
                    if self.registered && !self.peer_interested {
                        self.offer(true);
                    }
                    if !self.outstanding.is_empty()
                        && now.saturating_duration_since(self.last_block) > REQUEST_TIMEOUT
                    {
                        // Too slow: its requests go to others (it may still send them).
                        self.give_up_requests();
                        self.last_block = now;
                        self.cool_down_until = now + COOL_DOWN;
                    }
                    self.refill();
                }
            }
        }
    }

    fn send_ext_handshake(&mut self, with_metadata: bool) {
        let mut extensions: std::collections::BTreeMap<String, u8> =
            [(UT_METADATA.to_owned(), OUR_UT_METADATA)].into();
        if self.pex() {
            extensions.insert(UT_PEX.to_owned(), OUR_UT_PEX);
        }
        let h = ExtHandshake {
            extensions,
            metadata_size: with_metadata
                .then(|| u32::try_from(self.t.meta.info_bytes.len()).ok())
                .flatten(),
            listen_port: Some(self.listen_port).filter(|&p| p != 0),
            client: Some(concat!("spheres/", env!("CARGO_PKG_VERSION")).to_owned()),
            request_queue: Some(SERVE_QUEUE as u32),
            your_ip: Some(self.addr.ip()),
            upload_only: false,
            nonce: Some(self.our_nonce),
            member_proof: self.our_proof,
        };
        self.send(Message::Extended {
            id: 0,
            payload: h.encode(),
        });
    }

    /// Admission said yes: the peer joins the torrent, hears what we have, and what it sent
    /// meanwhile is read.
    fn admitted(
        &mut self,
        cmd_tx: &mpsc::UnboundedSender<Cmd>,
        decoder: &mut Decoder,
    ) -> Result<(), Ended> {
        let now = Instant::now();
        let pieces = self.t.layout.pieces();
        let (ours, hiding) = {
            let mut st = self.t.lock();
            // Checked under the lock: a torrent being removed sets it before it locks.
            if self.t.closed.load(Ordering::SeqCst) {
                return Err(Ended::Closed);
            }
            if st.banned.contains(&self.addr.ip()) {
                return Err(Ended::Refused);
            }
            if st.peers.len() >= crate::MAX_PEERS {
                return Err(Ended::Protocol("too many peers"));
            }
            if st.peers.values().any(|p| p.peer_id == self.their.peer_id) {
                return Err(Ended::Protocol("already connected"));
            }
            st.peers.insert(
                self.key,
                PeerEntry {
                    addr: self.addr,
                    listen: self.their_listen(),
                    peer_id: self.their.peer_id,
                    has: PeerHas {
                        all: false,
                        bits: Bitfield::new(pieces),
                    },
                    interested: self.peer_interested,
                    down: Rate::new(now),
                    up: Rate::new(now),
                    connected: now,
                    last_block: now,
                    waiting_for: 0,
                    offered: Vec::new(),
                    cmd: cmd_tx.clone(),
                },
            );
            (st.picker.have().clone(), st.super_seed.is_some())
        };
        self.registered = true;
        // Its place among peers not yet admitted goes to the next one.
        self.waiting = None;
        // Now messages as long as the torrent's bitfield are fine.
        decoder.set_max(
            BLOCK
                .max(METADATA_PIECE)
                .saturating_add(256)
                .max(pieces / 8 + 16),
        );
        let m = if hiding {
            // Super-seeding: we say we have nothing, then offer pieces one by one.
            if self.fast {
                Message::HaveNone
            } else {
                Message::Bitfield(Bitfield::new(pieces).as_wire().to_vec())
            }
        } else if self.fast && ours.is_full() {
            Message::HaveAll
        } else if self.fast && ours.count() == 0 {
            Message::HaveNone
        } else {
            Message::Bitfield(ours.as_wire().to_vec())
        };
        self.send(m);
        let _ = self.t.events.send(EngineEvent::PeerConnected {
            info_hash: self.t.info_hash(),
            addr: self.addr,
        });
        if self.peer_interested {
            self.t.rechoke.notify_one();
        }
        for m in std::mem::take(&mut self.early) {
            self.on_admitted_message(m)?;
        }
        self.update_interest();
        if hiding {
            self.offer(false);
        }
        Ok(())
    }

    /// Back out of the torrent: our requests to others, its pieces out of the counts.
    fn leave(&mut self) {
        if !self.registered {
            return;
        }
        let mut st = self.t.lock();
        let had_requests = !self.outstanding.is_empty();
        for b in self.outstanding.drain(..) {
            st.picker.release(self.key, &b);
        }
        if let Some(p) = st.peers.remove(&self.key) {
            st.picker.peer_left(p.has.as_has());
        }
        if had_requests {
            st.refill_others(None);
        }
        drop(st);
        self.t.rechoke.notify_one();
    }

    /// We stop waiting for our requests (it choked us, or is too slow): the blocks go to
    /// others, and are still taken from this peer if they come.
    fn give_up_requests(&mut self) {
        if self.outstanding.is_empty() {
            return;
        }
        let given_up = std::mem::take(&mut self.outstanding);
        let mut st = self.t.lock();
        for b in &given_up {
            st.picker.release(self.key, b);
        }
        if let Some(p) = st.peers.get_mut(&self.key) {
            p.waiting_for = 0;
        }
        st.refill_others(Some(self.key));
        drop(st);
        self.keep_released(given_up);
    }

    /// Blocks we stopped waiting for, still taken if they come (the latest
    /// [`MAX_RELEASED`]).
    fn keep_released(&mut self, blocks: Vec<Block>) {
        for b in blocks {
            if self.released.len() >= MAX_RELEASED {
                self.released.pop_front();
            }
            self.released.push_back(b);
        }
    }

    /// Its pieces changed (or ours did): are we interested?
    fn update_interest(&mut self) {
        if !self.registered {
            return;
        }
        let interesting = {
            let st = self.t.lock();
            st.peers
                .get(&self.key)
                .is_some_and(|p| st.picker.interesting(p.has.as_has()))
        };
        if interesting != self.am_interested {
            self.am_interested = interesting;
            self.send(if interesting {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
        self.refill();
    }

    /// Asks for as many blocks as its rate deserves.
    fn refill(&mut self) {
        let now = Instant::now();
        if !self.registered
            || self.peer_choking
            || !self.am_interested
            || now < self.cool_down_until
        {
            return;
        }
        let depth = request_depth(
            self.rate.per_second(now),
            self.their_ext.as_ref().and_then(|e| e.request_queue),
        );
        if self.outstanding.len() >= depth {
            return;
        }
        let mut blocks = Vec::new();
        {
            let mut guard = self.t.lock();
            let st = &mut *guard;
            if st.disk_error.is_some() {
                return;
            }
            let Some(p) = st.peers.get_mut(&self.key) else {
                return;
            };
            st.picker.pick(
                self.key,
                p.has.as_has(),
                depth - self.outstanding.len(),
                &mut blocks,
            );
            p.waiting_for = self.outstanding.len() + blocks.len();
        }
        if self.outstanding.is_empty() && !blocks.is_empty() {
            self.last_block = now;
        }
        for b in blocks {
            self.outstanding.push(b);
            self.send(Message::Request(b));
        }
    }

    /// A reader jumped to `window` (a seek): our requests for other pieces would arrive
    /// before its, so they are cancelled (still welcome if they come; High pieces, a file's
    /// ends, stay asked) and its window asked for first. The reader it left may not have
    /// closed yet: its window goes too, and comes back if it reads again.
    fn hurry(&mut self, window: std::ops::Range<u32>) {
        if !self.registered {
            return;
        }
        {
            let mut st = self.t.lock();
            // What the seeking reader needs, and what any other reader (or a High piece)
            // waits for: only the rest stands in the way.
            let keep = |b: &Block| window.contains(&b.piece) || st.picker.urgent(b.piece);
            let stale: Vec<Block> = self
                .outstanding
                .iter()
                .filter(|b| !keep(b))
                .copied()
                .collect();
            if stale.is_empty() {
                drop(st);
                self.refill();
                return;
            }
            self.outstanding.retain(keep);
            for b in &stale {
                st.picker.release(self.key, b);
            }
            drop(st);
            for b in &stale {
                self.send(Message::Cancel(*b));
            }
            self.keep_released(stale);
        }
        self.refill();
    }

    /// Its word on its pieces: a bitfield, or (first only) `HaveAll` or `HaveNone`.
    fn set_pieces(&mut self, all: bool, bits: Bitfield, fast: bool) -> Result<(), Ended> {
        if std::mem::replace(&mut self.said_pieces, true) && fast {
            return Err(Ended::Protocol(
                "HaveAll or HaveNone after its pieces were said",
            ));
        }
        {
            let mut guard = self.t.lock();
            let st = &mut *guard;
            let Some(p) = st.peers.get_mut(&self.key) else {
                return Ok(());
            };
            st.picker.peer_left(p.has.as_has());
            p.has = PeerHas { all, bits };
            st.picker.peer_joined(p.has.as_has());
        }
        self.update_interest();
        self.offer(false);
        Ok(())
    }

    fn on_message(
        &mut self,
        m: Message,
        cmd_tx: &mpsc::UnboundedSender<Cmd>,
        decoder: &mut Decoder,
    ) -> Result<(), Ended> {
        if self.registered {
            return self.on_admitted_message(m);
        }
        // Before admission: its extended handshake is read; its pieces and interest are kept
        // for later (a few); anything else is ignored, and nothing is answered.
        match m {
            Message::Extended { id: 0, payload } => {
                let h = ExtHandshake::parse(&payload)
                    .map_err(|_| Ended::Protocol("a bad extended handshake"))?;
                self.on_their_extension(h);
                match self.t.admission.admit(&self.info()) {
                    Verdict::Admit => {
                        self.admitted(cmd_tx, decoder)?;
                        // Now it may know the metadata's size.
                        self.send_ext_handshake(true);
                    }
                    Verdict::Refuse => return Err(Ended::Refused),
                    // Its proof may follow (once it has our nonce), within the wait.
                    Verdict::AfterExtension => {}
                }
            }
            Message::Interested | Message::NotInterested => {
                self.peer_interested = matches!(m, Message::Interested);
            }
            Message::Bitfield(_) | Message::HaveAll | Message::HaveNone | Message::Have { .. }
                if self.early.len() < MAX_EARLY =>
            {
                let bytes = match &m {
                    Message::Bitfield(b) => b.len(),
                    _ => 4,
                };
                if self.early_bytes + bytes <= MAX_EARLY_BYTES {
                    self.early_bytes += bytes;
                    self.early.push(m);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_admitted_message(&mut self, m: Message) -> Result<(), Ended> {
        let pieces = self.t.layout.pieces();
        match m {
            Message::KeepAlive | Message::Unknown { .. } | Message::Port(_) => {}
            // BitTorrent v2's hash exchange: we do not speak v2 to peers yet (no upgrade bit
            // in our handshake), so a request is refused politely and the rest ignored.
            Message::HashRequest(r) => self.send(Message::HashReject(r)),
            Message::Hashes { .. } | Message::HashReject(_) => {}
            Message::Suggest { .. } | Message::AllowedFast { .. } => {}
            Message::Bitfield(bytes) => {
                let bits = Bitfield::from_wire(&bytes, pieces)
                    .map_err(|_| Ended::Protocol("a bitfield of the wrong size"))?;
                self.set_pieces(false, bits, false)?;
            }
            Message::HaveAll | Message::HaveNone if !self.fast => {
                return Err(Ended::Protocol("Fast messages without the Fast extension"));
            }
            Message::HaveAll => self.set_pieces(true, Bitfield::new(pieces), true)?,
            Message::HaveNone => self.set_pieces(false, Bitfield::new(pieces), true)?,
            Message::Have { piece } => {
                if piece >= pieces {
                    return Err(Ended::Protocol("a piece past the end"));
                }
                self.said_pieces = true;
                let mut st = self.t.lock();
                let new = st
                    .peers
                    .get_mut(&self.key)
                    .is_some_and(|p| !p.has.all && p.has.bits.set(piece));
                if new {
                    st.picker.peer_has(piece);
                }
                let wanted = new && st.picker.wants(piece);
                // Super-seeding: it has a piece we offered it; it may have another.
                let offered = new
                    && st.super_seed.is_some()
                    && st
                        .peers
                        .get(&self.key)
                        .is_some_and(|p| p.offered.contains(&piece));
                drop(st);
                if offered {
                    self.offer(false);
                }
                if wanted && !self.am_interested {
                    self.update_interest();
                } else if wanted {
                    self.refill();
                }
            }
            Message::Choke => {
                self.peer_choking = true;
                self.give_up_requests();
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.last_block = Instant::now();
                self.refill();
            }
            Message::Interested | Message::NotInterested => {
                let wants = matches!(m, Message::Interested);
                if wants != self.peer_interested {
                    self.peer_interested = wants;
                    if let Some(p) = self.t.lock().peers.get_mut(&self.key) {
                        p.interested = wants;
                    }
                    self.t.rechoke.notify_one();
                }
            }
            Message::Request(b) => self.on_request(b)?,
            Message::Cancel(b) => {
                if let Ok(mut q) = self.serve.lock() {
                    q.retain(|x| *x != b);
                }
            }
            Message::Reject(b) => {
                if let Some(i) = self.outstanding.iter().position(|x| *x == b) {
                    self.outstanding.swap_remove(i);
                    let mut st = self.t.lock();
                    st.picker.release(self.key, &b);
                    st.refill_others(Some(self.key));
                    drop(st);
                    self.cool_down_until = Instant::now() + COOL_DOWN;
                }
            }
            Message::Piece { piece, begin, data } => self.on_piece(piece, begin, data),
            // Already admitted: a second extended handshake may update its ids.
            Message::Extended { id: 0, payload } => {
                let h = ExtHandshake::parse(&payload)
                    .map_err(|_| Ended::Protocol("a bad extended handshake"))?;
                self.on_their_extension(h);
            }
            Message::Extended {
                id: OUR_UT_METADATA,
                payload,
            } => {
                let m = MetadataMessage::parse(&payload)
                    .map_err(|_| Ended::Protocol("a bad metadata message"))?;
                if let MetadataMessage::Request { piece } = m {
                    self.on_metadata_request(piece);
                }
            }
            Message::Extended {
                id: OUR_UT_PEX,
                payload,
            } => self.on_pex(&payload)?,
            Message::Extended { .. } => {}
        }
        Ok(())
    }

    fn on_metadata_request(&mut self, piece: u32) {
        let Some(their_id) = self.their_ext.as_ref().and_then(|e| e.id_of(UT_METADATA)) else {
            return;
        };
        let info = &self.t.meta.info_bytes;
        let total = u32::try_from(info.len()).unwrap_or(u32::MAX);
        let reply = if piece < metadata_pieces(total) {
            let start = (piece * METADATA_PIECE) as usize;
            let end = (start + METADATA_PIECE as usize).min(info.len());
            MetadataMessage::Data {
                piece,
                total_size: total,
                data: info[start..end].to_vec(),
            }
        } else {
            MetadataMessage::Reject { piece }
        };
        self.send(Message::Extended {
            id: their_id,
            payload: reply.encode(),
        });
    }

    fn on_request(&mut self, b: Block) -> Result<(), Ended> {
        let valid = b.length > 0
            && b.length <= BLOCK
            && u64::from(b.begin) + u64::from(b.length)
                <= u64::from(self.t.layout.piece_len(b.piece));
        if !valid {
            return Err(Ended::Protocol("a request for no block of ours"));
        }
        let can = !self.am_choking && {
            let st = self.t.lock();
            // Super-seeding: only the pieces we offered it.
            st.picker.have().get(b.piece)
                && (st.super_seed.is_none()
                    || st
                        .peers
                        .get(&self.key)
                        .is_some_and(|p| p.offered.contains(&b.piece)))
        };
        let queued = can
            && self.serve.lock().is_ok_and(|mut q| {
                if q.len() >= SERVE_QUEUE {
                    return false;
                }
                q.push_back(b);
                true
            });
        if queued {
            // A block in the serve queue is a few bytes until the writer reads it (a batch
            // at a time): it does not count as unsent. Counting it stopped us reading the
            // peer while its requests waited, and so its cancels (a viewer's seek) with them.
            self.out.push(Out::Serve, 13);
        } else if self.fast {
            self.send(Message::Reject(b));
        }
        Ok(())
    }

    fn on_piece(&mut self, piece: u32, begin: u32, data: Vec<u8>) {
        let len = data.len() as u32;
        let block = Block {
            piece,
            begin,
            length: len,
        };
        // Only what we asked this peer for (or gave up waiting for) is read at all.
        let asked = if let Some(i) = self.outstanding.iter().position(|x| *x == block) {
            self.outstanding.swap_remove(i);
            true
        } else if let Some(i) = self.released.iter().position(|x| *x == block) {
            self.released.remove(i);
            true
        } else {
            false
        };
        let now = Instant::now();
        let (kept, done) = self.t.take_block(self.key, block, data, asked, now);
        if kept {
            // Only blocks we wanted count: junk neither raises its rate nor keeps it from
            // timing out.
            self.rate.add(now, len.into());
            self.last_block = now;
        }
        if let Some(data) = done {
            self.t.complete_piece(piece, data);
        }
        self.refill();
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Have(piece) => {
                self.send(Message::Have { piece });
                if self.am_interested {
                    self.update_interest();
                }
            }
            Cmd::Choke => {
                if !self.am_choking {
                    self.am_choking = true;
                    self.send(Message::Choke);
                    let dropped: Vec<Block> = self
                        .serve
                        .lock()
                        .map(|mut q| q.drain(..).collect())
                        .unwrap_or_default();
                    if self.fast {
                        for b in dropped {
                            self.send(Message::Reject(b));
                        }
                    }
                }
            }
            Cmd::Unchoke => {
                if self.am_choking {
                    self.am_choking = false;
                    self.send(Message::Unchoke);
                }
            }
            Cmd::Cancel(b) => {
                if let Some(i) = self.outstanding.iter().position(|x| *x == b) {
                    self.outstanding.swap_remove(i);
                    self.send(Message::Cancel(b));
                    self.refill();
                }
            }
            // Pieces may be wanted again (a file read that was left aside): interest first.
            Cmd::Refill if !self.am_interested => self.update_interest(),
            Cmd::Refill => self.refill(),
            Cmd::Hurry(window) => self.hurry(window),
            Cmd::Reveal => self.reveal(),
            Cmd::Close => {}
        }
    }
}

/// Sends what the session queues, reading requested blocks from disk on blocking threads;
/// batches small messages into one write.
/// What the writer shares with its session and torrent.
struct Shared {
    limits: Arc<crate::Limits>,
    serve: Arc<Mutex<VecDeque<Block>>>,
    t: Arc<Torrent>,
    key: PeerKey,
    unsent: Arc<AtomicUsize>,
    drained: Arc<Notify>,
}

async fn writer(
    mut wr: WriteHalf<Box<dyn Conn>>,
    mut rx: mpsc::UnboundedReceiver<(Out, usize)>,
    sh: Shared,
) -> std::io::Result<()> {
    let Shared {
        limits,
        serve,
        t,
        key,
        unsent,
        drained,
    } = sh;
    let mut buf = Vec::with_capacity(256 * 1024);
    while let Some(first) = rx.recv().await {
        let mut item = Some(first);
        let mut counted = 0;
        let mut data = 0;
        while let Some((it, bytes)) = item.take() {
            counted += bytes;
            match it {
                Out::Msg(m) => m.encode(&mut buf),
                Out::Serve => {
                    // Every block queued so far, up to a batch, read in one trip to a blocking
                    // thread (one trip per block cost more in thread hand-overs than the reads).
                    // Later tokens find the queue emptied: they only count.
                    // Under an upload limit, a batch is what goes in 50 ms: a batch read waits
                    // for the limit with no way back, so the smaller, the sooner a peer's
                    // cancels (a viewer's seek) take effect.
                    let most = limits.upload.get().map_or(SERVE_BATCH, |rate| {
                        ((rate.get() / u64::from(BLOCK) / 20) as usize).clamp(1, SERVE_BATCH)
                    });
                    let batch: Vec<Block> = serve
                        .lock()
                        .map(|mut q| {
                            let n = q.len().min(most);
                            q.drain(..n).collect()
                        })
                        .unwrap_or_default();
                    if !batch.is_empty() {
                        let storage = t.storage.clone();
                        let blocks = tokio::task::spawn_blocking(move || {
                            batch
                                .into_iter()
                                .map(|b| storage.read(b.piece, b.begin, b.length).map(|d| (b, d)))
                                .collect::<std::io::Result<Vec<_>>>()
                        })
                        .await
                        .map_err(std::io::Error::other)??;
                        let mut sent = 0;
                        for (b, block) in blocks {
                            sent += u64::from(b.length);
                            Message::Piece {
                                piece: b.piece,
                                begin: b.begin,
                                data: block,
                            }
                            .encode(&mut buf);
                        }
                        data += sent;
                        let now = Instant::now();
                        let mut st = t.lock();
                        st.uploaded += sent;
                        if let Some(p) = st.peers.get_mut(&key) {
                            p.up.add(now, sent);
                        }
                    }
                }
            }
            if buf.len() >= 256 * 1024 {
                break;
            }
            item = rx.try_recv().ok();
        }
        // Blocks count against the upload limit; the rest of the protocol does not.
        limits.upload.take(data).await;
        wr.write_all(&buf).await?;
        buf.clear();
        unsent.fetch_sub(counted, Ordering::Relaxed);
        drained.notify_one();
    }
    Ok(())
}
