//! A peer session's part in super-seeding (BEP 16): the pieces offered to this peer, and
//! every piece told once super-seeding is over. The choice of pieces is `crate::superseed`.

use spheres_wire::Message;

use super::Session;
use crate::torrent::Cmd;

impl Session {
    /// Super-seeding: the pieces we offered that it now has are done with; it is offered
    /// others, up to [`OFFERS`](crate::superseed::OFFERS) (`more`: it wants none of those it
    /// holds, files left aside: [`OFFERS`](crate::superseed::OFFERS) more, up to
    /// [`MAX_OFFERED`](crate::superseed::MAX_OFFERED)). When every piece has been offered
    /// once, super-seeding ends: every peer hears what we have.
    pub(super) fn offer(&mut self, more: bool) {
        let mut offers = Vec::new();
        let over = {
            let mut guard = self.t.lock();
            let st = &mut *guard;
            let (Some(ss), Some(p)) = (st.super_seed.as_mut(), st.peers.get_mut(&self.key)) else {
                return;
            };
            if p.has.all {
                return;
            }
            let has = &p.has;
            p.offered.retain(|&i| !has.bits.get(i));
            let cap = if more {
                (p.offered.len() + crate::superseed::OFFERS).min(crate::superseed::MAX_OFFERED)
            } else {
                crate::superseed::OFFERS
            };
            // The pieces it lacks that it never heard of (those offered and not had yet are
            // all pieces it lacks).
            let lacking = self.t.layout.pieces().saturating_sub(p.has.bits.count()) as usize;
            let mut untold = lacking.saturating_sub(p.offered.len());
            let mut last_ones = false;
            while p.offered.len() < cap {
                if !crate::superseed::may_offer(untold) {
                    last_ones = true;
                    break;
                }
                let has = &p.has;
                match ss.offer(&st.picker, |i| !has.bits.get(i), &p.offered) {
                    Some(i) => {
                        p.offered.push(i);
                        offers.push(i);
                        untold = untold.saturating_sub(1);
                    }
                    None => break,
                }
            }
            // Every piece went to someone, or this peer is down to its last ones (the swarm
            // then holds nearly a copy; they go out together, see `may_offer`).
            let over = ss.done() || last_ones;
            if over {
                st.super_seed = None;
                tracing::debug!(torrent = %self.t.meta.name, "super-seeding over: every piece was offered, or a peer has nearly all");
                for (k, p) in &st.peers {
                    if *k != self.key {
                        let _ = p.cmd.send(Cmd::Reveal);
                    }
                }
            }
            over
        };
        for piece in offers {
            self.send(Message::Have { piece });
        }
        if over {
            self.reveal();
        }
    }

    /// Super-seeding is over: the peer hears of every piece it lacks (we have them all).
    pub(super) fn reveal(&mut self) {
        let lacks: Vec<u32> = {
            let mut st = self.t.lock();
            let Some(p) = st.peers.get_mut(&self.key) else {
                return;
            };
            p.offered.clear();
            if p.has.all {
                return;
            }
            (0..self.t.layout.pieces())
                .filter(|&i| !p.has.bits.get(i))
                .collect()
        };
        for piece in lacks {
            self.send(Message::Have { piece });
        }
    }
}
