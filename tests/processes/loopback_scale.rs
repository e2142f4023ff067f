//! Scale on `lo`: a cluster of 15 real `votecast run` processes (15 voters) elects one
//! leader and fails over after SIGKILL of the leader. Also `votecast bench` end to end
//! (one repetition of every scenario at N = 3).
//!
//! Real multicast on `lo` only (group 239.192.77.77 on a free port, TTL 1), every wait
//! bounded, every process killed and reaped when the cluster is dropped (also on a failed
//! assertion). The bounds are generous (seconds) because CI machines are small and shared;
//! the measured times are printed (`cargo test --test processes loopback_scale:: -- --nocapture`).

use std::path::Path;
use std::time::{Duration, Instant};

use votecast::cluster::LocalCluster;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");
const NODES: u64 = 15;
const BOUND: Duration = Duration::from_secs(20);

/// Ids of the running nodes whose state file says LEADING.
fn leading(c: &LocalCluster) -> Vec<u64> {
    c.running_ids()
        .into_iter()
        .filter(|&id| c.state(id).is_some_and(|s| s.state == "LEADING"))
        .collect()
}

#[test]
fn fifteen_processes_elect_and_fail_over() {
    let mut cluster = LocalCluster::new(Path::new(EXE), NODES, 0).expect("prepare a cluster");
    cluster.start_all().expect("start 15 nodes");
    let launched = Instant::now();
    let (leader, epoch, _) = cluster.await_agreement(BOUND).unwrap_or_else(|| {
        panic!(
            "{}",
            cluster.report(format!("15 nodes: no agreement within {BOUND:?}"))
        )
    });
    let cold = launched.elapsed();
    // Equal zxids and epochs: the highest id wins.
    assert_eq!(leader, NODES, "{}", cluster.describe_states());
    assert_eq!(leading(&cluster), vec![leader]);

    // Let it heartbeat for a while; the leader must not change.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        cluster.agreed_leader(),
        Some((leader, epoch)),
        "{}",
        cluster.describe_states()
    );

    let killed = Instant::now();
    cluster.kill(leader).expect("SIGKILL the leader");
    let (new_leader, new_epoch, _) = cluster.await_agreement(BOUND).unwrap_or_else(|| {
        panic!(
            "{}",
            cluster.report(format!("15 nodes: no failover within {BOUND:?}"))
        )
    });
    let failover = killed.elapsed();
    // Usually node 14, but any survivor may win: a voter that gives up on the dead
    // leader first announces itself while the others still follow.
    assert!(
        new_leader != leader && cluster.node(new_leader).is_running(),
        "{}",
        cluster.describe_states()
    );
    assert!(new_epoch > epoch, "epoch {new_epoch} after {epoch}");
    assert_eq!(leading(&cluster), vec![new_leader]);
    assert_eq!(cluster.running_ids().len(), NODES as usize - 1);
    println!(
        "15 processes on lo: cold start to agreement {:.1} ms (leader {leader}, epoch {epoch}); \
         failover after SIGKILL {:.1} ms (leader {new_leader}, epoch {new_epoch})",
        cold.as_secs_f64() * 1000.0,
        failover.as_secs_f64() * 1000.0
    );
}

/// `votecast bench` end to end, one repetition at N = 3: every scenario produces a
/// sample, none fails, and the JSON carries them.
#[test]
fn bench_command_measures_every_scenario() {
    let dir = votecast::cluster::TempDir::new("votecast-bench-test").expect("temp dir");
    let json_path = dir.path().join("bench.json");
    let output = std::process::Command::new(EXE)
        .args(["bench", "--nodes", "3", "--reps", "1", "--json"])
        .arg(&json_path)
        .output()
        .expect("run votecast bench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "votecast bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json = std::fs::read_to_string(&json_path).expect("bench JSON");
    assert!(json.contains("\"errors\":[]"), "{json}");
    for scenario in [
        "cold start",
        " - last node up",
        " - then all agree",
        "failover SIGKILL",
        "failover SIGSTOP",
        "failover SIGKILL fast",
        "failover SIGSTOP fast",
        "handover SIGTERM",
    ] {
        let key = format!(
            "{{\"scenario\":\"{scenario}\",\"nodes\":3,\"latency\":{{\"count\":1,\"failures\":0,"
        );
        assert!(json.contains(&key), "no sample for {scenario:?}:\n{json}");
        assert!(stdout.contains(scenario), "{stdout}");
    }
    assert!(stdout.contains("Polling resolution"), "{stdout}");
}
