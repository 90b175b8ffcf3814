//! A torrent from its info hash alone (a magnet link): the info dictionary fetched from peers
//! with the metadata exchange (BEP 9), piece by piece, and believed only if its SHA-1 is the
//! info hash. Peers come from those given and from the magnet's trackers.
//!
//! What a peer sends is bounded: a size of at most 8 MiB (the wire codec refuses more), each
//! piece exactly as long as its position says, a size that must not change between pieces;
//! a peer whose pieces do not hash to the info hash is dropped and its bytes with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sha1::{Digest, Sha1};
use spheres_metainfo::InfoHash;
use spheres_wire::{
    BLOCK, Decoder, ExtHandshake, Handshake, METADATA_PIECE, Message, MetadataMessage, UT_METADATA,
    metadata_pieces,
};
use tokio::io::AsyncWriteExt;

use crate::{Admission, Inner, Proving, read_handshake};

/// How long one peer has to give the whole info dictionary.
const PER_PEER: Duration = Duration::from_secs(30);
/// Peers asked at once.
const AT_ONCE: usize = 4;
/// The id under which we want to receive metadata messages.
const OURS: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] spheres_wire::WireError),
    #[error("the peer does not give metadata")]
    NoMetadata,
    #[error("the peer broke the metadata exchange: {0}")]
    Protocol(&'static str),
    #[error("the metadata the peer gave is not this torrent's (its hash differs)")]
    WrongHash,
    #[error("the peer took too long")]
    Timeout,
}

/// The pieces of an info dictionary of a known size as they come (pure).
#[derive(Debug)]
pub(crate) struct Assembler {
    size: u32,
    pieces: Vec<Option<Vec<u8>>>,
}

impl Assembler {
    pub fn new(size: u32) -> Assembler {
        Assembler {
            size,
            pieces: vec![None; metadata_pieces(size) as usize],
        }
    }

    pub fn len(&self) -> u32 {
        self.pieces.len() as u32
    }

    /// Takes piece `piece`; once the last is in, returns the whole dictionary if it hashes to
    /// `info_hash`.
    pub fn add(
        &mut self,
        piece: u32,
        total_size: u32,
        data: Vec<u8>,
        info_hash: &[u8; 20],
    ) -> Result<Option<Vec<u8>>, FetchError> {
        if total_size != self.size {
            return Err(FetchError::Protocol("the size changed"));
        }
        // The codec checked the length against the position and the total.
        let slot = self
            .pieces
            .get_mut(piece as usize)
            .ok_or(FetchError::Protocol("a piece past the end"))?;
        *slot = Some(data);
        if self.pieces.iter().any(Option::is_none) {
            return Ok(None);
        }
        let info: Vec<u8> = self.pieces.iter().flatten().flatten().copied().collect();
        let hash: [u8; 20] = Sha1::digest(&info).into();
        if &hash != info_hash {
            return Err(FetchError::WrongHash);
        }
        Ok(Some(info))
    }
}

/// The info dictionary of `info_hash` from one peer.
async fn from_peer(
    inner: &Inner,
    addr: SocketAddr,
    info_hash: [u8; 20],
    admission: &dyn Admission,
) -> Result<Vec<u8>, FetchError> {
    let mut conn = inner.transport.dial(addr).await?;
    conn.write_all(&Handshake::new(info_hash, inner.peer_id).encode())
        .await?;
    let theirs = read_handshake(&mut conn)
        .await
        .map_err(|_| FetchError::Protocol("no handshake"))?;
    if theirs.info_hash != info_hash || !theirs.extended() {
        return Err(FetchError::NoMetadata);
    }
    let mut out = Vec::new();
    if theirs.fast() {
        Message::HaveNone.encode(&mut out);
    }
    // A sphere's member proves it once it has the other side's nonce (members.rs).
    let our_nonce: [u8; 16] = rand::random();
    let ours = ExtHandshake {
        extensions: [(UT_METADATA.to_owned(), OURS)].into(),
        client: Some(concat!("spheres/", env!("CARGO_PKG_VERSION")).to_owned()),
        nonce: Some(our_nonce),
        ..Default::default()
    };
    Message::Extended {
        id: 0,
        payload: ours.encode(),
    }
    .encode(&mut out);
    conn.write_all(&out).await?;
    let mut proved = false;

    let mut decoder = Decoder::new(BLOCK.max(METADATA_PIECE) + 1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut assembler: Option<Assembler> = None;
    loop {
        let m = match decoder.next_message()? {
            Some(m) => m,
            None => {
                let n = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await?;
                if n == 0 {
                    return Err(FetchError::Protocol("closed"));
                }
                decoder.push(&buf[..n]);
                continue;
            }
        };
        match m {
            Message::Extended { id: 0, payload } if assembler.is_none() => {
                let h = ExtHandshake::parse(&payload)
                    .map_err(|_| FetchError::Protocol("a bad extended handshake"))?;
                if !proved
                    && let Some(their_nonce) = h.nonce
                    && let Some(proof) = admission.proof(&Proving {
                        info_hash,
                        from: inner.peer_id,
                        from_nonce: our_nonce,
                        to: theirs.peer_id,
                        to_nonce: their_nonce,
                    })
                {
                    // Its next extended handshake, once we are admitted, gives the size.
                    proved = true;
                    let mut out = Vec::new();
                    Message::Extended {
                        id: 0,
                        payload: ExtHandshake {
                            member_proof: Some(proof),
                            ..ours.clone()
                        }
                        .encode(),
                    }
                    .encode(&mut out);
                    conn.write_all(&out).await?;
                    continue;
                }
                // A member's node sends its proof, then the size once it admitted us.
                if proved && h.metadata_size.is_none() {
                    continue;
                }
                let (Some(id), Some(size)) = (h.id_of(UT_METADATA), h.metadata_size) else {
                    return Err(FetchError::NoMetadata);
                };
                let a = Assembler::new(size);
                let mut out = Vec::new();
                for piece in 0..a.len() {
                    Message::Extended {
                        id,
                        payload: MetadataMessage::Request { piece }.encode(),
                    }
                    .encode(&mut out);
                }
                conn.write_all(&out).await?;
                assembler = Some(a);
            }
            Message::Extended { id: OURS, payload } => {
                let Some(a) = assembler.as_mut() else {
                    continue;
                };
                match MetadataMessage::parse(&payload)
                    .map_err(|_| FetchError::Protocol("a bad metadata message"))?
                {
                    MetadataMessage::Data {
                        piece,
                        total_size,
                        data,
                    } => {
                        if let Some(info) = a.add(piece, total_size, data, &info_hash)? {
                            return Ok(info);
                        }
                    }
                    MetadataMessage::Reject { .. } => return Err(FetchError::NoMetadata),
                    MetadataMessage::Request { .. } => {}
                }
            }
            _ => {}
        }
    }
}

/// The info dictionary of `info_hash` from the first of `peers` (and of the peers `trackers`
/// give) that has it, within `deadline`.
pub(crate) async fn fetch(
    inner: Arc<Inner>,
    info_hash: [u8; 20],
    trackers: Vec<String>,
    mut peers: Vec<SocketAddr>,
    deadline: Duration,
    admission: Arc<dyn Admission>,
) -> Option<Vec<u8>> {
    let work = async {
        if !trackers.is_empty() {
            let http = inner.http.clone();
            let req = spheres_tracker::wire::AnnounceRequest {
                info_hash: InfoHash(info_hash),
                peer_id: inner.peer_id,
                port: inner.listen.port(),
                uploaded: 0,
                downloaded: 0,
                // Unknown yet; not zero, or we would count as a seed.
                left: 1,
                event: spheres_tracker::wire::Event::Started,
                numwant: Some(50),
                compact: true,
                no_peer_id: true,
                ip: None,
            };
            for url in &trackers {
                if let Ok(answer) = crate::announce::announce_one(&http, url, &req).await {
                    peers.extend(answer.peers);
                }
            }
        }
        peers.retain(|p| *p != inner.listen);
        peers.dedup();
        let mut tries = tokio::task::JoinSet::new();
        let mut queue = peers.into_iter();
        loop {
            while tries.len() < AT_ONCE {
                let Some(addr) = queue.next() else { break };
                let inner = inner.clone();
                let admission = admission.clone();
                tries.spawn(async move {
                    let r = tokio::time::timeout(
                        PER_PEER,
                        from_peer(&inner, addr, info_hash, admission.as_ref()),
                    )
                    .await
                    .unwrap_or(Err(FetchError::Timeout));
                    (addr, r)
                });
            }
            let (addr, result) = tries.join_next().await?.ok()?;
            match result {
                Ok(info) => return Some(info),
                Err(e) => tracing::debug!(peer = %addr, error = %e, "no metadata from this peer"),
            }
        }
    };
    tokio::time::timeout(deadline, work).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_believed_only_whole_and_with_its_hash() {
        let info: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let hash: [u8; 20] = Sha1::digest(&info).into();
        let mut a = Assembler::new(40_000);
        assert_eq!(a.len(), 3);
        let piece = |p: usize| info[p * 16384..((p + 1) * 16384).min(info.len())].to_vec();
        assert!(a.add(2, 40_000, piece(2), &hash).unwrap().is_none());
        assert!(a.add(0, 40_000, piece(0), &hash).unwrap().is_none());
        assert!(matches!(
            a.add(1, 39_999, piece(1), &hash),
            Err(FetchError::Protocol(_))
        ));
        assert_eq!(
            a.add(1, 40_000, piece(1), &hash).unwrap(),
            Some(info.clone())
        );
        let mut b = Assembler::new(40_000);
        b.add(0, 40_000, piece(0), &[0; 20]).unwrap();
        b.add(1, 40_000, piece(1), &[0; 20]).unwrap();
        assert!(matches!(
            b.add(2, 40_000, piece(2), &[0; 20]),
            Err(FetchError::WrongHash)
        ));
        assert!(matches!(
            b.add(9, 40_000, vec![], &[0; 20]),
            Err(FetchError::Protocol(_))
        ));
    }
}
