//! Files read while they download: a reader gets the right bytes from any position, the
//! pieces it needs are asked for first, many readers at once, and a file left aside is
//! fetched when it is read.

mod common;

use std::io::SeekFrom;
use std::sync::Arc;

use common::*;
use spheres_engine::Open;
use spheres_wire::Message;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// The torrent's bytes, all files end to end (the share's files in torrent order).
fn torrent_bytes(s: &Share) -> Vec<u8> {
    let mut all = Vec::new();
    for (i, _) in s.meta.files.iter().enumerate() {
        let path = s
            .data
            .parent()
            .unwrap()
            .join(s.meta.relative_path(i).unwrap());
        all.extend(std::fs::read(path).unwrap());
    }
    all
}

/// A seed we drive by hand sees what the engine asks for first: the piece under the
/// reader, wherever it reads (here at 80 % of the file), before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pieces_a_reader_needs_are_asked_for_first() {
    let s = share(&[]);
    let all = torrent_bytes(&s);
    let hash = s.meta.info_hash.0;
    let e = engine().await;
    e.add(s.meta.clone(), s.dir.path().join("leech"), Arc::new(Open))
        .await
        .unwrap();
    let file = &s.meta.files[0];
    assert_eq!(file.path, ["a", "holiday.mp4"]);
    let mut reader = e.open_file(&hash, 0).unwrap();
    assert_eq!(reader.len(), file.length);
    let at = file.length * 8 / 10;
    reader.seek(SeekFrom::Start(at)).await.unwrap();
    let mut got = vec![0u8; 50_000];
    let mut read = Box::pin(async move {
        reader.read_exact(&mut got).await.unwrap();
        got
    });
    // One poll: the reader says where it is, then waits for its piece.
    tokio::select! {
        biased;
        _ = &mut read => panic!("nothing is downloaded yet"),
        () = async {} => {}
    }

    let (mut seed, _) = Raw::connect(e.listen_addr(), hash, "seed").await;
    seed.send(Message::HaveAll).await;
    seed.send(Message::Unchoke).await;
    let pl = s.meta.piece_length;
    let wanted = ((file.offset + at) / pl) as u32;
    let first = seed.until(|m| matches!(m, Message::Request(_))).await;
    let Message::Request(b) = first else {
        unreachable!()
    };
    assert_eq!(
        b.piece,
        wanted,
        "the reader's piece first (of {})",
        s.meta.piece_count()
    );
    // Serve whatever it asks for, until the read is done.
    let serve = async {
        let mut next = Some(first);
        loop {
            if let Some(Message::Request(b)) = next {
                let start = (u64::from(b.piece) * pl + u64::from(b.begin)) as usize;
                seed.send(Message::Piece {
                    piece: b.piece,
                    begin: b.begin,
                    data: all[start..start + b.length as usize].to_vec(),
                })
                .await;
            }
            next = seed.next().await;
        }
    };
    let got = tokio::select! {
        got = read => got,
        () = serve => unreachable!(),
    };
    let start = (file.offset + at) as usize;
    assert!(got == all[start..start + 50_000], "the bytes at 80 %");
}

/// 32 readers at once, anywhere in every file, while the download runs: all right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_readers_read_right_while_it_downloads() {
    let s = share(&[]);
    let all = torrent_bytes(&s);
    let hash = s.meta.info_hash.0;
    let seed = seeder(&s).await;
    let e = engine().await;
    e.add(s.meta.clone(), s.dir.path().join("leech"), Arc::new(Open))
        .await
        .unwrap();
    let mut readers = Vec::new();
    for i in 0..32u64 {
        let index = (i % 3) as usize;
        let f = &s.meta.files[index];
        let mut r = e.open_file(&hash, index).unwrap();
        let at = f.length * (i * 37 % 100) / 100;
        let n = (f.length - at).min(40_000) as usize;
        let expect = all[(f.offset + at) as usize..(f.offset + at) as usize + n].to_vec();
        readers.push(tokio::spawn(async move {
            r.seek(SeekFrom::Start(at)).await.unwrap();
            let mut got = vec![0u8; n];
            r.read_exact(&mut got).await.unwrap();
            assert!(got == expect, "reader {i}: file {index} at {at}");
            // Past the end: nothing, not an error.
            r.seek(SeekFrom::End(0)).await.unwrap();
            assert_eq!(r.read(&mut [0u8; 10]).await.unwrap(), 0);
        }));
    }
    e.connect(hash, seed.listen_addr()).unwrap();
    for r in readers {
        tokio::time::timeout(BOUND * 6, r).await.unwrap().unwrap();
    }
    // One reader reads a whole file.
    let mut whole = Vec::new();
    e.open_file(&hash, 2)
        .unwrap()
        .read_to_end(&mut whole)
        .await
        .unwrap();
    let f = &s.meta.files[2];
    assert!(whole == all[f.offset as usize..(f.offset + f.length) as usize]);
}

/// A file the policy left aside is not downloaded; reading it fetches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_aside_is_fetched_when_it_is_read() {
    let s = share(&[]);
    let all = torrent_bytes(&s);
    let hash = s.meta.info_hash.0;
    let seed = seeder(&s).await;
    let e = engine().await;
    let out = s.dir.path().join("leech");
    e.add(s.meta.clone(), out.clone(), Arc::new(Open))
        .await
        .unwrap();
    e.want_file(&hash, 0, false).unwrap();
    e.connect(hash, seed.listen_addr()).unwrap();
    completes(&e, &s).await;
    let st = e.status(&hash).unwrap();
    assert!(st.have < st.pieces, "the big file was left aside: {st:?}");
    assert!(
        std::fs::read(out.join("album/c.txt")).unwrap()
            == std::fs::read(s.data.join("c.txt")).unwrap()
    );

    let f = &s.meta.files[0];
    let mut r = e.open_file(&hash, 0).unwrap();
    r.seek(SeekFrom::Start(f.length / 2)).await.unwrap();
    let mut got = vec![0u8; 20_000];
    tokio::time::timeout(BOUND, r.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    let start = (f.offset + f.length / 2) as usize;
    assert!(got == all[start..start + 20_000]);
}
