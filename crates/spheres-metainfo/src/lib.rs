//! BitTorrent metainfo for spheres.
//!
//! This crate is the single place that knows the bytes of a `.torrent` file:
//! - [`bencode`]: a strict, bounded bencode decoder that keeps the raw span of every
//!   dictionary (the info hash is the SHA-1 of the *original* bytes of `info`), and an encoder
//!   that always writes canonical (sorted) dictionaries;
//! - [`Metainfo`]: a validated, sanitised view of a v1 torrent (BEP 3, 12, 19, 27, 47);
//! - [`Magnet`]: magnet links (BEP 9);
//! - [`create`]: our own torrent maker, hashing pieces on all cores.
//!
//! Parsing is pure: no I/O, no panics on any input (the fuzz targets in `fuzz/` hold it to that).
//! Nothing here knows about the BitTorrent engine, the network or HTTP.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bencode;
pub mod create;
mod magnet;
mod metainfo;
pub mod seal;
pub mod v2;

pub use create::{CreateError, CreateOptions, Progress, Sealed, create_sealed, create_torrent};
pub use magnet::{Magnet, MagnetError};
pub use metainfo::{FileEntry, InfoHash, Metainfo, MetainfoError, torrent_with, with_trackers};
pub use v2::{V2File, V2Info};

/// The smallest piece length we choose or accept when creating a torrent (BEP 3 block size).
pub const MIN_PIECE_LENGTH: u64 = 16 * 1024;
/// The largest piece length we choose automatically.
pub const MAX_AUTO_PIECE_LENGTH: u64 = 16 * 1024 * 1024;
