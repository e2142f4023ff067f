//! Real `votecast run` processes electing over real UDP multicast on `lo`.
//!
//! Every test builds its own [`LocalCluster`]: a private directory, group 239.192.77.77 on
//! a port of its own, `--interface lo`, TTL 1, so tests run in parallel without hearing each
//! other and nothing leaves the machine. The datagrams the tests send themselves go to the
//! same group and port from a socket bound to 127.0.0.1 with IP_MULTICAST_IF 127.0.0.1 and
//! TTL 1. Every wait is bounded; the harness kills and reaps every process it started when
//! the cluster is dropped, also when an assertion fails. Failure messages carry every
//! node's state file and log, so a red CI run explains itself.
//!
//! Timing: the defaults are a 50 ms tick, sync-limit 6 (a follower gives up on a silent
//! leader after 300 ms) and finalize-wait 50 ms. The limits asserted here are seconds, not
//! milliseconds, because CI machines have 2 cores; the measured figures are printed (see
//! them with `cargo test --test processes loopback:: -- --nocapture`).
//!
//! This module owns the shared helpers (clusters, agreement waits, epoch checks, running a
//! command to its exit); the tests are grouped by topic:
//!
//! - `scenarios`: the simulator's election walk-throughs (`sNN_...`) with real processes;
//! - `health`: `--track` health checks move leadership away from an unhealthy leader;
//! - `hooks`: the state file and the `--on-change` hook see every transition in order;
//! - `garbage`: random, corrupted, foreign-cluster and non-voter datagrams change nothing;
//! - `startup`: bad command lines, damaged data-dir files and unknown interfaces;
//! - `ipv6`: the same election over an IPv6 link-local group on `lo`;
//! - `zxid_status`: `--zxid-file` re-reads and `votecast status`;
//! - `diagnosis`: the voters each node hears, and the warning of a voter that hears none.

mod diagnosis;
mod garbage;
mod health;
mod hooks;
mod ipv6;
mod scenarios;
mod startup;
mod zxid_status;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use votecast::cluster::LocalCluster;
use votecast::daemon::state_file::StateSnapshot;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// Bound for a cold-start election or a failover (they take 0.05–0.5 s on an idle machine).
const ELECT: Duration = Duration::from_secs(10);
/// Bound for a process that should exit on its own (usage or start-up errors).
const EXIT: Duration = Duration::from_secs(10);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cluster(voters: u64) -> LocalCluster {
    LocalCluster::new(Path::new(EXE), voters, 0).expect("prepare a local cluster")
}

/// Wait (bounded) for every running node to agree; panics with the logs otherwise.
fn agree(c: &LocalCluster, what: &str) -> (u64, u64, Duration) {
    match c.await_agreement(ELECT) {
        Some(agreed) => agreed,
        None => panic!(
            "{}",
            c.report(format!("{what}: no agreement within {ELECT:?}"))
        ),
    }
}

fn state_of(c: &LocalCluster, id: u64) -> StateSnapshot {
    c.state(id)
        .unwrap_or_else(|| panic!("{}", c.report(format!("node {id} has no state file"))))
}

/// (state, leader, epoch, round) of a node, as its state file says.
type View = (String, Option<u64>, Option<u64>, u64);

fn view(c: &LocalCluster, id: u64) -> Option<View> {
    c.state(id).map(|s| (s.state, s.leader, s.epoch, s.round))
}

/// Fail if a node process died on its own.
fn assert_all_alive(c: &mut LocalCluster) {
    let exited = c.reap_exited().expect("try_wait on our children");
    if !exited.is_empty() {
        panic!("{}", c.report(format!("node processes exited: {exited:?}")));
    }
}

/// 2020-01-01T00:00:00Z in ms since 1970: a wall clock before this does not look set.
const JAN_2020_UNIX_MS: u64 = 1_577_836_800_000;

/// The epoch floor the daemon applies once `start` has passed, mirroring its rule (README
/// "Epochs strictly increase"): a leader proposes at least the milliseconds since
/// 2020-01-01 of a wall clock that looks set, and no floor (0) on a clock that does not.
/// The daemon renews its floor from the wall clock on every tick, so every epoch proposed
/// after `start` is at least this.
fn floor_before(start: SystemTime) -> u64 {
    let unix_ms = start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    unix_ms.saturating_sub(JAN_2020_UNIX_MS)
}

/// The first epoch of a cluster started at `start` with empty data dirs is above 0 and at
/// least the floor (so the floor is applied: it is far above 1 on a machine whose clock is
/// set, which keeps fencing tokens unique across a wiped data dir).
fn assert_first_epoch(c: &LocalCluster, epoch: u64, start: SystemTime) {
    let floor = floor_before(start);
    assert!(
        epoch > 0 && epoch >= floor,
        "{}",
        c.report(format!(
            "first epoch {epoch}: expected above 0 and at least the floor {floor} (ms since \
             2020 before the start)"
        ))
    );
}

/// A new leadership after the one in `before` has a higher epoch.
fn assert_next_epoch(c: &LocalCluster, epoch: u64, before: u64, what: &str) {
    assert!(
        epoch > before,
        "{}",
        c.report(format!("{what}: epoch {epoch} must be above {before}"))
    );
}

/// A finished process: exit code (None if killed by a signal) and its output.
#[derive(Debug)]
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Kills and reaps the child if the test panics while it runs.
struct Reaper(Option<Child>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `cmd` to completion, output to files (no pipe can fill up); kills it after
/// [`EXIT`] and reports that as a failure.
fn run_to_exit(mut cmd: Command, scratch: &Path) -> Finished {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_path = scratch.join(format!("stdout-{n}"));
    let err_path = scratch.join(format!("stderr-{n}"));
    let out = fs::File::create(&out_path).expect("stdout file");
    let err = fs::File::create(&err_path).expect("stderr file");
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let shown = format!("{cmd:?}");
    let mut reaper = Reaper(Some(cmd.spawn().expect("spawn votecast")));
    let started = Instant::now();
    let status = loop {
        let child = reaper.0.as_mut().expect("child");
        if let Some(status) = child.try_wait().expect("try_wait") {
            reaper.0 = None;
            break status;
        }
        if started.elapsed() > EXIT {
            drop(reaper);
            panic!(
                "{shown} still ran after {EXIT:?} (killed); stderr:\n{}",
                fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Finished {
        code: status.code(),
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

fn votecast(args: &[&str]) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.args(args);
    cmd
}
