//! One schedule end to end: set up the LAN (with a key file for authenticated schedules),
//! start the nodes, run the fault timeline, heal, await agreement, then stop everything
//! and check the record.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::netns::Lan;
use crate::record::{self, analyse, read_hook_log, Facts, Recorder};
use crate::run::{quorum, Net, Proc, Run};
use crate::schedule::{Rng, Schedule};
use crate::{EXE, LIVENESS_BOUND};

/// Bound for the first election of a fresh cluster.
const START_LIMIT: Duration = Duration::from_secs(15);

/// How long agreement is watched after it is reached (it must not break again).
const SETTLE: Duration = Duration::from_millis(500);

/// What one schedule measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub start_ms: f64,
    pub liveness_ms: f64,
    pub leaderships: usize,
    pub overlaps: Vec<String>,
    pub min_gap_ms: Option<i64>,
    pub missed_by_poller: usize,
    /// Periods a node was cut off from every quorum for longer than the lease grace.
    pub cuts_checked: usize,
    pub wiped: usize,
    pub wiped_agreed: usize,
    pub took: Duration,
}

/// Every other schedule of each cluster size runs with authenticated frames (`--key-file`).
pub fn authenticated(seed: u64) -> bool {
    (seed / 3) % 2 == 1
}

pub fn run_schedule(sched: &Schedule) -> Result<Outcome, String> {
    let begun = Instant::now();
    let mut lan = Lan::new(Path::new(EXE), &format!("s{}", sched.seed), sched.n)?;
    if authenticated(sched.seed) {
        let key = lan.dir.join("cluster.key");
        let secret: String = (0..32u64)
            .map(|b| format!("{:02x}", (b * 97 + sched.seed * 31 + 7) % 251))
            .collect();
        fs::write(&key, format!("1 {secret}\n")).map_err(|e| format!("{}: {e}", key.display()))?;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", key.display()))?;
        lan.key_file = Some(key);
    }
    let n = sched.n;
    let files = (1..=n).map(|i| lan.state_file(i)).collect();
    let mut run = Run {
        sched,
        recorder: Recorder::start(files),
        lan,
        net: Net {
            n,
            link_down: vec![false; n],
            ..Net::default()
        },
        procs: vec![Proc::Down; n],
        busy: vec![false; n],
        cut_since: vec![None; n],
        facts: Facts::default(),
        wiped: Vec::new(),
        targets: BTreeMap::new(),
        deleted_index: BTreeMap::new(),
        log: String::new(),
        t0: Instant::now(),
    };
    let result = drive(&mut run);
    // Whatever happened: stop every node (recording the kill times), then analyse.
    for i in 1..=n {
        if run.lan.pid(i).is_some() {
            if run.procs[i - 1] == Proc::Stopped {
                let _ = run.lan.signal(i, Signal::SIGCONT);
            }
            let _ = run.kill(i);
        }
    }
    let snaps = run.recorder.finish();
    run.facts.hooks = (1..=n)
        .map(|i| read_hook_log(&run.lan.hook_log(i)))
        .collect();
    let analysis = analyse(&snaps, &run.facts);
    let mut problems = Vec::new();
    let mut outcome = Outcome::default();
    match result {
        Ok((start_ms, liveness_ms, wiped_agreed)) => {
            outcome.start_ms = start_ms;
            outcome.liveness_ms = liveness_ms;
            outcome.wiped_agreed = wiped_agreed;
        }
        Err(e) => problems.push(e),
    }
    problems.extend(analysis.overlaps.iter().cloned());
    problems.extend(analysis.violations.iter().cloned());
    outcome.leaderships = analysis.leaderships.len();
    outcome.overlaps = analysis.overlaps.clone();
    outcome.min_gap_ms = analysis.min_gap_ms;
    outcome.missed_by_poller = analysis.missed_by_poller;
    outcome.wiped = run.wiped.len();
    outcome.cuts_checked = run
        .facts
        .cuts
        .iter()
        .filter(|c| c.end_ms > c.start_ms + record::CUT_GRACE_MS)
        .count();
    outcome.took = begun.elapsed();
    if problems.is_empty() {
        // Shown with --nocapture (cargo keeps a passing test's output otherwise).
        println!("{sched}\nrun:\n{}", run.log.trim_end());
        return Ok(outcome);
    }
    let mut msg = format!("{sched}\nrun:\n{}", run.log);
    let _ = writeln!(msg, "problems:");
    for p in &problems {
        let _ = writeln!(msg, "  {p}");
    }
    let _ = writeln!(
        msg,
        "leaderships (node, pid, epoch, claimed spans in unix ms):"
    );
    for l in &analysis.leaderships {
        let _ = writeln!(
            msg,
            "  node {} pid {} epoch {}{}: {:?}",
            l.node,
            l.pid,
            l.epoch,
            if l.from_hook { " (hook log only)" } else { "" },
            l.spans
        );
    }
    if std::env::var_os("VOTECAST_LAN_KEEP").is_some() {
        let _ = writeln!(msg, "files kept in {}", run.lan.keep_files().display());
    } else {
        for i in 1..=n {
            let log = run.lan.log(i);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let _ = writeln!(msg, "--- node {i} log (last 40 lines) ---");
            for line in tail.iter().rev() {
                let _ = writeln!(msg, "{line}");
            }
        }
    }
    Err(msg)
}

/// Start, run the faults, heal, await agreement. Returns (cold start ms, ms from the
/// heal to agreement, wiped nodes that agreed too).
fn drive(run: &mut Run) -> Result<(f64, f64, usize), String> {
    let n = run.sched.n;
    for i in 1..=n {
        run.start(i)?;
    }
    let all: Vec<usize> = (1..=n).collect();
    let (leader, epoch, took) = run.await_agreement(&all, START_LIMIT).ok_or_else(|| {
        format!(
            "no agreement within {START_LIMIT:?} of the start\n{}",
            run.states()
        )
    })?;
    let start_ms = took.as_secs_f64() * 1000.0;
    run.note(format_args!(
        "cold start: node {leader} leads epoch {epoch} after {start_ms:.1} ms"
    ));

    let mut events: Vec<(u64, bool, usize)> = Vec::new();
    for (k, f) in run.sched.faults.iter().enumerate() {
        events.push((f.at_ms, true, k));
        events.push((f.at_ms + f.dur_ms, false, k));
    }
    // Ends before begins at the same instant.
    events.sort_by_key(|&(t, begin, k)| (t, begin, k));
    let phase = Instant::now();
    for (at_ms, begin, k) in events {
        let due = phase + Duration::from_millis(at_ms);
        while Instant::now() < due {
            run.check_alive()?;
            std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
        }
        if begin {
            run.begin(k)?;
        } else {
            run.end(k)?;
        }
        run.check_alive()?;
    }

    // Healed. Leave a minority of the non-wiped voters down if the schedule says so.
    let candidates: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !run.wiped.contains(i))
        .collect();
    let down = Rng::mixed(run.sched.final_draw).sample(&candidates, run.sched.final_down);
    for &i in &down {
        run.kill(i)?;
    }
    let healed = Instant::now();
    let wiped = run.wiped.clone();
    run.note(format_args!(
        "healed; kept down: {down:?}; wiped: {wiped:?}"
    ));
    let required: Vec<usize> = all
        .iter()
        .copied()
        .filter(|i| !down.contains(i) && !run.wiped.contains(i))
        .collect();
    assert!(required.len() >= quorum(n), "the schedule keeps a quorum");
    let Some((leader, epoch, _)) = run.await_agreement(&required, LIVENESS_BOUND) else {
        return Err(format!(
            "LIVENESS: nodes {required:?} did not agree within {LIVENESS_BOUND:?} of the heal\n{}",
            run.states()
        ));
    };
    let liveness_ms = healed.elapsed().as_secs_f64() * 1000.0;
    run.note(format_args!(
        "agreement of {required:?}: node {leader} leads epoch {epoch} {liveness_ms:.1} ms after the heal"
    ));
    // It must hold (the recorder keeps recording for the safety checks).
    let settle = Instant::now();
    while settle.elapsed() < SETTLE {
        std::thread::sleep(Duration::from_millis(20));
    }
    run.check_alive()?;
    let wiped_up: Vec<usize> = run.wiped.clone();
    let mut with_wiped = required.clone();
    with_wiped.extend(&wiped_up);
    let wiped_agreed = if wiped_up.is_empty() {
        0
    } else if run.await_agreement(&with_wiped, LIVENESS_BOUND).is_some() {
        wiped_up.len()
    } else {
        return Err(format!(
            "LIVENESS: wiped node(s) {wiped_up:?} did not join the agreement within {LIVENESS_BOUND:?}\n{}",
            run.states()
        ));
    };
    Ok((start_ms, liveness_ms, wiped_agreed))
}
