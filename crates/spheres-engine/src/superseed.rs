//! Super-seeding (BEP 16): the first seed of a new file hides what it has and offers each
//! peer a few pieces of its own, the ones offered least so far (then the rarest); a peer
//! gets new ones as it reports having those. Peers must trade to get the rest, so the
//! seed's upload goes out about once instead of once per peer. Once every piece has been
//! offered, the swarm holds a copy: the seed says it has everything and seeds as usual.
//!
//! Pure: what was offered, and which piece to offer next.

use spheres_swarm::Picker;

/// Pieces offered to one peer at a time (libtorrent offers 2; a few more keep a lone
/// downloader's pipeline full).
pub(crate) const OFFERS: usize = 4;
/// Pieces offered to a peer that wants none of them (files it left aside), at most.
pub(crate) const MAX_OFFERED: usize = 64;
/// The fewest pieces a super-seeded torrent has: with fewer, there is nothing to gain, and the
/// first offer would already tell a peer we have all it lacks (see [`may_offer`]).
pub(crate) const MIN_PIECES: u32 = 3;

/// Whether one more piece may be offered to a peer that lacks `untold` pieces we never told
/// it of. Never down to one: the HAVE that tells a peer we have everything it lacks must not
/// go out alone. libtorrent (2.0, `incoming_have`) drops a peer that becomes a seed in its
/// eyes while it is not interested in it, before it looks at that HAVE for interest, then
/// waits a minute to come back; a downloader that had fetched every piece offered so far is
/// not interested. With two left, super-seeding ends and both go out together, the first
/// making it interested again.
pub(crate) fn may_offer(untold: usize) -> bool {
    untold > 2
}

#[derive(Debug)]
pub(crate) struct SuperSeed {
    /// How many times each piece was offered.
    offered: Vec<u32>,
    /// Pieces never offered yet.
    never: u32,
    /// Where the next search starts (ties go round the torrent, not to its first pieces).
    cursor: u32,
}

impl SuperSeed {
    pub fn new(pieces: u32) -> SuperSeed {
        SuperSeed {
            offered: vec![0; pieces as usize],
            never: pieces,
            cursor: 0,
        }
    }

    /// Every piece went to someone: the swarm holds a copy.
    pub fn done(&self) -> bool {
        self.never == 0
    }

    /// The piece to offer a peer that lacks the pieces `lacks` says and was not offered
    /// `already`: the one offered least, then the one fewest peers have. `None`: it lacks
    /// nothing we could offer.
    pub fn offer(
        &mut self,
        picker: &Picker,
        lacks: impl Fn(u32) -> bool,
        already: &[u32],
    ) -> Option<u32> {
        let n = self.offered.len() as u32;
        let mut best: Option<(u32, u32, u32)> = None;
        for i in 0..n {
            let p = (self.cursor + i) % n;
            if !lacks(p) || already.contains(&p) {
                continue;
            }
            let score = (self.offered[p as usize], picker.availability(p));
            if best.is_none_or(|(o, a, _)| score < (o, a)) {
                best = Some((score.0, score.1, p));
                if score == (0, 0) {
                    break;
                }
            }
        }
        let (_, _, p) = best?;
        if self.offered[p as usize] == 0 {
            self.never -= 1;
        }
        self.offered[p as usize] += 1;
        self.cursor = (p + 1) % n;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spheres_swarm::{Bitfield, Has, Layout};

    #[test]
    fn each_peer_gets_pieces_nobody_else_was_offered() {
        let picker = Picker::new(Layout::new(16 * 1024, 10 * 16 * 1024).unwrap(), 1);
        let mut ss = SuperSeed::new(10);
        let mut seen = Vec::new();
        for _peer in 0..5 {
            let mut mine = Vec::new();
            for _ in 0..2 {
                let p = ss.offer(&picker, |_| true, &mine).unwrap();
                mine.push(p);
            }
            seen.extend(mine);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>(), "ten offers, ten pieces");
        assert!(ss.done());
        // Past that, the least offered again; never one the peer has or holds already.
        let p = ss.offer(&picker, |p| p != 3, &[4]).unwrap();
        assert!(p != 3 && p != 4);
        assert_eq!(ss.offer(&picker, |_| false, &[]), None);
    }

    #[test]
    fn the_last_pieces_are_never_told_one_by_one() {
        // A lone downloader of 25 pieces: offered until two are left untold, then all.
        let mut untold = 25;
        let mut told_alone = 0;
        while may_offer(untold) {
            untold -= 1;
            told_alone += 1;
        }
        assert_eq!((told_alone, untold), (23, 2));
        assert!(!may_offer(1) && !may_offer(0));
    }

    #[test]
    fn among_pieces_offered_as_often_the_rarest_goes_first() {
        let mut picker = Picker::new(Layout::new(16 * 1024, 4 * 16 * 1024).unwrap(), 2);
        let mut have = Bitfield::new(4);
        for p in [0, 1, 3] {
            have.set(p);
        }
        picker.peer_joined(Has::Some(&have));
        let mut ss = SuperSeed::new(4);
        assert_eq!(ss.offer(&picker, |_| true, &[]), Some(2));
        assert!(!ss.done());
    }
}
