//! The messages after the handshake: a 4-byte big-endian length, then an id and a payload
//! (BEP 3), or nothing (keep-alive). Ids 13 to 17 are the Fast extension's (BEP 6), 20 the
//! extension protocol's envelope (BEP 10), 21 to 23 BitTorrent v2's hash exchange (BEP 52).

use crate::WireError;

/// The block size every client requests (16 KiB); a request for more is refused by most.
pub const BLOCK: u32 = 16 * 1024;

/// A block of a piece: `length` bytes at `begin` in piece `piece`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Block {
    pub piece: u32,
    pub begin: u32,
    pub length: u32,
}

/// Hashes of a v2 file's merkle tree (BEP 52), the file named by its root: `length` hashes of
/// layer `base_layer` (0: the 16 KiB leaves) from `index`, and `proof_layers` layers of the
/// uncle hashes that tie them to the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRange {
    pub pieces_root: [u8; 32],
    pub base_layer: u32,
    pub index: u32,
    pub length: u32,
    pub proof_layers: u32,
}

impl HashRange {
    fn parse(p: &[u8]) -> HashRange {
        let mut pieces_root = [0u8; 32];
        pieces_root.copy_from_slice(&p[..32]);
        HashRange {
            pieces_root,
            base_layer: u32_at(p, 32),
            index: u32_at(p, 36),
            length: u32_at(p, 40),
            proof_layers: u32_at(p, 44),
        }
    }

    fn bytes(&self) -> [u8; 48] {
        let mut x = [0u8; 48];
        x[..32].copy_from_slice(&self.pieces_root);
        for (i, v) in [self.base_layer, self.index, self.length, self.proof_layers]
            .into_iter()
            .enumerate()
        {
            x[32 + 4 * i..36 + 4 * i].copy_from_slice(&v.to_be_bytes());
        }
        x
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have {
        piece: u32,
    },
    /// One bit per piece, high bit first; the spare bits of the last byte are zero.
    Bitfield(Vec<u8>),
    Request(Block),
    Piece {
        piece: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel(Block),
    /// The sender's DHT port (BEP 5).
    Port(u16),
    /// BEP 6.
    Suggest {
        piece: u32,
    },
    HaveAll,
    HaveNone,
    Reject(Block),
    AllowedFast {
        piece: u32,
    },
    /// BEP 10: `id` 0 is the extended handshake, others are the ids it agreed.
    Extended {
        id: u8,
        payload: Vec<u8>,
    },
    /// BEP 52: "send me these hashes".
    HashRequest(HashRange),
    /// BEP 52: the hashes asked for, then the proof layers' uncle hashes.
    Hashes {
        range: HashRange,
        hashes: Vec<[u8; 32]>,
    },
    /// BEP 52: "I will not send you those hashes".
    HashReject(HashRange),
    /// A message this version does not know: skipped, as BEP 3 asks.
    Unknown {
        id: u8,
    },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

impl Message {
    /// Reads one message's body (after its length): `body` is the id and the payload.
    fn parse(body: &[u8]) -> Result<Message, WireError> {
        let Some((&id, payload)) = body.split_first() else {
            return Ok(Message::KeepAlive);
        };
        let len = body.len() as u32;
        let exactly = |n: usize| {
            if payload.len() == n {
                Ok(())
            } else {
                Err(WireError::BadLength { id, len })
            }
        };
        let block = |p: &[u8]| Block {
            piece: u32_at(p, 0),
            begin: u32_at(p, 4),
            length: u32_at(p, 8),
        };
        Ok(match id {
            0 => exactly(0).map(|_| Message::Choke)?,
            1 => exactly(0).map(|_| Message::Unchoke)?,
            2 => exactly(0).map(|_| Message::Interested)?,
            3 => exactly(0).map(|_| Message::NotInterested)?,
            4 => exactly(4).map(|_| Message::Have {
                piece: u32_at(payload, 0),
            })?,
            5 => Message::Bitfield(payload.to_vec()),
            6 => exactly(12).map(|_| Message::Request(block(payload)))?,
            7 => {
                if payload.len() < 8 {
                    return Err(WireError::BadLength { id, len });
                }
                Message::Piece {
                    piece: u32_at(payload, 0),
                    begin: u32_at(payload, 4),
                    data: payload[8..].to_vec(),
                }
            }
            8 => exactly(12).map(|_| Message::Cancel(block(payload)))?,
            9 => exactly(2).map(|_| Message::Port(u16::from_be_bytes([payload[0], payload[1]])))?,
            13 => exactly(4).map(|_| Message::Suggest {
                piece: u32_at(payload, 0),
            })?,
            14 => exactly(0).map(|_| Message::HaveAll)?,
            15 => exactly(0).map(|_| Message::HaveNone)?,
            16 => exactly(12).map(|_| Message::Reject(block(payload)))?,
            17 => exactly(4).map(|_| Message::AllowedFast {
                piece: u32_at(payload, 0),
            })?,
            20 => {
                let Some((&ext, rest)) = payload.split_first() else {
                    return Err(WireError::BadLength { id, len });
                };
                Message::Extended {
                    id: ext,
                    payload: rest.to_vec(),
                }
            }
            21 => exactly(48).map(|_| Message::HashRequest(HashRange::parse(payload)))?,
            22 => {
                if payload.len() < 48 || (payload.len() - 48) % 32 != 0 {
                    return Err(WireError::BadLength { id, len });
                }
                Message::Hashes {
                    range: HashRange::parse(payload),
                    hashes: payload[48..]
                        .chunks_exact(32)
                        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
                        .collect(),
                }
            }
            23 => exactly(48).map(|_| Message::HashReject(HashRange::parse(payload)))?,
            other => Message::Unknown { id: other },
        })
    }

    /// Appends the message, with its length, to `out`. (`Unknown` writes nothing: it is
    /// only ever read.)
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut simple = |id: u8, payload: &[&[u8]]| {
            let len: usize = 1 + payload.iter().map(|p| p.len()).sum::<usize>();
            out.extend_from_slice(&(len as u32).to_be_bytes());
            out.push(id);
            for p in payload {
                out.extend_from_slice(p);
            }
        };
        let blk = |b: &Block| {
            let mut x = [0u8; 12];
            x[..4].copy_from_slice(&b.piece.to_be_bytes());
            x[4..8].copy_from_slice(&b.begin.to_be_bytes());
            x[8..].copy_from_slice(&b.length.to_be_bytes());
            x
        };
        match self {
            Message::KeepAlive => out.extend_from_slice(&[0, 0, 0, 0]),
            Message::Choke => simple(0, &[]),
            Message::Unchoke => simple(1, &[]),
            Message::Interested => simple(2, &[]),
            Message::NotInterested => simple(3, &[]),
            Message::Have { piece } => simple(4, &[&piece.to_be_bytes()]),
            Message::Bitfield(bits) => simple(5, &[bits]),
            Message::Request(b) => simple(6, &[&blk(b)]),
            Message::Piece { piece, begin, data } => {
                simple(7, &[&piece.to_be_bytes(), &begin.to_be_bytes(), data])
            }
            Message::Cancel(b) => simple(8, &[&blk(b)]),
            Message::Port(port) => simple(9, &[&port.to_be_bytes()]),
            Message::Suggest { piece } => simple(13, &[&piece.to_be_bytes()]),
            Message::HaveAll => simple(14, &[]),
            Message::HaveNone => simple(15, &[]),
            Message::Reject(b) => simple(16, &[&blk(b)]),
            Message::AllowedFast { piece } => simple(17, &[&piece.to_be_bytes()]),
            Message::Extended { id, payload } => simple(20, &[&[*id], payload]),
            Message::HashRequest(r) => simple(21, &[&r.bytes()]),
            Message::Hashes { range, hashes } => {
                let flat: Vec<u8> = hashes.iter().flatten().copied().collect();
                simple(22, &[&range.bytes(), &flat])
            }
            Message::HashReject(r) => simple(23, &[&r.bytes()]),
            Message::Unknown { .. } => {}
        }
    }
}

/// Reads messages out of the bytes a peer sends, as they come, in any cuts.
///
/// Bounded: a length above the maximum given to [`Decoder::new`] is refused as soon as its
/// four bytes are in, before anything of it is kept. A driver that reads at most
/// [`Decoder::wants`] bytes at a time never holds more than one message; one that reads in
/// chunks of N bytes holds at most N and one message.
///
/// Messages are read in place: bytes already read are dropped in one move once they are
/// half the buffer, not one move per message (a chunk of 16 blocks would otherwise be
/// moved 16 times).
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Where the unread bytes start in `buf`.
    start: usize,
    max: u32,
}

impl Decoder {
    /// `max_message`: the longest message accepted (id and payload), e.g. a block and its
    /// header, or a torrent's bitfield if that is longer.
    pub fn new(max_message: u32) -> Decoder {
        Decoder {
            buf: Vec::new(),
            start: 0,
            max: max_message,
        }
    }

    /// Changes the longest message accepted from now on (a peer's limit grows once it is
    /// admitted: before, every peer gets the same one, so a refusal says nothing of the
    /// torrent's size).
    pub fn set_max(&mut self, max_message: u32) {
        self.max = max_message;
    }

    /// Bytes from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Bytes held, not yet read as a message.
    pub fn buffered(&self) -> usize {
        self.unread().len()
    }

    /// How many more bytes complete what is being read (the length, then the message).
    pub fn wants(&self) -> usize {
        match self.unread().get(..4) {
            None => 4 - self.unread().len(),
            Some(len) => {
                (4 + u32_at(len, 0).min(self.max) as usize).saturating_sub(self.unread().len())
            }
        }
    }

    /// The next whole message, `Ok(None)` until one is in. An error ends the connection.
    pub fn next_message(&mut self) -> Result<Option<Message>, WireError> {
        let Some(len) = self.unread().get(..4).map(|l| u32_at(l, 0)) else {
            return Ok(None);
        };
        if len > self.max {
            return Err(WireError::TooLong { len, max: self.max });
        }
        let total = 4 + len as usize;
        if self.unread().len() < total {
            return Ok(None);
        }
        let message = Message::parse(&self.unread()[4..total]);
        self.start += total;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        message.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Message> {
        let b = Block {
            piece: 7,
            begin: BLOCK,
            length: BLOCK,
        };
        vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have { piece: 0xdead_beef },
            Message::Bitfield(vec![0b1010_0000]),
            Message::Bitfield(vec![]),
            Message::Request(b),
            Message::Piece {
                piece: 1,
                begin: 2,
                data: vec![9; 100],
            },
            Message::Piece {
                piece: 1,
                begin: 2,
                data: vec![],
            },
            Message::Cancel(b),
            Message::Port(6881),
            Message::Suggest { piece: 3 },
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(b),
            Message::AllowedFast { piece: 4 },
            Message::Extended {
                id: 0,
                payload: b"d1:md11:ut_metadatai1eee".to_vec(),
            },
            Message::HashRequest(range()),
            Message::Hashes {
                range: range(),
                hashes: vec![[1; 32], [2; 32], [3; 32]],
            },
            Message::HashReject(range()),
        ]
    }

    fn range() -> HashRange {
        HashRange {
            pieces_root: [0xab; 32],
            base_layer: 1,
            index: 4,
            length: 2,
            proof_layers: 1,
        }
    }

    /// Every message reads back as written, whatever the cuts the network makes.
    #[test]
    fn every_message_round_trips_in_any_cut() {
        let mut bytes = Vec::new();
        for m in all() {
            m.encode(&mut bytes);
        }
        for cut in [1usize, 2, 3, 5, 7, 13, 64, bytes.len()] {
            let mut d = Decoder::new(BLOCK + 13);
            let mut got = Vec::new();
            for chunk in bytes.chunks(cut) {
                d.push(chunk);
                while let Some(m) = d.next_message().unwrap() {
                    got.push(m);
                }
            }
            assert_eq!(got, all(), "in chunks of {cut}");
            assert_eq!(d.buffered(), 0);
        }
    }

    /// The well-known bytes of BEP 3, so both sides agree with other clients, not just with
    /// themselves.
    #[test]
    fn messages_are_the_bytes_bep_3_says() {
        let enc = |m: Message| {
            let mut v = Vec::new();
            m.encode(&mut v);
            v
        };
        assert_eq!(enc(Message::KeepAlive), [0, 0, 0, 0]);
        assert_eq!(enc(Message::Interested), [0, 0, 0, 1, 2]);
        assert_eq!(
            enc(Message::Have { piece: 258 }),
            [0, 0, 0, 5, 4, 0, 0, 1, 2]
        );
        assert_eq!(
            enc(Message::Request(Block {
                piece: 1,
                begin: 0x4000,
                length: 0x4000
            })),
            [0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
        );
        assert_eq!(enc(Message::HaveAll), [0, 0, 0, 1, 14]);
        assert_eq!(
            enc(Message::Extended {
                id: 3,
                payload: vec![b'x']
            }),
            [0, 0, 0, 3, 20, 3, b'x']
        );
        // BEP 52: root, base layer, index, length, proof layers.
        let mut req = vec![0, 0, 0, 49, 21];
        req.extend([0xab; 32]);
        req.extend([0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 1]);
        assert_eq!(enc(Message::HashRequest(range())), req);
        // A hashes message whose hashes are not whole 32-byte hashes is refused.
        let mut bad = vec![0, 0, 0, 50, 22];
        bad.extend([0u8; 49]);
        let mut d = Decoder::new(1024);
        d.push(&bad);
        assert!(d.next_message().is_err());
    }

    /// Attack: a peer announces a message of 4 GiB. It is refused when its length arrives,
    /// before anything is kept; wrong lengths of fixed-size messages are refused too, and an
    /// unknown id is skipped with its payload.
    #[test]
    fn lengths_are_checked_before_anything_is_kept() {
        let mut d = Decoder::new(BLOCK + 13);
        d.push(&u32::MAX.to_be_bytes());
        assert_eq!(
            d.next_message(),
            Err(WireError::TooLong {
                len: u32::MAX,
                max: BLOCK + 13
            })
        );
        for (id, len) in [
            (0u8, 2u32),
            (4, 4),
            (6, 12),
            (9, 2),
            (14, 3),
            (20, 1),
            (7, 5),
        ] {
            let mut d = Decoder::new(64);
            d.push(&len.to_be_bytes());
            d.push(&[id]);
            d.push(&vec![0; len as usize - 1]);
            assert_eq!(
                d.next_message(),
                Err(WireError::BadLength { id, len }),
                "id {id}"
            );
        }
        let mut d = Decoder::new(64);
        d.push(&[0, 0, 0, 3, 99, 1, 2]);
        Message::HaveNone.encode(&mut d.buf);
        assert_eq!(d.next_message(), Ok(Some(Message::Unknown { id: 99 })));
        assert_eq!(d.next_message(), Ok(Some(Message::HaveNone)));
    }

    /// A driver that reads what `wants` says never holds more than one message.
    #[test]
    fn wants_never_asks_past_one_message() {
        let mut bytes = Vec::new();
        Message::Piece {
            piece: 0,
            begin: 0,
            data: vec![1; 1000],
        }
        .encode(&mut bytes);
        Message::Choke.encode(&mut bytes);
        let mut d = Decoder::new(2000);
        assert_eq!(d.wants(), 4);
        let mut at = 0;
        let mut got = Vec::new();
        while at < bytes.len() {
            let n = d.wants().min(bytes.len() - at);
            d.push(&bytes[at..at + n]);
            at += n;
            assert!(d.buffered() <= 4 + 9 + 1000);
            if let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Message::Choke);
    }
}
