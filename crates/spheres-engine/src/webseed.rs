//! Web seeds (BEP 19, "GetRight style"): an HTTP server that has the torrent's files is one
//! more source of pieces. A task per web seed asks the picker for blocks as a peer would
//! (one that has every piece), fetches each run of them with `Range` requests, and hands the
//! bytes to the torrent like a peer's: nothing is written before its piece hashes right, and
//! a web seed whose pieces hash wrong [`crate::torrent::STRIKES`] times is dropped.
//!
//! URLs: for a single-file torrent, a URL ending in `/` names a folder (the file's name is
//! added), otherwise the file itself; for a multi-file torrent the URL names the folder the
//! torrent's folder is in (`URL/NAME/PATH`). Path components are percent-encoded.
//!
//! What a web seed can do to us: send nothing (its blocks go to others after a timeout),
//! send too much (we read what we asked for and stop), send wrong bytes (they never reach
//! the disk). What a torrent's URL can make us do: GET requests with a `Range` header and
//! nothing else (no body, no cookies); a URL on this machine or its local networks with a
//! query string is refused (a torrent must not drive local web services; libtorrent
//! refuses the same), and a redirect from the internet to them is not followed. Known
//! limit: a name that resolves to a local address is not caught.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use spheres_metainfo::Metainfo;
use spheres_swarm::{Has, PeerKey};
use spheres_wire::Block;

use crate::torrent::{STRIKES, Torrent};
use crate::{EngineEvent, Inner};

/// Blocks asked of a web seed at a time (1 MiB).
const MAX_BLOCKS: usize = 64;
/// A run of blocks that takes longer than this fails (its blocks go to others).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// After a failure, the wait before trying the web seed again doubles from this...
const FIRST_WAIT: Duration = Duration::from_secs(5);
/// ...up to this.
const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// What may not appear as is in a URL's path segment.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Whether a URL names this machine or its local networks: `localhost`, or a loopback,
/// private, link-local or unspecified address (IPv4-mapped ones too).
pub(crate) fn local(u: &reqwest::Url) -> bool {
    let host = u.host_str().unwrap_or_default();
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| spheres_wire::is_local(&ip))
}

/// Whether a torrent's web seed URL may be used: `http` or `https`, and not a local one
/// with a query string (a torrent must not drive a local web service; libtorrent refuses
/// the same).
pub(crate) fn usable(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    matches!(u.scheme(), "http" | "https")
        && u.host_str().is_some()
        && !(local(&u) && u.query().is_some())
}

/// Redirects a web seed may take: 3 at most, each to a usable URL, and never from the
/// internet to this machine or its local networks.
pub(crate) fn redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first_local = attempt.previous().first().is_some_and(local);
        let next = attempt.url();
        if attempt.previous().len() > 3 || !usable(next.as_str()) || (local(next) && !first_local) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

/// The URL of file `index` of the torrent on web seed `base`.
pub(crate) fn file_url(base: &str, meta: &Metainfo, index: usize) -> Option<String> {
    let file = meta.files.get(index)?;
    let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
    if !meta.multi_file {
        return Some(if base.ends_with('/') {
            format!("{base}{}", enc(&meta.name))
        } else {
            base.to_owned()
        });
    }
    let mut url = base.to_owned();
    if !url.ends_with('/') {
        url.push('/');
    }
    url.push_str(&enc(&meta.name));
    for part in &file.path {
        url.push('/');
        url.push_str(&enc(part));
    }
    Some(url)
}

/// Where bytes `start .. start + len` of the torrent are: (file index, offset in the file,
/// length), in order.
pub(crate) fn spans(meta: &Metainfo, start: u64, len: u64) -> Vec<(usize, u64, u64)> {
    let end = start.saturating_add(len);
    let first = meta.files.partition_point(|f| f.offset + f.length <= start);
    let mut out = Vec::new();
    for (i, f) in meta.files.iter().enumerate().skip(first) {
        if f.offset >= end {
            break;
        }
        let from = start.max(f.offset);
        let to = end.min(f.offset + f.length);
        if from < to {
            out.push((i, from - f.offset, to - from));
        }
    }
    out
}

/// Blocks in runs of consecutive bytes of the torrent (each run one trip, a request per
/// file it spans).
pub(crate) fn runs(mut blocks: Vec<Block>, piece_length: u64) -> Vec<Vec<Block>> {
    let at = |b: &Block| u64::from(b.piece) * piece_length + u64::from(b.begin);
    blocks.sort_by_key(at);
    let mut out: Vec<Vec<Block>> = Vec::new();
    for b in blocks {
        match out.last_mut() {
            Some(run)
                if run
                    .last()
                    .is_some_and(|l| at(l) + u64::from(l.length) == at(&b)) =>
            {
                run.push(b)
            }
            _ => out.push(vec![b]),
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the server does not serve parts of files (no 206 to a Range request)")]
    NoRanges,
    #[error("the server sent {got} bytes where {wanted} were asked for")]
    Length { got: u64, wanted: u64 },
    #[error("no URL for file {0}")]
    NoUrl(usize),
    #[error("the requests took longer than {REQUEST_TIMEOUT:?}")]
    Timeout,
}

/// Fetches web seed `base`'s pieces for `t` until it is complete, removed, or the web seed
/// sent pieces that hashed wrong too often.
pub(crate) async fn webseed_loop(t: Arc<Torrent>, base: String, engine: std::sync::Weak<Inner>) {
    t.checked().await;
    let key: PeerKey = t.next_key.fetch_add(1, Ordering::Relaxed);
    t.lock().source_strikes.insert(key, 0);
    let mut verified = t.verified.subscribe();
    let mut wait = FIRST_WAIT;
    loop {
        if t.closed() {
            return;
        }
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let (http, limits) = (inner.web_seeds.clone(), inner.limits.clone());
        drop(inner);
        let picked = {
            let mut st = t.lock();
            if st.source_strikes.get(&key).copied().unwrap_or(0) >= STRIKES {
                drop(st);
                tracing::warn!(torrent = %t.meta.name, url = %base, "web seed dropped: its pieces hashed wrong");
                t.emit(EngineEvent::WebSeedError {
                    info_hash: t.info_hash(),
                    url: base,
                    error: "its pieces hashed wrong; no longer used".into(),
                });
                return;
            }
            if st.picker.is_complete() {
                return;
            }
            let mut out = Vec::new();
            if st.disk_error.is_none() {
                st.picker.pick(key, Has::All, MAX_BLOCKS, &mut out);
            }
            out
        };
        if picked.is_empty() {
            // Nothing to ask for now (others have it all in hand, or files are left aside):
            // look again when a piece comes, or in a while.
            tokio::select! {
                _ = verified.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let mut left = picked;
        let result = fetch(&t, &http, &limits, &base, key, &mut left).await;
        if !left.is_empty() {
            let mut st = t.lock();
            for b in &left {
                st.picker.release(key, b);
            }
            st.refill_others(None);
        }
        match result {
            Ok(()) => wait = FIRST_WAIT,
            Err(e) => {
                tracing::info!(torrent = %t.meta.name, url = %base, error = %e, "web seed failed; trying again in {wait:?}");
                t.emit(EngineEvent::WebSeedError {
                    info_hash: t.info_hash(),
                    url: base.clone(),
                    error: e.to_string(),
                });
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
        }
    }
}

/// Fetches `blocks` run by run; those handed to the torrent leave `blocks`.
async fn fetch(
    t: &Arc<Torrent>,
    http: &reqwest::Client,
    limits: &crate::Limits,
    base: &str,
    key: PeerKey,
    blocks: &mut Vec<Block>,
) -> Result<(), Failed> {
    let plen = t.meta.piece_length;
    for run in runs(blocks.clone(), plen) {
        let Some(first) = run.first() else { continue };
        let start = u64::from(first.piece) * plen + u64::from(first.begin);
        let len: u64 = run.iter().map(|b| u64::from(b.length)).sum();
        let mut bytes = Vec::with_capacity(len as usize);
        // One deadline for the run, whatever the number of files it spans.
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            for (file, offset, n) in spans(&t.meta, start, len) {
                if t.meta.files[file].padding {
                    bytes.resize(bytes.len() + n as usize, 0);
                    continue;
                }
                let url = file_url(base, &t.meta, file).ok_or(Failed::NoUrl(file))?;
                let whole = offset == 0 && n == t.meta.files[file].length;
                get_range(http, limits, &url, offset, n, whole, &mut bytes).await?;
            }
            Ok::<(), Failed>(())
        })
        .await
        .map_err(|_| Failed::Timeout)??;
        // Hand the run over block by block, as a peer's blocks.
        let now = Instant::now();
        let mut at = 0usize;
        for b in &run {
            let end = at + b.length as usize;
            let data = bytes[at..end].to_vec();
            at = end;
            blocks.retain(|x| x != b);
            let (_, done) = t.take_block(key, *b, data, true, now);
            if let Some(done) = done {
                t.complete_piece(b.piece, done);
            }
        }
    }
    Ok(())
}

/// GET bytes `offset .. offset + len` of `url`, appended to `out`. `whole`: the range is
/// the whole file, so a server that ignores ranges (200) is fine too.
async fn get_range(
    http: &reqwest::Client,
    limits: &crate::Limits,
    url: &str,
    offset: u64,
    len: u64,
    whole: bool,
    out: &mut Vec<u8>,
) -> Result<(), Failed> {
    let mut resp = http
        .get(url)
        .header(
            reqwest::header::RANGE,
            format!("bytes={offset}-{}", offset + len - 1),
        )
        .send()
        .await?;
    let status = resp.status();
    if status == reqwest::StatusCode::OK && !whole {
        return Err(Failed::NoRanges);
    }
    if status != reqwest::StatusCode::PARTIAL_CONTENT && status != reqwest::StatusCode::OK {
        return Err(Failed::Status(status));
    }
    let mut got = 0u64;
    while let Some(chunk) = resp.chunk().await? {
        got += chunk.len() as u64;
        if got > len {
            return Err(Failed::Length { got, wanted: len });
        }
        limits.download.take(chunk.len() as u64).await;
        out.extend_from_slice(&chunk);
    }
    if got != len {
        return Err(Failed::Length { got, wanted: len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use spheres_metainfo::{CreateOptions, create_torrent};
    use spheres_wire::BLOCK;

    fn meta(multi: bool) -> (tempfile::TempDir, Metainfo) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("Été 2026");
        if multi {
            std::fs::create_dir_all(root.join("a b")).unwrap();
            std::fs::write(root.join("a b/x#1.jpg"), vec![1u8; 40_000]).unwrap();
            std::fs::write(root.join("z.txt"), vec![2u8; 30_000]).unwrap();
        } else {
            std::fs::write(&root, vec![1u8; 70_000]).unwrap();
        }
        let (_, m) = create_torrent(
            &root,
            &CreateOptions {
                piece_length: Some(16 * 1024),
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap();
        (dir, m)
    }

    #[test]
    fn urls_are_bep_19s() {
        let (_d, single) = meta(false);
        assert_eq!(
            file_url("http://h/files/", &single, 0).unwrap(),
            "http://h/files/%C3%89t%C3%A9%202026"
        );
        assert_eq!(
            file_url("http://h/that.bin", &single, 0).unwrap(),
            "http://h/that.bin"
        );
        let (_d, multi) = meta(true);
        assert_eq!(
            file_url("http://h/files", &multi, 0).unwrap(),
            "http://h/files/%C3%89t%C3%A9%202026/a%20b/x%231.jpg"
        );
        assert_eq!(
            file_url("http://h/files/", &multi, 1).unwrap(),
            "http://h/files/%C3%89t%C3%A9%202026/z.txt"
        );
        assert_eq!(file_url("http://h/", &multi, 9), None);
    }

    #[test]
    fn byte_ranges_map_to_files() {
        let (_d, multi) = meta(true);
        assert_eq!(spans(&multi, 0, 10), vec![(0, 0, 10)]);
        assert_eq!(spans(&multi, 39_990, 20), vec![(0, 39_990, 10), (1, 0, 10)]);
        assert_eq!(spans(&multi, 69_990, 100), vec![(1, 29_990, 10)]);
        assert!(spans(&multi, 70_000, 10).is_empty());
    }

    #[test]
    fn blocks_group_into_runs_of_consecutive_bytes() {
        let b = |piece, begin, length| Block {
            piece,
            begin,
            length,
        };
        let plen = 2 * u64::from(BLOCK);
        let r = runs(
            vec![
                b(1, 0, BLOCK),
                b(0, BLOCK, BLOCK),
                b(0, 0, BLOCK),
                b(3, 0, BLOCK),
            ],
            plen,
        );
        assert_eq!(
            r,
            vec![
                vec![b(0, 0, BLOCK), b(0, BLOCK, BLOCK), b(1, 0, BLOCK)],
                vec![b(3, 0, BLOCK)],
            ]
        );
    }

    #[test]
    fn only_plain_web_urls_are_used() {
        assert!(usable("http://example.org/files/"));
        assert!(usable("https://example.org/f?x=1"));
        assert!(usable("http://127.0.0.1:8080/files/"));
        assert!(!usable("http://127.0.0.1:8080/api?delete=1"));
        assert!(!usable("http://localhost/x?y"));
        assert!(!usable("http://[::1]/x?y"));
        assert!(!usable("http://localhost./x?y"));
        assert!(!usable("http://[::ffff:127.0.0.1]/x?y"));
        assert!(!usable("http://0.0.0.0/x?y"));
        assert!(!usable("http://192.168.1.1/cgi?reboot=1"));
        assert!(usable("http://192.168.1.10/films/"), "a household NAS");
        assert!(!usable("file:///etc/passwd"));
        assert!(!usable("ftp://example.org/x"));
        assert!(!usable("not a url"));
    }
}
