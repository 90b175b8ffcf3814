//! Who may use the node's web interface and API, and how hard guessing is made.
//!
//! - The CLI presents the API token (`DATA/node.json`, mode 0600, new at every start).
//! - A browser presents a session cookie. A session opens with a **one-time login link**
//!   (`/login/<secret>`: printed when the node starts and by `spheres open`, which only the
//!   node's user can run, since it reads `node.json`), or with the web password. Being on
//!   the node's machine is not enough by itself: another user of the machine, or a program
//!   behind a reverse proxy, is on loopback too.
//! - Wrong passwords are throttled per address and overall, and at most [`HASHING`] password
//!   checks (Argon2, memory-hard) run at once, so a flood of logins cannot exhaust memory.
//!
//! Sessions are kept in the store by the SHA-1 of their cookie (a 256-bit random value: the
//! hash is one-way, and a copy of the database opens no session); they end after
//! [`SESSION_IDLE`] unused, at [`SESSION_MAX_AGE`], and all of them when the password changes.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::lock;

/// A session unused this long ends (seconds).
pub const SESSION_IDLE: i64 = 14 * 24 * 3600;
/// A session ends this long after it opened, used or not (seconds).
pub const SESSION_MAX_AGE: i64 = 60 * 24 * 3600;
/// At most this many sessions are kept (the least recently used go first).
pub const MAX_SESSIONS: i64 = 64;
/// How long a login link works, if nobody uses it.
pub const LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);
const MAX_LINKS: usize = 16;
/// Password checks at once.
pub const HASHING: usize = 2;

/// Wrong passwords allowed in [`WINDOW`]: from one address, and from everyone.
pub const PER_ADDRESS: usize = 5;
pub const OVERALL: usize = 30;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Addresses remembered; past this, new addresses wait for the oldest to expire.
const MAX_ADDRESSES: usize = 1024;

pub struct Access {
    token: String,
    links: Mutex<HashMap<String, Instant>>,
    throttle: Mutex<Throttle>,
    /// Wrong passwords of each link that has one (a guesser of one link slows no other).
    link_throttles: Mutex<HashMap<String, Throttle>>,
    pub hashing: Arc<tokio::sync::Semaphore>,
}

impl Access {
    pub fn new(token: String) -> Access {
        Access {
            token,
            links: Mutex::default(),
            throttle: Mutex::default(),
            link_throttles: Mutex::default(),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHING)),
        }
    }

    /// Whether `given` is the API token (in constant time).
    pub fn is_token(&self, given: &str) -> bool {
        let (a, b) = (given.as_bytes(), self.token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// A new one-time login link to the web interface at `http`.
    pub fn login_link(&self, http: SocketAddr) -> String {
        let secret = super::random_token(24);
        let now = Instant::now();
        let mut links = lock(&self.links);
        links.retain(|_, made| now.duration_since(*made) < LINK_LIFETIME);
        while links.len() >= MAX_LINKS {
            let Some(oldest) = links
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            links.remove(&oldest);
        }
        links.insert(secret.clone(), now);
        let host = match http.ip() {
            ip if ip.is_unspecified() => SocketAddr::new(
                if ip.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                },
                http.port(),
            ),
            _ => http,
        };
        format!("http://{host}/login/{secret}")
    }

    /// Uses up a login link's secret; whether it was good.
    pub fn take_link(&self, secret: &str) -> bool {
        let mut links = lock(&self.links);
        match links.remove(secret) {
            Some(made) => made.elapsed() < LINK_LIFETIME,
            None => false,
        }
    }

    /// Whether `from` may try a password now (if not, how long until it may). A try counts
    /// as a failure from the start, before its check runs: many at once cannot all slip in
    /// before the first is counted.
    pub fn attempt(&self, from: IpAddr) -> Result<(), Duration> {
        lock(&self.throttle).attempt(from, Instant::now())
    }

    /// The password was right: this address starts afresh, and its try is given back.
    pub fn succeeded(&self, from: IpAddr) {
        lock(&self.throttle).succeeded(from);
    }

    /// [`Access::attempt`] for the password of the link `token` (a link that has one).
    pub fn link_attempt(&self, token: &str, from: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut all = lock(&self.link_throttles);
        if all.len() >= MAX_ADDRESSES && !all.contains_key(token) {
            all.retain(|_, t| !t.quiet(now));
        }
        all.entry(token.to_owned()).or_default().attempt(from, now)
    }

    /// [`Access::succeeded`] for the password of the link `token`.
    pub fn link_succeeded(&self, token: &str, from: IpAddr) {
        if let Some(t) = lock(&self.link_throttles).get_mut(token) {
            t.succeeded(from);
        }
    }
}

/// The value a session is stored under.
pub fn session_key(cookie: &str) -> String {
    use sha1::{Digest, Sha1};
    hex::encode(Sha1::digest(cookie.as_bytes()))
}

/// Failed password attempts in the last [`WINDOW`]. Sans-IO: time is a parameter.
#[derive(Default)]
pub struct Throttle {
    by_address: HashMap<IpAddr, VecDeque<Instant>>,
    overall: VecDeque<Instant>,
}

fn expire(q: &mut VecDeque<Instant>, now: Instant) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
        q.pop_front();
    }
}

/// When the oldest of `q`'s failures leaves the window.
fn wait(q: &VecDeque<Instant>, now: Instant) -> Duration {
    q.front().map_or(Duration::ZERO, |t| {
        WINDOW.saturating_sub(now.duration_since(*t))
    })
}

impl Throttle {
    /// Whether `from` may try now; a try counts as a failure from the start.
    pub fn attempt(&mut self, from: IpAddr, now: Instant) -> Result<(), Duration> {
        self.may_try(from, now)?;
        self.failed(from, now);
        Ok(())
    }

    /// The password was right: `from` starts afresh, and its try is given back.
    pub fn succeeded(&mut self, from: IpAddr) {
        self.by_address.remove(&spheres_web::counted_as(from));
        self.overall.pop_back();
    }

    /// Whether no failure is left in the window.
    fn quiet(&mut self, now: Instant) -> bool {
        expire(&mut self.overall, now);
        self.overall.is_empty()
    }

    /// Whether `from` may try now (an IPv6 address counts as its /64: see
    /// [`spheres_web::counted_as`]).
    pub fn may_try(&mut self, from: IpAddr, now: Instant) -> Result<(), Duration> {
        let from = spheres_web::counted_as(from);
        expire(&mut self.overall, now);
        if self.overall.len() >= OVERALL {
            return Err(wait(&self.overall, now));
        }
        if let Some(q) = self.by_address.get_mut(&from) {
            expire(q, now);
            if q.len() >= PER_ADDRESS {
                return Err(wait(q, now));
            }
        } else if self.by_address.len() >= MAX_ADDRESSES {
            self.by_address.retain(|_, q| {
                expire(q, now);
                !q.is_empty()
            });
            if self.by_address.len() >= MAX_ADDRESSES {
                return Err(WINDOW);
            }
        }
        Ok(())
    }

    pub fn failed(&mut self, from: IpAddr, now: Instant) {
        let from = spheres_web::counted_as(from);
        self.overall.push_back(now);
        let q = self.by_address.entry(from).or_default();
        q.push_back(now);
        while q.len() > PER_ADDRESS {
            q.pop_front();
        }
        while self.overall.len() > OVERALL {
            self.overall.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: guessing the web password from one address, then from many.
    #[test]
    fn wrong_passwords_are_throttled_per_address_and_overall() {
        let mut t = Throttle::default();
        let start = Instant::now();
        let guesser: IpAddr = "192.168.1.66".parse().unwrap();
        for _ in 0..PER_ADDRESS {
            assert!(t.may_try(guesser, start).is_ok());
            t.failed(guesser, start);
        }
        let wait = t.may_try(guesser, start).unwrap_err();
        assert!(wait > Duration::from_secs(60), "{wait:?}");
        // Someone else is not punished for the guesser...
        let other: IpAddr = "192.168.1.7".parse().unwrap();
        assert!(t.may_try(other, start).is_ok());
        // ...until guesses from everywhere add up.
        for i in 0..OVERALL {
            let ip: IpAddr = format!("10.0.{}.{}", i / 200, i % 200).parse().unwrap();
            t.failed(ip, start);
        }
        assert!(t.may_try(other, start).is_err());
        // After the window, everyone may try again.
        let later = start + WINDOW;
        assert!(t.may_try(guesser, later).is_ok());
        assert!(t.may_try(other, later).is_ok());
    }

    /// Attack: guessing from an IPv6 network, a new address for each guess (a home or a
    /// phone has 2^64 of them): the network counts as one address.
    #[test]
    fn guesses_from_one_ipv6_network_count_as_one_address() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for i in 0..PER_ADDRESS {
            let ip: IpAddr = format!("2001:db8:1:2::{:x}", i + 1).parse().unwrap();
            assert!(t.may_try(ip, now).is_ok());
            t.failed(ip, now);
        }
        let next: IpAddr = "2001:db8:1:2:ffff::99".parse().unwrap();
        assert!(t.may_try(next, now).is_err(), "the same /64");
        let neighbour: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(t.may_try(neighbour, now).is_ok(), "another /64");
    }

    /// Attack: many guesses sent at once, before any is checked. Each is counted when it
    /// starts, so no more than the limit get through.
    #[test]
    fn guesses_sent_at_once_are_counted_at_once() {
        let access = Access::new("t".into());
        let guesser: IpAddr = "192.168.1.66".parse().unwrap();
        let admitted = (0..50).filter(|_| access.attempt(guesser).is_ok()).count();
        assert_eq!(admitted, PER_ADDRESS);
        let friend: IpAddr = "192.168.1.7".parse().unwrap();
        access.attempt(friend).unwrap();
        access.succeeded(friend);
        assert!(
            access.attempt(friend).is_ok(),
            "a right password gives its try back"
        );
    }

    /// Attack: guessing a link's password; its guesser slows no one on another link.
    #[test]
    fn guesses_at_a_links_password_are_throttled_per_link() {
        let access = Access::new("t".into());
        let guesser: IpAddr = "192.168.1.66".parse().unwrap();
        let admitted = (0..50)
            .filter(|_| access.link_attempt("aaa", guesser).is_ok())
            .count();
        assert_eq!(admitted, PER_ADDRESS);
        assert!(access.link_attempt("bbb", guesser).is_ok(), "another link");
        assert!(access.attempt(guesser).is_ok(), "the web password");
        for i in 0..OVERALL {
            let ip: IpAddr = format!("10.1.0.{i}").parse().unwrap();
            let _ = access.link_attempt("aaa", ip);
        }
        let friend: IpAddr = "192.168.1.7".parse().unwrap();
        assert!(
            access.link_attempt("aaa", friend).is_err(),
            "guesses add up"
        );
        assert!(access.link_attempt("bbb", friend).is_ok());
        access.link_succeeded("bbb", friend);
    }

    #[test]
    fn the_table_of_addresses_is_bounded() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            if t.may_try(ip, now).is_ok() {
                t.by_address.entry(ip).or_default().push_back(now);
            }
        }
        assert!(t.by_address.len() <= MAX_ADDRESSES);
    }

    #[test]
    fn a_login_link_works_once() {
        let access = Access::new("t".into());
        let link = access.login_link("0.0.0.0:8427".parse().unwrap());
        assert!(link.starts_with("http://127.0.0.1:8427/login/"), "{link}");
        let secret = link.rsplit('/').next().unwrap();
        assert!(access.take_link(secret));
        assert!(!access.take_link(secret), "a second use");
        assert!(!access.take_link("guess"));
    }
}
