//! `--state-file`: the node's live state as one JSON object, replaced atomically.
//!
//! The file holds a single line such as
//!
//! ```text
//! {"id":3,"state":"LEADING","leader":3,"epoch":4,"round":2,"zxid":0,"pid":1234,"updated_unix_ms":1700000000000,"updated_boottime_ms":5000000,"valid_until_unix_ms":1700000000300,"valid_until_boottime_ms":5000300,"last_election_ms":12.345,"duplicate_id":false}
//! ```
//!
//! Writers format into a stack buffer and replace the file by rename, so a reader sees either
//! the old or the new object, never a mix. [`read_state_file`] is the reader used by
//! `votecast status`; it parses exactly this kind of flat object with a small hand-written
//! parser (no JSON dependency).

use std::fmt;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use super::atomic_file::AtomicFile;
use super::DaemonError;

/// Capacity of the stack buffer one snapshot is formatted into.
pub const MAX_SNAPSHOT_JSON_LEN: usize = 512;

/// Larger files are not state files; a real one is under 400 bytes.
const MAX_STATE_FILE_LEN: u64 = 64 * 1024;

/// What the daemon publishes after every change (and periodically, to refresh the lease).
///
/// One type for both directions: the driver writes it with the state as a `&'static str`
/// (nothing to allocate on the event loop), [`read_state_file`] returns it with an owned
/// `String` (the default), since the file may come from any version of the daemon.
#[derive(Debug, Clone, Copy, PartialEq)]
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
        write!(out, ",\"duplicate_id\":{}}}", self.duplicate_id)
    }
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

/// Replaces the state file with a new snapshot on every [`write`](Self::write).
#[derive(Debug)]
pub struct StateFileWriter {
    file: AtomicFile,
}

impl StateFileWriter {
    /// Prepares a writer for `path`; the temporary file is `path` + `.tmp`. Touches nothing.
    pub fn new(path: PathBuf) -> Self {
        StateFileWriter {
            file: AtomicFile::new(path),
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Replaces the file with `s` ([`AtomicFile::replace`]: no fsync, the file means
    /// nothing after a reboot, its pid is gone then). Does not allocate unless it fails.
    pub fn write<S: AsRef<str>>(&mut self, s: &StateSnapshot<S>) -> io::Result<()> {
        let mut buf: heapless::String<MAX_SNAPSHOT_JSON_LEN> = heapless::String::new();
        if s.write_json(&mut buf).is_err() || buf.push('\n').is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "state snapshot does not fit the state file buffer",
            ));
        }
        self.file.replace(buf.as_bytes())
    }
}

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

/// Parses the flat JSON object of a state file.
///
/// Whitespace and key order do not matter; unknown keys (of any JSON type) are ignored.
/// `id`, `state`, `round`, `zxid`, `pid` and `updated_unix_ms` are required; the optional
/// fields may be `null` or missing (files of older daemons have no `*_boottime_ms`);
/// `duplicate_id` defaults to false.
pub fn parse_state_json(text: &str) -> Result<StateSnapshot, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let mut id = None;
    let mut state = None;
    let mut leader = None;
    let mut epoch = None;
    let mut round = None;
    let mut zxid = None;
    let mut pid = None;
    let mut updated = None;
    let mut valid_until = None;
    let mut updated_boot = None;
    let mut valid_until_boot = None;
    let mut last_election = None;
    let mut duplicate = None;
    let mut seen: Vec<String> = Vec::new();

    p.ws();
    p.expect(b'{', "'{' at the start of the object")?;
    p.ws();
    if !p.eat(b'}') {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.expect(b':', "':' after a key")?;
            p.ws();
            let value = p.value(0)?;
            if seen.contains(&key) {
                return Err(format!("key {key:?} appears more than once"));
            }
            let k = key.as_str();
            match k {
                "id" => id = Some(value.u64(k)?),
                "state" => state = Some(value.string(k)?),
                "leader" => leader = value.opt_u64(k)?,
                "epoch" => epoch = value.opt_u64(k)?,
                "round" => round = Some(value.u64(k)?),
                "zxid" => zxid = Some(value.u64(k)?),
                "pid" => {
                    let n = value.u64(k)?;
                    pid = Some(
                        u32::try_from(n)
                            .map_err(|_| format!("key \"pid\": expected a process id, got {n}"))?,
                    );
                }
                "updated_unix_ms" => updated = Some(value.u64(k)?),
                "valid_until_unix_ms" => valid_until = value.opt_u64(k)?,
                "updated_boottime_ms" => updated_boot = value.opt_u64(k)?,
                "valid_until_boottime_ms" => valid_until_boot = value.opt_u64(k)?,
                "last_election_ms" => last_election = value.opt_f64(k)?,
                "duplicate_id" => duplicate = Some(value.bool(k)?),
                _ => {}
            }
            seen.push(key);
            p.ws();
            if p.eat(b',') {
                continue;
            }
            p.expect(b'}', "',' or '}' after a value")?;
            break;
        }
    }
    p.ws();
    if p.pos != p.s.len() {
        return Err(format!(
            "unexpected text after the object at byte {}",
            p.pos
        ));
    }
    let missing = |key: &str| format!("key {key:?} is missing");
    Ok(StateSnapshot {
        id: id.ok_or_else(|| missing("id"))?,
        state: state.ok_or_else(|| missing("state"))?,
        leader,
        epoch,
        round: round.ok_or_else(|| missing("round"))?,
        zxid: zxid.ok_or_else(|| missing("zxid"))?,
        pid: pid.ok_or_else(|| missing("pid"))?,
        updated_unix_ms: updated.ok_or_else(|| missing("updated_unix_ms"))?,
        updated_boottime_ms: updated_boot,
        valid_until_unix_ms: valid_until,
        valid_until_boottime_ms: valid_until_boot,
        last_election_ms: last_election,
        duplicate_id: duplicate.unwrap_or(false),
    })
}

/// One parsed JSON value (nested arrays/objects are skipped, not kept).
enum Value<'a> {
    Str(String),
    Num(&'a str),
    Null,
    Bool(bool),
    Nested,
}

impl Value<'_> {
    fn shown(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Num(n) => n.to_string(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Nested => "an array or object".into(),
        }
    }

    fn wrong(&self, key: &str, expected: &str) -> String {
        format!("key {key:?}: expected {expected}, got {}", self.shown())
    }

    fn u64(&self, key: &str) -> Result<u64, String> {
        match self {
            Value::Num(n) if n.bytes().all(|b| b.is_ascii_digit()) => n
                .parse()
                .map_err(|_| self.wrong(key, "a non-negative integer below 2^64")),
            _ => Err(self.wrong(key, "a non-negative integer")),
        }
    }

    fn opt_u64(&self, key: &str) -> Result<Option<u64>, String> {
        match self {
            Value::Null => Ok(None),
            _ => self
                .u64(key)
                .map(Some)
                .map_err(|_| self.wrong(key, "a non-negative integer or null")),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, String> {
        match self {
            Value::Null => Ok(None),
            Value::Num(n) => n
                .parse::<f64>()
                .map(Some)
                .map_err(|_| self.wrong(key, "a number or null")),
            _ => Err(self.wrong(key, "a number or null")),
        }
    }

    fn string(self, key: &str) -> Result<String, String> {
        match self {
            Value::Str(s) => Ok(s),
            other => Err(other.wrong(key, "a string")),
        }
    }

    fn bool(&self, key: &str) -> Result<bool, String> {
        match self {
            Value::Bool(b) => Ok(*b),
            _ => Err(self.wrong(key, "true or false")),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.pos) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn error(&self, expected: &str) -> String {
        match self.peek() {
            None => format!("unexpected end of file, expected {expected}"),
            Some(b) => format!(
                "unexpected {:?} at byte {}, expected {expected}",
                char::from(b),
                self.pos
            ),
        }
    }

    fn expect(&mut self, b: u8, expected: &str) -> Result<(), String> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn literal(&mut self, word: &str) -> bool {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, String> {
        const MAX_DEPTH: usize = 32;
        match self.peek() {
            Some(b'"') => self.string().map(Value::Str),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Num),
            Some(b'n') if self.literal("null") => Ok(Value::Null),
            Some(b't') if self.literal("true") => Ok(Value::Bool(true)),
            Some(b'f') if self.literal("false") => Ok(Value::Bool(false)),
            Some(open @ (b'[' | b'{')) => {
                if depth >= MAX_DEPTH {
                    return Err(format!("values nested deeper than {MAX_DEPTH} levels"));
                }
                self.pos += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                self.ws();
                if self.eat(close) {
                    return Ok(Value::Nested);
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        self.expect(b':', "':' after a key")?;
                        self.ws();
                    }
                    self.value(depth + 1)?;
                    self.ws();
                    if self.eat(b',') {
                        continue;
                    }
                    self.expect(close, "',' or the end of a nested value")?;
                    return Ok(Value::Nested);
                }
            }
            _ => Err(self.error("a value")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        self.eat(b'-');
        if self.digits() == 0 {
            return Err(self.error("a digit"));
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.error("a digit after '.'"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return Err(self.error("a digit in the exponent"));
            }
        }
        // Only ASCII was consumed, so this is a char boundary.
        Ok(std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .s
            .get(self.pos..self.pos + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("4 hex digits after \\u"))?;
        self.pos += 4;
        Ok(u32::from_str_radix(digits, 16).expect("hex digits"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"', "a string")?;
        let mut out = String::new();
        loop {
            // Copy the run of plain bytes up to the next quote, backslash or control char.
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            let run = std::str::from_utf8(&self.s[start..self.pos])
                .map_err(|_| format!("invalid UTF-8 in a string at byte {start}"))?;
            out.push_str(run);
            match self.peek() {
                None => return Err("unexpected end of file inside a string".into()),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or_else(|| self.error("an escape"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return Err(self.error("a low surrogate \\u escape"));
                                }
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(format!(
                                        "invalid surrogate pair before byte {}",
                                        self.pos
                                    ));
                                }
                                0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code).ok_or_else(|| {
                                format!("invalid \\u escape before byte {}", self.pos)
                            })?;
                            out.push(c);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.error("a valid escape"));
                        }
                    }
                }
                Some(_) => return Err(self.error("no raw control characters in a string")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TempDir;

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
             \"duplicate_id\":true}"
        );
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
            ..full()
        };
        w.write(&nulls).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"leader\":null"), "{text}");
        assert!(text.contains("\"last_election_ms\":null"), "{text}");
        assert_eq!(read_state_file(&path).unwrap(), nulls.to_owned_state());

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
        // The largest possible snapshot fits the buffer.
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
        };
        w.write(&big).unwrap();
        assert_eq!(read_state_file(&dir.path().join("s")).unwrap().id, u64::MAX);
    }

    #[test]
    fn tolerant_reader() {
        let text = r#"
          { "zxid" : 5 , "state":"FOLLOWING", "future": {"a": [1, 2, {"b": null}]},
            "id":9,"round":1,"pid":77, "updated_unix_ms": 10, "stale": true,
            "last_election_ms": 4, "extra": "x\u00e9\"\ud83d\ude00", "n": -1.5e3 }
        "#;
        let s = parse_state_json(text).unwrap();
        assert_eq!(s.id, 9);
        assert_eq!(s.state, "FOLLOWING");
        assert_eq!(
            (s.leader, s.epoch, s.valid_until_unix_ms),
            (None, None, None)
        );
        assert_eq!(s.last_election_ms, Some(4.0));
        // A file of an older daemon: no CLOCK_BOOTTIME fields.
        assert_eq!(
            (s.updated_boottime_ms, s.valid_until_boottime_ms),
            (None, None)
        );
        assert!(!s.duplicate_id);
        assert_eq!(s.zxid, 5);
    }

    #[test]
    fn malformed_files_are_errors() {
        let good = r#"{"id":1,"state":"LOOKING","round":0,"zxid":0,"pid":1,"updated_unix_ms":0}"#;
        parse_state_json(good).unwrap();
        let cases = [
            ("", "end of file"),
            ("{", "end of file"),
            ("[]", "'{'"),
            (r#"{"id":1,}"#, "a string"),
            (r#"{"id":1 "state":"x"}"#, "','"),
            (
                &good.replace("\"round\":0", "\"round\":\"abc\""),
                "key \"round\"",
            ),
            (
                &good.replace("\"round\":0", "\"round\":-1"),
                "key \"round\"",
            ),
            (
                &good.replace("\"round\":0", "\"round\":1.5"),
                "key \"round\"",
            ),
            (
                &good.replace("\"pid\":1", "\"pid\":4294967296"),
                "key \"pid\"",
            ),
            (
                &good.replace("\"state\":\"LOOKING\"", "\"state\":3"),
                "key \"state\"",
            ),
            (&good.replace(",\"zxid\":0", ""), "key \"zxid\" is missing"),
            (&good.replace("}", ",\"leader\":\"x\"}"), "key \"leader\""),
            (
                &good.replace("}", ",\"duplicate_id\":1}"),
                "key \"duplicate_id\"",
            ),
            (
                &good.replace("}", ",\"last_election_ms\":true}"),
                "key \"last_election_ms\"",
            ),
            (&good.replace("}", ",\"id\":2}"), "more than once"),
            (&format!("{good} x"), "after the object"),
            (&good.replace("LOOKING", "LOOK\nING"), "control"),
            (&good.replace("LOOKING", "LOOK\\qING"), "escape"),
            (r#"{"id":01e}"#, "exponent"),
            (r#"{"id":nul}"#, "a value"),
            (&format!("{{\"x\":{}}}", "[".repeat(100)), "nested deeper"),
        ];
        for (text, fragment) in cases {
            let err = parse_state_json(text).unwrap_err();
            assert!(err.contains(fragment), "{text:?}: {err}");
        }
        let dir = TempDir::new("votecast-state-test").unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\"id\":").unwrap();
        let err = read_state_file(&path).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("malformed"), "{err}");
        let err = read_state_file(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("missing.json") && err.contains("cannot read"),
            "{err}"
        );
    }
}
