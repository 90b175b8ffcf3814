//! A sphere's album: its photos and videos one by one (not share by share), each with the
//! date it was taken (EXIF `DateTimeOriginal`, read once and kept in the store), newest first,
//! and a thumbnail of its own.

use std::path::{Path, PathBuf};

use spheres_torrent::InfoHash;

use crate::Node;
use crate::api::types;
use crate::error::{NodeError, refuse};

/// How many photos' dates one listing reads from their files at most (the rest show by the
/// date they were shared until a next listing reads theirs).
const READ_PER_LISTING: usize = 300;

/// What a file is in an album, from its name: `image`, `video`, or nothing.
fn album_kind(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "jpg" | "jpeg" | "png" | "webp" | "gif" | "heic" | "avif" => Some("image"),
        "mp4" | "m4v" | "webm" | "mov" | "mkv" | "ogv" => Some("video"),
        _ => None,
    }
}

/// When a photo was taken, from its EXIF: `DateTimeOriginal`, else `DateTime`; seconds since
/// 1970 of the camera's clock read as UTC (cameras rarely say their time zone). `None` when
/// the file has no readable date. Blocking; reads only the file's metadata.
pub(crate) fn taken(path: &Path) -> Option<i64> {
    let file = std::fs::File::open(path).ok()?;
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::BufReader::new(file))
        .ok()?;
    [exif::Tag::DateTimeOriginal, exif::Tag::DateTime]
        .into_iter()
        .find_map(|tag| {
            let field = exif.get_field(tag, exif::In::PRIMARY)?;
            let exif::Value::Ascii(ref parts) = field.value else {
                return None;
            };
            let d = exif::DateTime::from_ascii(parts.first()?).ok()?;
            let date = chrono::NaiveDate::from_ymd_opt(
                i32::from(d.year),
                u32::from(d.month),
                u32::from(d.day),
            )?;
            let at =
                date.and_hms_opt(u32::from(d.hour), u32::from(d.minute), u32::from(d.second))?;
            Some(at.and_utc().timestamp())
        })
}

impl Node {
    /// The photos and videos of a sphere that are here, newest first by the date they were
    /// taken (else the date they were shared).
    pub async fn photos(&self, name: &str) -> Result<Vec<types::Photo>, NodeError> {
        let sphere = self.sphere_named(name).await?;
        let known = self.store.photo_dates(sphere.id).await?;
        let mut out = Vec::new();
        let mut to_read = Vec::new();
        for share in self.store.shares(sphere.id).await? {
            let Ok(hash) = share.info_hash.parse::<InfoHash>() else {
                continue;
            };
            let Some(st) = self.engine.status(&hash) else {
                continue;
            };
            for f in &st.files {
                let Some(kind) = album_kind(&f.path) else {
                    continue;
                };
                // Only what is here in full.
                if f.have_bytes < f.length || f.length == 0 {
                    continue;
                }
                let taken = match known.get(&(share.info_hash.clone(), f.index as i64)) {
                    Some(t) => *t,
                    None => {
                        let path: PathBuf = st.root.join(f.path.split('/').collect::<PathBuf>());
                        to_read.push((out.len(), share.info_hash.clone(), f.index, path));
                        None
                    }
                };
                out.push(types::Photo {
                    info_hash: share.info_hash.clone(),
                    index: f.index as u64,
                    name: f.path.rsplit('/').next().unwrap_or(&f.path).to_owned(),
                    share: share.name.clone(),
                    kind: kind.to_owned(),
                    size: f.length,
                    taken,
                    shared: share.shared_at,
                });
            }
        }
        // Dates not read yet: from the files (off the runtime), kept for next time.
        to_read.truncate(READ_PER_LISTING);
        let paths: Vec<PathBuf> = to_read.iter().map(|(_, _, _, p)| p.clone()).collect();
        let dates =
            tokio::task::spawn_blocking(move || paths.iter().map(|p| taken(p)).collect::<Vec<_>>())
                .await
                .unwrap_or_default();
        for ((at, hash, index, _), date) in to_read.iter().zip(dates) {
            self.store
                .set_photo_date(sphere.id, hash, *index as i64, date)
                .await?;
            out[*at].taken = date;
        }
        out.sort_by_key(|p| std::cmp::Reverse((p.taken.unwrap_or(p.shared), p.index)));
        Ok(out)
    }

    /// The thumbnail (JPEG) of file `index` of a share, once that file is here; `None` if it
    /// has nothing to show.
    pub async fn file_thumbnail(
        &self,
        name: &str,
        info_hash: &str,
        index: usize,
    ) -> Result<Option<PathBuf>, NodeError> {
        let Some(st) = self.share_status(name, info_hash).await? else {
            return Ok(None);
        };
        let Some(f) = st.files.iter().find(|f| f.index == index) else {
            refuse!(NotFound, "that share has no file {index}");
        };
        if f.have_bytes < f.length {
            return Ok(None);
        }
        let file = st.root.join(f.path.split('/').collect::<PathBuf>());
        let cache = self.settings.data_dir.join("thumbs");
        let key = format!("{info_hash}-{index}");
        Ok(crate::thumbs::make(cache, key, vec![file]).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG with an EXIF block of one IFD entry (big-endian), as cameras write them:
    /// `DateTime` (0x0132), ASCII, 20 bytes at offset 26.
    fn jpeg_with_date(date: &[u8; 19]) -> Vec<u8> {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
            .encode_image(&image::RgbImage::new(8, 8))
            .unwrap();
        let mut tiff = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x32, 0, 2, 0, 0, 0, 20, 0, 0, 0, 26]);
        tiff.extend_from_slice(&[0, 0, 0, 0]);
        tiff.extend_from_slice(date);
        tiff.push(0);
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend_from_slice(&tiff);
        let mut app1 = vec![0xff, 0xe1];
        app1.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        app1.extend_from_slice(&exif);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn the_date_a_photo_was_taken_comes_from_its_exif() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("IMG_0001.jpg");
        std::fs::write(&photo, jpeg_with_date(b"2025:07:12 18:04:05")).unwrap();
        // 2025-07-12T18:04:05, the camera's clock read as UTC.
        assert_eq!(taken(&photo), Some(1_752_343_445));
        let plain = dir.path().join("plain.jpg");
        std::fs::write(&plain, &jpeg_with_date(b"2025:07:12 18:04:05")[..2]).unwrap();
        assert_eq!(taken(&plain), None);
        let nonsense = dir.path().join("bad.jpg");
        std::fs::write(&nonsense, jpeg_with_date(b"2025:13:45 99:04:05")).unwrap();
        assert_eq!(taken(&nonsense), None);
        assert_eq!(taken(&dir.path().join("missing.jpg")), None);
        assert_eq!(album_kind("a/b/IMG.JPG"), Some("image"));
        assert_eq!(album_kind("clip.mov"), Some("video"));
        assert_eq!(album_kind("notes.txt"), None);
    }
}
