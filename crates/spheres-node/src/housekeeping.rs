//! Housekeeping, every few seconds: members' endpoints fed to the tracker and given to the
//! engine, rooms rejoined, the outbox flushed, sessions expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spheres_metainfo::InfoHash;
use spheres_torrent::TorrentState;

use crate::RowState as _;
use crate::api::types::ShareState;
use crate::events::NodeEvent;
use crate::peers::FEED_EVERY;
use crate::{Node, lock};

impl Node {
    /// What the engine reports, acted on as it happens: a download complete is put in place
    /// at once, and the page hears of completions, peers coming and going and disk errors
    /// (at most 4 times a second per torrent; progress moves with the page's tick). The
    /// housekeeping below still looks every second, for what an overwhelmed listener missed.
    pub(crate) async fn engine_events(self: Arc<Self>) {
        use spheres_torrent::EngineEvent as E;
        use tokio::sync::broadcast::error::RecvError;
        let mut events = self.engine.subscribe();
        let mut told: std::collections::HashMap<[u8; 20], Instant> = Default::default();
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let (hash, complete) = match event {
                E::Complete { info_hash } => (info_hash, true),
                E::PeerConnected { info_hash, .. }
                | E::PeerGone { info_hash, .. }
                | E::DiskError { info_hash, .. }
                | E::HashFailed { info_hash, .. } => (info_hash, false),
                _ => continue,
            };
            if !complete {
                let now = Instant::now();
                if told
                    .get(&hash)
                    .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(250))
                {
                    continue;
                }
                // Bounded: one entry per torrent told of in the last seconds.
                told.retain(|_, t| now.duration_since(*t) < Duration::from_secs(5));
                told.insert(hash, now);
            }
            let hex = InfoHash(hash).to_hex();
            let Ok(spheres) = self.store.spheres().await else {
                continue;
            };
            for sphere in spheres {
                let Ok(Some(share)) = self.store.share(sphere.id, &hex).await else {
                    continue;
                };
                if complete && share.share_state() == ShareState::Downloading {
                    self.complete_download(&sphere, &share, &InfoHash(hash))
                        .await;
                } else {
                    self.emit(NodeEvent::Share {
                        sphere: sphere.name.clone(),
                    });
                }
            }
        }
    }

    /// Periodic work: completed downloads become seeding; endpoints are re-fed.
    pub(crate) async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_feed = Instant::now();
        loop {
            tick.tick().await;
            let Ok(spheres) = self.store.spheres().await else {
                continue;
            };
            // What we announce on the LAN, gathered from the same reads as the rest.
            let mut active = Vec::new();
            for sphere in &spheres {
                let Ok(shares) = self.store.shares(sphere.id).await else {
                    continue;
                };
                active.extend(
                    shares
                        .iter()
                        .filter(|s| {
                            s.share_state() == ShareState::Seeding
                                || s.share_state() == ShareState::Downloading
                        })
                        .filter_map(|s| self.lan_torrent(&s.info_hash)),
                );
                for share in shares
                    .iter()
                    .filter(|s| s.share_state() == ShareState::Downloading)
                {
                    let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
                        continue;
                    };
                    if let Some(st) = self.engine.status(&hash) {
                        if st.is_complete() {
                            self.complete_download(sphere, share, &hash).await;
                        } else if st.state == TorrentState::Error {
                            let _ = self
                                .store
                                .set_share_state(
                                    sphere.id,
                                    &share.info_hash,
                                    ShareState::Downloading.as_str(),
                                    None,
                                    st.error.as_deref(),
                                )
                                .await;
                        }
                    }
                }
                if last_feed.elapsed() >= FEED_EVERY {
                    // Unconfirmed announcements go again (each on its own growing delay).
                    if lock(&self.rooms).joined(&sphere.room) {
                        self.flush_outbox(sphere).await;
                    }
                    self.feed_endpoints(sphere).await;
                    for share in &shares {
                        match share.share_state() {
                            ShareState::Seeding => {
                                self.give_peers(sphere, share);
                                self.forget_if_removed(sphere, share).await;
                            }
                            ShareState::Downloading => self.give_peers(sphere, share),
                            _ => {}
                        }
                    }
                }
            }
            *lock(&self.peers.lsd_hashes) = active;
            if last_feed.elapsed() >= FEED_EVERY {
                last_feed = Instant::now();
                // The household server: back up if it died (clients reconnect by themselves).
                if let Some(p) = &self.prosody {
                    match p.lock().await.supervise().await {
                        Ok(true) => {
                            tracing::warn!("the household server had stopped; restarted it")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "cannot restart the household server")
                        }
                    }
                }
            }
        }
    }
}
