//! Durable node state in `--data-dir`: the ZAB epochs (`epochs`) and an incarnation
//! counter (`incarnation`).
//!
//! **`epochs`** is written on the path to every leadership (the leader's proposal, each
//! follower's acknowledgement, the established epoch on both sides), so its write must be
//! cheap as well as durable. It is a fixed-size file of two checksummed slots ([`slots`]),
//! overwritten in place, alternately, with one `pwrite` and one `fdatasync`: a torn write
//! loses only the value being written (which nothing has announced yet), never the one
//! before. Replacing a file (temp file, fsync, rename, directory fsync) costs about twice
//! as much and twice the flushes on flash; rewriting a text file in place could tear
//! across the only copy.
//!
//! The version-1 epochs file is text, like the incarnation file below. A node upgraded
//! in place keeps its epochs: [`DataDir::open`] reads a version-1 file (a damaged one is
//! an error, as always) and replaces it, once and atomically, by a two-slot file with the
//! same values; only that format is written from then on. A data dir without an epochs
//! file (a fresh node) gets one holding zeros, so every later store is an in-place write.
//!
//! **`incarnation`** is written once per start, off the election's path, and stays a small
//! text file with a header line, `name=value` lines and a last line `crc32=xxxxxxxx`
//! (CRC-32 of all preceding bytes, lowercase hex), written atomically: the content goes to
//! `NAME.tmp`, which is synced, renamed over `NAME`, and the directory is synced so the
//! rename survives a power cut. The version-1 epochs file had the same form:
//!
//! ```text
//! votecast-epochs v1
//! accepted_epoch=3
//! accepted_leader=2
//! current_epoch=3
//! crc32=2bfc161a
//! ```
//!
//! A damaged file (truncated, edited, garbage, both epochs slots invalid) is an error that
//! names the file and the problem; it is never reset silently, because forgetting an epoch
//! can break the protocol's safety.
//!
//! [`DataDir::store_epochs`] runs on the event loop and does not allocate on its success
//! path: the file is opened once in [`DataDir::open`] and the record is encoded into a
//! stack buffer. (Its error path allocates, to name the file.)

mod slots;

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use self::slots::Record;

use votecast_core::election::Epochs;

const EPOCHS_FILE: &str = "epochs";
/// The header of the version-1 (text) epochs file, read for the migration only.
const EPOCHS_HEADER: &str = "votecast-epochs v1";
const EPOCHS_FIELDS: [&str; 3] = ["accepted_epoch", "accepted_leader", "current_epoch"];

const INCARNATION_FILE: &str = "incarnation";
const INCARNATION_HEADER: &str = "votecast-incarnation v1";
const INCARNATION_FIELDS: [&str; 1] = ["incarnation"];

/// Files larger than this are not ours; real ones are under 200 bytes.
const MAX_FILE_LEN: u64 = 4096;

/// Failure to read or write the data directory.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// An I/O operation on `path` failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The file at `path` exists but is not a valid state file.
    #[error(
        "{} is damaged: {problem} (votecast never resets this file by itself; \
         restore it or remove it knowingly)",
        path.display()
    )]
    Corrupt { path: PathBuf, problem: String },
    /// The incarnation counter in `path` cannot go any higher.
    #[error("{}: the incarnation counter is at its maximum ({})", path.display(), u32::MAX)]
    Overflow { path: PathBuf },
}

impl PersistError {
    fn io(path: &Path, action: &'static str, source: io::Error) -> Self {
        PersistError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }

    fn corrupt(path: &Path, problem: impl Into<String>) -> Self {
        PersistError::Corrupt {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PersistError::Io { path, .. }
            | PersistError::Corrupt { path, .. }
            | PersistError::Overflow { path } => path,
        }
    }
}

/// An open `--data-dir`.
#[derive(Debug)]
pub struct DataDir {
    dir: PathBuf,
    epochs: PathBuf,
    incarnation: PathBuf,
    incarnation_tmp: PathBuf,
    /// The two-slot epochs file, open for the in-place writes.
    epochs_file: File,
    /// The sequence number of its newest slot.
    epochs_sequence: u64,
}

impl DataDir {
    /// Opens `dir`, creating it (and its parents) if missing. Removes `*.tmp` files left by a
    /// write that was interrupted (the real files are intact in that case). Then opens the
    /// epochs file: creates it (zeros) if missing, converts a version-1 file, and fails,
    /// naming the file, if it is damaged.
    pub fn open(dir: &Path) -> Result<DataDir, PersistError> {
        std::fs::create_dir_all(dir).map_err(|e| PersistError::io(dir, "create directory", e))?;
        let meta = std::fs::metadata(dir).map_err(|e| PersistError::io(dir, "inspect", e))?;
        if !meta.is_dir() {
            return Err(PersistError::io(
                dir,
                "use as data directory",
                io::Error::other("not a directory"),
            ));
        }
        let epochs = dir.join(EPOCHS_FILE);
        let epochs_tmp = dir.join(format!("{EPOCHS_FILE}.tmp"));
        let incarnation = dir.join(INCARNATION_FILE);
        let incarnation_tmp = dir.join(format!("{INCARNATION_FILE}.tmp"));
        for tmp in [&epochs_tmp, &incarnation_tmp] {
            match std::fs::remove_file(tmp) {
                Ok(()) => log::warn!("removed {} left by an interrupted write", tmp.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(PersistError::io(tmp, "remove", e)),
            }
        }
        let epochs_sequence = prepare_epochs(dir, &epochs, &epochs_tmp)?;
        let epochs_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&epochs)
            .map_err(|e| PersistError::io(&epochs, "open", e))?;
        Ok(DataDir {
            dir: dir.to_path_buf(),
            epochs,
            incarnation,
            incarnation_tmp,
            epochs_file,
            epochs_sequence,
        })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The epochs file (`DIR/epochs`).
    pub fn epochs_path(&self) -> &Path {
        &self.epochs
    }

    /// The incarnation file (`DIR/incarnation`).
    pub fn incarnation_path(&self) -> &Path {
        &self.incarnation
    }

    /// Reads the stored epochs (either format): all zero when the file does not exist; an
    /// error naming the file when it exists but is damaged.
    pub fn load_epochs(&self) -> Result<Epochs, PersistError> {
        Ok(read_epochs(&self.epochs)?.map_or(Epochs::default(), |(e, _)| e))
    }

    /// Stores the epochs durably: the record goes into the slot that does not hold the
    /// newest value, with one `pwrite` and one `fdatasync` (see [`slots`]). Does not
    /// allocate unless it fails.
    pub fn store_epochs(&mut self, e: &Epochs) -> Result<(), PersistError> {
        // Saturating: 2^64 stores are out of reach; a stuck sequence number would make the
        // file unreadable (equal numbers, different epochs), never wrong.
        let record = Record {
            sequence: self.epochs_sequence.saturating_add(1),
            epochs: *e,
        };
        self.epochs_file
            .write_all_at(&record.encode(), record.offset())
            .map_err(|err| PersistError::io(&self.epochs, "write", err))?;
        self.epochs_file
            .sync_data()
            .map_err(|err| PersistError::io(&self.epochs, "sync", err))?;
        self.epochs_sequence = record.sequence;
        Ok(())
    }

    /// Reads the incarnation counter (0 when the file does not exist yet).
    pub fn load_incarnation(&self) -> Result<u32, PersistError> {
        match read_record(&self.incarnation, INCARNATION_HEADER, INCARNATION_FIELDS)? {
            None => Ok(0),
            Some([n]) => u32::try_from(n).map_err(|_| {
                PersistError::corrupt(
                    &self.incarnation,
                    format!("incarnation {n} is larger than {}", u32::MAX),
                )
            }),
        }
    }

    /// Raises the incarnation counter to `max(stored + 1, floor)`, stores it durably and
    /// returns the new value. A directory without a counter (the first start, or a wiped
    /// directory) starts at `fresh` (at least 1).
    ///
    /// The driver passes the wall-clock second as `floor` when the clock looks set, so the
    /// counter keeps pace with time, and a random `fresh`: a wiped directory that started
    /// at 1 again, or at the wall-clock second, could repeat the incarnation of the
    /// process before the wipe, which peers never readmit (a late frame of that process
    /// could end promises made to this one). A random start is distinct with odds of
    /// 2^-31; when it is lower than the last process's, peers readmit it once that one has
    /// been silent (`Config::readmit_after`).
    pub fn bump_incarnation(&mut self, floor: u32, fresh: u32) -> Result<u32, PersistError> {
        let stored = read_record(&self.incarnation, INCARNATION_HEADER, INCARNATION_FIELDS)?;
        let next =
            match stored {
                None => fresh.max(1),
                Some(_) => self.load_incarnation()?.checked_add(1).ok_or_else(|| {
                    PersistError::Overflow {
                        path: self.incarnation.clone(),
                    }
                })?,
            }
            .max(floor);
        let content = format_record(INCARNATION_HEADER, INCARNATION_FIELDS, [u64::from(next)]);
        write_atomic(
            &self.dir,
            &self.incarnation_tmp,
            &self.incarnation,
            content.as_bytes(),
        )?;
        Ok(next)
    }
}

/// The epochs in the file at `path` and, for a two-slot file, its newest sequence number
/// (None for a version-1 text file). `Ok(None)` when the file does not exist.
fn read_epochs(path: &Path) -> Result<Option<(Epochs, Option<u64>)>, PersistError> {
    let Some(bytes) = read_file(path)? else {
        return Ok(None);
    };
    if bytes.len() == slots::FILE_LEN || bytes.starts_with(slots::MAGIC) {
        let record =
            slots::newest(&bytes).map_err(|problem| PersistError::corrupt(path, problem))?;
        return Ok(Some((record.epochs, Some(record.sequence))));
    }
    let [accepted_epoch, accepted_leader, current_epoch] =
        parse_record(&bytes, EPOCHS_HEADER, EPOCHS_FIELDS)
            .map_err(|problem| PersistError::corrupt(path, problem))?;
    let epochs = Epochs {
        accepted_epoch,
        accepted_leader,
        current_epoch,
    };
    Ok(Some((epochs, None)))
}

/// Makes `path` a valid two-slot epochs file and returns its newest sequence number: a
/// missing file is created holding zeros; a version-1 file is replaced by one holding its
/// values (atomically: until the rename, the old file is intact).
fn prepare_epochs(dir: &Path, path: &Path, tmp: &Path) -> Result<u64, PersistError> {
    let epochs = match read_epochs(path)? {
        Some((_, Some(sequence))) => return Ok(sequence),
        Some((epochs, None)) => {
            log::info!(
                "{}: converting the text epochs file to the two-slot format ({epochs:?})",
                path.display()
            );
            epochs
        }
        None => Epochs::default(),
    };
    let (image, newest) = slots::image(epochs);
    write_atomic(dir, tmp, path, &image)?;
    Ok(newest.sequence)
}

/// Formats a record into a stack buffer. The content is bounded (a header, at most three
/// 20-digit numbers with short names and a checksum line), so 256 bytes always suffice.
fn format_record<const N: usize>(
    header: &str,
    names: [&str; N],
    values: [u64; N],
) -> heapless::String<256> {
    fn body<const N: usize>(
        out: &mut heapless::String<256>,
        header: &str,
        names: [&str; N],
        values: [u64; N],
    ) -> fmt::Result {
        writeln!(out, "{header}")?;
        for (name, value) in names.iter().zip(values) {
            writeln!(out, "{name}={value}")?;
        }
        let crc = crc32fast::hash(out.as_bytes());
        writeln!(out, "crc32={crc:08x}")
    }
    let mut out = heapless::String::new();
    body(&mut out, header, names, values).expect("a state record fits in 256 bytes");
    out
}

/// Writes `content` to `tmp`, syncs it, renames it over `dst` and syncs `dir`.
fn write_atomic(dir: &Path, tmp: &Path, dst: &Path, content: &[u8]) -> Result<(), PersistError> {
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(tmp)
            .map_err(|e| PersistError::io(tmp, "create", e))?;
        file.write_all(content)
            .map_err(|e| PersistError::io(tmp, "write", e))?;
        file.sync_all()
            .map_err(|e| PersistError::io(tmp, "sync", e))?;
        drop(file);
        std::fs::rename(tmp, dst).map_err(|e| PersistError::io(dst, "replace", e))
    })();
    if result.is_err() {
        // Best effort: do not leave a half-written temporary behind.
        let _ = std::fs::remove_file(tmp);
        return result;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| PersistError::io(dir, "sync directory", e))
}

/// Reads and checks one record file. `Ok(None)` when it does not exist.
fn read_record<const N: usize>(
    path: &Path,
    header: &str,
    names: [&str; N],
) -> Result<Option<[u64; N]>, PersistError> {
    let Some(bytes) = read_file(path)? else {
        return Ok(None);
    };
    parse_record(&bytes, header, names)
        .map(Some)
        .map_err(|problem| PersistError::corrupt(path, problem))
}

/// The bytes of the file at `path` (at most [`MAX_FILE_LEN`]). `Ok(None)` when it does not
/// exist.
fn read_file(path: &Path) -> Result<Option<Vec<u8>>, PersistError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PersistError::io(path, "open", e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PersistError::io(path, "read", e))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(PersistError::corrupt(
            path,
            format!("the file is larger than {MAX_FILE_LEN} bytes"),
        ));
    }
    Ok(Some(bytes))
}

/// Quotes at most 40 characters of `s` for a message.
fn snippet(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((end, _)) => format!("{:?}...", &s[..end]),
        None => format!("{s:?}"),
    }
}

fn parse_record<const N: usize>(
    bytes: &[u8],
    header: &str,
    names: [&str; N],
) -> Result<[u64; N], String> {
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "the file is not text (invalid UTF-8)".to_string())?;
    let first = text.split('\n').next().unwrap_or("");
    if first != header {
        return Err(format!(
            "wrong header: expected {header:?}, found {}",
            snippet(first)
        ));
    }
    let Some(body) = text.strip_suffix('\n') else {
        return Err("truncated: the last line is incomplete".into());
    };
    let (content_len, crc_line) = match body.rfind('\n') {
        Some(i) => (i + 1, &body[i + 1..]),
        None => (0, body),
    };
    let Some(crc_text) = crc_line.strip_prefix("crc32=") else {
        return Err(format!(
            "truncated: the last line should be \"crc32=<8 hex digits>\", found {}",
            snippet(crc_line)
        ));
    };
    let stored = if crc_text.len() == 8 && crc_text.bytes().all(|b| b.is_ascii_hexdigit()) {
        u32::from_str_radix(crc_text, 16).map_err(|_| "bad crc32 line".to_string())?
    } else {
        return Err(format!(
            "bad checksum line: expected 8 hex digits after \"crc32=\", found {}",
            snippet(crc_text)
        ));
    };
    let computed = crc32fast::hash(&bytes[..content_len]);
    if stored != computed {
        return Err(format!(
            "checksum mismatch: the file says crc32={stored:08x} but its content gives \
             {computed:08x} (torn write or edited by hand)"
        ));
    }
    let lines: Vec<&str> = body[..content_len.saturating_sub(1)]
        .split('\n')
        .skip(1)
        .collect();
    if lines.len() != N {
        return Err(format!(
            "expected {N} value line(s) between the header and the checksum, found {}",
            lines.len()
        ));
    }
    let mut values = [0u64; N];
    for (i, (line, name)) in lines.iter().zip(names).enumerate() {
        let line_no = i + 2;
        let value = line
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .ok_or_else(|| {
                format!(
                    "line {line_no}: expected \"{name}=<integer>\", found {}",
                    snippet(line)
                )
            })?;
        values[i] = match value.parse::<u64>() {
            Ok(v) if value.bytes().all(|b| b.is_ascii_digit()) => v,
            _ => {
                return Err(format!(
                    "line {line_no}: {name} value {} is not a non-negative integer",
                    snippet(value)
                ))
            }
        };
    }
    Ok(values)
}

#[cfg(test)]
mod tests;
