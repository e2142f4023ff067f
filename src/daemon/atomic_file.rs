//! Replacing a file atomically for live readers: write `PATH.tmp` in the same directory,
//! then rename it over `PATH`, so a reader sees the old or the new content, never a mix.
//! The one implementation behind the state file and the metrics file.

use std::fs::OpenOptions;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// A file that is only ever replaced as a whole (see the module docs).
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl AtomicFile {
    /// Prepares replacing `path`; the temporary file is `path` + `.tmp` (in the same
    /// directory, so the rename never crosses a file system, and with a name that
    /// node_exporter's `*.prom` glob does not match). Touches nothing.
    pub fn new(path: PathBuf) -> Self {
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        AtomicFile {
            path,
            tmp: PathBuf::from(tmp),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to `PATH.tmp` and renames it over `PATH`; on failure the temporary
    /// file is removed. Does not allocate unless it fails.
    ///
    /// No fsync: these files are for live readers and mean nothing after a reboot, so
    /// durability would only cost latency on the event loop. The rename alone makes the
    /// replacement atomic for readers.
    pub fn replace(&self, bytes: &[u8]) -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.tmp)?;
        if let Err(e) = file.write_all(bytes) {
            drop(file);
            let _ = std::fs::remove_file(&self.tmp);
            return Err(e);
        }
        drop(file);
        std::fs::rename(&self.tmp, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&self.tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TempDir;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = TempDir::new("votecast-atomic-file").unwrap();
        let f = AtomicFile::new(dir.join("m.prom"));
        assert_eq!(f.path(), dir.join("m.prom"));
        f.replace(b"a long first version\n").unwrap();
        f.replace(b"short\n").unwrap();
        assert_eq!(std::fs::read(dir.join("m.prom")).unwrap(), b"short\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("m.prom")]);
    }

    #[test]
    fn a_failed_rename_removes_the_temporary() {
        let dir = TempDir::new("votecast-atomic-file").unwrap();
        // A directory in the way: the rename fails (EISDIR), the write before it does not.
        std::fs::create_dir(dir.join("busy")).unwrap();
        std::fs::write(dir.join("busy/x"), b"").unwrap();
        let f = AtomicFile::new(dir.join("busy"));
        assert!(f.replace(b"x").is_err());
        assert!(!dir.join("busy.tmp").exists());
    }
}
