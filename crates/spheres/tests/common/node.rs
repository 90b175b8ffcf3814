//! The node as tests drive it: `spheres up` processes with their own data and spheres
//! folders, their CLI, and the household most tests start from (alice runs the household
//! server and owns "Family"; bob has an account on it).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};

use super::{Proc, TIMEOUT, spheres, wait_until};

/// One node: its data folder, its spheres folder, its process.
pub struct Node {
    pub name: String,
    pub data: PathBuf,
    pub spheres: PathBuf,
    pub proc: Option<Proc>,
    pub extra: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the web interface listens (a fixed port survives a restart).
    pub http: String,
    /// The network namespace the node and its CLI run in (a computer of a simulated home).
    pub netns: Option<String>,
}

impl Node {
    pub fn new(root: &Path, name: &str) -> Node {
        Node {
            name: name.to_owned(),
            data: root.join(name).join("data"),
            spheres: root.join(name).join("Spheres"),
            proc: None,
            extra: Vec::new(),
            env: Vec::new(),
            http: "127.0.0.1:0".into(),
            netns: None,
        }
    }

    /// The `spheres` command, in the node's network namespace if it has one.
    fn command(&self) -> std::process::Command {
        match &self.netns {
            None => spheres(),
            Some(ns) => {
                let plain = spheres();
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns]).arg(plain.get_program());
                for (k, v) in plain.get_envs() {
                    if let Some(v) = v {
                        c.env(k, v);
                    }
                }
                c
            }
        }
    }

    /// A node on an account of the test's Prosody.
    pub fn on(root: &Path, name: &str, s: &ManagedProsody) -> Node {
        Node::on_server(root, name, (s.domain(), s.c2s_addr(), &s.ca_file()))
    }

    /// A node on the account `NAME@DOMAIN` (password `NAME-secret`) of a server of the test's
    /// that takes clients at `c2s` with a certificate from `ca`.
    pub fn on_server(
        root: &Path,
        name: &str,
        (domain, c2s, ca): (&str, std::net::SocketAddr, &Path),
    ) -> Node {
        let mut n = Node::new(root, name);
        n.extra = vec![
            "--jid".into(),
            format!("{name}@{domain}"),
            "--xmpp-server".into(),
            c2s.to_string(),
            "--xmpp-ca".into(),
            ca.to_string_lossy().into_owned(),
        ];
        n.env = vec![("SPHERES_PASSWORD".into(), format!("{name}-secret"))];
        n
    }

    pub fn start(&mut self, more: &[&str]) -> Value {
        let mut cmd = self.command();
        cmd.arg("--json")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("up")
            .args(["--http", &self.http, "--spheres-dir"])
            .arg(&self.spheres)
            .args(&self.extra)
            .args(more);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut p = Proc::spawn(&self.name, cmd);
        let running = p.wait_event("running");
        self.proc = Some(p);
        running
    }

    /// Stops the node cleanly (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
            assert!(p.wait_exit(), "{} did not stop cleanly", self.name);
        }
    }

    /// `kill -9`: no chance to tidy up.
    pub fn crash(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Runs a CLI command against this node; returns its JSON result.
    pub fn cli(&self, args: &[&str]) -> Value {
        let out = self
            .command()
            .arg("--json")
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .expect("run spheres");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}: spheres {args:?} failed: {}{}",
            self.name,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null)
    }

    /// The same, expected to fail; returns stderr.
    pub fn cli_fails(&self, args: &[&str]) -> String {
        let out = self
            .command()
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .expect("run spheres");
        assert!(
            !out.status.success(),
            "{}: spheres {args:?} should fail",
            self.name
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// What the node's process printed so far (its JSON lines), for a failure report.
    pub fn report(&mut self) -> String {
        match &mut self.proc {
            Some(p) => p.report(),
            None => format!("{}: not running", self.name),
        }
    }

    pub fn share_state(&self, sphere: &str, name: &str) -> Option<Value> {
        let list = self.cli(&["shares", sphere]);
        list.as_array()?.iter().find(|s| s["name"] == name).cloned()
    }
}

/// The post `id` in `n`'s feed, if it is there.
pub fn in_feed(n: &Node, id: &str) -> Option<Value> {
    n.cli(&["feed"])
        .as_array()?
        .iter()
        .find(|p| p["id"] == id)
        .cloned()
}

/// Polls `cond` (every 100 ms) until it holds; panics after `TIMEOUT` naming `what`.
pub fn wait_seeding(n: &Node, sphere: &str, name: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let state = n.share_state(sphere, name);
        if state.as_ref().is_some_and(|s| s["state"] == "seeding") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {} to have {name}; last seen: {state:?}; status: {}",
            n.name,
            n.cli(&["status"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A raw HTTP GET on loopback; returns the body.
pub fn http_get(url: &str) -> Vec<u8> {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    resp[split + 4..].to_vec()
}

/// Announces to `announce` for `info_hash` (hex) and says whether the tracker refused.
pub fn tracker_refuses(announce: &str, info_hash: &str) -> bool {
    let raw: Vec<u8> = (0..20)
        .map(|i| u8::from_str_radix(&info_hash[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let escaped: String = raw.iter().map(|b| format!("%{b:02X}")).collect();
    let url = format!(
        "{announce}?info_hash={escaped}&peer_id=-XX0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=0&compact=1"
    );
    let body = http_get(&url);
    body.windows(14).any(|w| w == b"failure reason")
}

pub fn announce_of(n: &Node, sphere: &str) -> Option<String> {
    n.cli(&["sphere", "list"])
        .as_array()?
        .iter()
        .find(|s| s["name"] == sphere)?["announce"]
        .as_str()
        .map(str::to_owned)
}

/// Alice's node runs the household server (nothing configured) and has made the sphere
/// "Family" and an account for bob, whose node runs too; bob is not invited yet.
pub fn household(dir: &Path) -> (Node, Node) {
    let (alice, bob) = household_nodes(dir, &[]);
    alice.cli(&["sphere", "create", "Family"]);
    (alice, bob)
}

/// Alice's household node and bob's node (started with `bob_args`), no sphere yet.
pub fn household_nodes(dir: &Path, bob_args: &[&str]) -> (Node, Node) {
    let mut alice = Node::new(dir, "alice");
    let running = alice.start(&["--user", "alice", "--domain", "family.test"]);
    assert_eq!(
        running["jid"], "alice@family.test",
        "the owner's account is created"
    );
    let bob = household_member(&alice, dir, "bob", bob_args);
    (alice, bob)
}

/// A node for a new account `NAME@family.test` on alice's household server, started with
/// `args`.
pub fn household_member(alice: &Node, dir: &Path, name: &str, args: &[&str]) -> Node {
    household_member_at(alice, dir, name, args, "127.0.0.1:0")
}

/// [`household_member`], its web interface listening on `http` (`ADDR:PORT`).
pub fn household_member_at(
    alice: &Node,
    dir: &Path,
    name: &str,
    args: &[&str],
    http: &str,
) -> Node {
    let household = alice.cli(&["status"])["household"].clone();
    let pw = add_user(alice, dir, name);
    let mut n = Node::new(dir, name);
    n.http = http.to_owned();
    n.extra = vec![
        "--jid".into(),
        format!("{name}@family.test"),
        "--password-file".into(),
        pw.to_string_lossy().into_owned(),
        "--xmpp-server".into(),
        household["c2s"].as_str().unwrap().to_owned(),
        "--xmpp-ca".into(),
        household["ca"].as_str().unwrap().to_owned(),
    ];
    n.start(args);
    n
}

/// `a` and `b` become contacts of each other (and each sees the other online).
pub fn befriend(a: &Node, a_jid: &str, b: &Node, b_jid: &str) {
    a.cli(&["contact", "add", b_jid]);
    wait_until("the contact request", || {
        b.cli(&["contact", "list"])["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|j| j == a_jid))
    });
    b.cli(&["contact", "add", a_jid]);
    wait_until("a mutual subscription", || {
        a.cli(&["contact", "list"])["contacts"]
            .as_array()
            .is_some_and(|c| {
                c.iter().any(|p| {
                    p["jid"] == b_jid && p["subscription"] == "both" && p["online"] == true
                })
            })
    });
}

/// Alice invites bob to "Family"; bob's node sees the invitation and accepts it.
pub fn invite_and_join(alice: &Node, bob: &Node) {
    invite_to_family(alice, bob, "bob@family.test");
}

/// `owner` invites `n` (the node of `jid`) to "Family"; `n` sees the invitation and accepts it.
pub fn invite_to_family(owner: &Node, n: &Node, jid: &str) {
    owner.cli(&["sphere", "invite", "Family", jid]);
    wait_until("the invitation", || {
        n.cli(&["sphere", "invites"])
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    n.cli(&["sphere", "join", "Family"]);
}

/// A Prosody of the test's for `home.test` with the accounts `USER` (`USER-secret`), and the
/// runtime it runs on (keep both until the end of the test).
pub fn test_prosody(dir: &Path, users: &[&str]) -> (tokio::runtime::Runtime, ManagedProsody) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let s = rt.block_on(async {
        let s = ManagedProsody::start(ProsodyConfig::new(dir.join("server"), "home.test"))
            .await
            .unwrap();
        for u in users {
            s.register(u, &format!("{u}-secret")).await.unwrap();
        }
        s
    });
    (rt, s)
}

/// An account `NAME@family.test` (password `NAME-secret`) on the household server alice's node
/// runs; returns the file holding its password.
pub fn add_user(alice: &Node, dir: &Path, name: &str) -> PathBuf {
    let pw = dir.join(format!("{name}.pw"));
    std::fs::write(&pw, format!("{name}-secret\n")).unwrap();
    let created = alice.cli(&[
        "household",
        "add-user",
        name,
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(created["jid"], format!("{name}@family.test"));
    pw
}

/// One raw HTTP/1.1 exchange with a node's web port, as a browser on this machine makes it:
/// `cookie` (e.g. from [`browser_session`]) and `extra` header lines are sent as given.
/// `body` may be shorter than `length`: the answer is read as the rest is still due.
/// Returns the status and the whole answer (headers and body).
pub fn raw_http(
    addr: &str,
    request: (&str, &str),
    headers: &[&str],
    (length, body): (usize, &[u8]),
) -> (u16, String) {
    let (method, path) = request;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nContent-Length: {length}\r\n");
    let given = |name: &str| {
        headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with(name))
    };
    // One request per connection (a test that names its own Connection header keeps close
    // in it), and the address as Host, unless the test gives its own.
    if !given("connection:") {
        head.push_str("Connection: close\r\n");
    }
    if !given("host:") {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// A browser session on `n`, as a person opens one with `spheres open`: the `Cookie:` header
/// line to send.
pub fn browser_session(n: &Node) -> String {
    let url = n.cli(&["open"])["url"].as_str().unwrap().to_owned();
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_once('/').unwrap();
    let (code, answer) = raw_http(addr, ("GET", &format!("/{path}")), &[], (0, b""));
    assert_eq!(code, 303, "{answer}");
    let cookie = answer
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie: {answer}"))
        .to_owned();
    format!("Cookie: {cookie}")
}

/// The node's web address, `HOST:PORT`.
pub fn web_addr(n: &Node) -> String {
    n.cli(&["status"])["http"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned()
}

/// `GET path` with a `Range` header (and `headers`, whole lines) on a node's web port, as a
/// video element asks: the status and the body's bytes.
pub fn range_get(addr: &str, headers: &[&str], path: &str, range: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Range: bytes={range}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer[end + 4..].to_vec())
}

/// Runs `tests/browser/SCRIPT` (Node.js, playwright-core and Debian's Chromium) against two
/// nodes: it gets their web addresses (`NODE_A`, `NODE_B`), data folders (`DATA_A`, `DATA_B`)
/// and where to put screenshots (`SHOTS`), prints `{"event": STAGE}` as it passes each of
/// `stages`, and exits 0 when every check passed.
pub fn two_browsers(script: &str, a: &Node, b: &Node, stages: &[&str]) {
    browsers(script, &[a, b], stages);
}

/// [`two_browsers`] for any number of nodes: `NODE_A`, `NODE_B`, `NODE_C`… and `DATA_A`…
pub fn browsers(script: &str, nodes: &[&Node], stages: &[&str]) {
    browsers_with(script, nodes, &[], stages);
}

/// [`browsers`], with more variables for the script.
pub fn browsers_with(script: &str, nodes: &[&Node], env: &[(&str, String)], stages: &[&str]) {
    for tool in ["node", "/usr/bin/chromium"] {
        super::require(tool);
    }
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/install-test-deps"
    );
    let web = |n: &Node| n.cli(&["status"])["http"].as_str().unwrap().to_owned();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(browser_dir.join(script)).env("SHOTS", &shots);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (n, letter) in nodes.iter().zip('A'..='Z') {
        cmd.env(format!("NODE_{letter}"), web(n))
            .env(format!("DATA_{letter}"), &n.data);
    }
    let mut ui = Proc::spawn(script, cmd);
    for stage in stages {
        if let Err(why) = ui.try_wait_event(stage) {
            panic!("{why}");
        }
    }
    assert!(ui.wait_exit(), "{script} failed: {:?}", ui.seen);
}
