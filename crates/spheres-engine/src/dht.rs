//! The mainline DHT (BEP 5), for public torrents only, through the `mainline` crate (a
//! maintained implementation; docs/decisions/0010). A private torrent (BEP 27: every
//! sphere's) is never announced nor looked up: its info hash never leaves its swarm.
//!
//! Each public torrent looks its peers up and announces our listen port every 15 minutes
//! (every 15 s while it has no peer and is incomplete); magnets look up their peers too.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;

use crate::torrent::Torrent;

/// Peers kept from one lookup.
const MAX_PEERS: usize = 200;
/// How often a torrent looks again.
const AGAIN: Duration = Duration::from_secs(15 * 60);
const AGAIN_WHEN_ALONE: Duration = Duration::from_secs(15);

/// How to join the DHT.
#[derive(Debug, Clone, Default)]
pub struct DhtConfig {
    /// Nodes to bootstrap from (`host:port`); `None`: the well-known public ones.
    pub bootstrap: Option<Vec<String>>,
    /// The UDP port (0: one the OS chooses).
    pub port: u16,
}

/// Our node in the DHT. Dropping every handle stops it.
#[derive(Clone)]
pub(crate) struct Dht {
    dht: mainline::async_dht::AsyncDht,
}

impl Dht {
    /// Joins the DHT on the listen address's interface (loopback stays on loopback; IPv4 only:
    /// the crate has no IPv6).
    pub fn start(config: &DhtConfig, listen: SocketAddr) -> std::io::Result<Dht> {
        let mut b = mainline::Dht::builder();
        b.port(config.port);
        match listen.ip() {
            IpAddr::V4(v4) => {
                b.bind_address(v4);
            }
            IpAddr::V6(v6) if v6.is_loopback() => {
                b.bind_address(Ipv4Addr::LOCALHOST);
            }
            IpAddr::V6(_) => {}
        }
        if let Some(nodes) = &config.bootstrap {
            b.bootstrap(nodes);
        }
        Ok(Dht {
            dht: b.build()?.as_async(),
        })
    }

    /// Where our DHT node listens (UDP).
    pub async fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.dht.info().await.local_addr())
    }

    /// Announces us on `port`, if given, then returns the peers of `info_hash` the DHT knows
    /// (announcing first: two peers that start together find each other on their first try).
    pub async fn lookup(&self, info_hash: [u8; 20], port: Option<u16>) -> Vec<SocketAddr> {
        let id = mainline::Id::from(info_hash);
        if let Some(port) = port
            && let Err(e) = self.dht.announce_peer(id, Some(port)).await
        {
            tracing::debug!(error = %e, "DHT announce failed");
        }
        let mut found = HashSet::new();
        let mut stream = self.dht.get_peers(id);
        while let Some(batch) = stream.next().await {
            found.extend(batch.into_iter().map(SocketAddr::V4));
            if found.len() >= MAX_PEERS {
                break;
            }
        }
        found.into_iter().collect()
    }
}

/// A public torrent's DHT loop: peers found are dialled like a tracker's.
pub(crate) async fn dht_loop(t: Arc<Torrent>, dht: Dht, port: u16, engine: Weak<crate::Inner>) {
    loop {
        let peers = dht.lookup(t.info_hash(), Some(port)).await;
        let Some(inner) = engine.upgrade() else {
            return;
        };
        if t.closed() {
            return;
        }
        tracing::debug!(torrent = %t.meta.name, peers = peers.len(), "DHT lookup");
        t.add_known(peers.into_iter().filter(|a| *a != inner.listen), false);
        drop(inner);
        let st = t.status();
        let alone = st.peers == 0 && !st.complete;
        tokio::time::sleep(if alone { AGAIN_WHEN_ALONE } else { AGAIN }).await;
    }
}
