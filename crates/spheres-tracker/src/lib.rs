//! A BitTorrent tracker for spheres, embedded in the node or run alone (`spheres tracker`).
//!
//! - [`wire`]: the messages as bytes (HTTP BEP 3/7/23/48, UDP BEP 15/41); pure and fuzzed.
//! - [`Tracker`]: swarms, expiry, numwant bounds and private keys; sans-IO (time is a parameter).
//! - [`server`]: the HTTP router and UDP loop around them.
//! - [`rtc`]: WebTorrent's signalling (browsers find each other through a WebSocket and open
//!   WebRTC data channels); sans-IO and fuzzed. [`ws`]: its WebSocket connections.
//!
//! Privacy model: in private mode only announces whose URL carries a granted key get peers, and
//! only for the torrents that key was granted; a revoked key gets a failure from then on.
//! This crate knows nothing of spheres, XMPP or the engine: the node decides who holds a key.

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod rtc;
pub mod server;
mod tracker;
pub mod wire;
pub mod ws;

pub use server::{RunningTracker, http_router, start};
pub use tracker::{KeyScope, Refusal, Tracker, TrackerConfig};
