//! The node: one process wiring the store, the BitTorrent engine, the tracker, XMPP and the
//! HTTP API. See ARCHITECTURE.md ("The data flow of a share") for how a share travels.
//!
//! - Startup: settings → store → account (the managed household Prosody and the owner's
//!   account on first start, or an existing account) → engine → tracker → XMPP → API.
//! - Each sphere is a members-only room (spheres-xmpp) and a folder. Shares are private
//!   torrents seeded in place and announced in the room; members' nodes download them into
//!   their sphere folder and seed them back.
//! - Peers: every node publishes its BitTorrent endpoints in its room presence; the sphere's
//!   owner runs the sphere's tracker, gives each member their own key (a private message in
//!   the room), and feeds members' endpoints into it, so members find each other even when
//!   they cannot reach one another's trackers; the node also gives them to the engine, which
//!   keeps dialling them. A sphere's swarms admit only nodes that prove the sphere's secret,
//!   which the owner gives each member with their tracker key (and renews when it removes one).

// Nothing from outside may panic the node: no `unwrap` outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

// The node's capabilities, one module each (`Node`'s methods are spread over them).
mod account;
mod calls;
mod chat;
mod dispatch;
pub mod error;
pub mod events;
mod export;
mod feed;
mod holding;
mod housekeeping;
mod lifecycle;
mod links;
mod peers;
mod photos;
mod public;
pub mod reach;
mod reactions;
mod receive;
mod relay;
mod rooms;
mod sealed;
mod sealedchat;
mod send;
mod spherefeed;
mod spheres;
mod uploads;

// Their helpers, and the node's edges: the API, settings, sizes.
mod access;
pub mod api;
mod incoming;
pub mod settings;
mod thumbs;
pub mod units;
mod watch;

pub use error::NodeError;
pub use events::{Connection, NodeEvent};
pub use lifecycle::read_node_file;
pub use uploads::{UPLOAD_HEADROOM, free_bytes};

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;

use spheres_store::Store;
use spheres_torrent::Engine;
use spheres_tracker::RunningTracker;
use spheres_xmpp::prosody::ManagedProsody;
use spheres_xmpp::{BareJid, Client};

use account::ClaimFile;
use rooms::Rooms;
use settings::Settings;

/// Where the node tells what it is doing while it starts and stops (the CLI prints it as text
/// or JSON lines).
pub trait Report {
    /// Something that happened: a sentence for people, and the same as a JSON object.
    fn event(&self, text: &str, value: serde_json::Value);
}

pub struct Node {
    settings: Settings,
    store: Store,
    engine: Engine,
    tracker: RunningTracker,
    /// The key the node itself announces members' endpoints with, in process (all torrents;
    /// it never leaves the process).
    self_key: String,
    xmpp: Client,
    me: BareJid,
    /// The account's name (its local part), as posts and exports show it.
    name: String,
    /// Our nick in the spheres' rooms: the name, with this device's digits when the account
    /// has several nodes (see `lifecycle::nick_for`).
    nick: String,
    muc: String,
    prosody: Option<tokio::sync::Mutex<ManagedProsody>>,
    household: Option<api::types::Household>,
    /// The spheres' rooms: who is in, keys given, announcements waiting and budgets (sans-IO,
    /// see `rooms`).
    rooms: Mutex<Rooms>,
    /// Woken when the server confirms our presence in a room (status 110).
    joined_notify: tokio::sync::Notify,
    /// Peers given to the engine, LAN discovery, reachability (see `peers`).
    peers: peers::PeerState,
    /// How far the web pages reach: the router's forwarding of the web port, HTTPS (see
    /// `reach`).
    web: reach::WebState,
    /// How far the household's relay for calls reaches (see `relay`).
    relay: relay::RelayState,
    /// Contacts' presence and requests (see `chat`).
    contacts: chat::ContactState,
    /// What the web interface hears about as it happens (`/api/events`).
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// The invitation link this node came with, until its sphere is joined.
    claim: Mutex<Option<ClaimFile>>,
    /// Shares being hashed: (sphere, path) → (hashed, total).
    hashing: Mutex<HashMap<(String, String), (u64, u64)>>,
    http: Mutex<Option<SocketAddr>>,
    /// Asked to start over as another account (an invitation link taken in the browser).
    restart: tokio::sync::Notify,
    /// Downloads being put in place now (sphere id, info hash): see `complete_download`.
    completing: Mutex<HashSet<(i64, String)>>,
    /// Rooms whose archive is to be read again soon (see `catch_up_soon`).
    catching_up: Mutex<HashSet<String>>,
    /// Set when the node starts to stop (or to restart as another account).
    stopping: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The link to the XMPP server, as it was last heard of.
    connection: Mutex<Connection>,
    /// This node's MLS device, for encrypted spheres (see `sealed`).
    mls: Mutex<sealed::Mls>,
    /// Held while a change of a group we own goes out (one at a time).
    mls_changes: tokio::sync::Mutex<()>,
    /// Held while the MLS state is written (one save at a time, in order).
    mls_saving: tokio::sync::Mutex<()>,
    /// Keyless seeders (sphere id, JID) given every sealed torrent since this node started.
    held_for: Mutex<HashSet<(i64, String)>>,
    /// Per encrypted sphere, the owner's private MLS message (a tracker grant) this node could
    /// not open yet: the latest one, with its sender's nick (see `on_sealed_private`).
    pending_private: Mutex<HashMap<i64, (String, spheres_xmpp::sealed::Sealed)>>,
    /// Per (sphere id, member), the epoch of the group and how many tracker grants were
    /// sealed for them in it (see `may_seal_grant`).
    sealed_grants: Mutex<HashMap<(i64, String), (u64, u32)>>,
    /// Moves on whenever a link closes (revoked, its share taken back): streams through links
    /// check it before each chunk, and re-check their link when it moved.
    links_changed: tokio::sync::watch::Sender<u64>,
    /// Streams through links at once: a link holder cannot take the node's own player's.
    link_streams: std::sync::Arc<tokio::sync::Semaphore>,
    link_addresses: crate::links::Addresses,
    /// Links closed while the node runs (tokens, and shares' keys: see `links::share_key`).
    closed_links: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Browsers that opened a link find each other here (WebTorrent's WebSocket tracker).
    signalling: std::sync::Arc<spheres_tracker::ws::Signalling>,
    /// Calls, live and recently ended (sans-IO, see `calls`).
    calls: Mutex<calls::Calls>,
    /// Held while a call's stanzas are worked out and sent, so they leave in order.
    calls_sending: tokio::sync::Mutex<()>,
    /// Our hold on the spheres folder: one node per folder (see `lock_spheres_dir`).
    _spheres_lock: std::fs::File,
}

/// A share's state as the store keeps it, read as the enum (a value this version does not
/// know, written by a newer one, reads as `failed`: it is not acted on).
pub(crate) trait RowState {
    fn share_state(&self) -> api::types::ShareState;
}

impl RowState for spheres_store::ShareRow {
    fn share_state(&self) -> api::types::ShareState {
        self.state.parse().unwrap_or(api::types::ShareState::Failed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_token(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(raw)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Node {
    fn emit(&self, event: NodeEvent) {
        let _ = self.events.send(event);
    }

    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    /// Whether the node is stopping (or restarting as another account).
    pub fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }
}
