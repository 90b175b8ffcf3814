//! The tracker's state: swarms, peer expiry, and who may use it.
//!
//! Sans-IO: every operation takes the current time, so behaviour (expiry, key revocation,
//! numwant bounds) is tested deterministically. The servers in [`crate::server`] own the clock
//! and the sockets.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spheres_metainfo::InfoHash;

use crate::wire::{AnnounceRequest, AnnounceResponse, Event, Peer, ScrapeStats};

/// How a tracker is run.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Re-announce interval told to clients.
    pub interval: Duration,
    /// Clients must not announce more often than this.
    pub min_interval: Duration,
    /// A peer not heard from for this long is dropped from its swarm.
    pub peer_ttl: Duration,
    /// Peers returned when the client does not say how many it wants.
    pub default_numwant: u32,
    /// Most peers returned in one answer, whatever the client asks.
    pub max_numwant: u32,
    /// Open: anyone may announce any torrent. Private: only announces carrying a known key, for
    /// the torrents that key was granted, get an answer.
    pub private: bool,
    /// Most torrents tracked at once: an announce for a new one past this is refused.
    pub max_torrents: usize,
    /// Most peers kept per torrent: a new peer past this gets peers but is not recorded.
    pub max_peers_per_torrent: usize,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: Duration::from_secs(120),
            min_interval: Duration::from_secs(30),
            peer_ttl: Duration::from_secs(300),
            default_numwant: 50,
            max_torrents: 100_000,
            max_peers_per_torrent: 5_000,
            max_numwant: 200,
            private: false,
        }
    }
}

/// What a key grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyScope {
    AllTorrents,
    Torrents(HashSet<InfoHash>),
}

impl KeyScope {
    fn allows(&self, hash: &InfoHash) -> bool {
        match self {
            KeyScope::AllTorrents => true,
            KeyScope::Torrents(set) => set.contains(hash),
        }
    }
}

/// Why a request was refused. The message goes back to the client as its `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this tracker is private: the announce URL needs a key")]
    NoKey,
    #[error("unknown or revoked key")]
    BadKey,
    #[error("this key is not valid for that torrent")]
    NotInScope,
    #[error("port 0 is not a usable peer port")]
    BadPort,
    #[error("this tracker tracks as many torrents as it can; try again later")]
    Full,
}

#[derive(Debug, Clone, Copy)]
struct PeerEntry {
    addr: SocketAddr,
    seeding: bool,
    last_seen: Instant,
}

/// The peers of one torrent. Peers live in a vector (with an index by peer id) so that an
/// answer picks `numwant` of them in O(numwant) from a random offset, whatever the swarm's size.
#[derive(Debug, Default)]
struct Swarm {
    peers: Vec<([u8; 20], PeerEntry)>,
    index: HashMap<[u8; 20], usize>,
    seeders: u32,
    completed: u32,
}

impl Swarm {
    fn stats(&self) -> ScrapeStats {
        ScrapeStats {
            complete: self.seeders,
            downloaded: self.completed,
            incomplete: self.peers.len() as u32 - self.seeders,
        }
    }

    fn get(&self, id: &[u8; 20]) -> Option<&PeerEntry> {
        self.index.get(id).map(|&i| &self.peers[i].1)
    }

    fn upsert(&mut self, id: [u8; 20], entry: PeerEntry) {
        match self.index.get(&id) {
            Some(&i) => {
                let old = std::mem::replace(&mut self.peers[i].1, entry);
                self.seeders = self.seeders - u32::from(old.seeding) + u32::from(entry.seeding);
            }
            None => {
                self.index.insert(id, self.peers.len());
                self.peers.push((id, entry));
                self.seeders += u32::from(entry.seeding);
            }
        }
    }

    fn remove(&mut self, id: &[u8; 20]) {
        if let Some(i) = self.index.remove(id) {
            let (_, old) = self.peers.swap_remove(i);
            self.seeders -= u32::from(old.seeding);
            if let Some((moved, _)) = self.peers.get(i) {
                self.index.insert(*moved, i);
            }
        }
    }

    fn expire(&mut self, now: Instant, ttl: Duration) {
        let stale: Vec<[u8; 20]> = self
            .peers
            .iter()
            .filter(|(_, p)| now.duration_since(p.last_seen) >= ttl)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove(&id);
        }
    }

    /// Up to `n` live peers other than `me`, from a random starting point. For a seeder
    /// (`leechers_first`), leechers come first and seeders only fill what room is left: a
    /// client that says it has everything may still be fetching the metadata of a magnet
    /// (librqbit 9.1 announces `left=0` then), and would otherwise get nobody to fetch from.
    fn pick(
        &self,
        me: &[u8; 20],
        n: usize,
        leechers_first: bool,
        now: Instant,
        ttl: Duration,
    ) -> Vec<Peer> {
        let len = self.peers.len();
        let mut out = Vec::with_capacity(n.min(len));
        if len == 0 || n == 0 {
            return out;
        }
        let start = rand::random_range(0..len);
        let passes: &[Option<bool>] = if leechers_first {
            &[Some(false), Some(true)]
        } else {
            &[None]
        };
        for &want_seeding in passes {
            for k in 0..len {
                if out.len() == n {
                    return out;
                }
                let (id, p) = &self.peers[(start + k) % len];
                if id != me
                    && now.duration_since(p.last_seen) < ttl
                    && want_seeding.is_none_or(|w| w == p.seeding)
                {
                    out.push(Peer {
                        peer_id: *id,
                        addr: p.addr,
                    });
                }
            }
        }
        out
    }
}

#[derive(Debug, Default)]
struct State {
    swarms: HashMap<InfoHash, Swarm>,
    keys: HashMap<String, KeyScope>,
    last_sweep: Option<Instant>,
}

/// A tracker. Cheap to share behind an `Arc`; all methods take `&self`.
#[derive(Debug)]
pub struct Tracker {
    config: TrackerConfig,
    state: Mutex<State>,
}

impl Tracker {
    pub fn new(config: TrackerConfig) -> Self {
        Tracker {
            config,
            state: Mutex::new(State::default()),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing all service, so keep going with the data as it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Grants `key` (replacing what it granted before).
    pub fn grant_key(&self, key: impl Into<String>, scope: KeyScope) {
        self.state().keys.insert(key.into(), scope);
    }

    /// Adds one torrent to what `key` grants, creating the key if needed.
    pub fn grant_torrent(&self, key: &str, hash: InfoHash) {
        let mut st = self.state();
        match st
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| KeyScope::Torrents(HashSet::new()))
        {
            KeyScope::AllTorrents => {}
            KeyScope::Torrents(set) => {
                set.insert(hash);
            }
        }
    }

    /// Revokes `key`: from now on it gets a failure and no peers. Returns whether it existed.
    pub fn revoke_key(&self, key: &str) -> bool {
        self.state().keys.remove(key).is_some()
    }

    fn check_access(&self, st: &State, key: Option<&str>, hash: &InfoHash) -> Result<(), Refusal> {
        match key {
            Some(k) => match st.keys.get(k) {
                Some(scope) if scope.allows(hash) => Ok(()),
                Some(_) => Err(Refusal::NotInScope),
                None => Err(Refusal::BadKey),
            },
            None if self.config.private => Err(Refusal::NoKey),
            None => Ok(()),
        }
    }

    /// Handles an announce from `remote`. `key` comes from the announce URL, if any.
    pub fn announce(
        &self,
        req: &AnnounceRequest,
        remote: SocketAddr,
        key: Option<&str>,
        now: Instant,
    ) -> Result<AnnounceResponse, Refusal> {
        if req.port == 0 {
            return Err(Refusal::BadPort);
        }
        let mut st = self.state();
        self.check_access(&st, key, &req.info_hash)?;
        self.maybe_sweep(&mut st, now);

        let ip = announced_ip(req.ip, remote.ip());
        let addr = SocketAddr::new(ip, req.port);
        let numwant = req
            .numwant
            .unwrap_or(self.config.default_numwant)
            .min(self.config.max_numwant) as usize;

        // Bounded whatever strangers announce: torrents, then peers per torrent.
        if !st.swarms.contains_key(&req.info_hash) && st.swarms.len() >= self.config.max_torrents {
            return Err(Refusal::Full);
        }
        let max_peers = self.config.max_peers_per_torrent;
        let swarm = st.swarms.entry(req.info_hash).or_default();
        let newcomer = !swarm.index.contains_key(&req.peer_id);
        if newcomer && swarm.peers.len() >= max_peers {
            swarm.expire(now, self.config.peer_ttl);
        }
        if req.event == Event::Stopped {
            swarm.remove(&req.peer_id);
        } else if newcomer && swarm.peers.len() >= max_peers {
            // Answered, not remembered.
        } else {
            let was_seeding = swarm.get(&req.peer_id).is_some_and(|p| p.seeding);
            let seeding = req.left == 0;
            if req.event == Event::Completed && !was_seeding {
                swarm.completed = swarm.completed.saturating_add(1);
            }
            swarm.upsert(
                req.peer_id,
                PeerEntry {
                    addr,
                    seeding,
                    last_seen: now,
                },
            );
        }
        let stats = swarm.stats();
        // Seeders want leechers first (see `pick`).
        let peers = swarm.pick(
            &req.peer_id,
            numwant,
            req.left == 0,
            now,
            self.config.peer_ttl,
        );
        if swarm.peers.is_empty() {
            st.swarms.remove(&req.info_hash);
        }
        Ok(AnnounceResponse {
            interval: self.config.interval.as_secs() as u32,
            min_interval: self.config.min_interval.as_secs() as u32,
            complete: stats.complete,
            incomplete: stats.incomplete,
            peers,
        })
    }

    /// Counts for the given torrents (all torrents the caller may see when `hashes` is empty).
    pub fn scrape(
        &self,
        hashes: &[InfoHash],
        key: Option<&str>,
        now: Instant,
    ) -> Result<Vec<(InfoHash, ScrapeStats)>, Refusal> {
        let mut st = self.state();
        if self.config.private || key.is_some() {
            match key.map(|k| st.keys.get(k)) {
                None => return Err(Refusal::NoKey),
                Some(None) => return Err(Refusal::BadKey),
                Some(Some(_)) => {}
            }
        }
        self.maybe_sweep(&mut st, now);
        let visible = |h: &InfoHash| self.check_access(&st, key, h).is_ok();
        let out = if hashes.is_empty() {
            st.swarms
                .iter()
                .filter(|(h, _)| visible(h))
                .map(|(h, s)| (*h, s.stats()))
                .collect()
        } else {
            hashes
                .iter()
                .filter(|h| visible(h))
                .map(|h| (*h, st.swarms.get(h).map(Swarm::stats).unwrap_or_default()))
                .collect()
        };
        Ok(out)
    }

    /// Drops peers not heard from within the TTL; runs at most every 10 seconds.
    fn maybe_sweep(&self, st: &mut State, now: Instant) {
        if st
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10))
        {
            return;
        }
        st.last_sweep = Some(now);
        let ttl = self.config.peer_ttl;
        st.swarms.retain(|_, s| {
            s.expire(now, ttl);
            !s.peers.is_empty()
        });
    }

    /// Number of live peers in a swarm (for status pages and tests).
    /// Whether a peer at `ip` announced `hash` here and has not expired: on a private
    /// tracker, a holder of a key for it (a sphere's member, or a plain client of theirs).
    pub fn has_peer_at(&self, hash: &InfoHash, ip: IpAddr, now: Instant) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.state().swarms.get(hash).is_some_and(|s| {
            s.peers.iter().any(|(_, p)| {
                p.addr.ip() == ip
                    && now.saturating_duration_since(p.last_seen) < self.config.peer_ttl
            })
        })
    }

    pub fn peer_count(&self, hash: &InfoHash) -> usize {
        self.state().swarms.get(hash).map_or(0, |s| s.peers.len())
    }
}

/// The address a peer is recorded under. A client's claimed `ip` is believed only when the
/// request comes from loopback (our own node announcing a LAN or mapped address); otherwise it
/// would let anyone point a swarm at a victim. IPv4-mapped IPv6 addresses become IPv4.
fn announced_ip(claimed: Option<IpAddr>, remote: IpAddr) -> IpAddr {
    let remote = match remote {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(remote, IpAddr::V4),
        v4 => v4,
    };
    match claimed {
        Some(ip) if remote.is_loopback() && !ip.is_unspecified() => ip,
        _ => remote,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(hash: u8, peer: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
        AnnounceRequest {
            info_hash: InfoHash([hash; 20]),
            peer_id: [peer; 20],
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event,
            numwant: None,
            compact: true,
            no_peer_id: false,
            ip: None,
        }
    }

    fn remote(last: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], 40000))
    }

    #[test]
    fn peers_find_each_other_and_stopped_peers_leave() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        let seed = t
            .announce(&req(1, 1, 1111, 0, Event::Started), remote(1), None, now)
            .unwrap();
        assert!(seed.peers.is_empty());
        let leech = t
            .announce(&req(1, 2, 2222, 5, Event::Started), remote(2), None, now)
            .unwrap();
        assert_eq!(leech.peers.len(), 1);
        assert_eq!(leech.peers[0].addr, "10.0.0.1:1111".parse().unwrap());
        assert_eq!((leech.complete, leech.incomplete), (1, 1));
        t.announce(&req(1, 1, 1111, 0, Event::Stopped), remote(1), None, now)
            .unwrap();
        let again = t
            .announce(&req(1, 2, 2222, 5, Event::None), remote(2), None, now)
            .unwrap();
        assert!(again.peers.is_empty());
    }

    #[test]
    fn seeders_get_leechers_first_and_completed_counts_once() {
        let t = Tracker::new(TrackerConfig::default());
        let now = Instant::now();
        t.announce(&req(1, 1, 1, 0, Event::Started), remote(1), None, now)
            .unwrap();
        t.announce(&req(1, 2, 2, 7, Event::Started), remote(2), None, now)
            .unwrap();
        // Room for one: the leecher, wherever the random start falls.
        for _ in 0..20 {
            let one = AnnounceRequest {
                numwant: Some(1),
                ..req(1, 3, 3, 0, Event::Started)
            };
            let s = t.announce(&one, remote(3), None, now).unwrap();
            assert_eq!(s.peers.len(), 1);
            assert_eq!(s.peers[0].peer_id, [2; 20]);
        }
        // Room for more: the other seeder too (it may be a magnet's client fetching metadata).
        let s = t
            .announce(&req(1, 3, 3, 0, Event::Started), remote(3), None, now)
            .unwrap();
        let ids: Vec<_> = s.peers.iter().map(|p| p.peer_id).collect();
        assert_eq!(ids, vec![[2; 20], [1; 20]]);
        t.announce(&req(1, 2, 2, 0, Event::Completed), remote(2), None, now)
            .unwrap();
        t.announce(&req(1, 2, 2, 0, Event::Completed), remote(2), None, now)
            .unwrap();
        let stats = t.scrape(&[InfoHash([1; 20])], None, now).unwrap();
        assert_eq!(
            stats[0].1,
            ScrapeStats {
                complete: 3,
                downloaded: 1,
                incomplete: 0
            }
        );
    }

    /// Attack: a stranger announces made-up torrents and made-up peers to an open tracker as
    /// fast as it can. What the tracker keeps stays within its bounds; known peers stay.
    #[test]
    fn a_flood_of_torrents_and_peers_stays_bounded() {
        let t = Tracker::new(TrackerConfig {
            max_torrents: 10,
            max_peers_per_torrent: 4,
            ..Default::default()
        });
        let now = Instant::now();
        for h in 0..10 {
            t.announce(&req(h, 1, 1000, 1, Event::Started), remote(1), None, now)
                .unwrap();
        }
        assert!(matches!(
            t.announce(&req(200, 1, 1000, 1, Event::Started), remote(1), None, now),
            Err(Refusal::Full)
        ));
        // A torrent already tracked still answers.
        for p in 2..50 {
            let answer = t
                .announce(&req(0, p, 1000, 1, Event::Started), remote(p), None, now)
                .unwrap();
            assert!(!answer.peers.is_empty());
        }
        assert_eq!(t.peer_count(&InfoHash([0; 20])), 4);
        // The first peer is still known to newcomers.
        let answer = t
            .announce(&req(0, 99, 1000, 1, Event::Started), remote(99), None, now)
            .unwrap();
        assert!(
            answer
                .peers
                .iter()
                .any(|p| p.addr == SocketAddr::new(remote(1).ip(), 1000))
        );
    }

    #[test]
    fn numwant_is_bounded_and_peers_expire() {
        let config = TrackerConfig {
            max_numwant: 5,
            ..Default::default()
        };
        let ttl = config.peer_ttl;
        let t = Tracker::new(config);
        let start = Instant::now();
        for p in 0..20 {
            t.announce(
                &req(1, p, 1000 + p as u16, 1, Event::Started),
                remote(p),
                None,
                start,
            )
            .unwrap();
        }
        let mut r = req(1, 99, 9, 1, Event::Started);
        r.numwant = Some(1000);
        assert_eq!(
            t.announce(&r, remote(99), None, start).unwrap().peers.len(),
            5
        );
        let later = start + ttl + Duration::from_secs(1);
        assert!(
            t.announce(&r, remote(99), None, later)
                .unwrap()
                .peers
                .is_empty()
        );
        assert_eq!(t.peer_count(&InfoHash([1; 20])), 1);
    }

    #[test]
    fn private_tracker_answers_only_granted_keys_until_revoked() {
        let t = Tracker::new(TrackerConfig {
            private: true,
            ..Default::default()
        });
        let now = Instant::now();
        let h = InfoHash([1; 20]);
        t.grant_torrent("alice", h);
        t.grant_torrent("bob", h);
        t.grant_key(
            "eve",
            KeyScope::Torrents(HashSet::from([InfoHash([2; 20])])),
        );
        assert_eq!(
            t.announce(&req(1, 1, 1, 0, Event::Started), remote(1), None, now),
            Err(Refusal::NoKey)
        );
        assert_eq!(
            t.announce(
                &req(1, 1, 1, 0, Event::Started),
                remote(1),
                Some("mallory"),
                now
            ),
            Err(Refusal::BadKey)
        );
        assert_eq!(
            t.announce(
                &req(1, 1, 1, 0, Event::Started),
                remote(1),
                Some("eve"),
                now
            ),
            Err(Refusal::NotInScope)
        );
        t.announce(
            &req(1, 1, 1, 0, Event::Started),
            remote(1),
            Some("alice"),
            now,
        )
        .unwrap();
        let bob = t
            .announce(
                &req(1, 2, 2, 5, Event::Started),
                remote(2),
                Some("bob"),
                now,
            )
            .unwrap();
        assert_eq!(bob.peers.len(), 1);
        assert!(t.revoke_key("bob"));
        assert_eq!(
            t.announce(&req(1, 2, 2, 5, Event::None), remote(2), Some("bob"), now),
            Err(Refusal::BadKey)
        );
        assert_eq!(t.scrape(&[h], Some("bob"), now), Err(Refusal::BadKey));
        assert_eq!(t.scrape(&[], Some("eve"), now).unwrap(), vec![]);
    }

    #[test]
    fn claimed_ip_is_believed_only_from_loopback() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let lan: IpAddr = "192.168.1.5".parse().unwrap();
        let other: IpAddr = "10.0.0.7".parse().unwrap();
        assert_eq!(announced_ip(Some(lan), lo), lan);
        assert_eq!(announced_ip(Some(lan), other), other);
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(announced_ip(None, mapped), other);
    }
}
