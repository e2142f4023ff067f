//! `votecast demo`: the workstation showcase. Starts N nodes on `lo`, shows them elect,
//! kills the leader with SIGKILL, shows the failover and how long it took, restarts the
//! old leader and shows it rejoin as a follower. Everything it starts it also stops.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::cluster::LocalCluster;

const LIMIT: Duration = Duration::from_secs(20);

fn table(cluster: &LocalCluster) -> String {
    let mut out = String::from("    node  state       leader  epoch  round  last election\n");
    for node in &cluster.nodes {
        let line = match (node.is_running(), cluster.state(node.id)) {
            (false, _) => format!("    {:>4}  (stopped)\n", node.id),
            (true, None) => format!("    {:>4}  (starting)\n", node.id),
            (true, Some(s)) => format!(
                "    {:>4}  {:<10}  {:>6}  {:>5}  {:>5}  {}\n",
                node.id,
                s.state,
                s.leader.map_or("-".into(), |l| l.to_string()),
                s.epoch.map_or("-".into(), |e| e.to_string()),
                s.round,
                s.last_election_ms
                    .map_or("-".into(), |ms| format!("{ms:.1} ms")),
            ),
        };
        out.push_str(&line);
    }
    out
}

/// Show the table while waiting for agreement (refreshed every 250 ms when not a TTY-less
/// instant success), then once more when agreed.
fn watch(cluster: &LocalCluster, what: &str) -> Result<(u64, u64, Duration), String> {
    let start = Instant::now();
    let mut last_print = Instant::now();
    loop {
        if let Some((leader, epoch)) = cluster.agreed_leader() {
            let took = start.elapsed();
            println!("{}", table(cluster));
            return Ok((leader, epoch, took));
        }
        if start.elapsed() > LIMIT {
            return Err(format!(
                "{what}: no agreement within {LIMIT:?}\n{}\n{}",
                table(cluster),
                cluster.all_logs()
            ));
        }
        if last_print.elapsed() > Duration::from_millis(250) {
            println!(
                "  ... {what} ({} ms)\n{}",
                start.elapsed().as_millis(),
                table(cluster)
            );
            last_print = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn run(nodes: usize) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut cluster = LocalCluster::new(&exe, nodes as u64, 0)
        .map_err(|e| format!("cannot prepare the cluster: {e}"))?;
    println!(
        "votecast demo: {nodes} nodes on lo, group {}, files in {}\n",
        cluster.group,
        cluster.dir.path().display()
    );

    println!("1. starting {nodes} nodes together");
    cluster
        .start_all()
        .map_err(|e| format!("cannot start a node: {e}"))?;
    let (leader, epoch, cold) = watch(&cluster, "electing")?;
    let per_node: Vec<f64> = cluster
        .ids()
        .iter()
        .filter_map(|&id| cluster.state(id)?.last_election_ms)
        .collect();
    let slowest = per_node.iter().copied().fold(0.0, f64::max);
    println!(
        "   node {leader} leads epoch {epoch}; every node decided {:.1} ms after the last launch (slowest node's own election {slowest:.1} ms)\n",
        cold.as_secs_f64() * 1000.0
    );

    println!("2. SIGKILL the leader, node {leader}");
    cluster
        .kill(leader)
        .map_err(|e| format!("cannot kill node {leader}: {e}"))?;
    let (new_leader, new_epoch, failover) = watch(&cluster, "failing over")?;
    println!(
        "   node {new_leader} leads epoch {new_epoch}; failover took {:.1} ms (detection is {} ticks of silence)\n",
        failover.as_secs_f64() * 1000.0,
        6
    );

    println!("3. restarting node {leader}");
    cluster
        .start(leader)
        .map_err(|e| format!("cannot restart node {leader}: {e}"))?;
    let (rejoined_leader, rejoined_epoch, rejoin) = watch(&cluster, "rejoining")?;
    if (rejoined_leader, rejoined_epoch) != (new_leader, new_epoch) {
        return Err(format!(
            "node {leader} should rejoin leader {new_leader} epoch {new_epoch}, got {rejoined_leader} epoch {rejoined_epoch}"
        ));
    }
    println!(
        "   node {leader} follows node {new_leader} again after {:.1} ms; the leader did not change\n",
        rejoin.as_secs_f64() * 1000.0
    );

    let mut summary = String::new();
    let _ = writeln!(summary, "summary ({nodes} nodes on lo):");
    let _ = writeln!(
        summary,
        "  cold start to agreement : {:>8.1} ms",
        cold.as_secs_f64() * 1000.0
    );
    let _ = writeln!(
        summary,
        "  failover after SIGKILL  : {:>8.1} ms",
        failover.as_secs_f64() * 1000.0
    );
    let _ = writeln!(
        summary,
        "  rejoin of the old leader: {:>8.1} ms",
        rejoin.as_secs_f64() * 1000.0
    );
    print!("{summary}");
    drop(cluster);
    println!("all demo processes stopped, temporary files removed");
    Ok(())
}
