//! The BitTorrent engine of spheres as the node sees it: a session of torrents over our own
//! engine (`spheres-engine`, issue 13), with the node's contract on top:
//! - **Paths.** Metainfo is validated by `spheres-metainfo`, and no existing symbolic link may
//!   stand between the output folder and a file of the torrent (`paths.rs`).
//! - **Seeding in place** never changes a person's file: every size is checked first, and a
//!   file whose size differs is refused.
//! - **Who joins a swarm**: anyone for a public torrent, a sphere's members only for its
//!   torrents ([`Admit`]); a private torrent kept from the last run admits nobody until the
//!   node says again who its members are.
//! - **Streams** are limited in number (`max_streams`), and each reader moves its own window.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod engine;
mod paths;

pub use engine::{
    AddOptions, Admit, Engine, EngineConfig, EngineError, FileReader, FileStatus, Output, SealSpec,
    Source, TorrentState, TorrentStatus,
};
pub use spheres_engine::{Admission, EngineEvent, Members, PeerInfo, Proving, Verdict};
pub use spheres_metainfo::InfoHash;
