//! Thumbnails for the gallery, made by the node once a share is complete: photos scaled
//! down with the `image` crate (limits against decompression bombs), a frame of a video with
//! ffmpeg when it is installed. Cached in DATA/thumbs/<info hash>.jpg; `None` when there is
//! nothing to show (the page then shows a clean placeholder).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, anyhow};

/// The longest side of a thumbnail, in pixels.
pub const SIZE: u32 = 360;

const IMAGES: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];
const VIDEOS: [&str; 7] = ["mp4", "mkv", "webm", "mov", "m4v", "avi", "ogv"];

fn ext(p: &Path) -> String {
    p.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}

/// The file of a share to make a thumbnail from: the first photo, else the first video.
pub fn pick(files: &[PathBuf]) -> Option<PathBuf> {
    files
        .iter()
        .find(|f| IMAGES.contains(&ext(f).as_str()))
        .or_else(|| files.iter().find(|f| VIDEOS.contains(&ext(f).as_str())))
        .cloned()
}

fn from_image(src: &Path, out: &Path) -> Result<()> {
    let mut reader = image::ImageReader::open(src)
        .with_context(|| format!("cannot open {}", src.display()))?
        .with_guessed_format()?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(20_000);
    limits.max_image_height = Some(20_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader
        .decode()
        .with_context(|| format!("cannot read the picture {}", src.display()))?;
    let thumb = img.thumbnail(SIZE, SIZE).to_rgb8();
    let tmp = out.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 80)
        .encode_image(&thumb)
        .context("cannot write the thumbnail")?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

fn from_video(src: &Path, out: &Path) -> Result<()> {
    let tmp = out.with_extension("tmp.jpg");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-ss", "1", "-i"])
        .arg(src)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!(
            "scale='min({SIZE},iw)':'min({SIZE},ih)':force_original_aspect_ratio=decrease"
        ))
        .arg(&tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|_| anyhow!("ffmpeg is not installed: videos get a placeholder"))?;
    if !status.success() || !tmp.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!(
            "ffmpeg could not take a frame of {}",
            src.display()
        ));
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// The cached thumbnail of a share, made now if needed (blocking: call it off the runtime).
pub fn thumbnail(cache: &Path, info_hash: &str, files: &[PathBuf]) -> Option<PathBuf> {
    let out = cache.join(format!("{info_hash}.jpg"));
    if out.exists() {
        return Some(out);
    }
    let src = pick(files)?;
    std::fs::create_dir_all(cache).ok()?;
    let made = if IMAGES.contains(&ext(&src).as_str()) {
        from_image(&src, &out)
    } else {
        from_video(&src, &out)
    };
    match made {
        Ok(()) => Some(out),
        Err(e) => {
            tracing::info!(error = %format!("{e:#}"), "no thumbnail");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_becomes_a_small_jpeg_and_junk_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("big.png");
        image::RgbImage::from_fn(1200, 800, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        })
        .save(&photo)
        .unwrap();
        let junk = dir.path().join("junk.jpg");
        std::fs::write(&junk, b"not a picture").unwrap();
        let cache = dir.path().join("thumbs");
        let t = thumbnail(&cache, "aa", std::slice::from_ref(&photo)).unwrap();
        let small = image::open(&t).unwrap();
        assert_eq!((small.width(), small.height()), (SIZE, 240));
        assert!(thumbnail(&cache, "bb", &[junk]).is_none());
        assert!(thumbnail(&cache, "cc", &[dir.path().join("notes.txt")]).is_none());
    }
}
