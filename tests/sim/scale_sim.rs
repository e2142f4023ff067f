//! Scale in the simulator: election time and frames sent per election for 3 to 64 voters
//! plus observers, on a perfect network and on a lossy one (5 % loss, 1 % duplicates,
//! 0.1–2 ms delay), at the default timing.
//!
//! For every size it prints a table of: the cold start (all nodes start together) and
//! the failover after a crash of the leader, each as virtual time to agreement and frames
//! sent by all nodes until agreement (and per voter). Asserted: every run converges within
//! a generous bound, on the expected leader for the perfect network, and no invariant of
//! the simulator breaks. Timing goals are not asserted here; they are figures.
//!
//! `VOTECAST_SCALE_SEEDS=N` runs N seeds per size and network (default 1; figures are
//! medians over the seeds).

use std::time::Duration;

use votecast_testkit::sim::{NetConfig, Sim};

const SIZES: [u64; 9] = [3, 5, 7, 9, 15, 21, 33, 48, 64];
const BOUND: Duration = Duration::from_secs(20);

const LOSSY: NetConfig = NetConfig {
    loss_percent: 5,
    duplicate_percent: 1,
    min_delay_us: 100,
    max_delay_us: 2_000,
};

fn observers_for(voters: u64) -> u64 {
    (voters / 4).max(1)
}

fn frames_sent(sim: &Sim) -> u64 {
    sim.nodes.iter().map(|n| n.frames_sent).sum()
}

/// (election time, frames) of a cold start and of a failover after a leader crash.
#[derive(Clone, Copy, Debug)]
struct Run {
    cold: (Duration, u64),
    failover: (Duration, u64),
}

fn run(seed: u64, voters: u64, net: NetConfig) -> Run {
    let observers = observers_for(voters);
    let mut sim = Sim::new(seed, voters, observers, net);
    sim.randomize_drift(10_000);
    sim.start_all();
    let (leader, cold_time) = sim.await_agreement(BOUND).unwrap_or_else(|| {
        panic!(
            "{voters} voters + {observers} observers, seed {seed}: no agreement within {BOUND:?}\n{}",
            sim.history()
        )
    });
    let cold_frames = frames_sent(&sim);
    if net.loss_percent == 0 {
        // Equal zxids and epochs: the highest id wins.
        assert_eq!(leader, voters, "seed {seed}");
    }
    // Steady state for a while, then crash the leader.
    sim.run_for(Duration::from_millis(500));
    assert_eq!(
        sim.agreed_leader(),
        Some(leader),
        "seed {seed}: stable leader"
    );
    let before = frames_sent(&sim);
    sim.crash(leader);
    let (new_leader, failover_time) = sim.await_agreement(BOUND).unwrap_or_else(|| {
        panic!(
            "{voters} voters, seed {seed}: no failover within {BOUND:?}\n{}",
            sim.history()
        )
    });
    // Not necessarily `voters - 1`: a voter whose clock runs fast gives up on the dead
    // leader first and announces itself while the others still follow; FastLeaderElection
    // does not answer a worse vote of the same round, so the others may decide on the
    // next best before its notification timer repeats that vote. Any voter is safe here.
    assert_ne!(new_leader, leader);
    assert!(
        new_leader <= voters,
        "seed {seed}: observer {new_leader} leads"
    );
    let failover_frames = frames_sent(&sim) - before;
    sim.run_for(Duration::from_millis(500));
    assert_eq!(sim.leaders(), vec![new_leader], "seed {seed}: one leader");
    sim.assert_ok();
    Run {
        cold: (cold_time, cold_frames),
        failover: (failover_time, failover_frames),
    }
}

fn median<T: Copy + Ord>(mut values: Vec<T>) -> T {
    values.sort();
    values[values.len() / 2]
}

#[test]
fn elections_scale_to_64_voters_with_observers() {
    let seeds: u64 = std::env::var("VOTECAST_SCALE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .clamp(1, 10_000);
    println!(
        "{:<7} {:>6} {:>4} | {:>9} {:>7} {:>9} | {:>9} {:>7} {:>9}",
        "network",
        "voters",
        "obs",
        "cold ms",
        "frames",
        "fr/voter",
        "fail ms",
        "frames",
        "fr/voter"
    );
    for (name, net) in [("perfect", NetConfig::PERFECT), ("lossy", LOSSY)] {
        for voters in SIZES {
            let runs: Vec<Run> = (0..seeds)
                .map(|s| run(1_000 * voters + s, voters, net))
                .collect();
            let cold_ms = median(runs.iter().map(|r| r.cold.0).collect());
            let cold_frames = median(runs.iter().map(|r| r.cold.1).collect());
            let fail_ms = median(runs.iter().map(|r| r.failover.0).collect());
            let fail_frames = median(runs.iter().map(|r| r.failover.1).collect());
            println!(
                "{:<7} {:>6} {:>4} | {:>9.1} {:>7} {:>9.1} | {:>9.1} {:>7} {:>9.1}",
                name,
                voters,
                observers_for(voters),
                cold_ms.as_secs_f64() * 1000.0,
                cold_frames,
                cold_frames as f64 / voters as f64,
                fail_ms.as_secs_f64() * 1000.0,
                fail_frames,
                fail_frames as f64 / (voters - 1) as f64,
            );
        }
    }
    println!(
        "(median of {seeds} seed(s) per row; virtual time; ±1 % clock drift; frames: sent by all \
         nodes, observers included, until every node agrees: votes, epoch, acknowledgements, lease)"
    );
}
