//! Links to a share (issue 16, first step): a URL on the node's HTTP address that carries an
//! unguessable token. Whoever holds it opens a page that plays, shows or downloads the share's
//! files from this node, with nothing installed and no login, until the link expires or its
//! maker revokes it; an unknown, expired or revoked link gives a page that says so and not a
//! byte. The node serves what its engine has: a share still arriving plays while it arrives.
//!
//! Who can send what: anyone who reaches the HTTP port can ask for `/l/TOKEN` (a token is 32
//! random bytes, so guessing one is hopeless) and a file of that link's share by its index;
//! nothing else of the node opens without a login. Pages carry no script and are served with
//! no referrer, so the token does not leak to other sites.
//!
//! A link may also ask for a password, or open for a number of browsers only. A visitor who
//! gives the password, or is counted, gets a pass: a cookie scoped to the link's path, signed
//! with the link's own key (HMAC-SHA-256), so the node keeps nothing per visitor and a pass of
//! one link opens no other. Wrong passwords are throttled per link (see the API).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use spheres_metainfo::{InfoHash, Metainfo};
use spheres_store::{LinkGuards, LinkRow, LinkState};
use spheres_web::{Shown, shown_as};

use crate::RowState as _;
use crate::api::types::{self, ShareState};
use crate::error::{NodeError, refuse};
use crate::public::{Lang, escape, page};
use crate::units::human_bytes;
use crate::{Node, lock, now_secs};

/// Streams through links at once (each a connection reading a file), and from one address.
pub(crate) const MAX_LINK_STREAMS: usize = 16;
pub(crate) const MAX_LINK_STREAMS_PER_ADDRESS: usize = 6;
/// Files a link's page lists, at most (the zip holds them all).
const MAX_LISTED: usize = 1000;

/// What closes the links of share `info_hash` of sphere `sphere_id` (see
/// [`Node::link_closed`]).
pub(crate) fn share_key(sphere_id: i64, info_hash: &str) -> String {
    format!("{sphere_id}:{info_hash}")
}

/// Streams through links per address.
pub(crate) type Addresses =
    std::sync::Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>;

/// One of an address's stream slots, given back when dropped.
pub(crate) struct AddressSlot {
    all: Addresses,
    ip: std::net::IpAddr,
}

impl AddressSlot {
    fn take(all: &Addresses, ip: std::net::IpAddr) -> Option<AddressSlot> {
        let ip = spheres_web::counted_as(ip);
        let mut m = lock(all);
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_LINK_STREAMS_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            all: all.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut m = lock(&self.all);
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}
/// Browsers connected to links' trackers at once.
pub(crate) const MAX_LINK_BROWSERS: usize = 256;
/// The shortest password a link takes (guesses are throttled: see the API).
pub(crate) const MIN_PASSWORD: usize = 6;
/// The most browsers a counted link may be opened by.
pub(crate) const MAX_OPENS: u32 = 100_000;
/// The cookie a visitor's pass rides in (scoped to the link's path).
pub(crate) const PASS_COOKIE: &str = "spheres_pass";
/// How long a pass lasts when its link never expires (seconds).
const PASS_MAX_AGE: i64 = 30 * 24 * 3600;

fn pass_mac(row: &LinkRow, nonce: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&row.secret).ok()?;
    mac.update(b"spheres link pass\0");
    mac.update(row.token.as_bytes());
    mac.update(b"\0");
    mac.update(nonce.as_bytes());
    Some(mac)
}

/// A new pass for link `row` (when it was given, a random nonce, and their signature), as
/// the cookie's value.
pub(crate) fn new_pass(row: &LinkRow) -> Option<String> {
    let nonce = format!(
        "{:x}-{}",
        now_secs(),
        hex::encode(rand::random::<[u8; 16]>())
    );
    let tag = pass_mac(row, &nonce)?.finalize().into_bytes();
    Some(format!("{nonce}.{}", hex::encode(tag)))
}

/// Whether `pass` is one the node gave for link `row` (checked in constant time) less than
/// [`PASS_MAX_AGE`] ago.
pub(crate) fn pass_ok(row: &LinkRow, pass: &str) -> bool {
    let Some((nonce, tag)) = pass.split_once('.') else {
        return false;
    };
    let given = nonce
        .split_once('-')
        .and_then(|(t, _)| i64::from_str_radix(t, 16).ok());
    if !given.is_some_and(|t| (-60..PASS_MAX_AGE).contains(&(now_secs() - t))) {
        return false;
    }
    let (Ok(tag), Some(mac)) = (hex::decode(tag), pass_mac(row, nonce)) else {
        return false;
    };
    !row.secret.is_empty() && mac.verify_slice(&tag).is_ok()
}

/// The `Set-Cookie` value that gives `pass` for link `row`, lasting as long as the link.
pub(crate) fn pass_cookie(row: &LinkRow, pass: &str) -> String {
    let age = row
        .expires
        .map_or(PASS_MAX_AGE, |e| (e - now_secs()).clamp(1, PASS_MAX_AGE));
    format!(
        "{PASS_COOKIE}={pass}; Path=/l/{}; Max-Age={age}; HttpOnly; SameSite=Lax",
        row.token
    )
}

/// An open link: its row, its share's name, and the torrent the node serves it from.
pub(crate) struct OpenLink {
    pub(crate) row: LinkRow,
    pub(crate) name: String,
    pub(crate) hash: InfoHash,
    pub(crate) meta: Arc<Metainfo>,
    /// Whether the visitor may read it now: the link is not guarded, or they hold a pass.
    pub(crate) admitted: bool,
    /// A share of an encrypted sphere: its torrent is over encrypted bytes, so browsers get
    /// it from this node only, through the link's page (no torrent, tracker or web seed).
    pub(crate) sealed: bool,
}

impl OpenLink {
    /// The share's files, as its page lists them.
    pub(crate) fn files(&self) -> Vec<LinkFile> {
        self.meta
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.padding)
            .map(|(index, f)| LinkFile {
                index,
                name: f.path.join("/"),
                size: f.length,
            })
            .collect()
    }

    /// The file a web seed request names: `NAME/PATH` in a folder (padding files too), nothing
    /// more for a single file.
    pub(crate) fn file_at(&self, path: &str) -> Option<usize> {
        let path = path.trim_matches('/');
        if !self.meta.multi_file {
            return (path.is_empty() || path == self.meta.name)
                .then_some(0)
                .filter(|_| !self.meta.files.is_empty());
        }
        let rest = path
            .strip_prefix(self.meta.name.as_str())?
            .strip_prefix('/')?;
        self.meta
            .files
            .iter()
            .position(|f| f.path.join("/") == rest)
    }

    /// Whether `index` is one of the share's files.
    pub(crate) fn has_file(&self, index: usize) -> bool {
        self.meta.files.get(index).is_some_and(|f| !f.padding)
    }
}

/// What a link's page shows of one file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LinkFile {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) size: u64,
}

/// Why a link gives nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    Unknown,
    Expired,
    Revoked,
    /// The share is no longer on this node (withdrawn, or its data gone).
    Gone,
    /// The node cannot tell right now (its store did not answer, it is stopping, or every
    /// stream through links is taken): try again.
    Busy,
    /// As many browsers as the link allows have opened it.
    UsedUp,
    /// A file asked for without a pass, on a link that needs one: open its page first.
    NoPass,
    /// A torrent, tracker or web seed asked of a link to an encrypted sphere's share: it
    /// opens through its page only.
    PageOnly,
    /// A torrent, tracker or web seed asked of a link its maker serves from the node only.
    Direct,
}

/// The token of a link given as its URL or as the token itself.
fn token_of(link: &str) -> &str {
    let link = link.trim().trim_end_matches('/');
    link.rsplit_once("/l/").map_or(link, |(_, t)| t)
}

fn state_name(s: LinkState) -> &'static str {
    match s {
        LinkState::Open => "open",
        LinkState::Expired => "expired",
        LinkState::Revoked => "revoked",
    }
}

/// The guards of a new link, the password hashed.
async fn guards(
    password: Option<&str>,
    max_opens: Option<u32>,
    direct: bool,
) -> Result<LinkGuards, NodeError> {
    let password = match password {
        None => None,
        Some(p) if p.chars().count() < MIN_PASSWORD => refuse!(
            BadInput,
            "a link's password needs at least {MIN_PASSWORD} characters"
        ),
        Some(p) if p.len() > 1024 => refuse!(BadInput, "that password is too long"),
        Some(p) => Some(crate::account::hash_password(p).await?),
    };
    let max_opens = match max_opens {
        None => None,
        Some(0) => refuse!(BadInput, "a link must open for at least one browser"),
        Some(n) if n > MAX_OPENS => refuse!(
            BadInput,
            "a link opens for at most {MAX_OPENS} browsers (or leave the number out)"
        ),
        Some(n) => Some(i64::from(n)),
    };
    Ok(LinkGuards {
        password,
        max_opens,
        secret: rand::random::<[u8; 32]>().to_vec(),
        direct,
    })
}

impl Node {
    /// The address links are made on, and how far it reaches (`reach`).
    fn links_base(&self) -> Result<types::WebAddress, NodeError> {
        match self.web_address() {
            Some(w) => Ok(w),
            None => refuse!(
                Unavailable,
                "this node serves no web pages (it was started without --http), so a link would open nothing"
            ),
        }
    }

    /// A link as the CLI and the page show it; `spheres`: the node's spheres.
    async fn link_info(
        &self,
        row: LinkRow,
        spheres: &[spheres_store::Sphere],
    ) -> Result<types::LinkInfo, NodeError> {
        let sphere = spheres.iter().find(|s| s.id == row.sphere_id).cloned();
        let share = match &sphere {
            Some(s) => self.store.share(s.id, &row.info_hash).await?,
            None => None,
        };
        let base = self.links_base()?;
        Ok(types::LinkInfo {
            url: format!("{}/l/{}", base.url, row.token),
            reach: base.reach,
            sphere: sphere.map(|s| s.name).unwrap_or_default(),
            share: share.map(|s| s.name).unwrap_or_default(),
            info_hash: row.info_hash.clone(),
            created: row.created,
            expires: row.expires,
            state: state_name(row.state_at(now_secs())).to_owned(),
            password: row.password.is_some(),
            max_opens: row.max_opens.and_then(|n| u32::try_from(n).ok()),
            opens: u32::try_from(row.opens).unwrap_or(u32::MAX),
            direct: row.direct,
        })
    }

    /// Makes a link to a share of a sphere, opening for `expires_in` seconds (none: until it
    /// is revoked), to those who give `password` if there is one, for `max_opens` browsers if
    /// given; served by the node only when `direct` (else its viewers share with each
    /// other). A share the sphere's policy left aside is fetched: the link plays it while it
    /// arrives.
    pub async fn create_link(
        self: &Arc<Self>,
        sphere: &str,
        share: &str,
        expires_in: Option<u64>,
        password: Option<&str>,
        max_opens: Option<u32>,
        direct: bool,
    ) -> Result<types::LinkInfo, NodeError> {
        self.links_base()?;
        let sp = self.sphere_named(sphere).await?;
        if sp.holding {
            refuse!(
                Forbidden,
                "this node holds {sphere:?}'s encrypted files without the keys: it has nothing readable to link to"
            );
        }
        let row = self.share_named(&sp, share).await?;
        match row.share_state() {
            ShareState::Seeding | ShareState::Downloading => {}
            ShareState::Available | ShareState::Failed => {
                self.fetch(sphere, &row.info_hash).await?;
            }
            ShareState::Withdrawn => refuse!(
                Conflict,
                "{:?} was taken back: there is nothing to link to",
                row.name
            ),
            ShareState::Hashing => refuse!(
                Conflict,
                "{:?} is still being prepared: make the link once it is shared",
                row.name
            ),
        }
        let expires = match expires_in {
            Some(0) => refuse!(BadInput, "a link must open for at least a second"),
            Some(s) => Some(now_secs().saturating_add(i64::try_from(s).unwrap_or(i64::MAX))),
            None => None,
        };
        let guards = guards(password, max_opens, direct).await?;
        let token = hex::encode(rand::random::<[u8; 32]>());
        let link = self
            .store
            .add_link(&token, sp.id, &row.info_hash, expires, &guards)
            .await?;
        tracing::info!(sphere = %sp.name, share = %row.name, "made a link to a share");
        self.link_info(link, &self.store.spheres().await?).await
    }

    /// Every link this node made, newest first.
    pub async fn links(&self) -> Result<Vec<types::LinkInfo>, NodeError> {
        let spheres = self.store.spheres().await?;
        let mut out = Vec::new();
        for row in self.store.links().await? {
            out.push(self.link_info(row, &spheres).await?);
        }
        Ok(out)
    }

    /// Revokes a link (its URL or token): from now on it gives a page saying so, and no byte.
    pub async fn revoke_link(&self, link: &str) -> Result<types::LinkInfo, NodeError> {
        let token = token_of(link);
        if !self.store.revoke_link(token).await? {
            refuse!(
                NotFound,
                "no link of this node is {link:?} (see `spheres link list`)"
            );
        }
        self.link_closed(token.to_owned());
        let row = self
            .store
            .link(token)
            .await?
            .ok_or_else(|| NodeError::NotFound(format!("{link:?} is gone")))?;
        self.link_info(row, &self.store.spheres().await?).await
    }

    /// Closes what goes through links under `key` (a link's token, or [`share_key`] for all
    /// the links of a share): their streams stop at their next chunk, their browsers leave
    /// the tracker. Remembered while the node runs; the store remembers for good.
    pub(crate) fn link_closed(&self, key: String) {
        lock(&self.closed_links).insert(key);
        self.links_changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether the link `row` was closed since it was opened.
    fn closed_since(
        closed: &std::sync::Mutex<std::collections::HashSet<String>>,
        row: &LinkRow,
    ) -> bool {
        let c = lock(closed);
        c.contains(&row.token) || c.contains(&share_key(row.sphere_id, &row.info_hash))
    }

    /// Resolves when the link `row` closes (revoked, its share taken back, expired) or the
    /// node stops.
    pub(crate) fn link_ends(&self, row: &LinkRow) -> spheres_tracker::ws::Stop {
        let mut changed = self.links_changed.subscribe();
        let closed = self.closed_links.clone();
        let row = row.clone();
        let stopping = self.stopping.clone();
        Box::pin(async move {
            let left = row
                .expires
                .map(|t| u64::try_from(t - now_secs()).unwrap_or(0));
            let expiry = async move {
                match left {
                    Some(s) => tokio::time::sleep(std::time::Duration::from_secs(s)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(expiry);
            loop {
                tokio::select! {
                    () = &mut expiry => return,
                    r = changed.changed() => if r.is_err() { return },
                }
                if Node::closed_since(&closed, &row)
                    || stopping.load(std::sync::atomic::Ordering::SeqCst)
                {
                    return;
                }
            }
        })
    }

    /// A stream of a file through the link `token`, with what keeps it going: a slot among
    /// [`MAX_LINK_STREAMS`], and a check before each chunk that no link closed since it began
    /// (then the viewer asks again, and its link is checked again) and that it has not expired.
    pub(crate) async fn link_stream(
        &self,
        token: &str,
        passes: &[String],
        index: Option<usize>,
        from: std::net::IpAddr,
    ) -> Result<(OpenLink, spheres_web::KeepGoing), Closed> {
        let open = self.open_link(token, passes).await?;
        if !open.admitted {
            return Err(Closed::NoPass);
        }
        if index.is_some_and(|i| open.meta.files.get(i).is_none()) {
            return Err(Closed::Unknown);
        }
        // Slots once the visitor is known to be let in: a stranger takes none.
        let slot = self
            .link_streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Closed::Busy)?;
        let mine = AddressSlot::take(&self.link_addresses, from).ok_or(Closed::Busy)?;
        let closed = self.closed_links.clone();
        let row = open.row.clone();
        let keep_going = move || {
            let _slots = (&slot, &mine);
            !Node::closed_since(&closed, &row) && row.expires.is_none_or(|t| now_secs() < t)
        };
        Ok((open, Box::new(keep_going)))
    }

    /// The torrent of an open link: its share's info, the link's tracker and web seed.
    pub(crate) fn link_torrent(&self, open: &OpenLink) -> Option<Vec<u8>> {
        let base = self.links_base().ok()?.url;
        let token = &open.row.token;
        let tracker = format!("ws{}/l/{token}/tracker", base.strip_prefix("http")?);
        let seed = format!("{base}/l/{token}/seed");
        Some(spheres_metainfo::torrent_with(
            &open.meta.info_bytes,
            &[tracker],
            &[seed],
        ))
    }

    /// Where browsers that opened links find each other.
    pub(crate) fn signalling(&self) -> Arc<spheres_tracker::ws::Signalling> {
        self.signalling.clone()
    }

    /// Counts a new browser on a link that opens for a number of them: its pass, or
    /// [`Closed::UsedUp`] once as many as it allows came.
    pub(crate) async fn count_visitor(&self, row: &LinkRow) -> Result<String, Closed> {
        match self.store.count_link_open(&row.token).await {
            Ok(true) => new_pass(row).ok_or(Closed::Busy),
            Ok(false) => Err(Closed::UsedUp),
            Err(_) => Err(Closed::Busy),
        }
    }

    /// The thumbnail of file `index` of an open link's share, once that file is here.
    pub(crate) async fn link_thumbnail(
        &self,
        open: &OpenLink,
        index: usize,
    ) -> Option<std::path::PathBuf> {
        let photo = open
            .files()
            .into_iter()
            .any(|f| f.index == index && shown_as(&f.name) == Shown::Image);
        if !photo {
            return None;
        }
        let spheres = self.store.spheres().await.ok()?;
        let sphere = spheres.into_iter().find(|s| s.id == open.row.sphere_id)?;
        self.file_thumbnail(&sphere.name, &open.row.info_hash, index)
            .await
            .ok()
            .flatten()
    }

    /// What an open link gives, or why it gives nothing; `passes`: the visitor's pass
    /// cookies.
    pub(crate) async fn open_link(
        &self,
        token: &str,
        passes: &[String],
    ) -> Result<OpenLink, Closed> {
        if self.stopping() {
            return Err(Closed::Busy);
        }
        let row = match self.store.link(token).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(Closed::Unknown),
            Err(_) => return Err(Closed::Busy),
        };
        match row.state_at(now_secs()) {
            LinkState::Open => {}
            LinkState::Expired => return Err(Closed::Expired),
            LinkState::Revoked => return Err(Closed::Revoked),
        }
        // Only while this node fetches or seeds it here (not taken back, not deleted).
        let share = match self.store.share(row.sphere_id, &row.info_hash).await {
            Ok(Some(s))
                if matches!(
                    s.share_state(),
                    ShareState::Seeding | ShareState::Downloading
                ) =>
            {
                s
            }
            Ok(_) => return Err(Closed::Gone),
            Err(_) => return Err(Closed::Busy),
        };
        let hash: InfoHash = row.info_hash.parse().map_err(|_| Closed::Gone)?;
        let meta = self.engine.metainfo(&hash).ok_or(Closed::Gone)?;
        let admitted = !row.guarded() || passes.iter().any(|p| pass_ok(&row, p));
        Ok(OpenLink {
            row,
            sealed: share.sealed.is_some(),
            name: share.name,
            hash,
            meta,
            admitted,
        })
    }
}

/// What a link's pages say, in the visitor's language.
struct Words {
    shared: &'static str,
    files: &'static str,
    all: &'static str,
    photos: &'static str,
    previous: &'static str,
    next: &'static str,
    close: &'static str,
    download: &'static str,
    direct: &'static str,
    shared_p2p: &'static str,
    direct_p2p: &'static str,
    stop_sharing: &'static str,
    start_sharing: &'static str,
    stats: &'static str,
    more: fn(usize) -> String,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::En => Words {
            shared: "Shared with you from a spheres node.",
            files: "Files",
            all: "Download all (zip",
            photos: "Photos",
            previous: "Previous",
            next: "Next",
            close: "Close",
            download: "Download",
            direct: "Only the sender's node serves this page: nobody else sees your address.",
            shared_p2p: "People watching this link pass it to each other, so it comes faster and spares the sender's connection: they can see your IP address, as you see theirs.",
            direct_p2p: "You get this from the sender's node only: nobody else sees your address.",
            stop_sharing: "Watch without sharing",
            start_sharing: "Share with other viewers",
            stats: "{peers} other viewers connected · {from_peers} from them, {from_node} from the sender · {to_peers} given",
            more: |n| format!("And {n} more files, in the zip."),
        },
        Lang::Fr => Words {
            shared: "Partagé avec vous depuis un nœud spheres.",
            files: "Fichiers",
            all: "Tout télécharger (zip",
            photos: "Photos",
            previous: "Précédente",
            next: "Suivante",
            close: "Fermer",
            download: "Télécharger",
            direct: "Seul le nœud de l'expéditeur sert cette page : personne d'autre ne voit votre adresse.",
            shared_p2p: "Les personnes qui regardent ce lien se le passent entre elles, pour aller plus vite et ménager la connexion de l'expéditeur : elles peuvent voir votre adresse IP, comme vous la leur.",
            direct_p2p: "Vous recevez ceci du nœud de l'expéditeur seulement : personne d'autre ne voit votre adresse.",
            stop_sharing: "Regarder sans partager",
            start_sharing: "Partager avec les autres spectateurs",
            stats: "{peers} autres spectateurs connectés · {from_peers} reçus d'eux, {from_node} de l'expéditeur · {to_peers} donnés",
            more: |n| format!("Et {n} fichiers de plus, dans le zip."),
        },
    }
}

/// The page of an open link: its photos as a gallery (thumbnails; a click shows one whole,
/// with previous and next, in plain HTML and CSS), its videos and sounds playing, every file
/// offered for download, and the whole share as one zip when it has several files.
///
/// `p2p`: the page's script (`/ui/link/viewer.js`, see [`p2p_policy`]), which shares the files
/// with the link's other viewers, by its nonce; the page says so, and lets the viewer refuse.
pub(crate) fn viewer(
    lang: Lang,
    token: &str,
    name: &str,
    files: &[LinkFile],
    p2p: Option<&str>,
) -> String {
    let nonce = p2p;
    let p2p = nonce.is_some();
    let w = words(lang);
    let base = format!("/l/{token}");
    let more = files.len().saturating_sub(MAX_LISTED);
    let all_size: u64 = files.iter().map(|f| f.size).sum();
    let count = files.len();
    let files = &files[..files.len().min(MAX_LISTED)];
    let photos: Vec<&LinkFile> = files
        .iter()
        .filter(|f| shown_as(&f.name) == Shown::Image)
        .collect();
    let about = if p2p {
        format!(
            "<div id=\"p2p\" class=\"p2p\" data-base=\"{base}\" data-shared=\"{}\" data-direct=\"{}\" \
             data-off=\"{}\" data-on=\"{}\" data-stats=\"{}\"><p class=\"muted p2p-text\">{}</p>\
             <p class=\"muted p2p-stats\" aria-live=\"polite\"></p><button type=\"button\" hidden></button></div>",
            escape(w.shared_p2p),
            escape(w.direct_p2p),
            escape(w.stop_sharing),
            escape(w.start_sharing),
            escape(w.stats),
            w.direct_p2p,
        )
    } else {
        format!("<p class=\"muted\">{}</p>", w.direct)
    };
    let mut body = format!("<h1>{}</h1><p>{}</p>{about}", escape(name), w.shared);
    if count > 1 {
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"{base}/zip\" download>{}, {})</a></p>",
            w.all,
            human_bytes(all_size)
        ));
    }
    if !photos.is_empty() {
        let grid: String = photos
            .iter()
            .map(|f| {
                format!(
                    "<li><a href=\"#p{i}\"><img class=\"thumb\" src=\"{base}/thumbs/{i}\" alt=\"{n}\" loading=\"lazy\"></a></li>",
                    i = f.index,
                    n = escape(&f.name)
                )
            })
            .collect();
        body.push_str(&format!(
            "<section id=\"photos\"><h2>{}</h2><ul class=\"album-grid\">{grid}</ul></section>",
            w.photos
        ));
        for (at, f) in photos.iter().enumerate() {
            let prev = photos[(at + photos.len() - 1) % photos.len()].index;
            let next = photos[(at + 1) % photos.len()].index;
            body.push_str(&format!(
                "<figure id=\"p{i}\" class=\"lightbox\"><img src=\"{base}/files/{i}\" alt=\"{n}\" loading=\"lazy\">\
                 <figcaption><a href=\"#p{prev}\" rel=\"prev\">‹ {}</a> <a href=\"#photos\">{}</a> \
                 <a href=\"#p{next}\" rel=\"next\">{} ›</a> <a href=\"{base}/files/{i}\" download>{} {n} ({})</a></figcaption></figure>",
                w.previous,
                w.close,
                w.next,
                w.download,
                human_bytes(f.size),
                i = f.index,
                n = escape(&f.name),
            ));
        }
    }
    let items: String = files
        .iter()
        .filter(|f| shown_as(&f.name) != Shown::Image)
        .map(|f| {
            let src = format!("{base}/files/{}", f.index);
            let shown = match shown_as(&f.name) {
                // With the script, players load once its service worker answers them.
                Shown::Video if p2p => format!(
                    "<video controls preload=\"none\" src=\"{src}\" data-src=\"{src}\"></video>"
                ),
                Shown::Audio if p2p => format!(
                    "<audio controls preload=\"none\" src=\"{src}\" data-src=\"{src}\"></audio>"
                ),
                Shown::Video => {
                    format!("<video controls preload=\"metadata\" src=\"{src}\"></video>")
                }
                Shown::Audio => {
                    format!("<audio controls preload=\"metadata\" src=\"{src}\"></audio>")
                }
                Shown::Image | Shown::Download => String::new(),
            };
            format!(
                "<li>{shown}<p><a href=\"{src}\" download>{} ({})</a></p></li>",
                escape(&f.name),
                human_bytes(f.size),
            )
        })
        .collect();
    if !items.is_empty() {
        body.push_str(&format!(
            "<ul class=\"link-files\" aria-label=\"{}\">{items}</ul>",
            w.files
        ));
    }
    if more > 0 {
        body.push_str(&format!("<p class=\"muted\">{}</p>", (w.more)(more)));
    }
    if let Some(nonce) = nonce {
        body.push_str(&format!(
            "<script type=\"module\" nonce=\"{nonce}\" src=\"/ui/link/viewer.js\"></script>"
        ));
    }
    page(lang, &escape(name), &body, None)
}

/// The page of a link that opens for a number of browsers: a button that counts this one
/// (a page asked for by a link preview, a prefetch or a robot counts nobody).
pub(crate) fn open_page(lang: Lang, token: &str, name: &str) -> String {
    let (text, open) = match lang {
        Lang::En => (
            "This link opens for a limited number of people. Open it to watch or download what it holds.",
            "Open",
        ),
        Lang::Fr => (
            "Ce lien s'ouvre pour un nombre limité de personnes. Ouvrez-le pour regarder ou télécharger ce qu'il contient.",
            "Ouvrir",
        ),
    };
    page(
        lang,
        &escape(name),
        &format!(
            "<h1>{}</h1><p>{text}</p><form method=\"post\" action=\"/l/{token}\"><button>{open}</button></form>",
            escape(name)
        ),
        None,
    )
}

/// The page that asks a link's password; `wrong`: the last one given was not it.
pub(crate) fn password_page(lang: Lang, token: &str, wrong: bool) -> String {
    let (title, text, label, open, wrong_text) = match lang {
        Lang::En => (
            "This link needs a password",
            "The person who sent it chose a password: ask them for it.",
            "Password",
            "Open",
            "That is not the password. Check it with the person who sent the link.",
        ),
        Lang::Fr => (
            "Ce lien demande un mot de passe",
            "La personne qui l'a envoyé a choisi un mot de passe : demandez-le-lui.",
            "Mot de passe",
            "Ouvrir",
            "Ce n'est pas le mot de passe. Vérifiez-le avec la personne qui a envoyé le lien.",
        ),
    };
    let error = if wrong {
        format!("<p class=\"error\" role=\"alert\">{wrong_text}</p>")
    } else {
        String::new()
    };
    page(
        lang,
        title,
        &format!(
            "<h1>{title}</h1><p>{text}</p>{error}<form method=\"post\" action=\"/l/{token}\">\
             <label>{label} <input type=\"password\" name=\"password\" autocomplete=\"current-password\" required autofocus></label> \
             <button>{open}</button></form>"
        ),
        None,
    )
}

/// The page after too many wrong passwords: when to try again.
pub(crate) fn too_many_tries(lang: Lang, minutes: u64) -> String {
    let (title, text) = match lang {
        Lang::En => (
            "Too many wrong passwords",
            format!(
                "Try again in {minutes} min, or ask the person who sent the link for the password."
            ),
        ),
        Lang::Fr => (
            "Trop de mots de passe erronés",
            format!(
                "Réessayez dans {minutes} min, ou demandez le mot de passe à la personne qui a envoyé le lien."
            ),
        ),
    };
    page(lang, title, &format!("<h1>{title}</h1><p>{text}</p>"), None)
}

/// The pages' policy: no script, no frames; our stylesheet, and the link's own pictures and
/// media; a form only to the link itself (its password).
pub(crate) const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of a viewer page whose script shares with other viewers: the same, and our
/// own modules, their requests to this node (the torrent, the tracker, the files) and their
/// service worker. The script runs by its nonce (new at each page) and what it imports
/// ('strict-dynamic'), not by its origin: a share's own `.js` file, served from the same
/// origin, could not run even if a name slipped into the page as markup.
pub(crate) fn p2p_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}' 'strict-dynamic'; connect-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The page of a link that gives nothing, saying why and what to do.
pub(crate) fn closed(lang: Lang, why: Closed) -> String {
    let (title, text) = match (lang, why) {
        (Lang::En, Closed::Unknown) => (
            "No such link",
            "This link does not exist. Check that it was copied whole, or ask the person who sent it.",
        ),
        (Lang::En, Closed::Expired) => (
            "This link has expired",
            "Ask the person who sent it for a new one.",
        ),
        (Lang::En, Closed::Revoked) => (
            "This link was revoked",
            "The person who sent it took it back. Ask them if you still need it.",
        ),
        (Lang::En, Closed::Gone) => (
            "No longer shared",
            "What this link pointed to is no longer shared. Ask the person who sent it.",
        ),
        (Lang::Fr, Closed::Unknown) => (
            "Lien inconnu",
            "Ce lien n'existe pas. Vérifiez qu'il a été copié en entier, ou demandez à la personne qui l'a envoyé.",
        ),
        (Lang::Fr, Closed::Expired) => (
            "Ce lien a expiré",
            "Demandez-en un nouveau à la personne qui l'a envoyé.",
        ),
        (Lang::Fr, Closed::Revoked) => (
            "Ce lien a été révoqué",
            "La personne qui l'a envoyé l'a repris. Demandez-lui si vous en avez encore besoin.",
        ),
        (Lang::Fr, Closed::Gone) => (
            "Plus partagé",
            "Ce que désignait ce lien n'est plus partagé. Demandez à la personne qui l'a envoyé.",
        ),
        (Lang::En, Closed::Busy) => (
            "Try again in a moment",
            "The node that shares this is busy or restarting. Reload the page in a moment.",
        ),
        (Lang::Fr, Closed::Busy) => (
            "Réessayez dans un instant",
            "Le nœud qui partage ceci est occupé ou redémarre. Rechargez la page dans un instant.",
        ),
        (Lang::En, Closed::UsedUp) => (
            "This link was opened as many times as it allows",
            "Ask the person who sent it for a new one.",
        ),
        (Lang::Fr, Closed::UsedUp) => (
            "Ce lien a été ouvert autant de fois qu'il le permet",
            "Demandez-en un nouveau à la personne qui l'a envoyé.",
        ),
        (Lang::En, Closed::NoPass) => (
            "Open the link first",
            "This file opens from its link's page. Open the link you were sent, then choose the file there.",
        ),
        (Lang::Fr, Closed::NoPass) => (
            "Ouvrez d'abord le lien",
            "Ce fichier s'ouvre depuis la page de son lien. Ouvrez le lien que vous avez reçu, puis choisissez-y le fichier.",
        ),
        (Lang::En, Closed::PageOnly) => (
            "This opens in the link's page only",
            "What this link shares is end-to-end encrypted: it comes from the sender's node only, through the page of the link. Open the link you were sent.",
        ),
        (Lang::Fr, Closed::PageOnly) => (
            "Ceci s'ouvre seulement dans la page du lien",
            "Ce que partage ce lien est chiffré de bout en bout : il vient seulement du nœud de l'expéditeur, par la page du lien. Ouvrez le lien que vous avez reçu.",
        ),
        (Lang::En, Closed::Direct) => (
            "This link is served by the sender's node only",
            "The person who made it chose that its viewers do not share it with each other. Open the link you were sent to watch or download.",
        ),
        (Lang::Fr, Closed::Direct) => (
            "Ce lien est servi par le nœud de l'expéditeur seulement",
            "La personne qui l'a créé a choisi que ses spectateurs ne se le partagent pas. Ouvrez le lien que vous avez reçu pour regarder ou télécharger.",
        ),
    };
    page(lang, title, &format!("<h1>{title}</h1><p>{text}</p>"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(secret: Vec<u8>) -> LinkRow {
        LinkRow {
            token: "tok".into(),
            sphere_id: 1,
            info_hash: String::new(),
            created: 0,
            expires: None,
            revoked: false,
            password: Some("x".into()),
            max_opens: None,
            opens: 0,
            secret,
            direct: false,
        }
    }

    /// Attack: a visitor forges a pass, or takes one link's pass to another link.
    #[test]
    fn a_pass_opens_its_own_link_only() {
        let a = row(vec![1; 32]);
        let pass = new_pass(&a).unwrap();
        assert!(pass_ok(&a, &pass));
        let other_token = LinkRow {
            token: "other".into(),
            ..a.clone()
        };
        assert!(!pass_ok(&other_token, &pass), "signed for its token");
        assert!(
            !pass_ok(&row(vec![2; 32]), &pass),
            "signed with its link's key"
        );
        let (nonce, tag) = pass.split_once('.').unwrap();
        assert!(!pass_ok(&a, &format!("{nonce}0.{tag}")));
        assert!(!pass_ok(&a, &format!("{nonce}.{}", &tag[2..])));
        assert!(!pass_ok(&a, nonce));
        assert!(!pass_ok(&a, ""));
        assert!(
            !pass_ok(
                &row(Vec::new()),
                &new_pass(&row(Vec::new())).unwrap_or_default()
            ),
            "no key, no pass"
        );
        // A pass older than PASS_MAX_AGE, even signed, opens nothing.
        let old = format!("{:x}-00", now_secs() - PASS_MAX_AGE - 1);
        let tag = hex::encode(pass_mac(&a, &old).unwrap().finalize().into_bytes());
        assert!(!pass_ok(&a, &format!("{old}.{tag}")));
        let fresh = format!("{:x}-00", now_secs() - 10);
        let tag = hex::encode(pass_mac(&a, &fresh).unwrap().finalize().into_bytes());
        assert!(pass_ok(&a, &format!("{fresh}.{tag}")));
        let cookie = pass_cookie(&a, &pass);
        assert!(
            cookie.contains("Path=/l/tok;") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
    }

    #[test]
    fn a_link_is_named_by_its_url_or_its_token() {
        assert_eq!(token_of("http://127.0.0.1:8080/l/abc123"), "abc123");
        assert_eq!(token_of("http://127.0.0.1:8080/l/abc123/"), "abc123");
        assert_eq!(token_of(" abc123 "), "abc123");
    }

    #[test]
    fn the_viewer_plays_shows_and_offers_each_file_and_escapes_names() {
        let files = [
            LinkFile {
                index: 0,
                name: "holiday.mp4".into(),
                size: 5_000_000,
            },
            LinkFile {
                index: 2,
                name: "<script>x</script>.jpg".into(),
                size: 10,
            },
            LinkFile {
                index: 3,
                name: "notes.svg".into(),
                size: 10,
            },
        ];
        let html = viewer(Lang::En, "tok", "Lyon <b>", &files, None);
        assert!(
            html.contains("<video controls preload=\"metadata\" src=\"/l/tok/files/0\">"),
            "{html}"
        );
        assert!(
            html.contains("<img class=\"thumb\" src=\"/l/tok/thumbs/2\""),
            "{html}"
        );
        assert!(
            html.contains("<figure id=\"p2\" class=\"lightbox\"><img src=\"/l/tok/files/2\""),
            "{html}"
        );
        assert!(html.contains("href=\"/l/tok/zip\" download"), "{html}");
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            !html.contains("/l/tok/thumbs/3") && !html.contains("<img src=\"/l/tok/files/3\""),
            "an SVG is a download only"
        );
        assert!(html.contains(&human_bytes(5_000_000)), "{html}");
        let one = viewer(Lang::En, "tok", "one", &files[..1], None);
        assert!(!one.contains("/zip"), "one file needs no archive: {one}");
        let fr = closed(Lang::Fr, Closed::Revoked);
        assert!(fr.contains("révoqué") && fr.contains("lang=\"fr\""), "{fr}");
    }
}
