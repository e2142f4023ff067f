//! Health checks in the simulator: an unhealthy node keeps voting but is never elected; a
//! leader that turns unhealthy stands down (silent until its lease ends) and comes back as
//! a voter; a node that is healthy again never deposes a healthy leader. The simulator
//! checks the invariants (never two published leaders, increasing epochs) on every step.

use std::time::Duration;

use votecast_core::election::ServerState::{Following, Leading, Looking};
use votecast_testkit::sim::{NetConfig, Sim};

const SEED: u64 = 11;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Failover bound: the lease the old leader reported (at most sync-limit ticks, 300 ms)
/// plus an election and the epoch round trip, with room.
const FAILOVER: Duration = Duration::from_millis(600);

/// Three voters, 3 leads; returns the simulator and the first epoch.
fn three_led_by_3() -> (Sim, u64) {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    sim.start_all();
    let (leader, _) = sim.await_agreement(ms(2000)).expect("agreement");
    assert_eq!(leader, 3);
    sim.run_for(ms(200));
    let epoch = sim.epoch_of(3).expect("epoch");
    (sim, epoch)
}

#[test]
fn an_unhealthy_leader_resigns_a_healthy_node_leads_and_it_keeps_following() {
    let (mut sim, e1) = three_led_by_3();
    let began = sim.now_us;
    sim.set_eligible(3, false);
    assert_eq!(sim.state_of(3), Some(Looking), "reported at once");
    assert!(sim.standing_down(3));
    // The followers still follow it: no other leader before its lease ends.
    assert_eq!(sim.state_of(2), Some(Following));
    let (leader, took) = sim.await_agreement(FAILOVER).expect("failover");
    sim.assert_ok();
    assert_eq!(leader, 2, "the best healthy node");
    assert!(sim.epoch_of(2).unwrap() > e1);
    assert_eq!(
        sim.state_of(3),
        Some(Following),
        "the unhealthy node still votes"
    );
    println!(
        "unhealthy leader: new leader after {:.1} ms",
        (sim.now_us - began) as f64 / 1000.0
    );
    assert!(took <= FAILOVER);

    // Healthy again: no new election, 2 keeps leading.
    let transitions: Vec<usize> = [1, 2, 3]
        .iter()
        .map(|&id| sim.node(id).transitions.len())
        .collect();
    sim.set_eligible(3, true);
    sim.run_for(ms(3000));
    sim.assert_ok();
    assert_eq!(sim.agreed_leader(), Some(2));
    let after: Vec<usize> = [1, 2, 3]
        .iter()
        .map(|&id| sim.node(id).transitions.len())
        .collect();
    assert_eq!(after, transitions, "nobody changed state");
}

#[test]
fn one_down_and_one_unhealthy_of_three_still_elect_the_third() {
    let (mut sim, _) = three_led_by_3();
    sim.crash(1);
    sim.run_for(ms(500));
    assert_eq!(sim.state_of(3), Some(Leading), "2 and 3 are a quorum");
    sim.set_eligible(3, false);
    let (leader, _) = sim.await_agreement(FAILOVER).expect("failover");
    sim.assert_ok();
    // Only 2 and 3 are up: 2 leads on 3's vote, promise and acknowledgement.
    assert_eq!(leader, 2);
    assert_eq!(sim.state_of(3), Some(Following));
    sim.run_for(ms(2000));
    sim.assert_ok();
    assert_eq!(sim.agreed_leader(), Some(2), "3's support holds the lease");
}

#[test]
fn an_unhealthy_node_is_never_elected_and_nobody_leads_when_all_are() {
    let mut sim = Sim::new(SEED, 3, 0, NetConfig::PERFECT);
    for id in 1..=3 {
        sim.set_eligible(id, false);
    }
    sim.start_all();
    sim.run_for(ms(3000));
    sim.assert_ok();
    assert!(sim.leaders().is_empty());
    assert_eq!(sim.leader_terms(), 0);
    // Node 1 (the worst by id) turns healthy: it is the only candidate.
    sim.set_eligible(1, true);
    let (leader, took) = sim.await_agreement(ms(1000)).expect("agreement");
    sim.assert_ok();
    assert_eq!(leader, 1);
    assert!(took < ms(100), "a new round, decided at once: {took:?}");
    // The others turn healthy: 1 keeps leading.
    sim.set_eligible(3, true);
    sim.set_eligible(2, true);
    sim.run_for(ms(2000));
    sim.assert_ok();
    assert_eq!(sim.agreed_leader(), Some(1));
}

#[test]
fn a_confirmed_stand_down_hands_over_without_waiting_for_the_lease() {
    let (mut sim, _) = three_led_by_3();
    sim.set_eligible(3, false);
    sim.confirm_stand_down(3);
    assert!(!sim.standing_down(3));
    let (leader, took) = sim.await_agreement(FAILOVER).expect("handover");
    sim.assert_ok();
    assert_eq!(leader, 2);
    assert!(took < ms(50), "no lease to wait out: {took:?}");
}

#[test]
fn health_flapping_under_loss_never_breaks_safety() {
    let net = NetConfig {
        loss_percent: 10,
        duplicate_percent: 5,
        min_delay_us: 50,
        max_delay_us: 3_000,
    };
    for seed in 0..20 {
        let mut sim = Sim::new(seed, 5, 1, net);
        sim.randomize_drift(10_000);
        sim.start_all();
        for step in 0..20u64 {
            let id = 1 + (seed + step * 3) % 5;
            sim.set_eligible(id, step % 3 == 0);
            if step % 4 == 1 {
                sim.confirm_stand_down(id);
            }
            sim.run_for(ms(50 + (seed * 37 + step * 91) % 600));
        }
        for id in 1..=5 {
            sim.set_eligible(id, true);
        }
        let agreed = sim.await_agreement(Duration::from_secs(15));
        sim.assert_ok();
        assert!(
            agreed.is_some(),
            "seed {seed}: no agreement\n{}",
            sim.history()
        );
    }
}
