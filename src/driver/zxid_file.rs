//! `--zxid-file`: the node's last zxid, re-read by the loop once a tick.
//!
//! The loop must never block on it: the file is read as the settings read it (a regular
//! file of at most 64 bytes, opened without blocking, see
//! [`input_file`](crate::daemon::settings::input_file)); a FIFO, a device or a file that
//! cannot be read or parsed keeps the last good value, with a rate-limited warning.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::daemon::settings::input_file;
use crate::logging::RateLimit;

/// A persistent fault is repeated this often, so it stays visible in the log.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Reads `--zxid-file` (into a stack buffer, see `input_file::read_zxid`); a missing or
/// malformed file keeps the last good value.
#[derive(Debug)]
pub struct ZxidFile {
    path: PathBuf,
    last_good: u64,
    warn: RateLimit,
    failing: bool,
}

impl ZxidFile {
    /// A reader for `path` whose value was `initial` at start-up. Touches nothing.
    pub fn new(path: PathBuf, initial: u64) -> ZxidFile {
        ZxidFile {
            path,
            last_good: initial,
            warn: RateLimit::new(WARN_EVERY),
            failing: false,
        }
    }

    /// Reads the file: its zxid, or the last good one when it cannot be read or parsed.
    pub fn read(&mut self) -> u64 {
        match input_file::read_zxid(&self.path) {
            Ok(zxid) => {
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
