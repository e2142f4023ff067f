//! The `--zxid-file` of a running node, and `votecast status` of live and dead nodes.

use std::fs;

use votecast::cluster::TempDir;

use super::{agree, cluster, ms, run_to_exit, secs, state_of, votecast};

/// `--zxid-file`: the application's data version is re-read while the node runs, so the
/// next election uses the new value (zxid beats id); a malformed file keeps the last good
/// value and is logged.
#[test]
fn zxid_file_is_reread_for_the_next_election_and_bad_content_keeps_the_last_value() {
    let mut c = cluster(3);
    let scratch = TempDir::new("votecast-zxid").expect("scratch dir");
    let file1 = scratch.path().join("zxid1");
    let file2 = scratch.path().join("zxid2");
    fs::write(&file1, "5\n").unwrap();
    fs::write(&file2, "1\n").unwrap();
    c.set_extra_args(1, ["--zxid-file".to_string(), file1.display().to_string()]);
    c.set_extra_args(2, ["--zxid-file".to_string(), file2.display().to_string()]);
    c.start_all().expect("start");
    let (leader, _, _) = agree(&c, "start");
    assert_eq!(leader, 1, "{}", c.report("zxid 5 beats ids 2 and 3"));

    // Node 2's data advances; node 1's file is damaged.
    fs::write(&file2, "100\n").unwrap();
    fs::write(&file1, "not a number\n").unwrap();
    let reread = c.wait_until(secs(5.0), |c| {
        c.state(2).is_some_and(|s| s.zxid == 100) && c.log(1).contains("zxid file")
    });
    assert!(
        reread.is_some(),
        "{}",
        c.report("node 2 re-reads its zxid file; node 1 logs its bad file")
    );
    assert_eq!(state_of(&c, 1).zxid, 5, "the last good value is kept");

    c.kill(1).expect("kill the leader");
    let (leader, _, took) = agree(&c, "failover");
    println!("zxid-file failover to node {leader} in {:.1} ms", ms(took));
    assert_eq!(leader, 2, "{}", c.report("zxid 100 beats the larger id 3"));
}

/// `votecast status`: fresh while the node runs (exit 0), STALE once the process is gone
/// (exit 3), both as text and as JSON.
#[test]
fn status_reports_a_live_leader_and_a_dead_one_as_stale() {
    let mut c = cluster(1);
    c.start_all().expect("start");
    let (leader, epoch, _) = agree(&c, "start");
    let state_file = c.node(leader).state_file.display().to_string();
    let scratch = TempDir::new("votecast-status").expect("scratch dir");

    let live = run_to_exit(
        votecast(&["status", "--state-file", &state_file]),
        scratch.path(),
    );
    assert_eq!(live.code, Some(0), "{live:?}");
    assert!(live.stdout.contains("LEADING"), "{live:?}");
    assert!(!live.stdout.contains("STALE"), "{live:?}");
    assert!(live.stdout.contains(&format!("epoch {epoch}")), "{live:?}");

    c.kill(leader).expect("kill");
    let dead = run_to_exit(
        votecast(&["status", "--state-file", &state_file]),
        scratch.path(),
    );
    assert_eq!(dead.code, Some(3), "{dead:?}");
    assert!(dead.stdout.contains("STALE"), "{dead:?}");
    let json = run_to_exit(
        votecast(&["status", "--state-file", &state_file, "--json"]),
        scratch.path(),
    );
    assert_eq!(json.code, Some(3), "{json:?}");
    assert!(
        json.stdout.contains("\"stale\": true") || json.stdout.contains("\"stale\":true"),
        "{json:?}"
    );
}
