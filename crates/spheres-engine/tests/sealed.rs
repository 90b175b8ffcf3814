//! Sealed shares (an encrypted sphere's): members' engines trade the share's bytes encrypted
//! under its key and keep them in clear on disk; a peer that has only the torrent (libtorrent,
//! which we did not write) gets the ciphertext and nothing else.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{engine, same_tree, share};
use spheres_engine::Open;
use spheres_metainfo::seal::Seal;
use spheres_metainfo::{CreateOptions, create_sealed};
use spheres_testkit::libtorrent::LtPeer;
use tokio::io::AsyncReadExt;

/// The share's files, one after the other, as they are on disk.
fn stream_of(view: &spheres_metainfo::Metainfo, root: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for f in &view.files {
        let p = f.path.iter().fold(root.to_owned(), |p, c| p.join(c));
        out.extend(std::fs::read(p).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_trade_a_sealed_share_and_a_stranger_gets_only_ciphertext() {
    let s = share(&[]);
    let seal = Seal::new(key());
    let opts = CreateOptions {
        piece_length: Some(32 * 1024),
        private: true,
        ..Default::default()
    };
    let made = create_sealed(&s.data, seal.clone(), &opts, &mut |_| {}).unwrap();
    let view = Arc::new(
        made.meta
            .with_layout(&made.name, &made.files, made.folder)
            .unwrap(),
    );
    let hash = view.info_hash.0;

    // The sharer seeds its files as they are.
    let seed = engine().await;
    let st = seed
        .add_sealed(
            view.clone(),
            s.data.parent().unwrap().to_owned(),
            Arc::new(Open),
            seal.clone(),
        )
        .await
        .unwrap();
    assert!(
        st.complete,
        "the sharer's files check against the sealed pieces"
    );

    // A member's engine, with the key: the files arrive in clear, the same.
    let member = engine().await;
    let out = s.dir.path().join("member");
    member
        .add_sealed(view.clone(), out.clone(), Arc::new(Open), seal.clone())
        .await
        .unwrap();
    member.connect(hash, seed.listen_addr()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), member.wait_complete(&hash)).await;
    assert!(matches!(done, Ok(Ok(()))), "{:?}", member.status(&hash));
    same_tree(&s.data, &out.join("album"));
    let st = member.status(&hash).unwrap();
    assert_eq!(st.hash_failures, 0, "{st:?}");
    // Its player reads the plaintext of a file.
    let mut reader = member.open_file(&hash, 0).unwrap();
    let mut first = Vec::new();
    reader.read_to_end(&mut first).await.unwrap();
    let name = view.files[0]
        .path
        .iter()
        .fold(s.data.clone(), |p, c| p.join(c));
    assert_eq!(first, std::fs::read(name).unwrap());

    // A stranger's client with the torrent (no key): the bytes it gets are the ciphertext.
    let torrent = s.dir.path().join("sealed.torrent");
    std::fs::write(&torrent, &made.torrent).unwrap();
    let lt_out = s.dir.path().join("stranger");
    let mut lt = LtPeer::leech(&torrent, &lt_out, &[seed.listen_addr()]);
    tokio::task::block_in_place(|| lt.wait_for("complete", Duration::from_secs(90)));
    let got = std::fs::read(lt_out.join("sealed")).unwrap();
    let plain = stream_of(&view, &s.data);
    assert_eq!(got.len(), plain.len());
    let mut expected = plain.clone();
    seal.apply(0, &mut expected);
    assert_eq!(
        got, expected,
        "the stranger's bytes are the encrypted stream"
    );
    // No run of 32 bytes of the plaintext shows in what it got.
    let runs: std::collections::HashSet<&[u8]> = plain.chunks(32).collect();
    assert!(
        !got.windows(32).any(|w| runs.contains(w)),
        "plaintext leaked"
    );

    // And the other way: libtorrent seeds the ciphertext it holds; a member decrypts it.
    let (_lt_seed, port) = tokio::task::block_in_place(|| LtPeer::seed(&torrent, &lt_out));
    let late = engine().await;
    let late_out = s.dir.path().join("late");
    late.add_sealed(view.clone(), late_out.clone(), Arc::new(Open), seal)
        .await
        .unwrap();
    late.connect(hash, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(60), late.wait_complete(&hash)).await;
    assert!(matches!(done, Ok(Ok(()))), "{:?}", late.status(&hash));
    same_tree(&s.data, &late_out.join("album"));
}

/// A share's key (any 32 bytes; the node draws them at random).
fn key() -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    k
}
