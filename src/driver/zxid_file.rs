//! `--zxid-file`: the node's last zxid, looked at by the loop once a tick and re-read only
//! when it changed.
//!
//! The loop must never block on it: the file is read as the settings read it (a regular
//! file of at most 64 bytes, opened without blocking, see
//! [`input_file`](crate::daemon::settings::input_file)); a FIFO, a device or a file that
//! cannot be read or parsed keeps the last good value, with a rate-limited warning.
//!
//! "Changed" is judged by one `stat`: device, inode, size, mtime and ctime. File
//! timestamps are coarse (a kernel tick), so two same-size writes within one tick could
//! look alike; a file modified less than [`SETTLED`] ago is therefore always re-read.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::daemon::settings::input_file;
use crate::logging::RateLimit;

/// A persistent fault is repeated this often, so it stays visible in the log.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// A file modified more recently than this is re-read even if its `stat` looks unchanged.
pub const SETTLED: Duration = Duration::from_secs(1);

/// One version of the file as `stat` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> Version {
        Version {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Reads `--zxid-file` (into a stack buffer, see `input_file::read_zxid`); a missing or
/// malformed file keeps the last good value.
#[derive(Debug)]
pub struct ZxidFile {
    path: PathBuf,
    last_good: u64,
    warn: RateLimit,
    failing: bool,
    /// The version `last_good` was read from (None: re-read next time).
    read_from: Option<Version>,
    /// Times the file was opened and read (not only looked at).
    pub reads: u64,
}

impl ZxidFile {
    /// A reader for `path` whose value was `initial` at start-up. Touches nothing.
    pub fn new(path: PathBuf, initial: u64) -> ZxidFile {
        ZxidFile {
            path,
            last_good: initial,
            warn: RateLimit::new(WARN_EVERY),
            failing: false,
            read_from: None,
            reads: 0,
        }
    }

    /// The file's zxid, read even if it looks unchanged (SIGHUP).
    pub fn reread(&mut self) -> u64 {
        self.read_from = None;
        self.read()
    }

    /// The file's zxid, re-read if it changed, or the last good one when it cannot be read
    /// or parsed.
    pub fn read(&mut self) -> u64 {
        let version = std::fs::metadata(&self.path).ok().map(|meta| {
            let settled = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age >= SETTLED);
            (Version::of(&meta), settled)
        });
        if let Some((v, true)) = version {
            if self.read_from == Some(v) {
                return self.last_good;
            }
        }
        // Stat'ed before the read: a change during the read shows as another version.
        self.read_from = None;
        self.reads += 1;
        match input_file::read_zxid(&self.path) {
            Ok(zxid) => {
                self.read_from = version.map(|(v, _)| v);
                if std::mem::take(&mut self.failing) {
                    self.warn.reset();
                    log::info!("zxid file {}: zxid {zxid}", self.path.display());
                }
                self.last_good = zxid;
            }
            Err(e) => {
                self.failing = true;
                if let Some(suppressed) = self.warn.allow(Instant::now()) {
                    log::warn!(
                        "zxid file {}: {e}; keeping zxid {}{suppressed}",
                        self.path.display(),
                        self.last_good
                    );
                }
            }
        }
        self.last_good
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TempDir;

    #[test]
    fn keeps_the_last_good_value() {
        let dir = TempDir::new("votecast-zxid-test").unwrap();
        let path = dir.path().join("zxid");
        let mut file = ZxidFile::new(path.clone(), 3);
        assert_eq!(file.read(), 3, "missing file: the initial value");
        std::fs::write(&path, "17\n").unwrap();
        assert_eq!(file.read(), 17);
        std::fs::write(&path, "not a number").unwrap();
        assert_eq!(file.read(), 17);
        std::fs::write(&path, " 18446744073709551615 ").unwrap();
        assert_eq!(file.read(), u64::MAX);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.read(), u64::MAX);
    }

    #[test]
    fn a_settled_unchanged_file_is_not_read_again() {
        let dir = TempDir::new("votecast-zxid-settled").unwrap();
        let path = dir.path().join("zxid");
        std::fs::write(&path, "17\n").unwrap();
        let old = SystemTime::now() - Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut file = ZxidFile::new(path.clone(), 3);
        assert_eq!(file.read(), 17);
        assert_eq!(file.read(), 17);
        assert_eq!(file.reads, 1, "looked at, not read again");
        // Replaced (another inode): read again, though its mtime is as old.
        let tmp = dir.path().join("zxid.tmp");
        std::fs::write(&tmp, "18\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(file.read(), 18);
        assert_eq!(file.reads, 2);
        // Written in place just now (same size): read every time until it settles.
        std::fs::write(&path, "19\n").unwrap();
        assert_eq!(file.read(), 19);
        assert_eq!(file.read(), 19);
        assert_eq!(file.reads, 4);
    }

    #[test]
    fn a_fifo_or_a_device_neither_blocks_nor_changes_the_value() {
        let dir = TempDir::new("votecast-zxid-fifo").unwrap();
        let fifo = dir.path().join("zxid");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let started = Instant::now();
        let mut file = ZxidFile::new(fifo, 9);
        assert_eq!(file.read(), 9);
        assert_eq!(ZxidFile::new("/dev/zero".into(), 4).read(), 4);
        assert!(started.elapsed() < Duration::from_secs(2), "blocked");
    }
}
