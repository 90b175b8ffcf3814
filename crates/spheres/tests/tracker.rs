//! `spheres tracker --ws`: WebTorrent's signalling on a tracker of its own. Two browsers' worth
//! of WebSocket clients (speaking as WebTorrent does) find each other and exchange an offer
//! and its answer; a bad announce gets WebTorrent's `failure reason`.

mod common;

use common::{Proc, spheres};
use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message, within 10 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("the tracker said nothing for 10 s")
            .expect("the tracker closed the connection")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

#[tokio::test]
async fn webtorrent_browsers_find_each_other_on_a_tracker_of_its_own() {
    let mut cmd = spheres();
    cmd.args(["--json", "tracker", "--ws", "127.0.0.1:0"]);
    let mut tracker = Proc::spawn("tracker", cmd);
    let url = tracker.wait_event("listening")["ws"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let hash = "abcdefghij0123456789";
    let (mut b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    send(
        &mut b,
        json!({"action": "announce", "info_hash": hash, "peer_id": "B".repeat(20),
               "numwant": 0, "left": 1, "event": "started", "offers": []}),
    )
    .await;
    assert_eq!(next(&mut b).await["interval"], 120);
    let (mut a, _) = tokio_tungstenite::connect_async(format!("{url}/announce"))
        .await
        .unwrap();
    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n";
    send(
        &mut a,
        json!({"action": "announce", "info_hash": hash, "peer_id": "A".repeat(20), "numwant": 1,
               "left": 1, "event": "started",
               "offers": [{"offer": {"type": "offer", "sdp": offer}, "offer_id": "o".repeat(20)}]}),
    )
    .await;
    let got = next(&mut b).await;
    assert_eq!(got["offer"]["sdp"], offer, "{got}");
    assert_eq!(got["peer_id"], "A".repeat(20));
    send(
        &mut b,
        json!({"action": "announce", "info_hash": hash, "peer_id": "B".repeat(20),
               "to_peer_id": "A".repeat(20), "offer_id": got["offer_id"],
               "answer": {"type": "answer", "sdp": "v=0\r\nanswer\r\n"}}),
    )
    .await;
    let mut answered = next(&mut a).await;
    if answered.get("answer").is_none() {
        answered = next(&mut a).await; // the announce's own answer came first
    }
    assert_eq!(answered["answer"]["sdp"], "v=0\r\nanswer\r\n", "{answered}");
    assert_eq!(answered["peer_id"], "B".repeat(20));
    // Attack: an announce with no valid info hash gets a failure reason, and nothing else.
    send(
        &mut a,
        json!({"action": "announce", "info_hash": "short", "peer_id": "A".repeat(20)}),
    )
    .await;
    assert!(next(&mut a).await["failure reason"].is_string());
    tracker.terminate();
    assert!(tracker.wait_exit());
}
