//! votecast on an emulated LAN under faults: real `votecast run` processes in network
//! namespaces, joined by veth pairs to a Linux bridge, broken by a seeded fault schedule.
//!
//! Creates network namespaces and installs nftables rules in them. As root (CI) it does so
//! directly, and installs iproute2/nftables with apt-get when they are missing; as a normal
//! user every test re-runs itself in an unprivileged user namespace where it is root over
//! namespaces it owns (`lan/userns.rs`; needs iproute2, nftables and util-linux
//! installed). It fails, never skips, when it cannot set up, naming the reason (a missing
//! tool, or the sysctl that forbids unprivileged user namespaces). Nothing touches the
//! machine's own interfaces; see `lan/netns.rs` for the topology and the clean-up
//! guarantees.
//!
//! Every schedule (see `lan/schedule.rs`): build a LAN of N = 3, 5 or 7 hosts, start one
//! node per host, wait for agreement, run 3–6 overlapping faults (SIGKILL + restart,
//! wipe of the data dir + restart, SIGSTOP/SIGCONT, link down/up, interface deleted and
//! recreated, symmetric partition of a minority, one-way partition, random input loss), heal everything, leave a minority
//! SIGKILLed in some schedules, and wait until every up voter agrees on one leader. Then
//! check the record (`lan/record.rs`): no two leaderships overlap in real time, epochs of
//! successive leaders strictly increase, a node cut off from every quorum does not lead,
//! and agreement came within `LIVENESS_BOUND` of the heal. Every other schedule of each
//! cluster size runs with authenticated frames (`--key-file`).
//!
//! Wiped data dirs: a wiped node forgets its accepted epochs and promises, so, as README
//! "Limits" asks, the harness keeps it down for at least twice sync-limit ticks
//! (`schedule::WIPE_MIN_DOWN_MS`) before restarting it. It is in every safety check like
//! any other node. Its new incarnation counter starts at the wall-clock second (the
//! driver's floor), above every incarnation it used before, so peers accept its frames.
//! The schedule leaves a quorum of the other voters up and the heal is measured on them;
//! then the wiped nodes must join the same agreement within the liveness bound too.
//!
//! Environment:
//! - `VOTECAST_LAN_SCHEDULES=K` runs K schedules (default 21: 7 per cluster size);
//! - `VOTECAST_LAN_BASE=S` starts the seeds at S (default 0);
//! - `VOTECAST_LAN_SEED=S` replays the one schedule of seed S;
//! - `VOTECAST_LAN_KEEP=1` keeps every failing schedule's logs, state and hook files;
//! - `VOTECAST_LAN_EXE=PATH` runs that `votecast` binary instead of the one cargo built
//!   (CI's unprivileged run: a copy its user can read).
//!
//! A seed fixes the cluster size (3, 5, 7 for seed mod 3 = 0, 1, 2), so each of the three
//! tests runs its own share of the seeds; they run in parallel.
//!
//! This file owns the tests, the seed selection and the report; `lan/drive.rs` runs one
//! schedule end to end and `lan/run.rs` holds the state of a schedule in progress.
//! `lan/unicast.rs` holds the `--peers` tests and multicast on a bridge that drops it or
//! snoops IGMP.
//! `lan/link.rs` tests the interface lifecycle (deleted and recreated, down and up, a new
//! address, absent at start) on its own. `lan/vip.rs` tests the floating IP (`--vip`) with
//! a client namespace probing it through each fault of the leader. `lan/appliance.rs` tests
//! an IPv6 floating address on the wire (the client's neighbour entry rewritten by the
//! unsolicited advertisement) and a leader handing over when its `--track` check fails.

mod appliance;
mod drive;
mod link;
mod netns;
mod record;
mod run;
mod schedule;
mod unicast;
mod userns;
mod vip;
mod wallclock;

use std::path::Path;
use std::time::{Duration, Instant};

use votecast::daemon::state_file::read_state_file;

use drive::{authenticated, run_schedule};
use netns::Lan;
use record::{analyse, Cut, Facts};
use schedule::{size_of, Schedule};

const EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// After the last fault heals (with a quorum of non-wiped voters up), every up voter
/// agrees on one leader within this. Measured (see the report printed by each test).
const LIVENESS_BOUND: Duration = Duration::from_secs(10);

struct Failure {
    seed: u64,
    message: String,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Run this test's share (cluster size `n`) of the seeds and report.
fn run_set(n: usize) {
    netns::ensure_tools().unwrap_or_else(|e| panic!("LAN harness cannot set up: {e}"));
    let seeds: Vec<u64> = match env_u64("VOTECAST_LAN_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count = env_u64("VOTECAST_LAN_SCHEDULES").unwrap_or(21);
            let base = env_u64("VOTECAST_LAN_BASE").unwrap_or(0);
            (base..base + count).collect()
        }
    };
    let seeds: Vec<u64> = seeds.into_iter().filter(|&s| size_of(s) == n).collect();
    let begun = Instant::now();
    let load_before = loadavg();
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for &seed in &seeds {
        let sched = Schedule::generate(seed);
        match run_schedule(&sched) {
            Ok(o) => {
                println!(
                    "lan n={n} seed={seed}{}: ok in {:.1} s, {} leaderships (smallest gap {:?} ms), agreement {:.0} ms after heal{}",
                    if authenticated(seed) { " (authenticated)" } else { "" },
                    o.took.as_secs_f64(),
                    o.leaderships,
                    o.min_gap_ms,
                    o.liveness_ms,
                    if o.wiped > 0 {
                        format!(", wiped node agreed: {}", o.wiped_agreed == o.wiped)
                    } else {
                        String::new()
                    }
                );
                outcomes.push(o);
            }
            Err(message) => {
                println!("lan n={n} seed={seed}: FAILED");
                eprintln!(
                    "=== FAILED schedule (replay: VOTECAST_LAN_SEED={seed} cargo test --test lan) ===\n{message}"
                );
                failures.push(Failure { seed, message });
            }
        }
    }
    let mut live: Vec<f64> = outcomes.iter().map(|o| o.liveness_ms).collect();
    live.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if live.is_empty() {
            0.0
        } else {
            live[((live.len() - 1) as f64 * p).round() as usize]
        }
    };
    let min_gap = outcomes.iter().filter_map(|o| o.min_gap_ms).min();
    let overlaps: usize = outcomes.iter().map(|o| o.overlaps.len()).sum();
    println!(
        "lan n={n}: {} schedules, {} passed, {} failed (seeds {:?}); overlaps among passed: {overlaps}; \
         leaderships checked: {}; heal→agreement median {:.0} ms, p90 {:.0} ms, max {:.0} ms (bound {:?}); \
         cold start max {:.0} ms; smallest gap between successive leaderships: {min_gap:?} ms; \
         cut-off periods checked: {}; leaderships seen only by hooks: {}; wiped nodes that rejoined the agreement: {}/{}; \
         {:.1} s wall; loadavg before: {load_before}, after: {}",
        seeds.len(),
        outcomes.len(),
        failures.len(),
        failures.iter().map(|f| f.seed).collect::<Vec<_>>(),
        outcomes.iter().map(|o| o.leaderships).sum::<usize>(),
        pct(0.5),
        pct(0.9),
        pct(1.0),
        LIVENESS_BOUND,
        outcomes.iter().map(|o| o.start_ms).fold(0.0, f64::max),
        outcomes.iter().map(|o| o.cuts_checked).sum::<usize>(),
        outcomes.iter().map(|o| o.missed_by_poller).sum::<usize>(),
        outcomes.iter().map(|o| o.wiped_agreed).sum::<usize>(),
        outcomes.iter().map(|o| o.wiped).sum::<usize>(),
        begun.elapsed().as_secs_f64(),
        loadavg(),
    );
    if !failures.is_empty() {
        let first = &failures[0];
        panic!(
            "{} of {} LAN schedules failed: seeds {:?} (replay one with VOTECAST_LAN_SEED=SEED). First failure, seed {}:\n{}",
            failures.len(),
            seeds.len(),
            failures.iter().map(|f| f.seed).collect::<Vec<_>>(),
            first.seed,
            first.message
        );
    }
}

#[test]
fn lan_faults_3_nodes() {
    userns::as_root(|| run_set(3));
}

#[test]
fn lan_faults_5_nodes() {
    userns::as_root(|| run_set(5));
}

#[test]
fn lan_faults_7_nodes() {
    userns::as_root(|| run_set(7));
}

/// IPv6 groups work too. `lo` in this VM carries no IPv6 multicast, so this runs
/// on the namespace LAN: three nodes on the link-local group `[ff02::1:77]:7277` (sent on
/// the named veth interface, hop limit 1) elect, fail over after SIGKILL of the leader,
/// and the old leader rejoins as a follower.
#[test]
fn ipv6_group_elects_fails_over_and_rejoins() {
    userns::as_root(ipv6_group);
}

fn ipv6_group() {
    let mut lan = Lan::new(Path::new(EXE), "v6", 3).expect("build the LAN");
    lan.group = "[ff02::1:77]:7277".to_string();
    for i in 1..=3 {
        lan.wait_ipv6_link_local(i, Duration::from_secs(10))
            .expect("IPv6 link-local address");
    }
    // Agreement of `nodes` on one leader with an epoch of at least `min_epoch`.
    let agreed = |lan: &Lan, nodes: &[usize], min_epoch: u64, what: &str| -> (u64, u64, Duration) {
        let start = Instant::now();
        loop {
            let states: Vec<_> = nodes
                .iter()
                .map(|&i| read_state_file(&lan.state_file(i)).ok())
                .collect();
            let leader = states[0]
                .as_ref()
                .and_then(|s| s.leader.zip(s.epoch))
                .filter(|&(_, e)| e >= min_epoch);
            let all = leader.is_some_and(|(l, e)| {
                states.iter().zip(nodes).all(|(s, &i)| {
                    s.as_ref().is_some_and(|s| {
                        s.leader == Some(l)
                            && s.epoch == Some(e)
                            && s.state
                                == if i as u64 == l {
                                    "LEADING"
                                } else {
                                    "FOLLOWING"
                                }
                    })
                })
            });
            if let (true, Some((l, e))) = (all, leader) {
                return (l, e, start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(10) {
                let logs: String = nodes.iter().map(|&i| lan.log(i)).collect();
                panic!("{what}: no agreement of {nodes:?} within 10 s: {states:?}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    for i in 1..=3 {
        lan.start(i).expect("start node");
    }
    let (leader, epoch, took) = agreed(&lan, &[1, 2, 3], 1, "cold start");
    println!(
        "ipv6: node {leader} leads epoch {epoch} after {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(leader, 3, "equal zxids: the largest id leads");
    assert!(
        lan.log(1).contains("ff02::1:77"),
        "node 1 runs on the IPv6 group: {}",
        lan.log(1)
    );
    // Followers answer the leader by unicast to its link-local address (with the
    // interface as scope): the term must hold, and the leader hear both, while the
    // followers hear only the leader.
    std::thread::sleep(Duration::from_secs(1));
    let (held, held_epoch, _) = agreed(&lan, &[1, 2, 3], 1, "one second later");
    assert_eq!((held, held_epoch), (leader, epoch), "the term held");
    let heard = |i: usize| {
        read_state_file(&lan.state_file(i))
            .ok()
            .and_then(|s| s.heard)
    };
    let ids = |i: usize| heard(i).map(|h| h.iter().map(|v| v.id).collect::<Vec<_>>());
    assert_eq!(ids(3), Some(vec![1, 2]), "the leader hears both");
    assert_eq!(ids(1), Some(vec![3]), "a follower hears its leader alone");
    lan.kill(3).expect("kill the leader");
    let (next, next_epoch, took) = agreed(&lan, &[1, 2], epoch + 1, "failover");
    println!(
        "ipv6: after SIGKILL of 3, node {next} leads epoch {next_epoch} after {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(next, 2);
    assert!(next_epoch > epoch);
    lan.start(3).expect("restart node 3");
    let (again, again_epoch, took) = agreed(&lan, &[1, 2, 3], next_epoch, "rejoin");
    println!(
        "ipv6: node 3 rejoined after {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(
        (again, again_epoch),
        (2, next_epoch),
        "3 follows the new leader"
    );
}

/// The checker itself: a synthetic record with an overlap, a non-increasing epoch and a
/// cut-off leader is flagged three ways; the same record without them passes.
#[test]
fn checker_flags_overlap_epoch_regression_and_cut_off_leader() {
    use record::{Snap, CUT_GRACE_MS};
    use votecast::daemon::state_file::StateSnapshot;
    let snap = |node: usize, pid: u32, state: &str, epoch: u64, at: u64, until: u64| Snap {
        node,
        s: StateSnapshot {
            id: node as u64,
            state: state.into(),
            leader: (state != "LOOKING").then_some(node as u64),
            epoch: (state != "LOOKING").then_some(epoch),
            round: 1,
            zxid: 0,
            pid,
            updated_unix_ms: at,
            updated_boottime_ms: None,
            valid_until_unix_ms: (state != "LOOKING").then_some(until),
            valid_until_boottime_ms: None,
            last_election_ms: None,
            duplicate_id: false,
            heard: None,
        },
    };
    let facts = |cuts: Vec<Cut>| Facts {
        spawned: vec![(1, 101), (2, 102), (3, 103)],
        kills: vec![(101, 1_500)],
        cuts,
        hooks: vec![Vec::new(); 3],
    };
    // Node 1 leads epoch 1 from 1000 (lease to 1300, renewed to 1600) and is killed at
    // 1500; node 2 leads epoch 2 from 1700 and steps down at 2000: clean.
    let clean = vec![
        snap(1, 101, "LEADING", 1, 1_000, 1_300),
        snap(1, 101, "LEADING", 1, 1_250, 1_600),
        snap(2, 102, "LEADING", 2, 1_700, 2_000),
        snap(2, 102, "LOOKING", 0, 1_950, 0),
    ];
    let a = analyse(&clean, &facts(Vec::new()));
    assert!(a.overlaps.is_empty() && a.violations.is_empty(), "{a:?}");
    assert_eq!(a.leaderships.len(), 2);
    assert_eq!(
        a.leaderships[0].spans,
        vec![(1_000, 1_500)],
        "ends at the kill"
    );
    assert_eq!(
        a.leaderships[1].spans,
        vec![(1_700, 1_950)],
        "ends at LOOKING"
    );
    assert_eq!(a.min_gap_ms, Some(200));

    // Node 3 leads epoch 2 (not above node 2's... and overlapping node 2).
    let mut bad = clean.clone();
    bad.push(snap(3, 103, "LEADING", 2, 1_900, 2_100));
    let a = analyse(&bad, &facts(Vec::new()));
    assert_eq!(a.overlaps.len(), 1, "{a:?}");
    assert!(a.overlaps[0].contains("OVERLAP 50 ms"), "{a:?}");
    assert!(
        a.violations
            .iter()
            .any(|v| v.contains("epoch did not increase")),
        "{a:?}"
    );

    // Node 2 cut off from 1000 on: leading from 1700 is past the grace.
    let cut = Cut {
        start_ms: 1_000,
        end_ms: 3_000,
        nodes: vec![2],
    };
    const { assert!(1_000 + CUT_GRACE_MS < 1_700) };
    let a = analyse(&clean, &facts(vec![cut]));
    assert!(a.violations.iter().any(|v| v.contains("cut off")), "{a:?}");

    // A leadership only the hook log saw still takes part in the overlap check.
    let mut f = facts(Vec::new());
    f.hooks[2] = vec![
        record::HookLine {
            at_ms: 1_800,
            state: "LEADING".into(),
            epoch: Some(3),
        },
        record::HookLine {
            at_ms: 1_900,
            state: "LOOKING".into(),
            epoch: None,
        },
    ];
    let a = analyse(&clean, &f);
    assert_eq!(a.missed_by_poller, 1);
    assert_eq!(a.overlaps.len(), 1, "{a:?}");
}
