//! The BitTorrent peer wire protocol as bytes: the handshake (BEP 3, with the reserved bits of
//! the Fast extension BEP 6 and the extension protocol BEP 10) and every message of BEP 3,
//! BEP 6 and BEP 52 (v2's hash exchange), the BEP 10 envelope and what travels in it (the extended handshake, and the metadata
//! exchange of BEP 9, peer exchange of BEP 11). The first piece of spheres' own engine (issue 13): the
//! driver (sockets, timers, storage) and the piece picker build on it.
//!
//! Sans-IO and pure: bytes in, messages out, and back. Nothing here panics on what a peer
//! sends (`fuzz/fuzz_targets/peer_wire.rs`), and nothing a peer sends makes it buffer more
//! than one message of at most the length the caller allows ([`Decoder::new`]).

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod extension;
mod handshake;
mod message;
mod pex;

pub use extension::{
    ExtHandshake, ExtensionError, MAX_METADATA, METADATA_PIECE, MetadataMessage, UT_METADATA,
    metadata_pieces,
};
pub use handshake::{HANDSHAKE_LEN, Handshake, PROTOCOL};
pub use message::{BLOCK, Block, Decoder, HashRange, Message};
pub use pex::{MAX_PEX_PEERS, PexMessage, UT_PEX, dialable, flags as pex_flags, is_local};

/// What is wrong with what a peer sent. Any of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the peer does not speak the BitTorrent protocol")]
    NotBitTorrent,
    #[error("a message of {len} bytes is longer than the {max} allowed")]
    TooLong { len: u32, max: u32 },
    #[error("message {id} cannot be {len} bytes long")]
    BadLength { id: u8, len: u32 },
}
