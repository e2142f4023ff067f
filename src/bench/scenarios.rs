//! The latency scenarios on one cluster size: cold start, then SIGKILL, SIGSTOP and SIGTERM
//! of the leader at the default timing, and SIGKILL and SIGSTOP at the fast timing.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use super::poll::{ms, Poller};
use super::stats::Series;
use super::{default_timing, LIMIT};
use crate::cluster::LocalCluster;
use votecast_core::rng::SplitMix64;

const FAST_ARGS: [&str; 4] = ["--tick", "20ms", "--finalize-wait", "20ms"];
const FAST_TICK: Duration = Duration::from_millis(20);

/// One scenario at one cluster size.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub scenario: &'static str,
    pub nodes: usize,
    /// From the fault (or last launch) to agreement, as seen by this process.
    pub latency: Series,
    /// Every agreeing node's own `last_election_ms`.
    pub node_election: Series,
    /// SIGSTOP only: new leader's first LEADING write minus the stopped leader's last
    /// `valid_until_unix_ms` (wall clock, ms). Negative would mean overlapping leases.
    pub lease_gap: Series,
}

impl Row {
    pub fn new(scenario: &'static str, nodes: usize) -> Row {
        Row {
            scenario,
            nodes,
            latency: Series::default(),
            node_election: Series::default(),
            lease_gap: Series::default(),
        }
    }
}

/// Rows of one cluster size.
pub(super) struct SizeRows {
    cold: Row,
    cold_up: Row,
    cold_elect: Row,
    kill: Row,
    stop: Row,
    term: Row,
    kill_fast: Row,
    stop_fast: Row,
}

impl SizeRows {
    pub fn new(n: usize) -> SizeRows {
        SizeRows {
            cold: Row::new("cold start", n),
            cold_up: Row::new(" - last node up", n),
            cold_elect: Row::new(" - then all agree", n),
            kill: Row::new("failover SIGKILL", n),
            stop: Row::new("failover SIGSTOP", n),
            term: Row::new("handover SIGTERM", n),
            kill_fast: Row::new("failover SIGKILL fast", n),
            stop_fast: Row::new("failover SIGSTOP fast", n),
        }
    }

    /// The rows in print order.
    pub fn into_rows(self) -> [Row; 8] {
        [
            self.cold,
            self.cold_up,
            self.cold_elect,
            self.kill,
            self.stop,
            self.kill_fast,
            self.stop_fast,
            self.term,
        ]
    }
}

/// Random settle times, seeded from the clock: the fault should hit the leader's
/// heartbeat at a different phase in every repetition, not replay one phase.
fn clock_seeded_rng() -> SplitMix64 {
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    SplitMix64::new(seed)
}

/// Runs the scenarios and collects what went wrong.
pub(super) struct Scenarios {
    exe: PathBuf,
    pub poller: Poller,
    rng: SplitMix64,
    /// One entry per failed step: what failed and every node's view at that moment.
    pub errors: Vec<String>,
    default_tick: Duration,
    sync_limit: u32,
    /// The core's clock (CLOCK_BOOTTIME, µs) just before the last fault was sent: the
    /// origin of the nodes' `round-trace` lines for that failover.
    pub fault_boottime_us: u64,
    clock: crate::driver::clock::Clock,
}

impl Scenarios {
    pub fn new(exe: PathBuf, poll: Duration) -> Scenarios {
        let (default_tick, sync_limit) = default_timing();
        Scenarios {
            exe,
            poller: Poller::new(poll),
            rng: clock_seeded_rng(),
            errors: Vec::new(),
            default_tick,
            sync_limit,
            fault_boottime_us: 0,
            clock: crate::driver::clock::Clock::new(),
        }
    }

    /// Let the cluster settle: the restart quarantine (sync-limit ticks) plus a random
    /// part of a tick, so the next fault hits a random phase of the heartbeat.
    pub fn settle(&mut self, tick: Duration) {
        let base = tick * (self.sync_limit + 2);
        let jitter = Duration::from_micros(self.rng.below(tick.as_micros() as u64));
        std::thread::sleep(base + jitter);
    }

    fn fail(&mut self, what: String, cluster: &LocalCluster) {
        crate::errln!("votecast bench: {what}");
        let mut text = what;
        for node in &cluster.nodes {
            let state = cluster.state(node.id);
            let _ = write!(
                text,
                "\n  node {}: {:?}",
                node.id,
                state.map(|s| (s.state, s.leader, s.epoch))
            );
        }
        self.errors.push(text);
    }

    /// Start a fresh cluster and measure the cold start into `rows` (total, last node
    /// up, then all agree). Returns the cluster and its agreed (leader, epoch), or None
    /// after recording a failure.
    pub fn cold_start(
        &mut self,
        n: usize,
        args: &[&str],
        rows: Option<(&mut Row, &mut Row, &mut Row)>,
    ) -> Option<(LocalCluster, u64, u64)> {
        let mut cluster = match LocalCluster::new(&self.exe, n as u64, 0) {
            Ok(c) => c,
            Err(e) => {
                self.errors.push(format!("cannot prepare a cluster: {e}"));
                return None;
            }
        };
        cluster.common_args = args.iter().map(|s| s.to_string()).collect();
        if let Err(e) = cluster.start_all() {
            self.errors.push(format!("cannot start a node: {e}"));
            return None;
        }
        let launched = Instant::now();
        let ids = cluster.ids();
        match self.poller.wait(&cluster, &ids, launched, |_| true) {
            Some((a, took)) => {
                if let Some((row, up_row, elect_row)) = rows {
                    row.latency.samples.push(ms(took));
                    row.node_election.samples.extend(&a.election_ms);
                    // The state files exist by the time they agree.
                    let up = self.poller.all_up.unwrap_or(took);
                    up_row.latency.samples.push(ms(up));
                    elect_row.latency.samples.push(ms(took - up));
                }
                Some((cluster, a.leader, a.epoch))
            }
            None => {
                if let Some((row, _, _)) = rows {
                    row.latency.failures += 1;
                }
                self.fail(format!("N={n}: no agreement after a cold start"), &cluster);
                None
            }
        }
    }

    /// Fault the leader with `signal` and measure until the survivors agree on a new one.
    pub fn failover(
        &mut self,
        cluster: &mut LocalCluster,
        old: (u64, u64),
        signal: Signal,
        row: &mut Row,
    ) -> Option<(u64, u64)> {
        let (leader, epoch) = old;
        let before = cluster.state(leader);
        let survivors: Vec<u64> = cluster
            .running_ids()
            .into_iter()
            .filter(|&id| id != leader)
            .collect();
        self.fault_boottime_us = self.clock.core().as_micros();
        let start = Instant::now();
        let sent = if signal == Signal::SIGKILL {
            cluster.kill(leader)
        } else {
            cluster.signal(leader, signal)
        };
        if let Err(e) = sent {
            self.errors
                .push(format!("cannot send {signal} to node {leader}: {e}"));
            return None;
        }
        let seen = self.poller.wait(cluster, &survivors, start, |a| {
            a.leader != leader && a.epoch > epoch
        });
        let Some((a, took)) = seen else {
            row.latency.failures += 1;
            self.fail(
                format!(
                    "N={}: no new leader within {LIMIT:?} after {signal} of node {leader}",
                    cluster.voters.len()
                ),
                cluster,
            );
            return None;
        };
        row.latency.samples.push(ms(took));
        row.node_election.samples.extend(&a.election_ms);
        if signal == Signal::SIGSTOP {
            if let Some(until) = before.and_then(|s| s.valid_until_unix_ms) {
                row.lease_gap
                    .samples
                    .push(a.leader_updated_unix_ms as f64 - until as f64);
            }
        }
        Some((a.leader, a.epoch))
    }

    /// Bring `old` back (restart after SIGKILL, continue after SIGSTOP) and wait until all
    /// nodes agree on `current` again.
    pub fn rejoin(
        &mut self,
        cluster: &mut LocalCluster,
        old: u64,
        signal: Signal,
        current: (u64, u64),
    ) -> bool {
        let back = if signal == Signal::SIGKILL {
            cluster.start(old)
        } else {
            cluster.signal(old, Signal::SIGCONT)
        };
        if let Err(e) = back {
            self.errors
                .push(format!("cannot bring node {old} back: {e}"));
            return false;
        }
        let ids = cluster.ids();
        let ok = self
            .poller
            .wait(cluster, &ids, Instant::now(), |a| {
                (a.leader, a.epoch) == current
            })
            .is_some();
        if !ok {
            self.fail(
                format!("node {old} did not rejoin leader {current:?} after {signal}"),
                cluster,
            );
        }
        ok
    }

    /// One repetition of every scenario at cluster size `n`.
    pub fn repetition(&mut self, n: usize, rows: &mut SizeRows) {
        if self.default_timing(n, rows) {
            self.fast_timing(n, rows);
        }
    }

    /// Default timing: cold start, SIGKILL, SIGSTOP, SIGTERM on one cluster. False when
    /// a failover or rejoin failed: the repetition ends there. A failed cold start has
    /// no cluster to fault and lets the fast scenarios run.
    fn default_timing(&mut self, n: usize, rows: &mut SizeRows) -> bool {
        let Some((mut cluster, leader, epoch)) = self.cold_start(
            n,
            &[],
            Some((&mut rows.cold, &mut rows.cold_up, &mut rows.cold_elect)),
        ) else {
            return true;
        };
        let tick = self.default_tick;
        self.settle(tick);
        let mut current = (leader, epoch);
        for (signal, row) in [
            (Signal::SIGKILL, &mut rows.kill),
            (Signal::SIGSTOP, &mut rows.stop),
            (Signal::SIGTERM, &mut rows.term),
        ] {
            let old = current.0;
            let Some(next) = self.failover(&mut cluster, current, signal, row) else {
                return false;
            };
            current = next;
            if signal == Signal::SIGTERM {
                let _ = cluster.terminate(old, Duration::from_secs(5));
                return true;
            }
            if !self.rejoin(&mut cluster, old, signal, current) {
                return false;
            }
            self.settle(tick);
        }
        true
    }

    /// Fast timing: SIGKILL and SIGSTOP.
    fn fast_timing(&mut self, n: usize, rows: &mut SizeRows) {
        let Some((mut cluster, leader, epoch)) = self.cold_start(n, &FAST_ARGS, None) else {
            return;
        };
        self.settle(FAST_TICK);
        let current = (leader, epoch);
        let Some(next) = self.failover(&mut cluster, current, Signal::SIGKILL, &mut rows.kill_fast)
        else {
            return;
        };
        if !self.rejoin(&mut cluster, leader, Signal::SIGKILL, next) {
            return;
        }
        self.settle(FAST_TICK);
        self.failover(&mut cluster, next, Signal::SIGSTOP, &mut rows.stop_fast);
        // Dropping the cluster SIGKILLs the stopped process too.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_print_in_table_order() {
        let names: Vec<&str> = SizeRows::new(5)
            .into_rows()
            .iter()
            .map(|r| r.scenario)
            .collect();
        assert_eq!(
            names,
            [
                "cold start",
                " - last node up",
                " - then all agree",
                "failover SIGKILL",
                "failover SIGSTOP",
                "failover SIGKILL fast",
                "failover SIGSTOP fast",
                "handover SIGTERM",
            ]
        );
        assert!(SizeRows::new(5).into_rows().iter().all(|r| r.nodes == 5));
    }
}
