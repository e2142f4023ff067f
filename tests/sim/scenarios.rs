//! Named election scenarios (the classic FastLeaderElection walk-throughs: servers started
//! together or one by one, crashes, restarts, partitions, observers, loss), run in the
//! deterministic simulator.
//! Each test names the FastLeaderElection rule it exercises. Invariants (one leader at a
//! time, increasing epochs, observers never lead) are checked on every step by the
//! simulator; `assert_ok` reports the seed of any violation.

use std::time::Duration;

use votecast_core::election::ServerState::{Following, Leading, Looking, Observing};
use votecast_testkit::sim::{NetConfig, Sim};

const SEED: u64 = 7;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Total order (equal zxid → bigger id wins) and the "every voter agrees" rule: three
/// servers started together elect server 3, and 1 and 2 follow it.
#[test]
fn s01_three_start_together_equal_zxid_largest_id_leads() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    let (leader, took) = sim.await_agreement(ms(2000)).expect("agreement");
    sim.assert_ok();
    assert_eq!(leader, 3);
    assert_eq!(sim.state_of(1), Some(Following));
    assert_eq!(sim.state_of(2), Some(Following));
    assert_eq!(sim.epoch_of(3), Some(1), "first established epoch is 1");
    // Everyone agrees at once, so no finalizeWait (50 ms) is spent: a few frame delays.
    assert!(took < ms(20), "took {took:?}");
}

/// Quorum (strict majority) and joining an established ensemble (receivedFollowing /
/// checkLeader): 1 alone stays LOOKING; with 2 up, 2 leads; 3 later follows 2 without a
/// new election.
#[test]
fn s02_sequential_start_second_server_leads_third_joins() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start(1);
    sim.run_for(ms(3000));
    assert_eq!(sim.state_of(1), Some(Looking), "one of three is no quorum");
    let frames_alone = sim.node(1).frames_sent;
    // Backoff: from 50 ms doubling to 2 s, so a handful of frames in 3 s, not 60.
    assert!(frames_alone <= 8, "node 1 alone sent {frames_alone} frames");

    sim.start(2);
    let (leader, _) = sim.await_agreement(ms(2000)).expect("1 and 2 agree");
    assert_eq!(leader, 2);
    let epoch = sim.epoch_of(2);
    let leader_round = sim.node(2).node.as_ref().unwrap().round();
    sim.run_for(ms(2000));

    sim.start(3);
    let (leader, _) = sim.await_agreement(ms(2000)).expect("3 joins");
    sim.assert_ok();
    assert_eq!(leader, 2, "3 follows the established leader");
    assert_eq!(sim.epoch_of(3), epoch, "same epoch: no new election");
    assert_eq!(sim.node(2).node.as_ref().unwrap().round(), leader_round);
    // The leader and 1 never left their states.
    assert_eq!(sim.node(2).transitions.len(), 1);
    assert_eq!(sim.node(1).transitions.len(), 1);
}

/// A restarted follower rejoins the same leader via the out-of-election path; nobody else
/// changes state.
#[test]
fn s03_follower_restart_rejoins_same_leader() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    sim.await_agreement(ms(2000)).expect("agreement");
    let epoch = sim.epoch_of(3);
    sim.crash(1);
    sim.run_for(ms(1000));
    assert_eq!(sim.state_of(3), Some(Leading), "3 and 2 are still a quorum");
    sim.start(1);
    let (leader, _) = sim.await_agreement(ms(2000)).expect("rejoin");
    sim.run_for(ms(1000));
    sim.assert_ok();
    assert_eq!(leader, 3);
    assert_eq!(sim.epoch_of(1), epoch);
    assert_eq!(sim.node(3).transitions.len(), 1, "leader unchanged");
    assert_eq!(sim.node(2).transitions.len(), 1, "other follower unchanged");
}

/// Leader failure: followers time out after syncLimit and elect 2 (equal zxid, bigger
/// id). The old leader restarts with a higher zxid and follows 2 instead of usurping it
/// (outofelection quorum + checkLeader).
#[test]
fn s04_leader_crash_then_restart_with_higher_zxid_follows() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    sim.await_agreement(ms(2000)).expect("agreement");
    sim.crash(3);
    let (leader, took) = sim.await_agreement(ms(3000)).expect("failover");
    assert_eq!(leader, 2);
    assert_eq!(sim.epoch_of(2), Some(2));
    // Detection (6 ticks of 50 ms) + finalizeWait (3 is silent, so not everyone agrees).
    assert!(took < ms(600), "failover took {took:?}");

    sim.set_zxid(3, 1000);
    sim.start(3);
    let (leader, _) = sim.await_agreement(ms(2000)).expect("rejoin");
    sim.run_for(ms(2000));
    sim.assert_ok();
    assert_eq!(leader, 2);
    assert_eq!(sim.leaders(), vec![2]);
    assert_eq!(sim.state_of(3), Some(Following));
}

/// zxid dominates id: five servers, leader 3 crashes, zxids 1:99 2:102 4:100 5:101 → 2.
#[test]
fn s05_five_servers_highest_zxid_wins() {
    let mut sim = Sim::new(SEED, 5, 0, NetConfig::PERFECT);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    assert_eq!(leader, 5);
    // Make 3 the leader first: restart everyone with 3 holding the highest zxid.
    for id in 1..=5 {
        sim.crash(id);
    }
    sim.set_zxid(3, 50);
    sim.run_for(ms(100));
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(3000)).expect("agreement");
    assert_eq!(leader, 3);
    for (id, zxid) in [(1, 99), (2, 102), (4, 100), (5, 101)] {
        sim.set_zxid(id, zxid);
    }
    sim.crash(3);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("failover");
    sim.assert_ok();
    assert_eq!(leader, 2);
}

/// FLE with leases: a leader that loses its majority steps down; no leader exists until
/// a majority is back.
#[test]
fn s06_leader_without_majority_steps_down() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    sim.await_agreement(ms(2000)).expect("agreement");
    sim.run_for(ms(1000));
    let crashed_at = sim.now_us;
    sim.crash(1);
    sim.crash(2);
    sim.run_for(ms(500));
    assert_eq!(sim.state_of(3), Some(Looking), "lease ran out");
    let stepped_down_after = sim.node(3).transitions.last().unwrap().at_us - crashed_at;
    // The lease is 294 ms after the last acknowledged heartbeat (300 ms · 0.99/1.01), and
    // that heartbeat went out at most one tick (50 ms) before the crash.
    assert!(
        (244_000..=294_100).contains(&stepped_down_after),
        "stepped down {stepped_down_after} us after losing its followers"
    );
    sim.run_for(ms(5000));
    assert!(sim.leaders().is_empty(), "no leader without a majority");
    sim.start(1);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("majority back");
    sim.assert_ok();
    assert_eq!(leader, 3);
    assert_eq!(sim.epoch_of(3), Some(2), "new term, new epoch");
}

/// zxid beats id in a running cluster: leader 2 fails, zxids 1:123 3:122 → 1 leads.
#[test]
fn s07_running_cluster_leader_fails_higher_zxid_wins() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.set_zxid(2, 10);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    assert_eq!(leader, 2);
    sim.set_zxid(1, 123);
    sim.set_zxid(3, 122);
    sim.crash(2);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("failover");
    sim.assert_ok();
    assert_eq!(leader, 1);
}

/// Majority quorum under partition: of five, only the side of three can have a leader;
/// after healing there is exactly one leader for everyone.
#[test]
fn s08_partition_two_three_only_majority_leads() {
    let mut sim = Sim::new(SEED, 5, 0, NetConfig::PERFECT);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    assert_eq!(leader, 5);
    // The leader lands on the minority side.
    sim.partition(&[4, 5], &[1, 2, 3]);
    sim.run_for(ms(3000));
    assert_eq!(sim.leaders(), vec![3], "majority side elects 3");
    assert_eq!(sim.state_of(4), Some(Looking));
    assert_eq!(sim.state_of(5), Some(Looking));
    sim.heal();
    let (leader, _) = sim.await_agreement(ms(3000)).expect("heal");
    sim.run_for(ms(1000));
    sim.assert_ok();
    assert_eq!(leader, 3, "the minority joins the established leader");
    assert_eq!(sim.leaders(), vec![3]);
}

/// Observers are not voters: they learn the leader, report OBSERVING, never lead and do not
/// count toward a quorum.
#[test]
fn s09_observer_learns_leader_never_leads() {
    // Voters 1..=3, observer 4 (its id is the largest, so it would win if it could).
    let mut sim = Sim::new(SEED, 3, 1, NetConfig::PERFECT);
    sim.start(4);
    sim.start(1);
    sim.run_for(ms(2000));
    assert!(
        sim.leaders().is_empty(),
        "voter 1 + observer 4 is no quorum"
    );
    sim.start(2);
    sim.start(3);
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    assert_eq!(leader, 3);
    assert_eq!(sim.state_of(4), Some(Observing));
    assert_eq!(sim.leader_of(4), Some(3));
    sim.crash(3);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("failover");
    assert_eq!(leader, 2);
    assert_eq!(sim.leader_of(4), Some(2));
    sim.assert_ok();
}

/// Notification backoff is the only retransmission and suffices: 30 % loss on every link.
#[test]
fn s10_thirty_percent_loss_still_converges() {
    let net = NetConfig {
        loss_percent: 30,
        duplicate_percent: 5,
        min_delay_us: 100,
        max_delay_us: 2000,
    };
    for seed in 0..20 {
        let mut sim = Sim::new(seed, 5, 1, net);
        sim.randomize_drift(10_000);
        sim.start_all();
        let agreed = sim.await_agreement(Duration::from_secs(10));
        sim.assert_ok();
        assert!(
            agreed.is_some(),
            "seed {seed}: no agreement\n{}",
            sim.history()
        );
        let (leader, _) = agreed.unwrap();
        sim.crash(leader);
        let agreed = sim.await_agreement(Duration::from_secs(10));
        sim.assert_ok();
        assert!(
            agreed.is_some(),
            "seed {seed}: no failover\n{}",
            sim.history()
        );
    }
}

/// Graceful resign: followers start a new round at once and the resigned node is left out
/// of "every voter agrees", so the handover needs neither syncLimit nor finalizeWait.
#[test]
fn s11_graceful_resign_hands_over_without_timeouts() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    sim.await_agreement(ms(2000)).expect("agreement");
    sim.run_for(ms(500));
    sim.shutdown(3);
    let (leader, took) = sim.await_agreement(ms(2000)).expect("handover");
    sim.assert_ok();
    assert_eq!(leader, 2);
    assert!(took < ms(20), "handover took {took:?}");
}

/// A single-voter cluster is its own quorum.
#[test]
fn s12_single_voter_leads_alone() {
    let mut sim = Sim::new(SEED, 1, 1, NetConfig::PERFECT);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(1000)).expect("agreement");
    sim.assert_ok();
    assert_eq!(leader, 1);
    assert_eq!(sim.state_of(2), Some(Observing));
}

/// Lease safety across a fast restart: leader 3 is cut off from 2, so its lease rests on
/// 1 alone. 1 crashes and restarts at once and, with 2, elects 2. The restart quarantine
/// keeps 1 from supporting 2 until 3's lease (built on 1's pre-crash echoes) has run out,
/// so the two leaderships never overlap.
#[test]
fn s13_fast_restart_cannot_lend_a_lease_twice() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    sim.await_agreement(ms(2000)).expect("agreement");
    sim.run_for(ms(500));
    sim.partition(&[3], &[2]);
    // 2 times out and looks; 1 still follows 3, so 3 keeps its lease through 1.
    sim.run_for(ms(400));
    assert_eq!(sim.state_of(3), Some(Leading));
    assert_eq!(sim.state_of(2), Some(Looking));
    let crash_at = sim.now_us;
    sim.crash(1);
    sim.start(1);
    sim.run_for(ms(2000));
    sim.assert_ok();
    assert_eq!(sim.leaders(), vec![2]);
    let took_over = sim.node(2).transitions.last().unwrap().at_us - crash_at;
    assert!(
        took_over >= 294_000,
        "2 must wait out 3's lease ({took_over} us after the restart)"
    );
}

/// Quorum of five (three) and joining an established ensemble: five servers started one
/// by one. With one or two up nobody leads (no majority of five); once 3 is up, 3 leads
/// (largest id among equal zxids, and three of five are a majority). 4 and 5 then join
/// as followers through the out-of-election path: no new election, so the leader keeps
/// its round and epoch and nobody who was up changes state.
#[test]
fn s14_five_started_one_by_one_third_leads_fourth_and_fifth_follow() {
    let mut sim = Sim::new(SEED, 5, 0, NetConfig::PERFECT);
    sim.start(1);
    sim.run_for(ms(3000));
    assert_eq!(sim.state_of(1), Some(Looking), "one of five is no quorum");
    sim.start(2);
    sim.run_for(ms(3000));
    assert_eq!(sim.state_of(1), Some(Looking), "two of five are no quorum");
    assert_eq!(sim.state_of(2), Some(Looking), "two of five are no quorum");
    assert!(sim.leaders().is_empty());

    sim.start(3);
    let (leader, _) = sim.await_agreement(ms(2000)).expect("1, 2 and 3 agree");
    assert_eq!(leader, 3, "3 has the largest id of the three up");
    let epoch = sim.epoch_of(3);
    let round = sim.node(3).node.as_ref().unwrap().round();
    sim.run_for(ms(2000));

    for joiner in [4, 5] {
        sim.start(joiner);
        let (leader, _) = sim.await_agreement(ms(2000)).expect("joins");
        sim.run_for(ms(1000));
        assert_eq!(leader, 3, "{joiner} follows the established leader");
        assert_eq!(sim.state_of(joiner), Some(Following));
        assert_eq!(sim.leader_of(joiner), Some(3));
        assert_eq!(sim.epoch_of(joiner), epoch, "{joiner}: same epoch");
    }
    sim.assert_ok();
    assert_eq!(sim.leaders(), vec![3]);
    assert_eq!(sim.epoch_of(3), epoch, "no new epoch");
    assert_eq!(
        sim.node(3).node.as_ref().unwrap().round(),
        round,
        "no new round"
    );
    // 1, 2 and 3 changed state once (to FOLLOWING, FOLLOWING, LEADING); 4 and 5 once too.
    for id in 1..=5 {
        assert_eq!(
            sim.node(id).transitions.len(),
            1,
            "node {id} changed state again"
        );
    }
    assert_eq!(sim.leader_terms(), 1, "one leadership in all");
}

/// A crashed voter is left out of "every voter agrees" once it has been silent for the
/// detection window: after the leader of five crashes, the four survivors, all agreeing,
/// decide without waiting finalizeWait, and the outcome is the one FLE reaches with the
/// crashed server gone (the best remaining vote: server 4).
#[test]
fn s15_survivors_of_a_crash_decide_without_finalize_wait() {
    let mut sim = Sim::new(SEED, 5, 0, NetConfig::PERFECT);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    assert_eq!(leader, 5);
    sim.run_for(ms(500));
    sim.crash(5);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("failover");
    sim.assert_ok();
    assert_eq!(leader, 4);
    for id in 1..=4 {
        let node = sim.node(id).node.as_ref().expect("up");
        let took = node.last_election_time().expect("an election");
        let finalize_wait = node.config().finalize_wait;
        assert!(
            took < finalize_wait,
            "node {id}: election took {took:?}, not less than finalizeWait {finalize_wait:?}"
        );
    }
}

/// Followers only answer their leader, so when the leader crashes they fall silent with
/// it. Here server 4's last answers before the crash are lost, so the others last heard
/// it more than a detection window before they notice the crash, and its own timeout
/// fires 10 ms after theirs (its event loop stalls over that moment). It is still there
/// and must not be left out as silent: the FLE outcome is the best surviving vote,
/// server 4, not server 3.
#[test]
fn s16_a_follower_whose_last_answers_were_lost_still_counts() {
    let mut sim = Sim::new(SEED, 5, 0, NetConfig::PERFECT);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    assert_eq!(leader, 5);
    sim.run_for(ms(500));
    for to in [1, 2, 3] {
        sim.block(4, to);
    }
    sim.run_for(ms(100));
    // Crash the leader 1 ms after a heartbeat, which everyone has received by then.
    let leader = sim.node(5);
    let next = leader.node.as_ref().unwrap().poll_timeout().unwrap();
    let heartbeat_us = leader.real_at(next, sim.now_us);
    sim.run_for(Duration::from_micros(heartbeat_us + 1_000 - sim.now_us));
    sim.crash(5);
    sim.heal();
    // The others time out about 300 ms (sync-limit ticks) after the heartbeat; 4's loop
    // stalls from 250 ms to 310 ms.
    sim.run_for(ms(249));
    sim.stall(4, ms(60), false);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("failover");
    sim.assert_ok();
    assert_eq!(leader, 4, "{}", sim.history());
}

/// Frames each node sent over `window` of steady leadership, and whether the leader
/// stayed in office throughout.
fn steady_frames(sim: &mut Sim, window: Duration) -> (u64, Vec<(u64, u64)>, bool) {
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    sim.run_for(ms(500));
    let terms = sim.leader_terms();
    let before: Vec<u64> = sim
        .ids()
        .iter()
        .map(|&id| sim.node(id).frames_sent)
        .collect();
    sim.run_for(window);
    let sent = sim
        .ids()
        .iter()
        .zip(before)
        .map(|(&id, b)| (id, sim.node(id).frames_sent - b))
        .collect();
    let stayed = sim.leader_terms() == terms && sim.leaders() == [leader];
    sim.assert_ok();
    (leader, sent, stayed)
}

/// Leases with sparse answers: answers renew support, so while every support outlasts
/// the slack (ANSWER_OPTIONAL) the followers take turns — of three voters each answers
/// every fourth heartbeat at the default sync-limit 6, every other one at sync-limit 3;
/// of five, every fourth at 6; of fifteen, whose quorum needs more supports than the
/// turns renew, with heartbeats that ask everyone in between — and without sparse
/// answers every one; the lease never runs out in steady state (no new term), nor with
/// 5 % loss.
#[test]
fn s17_followers_take_turns_answering() {
    for (voters, sparse, sync_limit, loss_percent, least, most) in [
        (3, true, 6, 0, 0.2, 0.3),
        (3, true, 3, 0, 0.45, 0.55),
        (3, true, 6, 5, 0.2, 0.45),
        (3, true, 3, 5, 0.45, 0.75),
        (5, true, 6, 0, 0.2, 0.3),
        (15, true, 6, 0, 0.15, 0.4),
        (3, false, 6, 0, 0.95, 1.05),
    ] {
        let net = NetConfig {
            loss_percent,
            ..NetConfig::PERFECT
        };
        let mut sim = Sim::with_config(SEED, voters, 0, net, |c| {
            c.sync_limit = sync_limit;
            c.sparse_answers = sparse;
        });
        sim.start_all();
        let (leader, sent, stayed) = steady_frames(&mut sim, ms(10_000));
        let heartbeats = sent.iter().find(|(id, _)| *id == leader).unwrap().1;
        assert!(
            (195..=205).contains(&heartbeats),
            "{heartbeats} heartbeats in 10 s"
        );
        for &(id, answers) in sent.iter().filter(|(id, _)| *id != leader) {
            let share = answers as f64 / heartbeats as f64;
            assert!(
                (least..=most).contains(&share),
                "{voters} voters, sparse {sparse}, sync-limit {sync_limit}, {loss_percent} % \
                 loss: node {id} answered {answers} of {heartbeats} heartbeats"
            );
        }
        assert!(
            stayed,
            "sync-limit {sync_limit}, {loss_percent} % loss:\n{}",
            sim.history()
        );
    }
}

/// A voter cut off from the others long enough for its notification backoff to reach its
/// cap (2 s) rejoins within a few ticks of the partition healing, not at its next backed-off
/// notification: the established ensemble it hears again (the leader's heartbeats) is news
/// that makes it ask every voter for its vote at once. Followers answer only their leader,
/// so the other follower's vote, which the join needs, comes only as an answer to that ask.
#[test]
fn s18_a_voter_cut_off_rejoins_soon_after_the_partition_heals() {
    for (cut_ms, seed) in [(5_000, SEED), (5_350, 11), (5_700, 12), (6_100, 13)] {
        let mut sim = Sim::new(seed, 3, 0, NetConfig::PERFECT);
        sim.start_all();
        let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
        let follower = if leader == 1 { 2 } else { 1 };
        let others: Vec<u64> = (1..=3).filter(|&id| id != follower).collect();
        sim.partition(&[follower], &others);
        sim.run_for(ms(cut_ms));
        assert_eq!(sim.state_of(follower), Some(Looking));
        assert_eq!(sim.leaders(), vec![leader], "the other two keep the leader");
        sim.heal();
        let (agreed, took) = sim.await_agreement(ms(3000)).expect("rejoin");
        sim.assert_ok();
        assert_eq!(agreed, leader);
        let tick = sim.node(follower).node.as_ref().unwrap().config().tick;
        assert!(
            took <= tick * 3,
            "cut for {cut_ms} ms: rejoined {took:?} after the heal, more than three ticks\n{}",
            sim.history()
        );
    }
}

/// Two voters of three that stayed LOOKING apart, one of them restarted (so in an older
/// round), long enough for their notification backoff to reach its cap (2 s), agree soon
/// after the partition heals, even with 30 % of frames lost: the first frame of a voter
/// in an older round restarts the backoff of the one that hears it, and every new
/// proposal (the later round, the better vote) is repeated from the shortest interval.
/// Before, each side repeated its vote once per 2 s after the first frame got through,
/// and each lost answer cost 2 s: the randomized simulator once took 14.7 s to agree
/// after such a heal (seed 1108260). Until the first frame gets through, both still send
/// once per 2 s: nothing tells a node that a partition healed.
#[test]
fn s19_voters_backed_off_apart_agree_soon_after_a_lossy_heal() {
    const RUNS: u64 = 100;
    let lossy = NetConfig {
        loss_percent: 30,
        ..NetConfig::PERFECT
    };
    let mut took_all = Vec::new();
    for seed in 0..RUNS {
        let mut sim = Sim::new(SEED + seed, 3, 0, lossy);
        sim.start_all();
        let (leader, _) = sim.await_agreement(ms(15_000)).expect("agreement");
        let rest: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
        sim.crash(leader);
        sim.partition(&[rest[0]], &[rest[1]]);
        // One of them restarts meanwhile: its rounds begin again from the first.
        sim.run_for(ms(1_000));
        sim.crash(rest[1]);
        sim.run_for(ms(500));
        sim.start(rest[1]);
        sim.run_for(ms(6_000));
        assert_eq!(sim.state_of(rest[0]), Some(Looking));
        assert_eq!(sim.state_of(rest[1]), Some(Looking));
        sim.heal();
        let (_, took) = sim
            .await_agreement(ms(15_000))
            .unwrap_or_else(|| panic!("seed {}: no agreement\n{}", SEED + seed, sim.history()));
        sim.assert_ok();
        took_all.push((took, SEED + seed));
    }
    took_all.sort();
    let median = took_all[RUNS as usize / 2].0;
    let p90 = took_all[RUNS as usize * 9 / 10].0;
    let (worst, worst_seed) = took_all[RUNS as usize - 1];
    println!(
        "agreement after a lossy heal over {RUNS} runs: median {median:?}, p90 {p90:?}, \
         max {worst:?} (seed {worst_seed})"
    );
    // Measured: median 1.40 s, p90 3.25 s, max 6.0 s; before the two rules 2.20 s,
    // 5.45 s and 8.25 s. The first frame to get through still waits for a backed-off
    // notification (2 s apart, each lost with 30 %), which is most of what is left.
    assert!(
        median <= ms(1_900) && p90 <= ms(4_500),
        "median {median:?}, p90 {p90:?}, max {worst:?} (seed {worst_seed})"
    );
}
