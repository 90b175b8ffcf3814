//! Export and import: what is a person's own on this node, in one tar archive to take to
//! another account, on another server:
//! - `spheres.json`, the manifest ([`Manifest`]): account, contacts, spheres (members of those
//!   we own, shares), our posts (every audience) and our comments;
//! - `posts.atom`: our posts as an Atom feed (RFC 4287), for any feed reader;
//! - `torrents/HASH.torrent`: the `.torrent` of each share we made;
//! - `media/SPHERE/NAME…`: the files of each share we made, as they are on disk.
//!
//! The archive is written beside its destination and renamed into place: a crash never leaves
//! a file that claims to be a whole archive. Importing reads a manifest of at most
//! [`MAX_MANIFEST`] bytes, asks the contacts again, makes again the spheres we owned (and
//! invites their members), puts our files back in them (paths checked, nothing overwritten:
//! the folder watcher then shares them again, under the same info hashes) and publishes our
//! posts again, with their dates, audiences and ids.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};
use spheres_store::PostRow;
use spheres_xmpp::feed::{self, Entry};

use crate::Node;
use crate::api::types::{self, NotDone};
use crate::error::{NodeError, refuse};
use crate::spherefeed::{MediaRef, stored_media};

/// The format the manifest says it is.
const FORMAT: &str = "spheres-export/1";
/// The largest manifest we read.
pub(crate) const MAX_MANIFEST: u64 = 64 * 1024 * 1024;
/// The most posts an export holds (the newest).
const MAX_POSTS: i64 = 100_000;

/// What an export holds, besides files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub format: String,
    pub account: String,
    pub name: String,
    pub exported_at: i64,
    /// Our contacts' addresses.
    pub contacts: Vec<String>,
    pub spheres: Vec<SphereOut>,
    /// Our posts, newest first.
    pub posts: Vec<PostOut>,
    /// Our comments under others' posts (kept in the archive; not published again).
    pub comments: Vec<CommentOut>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SphereOut {
    pub name: String,
    pub owned: bool,
    /// Its payloads are end-to-end encrypted (absent from older archives: open).
    #[serde(default)]
    pub encrypted: bool,
    /// Its members, when we own it.
    pub members: Vec<String>,
    /// Those of them who are keyless seeders (docs/decisions/0016): invited again as such, so
    /// an import never gives them the keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeders: Vec<String>,
    /// The shares we made in it.
    pub shares: Vec<ShareOut>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShareOut {
    pub info_hash: String,
    pub name: String,
    pub size: u64,
    /// Its `.torrent` in the archive.
    pub torrent: Option<String>,
    /// Its files in the archive (a file, or a folder), when they were on disk.
    pub media: Option<String>,
    /// In an encrypted sphere: its key and layout (`SealedShare` text), so that the same files
    /// shared again make the same torrent (absent from older archives and open spheres).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PostOut {
    pub id: String,
    /// `contacts`, `everyone`, `public` or `sphere`.
    pub audience: String,
    pub sphere: Option<String>,
    pub text: String,
    pub published: i64,
    pub updated: i64,
    /// The shares it shows.
    pub media: Vec<MediaRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CommentOut {
    /// The post it is under, and that post's author.
    pub post: String,
    pub post_author: String,
    pub id: String,
    pub text: String,
    pub published: i64,
}

/// A path inside the archive for a name from the disk or the network: its normal parts only.
fn inside(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| Path::new(p).components())
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Where an archive's entry goes under `root`: `None` for anything that would leave it (an
/// absolute path, `..`) or is not a plain path.
fn safe_join(root: &Path, rel: &Path) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut any = false;
    for c in rel.components() {
        match c {
            Component::Normal(s) => {
                out.push(s);
                any = true;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    any.then_some(out)
}

/// Writes the archive at `dest` (through a temporary file renamed into place). Blocking.
fn write_archive(
    dest: &Path,
    manifest: &Manifest,
    atom: &str,
    torrents: &[(String, Vec<u8>)],
    media: &[(String, PathBuf)],
) -> anyhow::Result<()> {
    let tmp = dest.with_extension("partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    tar.follow_symlinks(false);
    let mut add = |name: &str, bytes: &[u8]| -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(u64::try_from(manifest.exported_at).unwrap_or(0));
        h.set_cksum();
        tar.append_data(&mut h, name, bytes)?;
        Ok(())
    };
    add("spheres.json", &serde_json::to_vec_pretty(manifest)?)?;
    add("posts.atom", atom.as_bytes())?;
    for (name, bytes) in torrents {
        add(name, bytes)?;
    }
    for (name, path) in media {
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() {
            tar.append_dir_all(name, path)
                .with_context(|| format!("cannot add {}", path.display()))?;
        } else if meta.is_file() {
            tar.append_path_with_name(path, name)
                .with_context(|| format!("cannot add {}", path.display()))?;
        }
    }
    let out = tar.into_inner()?;
    let file = out
        .into_inner()
        .map_err(|e| anyhow!("cannot write the archive: {e}"))?;
    file.sync_all()?;
    std::fs::rename(&tmp, dest)?;
    Ok(())
}

/// Reads an archive's manifest. Blocking.
fn read_manifest(archive: &Path) -> anyhow::Result<Manifest> {
    let file = std::fs::File::open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?;
    let mut tar = tar::Archive::new(file);
    for entry in tar.entries()? {
        let entry = entry?;
        if entry.path()?.as_ref() != Path::new("spheres.json") {
            continue;
        }
        let mut text = Vec::new();
        entry.take(MAX_MANIFEST + 1).read_to_end(&mut text)?;
        if text.len() as u64 > MAX_MANIFEST {
            return Err(anyhow!("its spheres.json is larger than we read"));
        }
        let m: Manifest =
            serde_json::from_slice(&text).context("its spheres.json does not read")?;
        if m.format != FORMAT {
            return Err(anyhow!("it is {:?}, not {FORMAT}", m.format));
        }
        return Ok(m);
    }
    Err(anyhow!("it has no spheres.json: not a spheres export"))
}

/// Puts the files under `prefix` (`media/SPHERE/`) of an archive into `folder`, never
/// outside it and never over a file that is there; returns how many files were written and
/// the names refused. Blocking.
fn extract_media(
    archive: &Path,
    prefix: &str,
    folder: &Path,
) -> anyhow::Result<(usize, Vec<String>)> {
    let file = std::fs::File::open(archive)?;
    let mut tar = tar::Archive::new(file);
    let (mut written, mut refused) = (0, Vec::new());
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let Ok(rel) = path.strip_prefix(prefix) else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        let shown = rel.to_string_lossy().into_owned();
        let Some(target) = safe_join(folder, rel).filter(|_| kind.is_file()) else {
            refused.push(shown);
            continue;
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        // Never over a file that is there (ours or not), never through a link.
        let out = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                refused.push(shown);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = std::io::BufWriter::new(out);
        std::io::copy(&mut entry, &mut out)?;
        written += 1;
    }
    Ok((written, refused))
}

impl Node {
    /// Our posts, newest first (every audience).
    async fn own_posts(&self) -> Result<Vec<(PostRow, Option<String>)>, NodeError> {
        Ok(self
            .store
            .feed(None, Some(self.me.as_str()), None, MAX_POSTS)
            .await?
            .into_iter()
            .map(|r| (r.post, r.sphere))
            .collect())
    }

    /// Writes an archive of what is ours here to `dest` (a path on this machine); returns
    /// what it holds.
    pub async fn export(&self, dest: &Path) -> Result<types::Exported, NodeError> {
        if dest.exists() {
            refuse!(
                Conflict,
                "{} exists already: give a new file name",
                dest.display()
            );
        }
        let contacts: Vec<String> = self
            .xmpp
            .roster()
            .await?
            .into_iter()
            .map(|i| i.jid.to_string())
            .collect();
        let (mut spheres, mut torrents, mut media) = (Vec::new(), Vec::new(), Vec::new());
        for s in self.store.spheres().await? {
            let all = if s.owned {
                self.store.members(s.id).await?
            } else {
                Vec::new()
            };
            let seeders = all
                .iter()
                .filter(|m| m.seeder)
                .map(|m| m.jid.clone())
                .collect();
            let members = all.into_iter().map(|m| m.jid).collect();
            let mut shares = Vec::new();
            for share in self.store.shares(s.id).await? {
                if share.sharer != self.me.as_str() {
                    continue;
                }
                let torrent = share.torrent.map(|t| {
                    let name = format!("torrents/{}.torrent", share.info_hash);
                    torrents.push((name.clone(), t));
                    name
                });
                let files = share
                    .path
                    .map(PathBuf::from)
                    .filter(|p| p.exists())
                    .map(|p| {
                        let name = inside(&["media", &s.name, &share.name]);
                        media.push((name.clone(), p));
                        name
                    });
                shares.push(ShareOut {
                    info_hash: share.info_hash,
                    name: share.name,
                    size: u64::try_from(share.size).unwrap_or(0),
                    torrent,
                    media: files,
                    sealed: share.sealed,
                });
            }
            spheres.push(SphereOut {
                name: s.name,
                owned: s.owned,
                encrypted: s.encrypted,
                members,
                seeders,
                shares,
            });
        }
        let rows = self.own_posts().await?;
        let posts: Vec<PostOut> = rows
            .iter()
            .map(|(p, sphere)| PostOut {
                id: p.item_id.clone(),
                audience: p.audience.clone(),
                sphere: sphere.clone(),
                text: p.content.clone(),
                published: p.published,
                updated: p.updated,
                media: stored_media(&p.media),
            })
            .collect();
        let comments = self
            .store
            .comments_by(self.me.as_str())
            .await?
            .into_iter()
            .map(|(c, post, post_author)| CommentOut {
                post,
                post_author,
                id: c.item_id,
                text: c.content,
                published: c.published,
            })
            .collect();
        let manifest = Manifest {
            format: FORMAT.into(),
            account: self.me.to_string(),
            name: self.name.clone(),
            exported_at: crate::now_secs(),
            contacts,
            spheres,
            posts,
            comments,
        };
        let rows: Vec<PostRow> = rows.into_iter().map(|(p, _)| p).collect();
        let atom = crate::public::atom_of(&self.name, self.me.as_str(), &rows);
        let summary = types::Exported {
            path: dest.to_string_lossy().into_owned(),
            posts: manifest.posts.len() as u64,
            comments: manifest.comments.len() as u64,
            contacts: manifest.contacts.len() as u64,
            spheres: manifest.spheres.len() as u64,
            files: media.len() as u64,
        };
        let dest = dest.to_path_buf();
        tokio::task::spawn_blocking(move || {
            write_archive(&dest, &manifest, &atom, &torrents, &media)
        })
        .await
        .map_err(|e| anyhow!("the export stopped: {e}"))??;
        Ok(summary)
    }

    /// Brings an archive made by [`Node::export`] (at `archive`, on this machine) into this
    /// account; says what it did and what it could not.
    pub async fn import(&self, archive: &Path) -> Result<types::Imported, NodeError> {
        let path = archive.to_path_buf();
        let m = tokio::task::spawn_blocking(move || read_manifest(&path))
            .await
            .map_err(|e| anyhow!("the import stopped: {e}"))?
            .map_err(|e| {
                NodeError::BadInput(format!("{} cannot be imported: {e:#}", archive.display()))
            })?;
        let mut done = types::Imported::default();
        // Contacts: asked again.
        for jid in &m.contacts {
            match self.add_contact(jid, None).await {
                Ok(()) => done.contacts_asked += 1,
                Err(e) => done.not_done.push(NotDone::new("contact", jid, Some(e))),
            }
        }
        // Spheres we owned: made again, members invited, our files put back.
        for s in &m.spheres {
            if !s.owned {
                done.not_done
                    .push(NotDone::new("member_of", &s.name, None::<String>));
                continue;
            }
            let sphere = match self.store.sphere(&s.name).await? {
                Some(sphere) => sphere,
                None => match self.create_sphere(&s.name, s.encrypted).await {
                    Ok(_) => {
                        done.spheres_made += 1;
                        self.sphere_named(&s.name).await?
                    }
                    Err(e) => {
                        done.not_done.push(NotDone::new("sphere", &s.name, Some(e)));
                        continue;
                    }
                },
            };
            for member in s.members.iter().filter(|j| **j != self.me.as_str()) {
                match self
                    .invite(&s.name, member, s.seeders.contains(member))
                    .await
                {
                    Ok(()) => done.members_invited += 1,
                    Err(e) => done.not_done.push(NotDone::new("invite", member, Some(e))),
                }
            }
            if s.shares.iter().any(|sh| sh.media.is_some()) {
                let (path, folder) = (archive.to_path_buf(), PathBuf::from(&sphere.folder));
                let prefix = inside(&["media", &s.name]);
                let (written, refused) =
                    tokio::task::spawn_blocking(move || extract_media(&path, &prefix, &folder))
                        .await
                        .map_err(|e| anyhow!("the import stopped: {e}"))??;
                done.files_restored += written as u64;
                // A sealed share's files, shared again, take their old key back: the same
                // torrent, so posts that show it still find it.
                for sh in &s.shares {
                    let Some(key) = sh
                        .sealed
                        .as_deref()
                        .and_then(spheres_xmpp::protocol::SealedShare::from_text)
                        .and_then(|t| t.key_bytes())
                    else {
                        continue;
                    };
                    let Some(at) = safe_join(Path::new(&sphere.folder), Path::new(&sh.name))
                        .and_then(|p| p.canonicalize().ok())
                    else {
                        continue;
                    };
                    self.remember_seal(&at, key, &sh.info_hash).await;
                }
                for name in refused {
                    done.not_done.push(NotDone::new(
                        "file",
                        &format!("{}/{name}", s.name),
                        None::<String>,
                    ));
                }
            }
        }
        // Our posts, oldest first, with their ids, dates and audiences.
        for p in m.posts.iter().rev() {
            match self.republish(p).await {
                Ok(()) => done.posts_restored += 1,
                Err(e) => done.not_done.push(NotDone::new("post", &p.id, Some(e))),
            }
        }
        if !m.comments.is_empty() {
            done.not_done.push(NotDone::new(
                "comments",
                &m.comments.len().to_string(),
                None::<String>,
            ));
        }
        Ok(done)
    }

    /// Publishes an exported post of ours again on this account.
    async fn republish(&self, p: &PostOut) -> Result<(), NodeError> {
        let text = p.text.trim();
        if text.is_empty() || !spheres_xmpp::roomfeed::is_item_id(&p.id) {
            refuse!(BadInput, "nothing to publish");
        }
        if p.audience == crate::feed::SPHERE {
            let Some(name) = &p.sphere else {
                refuse!(BadInput, "no sphere named");
            };
            let Some(sphere) = self.store.sphere(name).await? else {
                refuse!(NotFound, "you are not in the sphere {name} here");
            };
            let entry = Entry {
                links: media_links_of(&p.media),
                audience: Some(crate::feed::SPHERE.to_owned()),
                published: Some(p.published),
                updated: Some(p.updated),
                ..self.entry(text)
            };
            self.send_in_sphere(&sphere, &p.id, None, entry).await?;
            return Ok(());
        }
        let audience = crate::feed::Audience::parse(&p.audience)?;
        self.republish_on_account(&p.id, text, audience, p.published)
            .await
    }
}

/// The enclosure links of exported media.
fn media_links_of(media: &[MediaRef]) -> Vec<feed::Link> {
    media
        .iter()
        .map(|m| crate::spherefeed::enclosure(&m.info_hash, &m.name, Some(m.size), None))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_an_archive_stay_in_the_folder() {
        let root = Path::new("/spheres/Family");
        assert_eq!(
            safe_join(root, Path::new("Lyon/IMG 1.jpg")),
            Some(root.join("Lyon/IMG 1.jpg"))
        );
        for bad in ["../x", "/etc/passwd", "a/../../x", "", "."] {
            assert_eq!(safe_join(root, Path::new(bad)), None, "{bad}");
        }
        assert_eq!(
            inside(&["media", "../../etc", "/passwd"]),
            "media/etc/passwd"
        );
    }

    #[test]
    fn an_archive_round_trips_and_files_never_land_outside_or_over_others() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("Lyon");
        std::fs::create_dir_all(photos.join("day 1")).unwrap();
        std::fs::write(photos.join("day 1/IMG_1.jpg"), b"one").unwrap();
        std::fs::write(photos.join("IMG_2.jpg"), b"two").unwrap();
        let m = Manifest {
            format: FORMAT.into(),
            account: "alice@home.test".into(),
            name: "Alice".into(),
            exported_at: 1_800_000_000,
            contacts: vec!["bob@home.test".into()],
            spheres: vec![],
            posts: vec![],
            comments: vec![],
        };
        let archive = dir.path().join("out.tar");
        write_archive(
            &archive,
            &m,
            "<feed/>",
            &[("torrents/x.torrent".into(), b"d4:infodee".to_vec())],
            &[("media/Family/Lyon".into(), photos.clone())],
        )
        .unwrap();
        assert!(!archive.with_extension("partial").exists());
        assert_eq!(read_manifest(&archive).unwrap(), m);
        let target = dir.path().join("Family");
        std::fs::create_dir_all(target.join("Lyon")).unwrap();
        // A file of ours is there already: it stays as it is.
        std::fs::write(target.join("Lyon/IMG_2.jpg"), b"mine").unwrap();
        let (written, refused) = extract_media(&archive, "media/Family", &target).unwrap();
        assert_eq!(written, 1);
        assert_eq!(refused, ["Lyon/IMG_2.jpg"]);
        assert_eq!(
            std::fs::read(target.join("Lyon/day 1/IMG_1.jpg")).unwrap(),
            b"one"
        );
        assert_eq!(
            std::fs::read(target.join("Lyon/IMG_2.jpg")).unwrap(),
            b"mine"
        );

        // A hostile archive: an entry that climbs out, a link; and not an export at all.
        let evil = dir.path().join("evil.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&evil).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        // (Written raw: the builder refuses `..` itself.)
        h.as_gnu_mut().unwrap().name[..27].copy_from_slice(b"media/Family/../../evil.txt");
        h.set_cksum();
        tar.append(&h, &b"evil"[..]).unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        tar.append_link(&mut l, "media/Family/link", "/etc/passwd")
            .unwrap();
        tar.finish().unwrap();
        drop(tar);
        let (written, refused) = extract_media(&evil, "media/Family", &target).unwrap();
        assert_eq!(written, 0);
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(!dir.path().join("evil.txt").exists());
        assert!(!target.join("link").exists());
        assert!(read_manifest(&evil).is_err());
    }
}
