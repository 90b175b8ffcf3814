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

use std::sync::Arc;

use spheres_metainfo::{InfoHash, Metainfo};
use spheres_store::{LinkRow, LinkState};
use spheres_web::{Shown, shown_as};

use crate::RowState as _;
use crate::api::types::{self, ShareState};
use crate::error::{NodeError, refuse};
use crate::public::{Lang, escape, page};
use crate::units::human_bytes;
use crate::{Node, lock, now_secs};

/// Streams through links at once (each a connection reading a file).
pub(crate) const MAX_LINK_STREAMS: usize = 16;

/// An open link: its row, its share's name, and the torrent the node serves it from.
pub(crate) struct OpenLink {
    pub(crate) row: LinkRow,
    pub(crate) name: String,
    pub(crate) hash: InfoHash,
    pub(crate) meta: Arc<Metainfo>,
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
        })
    }

    /// Makes a link to a share of a sphere, opening for `expires_in` seconds (none: until it
    /// is revoked). A share the sphere's policy left aside is fetched: the link plays it while
    /// it arrives.
    pub async fn create_link(
        self: &Arc<Self>,
        sphere: &str,
        share: &str,
        expires_in: Option<u64>,
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
        let token = hex::encode(rand::random::<[u8; 32]>());
        let link = self
            .store
            .add_link(&token, sp.id, &row.info_hash, expires)
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
        index: usize,
    ) -> Result<(InfoHash, spheres_web::KeepGoing), Closed> {
        let slot = self
            .link_streams
            .clone()
            .try_acquire_owned()
            .map_err(|_| Closed::Busy)?;
        let changed = self.links_changed.subscribe();
        let open = self.open_link(token).await?;
        if !open.has_file(index) {
            return Err(Closed::Unknown);
        }
        let until = open.row.expires;
        let keep_going = move || {
            let _slot = &slot;
            !changed.has_changed().unwrap_or(true) && until.is_none_or(|t| now_secs() < t)
        };
        Ok((open.hash, Box::new(keep_going)))
    }

    /// What an open link gives, or why it gives nothing.
    pub(crate) async fn open_link(&self, token: &str) -> Result<OpenLink, Closed> {
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
        Ok(OpenLink {
            row,
            name: share.name,
            hash,
            meta,
        })
    }
}

/// The page of an open link: each file played, shown or offered for download, from
/// `files/INDEX` beside the page.
pub(crate) fn viewer(lang: Lang, token: &str, name: &str, files: &[LinkFile]) -> String {
    let items: String = files
        .iter()
        .map(|f| {
            let src = format!("/l/{token}/files/{}", f.index);
            let shown = match shown_as(&f.name) {
                Shown::Video => {
                    format!("<video controls preload=\"metadata\" src=\"{src}\"></video>")
                }
                Shown::Audio => {
                    format!("<audio controls preload=\"metadata\" src=\"{src}\"></audio>")
                }
                Shown::Image => {
                    format!(
                        "<img src=\"{src}\" alt=\"{}\" loading=\"lazy\">",
                        escape(&f.name)
                    )
                }
                Shown::Download => String::new(),
            };
            format!(
                "<li>{shown}<p><a href=\"{src}\" download>{} ({})</a></p></li>",
                escape(&f.name),
                human_bytes(f.size),
                shown = shown,
            )
        })
        .collect();
    let (shared, download) = match lang {
        Lang::En => ("Shared with you from a spheres node.", "Download"),
        Lang::Fr => ("Partagé avec vous depuis un nœud spheres.", "Télécharger"),
    };
    let body = format!(
        "<h1>{}</h1><p>{shared}</p><ul class=\"link-files\" aria-label=\"{download}\">{items}</ul>",
        escape(name)
    );
    page(lang, &escape(name), &body, None)
}

/// The pages' policy: no script, no frames; our stylesheet, and the link's own pictures and
/// media.
pub(crate) const POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; media-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

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
    };
    page(lang, title, &format!("<h1>{title}</h1><p>{text}</p>"), None)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(html.contains("<img src=\"/l/tok/files/2\""), "{html}");
        assert!(
            !html.contains("<script>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            !html.contains("<img src=\"/l/tok/files/3\""),
            "an SVG is a download only"
        );
        assert!(html.contains(&human_bytes(5_000_000)), "{html}");
        let fr = closed(Lang::Fr, Closed::Revoked);
        assert!(fr.contains("révoqué") && fr.contains("lang=\"fr\""), "{fr}");
    }
}
