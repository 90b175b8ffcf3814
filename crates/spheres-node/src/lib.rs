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
//!   they cannot reach one another's trackers. librqbit takes extra peers only when a torrent
//!   is added, so the endpoints known then are passed as initial peers too.

mod access;
pub mod api;
mod incoming;
pub mod settings;
mod thumbs;
pub mod units;
mod watch;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spheres_metainfo::{CreateOptions, InfoHash, Metainfo};
use spheres_store::{NewShare, Sphere, Store};
use spheres_torrent::{AddOptions, Engine, EngineConfig, Source, TorrentState};
use spheres_tracker::wire::{AnnounceRequest, Event as TrackerEvent};
use spheres_tracker::{KeyScope, RunningTracker, TrackerConfig};
use spheres_xmpp::muc::{Occupant, RoomSettings};
use spheres_xmpp::prosody::{ManagedProsody, ProsodyConfig};
use spheres_xmpp::protocol::{Endpoint, Endpoints, Share, SpherePayload, TrackerGrant, Withdraw};
use spheres_xmpp::xmpp_parsers::iq::Iq;
use spheres_xmpp::xmpp_parsers::message::{Message, MessageType};
use spheres_xmpp::xmpp_parsers::muc::user::Affiliation;
use spheres_xmpp::xmpp_parsers::presence::Presence;
use spheres_xmpp::xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use spheres_xmpp::{BareJid, Client, ConnectConfig, Event, Jid};
use tokio::sync::mpsc::Receiver;

use settings::{AccountChoice, Locate, NodeFile, Settings, UpArgs, write_private};
use units::{human_bytes, parse_size};

/// How often the owner re-feeds members' endpoints into its tracker (its peers expire after
/// `PEER_TTL`), and how often stalled downloads are looked at.
const FEED_EVERY: Duration = Duration::from_secs(5);
const PEER_TTL: Duration = Duration::from_secs(90);

/// Where the node tells what it is doing while it starts and stops (the CLI prints it as text
/// or JSON lines).
pub trait Report {
    /// Something that happened: a sentence for people, and the same as a JSON object.
    fn event(&self, text: &str, value: serde_json::Value);
}

/// The account the node uses, kept in DATA/account.json (mode 0600).
#[derive(Serialize, Deserialize, Debug, Clone)]
struct AccountFile {
    jid: String,
    password: String,
    /// Set when the node runs the household server this account lives on.
    household: Option<HouseholdFile>,
    /// Where the server is (`HOST:PORT`), when not found from the JID's domain.
    #[serde(default)]
    server: Option<String>,
    /// A CA to trust for that server.
    #[serde(default)]
    ca: Option<PathBuf>,
    /// An invitation link's claim not yet answered by the sphere's owner.
    #[serde(default)]
    claim: Option<ClaimFile>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct ClaimFile {
    owner: String,
    token: String,
    room: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct HouseholdFile {
    domain: String,
    c2s_port: u16,
    tls_port: u16,
}

/// What `spheres status` shows of the household server.
#[derive(Serialize, Debug, Clone)]
pub struct HouseholdInfo {
    pub domain: String,
    pub muc: String,
    pub c2s: SocketAddr,
    pub ca: PathBuf,
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
    nick: String,
    muc: String,
    prosody: Option<tokio::sync::Mutex<ManagedProsody>>,
    household: Option<HouseholdInfo>,
    /// Who is in each sphere room now: room → nick → occupant.
    occupants: Mutex<HashMap<String, HashMap<String, Occupant>>>,
    /// Rooms where the server has confirmed our presence (status 110), and a wake-up for
    /// whoever waits on it.
    joined: Mutex<HashSet<String>>,
    joined_notify: tokio::sync::Notify,
    /// Members (room, nick) already sent their tracker key since they joined.
    granted: Mutex<HashSet<(String, String)>>,
    /// The peers each torrent was last added with (librqbit takes peers only then).
    given_peers: Mutex<HashMap<String, HashSet<SocketAddr>>>,
    /// Peers heard on the LAN (BEP 14), and the info hashes we announce there.
    lsd: Mutex<Option<spheres_net::lsd::Heard>>,
    lsd_hashes: Mutex<Vec<spheres_net::lsd::Torrent>>,
    /// How reachable we are from outside, and the port mapping that makes it so.
    reachability: Mutex<spheres_net::Reachability>,
    mapping: tokio::sync::Mutex<Option<spheres_net::Mapping>>,
    /// Contacts' presence: bare JID → online resources.
    contacts_online: Mutex<HashMap<String, HashSet<String>>>,
    /// People asking to be our contact, not answered yet.
    contact_requests: Mutex<HashSet<String>>,
    /// What the web interface hears about as it happens (`/api/events`).
    events: tokio::sync::broadcast::Sender<serde_json::Value>,
    /// The invitation link this node came with, until its sphere is joined.
    claim: Mutex<Option<ClaimFile>>,
    /// Shares being hashed: (sphere, path) → (hashed, total).
    hashing: Mutex<HashMap<(String, String), (u64, u64)>>,
    http: Mutex<Option<SocketAddr>>,
    /// Asked to start over as another account (an invitation link taken in the browser).
    restart: tokio::sync::Notify,
    /// Stream slots for staggered starts (see `stagger`).
    staggering: Arc<tokio::sync::Semaphore>,
    /// Rooms whose archive is to be read again soon (see `catch_up_soon`).
    catching_up: Mutex<HashSet<String>>,
    /// Our announcements sent and not yet confirmed: when, and how many times.
    announced: Mutex<HashMap<(i64, String), (Instant, u32)>>,
    /// What we announced in the last hour, held under what members accept from us.
    own_budget: Mutex<AnnounceBudget>,
    /// What each member announced in the last hour (see `AnnounceBudget`).
    announce_budget: Mutex<AnnounceBudget>,
    /// Our hold on the spheres folder: one node per folder (see `lock_spheres_dir`).
    _spheres_lock: std::fs::File,
}

/// Takes the spheres folder for this node, or says which node has it. Two nodes on one
/// folder would each take the other's downloads for new shares of their own. The lock (an
/// advisory `flock` on `.spheres.lock`) goes with the process, however it ends.
fn lock_spheres_dir(spheres_dir: &Path, data: &Path) -> Result<std::fs::File> {
    use std::io::{Read as _, Seek as _, Write as _};
    std::fs::create_dir_all(spheres_dir)
        .with_context(|| format!("cannot create the spheres folder {}", spheres_dir.display()))?;
    let path = spheres_dir.join(".spheres.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        bail!(
            "the spheres folder {} is used by another node ({}); give this node its own with --spheres-dir DIR",
            spheres_dir.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(
        file,
        "pid {}, data folder {}",
        std::process::id(),
        data.display()
    )?;
    Ok(file)
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

/// A room's local part from a sphere name: readable, unique with a random suffix.
fn room_local(name: &str) -> String {
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug = if slug.is_empty() {
        "sphere".to_owned()
    } else {
        slug
    };
    let slug: String = slug.chars().take(40).collect();
    format!("{slug}-{}", random_token(3))
}

/// A sphere name must make a folder name on every system.
fn check_sphere_name(name: &str) -> Result<()> {
    let bad = name.trim().is_empty()
        || name.len() > 100
        || name.starts_with('.')
        || name.chars().any(|c| {
            c.is_control()
                || "/\\:*?\"<>|".contains(c)
                // Bidirectional overrides make a name read as another ("gpj.exe").
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        });
    if bad {
        bail!("{name:?} cannot be a sphere name: use letters, digits, spaces and - _ ( ) ' ,");
    }
    Ok(())
}

/// The name (and so the folder) of a sphere joined by invitation: what the inviter called it
/// when that is a usable name, else the room's local part when that is, else "Sphere". Both
/// come from the network: `..`, `.`, an empty name, an absolute path or separators would put
/// the folder outside the spheres folder, so neither is used unchecked.
fn sphere_name_from_invite(reason: Option<&str>, room: &str) -> String {
    let local = room.split_once('@').map_or("", |(l, _)| l);
    [reason.unwrap_or_default().trim(), local]
        .into_iter()
        .find(|n| check_sphere_name(n).is_ok())
        .unwrap_or("Sphere")
        .to_owned()
}

/// The folder of sphere `name` under `spheres_dir`, made if missing, and proved to be inside
/// it once both are canonical (no `..`, no symbolic link leading elsewhere).
fn sphere_folder(spheres_dir: &Path, name: &str) -> Result<PathBuf> {
    check_sphere_name(name)?;
    std::fs::create_dir_all(spheres_dir)
        .with_context(|| format!("cannot create {}", spheres_dir.display()))?;
    let root = spheres_dir
        .canonicalize()
        .with_context(|| format!("cannot use the spheres folder {}", spheres_dir.display()))?;
    let folder = root.join(name);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let real = folder
        .canonicalize()
        .with_context(|| format!("cannot use {}", folder.display()))?;
    if real.parent() != Some(root.as_path()) {
        bail!(
            "{} leads outside the spheres folder {}; refusing to use it",
            folder.display(),
            root.display()
        );
    }
    Ok(real)
}

/// Who sent something in a sphere's room, as the room says (its real JID, non-anonymous).
#[derive(Debug, Clone)]
struct Sender {
    jid: BareJid,
    /// An owner of the room.
    owner: bool,
}

/// An announcement must say what its torrent holds: same name, total size and file count
/// (the gallery, the policy and the free-space checks go by what it says).
fn check_announced(s: &Share, meta: &Metainfo) -> Result<()> {
    if meta.info_hash.to_hex() != s.id {
        bail!("the announced torrent's info hash does not match the share id; ignored");
    }
    let comparable = |n: &str| spheres_xmpp::protocol::xml_safe(n).replace(['\t', '\n', '\r'], " ");
    let files = meta.visible_files().count() as u64;
    if comparable(&s.name) != comparable(&meta.name)
        || s.size != meta.total_length
        || s.files != files
    {
        bail!(
            "the announcement of {:?} ({} bytes, {} files) does not match its torrent ({:?}, {} bytes, {} files); ignored",
            s.name,
            s.size,
            s.files,
            meta.name,
            meta.total_length,
            files
        );
    }
    Ok(())
}

/// Whether a sphere's fetch policy (`all`, `none`, `max:BYTES`) takes a share of `size`.
fn policy_wants(policy: &str, size: u64) -> bool {
    match policy {
        "none" => false,
        p => match p.strip_prefix("max:").and_then(|n| n.parse::<u64>().ok()) {
            Some(max) => size <= max,
            None => true,
        },
    }
}

/// What strangers can make the node remember, at most: contact requests waiting for an
/// answer, people whose presence is kept (and devices per person), invitations waiting.
const MAX_CONTACT_REQUESTS: usize = 100;
const MAX_PRESENCES: usize = 2000;
const MAX_RESOURCES: usize = 16;
const MAX_PENDING_INVITES: usize = 50;
/// Endpoints taken from one member's presence (a node has a few: LAN, mapped, IPv6).
const MAX_ENDPOINTS: usize = 8;

/// How much one member may announce in a sphere in an hour; past it, announcements are
/// logged and dropped (a hostile member cannot flood the store, the engine or the disk).
const ANNOUNCES_PER_HOUR: usize = 1000;
const ANNOUNCED_BYTES_PER_HOUR: u64 = 2_000_000_000_000;

/// Announcements per (room, member) in the last hour, by the time the room received them.
/// Bounded: at most [`ANNOUNCES_PER_HOUR`] entries per member, and members are few.
#[derive(Default)]
struct AnnounceBudget {
    seen: HashMap<(String, String), std::collections::VecDeque<(i64, u64)>>,
}

impl AnnounceBudget {
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

/// Bytes free for unprivileged writes on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(path)
        .with_context(|| format!("cannot tell the free space at {}", path.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// What an upload must leave free on the disk, so that the node's database, logs and the
/// resume state of downloads still have room.
pub const UPLOAD_HEADROOM: u64 = 64 * 1024 * 1024;

/// How long a dropped magnet's metadata is looked for before the watcher starts over.
const MAGNET_PATIENCE: Duration = Duration::from_secs(30 * 60);

/// Set when the node starts itself again: the web address to keep.
const RESTART_HTTP: &str = "SPHERES_RESTART_HTTP";

/// Replaces this process with a fresh start of the same command (same pid, same output),
/// which reads the account file written just before. Returns only if that failed.
fn restart_as_new_account(http: SocketAddr) -> anyhow::Error {
    use std::os::unix::process::CommandExt as _;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return anyhow!("cannot restart the node ({e}); start it again by hand"),
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(RESTART_HTTP, http.to_string())
        .exec();
    anyhow!("cannot restart the node ({err}); start it again by hand")
}

/// An account name from what a person typed as their name: "Marie-Claire Dupont" becomes
/// "marie-claire.dupont". Letters of any script are kept (XMPP allows them).
fn user_name_of(name: &str) -> Result<String> {
    let user: String = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(".")
        .to_lowercase();
    let ok = !user.is_empty()
        && user.chars().count() <= 64
        && user
            .chars()
            .all(|c| c.is_alphanumeric() || "._-".contains(c));
    if !ok {
        bail!("{name:?} cannot be an account name: use letters, digits, spaces, dots and dashes");
    }
    Ok(user)
}

/// The media hint of a share, from its files' extensions, weighted by size.
fn media_of(meta: &Metainfo) -> &'static str {
    let mut by_kind: HashMap<&'static str, u64> = HashMap::new();
    for (_, f) in meta.visible_files() {
        let ext = f
            .path
            .last()
            .and_then(|n| n.rsplit_once('.'))
            .map(|(_, e)| e.to_lowercase())
            .unwrap_or_default();
        let kind = match ext.as_str() {
            "mp4" | "mkv" | "webm" | "mov" | "avi" | "m4v" | "ogv" => "video",
            "mp3" | "flac" | "ogg" | "opus" | "m4a" | "wav" | "aac" => "audio",
            "jpg" | "jpeg" | "png" | "gif" | "webp" | "heic" | "avif" | "tif" | "tiff" => "image",
            "pdf" | "txt" | "odt" | "doc" | "docx" | "md" | "epub" => "document",
            "zip" | "tar" | "gz" | "7z" | "xz" | "zst" | "rar" => "archive",
            _ => "other",
        };
        *by_kind.entry(kind).or_default() += f.length;
    }
    by_kind
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or("other", |(k, _)| k)
}

fn peer_id_for(who: &str, addr: &SocketAddr) -> [u8; 20] {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(who.as_bytes());
    h.update(addr.to_string().as_bytes());
    h.finalize().into()
}

async fn resolve(server: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(server)
        .await
        .with_context(|| format!("cannot resolve the XMPP server {server}"))?
        .next()
        .ok_or_else(|| anyhow!("the XMPP server {server} has no address"))
}

impl Node {
    fn account_path(data: &Path) -> PathBuf {
        data.join("account.json")
    }

    /// Brings the node up and runs it until interrupted.
    pub async fn up(locate: &Locate, args: UpArgs, out: &dyn Report) -> Result<()> {
        let mut settings = Settings::resolve(locate, &args)?;
        // Started again by ourselves (see `restart_as_new_account`): the web interface stays
        // where the open pages expect it.
        if let Some(http) = std::env::var(RESTART_HTTP)
            .ok()
            .and_then(|a| a.parse().ok())
        {
            settings.http = http;
        }
        let data = settings.data_dir.clone();
        // What the node writes is its user's alone: the database holds the web password's
        // hash, tracker keys, unused invitation tokens and chat; thumbnails show private photos.
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create the data folder {}", data.display()))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make {} private", data.display()))?;
        }
        if let Some(existing) = read_node_file(&data)
            && process_alive(existing.pid)
        {
            bail!(
                "a node is already running for {} (pid {}, {}); stop it first",
                data.display(),
                existing.pid,
                existing.api
            );
        }
        let spheres_lock = lock_spheres_dir(&settings.spheres_dir, &data)?;
        let store = Store::open(&data.join("node.db"))
            .await
            .context("cannot open the node's database")?;

        // The account, and the household server when we run it.
        let (account, prosody) = Self::account(&settings, out).await?;
        let household = prosody.as_ref().map(|p| HouseholdInfo {
            domain: p.domain().to_owned(),
            muc: p.muc_domain(),
            // Listening everywhere: this node itself talks to it over loopback.
            c2s: match p.c2s_addr() {
                a if a.ip().is_unspecified() => SocketAddr::from(([127, 0, 0, 1], a.port())),
                a => a,
            },
            ca: p.ca_file(),
        });
        let me = BareJid::new(&account.jid).context("the account's JID is not valid")?;

        let mut engine_config = EngineConfig::new(data.join("downloads"));
        engine_config.state_dir = Some(data.join("engine"));
        engine_config.listen = settings.listen;
        // librqbit keeps private torrents (every sphere's) off the DHT by itself.
        engine_config.dht = settings.dht;
        let engine = Engine::start(engine_config)
            .await
            .context("cannot start the BitTorrent engine")?;
        // Limits changed in the settings page last time, unless the flags say otherwise.
        let saved = |v: Option<String>| v.and_then(|t| t.parse::<u64>().ok());
        let (down, up) = (
            settings
                .download_limit
                .or(saved(store.meta("download_limit").await?)),
            settings
                .upload_limit
                .or(saved(store.meta("upload_limit").await?)),
        );
        engine.set_limits(rate(down), rate(up));

        let tracker_config = TrackerConfig {
            interval: Duration::from_secs(30),
            min_interval: Duration::from_secs(5),
            peer_ttl: PEER_TTL,
            private: true,
            ..Default::default()
        };
        let tracker = spheres_tracker::start(tracker_config, Some(settings.tracker), None)
            .await
            .context("cannot start the tracker")?;
        // The key the node feeds members' endpoints in with: new at every start and never
        // in a torrent (shares announce with their sphere's own key, `owner_key`). A key
        // that an earlier version put into torrents stops working here.
        let _ = store.remove_meta("self_key").await;
        let self_key = random_token(16);
        tracker
            .tracker
            .grant_key(self_key.clone(), KeyScope::AllTorrents);

        // XMPP.
        let mut cfg = ConnectConfig::new(me.clone(), account.password.clone());
        match &household {
            Some(h) => {
                cfg.server = Some(h.c2s);
                cfg.extra_ca = Some(h.ca.clone());
            }
            None => {
                if let Some(s) = &account.server {
                    cfg.server = Some(resolve(s).await?);
                }
                cfg.extra_ca = account.ca.clone();
            }
        }
        cfg.resource = Some(format!("spheres-{}", random_token(3)));
        let (xmpp, events) = Client::connect(cfg)
            .await
            .with_context(|| format!("cannot log in as {me}"))?;
        let muc = match (&settings.muc, &household) {
            (Some(m), _) => m.clone(),
            (None, Some(h)) => h.muc.clone(),
            (None, None) => discover_muc(&xmpp, &me).await?,
        };
        let nick = me
            .node()
            .map(|n| n.as_str().to_owned())
            .unwrap_or_else(|| "member".to_owned());
        let node = Arc::new(Node {
            settings: settings.clone(),
            store,
            engine,
            tracker,
            self_key,
            xmpp,
            me,
            nick,
            muc,
            prosody: prosody.map(tokio::sync::Mutex::new),
            household,
            occupants: Mutex::default(),
            joined: Mutex::default(),
            joined_notify: tokio::sync::Notify::new(),
            granted: Mutex::default(),
            given_peers: Mutex::default(),
            claim: Mutex::new(account.claim.clone()),
            events: tokio::sync::broadcast::channel(256).0,
            contacts_online: Mutex::default(),
            reachability: Mutex::new(spheres_net::Reachability::Unknown),
            lsd: Mutex::default(),
            lsd_hashes: Mutex::default(),
            mapping: tokio::sync::Mutex::new(None),
            contact_requests: Mutex::default(),
            hashing: Mutex::default(),
            http: Mutex::default(),
            restart: tokio::sync::Notify::new(),
            staggering: Arc::new(tokio::sync::Semaphore::new(2)),
            announce_budget: Mutex::default(),
            catching_up: Mutex::default(),
            announced: Mutex::default(),
            own_budget: Mutex::default(),
            _spheres_lock: spheres_lock,
        });

        if node.settings.headless
            && node.settings.accept_invites_from.is_empty()
            && node.household.is_none()
        {
            tracing::warn!(
                "--headless joins invitations by itself only from --accept-invites-from JID|DOMAIN; none given, so every invitation waits for `spheres sphere join`"
            );
        }
        node.restore().await?;
        // Events first: joining a room waits for the room's answer, which the loop reads.
        tokio::spawn(node.clone().xmpp_loop(events));
        node.go_online().await?;
        tokio::spawn(node.clone().housekeeping());
        tokio::spawn(node.clone().watch_folders());
        tokio::spawn(node.clone().keep_port_mapped());
        node.start_lsd();

        // The API and the web interface.
        let token = random_token(24);
        let access = Arc::new(access::Access::new(token.clone()));
        let router = api::router(node.clone(), access.clone());
        let (bound, _task) = spheres_web::serve(router, settings.http)
            .await
            .with_context(|| {
                format!(
                    "cannot serve the web interface on {} (in use? pass --http ADDR:PORT)",
                    settings.http
                )
            })?;
        *lock(&node.http) = Some(bound);
        let node_file = NodeFile {
            api: format!("http://{bound}"),
            token,
            pid: std::process::id(),
        };
        write_private(
            &settings::node_file(&data),
            &serde_json::to_vec_pretty(&node_file)?,
        )?;
        // A browser on this machine opens the page with a one-time link (being on loopback
        // proves nothing: other users of the machine are too).
        let open = access.login_link(bound);
        out.event(
            &format!(
                "spheres is running as {}.\n  Open {open} in a browser (a one-time link; `spheres open` makes another).\n  Spheres are folders in {}.\n  BitTorrent on {}, tracker on {}.{}\n  Press Ctrl-C to stop.",
                node.me,
                node.settings.spheres_dir.display(),
                node.engine.listen_addr(),
                node.tracker.http_addr.map(|a| a.to_string()).unwrap_or_default(),
                node.household
                    .as_ref()
                    .map(|h| format!(
                        "\n  Household XMPP server {} on {} (CA {}).",
                        h.domain,
                        h.c2s,
                        h.ca.display()
                    ))
                    .unwrap_or_default(),
            ),
            json!({"event": "running", "jid": node.me.to_string(), "http": format!("http://{bound}"), "open": open,
                   "listen": node.engine.listen_addr().to_string(),
                   "tracker": node.tracker.http_addr.map(|a| a.to_string()),
                   "spheres_dir": node.settings.spheres_dir,
                   "household": node.household}),
        );

        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let restart = tokio::select! {
            _ = tokio::signal::ctrl_c() => false,
            _ = term.recv() => false,
            _ = node.restart.notified() => true,
        };
        out.event(
            if restart {
                "Restarting with the new account"
            } else {
                "Stopping"
            },
            json!({"event": if restart { "restarting" } else { "stopping" }}),
        );
        // Asked to stop while stopping for the restart: stop for good instead.
        let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if restart {
            let flag = interrupted.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            });
        }
        node.shutdown().await;
        let _ = std::fs::remove_file(settings::node_file(&data));
        if restart && !interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(restart_as_new_account(bound));
        }
        Ok(())
    }

    /// Loads or creates the account; starts the household server when we run it.
    async fn account(
        settings: &Settings,
        out: &dyn Report,
    ) -> Result<(AccountFile, Option<ManagedProsody>)> {
        let path = Self::account_path(&settings.data_dir);
        match &settings.account {
            AccountChoice::Existing {
                jid,
                password,
                server,
                ca,
            } => Ok((
                AccountFile {
                    jid: jid.clone(),
                    password: password.clone(),
                    household: None,
                    server: server.clone(),
                    ca: ca.clone(),
                    claim: None,
                },
                None,
            )),
            AccountChoice::Managed { domain, user } => {
                let saved: Option<AccountFile> = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if let Some(a) = &saved
                    && a.household.is_none()
                {
                    if settings.invite.is_some() {
                        tracing::warn!("this node already has an account; ignoring --invite");
                    }
                    return Ok((a.clone(), None));
                }
                if saved.is_none()
                    && let Some(link) = &settings.invite
                {
                    let a = Self::account_from_link(settings, link, user).await?;
                    out.event(
                        &format!("Created the account {} with the invitation", a.jid),
                        json!({"event": "account_created", "jid": a.jid}),
                    );
                    return Ok((a, None));
                }
                let mut config =
                    ProsodyConfig::new(settings.data_dir.join("prosody"), domain.clone());
                config.interface = settings.xmpp_listen;
                if let Some(h) = saved.as_ref().and_then(|a| a.household.as_ref()) {
                    config.domain = h.domain.clone();
                    config.c2s_port = h.c2s_port;
                    config.tls_port = h.tls_port;
                }
                let prosody = ManagedProsody::start(config)
                    .await
                    .context("cannot start the household XMPP server (Prosody)")?;
                let account = match saved {
                    Some(a) => a,
                    None => {
                        let password = random_token(16);
                        prosody
                            .register(user, &password)
                            .await
                            .context("cannot create the owner's account")?;
                        let a = AccountFile {
                            jid: format!("{user}@{}", prosody.domain()),
                            password,
                            household: Some(HouseholdFile {
                                domain: prosody.domain().to_owned(),
                                c2s_port: prosody.c2s_addr().port(),
                                tls_port: prosody.tls_addr().port(),
                            }),
                            server: None,
                            ca: None,
                            claim: None,
                        };
                        write_private(&path, &serde_json::to_vec_pretty(&a)?)?;
                        out.event(
                            &format!(
                                "Created the household server {} and the account {}",
                                prosody.domain(),
                                a.jid
                            ),
                            json!({"event": "account_created", "jid": a.jid}),
                        );
                        a
                    }
                };
                Ok((account, Some(prosody)))
            }
        }
    }

    /// Creates this node's account on the household server an invitation link names.
    async fn account_from_link(settings: &Settings, link: &str, user: &str) -> Result<AccountFile> {
        let link = spheres_xmpp::link::InviteLink::parse(link)?;
        let ca = settings.data_dir.join("household-ca.pem");
        write_private(&ca, link.ca_pem().as_bytes())?;
        let jid = BareJid::new(&format!("{user}@{}", link.domain))
            .map_err(|e| anyhow!("{user:?} cannot be a user name: {e}"))?;
        let password = random_token(16);
        let mut cfg = ConnectConfig::new(jid.clone(), password.clone());
        cfg.server = Some(resolve(&link.server).await?);
        cfg.extra_ca = Some(ca.clone());
        spheres_xmpp::account::register(&cfg, Some(&link.token))
            .await
            .with_context(|| format!("cannot create the account {jid}"))?;
        let a = AccountFile {
            jid: jid.to_string(),
            password,
            household: None,
            server: Some(link.server.clone()),
            ca: Some(ca),
            claim: Some(ClaimFile {
                owner: link.owner.clone(),
                token: link.token.clone(),
                room: link.room.clone(),
            }),
        };
        write_private(
            &Self::account_path(&settings.data_dir),
            &serde_json::to_vec_pretty(&a)?,
        )?;
        Ok(a)
    }

    /// Tells the sphere's owner which invitation link we came with.
    async fn send_claim(&self) {
        let claim = lock(&self.claim).clone();
        let Some(c) = claim else { return };
        let Ok(owner) = BareJid::new(&c.owner) else {
            return;
        };
        let msg = spheres_xmpp::protocol::Claim { token: c.token }.into_message(owner);
        if let Err(e) = self.xmpp.send(msg).await {
            tracing::warn!(error = %e, "cannot send our invitation claim");
        }
    }

    /// The invitation link's sphere is joined: the claim is done.
    fn claim_done(&self) {
        *lock(&self.claim) = None;
        let path = Self::account_path(&self.settings.data_dir);
        let updated = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<AccountFile>(&b).ok())
            .map(|mut a| {
                a.claim = None;
                a
            });
        if let Some(a) = updated
            && let Ok(bytes) = serde_json::to_vec_pretty(&a)
        {
            let _ = write_private(&path, &bytes);
        }
    }

    /// Puts back into the engine what the store says we share or fetch.
    async fn restore(self: &Arc<Self>) -> Result<()> {
        // Downloads begun before they were staged are moved out of sight once, at the first
        // start of this version, never again (a later name there is someone's own file).
        let migrate = self.store.meta("downloads_staged").await?.is_none();
        for sphere in self.store.spheres().await? {
            for share in self.store.shares(sphere.id).await? {
                let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
                    continue;
                };
                self.sphere_owned_grant(&sphere, &hash).await;
                if self.engine.status(&hash).is_some() {
                    continue;
                }
                // A share of ours seeds from where it was; a fetched one resumes in the folder.
                let ours = share.sharer == self.me.as_str();
                let result = match share.state.as_str() {
                    // Announced by its magnet alone, and its metadata never came: that first.
                    "downloading" if share.torrent.is_none() => {
                        let (node, sphere, s) =
                            (self.clone(), sphere.clone(), self.share_from_row(&share));
                        tokio::spawn(async move {
                            // Not `asked`: a public torrent still waits for the person.
                            if let Err(e) = node.fetch_share(&sphere, &s, false).await {
                                tracing::warn!(share = %s.name, error = %e, "cannot resume a share");
                            }
                        });
                        Ok(())
                    }
                    "seeding" | "downloading" => {
                        // What was fetched is seeded from where it arrived (`incoming`); what
                        // we shared, or a download from before downloads were staged, from
                        // its path.
                        let staging =
                            incoming::incoming_dir(Path::new(&sphere.folder), &share.info_hash);
                        // A download begun before downloads were staged: what it has goes
                        // out of sight, where it resumes (it was never complete at its name).
                        if migrate
                            && !ours
                            && share.state == "downloading"
                            && !staging.exists()
                            && let Some(name) = share
                                .torrent
                                .as_deref()
                                .and_then(|t| Metainfo::from_bytes(t).ok())
                                .map(|m| m.name)
                        {
                            let old = Path::new(&sphere.folder).join(&name);
                            if old.exists()
                                && std::fs::create_dir_all(&staging).is_ok()
                                && let Err(e) = std::fs::rename(&old, staging.join(&name))
                            {
                                tracing::warn!(share = %share.name, error = %e, "cannot move a partial download out of sight");
                            }
                        }
                        let staged = staging.exists();
                        let seed_path = if staged || !(ours || share.state == "seeding") {
                            None
                        } else {
                            share.path.as_deref()
                        };
                        self.add_to_engine(&sphere, &self.share_from_row(&share), seed_path)
                            .await
                    }
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    tracing::warn!(share = %share.name, error = %e, "cannot resume a share");
                }
            }
        }
        if migrate {
            self.store.set_meta("downloads_staged", "1").await?;
        }
        Ok(())
    }

    fn share_from_row(&self, r: &spheres_store::ShareRow) -> Share {
        Share {
            id: r.info_hash.clone(),
            name: r.name.clone(),
            size: r.size.max(0) as u64,
            files: r.files.max(0) as u64,
            media: r.media.clone(),
            sharer: BareJid::new(&r.sharer).unwrap_or_else(|_| self.me.clone()),
            magnet: r.magnet.clone(),
            torrent: r.torrent.clone(),
        }
    }

    /// Grants a torrent of a sphere we own to its members' keys and to our own key for that
    /// sphere.
    async fn sphere_owned_grant(&self, sphere: &Sphere, hash: &InfoHash) {
        if !sphere.owned {
            return;
        }
        let tracker = &self.tracker.tracker;
        if let Ok(members) = self.store.members(sphere.id).await {
            for m in members {
                tracker.grant_torrent(&m.tracker_key, *hash);
            }
        }
        match self.owner_key(sphere).await {
            Ok(key) => tracker.grant_torrent(&key, *hash),
            Err(e) => {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot read the sphere's tracker key")
            }
        }
    }

    /// Our own tracker key for a sphere we own: it goes into every .torrent we share there,
    /// so it grants that sphere's torrents and nothing else (a member who reads it learns
    /// nothing of our other spheres).
    async fn owner_key(&self, sphere: &Sphere) -> Result<String> {
        let name = format!("owner_key:{}", sphere.id);
        if let Some(key) = self.store.meta(&name).await? {
            return Ok(key);
        }
        let key = random_token(16);
        self.store.set_meta(&name, &key).await?;
        Ok(key)
    }

    /// Presence, roster, rooms and catch-up: after login and after a new session.
    async fn go_online(self: &Arc<Self>) -> Result<()> {
        self.xmpp.roster().await.ok();
        // Every device of ours sees whole conversations (XEP-0280).
        if let Err(e) = self.xmpp.enable_carbons().await {
            tracing::info!(error = %e, "the server offers no message carbons");
        }
        self.xmpp.send(Presence::available()).await?;
        for sphere in self.store.spheres().await? {
            self.join_sphere_room(&sphere).await;
        }
        self.send_claim().await;
        Ok(())
    }

    fn endpoints(&self) -> Endpoints {
        if self.settings.no_endpoints {
            return Endpoints { endpoints: vec![] };
        }
        let listen = self.engine.listen_addr();
        let (kind, host) = if listen.ip().is_loopback() {
            ("loopback", listen.ip())
        } else if listen.ip().is_unspecified() {
            // Listening everywhere: our address on the LAN is the one towards the router.
            ("lan", spheres_net::lan_address().unwrap_or(listen.ip()))
        } else {
            ("lan", listen.ip())
        };
        let mut endpoints = vec![Endpoint {
            kind: kind.to_owned(),
            host: host.to_string(),
            port: listen.port(),
        }];
        if let spheres_net::Reachability::Mapped { external, .. } = &*lock(&self.reachability)
            && !external.ip().is_unspecified()
        {
            endpoints.push(Endpoint {
                kind: "mapped".to_owned(),
                host: external.ip().to_string(),
                port: external.port(),
            });
        }
        Endpoints { endpoints }
    }

    /// Keeps a port mapping on the home router for our BitTorrent port while the node runs
    /// (renewed at half the lease; removed at shutdown), and says how reachable we are.
    async fn keep_port_mapped(self: Arc<Self>) {
        let listen = self.engine.listen_addr();
        if listen.ip().is_loopback() {
            *lock(&self.reachability) = spheres_net::Reachability::LoopbackOnly;
            return;
        }
        let lease = Duration::from_secs(3600);
        loop {
            match spheres_net::Mapping::create(listen.port(), lease, Duration::from_secs(3)).await {
                Ok(mapping) => {
                    tracing::info!(external = %mapping.external, method = ?mapping.method, "the router forwards our port");
                    *lock(&self.reachability) = mapping.reachability();
                    let half = mapping.lease / 2;
                    *self.mapping.lock().await = Some(mapping);
                    self.republish_endpoints().await;
                    loop {
                        tokio::time::sleep(half.max(Duration::from_secs(30))).await;
                        let mut guard = self.mapping.lock().await;
                        let Some(m) = guard.as_mut() else { return };
                        if let Err(e) = m.renew().await {
                            tracing::warn!(error = %e, "the router would not renew our port; mapping again");
                            *guard = None;
                            break;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(reason = %e, "this node cannot be reached from outside");
                    *lock(&self.reachability) =
                        spheres_net::Reachability::Unreachable { why: e.to_string() };
                    self.emit(json!({"type": "network"}));
                    // Routers come and go (and change): look again later.
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
            }
        }
    }

    /// Sends our presence with fresh endpoints to every sphere room.
    async fn republish_endpoints(&self) {
        if let Ok(spheres) = self.store.spheres().await {
            for sphere in spheres {
                if let Ok(room) = BareJid::new(&sphere.room) {
                    let _ = self
                        .xmpp
                        .join_room(&room, &self.nick, Some(self.endpoints()))
                        .await;
                }
            }
        }
        self.emit(json!({"type": "network"}));
    }

    async fn join_sphere_room(self: &Arc<Self>, sphere: &Sphere) {
        let Ok(room) = BareJid::new(&sphere.room) else {
            return;
        };
        lock(&self.joined).remove(&sphere.room);
        if let Err(e) = self
            .xmpp
            .join_room(&room, &self.nick, Some(self.endpoints()))
            .await
        {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot join the sphere's room");
            return;
        }
        // The room sends everyone's presence (with their endpoints) before ours: once ours is
        // in, the peers for what the catch-up adds are known.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let notified = self.joined_notify.notified();
            if lock(&self.joined).contains(&sphere.room) {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(sphere = %sphere.name, "the room did not confirm our presence; catching up anyway");
                break;
            }
        }
        if let Err(e) = self.catch_up(sphere).await {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot catch up on the sphere");
        } else {
            self.flush_outbox(sphere).await;
        }
    }

    /// Reads the room's archive again in a few seconds (once, however many ask), for a live
    /// announcement whose sender the room had not named to us yet.
    fn catch_up_soon(self: &Arc<Self>, sphere: &Sphere) {
        if !lock(&self.catching_up).insert(sphere.room.clone()) {
            return;
        }
        let (node, sphere) = (self.clone(), sphere.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            if let Err(e) = node.catch_up(&sphere).await {
                tracing::warn!(sphere = %sphere.name, error = %e, "cannot catch up on the sphere");
            }
            lock(&node.catching_up).remove(&sphere.room);
        });
    }

    /// Processes what the room archived since we last looked.
    async fn catch_up(self: &Arc<Self>, sphere: &Sphere) -> Result<()> {
        let room = BareJid::new(&sphere.room)?;
        let history = self
            .xmpp
            .room_history(&room, sphere.archive_after.clone())
            .await?;
        let mut last = None;
        for item in history {
            let sender = item.sender().map(|(jid, affiliation)| Sender {
                owner: affiliation == Affiliation::Owner,
                jid,
            });
            self.record_said(sphere, &item.message, Some(&item.id), sender.as_ref())
                .await;
            if let Some(p) = SpherePayload::from_message(&item.message) {
                let when = item.unix_time.unwrap_or_else(now_secs);
                self.on_room_payload(sphere, p, sender, when).await;
            }
            last = Some(item.id);
        }
        if let Some(last) = last {
            self.store.set_archive_after(sphere.id, &last).await?;
        }
        Ok(())
    }

    async fn xmpp_loop(self: Arc<Self>, mut events: Receiver<Event>) {
        while let Some(event) = events.recv().await {
            match event {
                Event::Message(m) => self.on_message(m).await,
                Event::Presence(p) => self.on_presence(p).await,
                Event::Iq(iq) => self.on_iq(iq).await,
                Event::Online { resumed: false } => {
                    lock(&self.occupants).clear();
                    lock(&self.granted).clear();
                    // In its own task: rejoining waits on presences this loop delivers.
                    let node = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = node.go_online().await {
                            tracing::warn!(error = %e, "cannot rejoin after reconnecting");
                        }
                    });
                }
                Event::Online { resumed: true } | Event::Roster(_) => {}
                Event::Offline(e) => {
                    tracing::warn!(error = %e, "XMPP connection lost; reconnecting")
                }
                Event::Disconnected(spheres_xmpp::XmppError::Closed) => return,
                Event::Disconnected(e) => {
                    tracing::error!(error = %e, "XMPP stopped for good; sharing goes on, rooms are unreachable");
                    return;
                }
            }
        }
    }

    async fn on_iq(&self, iq: Iq) {
        // Requests we do not serve get an error, as RFC 6120 wants.
        if let Iq::Get { from, id, .. } | Iq::Set { from, id, .. } = &iq {
            let error = StanzaError::new(
                ErrorType::Cancel,
                DefinedCondition::ServiceUnavailable,
                "en",
                "not supported",
            );
            let answer = Iq::Error {
                from: None,
                to: from.clone(),
                id: id.clone(),
                error,
                payload: None,
            };
            let _ = self.xmpp.send(answer).await;
        }
    }

    async fn on_message(self: &Arc<Self>, m: Message) {
        let Some(from) = m.from.clone() else { return };
        let room = from.to_bare().to_string();
        let payload = SpherePayload::from_message(&m);
        match (m.type_.clone(), payload) {
            (MessageType::Groupchat, payload) => {
                let Ok(Some(sphere)) = self.store.sphere_by_room(&room).await else {
                    return;
                };
                let id = stanza_id(&m, &room);
                let sender = self.sender_in_room(&sphere, &from);
                self.record_said(&sphere, &m, id.as_deref(), sender.as_ref())
                    .await;
                let unknown = payload.is_some() && sender.is_none();
                if let Some(p) = payload {
                    self.on_room_payload(&sphere, p, sender, now_secs()).await;
                }
                // An announcement from someone we cannot place yet is read again from the
                // archive, which records who sent it: the catch-up position stays where it
                // is until then, and a catch-up comes soon.
                if unknown {
                    self.catch_up_soon(&sphere);
                }
                let pending = lock(&self.catching_up).contains(&sphere.room);
                if let Some(id) = id
                    && !pending
                {
                    let _ = self.store.set_archive_after(sphere.id, &id).await;
                }
            }
            (_, Some(SpherePayload::Tracker(grant))) => {
                // Only from a sphere's room (a private message from an occupant), for us,
                // from the room's owner: anyone else could point us at a tracker of theirs.
                let Ok(Some(sphere)) = self.store.sphere_by_room(&room).await else {
                    return;
                };
                if grant.member != self.me || sphere.owned {
                    return;
                }
                if !self.sender_in_room(&sphere, &from).is_some_and(|s| s.owner) {
                    tracing::warn!(sphere = %sphere.name, from = %from, "ignoring a tracker key from someone who is not the sphere's owner");
                    return;
                }
                tracing::info!(sphere = %sphere.name, "received our tracker key");
                let _ = self.store.set_announce(sphere.id, &grant.announce).await;
            }
            (_, Some(SpherePayload::Invite(inv))) => {
                let room = inv.jid.to_string();
                if let Ok(Some(_)) = self.store.sphere_by_room(&room).await {
                    return;
                }
                let from = from.to_bare().to_string();
                // Anyone may invite: the invitations waiting for a person are bounded.
                let waiting = self.store.invites().await.map(|l| l.len()).unwrap_or(0);
                if waiting >= MAX_PENDING_INVITES {
                    tracing::info!(
                        room,
                        from,
                        "too many invitations waiting; ignoring one more"
                    );
                    return;
                }
                tracing::info!(room, from, "invited to a sphere");
                let _ = self
                    .store
                    .add_invite(&room, &from, inv.reason.as_deref())
                    .await;
                self.emit(json!({"type": "invite"}));
                // Accepted at once: the sphere our invitation link was for, or, on an
                // always-on node, one from someone it trusts. Others wait for a person.
                let claimed = lock(&self.claim)
                    .as_ref()
                    .is_some_and(|c| c.room == room && c.owner == from);
                let trusted = self.settings.headless && self.accepts_invites_from(&from);
                if !claimed && !trusted {
                    tracing::info!(room, from, "an invitation waits to be accepted by hand");
                }
                if claimed || trusted {
                    let node = self.clone();
                    tokio::spawn(async move {
                        match node.join(&room).await {
                            Ok(s) => {
                                tracing::info!(sphere = %s.name, "joined by invitation");
                                if claimed {
                                    node.claim_done();
                                }
                            }
                            Err(e) => tracing::warn!(error = %e, "cannot accept an invitation"),
                        }
                    });
                }
            }
            (MessageType::Chat, None) if !m.bodies.is_empty() || self.is_carbon(&m) => {
                // A 1:1 message (or a copy of one from another device of ours): the web
                // interface reloads the conversation from the archive.
                let with = match spheres_xmpp::contacts::Carbon::from_message(&m, &self.me) {
                    Some(spheres_xmpp::contacts::Carbon::Received(c)) => {
                        c.from.map(|f| f.to_bare().to_string())
                    }
                    Some(spheres_xmpp::contacts::Carbon::Sent(c)) => {
                        c.to.map(|t| t.to_bare().to_string())
                    }
                    None => Some(from.to_bare().to_string()),
                };
                if let Some(with) = with {
                    self.emit(json!({"type": "chat", "with": with}));
                }
            }
            (MessageType::Normal | MessageType::Chat, Some(SpherePayload::Claim(c))) => {
                let who = from.to_bare();
                let key = format!("link:{}", c.token);
                let Ok(Some(sphere)) = self.store.meta(&key).await else {
                    tracing::info!(from = %who, "ignoring a claim for an unknown invitation link");
                    return;
                };
                let _ = self.store.remove_meta(&key).await;
                tracing::info!(sphere, from = %who, "an invitation link was used");
                if let Err(e) = self.invite(&sphere, who.as_str()).await {
                    tracing::warn!(error = %e, "cannot admit the invitation link's user");
                }
            }
            _ => {}
        }
    }

    /// Whether an always-on node joins an invitation from `from` (a bare JID) by itself: only
    /// from the JIDs and domains it was told (`--accept-invites-from`), by default the domain
    /// of its household server (or of its account).
    fn accepts_invites_from(&self, from: &str) -> bool {
        let domain = from.rsplit_once('@').map_or(from, |(_, d)| d);
        let allowed = &self.settings.accept_invites_from;
        if allowed.is_empty() {
            // The household this node runs; on someone else's server (perhaps a public one,
            // where anyone has an account) nobody, unless told.
            return self
                .household
                .as_ref()
                .is_some_and(|h| domain.eq_ignore_ascii_case(&h.domain));
        }
        allowed
            .iter()
            .map(|a| a.trim())
            .any(|a| a.eq_ignore_ascii_case(from) || a.eq_ignore_ascii_case(domain))
    }

    /// Who sent a live message in a sphere's room: the real JID and affiliation the room
    /// gave in that occupant's presence (never what the message says of itself).
    fn sender_in_room(&self, sphere: &Sphere, from: &Jid) -> Option<Sender> {
        let nick = from.resource()?.as_str();
        if nick == self.nick {
            return Some(Sender {
                jid: self.me.clone(),
                owner: sphere.owned,
            });
        }
        let all = lock(&self.occupants);
        let o = all.get(&sphere.room)?.get(nick)?;
        Some(Sender {
            jid: o.jid.as_ref()?.to_bare(),
            owner: o.affiliation == Affiliation::Owner,
        })
    }

    /// Keeps what was said in a room (the chat beside the gallery), once.
    async fn record_said(
        &self,
        sphere: &Sphere,
        m: &Message,
        archive_id: Option<&str>,
        sender: Option<&Sender>,
    ) {
        let Some(body) = m.bodies.values().next() else {
            return;
        };
        // An announcement's body ends with its magnet link, for plain clients; the gallery
        // shows the share, the chat only the sentence.
        let body = match SpherePayload::from_message(m) {
            Some(_) => body.lines().next().unwrap_or_default(),
            None => body.as_str(),
        };
        let nick = m
            .from
            .as_ref()
            .and_then(|f| f.resource().map(|r| r.as_str().to_owned()))
            .unwrap_or_default();
        let jid = sender.map(|s| s.jid.to_string());
        if let Ok(true) = self
            .store
            .add_message(sphere.id, archive_id, &nick, jid.as_deref(), body, None)
            .await
        {
            self.emit(json!({"type": "message", "sphere": sphere.name}));
        }
    }

    fn emit(&self, event: serde_json::Value) {
        let _ = self.events.send(event);
    }

    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<serde_json::Value> {
        self.events.subscribe()
    }

    /// An announcement in a sphere's room, from `sender` (as the room knows them; `None`
    /// when it cannot tell) at `when` (seconds since 1970).
    async fn on_room_payload(
        self: &Arc<Self>,
        sphere: &Sphere,
        p: SpherePayload,
        sender: Option<Sender>,
        when: i64,
    ) {
        if !matches!(p, SpherePayload::Share(_) | SpherePayload::Withdraw(_)) {
            return;
        }
        let Some(sender) = sender else {
            tracing::warn!(sphere = %sphere.name, "ignoring an announcement whose sender the room does not name");
            return;
        };
        let size = match &p {
            SpherePayload::Share(s) => s.size,
            _ => 0,
        };
        if sender.jid != self.me
            && !lock(&self.announce_budget).allow(
                &sphere.room,
                sender.jid.as_str(),
                when,
                size,
                ANNOUNCES_PER_HOUR,
            )
        {
            tracing::warn!(sphere = %sphere.name, from = %sender.jid, "too many announcements from one member this hour; dropped");
            return;
        }
        // Our own announcement, back from the room: it has it.
        if let SpherePayload::Share(s) = &p
            && sender.jid == self.me
        {
            let _ = self.store.remove_outbox(sphere.id, &s.id).await;
            lock(&self.announced).remove(&(sphere.id, s.id.clone()));
        }
        let result = match p {
            SpherePayload::Share(s) => self.on_share(sphere, s, &sender).await,
            SpherePayload::Withdraw(w) => self.on_withdraw(sphere, w, &sender).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(sphere = %sphere.name, error = %e, "cannot process an announcement");
        }
    }

    /// A share announced in a sphere by `sender`: record it and fetch it by the sphere's
    /// policy. Only the sharer can announce their share, and what it says must be what its
    /// torrent holds.
    async fn on_share(self: &Arc<Self>, sphere: &Sphere, s: Share, sender: &Sender) -> Result<()> {
        if s.sharer != sender.jid {
            bail!("{} announced a share as {}; ignored", sender.jid, s.sharer);
        }
        let mut public = false;
        if let Some(torrent) = &s.torrent {
            // The .torrent must be what the announcement says: its paths are checked here.
            let meta = Metainfo::from_bytes(torrent).context("the announced torrent is invalid")?;
            check_announced(&s, &meta)?;
            public = !meta.private;
        }
        // A public torrent passed on by a member would make this node a peer of a public
        // swarm: only when the member's policy says so. Our own are ours to fetch.
        let ask = public && sender.jid != self.me && !self.public_allowed(sphere).await;
        let mut wanted = !ask && policy_wants(&sphere.policy, s.size);
        // Never fetched by itself past what the disk can take (the person may still ask).
        let free = free_bytes(Path::new(&sphere.folder)).unwrap_or(0);
        let too_big = wanted && s.size.saturating_add(UPLOAD_HEADROOM) > free;
        if too_big {
            tracing::warn!(sphere = %sphere.name, share = %s.name, size = s.size, free, "not enough space to fetch a share by itself");
            wanted = false;
        }
        let state = if wanted { "downloading" } else { "available" };
        let new = self
            .store
            .add_share(
                sphere.id,
                &NewShare {
                    info_hash: &s.id,
                    name: &s.name,
                    size: s.size,
                    files: s.files,
                    media: &s.media,
                    sharer: s.sharer.as_str(),
                    magnet: &s.magnet,
                    torrent: s.torrent.as_deref(),
                    path: None,
                    state,
                },
            )
            .await?;
        if too_big && new {
            let why = format!(
                "not enough space to fetch it by itself ({} needed, {} free); free some space, then fetch it",
                human_bytes(s.size),
                human_bytes(free.saturating_sub(UPLOAD_HEADROOM))
            );
            self.store
                .set_share_state(sphere.id, &s.id, "available", None, Some(&why))
                .await?;
        }
        if let Ok(hash) = s.id.parse::<InfoHash>() {
            self.sphere_owned_grant(sphere, &hash).await;
            self.feed_endpoints(sphere).await;
        }
        if new {
            self.emit(json!({"type": "share", "sphere": sphere.name}));
        }
        if !new || !wanted {
            return Ok(());
        }
        tracing::info!(sphere = %sphere.name, share = %s.name, "fetching a new share");
        // In its own task: a magnet can take a while to resolve, and announcements wait.
        let (node, sphere) = (self.clone(), sphere.clone());
        tokio::spawn(async move {
            if let Err(e) = node.fetch_share(&sphere, &s, false).await {
                tracing::warn!(share = %s.name, error = %e, "cannot fetch a share");
                let _ = node
                    .store
                    .set_share_state(sphere.id, &s.id, "failed", None, Some(&format!("{e:#}")))
                    .await;
            }
        });
        Ok(())
    }

    /// Starts fetching an announced share. One announced by its magnet alone has its
    /// metadata fetched first, and checked against the announcement (and against the
    /// sphere's policy on public torrents) before any of its data is.
    /// `asked`: the person asked for this share (public or not).
    async fn fetch_share(&self, sphere: &Sphere, s: &Share, asked: bool) -> Result<()> {
        if s.torrent.is_some() {
            return self.add_to_engine(sphere, s, None).await;
        }
        // From the sphere's own tracker and members only: the trackers and peers the
        // announcement names are the sender's choice, and nothing is checked yet.
        let mut magnet = format!("magnet:?xt=urn:btih:{}", s.id);
        if let Some(announce) = self.announce_url(sphere).await {
            magnet.push_str("&tr=");
            magnet.extend(percent_encoding::utf8_percent_encode(
                &announce,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        let peers = self.peers_for(&sphere.room, &s.id);
        let bytes = self
            .engine
            .metadata(&magnet, peers, Duration::from_secs(60), MAGNET_PATIENCE)
            .await?;
        let meta = Metainfo::from_bytes(&bytes).context("the share's metadata is invalid")?;
        check_announced(s, &meta)?;
        self.store
            .set_share_torrent(sphere.id, &s.id, &bytes)
            .await?;
        if !asked && !meta.private && s.sharer != self.me && !self.public_allowed(sphere).await {
            tracing::info!(share = %s.name, "a public torrent: waiting for the member to fetch it");
            self.store
                .set_share_state(sphere.id, &s.id, "available", None, None)
                .await?;
            return Ok(());
        }
        let mut full = s.clone();
        full.torrent = Some(bytes);
        self.add_to_engine(sphere, &full, None).await
    }

    /// Whether members' public torrents are fetched in this sphere without asking.
    async fn public_allowed(&self, sphere: &Sphere) -> bool {
        matches!(
            self.store.meta(&format!("public:{}", sphere.id)).await,
            Ok(Some(v)) if v == "allow"
        )
    }

    /// Adds a share to the engine: seeding `path` in place, or downloading into the sphere's
    /// folder. The torrent announces to the sphere's tracker with our own key.
    async fn add_to_engine(&self, sphere: &Sphere, s: &Share, path: Option<&str>) -> Result<()> {
        let hash: InfoHash = s.id.parse().map_err(|_| anyhow!("bad share id"))?;
        if self.engine.status(&hash).is_some() {
            return Ok(());
        }
        let announce = self.announce_url(sphere).await;
        let source = match &s.torrent {
            Some(t) => {
                // A sphere torrent announces with our own key; a public torrent someone
                // passed on keeps its own trackers.
                let private = Metainfo::from_bytes(t).is_ok_and(|m| m.private);
                let bytes = match &announce {
                    Some(a) if private => {
                        spheres_metainfo::with_trackers(t, std::slice::from_ref(a))?
                    }
                    _ => t.clone(),
                };
                Source::Torrent(bytes)
            }
            None => Source::Magnet(s.magnet.clone()),
        };
        let mut opts = match path {
            Some(p) => AddOptions::seed(p),
            None => {
                // Out of sight until complete and verified (see `incoming`).
                let staging = incoming::incoming_dir(Path::new(&sphere.folder), &s.id);
                std::fs::create_dir_all(&staging)
                    .with_context(|| format!("cannot create {}", staging.display()))?;
                AddOptions::download(staging)
            }
        };
        opts.peers = self.peers_for(&sphere.room, &s.id);
        lock(&self.given_peers).insert(s.id.clone(), opts.peers.iter().copied().collect());
        self.engine.add(source, opts).await?;
        if path.is_none() {
            self.stagger(hash);
        }
        Ok(())
    }

    /// Makes this member fetch a large download from its own starting point first.
    ///
    /// librqbit asks for pieces in order, so members that start a share together all ask the
    /// sharer for the same pieces and have nothing to trade: a star. A reader that walks the
    /// largest file from a point of its own (derived from our address and the share, so it
    /// differs between members) makes the engine fetch that region first; members then hold
    /// different pieces and serve each other while the rest comes in order.
    fn stagger(&self, hash: InfoHash) {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        const MIN_SIZE: u64 = 16 * 1024 * 1024;
        let Some(meta) = self.engine.metainfo(&hash) else {
            return;
        };
        let Some((index, file)) = meta
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.padding)
            .max_by_key(|(_, f)| f.length)
        else {
            return;
        };
        if file.length < MIN_SIZE || self.engine.status(&hash).is_none_or(|s| s.is_complete()) {
            return;
        }
        // A stream slot of our own budget, never more than a few: viewers come first.
        let Ok(permit) = self.staggering.clone().try_acquire_owned() else {
            return;
        };
        let mut h = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&(self.me.as_str(), hash.0), &mut h);
        let start = std::hash::Hasher::finish(&h) % file.length;
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let Ok(mut reader) = engine.open_file(&hash, index).await else {
                return;
            };
            if reader.seek(std::io::SeekFrom::Start(start)).await.is_err() {
                return;
            }
            let mut buf = vec![0u8; 256 * 1024];
            // Reads wait for the pieces and end at the end of the file. A read that gets
            // nothing for two minutes (the share withdrawn, or added again with new peers,
            // which leaves this stream behind) ends it too: it frees its slot.
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_secs(120), reader.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
            }
            tracing::debug!(%hash, start, "staggered start done");
        });
    }

    /// A download with no peer, while members we did not give it are online (the owner's
    /// tracker may be away): added again with them. librqbit takes peers only when a torrent
    /// is added; what was verified stays (the data on disk is checked again).
    async fn refresh_peers(&self, sphere: &Sphere, share: &spheres_store::ShareRow) {
        let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
            return;
        };
        let Some(st) = self.engine.status(&hash) else {
            return;
        };
        if st.peers > 0 || st.state != TorrentState::Downloading {
            return;
        }
        let now: HashSet<SocketAddr> = self
            .peers_for(&sphere.room, &share.info_hash)
            .into_iter()
            .collect();
        let fresh = {
            let given = lock(&self.given_peers);
            let before = given.get(&share.info_hash);
            now.iter().any(|p| before.is_none_or(|b| !b.contains(p)))
        };
        if !fresh {
            return;
        }
        tracing::info!(share = %share.name, peers = now.len(), "no peers: adding the download again with members' endpoints");
        if self.engine.remove(&hash, false).await.is_ok()
            && let Err(e) = self
                .add_to_engine(sphere, &self.share_from_row(share), None)
                .await
        {
            tracing::warn!(share = %share.name, error = %e, "cannot add the download again");
        }
    }

    /// Our announce URL for a sphere: our own tracker for spheres we own, else the key the
    /// owner gave us.
    async fn announce_url(&self, sphere: &Sphere) -> Option<String> {
        if sphere.owned {
            let key = self.owner_key(sphere).await.ok()?;
            // Known to the tracker before any torrent of the sphere is granted to it.
            self.tracker.tracker.grant_key(
                key.clone(),
                KeyScope::Torrents(self.sphere_hashes(sphere).await),
            );
            return self.tracker.http_announce_url(Some(&key));
        }
        self.store
            .sphere(&sphere.name)
            .await
            .ok()
            .flatten()
            .and_then(|s| s.announce)
    }

    /// A withdrawal: only the sharer, or the sphere's owner, can take a share back.
    /// The info hashes of a sphere's shares.
    async fn sphere_hashes(&self, sphere: &Sphere) -> HashSet<InfoHash> {
        self.store
            .shares(sphere.id)
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s.info_hash.parse().ok())
            .collect()
    }

    async fn on_withdraw(&self, sphere: &Sphere, w: Withdraw, sender: &Sender) -> Result<()> {
        let Some(row) = self.store.share(sphere.id, &w.id).await? else {
            return Ok(());
        };
        if row.sharer != sender.jid.as_str() && !sender.owner {
            bail!(
                "{} tried to withdraw {}, shared by {}; ignored",
                sender.jid,
                row.name,
                row.sharer
            );
        }
        if let Ok(hash) = w.id.parse::<InfoHash>() {
            let _ = self.engine.remove(&hash, false).await;
        }
        self.store
            .set_share_state(sphere.id, &row.info_hash, "withdrawn", None, None)
            .await?;
        Ok(())
    }

    async fn on_presence(&self, p: Presence) {
        let Some(occ) = Occupant::from_presence(&p) else {
            self.on_contact_presence(&p);
            return;
        };
        let room = occ.room.to_string();
        let Ok(Some(sphere)) = self.store.sphere_by_room(&room).await else {
            return;
        };
        if occ.is_self {
            if occ.present {
                lock(&self.joined).insert(room.clone());
                self.joined_notify.notify_waiters();
            } else {
                lock(&self.joined).remove(&room);
                if occ.codes.iter().any(|c| matches!(c, 301 | 307 | 321)) {
                    tracing::warn!(sphere = %sphere.name, "we were removed from the sphere");
                }
            }
            return;
        }
        let key = (room.clone(), occ.nick.clone());
        {
            let mut all = lock(&self.occupants);
            let in_room = all.entry(room.clone()).or_default();
            if occ.present {
                in_room.insert(occ.nick.clone(), occ.clone());
            } else {
                in_room.remove(&occ.nick);
                lock(&self.granted).remove(&key);
            }
        }
        self.emit(json!({"type": "presence", "sphere": sphere.name}));
        if !occ.present || !sphere.owned {
            return;
        }
        self.feed_endpoints(&sphere).await;
        // A member of a sphere we own: their tracker key, once per visit.
        let Some(real) = occ.jid.as_ref().map(|j| j.to_bare().to_string()) else {
            return;
        };
        if lock(&self.granted).contains(&key) {
            return;
        }
        let Ok(members) = self.store.members(sphere.id).await else {
            return;
        };
        let Some(member) = members.into_iter().find(|m| m.jid == real) else {
            return;
        };
        let Some(announce) = self.tracker.http_announce_url(Some(&member.tracker_key)) else {
            return;
        };
        let Ok(member_jid) = BareJid::new(&member.jid) else {
            return;
        };
        let Ok(to) = occ.room.with_resource_str(&occ.nick) else {
            return;
        };
        let grant = TrackerGrant {
            member: member_jid,
            announce,
        };
        if self
            .xmpp
            .send(grant.into_message(Jid::from(to)))
            .await
            .is_ok()
        {
            lock(&self.granted).insert(key);
        }
    }

    /// A contact's presence, or a subscription request.
    fn on_contact_presence(&self, p: &Presence) {
        use spheres_xmpp::contacts::SubscriptionEvent;
        use spheres_xmpp::xmpp_parsers::presence::Type as PresenceType;
        let Some(from) = p.from.as_ref() else { return };
        let bare = from.to_bare().to_string();
        if bare == self.me.as_str() {
            return;
        }
        if let Some(SubscriptionEvent::Request(who)) = SubscriptionEvent::from_presence(p) {
            // Anyone may ask: the list waiting for an answer is bounded.
            let mut asking = lock(&self.contact_requests);
            if asking.len() >= MAX_CONTACT_REQUESTS && !asking.contains(who.as_str()) {
                tracing::info!(from = %who, "too many contact requests waiting; ignoring one more");
                return;
            }
            asking.insert(who.to_string());
            drop(asking);
            self.emit(json!({"type": "contacts"}));
            return;
        }
        let resource = from
            .resource()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_default();
        match p.type_ {
            PresenceType::None => {
                // Bounded too: directed presence can come from anyone.
                let mut online = lock(&self.contacts_online);
                let full = online.len() >= MAX_PRESENCES && !online.contains_key(&bare);
                let entry = online.entry(bare.clone());
                match entry {
                    _ if full => return,
                    e => {
                        let resources = e.or_default();
                        if resources.len() < MAX_RESOURCES {
                            resources.insert(resource);
                        }
                    }
                }
            }
            PresenceType::Unavailable => {
                let mut all = lock(&self.contacts_online);
                if let Some(r) = all.get_mut(&bare) {
                    r.remove(&resource);
                    if r.is_empty() {
                        all.remove(&bare);
                    }
                }
            }
            _ => return,
        }
        self.emit(json!({"type": "contacts"}));
    }

    /// Everyone who may have a torrent: members' endpoints in its room and peers heard on
    /// the LAN for it.
    fn peers_for(&self, room: &str, info_hash: &str) -> Vec<SocketAddr> {
        let mut peers = self.member_endpoints(room);
        if let Some(heard) = lock(&self.lsd).as_ref() {
            for p in heard.peers(info_hash) {
                if !peers.contains(&p) {
                    peers.push(p);
                }
            }
        }
        peers
    }

    /// A share as LAN discovery announces it: a private torrent (every sphere's, or one we
    /// cannot tell yet) never by its info hash (`lsd::private_name`, docs/decisions/0007).
    fn lan_torrent(&self, info_hash: &str) -> Option<spheres_net::lsd::Torrent> {
        let hash = info_hash.parse::<InfoHash>().ok()?;
        let private = self.engine.metainfo(&hash).is_none_or(|m| m.private);
        Some(spheres_net::lsd::Torrent {
            info_hash: hash.0,
            private,
        })
    }

    /// Local service discovery for every share, when the node listens beyond loopback.
    fn start_lsd(self: &Arc<Self>) {
        if self.engine.listen_addr().ip().is_loopback() {
            return;
        }
        let node = Arc::downgrade(self);
        let started = spheres_net::lsd::start(self.engine.listen_addr().port(), move || {
            node.upgrade()
                .map(|n| lock(&n.lsd_hashes).clone())
                .unwrap_or_default()
        });
        match started {
            Ok(heard) => *lock(&self.lsd) = Some(heard),
            Err(e) => tracing::warn!(error = %e, "no local service discovery (UDP port 6771)"),
        }
    }

    /// Members' endpoints in a room, as peers.
    fn member_endpoints(&self, room: &str) -> Vec<SocketAddr> {
        let all = lock(&self.occupants);
        let Some(in_room) = all.get(room) else {
            return Vec::new();
        };
        in_room
            .values()
            .filter_map(|o| o.endpoints.as_ref())
            .flat_map(|e| e.endpoints.iter().take(MAX_ENDPOINTS))
            .filter_map(|e| Some(SocketAddr::new(e.host.parse::<IpAddr>().ok()?, e.port)))
            .filter(|a| a.port() != 0)
            .collect()
    }

    /// Puts members' endpoints into our tracker's swarms for a sphere we own, so that every
    /// member (and any plain client with a member's key) gets them as peers.
    async fn feed_endpoints(&self, sphere: &Sphere) {
        if !sphere.owned {
            return;
        }
        let Ok(shares) = self.store.shares(sphere.id).await else {
            return;
        };
        let peers: Vec<(String, SocketAddr)> = {
            let all = lock(&self.occupants);
            all.get(&sphere.room)
                .map(|r| {
                    r.values()
                        .filter_map(|o| {
                            let who = o.jid.as_ref()?.to_bare().to_string();
                            Some((who, o.endpoints.clone()?))
                        })
                        .flat_map(|(who, e)| {
                            e.endpoints
                                .into_iter()
                                .take(MAX_ENDPOINTS)
                                .filter_map(move |ep| {
                                    let ip = ep.host.parse::<IpAddr>().ok()?;
                                    Some((who.clone(), SocketAddr::new(ip, ep.port)))
                                })
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let now = Instant::now();
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        for share in shares.iter().filter(|s| s.state != "withdrawn") {
            let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
                continue;
            };
            for (who, addr) in &peers {
                if addr.port() == 0 {
                    continue;
                }
                let req = AnnounceRequest {
                    info_hash: hash,
                    peer_id: peer_id_for(who, addr),
                    port: addr.port(),
                    uploaded: 0,
                    downloaded: 0,
                    // Unknown: counted as a leecher, so seeders are given it too.
                    left: 1,
                    event: TrackerEvent::None,
                    numwant: Some(0),
                    compact: true,
                    no_peer_id: true,
                    ip: Some(addr.ip()),
                };
                let _ = self
                    .tracker
                    .tracker
                    .announce(&req, loopback, Some(&self.self_key), now);
            }
        }
    }

    /// A download is complete and verified: it appears in the sphere's folder (never over
    /// anything already there) and the share is `seeding`.
    async fn complete_download(
        &self,
        sphere: &Sphere,
        share: &spheres_store::ShareRow,
        hash: &InfoHash,
    ) {
        let Some(meta) = self.engine.metainfo(hash) else {
            return;
        };
        let Some(st) = self.engine.status(hash) else {
            return;
        };
        let folder = PathBuf::from(&sphere.folder);
        // Where the engine has it: this sphere's `incoming`, or another sphere's when the same
        // torrent is in both.
        let source = if meta.multi_file {
            st.root
                .parent()
                .map_or_else(|| st.root.clone(), Path::to_path_buf)
        } else {
            st.root.clone()
        };
        let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => a == b,
        };
        let placed = if same(&source, &folder) {
            // Downloaded before downloads were staged: already in place.
            Ok(st.root.clone())
        } else {
            tokio::task::spawn_blocking(move || incoming::place(&source, &folder, &meta))
                .await
                .map_err(|e| anyhow!("{e}"))
                .and_then(|r| r.context("cannot put the download in the sphere's folder"))
        };
        let (state, path, error) = match placed {
            Ok(p) => {
                tracing::info!(share = %share.name, path = %p.display(), "download complete and verified");
                ("seeding", Some(p.to_string_lossy().into_owned()), None)
            }
            Err(e) => {
                tracing::warn!(share = %share.name, error = %format!("{e:#}"), "cannot place a download");
                ("failed", None, Some(format!("{e:#}")))
            }
        };
        let _ = self
            .store
            .set_share_state(
                sphere.id,
                &share.info_hash,
                state,
                path.as_deref(),
                error.as_deref(),
            )
            .await;
        self.emit(json!({"type": "share", "sphere": sphere.name}));
    }

    /// A fetched share whose copy in the sphere's folder the person deleted: the copy the
    /// engine seeds (out of sight, in `incoming`) goes too, and the share is `available`
    /// again. Deleting the file is how a person says "not on this computer".
    async fn forget_if_removed(&self, sphere: &Sphere, share: &spheres_store::ShareRow) {
        let staging = incoming::incoming_dir(Path::new(&sphere.folder), &share.info_hash);
        let Some(path) = share.path.as_deref() else {
            return;
        };
        let gone = matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        if !gone || !staging.exists() {
            return;
        }
        tracing::info!(share = %share.name, "its copy was deleted from the sphere's folder; no longer kept here");
        if let Ok(hash) = share.info_hash.parse::<InfoHash>() {
            let _ = self.engine.remove(&hash, false).await;
        }
        if let Err(e) = std::fs::remove_dir_all(&staging) {
            tracing::warn!(path = %staging.display(), error = %e, "cannot remove a deleted share's data");
        }
        let _ = self
            .store
            .set_share_state(sphere.id, &share.info_hash, "available", None, None)
            .await;
        self.emit(json!({"type": "share", "sphere": sphere.name}));
    }

    /// Periodic work: completed downloads become seeding; endpoints are re-fed.
    async fn housekeeping(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_feed = Instant::now();
        loop {
            tick.tick().await;
            let Ok(spheres) = self.store.spheres().await else {
                continue;
            };
            // What we announce on the LAN, gathered from the same reads as the rest.
            let mut active = Vec::new();
            for sphere in &spheres {
                let Ok(shares) = self.store.shares(sphere.id).await else {
                    continue;
                };
                active.extend(
                    shares
                        .iter()
                        .filter(|s| s.state == "seeding" || s.state == "downloading")
                        .filter_map(|s| self.lan_torrent(&s.info_hash)),
                );
                for share in shares.iter().filter(|s| s.state == "downloading") {
                    let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
                        continue;
                    };
                    if last_feed.elapsed() >= FEED_EVERY {
                        self.refresh_peers(sphere, share).await;
                    }
                    if let Some(st) = self.engine.status(&hash) {
                        if st.is_complete() {
                            self.complete_download(sphere, share, &hash).await;
                        } else if st.state == TorrentState::Error {
                            let _ = self
                                .store
                                .set_share_state(
                                    sphere.id,
                                    &share.info_hash,
                                    "downloading",
                                    None,
                                    st.error.as_deref(),
                                )
                                .await;
                        }
                    }
                }
                if last_feed.elapsed() >= FEED_EVERY {
                    // Unconfirmed announcements go again (each on its own growing delay).
                    if lock(&self.joined).contains(&sphere.room) {
                        self.flush_outbox(sphere).await;
                    }
                    self.feed_endpoints(sphere).await;
                    for share in shares.iter().filter(|s| s.state == "seeding") {
                        self.forget_if_removed(sphere, share).await;
                    }
                }
            }
            *lock(&self.lsd_hashes) = active;
            if last_feed.elapsed() >= FEED_EVERY {
                last_feed = Instant::now();
                // The household server: back up if it died (clients reconnect by themselves).
                if let Some(p) = &self.prosody {
                    match p.lock().await.supervise().await {
                        Ok(true) => {
                            tracing::warn!("the household server had stopped; restarted it")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "cannot restart the household server")
                        }
                    }
                }
            }
        }
    }

    async fn shutdown(&self) {
        if let Some(m) = self.mapping.lock().await.take()
            && let Err(e) = m.remove().await
        {
            tracing::warn!(error = %e, "the port mapping stays until its lease ends");
        }
        self.xmpp.close().await;
        self.engine.shutdown().await;
        if let Some(p) = &self.prosody {
            p.lock().await.stop().await;
        }
        self.store.close().await;
    }

    // ----- What the API offers -----

    pub async fn status(&self) -> Result<serde_json::Value> {
        let spheres = self.store.spheres().await?;
        let mut list = Vec::new();
        for s in &spheres {
            let shares = self.store.shares(s.id).await?;
            let present = lock(&self.occupants).get(&s.room).map_or(0, |r| r.len());
            let (messages, last_activity) = self.store.activity(s.id).await?;
            list.push(json!({"name": s.name, "room": s.room, "owned": s.owned, "shares": shares.len(),
                             "members_online": present, "messages": messages, "last_activity": last_activity}));
        }
        let transfers: Vec<_> = self
            .engine
            .list()
            .into_iter()
            .map(|t| json!({"info_hash": t.info_hash, "name": t.name, "state": format!("{:?}", t.state).to_lowercase(),
                            "have_bytes": t.have_bytes, "total_bytes": t.total_bytes, "peers": t.peers,
                            "download_bps": t.download_bps, "upload_bps": t.upload_bps}))
            .collect();
        Ok(json!({
            "jid": self.me.to_string(),
            "http": lock(&self.http).map(|a| format!("http://{a}")),
            "listen": self.engine.listen_addr().to_string(),
            "tracker": self.tracker.http_addr.map(|a| a.to_string()),
            "household": self.household,
            "muc": self.muc,
            "spheres_dir": self.settings.spheres_dir,
            "headless": self.settings.headless,
            "web_password": self.has_password().await,
            "reachability": *lock(&self.reachability),
            "endpoints": self.endpoints().endpoints.iter().map(|e| json!({"kind": e.kind, "host": e.host, "port": e.port})).collect::<Vec<_>>(),
            "download_limit": self.engine.limits().0.map(|n| n.get()),
            "upload_limit": self.engine.limits().1.map(|n| n.get()),
            "spheres": list,
            "transfers": transfers,
        }))
    }

    pub async fn sphere_named(&self, name: &str) -> Result<Sphere> {
        self.store
            .sphere(name)
            .await?
            .ok_or_else(|| anyhow!("there is no sphere named {name:?} (see `spheres sphere list`)"))
    }

    pub async fn create_sphere(&self, name: &str) -> Result<Sphere> {
        check_sphere_name(name)?;
        if self.store.sphere(name).await?.is_some() {
            bail!("a sphere named {name:?} already exists");
        }
        let room = BareJid::new(&format!("{}@{}", room_local(name), self.muc))?;
        let settings = RoomSettings {
            name: name.to_owned(),
            description: None,
        };
        self.xmpp
            .create_room(&room, &self.nick, &settings)
            .await
            .context("the server refused to create the sphere's room")?;
        // Publish our endpoints in the room.
        self.xmpp
            .join_room(&room, &self.nick, Some(self.endpoints()))
            .await?;
        let folder = sphere_folder(&self.settings.spheres_dir, name)?;
        let sphere = self
            .store
            .add_sphere(name, room.as_str(), &folder.to_string_lossy(), true)
            .await?;
        tracing::info!(sphere = name, room = %room, "created a sphere");
        Ok(sphere)
    }

    pub async fn list_spheres(&self) -> Result<Vec<Sphere>> {
        Ok(self.store.spheres().await?)
    }

    pub async fn invite(&self, name: &str, jid: &str) -> Result<()> {
        let sphere = self.sphere_named(name).await?;
        if !sphere.owned {
            bail!("only the sphere's owner can invite (you are a member of {name:?})");
        }
        let who = address(jid)?;
        let room = BareJid::new(&sphere.room)?;
        self.xmpp
            .set_affiliation(
                &room,
                &who,
                spheres_xmpp::xmpp_parsers::muc::user::Affiliation::Member,
                None,
            )
            .await?;
        let member = self
            .store
            .add_member(sphere.id, who.as_str(), &random_token(16))
            .await?;
        let hashes = self.sphere_hashes(&sphere).await;
        self.tracker
            .tracker
            .grant_key(member.tracker_key.clone(), KeyScope::Torrents(hashes));
        self.xmpp.invite(&room, &who, Some(name)).await?;
        Ok(())
    }

    /// A link for someone with no account: it creates one on the household server (this
    /// node's) and joins the sphere. One link, one person.
    pub async fn invite_link(&self, name: &str) -> Result<String> {
        let sphere = self.sphere_named(name).await?;
        if !sphere.owned {
            bail!("only the sphere's owner can make invitation links");
        }
        let (Some(p), Some(h)) = (&self.prosody, &self.household) else {
            bail!(
                "invitation links need the household server this node runs; invite an existing account with `spheres sphere invite`"
            );
        };
        let token = p.lock().await.invite().await?.token;
        self.store.set_meta(&format!("link:{token}"), name).await?;
        let pem = std::fs::read_to_string(&h.ca)
            .with_context(|| format!("cannot read {}", h.ca.display()))?;
        let link = spheres_xmpp::link::InviteLink {
            server: self.household_address_for_others(h.c2s)?.to_string(),
            domain: h.domain.clone(),
            token,
            room: sphere.room.clone(),
            owner: self.me.to_string(),
            ca_der: spheres_xmpp::link::der_of_pem(&pem)?,
            sphere: Some(sphere.name.clone()),
        };
        Ok(link.to_string())
    }

    /// Takes an existing XMPP account from the web interface, on a fresh node: checks the
    /// address and password by logging in, saves the account, then restarts as it.
    /// `server` (`HOST:PORT`) skips DNS, for servers that publish no SRV record.
    pub async fn sign_in_existing(
        &self,
        jid: &str,
        password: &str,
        server: Option<&str>,
    ) -> Result<String> {
        self.can_change_account().await?;
        let bare = BareJid::new(jid.trim())
            .ok()
            .filter(|j| j.node().is_some())
            .ok_or_else(|| {
                anyhow!("{jid:?} is not an XMPP address (they look like name@example.org)")
            })?;
        let server = server.map(str::trim).filter(|s| !s.is_empty());
        let mut cfg = ConnectConfig::new(bare.clone(), password.to_owned());
        if let Some(s) = server {
            cfg.server = Some(resolve(s).await?);
        }
        cfg.extra_ca = self.settings.xmpp_ca.clone();
        cfg.reconnect = false;
        let (client, _events) = match tokio::time::timeout(
            Duration::from_secs(30),
            Client::connect(cfg),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(spheres_xmpp::XmppError::Auth(_))) => {
                bail!("the server refused this address and password; check them and try again")
            }
            Ok(Err(e)) => bail!("cannot log in as {bare}: {e}"),
            Err(_) => bail!(
                "the server of {bare} did not answer within 30 s; check the address (or give its server)"
            ),
        };
        // Spheres need the server's group chat service: without one the node could not
        // start as this account, so it is checked now, while nothing has changed.
        let muc = match &self.settings.muc {
            Some(_) => Ok(()),
            None => discover_muc(&client, &bare).await.map(|_| ()),
        };
        client.close().await;
        muc.with_context(|| {
            format!("{bare}'s server offers no group chat (MUC) service, which spheres need")
        })?;
        let a = AccountFile {
            jid: bare.to_string(),
            password: password.to_owned(),
            household: None,
            server: server.map(str::to_owned),
            ca: self.settings.xmpp_ca.clone(),
            claim: None,
        };
        write_private(
            &Self::account_path(&self.settings.data_dir),
            &serde_json::to_vec_pretty(&a)?,
        )?;
        tracing::info!(jid = %bare, "signed in with an existing account; restarting as it");
        self.restart.notify_one();
        Ok(bare.to_string())
    }

    /// What an invitation link offers, to greet the newcomer before they say yes.
    pub async fn link_preview(&self, link: &str) -> Result<serde_json::Value> {
        let l = spheres_xmpp::link::InviteLink::parse(link)?;
        let why_not = self.can_change_account().await.err().map(|e| e.to_string());
        Ok(
            json!({"sphere": l.sphere_name(), "owner": l.owner, "domain": l.domain,
                  "can_join": why_not.is_none(), "why_not": why_not}),
        )
    }

    /// A node can take another account (an invitation link, an existing account) while it is
    /// still the fresh household it made for itself: no spheres, nobody else's data to lose.
    async fn can_change_account(&self) -> Result<()> {
        if self.household.is_none() {
            bail!(
                "this node already has the account {}; to use another one, start another node with its own --data-dir",
                self.me
            );
        }
        if !self.store.spheres().await?.is_empty() {
            bail!(
                "this node already has spheres of its own; to use another account, start another node with its own --data-dir"
            );
        }
        Ok(())
    }

    /// Takes an invitation link from the web interface: creates the account `name` on the
    /// household server the link names, then restarts the node as that account (it then
    /// claims the invitation and joins the sphere by itself, as with `up --invite`).
    pub async fn join_with_link(&self, link: &str, name: &str) -> Result<String> {
        self.can_change_account().await?;
        let user = user_name_of(name)?;
        let account = Self::account_from_link(&self.settings, link, &user).await?;
        tracing::info!(jid = %account.jid, "account created with an invitation link; restarting as it");
        self.restart.notify_one();
        Ok(account.jid)
    }

    /// Whether the household server we run listens on this machine's loopback only.
    pub fn household_on_loopback(&self) -> bool {
        self.household.is_some() && self.settings.xmpp_listen.is_loopback()
    }

    /// Where people on other machines reach the household server: its listening address, or
    /// this machine's LAN address when it listens everywhere.
    fn household_address_for_others(&self, c2s: SocketAddr) -> Result<SocketAddr> {
        let listen = self.settings.xmpp_listen;
        if listen.is_unspecified() {
            let lan = spheres_net::lan_address().ok_or_else(|| {
                anyhow!("this machine has no LAN address to put in an invitation link")
            })?;
            return Ok(SocketAddr::new(lan, c2s.port()));
        }
        Ok(SocketAddr::new(listen, c2s.port()))
    }

    pub async fn invites(&self) -> Result<Vec<spheres_store::Invite>> {
        Ok(self.store.invites().await?)
    }

    /// Accepts an invitation: `invite` is the room's JID (or the sphere's name as invited).
    pub async fn join(self: &Arc<Self>, invite: &str) -> Result<Sphere> {
        let invites = self.store.invites().await?;
        let inv = invites
            .iter()
            .find(|i| i.room == invite || i.reason.as_deref() == Some(invite))
            .ok_or_else(|| {
                anyhow!("no pending invitation to {invite:?} (see `spheres sphere invites`)")
            })?;
        let base = sphere_name_from_invite(inv.reason.as_deref(), &inv.room);
        let mut name = base.clone();
        let mut n = 2;
        while self.store.sphere(&name).await?.is_some()
            || self.settings.spheres_dir.join(&name).exists()
        {
            name = format!("{base} ({n})");
            n += 1;
        }
        let folder = sphere_folder(&self.settings.spheres_dir, &name)?;
        let sphere = self
            .store
            .add_sphere(&name, &inv.room, &folder.to_string_lossy(), false)
            .await?;
        self.store.remove_invite(&inv.room).await?;
        self.join_sphere_room(&sphere).await;
        Ok(sphere)
    }

    pub async fn leave(&self, name: &str) -> Result<()> {
        let sphere = self.sphere_named(name).await?;
        let room = BareJid::new(&sphere.room)?;
        let _ = self.xmpp.leave_room(&room, &self.nick).await;
        for share in self.store.shares(sphere.id).await? {
            if let Ok(hash) = share.info_hash.parse::<InfoHash>() {
                let _ = self.engine.remove(&hash, false).await;
            }
        }
        self.store.remove_sphere(sphere.id).await?;
        lock(&self.occupants).remove(&sphere.room);
        Ok(())
    }

    pub async fn remove_member(&self, name: &str, jid: &str) -> Result<()> {
        let sphere = self.sphere_named(name).await?;
        if !sphere.owned {
            bail!("only the sphere's owner can remove members");
        }
        let who = address(jid)?;
        let room = BareJid::new(&sphere.room)?;
        self.xmpp.remove_member(&room, &who).await?;
        if let Some(key) = self.store.remove_member(sphere.id, who.as_str()).await? {
            self.tracker.tracker.revoke_key(&key);
        }
        Ok(())
    }

    pub async fn members(&self, name: &str) -> Result<serde_json::Value> {
        let sphere = self.sphere_named(name).await?;
        let room = BareJid::new(&sphere.room)?;
        let affiliated = self.xmpp.room_members(&room).await?;
        let present: HashMap<String, Occupant> = lock(&self.occupants)
            .get(&sphere.room)
            .map(|r| {
                r.values()
                    .filter_map(|o| Some((o.jid.as_ref()?.to_bare().to_string(), o.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let list: Vec<_> = affiliated
            .into_iter()
            .map(|(jid, aff)| {
                let j = jid.to_string();
                let online = j == self.me.as_str() || present.contains_key(&j);
                let endpoints: Vec<String> = present
                    .get(&j)
                    .and_then(|o| o.endpoints.clone())
                    .map(|e| e.endpoints.iter().map(|x| format!("{}:{}", x.host, x.port)).collect())
                    .unwrap_or_default();
                json!({"jid": j, "affiliation": format!("{aff:?}").to_lowercase(), "online": online, "endpoints": endpoints})
            })
            .collect();
        Ok(json!(list))
    }

    /// Shares a file or folder in a sphere: hash it (progress visible in `shares`), seed it
    /// in place, announce it in the room.
    pub async fn share(self: &Arc<Self>, name: &str, path: &Path) -> Result<serde_json::Value> {
        let sphere = self.sphere_named(name).await?;
        let path = path
            .canonicalize()
            .with_context(|| format!("cannot find {}", path.display()))?;
        let announce = self
            .announce_url(&sphere)
            .await
            .ok_or_else(|| anyhow!("the sphere's owner has not given this node its tracker key yet; try again in a moment"))?;
        let key = (name.to_owned(), path.to_string_lossy().into_owned());
        lock(&self.hashing).insert(key.clone(), (0, 0));
        let opts = CreateOptions {
            private: true,
            trackers: vec![vec![announce]],
            created_by: Some(format!("spheres {}", env!("CARGO_PKG_VERSION"))),
            creation_date: Some(now_secs()),
            ..Default::default()
        };
        let me = self.clone();
        let hash_path = path.clone();
        let progress_key = key.clone();
        let made = tokio::task::spawn_blocking(move || {
            spheres_metainfo::create_torrent(&hash_path, &opts, &mut |p| {
                lock(&me.hashing).insert(progress_key.clone(), (p.hashed_bytes, p.total_bytes));
            })
        })
        .await;
        lock(&self.hashing).remove(&key);
        let (torrent, meta) = made
            .map_err(|e| anyhow!("hashing stopped: {e}"))?
            .with_context(|| format!("cannot share {}", path.display()))?;
        let share = self.share_of(&meta, torrent.clone());
        let path_text = path.to_string_lossy().into_owned();
        self.store
            .add_share(
                sphere.id,
                &NewShare {
                    info_hash: &share.id,
                    name: &share.name,
                    size: share.size,
                    files: share.files,
                    media: &share.media,
                    sharer: share.sharer.as_str(),
                    magnet: &share.magnet,
                    torrent: Some(&torrent),
                    path: Some(&path_text),
                    state: "seeding",
                },
            )
            .await?;
        self.sphere_owned_grant(&sphere, &meta.info_hash).await;
        self.emit(json!({"type": "share", "sphere": sphere.name}));
        self.add_to_engine(&sphere, &share, Some(&path_text))
            .await
            .context("cannot seed the share")?;
        self.feed_endpoints(&sphere).await;
        self.announce(&sphere, &share).await?;
        Ok(
            json!({"info_hash": share.id, "name": share.name, "size": share.size, "files": share.files, "magnet": share.magnet}),
        )
    }

    /// Our announcement of a torrent.
    fn share_of(&self, meta: &Metainfo, torrent: Vec<u8>) -> Share {
        Share {
            id: meta.info_hash.to_hex(),
            name: meta.name.clone(),
            size: meta.total_length,
            files: meta.visible_files().count() as u64,
            media: media_of(meta).to_owned(),
            sharer: self.me.clone(),
            magnet: meta.magnet().to_string(),
            torrent: Some(torrent),
        }
    }

    /// Whether a `.torrent` at `path` was already passed on.
    async fn dropped_already(&self, path: &Path) -> bool {
        let key = format!("dropped:{}", path.display());
        matches!(self.store.meta(&key).await, Ok(Some(_)))
    }

    /// A `.torrent` dropped into a sphere's folder: passed on as it is (a public torrent keeps
    /// its trackers), fetched into the folder here as on every member's node.
    async fn share_dropped_torrent(self: &Arc<Self>, name: &str, path: &Path) -> Result<()> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        self.pass_on_torrent(name, path, bytes).await
    }

    /// A `.magnet` file (a text file holding a magnet link) dropped into a sphere's folder:
    /// its metadata is fetched in the background from the magnet's trackers (and DHT when
    /// on), then it is passed on like a dropped `.torrent`, so members get the whole
    /// .torrent in the announcement and never wait for metadata themselves.
    async fn share_dropped_magnet(self: &Arc<Self>, name: &str, path: &Path) -> Result<()> {
        let text =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        if text.len() > 64 * 1024 {
            bail!("{} is too large to be a magnet link", path.display());
        }
        let text = String::from_utf8_lossy(&text);
        let link = text
            .split_whitespace()
            .find(|w| w.starts_with("magnet:"))
            .ok_or_else(|| anyhow!("{} holds no magnet link", path.display()))?
            .to_owned();
        let magnet: spheres_metainfo::Magnet = link
            .parse()
            .with_context(|| format!("{} holds a damaged magnet link", path.display()))?;
        if magnet.trackers.is_empty() && magnet.peers.is_empty() && !self.settings.dht {
            bail!(
                "the magnet link in {} names no tracker and no peer; start the node with --dht to find peers for it",
                path.display()
            );
        }
        // Marked at once: the watcher does not take it again while the metadata comes.
        let key = format!("dropped:{}", path.display());
        self.store
            .set_meta(&key, &magnet.info_hash.to_string())
            .await?;
        tracing::info!(sphere = name, hash = %magnet.info_hash, "fetching the metadata of a dropped magnet");
        let (node, name, path) = (self.clone(), name.to_owned(), path.to_owned());
        tokio::spawn(async move {
            let fetched = node
                .engine
                .metadata(&link, Vec::new(), Duration::from_secs(60), MAGNET_PATIENCE)
                .await;
            let result = match fetched {
                Ok(bytes) => node.pass_on_torrent(&name, &path, bytes).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                tracing::warn!(path = %path.display(), error = %format!("{e:#}"), "cannot pass on a dropped magnet; will try again");
                // Unmarked: the watcher tries again (after its retry delay).
                let _ = node.store.remove_meta(&key).await;
            }
        });
        Ok(())
    }

    /// Passes on a torrent (dropped in, or fetched for a dropped magnet) as it is.
    async fn pass_on_torrent(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
        bytes: Vec<u8>,
    ) -> Result<()> {
        let sphere = self.sphere_named(name).await?;
        let meta = Metainfo::from_bytes(&bytes)
            .with_context(|| format!("{} is not a usable torrent", path.display()))?;
        let share = self.share_of(&meta, bytes);
        self.store
            .set_meta(&format!("dropped:{}", path.display()), &share.id)
            .await?;
        tracing::info!(sphere = %sphere.name, torrent = %meta.name, private = meta.private, "passing on a dropped torrent");
        // Recorded and fetched like any announced share, then announced to the others.
        let us = Sender {
            jid: self.me.clone(),
            owner: sphere.owned,
        };
        self.on_share(&sphere, share.clone(), &us).await?;
        self.announce(&sphere, &share).await
    }

    /// Announces one of our shares in its sphere's room, through the outbox: it stays there
    /// (in the store) until the room's copy of our message comes back, and is sent again
    /// when the node is next in the room (after a crash, a restart, time offline).
    async fn announce(&self, sphere: &Sphere, share: &Share) -> Result<()> {
        self.store.add_outbox(sphere.id, &share.id).await?;
        self.send_announcement(sphere, share).await
    }

    /// Sends an announcement now, unless we are at the budget other members hold us to (it
    /// then waits in the outbox for the next round: members would drop it). Each send is
    /// remembered, so a repeat comes only after a while that grows with each try.
    async fn send_announcement(&self, sphere: &Sphere, share: &Share) -> Result<()> {
        let key = (sphere.id, share.id.clone());
        {
            let tries = lock(&self.announced);
            if let Some((at, n)) = tries.get(&key) {
                let wait = Duration::from_secs(60 << (*n).min(6)).min(Duration::from_secs(3600));
                if at.elapsed() < wait {
                    return Ok(());
                }
            }
        }
        // Kept well under what members accept from us, for the repeats.
        let budget_ok = lock(&self.own_budget).allow(
            &sphere.room,
            self.me.as_str(),
            now_secs(),
            share.size,
            ANNOUNCES_PER_HOUR * 9 / 10,
        );
        if !budget_ok {
            tracing::info!(sphere = %sphere.name, share = %share.name, "many announcements this hour: this one waits in the outbox");
            return Ok(());
        }
        {
            let mut tries = lock(&self.announced);
            let n = tries.get(&key).map_or(0, |(_, n)| n + 1);
            tries.insert(key, (Instant::now(), n));
        }
        let room = BareJid::new(&sphere.room)?;
        self.xmpp
            .send(share.clone().into_message(room, &self.nick))
            .await?;
        Ok(())
    }

    /// Sends again what the room has not confirmed (called once we are in the room and have
    /// read its archive, where a confirmation may have been waiting).
    async fn flush_outbox(&self, sphere: &Sphere) {
        let Ok(waiting) = self.store.outbox(sphere.id).await else {
            return;
        };
        for hash in waiting {
            let Ok(Some(row)) = self.store.share(sphere.id, &hash).await else {
                let _ = self.store.remove_outbox(sphere.id, &hash).await;
                continue;
            };
            if let Err(e) = self
                .send_announcement(sphere, &self.share_from_row(&row))
                .await
            {
                tracing::warn!(share = %row.name, error = %e, "cannot announce a share");
            }
        }
    }

    pub async fn shares(&self, name: &str) -> Result<serde_json::Value> {
        let sphere = self.sphere_named(name).await?;
        let mut list = Vec::new();
        for ((sphere_name, path), (done, total)) in lock(&self.hashing).iter() {
            if *sphere_name == sphere.name {
                list.push(json!({"name": path, "state": "hashing", "have_bytes": done, "total_bytes": total}));
            }
        }
        let unconfirmed = self.store.outbox(sphere.id).await?;
        for s in self.store.shares(sphere.id).await? {
            let status = s
                .info_hash
                .parse::<InfoHash>()
                .ok()
                .and_then(|h| self.engine.status(&h));
            list.push(json!({
                "info_hash": s.info_hash, "name": s.name, "size": s.size, "files": s.files,
                // Ours, and the room has not confirmed it yet: members do not know of it.
                "announced": !unconfirmed.contains(&s.info_hash),
                "media": s.media, "sharer": s.sharer, "state": s.state, "path": s.path, "error": s.error,
                "have_bytes": status.as_ref().map_or(if s.state == "seeding" { s.size as u64 } else { 0 }, |t| t.have_bytes),
                "total_bytes": s.size, "peers": status.as_ref().map_or(0, |t| t.peers),
                "transfer": status.as_ref().map(|t| format!("{:?}", t.state).to_lowercase()),
                "download_bps": status.as_ref().map_or(0, |t| t.download_bps),
                "upload_bps": status.as_ref().map_or(0, |t| t.upload_bps),
            }));
        }
        Ok(json!(list))
    }

    fn is_carbon(&self, m: &Message) -> bool {
        m.payloads.iter().any(|p| p.ns() == "urn:xmpp:carbons:2")
    }

    /// Our contacts, with presence, and who asks to become one.
    pub async fn contacts(&self) -> Result<serde_json::Value> {
        use spheres_xmpp::xmpp_parsers::roster::Subscription;
        let items = self.xmpp.roster().await?;
        let online = lock(&self.contacts_online).clone();
        let list: Vec<_> = items
            .into_iter()
            .filter(|i| i.subscription != Subscription::Remove)
            .map(|i| {
                let jid = i.jid.to_string();
                json!({"jid": jid, "name": i.name, "online": online.contains_key(&jid),
                       "subscription": format!("{:?}", i.subscription).to_lowercase()})
            })
            .collect();
        let requests: Vec<String> = lock(&self.contact_requests).iter().cloned().collect();
        Ok(json!({"contacts": list, "requests": requests}))
    }

    pub async fn add_contact(&self, jid: &str, name: Option<&str>) -> Result<()> {
        let who = address(jid)?;
        if who == self.me {
            bail!("that is you");
        }
        lock(&self.contact_requests).remove(who.as_str());
        // Adding someone who asked is accepting them.
        self.xmpp.accept_contact(&who).await?;
        self.xmpp
            .add_contact(&who, name.filter(|n| !n.trim().is_empty()))
            .await?;
        self.emit(json!({"type": "contacts"}));
        Ok(())
    }

    /// A 1:1 conversation from the account's archive, oldest first.
    pub async fn conversation(&self, jid: &str) -> Result<serde_json::Value> {
        let who = address(jid)?;
        let history = self.xmpp.chat_history(&who, None).await?;
        let me = self.me.to_string();
        let list: Vec<_> = history
            .into_iter()
            .rev()
            .take(200)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .filter_map(|a| {
                let body = a.message.bodies.values().next()?.clone();
                let mine = a
                    .message
                    .from
                    .as_ref()
                    .is_some_and(|f| f.to_bare().to_string() == me);
                Some(json!({"body": body, "mine": mine, "stamp": a.stamp}))
            })
            .collect();
        Ok(json!(list))
    }

    pub async fn send_chat(&self, jid: &str, body: &str) -> Result<()> {
        let who = address(jid)?;
        let body = body.trim();
        if body.is_empty() || body.len() > 10_000 {
            bail!("write between 1 and 10,000 characters");
        }
        let m = Message::chat(Some(Jid::from(who.clone()))).with_body(
            spheres_xmpp::xmpp_parsers::message::Lang::from(""),
            body.to_owned(),
        );
        self.xmpp.send(m).await?;
        self.emit(json!({"type": "chat", "with": who.to_string()}));
        Ok(())
    }

    /// The last messages said in a sphere's room, oldest first.
    pub async fn messages(&self, name: &str) -> Result<serde_json::Value> {
        let sphere = self.sphere_named(name).await?;
        let rows = self.store.messages(sphere.id, 200).await?;
        Ok(json!(
            rows.into_iter()
                .map(
                    |m| json!({"nick": m.nick, "jid": m.jid, "body": m.body, "stamp": m.stamp,
                            "mine": m.jid.as_deref() == Some(self.me.as_str())})
                )
                .collect::<Vec<_>>()
        ))
    }

    /// Says something in a sphere's room.
    pub async fn say(&self, name: &str, body: &str) -> Result<()> {
        let sphere = self.sphere_named(name).await?;
        let body = body.trim();
        if body.is_empty() {
            bail!("nothing to say");
        }
        if body.len() > 10_000 {
            bail!("that message is too long (10,000 characters at most)");
        }
        let room = BareJid::new(&sphere.room)?;
        let m = Message::groupchat(Some(Jid::from(room))).with_body(
            spheres_xmpp::xmpp_parsers::message::Lang::from(""),
            body.to_owned(),
        );
        self.xmpp.send(m).await?;
        Ok(())
    }

    /// The staging folder of an upload batch: hidden in the sphere's folder (the watcher leaves
    /// it alone) until the browser says the batch is complete.
    async fn staging(&self, name: &str, batch: &str) -> Result<(Sphere, PathBuf)> {
        let sphere = self.sphere_named(name).await?;
        if !(8..=64).contains(&batch.len()) || !batch.bytes().all(|b| b.is_ascii_alphanumeric()) {
            bail!("{batch:?} is not an upload id");
        }
        let dir = PathBuf::from(&sphere.folder).join(format!(".upload-{batch}"));
        Ok((sphere, dir))
    }

    /// Where one uploaded file goes: `rel` is its path inside the upload (a file, or a file in
    /// a dropped folder). Every component is checked: nothing can land outside the staging
    /// folder. Returns (partial file, final file).
    pub async fn upload_path(
        &self,
        name: &str,
        batch: &str,
        rel: &str,
    ) -> Result<(PathBuf, PathBuf)> {
        let (_, dir) = self.staging(name, batch).await?;
        let mut target = dir.clone();
        let parts: Vec<&str> = rel.split('/').collect();
        if parts.len() > 32 {
            bail!("{rel:?} is nested too deeply");
        }
        for part in &parts {
            let bad = part.is_empty()
                || part.len() > 255
                || *part == "."
                || *part == ".."
                || part.starts_with('.')
                || part.contains(['\\', '\0'])
                || part.chars().any(char::is_control);
            if bad {
                bail!("{rel:?} cannot be a file name here");
            }
            target.push(part);
        }
        let parent = target
            .parent()
            .ok_or_else(|| anyhow!("{rel:?} cannot be a file name here"))?;
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        if target.exists() {
            bail!("{rel:?} was already uploaded");
        }
        let partial = parent.join(format!(
            ".{}.part",
            target
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        ));
        Ok((partial, target))
    }

    /// The browser finished an upload batch: its files and folders move into the sphere's
    /// folder, where the watcher shares each one once it is quiet.
    pub async fn upload_done(&self, name: &str, batch: &str) -> Result<Vec<String>> {
        let (sphere, dir) = self.staging(name, batch).await?;
        let mut moved = Vec::new();
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("no upload {batch} in {name}"))?;
        for entry in entries.flatten() {
            let file = entry.file_name();
            let text = file.to_string_lossy().into_owned();
            if text.starts_with('.') {
                continue;
            }
            let target = PathBuf::from(&sphere.folder).join(&file);
            if target.exists() {
                bail!("{text:?} is already in {name}; rename it and send it again");
            }
            std::fs::rename(entry.path(), &target)
                .with_context(|| format!("cannot move {text} into {name}"))?;
            moved.push(text);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(moved)
    }

    /// Drops an upload that will not be finished (cut, refused, or cancelled in the page).
    pub async fn upload_cancel(&self, name: &str, batch: &str) -> Result<()> {
        let (_, dir) = self.staging(name, batch).await?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", dir.display()))
            }
            _ => Ok(()),
        }
    }

    /// Bytes free for unprivileged writes on the disk of a sphere's folder.
    pub async fn free_space(&self, name: &str) -> Result<u64> {
        let sphere = self.sphere_named(name).await?;
        free_bytes(Path::new(&sphere.folder))
    }

    /// A share's thumbnail (JPEG), once the share is complete here; `None` if it has nothing
    /// to show (not a photo or video, or no ffmpeg for videos).
    pub async fn thumbnail(&self, name: &str, info_hash: &str) -> Result<Option<PathBuf>> {
        let sphere = self.sphere_named(name).await?;
        if self.store.share(sphere.id, info_hash).await?.is_none() {
            bail!("{name:?} has no share {info_hash}");
        }
        let hash: InfoHash = info_hash.parse().map_err(|_| anyhow!("bad share id"))?;
        let Some(st) = self.engine.status(&hash).filter(|s| s.is_complete()) else {
            return Ok(None);
        };
        let files: Vec<PathBuf> = st
            .files
            .iter()
            .map(|f| st.root.join(f.path.split('/').collect::<PathBuf>()))
            .collect();
        let cache = self.settings.data_dir.join("thumbs");
        let hex = info_hash.to_owned();
        Ok(
            tokio::task::spawn_blocking(move || thumbs::thumbnail(&cache, &hex, &files))
                .await
                .unwrap_or(None),
        )
    }

    /// Changes the bandwidth limits now and for the next starts (flags still win at start).
    pub async fn set_limits(&self, download: Option<u64>, upload: Option<u64>) -> Result<()> {
        self.engine.set_limits(rate(download), rate(upload));
        let text = |r: Option<u64>| r.map(|b| b.to_string()).unwrap_or_default();
        self.store
            .set_meta("download_limit", &text(download))
            .await?;
        self.store.set_meta("upload_limit", &text(upload)).await?;
        Ok(())
    }

    /// Sets the password that opens the web interface from other devices (argon2id, salted).
    pub async fn set_password(&self, password: &str) -> Result<()> {
        use argon2::password_hash::{PasswordHasher, SaltString};
        if password.chars().count() < 8 {
            bail!("use at least 8 characters for the password");
        }
        let raw: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&raw).map_err(|e| anyhow!("cannot make a salt: {e}"))?;
        // Deliberately slow (tens of milliseconds): off the async threads.
        let password = password.to_owned();
        let hash = tokio::task::spawn_blocking(move || {
            argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow!("cannot hash the password: {e}"))
        })
        .await??;
        self.store.set_meta("web_password", &hash).await?;
        Ok(())
    }

    /// Whether `password` is the web interface's password (false when none is set).
    pub async fn check_password(&self, password: &str) -> bool {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let Ok(Some(stored)) = self.store.meta("web_password").await else {
            return false;
        };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&stored).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }

    pub async fn has_password(&self) -> bool {
        matches!(self.store.meta("web_password").await, Ok(Some(_)))
    }

    /// What the node fetches in a sphere: `all`, `none` (on demand, `fetch`) or `max:SIZE`.
    pub async fn set_policy(&self, name: &str, policy: &str) -> Result<String> {
        let sphere = self.sphere_named(name).await?;
        // Public torrents members pass on: fetched by themselves, or left for the person.
        if let Some(public) = policy.trim().strip_prefix("public:") {
            if !matches!(public, "allow" | "ask") {
                bail!("{policy:?} is not a policy: use public:allow or public:ask");
            }
            self.store
                .set_meta(&format!("public:{}", sphere.id), public)
                .await?;
            return Ok(format!("public:{public}"));
        }
        let normal = match policy.trim() {
            "all" => "all".to_owned(),
            "none" => "none".to_owned(),
            p => match p.strip_prefix("max:").map(parse_size) {
                Some(Ok(n)) => format!("max:{n}"),
                _ => bail!(
                    "{policy:?} is not a policy: use all, none (fetch on demand) or max:SIZE (e.g. max:500M); public:allow or public:ask for public torrents members pass on"
                ),
            },
        };
        self.store.set_policy(sphere.id, &normal).await?;
        Ok(normal)
    }

    /// Fetches a share the policy left aside (by name or info hash).
    pub async fn fetch(self: &Arc<Self>, name: &str, share: &str) -> Result<serde_json::Value> {
        let sphere = self.sphere_named(name).await?;
        let rows = self.store.shares(sphere.id).await?;
        let row = rows
            .iter()
            .find(|r| r.info_hash == share || r.name == share)
            .ok_or_else(|| {
                anyhow!("{name:?} has no share {share:?} (see `spheres shares {name}`)")
            })?;
        if row.state == "available" || row.state == "failed" {
            self.store
                .set_share_state(sphere.id, &row.info_hash, "downloading", None, None)
                .await?;
            let share = self.share_from_row(row);
            if share.torrent.is_some() {
                self.add_to_engine(&sphere, &share, None).await?;
            } else {
                // Its metadata first, which can take a while: in the background.
                let node = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = node.fetch_share(&sphere, &share, true).await {
                        tracing::warn!(share = %share.name, error = %e, "cannot fetch a share");
                        let _ = node
                            .store
                            .set_share_state(
                                sphere.id,
                                &share.id,
                                "failed",
                                None,
                                Some(&format!("{e:#}")),
                            )
                            .await;
                    }
                });
            }
        }
        Ok(json!({"name": row.name, "info_hash": row.info_hash, "state": "downloading"}))
    }

    /// Creates an account on the household server (only when this node runs it).
    pub async fn add_household_user(&self, user: &str, password: &str) -> Result<String> {
        let Some(p) = &self.prosody else {
            bail!(
                "this node does not run a household server (it uses {})",
                self.me
            );
        };
        let p = p.lock().await;
        p.register(user, password).await?;
        Ok(format!("{user}@{}", p.domain()))
    }
}

/// A bandwidth limit for the engine: bytes per second, 0 or none meaning unlimited.
fn rate(limit: Option<u64>) -> Option<std::num::NonZeroU32> {
    limit.and_then(|b| std::num::NonZeroU32::new(u32::try_from(b).unwrap_or(u32::MAX)))
}

/// Someone's address as a person typed it (surrounding spaces ignored).
fn address(jid: &str) -> Result<BareJid> {
    BareJid::new(jid.trim())
        .map_err(|e| anyhow!("{jid:?} is not an XMPP address (name@server): {e}"))
}

/// The archive id the room gave a live message (XEP-0359 `<stanza-id by='room'/>`).
fn stanza_id(m: &Message, room: &str) -> Option<String> {
    m.payloads
        .iter()
        .filter(|p| p.is("stanza-id", "urn:xmpp:sid:0"))
        .find(|p| p.attr("by") == Some(room))
        .and_then(|p| p.attr("id").map(str::to_owned))
}

/// Finds the server's MUC service by service discovery (XEP-0030).
async fn discover_muc(xmpp: &Client, me: &BareJid) -> Result<String> {
    use spheres_xmpp::xmpp_parsers::disco::{
        DiscoInfoQuery, DiscoInfoResult, DiscoItemsQuery, DiscoItemsResult,
    };
    let domain = Jid::new(me.domain().as_str())?;
    let items = xmpp
        .iq(Iq::from_get(
            "",
            DiscoItemsQuery {
                node: None,
                rsm: None,
            },
        )
        .with_to(domain))
        .await?;
    let items = match items {
        Iq::Result {
            payload: Some(p), ..
        } => {
            DiscoItemsResult::try_from(p)
                .map_err(|e| anyhow!("bad service list: {e}"))?
                .items
        }
        _ => Vec::new(),
    };
    for item in items {
        let info = xmpp
            .iq(Iq::from_get("", DiscoInfoQuery { node: None }).with_to(item.jid.clone()))
            .await;
        if let Ok(Iq::Result {
            payload: Some(p), ..
        }) = info
            && let Ok(info) = DiscoInfoResult::try_from(p)
            && info.identities.iter().any(|i| i.category == "conference")
        {
            return Ok(item.jid.to_string());
        }
    }
    bail!(
        "the server {} offers no group chat service; pass --muc DOMAIN",
        me.domain()
    )
}

pub fn read_node_file(data: &Path) -> Option<NodeFile> {
    let bytes = std::fs::read(settings::node_file(data)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Attack: an invitation (from anyone who can send us a message) names a room whose
    /// local part or reason would make the sphere's folder the spheres folder's parent, the
    /// root, or a path elsewhere.
    #[test]
    fn names_from_invitations_never_leave_the_spheres_folder() {
        let hostile = [
            "..",
            ".",
            "",
            " ",
            "/etc",
            "../../.ssh",
            "a/b",
            "a\\b",
            ".bashrc",
            "C:",
            "\0x",
        ];
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Spheres");
        for reason in hostile {
            for local in hostile {
                let room = format!("{local}@rooms.evil.test");
                let name = sphere_name_from_invite(Some(reason), &room);
                let folder = sphere_folder(&root, &name).unwrap();
                assert_eq!(
                    folder.parent().unwrap(),
                    root.canonicalize().unwrap(),
                    "{reason:?} / {room:?} gave {name:?}"
                );
            }
        }
        assert_eq!(
            sphere_name_from_invite(Some("Family"), "x@rooms.home.test"),
            "Family"
        );
        assert_eq!(
            sphere_name_from_invite(Some("../x"), "family-1a2b@rooms.home.test"),
            "family-1a2b"
        );
        assert_eq!(
            sphere_name_from_invite(None, "..@rooms.evil.test"),
            "Sphere"
        );
        // A name whose folder is a link to elsewhere is refused, not followed.
        std::os::unix::fs::symlink(dir.path(), root.join("Elsewhere")).unwrap();
        let err = sphere_folder(&root, "Elsewhere").unwrap_err().to_string();
        assert!(err.contains("outside the spheres folder"), "{err}");
        for bad in ["..", ".", "", "a/b", "/etc"] {
            assert!(sphere_folder(&root, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn account_names_from_what_people_type() {
        assert_eq!(
            user_name_of("  Marie-Claire  Dupont ").unwrap(),
            "marie-claire.dupont"
        );
        assert_eq!(user_name_of("Léa").unwrap(), "léa");
        for bad in ["", "   ", "a@b", "x/y", "名前:1", &"a".repeat(65)] {
            let err = user_name_of(bad).unwrap_err().to_string();
            assert!(err.contains("cannot be an account name"), "{bad:?}: {err}");
        }
    }
}
