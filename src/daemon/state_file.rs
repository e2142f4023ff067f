//! `--state-file`: the node's live state as one JSON object, replaced atomically.
//!
//! The file holds a single line such as
//!
//! ```text
//! {"id":3,"state":"LEADING","leader":3,"epoch":4,"round":2,"zxid":0,"pid":1234,"updated_unix_ms":1700000000000,"updated_boottime_ms":5000000,"valid_until_unix_ms":1700000000300,"valid_until_boottime_ms":5000300,"last_election_ms":12.345,"duplicate_id":false,"heard":[1,2],"heard_age_ms":{"1":12,"2":40}}
//! ```
//!
//! `heard` lists the other voters heard within the detection window as of `updated_*`,
//! and `heard_age_ms` the age of each one's last frame at that moment: the file is not
//! rewritten because ages grow (only on changes and on the refresh schedule).
//!
//! Writers format into a stack buffer and replace the file by rename, so a reader sees either
//! the old or the new object, never a mix. [`read_state_file`] is the reader used by
//! `votecast status`; it parses exactly this kind of flat object with a small hand-written
//! parser (no JSON dependency).

use std::fmt;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use super::file_publisher::FilePublisher;
use super::DaemonError;
use votecast_core::election::MAX_VOTERS;

/// Capacity of the stack buffer one snapshot is formatted into: about 430 bytes for the
/// scalar fields plus 64 heard voters with 20-digit ids and ages.
pub const MAX_SNAPSHOT_JSON_LEN: usize = 5 * 1024;

/// Larger files are not state files; a real one is under 5 KiB.
const MAX_STATE_FILE_LEN: u64 = 64 * 1024;

/// A voter heard within the detection window, as published: its id and the age of its
/// last frame when the snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeardVoter {
    pub id: u64,
    pub age_ms: u64,
}

/// The voters heard, in voter order (at most every voter: no allocation).
pub type HeardVoters = heapless::Vec<HeardVoter, MAX_VOTERS>;

/// What the daemon publishes after every change (and periodically, to refresh the lease).
///
/// One type for both directions: the driver writes it with the state as a `&'static str`
/// (nothing to allocate on the event loop), [`read_state_file`] returns it with an owned
/// `String` (the default), since the file may come from any version of the daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSnapshot<S = String> {
    pub id: u64,
    /// `"LOOKING"`, `"FOLLOWING"`, `"LEADING"` or `"OBSERVING"`.
    pub state: S,
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
    pub round: u64,
    pub zxid: u64,
    pub pid: u32,
    pub updated_unix_ms: u64,
    /// The same moment on CLOCK_BOOTTIME, in ms (`None`: no such clock, or a file
    /// written by an older daemon).
    pub updated_boottime_ms: Option<u64>,
    /// Until when the node's view is guaranteed (leader lease / follower sync deadline).
    pub valid_until_unix_ms: Option<u64>,
    /// The same instant on CLOCK_BOOTTIME, in ms: comparable across processes on one host
    /// and unaffected by steps of the wall clock.
    pub valid_until_boottime_ms: Option<u64>,
    /// Duration of the last completed election, in milliseconds.
    pub last_election_ms: Option<f64>,
    /// Another node was seen announcing this node's id.
    pub duplicate_id: bool,
    /// The other voters heard within the detection window (`sync-limit` ticks) at the
    /// moment of `updated_*`, with the age of their last frame then (`None`: a file
    /// written by an older daemon).
    pub heard: Option<HeardVoters>,
}

impl<S: AsRef<str>> StateSnapshot<S> {
    /// The same snapshot with its state as an owned `String`.
    pub fn to_owned_state(&self) -> StateSnapshot {
        StateSnapshot {
            id: self.id,
            state: self.state.as_ref().to_string(),
            leader: self.leader,
            epoch: self.epoch,
            round: self.round,
            zxid: self.zxid,
            pid: self.pid,
            updated_unix_ms: self.updated_unix_ms,
            updated_boottime_ms: self.updated_boottime_ms,
            valid_until_unix_ms: self.valid_until_unix_ms,
            valid_until_boottime_ms: self.valid_until_boottime_ms,
            last_election_ms: self.last_election_ms,
            duplicate_id: self.duplicate_id,
            heard: self.heard.clone(),
        }
    }

    /// Writes the snapshot as one JSON object (no newline). Keys are the field names, `None`
    /// is `null`, `last_election_ms` has 3 decimals (`null` when not finite or absurdly
    /// large, so the output always is valid JSON of bounded length).
    pub fn write_json<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        write!(out, "{{\"id\":{},\"state\":", self.id)?;
        write_json_string(out, self.state.as_ref())?;
        out.write_str(",\"leader\":")?;
        write_opt_u64(out, self.leader)?;
        out.write_str(",\"epoch\":")?;
        write_opt_u64(out, self.epoch)?;
        write!(
            out,
            ",\"round\":{},\"zxid\":{},\"pid\":{},\"updated_unix_ms\":{},\"updated_boottime_ms\":",
            self.round, self.zxid, self.pid, self.updated_unix_ms
        )?;
        write_opt_u64(out, self.updated_boottime_ms)?;
        out.write_str(",\"valid_until_unix_ms\":")?;
        write_opt_u64(out, self.valid_until_unix_ms)?;
        out.write_str(",\"valid_until_boottime_ms\":")?;
        write_opt_u64(out, self.valid_until_boottime_ms)?;
        out.write_str(",\"last_election_ms\":")?;
        match self.last_election_ms {
            Some(ms) if ms.is_finite() && ms.abs() < 1e15 => write!(out, "{ms:.3}")?,
            _ => out.write_str("null")?,
        }
        write!(out, ",\"duplicate_id\":{}", self.duplicate_id)?;
        if let Some(heard) = &self.heard {
            write_heard(out, heard)?;
        }
        out.write_char('}')
    }
}

/// `,"heard":[1,3],"heard_age_ms":{"1":12,"3":40}`: the ids as a list (the common
/// question: who do I hear?), the ages keyed by id.
fn write_heard<W: fmt::Write>(out: &mut W, heard: &[HeardVoter]) -> fmt::Result {
    out.write_str(",\"heard\":[")?;
    for (i, voter) in heard.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        write!(out, "{comma}{}", voter.id)?;
    }
    out.write_str("],\"heard_age_ms\":{")?;
    for (i, voter) in heard.iter().enumerate() {
        let comma = if i > 0 { "," } else { "" };
        write!(out, "{comma}\"{}\":{}", voter.id, voter.age_ms)?;
    }
    out.write_char('}')
}

fn write_opt_u64<W: fmt::Write>(out: &mut W, v: Option<u64>) -> fmt::Result {
    match v {
        Some(v) => write!(out, "{v}"),
        None => out.write_str("null"),
    }
}

/// Writes `s` as a JSON string literal: the one JSON string escaper of the daemon (the
/// state file, `votecast status --json`).
pub fn write_json_string<W: fmt::Write>(out: &mut W, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Replaces the state file with a new snapshot on every [`write`](Self::write), from a
/// thread of its own ([`FilePublisher`]): the event loop never waits for the disk.
#[derive(Debug)]
pub struct StateFileWriter {
    file: FilePublisher,
}

impl StateFileWriter {
    /// Prepares a writer for `path`; the temporary file is `path` + `.tmp`. Touches nothing.
    pub fn new(path: PathBuf) -> Self {
        StateFileWriter {
            file: FilePublisher::new(path, "state file", MAX_SNAPSHOT_JSON_LEN + 1),
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Hands `s` to the writer, which replaces the file with it ([`AtomicFile::replace`]:
    /// no fsync, the file means nothing after a reboot, its pid is gone then) and logs a
    /// failure. Fails only if the snapshot does not fit the buffer. Does not allocate.
    ///
    /// [`AtomicFile::replace`]: super::atomic_file::AtomicFile::replace
    pub fn write<S: AsRef<str>>(&mut self, s: &StateSnapshot<S>) -> io::Result<()> {
        let mut buf: heapless::String<MAX_SNAPSHOT_JSON_LEN> = heapless::String::new();
        if s.write_json(&mut buf).is_err() || buf.push('\n').is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "state snapshot does not fit the state file buffer",
            ));
        }
        self.file.publish(buf.as_bytes());
        Ok(())
    }

    /// Whether the file holds the last snapshot written (see [`FilePublisher`]).
    pub fn caught_up(&self) -> bool {
        self.file.caught_up()
    }

    /// Waits up to `timeout` for the file to hold the last snapshot. Blocks: not for the
    /// event loop.
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        self.file.flush(timeout)
    }
}

mod parse;

pub use self::parse::parse_state_json;

/// Reads and parses a state file. The error says which file and what is wrong with it.
pub fn read_state_file(path: &Path) -> Result<StateSnapshot, DaemonError> {
    let text = read_state_text(path)?;
    parse_file_text(path, &text)
}

/// Parses the text read from the state file at `path`; the error names the file.
pub(crate) fn parse_file_text(path: &Path, text: &str) -> Result<StateSnapshot, DaemonError> {
    parse_state_json(text).map_err(|problem| DaemonError::MalformedStateFile {
        path: path.to_path_buf(),
        problem,
    })
}

/// Reads a state file's text (bounded in size). The error names the file.
pub(crate) fn read_state_text(path: &Path) -> Result<String, DaemonError> {
    let fail = |source: io::Error| DaemonError::ReadStateFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(fail)?;
    let mut text = String::new();
    file.take(MAX_STATE_FILE_LEN + 1)
        .read_to_string(&mut text)
        .map_err(fail)?;
    if text.len() as u64 > MAX_STATE_FILE_LEN {
        return Err(DaemonError::MalformedStateFile {
            path: path.to_path_buf(),
            problem: format!("larger than {MAX_STATE_FILE_LEN} bytes"),
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TempDir;

    fn heard(voters: &[(u64, u64)]) -> HeardVoters {
        voters
            .iter()
            .map(|&(id, age_ms)| HeardVoter { id, age_ms })
            .collect()
    }

    fn full() -> StateSnapshot<&'static str> {
        StateSnapshot {
            id: 3,
            state: "LEADING",
            leader: Some(3),
            epoch: Some(4),
            round: 2,
            zxid: u64::MAX,
            pid: 1234,
            updated_unix_ms: 1_700_000_000_123,
            updated_boottime_ms: Some(5_000_123),
            valid_until_unix_ms: Some(1_700_000_000_423),
            valid_until_boottime_ms: Some(5_000_423),
            last_election_ms: Some(12.3456),
            duplicate_id: true,
            heard: Some(heard(&[(1, 12), (2, 40)])),
        }
    }

    #[test]
    fn exact_format() {
        let mut out = String::new();
        full().write_json(&mut out).unwrap();
        assert_eq!(
            out,
            "{\"id\":3,\"state\":\"LEADING\",\"leader\":3,\"epoch\":4,\"round\":2,\
             \"zxid\":18446744073709551615,\"pid\":1234,\"updated_unix_ms\":1700000000123,\
             \"updated_boottime_ms\":5000123,\"valid_until_unix_ms\":1700000000423,\
             \"valid_until_boottime_ms\":5000423,\"last_election_ms\":12.346,\
             \"duplicate_id\":true,\"heard\":[1,2],\"heard_age_ms\":{\"1\":12,\"2\":40}}"
        );
        // Nobody heard; and a snapshot without the fields (as an older daemon's file).
        let none = StateSnapshot {
            heard: Some(HeardVoters::new()),
            ..full()
        };
        let mut out = String::new();
        none.write_json(&mut out).unwrap();
        assert!(
            out.ends_with(",\"duplicate_id\":true,\"heard\":[],\"heard_age_ms\":{}}"),
            "{out}"
        );
        let old = StateSnapshot {
            heard: None,
            ..full()
        };
        let mut out = String::new();
        old.write_json(&mut out).unwrap();
        assert!(out.ends_with(",\"duplicate_id\":true}"), "{out}");
    }

    #[test]
    fn write_read_round_trip_and_no_tmp_left() {
        let dir = TempDir::new("votecast-state-test").unwrap();
        let path = dir.path().join("state.json");
        let mut w = StateFileWriter::new(path.clone());
        assert_eq!(w.path(), path);
        let mut s = full();
        s.last_election_ms = Some(12.5);
        w.write(&s).unwrap();
        assert!(w.flush(std::time::Duration::from_secs(5)));
        assert_eq!(read_state_file(&path).unwrap(), s.to_owned_state());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n") && text.lines().count() == 1, "{text}");

        let nulls = StateSnapshot {
            state: "LOOKING",
            leader: None,
            epoch: None,
            valid_until_unix_ms: None,
            valid_until_boottime_ms: None,
            last_election_ms: None,
            duplicate_id: false,
            heard: Some(HeardVoters::new()),
            ..full()
        };
        w.write(&nulls).unwrap();
        assert!(w.flush(std::time::Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"leader\":null"), "{text}");
        assert!(text.contains("\"last_election_ms\":null"), "{text}");
        assert_eq!(read_state_file(&path).unwrap(), nulls.to_owned_state());
        assert_eq!(
            read_state_file(&path).unwrap().heard,
            Some(HeardVoters::new())
        );
        // The heard voters come back in their order, with their ages.
        let unordered = StateSnapshot {
            heard: Some(heard(&[(9, 0), (2, 299), (u64::MAX - 1, 7)])),
            last_election_ms: Some(1.5),
            ..full()
        };
        w.write(&unordered).unwrap();
        assert!(w.flush(std::time::Duration::from_secs(5)));
        assert_eq!(read_state_file(&path).unwrap(), unordered.to_owned_state());

        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn odd_values_still_give_valid_json() {
        for ms in [f64::NAN, f64::INFINITY, 1e300] {
            let s = StateSnapshot {
                last_election_ms: Some(ms),
                state: "weird \"state\"\n\\",
                ..full()
            };
            let mut out = String::new();
            s.write_json(&mut out).unwrap();
            let back = parse_state_json(&out).unwrap();
            assert_eq!(back.last_election_ms, None);
            assert_eq!(back.state, s.state);
        }
        // The largest possible snapshot fits the buffer: every voter heard, 20-digit ids
        // and ages.
        let dir = TempDir::new("votecast-state-test").unwrap();
        let mut w = StateFileWriter::new(dir.path().join("s"));
        let big = StateSnapshot {
            id: u64::MAX,
            state: "OBSERVING",
            leader: Some(u64::MAX),
            epoch: Some(u64::MAX),
            round: u64::MAX,
            zxid: u64::MAX,
            pid: u32::MAX,
            updated_unix_ms: u64::MAX,
            updated_boottime_ms: Some(u64::MAX),
            valid_until_unix_ms: Some(u64::MAX),
            valid_until_boottime_ms: Some(u64::MAX),
            last_election_ms: Some(-999_999_999_999_999.9),
            duplicate_id: false,
            heard: Some(
                (0..MAX_VOTERS as u64)
                    .map(|i| HeardVoter {
                        id: u64::MAX - 1 - i,
                        age_ms: u64::MAX,
                    })
                    .collect(),
            ),
        };
        w.write(&big).unwrap();
        assert!(w.flush(std::time::Duration::from_secs(5)));
        let back = read_state_file(&dir.path().join("s")).unwrap();
        assert_eq!(back.id, u64::MAX);
        assert_eq!(back.heard, big.heard);
    }
}
