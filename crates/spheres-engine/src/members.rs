//! A sphere's torrents are for its members' nodes only: a node proves membership in its
//! extended handshake with an HMAC keyed by the sphere's secret (which travels inside the
//! sphere's room), bound to the torrent, both peer ids and a fresh nonce from each side, so a
//! proof seen on one connection is worth nothing on another. A node that cannot prove it
//! gets nothing: not the metadata, not a piece, not which pieces we have.
//!
//! The proof that node P sends node Q (docs/protocol.md):
//! `HMAC-SHA256(secret, "spheres member proof v1" || info_hash || P's peer id || Q's peer id
//! || P's nonce || Q's nonce)`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Admission, PeerInfo, Verdict};

const LABEL: &[u8] = b"spheres member proof v1";

/// What a proof is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Proving {
    pub info_hash: [u8; 20],
    /// The prover's peer id and nonce.
    pub from: [u8; 20],
    pub from_nonce: [u8; 16],
    /// The verifier's.
    pub to: [u8; 20],
    pub to_nonce: [u8; 16],
}

/// Admission for a sphere's torrents: members' nodes (who hold the sphere's secret) only.
///
/// One value serves all of a sphere's torrents, and its secret can change while they run (the
/// owner gives a new one after removing a member): new connections are checked against the
/// secret of the moment. Without a secret (not received yet) nobody is admitted and we prove
/// nothing.
pub struct Members {
    secret: std::sync::RwLock<Option<[u8; 32]>>,
}

impl Members {
    pub fn new(secret: [u8; 32]) -> Members {
        Members::with(Some(secret))
    }

    /// Members with `secret`, or nobody until [`Members::set`] gives one.
    pub fn with(secret: Option<[u8; 32]>) -> Members {
        Members {
            secret: std::sync::RwLock::new(secret),
        }
    }

    /// Changes the secret for connections from now on (those admitted stay).
    pub fn set(&self, secret: Option<[u8; 32]>) {
        *self.secret.write().unwrap_or_else(|e| e.into_inner()) = secret;
    }

    /// The secret of the moment.
    pub fn secret(&self) -> Option<[u8; 32]> {
        *self.secret.read().unwrap_or_else(|e| e.into_inner())
    }

    fn mac(&self, p: &Proving) -> Option<Hmac<Sha256>> {
        let secret = self.secret()?;
        // A key of any length is accepted by HMAC: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in [
            LABEL,
            &p.info_hash[..],
            &p.from[..],
            &p.to[..],
            &p.from_nonce[..],
            &p.to_nonce[..],
        ] {
            mac.update(part);
        }
        Some(mac)
    }
}

impl Members {
    /// The proof for `p` (what [`Admission::proof`] sends; for tests that craft peers).
    pub fn proof_for(&self, p: &Proving) -> Option<[u8; 32]> {
        Some(self.mac(p)?.finalize().into_bytes().into())
    }
}

impl Admission for Members {
    fn admit(&self, peer: &PeerInfo<'_>) -> Verdict {
        if self.secret().is_none() {
            return Verdict::Refuse;
        }
        let Some(ext) = peer.extension else {
            return Verdict::AfterExtension;
        };
        // Not a spheres node (no nonce): it cannot prove anything.
        let Some(nonce) = ext.nonce else {
            return Verdict::Refuse;
        };
        // Its proof may come in a second extended handshake, once it has our nonce.
        let Some(proof) = ext.member_proof else {
            return Verdict::AfterExtension;
        };
        let Some(expected) = self.mac(&Proving {
            info_hash: peer.info_hash,
            from: peer.peer_id,
            from_nonce: nonce,
            to: peer.our_peer_id,
            to_nonce: peer.our_nonce,
        }) else {
            // No secret yet: nobody can be checked.
            return Verdict::Refuse;
        };
        // Constant time.
        if expected.verify_slice(&proof).is_ok() {
            Verdict::Admit
        } else {
            Verdict::Refuse
        }
    }

    fn proof(&self, p: &Proving) -> Option<[u8; 32]> {
        self.proof_for(p)
    }
}
