//! `--zxid-file`: the node's last zxid, re-read by the loop once a tick.

use std::io::Read as _;
use std::path::PathBuf;

/// Reads `--zxid-file` into a fixed buffer; a missing or malformed file keeps the last
/// good value (logged once per change of condition).
#[derive(Debug)]
pub struct ZxidFile {
    path: PathBuf,
    last_good: u64,
    complaining: bool,
}

impl ZxidFile {
    /// A reader for `path`; the value is 0 until a read succeeds. Touches nothing.
    pub fn new(path: PathBuf) -> ZxidFile {
        ZxidFile {
            path,
            last_good: 0,
            complaining: false,
        }
    }

    /// Reads the file: its zxid, or the last good one when it cannot be read or parsed.
    pub fn read(&mut self) -> u64 {
        let mut buf = [0u8; 32];
        let result = std::fs::File::open(&self.path).and_then(|mut f| f.read(&mut buf));
        let parsed = match result {
            Ok(n) => core::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or("not a decimal u64"),
            Err(_) => Err("cannot be read"),
        };
        match parsed {
            Ok(zxid) => {
                self.complaining = false;
                self.last_good = zxid;
            }
            Err(why) if !self.complaining => {
                self.complaining = true;
                log::warn!(
                    "zxid file {} {why}; keeping zxid {}",
                    self.path.display(),
                    self.last_good
                );
            }
            Err(_) => {}
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
        let mut file = ZxidFile::new(path.clone());
        assert_eq!(file.read(), 0, "missing file: 0 until a good read");
        std::fs::write(&path, "17\n").unwrap();
        assert_eq!(file.read(), 17);
        std::fs::write(&path, "not a number").unwrap();
        assert_eq!(file.read(), 17);
        std::fs::write(&path, " 18446744073709551615 ").unwrap();
        assert_eq!(file.read(), u64::MAX);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(file.read(), u64::MAX);
    }
}
