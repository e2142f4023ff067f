//! Command line, configuration and start-up failures: usage errors exit 2 naming the flag
//! or key; damaged data-dir files exit 1; an interface that does not exist is waited for.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use votecast::daemon::state_file::read_state_file;

use votecast::cluster::TempDir;

use super::{agree, assert_first_epoch, cluster, run_to_exit, secs, votecast, Reaper};

/// Usage errors exit 2 before anything starts, and the message names the flag or key.
#[test]
fn bad_command_lines_and_config_files_exit_2_naming_the_flag_or_key() {
    let scratch = TempDir::new("votecast-usage").expect("temp dir");
    // Should a bad line be accepted after all, it still only joins a private group on lo.
    let port = votecast::cluster::free_udp_port().expect("free port");
    let group = format!("239.192.77.77:{port}");
    let base = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--group", &group]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let unknown_key = scratch.path().join("unknown-key.toml");
    fs::write(&unknown_key, "sync_limit2 = 3\n").expect("write config");
    let tick_key = scratch.path().join("tick.toml");
    fs::write(&tick_key, "tick = 5\n").expect("write config");
    let unknown_key = unknown_key.to_str().expect("utf-8 path").to_string();
    let tick_key = tick_key.to_str().expect("utf-8 path").to_string();
    let required = ["--id", "1", "--voters", "1,2,3", "--interface", "lo"];

    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "missing --id",
            base(&["--voters", "1,2,3", "--interface", "lo"]),
            "--id",
        ),
        (
            "missing --interface",
            base(&["--id", "1", "--voters", "1,2,3"]),
            "--interface",
        ),
        (
            "--tick without a unit",
            base(&[&required[..], &["--tick", "50"]].concat()),
            "--tick",
        ),
        (
            "duplicate voter",
            base(&["--id", "1", "--voters", "1,1", "--interface", "lo"]),
            "--voters",
        ),
        (
            "unknown flag",
            base(&[&required[..], &["--no-such-flag", "1"]].concat()),
            "--no-such-flag",
        ),
        (
            "unknown config key",
            base(&[&required[..], &["--config", &unknown_key]].concat()),
            "sync_limit2",
        ),
        (
            "config tick without a unit",
            base(&[&required[..], &["--config", &tick_key]].concat()),
            "config key \"tick\"",
        ),
    ];
    for (what, args, named) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = run_to_exit(votecast(&args), scratch.path());
        println!(
            "usage: {what}: exit {:?}: {}",
            done.code,
            done.stderr.trim()
        );
        assert_eq!(done.code, Some(2), "{what}: {args:?}: {done:?}");
        assert!(
            done.stderr.contains(named),
            "{what}: stderr must name {named:?}: {done:?}"
        );
        assert!(done.stdout.is_empty(), "{what}: stdout: {done:?}");
    }
}

/// Epochs must never be forgotten (ZAB: a node that promised an epoch must not promise an
/// older one after a restart), so a damaged data-dir file stops the node with status 1,
/// the message names the file, and the file is left exactly as it was.
#[test]
fn corrupt_data_dir_files_are_refused_with_exit_1_and_left_unchanged() {
    let c = cluster(2);
    let scratch = TempDir::new("votecast-corrupt").expect("temp dir");

    // Node 1: garbage instead of the epochs file.
    // Node 2: garbage instead of the incarnation file.
    for (id, name) in [(1, "epochs"), (2, "incarnation")] {
        let dir = c.data_dir(id);
        fs::create_dir_all(&dir).expect("data dir");
        let path = dir.join(name);
        let garbage = b"\x00\xffnot a votecast file\ncrc32=zzzz\n".to_vec();
        fs::write(&path, &garbage).expect("write garbage");
        let done = run_to_exit(c.command(id), scratch.path());
        println!(
            "corrupt {name}: exit {:?}: {}",
            done.code,
            done.stderr.trim()
        );
        assert_eq!(done.code, Some(1), "{name}: {done:?}");
        assert!(
            done.stderr.contains(&path.display().to_string()),
            "{name}: stderr must name {}: {done:?}",
            path.display()
        );
        assert_eq!(
            fs::read(&path).expect("read back"),
            garbage,
            "{name} changed"
        );
    }

    // A real epochs file, written by a single voter that led once, then edited by hand
    // (the current epoch raised in both slots, their checksums kept).
    let mut solo = cluster(1);
    let start = SystemTime::now();
    solo.start(1).expect("start solo node");
    let (leader, epoch, _) = agree(&solo, "single voter");
    assert_eq!(leader, 1, "{}", solo.report("a single voter leads"));
    assert_first_epoch(&solo, epoch, start);
    assert_eq!(solo.terminate(1, secs(5.0)).expect("SIGTERM"), Some(0));
    let path = solo.data_dir(1).join("epochs");
    let real = fs::read(&path).expect("epochs written by the leader");
    // Two 512-byte slots: sequence number at byte 8, current epoch at byte 32 (LE).
    assert_eq!(real.len(), 1024, "a two-slot file");
    let field = |slot: usize, at: usize| {
        u64::from_le_bytes(
            real[slot * 512 + at..slot * 512 + at + 8]
                .try_into()
                .unwrap(),
        )
    };
    let newest = if field(1, 8) > field(0, 8) { 1 } else { 0 };
    assert_eq!(field(newest, 32), epoch, "current epoch {epoch} persisted");
    let mut edited = real.clone();
    for slot in [0, 1] {
        let at = slot * 512 + 32;
        edited[at..at + 8].copy_from_slice(&(epoch + 6).to_le_bytes());
    }
    assert_ne!(edited, real);
    fs::write(&path, &edited).expect("edit epochs");
    let done = run_to_exit(solo.command(1), scratch.path());
    println!(
        "edited epochs: exit {:?}: {}",
        done.code,
        done.stderr.trim()
    );
    assert_eq!(done.code, Some(1), "edited epochs: {done:?}");
    assert!(
        done.stderr.contains(&path.display().to_string()),
        "edited epochs: stderr must name {}: {done:?}",
        path.display()
    );
    assert_eq!(fs::read(&path).expect("read back"), edited);
}

/// The interface is never guessed, and one that does not exist (yet) is waited for (boot
/// ordering): the node keeps running, LOOKING and silent, says once which interface it
/// waits for, and still stops cleanly (status 0) on SIGTERM.
#[test]
fn unknown_interface_is_waited_for_naming_it() {
    let scratch = TempDir::new("votecast-ifname").expect("temp dir");
    let port = votecast::cluster::free_udp_port().expect("free port");
    let group = format!("239.192.77.77:{port}");
    let state = scratch.path().join("state.json");
    let err_path = scratch.path().join("stderr");
    let mut cmd = votecast(&[
        "run",
        "--id",
        "1",
        "--voters",
        "1,2,3",
        "--interface",
        "vcnosuch0",
        "--group",
        &group,
    ]);
    cmd.arg("--state-file")
        .arg(&state)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&err_path).expect("stderr file"));
    let mut reaper = Reaper(Some(cmd.spawn().expect("spawn votecast")));
    let stderr = || fs::read_to_string(&err_path).unwrap_or_default();
    std::thread::sleep(secs(1.5));
    let child = reaper.0.as_mut().expect("child");
    assert_eq!(child.try_wait().expect("try_wait"), None, "{}", stderr());
    let view = read_state_file(&state).expect("state file");
    assert_eq!(
        view.state, "LOOKING",
        "a single voter without its interface"
    );
    let waiting = "interface vcnosuch0 does not exist (yet): waiting for it";
    assert_eq!(stderr().matches(waiting).count(), 1, "{}", stderr());
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(started.elapsed() < secs(10.0), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(5));
    };
    reaper.0 = None;
    assert_eq!(status.code(), Some(0), "{}", stderr());
}
