//! Our wire codec against libtorrent (Debian's python3-libtorrent, a client we did not write):
//! a real seeder, our handshake and messages, every block of every piece asked for, each piece
//! checked against the torrent's hashes, the whole file compared byte for byte.
//! (The other direction, libtorrent fetching from us, is tested in spheres-engine.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sha1::{Digest, Sha1};
use spheres_metainfo::{CreateOptions, create_torrent};
use spheres_wire::{BLOCK, Block, Decoder, Handshake, Message};

/// The next message from the peer (reading only what completes it).
fn next(stream: &mut TcpStream, decoder: &mut Decoder) -> Message {
    loop {
        if let Some(m) = decoder
            .next_message()
            .expect("libtorrent sent something we could not read")
        {
            if let Message::Extended { payload, .. } = &m {
                eprintln!("got ext {}", String::from_utf8_lossy(payload));
            } else {
                eprintln!("got {m:?}");
            }
            return m;
        }
        let mut buf = vec![0u8; decoder.wants().max(1)];
        let n = stream
            .read(&mut buf)
            .expect("libtorrent did not answer in time");
        assert!(n > 0, "libtorrent closed the connection");
        decoder.push(&buf[..n]);
    }
}

fn send(stream: &mut TcpStream, m: Message) {
    let mut out = Vec::new();
    m.encode(&mut out);
    stream.write_all(&out).unwrap();
}

#[test]
fn a_libtorrent_seeder_gives_us_every_piece() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    // Several blocks per piece, and a short last piece with a short last block.
    let file = data_dir.join("holiday.bin");
    let data = spheres_testkit::write_random(&file, 700_001, 11);
    let (torrent, meta) = create_torrent(
        &file,
        &CreateOptions {
            piece_length: Some(64 * 1024),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let torrent_path = dir.path().join("holiday.torrent");
    std::fs::write(&torrent_path, &torrent).unwrap();
    let (_seeder, port) = spheres_testkit::libtorrent::LtPeer::seed(&torrent_path, &data_dir);

    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let ours = Handshake::new(meta.info_hash.0, *b"-SP0001-wiretest0001");
    stream.write_all(&ours.encode()).unwrap();
    let mut theirs = [0u8; 68];
    stream.read_exact(&mut theirs).unwrap();
    let theirs = Handshake::parse(&theirs)
        .unwrap()
        .expect("a whole handshake");
    assert_eq!(theirs.info_hash, meta.info_hash.0);
    assert!(theirs.fast(), "libtorrent speaks the Fast extension");
    // With the Fast extension on both sides, the first message says what we have.
    send(&mut stream, Message::HaveNone);
    send(&mut stream, Message::Interested);

    let pieces = meta.piece_count();
    let mut decoder = Decoder::new(BLOCK + 13);
    let mut has_all = false;
    loop {
        match next(&mut stream, &mut decoder) {
            Message::HaveAll => has_all = true,
            Message::Bitfield(bits) => {
                has_all = (0..pieces).all(|i| bits[i / 8] & (0x80 >> (i % 8)) != 0)
            }
            Message::Unchoke => break,
            _ => {}
        }
    }
    assert!(has_all, "the seeder says it has every piece");

    // Every block of every piece at once (libtorrent queues hundreds).
    let mut asked = 0;
    for piece in 0..pieces {
        let len = meta.piece_len(piece) as u32;
        for begin in (0..len).step_by(BLOCK as usize) {
            let block = Block {
                piece: piece as u32,
                begin,
                length: BLOCK.min(len - begin),
            };
            send(&mut stream, Message::Request(block));
            asked += 1;
        }
    }
    let mut got = vec![0u8; meta.total_length as usize];
    let mut received = 0;
    while received < asked {
        if let Message::Piece { piece, begin, data } = next(&mut stream, &mut decoder) {
            let at = piece as usize * meta.piece_length as usize + begin as usize;
            got[at..at + data.len()].copy_from_slice(&data);
            received += 1;
        }
    }
    for piece in 0..pieces {
        let start = piece * meta.piece_length as usize;
        let end = start + meta.piece_len(piece) as usize;
        let hash: [u8; 20] = Sha1::digest(&got[start..end]).into();
        assert_eq!(hash, meta.piece_hashes[piece], "piece {piece}");
    }
    assert!(got == data, "the file came byte for byte");
}
