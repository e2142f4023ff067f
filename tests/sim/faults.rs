//! Regressions for the faults deployed nodes see, in the simulator: a leader restarted
//! with a new clock while old frames are in flight, the graceful handover checked against
//! published validity, a wiped data dir that was the only overlap of two quorums, restarts
//! without a data dir, and a wiped data dir with the wall clock behind.

use std::time::Duration;

use votecast_core::election::ServerState::{Following, Leading};
use votecast_testkit::sim::{NetConfig, Sim, Storage};

const SEED: u64 = 12;
/// A wall clock that looks set (2024-05-29).
const WALL_MS: u64 = 1_717_000_000_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every frame takes exactly 1 ms: hand-over times count frames.
const ONE_MS_NET: NetConfig = NetConfig {
    loss_percent: 0,
    duplicate_percent: 0,
    min_delay_us: 1_000,
    max_delay_us: 1_000,
};

/// Graceful handover in two steps: the leader steps down and publishes the end of its
/// lease while its followers stay promised (nobody else can lead meanwhile, however long
/// the step-down hook takes). Its handover notice lets them elect the successor and
/// establish its epoch during the hook; the RESIGN that follows releases them and
/// carries the old leader's own support for the successor, which leads as it arrives:
/// one frame after the RESIGN's send, where waiting for a follower's echo took two, and
/// electing and establishing after the RESIGN three more (vote, proposal,
/// acknowledgement). The checker (`assert_ok`) holds every published validity against
/// every other one.
#[test]
fn graceful_handover_never_overlaps_published_validity() {
    let mut sim = Sim::new(SEED, 3, 0, ONE_MS_NET);
    sim.start_all();
    assert_eq!(sim.await_agreement(ms(2000)).map(|a| a.0), Some(3));
    sim.run_for(ms(500));
    assert!(sim.published_until(3).is_some(), "3 is published LEADING");
    sim.step_down(3);
    assert_ne!(sim.state_of(3), Some(Leading), "stepped down at once");
    assert_eq!(
        sim.published_until(3),
        None,
        "the end of the lease is published"
    );
    // While the step-down hook runs (here 100 ms, under the promise's sync timeout), the
    // followers keep their promises to 3: nobody else can lead, nor is reported as the
    // leader. But they elected 2 and established its epoch (1's current epoch on disk).
    let old_epoch = sim.node(1).disk.current_epoch;
    sim.run_for(ms(100));
    sim.assert_ok();
    for id in [1, 2] {
        assert_ne!(
            sim.state_of(id),
            Some(Leading),
            "{id} leads during the hook"
        );
        assert_eq!(
            sim.leader_of(id),
            None,
            "{id} reports a leader during the hook"
        );
    }
    assert!(
        sim.node(1).disk.current_epoch > old_epoch,
        "no epoch established during the hook\n{}",
        sim.history()
    );
    let resigned_us = sim.now_us;
    sim.shutdown(3);
    let (leader, took) = sim.await_agreement(ms(3000)).expect("a new leader");
    sim.assert_ok();
    assert_eq!(leader, 2);
    assert!(took < ms(1000), "the RESIGN hands over fast, took {took:?}");
    let first_leading = sim
        .node(leader)
        .transitions
        .iter()
        .rev()
        .find(|t| t.state == Leading);
    let at = first_leading.expect("reported LEADING").at_us;
    assert!(
        at >= resigned_us,
        "new leader {leader} LEADING at {at} us before the RESIGN at {resigned_us} us"
    );
    // The RESIGN alone (1 ms): it carries 3's support, accepted durably during the hook.
    assert_eq!(
        sim.node(3).disk.accepted_leader,
        2,
        "3 accepted 2's epoch\n{}",
        sim.history()
    );
    assert!(
        at - resigned_us <= 1_500,
        "LEADING {} us after the RESIGN\n{}",
        at - resigned_us,
        sim.history()
    );
}

/// A handover notice whose sender is killed before it resigns (its step-down hook
/// hung): the successor elected on the notice leads only once the promises to the old
/// leader ran out, as after a crash.
#[test]
fn a_handover_cut_short_by_a_crash_waits_for_the_promises() {
    let mut sim = Sim::new(SEED, 3, 0, ONE_MS_NET);
    sim.start_all();
    assert_eq!(sim.await_agreement(ms(2000)).map(|a| a.0), Some(3));
    sim.run_for(ms(500));
    sim.step_down(3);
    let stepped_down_us = sim.now_us;
    sim.run_for(ms(20));
    sim.crash(3);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("a new leader");
    sim.assert_ok();
    assert_eq!(leader, 2);
    let at = sim
        .node(leader)
        .transitions
        .iter()
        .rev()
        .find(|t| t.state == Leading)
        .expect("reported LEADING")
        .at_us;
    // The promises ran from 3's last heartbeat, at most a tick before the step-down.
    let sync = sim.node(1).config.sync_timeout();
    let tick = sim.node(1).config.tick;
    let earliest = stepped_down_us + (sync - tick).as_micros() as u64;
    assert!(
        at >= earliest,
        "LEADING {} us after the step-down, before the promises ran out\n{}",
        at - stepped_down_us,
        sim.history()
    );
}

/// A step-down hook slower than the followers' promises: they run out (no heartbeats from
/// the stepped-down leader renew them) and a new leader is elected, after the old one had
/// already published the end of its lease.
#[test]
fn a_slow_step_down_hook_lets_promises_run_out_without_overlap() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    assert_eq!(sim.await_agreement(ms(2000)).map(|a| a.0), Some(3));
    sim.step_down(3);
    let stepped_down_us = sim.now_us;
    let sync = sim.node(1).config.sync_timeout();
    // 3 is still up but silent (its hook runs), so "agreement" is between 1 and 2 only.
    let end = sim.now_us + 3_000_000;
    let elected = sim.run_until(end, |s| {
        let leaders = s.leaders();
        leaders.len() == 1 && leaders[0] != 3
    });
    sim.assert_ok();
    assert!(elected, "1 and 2 elect a leader\n{}", sim.history());
    let took = Duration::from_micros(sim.now_us - stepped_down_us);
    assert!(
        took >= sync,
        "promises to 3 ran out first ({took:?} < {sync:?})"
    );
    sim.shutdown(3);
    sim.run_for(ms(500));
    sim.assert_ok();
    assert!(sim.now_us > stepped_down_us);
}

/// Epochs are never reused: 3 leads epoch e1; 1 stops; 3 restarts and leads e2 with 2; 3
/// and 2 stop and 2's data dir is wiped (it was the only overlap of {2,3} and {1,2}); 1
/// and 2 elect: the floor from the (set) wall clock keeps the new epoch above e2.
#[test]
fn a_wiped_only_overlap_never_reuses_an_epoch() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.set_wall_clocks(WALL_MS);
    sim.start_all();
    assert_eq!(sim.await_agreement(ms(2000)).map(|a| a.0), Some(3));
    sim.shutdown(1);
    sim.crash(3);
    sim.start(3);
    let (leader, _) = sim.await_agreement(ms(3000)).expect("3 and 2 agree");
    let e2 = sim.epoch_of(leader).unwrap();
    sim.shutdown(3);
    sim.shutdown(2);
    sim.wipe(2);
    sim.run_for(ms(2000));
    sim.start(1);
    sim.start(2);
    let (leader, _) = sim.await_agreement(ms(5000)).expect("1 and 2 agree");
    sim.assert_ok();
    let e3 = sim.epoch_of(leader).unwrap();
    assert!(e3 > e2, "epoch {e3} after epoch {e2}");
}

/// Without a data dir every process is incarnation 1: peers must still hear a restarted
/// node, so a majority elects a leader within a bound.
#[test]
fn memory_only_restarts_elect_a_leader_within_a_bound() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    for id in sim.ids() {
        sim.set_storage(id, Storage::MemoryOnly);
    }
    sim.start_all();
    sim.await_agreement(ms(2000)).expect("agreement");
    sim.run_for(ms(20_000));
    sim.crash(3);
    sim.crash(2);
    sim.run_for(ms(1000));
    sim.start(3);
    sim.start(2);
    let bound = sim.node(1).config.sync_timeout() * 10 + ms(5000);
    let agreed = sim.await_agreement(bound);
    sim.assert_ok();
    assert!(
        agreed.is_some(),
        "no leader within {bound:?}\n{}",
        sim.history()
    );
}

/// A wiped data dir and a wall clock behind ("looks set", an hour back): the incarnation
/// goes back, and peers readmit the node within a bound.
#[test]
fn a_lower_incarnation_is_readmitted_within_a_bound() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.set_wall_clocks(WALL_MS);
    sim.start_all();
    sim.await_agreement(ms(2000)).expect("agreement");
    sim.crash(1);
    sim.crash(2);
    sim.run_for(ms(1000));
    sim.wipe(2);
    sim.step_wall_clock(2, -3_600_000);
    sim.start(2);
    assert!(
        sim.node(2).incarnation < sim.node(3).incarnation,
        "incarnation went back"
    );
    let bound = ms(10_000);
    let agreed = sim.await_agreement(bound);
    sim.assert_ok();
    assert!(
        agreed.is_some(),
        "no leader within {bound:?}\n{}",
        sim.history()
    );
    assert!(matches!(sim.state_of(2), Some(Following) | Some(Leading)));
}

/// The frame in which a follower announces its decision can be lost: the leader it chose
/// is then still LOOKING in the same round, without the follower's vote, and repeats
/// its vote with the notification backoff. Those repeats must reach the follower as a
/// question ("have you voted?"), not be ignored as late votes of the round it decided
/// in: otherwise nothing is sent until the follower gives up on its silent leader
/// (`sync_limit` ticks, 300 ms) and both start a third round, which is how a failover
/// took 967 ms.
#[test]
fn a_lost_decision_frame_does_not_stall_the_epoch_round_until_a_sync_timeout() {
    use votecast_core::election::{RestartReason, ServerState};
    use votecast_core::wire::parse_datagram;
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    assert_eq!(sim.await_agreement(ms(2000)).map(|a| a.0), Some(3));
    sim.run_for(ms(500));
    // 3 crashes; every frame from 1 to 2 is lost until 1 has sent its decision to follow
    // 2 (a FOLLOWING frame for 2), then the link heals.
    sim.record = true;
    sim.crash(3);
    let crashed_us = sim.now_us;
    sim.block(1, 2);
    let sent_decision = |sim: &Sim| {
        sim.recorded.iter().any(|(_, bytes)| {
            parse_datagram(bytes, 0).is_ok_and(|f| {
                f.sender == 1 && f.state == ServerState::Following && f.vote.leader == 2
            })
        })
    };
    let end = sim.now_us + 2_000_000;
    assert!(
        sim.run_until(end, sent_decision),
        "1 never decided to follow 2\n{}",
        sim.history()
    );
    sim.heal();
    let healed_us = sim.now_us;
    let (leader, took) = sim.await_agreement(ms(3000)).expect("a new leader");
    sim.assert_ok();
    assert_eq!(leader, 2);
    // 2's next vote repeat comes within its notification interval (at most 200 ms here:
    // 50 ms doubled twice); 1's answer completes the round.
    let after_heal = ms((sim.now_us - healed_us) / 1000);
    assert!(
        after_heal < ms(250),
        "agreement {after_heal:?} after the heal ({took:?} after the crash at {crashed_us} µs)\n{}",
        sim.history()
    );
    // The only restarts after the crash are the two survivors leaving the dead leader's
    // established term; no epoch round of the new leader was abandoned.
    for id in [1, 2] {
        let restarts: Vec<_> = sim
            .node(id)
            .restarts
            .iter()
            .filter(|(at, _)| *at >= crashed_us)
            .map(|(_, r)| (r.reason, r.established))
            .collect();
        assert_eq!(
            restarts,
            [(RestartReason::SyncTimeout, true)],
            "node {id}\n{}",
            sim.history()
        );
    }
}

/// A firewall on the leader's host that passes the group but drops unicast: followers
/// answer its heartbeats by unicast, which never arrive, so its lease runs short; it then
/// asks for answers to the group, which renew it. The term holds for ten seconds (a
/// lease is six ticks), with most answers lost.
#[test]
fn a_firewall_dropping_unicast_to_the_leader_never_ends_its_term() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.unicast_answers = Some(true);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(2000)).expect("a leader");
    sim.run_for(ms(500));
    let terms = sim.node(leader).transitions.len();
    sim.block_unicast_to(leader);
    sim.run_for(ms(10_000));
    sim.assert_ok();
    assert_eq!(sim.state_of(leader), Some(Leading));
    assert_eq!(
        sim.node(leader).transitions.len(),
        terms,
        "no state change of the leader: {:?}",
        sim.node(leader).transitions
    );
    let requests = group_requests(&sim, leader);
    // At the default sync-limit of 6 a lease from one answer outlasts about four
    // heartbeats: a request every fifth heartbeat or so, 40 in these 200 ticks.
    assert!(
        requests >= 20,
        "{requests} requests for answers to the group"
    );
    // Healed, it asks for unicast again and stops counting.
    sim.heal();
    sim.run_for(ms(500));
    let settled = group_requests(&sim, leader);
    sim.run_for(ms(2_000));
    let later = group_requests(&sim, leader);
    assert_eq!(later, settled, "no more requests once unicast arrives");
}

/// `Stats::group_answer_requests` of node `id`, which is up.
fn group_requests(sim: &Sim, id: u64) -> u64 {
    let node = sim.node(id).node.as_ref().expect("up");
    node.stats().group_answer_requests
}
