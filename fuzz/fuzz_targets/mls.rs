#![no_main]
//! Any bytes from a sphere's room read as an MLS message by a member, and any bytes read back
//! as a saved state: an error or a message, never a panic; and what did not read as a message
//! of the group's owner leaves the member able to read the next one.
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use spheres_mls::{Device, Opened};

const G: &[u8] = b"family@rooms.home.test";

/// Léa's group with Bob in it, Bob's state saved, and a message for him.
static FAMILY: LazyLock<(Vec<u8>, Vec<u8>)> = LazyLock::new(|| {
    let lea = Device::new("lea@home.test").unwrap();
    let bob = Device::new("bob@home.test").unwrap();
    lea.create_group(G).unwrap();
    let change = lea
        .add(G, "bob@home.test", &[bob.key_package().unwrap()])
        .unwrap()
        .unwrap();
    lea.confirm(G).unwrap();
    bob.open(change.welcome.as_ref().unwrap(), G, OWNER).unwrap();
    (bob.snapshot(), lea.seal(G, b"next").unwrap())
});

/// What the room says of a message Léa sent.
const OWNER: Option<&str> = Some("lea@home.test");

fuzz_target!(|data: &[u8]| {
    let _ = Device::restore(data);
    let (saved, next) = &*FAMILY;
    let bob = Device::restore(saved).unwrap();
    if let Ok(Opened::Message { .. } | Opened::Changed { .. }) = bob.open(data, G, OWNER) {
        return;
    }
    assert!(matches!(bob.open(next, G, OWNER), Ok(Opened::Message { .. })));
});
