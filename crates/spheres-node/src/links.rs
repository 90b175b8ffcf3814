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

/// Streams through links at once (each a connection reading a file).
pub(crate) const MAX_LINK_STREAMS: usize = 16;
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

/// A new pass for link `row` (a random nonce and its signature), as the cookie's value.
pub(crate) fn new_pass(row: &LinkRow) -> Option<String> {
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let tag = pass_mac(row, &nonce)?.finalize().into_bytes();
    Some(format!("{nonce}.{}", hex::encode(tag)))
}

/// Whether `pass` is one the node gave for link `row` (checked in constant time).
pub(crate) fn pass_ok(row: &LinkRow, pass: &str) -> bool {
    let Some((nonce, tag)) = pass.split_once('.') else {
        return false;
    };
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
async fn guards(password: Option<&str>, max_opens: Option<u32>) -> Result<LinkGuards, NodeError> {
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
    })
}

impl Node {
    /// The address links are made on: the node's HTTP address, or its address on the LAN when
    /// it listens on every interface.
    fn links_base(&self) -> Result<String, NodeError> {
        match *lock(&self.http) {
            Some(a) if a.ip().is_unspecified() => {
                let host = spheres_net::lan_address().unwrap_or(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
                Ok(format!(
                    "http://{}",
                    std::net::SocketAddr::new(host, a.port())
                ))
            }
            Some(a) => Ok(format!("http://{a}")),
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
        Ok(types::LinkInfo {
            url: format!("{}/l/{}", self.links_base()?, row.token),
            sphere: sphere.map(|s| s.name).unwrap_or_default(),
            share: share.map(|s| s.name).unwrap_or_default(),
            info_hash: row.info_hash.clone(),
            created: row.created,
            expires: row.expires,
            state: state_name(row.state_at(now_secs())).to_owned(),
            password: row.password.is_some(),
            max_opens: row.max_opens.and_then(|n| u32::try_from(n).ok()),
            opens: u32::try_from(row.opens).unwrap_or(u32::MAX),
        })
    }

    /// Makes a link to a share of a sphere, opening for `expires_in` seconds (none: until it
    /// is revoked), to those who give `password` if there is one, for `max_opens` browsers if
    /// given. A share the sphere's policy left aside is fetched: the link plays it while it
    /// arrives.
    pub async fn create_link(
        self: &Arc<Self>,
        sphere: &str,
        share: &str,
        expires_in: Option<u64>,
        password: Option<&str>,
        max_opens: Option<u32>,
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
        let guards = guards(password, max_opens).await?;
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
        self.link_closed();
        let row = self
            .store
            .link(token)
            .await?
            .ok_or_else(|| NodeError::NotFound(format!("{link:?} is gone")))?;
        self.link_info(row, &self.store.spheres().await?).await
    }

    /// Tells the streams through links that a link may have closed.
    pub(crate) fn link_closed(&self) {
        self.links_changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A stream of a file through the link `token`, with what keeps it going: a slot among
    /// [`MAX_LINK_STREAMS`], and a check before each chunk that no link closed since it began
    /// (then the viewer asks again, and its link is checked again) and that it has not expired.
    pub(crate) async fn link_stream(
        &self,
        token: &str,
        passes: &[String],
        index: Option<usize>,
    ) -> Result<(OpenLink, spheres_web::KeepGoing), Closed> {
        let slot = self
            .link_streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Closed::Busy)?;
        let changed = self.links_changed.subscribe();
        let open = self.open_link(token, passes).await?;
        if !open.admitted {
            return Err(Closed::NoPass);
        }
        if index.is_some_and(|i| !open.has_file(i)) {
            return Err(Closed::Unknown);
        }
        let until = open.row.expires;
        let keep_going = move || {
            let _slot = &slot;
            !changed.has_changed().unwrap_or(true) && until.is_none_or(|t| now_secs() < t)
        };
        Ok((open, Box::new(keep_going)))
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
        if !open.has_file(index) {
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
        },
    }
}

/// The page of an open link: its photos as a gallery (thumbnails; a click shows one whole,
/// with previous and next, in plain HTML and CSS), its videos and sounds playing, every file
/// offered for download, and the whole share as one zip when it has several files.
pub(crate) fn viewer(lang: Lang, token: &str, name: &str, files: &[LinkFile]) -> String {
    let w = words(lang);
    let base = format!("/l/{token}");
    let photos: Vec<&LinkFile> = files
        .iter()
        .filter(|f| shown_as(&f.name) == Shown::Image)
        .collect();
    let mut body = format!(
        "<h1>{}</h1><p>{}</p><p class=\"muted\">{}</p>",
        escape(name),
        w.shared,
        w.direct
    );
    if files.len() > 1 {
        let size: u64 = files.iter().map(|f| f.size).sum();
        body.push_str(&format!(
            "<p><a class=\"button\" href=\"{base}/zip\" download>{}, {})</a></p>",
            w.all,
            human_bytes(size)
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
    page(lang, &escape(name), &body, None)
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
        let html = viewer(Lang::En, "tok", "Lyon <b>", &files);
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
        let one = viewer(Lang::En, "tok", "one", &files[..1]);
        assert!(!one.contains("/zip"), "one file needs no archive: {one}");
        let fr = closed(Lang::Fr, Closed::Revoked);
        assert!(fr.contains("révoqué") && fr.contains("lang=\"fr\""), "{fr}");
    }
}
