//! `votecast bench --failovers N`: the failover tail. One cluster (the first `--nodes`
//! size, 3 by default) at the default timing; N times: SIGKILL the leader, measure until
//! the survivors agree on a new leader with a higher epoch (as the `failover SIGKILL`
//! scenario does), restart the killed node, wait until it rejoins, and let the cluster
//! settle for the restart quarantine plus a random part of a tick.
//!
//! It prints min/p50/p99/max and every failover over [`SLOW_MS`]. With `--logs DIR` it
//! copies each node's log there, with `faults.tsv`: per failover the kill time on
//! CLOCK_BOOTTIME (µs, the clock of the nodes' `round-trace` debug lines), the time to
//! agreement, the old and the new leader and the new epoch. A run stops at the first
//! failover or rejoin that does not complete within the benchmark's limit.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::signal::Signal;

use super::proc::loadavg;
use super::report::machine_line;
use super::scenarios::{Row, Scenarios};
use super::{default_timing, BenchError, BenchSettings};

/// Failovers slower than this are listed one by one (the p99 target).
const SLOW_MS: f64 = 400.0;

/// One measured failover.
struct Fault {
    kill_boottime_us: u64,
    took_ms: f64,
    old: u64,
    new: u64,
    epoch: u64,
}

pub(super) fn run(settings: &BenchSettings, count: usize, exe: PathBuf) -> Result<(), BenchError> {
    let n = settings.nodes[0];
    crate::outln!("votecast bench --failovers {count}: {n} voters on lo at the default timing");
    crate::outln!("{}", machine_line());
    crate::outln!("load average before: {}", loadavg());
    let began = Instant::now();
    let (tick, _) = default_timing();
    let mut scenarios = Scenarios::new(exe, settings.poll);
    let mut row = Row::new("failover SIGKILL", n);
    let (mut cluster, leader, epoch) = scenarios
        .cold_start(n, &[], None)
        .ok_or(BenchError::NoAgreement)?;
    scenarios.settle(tick);
    let mut current = (leader, epoch);
    let mut faults = Vec::with_capacity(count);
    for i in 0..count {
        let old = current.0;
        let samples = row.latency.samples.len();
        let Some(next) = scenarios.failover(&mut cluster, current, Signal::SIGKILL, &mut row)
        else {
            break;
        };
        faults.push(Fault {
            kill_boottime_us: scenarios.fault_boottime_us,
            took_ms: row.latency.samples[samples],
            old,
            new: next.0,
            epoch: next.1,
        });
        current = next;
        if !scenarios.rejoin(&mut cluster, old, Signal::SIGKILL, current) {
            break;
        }
        scenarios.settle(tick);
        eprint!("\r{}/{count} failovers", i + 1);
    }
    crate::errln!();
    crate::outln!("{}", report(&row, &faults));
    crate::outln!(
        "load average after: {}; took {:.0} s",
        loadavg(),
        began.elapsed().as_secs_f64()
    );
    if let Some(dir) = &settings.logs {
        save_logs(dir, &cluster, &faults)?;
        crate::outln!("logs and faults.tsv in {}", dir.display());
    }
    for e in &scenarios.errors {
        crate::outln!("error: {e}");
    }
    if faults.len() < count || !scenarios.errors.is_empty() {
        return Err(BenchError::Failed {
            repetitions: count - faults.len(),
            errors: scenarios.errors.len(),
        });
    }
    Ok(())
}

/// The summary line and every slow failover.
fn report(row: &Row, faults: &[Fault]) -> String {
    // The same columns as the latency table, for this one row.
    let mut text = super::latency::table(std::slice::from_ref(row));
    let slow: Vec<&Fault> = faults.iter().filter(|f| f.took_ms > SLOW_MS).collect();
    let _ = writeln!(
        text,
        "{} of {} failovers over {SLOW_MS:.0} ms",
        slow.len(),
        faults.len()
    );
    for f in slow {
        let _ = writeln!(
            text,
            "  kill at boottime {} us: {:.1} ms, leader {} -> {} epoch {}",
            f.kill_boottime_us, f.took_ms, f.old, f.new, f.epoch
        );
    }
    text
}

/// Copies every node's log into `dir` and writes `faults.tsv`.
fn save_logs(
    dir: &Path,
    cluster: &crate::cluster::LocalCluster,
    faults: &[Fault],
) -> Result<(), BenchError> {
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|source| BenchError::WriteJson { path, source })
    };
    std::fs::create_dir_all(dir).map_err(|source| BenchError::WriteJson {
        path: dir.to_path_buf(),
        source,
    })?;
    for id in cluster.ids() {
        write(dir.join(format!("node{id}.log")), &cluster.log(id))?;
    }
    let mut tsv = String::from("kill_boottime_us\ttook_ms\told\tnew\tepoch\n");
    for f in faults {
        let _ = writeln!(
            tsv,
            "{}\t{:.3}\t{}\t{}\t{}",
            f.kill_boottime_us, f.took_ms, f.old, f.new, f.epoch
        );
    }
    write(dir.join("faults.tsv"), &tsv)
}
