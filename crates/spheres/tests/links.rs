//! Links to a share (issue 16): anyone who has the address opens a page that plays the share
//! from the node, with no login and nothing installed, until the link is revoked or the share
//! taken back; the link opens that share and nothing else of the node.

mod common;

use common::node::{Node, range_get, raw_http, web_addr};
use common::write_random;

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer.lines().find_map(|l| {
        let (k, v) = l.split_once(": ")?;
        k.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[test]
fn a_link_plays_a_share_for_anyone_until_it_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    alice.cli(&["sphere", "create", "Family"]);
    let clip = alice.spheres.join("Family").join("holiday.webm");
    let data = write_random(&clip, 2_000_000, 61);
    alice.cli(&["share", "Family", clip.to_str().unwrap()]);
    let other = alice.spheres.join("Family").join("private-notes.txt");
    write_random(&other, 10_000, 62);
    let private = alice.cli(&["share", "Family", other.to_str().unwrap()]);

    // No link to a share that was never there, nor opening for no time at all.
    let why = alice.cli_fails(&["link", "create", "Family", "nothing.webm"]);
    assert!(why.contains("no share"), "{why}");
    let why = alice.cli_fails(&[
        "link",
        "create",
        "Family",
        "holiday.webm",
        "--expires",
        "0s",
    ]);
    assert!(why.contains("not a length of time"), "{why}");

    let link = alice.cli(&[
        "link",
        "create",
        "Family",
        "holiday.webm",
        "--expires",
        "7d",
    ]);
    assert_eq!(link["state"], "open", "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    let addr = web_addr(&alice);
    let path = url.split_once(&addr).unwrap().1.to_owned();
    let token = path.strip_prefix("/l/").unwrap().to_owned();
    assert_eq!(token.len(), 64, "a 256-bit token: {url}");

    // Anyone (no cookie, no password): a page that plays it, with no script and no referrer.
    let (code, page) = raw_http(&addr, ("GET", &path), &["Accept-Language: fr"], (0, b""));
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains(&format!(
            "<video controls preload=\"metadata\" src=\"/l/{token}/files/0\">"
        )),
        "{page}"
    );
    assert!(
        page.contains("holiday.webm") && page.contains("lang=\"fr\""),
        "{page}"
    );
    let policy = header(&page, "content-security-policy").unwrap_or_default();
    assert!(
        policy.contains("default-src 'none'") && !policy.contains("script-src"),
        "{policy}"
    );
    assert_eq!(header(&page, "referrer-policy"), Some("no-referrer"));
    // The video plays from any point.
    let (code, bytes) = range_get(&addr, &[], &format!("{path}/files/0"), "1000000-1000999");
    assert_eq!(code, 206);
    assert!(
        bytes == data[1_000_000..1_001_000],
        "the link plays other bytes"
    );

    // The link opens that share and nothing else: no other file index, not the node's own
    // streams, not its API.
    let (code, _) = range_get(&addr, &[], &format!("{path}/files/1"), "0-9");
    assert_eq!(code, 404);
    let other_hash = private["info_hash"].as_str().unwrap();
    let (code, _) = range_get(
        &addr,
        &[],
        &format!("/torrents/{other_hash}/files/0"),
        "0-9",
    );
    assert!(
        code == 401 || code == 403,
        "the node's stream opened without a login: {code}"
    );
    let (code, _) = raw_http(&addr, ("GET", "/api/links"), &[], (0, b""));
    assert!(
        code == 401 || code == 403,
        "the node's API opened without a login: {code}"
    );
    let made_up = format!("/l/{}", "0".repeat(64));
    let (code, page) = raw_http(&addr, ("GET", &made_up), &[], (0, b""));
    assert_eq!(code, 404);
    assert!(page.contains("No such link"), "{page}");

    let list = alice.cli(&["link", "list"]);
    assert_eq!(list[0]["url"], url.as_str(), "{list}");
    assert_eq!(list[0]["share"], "holiday.webm", "{list}");

    // A download under way stops when its link is revoked (it does not run to its end).
    let big = alice.spheres.join("Family").join("film.mkv");
    let size = 24_000_000;
    write_random(&big, size, 63);
    alice.cli(&["share", "Family", big.to_str().unwrap()]);
    let film = alice.cli(&["link", "create", "Family", "film.mkv"]);
    let film_url = film["url"].as_str().unwrap().to_owned();
    let film_path = film_url.split_once(&addr).unwrap().1.to_owned();
    let got = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
        write!(
            s,
            "GET {film_path}/files/0 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut first = vec![0u8; 65_536];
        let n = s.read(&mut first).unwrap();
        assert!(
            String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&first[..n.min(200)])
        );
        alice.cli(&["link", "revoke", &film_url]);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest); // cut short: an error or an early end
        n + rest.len()
    };
    assert!(
        got < size,
        "the whole film came through a revoked link ({got} bytes)"
    );

    // Revoked: a page that says so, and not a byte.
    let revoked = alice.cli(&["link", "revoke", &url]);
    assert_eq!(revoked["state"], "revoked", "{revoked}");
    let (code, page) = raw_http(&addr, ("GET", &path), &[], (0, b""));
    assert_eq!(code, 410);
    assert!(page.contains("This link was revoked"), "{page}");
    let (code, bytes) = range_get(&addr, &[], &format!("{path}/files/0"), "0-999");
    assert_eq!(code, 410);
    assert!(
        !bytes.windows(64).any(|w| w == &data[..64]),
        "a revoked link gave bytes"
    );

    // A share taken back: its links open nothing either.
    let second = alice.cli(&["link", "create", "Family", "holiday.webm"]);
    let second = second["url"]
        .as_str()
        .unwrap()
        .split_once(&addr)
        .unwrap()
        .1
        .to_owned();
    assert_eq!(raw_http(&addr, ("GET", &second), &[], (0, b"")).0, 200);
    alice.cli(&["take-back", "Family", "holiday.webm"]);
    let (code, page) = raw_http(&addr, ("GET", &second), &[], (0, b""));
    assert_eq!(code, 404);
    assert!(page.contains("No longer shared"), "{page}");
    let why = alice.cli_fails(&["link", "create", "Family", "holiday.webm"]);
    assert!(why.contains("taken back"), "{why}");
}
