//! Recording what every node reports, and the safety checks over the record.
//!
//! The record is the nodes' own state files, polled every 2 ms by a thread of the harness
//! (the harness sees every namespace's files on the shared filesystem). Every state file
//! write carries `updated_unix_ms` and, while LEADING, `valid_until_unix_ms` (the lease
//! end), both from CLOCK_REALTIME, which all namespaces share: one clock for all nodes.
//! The harness also reads a node's file right after it SIGSTOPs or SIGKILLs it, so the last
//! lease a frozen or dead node published is never missed. The `--on-change` hook log of
//! every node (one time-stamped line per transition) is a second, independent record: a
//! LEADING transition in a hook log that the poller never saw is added to the checks from
//! the hook's times and counted.
//!
//! A leadership is (node, process, epoch). Each LEADING snapshot claims leadership from
//! its `updated_unix_ms` to the earliest of its lease end, the node's next report of
//! anything else (another state or epoch), and the time the harness SIGKILLed that
//! process. The checks:
//! - no two leaderships' claims overlap in time (more than the 1 ms the millisecond
//!   truncation of both time stamps can create);
//! - ordered by start, leaderships have strictly increasing epochs;
//! - a node cut off from a quorum (no two-way path to a majority of voters counting
//!   itself) claims nothing from `CUT_GRACE_MS` after the cut until the cut heals: by then
//!   the lease it held when cut has run out.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use votecast::daemon::state_file::{read_state_file, StateSnapshot};

/// Computed overlaps up to this are artefacts of millisecond truncation.
pub const OVERLAP_TOLERANCE_MS: u64 = 1;

/// After a node is cut off from every quorum, the lease it held (at most sync-limit ticks
/// = 300 ms at the default timing, times (1-ρ)/(1+ρ)) must have run out after this.
pub const CUT_GRACE_MS: u64 = 400;

#[derive(Debug, Clone)]
pub struct Snap {
    pub node: usize,
    pub s: StateSnapshot,
}

/// Polls every node's state file into a shared list of distinct snapshots.
pub struct Recorder {
    files: Vec<PathBuf>,
    pub snaps: Arc<Mutex<Vec<Snap>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn same(a: &StateSnapshot, b: &StateSnapshot) -> bool {
    (
        a.pid,
        a.updated_unix_ms,
        &a.state,
        a.leader,
        a.epoch,
        a.valid_until_unix_ms,
    ) == (
        b.pid,
        b.updated_unix_ms,
        &b.state,
        b.leader,
        b.epoch,
        b.valid_until_unix_ms,
    )
}

fn sample_into(
    snaps: &Mutex<Vec<Snap>>,
    last: &mut [Option<StateSnapshot>],
    files: &[PathBuf],
    node: usize,
) {
    let Ok(s) = read_state_file(&files[node - 1]) else {
        return;
    };
    if last[node - 1].as_ref().is_some_and(|l| same(l, &s)) {
        return;
    }
    last[node - 1] = Some(s.clone());
    snaps.lock().unwrap().push(Snap { node, s });
}

impl Recorder {
    pub fn start(files: Vec<PathBuf>) -> Recorder {
        let snaps = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (snaps, stop, files) = (snaps.clone(), stop.clone(), files.clone());
            std::thread::spawn(move || {
                let mut last = vec![None; files.len()];
                // Bounded: the harness stops it; the cap only guards against a lost stop.
                for _ in 0..(3_600_000 / 2) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    for node in 1..=files.len() {
                        sample_into(&snaps, &mut last, &files, node);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Recorder {
            files,
            snaps,
            stop,
            thread: Some(thread),
        }
    }

    /// Read node `node`'s state file now (after freezing or killing it).
    pub fn sample(&self, node: usize) {
        if let Ok(s) = read_state_file(&self.files[node - 1]) {
            let mut snaps = self.snaps.lock().unwrap();
            let dup = snaps
                .iter()
                .rev()
                .find(|x| x.node == node)
                .is_some_and(|x| same(&x.s, &s));
            if !dup {
                snaps.push(Snap { node, s });
            }
        }
    }

    /// Stop polling and hand over the record.
    pub fn finish(&mut self) -> Vec<Snap> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.snaps.lock().unwrap())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One line of a hook log: "UNIX_MS PREVIOUS STATE LEADER EPOCH".
#[derive(Debug, Clone)]
pub struct HookLine {
    pub at_ms: u64,
    pub state: String,
    pub epoch: Option<u64>,
}

pub fn read_hook_log(path: &PathBuf) -> Vec<HookLine> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut it = line.split(' ');
            let at_ms = it.next()?.parse().ok()?;
            let _previous = it.next()?;
            let state = it.next()?.to_owned();
            let _leader = it.next()?;
            let epoch = it.next().and_then(|e| e.parse().ok());
            Some(HookLine {
                at_ms,
                state,
                epoch,
            })
        })
        .collect()
}

/// A period in which the given nodes had no two-way path to a quorum.
#[derive(Debug, Clone)]
pub struct Cut {
    pub start_ms: u64,
    pub end_ms: u64,
    pub nodes: Vec<usize>,
}

/// Everything the checks need besides the snapshots.
#[derive(Debug, Default)]
pub struct Facts {
    /// (node, pid) of every process the harness started.
    pub spawned: Vec<(usize, u32)>,
    /// (pid, unix ms just after SIGKILL returned).
    pub kills: Vec<(u32, u64)>,
    pub cuts: Vec<Cut>,
    /// Per node (index 0 = node 1).
    pub hooks: Vec<Vec<HookLine>>,
}

#[derive(Debug, Clone)]
pub struct Leadership {
    pub node: usize,
    pub pid: u32,
    pub epoch: u64,
    /// Disjoint, sorted claim intervals [start, end) in unix ms.
    pub spans: Vec<(u64, u64)>,
    /// Known only from the hook log (the poller missed it).
    pub from_hook: bool,
}

impl Leadership {
    pub fn start(&self) -> u64 {
        self.spans[0].0
    }
    pub fn end(&self) -> u64 {
        self.spans.last().unwrap().1
    }
}

#[derive(Debug, Default)]
pub struct Analysis {
    pub leaderships: Vec<Leadership>,
    pub overlaps: Vec<String>,
    pub violations: Vec<String>,
    /// Smallest gap between the end of one leadership and the start of the next.
    pub min_gap_ms: Option<i64>,
    pub missed_by_poller: usize,
}

fn merge(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

pub fn analyse(snaps: &[Snap], facts: &Facts) -> Analysis {
    let mut a = Analysis::default();
    let kill_of: BTreeMap<u32, u64> = facts.kills.iter().copied().collect();

    // Sanity: every snapshot comes from a process we started for that node.
    for snap in snaps {
        if snap.s.id != snap.node as u64 {
            a.violations.push(format!(
                "node {}'s state file says id {}",
                snap.node, snap.s.id
            ));
        }
        if !facts.spawned.contains(&(snap.node, snap.s.pid)) {
            a.violations.push(format!(
                "node {}'s state file names pid {}, which the harness did not start for it",
                snap.node, snap.s.pid
            ));
        }
        if snap.s.duplicate_id {
            a.violations
                .push(format!("node {} reports a duplicate id", snap.node));
        }
    }

    // Per process, its snapshots in time order.
    let mut by_proc: BTreeMap<(usize, u32), Vec<&StateSnapshot>> = BTreeMap::new();
    for snap in snaps {
        by_proc
            .entry((snap.node, snap.s.pid))
            .or_default()
            .push(&snap.s);
    }
    let mut claims: BTreeMap<(usize, u32, u64), Vec<(u64, u64)>> = BTreeMap::new();
    for (&(node, pid), list) in by_proc.iter_mut() {
        list.sort_by_key(|s| s.updated_unix_ms);
        for (k, s) in list.iter().enumerate() {
            if s.state != "LEADING" {
                continue;
            }
            let Some(epoch) = s.epoch else {
                a.violations
                    .push(format!("node {node} reports LEADING without an epoch"));
                continue;
            };
            let mut end = s.valid_until_unix_ms.unwrap_or(u64::MAX);
            if let Some(next) = list[k + 1..]
                .iter()
                .find(|x| x.state != "LEADING" || x.epoch != s.epoch)
            {
                end = end.min(next.updated_unix_ms);
            }
            if let Some(&killed) = kill_of.get(&pid) {
                end = end.min(killed);
            }
            if end > s.updated_unix_ms {
                claims
                    .entry((node, pid, epoch))
                    .or_default()
                    .push((s.updated_unix_ms, end));
            }
        }
    }
    for ((node, pid, epoch), spans) in claims {
        a.leaderships.push(Leadership {
            node,
            pid,
            epoch,
            spans: merge(spans),
            from_hook: false,
        });
    }

    // Leaderships only the hook log saw.
    for (k, lines) in facts.hooks.iter().enumerate() {
        let node = k + 1;
        for (j, line) in lines.iter().enumerate() {
            if line.state != "LEADING" {
                continue;
            }
            let Some(epoch) = line.epoch else { continue };
            if a.leaderships
                .iter()
                .any(|l| l.node == node && l.epoch == epoch)
            {
                continue;
            }
            let end = lines
                .get(j + 1)
                .map(|next| next.at_ms)
                .unwrap_or(line.at_ms + CUT_GRACE_MS);
            a.missed_by_poller += 1;
            a.leaderships.push(Leadership {
                node,
                pid: 0,
                epoch,
                spans: vec![(line.at_ms, end.max(line.at_ms + 1))],
                from_hook: true,
            });
        }
    }
    a.leaderships.sort_by_key(|l| (l.start(), l.node));

    // 1. No overlap.
    for (i, x) in a.leaderships.iter().enumerate() {
        for y in &a.leaderships[i + 1..] {
            for &(xs, xe) in &x.spans {
                for &(ys, ye) in &y.spans {
                    let overlap = xe.min(ye) as i64 - xs.max(ys) as i64;
                    if overlap > OVERLAP_TOLERANCE_MS as i64 {
                        a.overlaps.push(format!(
                            "OVERLAP {overlap} ms: node {} (pid {}, epoch {}) claims [{xs}, {xe}) and node {} (pid {}, epoch {}) claims [{ys}, {ye})",
                            x.node, x.pid, x.epoch, y.node, y.pid, y.epoch
                        ));
                    }
                }
            }
        }
    }
    // 2. Epochs strictly increase from one leadership to the next.
    for pair in a.leaderships.windows(2) {
        let (x, y) = (&pair[0], &pair[1]);
        if y.epoch <= x.epoch {
            a.violations.push(format!(
                "epoch did not increase: node {} led epoch {} from {}, then node {} led epoch {} from {}",
                x.node,
                x.epoch,
                x.start(),
                y.node,
                y.epoch,
                y.start()
            ));
        }
        let gap = y.start() as i64 - x.end() as i64;
        a.min_gap_ms = Some(a.min_gap_ms.map_or(gap, |g| g.min(gap)));
    }
    // 3. Nobody cut off from a quorum leads (after the grace for its old lease).
    for cut in &facts.cuts {
        let from = cut.start_ms + CUT_GRACE_MS;
        if from >= cut.end_ms {
            continue;
        }
        for l in a.leaderships.iter().filter(|l| cut.nodes.contains(&l.node)) {
            for &(s, e) in &l.spans {
                if s.max(from) < e.min(cut.end_ms) {
                    a.violations.push(format!(
                        "node {} (epoch {}) claims [{s}, {e}) while cut off from every quorum during [{}, {}) ",
                        l.node, l.epoch, cut.start_ms, cut.end_ms
                    ));
                }
            }
        }
    }
    a
}
