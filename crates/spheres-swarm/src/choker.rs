//! Whom we send data to (BEP 3's choking, as the reference client and libtorrent do it).
//!
//! Every [`RECHOKE`] (and at once when a slot is free and someone wants it), the interested
//! peers are ranked: while we download, by how fast they send to us (tit-for-tat: the peers
//! who give get); once we seed, by how fast we send to them (the fastest spread the pieces
//! furthest). The best `slots - 1` are unchoked. One more slot, the optimistic unchoke, goes
//! in turn to someone else every [`OPTIMISTIC`], newcomers three times as likely: that is how
//! a new peer, with nothing to give yet, gets its first pieces, and how we find faster peers.
//! Peers that stopped sending to us ("snubbed") only get the optimistic slot.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How often the ranking is redone.
pub const RECHOKE: Duration = Duration::from_secs(10);
/// How long a peer keeps the optimistic slot.
pub const OPTIMISTIC: Duration = Duration::from_secs(30);
/// A peer connected for less than this counts as new (three chances of the optimistic slot).
pub const NEW_PEER: Duration = Duration::from_secs(60);

/// What the choker needs to know of a peer.
#[derive(Debug, Clone)]
pub struct Candidate<K> {
    pub key: K,
    /// It wants something we have.
    pub interested: bool,
    /// Bytes a second it sends us.
    pub gives_us: u64,
    /// Bytes a second we send it.
    pub we_give: u64,
    pub connected: Instant,
    /// It has sent us nothing for a long while though we asked.
    pub snubbed: bool,
}

/// The peers to unchoke and to choke now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<K> {
    pub unchoke: Vec<K>,
    pub choke: Vec<K>,
}

#[derive(Debug)]
pub struct Choker<K> {
    slots: usize,
    unchoked: BTreeSet<K>,
    optimistic: Option<K>,
    next_rechoke: Option<Instant>,
    optimistic_until: Option<Instant>,
    rng: u64,
}

impl<K: Ord + Clone> Choker<K> {
    /// A choker with `slots` upload slots (at least 2: one ranked, one optimistic).
    pub fn new(slots: usize, seed: u64) -> Choker<K> {
        Choker {
            slots: slots.max(2),
            unchoked: BTreeSet::new(),
            optimistic: None,
            next_rechoke: None,
            optimistic_until: None,
            rng: seed | 1,
        }
    }

    /// When [`Choker::rechoke`] is next due.
    pub fn due(&self) -> Option<Instant> {
        self.next_rechoke
    }

    pub fn is_unchoked(&self, key: &K) -> bool {
        self.unchoked.contains(key)
    }

    /// A free slot that an interested peer could have at once.
    pub fn has_free_slot(&self) -> bool {
        self.unchoked.len() < self.slots
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Between rankings: fills free slots with interested peers and forgets those who left
    /// (when a peer becomes interested or leaves; the ranking itself waits for its time, so
    /// a peer toggling its interest cannot reshuffle everyone's slots).
    pub fn fill(&mut self, peers: &[Candidate<K>]) -> Decision<K> {
        self.unchoked.retain(|k| peers.iter().any(|c| &c.key == k));
        if self
            .optimistic
            .as_ref()
            .is_some_and(|k| !self.unchoked.contains(k))
        {
            self.optimistic = None;
        }
        let mut unchoke = Vec::new();
        for c in peers.iter().filter(|c| c.interested && !c.snubbed) {
            if self.unchoked.len() >= self.slots {
                break;
            }
            if self.unchoked.insert(c.key.clone()) {
                unchoke.push(c.key.clone());
            }
        }
        Decision {
            unchoke,
            choke: Vec::new(),
        }
    }

    /// Redoes the ranking. `peers`: every connected peer (one that is missing has left).
    pub fn rechoke(&mut self, now: Instant, seeding: bool, peers: &[Candidate<K>]) -> Decision<K> {
        self.next_rechoke = Some(now + RECHOKE);
        let rate = |c: &Candidate<K>| if seeding { c.we_give } else { c.gives_us };
        let mut ranked: Vec<&Candidate<K>> = peers
            .iter()
            .filter(|c| c.interested && !c.snubbed)
            .collect();
        // Fastest first; among equals, those unchoked already (no churn for nothing).
        ranked.sort_by(|a, b| {
            rate(b).cmp(&rate(a)).then_with(|| {
                self.unchoked
                    .contains(&b.key)
                    .cmp(&self.unchoked.contains(&a.key))
            })
        });
        let mut chosen: BTreeSet<K> = ranked
            .iter()
            .take(self.slots - 1)
            .map(|c| c.key.clone())
            .collect();

        // The optimistic slot: kept for its time while its holder stays interested.
        let holder_still_wants = self
            .optimistic
            .as_ref()
            .is_some_and(|k| peers.iter().any(|c| &c.key == k && c.interested));
        let expired = self.optimistic_until.is_none_or(|t| now >= t);
        if !holder_still_wants || expired {
            let others: Vec<&Candidate<K>> = peers
                .iter()
                .filter(|c| c.interested && !chosen.contains(&c.key))
                .collect();
            let weight = |c: &Candidate<K>| {
                if now.saturating_duration_since(c.connected) < NEW_PEER {
                    3
                } else {
                    1
                }
            };
            // The holder of an expired slot takes its turn after the others.
            let pool: Vec<&Candidate<K>> = if expired && others.len() > 1 {
                others
                    .iter()
                    .copied()
                    .filter(|c| Some(&c.key) != self.optimistic.as_ref())
                    .collect()
            } else {
                others
            };
            let total: u64 = pool.iter().map(|c| weight(c)).sum();
            self.optimistic = None;
            if total > 0 {
                let mut pick = self.random() % total;
                for c in &pool {
                    let w = weight(c);
                    if pick < w {
                        self.optimistic = Some(c.key.clone());
                        break;
                    }
                    pick -= w;
                }
                self.optimistic_until = Some(now + OPTIMISTIC);
            }
        }
        if let Some(k) = &self.optimistic
            && chosen.len() < self.slots
        {
            chosen.insert(k.clone());
        }
        // Free slots left (few peers): every interested peer, snubbed ones too.
        for c in peers.iter().filter(|c| c.interested) {
            if chosen.len() >= self.slots {
                break;
            }
            chosen.insert(c.key.clone());
        }

        let decision = Decision {
            unchoke: chosen.difference(&self.unchoked).cloned().collect(),
            choke: self.unchoked.difference(&chosen).cloned().collect(),
        };
        self.unchoked = chosen;
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(
        key: u32,
        interested: bool,
        gives_us: u64,
        we_give: u64,
        connected: Instant,
    ) -> Candidate<u32> {
        Candidate {
            key,
            interested,
            gives_us,
            we_give,
            connected,
            snubbed: false,
        }
    }

    #[test]
    fn those_who_give_get_and_one_more_in_turn() {
        let t0 = Instant::now();
        let old = t0.checked_sub(Duration::from_secs(600)).unwrap_or(t0);
        let peers: Vec<_> = (0..8)
            .map(|k| peer(k, true, u64::from(k) * 100, 0, old))
            .collect();
        let mut ch = Choker::new(4, 1);
        let d = ch.rechoke(t0, false, &peers);
        assert_eq!(d.unchoke.len(), 4);
        for k in [7, 6, 5] {
            assert!(ch.is_unchoked(&k), "the 3 fastest givers");
        }
        let first_optimistic = ch.optimistic.unwrap();
        assert!(first_optimistic < 5);
        // Within its 30 s, the optimistic peer keeps its slot through rechokes.
        ch.rechoke(t0 + RECHOKE, false, &peers);
        assert_eq!(ch.optimistic, Some(first_optimistic));
        // After them, it goes to someone else; over time to everyone.
        let mut seen = BTreeSet::new();
        for i in 1..=40 {
            ch.rechoke(t0 + OPTIMISTIC * i, false, &peers);
            let o = ch.optimistic.unwrap();
            if i == 1 {
                assert_ne!(o, first_optimistic);
            }
            seen.insert(o);
        }
        assert_eq!(seen, (0..5).collect(), "every slower peer had its turn");
        // Rates change: the ranking follows at the next rechoke.
        let mut peers = peers;
        peers[0].gives_us = 10_000;
        let d = ch.rechoke(t0 + OPTIMISTIC * 41, false, &peers);
        assert!(ch.is_unchoked(&0));
        assert!(d.unchoke.contains(&0) || !d.choke.contains(&0));
    }

    #[test]
    fn a_seed_ranks_by_what_it_sends_and_ignores_the_uninterested() {
        let t0 = Instant::now();
        let peers = vec![
            peer(1, true, 0, 500, t0),
            peer(2, true, 0, 900, t0),
            peer(3, false, 0, 9999, t0),
            peer(4, true, 0, 100, t0),
        ];
        let mut ch = Choker::new(2, 2);
        ch.rechoke(t0, true, &peers);
        assert!(ch.is_unchoked(&2), "fastest upload");
        assert!(!ch.is_unchoked(&3), "not interested");
        assert_eq!(ch.unchoked.len(), 2);
    }

    #[test]
    fn few_peers_all_get_a_slot_and_leavers_are_dropped() {
        let t0 = Instant::now();
        let mut peers = vec![peer(1, true, 0, 0, t0), peer(2, false, 0, 0, t0)];
        peers[0].snubbed = true;
        let mut ch = Choker::new(4, 3);
        let d = ch.rechoke(t0, false, &peers);
        assert_eq!(d.unchoke, [1], "a free slot goes even to a snubbed peer");
        assert!(ch.has_free_slot());
        peers[1].interested = true;
        let d = ch.rechoke(t0, false, &peers);
        assert_eq!(d.unchoke, [2], "interested now: unchoked at once");
        let d = ch.rechoke(t0, false, &peers[1..]);
        assert_eq!(d.choke, [1], "gone");
        assert_eq!(ch.due(), Some(t0 + RECHOKE));
    }

    #[test]
    fn between_rankings_only_free_slots_are_filled() {
        let t0 = Instant::now();
        let mut peers: Vec<_> = (0..3).map(|k| peer(k, true, 0, 0, t0)).collect();
        let mut ch = Choker::new(2, 5);
        ch.rechoke(t0, false, &peers);
        let before = ch.unchoked.clone();
        // A faster newcomer waits for the ranking; a peer leaving frees a slot for it.
        peers.push(peer(3, true, 10_000, 0, t0));
        assert_eq!(ch.fill(&peers).unchoke, Vec::<u32>::new());
        assert_eq!(ch.unchoked, before);
        let gone = *before.iter().next().unwrap();
        peers.retain(|p| p.key != gone);
        let d = ch.fill(&peers);
        assert_eq!(d.unchoke.len(), 1);
        assert_eq!(ch.unchoked.len(), 2);
        assert!(!ch.is_unchoked(&gone));
    }

    #[test]
    fn newcomers_are_likelier_optimistic_picks() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let old = t0 - Duration::from_secs(600);
        // One ranked slot (taken by the fast peer 0), one optimistic among 1 (new) and 2 (old).
        let peers = vec![
            peer(0, true, 1000, 0, old),
            peer(1, true, 0, 0, t0),
            peer(2, true, 0, 0, old),
        ];
        let mut new = 0;
        for seed in 0..400 {
            let mut ch = Choker::new(2, seed);
            ch.rechoke(t0, false, &peers);
            if ch.optimistic == Some(1) {
                new += 1;
            }
        }
        // Expected 3 in 4 (300 of 400).
        assert!((250..350).contains(&new), "{new} of 400");
    }
}
