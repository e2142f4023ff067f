//! `votecast demo`: the workstation showcase. Starts N nodes on `lo`, shows them elect,
//! kills the leader with SIGKILL, shows the failover and how long it took, restarts the
//! old leader and shows it rejoin as a follower. Everything it starts it also stops.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::cluster::LocalCluster;

/// Longest wait for any agreement before the demo gives up.
const LIMIT: Duration = Duration::from_secs(20);
/// How often the table is shown while the nodes have not agreed yet.
const REFRESH: Duration = Duration::from_millis(250);

/// Why the demo stopped early.
#[derive(Debug)]
pub enum DemoError {
    /// The path of the running executable (the nodes run the same binary) is unknown.
    OwnBinary(io::Error),
    /// The temporary cluster directory could not be made.
    Prepare(io::Error),
    /// A node process could not be spawned.
    Start(io::Error),
    Kill {
        node: u64,
        source: io::Error,
    },
    Restart {
        node: u64,
        source: io::Error,
    },
    /// No agreement within 20 s while `what` was going on; the nodes' table and logs
    /// at that moment.
    NoAgreement {
        what: &'static str,
        table: String,
        logs: String,
    },
    /// The restarted old leader took the cluster to another (leader, epoch).
    LeaderChanged {
        node: u64,
        expected: (u64, u64),
        got: (u64, u64),
    },
}

impl fmt::Display for DemoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DemoError::OwnBinary(e) => write!(f, "cannot find own binary: {e}"),
            DemoError::Prepare(e) => write!(f, "cannot prepare the cluster: {e}"),
            DemoError::Start(e) => write!(f, "cannot start a node: {e}"),
            DemoError::Kill { node, source } => write!(f, "cannot kill node {node}: {source}"),
            DemoError::Restart { node, source } => {
                write!(f, "cannot restart node {node}: {source}")
            }
            DemoError::NoAgreement { what, table, logs } => {
                write!(f, "{what}: no agreement within {LIMIT:?}\n{table}\n{logs}")
            }
            DemoError::LeaderChanged {
                node,
                expected: (leader, epoch),
                got: (got_leader, got_epoch),
            } => write!(
                f,
                "node {node} should rejoin leader {leader} epoch {epoch}, got {got_leader} epoch {got_epoch}"
            ),
        }
    }
}

impl std::error::Error for DemoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DemoError::OwnBinary(e) | DemoError::Prepare(e) | DemoError::Start(e) => Some(e),
            DemoError::Kill { source, .. } | DemoError::Restart { source, .. } => Some(source),
            DemoError::NoAgreement { .. } | DemoError::LeaderChanged { .. } => None,
        }
    }
}

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

/// Wait for agreement, showing the table every [`REFRESH`] until then and once more when
/// agreed. Returns (leader, epoch, time to agreement).
fn watch(cluster: &LocalCluster, what: &'static str) -> Result<(u64, u64, Duration), DemoError> {
    let start = Instant::now();
    let mut last_print = Instant::now();
    loop {
        if let Some((leader, epoch)) = cluster.agreed_leader() {
            let took = start.elapsed();
            crate::outln!("{}", table(cluster));
            return Ok((leader, epoch, took));
        }
        if start.elapsed() > LIMIT {
            return Err(DemoError::NoAgreement {
                what,
                table: table(cluster),
                logs: cluster.all_logs(),
            });
        }
        if last_print.elapsed() > REFRESH {
            crate::outln!(
                "  ... {what} ({} ms)\n{}",
                start.elapsed().as_millis(),
                table(cluster)
            );
            last_print = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Step 1: every node at once. Returns (leader, epoch, time to agreement).
fn cold_start(cluster: &mut LocalCluster, nodes: usize) -> Result<(u64, u64, Duration), DemoError> {
    crate::outln!("1. starting {nodes} nodes together");
    cluster.start_all().map_err(DemoError::Start)?;
    let (leader, epoch, cold) = watch(cluster, "electing")?;
    let slowest = cluster
        .ids()
        .iter()
        .filter_map(|&id| cluster.state(id)?.last_election_ms)
        .fold(0.0, f64::max);
    crate::outln!(
        "   node {leader} leads epoch {epoch}; every node decided {:.1} ms after the last launch (slowest node's own election {slowest:.1} ms)\n",
        ms(cold)
    );
    Ok((leader, epoch, cold))
}

/// Step 2: SIGKILL the leader. Returns the new (leader, epoch) and the failover time.
fn failover(cluster: &mut LocalCluster, leader: u64) -> Result<(u64, u64, Duration), DemoError> {
    crate::outln!("2. SIGKILL the leader, node {leader}");
    cluster.kill(leader).map_err(|source| DemoError::Kill {
        node: leader,
        source,
    })?;
    let (new_leader, new_epoch, took) = watch(cluster, "failing over")?;
    crate::outln!(
        "   node {new_leader} leads epoch {new_epoch}; failover took {:.1} ms (detection is {} ticks of silence)\n",
        ms(took),
        sync_limit()
    );
    Ok((new_leader, new_epoch, took))
}

/// Step 3: restart the old leader; it must follow `current` without a new election.
fn rejoin(
    cluster: &mut LocalCluster,
    old: u64,
    current: (u64, u64),
) -> Result<Duration, DemoError> {
    crate::outln!("3. restarting node {old}");
    cluster
        .start(old)
        .map_err(|source| DemoError::Restart { node: old, source })?;
    let (leader, epoch, took) = watch(cluster, "rejoining")?;
    if (leader, epoch) != current {
        return Err(DemoError::LeaderChanged {
            node: old,
            expected: current,
            got: (leader, epoch),
        });
    }
    crate::outln!(
        "   node {old} follows node {} again after {:.1} ms; the leader did not change\n",
        current.0,
        ms(took)
    );
    Ok(took)
}

/// Ticks of leader silence after which a follower starts an election: the daemon's
/// default, which the demo's nodes run with.
fn sync_limit() -> u32 {
    votecast_core::election::Config::new(1, &[1])
        .expect("one voter with id 1 is a valid configuration")
        .sync_limit
}

fn summary(nodes: usize, cold: Duration, failover: Duration, rejoin: Duration) -> String {
    format!(
        "summary ({nodes} nodes on lo):\n\
         \x20 cold start to agreement : {:>8.1} ms\n\
         \x20 failover after SIGKILL  : {:>8.1} ms\n\
         \x20 rejoin of the old leader: {:>8.1} ms\n",
        ms(cold),
        ms(failover),
        ms(rejoin)
    )
}

pub fn run(nodes: usize) -> Result<(), DemoError> {
    let exe = std::env::current_exe().map_err(DemoError::OwnBinary)?;
    let mut cluster = LocalCluster::new(&exe, nodes as u64, 0).map_err(DemoError::Prepare)?;
    crate::outln!(
        "votecast demo: {nodes} nodes on lo, group {}, files in {}\n",
        cluster.group,
        cluster.dir.path().display()
    );
    let (leader, _, cold) = cold_start(&mut cluster, nodes)?;
    let (new_leader, new_epoch, failover_took) = failover(&mut cluster, leader)?;
    let rejoin_took = rejoin(&mut cluster, leader, (new_leader, new_epoch))?;
    {
        use std::io::Write as _;
        // Never panics on a closed or full stdout (see `outln!`).
        let _ = write!(
            std::io::stdout().lock(),
            "{}",
            summary(nodes, cold, failover_took, rejoin_took)
        );
    }
    drop(cluster);
    crate::outln!("all demo processes stopped, temporary files removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_up() {
        let text = summary(
            3,
            Duration::from_micros(5_200),
            Duration::from_millis(318),
            Duration::from_micros(12_345),
        );
        assert_eq!(
            text,
            "summary (3 nodes on lo):\n\
             \x20 cold start to agreement :      5.2 ms\n\
             \x20 failover after SIGKILL  :    318.0 ms\n\
             \x20 rejoin of the old leader:     12.3 ms\n"
        );
    }

    #[test]
    fn detection_is_the_default_sync_limit() {
        assert_eq!(sync_limit(), 6);
    }

    #[test]
    fn error_messages() {
        let e = DemoError::LeaderChanged {
            node: 1,
            expected: (3, 2),
            got: (1, 3),
        };
        assert_eq!(
            e.to_string(),
            "node 1 should rejoin leader 3 epoch 2, got 1 epoch 3"
        );
        let e = DemoError::NoAgreement {
            what: "electing",
            table: "T".into(),
            logs: "L".into(),
        };
        assert_eq!(e.to_string(), "electing: no agreement within 20s\nT\nL");
    }
}
