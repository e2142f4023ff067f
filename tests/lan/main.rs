//! votecast on an emulated LAN under faults: real `votecast run` processes in network
//! namespaces, joined by veth pairs to a Linux bridge, broken by a seeded fault schedule.
//!
//! Needs root (CI runs as root): it creates network namespaces and installs nftables
//! rules in them, and installs iproute2/nftables with apt-get when they are missing. It
//! fails, never skips, when it cannot set up. Nothing touches the machine's own
//! interfaces; see `lan/netns.rs` for the topology and the clean-up guarantees.
//!
//! Every schedule (see `lan/schedule.rs`): build a LAN of N = 3, 5 or 7 hosts, start one
//! node per host, wait for agreement, run 3–6 overlapping faults (SIGKILL + restart,
//! wipe of the data dir + restart, SIGSTOP/SIGCONT, link down/up, symmetric partition of
//! a minority, one-way partition, random input loss), heal everything, leave a minority
//! SIGKILLed in some schedules, and wait until every up voter agrees on one leader. Then
//! check the record (`lan/record.rs`): no two leaderships overlap in real time, epochs of
//! successive leaders strictly increase, a node cut off from every quorum does not lead,
//! and agreement came within `LIVENESS_BOUND` of the heal. Every other schedule of each
//! cluster size runs with authenticated frames (`--key-file`).
//!
//! Wiped data dirs: a wiped node forgets its accepted epochs and promises, so, as README
//! "Limits" asks, the harness keeps it down for at least twice sync-limit ticks
//! (`schedule::WIPE_MIN_DOWN_MS`) before restarting it. It is in every safety check like
//! any other node. Its new incarnation counter starts at the wall-clock second (the
//! driver's floor), above every incarnation it used before, so peers accept its frames.
//! The schedule leaves a quorum of the other voters up and the heal is measured on them;
//! then the wiped nodes must join the same agreement within the liveness bound too.
//!
//! Environment:
//! - `VOTECAST_LAN_SCHEDULES=K` runs K schedules (default 21: 7 per cluster size);
//! - `VOTECAST_LAN_BASE=S` starts the seeds at S (default 0);
//! - `VOTECAST_LAN_SEED=S` replays the one schedule of seed S;
//! - `VOTECAST_LAN_KEEP=1` keeps every failing schedule's logs, state and hook files.
//!
//! A seed fixes the cluster size (3, 5, 7 for seed mod 3 = 0, 1, 2), so each of the three
//! tests runs its own share of the seeds; they run in parallel.

mod netns;
mod record;
mod schedule;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votecast::daemon::state_file::read_state_file;
use votecast::daemon::unix_now_ms;

use netns::{host_addr, Lan};
use record::{analyse, read_hook_log, Cut, Facts, Recorder};
use schedule::{size_of, Kind, Rng, Schedule};

const EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// Bound for the first election of a fresh cluster.
const START_LIMIT: Duration = Duration::from_secs(15);
/// After the last fault heals (with a quorum of non-wiped voters up), every up voter
/// agrees on one leader within this. Measured (see the report printed by each test).
const LIVENESS_BOUND: Duration = Duration::from_secs(10);
/// How long agreement is watched after it is reached (it must not break again).
const SETTLE: Duration = Duration::from_millis(500);

fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The network faults in force, as the harness applied them.
#[derive(Default)]
struct Net {
    n: usize,
    link_down: Vec<bool>,
    /// fault index → the minority side.
    partitions: BTreeMap<usize, Vec<usize>>,
    /// fault index → (receivers, senders): receivers drop the senders' frames.
    oneways: BTreeMap<usize, (Vec<usize>, Vec<usize>)>,
    /// fault index → (hosts, percent).
    losses: BTreeMap<usize, (Vec<usize>, u64)>,
}

impl Net {
    /// Does host `to` drop frames from host `from` (by nftables)?
    fn drops(&self, to: usize, from: usize) -> bool {
        self.partitions
            .values()
            .any(|side| side.contains(&to) != side.contains(&from))
            || self
                .oneways
                .values()
                .any(|(r, s)| r.contains(&to) && s.contains(&from))
    }

    fn two_way(&self, a: usize, b: usize) -> bool {
        !self.link_down[a - 1] && !self.link_down[b - 1] && !self.drops(a, b) && !self.drops(b, a)
    }

    /// Nodes without a two-way path to a quorum (counting themselves). Conservative: frames
    /// are not relayed, so only direct two-way links count.
    fn cut_nodes(&self) -> Vec<usize> {
        (1..=self.n)
            .filter(|&a| {
                let reach = 1
                    + (1..=self.n)
                        .filter(|&b| b != a && self.two_way(a, b))
                        .count();
                self.link_down[a - 1] || reach < quorum(self.n)
            })
            .collect()
    }

    fn rules(&self, host: usize) -> Vec<String> {
        let mut rules: Vec<String> = (1..=self.n)
            .filter(|&from| from != host && self.drops(host, from))
            .map(|from| format!("ip saddr {} drop", host_addr(from)))
            .collect();
        let loss = self
            .losses
            .values()
            .filter(|(hosts, _)| hosts.contains(&host))
            .map(|(_, p)| *p)
            .max();
        if let Some(p) = loss {
            rules.push(format!("numgen random mod 100 < {p} drop"));
        }
        rules
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Proc {
    Up,
    Stopped,
    Down,
}

/// A schedule in progress.
struct Run<'a> {
    sched: &'a Schedule,
    lan: Lan,
    recorder: Recorder,
    net: Net,
    procs: Vec<Proc>,
    /// Nodes with a process or link fault in progress.
    busy: Vec<bool>,
    cut_since: Vec<Option<u64>>,
    facts: Facts,
    wiped: Vec<usize>,
    /// fault index → the nodes it hit.
    targets: BTreeMap<usize, Vec<usize>>,
    log: String,
    t0: Instant,
}

impl Run<'_> {
    fn note(&mut self, what: impl std::fmt::Display) {
        let _ = writeln!(
            self.log,
            "  {:>7.3} s  {what}",
            self.t0.elapsed().as_secs_f64()
        );
    }

    /// The node whose current process reports LEADING with a lease still running.
    fn current_leader(&self) -> Option<usize> {
        let now = unix_now_ms();
        (1..=self.sched.n).find(|&i| {
            read_state_file(&self.lan.state_file(i)).is_ok_and(|s| {
                Some(s.pid) == self.lan.pid(i)
                    && s.state == "LEADING"
                    && s.valid_until_unix_ms.is_some_and(|v| v > now)
            })
        })
    }

    fn start(&mut self, i: usize) -> Result<(), String> {
        let pid = self.lan.start(i)?;
        self.facts.spawned.push((i, pid));
        self.procs[i - 1] = Proc::Up;
        Ok(())
    }

    fn kill(&mut self, i: usize) -> Result<(), String> {
        let pid = self.lan.kill(i)?;
        self.facts.kills.push((pid, unix_now_ms()));
        // The dead process's last lease, in case the poller missed it.
        self.recorder.sample(i);
        self.procs[i - 1] = Proc::Down;
        Ok(())
    }

    /// Apply the nftables rules of `self.net` to every host and track who is cut off.
    fn apply_net(&mut self, before_ms: u64) -> Result<(), String> {
        for host in 1..=self.sched.n {
            let rules = self.net.rules(host);
            self.lan.apply_rules(host, rules, false)?;
        }
        self.track_cuts(before_ms);
        Ok(())
    }

    fn track_cuts(&mut self, before_ms: u64) {
        let after_ms = unix_now_ms();
        let cut = self.net.cut_nodes();
        for i in 1..=self.sched.n {
            match (self.cut_since[i - 1], cut.contains(&i)) {
                (None, true) => self.cut_since[i - 1] = Some(after_ms),
                (Some(since), false) => {
                    self.facts.cuts.push(Cut {
                        start_ms: since,
                        end_ms: before_ms,
                        nodes: vec![i],
                    });
                    self.cut_since[i - 1] = None;
                }
                _ => {}
            }
        }
    }

    /// The fault's process/link target: the leader when aimed at it and free, else a
    /// free node drawn with the fault's own seed.
    fn target(&mut self, k: usize, rng: &mut Rng) -> Option<usize> {
        let fault = &self.sched.faults[k];
        if fault.at_leader {
            if let Some(l) = self.current_leader().filter(|&l| !self.busy[l - 1]) {
                return Some(l);
            }
        }
        let free: Vec<usize> = (1..=self.sched.n).filter(|&i| !self.busy[i - 1]).collect();
        rng.sample(&free, 1).first().copied()
    }

    fn begin(&mut self, k: usize) -> Result<(), String> {
        let fault = self.sched.faults[k].clone();
        let n = self.sched.n;
        let all: Vec<usize> = (1..=n).collect();
        let mut rng = Rng::mixed(fault.draw);
        let before = unix_now_ms();
        match fault.kind {
            Kind::Kill | Kind::Wipe | Kind::Stop | Kind::LinkDown => {
                let Some(i) = self.target(k, &mut rng) else {
                    self.note(format_args!("#{k} {:?}: no free node, skipped", fault.kind));
                    return Ok(());
                };
                self.busy[i - 1] = true;
                self.targets.insert(k, vec![i]);
                match fault.kind {
                    Kind::Kill => self.kill(i)?,
                    Kind::Wipe => {
                        self.kill(i)?;
                        std::fs::remove_dir_all(self.lan.data_dir(i))
                            .map_err(|e| format!("wipe node {i}'s data dir: {e}"))?;
                        if !self.wiped.contains(&i) {
                            self.wiped.push(i);
                        }
                    }
                    Kind::Stop => {
                        self.lan.signal(i, Signal::SIGSTOP)?;
                        self.procs[i - 1] = Proc::Stopped;
                        std::thread::sleep(Duration::from_millis(10));
                        self.recorder.sample(i);
                    }
                    _ => {
                        self.lan.set_link(i, false)?;
                        self.net.link_down[i - 1] = true;
                        self.track_cuts(before);
                    }
                }
                self.note(format_args!("#{k} {:?} node {i} begins", fault.kind));
            }
            Kind::Partition => {
                let size = rng.range(1, ((n - 1) / 2) as u64) as usize;
                let side = match self.current_leader().filter(|_| fault.at_leader) {
                    Some(l) => {
                        let others: Vec<usize> = all.iter().copied().filter(|&i| i != l).collect();
                        let mut side = vec![l];
                        side.extend(rng.sample(&others, size - 1));
                        side
                    }
                    None => rng.sample(&all, size),
                };
                self.net.partitions.insert(k, side.clone());
                self.apply_net(before)?;
                self.note(format_args!("#{k} partition {side:?} | rest begins"));
            }
            Kind::OneWay => {
                let (receivers, senders) = match self.current_leader().filter(|_| fault.at_leader) {
                    Some(l) => {
                        let others: Vec<usize> = all.iter().copied().filter(|&i| i != l).collect();
                        if rng.below(100) < 50 {
                            // A deaf leader: it still sends, hears nobody.
                            (vec![l], others)
                        } else {
                            // A mute leader: some followers stop hearing it.
                            let r = rng.range(1, others.len() as u64) as usize;
                            (rng.sample(&others, r), vec![l])
                        }
                    }
                    None => {
                        let r = rng.range(1, (n - 1) as u64) as usize;
                        let receivers = rng.sample(&all, r);
                        let rest: Vec<usize> = all
                            .iter()
                            .copied()
                            .filter(|i| !receivers.contains(i))
                            .collect();
                        let s = rng.range(1, rest.len() as u64) as usize;
                        (receivers, rng.sample(&rest, s))
                    }
                };
                self.net
                    .oneways
                    .insert(k, (receivers.clone(), senders.clone()));
                self.apply_net(before)?;
                self.note(format_args!(
                    "#{k} one-way: {receivers:?} stop hearing {senders:?}"
                ));
            }
            Kind::Loss => {
                let count = rng.range(1, n as u64) as usize;
                let hosts = rng.sample(&all, count);
                self.net.losses.insert(k, (hosts.clone(), fault.percent));
                self.apply_net(before)?;
                self.note(format_args!(
                    "#{k} loss {}% on {hosts:?} begins",
                    fault.percent
                ));
            }
        }
        Ok(())
    }

    fn end(&mut self, k: usize) -> Result<(), String> {
        let kind = self.sched.faults[k].kind;
        let before = unix_now_ms();
        match kind {
            Kind::Kill | Kind::Wipe | Kind::Stop | Kind::LinkDown => {
                let Some(i) = self.targets.get(&k).map(|t| t[0]) else {
                    return Ok(());
                };
                match kind {
                    Kind::Kill | Kind::Wipe => self.start(i)?,
                    Kind::Stop => {
                        self.lan.signal(i, Signal::SIGCONT)?;
                        self.procs[i - 1] = Proc::Up;
                    }
                    _ => {
                        self.lan.set_link(i, true)?;
                        self.net.link_down[i - 1] = false;
                        self.track_cuts(before);
                    }
                }
                self.busy[i - 1] = false;
                self.note(format_args!("#{k} {kind:?} node {i} ends"));
            }
            Kind::Partition => {
                self.net.partitions.remove(&k);
                self.apply_net(before)?;
                self.note(format_args!("#{k} partition ends"));
            }
            Kind::OneWay => {
                self.net.oneways.remove(&k);
                self.apply_net(before)?;
                self.note(format_args!("#{k} one-way ends"));
            }
            Kind::Loss => {
                self.net.losses.remove(&k);
                self.apply_net(before)?;
                self.note(format_args!("#{k} loss ends"));
            }
        }
        Ok(())
    }

    fn check_alive(&mut self) -> Result<(), String> {
        let exited = self.lan.reap_exited();
        if exited.is_empty() {
            Ok(())
        } else {
            Err(format!("node processes exited on their own: {exited:?}"))
        }
    }

    /// (leader, epoch) when every node of `required` (all running) reports the same
    /// leader and epoch from its current process, with a live validity, and the leader (a
    /// running node, possibly one outside `required`) reports LEADING with a live lease.
    fn agreement(&self, required: &[usize]) -> Option<(usize, u64)> {
        let now = unix_now_ms();
        let view_of = |i: usize| -> Option<(u64, u64, String)> {
            let s = read_state_file(&self.lan.state_file(i)).ok()?;
            let live =
                Some(s.pid) == self.lan.pid(i) && s.valid_until_unix_ms.is_some_and(|v| v > now);
            live.then_some((s.leader?, s.epoch?, s.state))
        };
        let mut agreed: Option<(u64, u64)> = None;
        for &i in required {
            let (leader, epoch, state) = view_of(i)?;
            let expected = if leader == i as u64 {
                "LEADING"
            } else {
                "FOLLOWING"
            };
            if state != expected || agreed.is_some_and(|a| a != (leader, epoch)) {
                return None;
            }
            agreed = Some((leader, epoch));
        }
        let (leader, epoch) = agreed?;
        let leader = usize::try_from(leader)
            .ok()
            .filter(|l| (1..=self.sched.n).contains(l))?;
        let (l, e, state) = view_of(leader)?;
        ((l, e) == (leader as u64, epoch) && state == "LEADING").then_some((leader, epoch))
    }

    /// Poll (bounded) until `required` agree; returns the time it took.
    fn await_agreement(
        &self,
        required: &[usize],
        limit: Duration,
    ) -> Option<(usize, u64, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some((l, e)) = self.agreement(required) {
                return Some((l, e, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    fn states(&self) -> String {
        let mut out = String::new();
        for i in 1..=self.sched.n {
            let view = match read_state_file(&self.lan.state_file(i)) {
                Ok(s) => format!(
                    "{} leader={:?} epoch={:?} round={} pid={} updated={} valid_until={:?}",
                    s.state,
                    s.leader,
                    s.epoch,
                    s.round,
                    s.pid,
                    s.updated_unix_ms,
                    s.valid_until_unix_ms
                ),
                Err(e) => e.to_string(),
            };
            let _ = writeln!(
                out,
                "  node {i} ({:?}, pid {:?}): {view}",
                self.procs[i - 1],
                self.lan.pid(i)
            );
        }
        out
    }
}

/// What one schedule measured.
#[derive(Debug, Default)]
struct Outcome {
    start_ms: f64,
    liveness_ms: f64,
    leaderships: usize,
    overlaps: Vec<String>,
    min_gap_ms: Option<i64>,
    missed_by_poller: usize,
    /// Periods a node was cut off from every quorum for longer than the lease grace.
    cuts_checked: usize,
    wiped: usize,
    wiped_agreed: usize,
    took: Duration,
}

struct Failure {
    seed: u64,
    message: String,
}

/// Every other schedule of each cluster size runs with authenticated frames (`--key-file`).
fn authenticated(seed: u64) -> bool {
    (seed / 3) % 2 == 1
}

fn run_schedule(sched: &Schedule) -> Result<Outcome, String> {
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

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Run this test's share (cluster size `n`) of the seeds and report.
fn run_set(n: usize) {
    netns::ensure_tools().unwrap_or_else(|e| panic!("LAN harness cannot set up: {e}"));
    let seeds: Vec<u64> = match env_u64("VOTECAST_LAN_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count = env_u64("VOTECAST_LAN_SCHEDULES").unwrap_or(21);
            let base = env_u64("VOTECAST_LAN_BASE").unwrap_or(0);
            (base..base + count).collect()
        }
    };
    let seeds: Vec<u64> = seeds.into_iter().filter(|&s| size_of(s) == n).collect();
    let begun = Instant::now();
    let load_before = loadavg();
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for &seed in &seeds {
        let sched = Schedule::generate(seed);
        match run_schedule(&sched) {
            Ok(o) => {
                println!(
                    "lan n={n} seed={seed}{}: ok in {:.1} s, {} leaderships (smallest gap {:?} ms), agreement {:.0} ms after heal{}",
                    if authenticated(seed) { " (authenticated)" } else { "" },
                    o.took.as_secs_f64(),
                    o.leaderships,
                    o.min_gap_ms,
                    o.liveness_ms,
                    if o.wiped > 0 {
                        format!(", wiped node agreed: {}", o.wiped_agreed == o.wiped)
                    } else {
                        String::new()
                    }
                );
                outcomes.push(o);
            }
            Err(message) => {
                println!("lan n={n} seed={seed}: FAILED");
                eprintln!(
                    "=== FAILED schedule (replay: VOTECAST_LAN_SEED={seed} cargo test --test lan) ===\n{message}"
                );
                failures.push(Failure { seed, message });
            }
        }
    }
    let mut live: Vec<f64> = outcomes.iter().map(|o| o.liveness_ms).collect();
    live.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if live.is_empty() {
            0.0
        } else {
            live[((live.len() - 1) as f64 * p).round() as usize]
        }
    };
    let min_gap = outcomes.iter().filter_map(|o| o.min_gap_ms).min();
    let overlaps: usize = outcomes.iter().map(|o| o.overlaps.len()).sum();
    println!(
        "lan n={n}: {} schedules, {} passed, {} failed (seeds {:?}); overlaps among passed: {overlaps}; \
         leaderships checked: {}; heal→agreement median {:.0} ms, p90 {:.0} ms, max {:.0} ms (bound {:?}); \
         cold start max {:.0} ms; smallest gap between successive leaderships: {min_gap:?} ms; \
         cut-off periods checked: {}; leaderships seen only by hooks: {}; wiped nodes that rejoined the agreement: {}/{}; \
         {:.1} s wall; loadavg before: {load_before}, after: {}",
        seeds.len(),
        outcomes.len(),
        failures.len(),
        failures.iter().map(|f| f.seed).collect::<Vec<_>>(),
        outcomes.iter().map(|o| o.leaderships).sum::<usize>(),
        pct(0.5),
        pct(0.9),
        pct(1.0),
        LIVENESS_BOUND,
        outcomes.iter().map(|o| o.start_ms).fold(0.0, f64::max),
        outcomes.iter().map(|o| o.cuts_checked).sum::<usize>(),
        outcomes.iter().map(|o| o.missed_by_poller).sum::<usize>(),
        outcomes.iter().map(|o| o.wiped_agreed).sum::<usize>(),
        outcomes.iter().map(|o| o.wiped).sum::<usize>(),
        begun.elapsed().as_secs_f64(),
        loadavg(),
    );
    if !failures.is_empty() {
        let first = &failures[0];
        panic!(
            "{} of {} LAN schedules failed: seeds {:?} (replay one with VOTECAST_LAN_SEED=SEED). First failure, seed {}:\n{}",
            failures.len(),
            seeds.len(),
            failures.iter().map(|f| f.seed).collect::<Vec<_>>(),
            first.seed,
            first.message
        );
    }
}

#[test]
fn lan_faults_3_nodes() {
    run_set(3);
}

#[test]
fn lan_faults_5_nodes() {
    run_set(5);
}

#[test]
fn lan_faults_7_nodes() {
    run_set(7);
}

/// IPv6 groups work too. `lo` in this VM carries no IPv6 multicast, so this runs
/// on the namespace LAN: three nodes on the link-local group `[ff02::1:77]:7277` (sent on
/// the named veth interface, hop limit 1) elect, fail over after SIGKILL of the leader,
/// and the old leader rejoins as a follower.
#[test]
fn ipv6_group_elects_fails_over_and_rejoins() {
    let mut lan = Lan::new(Path::new(EXE), "v6", 3).expect("build the LAN");
    lan.group = "[ff02::1:77]:7277".to_string();
    for i in 1..=3 {
        lan.wait_ipv6_link_local(i, Duration::from_secs(10))
            .expect("IPv6 link-local address");
    }
    // Agreement of `nodes` on one leader with an epoch of at least `min_epoch`.
    let agreed = |lan: &Lan, nodes: &[usize], min_epoch: u64, what: &str| -> (u64, u64, Duration) {
        let start = Instant::now();
        loop {
            let states: Vec<_> = nodes
                .iter()
                .map(|&i| read_state_file(&lan.state_file(i)).ok())
                .collect();
            let leader = states[0]
                .as_ref()
                .and_then(|s| s.leader.zip(s.epoch))
                .filter(|&(_, e)| e >= min_epoch);
            let all = leader.is_some_and(|(l, e)| {
                states.iter().zip(nodes).all(|(s, &i)| {
                    s.as_ref().is_some_and(|s| {
                        s.leader == Some(l)
                            && s.epoch == Some(e)
                            && s.state
                                == if i as u64 == l {
                                    "LEADING"
                                } else {
                                    "FOLLOWING"
                                }
                    })
                })
            });
            if let (true, Some((l, e))) = (all, leader) {
                return (l, e, start.elapsed());
            }
            if start.elapsed() > Duration::from_secs(10) {
                let logs: String = nodes.iter().map(|&i| lan.log(i)).collect();
                panic!("{what}: no agreement of {nodes:?} within 10 s: {states:?}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    for i in 1..=3 {
        lan.start(i).expect("start node");
    }
    let (leader, epoch, took) = agreed(&lan, &[1, 2, 3], 1, "cold start");
    println!(
        "ipv6: node {leader} leads epoch {epoch} after {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(leader, 3, "equal zxids: the largest id leads");
    assert!(
        lan.log(1).contains("ff02::1:77"),
        "node 1 runs on the IPv6 group: {}",
        lan.log(1)
    );
    lan.kill(3).expect("kill the leader");
    let (next, next_epoch, took) = agreed(&lan, &[1, 2], epoch + 1, "failover");
    println!(
        "ipv6: after SIGKILL of 3, node {next} leads epoch {next_epoch} after {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(next, 2);
    assert!(next_epoch > epoch);
    lan.start(3).expect("restart node 3");
    let (again, again_epoch, took) = agreed(&lan, &[1, 2, 3], next_epoch, "rejoin");
    println!(
        "ipv6: node 3 rejoined after {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(
        (again, again_epoch),
        (2, next_epoch),
        "3 follows the new leader"
    );
}

/// The checker itself: a synthetic record with an overlap, a non-increasing epoch and a
/// cut-off leader is flagged three ways; the same record without them passes.
#[test]
fn checker_flags_overlap_epoch_regression_and_cut_off_leader() {
    use record::{Snap, CUT_GRACE_MS};
    use votecast::daemon::state_file::StateSnapshot;
    let snap = |node: usize, pid: u32, state: &str, epoch: u64, at: u64, until: u64| Snap {
        node,
        s: StateSnapshot {
            id: node as u64,
            state: state.into(),
            leader: (state != "LOOKING").then_some(node as u64),
            epoch: (state != "LOOKING").then_some(epoch),
            round: 1,
            zxid: 0,
            pid,
            updated_unix_ms: at,
            updated_boottime_ms: None,
            valid_until_unix_ms: (state != "LOOKING").then_some(until),
            valid_until_boottime_ms: None,
            last_election_ms: None,
            duplicate_id: false,
        },
    };
    let facts = |cuts: Vec<Cut>| Facts {
        spawned: vec![(1, 101), (2, 102), (3, 103)],
        kills: vec![(101, 1_500)],
        cuts,
        hooks: vec![Vec::new(); 3],
    };
    // Node 1 leads epoch 1 from 1000 (lease to 1300, renewed to 1600) and is killed at
    // 1500; node 2 leads epoch 2 from 1700 and steps down at 2000: clean.
    let clean = vec![
        snap(1, 101, "LEADING", 1, 1_000, 1_300),
        snap(1, 101, "LEADING", 1, 1_250, 1_600),
        snap(2, 102, "LEADING", 2, 1_700, 2_000),
        snap(2, 102, "LOOKING", 0, 1_950, 0),
    ];
    let a = analyse(&clean, &facts(Vec::new()));
    assert!(a.overlaps.is_empty() && a.violations.is_empty(), "{a:?}");
    assert_eq!(a.leaderships.len(), 2);
    assert_eq!(
        a.leaderships[0].spans,
        vec![(1_000, 1_500)],
        "ends at the kill"
    );
    assert_eq!(
        a.leaderships[1].spans,
        vec![(1_700, 1_950)],
        "ends at LOOKING"
    );
    assert_eq!(a.min_gap_ms, Some(200));

    // Node 3 leads epoch 2 (not above node 2's... and overlapping node 2).
    let mut bad = clean.clone();
    bad.push(snap(3, 103, "LEADING", 2, 1_900, 2_100));
    let a = analyse(&bad, &facts(Vec::new()));
    assert_eq!(a.overlaps.len(), 1, "{a:?}");
    assert!(a.overlaps[0].contains("OVERLAP 50 ms"), "{a:?}");
    assert!(
        a.violations
            .iter()
            .any(|v| v.contains("epoch did not increase")),
        "{a:?}"
    );

    // Node 2 cut off from 1000 on: leading from 1700 is past the grace.
    let cut = Cut {
        start_ms: 1_000,
        end_ms: 3_000,
        nodes: vec![2],
    };
    const { assert!(1_000 + CUT_GRACE_MS < 1_700) };
    let a = analyse(&clean, &facts(vec![cut]));
    assert!(a.violations.iter().any(|v| v.contains("cut off")), "{a:?}");

    // A leadership only the hook log saw still takes part in the overlap check.
    let mut f = facts(Vec::new());
    f.hooks[2] = vec![
        record::HookLine {
            at_ms: 1_800,
            state: "LEADING".into(),
            epoch: Some(3),
        },
        record::HookLine {
            at_ms: 1_900,
            state: "LOOKING".into(),
            epoch: None,
        },
    ];
    let a = analyse(&clean, &f);
    assert_eq!(a.missed_by_poller, 1);
    assert_eq!(a.overlaps.len(), 1, "{a:?}");
}
