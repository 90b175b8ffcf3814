//! Which blocks to ask which peer for.
//!
//! In this order, for each peer with free request slots:
//! 1. the pieces just ahead of every open reader (a video being watched), nearest first, and
//!    the pieces marked [`Priority::High`] (the first and last pieces of a file being opened);
//! 2. the rest of pieces already started, so that pieces complete (and can be shared) soon;
//! 3. a new piece, the rarest among the peers first, ties broken in an order of our own so
//!    that peers who start together ask for different pieces;
//! 4. when there is nothing new to ask this peer for (endgame, as libtorrent decides it per
//!    peer: a piece nobody has must not keep the last blocks stuck on a slow peer), blocks
//!    another peer was asked for, at most [`MAX_DUPLICATES`] askers per block; the late ones
//!    get a cancel.
//!
//! Pieces under way are held in memory by the driver until they hash, so how many are
//! started is capped ([`Picker::set_max_started`]): past the cap only readers' windows start
//! new pieces, and peers finish the started ones.
//!
//! Rarity is kept sorted as availability changes, in O(1) per change (a piece moves to the
//! edge of its availability bucket, as libtorrent does it), so a `Have` from every peer for
//! every piece costs nothing that grows with the torrent.

use std::collections::BTreeMap;
use std::ops::Range;

use spheres_wire::{BLOCK, Block};

use crate::{Bitfield, SwarmError};

/// At most this many peers are asked for the same block (in endgame).
pub const MAX_DUPLICATES: usize = 2;

/// A peer, as the driver names it.
pub type PeerKey = u64;

/// A torrent's shape: its piece length and total length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    piece_length: u32,
    total_length: u64,
    pieces: u32,
}

impl Layout {
    pub fn new(piece_length: u32, total_length: u64) -> Result<Layout, SwarmError> {
        if piece_length == 0 || total_length == 0 {
            return Err(SwarmError::BadLayout);
        }
        let pieces = u32::try_from(total_length.div_ceil(piece_length.into()))
            .map_err(|_| SwarmError::BadLayout)?;
        Ok(Layout {
            piece_length,
            total_length,
            pieces,
        })
    }

    pub fn pieces(&self) -> u32 {
        self.pieces
    }

    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Piece `p`'s length (the last one may be short); 0 past the end.
    pub fn piece_len(&self, p: u32) -> u32 {
        if p >= self.pieces {
            return 0;
        }
        let start = u64::from(p) * u64::from(self.piece_length);
        (self.total_length - start).min(self.piece_length.into()) as u32
    }

    /// How many blocks piece `p` is asked for in.
    pub fn blocks(&self, p: u32) -> u32 {
        self.piece_len(p).div_ceil(BLOCK)
    }

    /// Block `j` of piece `p`.
    pub fn block(&self, p: u32, j: u32) -> Block {
        let begin = j * BLOCK;
        Block {
            piece: p,
            begin,
            length: BLOCK.min(self.piece_len(p) - begin),
        }
    }

    /// Which block of its piece `b` is, if it is exactly one of ours.
    pub fn block_index(&self, b: &Block) -> Option<u32> {
        let j = b.begin / BLOCK;
        (b.piece < self.pieces
            && b.begin.is_multiple_of(BLOCK)
            && j < self.blocks(b.piece)
            && self.block(b.piece, j) == *b)
            .then_some(j)
    }

    /// The pieces that hold bytes `offset .. offset + len` of the torrent.
    pub fn pieces_of(&self, offset: u64, len: u64) -> Range<u32> {
        let pl = u64::from(self.piece_length);
        let end = offset.saturating_add(len).min(self.total_length);
        if len == 0 || offset >= end {
            let p = (offset / pl).min(self.pieces.into()) as u32;
            return p..p;
        }
        (offset / pl) as u32..end.div_ceil(pl) as u32
    }
}

/// What a peer has: everything (a seed, `HaveAll`) or what its bitfield says.
#[derive(Debug, Clone, Copy)]
pub enum Has<'a> {
    All,
    Some(&'a Bitfield),
}

impl Has<'_> {
    pub fn get(&self, p: u32) -> bool {
        match self {
            Has::All => true,
            Has::Some(b) => b.get(p),
        }
    }
}

/// How much we want a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Not wanted (a file left aside).
    Skip,
    Normal,
    /// Wanted before anything but readers' windows (the ends of a file being opened).
    High,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockState {
    Missing,
    /// Asked of these peers (more than one only in endgame).
    Requested(Vec<PeerKey>),
    Received,
}

#[derive(Debug)]
struct Partial {
    blocks: Vec<BlockState>,
    received: u32,
}

impl Partial {
    fn idle(&self) -> bool {
        self.received == 0 && self.blocks.iter().all(|b| *b == BlockState::Missing)
    }
}

/// What became of a block that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Not asked for, already had, or not a block of ours: drop the data.
    Ignored,
    /// Keep the data. `piece_done`: the piece's last block, hash it now. `cancel`: peers
    /// also asked for this block (endgame), to send a `Cancel` to.
    Kept {
        piece_done: bool,
        cancel: Vec<PeerKey>,
    },
}

/// A reader's window: `len` pieces from `start`.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: u32,
    len: u32,
}

/// The piece picker of one torrent. Pure: the driver tells it what peers have, what was
/// asked, what came and what was verified; it answers which blocks to ask for.
#[derive(Debug)]
pub struct Picker {
    layout: Layout,
    have: Bitfield,
    priority: Vec<Priority>,
    /// How many peers have each piece, seeds aside (they have every piece: `seeds`).
    avail: Vec<u32>,
    seeds: u32,
    /// Every piece, by availability; within one availability, in a shuffled order.
    order: Vec<u32>,
    /// Where each piece is in `order`.
    pos: Vec<u32>,
    /// `bucket[a]`: the first index in `order` of a piece with availability `a` or more.
    bucket: Vec<u32>,
    partial: BTreeMap<u32, Partial>,
    readers: BTreeMap<u64, Window>,
    /// Pieces of [`Priority::High`].
    high: std::collections::BTreeSet<u32>,
    /// At most this many pieces started at once (readers' windows aside).
    max_started: usize,
    /// Blocks of wanted pieces we lack that nobody has been asked for.
    unrequested: u64,
}

impl Picker {
    /// A picker for a torrent we have none of, wanting every piece. `seed` shuffles the order
    /// among equally rare pieces (give every node its own).
    pub fn new(layout: Layout, seed: u64) -> Picker {
        let n = layout.pieces();
        let mut order: Vec<u32> = (0..n).collect();
        // Fisher-Yates with xorshift64*: not for secrets, only to spread the first requests.
        let mut state = (seed ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9) | 1;
        for i in (1..order.len()).rev() {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d);
            order.swap(i, (r % (i as u64 + 1)) as usize);
        }
        let mut pos = vec![0; n as usize];
        for (i, &p) in order.iter().enumerate() {
            pos[p as usize] = i as u32;
        }
        let unrequested = (0..n).map(|p| u64::from(layout.blocks(p))).sum();
        Picker {
            layout,
            have: Bitfield::new(n),
            priority: vec![Priority::Normal; n as usize],
            avail: vec![0; n as usize],
            seeds: 0,
            order,
            pos,
            bucket: vec![0, n],
            partial: BTreeMap::new(),
            readers: BTreeMap::new(),
            high: Default::default(),
            max_started: usize::MAX,
            unrequested,
        }
    }

    /// Caps the pieces started at once (each is held in memory until it hashes).
    pub fn set_max_started(&mut self, max: usize) {
        self.max_started = max.max(1);
    }

    /// Pieces started and not yet verified.
    pub fn started(&self) -> usize {
        self.partial.len()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    /// We want piece `p` and lack it.
    pub fn wants(&self, p: u32) -> bool {
        p < self.layout.pieces() && !self.have.get(p) && self.priority[p as usize] != Priority::Skip
    }

    /// Every piece we want, we have.
    pub fn is_complete(&self) -> bool {
        (0..self.layout.pieces()).all(|p| !self.wants(p))
    }

    /// A peer with these pieces has something we want.
    pub fn interesting(&self, has: Has<'_>) -> bool {
        match has {
            Has::All => !self.is_complete(),
            Has::Some(b) => b.ones().any(|p| self.wants(p)),
        }
    }

    /// How many peers have piece `p` (seeds included).
    pub fn availability(&self, p: u32) -> u32 {
        self.avail.get(p as usize).copied().unwrap_or(0) + self.seeds
    }

    /// Blocks of wanted pieces that nobody has been asked for. Zero means endgame.
    pub fn unrequested(&self) -> u64 {
        self.unrequested
    }

    // ----- what peers have -----

    /// A peer announced piece `p` (`Have`).
    pub fn peer_has(&mut self, p: u32) {
        if p >= self.layout.pieces() {
            return;
        }
        let a = self.avail[p as usize] as usize;
        if self.bucket.len() < a + 3 {
            self.bucket.push(self.layout.pieces());
        }
        let last = self.bucket[a + 1] - 1;
        self.swap(p, self.order[last as usize]);
        self.bucket[a + 1] -= 1;
        self.avail[p as usize] += 1;
    }

    /// A peer that had piece `p` is gone.
    fn peer_lost(&mut self, p: u32) {
        let a = self.avail[p as usize] as usize;
        if a == 0 {
            return;
        }
        let first = self.bucket[a];
        self.swap(p, self.order[first as usize]);
        self.bucket[a] += 1;
        self.avail[p as usize] -= 1;
    }

    fn swap(&mut self, p: u32, q: u32) {
        let (i, j) = (self.pos[p as usize], self.pos[q as usize]);
        self.order.swap(i as usize, j as usize);
        self.pos[p as usize] = j;
        self.pos[q as usize] = i;
    }

    /// A peer joined with these pieces (its bitfield, or `HaveAll`).
    pub fn peer_joined(&mut self, has: Has<'_>) {
        match has {
            Has::All => self.seeds += 1,
            Has::Some(b) => b.ones().for_each(|p| self.peer_has(p)),
        }
    }

    /// A peer with these pieces left. (Its requests are released with [`Picker::release`].)
    pub fn peer_left(&mut self, has: Has<'_>) {
        match has {
            Has::All => self.seeds = self.seeds.saturating_sub(1),
            Has::Some(b) => b.ones().for_each(|p| self.peer_lost(p)),
        }
    }

    // ----- what we want -----

    /// Sets the priority of pieces `range` (a file chosen or left aside, the ends of a file
    /// being opened).
    pub fn set_priority(&mut self, range: Range<u32>, priority: Priority) {
        for p in range.start..range.end.min(self.layout.pieces()) {
            let was = self.wants(p);
            self.priority[p as usize] = priority;
            if priority == Priority::High {
                self.high.insert(p);
            } else {
                self.high.remove(&p);
            }
            let now = self.wants(p);
            if was != now {
                let missing = self.missing_blocks(p);
                if now {
                    self.unrequested += missing;
                } else {
                    self.unrequested -= missing;
                }
            }
        }
    }

    pub fn priority(&self, p: u32) -> Priority {
        self.priority
            .get(p as usize)
            .copied()
            .unwrap_or(Priority::Skip)
    }

    /// Blocks of piece `p` nobody has been asked for (all of them if it is not started).
    fn missing_blocks(&self, p: u32) -> u64 {
        match self.partial.get(&p) {
            Some(part) => part
                .blocks
                .iter()
                .filter(|b| **b == BlockState::Missing)
                .count() as u64,
            None => self.layout.blocks(p).into(),
        }
    }

    /// A reader (a stream) is at piece `start` and will read the next `len` pieces soon.
    /// Call again as it moves; its window is picked before anything else (the newest reader,
    /// the largest id, first). Returns whether it
    /// jumped: a new reader, or one now at a piece outside its old window (a seek), when
    /// requests already made for other pieces stand between it and its data.
    pub fn set_reader(&mut self, reader: u64, start: u32, len: u32) -> bool {
        let len = len.min(self.layout.pieces());
        let old = self.readers.insert(reader, Window { start, len });
        !old.is_some_and(|w| start >= w.start && start < w.start.saturating_add(w.len))
    }

    /// Whether piece `p` is wanted now: in a reader's window, or of [`Priority::High`].
    pub fn urgent(&self, p: u32) -> bool {
        self.high.contains(&p)
            || self
                .readers
                .values()
                .any(|w| p >= w.start && p < w.start.saturating_add(w.len))
    }

    pub fn remove_reader(&mut self, reader: u64) {
        self.readers.remove(&reader);
    }

    // ----- picking -----

    /// Up to `max` blocks to ask `peer` for, appended to `out`; returns how many.
    pub fn pick(&mut self, peer: PeerKey, has: Has<'_>, max: usize, out: &mut Vec<Block>) -> usize {
        let mut taken = 0;
        // 1. The piece each reader is at; then High pieces (the ends of a file being opened:
        //    a player reads the index at the end before it can seek); then the rest of the
        //    readers' windows, nearest first, interleaved between readers.
        let longest = self.readers.values().map(|w| w.len).max().unwrap_or(0);
        for d in 0..=longest {
            if d == longest.min(1) {
                taken += self.take_high(peer, has, max - taken, out);
            }
            // The newest reader first: the latest seek is what someone waits for.
            let pieces: Vec<u32> = self
                .readers
                .values()
                .rev()
                .filter(|w| d < w.len)
                .filter_map(|w| w.start.checked_add(d))
                .collect();
            for p in pieces {
                taken += self.take(p, peer, has, max - taken, out);
            }
            if taken == max {
                return taken;
            }
        }
        // 2. Pieces already started.
        if taken < max {
            let started: Vec<u32> = self.partial.keys().copied().collect();
            for p in started {
                taken += self.take(p, peer, has, max - taken, out);
                if taken == max {
                    break;
                }
            }
        }
        // 3. New pieces, rarest first.
        let mut i = 0;
        while taken < max
            && self.unrequested > 0
            && self.partial.len() < self.max_started
            && i < self.order.len()
        {
            let p = self.order[i];
            i += 1;
            if !self.partial.contains_key(&p) {
                taken += self.take(p, peer, has, max - taken, out);
            }
        }
        // 4. Endgame for this peer: nothing new to ask it for (or no piece may start), so
        // blocks others were asked for.
        if taken < max {
            for (&p, part) in self.partial.iter_mut() {
                if !has.get(p) {
                    continue;
                }
                for (j, state) in part.blocks.iter_mut().enumerate() {
                    if let BlockState::Requested(by) = state
                        && by.len() < MAX_DUPLICATES
                        && !by.contains(&peer)
                    {
                        by.push(peer);
                        out.push(self.layout.block(p, j as u32));
                        taken += 1;
                        if taken == max {
                            return taken;
                        }
                    }
                }
            }
        }
        taken
    }

    /// Takes up to `max` blocks of High pieces for `peer`.
    fn take_high(
        &mut self,
        peer: PeerKey,
        has: Has<'_>,
        max: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        let mut taken = 0;
        let high: Vec<u32> = self.high.iter().copied().collect();
        for p in high {
            if taken == max {
                break;
            }
            taken += self.take(p, peer, has, max - taken, out);
        }
        taken
    }

    /// Takes up to `max` unrequested blocks of piece `p` for `peer`, if it has the piece and
    /// we want it.
    fn take(
        &mut self,
        p: u32,
        peer: PeerKey,
        has: Has<'_>,
        max: usize,
        out: &mut Vec<Block>,
    ) -> usize {
        if max == 0 || !self.wants(p) || !has.get(p) {
            return 0;
        }
        let blocks = self.layout.blocks(p);
        let part = self.partial.entry(p).or_insert_with(|| Partial {
            blocks: vec![BlockState::Missing; blocks as usize],
            received: 0,
        });
        let mut taken = 0;
        for (j, state) in part.blocks.iter_mut().enumerate() {
            if *state == BlockState::Missing {
                *state = BlockState::Requested(vec![peer]);
                out.push(self.layout.block(p, j as u32));
                taken += 1;
                if taken == max {
                    break;
                }
            }
        }
        self.unrequested -= taken as u64;
        if part.idle() {
            self.partial.remove(&p);
        }
        taken
    }

    // ----- what happened to requests -----

    /// `peer` will not send `block` after all: it rejected it, choked us, left, or was too
    /// slow. The block goes back to be asked of someone else.
    pub fn release(&mut self, peer: PeerKey, block: &Block) {
        let Some(j) = self.layout.block_index(block) else {
            return;
        };
        let Some(part) = self.partial.get_mut(&block.piece) else {
            return;
        };
        if let BlockState::Requested(by) = &mut part.blocks[j as usize] {
            by.retain(|&k| k != peer);
            if by.is_empty() {
                part.blocks[j as usize] = BlockState::Missing;
                if self.priority[block.piece as usize] != Priority::Skip {
                    self.unrequested += 1;
                }
            }
        }
        if part.idle() {
            self.partial.remove(&block.piece);
        }
    }

    /// `block` came from `peer`.
    pub fn received(&mut self, peer: PeerKey, block: &Block) -> Received {
        let Some(j) = self.layout.block_index(block) else {
            return Received::Ignored;
        };
        if self.have.get(block.piece) {
            return Received::Ignored;
        }
        // A piece nobody was asked for: unsolicited data, dropped.
        let Some(part) = self.partial.get_mut(&block.piece) else {
            return Received::Ignored;
        };
        let cancel = match std::mem::replace(&mut part.blocks[j as usize], BlockState::Received) {
            BlockState::Missing => {
                // Asked, released (the peer was slow), and it came after all: keep it.
                if self.priority[block.piece as usize] != Priority::Skip {
                    self.unrequested -= 1;
                }
                Vec::new()
            }
            BlockState::Requested(by) => by.into_iter().filter(|&k| k != peer).collect(),
            BlockState::Received => return Received::Ignored,
        };
        part.received += 1;
        Received::Kept {
            piece_done: part.received == self.layout.blocks(block.piece),
            cancel,
        }
    }

    /// Piece `p` hashed right: we have it.
    pub fn verified(&mut self, p: u32) {
        if p >= self.layout.pieces() || self.have.get(p) {
            return;
        }
        // Whatever of it was still to be asked for (all of it, for a piece found on disk when
        // a download resumes) will not be.
        if self.wants(p) {
            self.unrequested -= self.missing_blocks(p);
        }
        self.partial.remove(&p);
        self.have.set(p);
    }

    /// Piece `p` hashed wrong: every block of it is asked for again (of other peers, the
    /// driver decides whom to blame).
    pub fn failed(&mut self, p: u32) {
        if let Some(part) = self.partial.remove(&p) {
            let missing = part
                .blocks
                .iter()
                .filter(|b| **b != BlockState::Missing)
                .count();
            if self.priority[p as usize] != Priority::Skip {
                self.unrequested += missing as u64;
            }
        }
    }

    /// Checks every invariant from scratch (tests and fuzzing).
    #[doc(hidden)]
    pub fn check(&self) {
        let n = self.layout.pieces();
        let mut unrequested = 0;
        for p in 0..n {
            if self.wants(p) {
                unrequested += self.missing_blocks(p);
            }
            assert_eq!(self.order[self.pos[p as usize] as usize], p);
        }
        assert_eq!(unrequested, self.unrequested, "unrequested count");
        for w in self.order.windows(2) {
            assert!(
                self.avail[w[0] as usize] <= self.avail[w[1] as usize],
                "order"
            );
        }
        for (a, &start) in self.bucket.iter().enumerate() {
            if let Some(&p) = self.order.get(start as usize) {
                assert!(self.avail[p as usize] as usize >= a, "bucket {a}");
            }
            if start > 0 {
                let before = self.order[start as usize - 1];
                assert!((self.avail[before as usize] as usize) < a, "bucket {a}");
            }
        }
        for (p, part) in &self.partial {
            assert!(!self.have.get(*p));
            assert!(!part.idle(), "idle partial {p}");
            let got = part
                .blocks
                .iter()
                .filter(|b| **b == BlockState::Received)
                .count();
            assert_eq!(got as u32, part.received);
        }
    }
}

/// How many requests to keep outstanding with a peer sending `rate` bytes a second: enough
/// to cover `RTT`-independent queueing of about 2 s of its rate (so a fast peer is never idle
/// waiting for our next request), at least 4, and no more than the peer queues (`reqq`, 250
/// when it does not say: libtorrent's default).
pub fn request_depth(rate: u64, peer_queue: Option<u32>) -> usize {
    let wanted = (rate.saturating_mul(2) / u64::from(BLOCK)).max(4);
    wanted.min(peer_queue.unwrap_or(250).max(1).into()) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(pieces: u32) -> Layout {
        // 2 blocks a piece, the last piece one short block.
        Layout::new(
            2 * BLOCK,
            u64::from(pieces - 1) * 2 * u64::from(BLOCK) + 100,
        )
        .unwrap()
    }

    fn bits(n: u32, ones: &[u32]) -> Bitfield {
        let mut b = Bitfield::new(n);
        ones.iter().for_each(|&p| {
            b.set(p);
        });
        b
    }

    fn pieces_of(blocks: &[Block]) -> Vec<u32> {
        let mut v: Vec<u32> = blocks.iter().map(|b| b.piece).collect();
        v.dedup();
        v
    }

    #[test]
    fn layout_names_every_block() {
        let l = layout(3);
        assert_eq!(l.pieces(), 3);
        assert_eq!((l.blocks(0), l.blocks(2)), (2, 1));
        assert_eq!(l.block(2, 0).length, 100);
        assert_eq!(l.block_index(&l.block(1, 1)), Some(1));
        let bad = Block {
            piece: 2,
            begin: 0,
            length: BLOCK,
        };
        assert_eq!(l.block_index(&bad), None, "longer than the last piece");
        assert_eq!(
            l.block_index(&Block {
                piece: 0,
                begin: 1,
                length: 16
            }),
            None
        );
        assert_eq!(
            l.block_index(&Block {
                piece: 3,
                begin: 0,
                length: 100
            }),
            None
        );
        assert_eq!(l.pieces_of(0, 1), 0..1);
        assert_eq!(l.pieces_of(2 * u64::from(BLOCK) - 1, 2), 0..2);
        assert_eq!(l.pieces_of(0, u64::MAX), 0..3);
        assert!(Layout::new(0, 1).is_err() && Layout::new(1, 0).is_err());
        assert!(
            Layout::new(1, u64::MAX).is_err(),
            "more pieces than a u32 counts"
        );
    }

    #[test]
    fn the_rarest_piece_comes_first() {
        let mut pk = Picker::new(layout(6), 1);
        for b in [
            bits(6, &[0, 1, 2, 3, 4]),
            bits(6, &[0, 1, 2, 4]),
            bits(6, &[0, 1, 3, 4, 5]),
        ] {
            pk.peer_joined(Has::Some(&b));
        }
        pk.peer_joined(Has::All);
        pk.check();
        // Availability: 0,1,4 by 4; 2,3 by 3; 5 by 2.
        let mut out = Vec::new();
        pk.pick(9, Has::All, 1, &mut out);
        assert_eq!(pieces_of(&out), [5], "one short block");
        out.clear();
        pk.pick(9, Has::All, 4, &mut out);
        let mut next = pieces_of(&out);
        next.sort();
        assert_eq!(next, [2, 3]);
        // A peer without the rarest pieces gets the rarest it has.
        out.clear();
        pk.pick(8, Has::Some(&bits(6, &[0, 4])), 1, &mut out);
        assert!(out[0].piece == 0 || out[0].piece == 4);
        pk.check();
    }

    #[test]
    fn peers_starting_together_ask_for_different_pieces() {
        let firsts: std::collections::BTreeSet<u32> = (0..8)
            .map(|seed| {
                let mut pk = Picker::new(layout(64), seed);
                pk.peer_joined(Has::All);
                let mut out = Vec::new();
                pk.pick(1, Has::All, 1, &mut out);
                out[0].piece
            })
            .collect();
        assert!(firsts.len() >= 6, "8 nodes, first pieces {firsts:?}");
    }

    #[test]
    fn started_pieces_are_finished_first() {
        let mut pk = Picker::new(layout(8), 3);
        let mut out = Vec::new();
        pk.pick(1, Has::All, 1, &mut out);
        let started = out[0].piece;
        out.clear();
        pk.pick(2, Has::All, 2, &mut out);
        assert_eq!(
            out[0].piece, started,
            "the other block of the started piece first"
        );
        assert_ne!(out[1].piece, started);
        pk.check();
    }

    #[test]
    fn readers_windows_come_before_rarity_and_follow_the_reader() {
        let mut pk = Picker::new(layout(40), 4);
        pk.peer_joined(Has::Some(&bits(40, &[30])));
        assert!(pk.set_reader(7, 10, 2), "a new reader");
        assert!(pk.set_reader(8, 20, 1));
        assert!(
            !pk.set_reader(7, 11, 2),
            "moving within its window is no jump"
        );
        assert!(pk.set_reader(7, 10, 2), "nor back: 10 is out of 11..13");
        assert!(pk.urgent(10) && pk.urgent(11) && pk.urgent(20));
        assert!(!pk.urgent(12) && !pk.urgent(30));
        let mut out = Vec::new();
        pk.pick(1, Has::All, 6, &mut out);
        // The newest reader first (the latest seek is what someone waits for).
        assert_eq!(pieces_of(&out), [20, 10, 11]);
        // The reader moved on (a seek): its new window first.
        assert!(pk.set_reader(7, 35, 1));
        pk.remove_reader(8);
        assert!(!pk.urgent(10) && !pk.urgent(20) && pk.urgent(35));
        out.clear();
        pk.pick(1, Has::All, 2, &mut out);
        assert_eq!(pieces_of(&out), [35]);
        // Then the rarest piece (the only one somebody else has is the most common).
        pk.remove_reader(7);
        pk.set_priority(0..1, Priority::High);
        pk.set_priority(39..40, Priority::High);
        assert!(pk.urgent(0) && pk.urgent(39) && !pk.urgent(35));
        out.clear();
        pk.pick(1, Has::All, 3, &mut out);
        assert_eq!(pieces_of(&out), [0, 39]);
        // A reader's own piece comes first, then the file's ends, then the rest of its
        // window (a player reads the index at the end before it can seek).
        pk.set_priority(5..6, Priority::High);
        pk.set_reader(9, 2, 3);
        out.clear();
        pk.pick(2, Has::All, 8, &mut out);
        assert_eq!(pieces_of(&out), [2, 5, 3, 4]);
        pk.check();
    }

    #[test]
    fn skipped_pieces_are_never_asked_for() {
        let mut pk = Picker::new(layout(4), 5);
        pk.set_priority(1..3, Priority::Skip);
        let mut out = Vec::new();
        pk.pick(1, Has::All, 100, &mut out);
        assert_eq!(out.len(), 2 + 1);
        assert!(out.iter().all(|b| b.piece == 0 || b.piece == 3));
        for b in &out {
            pk.received(1, b);
        }
        pk.verified(0);
        pk.verified(3);
        assert!(pk.is_complete());
        assert!(!pk.interesting(Has::All));
        pk.set_priority(2..3, Priority::Normal);
        assert!(!pk.is_complete() && pk.interesting(Has::Some(&bits(4, &[2]))));
        pk.check();
    }

    #[test]
    fn endgame_asks_twice_and_cancels_the_slower() {
        let mut pk = Picker::new(layout(2), 6);
        let mut a = Vec::new();
        assert_eq!(pk.pick(1, Has::All, 100, &mut a), 3);
        assert_eq!(pk.unrequested(), 0);
        let mut b = Vec::new();
        assert_eq!(pk.pick(2, Has::All, 100, &mut b), 3, "endgame duplicates");
        let mut c = Vec::new();
        assert_eq!(pk.pick(3, Has::All, 100, &mut c), 0, "at most two askers");
        assert_eq!(
            pk.received(2, &b[0]),
            Received::Kept {
                piece_done: false,
                cancel: vec![1]
            }
        );
        assert_eq!(pk.received(1, &b[0]), Received::Ignored, "already here");
        pk.check();
    }

    #[test]
    fn released_and_failed_blocks_are_asked_again() {
        let mut pk = Picker::new(layout(2), 7);
        let only_0 = bits(2, &[0]);
        let mut out = Vec::new();
        pk.pick(1, Has::Some(&only_0), 1, &mut out);
        pk.release(1, &out[0]);
        pk.check();
        assert_eq!(pk.unrequested(), 3);
        let mut again = Vec::new();
        pk.pick(2, Has::Some(&only_0), 2, &mut again);
        assert_eq!(again[0], out[0], "the same block, of someone else");
        // A slow block that comes after all is kept while its piece is under way.
        pk.release(2, &again[0]);
        assert!(matches!(pk.received(2, &again[0]), Received::Kept { .. }));
        pk.check();
        // A piece that hashed wrong starts over.
        assert!(matches!(
            pk.received(2, &again[1]),
            Received::Kept {
                piece_done: true,
                ..
            }
        ));
        pk.failed(0);
        pk.check();
        assert_eq!(pk.unrequested(), 3);
        // Unsolicited blocks, and blocks of a piece we have, are dropped.
        assert_eq!(pk.received(1, &pk.layout().block(1, 0)), Received::Ignored);
        pk.verified(1);
        assert_eq!(pk.received(1, &pk.layout().block(1, 0)), Received::Ignored);
        pk.check();
        assert_eq!(pk.unrequested(), 2);
    }

    #[test]
    fn no_more_pieces_start_past_the_cap_but_started_ones_finish() {
        let mut pk = Picker::new(layout(10), 8);
        pk.set_max_started(2);
        let mut out = Vec::new();
        pk.pick(1, Has::All, 2, &mut out);
        pk.pick(2, Has::All, 2, &mut out);
        assert_eq!(pk.started(), 2);
        assert_ne!(out[0].piece, out[2].piece);
        // A third peer finishes the started pieces, then duplicates: no third piece.
        let mut third = Vec::new();
        pk.pick(3, Has::All, 10, &mut third);
        assert_eq!(pk.started(), 2);
        assert!(!third.is_empty());
        assert!(
            third
                .iter()
                .all(|b| b.piece == out[0].piece || b.piece == out[2].piece)
        );
        // A reader's window starts its piece whatever the cap.
        pk.set_reader(1, 9, 1);
        let mut urgent = Vec::new();
        pk.pick(4, Has::All, 1, &mut urgent);
        assert_eq!(urgent[0].piece, 9);
        pk.check();
    }

    #[test]
    fn a_peer_with_nothing_new_duplicates_the_slow_blocks() {
        // Piece 0 is only with peer 1 (asked); piece 1 is with nobody: endgame for peer 2
        // all the same.
        let mut pk = Picker::new(layout(2), 9);
        let only_0 = bits(2, &[0]);
        let mut a = Vec::new();
        pk.pick(1, Has::Some(&only_0), 10, &mut a);
        assert_eq!(a.len(), 2);
        assert!(pk.unrequested() > 0, "piece 1 has no source");
        let mut b = Vec::new();
        pk.pick(2, Has::Some(&only_0), 10, &mut b);
        assert_eq!(b, a, "the same blocks, of a second peer");
        pk.check();
    }

    #[test]
    fn request_depth_follows_the_rate() {
        assert_eq!(request_depth(0, None), 4);
        assert_eq!(
            request_depth(10 << 20, None),
            250,
            "capped by the default queue"
        );
        assert_eq!(request_depth(1 << 20, Some(500)), 128);
        assert_eq!(request_depth(u64::MAX, Some(0)), 1);
    }

    /// Many peers, random events: invariants hold at every step, and every piece ends up
    /// verified once.
    #[test]
    fn a_random_swarm_completes_with_every_invariant_kept() {
        for seed in 0..20u64 {
            let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut next = move |n: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % n
            };
            let n = 1 + next(30) as u32;
            let mut pk = Picker::new(layout(n.max(1)), seed);
            let peers: Vec<Bitfield> = (0..5)
                .map(|_| {
                    let mut b = Bitfield::new(n);
                    (0..n).for_each(|p| {
                        if next(2) == 0 {
                            b.set(p);
                        }
                    });
                    b
                })
                .collect();
            for b in &peers {
                pk.peer_joined(Has::Some(b));
            }
            pk.peer_joined(Has::All);
            let mut outstanding: Vec<(u64, Block)> = Vec::new();
            let mut done = Bitfield::new(n);
            for _ in 0..10_000 {
                if pk.is_complete() {
                    break;
                }
                match next(5) {
                    0 | 1 => {
                        let peer = next(6);
                        let has = if peer == 5 {
                            Has::All
                        } else {
                            Has::Some(&peers[peer as usize])
                        };
                        let mut out = Vec::new();
                        pk.pick(peer, has, 1 + next(8) as usize, &mut out);
                        outstanding.extend(out.into_iter().map(|b| (peer, b)));
                    }
                    2 | 3 if !outstanding.is_empty() => {
                        let (peer, b) =
                            outstanding.swap_remove(next(outstanding.len() as u64) as usize);
                        if let Received::Kept {
                            piece_done: true, ..
                        } = pk.received(peer, &b)
                        {
                            if next(8) == 0 {
                                pk.failed(b.piece);
                            } else {
                                assert!(done.set(b.piece), "piece {} completed twice", b.piece);
                                pk.verified(b.piece);
                            }
                        }
                    }
                    4 if !outstanding.is_empty() => {
                        let (peer, b) =
                            outstanding.swap_remove(next(outstanding.len() as u64) as usize);
                        pk.release(peer, &b);
                    }
                    _ => {}
                }
                pk.check();
            }
            assert!(
                pk.is_complete(),
                "seed {seed}: {} of {n}",
                pk.have().count()
            );
            assert_eq!(done.count(), n);
        }
    }
}
