//! Logging for journald, end to end: a node whose stderr is the stream `JOURNAL_STREAM`
//! names (device and inode, as systemd sets it) writes `<N>` priority prefixes and no
//! timestamps; a node with a `JOURNAL_STREAM` that names another stream (inherited, stale)
//! keeps the plain format. Two one-voter clusters on `lo`; each node is stopped with
//! SIGTERM and reaped, and `LocalCluster` kills whatever is left on drop.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use votecast::cluster::LocalCluster;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// Runs a one-voter cluster with stderr to its log file and `JOURNAL_STREAM` set to the
/// log file's `dev:ino` (`matching`) or to another file's; returns the log after SIGTERM.
fn log_of_one_node(matching: bool) -> String {
    let mut c = LocalCluster::new(Path::new(EXE), 1, 0).expect("prepare a cluster");
    let mut cmd = c.command(1);
    let node = c.nodes.iter_mut().find(|n| n.id == 1).expect("node 1");
    let log = fs::File::create(&node.log_file).expect("log file");
    let named = if matching {
        log.metadata().expect("stat log")
    } else {
        fs::metadata(&node.dir).expect("stat dir")
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .env("RUST_LOG", "info")
        .env("JOURNAL_STREAM", format!("{}:{}", named.dev(), named.ino()));
    node.child = Some(cmd.spawn().expect("spawn votecast"));
    let agreed = c.await_agreement(Duration::from_secs(10));
    assert!(agreed.is_some(), "no leader: {}", c.log(1));
    let code = c.terminate(1, Duration::from_secs(10)).expect("terminate");
    assert_eq!(code, Some(0), "{}", c.log(1));
    c.log(1)
}

#[test]
fn under_journald_lines_carry_the_priority_and_no_timestamp() {
    let log = log_of_one_node(true);
    assert!(!log.is_empty());
    for line in log.lines() {
        let ok = ["<3>[", "<4>[", "<6>[", "<7>["]
            .iter()
            .any(|p| line.starts_with(p));
        assert!(ok, "line without a priority prefix: {line:?}\n{log}");
        assert!(
            !line.contains("Z INFO") && !line.contains("Z WARN"),
            "{log}"
        );
    }
    // Info lines (start, state changes) and the warning that authentication is off.
    assert!(log.contains("<6>[INFO  votecast"), "{log}");
    assert!(
        log.contains("<4>[WARN  votecast") && log.contains("authentication off"),
        "{log}"
    );
}

#[test]
fn a_journal_stream_naming_another_file_keeps_the_plain_format() {
    let log = log_of_one_node(false);
    assert!(!log.is_empty());
    for line in log.lines() {
        assert!(
            line.starts_with('['),
            "not the plain format: {line:?}\n{log}"
        );
        assert!(!line.starts_with('<'), "{log}");
    }
    assert!(log.contains("Z WARN  votecast"), "{log}");
}

/// `votecast ARGS` with stderr to a file that `JOURNAL_STREAM` names; (exit code, stderr).
fn journal_stderr(args: &[&str]) -> (Option<i32>, String) {
    let dir = votecast::cluster::TempDir::new("votecast-journal").expect("temp dir");
    let path = dir.join("stderr");
    let file = fs::File::create(&path).expect("stderr file");
    let meta = file.metadata().expect("stat");
    let status = std::process::Command::new(EXE)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .status()
        .expect("run votecast");
    (
        status.code(),
        fs::read_to_string(&path).expect("read stderr"),
    )
}

#[test]
fn check_config_warnings_and_usage_errors_carry_their_priority() {
    let (code, stderr) = journal_stderr(&[
        "check-config",
        "--id",
        "1",
        "--voters",
        "1",
        "--interface",
        "vcnosuchif0",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.starts_with("<4>votecast: warning: --interface"),
        "{stderr}"
    );
    let (code, stderr) = journal_stderr(&["check-config", "--id", "0", "--voters", "1"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("<3>votecast: error"), "{stderr}");
    for line in stderr.lines() {
        assert!(line.starts_with("<3>"), "every line of the error: {stderr}");
    }
}
