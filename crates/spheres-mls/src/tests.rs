use super::*;

const G: &[u8] = b"family@rooms.home.test";
const LEA: &str = "lea@home.test";
const BOB: &str = "bob@home.test";
const ZOE: &str = "zoe@home.test";

/// Léa owns the group of every test: what the room says of a message she sent.
const OWNER: Option<&str> = Some(LEA);

/// The owner's change adding `who`, not applied yet.
fn pending(owner_dev: &Device, who: &Device) -> Change {
    owner_dev
        .add(G, who.identity(), &[who.key_package().unwrap()])
        .unwrap()
        .expect("someone to add")
}

fn add(owner_dev: &Device, who: &Device) -> Change {
    let change = pending(owner_dev, who);
    owner_dev.confirm(G).unwrap();
    change
}

fn join(who: &Device, change: &Change) {
    let opened = who
        .open(change.welcome.as_ref().unwrap(), G, OWNER)
        .unwrap();
    assert_eq!(
        opened,
        Opened::Joined {
            group: G.to_vec(),
            by: LEA.into()
        }
    );
}

fn read(who: &Device, bytes: &[u8]) -> Result<(String, Vec<u8>), MlsError> {
    match who.open(bytes, G, OWNER)? {
        Opened::Message { sender, plain, .. } => Ok((sender, plain)),
        other => panic!("not a message: {other:?}"),
    }
}

/// Léa's group with Bob in it.
fn family() -> (Device, Device) {
    let lea = Device::new(LEA).unwrap();
    let bob = Device::new(BOB).unwrap();
    lea.create_group(G).unwrap();
    let change = add(&lea, &bob);
    join(&bob, &change);
    (lea, bob)
}

#[test]
fn members_read_each_other_and_the_server_reads_nothing() {
    let (lea, bob) = family();
    let sealed = lea.seal(G, b"holiday.mp4").unwrap();
    assert!(
        !sealed.windows(7).any(|w| w == b"holiday"),
        "the plaintext shows"
    );
    assert_eq!(
        read(&bob, &sealed).unwrap(),
        (LEA.into(), b"holiday.mp4".to_vec())
    );
    let back = bob.seal(G, b"thanks").unwrap();
    assert_eq!(read(&lea, &back).unwrap(), (BOB.into(), b"thanks".to_vec()));
    // Our own message back from the room.
    assert_eq!(
        lea.open(&sealed, G, OWNER).unwrap(),
        Opened::Own { group: G.to_vec() }
    );
    assert_eq!(
        lea.members(G).unwrap(),
        vec![LEA.to_owned(), BOB.to_owned()]
    );
}

#[test]
fn a_removed_member_reads_nothing_sent_after() {
    let (lea, bob) = family();
    let zoe = Device::new(ZOE).unwrap();
    let change = add(&lea, &zoe);
    join(&zoe, &change);
    assert!(matches!(
        bob.open(&change.commit, G, OWNER).unwrap(),
        Opened::Changed {
            removed_us: false,
            ..
        }
    ));

    let change = lea.remove(G, ZOE).unwrap().expect("Zoé is in");
    lea.confirm(G).unwrap();
    assert!(matches!(
        bob.open(&change.commit, G, OWNER).unwrap(),
        Opened::Changed {
            removed_us: false,
            ..
        }
    ));
    assert!(matches!(
        zoe.open(&change.commit, G, OWNER).unwrap(),
        Opened::Changed {
            removed_us: true,
            ..
        }
    ));
    assert!(!zoe.is_in(G));

    let after = lea.seal(G, b"after Zoe left").unwrap();
    assert_eq!(read(&bob, &after).unwrap().1, b"after Zoe left");
    assert!(matches!(zoe.open(&after, G, OWNER), Err(MlsError::NotOurs)));
    // Even a Zoé who kept her state from before the removal cannot read it.
    assert!(zoe.seal(G, b"x").is_err());
    assert_eq!(lea.remove(G, ZOE).unwrap(), None);
}

#[test]
fn only_the_owner_changes_the_group() {
    let (lea, bob) = family();
    let zoe = Device::new(ZOE).unwrap();
    let change = add(&lea, &zoe);
    join(&zoe, &change);
    bob.open(&change.commit, G, OWNER).unwrap();

    // Bob, a member, tries to throw Léa out and to bring in a device of his own.
    let coup = bob.remove(G, LEA).unwrap().unwrap();
    for victim in [&lea, &zoe] {
        assert!(
            matches!(victim.open(&coup.commit, G, OWNER), Err(MlsError::Refused(who)) if who == BOB),
            "a member's commit was taken"
        );
    }
    bob.abandon(G).unwrap();
    let mallory = Device::new(BOB).unwrap();
    let sneaky = bob
        .add(G, BOB, &[mallory.key_package().unwrap()])
        .unwrap()
        .unwrap();
    assert!(matches!(
        mallory.open(sneaky.welcome.as_ref().unwrap(), G, OWNER),
        Err(MlsError::Refused(who)) if who == BOB
    ));
    assert!(!mallory.is_in(G));
    bob.abandon(G).unwrap();

    // Nothing moved: Léa still talks to both.
    let m = lea.seal(G, b"still here").unwrap();
    assert_eq!(read(&zoe, &m).unwrap().1, b"still here");
    assert_eq!(read(&bob, &m).unwrap().1, b"still here");
}

#[test]
fn a_key_package_must_be_of_the_account_it_came_from() {
    let lea = Device::new(LEA).unwrap();
    lea.create_group(G).unwrap();
    let mallory = Device::new("mallory@evil.test").unwrap();
    assert!(matches!(
        lea.add(G, BOB, &[mallory.key_package().unwrap()]),
        Err(MlsError::WrongIdentity { .. })
    ));
    assert!(matches!(
        lea.add(G, BOB, &[b"garbage".to_vec()]),
        Err(MlsError::Malformed(_))
    ));
    // Sorting them first keeps the good one of a mixed lot.
    let bob = Device::new(BOB).unwrap();
    let kp = bob.key_package().unwrap();
    let lot = [
        mallory.key_package().unwrap(),
        b"garbage".to_vec(),
        kp.clone(),
    ];
    assert_eq!(lea.usable_packages(BOB, &lot), vec![kp.clone()]);
    // Adding someone already in adds nobody.
    lea.add(G, BOB, std::slice::from_ref(&kp)).unwrap().unwrap();
    lea.confirm(G).unwrap();
    assert_eq!(lea.add(G, BOB, &[kp]).unwrap(), None);
}

#[test]
fn replays_old_epochs_and_gaps_are_told_apart() {
    let (lea, bob) = family();
    let m1 = lea.seal(G, b"one").unwrap();
    read(&bob, &m1).unwrap();
    assert!(matches!(bob.open(&m1, G, OWNER), Err(MlsError::Stale)));

    // A commit Bob misses: what follows is ahead of him until he gets it.
    let zoe = Device::new(ZOE).unwrap();
    let change = add(&lea, &zoe);
    let m2 = lea.seal(G, b"two").unwrap();
    assert!(matches!(bob.open(&m2, G, OWNER), Err(MlsError::Ahead(_))));
    bob.open(&change.commit, G, OWNER).unwrap();
    assert_eq!(read(&bob, &m2).unwrap().1, b"two");
    // The same commit again changes nothing.
    assert!(matches!(
        bob.open(&change.commit, G, OWNER),
        Err(MlsError::Stale)
    ));
    // A welcome for another device is not for Bob.
    assert!(matches!(
        bob.open(change.welcome.as_ref().unwrap(), G, OWNER),
        Err(MlsError::NotForUs)
    ));
    // A group we do not know of.
    assert!(matches!(
        bob.open(&m2, b"other@rooms.home.test", OWNER),
        Err(MlsError::NotOurs)
    ));
}

#[test]
fn garbage_is_an_error() {
    let (lea, bob) = family();
    let good = lea.seal(G, b"fine").unwrap();
    for bad in [&b""[..], b"garbage", &[0u8; 64], &[0, 1, 0, 2, 9, 9, 9]] {
        assert!(bob.open(bad, G, OWNER).is_err(), "{bad:?}");
    }
    for i in 0..good.len() {
        let mut flipped = good.clone();
        flipped[i] ^= 0x40;
        assert!(bob.open(&flipped, G, OWNER).is_err(), "byte {i} flipped");
    }
    assert_eq!(read(&bob, &good).unwrap().1, b"fine");
}

#[test]
fn a_device_comes_back_from_its_snapshot() {
    let (lea, bob) = family();
    let saved = bob.snapshot();
    drop(bob);
    let bob = Device::restore(&saved).unwrap();
    assert_eq!(bob.identity(), BOB);
    let m = lea.seal(G, b"after the restart").unwrap();
    assert_eq!(read(&bob, &m).unwrap().1, b"after the restart");
    let back = bob.seal(G, b"I am back").unwrap();
    assert_eq!(read(&lea, &back).unwrap().1, b"I am back");

    for bad in [
        &saved[..saved.len() - 1],
        &saved[..10],
        b"SPHMLS1\0",
        b"something else",
    ] {
        assert!(Device::restore(bad).is_err());
    }
    let mut longer = saved.clone();
    longer.push(0);
    assert!(Device::restore(&longer).is_err());
}

#[test]
fn one_key_package_serves_several_spheres() {
    let bob = Device::new(BOB).unwrap();
    let kp = bob.key_package().unwrap();
    for group in [&b"family@rooms"[..], b"friends@rooms"] {
        let lea = Device::new(LEA).unwrap();
        lea.create_group(group).unwrap();
        let change = lea
            .add(group, BOB, std::slice::from_ref(&kp))
            .unwrap()
            .unwrap();
        lea.confirm(group).unwrap();
        let opened = bob
            .open(change.welcome.as_ref().unwrap(), group, OWNER)
            .unwrap();
        assert!(matches!(opened, Opened::Joined { .. }));
        let m = lea.seal(group, b"hello").unwrap();
        assert!(matches!(
            bob.open(&m, group, None).unwrap(),
            Opened::Message { plain, .. } if plain == b"hello"
        ));
    }
}

#[test]
fn a_change_from_someone_the_room_does_not_name_as_owner_is_refused() {
    let (lea, bob) = family();
    let zoe = Device::new(ZOE).unwrap();
    let change = add(&lea, &zoe);
    // The room did not say the owner sent these: nothing changes.
    assert!(matches!(
        bob.open(&change.commit, G, None),
        Err(MlsError::Refused(_))
    ));
    assert!(matches!(
        zoe.open(change.welcome.as_ref().unwrap(), G, None),
        Err(MlsError::Refused(_))
    ));
    assert!(!zoe.is_in(G));
    // Sent to another sphere's room: not ours there.
    assert!(matches!(
        zoe.open(
            change.welcome.as_ref().unwrap(),
            b"other@rooms.home.test",
            OWNER
        ),
        Err(MlsError::NotOurs)
    ));
    assert!(matches!(
        bob.open(&change.commit, b"other@rooms.home.test", OWNER),
        Err(MlsError::NotOurs)
    ));
    // As it came, it applies.
    bob.open(&change.commit, G, OWNER).unwrap();
}

#[test]
fn a_group_of_someone_with_no_name_takes_no_one() {
    // Mallory makes her own group under the room's id, with an empty identity, and
    // welcomes Bob into it.
    let bob = Device::new(BOB).unwrap();
    let mallory = Device::new("").unwrap();
    mallory.create_group(G).unwrap();
    let change = mallory
        .add(G, BOB, &[bob.key_package().unwrap()])
        .unwrap()
        .unwrap();
    for owner in [None, Some("")] {
        assert!(matches!(
            bob.open(change.welcome.as_ref().unwrap(), G, owner),
            Err(MlsError::Refused(_))
        ));
    }
    assert!(!bob.is_in(G));
}

#[test]
fn an_old_welcome_again_changes_nothing() {
    let lea = Device::new(LEA).unwrap();
    let bob = Device::new(BOB).unwrap();
    lea.create_group(G).unwrap();
    let first = add(&lea, &bob);
    join(&bob, &first);
    // The server hands the welcome out again: Bob stays where he is.
    assert!(matches!(
        bob.open(first.welcome.as_ref().unwrap(), G, OWNER),
        Err(MlsError::Stale)
    ));
    let zoe = Device::new(ZOE).unwrap();
    let change = add(&lea, &zoe);
    bob.open(&change.commit, G, OWNER).unwrap();
    assert!(matches!(
        bob.open(first.welcome.as_ref().unwrap(), G, OWNER),
        Err(MlsError::Stale)
    ));
    assert_eq!(bob.epoch(G).unwrap(), lea.epoch(G).unwrap());
    // Removed, Bob cannot come back in through the old welcome either.
    let out = lea.remove(G, BOB).unwrap().unwrap();
    lea.confirm(G).unwrap();
    bob.open(&out.commit, G, OWNER).unwrap();
    assert!(matches!(
        bob.open(first.welcome.as_ref().unwrap(), G, OWNER),
        Err(MlsError::Stale)
    ));
    assert!(!bob.is_in(G));
    // The owner adds him again: a newer welcome, which does open.
    let again = add(&lea, &bob);
    join(&bob, &again);
    let m = lea.seal(G, b"welcome back").unwrap();
    assert_eq!(read(&bob, &m).unwrap().1, b"welcome back");
}

#[test]
fn an_owner_that_stopped_before_applying_its_change_applies_it_when_the_room_echoes_it() {
    let (lea, bob) = family();
    let zoe = Device::new(ZOE).unwrap();
    let change = pending(&lea, &zoe);
    // Saved with the change pending; back after a restart.
    let lea = Device::restore(&lea.snapshot()).unwrap();
    assert!(matches!(
        lea.open(&change.commit, G, OWNER).unwrap(),
        Opened::Changed {
            removed_us: false,
            ..
        }
    ));
    bob.open(&change.commit, G, OWNER).unwrap();
    join(&zoe, &change);
    let m = lea.seal(G, b"all three").unwrap();
    assert_eq!(read(&bob, &m).unwrap().1, b"all three");
    assert_eq!(read(&zoe, &m).unwrap().1, b"all three");
}
