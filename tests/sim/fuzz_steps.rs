//! The `core_sequence` harness off the corpus: hand-written scenarios for the deployed-node
//! fault steps (wiped data dir, memory-only restart, stalled loop with a stale `now`), and
//! random scenarios for a bounded time.
//!
//! - `VOTECAST_FUZZ_SECONDS=S` runs the random scenarios for S seconds (default 3);
//!   `VOTECAST_FUZZ_SEED=N` replays a run (the seed is printed). A failing input is written
//!   to `target/core_sequence-failure-<seed>-<n>`, which `VOTECAST_FUZZ_INPUT` replays
//!   (`fuzz_corpus`).
//! - `VOTECAST_FUZZ_WRITE_CORPUS=1` writes the hand-written scenarios, encoded, into
//!   `fuzz/corpus/core_sequence` (named by a hash of the bytes and the scenario), so that
//!   the corpus replay reaches the fault steps.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant as WallClock};

use arbitrary::{Arbitrary, Unstructured};

use votecast_testkit::fuzz::core_sequence::{
    encode, run, ClusterSpec, NodeSpec, Outcome, Role, Scenario, Step, Timing,
};
use votecast_testkit::sim::Rng;

/// Three voters under test, ticks of 10 ms, sync-limit 3, notifications every 10–210 ms.
fn three_voters(steps: Vec<Step>) -> Scenario {
    let node = |v| NodeSpec {
        role: Role::Voter(v),
        offset: 1_000_000 * u32::from(v + 1),
        idle: false,
        epochs: None,
    };
    Scenario {
        cluster: ClusterSpec {
            voters: 2,
            nodes: vec![node(0), node(1), node(2)],
            timing: Timing {
                tick_ms: 9,
                sync_limit: 1,
                init_limit: 3,
                finalize_ms: 9,
                min_notification_ms: 9,
                max_notification_extra_ms: 200,
                drift: 0,
            },
        },
        honest: true,
        steps,
    }
}

const ELECT: Step = Step::Run { rounds: 24 };

/// Runs a hand-written scenario and checks it survives encoding (it is a corpus input).
fn run_scenario(name: &str, scenario: &Scenario) -> Outcome {
    let bytes = encode(scenario);
    let decoded = Scenario::arbitrary_take_rest(Unstructured::new(&bytes)).expect("decodes");
    assert_eq!(format!("{decoded:?}"), format!("{scenario:?}"), "{name}");
    if std::env::var_os("VOTECAST_FUZZ_WRITE_CORPUS").is_some() {
        let dir = corpus_dir();
        let file = dir.join(format!("{:016x}-{name}", fnv(&bytes)));
        std::fs::write(&file, &bytes).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    let outcome = run(scenario);
    println!("{name}: {outcome:?}");
    outcome
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/core_sequence")
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The wiped only-overlap case: 3 leads; 1 stops; 3 restarts and leads with 2; 3 and 2
/// stop, 2's data dir is wiped; 1 and 2 elect again. Without wall clocks no floor covers
/// the lost epoch, so the checker lets epochs repeat (README "Limits"), but it still
/// holds every published validity against every other one.
#[test]
fn wiped_data_dirs_restart_with_no_epochs_and_elect_again() {
    use Step::*;
    let steps = vec![
        ELECT,
        Shutdown(0),
        Restart {
            node: 2,
            offset: 77_000,
        },
        ELECT,
        Shutdown(2),
        Shutdown(1),
        Wipe(1),
        Start(0),
        Start(1),
        ELECT,
        // A running node's data dir: it goes down first.
        Wipe(0),
        Start(0),
        ELECT,
    ];
    let outcome = run_scenario("wipe", &three_voters(steps));
    assert_eq!(outcome.wipes, 2);
    assert!(
        outcome.leaderships >= 3,
        "elections after the wipes: {outcome:?}"
    );
}

/// Memory-only restarts: the process holds (drops every frame) for sync-limit ticks, then
/// starts with no epochs and a random incarnation, and the cluster elects again.
#[test]
fn memory_only_restarts_hold_then_rejoin() {
    use Step::*;
    let steps = vec![
        ELECT,
        MemoryRestart { node: 2, offset: 5 },
        Broadcast(0),
        ELECT,
        MemoryRestart {
            node: 1,
            offset: 900_000,
        },
        // A later ordinary restart stays without a data dir.
        Restart {
            node: 2,
            offset: 31,
        },
        ELECT,
        Wipe(2),
        Start(2),
        ELECT,
    ];
    let outcome = run_scenario("memory-only", &three_voters(steps));
    assert_eq!(outcome.memory_starts, 3, "{outcome:?}");
    assert!(outcome.leaderships >= 2, "{outcome:?}");
}

/// The leader's loop stalls longer than its lease; its followers elect another leader
/// meanwhile; then it handles everything with the `now` it read before the stall. What
/// it publishes afterwards must not overlap the new leader's validity.
#[test]
fn a_stalled_leader_handles_old_news_with_a_stale_now() {
    use Step::*;
    let mut steps = vec![ELECT];
    for node in 0..3 {
        steps.push(Stall {
            node,
            duration: 3_000,
            stale: true,
        });
        steps.push(Run { rounds: 32 });
        steps.push(WaitLong(400_000));
        steps.push(ELECT);
    }
    steps.push(Stall {
        node: 1,
        duration: 500,
        stale: false,
    });
    steps.push(ELECT);
    let outcome = run_scenario("stall", &three_voters(steps));
    assert_eq!(outcome.stalls, 4, "{outcome:?}");
    assert!(outcome.stale_inputs > 3, "{outcome:?}");
    assert!(outcome.leaderships >= 2, "{outcome:?}");
}

/// A node whose incarnation went back (two restarts without a data dir: the second
/// draws a lower incarnation than the first) hears a frame of its earlier process, late
/// or replayed. It is its own authentic frame; counting the higher incarnation as another
/// board with its id quarantined the node (a leader would step down). A later incarnation
/// now proves a twin only once that process has been alive for the detection window.
#[test]
fn a_lower_incarnation_does_not_take_its_own_earlier_frame_for_a_twin() {
    use Step::*;
    let steps = vec![
        ELECT,
        // Incarnation 1951951033, then 884055882 (see `fresh_incarnation`).
        MemoryRestart { node: 2, offset: 1 },
        ELECT,
        MemoryRestart { node: 2, offset: 1 },
        // Past the start hold: the core starts and sends one frame.
        Wait(400),
        // The newest frame of the earlier process, delivered to the node itself.
        Replay {
            from: 2,
            back: 1,
            to: 2,
        },
        ELECT,
    ];
    run_scenario("lower-incarnation-own-frame", &three_voters(steps));
}

/// Random scenarios for a bounded time: each step decoded by `arbitrary` from random
/// bytes (a scenario decoded whole from random bytes would mostly end after a step or
/// two), run with every invariant checked.
#[test]
fn random_scenarios_hold_every_invariant() {
    let seconds: u64 = env_number("VOTECAST_FUZZ_SECONDS").unwrap_or(3);
    let seed = env_number("VOTECAST_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!("core_sequence random scenarios: seed {seed} (VOTECAST_FUZZ_SEED), {seconds} s");
    let mut rng = Rng::mixed(seed);
    let started = WallClock::now();
    let mut total = Outcome::default();
    let mut runs = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let scenario = random_scenario(&mut rng);
        let result = std::panic::catch_unwind(|| run(&scenario));
        let outcome = result.unwrap_or_else(|panic| {
            let file = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("target/core_sequence-failure-{seed}-{runs}"));
            let written = std::fs::write(&file, encode(&scenario));
            eprintln!(
                "seed {seed}, scenario {runs} failed; input {} ({written:?})",
                file.display()
            );
            std::panic::resume_unwind(panic)
        });
        runs += 1;
        add(&mut total, &outcome);
    }
    println!("{runs} scenarios in {:?}: {total:?}", started.elapsed());
    assert!(runs > 0);
}

fn random_scenario(rng: &mut Rng) -> Scenario {
    let head = random_bytes(rng, 64);
    let mut u = Unstructured::new(&head);
    let cluster = ClusterSpec::arbitrary(&mut u).expect("decodes");
    let honest = bool::arbitrary(&mut u).expect("decodes");
    let count = rng.range(1, 200);
    let steps = (0..count)
        .map(|_| {
            let raw = random_bytes(rng, 48);
            Step::arbitrary(&mut Unstructured::new(&raw)).expect("decodes")
        })
        .collect();
    Scenario {
        cluster,
        honest: honest || rng.chance(50),
        steps,
    }
}

fn random_bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn add(total: &mut Outcome, o: &Outcome) {
    total.steps += o.steps;
    total.frames_delivered += o.frames_delivered;
    total.frames_rejected += o.frames_rejected;
    total.leaderships += o.leaderships;
    total.wipes += o.wipes;
    total.memory_starts += o.memory_starts;
    total.stalls += o.stalls;
    total.stale_inputs += o.stale_inputs;
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
    )
}
