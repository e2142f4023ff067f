//! Health checks with real processes: `--track 'test -f FILE'` on each node. Removing the
//! leader's file moves leadership away within `--track-fall` intervals plus a failover;
//! the unhealthy node keeps voting (FOLLOWING); recreating its file deposes nobody.

use std::fs;
use std::time::{Duration, Instant};

use super::{agree, assert_all_alive, cluster, ms, votecast, ELECT};

/// The check interval of this test (the default is 1 s; shorter keeps the test quick).
const INTERVAL: Duration = Duration::from_millis(100);
/// `--track-fall` and `--track-rise` (the defaults).
const FALL: u32 = 2;
const RISE: u32 = 2;

#[test]
fn an_unhealthy_leader_hands_over_keeps_voting_and_deposes_nobody_when_healthy_again() {
    let mut c = cluster(3);
    let files: Vec<_> = (1..=3u64)
        .map(|id| c.dir.join(format!("healthy-{id}")))
        .collect();
    for (id, file) in (1..=3u64).zip(&files) {
        fs::write(file, "").expect("create the health file");
        c.set_extra_args(
            id,
            [
                "--track".to_string(),
                format!("test -f '{}'", file.display()),
                "--track-interval".to_string(),
                format!("{}ms", INTERVAL.as_millis()),
            ],
        );
    }
    c.start_all().expect("start nodes");
    // Every node starts ineligible until its first check passes, so whichever passes
    // first may lead (usually 3).
    let (old, e1, _) = agree(&c, "cold start with passing checks");
    std::thread::sleep(Duration::from_millis(300));
    let old_file = &files[old as usize - 1];

    // The leader's check starts failing.
    let removed = Instant::now();
    fs::remove_file(old_file).expect("remove the leader's health file");
    let moved = c.wait_until(ELECT, |c| {
        c.agreed_leader().is_some_and(|(leader, _)| leader != old)
    });
    let moved = moved.unwrap_or_else(|| {
        panic!(
            "{}",
            c.report("leadership did not move away from the unhealthy node")
        )
    });
    let (leader, e2) = c.agreed_leader().expect("agreed");
    println!(
        "unhealthy leader {old} (fall {FALL} x {} ms): new leader {leader} agreed {:.1} ms \
         after the health file was removed",
        INTERVAL.as_millis(),
        ms(moved)
    );
    let best = if old == 3 { 2 } else { 3 };
    assert_eq!(leader, best, "{}", c.report("the best healthy node leads"));
    assert!(e2 > e1, "{}", c.report("a new epoch"));
    // Bound: fall intervals (plus the run in flight), the lease the old leader published
    // (at most 300 ms) and an election; generous for a loaded 2-core machine.
    let bound = INTERVAL * (FALL + 1) + Duration::from_millis(300) + Duration::from_secs(2);
    assert!(
        removed.elapsed() >= INTERVAL,
        "not before a failing run was seen"
    );
    assert!(
        moved < bound,
        "{}",
        c.report(format!("took {moved:?}, bound {bound:?}"))
    );
    // The unhealthy node keeps voting: it follows the new leader (`votecast status`).
    let state_file = c.node(old).state_file.clone();
    let status = super::run_to_exit(
        votecast(&["status", "--state-file", state_file.to_str().unwrap()]),
        c.dir.path(),
    );
    assert_eq!(status.code, Some(0), "{status:?}");
    assert!(
        status.stdout.contains("FOLLOWING"),
        "{}",
        c.report(format!("node {old}'s status: {status:?}"))
    );
    assert!(
        c.log(old).contains("not eligible to lead; stepping down"),
        "{}",
        c.report(format!("node {old} logs its stand-down"))
    );

    // Healthy again: after rise intervals it is eligible, but 2 keeps leading.
    fs::write(old_file, "").expect("recreate the health file");
    let eligible = c.wait_until(ELECT, |c| {
        c.log(old)
            .matches("health checks pass: eligible to lead")
            .count()
            >= 2
    });
    assert!(
        eligible.is_some(),
        "{}",
        c.report(format!("node {old} never became eligible again"))
    );
    std::thread::sleep(INTERVAL * (RISE + 5));
    let (leader, e3, _) = agree(&c, "after node 3 recovered");
    assert_eq!(
        (leader, e3),
        (best, e2),
        "{}",
        c.report("recovery must not depose the healthy leader")
    );
    assert_all_alive(&mut c);
}

#[test]
fn a_node_whose_checks_never_passed_is_not_elected() {
    let mut c = cluster(3);
    // Node 3 (the best by id) has a failing check from the start.
    c.set_extra_args(3, ["--track", "false", "--track-interval", "100ms"]);
    c.start_all().expect("start nodes");
    let (leader, _, _) = agree(&c, "cold start");
    assert_eq!(leader, 2, "{}", c.report("3 is never eligible"));
    std::thread::sleep(Duration::from_millis(500));
    let (leader, _, _) = agree(&c, "later");
    assert_eq!(leader, 2, "{}", c.report("still 2"));
    assert!(
        c.log(3)
            .contains("health check track command `false` has not passed yet"),
        "{}",
        c.report("node 3 says why")
    );
    assert_all_alive(&mut c);
}
