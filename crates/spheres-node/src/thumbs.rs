//! Thumbnails for the gallery, made by the node once a share is complete: photos scaled
//! down with the `image` crate (limits against decompression bombs) and turned the right way
//! up (EXIF orientation, as phones record it), a frame of a video with
//! ffmpeg when it is installed. Cached in DATA/thumbs/<info hash>.jpg; `None` when there is
//! nothing to show (the page then shows a clean placeholder).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use image::ImageDecoder;

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
    let cannot = || format!("cannot read the picture {}", src.display());
    let mut decoder = reader.into_decoder().with_context(cannot)?;
    // Phones store photos as the sensor saw them and say in EXIF which way is up.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).with_context(cannot)?;
    img.apply_orientation(orientation);
    let thumb = img.thumbnail(SIZE, SIZE).to_rgb8();
    let tmp = out.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 80)
        .encode_image(&thumb)
        .context("cannot write the thumbnail")?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// How long ffmpeg may take over one frame, and how much memory it may map.
const FFMPEG_TIME: Duration = Duration::from_secs(30);
const FFMPEG_MEMORY: u64 = 1024 * 1024 * 1024;

/// ffmpeg's demuxer for a video, from its first bytes (never from its name): a file from a
/// member named `.mp4` may be a playlist or a concat script that makes ffmpeg open other
/// files or URLs. Containers we do not know get no thumbnail.
fn container_of(head: &[u8]) -> Option<&'static str> {
    match head {
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some("mov"),
        [0x1a, 0x45, 0xdf, 0xa3, ..] => Some("matroska"),
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'A',
            b'V',
            b'I',
            b' ',
            ..,
        ] => Some("avi"),
        [b'O', b'g', b'g', b'S', ..] => Some("ogg"),
        _ => None,
    }
}

fn from_video(src: &Path, out: &Path) -> Result<()> {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(src)
        .and_then(|mut f| f.read(&mut head))
        .with_context(|| format!("cannot read {}", src.display()))?;
    let format = container_of(&head[..n])
        .ok_or_else(|| anyhow!("{} is not a video container we read", src.display()))?;
    let tmp = out.with_extension("tmp.jpg");
    let mut input = std::ffi::OsString::from("file:");
    input.push(src);
    let mut cmd = std::process::Command::new("ffmpeg");
    cmd.args(["-loglevel", "error", "-nostdin", "-y"])
        // Only the file itself: no network, no other local files through a playlist.
        .args([
            "-protocol_whitelist",
            "file",
            "-f",
            format,
            "-ss",
            "1",
            "-i",
        ])
        .arg(input)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!(
            "scale='min({SIZE},iw)':'min({SIZE},ih)':force_original_aspect_ratio=decrease"
        ))
        .arg(&tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed; it makes one setrlimit system call (rustix calls
    // the kernel directly: no allocation, no lock) and touches nothing else.
    unsafe {
        cmd.pre_exec(|| {
            let limit = rustix::process::Rlimit {
                current: Some(FFMPEG_MEMORY),
                maximum: Some(FFMPEG_MEMORY),
            };
            rustix::process::setrlimit(rustix::process::Resource::As, limit)
                .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|_| anyhow!("ffmpeg is not installed: videos get a placeholder"))?;
    let deadline = Instant::now() + FFMPEG_TIME;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    if !status.is_some_and(|s| s.success()) || !tmp.exists() {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow!(
            "ffmpeg could not take a frame of {}",
            src.display()
        ));
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// Shares whose thumbnail is being made now: one job per share, a few at a time, whatever
/// the number of pages asking.
static MAKING: Mutex<Option<HashSet<String>>> = Mutex::new(None);
const MAX_JOBS: usize = 2;

/// Holds a share's place in [`MAKING`] while its thumbnail is made.
struct Job(String);

impl Job {
    fn start(info_hash: &str) -> Option<Job> {
        let mut making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
        let set = making.get_or_insert_with(HashSet::new);
        if set.len() >= MAX_JOBS || !set.insert(info_hash.to_owned()) {
            return None;
        }
        Some(Job(info_hash.to_owned()))
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        let mut making = MAKING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(set) = making.as_mut() {
            set.remove(&self.0);
        }
    }
}

/// Thumbnails being made at once; pages asking for more wait their turn (an album asks for
/// dozens at a time) rather than get none.
pub static TURNS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_JOBS);

/// The thumbnail cached under `key`, if it was made already.
pub fn cached(cache: &Path, key: &str) -> Option<PathBuf> {
    let out = cache.join(format!("{key}.jpg"));
    out.exists().then_some(out)
}

/// Makes thumbnail `key` of `files` off the async threads, in its turn (see [`TURNS`]).
pub async fn make(cache: PathBuf, key: String, files: Vec<PathBuf>) -> Option<PathBuf> {
    if let Some(done) = cached(&cache, &key) {
        return Some(done);
    }
    if failed(&cache, &key) {
        return None;
    }
    let _turn = TURNS.acquire().await.ok()?;
    tokio::task::spawn_blocking(move || thumbnail(&cache, &key, &files))
        .await
        .unwrap_or(None)
}

/// Whether making thumbnail `key` failed already (its files do not change: it would again).
fn failed(cache: &Path, key: &str) -> bool {
    cache.join(format!("{key}.failed")).exists()
}

/// The cached thumbnail of a share, made now if needed (blocking: call it off the runtime).
/// `None` too while the same share's thumbnail is being made, or too many are.
pub fn thumbnail(cache: &Path, info_hash: &str, files: &[PathBuf]) -> Option<PathBuf> {
    let out = cache.join(format!("{info_hash}.jpg"));
    if out.exists() {
        return Some(out);
    }
    if failed(cache, info_hash) {
        return None;
    }
    let src = pick(files)?;
    let _job = Job::start(info_hash)?;
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
            // Not again: a file that fails (a bomb of a picture, a broken video) would make
            // every page that shows it pay the cost once more.
            let _ = std::fs::write(cache.join(format!("{info_hash}.failed")), b"");
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
        assert!(
            failed(&cache, "bb"),
            "a failure is remembered, not tried again"
        );
        assert!(thumbnail(&cache, "cc", &[dir.path().join("notes.txt")]).is_none());
    }

    /// A phone's photo: stored landscape, with EXIF orientation 6 (turn it 90° clockwise to
    /// see it): its thumbnail stands upright.
    #[test]
    fn a_phone_photo_is_shown_the_right_way_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut jpeg = Vec::new();
        let stored = image::RgbImage::from_fn(1200, 800, |x, _| {
            image::Rgb([if x < 600 { 250 } else { 5 }, 20, 20])
        });
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&stored)
            .unwrap();
        // An APP1 segment right after the start of image: "Exif", a big-endian TIFF header,
        // one IFD entry: Orientation (0x0112), SHORT, 1 value: 6.
        let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        exif.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
        let mut app1 = vec![0xff, 0xe1];
        app1.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        app1.extend_from_slice(&exif);
        jpeg.splice(2..2, app1);
        let photo = dir.path().join("IMG_0001.jpg");
        std::fs::write(&photo, &jpeg).unwrap();

        let t = thumbnail(&dir.path().join("thumbs"), "dd", &[photo]).unwrap();
        let small = image::open(&t).unwrap().to_rgb8();
        assert_eq!((small.width(), small.height()), (240, SIZE), "upright");
        // The left half (red) is now on top.
        assert!(
            small.get_pixel(120, 20)[0] > 200,
            "{:?}",
            small.get_pixel(120, 20)
        );
        assert!(small.get_pixel(120, SIZE - 20)[0] < 60);
    }

    fn ffmpeg(args: &[&str]) {
        let ok = std::process::Command::new("ffmpeg")
            .args(["-loglevel", "error", "-y"])
            .args(args)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ffmpeg is not installed: run scripts/install-test-deps");
    }

    /// Attack: a member shares "holiday.mp4" that is really an HLS playlist naming a file
    /// elsewhere on the receiver's disk (or a URL). ffmpeg, guessing the format from the
    /// content, would follow it and the thumbnail would show the other file. A real video
    /// still gets its thumbnail.
    #[test]
    fn a_playlist_posing_as_a_video_opens_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("private/secret.ts");
        std::fs::create_dir_all(secret.parent().unwrap()).unwrap();
        let lavfi = "testsrc=duration=3:size=64x64:rate=10";
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            lavfi,
            "-f",
            "mpegts",
            secret.to_str().unwrap(),
        ]);
        let hostile = dir.path().join("share/holiday.mp4");
        std::fs::create_dir_all(hostile.parent().unwrap()).unwrap();
        let playlist = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\n{}\n#EXT-X-ENDLIST\n",
            secret.display()
        );
        std::fs::write(&hostile, playlist).unwrap();
        let cache = dir.path().join("thumbs");
        assert!(
            thumbnail(&cache, "aa", std::slice::from_ref(&hostile)).is_none(),
            "ffmpeg followed the playlist to another file"
        );
        let real = dir.path().join("share/real.mp4");
        ffmpeg(&["-f", "lavfi", "-i", lavfi, real.to_str().unwrap()]);
        let t = thumbnail(&cache, "bb", &[real]).expect("a real video's thumbnail");
        assert!(image::open(t).is_ok());
        let mkv = dir.path().join("share/real.mkv");
        ffmpeg(&["-f", "lavfi", "-i", lavfi, mkv.to_str().unwrap()]);
        assert!(thumbnail(&cache, "cc", &[mkv]).is_some());
    }

    #[test]
    fn containers_are_known_by_their_first_bytes() {
        assert_eq!(container_of(b"\0\0\0\x20ftypisom"), Some("mov"));
        assert_eq!(container_of(&[0x1a, 0x45, 0xdf, 0xa3, 1]), Some("matroska"));
        assert_eq!(container_of(b"RIFF\0\0\0\0AVI LIST"), Some("avi"));
        assert_eq!(container_of(b"OggS\0"), Some("ogg"));
        for junk in [&b"#EXTM3U\n"[..], b"ffconcat version 1.0", b"", b"ftyp"] {
            assert_eq!(container_of(junk), None);
        }
    }

    #[test]
    fn one_job_per_share_at_a_time() {
        let a = Job::start("job-a").unwrap();
        assert!(Job::start("job-a").is_none(), "the same share twice");
        drop(a);
        assert!(Job::start("job-a").is_some());
    }
}
