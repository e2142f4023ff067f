//! A schedule in progress: the node processes, the network faults in force (and who they
//! cut off from a quorum), applying and ending each fault, and polling for agreement.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votecast::daemon::state_file::read_state_file;
use votecast::daemon::unix_now_ms;

use crate::netns::{host_addr, Lan};
use crate::record::{Cut, Facts, Recorder};
use crate::schedule::{Kind, Rng, Schedule};

pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The network faults in force, as the harness applied them.
#[derive(Default)]
pub struct Net {
    pub n: usize,
    pub link_down: Vec<bool>,
    /// fault index → the minority side.
    pub partitions: BTreeMap<usize, Vec<usize>>,
    /// fault index → (receivers, senders): receivers drop the senders' frames.
    pub oneways: BTreeMap<usize, (Vec<usize>, Vec<usize>)>,
    /// fault index → (hosts, percent).
    pub losses: BTreeMap<usize, (Vec<usize>, u64)>,
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
pub enum Proc {
    Up,
    Stopped,
    Down,
}

/// A schedule in progress.
pub struct Run<'a> {
    pub sched: &'a Schedule,
    pub lan: Lan,
    pub recorder: Recorder,
    pub net: Net,
    pub procs: Vec<Proc>,
    /// Nodes with a process or link fault in progress.
    pub busy: Vec<bool>,
    pub cut_since: Vec<Option<u64>>,
    pub facts: Facts,
    pub wiped: Vec<usize>,
    /// fault index → the nodes it hit.
    pub targets: BTreeMap<usize, Vec<usize>>,
    /// fault index → the index of the interface a Recreate fault deleted.
    pub deleted_index: BTreeMap<usize, Option<u32>>,
    pub log: String,
    pub t0: Instant,
}

impl Run<'_> {
    pub fn note(&mut self, what: impl std::fmt::Display) {
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

    pub fn start(&mut self, i: usize) -> Result<(), String> {
        let pid = self.lan.start(i)?;
        self.facts.spawned.push((i, pid));
        self.procs[i - 1] = Proc::Up;
        Ok(())
    }

    pub fn kill(&mut self, i: usize) -> Result<(), String> {
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

    pub fn begin(&mut self, k: usize) -> Result<(), String> {
        let fault = self.sched.faults[k].clone();
        let n = self.sched.n;
        let all: Vec<usize> = (1..=n).collect();
        let mut rng = Rng::mixed(fault.draw);
        let before = unix_now_ms();
        match fault.kind {
            Kind::Kill | Kind::Wipe | Kind::Stop | Kind::LinkDown | Kind::Recreate => {
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
                    Kind::Recreate => {
                        self.deleted_index.insert(k, self.lan.link_index(i));
                        self.lan.delete_link(i)?;
                        self.net.link_down[i - 1] = true;
                        self.track_cuts(before);
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

    pub fn end(&mut self, k: usize) -> Result<(), String> {
        let kind = self.sched.faults[k].kind;
        let before = unix_now_ms();
        match kind {
            Kind::Kill | Kind::Wipe | Kind::Stop | Kind::LinkDown | Kind::Recreate => {
                let Some(i) = self.targets.get(&k).map(|t| t[0]) else {
                    return Ok(());
                };
                match kind {
                    Kind::Kill | Kind::Wipe => self.start(i)?,
                    Kind::Stop => {
                        self.lan.signal(i, Signal::SIGCONT)?;
                        self.procs[i - 1] = Proc::Up;
                    }
                    Kind::Recreate => {
                        // Half the faults bring the interface back with its old index.
                        let draw = Rng::mixed(self.sched.faults[k].draw ^ 0x5eed).below(2);
                        let index = self
                            .deleted_index
                            .remove(&k)
                            .flatten()
                            .filter(|_| draw == 0);
                        self.lan.recreate_link(i, index, None)?;
                        self.net.link_down[i - 1] = false;
                        self.track_cuts(before);
                        self.note(format_args!(
                            "#{k} node {i}'s interface recreated with index {:?}",
                            self.lan.link_index(i)
                        ));
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

    pub fn check_alive(&mut self) -> Result<(), String> {
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
    pub fn await_agreement(
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

    pub fn states(&self) -> String {
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
