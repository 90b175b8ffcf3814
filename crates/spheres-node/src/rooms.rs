//! The spheres' rooms as this node sees them: who is in each room now (with their endpoints),
//! who got their tracker key this visit, whether we are in, what each member announced in the
//! last hour, and which of our announcements wait for the room to confirm them.
//!
//! A plain state machine, in the style of the tracker's `Tracker`: events go in with the time,
//! decisions come out; no I/O, no clock, no lock. The node holds one behind a mutex and acts
//! on what it answers (sends the key, feeds the tracker, drops an announcement).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use spheres_xmpp::BareJid;
use spheres_xmpp::muc::Affiliation;
use spheres_xmpp::muc::Occupant;

/// How much one member may announce in a sphere in an hour; past it, announcements are
/// logged and dropped (a hostile member cannot flood the store, the engine or the disk).
pub(crate) const ANNOUNCES_PER_HOUR: usize = 1000;
pub(crate) const ANNOUNCED_BYTES_PER_HOUR: u64 = 2_000_000_000_000;
/// What we allow ourselves: well under what members accept from us, for the repeats.
const OWN_ANNOUNCES_PER_HOUR: usize = ANNOUNCES_PER_HOUR * 9 / 10;
/// Endpoints taken from one member's presence (a node has a few: LAN, mapped, IPv6).
pub(crate) const MAX_ENDPOINTS: usize = 8;

/// Who sent something in a sphere's room, as the room says (its real JID, non-anonymous).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sender {
    pub(crate) jid: BareJid,
    /// An owner of the room.
    pub(crate) owner: bool,
}

/// What a presence in a room means for the node.
#[derive(Debug, PartialEq)]
pub(crate) enum Seen {
    /// The server confirmed we are in the room.
    Joined,
    /// We are out of the room; `removed`: the owner removed us.
    Left { removed: bool },
    /// Someone came, or changed (new endpoints). `grant`: their real JID, when they are to
    /// get their tracker key now (a sphere we own, once per visit); call [`Rooms::granted`]
    /// once it is sent.
    Came { grant: Option<BareJid> },
    /// Someone left.
    Went,
}

/// What to do with an announcement heard in a room.
#[derive(Debug, PartialEq)]
pub(crate) enum Heard {
    /// Act on it.
    Accept,
    /// Our own, back from the room: it has it, nothing waits any more. Act on it too.
    Confirmed,
    /// Over the member's hourly budget: drop it.
    OverBudget,
}

/// Whether one of our announcements goes out now.
#[derive(Debug, PartialEq)]
pub(crate) enum Outgoing {
    Now,
    /// Sent not long ago: the next try is after this wait (growing with each try).
    NotYet(Duration),
    /// We are at what members accept from us this hour: it waits in the outbox.
    OverBudget,
}

#[derive(Default)]
struct Room {
    joined: bool,
    /// nick → occupant.
    occupants: HashMap<String, Occupant>,
    /// Nicks sent their tracker key this visit.
    granted: HashSet<String>,
}

/// Announcements per (room, member) in the last hour, by the time the room received them.
/// Bounded: at most the limit's entries per member, and members are few.
#[derive(Default)]
struct Budget {
    seen: HashMap<(String, String), VecDeque<(i64, u64)>>,
}

impl Budget {
    /// Counts an announcement of `size` bytes at `when`; false when it is over the budget.
    fn allow(&mut self, room: &str, member: &str, when: i64, size: u64, limit: usize) -> bool {
        let recent = self
            .seen
            .entry((room.to_owned(), member.to_owned()))
            .or_default();
        while recent.front().is_some_and(|(t, _)| *t <= when - 3600) {
            recent.pop_front();
        }
        let bytes: u64 = recent.iter().map(|(_, b)| *b).sum();
        if recent.len() >= limit || bytes.saturating_add(size) > ANNOUNCED_BYTES_PER_HOUR {
            return false;
        }
        recent.push_back((when, size));
        true
    }
}

/// All the rooms of this node's spheres.
#[derive(Default)]
pub(crate) struct Rooms {
    rooms: HashMap<String, Room>,
    /// What each member announced in the last hour.
    theirs: Budget,
    /// What we announced in the last hour.
    ours: Budget,
    /// Our announcements sent and not yet confirmed: (room, info hash) → when, how many.
    sent: HashMap<(String, String), (Instant, u32)>,
}

impl Rooms {
    /// A presence from a room. `owned`: we own the sphere (members get their key from us).
    pub(crate) fn presence(&mut self, occ: Occupant, owned: bool) -> Seen {
        let room = self.rooms.entry(occ.room.to_string()).or_default();
        if occ.is_self {
            room.joined = occ.present;
            if !occ.present {
                room.occupants.clear();
                room.granted.clear();
            }
            return if occ.present {
                Seen::Joined
            } else {
                Seen::Left {
                    removed: occ.codes.iter().any(|c| matches!(c, 301 | 307 | 321)),
                }
            };
        }
        if !occ.present {
            room.occupants.remove(&occ.nick);
            room.granted.remove(&occ.nick);
            return Seen::Went;
        }
        let grant = match &occ.jid {
            Some(jid) if owned && !room.granted.contains(&occ.nick) => Some(jid.to_bare()),
            _ => None,
        };
        room.occupants.insert(occ.nick.clone(), occ);
        Seen::Came { grant }
    }

    /// `nick` has its tracker key for this visit.
    pub(crate) fn granted(&mut self, room: &str, nick: &str) {
        if let Some(r) = self.rooms.get_mut(room)
            && r.occupants.contains_key(nick)
        {
            r.granted.insert(nick.to_owned());
        }
    }

    /// A new session with the server: nobody is known to be anywhere, keys go again.
    pub(crate) fn new_session(&mut self) {
        for r in self.rooms.values_mut() {
            r.occupants.clear();
            r.granted.clear();
        }
    }

    /// We are (re)joining: not in until the server says so.
    pub(crate) fn joining(&mut self, room: &str) {
        self.rooms.entry(room.to_owned()).or_default().joined = false;
    }

    /// The sphere is gone (left): its room too.
    pub(crate) fn forget(&mut self, room: &str) {
        self.rooms.remove(room);
        self.sent.retain(|(r, _), _| r != room);
    }

    pub(crate) fn joined(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.joined)
    }

    /// How many others are in the room.
    pub(crate) fn online(&self, room: &str) -> usize {
        self.rooms.get(room).map_or(0, |r| r.occupants.len())
    }

    /// Who sent a message from `nick` in `room`, as the room says. `me` and `my_nick` are
    /// ours (our own messages come back from the room); `owned`: we own the sphere.
    pub(crate) fn sender(
        &self,
        room: &str,
        nick: &str,
        (me, my_nick): (&BareJid, &str),
        owned: bool,
    ) -> Option<Sender> {
        if nick == my_nick {
            return Some(Sender {
                jid: me.clone(),
                owner: owned,
            });
        }
        let o = self.rooms.get(room)?.occupants.get(nick)?;
        Some(Sender {
            jid: o.jid.as_ref()?.to_bare(),
            owner: o.affiliation == Affiliation::Owner,
        })
    }

    /// The device (real full JID) of `nick` in `room`, as its last presence said.
    pub(crate) fn device(&self, room: &str, nick: &str) -> Option<spheres_xmpp::FullJid> {
        self.rooms.get(room)?.occupants.get(nick)?.jid.clone()
    }

    /// Everyone in `room` now (every device, whether or not we know its real JID).
    pub(crate) fn occupants(&self, room: &str) -> Vec<Occupant> {
        self.rooms
            .get(room)
            .map(|r| r.occupants.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The occupants we know the real JID of, by bare JID.
    pub(crate) fn present(&self, room: &str) -> HashMap<String, Occupant> {
        self.rooms
            .get(room)
            .map(|r| {
                r.occupants
                    .values()
                    .filter_map(|o| Some((o.jid.as_ref()?.to_bare().to_string(), o.clone())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Members' endpoints in a room, by member (bare JID), at most [`MAX_ENDPOINTS`] each.
    pub(crate) fn endpoints(&self, room: &str) -> Vec<(Option<String>, SocketAddr)> {
        let Some(r) = self.rooms.get(room) else {
            return Vec::new();
        };
        r.occupants
            .values()
            .filter_map(|o| {
                let who = o.jid.as_ref().map(|j| j.to_bare().to_string());
                Some((who, o.endpoints.as_ref()?))
            })
            .flat_map(|(who, e)| {
                e.endpoints
                    .iter()
                    .take(MAX_ENDPOINTS)
                    .filter_map(move |ep| {
                        let ip = ep.host.parse::<IpAddr>().ok()?;
                        Some((who.clone(), SocketAddr::new(ip, ep.port)))
                    })
            })
            .filter(|(_, a)| a.port() != 0)
            .collect()
    }

    /// An announcement of `size` bytes heard in `room` from `sender` at `when` (seconds,
    /// as the room stamped it). `me`: our account.
    pub(crate) fn announcement(
        &mut self,
        room: &str,
        (sender, me): (&BareJid, &BareJid),
        info_hash: Option<&str>,
        when: i64,
        size: u64,
    ) -> Heard {
        if sender == me {
            return match info_hash {
                Some(h) if self.sent.remove(&(room.to_owned(), h.to_owned())).is_some() => {
                    Heard::Confirmed
                }
                Some(_) => Heard::Confirmed,
                None => Heard::Accept,
            };
        }
        if self
            .theirs
            .allow(room, sender.as_str(), when, size, ANNOUNCES_PER_HOUR)
        {
            Heard::Accept
        } else {
            Heard::OverBudget
        }
    }

    /// Whether to send our announcement of `info_hash` (`size` bytes) to `room` now; if so,
    /// it is counted as sent. `when`: seconds since 1970; `now`: for the wait between tries.
    pub(crate) fn may_send(
        &mut self,
        room: &str,
        (info_hash, size): (&str, u64),
        me: &BareJid,
        (when, now): (i64, Instant),
    ) -> Outgoing {
        let key = (room.to_owned(), info_hash.to_owned());
        let tries = self.sent.get(&key).map(|(at, n)| (*at, *n));
        if let Some((at, n)) = tries {
            let wait = Duration::from_secs(60 << n.min(6)).min(Duration::from_secs(3600));
            let since = now.saturating_duration_since(at);
            if since < wait {
                return Outgoing::NotYet(wait - since);
            }
        }
        if !self
            .ours
            .allow(room, me.as_str(), when, size, OWN_ANNOUNCES_PER_HOUR)
        {
            return Outgoing::OverBudget;
        }
        self.sent
            .insert(key, (now, tries.map_or(0, |(_, n)| n + 1)));
        Outgoing::Now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spheres_xmpp::muc::Role;
    use spheres_xmpp::protocol::{Endpoint, Endpoints};

    const ROOM: &str = "family@rooms.home.test";

    fn jid(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    fn occupant(nick: &str, who: Option<&str>, present: bool) -> Occupant {
        Occupant {
            room: jid(ROOM),
            nick: nick.to_owned(),
            jid: who.map(|w| format!("{w}/node").parse().unwrap()),
            affiliation: Affiliation::Member,
            role: Role::Participant,
            present,
            is_self: false,
            codes: vec![],
            muji: None,
            endpoints: Some(Endpoints {
                endpoints: vec![
                    Endpoint {
                        kind: "lan".into(),
                        host: "192.168.1.20".into(),
                        port: 6881,
                    },
                    Endpoint {
                        kind: "lan".into(),
                        host: "not an address".into(),
                        port: 6881,
                    },
                ],
            }),
        }
    }

    /// A member of a sphere we own gets their key once per visit: again after they left and
    /// came back, or after a new session; never when we do not own the sphere or cannot see
    /// their real address.
    #[test]
    fn a_member_gets_their_key_once_per_visit() {
        let mut r = Rooms::default();
        let bob = occupant("bob", Some("bob@home.test"), true);
        assert_eq!(
            r.presence(bob.clone(), true),
            Seen::Came {
                grant: Some(jid("bob@home.test"))
            }
        );
        r.granted(ROOM, "bob");
        assert_eq!(r.presence(bob.clone(), true), Seen::Came { grant: None });
        assert_eq!(r.online(ROOM), 1);
        assert_eq!(
            r.presence(occupant("bob", Some("bob@home.test"), false), true),
            Seen::Went
        );
        assert_eq!(r.online(ROOM), 0);
        assert!(matches!(
            r.presence(bob.clone(), true),
            Seen::Came { grant: Some(_) }
        ));
        r.granted(ROOM, "bob");
        r.new_session();
        assert_eq!(r.online(ROOM), 0);
        assert!(matches!(
            r.presence(bob.clone(), true),
            Seen::Came { grant: Some(_) }
        ));
        assert_eq!(r.presence(bob, false), Seen::Came { grant: None });
        assert_eq!(
            r.presence(occupant("anon", None, true), true),
            Seen::Came { grant: None }
        );
        // A key for someone no longer there is not recorded.
        r.granted(ROOM, "nobody");
        assert!(matches!(
            r.presence(occupant("nobody", Some("n@home.test"), true), true),
            Seen::Came { grant: Some(_) }
        ));
    }

    #[test]
    fn our_own_presence_says_whether_we_are_in() {
        let mut r = Rooms::default();
        let mut me = occupant("alice", Some("alice@home.test"), true);
        me.is_self = true;
        assert!(!r.joined(ROOM));
        assert_eq!(r.presence(me.clone(), true), Seen::Joined);
        assert!(r.joined(ROOM));
        r.joining(ROOM);
        assert!(!r.joined(ROOM));
        me.present = false;
        me.codes = vec![321];
        assert_eq!(r.presence(me, true), Seen::Left { removed: true });
        assert!(!r.joined(ROOM));
    }

    /// The sender of a room message is who the room says is behind that nick, or us for our
    /// own nick; an unknown nick, or one whose real address the room hides, is nobody.
    #[test]
    fn a_sender_is_who_the_room_says() {
        let mut r = Rooms::default();
        let alice = jid("alice@home.test");
        r.presence(occupant("bob", Some("bob@home.test"), true), false);
        r.presence(occupant("anon", None, true), false);
        let mut carol = occupant("carol", Some("carol@home.test"), true);
        carol.affiliation = Affiliation::Owner;
        r.presence(carol, false);
        let me = (&alice, "alice");
        assert_eq!(
            r.sender(ROOM, "bob", me, false),
            Some(Sender {
                jid: jid("bob@home.test"),
                owner: false
            })
        );
        assert!(r.sender(ROOM, "carol", me, false).is_some_and(|s| s.owner));
        assert_eq!(r.sender(ROOM, "anon", me, false), None);
        assert_eq!(r.sender(ROOM, "mallory", me, false), None);
        assert_eq!(r.sender("other@rooms.home.test", "bob", me, false), None);
        assert_eq!(
            r.sender(ROOM, "alice", me, true),
            Some(Sender {
                jid: alice.clone(),
                owner: true
            })
        );
        assert_eq!(
            r.endpoints(ROOM)
                .into_iter()
                .filter(|(w, _)| w.as_deref() == Some("bob@home.test"))
                .map(|(_, a)| a)
                .collect::<Vec<_>>(),
            vec!["192.168.1.20:6881".parse().unwrap()]
        );
        r.forget(ROOM);
        assert_eq!(r.sender(ROOM, "bob", me, false), None);
    }

    /// A member's announcements past 1000 in an hour, or past 2 TB, are dropped; an hour
    /// later they are taken again. Ours are never counted against us when they come back.
    #[test]
    fn members_announce_within_an_hourly_budget() {
        let mut r = Rooms::default();
        let (bob, me) = (jid("bob@home.test"), jid("alice@home.test"));
        for i in 0..ANNOUNCES_PER_HOUR {
            assert_eq!(
                r.announcement(ROOM, (&bob, &me), None, 1000 + i as i64, 1),
                Heard::Accept
            );
        }
        assert_eq!(
            r.announcement(ROOM, (&bob, &me), None, 2000, 1),
            Heard::OverBudget
        );
        // Another room is another budget; an hour after the first, room again.
        assert_eq!(
            r.announcement("x@rooms.home.test", (&bob, &me), None, 2000, 1),
            Heard::Accept
        );
        assert_eq!(
            r.announcement(ROOM, (&bob, &me), None, 1000 + 3600, 1),
            Heard::Accept
        );
        let carol = jid("carol@home.test");
        assert_eq!(
            r.announcement(ROOM, (&carol, &me), None, 0, ANNOUNCED_BYTES_PER_HOUR),
            Heard::Accept
        );
        assert_eq!(
            r.announcement(ROOM, (&carol, &me), None, 1, 1),
            Heard::OverBudget
        );
        assert_eq!(
            r.announcement(ROOM, (&me, &me), Some("ab"), 1, u64::MAX),
            Heard::Confirmed
        );
    }

    /// Our announcement goes once, then again only after a wait that doubles (1 min, 2, 4...
    /// at most an hour) until the room confirms it; we stay under 90 % of what members take.
    #[test]
    fn our_announcements_are_repeated_with_a_growing_wait_until_confirmed() {
        let mut r = Rooms::default();
        let me = jid("alice@home.test");
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(r.may_send(ROOM, ("ab", 1), &me, (0, at(0))), Outgoing::Now);
        assert_eq!(
            r.may_send(ROOM, ("ab", 1), &me, (10, at(10))),
            Outgoing::NotYet(Duration::from_secs(50))
        );
        assert_eq!(
            r.may_send(ROOM, ("ab", 1), &me, (60, at(60))),
            Outgoing::Now
        );
        assert_eq!(
            r.may_send(ROOM, ("ab", 1), &me, (61, at(61))),
            Outgoing::NotYet(Duration::from_secs(119))
        );
        assert_eq!(
            r.announcement(ROOM, (&me, &me), Some("ab"), 62, 1),
            Heard::Confirmed
        );
        assert_eq!(
            r.may_send(ROOM, ("ab", 1), &me, (63, at(63))),
            Outgoing::Now
        );
        // The budget: 900 an hour, then the rest waits.
        let mut r = Rooms::default();
        for i in 0..OWN_ANNOUNCES_PER_HOUR {
            assert_eq!(
                r.may_send(ROOM, (&format!("{i}"), 1), &me, (0, at(0))),
                Outgoing::Now
            );
        }
        assert_eq!(
            r.may_send(ROOM, ("last", 1), &me, (0, at(0))),
            Outgoing::OverBudget
        );
        // Much later, the waits stop growing at an hour.
        let mut r = Rooms::default();
        for k in 0..10u64 {
            let s = k * 4000;
            assert_eq!(
                r.may_send(ROOM, ("ab", 1), &me, (s as i64, at(s))),
                Outgoing::Now
            );
        }
        assert_eq!(
            r.may_send(ROOM, ("ab", 1), &me, (36_001, at(36_001))),
            Outgoing::NotYet(Duration::from_secs(3600 - 1))
        );
    }
}
