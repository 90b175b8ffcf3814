//! What the API says and takes, as types: the handlers answer with them, the CLI reads them,
//! and `ui/api-types.js` describes them to the page (JSDoc, checked by `tsc --checkJs`). Store
//! rows and the protocol crates' types stay behind the node: these are the contract.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::events::Connection;

// ----- Shares -----

/// Where a share is on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ShareState {
    /// Ours, being hashed into a torrent.
    Hashing,
    /// Coming from members.
    Downloading,
    /// Complete here, and given to members.
    Seeding,
    /// Announced, not fetched (policy, free space, or deleted here).
    Available,
    /// Its sharer took it back.
    Withdrawn,
    /// Cannot be fetched or placed (`error` says why).
    Failed,
}

impl ShareState {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareState::Hashing => "hashing",
            ShareState::Downloading => "downloading",
            ShareState::Seeding => "seeding",
            ShareState::Available => "available",
            ShareState::Withdrawn => "withdrawn",
            ShareState::Failed => "failed",
        }
    }
}

impl fmt::Display for ShareState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ShareState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "hashing" => ShareState::Hashing,
            "downloading" => ShareState::Downloading,
            "seeding" => ShareState::Seeding,
            "available" => ShareState::Available,
            "withdrawn" => ShareState::Withdrawn,
            "failed" => ShareState::Failed,
            other => return Err(format!("{other:?} is not a share state")),
        })
    }
}

/// A share of a sphere, with its progress here. A share still being hashed has only its
/// name, state and progress: the other fields are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ShareInfo {
    pub name: String,
    pub state: ShareState,
    pub have_bytes: u64,
    pub total_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub info_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub files: Option<u64>,
    /// False while the room has not confirmed our announcement (it is sent again until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub announced: Option<bool>,
    /// `video`, `audio`, `image`, `document`, `archive` or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub media: Option<String>,
    /// Who shared it (an address; empty when unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub sharer: Option<String>,
    /// Where it is on this machine, once there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub path: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub peers: Option<usize>,
    /// The engine's state of the transfer, when the engine has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub transfer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub download_bps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub upload_bps: Option<u64>,
}

impl ShareInfo {
    /// A share being hashed: name, state and progress only.
    pub fn hashing(name: String, have_bytes: u64, total_bytes: u64) -> ShareInfo {
        ShareInfo {
            name,
            state: ShareState::Hashing,
            have_bytes,
            total_bytes,
            info_hash: None,
            size: None,
            files: None,
            announced: None,
            media: None,
            sharer: None,
            path: None,
            error: None,
            peers: None,
            transfer: None,
            download_bps: None,
            upload_bps: None,
        }
    }
}

/// A share just made by this node (`spheres share`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Shared {
    pub info_hash: String,
    pub name: String,
    pub size: u64,
    pub files: u64,
    pub magnet: String,
}

/// A share asked for (`spheres fetch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Fetching {
    pub name: String,
    pub info_hash: String,
    pub state: ShareState,
}

/// A link to a share (`spheres link`): whoever holds `url` reads the share from this node in
/// a browser, with nothing installed, until it expires or is revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LinkInfo {
    pub url: String,
    pub sphere: String,
    /// The share's name and info hash.
    pub share: String,
    pub info_hash: String,
    /// When it was made and when it stops opening (seconds since 1970; none: never).
    pub created: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub expires: Option<i64>,
    /// `open`, `expired` or `revoked`.
    pub state: String,
    /// Whether it asks for a password.
    pub password: bool,
    /// How many browsers may open it (none: any number), and how many did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub max_opens: Option<u32>,
    pub opens: u32,
    /// Served by the node only: its viewers do not share with each other (and so do not
    /// see each other's addresses).
    pub direct: bool,
    /// Who can open it, as far as the node knows: see [`WebAddress`].
    pub reach: WebReach,
}

/// How far something the node serves reaches: its web pages (links, public posts), the
/// household's relay for calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "kebab-case")]
pub enum WebReach {
    /// A name of the owner's (`--public-url`): anyone, wherever the name leads.
    Public,
    /// The home router forwards the web port (`--public-web`): anyone on the internet.
    Internet,
    /// This node's network only (its LAN address).
    Network,
    /// This computer only (the node listens on loopback).
    Computer,
}

/// Where links and public pages point, and how far that reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct WebAddress {
    /// The start of every link and public page (`https://photos.example.org`,
    /// `http://203.0.113.7:8427`, `http://192.168.1.20:8427`...).
    pub url: String,
    pub reach: WebReach,
    /// Why they reach no further, and what to do (English; the page says it in its own
    /// words from `reach`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub why: Option<String>,
    /// HTTPS served by the node itself (`--https`), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub https: Option<HttpsState>,
}

/// The node's own HTTPS: where it listens, and whether it has a certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct HttpsState {
    pub addr: String,
    /// A certificate from the ACME CA is in use.
    pub certified: bool,
    /// Why there is none yet (the CA's last answer), while there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub error: Option<String>,
}

// ----- Spheres -----

/// What a node fetches by itself in a sphere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(into = "String", try_from = "String")]
#[cfg_attr(test, ts(as = "String"))]
pub enum Policy {
    /// Everything (the default).
    All,
    /// Nothing: shares are fetched when asked.
    Nothing,
    /// Shares up to this many bytes.
    Max(u64),
}

impl Policy {
    /// Whether a share of `size` bytes is fetched by itself.
    pub fn wants(self, size: u64) -> bool {
        match self {
            Policy::All => true,
            Policy::Nothing => false,
            Policy::Max(max) => size <= max,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::All => f.write_str("all"),
            Policy::Nothing => f.write_str("none"),
            Policy::Max(n) => write!(f, "max:{n}"),
        }
    }
}

impl FromStr for Policy {
    type Err = String;
    /// `all`, `none`, or `max:SIZE` (bytes, or with a K or M suffix).
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "all" => Ok(Policy::All),
            "none" => Ok(Policy::Nothing),
            p => match p.strip_prefix("max:").map(crate::units::parse_size) {
                Some(Ok(n)) => Ok(Policy::Max(n)),
                _ => Err(format!(
                    "{s:?} is not a policy: use all, none (fetch on demand) or max:SIZE (e.g. max:500M); public:allow or public:ask for public torrents members pass on"
                )),
            },
        }
    }
}

impl From<Policy> for String {
    fn from(p: Policy) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for Policy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// A sphere of this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SphereInfo {
    pub name: String,
    /// Its room's address.
    pub room: String,
    /// Its folder on this machine.
    pub folder: String,
    /// Whether this node's account owns it.
    pub owned: bool,
    pub policy: Policy,
    /// The announce URL of the sphere's tracker, with this node's key (once given).
    pub announce: Option<String>,
    pub encryption: Encryption,
}

/// Whether a sphere's chat, announcements and posts are end-to-end encrypted, and whether
/// this node can read and write them yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Encryption {
    /// The clear protocol: any XMPP and BitTorrent client of a member takes part.
    Open,
    /// Encrypted, and this node is in the sphere's group.
    Ready,
    /// Encrypted, and this node waits for the owner's node to add it to the group.
    Waiting,
    /// Encrypted, and this node holds its files for its members without its keys (a keyless
    /// seeder: it reads nothing of it).
    Holding,
}

/// A sphere in the status: counts for the home page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SphereSummary {
    pub name: String,
    pub room: String,
    pub owned: bool,
    pub encryption: Encryption,
    pub shares: usize,
    pub members_online: usize,
    /// People in the sphere's call now (us included), 0 when there is none.
    pub in_call: usize,
    pub messages: i64,
    /// When something was last said (seconds since 1970).
    pub last_activity: Option<i64>,
}

/// A member of a sphere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Member {
    pub jid: String,
    /// `owner`, `admin` or `member`.
    pub affiliation: String,
    pub online: bool,
    /// Where their node takes BitTorrent peers (`HOST:PORT`), as they publish it.
    pub endpoints: Vec<String>,
}

/// An invitation waiting for an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Invite {
    pub room: String,
    pub from_jid: String,
    /// The sphere's name, as the inviter gave it.
    pub reason: Option<String>,
    pub received_at: i64,
    /// The sphere is encrypted.
    pub encrypted: bool,
    /// This node is asked to hold its encrypted files for its members, without its keys.
    pub seeder: bool,
}

/// An invitation link made for someone with no account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InviteLink {
    pub link: String,
    /// The same link as an address that opens a node's join screen with it filled in.
    pub open: String,
    pub sphere: String,
    /// The household server listens on loopback: the link works on this machine only.
    pub this_machine_only: bool,
}

/// What an invitation link offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LinkPreview {
    pub sphere: String,
    pub owner: String,
    pub domain: String,
    pub can_join: bool,
    pub why_not: Option<String>,
}

/// Something said in a sphere's room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RoomMessage {
    pub nick: String,
    /// The sayer's address, when the room tells it.
    pub jid: Option<String>,
    pub body: String,
    /// Seconds since 1970.
    pub stamp: i64,
    pub mine: bool,
}

// ----- People -----

/// A contact, with presence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Contact {
    pub jid: String,
    pub name: Option<String>,
    pub online: bool,
    /// `both`, `to`, `from` or `none` (RFC 6121).
    pub subscription: String,
}

/// Contacts and who asks to become one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Contacts {
    pub contacts: Vec<Contact>,
    pub requests: Vec<String>,
}

/// A line of a one-to-one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ChatLine {
    /// What was said (empty when `unreadable`).
    pub body: String,
    pub mine: bool,
    /// When it was said (RFC 3339), when the archive says.
    pub stamp: Option<String>,
    /// It went end to end encrypted (between spheres nodes); else in clear through the
    /// servers, as with any XMPP client.
    pub encrypted: bool,
    /// Encrypted for other devices, or before this node could read it: not readable here.
    pub unreadable: bool,
    /// A call, when the line is one (`body` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub call: Option<CallLine>,
}

/// How a call went, as the conversation's archive tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Answered,
    /// The one called declined.
    Declined,
    /// They called, nobody answered here.
    Missed,
    /// We called, nobody answered there.
    NoAnswer,
}

/// A call in a conversation: who called (`mine` on the line), with video or not, how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CallLine {
    pub video: bool,
    pub outcome: CallOutcome,
    /// How long it lasted, when the archive says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub seconds: Option<i64>,
}

/// Whether what we write to a contact goes end to end encrypted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ChatSecurity {
    pub encrypted: bool,
}

// ----- The feed -----

/// A post of the feed (XEP-0277).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Post {
    /// Its item id (a UUID): what `spheres comment` and `spheres post --delete` take.
    pub id: String,
    /// The poster's address.
    pub author: String,
    pub author_name: Option<String>,
    /// `contacts`, `everyone`, `public`, or `sphere` (then [`Post::sphere`] names it).
    pub audience: String,
    /// The sphere it was posted to: only its members read it.
    pub sphere: Option<String>,
    pub text: String,
    /// Seconds since 1970.
    pub published: i64,
    pub updated: i64,
    /// How many comments it has (as far as this node knows).
    pub comments: i64,
    pub mine: bool,
    /// The shares of its sphere it shows (photos, videos, folders), in order.
    pub media: Vec<PostMedia>,
    /// The reactions to it, the most given first.
    pub reactions: Vec<Reaction>,
    /// `text` read into its little markup.
    pub rich: Vec<Span>,
}

// ----- Calls -----

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// We ring them: waiting for a device of theirs to answer.
    Calling,
    /// They ring us: waiting for us to answer.
    Ringing,
    /// Answered: the browsers are exchanging descriptions and finding a path.
    Connecting,
    /// Both descriptions exchanged: media flows once the path is found.
    Active,
    Ended,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum CallEnd {
    /// Hung up here, after it was answered.
    HungUp,
    /// Hung up by them, after it was answered.
    TheyHungUp,
    /// We called it off before they answered.
    Cancelled,
    /// They declined.
    Declined,
    /// We declined.
    DeclinedHere,
    /// They rang and nobody answered here (they stopped, or it rang a minute).
    Missed,
    /// Nobody answered there in a minute.
    NoAnswer,
    /// Answered or declined on another device of ours.
    Elsewhere,
    /// They are in another call.
    Busy,
    /// The call could not be set up or went down (`why` says what happened).
    Failed,
}

/// A description (SDP) of the other side, for the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RemoteDescription {
    /// `offer` or `answer`, as `RTCSessionDescription` takes it.
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

/// A candidate of the other side, for `RTCPeerConnection.addIceCandidate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RemoteCandidate {
    pub mid: String,
    pub candidate: String,
}

/// A STUN or TURN server for the page's `RTCPeerConnection`, as `RTCIceServer` takes it
/// (credentials from the XMPP server, XEP-0215, short-lived).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct IceServerInfo {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub credential: Option<String>,
}

/// A call: live, or ended a short while ago.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CallInfo {
    pub id: String,
    /// The other person's address.
    pub with: String,
    /// We called.
    pub outgoing: bool,
    /// With video (else audio only).
    pub video: bool,
    pub state: CallState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub end: Option<CallEnd>,
    /// What went wrong, for a failed call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub why: Option<String>,
    /// The page that handles the call's media (the one that placed or answered it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tab: Option<String>,
    /// When it began ringing, was answered and ended (seconds since 1970).
    pub started: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub answered: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub ended: Option<i64>,
    /// The other side's description, once it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub remote: Option<RemoteDescription>,
    /// The other side's candidates so far, in the order they came.
    pub candidates: Vec<RemoteCandidate>,
    /// A leg of a call in this sphere (one browser to one other, in a mesh): not a call of
    /// its own; `/api/spheres/{name}/call` says who is in that call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub sphere: Option<String>,
}

/// A call in a sphere: who is in it now, and whether we are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SphereCall {
    pub sphere: String,
    /// We are in it (from the page `tab`).
    pub joined: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub tab: Option<String>,
    /// We send video in it.
    pub video: bool,
    /// When we joined (seconds since 1970).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub since: Option<i64>,
    /// Everyone in it now, us first when we are; empty when there is no call.
    pub people: Vec<CallParticipant>,
    /// How many people a call holds at most (each page sends to every other one).
    pub max: u32,
}

/// Someone in a sphere's call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct CallParticipant {
    pub jid: String,
    /// They send video.
    pub video: bool,
    /// It is us.
    pub me: bool,
}

/// An export written: where, and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Exported {
    pub path: String,
    pub posts: u64,
    pub comments: u64,
    pub contacts: u64,
    pub spheres: u64,
    /// Shares whose files are in it.
    pub files: u64,
}

/// What an import did, and what it could not do (in words).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Imported {
    pub contacts_asked: u64,
    pub spheres_made: u64,
    pub members_invited: u64,
    pub files_restored: u64,
    pub posts_restored: u64,
    pub not_done: Vec<NotDone>,
}

/// Something an import did not do: `kind` says what (`contact`, `member_of`: a sphere whose
/// owner must invite us again, `sphere`, `invite`, `file`: one that is there already or is not
/// a plain file, `post`, `comments`: how many stay in the archive), `name` which one, `detail`
/// the node's words on why, when it has some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NotDone {
    pub kind: String,
    pub name: String,
    pub detail: Option<String>,
}

impl NotDone {
    pub fn new(kind: &str, name: &str, detail: Option<impl std::fmt::Display>) -> NotDone {
        NotDone {
            kind: kind.to_owned(),
            name: name.to_owned(),
            detail: detail.map(|d| d.to_string()),
        }
    }

    /// In English, for the command line.
    pub fn sentence(&self) -> String {
        let n = &self.name;
        let what = match self.kind.as_str() {
            "contact" => format!("asking {n} to be a contact again"),
            "member_of" => format!("the sphere {n}: ask its owner to invite you again"),
            "sphere" => format!("making the sphere {n} again"),
            "invite" => format!("inviting {n} again"),
            "file" => {
                format!("{n}: a file of that name is there already, or it is not a plain file")
            }
            "post" => format!("publishing post {n} again"),
            "comments" => format!("{n} comments under others' posts stay in the archive"),
            other => format!("{other} {n}"),
        };
        match &self.detail {
            Some(d) => format!("{what}: {d}"),
            None => what,
        }
    }
}

/// A photo or video of a sphere's album: one file of a share, here in full.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Photo {
    pub info_hash: String,
    /// The file's index in its share (for `/torrents/{info_hash}/files/{index}` and its
    /// thumbnail).
    pub index: u64,
    /// The file's name.
    pub name: String,
    /// The name of the share it is in.
    pub share: String,
    /// `image` or `video`.
    pub kind: String,
    pub size: u64,
    /// When it was taken (EXIF), seconds since 1970 of the camera's clock read as UTC; `None`
    /// when the file does not say.
    pub taken: Option<i64>,
    /// When its share was shared, seconds since 1970.
    pub shared: i64,
}

/// A reaction to give, or take back when it is ours already.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ReactBody {
    pub emoji: String,
}

/// An emoji people reacted to a post with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Reaction {
    pub emoji: String,
    /// How many people.
    pub count: u32,
    /// Whether we are one of them.
    pub mine: bool,
}

/// A piece of a post's or comment's text, as its little markup reads (`**strong**`,
/// `*em*`, `` `code` ``, web addresses): `mark` is `text`, `strong`, `em`, `code` or `link`
/// (then `text` is the address, `http://` or `https://`). The page makes elements of these,
/// never markup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Span {
    pub mark: String,
    pub text: String,
}

/// A text read into [`Span`]s.
pub fn rich(text: &str) -> Vec<Span> {
    spheres_web::markup::parse(text)
        .into_iter()
        .map(|s| Span {
            mark: s.mark.as_str().to_owned(),
            text: s.text,
        })
        .collect()
}

/// A share a post shows: as this node has it in the post's sphere, else as the post names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PostMedia {
    pub info_hash: String,
    pub name: String,
    pub size: u64,
    /// `video`, `audio`, `image`, `document`, `archive` or `other`.
    pub kind: String,
    /// Whether this node has the share in the sphere (its thumbnail and viewer are there).
    pub here: bool,
}

/// A comment under a post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Comment {
    pub id: String,
    pub author: String,
    /// Whether `author` is the server's word; false for a comment read back from its node
    /// (some servers leave the publisher out), whose author is what it claims.
    pub verified: bool,
    pub author_name: Option<String>,
    pub text: String,
    /// `text` read into its little markup.
    pub rich: Vec<Span>,
    /// Seconds since 1970.
    pub published: i64,
    pub mine: bool,
}

/// A new post: its text and who reads it (`contacts`, the default, `everyone` or `public`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PostBody {
    pub text: String,
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub to: Option<String>,
    /// Shares of the sphere `to` names (info hashes) for the post to show.
    #[serde(default)]
    pub shares: Vec<String>,
}

/// A post just made, or a comment: its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Posted {
    pub id: String,
}

// ----- The node -----

/// The household server the node runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Household {
    pub domain: String,
    pub muc: String,
    pub c2s: SocketAddr,
    pub ca: PathBuf,
    /// The relay for calls the node runs next to the household server (coturn), when it
    /// runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub relay: Option<Relay>,
}

/// The household's relay for calls, and how far it reaches: `internet` when the home router
/// forwards its ports (then anyone the household calls, or who calls it, gets through, even
/// from behind a router where no direct path exists), `network` or `computer` otherwise,
/// with `why`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Relay {
    /// Where it listens (`192.168.1.20:3478`).
    pub addr: String,
    pub reach: WebReach,
    /// The router's outside address for it (`203.0.113.7:3478`), when the router forwards it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub outside: Option<String>,
    /// The relay ports the router forwards (`61056-61119`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub ports: Option<String>,
    /// The router is being asked (at the node's start): `reach` may go farther soon.
    pub asking: bool,
    /// Why it reaches no further, and what to do (English; the page says it in its own words
    /// from `reach`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub why: Option<String>,
}

/// How reachable the node is from outside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Reachability {
    Unknown,
    LoopbackOnly,
    /// The router forwards `external` here (`method`: `pcp`, `nat-pmp`, `upnp-igd2`...).
    Mapped {
        method: String,
        external: SocketAddr,
        lease_secs: u64,
    },
    /// Behind two routers: the first forwards, the outer one does not.
    DoubleNat {
        method: String,
        router_outside: SocketAddr,
        why: String,
    },
    Unreachable {
        why: String,
    },
}

/// An address this node publishes for BitTorrent peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Endpoint {
    /// `lan`, `mapped`, `ipv6`...
    pub kind: String,
    pub host: String,
    pub port: u16,
}

/// A torrent in the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Transfer {
    pub info_hash: String,
    pub name: String,
    pub state: String,
    pub have_bytes: u64,
    pub total_bytes: u64,
    pub peers: usize,
    pub download_bps: u64,
    pub upload_bps: u64,
}

/// `spheres status` and the page's header and settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Status {
    pub jid: String,
    /// The web interface's address.
    pub http: Option<String>,
    /// Where the pages of our public posts are (`http://HOST:PORT/@USER/`, no login), when
    /// the node serves HTTP; reachable as far as `web` says.
    pub public_pages: Option<String>,
    /// Where links and public pages point and how far they reach, when the node serves
    /// HTTP.
    pub web: Option<WebAddress>,
    /// Where BitTorrent peers reach this node.
    pub listen: String,
    pub tracker: Option<String>,
    pub household: Option<Household>,
    pub muc: String,
    pub spheres_dir: PathBuf,
    pub headless: bool,
    /// Whether a web password is set (other devices can log in).
    pub web_password: bool,
    pub reachability: Reachability,
    /// The link to the XMPP server.
    pub xmpp: Connection,
    pub endpoints: Vec<Endpoint>,
    pub download_limit: Option<u32>,
    pub upload_limit: Option<u32>,
    pub spheres: Vec<SphereSummary>,
    pub transfers: Vec<Transfer>,
}

// ----- Requests -----

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NameBody {
    pub name: String,
    /// For a new sphere: its payloads end-to-end encrypted (see [`Encryption`]); true when
    /// absent, `false` makes it open to any XMPP and BitTorrent client.
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub encrypted: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct JidBody {
    pub jid: String,
}

/// Whom to invite to a sphere, and whether as a keyless seeder (their node holds the
/// encrypted sphere's files for its members and never gets its keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InviteBody {
    pub jid: String,
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub seeder: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PathBody {
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PolicyBody {
    /// `all`, `none`, `max:SIZE`, `public:allow` or `public:ask`.
    pub policy: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct FetchBody {
    /// A share's name or info hash.
    pub share: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct JoinBody {
    /// The room's address, or the sphere's name as invited.
    pub invite: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SignInBody {
    pub jid: String,
    pub password: String,
    #[serde(default)]
    pub server: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LinkBody {
    pub link: String,
    #[serde(default)]
    pub name: String,
}

/// A new link to a share: the sphere, the share (name or info hash), how long it opens
/// (seconds; none: until revoked), the password it asks (none: none), and for how many
/// browsers (none: any number).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NewLinkBody {
    pub sphere: String,
    pub share: String,
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub expires_in: Option<u64>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub password: Option<String>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub max_opens: Option<u32>,
    /// Served by the node only (no sharing between viewers); false when left out.
    #[serde(default)]
    pub direct: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct LimitsBody {
    pub download: Option<u64>,
    pub upload: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ContactBody {
    pub jid: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct PasswordBody {
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NewPasswordBody {
    pub password: String,
    /// The password in use, asked of a browser once one is set.
    #[serde(default)]
    pub current: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SayBody {
    pub body: String,
}

/// Call a contact (`POST /api/calls`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallBody {
    pub with: String,
    #[serde(default)]
    pub video: bool,
    /// The page that handles the media: a random id of its own.
    pub tab: String,
}

/// Join a sphere's call, or start it (`POST /api/spheres/{name}/call`); again every 15 s
/// while in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SphereCallBody {
    #[serde(default)]
    pub video: bool,
    /// The page that handles the media: a random id of its own.
    pub tab: String,
}

/// Leave a sphere's call (`POST /api/spheres/{name}/call/leave`): only if `tab` is the page in
/// it, when given.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaveCallBody {
    #[serde(default)]
    pub tab: Option<String>,
}

/// The page that answers (`POST /api/calls/{id}/answer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TabBody {
    pub tab: String,
}

/// The page's description of its side (`POST /api/calls/{id}/describe`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DescribeBody {
    pub tab: String,
    /// `offer` (when we called) or `answer`.
    #[serde(rename = "type")]
    pub kind: String,
    pub sdp: String,
}

/// One of the page's ICE candidates (`POST /api/calls/{id}/candidate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateBody {
    pub tab: String,
    pub mid: String,
    pub candidate: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct UserBody {
    pub user: String,
    pub password: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_read_and_print_as_people_write_them() {
        assert_eq!("all".parse::<Policy>(), Ok(Policy::All));
        assert_eq!(" none ".parse::<Policy>(), Ok(Policy::Nothing));
        assert_eq!("max:500M".parse::<Policy>(), Ok(Policy::Max(500 << 20)));
        assert_eq!(Policy::Max(7).to_string(), "max:7");
        assert!("max:".parse::<Policy>().is_err());
        assert!("some".parse::<Policy>().is_err());
        assert!(Policy::Max(10).wants(10) && !Policy::Max(10).wants(11));
        assert!(!Policy::Nothing.wants(0) && Policy::All.wants(u64::MAX));
        assert_eq!(
            serde_json::to_string(&Policy::Max(3)).unwrap(),
            r#""max:3""#
        );
        for s in [
            ShareState::Hashing,
            ShareState::Downloading,
            ShareState::Seeding,
            ShareState::Available,
            ShareState::Withdrawn,
            ShareState::Failed,
        ] {
            assert_eq!(s.as_str().parse::<ShareState>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
    }

    /// A share being hashed has no detail, and says so by leaving the fields out.
    #[test]
    fn a_share_being_hashed_is_name_state_and_progress() {
        let s = ShareInfo::hashing("Lyon".into(), 1, 2);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"name":"Lyon","state":"hashing","have_bytes":1,"total_bytes":2}"#
        );
        let back: ShareInfo = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    /// The page reads these types through `crates/spheres-web/types/api.d.ts` (JSDoc in the
    /// UI's modules, checked by `tsc --checkJs`): that file is generated from the types here
    /// and must match them. `SPHERES_BLESS=1 cargo nextest run -p spheres-node types` writes it.
    #[test]
    fn the_pages_type_declarations_match_the_api() {
        use ts_rs::{Config, TS};
        // JSON numbers, not bigint: sizes and times fit in a double (2^53).
        let cfg = Config::new().with_large_int("number");
        let decls = [
            Status::decl(&cfg),
            Household::decl(&cfg),
            Reachability::decl(&cfg),
            Endpoint::decl(&cfg),
            Transfer::decl(&cfg),
            SphereSummary::decl(&cfg),
            SphereInfo::decl(&cfg),
            Policy::decl(&cfg),
            ShareState::decl(&cfg),
            ShareInfo::decl(&cfg),
            Shared::decl(&cfg),
            Fetching::decl(&cfg),
            LinkInfo::decl(&cfg),
            WebReach::decl(&cfg),
            Relay::decl(&cfg),
            WebAddress::decl(&cfg),
            HttpsState::decl(&cfg),
            Member::decl(&cfg),
            Invite::decl(&cfg),
            InviteLink::decl(&cfg),
            LinkPreview::decl(&cfg),
            RoomMessage::decl(&cfg),
            Contact::decl(&cfg),
            Contacts::decl(&cfg),
            ChatLine::decl(&cfg),
            ChatSecurity::decl(&cfg),
            CallOutcome::decl(&cfg),
            CallLine::decl(&cfg),
            CallState::decl(&cfg),
            CallEnd::decl(&cfg),
            RemoteDescription::decl(&cfg),
            RemoteCandidate::decl(&cfg),
            CallInfo::decl(&cfg),
            IceServerInfo::decl(&cfg),
            SphereCall::decl(&cfg),
            CallParticipant::decl(&cfg),
            Photo::decl(&cfg),
            Exported::decl(&cfg),
            Imported::decl(&cfg),
            NotDone::decl(&cfg),
            crate::events::Connection::decl(&cfg),
            crate::events::NodeEvent::decl(&cfg),
        ];
        let mut text = String::from(
            "// The node's API types, generated from spheres_node::api::types and events by the\n\
             // test the_pages_type_declarations_match_the_api. Do not edit: change the Rust types.\n",
        );
        for d in decls {
            text.push_str(&format!("\nexport {d}\n"));
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spheres-web/types/api.d.ts");
        if std::env::var_os("SPHERES_BLESS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{path} is not what the API types say: run SPHERES_BLESS=1 cargo nextest run -p spheres-node types"
        );
    }
}
