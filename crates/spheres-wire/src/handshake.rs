//! The handshake both sides send first (BEP 3): `\x13BitTorrent protocol`, 8 reserved bytes
//! (extension bits), the info hash and the peer id.

use crate::WireError;

/// The protocol string, after its length byte.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// A handshake's length in bytes.
pub const HANDSHAKE_LEN: usize = 68;

/// Reserved bit of the extension protocol (BEP 10): byte 5, 0x10.
const EXTENDED: (usize, u8) = (5, 0x10);
/// Reserved bit of the Fast extension (BEP 6): byte 7, 0x04.
const FAST: (usize, u8) = (7, 0x04);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
}

impl Handshake {
    /// Our handshake: the Fast extension and the extension protocol offered.
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20]) -> Handshake {
        let mut reserved = [0u8; 8];
        reserved[EXTENDED.0] |= EXTENDED.1;
        reserved[FAST.0] |= FAST.1;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// The peer speaks the Fast extension (BEP 6): both sides must, for its messages.
    pub fn fast(&self) -> bool {
        self.reserved[FAST.0] & FAST.1 != 0
    }

    /// The peer speaks the extension protocol (BEP 10).
    pub fn extended(&self) -> bool {
        self.reserved[EXTENDED.0] & EXTENDED.1 != 0
    }

    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = PROTOCOL.len() as u8;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved);
        out[28..48].copy_from_slice(&self.info_hash);
        out[48..68].copy_from_slice(&self.peer_id);
        out
    }

    /// Reads a handshake from the start of `bytes`: `Ok(None)` while fewer than
    /// [`HANDSHAKE_LEN`] bytes have come (what has come is checked already, so a peer that
    /// speaks something else is told at once).
    pub fn parse(bytes: &[u8]) -> Result<Option<Handshake>, WireError> {
        let mut expected = [0u8; 20];
        expected[0] = PROTOCOL.len() as u8;
        expected[1..].copy_from_slice(PROTOCOL);
        let seen = bytes.len().min(20);
        if bytes[..seen] != expected[..seen] {
            return Err(WireError::NotBitTorrent);
        }
        let Some(rest) = bytes.get(20..HANDSHAKE_LEN) else {
            return Ok(None);
        };
        let mut h = Handshake {
            reserved: [0; 8],
            info_hash: [0; 20],
            peer_id: [0; 20],
        };
        h.reserved.copy_from_slice(&rest[..8]);
        h.info_hash.copy_from_slice(&rest[8..28]);
        h.peer_id.copy_from_slice(&rest[28..48]);
        Ok(Some(h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_round_trips_and_says_its_extensions() {
        let h = Handshake::new([1; 20], *b"-SP0001-abcdefghijkl");
        assert!(h.fast() && h.extended());
        let bytes = h.encode();
        assert_eq!(bytes[0], 19);
        assert_eq!(&bytes[1..20], PROTOCOL);
        assert_eq!(Handshake::parse(&bytes), Ok(Some(h)));
        let plain = Handshake {
            reserved: [0; 8],
            ..h
        };
        assert!(!plain.fast() && !plain.extended());
    }

    #[test]
    fn a_partial_handshake_waits_and_another_protocol_is_told_at_once() {
        let bytes = Handshake::new([1; 20], [2; 20]).encode();
        for n in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::parse(&bytes[..n]), Ok(None), "{n} bytes");
        }
        assert_eq!(
            Handshake::parse(b"GET / HTTP/1.1\r\n"),
            Err(WireError::NotBitTorrent)
        );
        assert_eq!(Handshake::parse(&[18]), Err(WireError::NotBitTorrent));
        let mut wrong = bytes;
        wrong[5] = b'x';
        assert_eq!(Handshake::parse(&wrong[..6]), Err(WireError::NotBitTorrent));
    }
}
