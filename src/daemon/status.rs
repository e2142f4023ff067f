//! `votecast status --state-file PATH [--json]`: report what a running node last published.
//!
//! Exit codes: 0 the state is fresh, 3 it is stale, 2 the file is unreadable or malformed.
//!
//! A state is STALE when
//! - the process that wrote it is gone (`/proc/<pid>` missing, or a zombie), or
//! - it was updated in the future (a wall clock stepped back, or a file from before a
//!   reboot), or
//! - it carries a lease (`valid_until_*`) that has run out, or
//! - it says LOOKING without a lease and was not refreshed for 10 s.
//!
//! Times are compared on CLOCK_BOOTTIME (`*_boottime_ms`) when the file has them: that
//! clock never steps and is the same for every process on the host. Files of older daemons
//! (or systems without the clock) are judged by the wall clock (`*_unix_ms`).
//!
//! The text names the other voters the node heard within its detection window and the
//! age of each one's last frame, as of the file's update (the daemon does not rewrite the
//! file because ages grow); `--json` passes the file's own `heard` and `heard_age_ms`.
//!
//! The pid check assumes `status` runs in the daemon's pid namespace, and it cannot tell a
//! reused pid from the daemon; the lease covers that case for nodes that hold one. Without
//! `/proc` the pid check is skipped.

use std::fmt::Write as _;
use std::path::Path;

use super::state_file::{
    parse_file_text, read_state_text, write_json_string, HeardVoter, StateSnapshot,
};

/// What `votecast status` found, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusExit {
    /// 0: the state is fresh.
    Fresh,
    /// 2: the state file could not be read or parsed.
    Unreadable,
    /// 3: the state is stale.
    Stale,
}

impl StatusExit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        match self {
            StatusExit::Fresh => 0,
            StatusExit::Unreadable => 2,
            StatusExit::Stale => 3,
        }
    }
}

/// The outcome of `votecast status`: the text for stdout (or, when unreadable and not
/// `--json`, for stderr) without a trailing newline, and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReport {
    pub text: String,
    pub exit: StatusExit,
}

/// A LOOKING node without a lease refreshes its file well within this.
const LOOKING_STALE_AFTER_MS: u64 = 10_000;

/// The clocks `status` judges a state by, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusClocks {
    /// The wall clock, ms since 1970.
    pub unix_ms: u64,
    /// CLOCK_BOOTTIME in ms (`None`: no such clock).
    pub boottime_ms: Option<u64>,
}

/// Runs `votecast status`. `now_unix_ms` is the wall clock (see [`super::unix_now_ms`]);
/// CLOCK_BOOTTIME is read here.
pub fn run_status(state_file: &Path, json: bool, now_unix_ms: u64) -> StatusReport {
    let now = StatusClocks {
        unix_ms: now_unix_ms,
        boottime_ms: super::hooks::boottime_now_ms(),
    };
    run_status_at(state_file, json, now)
}

/// Runs `votecast status` at the given clock readings.
pub fn run_status_at(state_file: &Path, json: bool, now: StatusClocks) -> StatusReport {
    let parsed = read_state_text(state_file)
        .and_then(|text| parse_file_text(state_file, &text).map(|s| (text, s)));
    let (text, snapshot) = match parsed {
        Ok(ok) => ok,
        Err(error) => {
            let message = error.to_string();
            let text = if json {
                let mut out = String::from("{\"error\":");
                let _ = write_json_string(&mut out, &message);
                out.push('}');
                out
            } else {
                message
            };
            return StatusReport {
                text,
                exit: StatusExit::Unreadable,
            };
        }
    };
    let stale = stale_reason(&snapshot, now, pid_is_alive);
    let exit = if stale.is_some() {
        StatusExit::Stale
    } else {
        StatusExit::Fresh
    };
    let text = if json {
        json_with_staleness(&text, stale.as_deref())
    } else {
        describe(&snapshot, Times::of(&snapshot, now), stale.as_deref())
    };
    StatusReport { text, exit }
}

/// The times of a snapshot on one clock: CLOCK_BOOTTIME when both the file and the
/// reader have it, else the wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Times {
    updated: u64,
    valid_until: Option<u64>,
    now: u64,
}

impl Times {
    fn of(s: &StateSnapshot, now: StatusClocks) -> Times {
        match (s.updated_boottime_ms, now.boottime_ms) {
            (Some(updated), Some(now)) => Times {
                updated,
                valid_until: s.valid_until_boottime_ms,
                now,
            },
            _ => Times {
                updated: s.updated_unix_ms,
                valid_until: s.valid_until_unix_ms,
                now: now.unix_ms,
            },
        }
    }
}

/// Why `s` is stale at `now`, or `None` when it is fresh.
///
/// `alive` tells whether a pid is alive (`None`: cannot tell); see [`pid_is_alive`].
pub fn stale_reason(
    s: &StateSnapshot,
    now: StatusClocks,
    alive: impl Fn(u32) -> Option<bool>,
) -> Option<String> {
    if alive(s.pid) == Some(false) {
        return Some(format!("process {} is gone", s.pid));
    }
    let t = Times::of(s, now);
    // Written after the reader's now: the clock it was written by is not the reader's (a
    // wall clock stepped back, a reboot since), so none of its times can be trusted.
    if t.updated > t.now {
        return Some(format!(
            "updated {} in the future",
            human_ms(t.updated - t.now)
        ));
    }
    match t.valid_until {
        Some(until) if until < t.now => {
            Some(format!("lease expired {} ago", human_ms(t.now - until)))
        }
        Some(_) => None,
        None => {
            let age = t.now - t.updated;
            (s.state == "LOOKING" && age > LOOKING_STALE_AFTER_MS)
                .then(|| format!("no update for {} while LOOKING", human_ms(age)))
        }
    }
}

/// Whether process `pid` exists and is not a zombie, by `/proc`. `None` without `/proc`.
pub fn pid_is_alive(pid: u32) -> Option<bool> {
    if !Path::new("/proc/self/stat").exists() {
        return None;
    }
    if pid == 0 {
        return Some(false);
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name, which is in parentheses and
        // may itself contain spaces and parentheses.
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next());
            Some(!matches!(state, Some("Z" | "X" | "x")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => Some(Path::new(&format!("/proc/{pid}")).exists()),
    }
}

/// `120 ms`, `5 s`, `3 min`, `2 h`.
fn human_ms(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=119_999 => format!("{} s", ms / 1_000),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        _ => format!("{} h", ms / 3_600_000),
    }
}

fn describe(s: &StateSnapshot, t: Times, stale: Option<&str>) -> String {
    let now = t.now;
    let mut out = format!("node {}: {}", s.id, s.state);
    if let Some(epoch) = s.epoch {
        let _ = write!(out, " epoch {epoch}");
    }
    if let Some(leader) = s.leader {
        let _ = write!(out, " leader {leader}");
    }
    let _ = write!(out, " round {} zxid {} (pid {}, ", s.round, s.zxid, s.pid);
    if t.updated > now {
        let _ = write!(out, "updated {} in the future", human_ms(t.updated - now));
    } else {
        let _ = write!(out, "updated {} ago", human_ms(now - t.updated));
    }
    if let Some(until) = t.valid_until {
        if until >= now && t.updated <= now {
            let _ = write!(out, ", lease valid for {}", human_ms(until - now));
        }
    }
    if let Some(ms) = s.last_election_ms {
        let _ = write!(out, ", last election took {ms:.1} ms");
    }
    out.push(')');
    if let Some(heard) = &s.heard {
        describe_heard(&mut out, heard);
    }
    if s.duplicate_id {
        let _ = write!(out, " DUPLICATE ID (another node also uses id {})", s.id);
    }
    if let Some(reason) = stale {
        let _ = write!(out, " STALE ({reason})");
    }
    out
}

/// `; heard 1 (12 ms), 3 (40 ms) as of the update`, or that no other voter was heard.
fn describe_heard(out: &mut String, heard: &[HeardVoter]) {
    if heard.is_empty() {
        out.push_str("; heard no other voter as of the update");
        return;
    }
    out.push_str("; heard ");
    for (i, voter) in heard.iter().enumerate() {
        let comma = if i > 0 { ", " } else { "" };
        let _ = write!(out, "{comma}{} ({})", voter.id, human_ms(voter.age_ms));
    }
    out.push_str(" as of the update");
}

/// The file's own object with `"stale"` and `"stale_reason"` added at the end.
/// `text` has been parsed already, so its last `}` closes the object.
fn json_with_staleness(text: &str, stale: Option<&str>) -> String {
    let body = text.trim_end();
    let body = body.strip_suffix('}').unwrap_or(body).trim_end();
    let mut out = String::with_capacity(body.len() + 64);
    out.push_str(body);
    if !body.ends_with('{') {
        out.push(',');
    }
    let _ = write!(out, "\"stale\":{},\"stale_reason\":", stale.is_some());
    match stale {
        Some(reason) => {
            let _ = write_json_string(&mut out, reason);
        }
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::super::state_file::{parse_state_json, StateFileWriter};
    use super::*;
    use crate::cluster::TempDir;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    const NOW: u64 = 1_700_000_000_000;

    fn leading(pid: u32) -> StateSnapshot<&'static str> {
        StateSnapshot {
            id: 3,
            state: "LEADING",
            leader: Some(3),
            epoch: Some(4),
            round: 2,
            zxid: 0,
            pid,
            updated_unix_ms: NOW - 120,
            updated_boottime_ms: None,
            valid_until_unix_ms: Some(NOW + 180),
            valid_until_boottime_ms: None,
            last_election_ms: None,
            duplicate_id: false,
            heard: Some(
                [(1, 12), (2, 1_040)]
                    .into_iter()
                    .map(|(id, age_ms)| HeardVoter { id, age_ms })
                    .collect(),
            ),
        }
    }

    fn write(dir: &TempDir, s: &StateSnapshot<&str>) -> PathBuf {
        let path = dir.path().join("state.json");
        StateFileWriter::new(path.clone()).write(s).unwrap();
        path
    }

    /// A pid that existed and is now reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn fresh_leader() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let path = write(&dir, &leading(std::process::id()));
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, false, NOW);
        assert_eq!(code, StatusExit::Fresh);
        assert_eq!(
            out,
            format!(
                "node 3: LEADING epoch 4 leader 3 round 2 zxid 0 (pid {}, updated 120 ms ago, \
                 lease valid for 180 ms); heard 1 (12 ms), 2 (1 s) as of the update",
                std::process::id()
            )
        );
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, true, NOW);
        assert_eq!(code, StatusExit::Fresh);
        assert!(
            out.ends_with(",\"stale\":false,\"stale_reason\":null}"),
            "{out}"
        );
        assert!(
            out.contains(",\"heard\":[1,2],\"heard_age_ms\":{\"1\":12,\"2\":1040},"),
            "{out}"
        );
        let back = parse_state_json(&out).unwrap();
        assert_eq!(back.id, 3);
        assert_eq!(back.heard, leading(1).heard);
        assert!(!out.contains('\n'));
    }

    #[test]
    fn expired_lease_is_stale() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let mut s = leading(std::process::id());
        s.valid_until_unix_ms = Some(NOW - 5_000);
        s.duplicate_id = true;
        s.last_election_ms = Some(12.345);
        let path = write(&dir, &s);
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, false, NOW);
        assert_eq!(code, StatusExit::Stale);
        assert!(out.ends_with(" STALE (lease expired 5 s ago)"), "{out}");
        assert!(!out.contains("lease valid"), "{out}");
        assert!(out.contains("DUPLICATE ID"), "{out}");
        assert!(out.contains("last election took 12.3 ms"), "{out}");
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, true, NOW);
        assert_eq!(code, StatusExit::Stale);
        assert!(
            out.ends_with(",\"stale\":true,\"stale_reason\":\"lease expired 5 s ago\"}"),
            "{out}"
        );
    }

    #[test]
    fn dead_pid_is_stale() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let pid = dead_pid();
        assert_eq!(pid_is_alive(pid), Some(false));
        let path = write(&dir, &leading(pid));
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, false, NOW);
        assert_eq!(code, StatusExit::Stale);
        assert!(
            out.ends_with(&format!(" STALE (process {pid} is gone)")),
            "{out}"
        );
    }

    #[test]
    fn zombie_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let started = Instant::now();
        // Not reaped yet: once it has exited it is a zombie.
        while pid_is_alive(pid) != Some(false) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never became a zombie"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait().unwrap();
        assert_eq!(pid_is_alive(std::process::id()), Some(true));
        assert_eq!(pid_is_alive(0), Some(false));
    }

    #[test]
    fn looking_without_updates_is_stale() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let s = StateSnapshot {
            state: "LOOKING",
            leader: None,
            epoch: None,
            valid_until_unix_ms: None,
            updated_unix_ms: NOW - 11_000,
            ..leading(std::process::id())
        };
        let path = write(&dir, &s);
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, false, NOW);
        assert_eq!(code, StatusExit::Stale, "{out}");
        assert!(
            out.starts_with("node 3: LOOKING round 2 zxid 0 (pid"),
            "{out}"
        );
        assert!(
            out.contains("STALE (no update for 11 s while LOOKING)"),
            "{out}"
        );
        let code = run_status(&path, false, NOW - 2_000).exit;
        assert_eq!(code, StatusExit::Fresh);
    }

    #[test]
    fn the_voters_heard_are_described_as_of_the_update() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let lonely = StateSnapshot {
            heard: Some(Default::default()),
            ..leading(std::process::id())
        };
        let out = run_status(&write(&dir, &lonely), false, NOW).text;
        assert!(
            out.ends_with("; heard no other voter as of the update"),
            "{out}"
        );
        let json = run_status(&write(&dir, &lonely), true, NOW).text;
        assert!(json.contains("\"heard\":[],\"heard_age_ms\":{}"), "{json}");
        // A file of an older daemon says nothing about it, and neither does status.
        let old = StateSnapshot {
            heard: None,
            duplicate_id: true,
            ..leading(std::process::id())
        };
        let out = run_status(&write(&dir, &old), false, NOW).text;
        assert!(!out.contains("heard"), "{out}");
        assert!(
            out.ends_with("ms) DUPLICATE ID (another node also uses id 3)"),
            "{out}"
        );
    }

    #[test]
    fn malformed_or_missing_file() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{\"id\":3,\"state\":\"LEADING\",\"round\":\"x\"}").unwrap();
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, false, NOW);
        assert_eq!(code, StatusExit::Unreadable);
        assert!(out.contains(&path.display().to_string()), "{out}");
        assert!(out.contains("key \"round\""), "{out}");
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&path, true, NOW);
        assert_eq!(code, StatusExit::Unreadable);
        assert!(out.starts_with("{\"error\":\"state file "), "{out}");
        let missing = dir.path().join("none.json");
        let StatusReport {
            text: out,
            exit: code,
        } = run_status(&missing, false, NOW);
        assert_eq!(code, StatusExit::Unreadable);
        assert!(
            out.contains("none.json") && out.contains("cannot read"),
            "{out}"
        );
    }

    /// The wall clock at `unix_ms`, CLOCK_BOOTTIME at `boot_ms`.
    fn at(unix_ms: u64, boot_ms: Option<u64>) -> StatusClocks {
        StatusClocks {
            unix_ms,
            boottime_ms: boot_ms,
        }
    }

    /// A leader wrote its file (lease 300 ms ahead), then hung; meanwhile the wall clock
    /// stepped back an hour. By the wall clock alone its lease looks valid for 59 more
    /// minutes; it ran out long ago.
    #[test]
    fn a_wall_clock_stepped_back_never_makes_a_lease_look_valid() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let hour = 3_600_000;
        let old_format = StateSnapshot {
            updated_unix_ms: NOW,
            valid_until_unix_ms: Some(NOW + 300),
            ..leading(std::process::id())
        };
        let path = write(&dir, &old_format);
        // 1 s later by the real time, but the wall clock now reads an hour earlier.
        let report = run_status_at(&path, false, at(NOW + 1_000 - hour, None));
        assert_eq!(report.exit, StatusExit::Stale, "{}", report.text);
        assert!(
            report.text.contains("STALE (updated 59 min in the future)"),
            "{}",
            report.text
        );
        assert!(!report.text.contains("lease valid"), "{}", report.text);
        // With CLOCK_BOOTTIME in the file, the lease is judged by that clock alone.
        let boot = 7_000_000;
        let new_format = StateSnapshot {
            updated_boottime_ms: Some(boot),
            valid_until_boottime_ms: Some(boot + 300),
            ..old_format
        };
        let path = write(&dir, &new_format);
        let report = run_status_at(&path, false, at(NOW + 1_000 - hour, Some(boot + 1_000)));
        assert_eq!(report.exit, StatusExit::Stale, "{}", report.text);
        assert!(
            report.text.contains("STALE (lease expired 700 ms ago)"),
            "{}",
            report.text
        );
        // Within the lease it is fresh, whatever the wall clock says.
        let report = run_status_at(&path, false, at(NOW - hour, Some(boot + 100)));
        assert_eq!(report.exit, StatusExit::Fresh, "{}", report.text);
        assert!(
            report.text.contains("lease valid for 200 ms"),
            "{}",
            report.text
        );
        // Stepped forward: the wall clock says the lease ran out; boottime says it runs.
        let report = run_status_at(&path, false, at(NOW + hour, Some(boot + 100)));
        assert_eq!(report.exit, StatusExit::Fresh, "{}", report.text);
    }

    #[test]
    fn a_file_from_before_a_reboot_is_stale() {
        let dir = TempDir::new("votecast-status-test").unwrap();
        let s = StateSnapshot {
            updated_boottime_ms: Some(9_000_000),
            valid_until_boottime_ms: Some(9_000_300),
            ..leading(std::process::id())
        };
        let path = write(&dir, &s);
        // Booted 60 s ago; the wall-clock fields alone would say the lease is valid.
        let report = run_status_at(&path, false, at(NOW, Some(60_000)));
        assert_eq!(report.exit, StatusExit::Stale, "{}", report.text);
        assert!(report.text.contains("in the future"), "{}", report.text);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_ms(0), "0 ms");
        assert_eq!(human_ms(999), "999 ms");
        assert_eq!(human_ms(5_400), "5 s");
        assert_eq!(human_ms(180_000), "3 min");
        assert_eq!(human_ms(7_200_000), "2 h");
    }
}
