//! Durable node state in `--data-dir`: the ZAB epochs and an incarnation counter.
//!
//! Each value set is a small text file with a header line, `name=value` lines and a last
//! line `crc32=xxxxxxxx` (CRC-32 of all preceding bytes, lowercase hex):
//!
//! ```text
//! votecast-epochs v1
//! accepted_epoch=3
//! accepted_leader=2
//! current_epoch=3
//! crc32=2bfc161a
//! ```
//!
//! A damaged file (torn, truncated, edited, garbage) is an error that names the file and the
//! problem; it is never reset silently, because forgetting an epoch can break the protocol's
//! safety. A missing file means a fresh node.
//!
//! Writes are atomic and durable: the content goes to `NAME.tmp` in the same directory, which
//! is synced, renamed over `NAME`, and then the directory itself is synced so the rename
//! survives a power cut.
//!
//! [`DataDir::store_epochs`] runs on the event loop and does not allocate on its success
//! path: the paths are built once in [`DataDir::open`], the content is formatted into a
//! stack buffer, and std passes paths shorter than a few hundred bytes to the kernel from
//! the stack. (Its error path allocates, to name the file.)

use std::fmt::{self, Write as _};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write as _};
use std::path::{Path, PathBuf};

use votecast_core::election::Epochs;

const EPOCHS_FILE: &str = "epochs";
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
    epochs_tmp: PathBuf,
    incarnation: PathBuf,
    incarnation_tmp: PathBuf,
}

impl DataDir {
    /// Opens `dir`, creating it (and its parents) if missing. Removes `*.tmp` files left by a
    /// write that was interrupted (the real files are intact in that case).
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
        let data = DataDir {
            dir: dir.to_path_buf(),
            epochs: dir.join(EPOCHS_FILE),
            epochs_tmp: dir.join(format!("{EPOCHS_FILE}.tmp")),
            incarnation: dir.join(INCARNATION_FILE),
            incarnation_tmp: dir.join(format!("{INCARNATION_FILE}.tmp")),
        };
        for tmp in [&data.epochs_tmp, &data.incarnation_tmp] {
            match std::fs::remove_file(tmp) {
                Ok(()) => log::warn!("removed {} left by an interrupted write", tmp.display()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(PersistError::io(tmp, "remove", e)),
            }
        }
        Ok(data)
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

    /// Reads the stored epochs: all zero when the file does not exist yet; an error naming
    /// the file when it exists but is damaged.
    pub fn load_epochs(&self) -> Result<Epochs, PersistError> {
        match read_record(&self.epochs, EPOCHS_HEADER, EPOCHS_FIELDS)? {
            None => Ok(Epochs::default()),
            Some([accepted_epoch, accepted_leader, current_epoch]) => Ok(Epochs {
                accepted_epoch,
                accepted_leader,
                current_epoch,
            }),
        }
    }

    /// Stores the epochs atomically and durably. Does not allocate unless it fails.
    pub fn store_epochs(&mut self, e: &Epochs) -> Result<(), PersistError> {
        let content = format_record(
            EPOCHS_HEADER,
            EPOCHS_FIELDS,
            [e.accepted_epoch, e.accepted_leader, e.current_epoch],
        );
        write_atomic(
            &self.dir,
            &self.epochs_tmp,
            &self.epochs,
            content.as_bytes(),
        )
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
    parse_record(&bytes, header, names)
        .map(Some)
        .map_err(|problem| PersistError::corrupt(path, problem))
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
mod tests {
    use super::*;
    use crate::cluster::TempDir;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn with_crc(body: &str) -> String {
        format!("{body}crc32={:08x}\n", crc32fast::hash(body.as_bytes()))
    }

    #[test]
    fn round_trip_and_format() {
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        let dir = tmp.path().join("nested/data");
        let mut data = DataDir::open(&dir).unwrap();
        assert!(dir.is_dir());
        assert_eq!(data.load_epochs().unwrap(), Epochs::default());
        let e = Epochs {
            accepted_epoch: 3,
            accepted_leader: 2,
            current_epoch: 3,
        };
        data.store_epochs(&e).unwrap();
        assert_eq!(data.load_epochs().unwrap(), e);
        let text = std::fs::read_to_string(dir.join("epochs")).unwrap();
        assert_eq!(
            text,
            with_crc("votecast-epochs v1\naccepted_epoch=3\naccepted_leader=2\ncurrent_epoch=3\n")
        );
        let max = Epochs {
            accepted_epoch: u64::MAX,
            accepted_leader: u64::MAX,
            current_epoch: u64::MAX,
        };
        data.store_epochs(&max).unwrap();
        drop(data);
        let data = DataDir::open(&dir).unwrap();
        assert_eq!(data.load_epochs().unwrap(), max);
        assert_eq!(names_in(&dir), vec!["epochs"]);
    }

    #[test]
    fn incarnation_bumps_and_survives_reopen() {
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(data.load_incarnation().unwrap(), 0);
        assert_eq!(data.bump_incarnation(0, 1).unwrap(), 1);
        assert_eq!(data.bump_incarnation(0, 1).unwrap(), 2);
        drop(data);
        let mut data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(data.load_incarnation().unwrap(), 2);
        assert_eq!(data.bump_incarnation(0, 1).unwrap(), 3);
        assert_eq!(names_in(tmp.path()), vec!["incarnation"]);
        let text = std::fs::read_to_string(tmp.path().join("incarnation")).unwrap();
        assert_eq!(text, with_crc("votecast-incarnation v1\nincarnation=3\n"));
    }

    #[test]
    fn incarnation_floor_survives_a_wiped_directory() {
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(
            data.bump_incarnation(1_700_000_000, 1).unwrap(),
            1_700_000_000
        );
        // A clock that went backwards never lowers it.
        assert_eq!(
            data.bump_incarnation(1_600_000_000, 1).unwrap(),
            1_700_000_001
        );
        std::fs::remove_file(tmp.path().join("incarnation")).unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(
            data.bump_incarnation(1_700_000_100, 1).unwrap(),
            1_700_000_100
        );
    }

    #[test]
    fn a_directory_without_a_counter_starts_at_the_fresh_value() {
        // Without a set clock, a wiped directory must not start at 1 again: the process
        // before the wipe may have been incarnation 1, which peers never readmit.
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(data.bump_incarnation(0, 1).unwrap(), 1);
        std::fs::remove_file(tmp.path().join("incarnation")).unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(data.bump_incarnation(0, 912_345).unwrap(), 912_345);
        // Once there is a counter, `fresh` is not used; 0 is never an incarnation.
        assert_eq!(data.bump_incarnation(0, 7).unwrap(), 912_346);
        std::fs::remove_file(tmp.path().join("incarnation")).unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(data.bump_incarnation(0, 0).unwrap(), 1);
    }

    #[test]
    fn incarnation_overflow_is_an_error() {
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        std::fs::write(
            tmp.path().join("incarnation"),
            with_crc(&format!(
                "votecast-incarnation v1\nincarnation={}\n",
                u32::MAX
            )),
        )
        .unwrap();
        let err = data.bump_incarnation(0, 1).unwrap_err();
        assert!(matches!(err, PersistError::Overflow { .. }), "{err}");
        assert!(err.to_string().contains("incarnation"), "{err}");
        std::fs::write(
            tmp.path().join("incarnation"),
            with_crc("votecast-incarnation v1\nincarnation=4294967296\n"),
        )
        .unwrap();
        let err = data.bump_incarnation(0, 1).unwrap_err();
        assert!(matches!(err, PersistError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn damaged_files_are_errors_that_name_the_file() {
        let good = "votecast-epochs v1\naccepted_epoch=3\naccepted_leader=2\ncurrent_epoch=3\n";
        let good_file = with_crc(good);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", Vec::new(), "empty"),
            ("garbage", b"\x00\xff\xfe garbage \x01".to_vec(), "not text"),
            ("text garbage", b"hello world\n".to_vec(), "wrong header"),
            (
                "wrong header",
                with_crc(&good.replace("v1", "v2")).into_bytes(),
                "wrong header",
            ),
            (
                "bad crc",
                good_file
                    .replace("accepted_epoch=3", "accepted_epoch=4")
                    .into_bytes(),
                "checksum mismatch",
            ),
            (
                "truncated mid-line",
                good_file.as_bytes()[..good_file.len() - 3].to_vec(),
                "truncated",
            ),
            (
                "truncated at a line end",
                good.as_bytes()[..good.len()].to_vec(),
                "truncated",
            ),
            ("header only", b"votecast-epochs v1\n".to_vec(), "truncated"),
            (
                "non-numeric value",
                with_crc(&good.replace("current_epoch=3", "current_epoch=x3")).into_bytes(),
                "current_epoch value",
            ),
            (
                "negative value",
                with_crc(&good.replace("current_epoch=3", "current_epoch=-3")).into_bytes(),
                "not a non-negative integer",
            ),
            (
                "plus sign",
                with_crc(&good.replace("current_epoch=3", "current_epoch=+3")).into_bytes(),
                "not a non-negative integer",
            ),
            (
                "overflowing value",
                with_crc(&good.replace("current_epoch=3", "current_epoch=18446744073709551616"))
                    .into_bytes(),
                "not a non-negative integer",
            ),
            (
                "wrong key",
                with_crc(&good.replace("accepted_leader", "leader")).into_bytes(),
                "line 3",
            ),
            (
                "missing line",
                with_crc(&good.replace("accepted_leader=2\n", "")).into_bytes(),
                "expected 3 value line(s)",
            ),
            (
                "bad crc digits",
                good_file.replace("crc32=", "crc32=zz").into_bytes(),
                "8 hex digits",
            ),
            ("huge", vec![b'a'; 10_000], "larger than"),
        ];
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        let data = DataDir::open(tmp.path()).unwrap();
        let path = tmp.path().join("epochs");
        for (what, content, fragment) in cases {
            std::fs::write(&path, &content).unwrap();
            let err = data.load_epochs().unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, PersistError::Corrupt { .. }), "{what}: {msg}");
            assert_eq!(err.path(), path, "{what}");
            assert!(msg.contains(&path.display().to_string()), "{what}: {msg}");
            assert!(msg.contains(fragment), "{what}: {msg}");
        }
        std::fs::write(&path, &good_file).unwrap();
        assert_eq!(data.load_epochs().unwrap().accepted_leader, 2);
    }

    #[test]
    fn stale_tmp_is_removed_on_open_and_not_read() {
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        std::fs::create_dir_all(tmp.path()).unwrap();
        std::fs::write(tmp.path().join("epochs.tmp"), "half a fi").unwrap();
        let data = DataDir::open(tmp.path()).unwrap();
        assert_eq!(data.load_epochs().unwrap(), Epochs::default());
        assert!(names_in(tmp.path()).is_empty());
    }

    #[test]
    fn open_fails_on_a_file() {
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        std::fs::create_dir_all(tmp.path()).unwrap();
        let file = tmp.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let err = DataDir::open(&file).unwrap_err();
        assert!(err.to_string().contains("plain"), "{err}");
    }

    #[test]
    fn write_errors_name_the_path_and_leave_no_tmp() {
        let tmp = TempDir::new("votecast-persist-test").unwrap();
        let mut data = DataDir::open(tmp.path()).unwrap();
        // A directory where the file should be makes the rename fail.
        std::fs::create_dir(tmp.path().join("epochs")).unwrap();
        std::fs::write(tmp.path().join("epochs/x"), "x").unwrap();
        let err = data.store_epochs(&Epochs::default()).unwrap_err();
        assert!(err.to_string().contains("epochs"), "{err}");
        assert!(!tmp.path().join("epochs.tmp").exists());
    }
}
