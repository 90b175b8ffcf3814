//! The BitTorrent engine of spheres: an adapter over librqbit 9.1.0 and, while issue 13's
//! switch-over is under way, over our own engine (`spheres-engine`, chosen with
//! `SPHERES_ENGINE=own`; see [`Backend`]).
//!
//! This is the only crate that names librqbit types; everything else talks to [`Engine`].
//! It exists to keep librqbit's measured defects out of the rest of the code
//! (docs/decisions/0003-engine-librqbit.md):
//! - **The streaming freeze.** Each librqbit `FileStream` holds a permit of the session-wide
//!   blocking semaphore for its whole life, and disk writes need the same permits. We size that
//!   semaphore as `max_streams + DISK_PERMITS` and put our own semaphore of `max_streams` in
//!   front of it, so open streams can never take the permits that downloads and seeding need.
//! - **Seeding in place** is librqbit's `overwrite` mode, which also *resizes* files whose size
//!   differs from the torrent's. We check every size first and refuse rather than touch a
//!   person's file.
//! - **Paths.** Metainfo is validated by `spheres-metainfo` before librqbit sees it, and no
//!   existing symbolic link may stand between the output folder and a file of the torrent.
//! - **Announce port.** On a loopback address librqbit announces port 4240 unless told the
//!   port, so we always tell it.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod engine;
mod own;
mod paths;

pub use engine::{
    AddOptions, Backend, DISK_PERMITS, Engine, EngineConfig, EngineError, FileReader, FileStatus,
    Output, Source, TorrentState, TorrentStatus,
};
pub use spheres_metainfo::InfoHash;
