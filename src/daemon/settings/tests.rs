//! The `run` settings end to end: command line and config file through
//! [`parse_command_line`] into [`RunSettings`].

use std::ffi::OsString;

use votecast_core::auth::KeySet;

use super::*;
use crate::cluster::TempDir;
use crate::daemon::cli::{parse_command_line, Command};

const BASE: &[&str] = &["--id", "1", "--voters", "1,2,3", "--interface", "eth0"];

fn parse(args: &[&str]) -> Result<Command, UsageError> {
    let mut all = vec![OsString::from("votecast")];
    all.extend(args.iter().map(OsString::from));
    parse_command_line(all)
}

fn run(args: &[&str]) -> Result<RunSettings, UsageError> {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    match parse(&all)? {
        Command::Run(s) => Ok(s),
        other => panic!("expected run, got {other:?}"),
    }
}

fn run_err(args: &[&str]) -> String {
    match run(args) {
        Ok(s) => panic!("expected an error for {args:?}, got {s:?}"),
        Err(e) => {
            assert!(!e.is_help);
            e.message
        }
    }
}

/// A config file in its own temporary directory, removed on drop.
struct TempConfig {
    _dir: TempDir,
    path: String,
}

impl TempConfig {
    fn new(text: &str) -> TempConfig {
        let dir = TempDir::new("votecast-config-test").unwrap();
        let path = dir.path().join("votecast.toml");
        std::fs::write(&path, text).unwrap();
        TempConfig {
            path: path.to_str().unwrap().to_string(),
            _dir: dir,
        }
    }

    fn arg(&self) -> &str {
        &self.path
    }
}

fn with_base(extra: &[&str]) -> Vec<String> {
    BASE.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn run_owned(args: &[String]) -> Result<RunSettings, UsageError> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&refs)
}

#[test]
fn defaults_are_the_cores() {
    let s = run(BASE).unwrap();
    assert_eq!(
        s,
        RunSettings {
            // Followers take turns answering (see `Config::sparse_answers`).
            election: Config {
                sparse_answers: true,
                ..Config::new(1, &[1, 2, 3]).unwrap()
            },
            interface: "eth0".into(),
            group: "239.192.77.77:7277".parse().unwrap(),
            peers: None,
            zxid: ZxidSource::Fixed(0),
            data_dir: None,
            state_file: None,
            metrics_file: None,
            on_change: None,
            hook_timeout: Duration::from_secs(10),
            key_file: None,
            track: track::TrackSettings::default(),
            vip: VipSettings::default(),
        }
    );
    let c = &s.election;
    assert_eq!(c.keys, KeySet::disabled());
    assert_eq!(c.min_notification_interval, c.finalize_wait);
    assert!(!s.is_observer());
}

#[test]
fn all_flags() {
    let zxid = TempConfig::new("42\n");
    let s = run(&[
        "--id",
        "7",
        "--voters",
        "3, 1,2",
        "--interface",
        "br-lan",
        "--group",
        "[ff02::1:77]:7300",
        "--cluster",
        "9",
        "--zxid-file",
        zxid.arg(),
        "--data-dir",
        "/var/lib/votecast",
        "--state-file",
        "/run/votecast.json",
        "--on-change",
        "logger changed",
        "--hook-timeout",
        "1500ms",
        "--tick",
        "100ms",
        "--sync-limit",
        "3",
        "--init-limit",
        "5",
        "--finalize-wait",
        "200ms",
        "--max-notification-interval",
        "1m",
    ])
    .unwrap();
    assert_eq!(s.election.id, 7);
    assert_eq!(s.election.voters.as_slice(), &[1, 2, 3]);
    assert!(s.is_observer());
    assert_eq!(s.interface, "br-lan");
    assert_eq!(s.group, "[ff02::1:77]:7300".parse().unwrap());
    assert_eq!(s.election.cluster, 9);
    assert_eq!(
        s.zxid,
        ZxidSource::File {
            path: zxid.arg().into(),
            initial: 42
        }
    );
    assert_eq!(s.data_dir, Some("/var/lib/votecast".into()));
    assert_eq!(s.state_file, Some("/run/votecast.json".into()));
    assert!(
        s.election.sparse_answers,
        "a state file: followers still take turns"
    );
    assert_eq!(s.on_change.as_deref(), Some("logger changed"));
    assert_eq!(s.hook_timeout, Duration::from_millis(1500));
    assert_eq!(s.election.tick, Duration::from_millis(100));
    assert_eq!((s.election.sync_limit, s.election.init_limit), (3, 5));
    assert_eq!(s.election.finalize_wait, Duration::from_millis(200));
    assert_eq!(
        s.election.max_notification_interval,
        Duration::from_secs(60)
    );
}

#[test]
fn observer_detection() {
    assert!(!run(BASE).unwrap().is_observer());
    let s = run(&["--id", "4", "--voters", "1,2,3", "--interface", "eth0"]).unwrap();
    assert!(s.is_observer());
}

#[test]
fn ipv6_group() {
    let s = run(&with_base(&["--group", "[ff02::1:77]:7277"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>())
    .unwrap();
    assert!(s.group.is_ipv6());
    assert_eq!(s.group.port(), 7277);
}

#[test]
fn peers_from_flag_and_file() {
    let s = run(&with_base(&["--peers", "169.254.0.11, 169.254.0.12:7300"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>())
    .unwrap();
    let peers = s.peers.clone().expect("peers");
    let want: Vec<std::net::SocketAddr> = vec![
        "169.254.0.11:7277".parse().unwrap(),
        "169.254.0.12:7300".parse().unwrap(),
    ];
    assert_eq!(peers.addrs(), &want[..], "the default port is the group's");
    assert_eq!(s.transport(), Transport::Unicast(peers));
    assert_eq!(
        run(BASE).unwrap().transport(),
        Transport::Multicast(s.group)
    );
    // The group's port is the default; an IPv6 group admits IPv6 peers only.
    let s = run(&with_base(&[
        "--group",
        "[ff02::1:77]:7400",
        "--peers",
        "fe80::1,[fe80::2]",
    ])
    .iter()
    .map(String::as_str)
    .collect::<Vec<_>>())
    .unwrap();
    assert_eq!(
        s.peers.unwrap().addrs()[1],
        "[fe80::2]:7400".parse().unwrap()
    );
    let msg = run_err(
        &with_base(&["--group", "239.1.2.3:7277", "--peers", "fe80::1"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(msg.starts_with("error: --peers: fe80::1 is IPv6"), "{msg}");
    // Without --group, the peers' family decides.
    assert!(run(&with_base(&["--peers", "fe80::1"])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>())
    .is_ok());
    // The file: an array of strings or one comma-separated string; a flag overrides it.
    for list in [
        "[\"169.254.0.11\", \"169.254.0.12:7300\"]",
        "\"169.254.0.11,169.254.0.12:7300\"",
    ] {
        let cfg = TempConfig::new(&format!(
            "id = 1\nvoters = [1, 2]\ninterface = \"eth0\"\npeers = {list}\n"
        ));
        let s = run(&["--config", cfg.arg()]).unwrap();
        assert_eq!(s.peers.unwrap().addrs(), &want[..], "{list}");
        let s = run(&["--config", cfg.arg(), "--peers", "169.254.0.20"]).unwrap();
        assert_eq!(s.peers.unwrap().addrs().len(), 1);
    }
    let many: Vec<String> = (1..=129).map(|i| format!("10.0.1.{i}")).collect();
    let msg = run_err(
        &with_base(&["--peers", &many.join(",")])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        msg.contains("--peers: 129 peers given, at most 128"),
        "{msg}"
    );
}

/// (key, bad flag value, bad TOML value, expected fragment of the message)
const BAD: &[(&str, &str, &str, &str)] = &[
    ("id", "abc", "\"abc\"", "expected an integer"),
    ("id", "0", "0", "id 0 is not allowed"),
    (
        "id",
        "18446744073709551615",
        "\"18446744073709551615\"",
        "reserved",
    ),
    ("id", "-1", "-1", "expected an integer"),
    ("voters", "1,x", "[1, \"x\"]", "not an id"),
    ("voters", "1,0", "[1, 0]", "id 0 is not allowed"),
    ("voters", "1,2,1", "[1, 2, 1]", "listed more than once"),
    ("voters", "", "[]", "empty"),
    ("voters", "1,,2", "true", "expected"),
    ("interface", "", "\"\"", "empty"),
    ("interface", "averyveryverylongname0", "3", ""),
    (
        "group",
        "10.0.0.1:7277",
        "\"10.0.0.1:7277\"",
        "not a multicast address",
    ),
    ("group", "239.1.1.1", "\"239.1.1.1\"", "expected ADDR:PORT"),
    ("group", "239.1.1.1:0", "\"239.1.1.1:0\"", "port 0"),
    ("peers", "", "[]", "the list of peers is empty"),
    (
        "peers",
        "10.0.0.1,,10.0.0.2",
        "\"10.0.0.1,\"",
        "expected ADDR[:PORT]",
    ),
    ("peers", "node2.lan", "[\"node2.lan\"]", "not a host name"),
    ("peers", "10.0.0.1:0", "[\"10.0.0.1:0\"]", "port 0"),
    (
        "peers",
        "239.1.2.3",
        "[\"239.1.2.3\"]",
        "not a unicast address",
    ),
    ("peers", "0.0.0.0:7277", "[\"::\"]", "not a unicast address"),
    (
        "peers",
        "10.0.0.1,10.0.0.1:7300",
        "[\"10.0.0.1\", \"10.0.0.1\"]",
        "listed more than once",
    ),
    (
        "peers",
        "10.0.0.1,fe80::1",
        "[\"fe80::1\", \"10.0.0.1\"]",
        "different families",
    ),
    ("peers", "[1]", "[1]", "such as"),
    ("cluster", "4294967296", "4294967296", "4294967295"),
    ("cluster", "x", "1.5", "expected an integer"),
    ("zxid", "x", "\"x\"", "expected a non-negative integer"),
    ("data-dir", "", "5", ""),
    ("state-file", "", "false", ""),
    ("metrics-file", "", "1", ""),
    ("zxid-file", "", "[1]", ""),
    (
        "zxid-file",
        "/nonexistent/votecast/zxid",
        "\"/nonexistent/votecast/zxid\"",
        "cannot read",
    ),
    (
        "zxid-file",
        "/dev/null",
        "\"/dev/null\"",
        "not a regular file",
    ),
    ("on-change", " ", "\"\"", "empty"),
    (
        "hook-timeout",
        "10",
        "10",
        "expected a duration such as 50ms",
    ),
    ("hook-timeout", "0s", "\"0s\"", "greater than 0"),
    ("hook-timeout", "601s", "\"601s\"", "at most 600s"),
    (
        "hook-timeout",
        "18446744073709551615s",
        "\"18446744073709551615s\"",
        "at most 600s",
    ),
    (
        "tick",
        "18446744073709551615s",
        "\"18446744073709551615s\"",
        "at most 10s",
    ),
    (
        "finalize-wait",
        "18446744073709551615s",
        "\"18446744073709551615s\"",
        "less than max-notification-interval",
    ),
    (
        "max-notification-interval",
        "18446744073709551615s",
        "\"18446744073709551615s\"",
        "at most 60s",
    ),
    ("tick", "5", "5", "expected a duration such as 50ms"),
    ("tick", "0ms", "\"0ms\"", "greater than 0"),
    ("tick", "11s", "\"11s\"", "at most 10s"),
    ("tick", "5x", "\"5x\"", "unknown unit"),
    (
        "sync-limit",
        "abc",
        "\"abc\"",
        "expected a positive integer, got \"abc\"",
    ),
    ("sync-limit", "1", "1", "at least 2"),
    ("init-limit", "5", "5", "at least sync-limit"),
    ("init-limit", "x", "1.0", "expected a positive integer"),
    (
        "finalize-wait",
        "2s",
        "\"2s\"",
        "less than max-notification-interval",
    ),
    ("finalize-wait", "0ms", "\"0ms\"", "greater than 0"),
    ("max-notification-interval", "61s", "\"61s\"", "at most 60s"),
    (
        "max-notification-interval",
        "0s",
        "\"0s\"",
        "greater than 0",
    ),
    ("max-notification-interval", "2", "2", "expected a duration"),
];

#[test]
fn bad_flag_values_name_the_flag() {
    for (key, flag_value, _, fragment) in BAD {
        let flag = format!("--{key}");
        // The required flags are given again only when they are not the one under test.
        let mut args: Vec<String> = Vec::new();
        for pair in BASE.chunks(2) {
            if pair[0] != flag {
                args.extend(pair.iter().map(|s| s.to_string()));
            }
        }
        args.push(flag.clone());
        args.push(flag_value.to_string());
        let msg = match run_owned(&args) {
            Ok(s) => panic!("{args:?} accepted: {s:?}"),
            Err(e) => e.message,
        };
        assert!(msg.contains(&flag), "{args:?}: {msg}");
        assert!(msg.contains(fragment), "{args:?}: {msg}");
    }
}

#[test]
fn bad_file_values_name_the_key() {
    for (key, _, toml_value, fragment) in BAD {
        let mut text = String::new();
        for (k, v) in [
            ("id", "1"),
            ("voters", "[1, 2, 3]"),
            ("interface", "\"eth0\""),
        ] {
            if k != *key {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        text.push_str(&format!("{key} = {toml_value}\n"));
        let cfg = TempConfig::new(&text);
        let msg = match run(&["--config", cfg.arg()]) {
            Ok(s) => panic!("{text} accepted: {s:?}"),
            Err(e) => e.message,
        };
        let named = format!("config key \"{key}\"");
        assert!(msg.contains(&named), "{text}: {msg}");
        assert!(msg.contains(fragment), "{text}: {msg}");
    }
}

#[test]
fn spec_example_message() {
    let cfg = TempConfig::new("id = 1\nvoters = [1]\ninterface = \"eth0\"\nsync-limit = \"abc\"\n");
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(
        msg.contains(r#"config key "sync-limit": expected a positive integer, got "abc""#),
        "{msg}"
    );
    let msg = run_err(&["--id", "1", "--voters", "0,1", "--interface", "eth0"]);
    assert!(msg.contains("--voters: id 0 is not allowed"), "{msg}");
}

#[test]
fn unknown_file_key() {
    let cfg = TempConfig::new("id = 1\ncolour = \"blue\"\n");
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(msg.contains("\"colour\""), "{msg}");
    assert!(msg.contains("unknown key"), "{msg}");
    let cfg = TempConfig::new("sync_limit = 3\n");
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(msg.contains("\"sync_limit\""), "{msg}");
    assert!(msg.contains("did you mean \"sync-limit\""), "{msg}");
}

#[test]
fn unreadable_and_invalid_config_files() {
    let msg = run_err(&["--config", "/nonexistent/votecast.toml"]);
    assert!(msg.contains("--config"), "{msg}");
    assert!(msg.contains("/nonexistent/votecast.toml"), "{msg}");
    let cfg = TempConfig::new("id = = 1\n");
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(msg.contains("not valid TOML"), "{msg}");
}

#[test]
fn file_only_and_flags_override_file() {
    let cfg = TempConfig::new(
        "id = 2\nvoters = [3, 2, 1]\ninterface = \"eth1\"\ngroup = \"[ff02::1:77]:7277\"\n\
         cluster = 4\nzxid = 17\ndata-dir = \"/data\"\nstate-file = \"/run/s.json\"\n\
         on-change = \"true\"\nhook-timeout = \"3s\"\ntick = \"20ms\"\nsync-limit = 4\n\
         init-limit = 8\nfinalize-wait = \"30ms\"\nmax-notification-interval = \"5s\"\n",
    );
    let s = run(&["--config", cfg.arg()]).unwrap();
    assert_eq!(s.election.id, 2);
    assert_eq!(s.election.voters.as_slice(), &[1, 2, 3]);
    assert_eq!(s.interface, "eth1");
    assert!(s.group.is_ipv6());
    assert_eq!(s.election.cluster, 4);
    assert_eq!(s.zxid, ZxidSource::Fixed(17));
    assert_eq!(s.data_dir, Some("/data".into()));
    assert_eq!(s.state_file, Some("/run/s.json".into()));
    assert_eq!(s.on_change.as_deref(), Some("true"));
    assert_eq!(s.hook_timeout, Duration::from_secs(3));
    assert_eq!(s.election.tick, Duration::from_millis(20));
    assert_eq!((s.election.sync_limit, s.election.init_limit), (4, 8));
    assert_eq!(s.election.finalize_wait, Duration::from_millis(30));
    assert_eq!(s.election.max_notification_interval, Duration::from_secs(5));

    let zxid = TempConfig::new(" 7 ");
    let s = run(&[
        "--config",
        cfg.arg(),
        "--id",
        "5",
        "--voters",
        "5,6",
        "--tick",
        "40ms",
        "--sync-limit",
        "2",
        "--zxid-file",
        zxid.arg(),
        "--data-dir",
        "/other",
    ])
    .unwrap();
    assert_eq!(s.election.id, 5);
    assert_eq!(s.election.voters.as_slice(), &[5, 6]);
    assert_eq!(s.interface, "eth1");
    assert_eq!(s.election.tick, Duration::from_millis(40));
    assert_eq!((s.election.sync_limit, s.election.init_limit), (2, 8));
    assert_eq!(
        s.zxid,
        ZxidSource::File {
            path: zxid.arg().into(),
            initial: 7
        }
    );
    assert_eq!(s.data_dir, Some("/other".into()));
    assert_eq!(s.election.cluster, 4);
}

#[test]
fn zxid_and_zxid_file_conflict() {
    let msg = run_err(
        &with_base(&["--zxid", "1", "--zxid-file", "/z"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        msg.contains("--zxid") && msg.contains("--zxid-file"),
        "{msg}"
    );
    let cfg = TempConfig::new("zxid = 1\nzxid-file = \"/z\"\n");
    let mut args = with_base(&["--config"]);
    args.push(cfg.arg().to_string());
    let msg = run_owned(&args).unwrap_err().message;
    assert!(
        msg.contains("\"zxid\"") && msg.contains("\"zxid-file\""),
        "{msg}"
    );
}

#[test]
fn too_many_voters() {
    let list: Vec<String> = (1..=65).map(|i| i.to_string()).collect();
    let list = list.join(",");
    let msg = run_err(&["--id", "1", "--voters", &list, "--interface", "eth0"]);
    assert!(
        msg.contains("--voters") && msg.contains("at most 64"),
        "{msg}"
    );
    let list: Vec<String> = (1..=64).map(|i| i.to_string()).collect();
    let list = list.join(",");
    assert_eq!(
        run(&["--id", "1", "--voters", &list, "--interface", "eth0"])
            .unwrap()
            .election
            .voters
            .len(),
        64
    );
}

#[test]
fn a_state_file_inside_the_data_dir_is_refused() {
    let dir = TempDir::new("votecast-state-in-data").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&data, &link).unwrap();
    let d = data.to_str().unwrap();
    let inside = [
        format!("{d}/epochs"),
        format!("{d}/not-yet/state.json"),
        format!("{}/epochs", link.display()),
        format!("{d}/../data/./x.json"),
        format!("{}/data/new/../epochs", dir.path().display()),
    ];
    for state in &inside {
        let msg = run_err(
            &with_base(&["--data-dir", d, "--state-file", state])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(
            msg.contains("--state-file") && msg.contains("--data-dir"),
            "{state}: {msg}"
        );
    }
    // A data dir that does not exist yet is compared all the same.
    let later = format!("{}/later", dir.path().display());
    let msg = run_err(
        &with_base(&["--data-dir", &later, "--state-file", &format!("{later}/s")])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(msg.contains("--state-file"), "{msg}");
    let cfg = TempConfig::new(&format!(
        "id = 1\nvoters = [1]\ninterface = \"eth0\"\ndata-dir = \"{d}\"\nstate-file = \"{d}/s.json\"\n"
    ));
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(msg.contains("config key \"state-file\""), "{msg}");
    for outside in [
        format!("{}/data.json", dir.path().display()),
        format!("{d}-2/s.json"),
    ] {
        let s = run_owned(&with_base(&["--data-dir", d, "--state-file", &outside])).unwrap();
        assert_eq!(s.state_file, Some(outside.into()));
    }
}

#[test]
fn the_metrics_file_is_apart_from_the_data_dir_and_the_other_files() {
    let dir = TempDir::new("votecast-metrics-apart").unwrap();
    let d = dir.path().display().to_string();
    let data = format!("{d}/data");
    let key = format!("{d}/key");
    std::fs::write(
        &key,
        "8a61f1ef06d1d4a3f5c2e4b9907d3c1a5be2f7d84c6a09e1d3b5f7a9c2e4068b\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&key).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&key, perms).unwrap();
    let refused = [
        (
            vec!["--data-dir", &data],
            format!("{data}/m.prom"),
            "--data-dir",
        ),
        (
            vec!["--state-file", "s.json"],
            format!("{}/s.json", std::env::current_dir().unwrap().display()),
            "--state-file",
        ),
        (vec!["--key-file", &key], format!("{d}/./key"), "--key-file"),
    ];
    for (extra, metrics, named) in &refused {
        let mut args = with_base(extra);
        args.extend(["--metrics-file".to_string(), metrics.clone()]);
        let msg = run_err(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            msg.contains("--metrics-file") && msg.contains(named),
            "{metrics}: {msg}"
        );
    }
    let cfg = TempConfig::new(&format!(
        "id = 1\nvoters = [1]\ninterface = \"eth0\"\ndata-dir = \"{data}\"\n\
         metrics-file = \"{data}/x.prom\"\n"
    ));
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(msg.contains("config key \"metrics-file\""), "{msg}");
    let ok = format!("{d}/votecast.prom");
    let args = with_base(&["--data-dir", &data, "--metrics-file", &ok]);
    let s = run_owned(&args).unwrap();
    assert_eq!(s.metrics_file, Some(ok.into()));
}

#[test]
fn messages_quote_at_most_a_line_of_a_huge_value() {
    let huge = "9".repeat(1_000_000);
    let msg = run_err(
        &with_base(&["--tick", &format!("{huge}x")])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(msg.len() < 1000, "{} bytes", msg.len());
    assert!(
        msg.contains("--tick") && msg.contains("more bytes"),
        "{}",
        &msg[..200]
    );
    let cfg = TempConfig::new(&format!(
        "id = 1\nvoters = [1]\ninterface = \"eth0\"\ntick = \"{}\"\n",
        &huge[..60_000]
    ));
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(msg.len() < 1000, "{} bytes", msg.len());
    assert!(msg.contains("config key \"tick\""), "{}", &msg[..200]);
    let cfg = TempConfig::new(&format!("id = {huge}\n"));
    let msg = run_err(&["--config", cfg.arg()]);
    assert!(
        msg.contains("--config") && msg.contains("larger than 65536 bytes"),
        "{msg}"
    );
}
