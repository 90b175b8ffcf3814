//! Peers found through trackers: ours over HTTP and over UDP (with a key in the path, as the
//! node's private trackers have it), and libtorrent finding our seed through the tracker our
//! seed announced to.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use spheres_engine::{Engine, EngineConfig, Open};
use spheres_testkit::libtorrent::LtPeer;
use spheres_tracker::KeyScope;

/// The share's torrent announcing to `trackers` only (one tier each).
fn with_trackers(s: &Share, trackers: &[String]) -> Arc<spheres_metainfo::Metainfo> {
    let bytes = std::fs::read(&s.torrent).unwrap();
    let bytes = spheres_metainfo::with_trackers(&bytes, trackers).unwrap();
    Arc::new(spheres_metainfo::Metainfo::from_bytes(&bytes).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_meet_through_http_and_udp_trackers() {
    let tr = tracker(true).await;
    tr.tracker.grant_key("seedkey", KeyScope::AllTorrents);
    tr.tracker.grant_key("leechkey", KeyScope::AllTorrents);
    let http = tr.http_announce_url(Some("seedkey")).unwrap();
    let s = share(&[http]);
    let _seed = announced_seeder(&s).await;
    let hash = s.meta.info_hash.0;
    // The leech knows only a UDP tracker, with its own key.
    let udp = tr.udp_announce_url(Some("leechkey")).unwrap();
    let e = engine().await;
    e.add(
        with_trackers(&s, &[udp]),
        s.dir.path().join("udp"),
        Arc::new(Open),
    )
    .await
    .unwrap();
    completes(&e, &s).await;
    same_tree(&s.data, &s.dir.path().join("udp/album"));

    // A key the tracker does not know: refused, and the refusal is reported.
    // Given its tracker after it was added (as the node does when a key arrives).
    let stranger = engine().await;
    let mut events = stranger.subscribe();
    stranger
        .add(
            with_trackers(&s, &[]),
            s.dir.path().join("no"),
            Arc::new(Open),
        )
        .await
        .unwrap();
    stranger
        .set_trackers(
            &hash,
            vec![vec![tr.http_announce_url(Some("wrong")).unwrap()]],
        )
        .unwrap();
    let refused = tracker_error(&mut events, BOUND * 3).await;
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(stranger.status(&hash).unwrap().have, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_finds_our_seed_through_the_tracker() {
    let tr = tracker(false).await;
    let s = share(&[tr.http_announce_url(None).unwrap()]);
    let _seed = announced_seeder(&s).await;
    assert_eq!(tr.tracker.peer_count(&s.meta.info_hash), 1);
    let out = s.dir.path().join("lt");
    let mut lt = LtPeer::leech(&s.torrent, &out, &[]);
    tokio::task::block_in_place(|| lt.wait_for("complete", Duration::from_secs(90)));
    same_tree(&s.data, &out.join("album"));
}

/// A test authority and a certificate it signed for 127.0.0.1, made with openssl: (the
/// authority's PEM, the certificate's, its key's).
fn test_ca(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let s = |p: &std::path::Path| p.display().to_string();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let (ca, ca_key, csr, cert, key, ext) = (
        p("ca.pem"),
        p("ca.key"),
        p("leaf.csr"),
        p("leaf.pem"),
        p("leaf.key"),
        p("leaf.ext"),
    );
    let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=spheres test CA"];
    args.extend(ec);
    let (ca_s, ca_key_s) = (s(&ca), s(&ca_key));
    args.extend(["-keyout", &ca_key_s, "-out", &ca_s]);
    run(&args);
    let mut args = vec!["req", "-subj", "/CN=127.0.0.1"];
    args.extend(ec);
    let (csr_s, key_s, cert_s, ext_s) = (s(&csr), s(&key), s(&cert), s(&ext));
    args.extend(["-keyout", &key_s, "-out", &csr_s]);
    run(&args);
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &csr_s,
        "-CA",
        &ca_s,
        "-CAkey",
        &ca_key_s,
        "-CAcreateserial",
        "-extfile",
        &ext_s,
        "-out",
        &cert_s,
    ]);
    [ca, cert, key]
}

/// A process killed when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Our tracker behind a TLS front we did not write (socat with OpenSSL): a seed and a leech
/// that trust its authority meet through it; an engine that does not trust it is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_tracker_brings_peers_and_an_untrusted_one_is_refused() {
    let tr = tracker(false).await;
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = test_ca(dir.path());
    // socat takes the port from its arguments: one free now, and waited for below.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _front = Killed(
        std::process::Command::new("socat")
            .arg(format!(
                "OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={},key={},verify=0",
                cert.display(),
                key.display()
            ))
            .arg(format!("TCP:{}", tr.http_addr.unwrap()))
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("socat: run scripts/install-test-deps"),
    );
    let deadline = std::time::Instant::now() + BOUND;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(std::time::Instant::now() < deadline, "socat did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("https://127.0.0.1:{port}/announce");
    let s = share(&[url]);
    let trusting = || {
        Engine::start(EngineConfig {
            tracker_ca: Some(ca.clone()),
            ..Default::default()
        })
    };

    let seed = trusting().await.unwrap();
    let mut events = seed.subscribe();
    seed_on(&seed, &s).await;
    announced(&mut events).await;
    let leech = trusting().await.unwrap();
    leech
        .add(s.meta.clone(), s.dir.path().join("leech"), Arc::new(Open))
        .await
        .unwrap();
    completes(&leech, &s).await;
    same_tree(&s.data, &s.dir.path().join("leech/album"));

    // Trusting only the system's authorities: the tracker's certificate is refused, and said.
    let wary = engine().await;
    let mut events = wary.subscribe();
    wary.add(s.meta.clone(), s.dir.path().join("wary"), Arc::new(Open))
        .await
        .unwrap();
    let error = tracker_error(&mut events, BOUND * 2).await;
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(wary.status(&s.meta.info_hash.0).unwrap().peers, 0);
}
