use super::*;

const G: &[u8] = b"family@rooms.home.test";
const LEA: &str = "lea@home.test";
const BOB: &str = "bob@home.test";
const ZOE: &str = "zoe@home.test";

/// Léa owns the group of every test.
fn owner(_: &[u8]) -> Option<String> {
    Some(LEA.to_owned())
}

fn add(owner_dev: &Device, who: &Device) -> Change {
    let change = owner_dev
        .add(G, who.identity(), &[who.key_package().unwrap()])
        .unwrap()
        .expect("someone to add");
    owner_dev.confirm(G).unwrap();
    change
}

fn join(who: &Device, change: &Change) {
    let opened = who.open(change.welcome.as_ref().unwrap(), owner).unwrap();
    assert_eq!(
        opened,
        Opened::Joined {
            group: G.to_vec(),
            by: LEA.into()
        }
    );
}

fn read(who: &Device, bytes: &[u8]) -> Result<(String, Vec<u8>), MlsError> {
    match who.open(bytes, owner)? {
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
        lea.open(&sealed, owner).unwrap(),
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
        bob.open(&change.commit, owner).unwrap(),
        Opened::Changed {
            removed_us: false,
            ..
        }
    ));

    let change = lea.remove(G, ZOE).unwrap().expect("Zoé is in");
    lea.confirm(G).unwrap();
    assert!(matches!(
        bob.open(&change.commit, owner).unwrap(),
        Opened::Changed {
            removed_us: false,
            ..
        }
    ));
    assert!(matches!(
        zoe.open(&change.commit, owner).unwrap(),
        Opened::Changed {
            removed_us: true,
            ..
        }
    ));
    assert!(!zoe.is_in(G));

    let after = lea.seal(G, b"after Zoe left").unwrap();
    assert_eq!(read(&bob, &after).unwrap().1, b"after Zoe left");
    assert!(matches!(zoe.open(&after, owner), Err(MlsError::NotOurs)));
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
    bob.open(&change.commit, owner).unwrap();

    // Bob, a member, tries to throw Léa out and to bring in a device of his own.
    let coup = bob.remove(G, LEA).unwrap().unwrap();
    for victim in [&lea, &zoe] {
        assert!(
            matches!(victim.open(&coup.commit, owner), Err(MlsError::Refused(who)) if who == BOB),
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
        mallory.open(sneaky.welcome.as_ref().unwrap(), owner),
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
    // Adding someone already in adds nobody.
    let bob = Device::new(BOB).unwrap();
    let kp = bob.key_package().unwrap();
    lea.add(G, BOB, std::slice::from_ref(&kp)).unwrap().unwrap();
    lea.confirm(G).unwrap();
    assert_eq!(lea.add(G, BOB, &[kp]).unwrap(), None);
}

#[test]
fn replays_old_epochs_and_gaps_are_told_apart() {
    let (lea, bob) = family();
    let m1 = lea.seal(G, b"one").unwrap();
    read(&bob, &m1).unwrap();
    assert!(matches!(bob.open(&m1, owner), Err(MlsError::Stale)));

    // A commit Bob misses: what follows is ahead of him until he gets it.
    let zoe = Device::new(ZOE).unwrap();
    let change = add(&lea, &zoe);
    let m2 = lea.seal(G, b"two").unwrap();
    assert!(matches!(bob.open(&m2, owner), Err(MlsError::Ahead(_))));
    bob.open(&change.commit, owner).unwrap();
    assert_eq!(read(&bob, &m2).unwrap().1, b"two");
    // The same commit again changes nothing.
    assert!(matches!(
        bob.open(&change.commit, owner),
        Err(MlsError::Stale)
    ));
    // A welcome for another device is not for Bob.
    assert!(matches!(
        bob.open(change.welcome.as_ref().unwrap(), owner),
        Err(MlsError::NotForUs)
    ));
    // A group we do not know of.
    assert!(matches!(bob.open(&m2, |_| None), Err(MlsError::NotOurs)));
}

#[test]
fn garbage_is_an_error() {
    let (lea, bob) = family();
    let good = lea.seal(G, b"fine").unwrap();
    for bad in [&b""[..], b"garbage", &[0u8; 64], &[0, 1, 0, 2, 9, 9, 9]] {
        assert!(bob.open(bad, owner).is_err(), "{bad:?}");
    }
    for i in 0..good.len() {
        let mut flipped = good.clone();
        flipped[i] ^= 0x40;
        assert!(bob.open(&flipped, owner).is_err(), "byte {i} flipped");
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
        let opened = bob.open(change.welcome.as_ref().unwrap(), owner).unwrap();
        assert!(matches!(opened, Opened::Joined { .. }));
        let m = lea.seal(group, b"hello").unwrap();
        assert_eq!(read(&bob, &m).unwrap().1, b"hello");
    }
}
