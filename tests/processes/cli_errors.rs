//! Bad input at the command line, end to end: the real binary, every
//! `run` flag and every config-file key with a bad value, every flag given twice or without
//! its value, and the other subcommands' misuse. Each must exit with status 2, name the
//! flag or key on stderr, print nothing on stdout, never panic and never start a node.
//! Input files that are not small regular files (a FIFO, /dev/zero, 100 MB), a state file
//! inside the data dir, unbounded durations and an unreadable zxid file are refused the
//! same way; an unwritable stdout or stderr never changes the exit status, and a stderr
//! pipe nobody reads does not stall a running node.
//!
//! The list of `run` flags is read from `votecast run --help`, so a new flag without a case
//! here fails the test. Nothing here but the stderr-pipe test opens a socket (on `lo`):
//! every other command is refused while its
//! configuration is checked (a command that wrongly starts a node is killed after 10 s and
//! fails the test; it would only ever use `lo`).

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use votecast::cluster::TempDir;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// Files in a test's scratch directory (a `TempDir`: removed on drop).
pub(super) trait ScratchFiles {
    /// Write `name` with `text` and permissions `mode`; its path.
    fn file(&self, name: &str, text: &str, mode: u32) -> String;
    /// The path of `name` in the directory (not created).
    fn file_path(&self, name: &str) -> String;
}

impl ScratchFiles for TempDir {
    fn file(&self, name: &str, text: &str, mode: u32) -> String {
        let path = self.path().join(name);
        fs::write(&path, text).expect("write scratch file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path.display().to_string()
    }

    fn file_path(&self, name: &str) -> String {
        self.path().join(name).display().to_string()
    }
}

pub(super) fn scratch(name: &str) -> TempDir {
    TempDir::new(&format!("votecast-{name}")).expect("scratch dir")
}

#[derive(Debug)]
pub(super) struct Exit {
    pub(super) code: Option<i32>,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

/// Run the binary to completion (killed by PID after 10 s) in `dir`.
pub(super) fn run(args: &[String], dir: &Path) -> Exit {
    let mut child = Command::new(EXE)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn votecast");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .ok();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .ok();
    Exit {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr,
    }
}

/// `what` must exit 2 with `named` on stderr, nothing on stdout and no panic.
pub(super) fn expect_usage_error(what: &str, args: &[String], named: &str, dir: &Path) {
    let done = run(args, dir);
    assert_eq!(done.code, Some(2), "{what}: {args:?}: {done:?}");
    assert!(
        done.stderr.contains(named),
        "{what}: stderr must name {named:?}: {done:?}"
    );
    assert!(done.stdout.is_empty(), "{what}: stdout: {done:?}");
    assert!(!done.stderr.contains("panicked"), "{what}: {done:?}");
}

pub(super) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The required settings, as flag pairs and as TOML lines.
pub(super) const REQUIRED: [(&str, &str, &str); 3] = [
    ("id", "1", "1"),
    ("voters", "1,2,3", "[1, 2, 3]"),
    ("interface", "lo", "\"lo\""),
];

/// `run` flags that may be given more than once (each adds a value).
const REPEATABLE: [&str; 1] = ["--track"];
/// `run` flags without a value (a switch); `--flag=VALUE` is their bad value.
pub(super) const SWITCHES: [&str; 1] = ["--track-interface"];

/// Every `--flag` that `votecast run --help` lists (but --help and --version).
fn run_flags(dir: &Path) -> Vec<String> {
    let help = run(&strings(&["run", "--help"]), dir);
    assert_eq!(help.code, Some(0), "{help:?}");
    let mut flags: Vec<String> = help
        .stdout
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("--"))
        .map(|word| {
            word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .filter(|flag| !flag.is_empty() && flag != "help" && flag != "version")
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

/// `run` flags and config keys: (key, a bad flag value, a bad TOML value). (A data dir
/// that cannot be created is a runtime failure, exit 1, like a corrupt one.)
pub(super) fn bad_values(s: &TempDir) -> Vec<(&'static str, String, String)> {
    let weak_key = s.file("weak.key", &format!("1 {}\n", "00".repeat(32)), 0o600);
    let open_key = s.file(
        "world-readable.key",
        "1 8a61f1ef06d1d4a3f5c2e4b9907d3c1a5be2f7d84c6a09e1d3b5f7a9c2e4068b\n",
        0o644,
    );
    let missing = s.file_path("no/such/dir/file");
    let bad_toml = s.file("bad-syntax.toml", "id = = 1\n", 0o644);
    let missing_toml = format!("{missing:?}");
    let cases: Vec<(&'static str, &str, &str)> = vec![
        ("id", "abc", "\"abc\""),
        ("voters", "1,x", "[1, \"x\"]"),
        ("interface", "", "3"),
        ("group", "10.0.0.1:7277", "\"239.1.1.1\""),
        ("peers", "239.1.2.3", "[\"10.0.0.1\", \"10.0.0.1:7300\"]"),
        ("peers", "10.0.0.1:0", "\"host.lan\""),
        ("cluster", "4294967296", "-1"),
        ("zxid", "-5", "\"x\""),
        ("zxid-file", "", "[1]"),
        ("data-dir", "", "5"),
        ("state-file", "", "false"),
        ("metrics-file", "", "1"),
        ("on-change", " ", "\"\""),
        ("hook-timeout", "0s", "\"10\""),
        ("tick", "50", "5"),
        ("sync-limit", "1", "\"abc\""),
        ("init-limit", "x", "1.0"),
        ("finalize-wait", "2s", "\"0ms\""),
        ("max-notification-interval", "61s", "2"),
        ("key-file", &weak_key, "7"),
        ("key-file", &open_key, &missing_toml),
        ("config", &missing, ""),
        ("config", &bad_toml, ""),
        ("track", " ", "[\"true\", 1]"),
        ("track-interface", "yes", "\"yes\""),
        ("track-interval", "5", "5"),
        ("track-timeout", "x", "\"0s\""),
        ("track-fall", "0", "0"),
        ("track-rise", "-1", "\"x\""),
        ("vip", "10.0.0.1", "[\"224.0.0.1/32\"]"),
        ("vip-announce-count", "21", "-1"),
        ("vip-announce-interval", "0ms", "\"11s\""),
    ];
    cases
        .into_iter()
        .map(|(key, flag, toml)| (key, flag.to_string(), toml.to_string()))
        .collect()
}

#[test]
fn every_run_flag_with_a_bad_value_exits_2_naming_the_flag() {
    let s = scratch("cli-flags");
    let cases = bad_values(&s);
    let flags = run_flags(s.path());
    assert!(
        flags.len() >= 17,
        "run --help lists too few flags: {flags:?}"
    );
    for flag in &flags {
        assert!(
            cases.iter().any(|(key, _, _)| key == flag),
            "--{flag} (from run --help) has no bad-value case"
        );
    }
    for (key, value, _) in &cases {
        let flag = format!("--{key}");
        let mut args = strings(&["run"]);
        for (k, v, _) in REQUIRED {
            if k != *key {
                args.extend(strings(&[&format!("--{k}"), v]));
            }
        }
        if SWITCHES.contains(&flag.as_str()) {
            args.push(format!("{flag}={value}"));
        } else {
            args.extend([flag.clone(), value.clone()]);
        }
        expect_usage_error(&format!("{flag} {value:?}"), &args, &flag, s.path());
    }
}

#[test]
fn every_config_key_with_a_bad_value_exits_2_naming_the_key() {
    let s = scratch("cli-keys");
    let cases = bad_values(&s);
    let mut checked = 0;
    for (n, (key, _, toml_value)) in cases.iter().enumerate() {
        if *key == "config" {
            continue; // not a key of the file itself
        }
        let mut text = String::new();
        for (k, _, v) in REQUIRED {
            if k != *key {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        text.push_str(&format!("{key} = {toml_value}\n"));
        let file = s.file(&format!("case-{n}.toml"), &text, 0o644);
        let args = strings(&["run", "--config", &file]);
        let named = format!("config key \"{key}\"");
        expect_usage_error(&format!("{key} = {toml_value}"), &args, &named, s.path());
        checked += 1;
    }
    // An unknown key (a typo) is an error too, not a silent default.
    let file = s.file(
        "typo.toml",
        "id = 1\nvoters = [1, 2, 3]\ninterface = \"lo\"\nsync_limit = 3\n",
        0o644,
    );
    expect_usage_error(
        "unknown key",
        &strings(&["run", "--config", &file]),
        "sync_limit",
        s.path(),
    );
    assert!(checked >= 17, "only {checked} keys checked");
}

#[test]
fn every_run_flag_given_twice_or_without_a_value_exits_2_naming_it() {
    let s = scratch("cli-twice");
    for flag in run_flags(s.path()) {
        let flag = format!("--{flag}");
        if REPEATABLE.contains(&flag.as_str()) {
            // Twice is allowed; without a value it is an error.
            let mut args = strings(&["run", "--id", "1", "--voters", "1,2,3"]);
            args.extend(strings(&["--interface", "lo", &flag]));
            expect_usage_error(&format!("{flag} without a value"), &args, &flag, s.path());
            continue;
        }
        if SWITCHES.contains(&flag.as_str()) {
            // Without a value is its normal use; twice is an error.
            let mut args = strings(&["run", "--id", "1", "--voters", "1,2,3"]);
            args.extend(strings(&["--interface", "lo", &flag, &flag]));
            expect_usage_error(&format!("{flag} twice"), &args, &flag, s.path());
            continue;
        }
        let mut args = strings(&["run", "--id", "1", "--voters", "1,2,3"]);
        args.extend([flag.clone(), "1".into(), flag.clone(), "2".into()]);
        args.extend(strings(&["--interface", "lo"]));
        let what = format!("{flag} twice");
        if flag == "--id" || flag == "--voters" {
            args = strings(&["run", "--interface", "lo", "--voters", "1,2,3"]);
            args.extend([flag.clone(), "1".into(), flag.clone(), "2".into()]);
        }
        expect_usage_error(&what, &args, &flag, s.path());

        let mut args = strings(&["run", "--id", "1", "--voters", "1,2,3", "--interface", "lo"]);
        args.push(flag.clone());
        expect_usage_error(&format!("{flag} without a value"), &args, &flag, s.path());
    }
}

#[test]
fn other_misuse_exits_2_and_says_what_is_wrong() {
    let s = scratch("cli-other");
    let missing = s.file_path("missing.json");
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("no subcommand", vec![], "Usage"),
        ("unknown subcommand", strings(&["frobnicate"]), "frobnicate"),
        (
            "unknown flag",
            strings(&[
                "run",
                "--id",
                "1",
                "--voters",
                "1",
                "--interface",
                "lo",
                "--tik",
                "5ms",
            ]),
            "--tik",
        ),
        (
            "missing --id",
            strings(&["run", "--voters", "1", "--interface", "lo"]),
            "--id",
        ),
        (
            "missing --voters",
            strings(&["run", "--id", "1", "--interface", "lo"]),
            "--voters",
        ),
        (
            "missing --interface",
            strings(&["run", "--id", "1", "--voters", "1"]),
            "--interface",
        ),
        (
            "--zxid with --zxid-file",
            strings(&[
                "run",
                "--id",
                "1",
                "--voters",
                "1",
                "--interface",
                "lo",
                "--zxid",
                "1",
                "--zxid-file",
                "/tmp/z",
            ]),
            "--zxid-file",
        ),
        (
            "--peers of another family than --group",
            strings(&[
                "run",
                "--id",
                "1",
                "--voters",
                "1",
                "--interface",
                "lo",
                "--group",
                "[ff02::1:77]:7277",
                "--peers",
                "127.0.0.1",
            ]),
            "--peers: 127.0.0.1 is IPv4",
        ),
        (
            "--peers with a duplicate",
            strings(&[
                "run",
                "--id",
                "1",
                "--voters",
                "1",
                "--interface",
                "lo",
                "--peers",
                "127.0.0.2,127.0.0.3,127.0.0.2:7300",
            ]),
            "--peers: 127.0.0.2 is listed more than once",
        ),
        (
            "--peers empty",
            strings(&[
                "run",
                "--id",
                "1",
                "--voters",
                "1",
                "--interface",
                "lo",
                "--peers",
                "",
            ]),
            "--peers: the list of peers is empty",
        ),
        (
            "status without --state-file",
            strings(&["status"]),
            "--state-file",
        ),
        (
            "status of a missing state file",
            strings(&["status", "--state-file", &missing]),
            &missing,
        ),
        (
            "demo --nodes 0",
            strings(&["demo", "--nodes", "0"]),
            "--nodes",
        ),
        (
            "demo --nodes x",
            strings(&["demo", "--nodes", "x"]),
            "--nodes",
        ),
        (
            "bench --nodes 2",
            strings(&["bench", "--nodes", "2"]),
            "--nodes",
        ),
        (
            "bench --reps 0",
            strings(&["bench", "--reps", "0"]),
            "--reps",
        ),
        (
            "bench --poll 5ms",
            strings(&["bench", "--poll", "5ms"]),
            "--poll",
        ),
        (
            "bench --window 0s",
            strings(&["bench", "--window", "0s"]),
            "--window",
        ),
    ];
    for (what, args, named) in cases {
        expect_usage_error(what, &args, named, s.path());
    }
    // With --json, the error is one JSON object on stdout for the machine reading it.
    let json = run(
        &strings(&["status", "--state-file", &missing, "--json"]),
        s.path(),
    );
    assert_eq!(json.code, Some(2), "{json:?}");
    assert!(json.stdout.starts_with("{\"error\":"), "{json:?}");
}

/// A FIFO at `path` (made with mkfifo(1)).
fn mkfifo(path: &str) {
    let made = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(made.success(), "mkfifo {path}");
}

/// `--config` and `--key-file` must be regular files of bounded size: a FIFO would block
/// start-up until some writer appears, a device such as /dev/zero never ends. Each is
/// refused at once with status 2 naming the flag.
#[test]
fn fifos_devices_and_directories_as_input_files_exit_2_at_once() {
    let s = scratch("cli-special");
    let fifo = s.file_path("fifo");
    mkfifo(&fifo);
    let dir = s.path().display().to_string();
    let base = ["run", "--id", "1", "--voters", "1,2,3", "--interface", "lo"];
    for (flag, path) in [
        ("--config", &fifo),
        ("--key-file", &fifo),
        ("--zxid-file", &fifo),
        ("--config", &"/dev/zero".to_string()),
        ("--key-file", &"/dev/zero".to_string()),
        ("--zxid-file", &"/dev/zero".to_string()),
        ("--config", &dir),
        ("--key-file", &dir),
    ] {
        let mut args = strings(&base);
        args.extend([flag.to_string(), path.clone()]);
        let started = Instant::now();
        expect_usage_error(&format!("{flag} {path}"), &args, flag, s.path());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{flag} {path}: took {:?}",
            started.elapsed()
        );
        let done = run(&args, s.path());
        assert!(done.stderr.contains("not a regular file"), "{done:?}");
    }
}

/// A huge config file (here 100 MB on one line) is refused by its size, and no error
/// message quotes megabytes of it back.
#[test]
fn a_100_mb_one_line_config_gives_a_short_error() {
    let s = scratch("cli-huge");
    let path = s.path().join("huge.toml");
    // Not valid TOML: a parser's error message quotes the offending line.
    let mut text = String::with_capacity(100 << 20);
    text.push_str("id = ");
    text.extend(std::iter::repeat_n('1', (100 << 20) - 8));
    text.push_str(" x\n");
    fs::write(&path, text).expect("write 100 MB");
    let args = strings(&["run", "--config", &path.display().to_string()]);
    let done = run(&args, s.path());
    assert_eq!(
        done.code,
        Some(2),
        "{:?}",
        &done.stderr[..done.stderr.len().min(500)]
    );
    assert!(
        done.stderr.len() < 1000,
        "{} bytes on stderr",
        done.stderr.len()
    );
    assert!(done.stderr.contains("--config"), "{done:?}");
    assert!(done.stderr.contains("larger than 65536 bytes"), "{done:?}");

    // Below the size limit, a long value is quoted only in part.
    let long = s.file(
        "long.toml",
        &format!(
            "voters = [1, 2, 3]\ninterface = \"lo\"\nid = \"{}\"\n",
            "7".repeat(60_000)
        ),
        0o644,
    );
    let done = run(&strings(&["run", "--config", &long]), s.path());
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(
        done.stderr.len() < 1000,
        "{} bytes on stderr",
        done.stderr.len()
    );
    assert!(done.stderr.contains("config key \"id\""), "{done:?}");
}

/// The data dir holds the node's epochs: a state file inside it (which the daemon
/// rewrites all the time) could replace them, so it is refused, also through `..` or a
/// symbolic link.
#[test]
fn a_state_file_inside_the_data_dir_exits_2() {
    let s = scratch("cli-state-in-data");
    let data = s.file_path("data");
    fs::create_dir(&data).expect("data dir");
    let link = s.file_path("link");
    std::os::unix::fs::symlink(&data, &link).expect("symlink");
    let base = ["run", "--id", "1", "--voters", "1,2,3", "--interface", "lo"];
    for state in [
        format!("{data}/epochs"),
        format!("{data}/../data/incarnation"),
        format!("{link}/state.json"),
    ] {
        let mut args = strings(&base);
        args.extend(strings(&["--data-dir", &data, "--state-file", &state]));
        expect_usage_error(&state, &args, "--state-file", s.path());
    }
    let cfg = s.file(
        "state-in-data.toml",
        &format!(
            "id = 1\nvoters = [1, 2, 3]\ninterface = \"lo\"\ndata-dir = {data:?}\n\
             state-file = \"{data}/epochs\"\n"
        ),
        0o644,
    );
    let args = strings(&["run", "--config", &cfg]);
    expect_usage_error("key", &args, "config key \"state-file\"", s.path());
    // The metrics file likewise, and never on the state file.
    let mut args = strings(&base);
    let epochs = format!("{link}/epochs");
    args.extend(strings(&["--data-dir", &data, "--metrics-file", &epochs]));
    expect_usage_error("metrics in data", &args, "--metrics-file", s.path());
    let mut args = strings(&base);
    let state = s.file_path("state.json");
    args.extend(strings(&["--state-file", &state, "--metrics-file", &state]));
    expect_usage_error("metrics on state", &args, "--metrics-file", s.path());
}

/// Every duration has an upper bound checked at start-up: a huge value (which once
/// aborted the daemon at its first state change) is exit 2 naming the flag.
#[test]
fn huge_durations_exit_2_naming_the_flag() {
    let s = scratch("cli-huge-durations");
    for flag in [
        "--hook-timeout",
        "--tick",
        "--finalize-wait",
        "--max-notification-interval",
    ] {
        let mut args = strings(&["run", "--id", "1", "--voters", "1,2,3", "--interface", "lo"]);
        args.extend(strings(&[flag, "18446744073709551615s"]));
        expect_usage_error(flag, &args, flag, s.path());
        let done = run(&args, s.path());
        assert!(
            done.stderr.contains("at most") || done.stderr.contains("less than"),
            "{flag}: {done:?}"
        );
    }
}

/// A node must not vote with a zxid it could not read: a zxid file that is missing,
/// malformed or not a regular file at start is exit 2 naming the flag or key.
#[test]
fn an_unreadable_zxid_file_at_start_exits_2() {
    let s = scratch("cli-zxid");
    let missing = s.file_path("missing");
    let malformed = s.file("malformed", "12 apples\n", 0o644);
    let base = ["run", "--id", "1", "--voters", "1,2,3", "--interface", "lo"];
    for (path, why) in [
        (&missing, "cannot read"),
        (&malformed, "not a zxid"),
        (&"/dev/null".to_string(), "not a regular file"),
    ] {
        let mut args = strings(&base);
        args.extend(strings(&["--zxid-file", path]));
        expect_usage_error(path, &args, "--zxid-file", s.path());
        assert!(run(&args, s.path()).stderr.contains(why), "{path}");
        let cfg = s.file(
            "zxid.toml",
            &format!("id = 1\nvoters = [1, 2, 3]\ninterface = \"lo\"\nzxid-file = {path:?}\n"),
            0o644,
        );
        let args = strings(&["run", "--config", &cfg]);
        expect_usage_error(path, &args, "config key \"zxid-file\"", s.path());
    }
}

/// The exit status says what happened even when stdout or stderr cannot be written
/// (/dev/full: every write fails, like a closed pipe): never a panic (101, or 134 once
/// panics abort in a release build).
#[test]
fn unwritable_stdout_or_stderr_never_changes_the_exit_status() {
    let s = scratch("cli-unwritable");
    let missing = s.file_path("missing.json");
    let not_a_dir = s.file("plain", "not a directory\n", 0o644);
    let full = || {
        Stdio::from(
            fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .expect("/dev/full"),
        )
    };
    let cases: Vec<(&str, Vec<String>, bool, i32)> = vec![
        ("help to a full stdout", strings(&["--help"]), true, 0),
        (
            "run --help to a full stdout",
            strings(&["run", "--help"]),
            true,
            0,
        ),
        (
            "status --json to a full stdout",
            strings(&["status", "--state-file", &missing, "--json"]),
            true,
            2,
        ),
        ("usage error to a full stderr", strings(&["run"]), false, 2),
        (
            // A real 3-node cluster on lo, its report lost: the demo still succeeds.
            "demo to a full stdout",
            strings(&["demo", "--nodes", "3"]),
            true,
            0,
        ),
        (
            "status error to a full stderr",
            strings(&["status", "--state-file", &missing]),
            false,
            2,
        ),
        (
            // A runtime failure (a data dir that is a file, before any socket is opened)
            // while the log and the error message cannot be written.
            "runtime failure with a full stderr",
            strings(&[
                "run",
                "--id",
                "1",
                "--voters",
                "1",
                "--interface",
                "lo",
                "--data-dir",
                &not_a_dir,
            ]),
            false,
            1,
        ),
    ];
    for (what, args, to_stdout, expected) in cases {
        let (stdout, stderr) = if to_stdout {
            (full(), Stdio::null())
        } else {
            (Stdio::null(), full())
        };
        let mut child = Command::new(EXE)
            .args(&args)
            .current_dir(s.path())
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn votecast");
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("{what}: still running after 10 s: {:?}", child.wait());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(status.code(), Some(expected), "{what}: {status:?}");
    }
}

/// A daemon whose stderr is a pipe that nobody reads keeps running: once the pipe is full
/// its log lines are dropped and counted instead of blocking the event loop, so SIGTERM
/// still stops it with status 0. The one test here that starts a node: on `lo`, with a
/// sender bound to 127.0.0.1 (TTL 1), killed after 10 s.
#[test]
fn a_stderr_pipe_nobody_reads_does_not_stall_the_daemon() {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::net::{Ipv4Addr, SocketAddrV4};

    let s = scratch("cli-full-pipe");
    let port = votecast::cluster::free_udp_port().expect("free port");
    let group = SocketAddrV4::new(Ipv4Addr::new(239, 192, 77, 79), port);
    let mut child = Command::new(EXE)
        .args(strings(&[
            "run",
            "--id",
            "1",
            "--voters",
            "1,2,3",
            "--interface",
            "lo",
        ]))
        .args(["--group".to_string(), group.to_string()])
        .current_dir(s.path())
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn votecast");
    let _never_read = child.stderr.take();
    let sender = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    sender
        .bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)))
        .expect("bind");
    sender
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .expect("if");
    sender.set_multicast_ttl_v4(1).expect("ttl");
    std::thread::sleep(Duration::from_millis(500));
    // Each short datagram is one debug line of about 100 bytes: 4,000 of them are several
    // times what a pipe holds (64 KiB).
    for _ in 0..40 {
        for _ in 0..100 {
            let _ = sender.send_to(b"not a frame", &SockAddr::from(group));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(200));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "SIGTERM must stop the daemon although its stderr is full: {status:?}"
    );
}
