//! Faults a real daemon on `lo` must survive with its published state correct: graceful
//! handovers checked against the lease end the old leader *published*, every catchable
//! terminating signal, SIGHUP and SIGUSR1, and a memory-only restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votecast::cluster::LocalCluster;
use votecast::daemon::state_file::{read_state_file, StateSnapshot};

const EXE: &str = env!("CARGO_BIN_EXE_votecast");
const ELECT: Duration = Duration::from_secs(10);

fn cluster(voters: u64) -> LocalCluster {
    LocalCluster::new(Path::new(EXE), voters, 0).expect("prepare a local cluster")
}

fn agree(c: &LocalCluster, what: &str) -> (u64, u64) {
    let (leader, epoch, _) = c
        .await_agreement(ELECT)
        .unwrap_or_else(|| panic!("{}", c.report(format!("no agreement: {what}"))));
    (leader, epoch)
}

/// What a tight poll of every state file saw during a handover.
#[derive(Debug, Default)]
struct Watch {
    /// The latest lease end (CLOCK_BOOTTIME ms) the old leader published as LEADING.
    old_until: Option<u64>,
    /// The new leader and its first LEADING snapshot's `updated_boottime_ms`.
    new_leading: Option<(u64, u64)>,
}

/// Polls every state file each millisecond from before `signal` reaches the leader until
/// another node publishes LEADING (bounded).
fn watch_handover(c: &mut LocalCluster, leader: u64, signal: Signal) -> Watch {
    let mut w = Watch::default();
    let see = |w: &mut Watch, c: &LocalCluster| {
        for id in c.ids() {
            let Ok(s) = read_state_file(&c.node(id).state_file) else {
                continue;
            };
            if s.state != "LEADING" {
                continue;
            }
            let until = s.valid_until_boottime_ms.expect("boottime lease end");
            let updated = s.updated_boottime_ms.expect("boottime update");
            if id == leader {
                w.old_until = w.old_until.max(Some(until));
            } else if w.new_leading.is_none() {
                w.new_leading = Some((id, updated));
            }
        }
    };
    for _ in 0..50 {
        see(&mut w, c);
        std::thread::sleep(Duration::from_millis(1));
    }
    c.signal(leader, signal).expect("signal the leader");
    let started = Instant::now();
    while w.new_leading.is_none() && started.elapsed() < ELECT {
        see(&mut w, c);
        std::thread::sleep(Duration::from_millis(1));
    }
    w
}

/// The old leader's own account of its last published lease end (CLOCK_BOOTTIME ms).
fn logged_lease_end(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.split("last published lease end: boottime ").nth(1))
        .filter_map(|rest| rest.split(' ').next()?.parse().ok())
        .max()
}

/// Graceful handover without a hook: the next leader is published LEADING only after the
/// lease end the old leader published. (Before, RESIGN released the followers at once
/// and the new leader was LEADING 20–230 ms inside the old published lease.)
#[test]
fn sigterm_handover_never_overlaps_the_published_lease() {
    let mut c = cluster(3);
    c.start_all().expect("start nodes");
    let (leader, _) = agree(&c, "cold start");
    // Let the lease settle into its refresh rhythm.
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let w = watch_handover(&mut c, leader, Signal::SIGTERM);
    let code = c
        .wait_exit(leader, Duration::from_secs(10))
        .expect("node running");
    assert_eq!(code, Some(0), "{}", c.report("exit after SIGTERM"));
    let (new, first_leading) = w
        .new_leading
        .unwrap_or_else(|| panic!("{}", c.report("no new leader")));
    let log = c.log(leader);
    let old_until = w
        .old_until
        .max(logged_lease_end(&log))
        .expect("old lease end");
    println!(
        "handover: new leader {new} LEADING {:.0} ms after SIGTERM; old lease end published \
         {} ms before that",
        signalled.elapsed().as_secs_f64() * 1000.0,
        first_leading as i64 - old_until as i64
    );
    assert!(
        first_leading >= old_until,
        "node {new} LEADING at boottime {first_leading} ms, inside node {leader}'s published \
         lease (to {old_until} ms)\n{}",
        c.report("overlap")
    );
    assert!(log.contains("the published lease has run out"), "{log}");
    let last = c.state(leader).expect("old state file");
    assert_ne!(last.state, "LEADING", "{last:?}");
    assert_eq!(last.valid_until_unix_ms, None, "{last:?}");
}

/// Graceful handover with a hook: the step-down hook ends (exit 0) before the next leader
/// is published, and then the handover need not wait for the published lease.
#[test]
fn a_successful_step_down_hook_ends_before_the_next_leader_and_keeps_the_handover_fast() {
    let mut c = cluster(3);
    for id in c.ids() {
        let dir = c.node(id).dir.display().to_string();
        // Each run appends "STATE <boottime ms at its end>".
        let hook = format!(
            "sleep 0.05; echo \"$VOTECAST_STATE $(awk '{{print int($1*1000)}}' /proc/uptime)\" \
             >> '{dir}/ends'"
        );
        c.set_extra_args(id, ["--on-change".to_string(), hook]);
    }
    c.start_all().expect("start nodes");
    let (leader, _) = agree(&c, "cold start");
    std::thread::sleep(Duration::from_millis(300));
    let w = watch_handover(&mut c, leader, Signal::SIGTERM);
    assert_eq!(
        c.wait_exit(leader, Duration::from_secs(10))
            .expect("node running"),
        Some(0)
    );
    let (new, first_leading) = w
        .new_leading
        .unwrap_or_else(|| panic!("{}", c.report("no new leader")));
    let ends = std::fs::read_to_string(c.node(leader).dir.join("ends")).unwrap_or_default();
    let step_down_end: u64 = ends
        .lines()
        .skip_while(|l| !l.starts_with("LEADING "))
        .find_map(|l| l.strip_prefix("LOOKING "))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no step-down hook run: {ends:?}\n{}", c.report("hooks")));
    // /proc/uptime has a 10 ms resolution.
    assert!(
        first_leading + 10 >= step_down_end,
        "node {new} LEADING at {first_leading} ms before node {leader}'s step-down hook \
         ended at {step_down_end} ms\n{}",
        c.report("order")
    );
    let log = c.log(leader);
    assert!(log.contains("the step-down hook succeeded"), "{log}");
}

/// Graceful handover of a leader that publishes no lease end (no state file, hook or
/// metrics file): no application can act on its lease, so it resigns at once instead of
/// waiting one out, and the next leader is elected at once. (Before, it waited out the
/// lease it held, up to sync-limit ticks: 300 ms at the defaults.)
#[test]
fn a_leader_that_published_no_lease_end_resigns_at_once() {
    let mut c = cluster(3);
    // Node 3 leads (equal zxids: the largest id) and writes no state file.
    c.nodes[2].writes_state_file = false;
    c.start_all().expect("start nodes");
    let follow_3 = |c: &LocalCluster| {
        [1, 2].iter().all(|&id| {
            c.state(id)
                .is_some_and(|s| s.state == "FOLLOWING" && s.leader == Some(3))
        })
    };
    c.wait_until(ELECT, follow_3)
        .unwrap_or_else(|| panic!("{}", c.report("1 and 2 never followed 3")));
    std::thread::sleep(Duration::from_millis(300));
    c.signal(3, Signal::SIGTERM).expect("SIGTERM");
    let leading = |c: &LocalCluster| {
        [1, 2]
            .iter()
            .any(|&id| c.state(id).is_some_and(|s| s.state == "LEADING"))
    };
    let took = c
        .wait_until(ELECT, leading)
        .unwrap_or_else(|| panic!("{}", c.report("no new leader")));
    assert_eq!(
        c.wait_exit(3, Duration::from_secs(10))
            .expect("node running"),
        Some(0)
    );
    let log = c.log(3);
    println!(
        "handover without a published lease: a new leader {:.1} ms after SIGTERM",
        took.as_secs_f64() * 1000.0
    );
    assert!(log.contains("(no lease end was published)"), "{log}");
    assert!(!log.contains("the published lease has run out"), "{log}");
}

/// SIGQUIT, SIGUSR2 and SIGALRM resign like SIGTERM: exit 0, state file not LEADING.
/// (Before, they killed the daemon with the state file still saying LEADING.)
#[test]
fn every_terminating_signal_resigns_and_exits_0() {
    let mut c = cluster(5);
    c.start_all().expect("start nodes");
    for signal in [Signal::SIGQUIT, Signal::SIGUSR2, Signal::SIGALRM] {
        let (leader, _) = agree(&c, "before the signal");
        c.signal(leader, signal).expect("signal");
        let code = c
            .wait_exit(leader, Duration::from_secs(10))
            .expect("node running");
        assert_eq!(code, Some(0), "{signal}: {}", c.report("exit code"));
        let last = c.state(leader).expect("state file");
        assert_ne!(last.state, "LEADING", "{signal}: {last:?}");
        let log = c.log(leader);
        assert!(
            log.contains(&format!("{signal}: shutting down, resigning")),
            "{log}"
        );
    }
}

/// SIGHUP reloads (a bad key file keeps the old keys and says why) and SIGUSR1 logs the
/// state and counters; neither stops the node.
#[test]
fn sighup_reloads_and_sigusr1_reports_without_stopping() {
    let mut c = cluster(3);
    let key = c.dir.path().join("key");
    let mut secret = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut secret,
    )
    .unwrap();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&key, format!("1 {hex}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let zxid = c.dir.path().join("zxid");
    std::fs::write(&zxid, "5\n").unwrap();
    c.common_args = vec![
        "--key-file".into(),
        key.display().to_string(),
        "--zxid-file".into(),
        zxid.display().to_string(),
    ];
    c.start_all().expect("start nodes");
    let (leader, epoch) = agree(&c, "cold start");
    std::fs::write(&zxid, "9\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    for id in c.ids() {
        c.signal(id, Signal::SIGHUP).unwrap();
        c.signal(id, Signal::SIGUSR1).unwrap();
    }
    let waited = Instant::now();
    let done = |c: &LocalCluster| {
        c.ids().iter().all(|&id| {
            let log = c.log(id);
            log.contains("key file not reloaded, keeping the current keys")
                && log.contains("zxid file re-read, zxid 9")
                && log.contains("frames received")
        })
    };
    while !done(&c) {
        assert!(
            waited.elapsed() < ELECT,
            "{}",
            c.report("no reload/report lines")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.running_ids(), c.ids(), "{}", c.report("a node stopped"));
    assert_eq!(agree(&c, "after SIGHUP"), (leader, epoch));
    let log = c.log(leader);
    let report = log
        .lines()
        .find(|l| l.contains("LEADING leader=") && l.contains("frames received"))
        .unwrap_or_else(|| panic!("no SIGUSR1 state line:\n{log}"));
    assert!(report.contains("elections"), "{report}");
}

/// A memory-only node (no --data-dir) that restarts after some uptime is readmitted at
/// once: here the cluster needs it for a quorum. (Before, it restarted as incarnation 1
/// every time, and the peers dropped its frames as replays until its sequence number
/// caught up with the old process's: no leader for as long as it had run.)
#[test]
fn a_memory_only_restart_is_readmitted_at_once() {
    let mut c = cluster(3);
    c.start(2).unwrap();
    c.start(3).unwrap();
    let state_file = c.node(1).state_file.clone();
    let spawn = |c: &LocalCluster| -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&c.node(1).log_file)
            .unwrap();
        Command::new(EXE)
            .args(["run", "--id", "1", "--voters", "1,2,3", "--interface", "lo"])
            .args(["--group", &c.group.to_string()])
            .arg("--state-file")
            .arg(&state_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    // Node 1 follows node 3, in a state written at or after `since` (wall clock ms).
    let joined = |c: &LocalCluster, since: u64| {
        let one = read_state_file(&state_file).ok();
        let three = c.state(3);
        one.zip(three)
            .is_some_and(|(one, three): (StateSnapshot, StateSnapshot)| {
                one.state == "FOLLOWING"
                    && one.leader == Some(3)
                    && one.updated_unix_ms >= since
                    && three.state == "LEADING"
                    && three.epoch == one.epoch
            })
    };
    let mut node1 = spawn(&c);
    let started = Instant::now();
    while !joined(&c, 0) {
        assert!(
            started.elapsed() < ELECT,
            "{}",
            c.report("node 1 never followed")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Enough uptime for its sequence numbers to run far ahead of a fresh start's.
    std::thread::sleep(Duration::from_secs(4));
    node1.kill().unwrap();
    node1.wait().unwrap();
    let since = votecast::daemon::unix_now_ms();
    let mut node1 = spawn(&c);
    // Without node 2, node 3 can lead only with node 1's frames.
    c.kill(2).unwrap();
    let restarted = Instant::now();
    let mut readmitted = None;
    while restarted.elapsed() < Duration::from_millis(3_000) {
        if joined(&c, since) {
            readmitted = Some(restarted.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    node1.kill().unwrap();
    node1.wait().unwrap();
    let took = readmitted.unwrap_or_else(|| {
        panic!(
            "{}",
            c.report("restarted memory-only node not readmitted within 3 s")
        )
    });
    println!("memory-only restart: a leader with node 1 again after {took:?}");
    assert!(c.log(1).contains("memory only: silent for"), "{}", c.log(1));
}
