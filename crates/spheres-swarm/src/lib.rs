//! The decisions of spheres' BitTorrent engine (issue 13), sans-IO in the style of str0m: the
//! driver (sockets, disks, timers) tells these what happened, with the time as a parameter,
//! and does what they answer.
//! - [`Picker`]: which blocks to ask which peer for (readers' windows, pieces started, rarest
//!   first, endgame);
//! - [`Choker`]: whom to send data to (tit-for-tat, optimistic unchoke, seeding by upload);
//! - [`Rate`]: how fast a peer goes; [`request_depth`]: how many requests to keep in flight.
//!
//! Nothing here does I/O, reads a clock or panics on what a peer sends (the fuzz target
//! `swarm` drives a picker with arbitrary events and checks every invariant after each).

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod bitfield;
mod choker;
mod picker;
mod rate;

pub use bitfield::Bitfield;
pub use choker::{Candidate, Choker, Decision, NEW_PEER, OPTIMISTIC, RECHOKE};
pub use picker::{Has, Layout, MAX_DUPLICATES, PeerKey, Picker, Priority, Received, request_depth};
pub use rate::Rate;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwarmError {
    #[error("the peer's bitfield does not fit the torrent's pieces")]
    BadBitfield,
    #[error("a torrent needs a piece length and a length, and fewer than 2^32 pieces")]
    BadLayout,
}
