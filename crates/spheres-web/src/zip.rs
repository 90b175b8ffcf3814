//! A share's files as one zip archive, written while they are read (a link's "Download all").
//!
//! Entries are stored, not compressed: photos and videos are compressed already, and a stored
//! archive has a length known before its first byte, so a browser shows real progress and
//! the time left. Each file's CRC-32 is known only once it has passed, so it follows the file
//! in a data descriptor (general purpose bit 3), as streaming writers do. ZIP64 records are
//! written only where a size or an offset needs them, since some unzippers handle ZIP64 badly.
//! Names are UTF-8 (bit 11) under one folder named after the share.
//!
//! Pure: [`Layout`] places the entries and writes every header; [`crate::zip_response`] reads
//! the files between them.

/// The largest size or offset a plain (not ZIP64) field holds.
const LIMIT: u64 = 0xFFFF_FFFF;
const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const END64: u32 = 0x0606_4b50;
const LOCATOR64: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;
/// Data descriptor follows; names are UTF-8.
const FLAGS: u16 = (1 << 3) | (1 << 11);
/// Made by: Unix (3), specification 4.5.
const MADE_BY: u16 = (3 << 8) | 45;

/// Why an archive cannot be made of these files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZipError {
    /// A path that would leave the archive's folder once unzipped, or that no zip can name.
    BadName(String),
}

impl std::fmt::Display for ZipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZipError::BadName(n) => write!(f, "{n:?} cannot be named in a zip archive"),
        }
    }
}

impl std::error::Error for ZipError {}

/// A file to put in the archive: its path inside the folder (components), and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<String>,
    pub size: u64,
}

#[derive(Debug, Clone)]
struct Placed {
    name: String,
    size: u64,
    offset: u64,
    /// Its local header and data descriptor carry ZIP64 sizes.
    zip64: bool,
}

/// Where each entry goes, and the headers around them.
#[derive(Debug, Clone)]
pub struct Layout {
    placed: Vec<Placed>,
    /// DOS time and date of every entry.
    time: u16,
    date: u16,
    cd_offset: u64,
    cd_size: u64,
    /// ZIP64 everywhere (tests: the ZIP64 records read back without 4 GiB of data).
    force64: bool,
}

fn component_ok(c: &str) -> bool {
    !c.is_empty() && c != "." && c != ".." && !c.contains(['/', '\\', '\0'])
}

/// The DOS time and date of `unix` (seconds since 1970, UTC); 1980-01-01 before 1980.
fn dos_time(unix: i64) -> (u16, u16) {
    use chrono::{Datelike, Timelike};
    let Some(t) = chrono::DateTime::from_timestamp(unix, 0).filter(|t| t.year() >= 1980) else {
        return (0, (1 << 5) | 1);
    };
    let year = (t.year() - 1980).min(127) as u16;
    let date = (year << 9) | ((t.month() as u16) << 5) | t.day() as u16;
    let time = ((t.hour() as u16) << 11) | ((t.minute() as u16) << 5) | (t.second() as u16 / 2);
    (time, date)
}

impl Layout {
    /// Places `entries` under the folder `folder`, each dated `modified` (seconds since 1970).
    pub fn new(folder: &str, entries: &[Entry], modified: i64) -> Result<Layout, ZipError> {
        Layout::build(folder, entries, modified, false)
    }

    fn build(
        folder: &str,
        entries: &[Entry],
        modified: i64,
        force64: bool,
    ) -> Result<Layout, ZipError> {
        if !component_ok(folder) {
            return Err(ZipError::BadName(folder.to_owned()));
        }
        let mut placed = Vec::with_capacity(entries.len());
        let mut offset = 0u64;
        for e in entries {
            if e.path.is_empty() || !e.path.iter().all(|c| component_ok(c)) {
                return Err(ZipError::BadName(e.path.join("/")));
            }
            let name = format!("{folder}/{}", e.path.join("/"));
            if name.len() > usize::from(u16::MAX) - 64 {
                return Err(ZipError::BadName(name));
            }
            let zip64 = force64 || e.size >= LIMIT || offset >= LIMIT;
            let p = Placed {
                name,
                size: e.size,
                offset,
                zip64,
            };
            offset = offset.saturating_add(local_len(&p) + p.size + descriptor_len(&p));
            placed.push(p);
        }
        let (time, date) = dos_time(modified);
        let mut layout = Layout {
            placed,
            time,
            date,
            cd_offset: offset,
            cd_size: 0,
            force64,
        };
        layout.cd_size = layout.placed.iter().map(|p| layout.central_len(p)).sum();
        Ok(layout)
    }

    /// How many entries.
    pub fn count(&self) -> usize {
        self.placed.len()
    }

    /// The archive's length in bytes.
    pub fn len(&self) -> u64 {
        self.cd_offset + self.cd_size + self.end_len()
    }

    /// Whether it holds no file (it is still a valid, empty archive).
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }

    /// The size of entry `i`'s data.
    pub fn size(&self, i: usize) -> u64 {
        self.placed.get(i).map_or(0, |p| p.size)
    }

    /// What comes before entry `i`'s data.
    pub fn local_header(&self, i: usize) -> Vec<u8> {
        let Some(p) = self.placed.get(i) else {
            return Vec::new();
        };
        let mut b = Vec::with_capacity(local_len(p) as usize);
        put32(&mut b, LOCAL);
        put16(&mut b, if p.zip64 { 45 } else { 20 });
        put16(&mut b, FLAGS);
        put16(&mut b, 0); // stored
        put16(&mut b, self.time);
        put16(&mut b, self.date);
        put32(&mut b, 0); // CRC-32: in the descriptor
        let unknown = if p.zip64 { u32::MAX } else { 0 };
        put32(&mut b, unknown);
        put32(&mut b, unknown);
        put16(&mut b, p.name.len() as u16);
        put16(&mut b, if p.zip64 { 20 } else { 0 });
        b.extend_from_slice(p.name.as_bytes());
        if p.zip64 {
            put16(&mut b, 1);
            put16(&mut b, 16);
            put64(&mut b, 0);
            put64(&mut b, 0);
        }
        b
    }

    /// What follows entry `i`'s data, whose CRC-32 is `crc`.
    pub fn descriptor(&self, i: usize, crc: u32) -> Vec<u8> {
        let Some(p) = self.placed.get(i) else {
            return Vec::new();
        };
        let mut b = Vec::with_capacity(descriptor_len(p) as usize);
        put32(&mut b, DESCRIPTOR);
        put32(&mut b, crc);
        if p.zip64 {
            put64(&mut b, p.size);
            put64(&mut b, p.size);
        } else {
            put32(&mut b, p.size as u32);
            put32(&mut b, p.size as u32);
        }
        b
    }

    fn central_len(&self, p: &Placed) -> u64 {
        46 + p.name.len() as u64 + self.central_extra(p)
    }

    /// The ZIP64 extra field of `p`'s central header: which fields overflow.
    fn central_extra(&self, p: &Placed) -> u64 {
        let (big, far) = self.overflows(p);
        let n = if big { 2 } else { 0 } + u64::from(far);
        if n == 0 { 0 } else { 4 + 8 * n }
    }

    fn overflows(&self, p: &Placed) -> (bool, bool) {
        (
            self.force64 || p.size >= LIMIT,
            self.force64 || p.offset >= LIMIT,
        )
    }

    fn end64(&self) -> bool {
        self.force64
            || self.placed.len() >= usize::from(u16::MAX)
            || self.cd_offset >= LIMIT
            || self.cd_size >= LIMIT
    }

    fn end_len(&self) -> u64 {
        22 + if self.end64() { 56 + 20 } else { 0 }
    }

    /// The central directory and the end records, once every entry's CRC-32 is known.
    pub fn central(&self, crcs: &[u32]) -> Vec<u8> {
        let mut b = Vec::with_capacity((self.cd_size + self.end_len()) as usize);
        for (i, p) in self.placed.iter().enumerate() {
            let (big, far) = self.overflows(p);
            put32(&mut b, CENTRAL);
            put16(&mut b, MADE_BY);
            put16(&mut b, if p.zip64 || far { 45 } else { 20 });
            put16(&mut b, FLAGS);
            put16(&mut b, 0);
            put16(&mut b, self.time);
            put16(&mut b, self.date);
            put32(&mut b, crcs.get(i).copied().unwrap_or(0));
            let size = if big { u32::MAX } else { p.size as u32 };
            put32(&mut b, size);
            put32(&mut b, size);
            put16(&mut b, p.name.len() as u16);
            put16(&mut b, self.central_extra(p) as u16);
            put16(&mut b, 0); // comment
            put16(&mut b, 0); // disk
            put16(&mut b, 0); // internal attributes
            put32(&mut b, 0o100_644 << 16); // a regular file, rw-r--r--
            put32(&mut b, if far { u32::MAX } else { p.offset as u32 });
            b.extend_from_slice(p.name.as_bytes());
            if big || far {
                put16(&mut b, 1);
                put16(&mut b, (self.central_extra(p) - 4) as u16);
                if big {
                    put64(&mut b, p.size);
                    put64(&mut b, p.size);
                }
                if far {
                    put64(&mut b, p.offset);
                }
            }
        }
        let count = self.placed.len() as u64;
        if self.end64() {
            let at = self.cd_offset + self.cd_size;
            put32(&mut b, END64);
            put64(&mut b, 44);
            put16(&mut b, MADE_BY);
            put16(&mut b, 45);
            put32(&mut b, 0);
            put32(&mut b, 0);
            put64(&mut b, count);
            put64(&mut b, count);
            put64(&mut b, self.cd_size);
            put64(&mut b, self.cd_offset);
            put32(&mut b, LOCATOR64);
            put32(&mut b, 0);
            put64(&mut b, at);
            put32(&mut b, 1);
        }
        put32(&mut b, END);
        put16(&mut b, 0);
        put16(&mut b, 0);
        let entries = if self.end64() { u16::MAX } else { count as u16 };
        put16(&mut b, entries);
        put16(&mut b, entries);
        let (cd_size, cd_offset) = if self.end64() {
            (u32::MAX, u32::MAX)
        } else {
            (self.cd_size as u32, self.cd_offset as u32)
        };
        put32(&mut b, cd_size);
        put32(&mut b, cd_offset);
        put16(&mut b, 0);
        b
    }
}

fn local_len(p: &Placed) -> u64 {
    30 + p.name.len() as u64 + if p.zip64 { 20 } else { 0 }
}

fn descriptor_len(p: &Placed) -> u64 {
    if p.zip64 { 24 } else { 16 }
}

fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole archive of `files` (path, content), as the response writes it.
    fn archive(files: &[(&str, &[u8])], force64: bool) -> (Layout, Vec<u8>) {
        let entries: Vec<Entry> = files
            .iter()
            .map(|(p, d)| Entry {
                path: p.split('/').map(str::to_owned).collect(),
                size: d.len() as u64,
            })
            .collect();
        let layout = Layout::build("Lyon été", &entries, 1_780_000_000, force64).unwrap();
        let mut out = Vec::new();
        let mut crcs = Vec::new();
        for (i, (_, d)) in files.iter().enumerate() {
            out.extend(layout.local_header(i));
            out.extend_from_slice(d);
            let crc = crc32fast::hash(d);
            crcs.push(crc);
            out.extend(layout.descriptor(i, crc));
        }
        out.extend(layout.central(&crcs));
        (layout, out)
    }

    /// Python's zipfile (not ours) lists the archive and checks every CRC.
    fn python_reads(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        std::fs::write(&path, bytes).unwrap();
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, zipfile\n\
                 z = zipfile.ZipFile(sys.argv[1])\n\
                 assert z.testzip() is None\n\
                 for i in z.infolist(): print(i.filename, i.file_size, z.read(i).hex(), i.date_time)",
            )
            .arg(&path)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn an_archive_has_the_length_announced_and_reads_back_elsewhere() {
        for force64 in [false, true] {
            let files: [(&str, &[u8]); 3] = [
                ("photo.jpg", b"\xff\xd8 not really a jpeg"),
                ("vide/empty.txt", b""),
                ("notes/jour 1.txt", b"bonjour"),
            ];
            let (layout, bytes) = archive(&files, force64);
            assert_eq!(layout.len(), bytes.len() as u64, "force64 {force64}");
            let listed = python_reads(&bytes);
            assert!(
                listed.contains(&format!(
                    "Lyon été/notes/jour 1.txt 7 {} (2026, 5, 28",
                    hex_of(b"bonjour")
                )),
                "{listed}"
            );
            assert!(listed.contains("Lyon été/vide/empty.txt 0  "), "{listed}");
            assert_eq!(listed.lines().count(), 3, "{listed}");
        }
        // Info-ZIP's unzip too (it is stricter about the records it finds at the end).
        let (_, bytes) = archive(&[("a.txt", b"abc")], true);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.zip"), &bytes).unwrap();
        let out = std::process::Command::new("unzip")
            .arg("-t")
            .arg(dir.path().join("a.zip"))
            .output()
            .expect("unzip is installed (scripts/install-test-deps)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn an_empty_share_is_an_empty_archive() {
        let (layout, bytes) = archive(&[], false);
        assert!(layout.is_empty());
        assert_eq!(bytes.len(), 22);
        assert_eq!(python_reads(&bytes), "");
    }

    /// Attack: a member names a file so that unzipping it would write elsewhere.
    #[test]
    fn names_that_would_leave_the_folder_are_refused() {
        for bad in [
            vec!["..".to_owned(), "x".to_owned()],
            vec!["a/../../x".to_owned()],
            vec![String::new()],
            vec!["c:\\x".to_owned()],
            vec!["nul\0".to_owned()],
            vec![],
        ] {
            let e = Entry { path: bad, size: 1 };
            assert!(Layout::new("ok", &[e], 0).is_err());
        }
        assert!(Layout::new("..", &[], 0).is_err());
    }

    #[test]
    fn big_files_and_far_offsets_get_zip64_fields() {
        let entries = [
            Entry {
                path: vec!["big.mkv".into()],
                size: 5 << 30,
            },
            Entry {
                path: vec!["after.jpg".into()],
                size: 10,
            },
        ];
        let l = Layout::new("f", &entries, 0).unwrap();
        assert!(
            l.placed[0].zip64 && l.placed[1].zip64,
            "the second starts past 4 GiB"
        );
        assert!(l.end64());
        assert_eq!(l.central(&[0, 0]).len() as u64, l.cd_size + l.end_len());
        let small = Layout::new("f", &entries[1..], 0).unwrap();
        assert!(!small.placed[0].zip64 && !small.end64());
        assert_eq!(dos_time(0), (0, 33));
    }
}
