// The node's API types, generated from spheres_node::api::types and events by the
// test the_pages_type_declarations_match_the_api. Do not edit: change the Rust types.

export type Status = { jid: string, 
/**
 * The web interface's address.
 */
http: string | null, 
/**
 * Where the pages of our public posts are (`http://HOST:PORT/@USER/`, no login), when
 * the node serves HTTP; reachable as far as `web` says.
 */
public_pages: string | null, 
/**
 * Where links and public pages point and how far they reach, when the node serves
 * HTTP.
 */
web: WebAddress | null, 
/**
 * Where BitTorrent peers reach this node.
 */
listen: string, tracker: string | null, household: Household | null, muc: string, spheres_dir: string, headless: boolean, 
/**
 * Whether a web password is set (other devices can log in).
 */
web_password: boolean, reachability: Reachability, 
/**
 * The link to the XMPP server.
 */
xmpp: Connection, endpoints: Array<Endpoint>, download_limit: number | null, upload_limit: number | null, spheres: Array<SphereSummary>, transfers: Array<Transfer>, };

export type Household = { domain: string, muc: string, c2s: string, ca: string, 
/**
 * The relay for calls the node runs next to the household server (coturn), when it
 * runs one.
 */
relay?: Relay, };

export type Reachability = { "state": "unknown" } | { "state": "loopback-only" } | { "state": "mapped", method: string, external: string, lease_secs: number, } | { "state": "double-nat", method: string, router_outside: string, why: string, } | { "state": "unreachable", why: string, };

export type Endpoint = { 
/**
 * `lan`, `mapped`, `ipv6`...
 */
kind: string, host: string, port: number, };

export type Transfer = { info_hash: string, name: string, state: string, have_bytes: number, total_bytes: number, peers: number, download_bps: number, upload_bps: number, };

export type SphereSummary = { name: string, room: string, owned: boolean, encryption: Encryption, shares: number, members_online: number, 
/**
 * People in the sphere's call now (us included), 0 when there is none.
 */
in_call: number, messages: number, 
/**
 * When something was last said (seconds since 1970).
 */
last_activity: number | null, };

export type SphereInfo = { name: string, 
/**
 * Its room's address.
 */
room: string, 
/**
 * Its folder on this machine.
 */
folder: string, 
/**
 * Whether this node's account owns it.
 */
owned: boolean, policy: Policy, 
/**
 * The announce URL of the sphere's tracker, with this node's key (once given).
 */
announce: string | null, encryption: Encryption, };

export type Policy = string;

export type ShareState = "hashing" | "downloading" | "seeding" | "available" | "withdrawn" | "failed";

export type ShareInfo = { name: string, state: ShareState, have_bytes: number, total_bytes: number, info_hash?: string, size?: number, files?: number, 
/**
 * False while the room has not confirmed our announcement (it is sent again until then).
 */
announced?: boolean, 
/**
 * `video`, `audio`, `image`, `document`, `archive` or `other`.
 */
media?: string, 
/**
 * Who shared it (an address; empty when unknown).
 */
sharer?: string, 
/**
 * Where it is on this machine, once there.
 */
path?: string, 
/**
 * Why it failed.
 */
error?: string, peers?: number, 
/**
 * The engine's state of the transfer, when the engine has it.
 */
transfer?: string, download_bps?: number, upload_bps?: number, };

export type Shared = { info_hash: string, name: string, size: number, files: number, magnet: string, };

export type Fetching = { name: string, info_hash: string, state: ShareState, };

export type LinkInfo = { url: string, sphere: string, 
/**
 * The share's name and info hash.
 */
share: string, info_hash: string, 
/**
 * When it was made and when it stops opening (seconds since 1970; none: never).
 */
created: number, expires?: number, 
/**
 * `open`, `expired` or `revoked`.
 */
state: string, 
/**
 * Whether it asks for a password.
 */
password: boolean, 
/**
 * How many browsers may open it (none: any number), and how many did.
 */
max_opens?: number, opens: number, 
/**
 * Served by the node only: its viewers do not share with each other (and so do not
 * see each other's addresses).
 */
direct: boolean, 
/**
 * Who can open it, as far as the node knows: see [`WebAddress`].
 */
reach: WebReach, };

export type WebReach = "public" | "internet" | "network" | "computer";

export type Relay = { 
/**
 * Where it listens (`192.168.1.20:3478`).
 */
addr: string, reach: WebReach, 
/**
 * The router's outside address for it (`203.0.113.7:3478`), when the router forwards it.
 */
outside?: string, 
/**
 * The relay ports the router forwards (`61056-61119`).
 */
ports?: string, 
/**
 * The router is being asked (at the node's start): `reach` may go farther soon.
 */
asking: boolean, 
/**
 * Why it reaches no further, and what to do (English; the page says it in its own words
 * from `reach`).
 */
why?: string, };

export type WebAddress = { 
/**
 * The start of every link and public page (`https://photos.example.org`,
 * `http://203.0.113.7:8427`, `http://192.168.1.20:8427`...).
 */
url: string, reach: WebReach, 
/**
 * Why they reach no further, and what to do (English; the page says it in its own
 * words from `reach`).
 */
why?: string, 
/**
 * HTTPS served by the node itself (`--https`), when it is.
 */
https?: HttpsState, };

export type HttpsState = { addr: string, 
/**
 * A certificate from the ACME CA is in use.
 */
certified: boolean, 
/**
 * Why there is none yet (the CA's last answer), while there is none.
 */
error?: string, };

export type Member = { jid: string, 
/**
 * `owner`, `admin` or `member`.
 */
affiliation: string, online: boolean, 
/**
 * Where their node takes BitTorrent peers (`HOST:PORT`), as they publish it.
 */
endpoints: Array<string>, };

export type Invite = { room: string, from_jid: string, 
/**
 * The sphere's name, as the inviter gave it.
 */
reason: string | null, received_at: number, 
/**
 * The sphere is encrypted.
 */
encrypted: boolean, 
/**
 * This node is asked to hold its encrypted files for its members, without its keys.
 */
seeder: boolean, };

export type InviteLink = { link: string, 
/**
 * The same link as an address that opens a node's join screen with it filled in.
 */
open: string, sphere: string, 
/**
 * The household server listens on loopback: the link works on this machine only.
 */
this_machine_only: boolean, };

export type LinkPreview = { sphere: string, owner: string, domain: string, can_join: boolean, why_not: string | null, };

export type RoomMessage = { nick: string, 
/**
 * The sayer's address, when the room tells it.
 */
jid: string | null, body: string, 
/**
 * Seconds since 1970.
 */
stamp: number, mine: boolean, };

export type Contact = { jid: string, name: string | null, online: boolean, 
/**
 * `both`, `to`, `from` or `none` (RFC 6121).
 */
subscription: string, };

export type Contacts = { contacts: Array<Contact>, requests: Array<string>, };

export type ChatLine = { 
/**
 * What was said (empty when `unreadable`).
 */
body: string, mine: boolean, 
/**
 * When it was said (RFC 3339), when the archive says.
 */
stamp: string | null, 
/**
 * It went end to end encrypted (between spheres nodes); else in clear through the
 * servers, as with any XMPP client.
 */
encrypted: boolean, 
/**
 * Encrypted for other devices, or before this node could read it: not readable here.
 */
unreadable: boolean, 
/**
 * A call, when the line is one (`body` is empty).
 */
call?: CallLine, };

export type ChatSecurity = { encrypted: boolean, };

export type CallOutcome = "answered" | "declined" | "missed" | "no_answer";

export type CallLine = { video: boolean, outcome: CallOutcome, 
/**
 * How long it lasted, when the archive says.
 */
seconds?: number, };

export type CallState = "calling" | "ringing" | "connecting" | "active" | "ended";

export type CallEnd = "hung_up" | "they_hung_up" | "cancelled" | "declined" | "declined_here" | "missed" | "no_answer" | "elsewhere" | "busy" | "failed";

export type RemoteDescription = { 
/**
 * `offer` or `answer`, as `RTCSessionDescription` takes it.
 */
type: string, sdp: string, };

export type RemoteCandidate = { mid: string, candidate: string, };

export type CallInfo = { id: string, 
/**
 * The other person's address.
 */
with: string, 
/**
 * We called.
 */
outgoing: boolean, 
/**
 * With video (else audio only).
 */
video: boolean, state: CallState, end?: CallEnd, 
/**
 * What went wrong, for a failed call.
 */
why?: string, 
/**
 * The page that handles the call's media (the one that placed or answered it).
 */
tab?: string, 
/**
 * When it began ringing, was answered and ended (seconds since 1970).
 */
started: number, answered?: number, ended?: number, 
/**
 * The other side's description, once it came.
 */
remote?: RemoteDescription, 
/**
 * The other side's candidates so far, in the order they came.
 */
candidates: Array<RemoteCandidate>, 
/**
 * A leg of a call in this sphere (one browser to one other, in a mesh): not a call of
 * its own; `/api/spheres/{name}/call` says who is in that call.
 */
sphere?: string, };

export type IceServerInfo = { urls: Array<string>, username?: string, credential?: string, };

export type SphereCall = { sphere: string, 
/**
 * We are in it (from the page `tab`).
 */
joined: boolean, tab?: string, 
/**
 * We send video in it.
 */
video: boolean, 
/**
 * When we joined (seconds since 1970).
 */
since?: number, 
/**
 * Everyone in it now, us first when we are; empty when there is no call.
 */
people: Array<CallParticipant>, 
/**
 * How many people a call holds at most (each page sends to every other one).
 */
max: number, };

export type CallParticipant = { jid: string, 
/**
 * They send video.
 */
video: boolean, 
/**
 * It is us.
 */
me: boolean, };

export type Photo = { info_hash: string, 
/**
 * The file's index in its share (for `/torrents/{info_hash}/files/{index}` and its
 * thumbnail).
 */
index: number, 
/**
 * The file's name.
 */
name: string, 
/**
 * The name of the share it is in.
 */
share: string, 
/**
 * `image` or `video`.
 */
kind: string, size: number, 
/**
 * When it was taken (EXIF), seconds since 1970 of the camera's clock read as UTC; `None`
 * when the file does not say.
 */
taken: number | null, 
/**
 * When its share was shared, seconds since 1970.
 */
shared: number, };

export type Exported = { path: string, posts: number, comments: number, contacts: number, spheres: number, 
/**
 * Shares whose files are in it.
 */
files: number, };

export type Imported = { contacts_asked: number, spheres_made: number, members_invited: number, files_restored: number, posts_restored: number, not_done: Array<NotDone>, };

export type NotDone = { kind: string, name: string, detail: string | null, };

export type Connection = { "state": "online", since: number, } | { "state": "connecting", since: number, next_attempt?: number, error: string, } | { "state": "offline", since: number, error: string, };

export type NodeEvent = { "type": "tick" } | { "type": "resync" } | { "type": "share", sphere: string, } | { "type": "presence", sphere: string, } | { "type": "message", sphere: string, } | { "type": "sphere", sphere: string, } | { "type": "invite" } | { "type": "contacts" } | { "type": "chat", with: string, } | { "type": "feed" } | { "type": "network" } | { "type": "call", id: string, } | { "type": "connection" } & Connection;
