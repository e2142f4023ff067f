//! `votecast bench --footprint`: an idle cluster at the default tick. Resident memory of
//! every node, its CPU time and wake-ups over `--window`, and the size of the binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::proc::{context_switches, cpu_ns, cpu_ticks, kb_field, loadavg, rss_by_mapping};
use super::report::{json_num, json_str, machine_json, machine_line, write_json};
use super::{default_timing, BenchError, BenchSettings, LIMIT};
use crate::cluster::LocalCluster;

/// The smaps_rollup fields reported for every node.
const ROLLUP_KEYS: [&str; 7] = [
    "Rss",
    "Pss",
    "Shared_Clean",
    "Shared_Dirty",
    "Private_Clean",
    "Private_Dirty",
    "Anonymous",
];

/// How long the cluster idles after agreeing before the window starts.
const SETTLE: Duration = Duration::from_secs(2);

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

impl NodeFootprint {
    /// Share of one core over `secs`, in percent.
    fn cpu_percent(&self, secs: f64) -> f64 {
        self.cpu_ns as f64 / 1e9 / secs * 100.0
    }
}

/// CPU counters of one process at the start of the window.
struct CpuStart {
    ticks: Option<u64>,
    ns: Option<u64>,
    switches: Option<u64>,
}

impl CpuStart {
    fn read(pid: u32) -> CpuStart {
        CpuStart {
            ticks: cpu_ticks(pid),
            ns: cpu_ns(pid),
            switches: context_switches(pid),
        }
    }
}

/// What one footprint run measured, for the printout and the JSON.
struct Measured {
    nodes: Vec<NodeFootprint>,
    /// Length of the measuring window in seconds.
    secs: f64,
    /// (leader, epoch) agreed before the window and, if any, after it.
    before: (u64, u64),
    after: Option<(u64, u64)>,
}

pub(super) fn run(settings: &BenchSettings, exe: PathBuf) -> Result<(), BenchError> {
    let n = settings.nodes[0];
    let binary_bytes = fs::metadata(&exe)
        .map_err(|source| BenchError::Stat {
            path: exe.clone(),
            source,
        })?
        .len();
    let load_before = loadavg();
    let (tick, _) = default_timing();
    crate::outln!(
        "votecast bench --footprint: {n} nodes on lo at the default tick ({})",
        tick_text(tick)
    );
    crate::outln!("{}", machine_line());
    crate::outln!("load average before: {load_before}");
    let measured = measure(&exe, n, settings.window)?;
    let load_after = loadavg();
    print_nodes(&measured);
    crate::outln!(
        "binary: {} bytes ({:.2} MiB) at {}",
        binary_bytes,
        binary_bytes as f64 / 1048576.0,
        exe.display()
    );
    crate::outln!("load average after: {load_after}");
    if measured.after != Some(measured.before) {
        crate::outln!(
            "warning: the leader changed during the window: {:?}",
            measured.after
        );
    }
    if let Some(path) = &settings.json {
        let json = format!(
            "{{\"kind\":\"footprint\",\"machine\":{},\"load_before\":{},\"load_after\":{},\"window_s\":{},\"binary_bytes\":{binary_bytes},\"nodes\":[{}]}}\n",
            machine_json(),
            json_str(&load_before),
            json_str(&load_after),
            json_num(measured.secs),
            nodes_json(&measured)
        );
        write_json(path, &json)?;
    }
    Ok(())
}

/// The tick as the daemon's flags write it (`50ms`).
fn tick_text(tick: Duration) -> String {
    format!("{tick:?}")
}

/// Start `n` nodes of `exe`, wait for agreement, let them settle, then measure them over
/// `window`. The cluster is stopped and removed before this returns.
fn measure(exe: &Path, n: usize, window: Duration) -> Result<Measured, BenchError> {
    let mut cluster = LocalCluster::new(exe, n as u64, 0).map_err(BenchError::Prepare)?;
    // Quiet children: the footprint of the default log level (one line per change).
    cluster.start_all().map_err(BenchError::Start)?;
    let (leader, epoch, _) = cluster
        .await_agreement(LIMIT)
        .ok_or(BenchError::NoAgreement)?;
    crate::outln!("node {leader} leads epoch {epoch}; settling 2 s, then measuring for {window:?}");
    std::thread::sleep(SETTLE);
    let ids = cluster.ids();
    let pids: Vec<u32> = ids
        .iter()
        .map(|&id| cluster.node(id).pid().unwrap_or(0))
        .collect();
    let starts: Vec<CpuStart> = pids.iter().map(|&pid| CpuStart::read(pid)).collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let secs = t0.elapsed().as_secs_f64();
    let nodes = ids
        .iter()
        .zip(&pids)
        .zip(&starts)
        .map(|((&id, &pid), start)| node_footprint(&cluster, id, pid, start))
        .collect();
    Ok(Measured {
        nodes,
        secs,
        before: (leader, epoch),
        after: cluster.agreed_leader(),
    })
}

/// Node `id` (process `pid`) at the end of the window.
fn node_footprint(cluster: &LocalCluster, id: u64, pid: u32, start: &CpuStart) -> NodeFootprint {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup_text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let rollup = ROLLUP_KEYS
        .iter()
        .map(|&k| (k, kb_field(&rollup_text, k).unwrap_or(0)))
        .collect();
    let delta = |a: Option<u64>, b: Option<u64>| b.unwrap_or(0).saturating_sub(a.unwrap_or(0));
    NodeFootprint {
        id,
        state: cluster.state(id).map_or("?".into(), |s| s.state),
        rss_kb: kb_field(&status, "VmRSS").unwrap_or(0),
        hwm_kb: kb_field(&status, "VmHWM").unwrap_or(0),
        rollup,
        mappings: rss_by_mapping(pid),
        cpu_ticks: delta(start.ticks, cpu_ticks(pid)),
        cpu_ns: delta(start.ns, cpu_ns(pid)),
        switches: delta(start.switches, context_switches(pid)),
    }
}

/// The per-node table, and the first node's memory breakdown.
fn print_nodes(m: &Measured) {
    crate::outln!(
        "\n{:>4} {:<10} {:>9} {:>9} {:>12} {:>12} {:>10}",
        "node",
        "state",
        "VmRSS kB",
        "VmHWM kB",
        "CPU ticks",
        "CPU % core",
        "wakeups/s"
    );
    for f in &m.nodes {
        crate::outln!(
            "{:>4} {:<10} {:>9} {:>9} {:>12} {:>11.3}% {:>10.1}",
            f.id,
            f.state,
            f.rss_kb,
            f.hwm_kb,
            f.cpu_ticks,
            f.cpu_percent(m.secs),
            f.switches as f64 / m.secs
        );
    }
    crate::outln!(
        "\nCPU ticks: utime+stime from /proc/PID/stat (10 ms each) over {:.1} s; CPU %: schedstat run time / wall time.",
        m.secs
    );
    if let Some(f) = m.nodes.first() {
        let rollup: Vec<String> = f
            .rollup
            .iter()
            .map(|(k, v)| format!("{k} {v} kB"))
            .collect();
        crate::outln!("node {} smaps_rollup: {}", f.id, rollup.join(", "));
        let top: Vec<String> = f
            .mappings
            .iter()
            .take(8)
            .map(|(name, kb)| format!("{name} {kb} kB"))
            .collect();
        crate::outln!("node {} resident by mapping: {}", f.id, top.join(", "));
    }
}

/// The `nodes` array of the JSON file, without its brackets.
fn nodes_json(m: &Measured) -> String {
    let nodes: Vec<String> = m
        .nodes
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
                json_num(f.cpu_percent(m.secs)),
                f.switches,
                rollup.join(","),
                maps.join(",")
            )
        })
        .collect();
    nodes.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_reads_as_in_the_header() {
        assert_eq!(tick_text(default_timing().0), "50ms");
    }

    #[test]
    fn node_json_fields() {
        let m = Measured {
            nodes: vec![NodeFootprint {
                id: 2,
                state: "FOLLOWING".into(),
                rss_kb: 2956,
                hwm_kb: 3000,
                rollup: vec![("Rss", 2956), ("Pss", 680)],
                mappings: vec![("libc.so.6".into(), 1396)],
                cpu_ticks: 1,
                cpu_ns: 40_000_000,
                switches: 110,
            }],
            secs: 2.0,
            before: (3, 1),
            after: Some((3, 1)),
        };
        assert_eq!(
            nodes_json(&m),
            "{\"id\":2,\"state\":\"FOLLOWING\",\"vm_rss_kb\":2956,\"vm_hwm_kb\":3000,\"cpu_ticks\":1,\"cpu_ns\":40000000,\"cpu_percent_of_core\":2.000,\"context_switches\":110,\"smaps_rollup_kb\":{\"Rss\":2956,\"Pss\":680},\"rss_by_mapping_kb\":[[\"libc.so.6\",1396]]}"
        );
    }
}
