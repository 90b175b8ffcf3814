//! Accounts against a real Prosody: registration only with an invitation (XEP-0401 preauth +
//! XEP-0077), clear refusals, and password change.

mod common;

use common::{config, server};
use spheres_xmpp::account::register;
use spheres_xmpp::{Client, TlsMode, XmppError};

fn refusal(r: Result<(), XmppError>) -> String {
    match r {
        Err(XmppError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_needs_a_valid_invitation() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let carol = config(&s, "carol", "carol-pass", TlsMode::StartTls);

    let why = refusal(register(&carol, None).await);
    assert!(why.contains("only with an invitation"), "{why}");
    let why = refusal(register(&carol, Some("not-a-token")).await);
    assert!(why.contains("not valid or has expired"), "{why}");

    let invite = s.invite().await.unwrap();
    assert_eq!(invite.domain, "spheres.test");
    register(&carol, Some(&invite.token)).await.unwrap();
    let (client, _events) = Client::connect(carol.clone()).await.unwrap();
    assert_eq!(client.jid().to_bare().as_str(), "carol@spheres.test");
    client.close().await;

    // An invitation is good for one account only, and names cannot be taken twice.
    let dave = config(&s, "dave", "dave-pass", TlsMode::Direct);
    let why = refusal(register(&dave, Some(&invite.token)).await);
    assert!(why.contains("not valid or has expired"), "{why}");
    let fresh = s.invite().await.unwrap();
    let why = refusal(register(&carol, Some(&fresh.token)).await);
    assert!(why.contains("taken"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_password_is_the_only_one_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path()).await;
    let old = config(&s, "bob", "bob-secret", TlsMode::StartTls);
    let (bob, _events) = Client::connect(old.clone()).await.unwrap();
    bob.change_password("a longer passphrase").await.unwrap();
    bob.close().await;
    let err = Client::connect(old).await.err().expect("old password");
    assert!(matches!(err, XmppError::Auth(_)), "{err}");
    let new = config(&s, "bob", "a longer passphrase", TlsMode::StartTls);
    let (bob, _events) = Client::connect(new).await.unwrap();
    bob.close().await;
}
