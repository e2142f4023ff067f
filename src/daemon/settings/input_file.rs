//! The small files the daemon reads: `--config`, `--key-file` and `--zxid-file`.
//!
//! Each must be a regular file of bounded size. A FIFO, a device or a directory is
//! refused before it is opened (a FIFO would block until a writer appears, a device such
//! as `/dev/zero` never ends); the file is then opened non-blocking and checked again on
//! the open descriptor (the path may have changed in between), and at most the limit plus
//! one byte is read, so a file that grows while it is read is refused too.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest `--config` file: the whole table fits in a few hundred bytes.
pub const MAX_CONFIG_LEN: u64 = 64 * 1024;
/// Largest `--key-file`: a handful of `ID SECRET` lines.
pub const MAX_KEY_FILE_LEN: u64 = 4 * 1024;
/// Largest `--zxid-file`: one u64 (20 digits) and some white space.
pub const MAX_ZXID_FILE_LEN: u64 = 64;

/// Why an input file was not read.
#[derive(Debug)]
pub enum InputFileError {
    /// It could not be opened, inspected or read.
    Io(io::Error),
    /// It is not a regular file (`kind` says what it is).
    NotRegular(&'static str),
    /// It is larger than `limit` bytes.
    TooLarge { limit: u64 },
    /// Its content is not what was expected (`problem` says why).
    Malformed(&'static str),
}

impl fmt::Display for InputFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputFileError::Io(e) => write!(f, "cannot read: {e}"),
            InputFileError::NotRegular(kind) => {
                write!(f, "not a regular file (a {kind})")
            }
            InputFileError::TooLarge { limit } => {
                write!(f, "larger than {limit} bytes")
            }
            InputFileError::Malformed(problem) => f.write_str(problem),
        }
    }
}

impl From<io::Error> for InputFileError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::WouldBlock {
            // Only a file that is not a regular one blocks; the type check came first.
            InputFileError::NotRegular("file that would block")
        } else {
            InputFileError::Io(e)
        }
    }
}

/// What `metadata` is, when it is not a regular file.
fn not_regular(metadata: &Metadata) -> Option<&'static str> {
    let kind = metadata.file_type();
    match () {
        _ if kind.is_file() => None,
        _ if kind.is_dir() => Some("directory"),
        _ if kind.is_fifo() => Some("FIFO"),
        _ if kind.is_char_device() => Some("character device"),
        _ if kind.is_block_device() => Some("block device"),
        _ if kind.is_socket() => Some("socket"),
        _ => Some("special file"),
    }
}

/// Open `path` without blocking, after checking that it names a regular file; the open
/// file is checked again.
fn open_regular(path: &Path) -> Result<(File, Metadata), InputFileError> {
    if let Some(kind) = not_regular(&std::fs::metadata(path)?) {
        return Err(InputFileError::NotRegular(kind));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    if let Some(kind) = not_regular(&metadata) {
        return Err(InputFileError::NotRegular(kind));
    }
    Ok((file, metadata))
}

/// The bytes of the regular file `path`, at most `limit` of them, and its metadata.
pub fn read_bounded(path: &Path, limit: u64) -> Result<(Vec<u8>, Metadata), InputFileError> {
    let (file, metadata) = open_regular(path)?;
    if metadata.len() > limit {
        return Err(InputFileError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(InputFileError::TooLarge { limit });
    }
    Ok((bytes, metadata))
}

/// The text of the regular file `path` (UTF-8, at most `limit` bytes) and its metadata.
pub fn read_text(path: &Path, limit: u64) -> Result<(String, Metadata), InputFileError> {
    let (bytes, metadata) = read_bounded(path, limit)?;
    let text = String::from_utf8(bytes).map_err(|_| InputFileError::Malformed("not UTF-8"))?;
    Ok((text, metadata))
}

/// The zxid in `path`: one decimal u64, white space around it allowed. The event loop
/// calls this once a tick, so it reads into a stack buffer instead of allocating.
pub fn read_zxid(path: &Path) -> Result<u64, InputFileError> {
    const LIMIT: u64 = MAX_ZXID_FILE_LEN;
    let (mut file, metadata) = open_regular(path)?;
    if metadata.len() > LIMIT {
        return Err(InputFileError::TooLarge { limit: LIMIT });
    }
    // One byte more than the limit, to notice a file that grew since the fstat.
    let mut buf = [0u8; LIMIT as usize + 1];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    if len as u64 > LIMIT {
        return Err(InputFileError::TooLarge { limit: LIMIT });
    }
    core::str::from_utf8(&buf[..len])
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or(InputFileError::Malformed(
            "not a zxid (one decimal integer from 0 to 18446744073709551615)",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TempDir;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let dir = TempDir::new("votecast-input-file").unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap().0, b"0123456789");
        let e = read_bounded(&path, 9).unwrap_err();
        assert!(matches!(e, InputFileError::TooLarge { limit: 9 }), "{e}");
        std::fs::write(&path, " 18446744073709551615\n").unwrap();
        assert_eq!(read_zxid(&path).unwrap(), u64::MAX);
        for bad in ["", "x", "-1", "18446744073709551616", "1 2"] {
            std::fs::write(&path, bad).unwrap();
            let e = read_zxid(&path).unwrap_err();
            assert!(matches!(e, InputFileError::Malformed(_)), "{bad:?}: {e}");
        }
        std::fs::write(&path, [b'1'; 65]).unwrap();
        assert!(matches!(
            read_zxid(&path),
            Err(InputFileError::TooLarge { limit: 64 })
        ));
        std::fs::write(&path, b"\xff\xfe").unwrap();
        assert_eq!(read_text(&path, 10).unwrap_err().to_string(), "not UTF-8");
        let e = read_bounded(&dir.path().join("missing"), 10).unwrap_err();
        assert!(matches!(e, InputFileError::Io(_)), "{e}");
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = TempDir::new("votecast-input-special").unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let started = Instant::now();
        for (path, kind) in [
            (fifo.as_path(), "FIFO"),
            (Path::new("/dev/zero"), "character device"),
            (dir.path(), "directory"),
        ] {
            let e = read_bounded(path, 100).unwrap_err();
            assert_eq!(e.to_string(), format!("not a regular file (a {kind})"));
            assert!(read_zxid(path).is_err());
        }
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
