//! `votecast check-config` end to end: the real binary with the same flags and config files
//! as `run`. Every bad value `run` refuses is refused here too (exit 2, naming the flag or
//! key, nothing on stdout); a valid configuration prints the effective settings (exit 0);
//! a missing interface is a warning, not an error, because `run` waits for it. Nothing
//! here opens a socket.

use super::cli_errors::{
    bad_values, expect_usage_error, run, scratch, strings, ScratchFiles, REQUIRED, SWITCHES,
};

/// A key file `run` accepts (mode 0600).
const GOOD_KEY: &str = "1 8a61f1ef06d1d4a3f5c2e4b9907d3c1a5be2f7d84c6a09e1d3b5f7a9c2e4068b\n";

#[test]
fn every_bad_value_run_refuses_is_refused_by_check_config() {
    let s = scratch("check-bad");
    for (key, value, _) in bad_values(&s) {
        let flag = format!("--{key}");
        let mut args = strings(&["check-config"]);
        for (k, v, _) in REQUIRED {
            if k != key {
                args.extend(strings(&[&format!("--{k}"), v]));
            }
        }
        if SWITCHES.contains(&flag.as_str()) {
            args.push(format!("{flag}={value}"));
        } else {
            args.extend([flag.clone(), value.clone()]);
        }
        expect_usage_error(
            &format!("check-config {flag} {value:?}"),
            &args,
            &flag,
            s.path(),
        );
    }
    let missing = strings(&["check-config", "--id", "1"]);
    expect_usage_error("missing voters", &missing, "--voters", s.path());
}

#[test]
fn a_valid_config_prints_the_effective_settings_and_exits_0() {
    let s = scratch("check-ok");
    let key = s.file("votecast.key", GOOD_KEY, 0o600);
    let config = s.file(
        "votecast.toml",
        &format!(
            "id = 2\nvoters = [1, 2, 3]\ninterface = \"lo\"\nsync-limit = 8\n\
             key-file = {key:?}\n"
        ),
        0o644,
    );
    // A flag overrides the file, as in `run`.
    let args = strings(&["check-config", "--config", &config, "--tick", "20ms"]);
    let done = run(&args, s.path());
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_eq!(done.stderr, "", "{done:?}");
    for line in [
        "id = 2\n",
        "voters = [1, 2, 3]\n",
        "interface = \"lo\"\n",
        "group = \"239.192.77.77:7277\"\n",
        "tick = \"20ms\"\n",
        "sync-limit = 8\n",
        "init-limit = 10\n",
        &format!("key-file = {key:?}\n"),
        "# key 1: fingerprint ",
        "# data-dir: not set",
    ] {
        assert!(done.stdout.contains(line), "{line:?} in {}", done.stdout);
    }
    // The output is itself a config file that check-config accepts unchanged.
    let effective = s.file("effective.toml", &done.stdout, 0o644);
    let again = run(
        &strings(&["check-config", "--config", &effective]),
        s.path(),
    );
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.stdout, done.stdout);
    let quiet = run(
        &strings(&["check-config", "--quiet", "--config", &config]),
        s.path(),
    );
    assert_eq!(quiet.code, Some(0), "{quiet:?}");
    assert_eq!(quiet.stdout, "", "{quiet:?}");
}

#[test]
fn key_file_permissions_and_contents_are_checked() {
    let s = scratch("check-keys");
    let open = s.file("open.key", GOOD_KEY, 0o644);
    let garbage = s.file("garbage.key", "1 not-a-key\n", 0o600);
    for (what, path, named) in [
        ("world-readable key", &open, "chmod o-rwx"),
        ("malformed key", &garbage, "--key-file"),
    ] {
        let config = s.file(
            "k.toml",
            &format!("id = 1\nvoters = [1]\ninterface = \"lo\"\nkey-file = {path:?}\n"),
            0o644,
        );
        let args = strings(&["check-config", "--config", &config]);
        let named = if named == "--key-file" {
            "config key \"key-file\""
        } else {
            named
        };
        expect_usage_error(what, &args, named, s.path());
    }
}

#[test]
fn a_missing_interface_is_a_warning_and_exits_0() {
    let s = scratch("check-iface");
    // Interface names are at most 15 bytes; this one is valid and does not exist.
    let args = strings(&[
        "check-config",
        "--id",
        "1",
        "--voters",
        "1,2,3",
        "--interface",
        "vcnosuchif0",
    ]);
    let done = run(&args, s.path());
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(
        done.stderr
            .contains("warning: --interface \"vcnosuchif0\" does not exist"),
        "{done:?}"
    );
    assert!(
        done.stdout.contains("interface = \"vcnosuchif0\"\n"),
        "{done:?}"
    );
}
