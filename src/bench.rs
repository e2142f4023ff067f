//! `votecast bench`: election and failover latency of real `votecast run` processes on
//! `lo`, and (`--footprint`) the resident memory, CPU use and binary size of idle nodes.
//!
//! Latency scenarios, each repeated `--reps` times for every cluster size in `--nodes`:
//! - `cold start`: all voters launched together (fresh data dirs); from the return of the
//!   last launch to every node reporting the same leader and epoch, the leader LEADING.
//!   The per-node `last_election_ms` (each node's own clock, from its election start to its
//!   decision) is read from the state files at that moment;
//! - `SIGKILL`: the leader is killed; from the kill to every survivor agreeing on a new
//!   leader with a higher epoch, the leader LEADING;
//! - `SIGSTOP`: the leader is stopped (a hung board); likewise. The stopped process is
//!   continued afterwards and must rejoin;
//! - `SIGTERM`: graceful handover, the leader resigns on its way out;
//! - the `fast` scenarios run the same at `--tick 20ms --finalize-wait 20ms`.
//!
//! All time stamps come from this process's monotonic clock. State files are polled every
//! `--poll` (default 500 µs) plus the time one sweep over the files takes; both are
//! reported, and bound the measurement error. Between a rejoin and the next fault the
//! cluster settles for a random time (at least the restart quarantine of `sync-limit`
//! ticks), so faults hit the leader at random phases of its heartbeat.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::cluster::LocalCluster;
use crate::daemon::state_file::read_state_file;
use crate::duration::parse_duration;
use votecast_core::rng::SplitMix64;

const DEFAULT_NODES: &[usize] = &[3, 5, 7, 9];
const DEFAULT_REPS: usize = 20;
const DEFAULT_POLL: Duration = Duration::from_micros(500);
const DEFAULT_FOOTPRINT_WINDOW: Duration = Duration::from_secs(30);
/// Longest wait for any agreement before a repetition counts as failed.
const LIMIT: Duration = Duration::from_secs(10);
const FAST_ARGS: [&str; 4] = ["--tick", "20ms", "--finalize-wait", "20ms"];
const DEFAULT_TICK: Duration = Duration::from_millis(50);
const FAST_TICK: Duration = Duration::from_millis(20);
const SYNC_LIMIT: u32 = 6;

/// `votecast bench` flags, as clap sees them (text; converted by [`BenchArgs::resolve`]).
#[derive(clap::Args, Debug, Default)]
pub struct BenchArgs {
    /// Cluster sizes (voters) to measure, comma-separated, each 3..=64 [default: 3,5,7,9].
    #[arg(long, value_name = "N,N,...")]
    nodes: Option<String>,
    /// Repetitions of every scenario per cluster size [default: 20].
    #[arg(long, value_name = "N")]
    reps: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Pause between two sweeps over the state files, at most 1ms [default: 500us].
    #[arg(long, value_name = "DURATION")]
    poll: Option<String>,
    /// Measure the footprint instead: RSS of idle nodes, their CPU use over --window at
    /// the default tick, and the binary size (a cluster of the first --nodes size, default 3).
    #[arg(long)]
    footprint: bool,
    /// Footprint measuring window [default: 30s].
    #[arg(long, value_name = "DURATION")]
    window: Option<String>,
}

/// Resolved `votecast bench` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchSettings {
    pub nodes: Vec<usize>,
    pub reps: usize,
    pub json: Option<PathBuf>,
    pub poll: Duration,
    pub footprint: bool,
    pub window: Duration,
}

impl BenchArgs {
    /// Check and convert the flags; the message names the flag.
    pub fn resolve(&self) -> Result<BenchSettings, String> {
        let nodes = match &self.nodes {
            None if self.footprint => vec![3],
            None => DEFAULT_NODES.to_vec(),
            Some(text) => text
                .split(',')
                .map(|part| match part.trim().parse::<usize>() {
                    Ok(n) if (3..=64).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "error: --nodes: expected comma-separated sizes from 3 to 64, got {text:?}"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let reps = match &self.reps {
            None => DEFAULT_REPS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "error: --reps: expected an integer from 1 to 10000, got {text:?}"
                    ))
                }
            },
        };
        let poll = match &self.poll {
            None => DEFAULT_POLL,
            Some(text) => match parse_duration(text) {
                Ok(d) if d <= Duration::from_millis(1) => d,
                Ok(_) => return Err(format!("error: --poll: at most 1ms, got {text:?}")),
                Err(e) => return Err(format!("error: --poll: {e}")),
            },
        };
        let window = match &self.window {
            None => DEFAULT_FOOTPRINT_WINDOW,
            Some(text) => match parse_duration(text) {
                Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(3600) => d,
                Ok(_) => return Err(format!("error: --window: from 1s to 1h, got {text:?}")),
                Err(e) => return Err(format!("error: --window: {e}")),
            },
        };
        Ok(BenchSettings {
            nodes,
            reps,
            json: self.json.clone(),
            poll,
            footprint: self.footprint,
            window,
        })
    }
}

// ----- statistics ---------------------------------------------------------------------

/// Nearest-rank percentile of sorted samples (p in 0..=100).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[derive(Debug, Clone, Default)]
struct Series {
    samples: Vec<f64>,
    failures: usize,
}

impl Series {
    fn sorted(&self) -> Vec<f64> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s
    }
    fn stats(&self) -> Option<(f64, f64, f64, f64)> {
        let s = self.sorted();
        Some((
            *s.first()?,
            percentile(&s, 50.0)?,
            percentile(&s, 99.0)?,
            *s.last()?,
        ))
    }
}

/// One scenario at one cluster size.
#[derive(Debug, Clone)]
struct Row {
    scenario: &'static str,
    nodes: usize,
    /// From the fault (or last launch) to agreement, as seen by this process.
    latency: Series,
    /// Every agreeing node's own `last_election_ms`.
    node_election: Series,
    /// SIGSTOP only: new leader's first LEADING write minus the stopped leader's last
    /// `valid_until_unix_ms` (wall clock, ms). Negative would mean overlapping leases.
    lease_gap: Series,
}

impl Row {
    fn new(scenario: &'static str, nodes: usize) -> Row {
        Row {
            scenario,
            nodes,
            latency: Series::default(),
            node_election: Series::default(),
            lease_gap: Series::default(),
        }
    }
}

// ----- polling ------------------------------------------------------------------------

/// An agreed view: leader, epoch, and the agreeing nodes' `last_election_ms`.
struct Agreement {
    leader: u64,
    epoch: u64,
    election_ms: Vec<f64>,
    /// The leader's `updated_unix_ms` when first seen LEADING.
    leader_updated_unix_ms: u64,
}

/// One sweep over the state files of `ids`: Some when all of them report the same leader
/// and epoch, the leader (one of `ids`) LEADING, voters FOLLOWING, observers OBSERVING.
fn agreement(cluster: &LocalCluster, ids: &[u64]) -> Option<Agreement> {
    let mut view: Option<(u64, u64)> = None;
    let mut election_ms = Vec::with_capacity(ids.len());
    let mut leader_updated_unix_ms = 0;
    for &id in ids {
        let state = read_state_file(&cluster.node(id).state_file).ok()?;
        let this = (state.leader?, state.epoch?);
        if view.is_some_and(|v| v != this) {
            return None;
        }
        view = Some(this);
        let expected = if this.0 == id {
            leader_updated_unix_ms = state.updated_unix_ms;
            "LEADING"
        } else if cluster.voters.contains(&id) {
            "FOLLOWING"
        } else {
            "OBSERVING"
        };
        if state.state != expected {
            return None;
        }
        election_ms.extend(state.last_election_ms);
    }
    let (leader, epoch) = view?;
    ids.contains(&leader).then_some(Agreement {
        leader,
        epoch,
        election_ms,
        leader_updated_unix_ms,
    })
}

/// Polls state files; counts sweeps to report the effective polling period.
struct Poller {
    pause: Duration,
    sweeps: u64,
    sweep_time: Duration,
    /// During the last `wait`: when every node's state file first existed (each node
    /// writes it right after opening its socket, just before its first vote).
    all_up: Option<Duration>,
}

impl Poller {
    /// Sweep until `accept` takes an agreement of `ids` or `LIMIT` passes after `start`.
    /// Returns the agreement and the time from `start` to the sweep that saw it.
    fn wait(
        &mut self,
        cluster: &LocalCluster,
        ids: &[u64],
        start: Instant,
        accept: impl Fn(&Agreement) -> bool,
    ) -> Option<(Agreement, Duration)> {
        self.all_up = None;
        loop {
            let sweep_start = Instant::now();
            let seen = agreement(cluster, ids);
            let now = Instant::now();
            if self.all_up.is_none() && ids.iter().all(|&id| cluster.node(id).state_file.exists()) {
                self.all_up = Some(now - start);
            }
            self.sweeps += 1;
            self.sweep_time += now - sweep_start;
            if let Some(a) = seen.filter(&accept) {
                // The moment the agreeing files were read, at the latest.
                return Some((a, now - start));
            }
            if now - start > LIMIT {
                return None;
            }
            std::thread::sleep(self.pause);
        }
    }

    fn mean_sweep(&self) -> Duration {
        if self.sweeps == 0 {
            Duration::ZERO
        } else {
            self.sweep_time / u32::try_from(self.sweeps).unwrap_or(u32::MAX)
        }
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ----- scenarios ----------------------------------------------------------------------

struct Bench {
    exe: PathBuf,
    poller: Poller,
    rng: SplitMix64,
    errors: Vec<String>,
}

/// Rows of one cluster size, in print order.
struct SizeRows {
    cold: Row,
    cold_up: Row,
    cold_elect: Row,
    kill: Row,
    stop: Row,
    term: Row,
    kill_fast: Row,
    stop_fast: Row,
}

impl Bench {
    /// Let the cluster settle: the restart quarantine (sync-limit ticks) plus a random
    /// part of a tick, so the next fault hits a random phase of the heartbeat.
    fn settle(&mut self, tick: Duration) {
        let base = tick * (SYNC_LIMIT + 2);
        let jitter = Duration::from_micros(self.rng.below(tick.as_micros() as u64));
        std::thread::sleep(base + jitter);
    }

    fn fail(&mut self, what: String, cluster: &LocalCluster) {
        eprintln!("votecast bench: {what}");
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

    /// Start a fresh cluster and measure the cold start. Returns the cluster and its
    /// agreed (leader, epoch), or None after recording a failure.
    fn cold_start(
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
    fn failover(
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
        match seen {
            Some((a, took)) => {
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
            None => {
                row.latency.failures += 1;
                self.fail(
                    format!(
                        "N={}: no new leader within {LIMIT:?} after {signal} of node {leader}",
                        cluster.voters.len()
                    ),
                    cluster,
                );
                None
            }
        }
    }

    /// Bring `old` back (restart after SIGKILL, continue after SIGSTOP) and wait until all
    /// nodes agree on `current` again.
    fn rejoin(
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
    fn repetition(&mut self, n: usize, rows: &mut SizeRows) {
        // Default timing: cold start, SIGKILL, SIGSTOP, SIGTERM on one cluster.
        if let Some((mut cluster, leader, epoch)) = self.cold_start(
            n,
            &[],
            Some((&mut rows.cold, &mut rows.cold_up, &mut rows.cold_elect)),
        ) {
            self.settle(DEFAULT_TICK);
            let mut current = (leader, epoch);
            for (signal, row) in [
                (Signal::SIGKILL, &mut rows.kill),
                (Signal::SIGSTOP, &mut rows.stop),
                (Signal::SIGTERM, &mut rows.term),
            ] {
                let old = current.0;
                let Some(next) = self.failover(&mut cluster, current, signal, row) else {
                    return;
                };
                current = next;
                if signal == Signal::SIGTERM {
                    let _ = cluster.terminate(old, Duration::from_secs(5));
                    break;
                }
                if !self.rejoin(&mut cluster, old, signal, current) {
                    return;
                }
                self.settle(DEFAULT_TICK);
            }
        }
        // Fast timing: SIGKILL and SIGSTOP.
        if let Some((mut cluster, leader, epoch)) = self.cold_start(n, &FAST_ARGS, None) {
            self.settle(FAST_TICK);
            let current = (leader, epoch);
            let Some(next) =
                self.failover(&mut cluster, current, Signal::SIGKILL, &mut rows.kill_fast)
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
}

// ----- machine ------------------------------------------------------------------------

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn machine_json() -> String {
    format!(
        "{{\"cpu\":{},\"cores\":{},\"kernel\":{}}}",
        json_str(&cpu_model()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        json_str(
            fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        )
    )
}

fn machine_line() -> String {
    format!(
        "machine: {}, {} cores, Linux {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    )
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

fn series_json(s: &Series) -> String {
    let samples: Vec<String> = s.samples.iter().map(|&x| json_num(x)).collect();
    let stats = match s.stats() {
        Some((min, p50, p99, max)) => format!(
            "\"min\":{},\"p50\":{},\"p99\":{},\"max\":{}",
            json_num(min),
            json_num(p50),
            json_num(p99),
            json_num(max)
        ),
        None => "\"min\":null,\"p50\":null,\"p99\":null,\"max\":null".into(),
    };
    format!(
        "{{\"count\":{},\"failures\":{},{stats},\"samples_ms\":[{}]}}",
        s.samples.len(),
        s.failures,
        samples.join(",")
    )
}

fn fmt_stats(s: &Series) -> String {
    match s.stats() {
        Some((_, p50, p99, max)) => format!("{p50:>8.1} {p99:>8.1} {max:>8.1}"),
        None => format!("{:>8} {:>8} {:>8}", "-", "-", "-"),
    }
}

// ----- latency run --------------------------------------------------------------------

fn run_latency(settings: &BenchSettings, exe: PathBuf) -> Result<(), String> {
    let load_before = loadavg();
    println!("votecast bench: {} repetitions per scenario", settings.reps);
    println!("{}", machine_line());
    println!("load average before: {load_before}");
    println!(
        "binary: {} (--poll {} µs between sweeps over the state files)\n",
        exe.display(),
        settings.poll.as_micros()
    );
    let mut bench = Bench {
        exe,
        poller: Poller {
            pause: settings.poll,
            sweeps: 0,
            sweep_time: Duration::ZERO,
            all_up: None,
        },
        rng: clock_seeded_rng(),
        errors: Vec::new(),
    };
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    for &n in &settings.nodes {
        let mut size = SizeRows {
            cold: Row::new("cold start", n),
            cold_up: Row::new(" - last node up", n),
            cold_elect: Row::new(" - then all agree", n),
            kill: Row::new("failover SIGKILL", n),
            stop: Row::new("failover SIGSTOP", n),
            term: Row::new("handover SIGTERM", n),
            kill_fast: Row::new("failover SIGKILL fast", n),
            stop_fast: Row::new("failover SIGSTOP fast", n),
        };
        for rep in 0..settings.reps {
            bench.repetition(n, &mut size);
            eprint!("\rN={n}: {}/{} repetitions", rep + 1, settings.reps);
        }
        eprintln!();
        rows.extend([
            size.cold,
            size.cold_up,
            size.cold_elect,
            size.kill,
            size.stop,
            size.kill_fast,
            size.stop_fast,
            size.term,
        ]);
    }
    let load_after = loadavg();
    let poll_res = settings.poll + bench.poller.mean_sweep();

    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<22} {:>3} {:>4} {:>4} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8}",
        "scenario",
        "N",
        "ok",
        "fail",
        "p50 ms",
        "p99 ms",
        "max ms",
        "node p50",
        "node p99",
        "node max"
    );
    let _ = writeln!(table, "{}", "-".repeat(104));
    for row in &rows {
        let _ = writeln!(
            table,
            "{:<22} {:>3} {:>4} {:>4} | {} | {}",
            row.scenario,
            row.nodes,
            row.latency.samples.len(),
            row.latency.failures,
            fmt_stats(&row.latency),
            fmt_stats(&row.node_election)
        );
    }
    print!("{table}");
    println!(
        "\nlatency: this process's monotonic clock, from the last launch / the signal to the sweep\n\
         that saw every node agree; node columns: each agreeing node's own last_election_ms.\n\
         Cold start = last node up (every node has written its first state file, just before its\n\
         first vote) + then all agree.\n\
         p99 is nearest-rank (with 20 samples it is the maximum). Polling resolution: {:.3} ms\n\
         ({} µs pause + {:.3} ms mean sweep over the state files).",
        ms(poll_res),
        settings.poll.as_micros(),
        ms(bench.poller.mean_sweep())
    );
    let gaps: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.lease_gap.samples.iter().copied())
        .collect();
    if let Some(min_gap) = gaps.iter().copied().reduce(f64::min) {
        println!(
            "SIGSTOP: new leader's first LEADING write minus the stopped leader's valid_until: min {min_gap:.0} ms over {} failovers (negative = overlapping leases)",
            gaps.len()
        );
    }
    println!(
        "load average after: {load_after}; took {:.0} s",
        started.elapsed().as_secs_f64()
    );
    for e in &bench.errors {
        println!("error: {e}");
    }

    if let Some(path) = &settings.json {
        let results: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{{\"scenario\":{},\"nodes\":{},\"latency\":{},\"node_last_election\":{},\"lease_gap\":{}}}",
                    json_str(r.scenario),
                    r.nodes,
                    series_json(&r.latency),
                    series_json(&r.node_election),
                    series_json(&r.lease_gap)
                )
            })
            .collect();
        let json = format!(
            "{{\"kind\":\"latency\",\"machine\":{},\"load_before\":{},\"load_after\":{},\"reps\":{},\"poll_pause_us\":{},\"poll_resolution_ms\":{},\"errors\":[{}],\"results\":[{}]}}\n",
            machine_json(),
            json_str(&load_before),
            json_str(&load_after),
            settings.reps,
            settings.poll.as_micros(),
            json_num(ms(poll_res)),
            bench.errors.iter().map(|e| json_str(e)).collect::<Vec<_>>().join(","),
            results.join(",")
        );
        write_json(path, &json)?;
    }
    let failures: usize = rows.iter().map(|r| r.latency.failures).sum();
    if failures > 0 || !bench.errors.is_empty() {
        return Err(format!(
            "{failures} repetitions failed ({} errors)",
            bench.errors.len()
        ));
    }
    Ok(())
}

fn write_json(path: &Path, json: &str) -> Result<(), String> {
    fs::write(path, json).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("JSON written to {}", path.display());
    Ok(())
}

// ----- footprint ----------------------------------------------------------------------

/// A `kB` field of /proc/PID/status or smaps_rollup.
fn kb_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of a process in clock ticks (USER_HZ, 100 per second on Linux).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Time on a CPU in ns (/proc/PID/schedstat, first field): finer than clock ticks.
fn cpu_ns(pid: u32) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn context_switches(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(
        kb_field(&status, "voluntary_ctxt_switches")?
            + kb_field(&status, "nonvoluntary_ctxt_switches")?,
    )
}

/// Resident kB per mapping (file name, or [heap]/[stack]/[anon]) from /proc/PID/smaps.
fn rss_by_mapping(pid: u32) -> Vec<(String, u64)> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let mut totals: Vec<(String, u64)> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // Header: address perms offset dev inode [path]
            let path = line.split_whitespace().nth(5).unwrap_or("[anon]");
            current = Path::new(path)
                .file_name()
                .map_or(path.to_string(), |f| f.to_string_lossy().into_owned());
            if path.starts_with('[') {
                current = path.to_string();
            }
        } else if let Some(kb) = kb_field(line, "Rss") {
            match totals.iter_mut().find(|(name, _)| *name == current) {
                Some(entry) => entry.1 += kb,
                None => totals.push((current.clone(), kb)),
            }
        }
    }
    totals.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    totals
}

struct NodeFootprint {
    id: u64,
    state: String,
    rss_kb: u64,
    hwm_kb: u64,
    rollup: Vec<(&'static str, u64)>,
    mappings: Vec<(String, u64)>,
    cpu_ticks: u64,
    cpu_ns: u64,
    switches: u64,
}

fn run_footprint(settings: &BenchSettings, exe: PathBuf) -> Result<(), String> {
    let n = settings.nodes[0];
    let binary_bytes = fs::metadata(&exe)
        .map_err(|e| format!("cannot stat {}: {e}", exe.display()))?
        .len();
    let load_before = loadavg();
    println!("votecast bench --footprint: {n} nodes on lo at the default tick (50ms)");
    println!("{}", machine_line());
    println!("load average before: {load_before}");
    let mut cluster = LocalCluster::new(&exe, n as u64, 0)
        .map_err(|e| format!("cannot prepare the cluster: {e}"))?;
    // Quiet children: the footprint of the default log level (one line per change).
    cluster
        .start_all()
        .map_err(|e| format!("cannot start a node: {e}"))?;
    let (leader, epoch, _) = cluster
        .await_agreement(LIMIT)
        .ok_or_else(|| "no agreement".to_string())?;
    println!(
        "node {leader} leads epoch {epoch}; settling 2 s, then measuring for {:?}",
        settings.window
    );
    std::thread::sleep(Duration::from_secs(2));
    let ids = cluster.ids();
    let pids: Vec<u32> = ids
        .iter()
        .map(|&id| cluster.node(id).pid().unwrap_or(0))
        .collect();
    let start_ticks: Vec<Option<u64>> = pids.iter().map(|&p| cpu_ticks(p)).collect();
    let start_ns: Vec<Option<u64>> = pids.iter().map(|&p| cpu_ns(p)).collect();
    let start_sw: Vec<Option<u64>> = pids.iter().map(|&p| context_switches(p)).collect();
    let t0 = Instant::now();
    std::thread::sleep(settings.window);
    let elapsed = t0.elapsed();
    let mut nodes = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        let pid = pids[i];
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let rollup_text =
            fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let rollup = [
            "Rss",
            "Pss",
            "Shared_Clean",
            "Shared_Dirty",
            "Private_Clean",
            "Private_Dirty",
            "Anonymous",
        ]
        .iter()
        .map(|&k| (k, kb_field(&rollup_text, k).unwrap_or(0)))
        .collect();
        let delta = |a: Option<u64>, b: Option<u64>| b.unwrap_or(0).saturating_sub(a.unwrap_or(0));
        nodes.push(NodeFootprint {
            id,
            state: cluster.state(id).map_or("?".into(), |s| s.state),
            rss_kb: kb_field(&status, "VmRSS").unwrap_or(0),
            hwm_kb: kb_field(&status, "VmHWM").unwrap_or(0),
            rollup,
            mappings: rss_by_mapping(pid),
            cpu_ticks: delta(start_ticks[i], cpu_ticks(pid)),
            cpu_ns: delta(start_ns[i], cpu_ns(pid)),
            switches: delta(start_sw[i], context_switches(pid)),
        });
    }
    let agreed_after = cluster.agreed_leader();
    drop(cluster);
    let load_after = loadavg();
    let secs = elapsed.as_secs_f64();

    println!(
        "\n{:>4} {:<10} {:>9} {:>9} {:>12} {:>12} {:>10}",
        "node", "state", "VmRSS kB", "VmHWM kB", "CPU ticks", "CPU % core", "wakeups/s"
    );
    for f in &nodes {
        println!(
            "{:>4} {:<10} {:>9} {:>9} {:>12} {:>11.3}% {:>10.1}",
            f.id,
            f.state,
            f.rss_kb,
            f.hwm_kb,
            f.cpu_ticks,
            f.cpu_ns as f64 / 1e9 / secs * 100.0,
            f.switches as f64 / secs
        );
    }
    println!(
        "\nCPU ticks: utime+stime from /proc/PID/stat (10 ms each) over {secs:.1} s; CPU %: schedstat run time / wall time."
    );
    if let Some(f) = nodes.first() {
        let rollup: Vec<String> = f
            .rollup
            .iter()
            .map(|(k, v)| format!("{k} {v} kB"))
            .collect();
        println!("node {} smaps_rollup: {}", f.id, rollup.join(", "));
        let top: Vec<String> = f
            .mappings
            .iter()
            .take(8)
            .map(|(name, kb)| format!("{name} {kb} kB"))
            .collect();
        println!("node {} resident by mapping: {}", f.id, top.join(", "));
    }
    println!(
        "binary: {} bytes ({:.2} MiB) at {}",
        binary_bytes,
        binary_bytes as f64 / 1048576.0,
        exe.display()
    );
    println!("load average after: {load_after}");
    if agreed_after != Some((leader, epoch)) {
        println!("warning: the leader changed during the window: {agreed_after:?}");
    }

    if let Some(path) = &settings.json {
        let node_json: Vec<String> = nodes
            .iter()
            .map(|f| {
                let rollup: Vec<String> = f
                    .rollup
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", json_str(k)))
                    .collect();
                let maps: Vec<String> = f
                    .mappings
                    .iter()
                    .map(|(k, v)| format!("[{},{v}]", json_str(k)))
                    .collect();
                format!(
                    "{{\"id\":{},\"state\":{},\"vm_rss_kb\":{},\"vm_hwm_kb\":{},\"cpu_ticks\":{},\"cpu_ns\":{},\"cpu_percent_of_core\":{},\"context_switches\":{},\"smaps_rollup_kb\":{{{}}},\"rss_by_mapping_kb\":[{}]}}",
                    f.id,
                    json_str(&f.state),
                    f.rss_kb,
                    f.hwm_kb,
                    f.cpu_ticks,
                    f.cpu_ns,
                    json_num(f.cpu_ns as f64 / 1e9 / secs * 100.0),
                    f.switches,
                    rollup.join(","),
                    maps.join(",")
                )
            })
            .collect();
        let json = format!(
            "{{\"kind\":\"footprint\",\"machine\":{},\"load_before\":{},\"load_after\":{},\"window_s\":{},\"binary_bytes\":{binary_bytes},\"nodes\":[{}]}}\n",
            machine_json(),
            json_str(&load_before),
            json_str(&load_after),
            json_num(secs),
            node_json.join(",")
        );
        write_json(path, &json)?;
    }
    Ok(())
}

/// Run `votecast bench` with the binary that runs it (build it with `--release`).
pub fn run(settings: &BenchSettings) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    if cfg!(debug_assertions) {
        eprintln!("votecast bench: warning: this is a debug build; publish figures of `cargo build --release` only");
    }
    if settings.footprint {
        run_footprint(settings, exe)
    } else {
        run_latency(settings, exe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&s, 50.0), Some(10.0));
        assert_eq!(percentile(&s, 99.0), Some(20.0));
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
        let s: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&s, 99.0), Some(198.0));
    }

    #[test]
    fn resolve_flags() {
        let args = BenchArgs::default();
        let s = args.resolve().unwrap();
        assert_eq!(s.nodes, vec![3, 5, 7, 9]);
        assert_eq!(s.reps, 20);
        assert_eq!(s.poll, Duration::from_micros(500));
        let args = BenchArgs {
            nodes: Some("3,15".into()),
            reps: Some("5".into()),
            poll: Some("250us".into()),
            ..BenchArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(
            (s.nodes, s.reps, s.poll),
            (vec![3, 15], 5, Duration::from_micros(250))
        );
        for (nodes, reps, poll) in [
            (Some("2"), None, None),
            (Some("3,x"), None, None),
            (None, Some("0"), None),
            (None, None, Some("5ms")),
        ] {
            let args = BenchArgs {
                nodes: nodes.map(Into::into),
                reps: reps.map(Into::into),
                poll: poll.map(Into::into),
                ..BenchArgs::default()
            };
            let e = args.resolve().unwrap_err();
            let flag = if nodes.is_some() {
                "--nodes"
            } else if reps.is_some() {
                "--reps"
            } else {
                "--poll"
            };
            assert!(e.contains(flag), "{e}");
        }
    }

    #[test]
    fn the_command_line_reaches_bench() {
        use crate::daemon::cli::{parse_command_line, Command};
        let parse = |args: &[&str]| {
            parse_command_line(
                std::iter::once("votecast")
                    .chain(args.iter().copied())
                    .map(Into::into),
            )
        };
        let Ok(Command::Bench(s)) = parse(&[
            "bench",
            "--nodes",
            "5",
            "--reps",
            "3",
            "--json",
            "/tmp/x.json",
        ]) else {
            panic!("bench did not parse");
        };
        assert_eq!((s.nodes, s.reps, s.footprint), (vec![5], 3, false));
        assert_eq!(s.json, Some(PathBuf::from("/tmp/x.json")));
        let Ok(Command::Bench(s)) = parse(&["bench", "--footprint", "--window", "5s"]) else {
            panic!("bench --footprint did not parse");
        };
        assert_eq!(
            (s.nodes, s.footprint, s.window),
            (vec![3], true, Duration::from_secs(5))
        );
        let e = parse(&["bench", "--reps", "x"]).unwrap_err();
        assert!(!e.is_help && e.message.contains("--reps"), "{}", e.message);
    }

    #[test]
    fn proc_parsing() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        assert!(cpu_ns(me).is_some_and(|ns| ns > 0));
        let status = fs::read_to_string(format!("/proc/{me}/status")).unwrap();
        assert!(kb_field(&status, "VmRSS").is_some_and(|kb| kb > 0));
        let maps = rss_by_mapping(me);
        assert!(maps.iter().any(|(_, kb)| *kb > 0), "{maps:?}");
    }
}
