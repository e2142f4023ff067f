//! Elections: the vote order, quorum, failover, a leader without a majority and a
//! graceful resign, each with real processes.
//!
//! Scenario numbers refer to the simulator scenarios of the same number
//! (`tests/sim/scenarios.rs`, `sNN_...`), which run the same walk-through in virtual time.

use std::time::{Instant, SystemTime};

use super::{
    agree, assert_all_alive, assert_first_epoch, assert_next_epoch, cluster, floor_before, ms,
    secs, state_of, ELECT,
};

/// Total order of votes (equal zxid → larger id wins) and "a quorum agrees": three nodes
/// started together elect node 3; 1 and 2 follow it; the first established epoch is above
/// 0 and at least the epoch floor (simulator scenario s01).
#[test]
fn s01_three_start_together_equal_zxid_largest_id_leads() {
    let mut c = cluster(3);
    let start = SystemTime::now();
    c.start_all().expect("start nodes");
    let (leader, epoch, took) = agree(&c, "cold start");
    println!(
        "s01: 3 nodes agreed on leader {leader} epoch {epoch} after {:.1} ms",
        ms(took)
    );
    assert_eq!(leader, 3, "{}", c.report("expected leader 3"));
    assert_first_epoch(&c, epoch, start);
    for (id, expected) in [(1, "FOLLOWING"), (2, "FOLLOWING"), (3, "LEADING")] {
        let s = state_of(&c, id);
        assert_eq!(s.state, expected, "{}", c.report(format!("node {id}")));
        assert_eq!(s.id, id);
        assert_eq!(s.zxid, 0);
        assert_eq!(Some(s.pid), c.node(id).pid(), "state file pid of node {id}");
        assert!(
            s.valid_until_unix_ms
                .is_some_and(|v| v >= s.updated_unix_ms),
            "{}",
            c.report(format!("node {id}: a settled node's view has a validity"))
        );
    }
    assert_all_alive(&mut c);
}

/// Quorum is a strict majority, and a late node joins the established leader without a
/// new election (FLE out-of-election path: receivedFollowing / checkLeader): node 1 alone
/// stays LOOKING; with 2 up, 2 leads; 3 started later follows 2 in the same epoch and the
/// leader's round does not move (simulator scenario s02).
#[test]
fn s02_sequential_start_second_leads_third_joins_without_new_election() {
    let mut c = cluster(3);
    let start = SystemTime::now();
    c.start(1).expect("start node 1");
    c.wait_until(ELECT, |c| c.state(1).is_some())
        .unwrap_or_else(|| panic!("{}", c.report("node 1 wrote no state file")));
    let left_looking = c.wait_until(secs(1.0), |c| {
        c.state(1).is_none_or(|s| s.state != "LOOKING")
    });
    assert!(
        left_looking.is_none(),
        "{}",
        c.report("one voter of three is no quorum: node 1 must stay LOOKING")
    );
    assert_eq!(state_of(&c, 1).state, "LOOKING");
    println!("s02: node 1 alone stayed LOOKING for 1 s");

    c.start(2).expect("start node 2");
    let (leader, epoch, took) = agree(&c, "nodes 1 and 2");
    println!(
        "s02: 1 and 2 agreed on {leader} epoch {epoch} after {:.1} ms",
        ms(took)
    );
    assert_eq!(
        leader,
        2,
        "{}",
        c.report("2 of 3 is a quorum; 2 has the larger id")
    );
    assert_first_epoch(&c, epoch, start);
    let leader_round = state_of(&c, 2).round;
    std::thread::sleep(secs(0.5));

    c.start(3).expect("start node 3");
    // While 3 joins, the leader must keep leading in the same round and epoch.
    let mut leader_moved = None;
    let joined = c.wait_until(ELECT, |c| {
        if let Some(s) = c.state(2) {
            if (s.state.as_str(), s.leader, s.epoch, s.round)
                != ("LEADING", Some(2), Some(epoch), leader_round)
            {
                leader_moved.get_or_insert(s);
            }
        }
        c.agreed_leader().is_some()
    });
    if let Some(s) = leader_moved {
        panic!(
            "{}",
            c.report(format!("the leader changed while 3 joined: {s:?}"))
        );
    }
    let joined = joined.unwrap_or_else(|| panic!("{}", c.report("3 did not join")));
    println!("s02: node 3 joined after {:.1} ms", ms(joined));
    assert_eq!(
        c.agreed_leader(),
        Some((2, epoch)),
        "{}",
        c.report("3 follows the established leader 2 in the same epoch")
    );
    assert_eq!(state_of(&c, 3).state, "FOLLOWING");
    assert_eq!(
        state_of(&c, 2).round,
        leader_round,
        "{}",
        c.report("no new election: the leader's round is unchanged")
    );
    assert_all_alive(&mut c);
}

/// A crashed leader is replaced (sync-limit timeout, new round, next best vote: 2), and the
/// new leadership gets a higher epoch, at least the floor of the time of the failover (the
/// floor is renewed on every tick). The old leader restarted with a much higher zxid
/// must not usurp: an established leader is joined, not out-voted (FLE checkLeader on
/// FOLLOWING/LEADING notices; simulator scenario s04).
#[test]
fn s04_leader_killed_second_leads_next_epoch_restarted_old_leader_with_higher_zxid_follows() {
    let mut c = cluster(3);
    let start = SystemTime::now();
    c.start_all().expect("start nodes");
    let (leader, e1, _) = agree(&c, "cold start");
    assert_eq!(leader, 3, "{}", c.report("initial election"));
    assert_first_epoch(&c, e1, start);

    let killed = Instant::now();
    let killed_wall = SystemTime::now();
    c.kill(3).expect("SIGKILL node 3");
    let (leader, e2, _) = agree(&c, "failover after SIGKILL of the leader");
    let failover = killed.elapsed();
    println!("s04: failover after SIGKILL took {:.1} ms", ms(failover));
    assert_eq!(leader, 2, "{}", c.report("failover"));
    assert_next_epoch(&c, e2, e1, "failover");
    // 2 gives up on the silent leader only after sync-limit (300 ms, six ticks), so the
    // floor it proposes with was renewed after the kill.
    assert!(
        e2 >= floor_before(killed_wall),
        "{}",
        c.report(format!(
            "failover epoch {e2} below the floor {} at the kill",
            floor_before(killed_wall)
        ))
    );

    c.set_extra_args(3, ["--zxid", "1000"]);
    let restarted = Instant::now();
    c.start(3).expect("restart node 3");
    let (leader, epoch, _) = agree(&c, "rejoin of the old leader");
    println!(
        "s04: node 3 (zxid 1000) rejoined after {:.1} ms",
        ms(restarted.elapsed())
    );
    assert_eq!((leader, epoch), (2, e2), "{}", c.report("3 must follow 2"));
    let s3 = state_of(&c, 3);
    assert_eq!((s3.state.as_str(), s3.zxid), ("FOLLOWING", 1000));

    // And it stays that way: 3's higher zxid starts no election.
    let mut changed = None;
    c.wait_until(secs(1.5), |c| {
        let agreed = c.agreed_leader();
        if agreed != Some((2, e2)) {
            changed = Some((agreed, c.describe_states()));
            return true;
        }
        false
    });
    if let Some((agreed, seen)) = changed {
        panic!(
            "{}",
            c.report(format!("leadership moved to {agreed:?}:\n{seen}"))
        );
    }
    assert_all_alive(&mut c);
}

/// Larger zxid beats larger id: five nodes with zxids 1:99, 2:102, 3:200, 4:100, 5:101
/// elect 3; after 3 is killed the highest remaining zxid, node 2, wins (simulator scenario s05).
#[test]
fn s05_five_nodes_highest_zxid_wins_then_highest_remaining_zxid_wins() {
    let mut c = cluster(5);
    for (id, zxid) in [(1, 99), (2, 102), (3, 200), (4, 100), (5, 101)] {
        c.set_extra_args(id, ["--zxid".to_string(), zxid.to_string()]);
    }
    let start = SystemTime::now();
    c.start_all().expect("start nodes");
    let (leader, e1, took) = agree(&c, "cold start of five");
    println!("s05: five nodes agreed after {:.1} ms", ms(took));
    assert_eq!(leader, 3, "{}", c.report("3 has the highest zxid"));
    assert_first_epoch(&c, e1, start);

    let killed = Instant::now();
    c.kill(3).expect("SIGKILL node 3");
    let (leader, e2, _) = agree(&c, "failover");
    println!("s05: failover took {:.1} ms", ms(killed.elapsed()));
    assert_eq!(
        leader,
        2,
        "{}",
        c.report("2 has the highest remaining zxid (102)")
    );
    assert_next_epoch(&c, e2, e1, "failover");
    assert_all_alive(&mut c);
}

/// A leader needs a quorum of followers (leader lease / Zab's ping rule): when both
/// followers die, the leader steps down to LOOKING within about sync-limit ticks, stays
/// LOOKING alone, and leads again once one follower is back (simulator scenario s06).
#[test]
fn s06_leader_without_majority_steps_down_and_recovers_with_one_follower() {
    let mut c = cluster(3);
    let start = SystemTime::now();
    c.start_all().expect("start nodes");
    let (leader, e1, _) = agree(&c, "cold start");
    assert_eq!(leader, 3, "{}", c.report("initial election"));
    assert_first_epoch(&c, e1, start);

    let killed = Instant::now();
    c.kill(1).expect("SIGKILL node 1");
    c.kill(2).expect("SIGKILL node 2");
    let stepped_down = c.wait_until(secs(3.0), |c| {
        c.state(3).is_some_and(|s| s.state == "LOOKING")
    });
    let stepped_down = stepped_down.map(|_| killed.elapsed()).unwrap_or_else(|| {
        panic!(
            "{}",
            c.report("leader 3 kept LEADING without a quorum for 3 s")
        )
    });
    println!(
        "s06: leader stepped down {:.1} ms after losing both followers",
        ms(stepped_down)
    );
    assert!(
        stepped_down < secs(1.5),
        "{}",
        c.report(format!("step-down took {stepped_down:?}, expected ~300 ms"))
    );
    let s3 = state_of(&c, 3);
    assert_eq!((s3.leader, s3.epoch), (None, None), "LOOKING has no leader");

    let left_looking = c.wait_until(secs(2.0), |c| {
        c.state(3).is_none_or(|s| s.state != "LOOKING")
    });
    assert!(
        left_looking.is_none(),
        "{}",
        c.report("node 3 alone must stay LOOKING")
    );

    let restarted = Instant::now();
    c.start(2).expect("restart node 2");
    let (leader, epoch, _) = agree(&c, "recovery with one follower");
    println!(
        "s06: leader {leader} epoch {epoch} agreed {:.1} ms after restarting node 2",
        ms(restarted.elapsed())
    );
    // Both have peer epoch e1 and zxid 0, so the larger id wins again, in a new epoch.
    assert_eq!(leader, 3, "{}", c.report("recovery"));
    assert_next_epoch(&c, epoch, e1, "recovery");
    assert_all_alive(&mut c);
}

/// Graceful resign: SIGTERM makes the leader broadcast RESIGN and exit 0; the followers
/// start a new round at once instead of waiting out sync-limit (300 ms), so a new leader
/// is agreed in a few frame times (simulator scenario s11).
#[test]
fn s11_graceful_resign_exits_0_and_hands_over_faster_than_sync_limit() {
    let mut c = cluster(3);
    let start = SystemTime::now();
    c.start_all().expect("start nodes");
    let (leader, e1, _) = agree(&c, "cold start");
    assert_eq!(leader, 3, "{}", c.report("initial election"));
    assert_first_epoch(&c, e1, start);

    let signalled = Instant::now();
    let code = c.terminate(3, secs(5.0)).expect("SIGTERM node 3");
    let exited = signalled.elapsed();
    assert_eq!(
        code,
        Some(0),
        "{}",
        c.report("SIGTERM must end votecast run with status 0")
    );
    let (leader, epoch, _) = agree(&c, "handover after resign");
    let handover = signalled.elapsed();
    println!(
        "s11: leader exited {:.1} ms after SIGTERM; new leader {leader} epoch {epoch} agreed {:.1} ms after SIGTERM",
        ms(exited),
        ms(handover)
    );
    assert_eq!(leader, 2, "{}", c.report("handover"));
    assert_next_epoch(&c, epoch, e1, "handover");
    assert!(
        handover < secs(1.0),
        "{}",
        c.report(format!(
            "handover took {handover:?}; a resign must not wait for sync-limit"
        ))
    );
    assert!(
        c.log(3).contains("resigning"),
        "{}",
        c.report("node 3 should log its resignation")
    );
    assert_all_alive(&mut c);
}
