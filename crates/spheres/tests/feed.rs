//! The feed (XEP-0277) between nodes of a household, from the command line: a post reaches
//! contacts and only them, a post for everyone reaches anyone who looks, comments reach the
//! poster, a deleted post disappears for its readers, and only its poster may delete it.

mod common;

use common::node::{
    Node, add_user, befriend, household, household_member, household_nodes, in_feed,
    invite_and_join, raw_http, two_browsers, wait_seeding,
};
use common::wait_until;
use serde_json::Value;
use spheres_xmpp::{BareJid, Client, ConnectConfig};

/// A client of `user`'s account on alice's household server (password `USER-secret`, as
/// `add_user` makes it), on a runtime of its own.
fn raw_client(alice: &Node, user: &str) -> (tokio::runtime::Runtime, Client) {
    let household = alice.cli(&["status"])["household"].clone();
    let jid = BareJid::new(&format!("{user}@family.test")).unwrap();
    let mut config = ConnectConfig::new(jid, format!("{user}-secret"));
    config.server = Some(household["c2s"].as_str().unwrap().parse().unwrap());
    config.extra_ca = Some(household["ca"].as_str().unwrap().into());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (client, _events) = rt.block_on(Client::connect(config)).unwrap();
    (rt, client)
}

/// Eve, a stranger with an account on the household server, sends `to` pubsub
/// notifications she made up (anyone can send any message): one per (node, item id), each a
/// post that claims to be alice's. Returns her client.
fn forged_notifications(
    alice: &Node,
    dir: &std::path::Path,
    to: &str,
    forged: &[(&str, &str)],
) -> (tokio::runtime::Runtime, Client) {
    add_user(alice, dir, "eve");
    let (rt, eve) = raw_client(alice, "eve");
    rt.block_on(async {
        for (node, item) in forged {
            let xml = format!(
                "<message xmlns='jabber:client' to='{to}' type='headline'>\
                 <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{node}'>\
                 <item id='{item}' publisher='alice@family.test'>\
                 <entry xmlns='http://www.w3.org/2005/Atom'><title>Send me your password</title>\
                 <author><uri>xmpp:alice@family.test</uri></author></entry></item></items></event>\
                 </message>"
            );
            eve.send(xml.parse::<minidom::Element>().unwrap())
                .await
                .unwrap();
        }
        // The server has routed them once it answers a request sent after them.
        eve.roster().await.unwrap();
    });
    (rt, eve)
}

#[test]
fn posts_reach_contacts_comments_reach_the_poster_and_deletions_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household_nodes(dir.path(), &[]);
    // Dave has an account on the same server, and is nobody's contact.
    let dave = household_member(&alice, dir.path(), "dave", &[]);
    befriend(&alice, "alice@family.test", &bob, "bob@family.test");

    let posted = alice.cli(&["post", "Photos from Lyon are coming"]);
    let id = posted["id"].as_str().expect("the post's id").to_owned();
    wait_until("alice's post in bob's feed", || {
        in_feed(&bob, &id).is_some()
    });
    let seen = in_feed(&bob, &id).unwrap();
    assert_eq!(seen["author"], "alice@family.test");
    assert_eq!(seen["audience"], "contacts");
    assert_eq!(seen["text"], "Photos from Lyon are coming");
    assert_eq!(seen["comments"], 0);
    assert_eq!(seen["mine"], false);
    assert_eq!(in_feed(&alice, &id).unwrap()["mine"], true);

    // Dave follows nobody: his feed is empty, and alice's account gives him nothing of a
    // post for her contacts.
    assert_eq!(dave.cli(&["feed"]), Value::Array(vec![]));
    assert_eq!(
        dave.cli(&["feed", "--from", "alice@family.test"]),
        Value::Array(vec![])
    );

    // A post for everyone: dave reads it on alice's account; bob has both.
    let open = alice.cli(&["post", "Hello, world", "--to", "everyone"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dave_sees = dave.cli(&["feed", "--from", "alice@family.test"]);
    let list = dave_sees.as_array().unwrap();
    assert_eq!(list.len(), 1, "{dave_sees}");
    assert_eq!(list[0]["id"], open.as_str());
    assert_eq!(list[0]["audience"], "everyone");
    wait_until("the open post in bob's feed", || {
        in_feed(&bob, &open).is_some()
    });
    assert_eq!(in_feed(&bob, &open).unwrap()["audience"], "everyone");

    // Bob comments: alice's node hears of it.
    bob.cli(&["comment", &id, "Can't wait!"]);
    wait_until("bob's comment at alice's", || {
        in_feed(&alice, &id).is_some_and(|p| p["comments"] == 1)
    });
    let comments = alice.cli(&["comment", &id]);
    assert_eq!(comments[0]["author"], "bob@family.test", "{comments}");
    assert_eq!(comments[0]["text"], "Can't wait!");

    // Bob reacts: alice's node counts it on the post, not as a comment; the same again takes
    // it back.
    bob.cli(&["react", &id, "👍"]);
    wait_until("bob's reaction at alice's", || {
        in_feed(&alice, &id).is_some_and(|p| {
            p["reactions"] == serde_json::json!([{"emoji": "👍", "count": 1, "mine": false}])
        })
    });
    assert_eq!(in_feed(&alice, &id).unwrap()["comments"], 1);
    assert_eq!(alice.cli(&["comment", &id]).as_array().unwrap().len(), 1);
    bob.cli(&["react", &id, "👍"]);
    wait_until("bob's reaction taken back at alice's", || {
        in_feed(&alice, &id).is_some_and(|p| p["reactions"] == serde_json::json!([]))
    });
    let why = bob.cli_fails(&["react", &id, "hello"]);
    assert!(why.contains("not a reaction"), "{why}");

    // A stranger's made-up notifications (a post in alice's name, a comment under her post)
    // reach bob's node and are not believed. Then a real post arrives after them.
    let comments_node = format!("urn:xmpp:microblog:0:comments/{id}");
    let (rt, eve) = forged_notifications(
        &alice,
        dir.path(),
        "bob@family.test",
        &[
            ("urn:xmpp:microblog:0", "forged"),
            (&comments_node, "forged-c"),
        ],
    );
    // Eve also writes under alice's post for contacts (the server lets anyone write on a
    // comments node): alice's node takes it off.
    let alice_jid = BareJid::new("alice@family.test").unwrap();
    let spam = spheres_xmpp::feed::Entry {
        title: "Cheap pills".into(),
        author: Some(BareJid::new("bob@family.test").unwrap()),
        ..Default::default()
    };
    rt.block_on(eve.publish(
        Some(&alice_jid),
        &comments_node,
        "from-eve",
        &spam,
        spheres_xmpp::feed::Access::Presence,
        true,
    ))
    .unwrap();
    let (rt_bob, bob_raw) = raw_client(&alice, "bob");
    wait_until("eve's comment taken off alice's post", || {
        let items = rt_bob
            .block_on(bob_raw.items(&alice_jid, &comments_node, None))
            .unwrap();
        items.iter().all(|i| i.id != "from-eve")
    });
    let after = alice.cli(&["post", "After the forgeries"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("the later post in bob's feed", || {
        in_feed(&bob, &after).is_some()
    });
    assert!(in_feed(&bob, "forged").is_none());
    assert_eq!(
        in_feed(&bob, &id).unwrap()["comments"],
        1,
        "bob's own comment only"
    );
    let at_alice = alice.cli(&["comment", &id]);
    assert_eq!(at_alice.as_array().unwrap().len(), 1, "{at_alice}");

    // A post for the public web: pages on alice's HTTP address, for anyone, no login; an
    // Atom feed that feedparser (a reader we did not write) reads; nothing else there.
    let public = alice.cli(&["post", "Our <b>holiday</b> & more", "--to", "public"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pages = alice.cli(&["status"])["public_pages"]
        .as_str()
        .unwrap()
        .to_owned();
    let web = pages
        .strip_prefix("http://")
        .and_then(|r| r.split_once('/'))
        .unwrap()
        .0
        .to_owned();
    let (code, html) = raw_http(&web, ("GET", "/@alice/"), &[], (0, b""));
    assert_eq!(code, 200, "{html}");
    assert!(
        html.contains("Our &lt;b&gt;holiday&lt;/b&gt; &amp; more"),
        "{html}"
    );
    assert!(
        !html.contains("Photos from Lyon") && !html.contains("Hello, world"),
        "only public posts"
    );
    let policy = html
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    let (code, page) = raw_http(
        &web,
        ("GET", &format!("/@alice/posts/{public}")),
        &[],
        (0, b""),
    );
    assert_eq!(code, 200, "{page}");
    for hidden in [
        format!("/@alice/posts/{id}"),
        "/@bob/".into(),
        "/alice/".into(),
    ] {
        let (code, _) = raw_http(&web, ("GET", &hidden), &[], (0, b""));
        assert_eq!(code, 404, "{hidden}");
    }
    let atom = dir.path().join("feed.atom");
    std::fs::write(&atom, common::node::http_get(&format!("{pages}feed.atom"))).unwrap();
    let script = "import feedparser, json, sys; d = feedparser.parse(sys.argv[1]); \
                  print(json.dumps({'bozo': d.bozo, 'title': d.feed.get('title'), \
                  'entries': [[e.title, e.link, e.summary] for e in d.entries]}))";
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&atom)
        .output()
        .expect("python3 with feedparser: run scripts/install-test-deps");
    let read: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(read["bozo"], false, "{read}");
    assert_eq!(read["entries"].as_array().unwrap().len(), 1, "{read}");
    assert_eq!(read["entries"][0][0], "Our <b>holiday</b> & more");
    assert_eq!(read["entries"][0][1], format!("{pages}posts/{public}"));

    // Alice changes her post: bob's feed shows the new text, first published as it was.
    alice.cli(&["post", "--edit", &id, "Photos from Lyon are in!"]);
    wait_until("the new text in bob's feed", || {
        in_feed(&bob, &id).is_some_and(|p| p["text"] == "Photos from Lyon are in!")
    });
    let edited = in_feed(&bob, &id).unwrap();
    assert_eq!(edited["published"], seen["published"]);
    let why = bob.cli_fails(&["post", "--edit", &id, "Mine now"]);
    assert!(why.contains("only they can change it"), "{why}");

    // Only alice deletes her post; then it is gone from bob's feed too.
    let why = bob.cli_fails(&["post", "--delete", &id]);
    assert!(why.contains("only they can delete it"), "{why}");
    alice.cli(&["post", "--delete", &id]);
    assert!(in_feed(&alice, &id).is_none());
    wait_until("the post gone from bob's feed", || {
        in_feed(&bob, &id).is_none()
    });
    // Nothing to say is refused with words.
    let why = alice.cli_fails(&["post", "  "]);
    assert!(why.contains("nothing to post"), "{why}");
}

/// A post to a sphere reaches its members (a comment under it reaches the poster, an edit and
/// a deletion reach everyone) and nobody else: not a contact of the poster outside the
/// sphere, live or on the poster's account; a member who leaves loses the sphere's posts.
#[test]
fn a_spheres_posts_reach_its_members_and_no_one_else() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household(dir.path());
    invite_and_join(&alice, &bob);
    // Dave is alice's contact, not in the sphere.
    let dave = household_member(&alice, dir.path(), "dave", &[]);
    befriend(&alice, "alice@family.test", &dave, "dave@family.test");

    let posted = alice.cli(&["post", "Lyon, day one", "--to", "Family"]);
    let id = posted["id"].as_str().expect("the post's id").to_owned();
    let mine = in_feed(&alice, &id).expect("alice's post in her feed");
    assert_eq!(mine["sphere"], "Family");
    wait_until("alice's post in bob's feed", || {
        in_feed(&bob, &id).is_some()
    });
    let seen = in_feed(&bob, &id).unwrap();
    assert_eq!(seen["author"], "alice@family.test");
    assert_eq!(seen["audience"], "sphere");
    assert_eq!(seen["sphere"], "Family");
    assert_eq!(seen["text"], "Lyon, day one");

    // Bob comments: alice's node shows it, from him.
    bob.cli(&["comment", &id, "Beautiful"]);
    wait_until("bob's comment at alice's", || {
        in_feed(&alice, &id).is_some_and(|p| p["comments"] == 1)
    });
    let comments = alice.cli(&["comment", &id]);
    assert_eq!(comments[0]["author"], "bob@family.test", "{comments}");
    assert_eq!(comments[0]["text"], "Beautiful");
    assert_eq!(comments[0]["verified"], true);
    // And reacts, in the sphere too; alice adds hers.
    bob.cli(&["react", &id, "❤️"]);
    wait_until("bob's reaction at alice's", || {
        in_feed(&alice, &id).is_some_and(|p| p["reactions"][0]["count"] == 1)
    });
    let reactions = alice.cli(&["react", &id, "❤️"]);
    assert_eq!(
        reactions,
        serde_json::json!([{"emoji": "❤️", "count": 2, "mine": true}])
    );
    wait_until("both reactions at bob's", || {
        in_feed(&bob, &id).is_some_and(|p| p["reactions"][0]["count"] == 2)
    });

    // A post that shows a photo: shared in the sphere first; bob's node gets the file and
    // shows the post with it.
    let photo = dir.path().join("lyon.jpg");
    common::write_random(&photo, 60_000, 7);
    let with = alice.cli(&[
        "post",
        "The view from Fourvière",
        "--to",
        "Family",
        "--attach",
        photo.to_str().unwrap(),
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("the post with a photo at bob's", || {
        in_feed(&bob, &with).is_some()
    });
    wait_seeding(&bob, "Family", "lyon.jpg");
    let shared = bob.share_state("Family", "lyon.jpg").unwrap();
    let media = in_feed(&bob, &with).unwrap()["media"].clone();
    assert_eq!(media.as_array().map(Vec::len), Some(1), "{media}");
    assert_eq!(media[0]["info_hash"], shared["info_hash"]);
    assert_eq!(
        (&media[0]["name"], &media[0]["kind"], &media[0]["here"]),
        (&"lyon.jpg".into(), &"image".into(), &true.into())
    );
    assert_eq!(media[0]["size"], 60_000);
    // Changed, it still shows it.
    alice.cli(&["post", "--edit", &with, "The view from Fourvière, at dawn"]);
    wait_until("the new text at bob's", || {
        in_feed(&bob, &with).is_some_and(|p| p["text"] == "The view from Fourvière, at dawn")
    });
    assert_eq!(in_feed(&bob, &with).unwrap()["media"], media);
    // Files go with posts to a sphere only, for now, and say so.
    let why = alice.cli_fails(&["post", "Hi", "--attach", photo.to_str().unwrap()]);
    assert!(why.contains("go with posts to a sphere"), "{why}");

    // Alice changes it; only she may.
    alice.cli(&["post", "--edit", &id, "Lyon, day one (more tomorrow)"]);
    wait_until("the new text at bob's", || {
        in_feed(&bob, &id).is_some_and(|p| p["text"] == "Lyon, day one (more tomorrow)")
    });
    assert_eq!(in_feed(&bob, &id).unwrap()["published"], seen["published"]);
    let why = bob.cli_fails(&["post", "--delete", &id]);
    assert!(why.contains("only they can delete it"), "{why}");

    // Dave gets alice's posts for her contacts, never the sphere's: not live, not from her
    // account.
    let later = alice.cli(&["post", "For my contacts"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("alice's contacts post at dave's", || {
        in_feed(&dave, &later).is_some()
    });
    assert!(in_feed(&dave, &id).is_none(), "dave read the sphere's post");
    let on_account = dave.cli(&["feed", "--from", "alice@family.test"]);
    assert!(
        on_account
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["id"] != id.as_str()),
        "{on_account}"
    );
    // Nobody reads a sphere they are not in; a sphere's name that is not one is refused.
    let why = dave.cli_fails(&["post", "Hi", "--to", "Family"]);
    assert!(why.contains("not an audience"), "{why}");

    // Alice deletes it: gone at bob's too.
    alice.cli(&["post", "--delete", &id]);
    wait_until("the post gone at bob's", || in_feed(&bob, &id).is_none());

    // A member who leaves the sphere loses its posts.
    let another = alice.cli(&["post", "Day two", "--to", "sphere:Family"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_until("day two at bob's", || in_feed(&bob, &another).is_some());
    bob.cli(&["sphere", "leave", "Family"]);
    assert!(in_feed(&bob, &another).is_none());
}

/// The feed page (#/feed) in Chromium, as two contacts use it: a draft that survives a
/// refresh, a post that appears on the other's open page, a comment counted live, the
/// poster's page, a change to the post seen live, a post for a sphere with a photo, the
/// sphere's album by the days its photos were taken (keys and a finger's swipe in the viewer),
/// everything exported from the settings and imported again, a phone's width, French, a public post's page opened with no session and no script run, and no
/// serious accessibility issue (axe). The script: tests/browser/feed.mjs.
#[test]
fn the_feed_page_in_two_browsers() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household(dir.path());
    invite_and_join(&alice, &bob);
    befriend(&alice, "alice@family.test", &bob, "bob@family.test");
    // A photo in the sphere (a real picture, 16 by 16), for a post to show.
    use base64::Engine as _;
    let photo = dir.path().join("fourviere.png");
    let png = base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAABlklEQVR42hXR4RiFMQiG4Q9hCEMIYQghhDCEEIbwIIQQQgghDOHs9Lu7662+72N8zA/5WB/6YR/7wz/OBx/xkR/10R/34/sGYzAHMlgDHdhgD3xwBgxikIMa9OCOByZjMicyWROd2GRPfHImTGKSk5r05M4HhCFMQYQlqGDCFlw4AkIIKZTQwpUHFmMxF7JYC13YYi98cRYsYpGLWvTirgeUoUxFlKWoYspWXDkKSiiplNLK1QeMYUxDjGWoYcY23DgGRhhplNHGtQc2YzM3slkb3dhmb3xzNmxik5va9ObuB5zhTEec5ahjznbcOQ5OOOmU0871Bw7jMA9yWAc92GEf/HAOHOKQhzr04Z4H/s95534HfCd5S77YL8gb/Zr/FZBQ0HDf679gBDOQYAUaWLADD0782yPIoIIObjyQjGQmkqxEE0t24snJ//BIMqmkk5sPFKOYhRSr0MKKXXhx6h8liiyq6OLWA81oZiPNarSxZjfenP4Hjyabarq5/cBlXOZFLuuiF7vsi1/O/a8Zl7zUpS/38gNq4ZAQAX6pcwAAAABJRU5ErkJggg==")
        .unwrap();
    std::fs::write(&photo, png).unwrap();
    alice.cli(&["share", "Family", photo.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "fourviere.png");
    // A folder of two pictures whose EXIF says when they were taken: 12 July 2025
    // (DateTimeOriginal) and 24 December 2024 (DateTime), for the album.
    let lyon = dir.path().join("Lyon");
    std::fs::create_dir_all(&lyon).unwrap();
    for (name, png) in [
        (
            "IMG_0001.png",
            "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAQGVYSWZNTQAqAAAACAABh2kABAAAAAEAAAAaAAAAAAABkAMAAgAAABQAAAAsAAAAADIwMjU6MDc6MTIgMTg6MDQ6MDUAASXxvAAAAZZJREFUeNoNy0EBACEIAEEjGMHnPo1ABCIQwQhGMIIRiEAEIhDBCHfzn9ZonTZokyY0pRlt0Tbt0C7NaUFLWtEerTV6pw/6pAtd6UZf9E0/9Et3etCTXvRH/8PojMGYDGEowxiLsRmHcRnOCEYyivEYf5idOZiTKUxlGnMxN/MwL9OZwUxmMR/zD9KRgUxEEEUMWchGDnIRRwJJpJCH/EE7OtCJCqqooQvd6EEv6migiRb60D9YxwY2McEUM2xhGzvYxRwLLLHCHvaH1VmDNVnCUpaxFmuzDuuynBWsZBXrsf6wO3uwJ1vYyjb2Ym/2YV+2s4Od7GI/9h9O5wzO5AhHOcZZnM05nMtxTnCSU5zH+cPt3MGdXOEq17iLu7mHe7nODW5yi/u4f/COD3zigitu+MI3fvCLOx544oU//A/RiUFMQggljFjEJg5xCSeCSKKIR/whOznISQqppJGL3OQhL+lkkEkW+cg/VKcGNSmhlDJqUZs61KWcCiqpoh71h9d5gzd5wlOe8RZv8w7v8pwXvOQV7/E+yBkYEL0sOU4AAAAASUVORK5CYII=",
        ),
        (
            "IMG_0002.png",
            "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAALmVYSWZNTQAqAAAACAABATIAAgAAABQAAAAaAAAAADIwMjQ6MTI6MjQgMDk6MzA6MDAAw+T4PAAAAZZJREFUeNoNy0EBACEIAEEjEMEIRCCCEYxABCIYwQhE4LlPIxjBCHfzn9ZoQus0pRlt0CbNaUFbtE1LWtEO7dIerTVEkI4oYshAJuJIIAvZSCKFHOQiD/lDF3qnK93ogz7pTg/6om960ot+6Jf+6H9QQTuqqKEDnaijgS50o4kWetCLPvQPJljHFDNsYBNzLLCFbSyxwg52sYf9YQijM5RhjMGYDGcEYzE2IxnFOIzLeIw/TGF2pjKNOZiT6cxgLuZmJrOYh3mZj/kHF7zjihs+8Ik7HvjCN5544Qe/+MP/EEJ0QgkjBjEJJ4JYxCaSKOIQl3jEH5awOktZxhqsyXJWsBZrs5JVrMO6rMf6wxZ2Zyvb2IM92c4O9mJvdrKLfdiX/dh/SCE7qaSRg5ykk0EucpNJFnnISz7yDyVUp5QyalCTciqoRW0qqaIOdalH/eEIp3OUY5zBmRznBGdxNic5xTmcy3mcP1zhdq5yjTu4k+vc4C7u5ia3uId7uY/7hye8zlOe8QZv8pwXvMXbvOQV7/Au7/E+1nS4EPUGdmsAAAAASUVORK5CYII=",
        ),
    ] {
        let png = base64::engine::general_purpose::STANDARD
            .decode(png)
            .unwrap();
        std::fs::write(lyon.join(name), png).unwrap();
    }
    alice.cli(&["share", "Family", lyon.to_str().unwrap()]);
    wait_seeding(&bob, "Family", "Lyon");
    two_browsers(
        "feed.mjs",
        &alice,
        &bob,
        &[
            "feed_open",
            "post_seen",
            "comment_seen",
            "edit_seen",
            "sphere_seen",
            "album_seen",
            "data_moved",
            "ok",
        ],
    );
}

/// Alice exports everything that is hers (posts of every audience, a comment, her contact,
/// her sphere with its member, the photo she shared) to one archive that tools we did not
/// write read (GNU tar, feedparser for its Atom), then moves: a new account on the same
/// server imports it. Bob is asked to be a contact again and invited to the new sphere; the
/// posts are back with their dates; the photo is back in the sphere, shared again under the
/// same info hash; importing twice overwrites nothing.
#[test]
fn an_export_moves_to_another_account() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = household(dir.path());
    invite_and_join(&alice, &bob);
    befriend(&alice, "alice@family.test", &bob, "bob@family.test");
    let photo = dir.path().join("lyon.jpg");
    common::write_random(&photo, 30_000, 9);
    let id = |v: Value| v["id"].as_str().unwrap().to_owned();
    let with_photo = id(alice.cli(&[
        "post",
        "Lyon",
        "--to",
        "Family",
        "--attach",
        photo.to_str().unwrap(),
    ]));
    let for_contacts = id(alice.cli(&["post", "For my contacts"]));
    let public = id(alice.cli(&["post", "Hello, web", "--to", "public"]));
    let bobs = id(bob.cli(&["post", "Bob's news"]));
    wait_until("bob's post at alice's", || in_feed(&alice, &bobs).is_some());
    alice.cli(&["comment", &bobs, "Nice"]);
    let hash = alice.share_state("Family", "lyon.jpg").unwrap()["info_hash"].clone();

    let archive = dir.path().join("alice.tar");
    let out = alice.cli(&["export", archive.to_str().unwrap()]);
    assert_eq!(
        (
            &out["posts"],
            &out["comments"],
            &out["contacts"],
            &out["spheres"],
            &out["files"]
        ),
        (&3.into(), &1.into(), &1.into(), &1.into(), &1.into()),
        "{out}"
    );
    let why = alice.cli_fails(&["export", archive.to_str().unwrap()]);
    assert!(why.contains("exists already"), "{why}");
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&archive)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for name in [
        "spheres.json".to_owned(),
        "posts.atom".to_owned(),
        format!("torrents/{}.torrent", hash.as_str().unwrap()),
        "media/Family/lyon.jpg".to_owned(),
    ] {
        assert!(listed.lines().any(|l| l == name), "{name} in {listed}");
    }
    let atom = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(&archive)
        .arg("posts.atom")
        .output()
        .unwrap()
        .stdout;
    let atom_file = dir.path().join("posts.atom");
    std::fs::write(&atom_file, atom).unwrap();
    let script = "import feedparser, json, sys; d = feedparser.parse(sys.argv[1]); \
                  print(json.dumps({'bozo': d.bozo, 'titles': sorted(e.title for e in d.entries)}))";
    let read = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&atom_file)
        .output()
        .expect("python3 with feedparser: run scripts/install-test-deps");
    let read: Value = serde_json::from_slice(&read.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&read.stderr)));
    assert_eq!(
        read,
        serde_json::json!({"bozo": false, "titles": ["For my contacts", "Hello, web", "Lyon"]})
    );

    // Alice moves to a new account, on a new node.
    let moved = household_member(&alice, dir.path(), "alice2", &[]);
    let report = moved.cli(&["import", archive.to_str().unwrap()]);
    assert_eq!(
        (
            &report["contacts_asked"],
            &report["spheres_made"],
            &report["members_invited"],
            &report["files_restored"],
            &report["posts_restored"]
        ),
        (&1.into(), &1.into(), &1.into(), &1.into(), &3.into()),
        "{report}"
    );
    wait_until("alice2's contact request at bob's", || {
        bob.cli(&["contact", "list"])["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|j| j == "alice2@family.test"))
    });
    wait_until("alice2's invitation at bob's", || {
        bob.cli(&["sphere", "invites"])
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["from_jid"] == "alice2@family.test"))
    });
    for post in [&with_photo, &for_contacts, &public] {
        let before = in_feed(&alice, post).unwrap();
        let after = in_feed(&moved, post).unwrap_or_else(|| panic!("post {post} not imported"));
        assert_eq!(
            (&after["text"], &after["audience"], &after["published"]),
            (&before["text"], &before["audience"], &before["published"])
        );
        assert_eq!(after["author"], "alice2@family.test");
    }
    assert_eq!(
        in_feed(&moved, &with_photo).unwrap()["media"][0]["info_hash"],
        hash
    );
    wait_seeding(&moved, "Family", "lyon.jpg");
    assert_eq!(
        moved.share_state("Family", "lyon.jpg").unwrap()["info_hash"],
        hash
    );
    // Again: nothing overwritten, and it says so.
    let again = moved.cli(&["import", archive.to_str().unwrap()]);
    assert_eq!(again["files_restored"], 0, "{again}");
    assert!(
        again["not_done"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "file" && l["name"] == "Family/lyon.jpg"),
        "{again}"
    );
    // Not an export: refused with words.
    let why = moved.cli_fails(&["import", photo.to_str().unwrap()]);
    assert!(why.contains("cannot be imported"), "{why}");
}
