//! The reader of state files: a small hand-written parser of one flat JSON object (no
//! JSON dependency), tolerant of unknown keys and of files written by older daemons.

use super::{HeardVoter, HeardVoters, StateSnapshot};

/// Parses the flat JSON object of a state file.
///
/// Whitespace and key order do not matter; unknown keys (of any JSON type) are ignored.
/// `id`, `state`, `round`, `zxid`, `pid` and `updated_unix_ms` are required; the optional
/// fields may be `null` or missing (files of older daemons have no `*_boottime_ms` and no
/// `heard`); `duplicate_id` defaults to false. `heard` and `heard_age_ms` come together,
/// with an age for every voter heard and for no other.
pub fn parse_state_json(text: &str) -> Result<StateSnapshot, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
    };
    let mut fields = Fields::default();
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
            fields.set(&key, value)?;
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
    fields.finish()
}

/// The known keys of a state file, as read so far.
#[derive(Default)]
struct Fields {
    id: Option<u64>,
    state: Option<String>,
    leader: Option<u64>,
    epoch: Option<u64>,
    round: Option<u64>,
    zxid: Option<u64>,
    pid: Option<u32>,
    updated: Option<u64>,
    valid_until: Option<u64>,
    updated_boot: Option<u64>,
    valid_until_boot: Option<u64>,
    last_election: Option<f64>,
    duplicate: Option<bool>,
    heard: Option<Vec<u64>>,
    heard_age: Option<Vec<(u64, u64)>>,
}

impl Fields {
    /// Takes the value of key `k`; unknown keys are ignored.
    fn set(&mut self, k: &str, value: Value) -> Result<(), String> {
        match k {
            "id" => self.id = Some(value.u64(k)?),
            "state" => self.state = Some(value.string(k)?),
            "leader" => self.leader = value.opt_u64(k)?,
            "epoch" => self.epoch = value.opt_u64(k)?,
            "round" => self.round = Some(value.u64(k)?),
            "zxid" => self.zxid = Some(value.u64(k)?),
            "pid" => {
                let n = value.u64(k)?;
                self.pid = Some(
                    u32::try_from(n)
                        .map_err(|_| format!("key \"pid\": expected a process id, got {n}"))?,
                );
            }
            "updated_unix_ms" => self.updated = Some(value.u64(k)?),
            "valid_until_unix_ms" => self.valid_until = value.opt_u64(k)?,
            "updated_boottime_ms" => self.updated_boot = value.opt_u64(k)?,
            "valid_until_boottime_ms" => self.valid_until_boot = value.opt_u64(k)?,
            "last_election_ms" => self.last_election = value.opt_f64(k)?,
            "duplicate_id" => self.duplicate = Some(value.bool(k)?),
            "heard" => self.heard = Some(value.u64_list(k)?),
            "heard_age_ms" => self.heard_age = Some(value.u64_by_id(k)?),
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<StateSnapshot, String> {
        let missing = |key: &str| format!("key {key:?} is missing");
        Ok(StateSnapshot {
            heard: heard_voters(self.heard, self.heard_age)?,
            id: self.id.ok_or_else(|| missing("id"))?,
            state: self.state.ok_or_else(|| missing("state"))?,
            leader: self.leader,
            epoch: self.epoch,
            round: self.round.ok_or_else(|| missing("round"))?,
            zxid: self.zxid.ok_or_else(|| missing("zxid"))?,
            pid: self.pid.ok_or_else(|| missing("pid"))?,
            updated_unix_ms: self.updated.ok_or_else(|| missing("updated_unix_ms"))?,
            updated_boottime_ms: self.updated_boot,
            valid_until_unix_ms: self.valid_until,
            valid_until_boottime_ms: self.valid_until_boot,
            last_election_ms: self.last_election,
            duplicate_id: self.duplicate.unwrap_or(false),
        })
    }
}

/// Joins `heard` (ids) and `heard_age_ms` (ages by id) into one list in the order of
/// `heard`. Both absent: a file of an older daemon.
fn heard_voters(
    ids: Option<Vec<u64>>,
    ages: Option<Vec<(u64, u64)>>,
) -> Result<Option<HeardVoters>, String> {
    let (ids, ages) = match (ids, ages) {
        (None, None) => return Ok(None),
        (Some(ids), Some(ages)) => (ids, ages),
        (Some(_), None) => return Err("key \"heard_age_ms\" is missing".into()),
        (None, Some(_)) => return Err("key \"heard\" is missing".into()),
    };
    let mut heard = HeardVoters::new();
    for (i, &id) in ids.iter().enumerate() {
        if ids[..i].contains(&id) {
            return Err(format!("key \"heard\": voter {id} is listed twice"));
        }
        let Some(&(_, age_ms)) = ages.iter().find(|(voter, _)| *voter == id) else {
            return Err(format!("key \"heard_age_ms\": no age for voter {id}"));
        };
        heard
            .push(HeardVoter { id, age_ms })
            .map_err(|_| format!("key \"heard\": more than {} voters", heard.capacity()))?;
    }
    if let Some((id, _)) = ages.iter().find(|(id, _)| !ids.contains(id)) {
        return Err(format!(
            "key \"heard_age_ms\": voter {id} is not in \"heard\""
        ));
    }
    Ok(Some(heard))
}

/// One parsed JSON value.
enum Value<'a> {
    Str(String),
    Num(&'a str),
    Null,
    Bool(bool),
    Array(Vec<Value<'a>>),
    Object(Vec<(String, Value<'a>)>),
}

impl Value<'_> {
    fn shown(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Num(n) => n.to_string(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Array(_) => "an array".into(),
            Value::Object(_) => "an object".into(),
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

    /// `[1, 3]`
    fn u64_list(&self, key: &str) -> Result<Vec<u64>, String> {
        let Value::Array(items) = self else {
            return Err(self.wrong(key, "a list of ids"));
        };
        items.iter().map(|item| item.u64(key)).collect()
    }

    /// `{"1": 12, "3": 40}`: non-negative integers keyed by decimal ids.
    fn u64_by_id(&self, key: &str) -> Result<Vec<(u64, u64)>, String> {
        let Value::Object(members) = self else {
            return Err(self.wrong(key, "an object of ages by id"));
        };
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(members.len());
        for (id, value) in members {
            let id = Value::Num(id)
                .u64(key)
                .map_err(|_| format!("key {key:?}: expected decimal ids as keys, got {id:?}"))?;
            if out.iter().any(|(seen, _)| *seen == id) {
                return Err(format!("key {key:?}: voter {id} appears twice"));
            }
            out.push((id, value.u64(key)?));
        }
        Ok(out)
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
            Some(b'[' | b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(format!("values nested deeper than {MAX_DEPTH} levels"));
                }
                self.nested(depth)
            }
            _ => Err(self.error("a value")),
        }
    }

    /// An array or an object, its opening bracket next.
    fn nested(&mut self, depth: usize) -> Result<Value<'a>, String> {
        let object = self.peek() == Some(b'{');
        self.pos += 1;
        let close = if object { b'}' } else { b']' };
        let mut items = Vec::new();
        let mut members = Vec::new();
        self.ws();
        if !self.eat(close) {
            loop {
                self.ws();
                let key = if object {
                    let key = self.string()?;
                    self.ws();
                    self.expect(b':', "':' after a key")?;
                    self.ws();
                    Some(key)
                } else {
                    None
                };
                let value = self.value(depth + 1)?;
                match key {
                    Some(key) => members.push((key, value)),
                    None => items.push(value),
                }
                self.ws();
                if self.eat(b',') {
                    continue;
                }
                self.expect(close, "',' or the end of a nested value")?;
                break;
            }
        }
        Ok(if object {
            Value::Object(members)
        } else {
            Value::Array(items)
        })
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
    use super::super::read_state_file;
    use super::*;
    use crate::cluster::TempDir;

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
        // A file of an older daemon: no CLOCK_BOOTTIME fields, no voters heard.
        assert_eq!(
            (s.updated_boottime_ms, s.valid_until_boottime_ms),
            (None, None)
        );
        assert_eq!(s.heard, None);
        // Written by hand: whitespace, any key order, ages listed in another order.
        let text = r#"{"heard_age_ms": {"3": 40, "1": 12}, "id":2, "state":"LOOKING",
            "round":1, "zxid":0, "pid":7, "updated_unix_ms":5, "heard": [ 1 , 3 ] }"#;
        let heard = parse_state_json(text).unwrap().heard.unwrap();
        let heard: Vec<_> = heard.iter().map(|h| (h.id, h.age_ms)).collect();
        assert_eq!(heard, [(1, 12), (3, 40)]);
        assert!(!s.duplicate_id);
        assert_eq!(s.zxid, 5);
    }

    #[test]
    fn malformed_files_are_errors() {
        let good = r#"{"id":1,"state":"LOOKING","round":0,"zxid":0,"pid":1,"updated_unix_ms":0}"#;
        parse_state_json(good).unwrap();
        let ids: Vec<String> = (1..=65).map(|id| id.to_string()).collect();
        let ages: Vec<String> = ids.iter().map(|id| format!("\"{id}\":1")).collect();
        let too_many_heard = good.replace(
            "}",
            &format!(
                ",\"heard\":[{}],\"heard_age_ms\":{{{}}}}}",
                ids.join(","),
                ages.join(",")
            ),
        );
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
            (
                &good.replace("}", ",\"heard\":[1]}"),
                "key \"heard_age_ms\" is missing",
            ),
            (
                &good.replace("}", ",\"heard_age_ms\":{\"1\":2}}"),
                "key \"heard\" is missing",
            ),
            (
                &good.replace("}", ",\"heard\":[1,3],\"heard_age_ms\":{\"3\":2}}"),
                "no age for voter 1",
            ),
            (
                &good.replace("}", ",\"heard\":[],\"heard_age_ms\":{\"3\":2}}"),
                "voter 3 is not in \"heard\"",
            ),
            (
                &good.replace("}", ",\"heard\":[3,3],\"heard_age_ms\":{\"3\":2}}"),
                "voter 3 is listed twice",
            ),
            (
                &good.replace("}", ",\"heard\":[3],\"heard_age_ms\":{\"3\":2,\"3\":1}}"),
                "voter 3 appears twice",
            ),
            (
                &good.replace("}", ",\"heard\":[\"1\"],\"heard_age_ms\":{}}"),
                "key \"heard\": expected a non-negative integer",
            ),
            (
                &good.replace("}", ",\"heard\":1,\"heard_age_ms\":{}}"),
                "expected a list of ids",
            ),
            (
                &good.replace("}", ",\"heard\":[],\"heard_age_ms\":[]}"),
                "expected an object of ages by id",
            ),
            (
                &good.replace("}", ",\"heard\":[1],\"heard_age_ms\":{\"one\":1}}"),
                "expected decimal ids as keys, got \"one\"",
            ),
            (
                &good.replace("}", ",\"heard\":[1],\"heard_age_ms\":{\"1\":-5}}"),
                "key \"heard_age_ms\": expected a non-negative integer",
            ),
            (&too_many_heard, "more than 64 voters"),
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
