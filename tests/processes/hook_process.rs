//! `--on-change` hooks of a real daemon on `lo`: the lease end in their environment, their
//! output in the daemon's log, and nothing of a hung hook left after the daemon exits.

use std::path::Path;
use std::time::{Duration, Instant};

use votecast::cluster::LocalCluster;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");
const ELECT: Duration = Duration::from_secs(10);

/// True while process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn leading_hook_gets_a_future_lease_end_logs_its_output_and_dies_with_the_daemon() {
    let mut c = LocalCluster::new(Path::new(EXE), 3, 0).expect("prepare a local cluster");
    for id in c.ids() {
        let dir = c.node(id).dir.display().to_string();
        assert!(!dir.contains('\''));
        // Each record: state, lease end on both clocks, and both clocks at the hook's start.
        // A LEADING hook then hangs in a child of the shell.
        let hook = format!(
            "echo \"$VOTECAST_STATE $VOTECAST_VALID_UNTIL_UNIX_MS \
             $VOTECAST_VALID_UNTIL_BOOTTIME_MS $(date +%s%3N) $(cut -d' ' -f1 /proc/uptime)\" \
             >> '{dir}/env'; echo hook-out-7c1; echo hook-err-7c1 >&2; \
             if [ \"$VOTECAST_STATE\" = LEADING ]; then sleep 60 & echo $! > '{dir}/pid'; wait; fi"
        );
        // The graceful handover waits for the step-down hook, after the hung LEADING run
        // ends at its timeout: a short timeout keeps the test quick.
        c.set_extra_args(
            id,
            [
                "--on-change".to_string(),
                hook,
                "--hook-timeout".to_string(),
                "3s".to_string(),
            ],
        );
    }
    c.start_all().expect("start nodes");
    let (leader, _, _) = c
        .await_agreement(ELECT)
        .unwrap_or_else(|| panic!("{}", c.report("no agreement")));
    let dir = c.node(leader).dir.clone();
    let leading = || {
        let env = std::fs::read_to_string(dir.join("env")).unwrap_or_default();
        let line = env.lines().find(|l| l.starts_with("LEADING "))?.to_string();
        let pid = std::fs::read_to_string(dir.join("pid")).ok()?;
        Some((line, pid.trim().parse::<i32>().ok()?))
    };
    let waited = Instant::now();
    let (line, pid) = loop {
        if let Some(found) = leading() {
            break found;
        }
        assert!(
            waited.elapsed() < ELECT,
            "{}",
            c.report("the leader's hook never ran")
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 5, "{line:?}");
    let until_unix: u64 = f[1].parse().expect("VOTECAST_VALID_UNTIL_UNIX_MS");
    let until_boot: u64 = f[2].parse().expect("VOTECAST_VALID_UNTIL_BOOTTIME_MS");
    let hook_unix: u64 = f[3].parse().unwrap();
    let hook_boot = (f[4].parse::<f64>().unwrap() * 1000.0) as u64;
    assert!(until_unix > hook_unix, "lease end not ahead: {line:?}");
    assert!(until_boot > hook_boot, "lease end not ahead: {line:?}");
    // Both are the same instant: their distances from the hook's start agree (the
    // /proc/uptime resolution is 10 ms).
    let (a, b) = (until_unix - hook_unix, until_boot - hook_boot);
    assert!(a.abs_diff(b) < 100, "{line:?}");

    assert!(alive(pid), "the hung hook's child should still run");
    let started = Instant::now();
    let code = c
        .terminate(leader, Duration::from_secs(10))
        .expect("SIGTERM");
    assert_eq!(code, Some(0), "{}", c.report("exit code"));
    assert!(started.elapsed() < Duration::from_secs(5));
    // The others too (one of them may lead and hang in its hook by now): SIGTERM, as a
    // SIGKILLed daemon cannot end its hooks.
    let mut pids = vec![pid];
    for id in c.running_ids() {
        assert_eq!(c.terminate(id, Duration::from_secs(10)).ok(), Some(Some(0)));
        let other = std::fs::read_to_string(c.node(id).dir.join("pid")).unwrap_or_default();
        pids.extend(other.trim().parse::<i32>().ok());
    }
    // Not our children: wait (bounded) for them to be gone.
    let gone = Instant::now();
    while let Some(pid) = pids.iter().find(|&&p| alive(p)) {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "process {pid} of a hung hook outlived its daemon"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let log = c.log(leader);
    assert!(
        log.lines().any(|l| l.ends_with("stdout: hook-out-7c1")),
        "hook stdout not in the log:\n{log}"
    );
    assert!(
        log.lines().any(|l| l.ends_with("stderr: hook-err-7c1")),
        "hook stderr not in the log:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l == "hook-out-7c1" || l == "hook-err-7c1"),
        "hook output went to the daemon's own streams:\n{log}"
    );
}
