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

/// The answer to a request for block `b` of a torrent whose bytes are `all`.
fn piece_for(all: &[u8], piece_length: u64, b: spheres_wire::Block) -> Message {
    let start = (u64::from(b.piece) * piece_length + u64::from(b.begin)) as usize;
    Message::Piece {
        piece: b.piece,
        begin: b.begin,
        data: all[start..start + b.length as usize].to_vec(),
    }
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
                seed.send(piece_for(&all, pl, b)).await;
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
    // A bound, not a timing: as the other reads here (a loaded CI machine took over 10 s).
    tokio::time::timeout(BOUND * 6, r.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    let start = (f.offset + f.length / 2) as usize;
    assert!(got == all[start..start + 20_000]);
}

/// Two readers far apart in a large file: when the second one starts (a seek), the requests
/// standing between it and its data are cancelled, but not those the first reader waits for
/// (they were, before: a viewer's seek stalled the other viewers of the same file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_does_not_cancel_what_another_reader_waits_for() {
    // 160 pieces of 256 KiB: a reader's window (16 MiB) is 64 of them.
    let s = big_share(40 * 1024 * 1024, 256 * 1024);
    let hash = s.meta.info_hash.0;
    let e = engine().await;
    e.add(s.meta.clone(), s.dir.path().join("leech"), Arc::new(Open))
        .await
        .unwrap();
    // A reader polled once (its window set), handed back still waiting: on purpose.
    #[allow(clippy::async_yields_async)]
    let poll_once = |mut r: spheres_engine::FileReader, at: u64| async move {
        r.seek(SeekFrom::Start(at)).await.unwrap();
        let mut read = Box::pin(async move {
            let mut got = vec![0u8; 1000];
            r.read_exact(&mut got).await.unwrap();
        });
        // One poll: the reader says where it is, then waits.
        tokio::select! {
            biased;
            _ = &mut read => panic!("nothing is downloaded yet"),
            () = async {} => {}
        }
        read
    };
    // The first reader at 30 % (the file's first and last pieces are wanted first anyway,
    // whoever reads: not those), its window pieces 48 to 111.
    let len = s.meta.total_length;
    let a = (len * 3 / 10 / s.meta.piece_length) as u32;
    let first = poll_once(e.open_file(&hash, 0).unwrap(), len * 3 / 10).await;
    let (mut seed, _) = Raw::connect(e.listen_addr(), hash, "seed").await;
    seed.send(Message::HaveAll).await;
    seed.send(Message::Unchoke).await;
    let Message::Request(b) = seed.until(|m| matches!(m, Message::Request(_))).await else {
        unreachable!()
    };
    assert_eq!(b.piece, a, "the first reader's piece first: {b:?}");
    // The second reader, at 90 %.
    let far = (len * 9 / 10 / s.meta.piece_length) as u32;
    let second = poll_once(e.open_file(&hash, 0).unwrap(), len * 9 / 10).await;
    // The seed serves what the first reader asks for, until the second one's pieces are
    // asked for; it notes what is cancelled on the way.
    let all = std::fs::read(s.data.join("film.mp4")).unwrap();
    let pl = s.meta.piece_length;
    let mut cancelled = Vec::new();
    let mut next = Some(Message::Request(b));
    loop {
        match next.take() {
            Some(Message::Cancel(b)) => cancelled.push(b.piece),
            Some(Message::Request(b)) if b.piece >= far => break,
            Some(Message::Request(b)) => seed.send(piece_for(&all, pl, b)).await,
            _ => {}
        }
        next = Some(seed.next().await.expect("the engine closed the connection"));
    }
    assert!(
        cancelled.iter().all(|&p| p < a || p >= a + 64),
        "the first reader's requests were cancelled: {cancelled:?}"
    );
    drop((first, second));
    e.shutdown().await;
}
