//! Housekeeping, every few seconds: members' endpoints fed to the tracker and given to the
//! engine, rooms rejoined, the outbox flushed, sessions expired.

use std::sync::Arc;
use std::time::{Duration, Instant};

use spheres_metainfo::InfoHash;
use spheres_torrent::TorrentState;

use crate::RowState as _;
use crate::api::types::ShareState;
use crate::peers::FEED_EVERY;
use crate::{Node, lock};

impl Node {
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
