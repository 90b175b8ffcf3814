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

    // The sphere is encrypted: its share goes to browsers through the page only, never as a
    // torrent of its ciphertext, a web seed or a swarm.
    for (what, range) in [("torrent", None), ("seed", Some("0-9")), ("tracker", None)] {
        let (code, answer) = match range {
            Some(r) => range_get(&addr, &[], &format!("{path}/{what}"), r),
            None => {
                let upgrade = [
                    "Connection: close, Upgrade",
                    "Upgrade: websocket",
                    "Sec-WebSocket-Version: 13",
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                ];
                let (code, page) = raw_http(
                    &addr,
                    ("GET", &format!("{path}/{what}")),
                    &upgrade,
                    (0, b""),
                );
                (code, page.into_bytes())
            }
        };
        let answer = String::from_utf8_lossy(&answer);
        assert_eq!(code, 404, "{what}: {answer}");
        assert!(answer.contains("end-to-end encrypted"), "{what}: {answer}");
    }

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

/// A real photo (ffmpeg draws it), so the node can make its thumbnail.
fn photo(path: &std::path::Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let ok = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc=size=1600x1200")
        .args(["-frames:v", "1", "-q:v", "2"])
        .arg(path)
        .status()
        .expect("ffmpeg is installed (scripts/install-test-deps)");
    assert!(ok.success());
}

/// The pass a `Set-Cookie` answer gives, as a `Cookie:` header line.
fn pass_of(answer: &str) -> String {
    let set = header(answer, "set-cookie").expect("a pass");
    format!("Cookie: {}", set.split(';').next().unwrap())
}

fn form(addr: &str, path: &str, password: &str, cookie: &[&str]) -> (u16, String) {
    let body = format!("password={password}");
    let mut headers = vec!["Content-Type: application/x-www-form-urlencoded"];
    headers.extend_from_slice(cookie);
    raw_http(
        addr,
        ("POST", path),
        &headers,
        (body.len(), body.as_bytes()),
    )
}

/// Python's zipfile (not ours) opens an archive and checks every file's CRC: name, content.
fn unzipped(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.zip");
    std::fs::write(&path, zip).unwrap();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             assert z.testzip() is None\n\
             for i in z.infolist(): print(i.filename + '\\t' + z.read(i).hex())",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, hex) = l.split_once('\t').unwrap();
            (name.to_owned(), hex::decode(hex).unwrap())
        })
        .collect()
}

/// Attack: a stranger who has the address but not the password, or who comes after as many
/// browsers as the link allows, gets nothing (no page, no file, no thumbnail, no archive);
/// a pass of one link opens no other. With the password: a gallery of the photos and the
/// whole folder as a zip that another implementation reads back.
#[test]
fn a_guarded_link_asks_its_password_counts_browsers_and_zips_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    alice.cli(&["sphere", "create", "Family"]);
    let lyon = alice.spheres.join("Family").join("Lyon");
    photo(&lyon.join("fourvière.jpg"));
    let notes = write_random(&lyon.join("notes/jour 1.txt"), 70_000, 64);
    alice.cli(&["share", "Family", lyon.to_str().unwrap()]);
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "bouchon lyonnais\n").unwrap();
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let why = alice.cli_fails(&[
        "link",
        "create",
        "Family",
        "Lyon",
        "--password-file",
        short.to_str().unwrap(),
    ]);
    assert!(why.contains("at least 6 characters"), "{why}");

    let link = alice.cli(&[
        "link",
        "create",
        "Family",
        "Lyon",
        "--password-file",
        pw.to_str().unwrap(),
        "--downloads",
        "2",
    ]);
    assert_eq!(
        (link["password"].as_bool(), link["max_opens"].as_u64()),
        (Some(true), Some(2)),
        "{link}"
    );
    let addr = web_addr(&alice);
    let path = link["url"]
        .as_str()
        .unwrap()
        .split_once(&addr)
        .unwrap()
        .1
        .to_owned();

    // Without the password: a form, and nothing of the share.
    let (code, page) = raw_http(&addr, ("GET", &path), &[], (0, b""));
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("needs a password") && page.contains("<form method=\"post\""),
        "{page}"
    );
    assert!(
        !page.contains("fourvière") && !page.contains("/files/"),
        "{page}"
    );
    for what in ["files/0", "files/1", "thumbs/0", "zip"] {
        let (code, body) = range_get(&addr, &[], &format!("{path}/{what}"), "0-");
        assert_eq!(code, 403, "{what} without a pass");
        assert!(
            !body.windows(32).any(|w| w == &notes[..32]),
            "{what} gave bytes"
        );
    }
    let (code, page) = form(&addr, &path, "bouchon", &[]);
    assert_eq!(code, 403);
    assert!(
        page.contains("not the password") && header(&page, "set-cookie").is_none(),
        "{page}"
    );
    // A forged pass is no pass.
    let forged = "Cookie: spheres_pass=00.00";
    assert_eq!(
        range_get(&addr, &[forged], &format!("{path}/zip"), "0-").0,
        403
    );

    // The right password (the form sends spaces as '+'): a pass for this link's path.
    let (code, answer) = form(&addr, &path, "bouchon+lyonnais", &[]);
    assert_eq!(code, 303, "{answer}");
    let set = header(&answer, "set-cookie").unwrap();
    assert!(
        set.contains(&format!("Path={path};")) && set.contains("HttpOnly"),
        "{set}"
    );
    let first = pass_of(&answer);
    let (code, page) = raw_http(&addr, ("GET", &path), &[&first], (0, b""));
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("class=\"album-grid\"") && page.contains("class=\"lightbox\""),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"{path}/zip\" download")),
        "{page}"
    );
    // The photo's thumbnail: a small JPEG made by the node.
    let index = if page.contains(&format!("{path}/thumbs/0")) {
        0
    } else {
        1
    };
    let (code, thumb) = range_get(&addr, &[&first], &format!("{path}/thumbs/{index}"), "0-");
    assert_eq!(code, 200);
    assert!(thumb.starts_with(&[0xff, 0xd8]), "not a JPEG");
    let full = std::fs::metadata(lyon.join("fourvière.jpg")).unwrap().len();
    assert!(
        (thumb.len() as u64) < full,
        "the thumbnail is the photo itself"
    );

    // The whole folder as one zip, which Python opens and checks.
    let (code, zip) = range_get(&addr, &[&first], &format!("{path}/zip"), "0-");
    assert_eq!(code, 200);
    let files = unzipped(&zip);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"Lyon/notes/jour 1.txt") && names.contains(&"Lyon/fourvière.jpg"),
        "{names:?}"
    );
    let got = files
        .iter()
        .find(|(n, _)| n.ends_with("jour 1.txt"))
        .unwrap();
    assert!(got.1 == notes, "the archive holds other bytes");

    // Another link of the same share, with no password: this pass is not its pass, and its
    // page opens without one.
    let open = alice.cli(&["link", "create", "Family", "Lyon", "--downloads", "1"]);
    let open_path = open["url"]
        .as_str()
        .unwrap()
        .split_once(&addr)
        .unwrap()
        .1
        .to_owned();
    let cross = first.replace("Cookie: ", "Cookie: x=1; ");
    assert_eq!(
        range_get(&addr, &[&cross], &format!("{open_path}/zip"), "0-").0,
        403,
        "a pass opened another link"
    );
    // Looking at the page counts nobody (a link preview, a prefetch, a HEAD): its button does.
    let (code, page) = raw_http(&addr, ("GET", &open_path), &[], (0, b""));
    assert_eq!(code, 200);
    assert!(
        page.contains("<form method=\"post\"") && header(&page, "set-cookie").is_none(),
        "{page}"
    );
    assert_eq!(raw_http(&addr, ("HEAD", &open_path), &[], (0, b"")).0, 200);
    let (code, answer) = form(&addr, &open_path, "", &[]);
    assert_eq!(code, 303, "counted, and in: {answer}");
    let counted = pass_of(&answer);
    assert_eq!(
        range_get(&addr, &[&counted], &format!("{open_path}/files/0"), "0-0").0,
        206
    );
    // The second browser of a one-browser link: nothing.
    let (code, page) = raw_http(&addr, ("GET", &open_path), &[], (0, b""));
    assert_eq!(code, 410);
    assert!(page.contains("as many times as it allows"), "{page}");
    assert_eq!(form(&addr, &open_path, "", &[]).0, 410);
    assert_eq!(
        range_get(&addr, &[&counted], &format!("{open_path}/files/0"), "0-0").0,
        206,
        "the first one still reads"
    );

    // The password link's second browser is counted; its third is not, even with the password.
    let (code, _) = form(&addr, &path, "bouchon+lyonnais", &[]);
    assert_eq!(code, 303);
    let (code, page) = form(&addr, &path, "bouchon+lyonnais", &[]);
    assert_eq!(code, 410, "{page}");
    let list = alice.cli(&["link", "list"]);
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["password"] == true)
        .unwrap();
    assert_eq!(mine["opens"], 2, "{list}");

    // Guessing: after a few wrong passwords from one address, even the right one waits.
    let guessed = alice.cli(&[
        "link",
        "create",
        "Family",
        "Lyon",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    let guessed = guessed["url"]
        .as_str()
        .unwrap()
        .split_once(&addr)
        .unwrap()
        .1
        .to_owned();
    let mut codes = Vec::new();
    for i in 0..6 {
        codes.push(form(&addr, &guessed, &format!("guess{i}"), &[]).0);
    }
    assert_eq!(codes, [403, 403, 403, 403, 403, 429], "{codes:?}");
    let (code, page) = form(&addr, &guessed, "bouchon+lyonnais", &[]);
    assert_eq!(code, 429);
    assert!(
        page.contains("Too many wrong passwords") && header(&page, "retry-after").is_some(),
        "{page}"
    );
    // ...on that link only.
    assert_eq!(raw_http(&addr, ("GET", &path), &[&first], (0, b"")).0, 200);
}

/// WebTorrent, the real client (its browser build from npm), opens a link in Chromium: the
/// first browser reads the link's torrent and gets the share from the node as a web seed
/// (BEP 19, through CORS, padding files and all); the second has only a magnet naming the
/// link's tracker, so every byte it gets comes from the first over WebRTC, which it found
/// through our WebSocket tracker. Both hold the files as they are on the node. The script:
/// tests/browser/webtorrent.mjs.
#[test]
fn webtorrent_browsers_get_a_link_from_the_node_and_from_each_other() {
    for tool in ["node", "/usr/bin/chromium"] {
        common::require(tool);
    }
    let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        browser_dir
            .join("node_modules/.webtorrent/webtorrent.min.js")
            .is_file(),
        "WebTorrent's browser build is not here: run scripts/install-test-deps"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    alice.cli(&["sphere", "create", "Family", "--open"]);
    let lyon = alice.spheres.join("Family").join("Lyon");
    let files = [
        (
            "Lyon/vidéo.webm",
            write_random(&lyon.join("vidéo.webm"), 1_500_000, 71),
        ),
        (
            "Lyon/notes/jour 1.txt",
            write_random(&lyon.join("notes/jour 1.txt"), 300_001, 72),
        ),
    ];
    alice.cli(&["share", "Family", lyon.to_str().unwrap()]);
    // A link served by the node only: a page with no script, no torrent, tracker or seed.
    let direct = alice.cli(&["link", "create", "Family", "Lyon", "--no-p2p"]);
    assert_eq!(direct["direct"], true, "{direct}");
    let addr = web_addr(&alice);
    let direct_path = direct["url"]
        .as_str()
        .unwrap()
        .split_once(&addr)
        .unwrap()
        .1
        .to_owned();
    let (code, page) = raw_http(&addr, ("GET", &direct_path), &[], (0, b""));
    assert_eq!(code, 200, "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(page.contains("nobody else sees your address"), "{page}");
    let upgrade = [
        "Connection: close, Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    ];
    for route in ["torrent", "seed", "tracker"] {
        let headers: &[&str] = if route == "tracker" { &upgrade } else { &[] };
        let (code, page) = raw_http(
            &addr,
            ("GET", &format!("{direct_path}/{route}")),
            headers,
            (0, b""),
        );
        assert_eq!(code, 404, "{route}: {page}");
        assert!(
            page.contains("served by the sender's node only"),
            "{route}: {page}"
        );
    }

    let link = alice.cli(&["link", "create", "Family", "Lyon"]);
    let url = link["url"].as_str().unwrap().to_owned();
    let hash = link["info_hash"].as_str().unwrap().to_owned();
    // Its page runs our modules (and says what sharing with other viewers shows them).
    let path = url.split_once(&addr).unwrap().1.to_owned();
    let (code, page) = raw_http(&addr, ("GET", &path), &[], (0, b""));
    assert_eq!(code, 200, "{page}");
    // Our script runs by its nonce (new at each page), not by its origin, where a share's
    // own .js files are served too.
    let policy = header(&page, "content-security-policy").unwrap().to_owned();
    let nonce = policy
        .split_once("'nonce-")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(n, _)| n.to_owned())
        .unwrap_or_else(|| panic!("no nonce: {policy}"));
    assert_eq!(nonce.len(), 32, "{policy}");
    assert!(
        policy.contains("'strict-dynamic'") && !policy.contains("unsafe"),
        "{policy}"
    );
    assert!(!policy.contains("script-src 'self'"), "{policy}");
    assert!(
        page.contains(&format!(
            "<script type=\"module\" nonce=\"{nonce}\" src=\"/ui/link/viewer.js\">"
        )),
        "{page}"
    );
    assert!(page.contains("they can see your IP address"), "{page}");
    let tracker = format!("ws{}/tracker", url.strip_prefix("http").unwrap());
    let encoded: String = tracker
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let magnet = format!("magnet:?xt=urn:btih:{hash}&tr={encoded}");

    let mut cmd = std::process::Command::new("node");
    cmd.arg(browser_dir.join("webtorrent.mjs"))
        .env("TORRENT", format!("{url}/torrent"))
        .env("MAGNET", &magnet);
    let mut wt = common::Proc::spawn("webtorrent browsers", cmd);
    let sha = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    for stage in ["first_done", "second_done"] {
        let got = wt
            .try_wait_event(stage)
            .unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(got["infoHash"], hash.as_str(), "{got}");
        for (path, data) in &files {
            assert_eq!(
                got["files"][path],
                sha(data).as_str(),
                "{stage}: {path} differs: {got}"
            );
        }
        if stage == "second_done" {
            assert!(got["from"]["webrtc"].as_u64().unwrap_or(0) > 0, "{got}");
            assert!(
                got["from"]["webSeed"].is_null(),
                "a magnet has no web seed: {got}"
            );
        } else {
            assert!(got["from"]["webSeed"].as_u64().unwrap_or(0) > 0, "{got}");
        }
    }
    assert!(wt.wait_exit(), "the WebTorrent test failed: {:?}", wt.seen);
}

/// A link's viewers share with each other, through our page's own modules (ui/link/), in
/// Chromium, each in a profile of its own: the first gets the share from the node; the
/// second and third get most of theirs from the viewers before them (each page counts where
/// its bytes came from); the video plays through the page's service worker; WebTorrent (the
/// real client, its web seed blocked) gets the share from our viewers alone; and our page,
/// with the node's files blocked to it, gets it from WebTorrent alone. The script:
/// tests/browser/link-p2p.mjs.
#[test]
fn a_links_viewers_share_with_each_other_and_with_webtorrent() {
    for tool in ["node", "/usr/bin/chromium", "ffmpeg"] {
        common::require(tool);
    }
    let browser_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Node::new(dir.path(), "alice");
    alice.start(&["--user", "alice", "--domain", "family.test"]);
    alice.cli(&["sphere", "create", "Family", "--open"]);
    let film = alice.spheres.join("Family").join("Film");
    std::fs::create_dir_all(&film).unwrap();
    let clip = film.join("clip.webm");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=4:size=320x240:rate=25",
        ])
        .args(["-c:v", "libvpx", "-b:v", "400k", "-y"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg made no video");
    let clip_bytes = std::fs::read(&clip).unwrap();
    let data = write_random(&film.join("data.bin"), 12_000_000, 81);
    alice.cli(&["share", "Family", film.to_str().unwrap()]);
    let link = alice.cli(&["link", "create", "Family", "Film"]);
    assert_eq!(link["direct"], false, "{link}");
    let url = link["url"].as_str().unwrap().to_owned();

    let mut cmd = std::process::Command::new("node");
    cmd.arg(browser_dir.join("link-p2p.mjs"))
        .env("LINK", &url)
        .env("TORRENT", format!("{url}/torrent"));
    let mut run = common::Proc::spawn("link viewers", cmd);
    let sha = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    let want = serde_json::json!({"Film/clip.webm": sha(&clip_bytes), "Film/data.bin": sha(&data)});
    let size = (clip_bytes.len() + data.len()) as f64;
    let mut from_viewers = 0.0;
    let mut from_node = 0.0;
    for stage in ["one", "two", "three"] {
        let got = run
            .try_wait_event(stage)
            .unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(got["digests"], want, "{stage}: {got}");
        let peers = got["status"]["fromPeers"].as_f64().unwrap();
        let node = got["status"]["fromNode"].as_f64().unwrap();
        assert!(
            peers + node >= size,
            "{stage} got less than the share: {got}"
        );
        if stage == "one" {
            assert_eq!(peers, 0.0, "nobody was there before the first: {got}");
        } else {
            from_viewers += peers;
            from_node += node;
        }
    }
    // Most of what the later viewers got came from the viewers before them.
    assert!(
        from_viewers > 2.0 * from_node,
        "the later viewers got {from_viewers} bytes from viewers and {from_node} from the node"
    );
    let played = run
        .try_wait_event("played")
        .unwrap_or_else(|why| panic!("{why}"));
    assert_eq!(played["width"], 320, "{played}");
    assert_eq!(played["controlled"], true, "{played}");
    let wt = run
        .try_wait_event("webtorrent_got")
        .unwrap_or_else(|why| panic!("{why}"));
    assert_eq!(wt["digests"], want, "{wt}");
    assert_eq!(
        wt["from"]["webSeed"].as_u64().unwrap_or(0),
        0,
        "its web seed was blocked: {wt}"
    );
    assert!(wt["from"]["webrtc"].as_f64().unwrap_or(0.0) >= size, "{wt}");
    let four = run
        .try_wait_event("four")
        .unwrap_or_else(|why| panic!("{why}"));
    assert_eq!(four["digests"], want, "{four}");
    assert_eq!(
        four["status"]["fromNode"], 0,
        "the node's files were blocked: {four}"
    );
    assert!(run.wait_exit(), "the viewers' test failed: {:?}", run.seen);
}
