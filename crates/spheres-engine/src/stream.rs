//! A file of a torrent, readable from any position while it downloads (the HTTP player's
//! source). A read waits only for the piece it needs; while it waits, and as it moves, the
//! picker fetches a window ahead of it before anything else. Any number of readers at once:
//! each is its own window, none holds a slot of anything.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use spheres_swarm::Priority;
use tokio::io::{AsyncRead, AsyncSeek, ReadBuf};

use crate::torrent::Torrent;

/// How far ahead of a reader pieces are fetched first.
const WINDOW_BYTES: u64 = 16 * 1024 * 1024;
/// The most read from disk at a time for one reader.
const CHUNK: u64 = 256 * 1024;

type Reading = Pin<Box<dyn Future<Output = io::Result<Vec<u8>>> + Send>>;

pub struct FileReader {
    t: Arc<Torrent>,
    /// Its name in the picker's readers.
    id: u64,
    /// Where the file starts in the torrent's bytes.
    offset: u64,
    len: u64,
    pos: u64,
    reading: Option<Reading>,
}

impl FileReader {
    pub(crate) fn open(t: Arc<Torrent>, index: usize) -> Option<FileReader> {
        let file = t.meta.files.get(index).filter(|f| !f.padding)?;
        let (offset, len) = (file.offset, file.length);
        let id = t.next_key.fetch_add(1, Ordering::Relaxed);
        let pieces = t.layout.pieces_of(offset, len);
        if !pieces.is_empty() {
            // Players read both ends first (an MP4's index is often at its end).
            let mut st = t.lock();
            for p in [pieces.start, pieces.end - 1] {
                if !st.picker.have().get(p) {
                    st.picker.set_priority(p..p + 1, Priority::High);
                }
            }
            st.refill_others(None);
        }
        Some(FileReader {
            t,
            id,
            offset,
            len,
            pos: 0,
            reading: None,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for FileReader {
    fn drop(&mut self) {
        self.t.lock().picker.remove_reader(self.id);
    }
}

/// Reads up to `want` bytes at `at` in the torrent (within one piece), waiting for the
/// piece; meanwhile the reader's window is fetched first.
async fn read_chunk(t: Arc<Torrent>, id: u64, at: u64, want: u64) -> io::Result<Vec<u8>> {
    let pl = u64::from(t.layout.piece_length());
    let piece = (at / pl) as u32;
    let begin = (at % pl) as u32;
    let n = want.min(u64::from(t.layout.piece_len(piece) - begin)) as u32;
    let window = (WINDOW_BYTES / pl).max(2) as u32;
    let end = piece.saturating_add(window).min(t.layout.pieces());
    let mut verified = t.verified.subscribe();
    let asked = std::time::Instant::now();
    loop {
        {
            let mut st = t.lock();
            let jumped = st.picker.set_reader(id, piece, window);
            if st.picker.have().get(piece) {
                if asked.elapsed() > std::time::Duration::from_millis(1) {
                    tracing::debug!(torrent = %t.meta.name, piece, waited_ms = asked.elapsed().as_millis() as u64, "a reader waited for a piece");
                }
                break;
            }
            if let Some(e) = &st.disk_error {
                return Err(io::Error::other(format!(
                    "the torrent cannot be written: {e}"
                )));
            }
            // A file left aside is fetched as it is read.
            for p in piece..end {
                if st.picker.priority(p) == Priority::Skip {
                    st.picker.set_priority(p..p + 1, Priority::Normal);
                }
            }
            if jumped {
                // A seek (or a new reader): requests made for other pieces stand between the
                // reader and its data; peers cancel those and ask for the window first.
                for p in st.peers.values() {
                    let _ = p.cmd.send(crate::torrent::Cmd::Hurry(piece..end));
                }
            } else {
                st.refill_others(None);
            }
        }
        if t.closed.load(Ordering::SeqCst) {
            return Err(io::Error::other("the torrent was removed"));
        }
        verified
            .changed()
            .await
            .map_err(|_| io::Error::other("the engine stopped"))?;
    }
    let storage = t.storage.clone();
    tokio::task::spawn_blocking(move || storage.read_plain(piece, begin, n))
        .await
        .map_err(io::Error::other)?
}

impl AsyncRead for FileReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let reading = match &mut this.reading {
            Some(r) => r,
            None => {
                if this.pos >= this.len || buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
                let want = (buf.remaining() as u64).min(this.len - this.pos).min(CHUNK);
                this.reading.insert(Box::pin(read_chunk(
                    this.t.clone(),
                    this.id,
                    this.offset + this.pos,
                    want,
                )))
            }
        };
        match reading.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(result) => {
                this.reading = None;
                let data = result?;
                // The caller's buffer may have shrunk since: what does not fit is read again.
                let n = data.len().min(buf.remaining());
                buf.put_slice(&data[..n]);
                this.pos += n as u64;
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncSeek for FileReader {
    fn start_seek(mut self: Pin<&mut Self>, position: io::SeekFrom) -> io::Result<()> {
        let this = &mut *self;
        let to = match position {
            io::SeekFrom::Start(n) => Some(n),
            io::SeekFrom::End(d) => this.len.checked_add_signed(d),
            io::SeekFrom::Current(d) => this.pos.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a seek before the start"))?;
        this.reading = None;
        this.pos = to;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}
