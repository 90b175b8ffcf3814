//! A peer session's peer exchange (BEP 11): what we tell the peer of the swarm, and what we
//! take of what it tells us. Public torrents only.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use spheres_wire::{MAX_PEX_PEERS, Message, PexMessage, UT_PEX, dialable, is_local, pex_flags};

use super::{Ended, PEX_AT_MOST_EVERY, PEX_EVERY, PEX_TAKEN, Session};

impl Session {
    /// Peer exchange is for public torrents only: a private torrent's swarm is who its
    /// tracker and members say, never gossip (BEP 27).
    pub(super) fn pex(&self) -> bool {
        !self.t.meta.private
    }

    /// Tells the peer (once a minute at most) which peers we connected to and left since
    /// we last told it: the first time, all of them (at most [`MAX_PEX_PEERS`]).
    pub(super) fn send_pex(&mut self, now: Instant) {
        if !self.registered || !self.pex() || now < self.pex_next {
            return;
        }
        let Some(their_id) = self.their_ext.as_ref().and_then(|e| e.id_of(UT_PEX)) else {
            return;
        };
        let current: Vec<(SocketAddr, u8)> = {
            let st = self.t.lock();
            st.peers
                .iter()
                .filter(|(k, _)| **k != self.key)
                .filter_map(|(_, p)| {
                    let seed = p.has.all || p.has.bits.is_full();
                    let f = if seed { pex_flags::SEED } else { 0 };
                    p.listen.map(|a| (a, f))
                })
                .filter(|(a, _)| *a != self.addr)
                .collect()
        };
        let now_set: HashSet<SocketAddr> = current.iter().map(|(a, _)| *a).collect();
        let added: Vec<(SocketAddr, u8)> = current
            .into_iter()
            .filter(|(a, _)| !self.pex_told.contains(a))
            .take(MAX_PEX_PEERS)
            .collect();
        let dropped: Vec<SocketAddr> = self
            .pex_told
            .iter()
            .filter(|a| !now_set.contains(a))
            .copied()
            .take(MAX_PEX_PEERS)
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return;
        }
        for a in &dropped {
            self.pex_told.remove(a);
        }
        self.pex_told.extend(added.iter().map(|(a, _)| *a));
        self.pex_next = now + PEX_EVERY;
        tracing::debug!(peer = %self.addr, torrent = %self.t.meta.name, added = added.len(), dropped = dropped.len(), "PEX sent");
        let m = PexMessage { added, dropped };
        self.send(Message::Extended {
            id: their_id,
            payload: m.encode(),
        });
    }

    /// A peer told us of others in the swarm: they are dialled like a tracker's (public
    /// torrents only; at most [`PEX_TAKEN`] a message, and one message in
    /// [`PEX_AT_MOST_EVERY`]).
    pub(super) fn on_pex(&mut self, payload: &[u8]) -> Result<(), Ended> {
        if !self.pex() {
            return Ok(());
        }
        let now = Instant::now();
        if self
            .pex_heard
            .is_some_and(|t| now.saturating_duration_since(t) < PEX_AT_MOST_EVERY)
        {
            return Ok(());
        }
        self.pex_heard = Some(now);
        let m = PexMessage::parse(payload).map_err(|_| Ended::Protocol("a bad PEX message"))?;
        let ours = self.our_listen;
        let addrs: Vec<SocketAddr> = m
            .added
            .into_iter()
            .map(|(a, _)| a)
            // Local addresses only from a local peer: a stranger on the internet must not
            // make us knock on this machine's or the LAN's other services.
            .filter(|a| dialable(a) && *a != ours && *a != self.addr)
            .filter(|a| !is_local(&a.ip()) || is_local(&self.addr.ip()))
            .take(PEX_TAKEN)
            .collect();
        tracing::debug!(peer = %self.addr, torrent = %self.t.meta.name, peers = addrs.len(), "peers by PEX");
        self.t.add_known(addrs, false);
        Ok(())
    }
}
