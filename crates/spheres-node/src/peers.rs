//! Peers and reachability: this node's endpoints (LAN, mapped by the router, IPv6) published in
//! rooms, members' endpoints fed to the owner's tracker and given to the engine, the port
//! mapping kept, local service discovery (BEP 14).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use spheres_metainfo::InfoHash;
use spheres_store::Sphere;
use spheres_torrent::{Admission, Admit, Members, PeerInfo, Proving, Verdict};
use spheres_tracker::KeyScope;
use spheres_tracker::Tracker;
use spheres_tracker::wire::{AnnounceRequest, Event as TrackerEvent};
use spheres_xmpp::BareJid;
use spheres_xmpp::protocol::{Endpoint, Endpoints};

use crate::RowState as _;
use crate::api::types::ShareState;
use crate::events::NodeEvent;
use crate::{Node, lock};

/// How often the owner re-feeds members' endpoints into its tracker (its peers expire after
/// `PEER_TTL`), and how often stalled downloads are looked at.
pub(crate) const FEED_EVERY: Duration = Duration::from_secs(5);

pub(crate) const PEER_TTL: Duration = Duration::from_secs(90);

pub(crate) fn peer_id_for(who: &str, addr: &SocketAddr) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(who.as_bytes());
    h.update(addr.to_string().as_bytes());
    h.finalize().into()
}

/// Which of the node's ports a mapping on the router is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Forwarded {
    /// The BitTorrent port: members elsewhere connect to it.
    Peers,
    /// The web port (`--public-web`): links and public pages.
    Web,
}

/// What the node keeps of peers and of its own reachability.
pub(crate) struct PeerState {
    /// Each sphere's swarm admission (by sphere id): its members' nodes, who prove the
    /// sphere's secret. One value for all of a sphere's torrents; the secret changes in it.
    pub(crate) swarms: Mutex<HashMap<i64, Arc<SwarmGate>>>,
    /// Held while a sphere's swarm secret is read or made: one secret per sphere, even when
    /// two tasks ask for it at once.
    pub(crate) swarm_init: tokio::sync::Mutex<()>,
    /// Peers heard on the LAN (BEP 14), and the info hashes we announce there.
    pub(crate) lsd: Mutex<Option<spheres_net::lsd::Heard>>,
    pub(crate) lsd_hashes: Mutex<Vec<spheres_net::lsd::Torrent>>,
    /// How reachable we are from outside, and the port mapping that makes it so.
    pub(crate) reachability: Mutex<spheres_net::Reachability>,
    pub(crate) mapping: tokio::sync::Mutex<Option<spheres_net::Mapping>>,
}

impl Default for PeerState {
    fn default() -> Self {
        PeerState {
            swarms: Mutex::default(),
            swarm_init: tokio::sync::Mutex::new(()),
            lsd: Mutex::default(),
            lsd_hashes: Mutex::default(),
            reachability: Mutex::new(spheres_net::Reachability::Unknown),
            mapping: tokio::sync::Mutex::new(None),
        }
    }
}

impl Node {
    pub(crate) fn endpoints(&self) -> Endpoints {
        if self.settings.no_endpoints {
            return Endpoints { endpoints: vec![] };
        }
        let listen = self.engine.listen_addr();
        let (kind, host) = if listen.ip().is_loopback() {
            ("loopback", listen.ip())
        } else if listen.ip().is_unspecified() {
            // Listening everywhere: our address on the LAN is the one towards the router.
            ("lan", spheres_net::lan_address().unwrap_or(listen.ip()))
        } else {
            ("lan", listen.ip())
        };
        let mut endpoints = vec![Endpoint {
            kind: kind.to_owned(),
            host: host.to_string(),
            port: listen.port(),
        }];
        if let spheres_net::Reachability::Mapped { external, .. } = &*lock(&self.peers.reachability)
            && !external.ip().is_unspecified()
        {
            endpoints.push(Endpoint {
                kind: "mapped".to_owned(),
                host: external.ip().to_string(),
                port: external.port(),
            });
        }
        Endpoints { endpoints }
    }

    /// Keeps a port mapping on the home router for our BitTorrent port while the node runs
    /// (renewed at half the lease; removed at shutdown), and says how reachable we are.
    pub(crate) async fn keep_port_mapped(self: Arc<Self>) {
        let listen = self.engine.listen_addr();
        if listen.ip().is_loopback() {
            *lock(&self.peers.reachability) = spheres_net::Reachability::LoopbackOnly;
            return;
        }
        self.keep_mapped(listen.port(), Forwarded::Peers).await;
    }

    /// Keeps TCP `port` forwarded by the home router while the node runs: renewed at half
    /// the lease, mapped again when the router will not renew, asked again every 10 minutes
    /// when it says no (routers come and go, and change). The mapping is kept where `which`
    /// says, for the shutdown to remove it.
    pub(crate) async fn keep_mapped(self: Arc<Self>, port: u16, which: Forwarded) {
        let lease = Duration::from_secs(3600);
        let held = match which {
            Forwarded::Peers => &self.peers.mapping,
            Forwarded::Web => &self.web.mapping,
        };
        loop {
            match spheres_net::Mapping::create(port, lease, Duration::from_secs(3)).await {
                Ok(mapping) => {
                    tracing::info!(external = %mapping.external, method = ?mapping.method, port, "the router forwards our port");
                    let now = mapping.reachability();
                    let half = mapping.lease / 2;
                    {
                        // Under the lock the shutdown takes it with: a node stopping while the
                        // router answered removes what it just got.
                        let mut slot = held.lock().await;
                        if self.stopping() {
                            drop(slot);
                            if let Err(e) = mapping.remove().await {
                                tracing::warn!(error = %e, "the port mapping stays until its lease ends");
                            }
                            return;
                        }
                        *slot = Some(mapping);
                    }
                    self.forwarded(which, now).await;
                    loop {
                        tokio::time::sleep(half.max(Duration::from_secs(30))).await;
                        let mut guard = held.lock().await;
                        let Some(m) = guard.as_mut() else { return };
                        if let Err(e) = m.renew().await {
                            tracing::warn!(error = %e, port, "the router would not renew our port; mapping again");
                            *guard = None;
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(reason = %e, port, "the router does not forward our port");
                    let why = match which {
                        Forwarded::Peers => format!(
                            "{e}, so members elsewhere cannot connect to this node (it can still connect to them)"
                        ),
                        Forwarded::Web => e.to_string(),
                    };
                    self.forwarded(which, spheres_net::Reachability::Unreachable { why })
                        .await;
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
            }
        }
    }

    /// What the router now does for `which`, kept and told: members hear of a new mapped
    /// endpoint, the page of any change.
    async fn forwarded(&self, which: Forwarded, now: spheres_net::Reachability) {
        let mapped = matches!(now, spheres_net::Reachability::Mapped { .. });
        match which {
            Forwarded::Peers => {
                *lock(&self.peers.reachability) = now;
                if mapped {
                    self.republish_endpoints().await;
                }
            }
            Forwarded::Web => *lock(&self.web.mapped) = now,
        }
        self.emit(NodeEvent::Network);
    }

    /// Sends our presence with fresh endpoints to every sphere room.
    pub(crate) async fn republish_endpoints(&self) {
        if let Ok(spheres) = self.store.spheres().await {
            for sphere in spheres {
                if let Ok(room) = BareJid::new(&sphere.room) {
                    self.send_room_presence(&room).await;
                }
            }
        }
        self.emit(NodeEvent::Network);
    }

    /// Gives the engine everyone who may have a share (members' endpoints, peers heard on
    /// the LAN); it dials those it is not connected to, and again later with backoff.
    pub(crate) fn give_peers(&self, sphere: &Sphere, share: &spheres_store::ShareRow) {
        let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
            return;
        };
        let peers = self.peers_for(&sphere.room, &share.info_hash);
        if !peers.is_empty() {
            let _ = self.engine.add_peers(&hash, &peers);
        }
    }

    /// Who may join a sphere's swarms: its members' nodes, who prove the sphere's secret. The
    /// owner makes the secret; members get it with their tracker key. Until then nobody is
    /// admitted (and we can prove nothing).
    pub(crate) async fn swarm(&self, sphere: &Sphere) -> Arc<SwarmGate> {
        if let Some(m) = lock(&self.peers.swarms).get(&sphere.id) {
            return m.clone();
        }
        let _one_at_a_time = self.peers.swarm_init.lock().await;
        if let Some(m) = lock(&self.peers.swarms).get(&sphere.id) {
            return m.clone();
        }
        let name = format!("swarm_secret:{}", sphere.id);
        let kept = self.store.meta(&name).await;
        let mut secret = kept
            .as_ref()
            .ok()
            .and_then(|v| v.as_deref())
            .and_then(parse_secret);
        // A new one only when there is none: not when the store could not be read (members
        // have the one kept there).
        if sphere.owned && matches!(kept, Ok(None)) {
            let new = rand::random::<[u8; 32]>();
            if self.store.set_meta(&name, &hex::encode(new)).await.is_ok() {
                secret = Some(new);
            }
        }
        let plain = sphere.owned && self.plain_clients(sphere).await;
        lock(&self.peers.swarms)
            .entry(sphere.id)
            .or_insert_with(|| {
                Arc::new(SwarmGate {
                    members: Members::with(secret),
                    plain: AtomicBool::new(plain),
                    tracker: self.tracker.tracker.clone(),
                })
            })
            .clone()
    }

    /// Whether plain BitTorrent clients of members are let into a sphere's swarms (policy
    /// `clients:plain`; by default `clients:members`).
    pub(crate) async fn plain_clients(&self, sphere: &Sphere) -> bool {
        matches!(
            self.store.meta(&format!("clients:{}", sphere.id)).await,
            Ok(Some(v)) if v == "plain"
        )
    }

    /// Who may join the swarm of a sphere's torrent: its members' nodes for a private torrent
    /// (every torrent shared in a sphere), anyone for a public one a member passed on.
    pub(crate) async fn admit(&self, sphere: &Sphere, private: bool) -> Admit {
        if private {
            Admit::Only(self.swarm(sphere).await)
        } else {
            Admit::Anyone
        }
    }

    /// A sphere's swarm secret is now `secret` (from the owner, or made anew by us, the
    /// owner): kept, and checked from now on. When it changed (the owner removed someone),
    /// the sphere's connections are closed and made again: members prove the new secret, a
    /// removed member cannot, and keeps no connection it had.
    pub(crate) async fn set_swarm_secret(&self, sphere: &Sphere, secret: [u8; 32]) {
        let name = format!("swarm_secret:{}", sphere.id);
        if let Err(e) = self.store.set_meta(&name, &hex::encode(secret)).await {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot keep the sphere's swarm secret");
        }
        let gate = self.swarm(sphere).await;
        let before = gate.members.secret();
        gate.members.set(Some(secret));
        if before.is_some_and(|b| b != secret) {
            let mut closed = 0;
            for hash in self.sphere_hashes(sphere).await {
                closed += self.engine.drop_peers(&hash).unwrap_or(0);
            }
            tracing::info!(sphere = %sphere.name, closed, "new swarm secret: connections made again");
        }
    }

    /// Our announce URL for a sphere: our own tracker for spheres we own, else the key the
    /// owner gave us.
    pub(crate) async fn announce_url(&self, sphere: &Sphere) -> Option<String> {
        if sphere.owned {
            let key = self.owner_key(sphere).await.ok()?;
            // Known to the tracker before any torrent of the sphere is granted to it.
            self.tracker.tracker.grant_key(
                key.clone(),
                KeyScope::Torrents(self.sphere_hashes(sphere).await),
            );
            return self.tracker.http_announce_url(Some(&key));
        }
        self.store
            .sphere(&sphere.name)
            .await
            .ok()
            .flatten()
            .and_then(|s| s.announce)
    }

    /// A withdrawal: only the sharer, or the sphere's owner, can take a share back.
    /// The info hashes of a sphere's shares.
    pub(crate) async fn sphere_hashes(&self, sphere: &Sphere) -> HashSet<InfoHash> {
        self.store
            .shares(sphere.id)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.info_hash.parse().ok())
            .collect()
    }

    /// Everyone who may have a torrent: members' endpoints in its room and peers heard on
    /// the LAN for it.
    pub(crate) fn peers_for(&self, room: &str, info_hash: &str) -> Vec<SocketAddr> {
        let mut peers = self.member_endpoints(room);
        if let Some(heard) = lock(&self.peers.lsd).as_ref() {
            for p in heard.peers(info_hash) {
                if !peers.contains(&p) {
                    peers.push(p);
                }
            }
        }
        peers
    }

    /// A share as LAN discovery announces it: a private torrent (every sphere's, or one we
    /// cannot tell yet) never by its info hash (`lsd::private_name`, docs/decisions/0007).
    pub(crate) fn lan_torrent(&self, info_hash: &str) -> Option<spheres_net::lsd::Torrent> {
        let hash = info_hash.parse::<InfoHash>().ok()?;
        let private = self.engine.metainfo(&hash).is_none_or(|m| m.private);
        Some(spheres_net::lsd::Torrent {
            info_hash: hash.0,
            private,
        })
    }

    /// Local service discovery for every share, when the node listens beyond loopback.
    pub(crate) fn start_lsd(self: &Arc<Self>) {
        if self.engine.listen_addr().ip().is_loopback() {
            return;
        }
        let node = Arc::downgrade(self);
        let started = spheres_net::lsd::start(self.engine.listen_addr().port(), move || {
            node.upgrade()
                .map(|n| lock(&n.peers.lsd_hashes).clone())
                .unwrap_or_default()
        });
        match started {
            Ok(heard) => *lock(&self.peers.lsd) = Some(heard),
            Err(e) => tracing::warn!(error = %e, "no local service discovery (UDP port 6771)"),
        }
    }

    /// Members' endpoints in a room, as peers.
    pub(crate) fn member_endpoints(&self, room: &str) -> Vec<SocketAddr> {
        lock(&self.rooms)
            .endpoints(room)
            .into_iter()
            .map(|(_, a)| a)
            .collect()
    }

    /// Puts members' endpoints into our tracker's swarms for a sphere we own, so that every
    /// member (and any plain client with a member's key) gets them as peers.
    pub(crate) async fn feed_endpoints(&self, sphere: &Sphere) {
        if !sphere.owned {
            return;
        }
        let Ok(shares) = self.store.shares(sphere.id).await else {
            return;
        };
        // Members whose real address the room shows (their peer id is made from it).
        let peers: Vec<(String, SocketAddr)> = lock(&self.rooms)
            .endpoints(&sphere.room)
            .into_iter()
            .filter_map(|(who, addr)| Some((who?, addr)))
            .collect();
        let now = Instant::now();
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        for share in shares
            .iter()
            .filter(|s| s.share_state() != ShareState::Withdrawn)
        {
            let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
                continue;
            };
            for (who, addr) in &peers {
                if addr.port() == 0 {
                    continue;
                }
                let req = AnnounceRequest {
                    info_hash: hash,
                    peer_id: peer_id_for(who, addr),
                    port: addr.port(),
                    uploaded: 0,
                    downloaded: 0,
                    // Unknown: counted as a leecher, so seeders are given it too.
                    left: 1,
                    event: TrackerEvent::None,
                    numwant: Some(0),
                    compact: true,
                    no_peer_id: true,
                    ip: Some(addr.ip()),
                };
                let _ = self
                    .tracker
                    .tracker
                    .announce(&req, loopback, Some(&self.self_key), now);
            }
        }
    }
}

/// Who may join a sphere's swarms (one for all of its torrents).
pub(crate) struct SwarmGate {
    /// Members' nodes, who prove the sphere's secret (which can change).
    pub(crate) members: Members,
    /// Also plain BitTorrent clients (sphere policy `clients:plain`, on the owner's node): a
    /// peer from an address that announced the torrent to our tracker, which only members'
    /// keys open (and where the node puts members' published endpoints). An address is
    /// weaker than a proof: anyone behind the same router is let in too (docs/security.md).
    pub(crate) plain: AtomicBool,
    pub(crate) tracker: Arc<Tracker>,
}

impl Admission for SwarmGate {
    fn admit(&self, peer: &PeerInfo<'_>) -> Verdict {
        if self.plain.load(Ordering::Relaxed)
            && self
                .tracker
                .has_peer_at(&InfoHash(peer.info_hash), peer.addr.ip(), Instant::now())
        {
            return Verdict::Admit;
        }
        self.members.admit(peer)
    }

    fn proof(&self, p: &Proving) -> Option<[u8; 32]> {
        self.members.proof(p)
    }
}

/// A swarm secret as the store keeps it (64 hex digits).
fn parse_secret(hex: &str) -> Option<[u8; 32]> {
    hex::decode(hex).ok()?.try_into().ok()
}
