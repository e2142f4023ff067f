//! Bad input at the command line, end to end: the real binary, every
//! `run` flag and every config-file key with a bad value, every flag given twice or without
//! its value, and the other subcommands' misuse. Each must exit with status 2, name the
//! flag or key on stderr, print nothing on stdout, never panic and never start a node.
//!
//! The list of `run` flags is read from `votecast run --help`, so a new flag without a case
//! here fails the test. Nothing here opens a socket: every command is refused while its
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
trait ScratchFiles {
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

fn scratch(name: &str) -> TempDir {
    TempDir::new(&format!("votecast-{name}")).expect("scratch dir")
}

#[derive(Debug)]
struct Exit {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run the binary to completion (killed by PID after 10 s) in `dir`.
fn run(args: &[String], dir: &Path) -> Exit {
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
fn expect_usage_error(what: &str, args: &[String], named: &str, dir: &Path) {
    let done = run(args, dir);
    assert_eq!(done.code, Some(2), "{what}: {args:?}: {done:?}");
    assert!(
        done.stderr.contains(named),
        "{what}: stderr must name {named:?}: {done:?}"
    );
    assert!(done.stdout.is_empty(), "{what}: stdout: {done:?}");
    assert!(!done.stderr.contains("panicked"), "{what}: {done:?}");
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// The required settings, as flag pairs and as TOML lines.
const REQUIRED: [(&str, &str, &str); 3] = [
    ("id", "1", "1"),
    ("voters", "1,2,3", "[1, 2, 3]"),
    ("interface", "lo", "\"lo\""),
];

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
fn bad_values(s: &TempDir) -> Vec<(&'static str, String, String)> {
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
        ("cluster", "4294967296", "-1"),
        ("zxid", "-5", "\"x\""),
        ("zxid-file", "", "[1]"),
        ("data-dir", "", "5"),
        ("state-file", "", "false"),
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
        args.extend([flag.clone(), value.clone()]);
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
