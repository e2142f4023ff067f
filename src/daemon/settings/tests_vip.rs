//! `--vip`, `--vip-announce-count`, `--vip-announce-interval` and `release-vip`: parsing,
//! defaults, and errors that name the flag or key.

use std::ffi::OsString;
use std::time::Duration;

use super::*;
use crate::cluster::TempDir;
use crate::daemon::cli::{parse_command_line, Command};

const BASE: &[&str] = &[
    "run",
    "--id",
    "1",
    "--voters",
    "1,2,3",
    "--interface",
    "eth0",
];

fn parse(args: &[&str]) -> Result<Command, UsageError> {
    let all = ["votecast"].iter().chain(args).map(OsString::from);
    parse_command_line(all)
}

fn run(extra: &[&str]) -> Result<RunSettings, UsageError> {
    let args: Vec<&str> = BASE.iter().chain(extra).copied().collect();
    match parse(&args)? {
        Command::Run(s) => Ok(s),
        other => panic!("expected run, got {other:?}"),
    }
}

fn err(args: &[&str]) -> String {
    let e = parse(args).expect_err("an error");
    assert!(!e.is_help);
    e.message
}

fn vips(texts: &[&str]) -> Vec<VipAddr> {
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

fn config(text: &str) -> (TempDir, String) {
    let dir = TempDir::new("votecast-vip-config-test").unwrap();
    let path = dir.path().join("votecast.toml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn vip_flags_repeat_and_have_defaults() {
    let s = run(&[]).unwrap();
    assert_eq!(s.vip, VipSettings::default());
    assert!(s.vip.addrs.is_empty());
    assert_eq!(s.vip.announce_count, 3);
    assert_eq!(s.vip.announce_interval, Duration::from_millis(100));
    let s = run(&[
        "--vip",
        "192.168.1.10/24",
        "--vip",
        "fd00::10/64",
        "--vip-announce-count",
        "5",
        "--vip-announce-interval",
        "20ms",
    ])
    .unwrap();
    assert_eq!(s.vip.addrs, vips(&["192.168.1.10/24", "fd00::10/64"]));
    assert_eq!(s.vip.announce_count, 5);
    assert_eq!(s.vip.announce_interval, Duration::from_millis(20));
}

#[test]
fn vip_keys_in_the_config_file_and_flags_override_them() {
    let (_dir, path) = config(
        "id = 1\nvoters = [1, 2, 3]\ninterface = \"eth0\"\nvip = [\"10.0.0.5/24\", \"fd00::5/64\"]\n\
         vip-announce-count = 0\nvip-announce-interval = \"1s\"\n",
    );
    let s = match parse(&["run", "--config", &path]).unwrap() {
        Command::Run(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.vip.addrs, vips(&["10.0.0.5/24", "fd00::5/64"]));
    assert_eq!(s.vip.announce_count, 0);
    assert_eq!(s.vip.announce_interval, Duration::from_secs(1));
    let s = match parse(&["run", "--config", &path, "--vip", "10.0.0.6/32"]).unwrap() {
        Command::Run(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.vip.addrs, vips(&["10.0.0.6/32"]));
    // One string is one address.
    let (_dir, path) = config("id = 1\nvoters = [1]\ninterface = \"eth0\"\nvip = \"10.0.0.7/8\"\n");
    let s = match parse(&["run", "--config", &path]).unwrap() {
        Command::Run(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.vip.addrs, vips(&["10.0.0.7/8"]));
}

#[test]
fn bad_vip_values_name_the_flag_or_key() {
    let mut base: Vec<&str> = BASE.to_vec();
    base.extend(["--vip", "10.0.0.1"]);
    let msg = err(&base);
    assert!(
        msg.contains("--vip:") && msg.contains("prefix length"),
        "{msg}"
    );
    let mut base: Vec<&str> = BASE.to_vec();
    base.extend(["--vip", "10.0.0.1/24", "--vip", "10.0.0.1/32"]);
    let msg = err(&base);
    assert!(
        msg.contains("--vip:") && msg.contains("given twice"),
        "{msg}"
    );
    for (flag, value, want) in [
        ("--vip-announce-count", "21", "0 to 20"),
        ("--vip-announce-count", "x", "0 to 20"),
        ("--vip-announce-interval", "0ms", "1ms to 10s"),
        ("--vip-announce-interval", "11s", "1ms to 10s"),
    ] {
        let mut args: Vec<&str> = BASE.to_vec();
        args.extend([flag, value]);
        let msg = err(&args);
        assert!(
            msg.contains(&format!("{flag}:")) && msg.contains(want),
            "{msg}"
        );
    }
    let (_dir, path) =
        config("id = 1\nvoters = [1]\ninterface = \"eth0\"\nvip = [\"224.0.0.1/32\"]\n");
    let msg = err(&["run", "--config", &path]);
    assert!(
        msg.contains("config key \"vip\"") && msg.contains("multicast"),
        "{msg}"
    );
    let (_dir, path) = config("id = 1\nvoters = [1]\ninterface = \"eth0\"\nvip = [1]\n");
    let msg = err(&["run", "--config", &path]);
    assert!(
        msg.contains("config key \"vip\"") && msg.contains("not a string"),
        "{msg}"
    );
    let many: Vec<String> = (1..=17).map(|k| format!("--vip=10.0.0.{k}/24")).collect();
    let mut args: Vec<&str> = BASE.to_vec();
    args.extend(many.iter().map(String::as_str));
    let msg = err(&args);
    assert!(
        msg.contains("--vip:") && msg.contains("at most 16"),
        "{msg}"
    );
}

#[test]
fn release_vip_takes_the_run_config_or_flags() {
    let (_dir, path) = config(
        "id = 1\nvoters = [1, 2, 3]\ninterface = \"lan0\"\nvip = [\"10.0.0.5/24\"]\ntick = \"50ms\"\n",
    );
    assert_eq!(
        parse(&["release-vip", "--config", &path]).unwrap(),
        Command::ReleaseVip {
            interface: "lan0".into(),
            vips: vips(&["10.0.0.5/24"]),
        }
    );
    assert_eq!(
        parse(&["release-vip", "--interface", "eth1", "--vip", "fd00::1/64"]).unwrap(),
        Command::ReleaseVip {
            interface: "eth1".into(),
            vips: vips(&["fd00::1/64"]),
        }
    );
    let msg = err(&["release-vip", "--vip", "10.0.0.5/24"]);
    assert!(msg.contains("--interface"), "{msg}");
    let msg = err(&["release-vip", "--interface", "eth0"]);
    assert!(msg.contains("--vip"), "{msg}");
    let msg = err(&["release-vip", "--interface", "eth0", "--vip", "10.0.0.5"]);
    assert!(msg.contains("--vip:"), "{msg}");
    let (_dir, path) = config("interface = \"lan0\"\nvipp = []\n");
    let msg = err(&["release-vip", "--config", &path]);
    assert!(msg.contains("\"vipp\""), "{msg}");
}
