//! The tracker over real sockets: HTTP and UDP announces and scrapes, private keys, revocation,
//! and garbage that must not take it down.

use std::net::SocketAddr;
use std::time::Duration;

use spheres_metainfo::InfoHash;
use spheres_metainfo::bencode;
use spheres_tracker::wire::{self, AnnounceRequest, Event};
use spheres_tracker::{KeyScope, TrackerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const HASH: InfoHash = InfoHash([0x5a; 20]);

fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

async fn http_get(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    raw[split + 4..].to_vec()
}

async fn http_announce(
    addr: SocketAddr,
    key: Option<&str>,
    peer: u8,
    port: u16,
    left: u64,
) -> Vec<u8> {
    let prefix = key.map(|k| format!("/{k}")).unwrap_or_default();
    http_get(
        addr,
        &format!(
            "{prefix}/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}&compact=1&event=started",
            escape(&HASH.0),
            escape(&[peer; 20])
        ),
    )
    .await
}

fn peers_of(body: &[u8]) -> Vec<SocketAddr> {
    let v =
        bencode::decode(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
    let d = v.as_dict().unwrap();
    if let Some(f) = d.get(b"failure reason") {
        panic!("failure: {:?}", f);
    }
    wire::parse_compact_peers(d.get(b"peers").unwrap().as_bytes().unwrap(), false)
}

fn failure_of(body: &[u8]) -> String {
    let v = bencode::decode(body).unwrap();
    String::from_utf8_lossy(
        v.as_dict()
            .unwrap()
            .get(b"failure reason")
            .expect("a failure")
            .as_bytes()
            .unwrap(),
    )
    .into_owned()
}

/// A leecher's UDP announce for HASH (peer 3, port 3333).
fn udp_leecher() -> AnnounceRequest {
    AnnounceRequest {
        info_hash: HASH,
        peer_id: [3; 20],
        port: 3333,
        uploaded: 0,
        downloaded: 0,
        left: 10,
        event: Event::Started,
        numwant: None,
        compact: true,
        no_peer_id: true,
        ip: None,
    }
}

async fn udp_roundtrip(sock: &UdpSocket, packet: &[u8]) -> Vec<u8> {
    sock.send(packet).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .expect("UDP answer")
        .unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn http_announce_and_scrape() {
    let t = spheres_tracker::start(
        TrackerConfig::default(),
        Some("127.0.0.1:0".parse().unwrap()),
        None,
    )
    .await
    .unwrap();
    let addr = t.http_addr.unwrap();
    assert!(peers_of(&http_announce(addr, None, 1, 1111, 0).await).is_empty());
    let peers = peers_of(&http_announce(addr, None, 2, 2222, 100).await);
    assert_eq!(peers, vec!["127.0.0.1:1111".parse::<SocketAddr>().unwrap()]);
    let scrape = http_get(addr, &format!("/scrape?info_hash={}", escape(&HASH.0))).await;
    let v = bencode::decode(&scrape).unwrap();
    let files = v
        .as_dict()
        .unwrap()
        .get(b"files")
        .unwrap()
        .as_dict()
        .unwrap();
    let entry = files.get(&HASH.0).unwrap().as_dict().unwrap();
    assert_eq!(entry.get(b"complete").unwrap().as_int(), Some(1));
    assert_eq!(entry.get(b"incomplete").unwrap().as_int(), Some(1));
    // Malformed requests get a bencoded failure, and the tracker keeps working.
    assert!(failure_of(&http_get(addr, "/announce?info_hash=short").await).contains("info_hash"));
    assert!(failure_of(&http_get(addr, "/announce").await).contains("missing"));
    // A seeder hears of the leecher first, then of the other seeder.
    let peers = peers_of(&http_announce(addr, None, 3, 3333, 0).await);
    assert_eq!(
        peers,
        vec![
            "127.0.0.1:2222".parse::<SocketAddr>().unwrap(),
            "127.0.0.1:1111".parse().unwrap()
        ]
    );
}

#[tokio::test]
async fn private_keys_over_http_and_udp_until_revoked() {
    let config = TrackerConfig {
        private: true,
        ..Default::default()
    };
    let t = spheres_tracker::start(
        config,
        Some("127.0.0.1:0".parse().unwrap()),
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    t.tracker.grant_key("alice-key", KeyScope::AllTorrents);
    t.tracker.grant_torrent("bob-key", HASH);
    let http = t.http_addr.unwrap();

    assert!(failure_of(&http_announce(http, None, 1, 1111, 0).await).contains("needs a key"));
    assert!(
        failure_of(&http_announce(http, Some("mallory"), 1, 1111, 0).await).contains("unknown")
    );
    assert!(peers_of(&http_announce(http, Some("alice-key"), 1, 1111, 0).await).is_empty());
    assert_eq!(
        peers_of(&http_announce(http, Some("bob-key"), 2, 2222, 50).await).len(),
        1
    );

    // UDP, with the key as BEP 41 URL data.
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(t.udp_addr.unwrap()).await.unwrap();
    let conn = udp_roundtrip(&sock, &wire::udp_connect_request(77)).await;
    assert_eq!(&conn[..8], &[0, 0, 0, 0, 0, 0, 0, 77]);
    let connection_id = u64::from_be_bytes(conn[8..16].try_into().unwrap());
    let req = udp_leecher();
    let ok = udp_roundtrip(
        &sock,
        &wire::udp_announce_request(connection_id, 5, &req, Some("/bob-key/announce")),
    )
    .await;
    assert_eq!(
        u32::from_be_bytes(ok[..4].try_into().unwrap()),
        1,
        "not an announce answer"
    );
    let peers = wire::parse_compact_peers(&ok[20..], false);
    assert_eq!(peers.len(), 2);
    let refused = udp_roundtrip(
        &sock,
        &wire::udp_announce_request(connection_id, 6, &req, None),
    )
    .await;
    assert_eq!(
        u32::from_be_bytes(refused[..4].try_into().unwrap()),
        3,
        "expected an error"
    );
    let forged = udp_roundtrip(
        &sock,
        &wire::udp_announce_request(connection_id ^ 1, 7, &req, Some("/bob-key/announce")),
    )
    .await;
    assert_eq!(u32::from_be_bytes(forged[..4].try_into().unwrap()), 3);

    // Revoked: from now on, nothing.
    assert!(t.tracker.revoke_key("bob-key"));
    assert!(
        failure_of(&http_announce(http, Some("bob-key"), 2, 2222, 50).await).contains("revoked")
    );
    let after = udp_roundtrip(
        &sock,
        &wire::udp_announce_request(connection_id, 8, &req, Some("/bob-key/announce")),
    )
    .await;
    assert_eq!(u32::from_be_bytes(after[..4].try_into().unwrap()), 3);

    // Garbage datagrams are ignored, and the tracker still answers afterwards.
    for junk in [
        &b""[..],
        b"\x00",
        &[0xff; 300],
        &wire::udp_connect_request(1)[..15],
    ] {
        sock.send(junk).await.unwrap();
    }
    let again = udp_roundtrip(&sock, &wire::udp_connect_request(78)).await;
    assert_eq!(&again[4..8], &78u32.to_be_bytes());
}

/// BEP 7: a peer that announces over IPv6 is handed out in `peers6`, and a UDP request over
/// IPv6 gets 18-byte entries.
#[tokio::test]
async fn ipv6_peers_over_http_and_udp() {
    // A machine without IPv6 loopback fails here, saying so, rather than passing untested.
    let probe = std::net::UdpSocket::bind("[::1]:0");
    assert!(
        probe.is_ok(),
        "this test needs IPv6 loopback (::1): {probe:?}"
    );
    drop(probe);
    let t = spheres_tracker::start(
        TrackerConfig::default(),
        Some("[::1]:0".parse().unwrap()),
        Some("[::1]:0".parse().unwrap()),
    )
    .await
    .unwrap();
    let http = t.http_addr.unwrap();
    http_announce(http, None, 1, 1111, 0).await;
    let body = http_announce(http, None, 2, 2222, 10).await;
    let v = bencode::decode(&body).unwrap();
    let peers6 = v
        .as_dict()
        .unwrap()
        .get(b"peers6")
        .expect("peers6")
        .as_bytes()
        .unwrap();
    assert_eq!(
        wire::parse_compact_peers(peers6, true),
        vec!["[::1]:1111".parse::<SocketAddr>().unwrap()]
    );

    let sock = UdpSocket::bind("[::1]:0").await.unwrap();
    sock.connect(t.udp_addr.unwrap()).await.unwrap();
    let conn = udp_roundtrip(&sock, &wire::udp_connect_request(1)).await;
    let connection_id = u64::from_be_bytes(conn[8..16].try_into().unwrap());
    let req = udp_leecher();
    let answer = udp_roundtrip(
        &sock,
        &wire::udp_announce_request(connection_id, 2, &req, None),
    )
    .await;
    let peers = wire::parse_compact_peers(&answer[20..], true);
    assert_eq!(peers.len(), 2);
    assert!(peers.iter().all(|p| p.is_ipv6()));
}
