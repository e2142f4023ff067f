//! Deterministic multi-node simulator for the election core.
//!
//! One virtual real-time clock (microseconds) jumps to the next frame delivery or node
//! deadline. Every node has its own local clock running at `1 + drift` of real time, so
//! leases are tested against clock-rate error. The network multicasts every frame to every
//! other node through seeded per-link loss, duplication, random delay (hence reordering)
//! and blocked links (symmetric and one-way partitions). Crashes lose memory; the
//! persisted epochs and the incarnation counter ("disk") survive. Frames travel as bytes
//! (emit, then parse), so the codec is on the path.
//!
//! The faults a deployed node sees are modelled in [`faults`]: a restart starts the node's
//! clock at a new origin (the daemon's clock starts with its process) and binds its leader
//! stamps to a new process nonce; frames may be delivered late, across restarts of either
//! side; data dirs are wiped or absent (memory-only); event loops stall and then handle
//! everything with a stale or a fresh `now`; wall clocks step; a leader shuts down in two
//! steps (step down and publish, then resign).
//!
//! The invariants of [`crate::invariants`] are checked after every input of every node,
//! cluster-wide ones included, against what the node's driver *published*; the first
//! violation is kept with the time it happened. Everything derives from the seed, so a
//! failing run replays.

pub mod faults;
mod health;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use votecast_core::election::{Config, Epochs, Event, Instant, Node, Output, Restart, ServerState};
use votecast_core::wire::{self, FRAME_LEN};

use crate::clock::LocalClock;
use crate::invariants::{self, At, Checker, Input};
pub use crate::rng::Rng;
pub use faults::{Stall, Storage};

#[derive(Clone, Copy, Debug)]
pub struct NetConfig {
    pub loss_percent: u32,
    pub duplicate_percent: u32,
    pub min_delay_us: u64,
    pub max_delay_us: u64,
}

impl NetConfig {
    pub const PERFECT: NetConfig = NetConfig {
        loss_percent: 0,
        duplicate_percent: 0,
        min_delay_us: 100,
        max_delay_us: 300,
    };
}

/// A state change as the application saw it, stamped with real time.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    pub at_us: u64,
    pub state: ServerState,
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
}

pub struct SimNode {
    pub id: u64,
    pub config: Config,
    pub node: Option<Node>,
    /// Survives crashes (unless wiped, or the node keeps no data dir).
    pub disk: Epochs,
    /// The stored incarnation counter (of the running process while up).
    pub incarnation: u32,
    pub storage: Storage,
    pub zxid: u64,
    /// Its local (monotonic) clock against the simulator's real time; a new origin at
    /// every start.
    pub clock: LocalClock,
    /// Its wall clock: Unix time in µs is real time plus this (steps at will; before
    /// 2020 it does not look set and gives no floors).
    pub wall_offset_us: i64,
    /// Processes started so far (derives each process's clock origin and nonce).
    pub starts: u64,
    /// While set, the event loop handles nothing (frames wait in `inbox`).
    pub stall: Option<Stall>,
    /// A memory-only voter's process waits until then (real time) before `start`,
    /// dropping every frame, as the daemon does: it cannot know whether an earlier
    /// process promised support to a leader.
    pub start_hold_us: Option<u64>,
    inbox: Vec<Delivery>,
    /// The clock reading the next process starts at, when a test chooses it.
    reading_at_start: Option<u64>,
    pub transitions: Vec<Transition>,
    /// Every new election round after the first, with the core's reason, stamped with
    /// real time.
    pub restarts: Vec<(u64, Restart)>,
    pub frames_sent: u64,
    /// Its health checks pass (see `health`); kept across restarts.
    pub eligible: bool,
}

impl SimNode {
    pub fn local(&self, real_us: u64) -> Instant {
        self.clock.local(real_us)
    }

    /// The earliest real time at which the local clock reads at least `local`.
    pub fn real_at(&self, local: Instant, not_before: u64) -> u64 {
        self.clock.real_at(local, not_before)
    }

    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    pub fn state(&self) -> Option<ServerState> {
        self.node.as_ref().map(|n| n.state())
    }
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    at_us: u64,
    order: u64,
    to: usize,
    /// Incarnation of the receiver when sent is irrelevant: a crashed receiver drops it.
    bytes: [u8; FRAME_LEN],
    /// Injected by a test playing an attacker: may be rejected without a violation.
    hostile: bool,
}

pub struct Sim {
    pub seed: u64,
    pub now_us: u64,
    pub nodes: Vec<SimNode>,
    pub net: NetConfig,
    /// blocked[from][to]: frames from `from` never reach `to`.
    pub blocked: Vec<Vec<bool>>,
    /// Whether processes take heartbeat answers by unicast (`Node::set_unicast_answers`);
    /// None: each start draws it, yes with odds 3/4.
    pub unicast_answers: Option<bool>,
    /// `[to]`: frames for node `to` alone (`Frame::to`, sent by unicast) are dropped, as
    /// by a firewall on its host that passes the multicast group but not unicast.
    pub unicast_blocked: Vec<bool>,
    /// loss[from][to]: percentage of frames lost on that link (starts at the net's rate).
    pub loss: Vec<Vec<u32>>,
    pub rng: Rng,
    queue: BinaryHeap<Reverse<Delivery>>,
    order: u64,
    /// The invariants, fed every output of every node.
    checker: Checker,
    pub violation: Option<String>,
    pub frames_delivered: u64,
    /// When set, every frame a node multicasts is also kept in `recorded` with the real
    /// time it was sent (for replays).
    pub record: bool,
    pub recorded: Vec<(u64, [u8; FRAME_LEN])>,
    /// Injected frames that the receiver rejected (parse or authentication).
    pub hostile_rejected: u64,
    /// Percentage of frames delivered late, and the most they are late by (µs): they may
    /// arrive after either side restarted.
    pub late: (u32, u64),
    /// holding[from][to]: frames on that link are kept back in held[from][to] until
    /// released.
    holding: Vec<Vec<bool>>,
    held: Vec<Vec<Vec<[u8; FRAME_LEN]>>>,
}

impl Sim {
    /// Voters `1..=voters`, observers after them.
    pub fn new(seed: u64, voters: u64, observers: u64, net: NetConfig) -> Sim {
        Self::with_config(seed, voters, observers, net, |_| {})
    }

    pub fn with_config(
        seed: u64,
        voters: u64,
        observers: u64,
        net: NetConfig,
        tweak: impl Fn(&mut Config),
    ) -> Sim {
        let ids: Vec<u64> = (1..=voters).collect();
        let rng = Rng::new(seed);
        let nodes: Vec<SimNode> = (1..=voters + observers)
            .map(|id| {
                let mut config = Config::new(id, &ids).expect("valid config");
                tweak(&mut config);
                config.validate().expect("valid tweaked config");
                SimNode {
                    id,
                    config,
                    node: None,
                    disk: Epochs::default(),
                    incarnation: 0,
                    storage: Storage::DataDir,
                    zxid: 0,
                    clock: LocalClock {
                        offset_us: 1_000_000 * id,
                        drift_ppm: 0,
                    },
                    wall_offset_us: 0,
                    starts: 0,
                    stall: None,
                    start_hold_us: None,
                    inbox: Vec::new(),
                    reading_at_start: None,
                    transitions: Vec::new(),
                    restarts: Vec::new(),
                    frames_sent: 0,
                    eligible: true,
                }
            })
            .collect();
        let n = nodes.len();
        let mut checker = Checker::new(true);
        for node in &nodes {
            checker.watch(node.id, node.disk);
        }
        Sim {
            seed,
            now_us: 0,
            nodes,
            net,
            blocked: vec![vec![false; n]; n],
            unicast_blocked: vec![false; n],
            unicast_answers: None,
            loss: vec![vec![net.loss_percent; n]; n],
            rng,
            queue: BinaryHeap::new(),
            order: 0,
            checker,
            violation: None,
            frames_delivered: 0,
            record: false,
            recorded: Vec::new(),
            hostile_rejected: 0,
            late: (0, 0),
            holding: vec![vec![false; n]; n],
            held: vec![vec![Vec::new(); n]; n],
        }
    }

    /// Deliver `bytes` to node `to` at real time `at_us`, as an attacker on the LAN would.
    /// Uses no randomness of the simulator, so the honest nodes' run stays comparable.
    pub fn inject(&mut self, to: u64, at_us: u64, bytes: [u8; FRAME_LEN]) {
        let to = self.index(to);
        self.order += 1;
        self.queue.push(Reverse(Delivery {
            at_us: at_us.max(self.now_us),
            order: self.order,
            to,
            bytes,
            hostile: true,
        }));
    }

    pub(crate) fn index(&self, id: u64) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn node(&self, id: u64) -> &SimNode {
        &self.nodes[self.index(id)]
    }

    /// Give every node a random clock-rate error within ±`max_ppm`.
    pub fn randomize_drift(&mut self, max_ppm: i64) {
        for i in 0..self.nodes.len() {
            let span = (2 * max_ppm + 1) as u64;
            self.nodes[i].clock.drift_ppm = (self.rng.next_u64() % span) as i64 - max_ppm;
        }
    }

    pub fn set_zxid(&mut self, id: u64, zxid: u64) {
        trace(self.now_us, format_args!("zxid {id} = {zxid}"));
        let i = self.index(id);
        self.nodes[i].zxid = zxid;
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.set_zxid(zxid);
        }
    }

    /// Boot (or reboot) a node as the daemon does: its clock starts at a new origin (the
    /// first start keeps the initial one), the incarnation is bumped on "disk" (raised to
    /// the wall-clock second when the wall clock looks set), the epochs are restored, the
    /// process gets a nonce for its leader stamps and an epoch floor from the wall clock.
    pub fn start(&mut self, id: u64) {
        trace(self.now_us, format_args!("start {id}"));
        let i = self.index(id);
        assert!(self.nodes[i].node.is_none(), "node {id} is already up");
        let origin = if self.nodes[i].starts > 0 || self.nodes[i].reading_at_start.is_some() {
            self.next_origin(i)
        } else {
            self.nodes[i].clock.offset_us
        };
        let now_us = self.now_us;
        let sim_node = &mut self.nodes[i];
        if sim_node.starts > 0 || sim_node.reading_at_start.is_some() {
            sim_node.clock.offset_us = origin;
        }
        sim_node.starts += 1;
        let random =
            votecast_core::rng::mix(self.seed ^ (sim_node.id << 40) ^ sim_node.starts ^ 0x1ca4);
        let (epochs, incarnation) = sim_node.boot(now_us, random);
        if sim_node.storage == Storage::MemoryOnly {
            self.checker.wiped(i, epochs);
        }
        if epochs == Epochs::default()
            && self.checker.leaderships() > 0
            && !self.epoch_floors_agree(now_us)
        {
            self.checker.epochs_may_repeat();
        }
        let sim_node = &mut self.nodes[i];
        let mut node =
            Node::new(sim_node.config.clone(), epochs, incarnation).expect("valid config");
        node.set_zxid(sim_node.zxid);
        node.set_process_nonce(votecast_core::rng::mix(
            self.seed ^ (sim_node.id << 40) ^ sim_node.starts,
        ));
        node.set_epoch_floor(sim_node.epoch_floor(now_us));
        // Most processes take heartbeat answers by unicast, some (an older version, or a
        // node on the loopback interface) from the group: a cluster mixes both.
        node.set_unicast_answers(self.unicast_answers.unwrap_or((random >> 17) & 3 != 0));
        let now = sim_node.local(now_us);
        node.set_eligible(now, sim_node.eligible);
        if let Some(hold) = faults::start_hold(sim_node.storage, &sim_node.config) {
            let until = now + hold;
            sim_node.start_hold_us = Some(sim_node.real_at(until, now_us));
        } else {
            node.start(now);
        }
        sim_node.node = Some(node);
        sim_node.stall = None;
        sim_node.inbox.clear();
        self.checker.process_started(i);
        self.drain(i, Input::Other);
    }

    pub fn start_all(&mut self) {
        for id in self.ids() {
            self.start(id);
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn voter_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.config.is_voter(n.id))
            .map(|n| n.id)
            .collect()
    }

    /// Power loss: memory gone, disk kept.
    pub fn crash(&mut self, id: u64) {
        trace(self.now_us, format_args!("crash {id}"));
        let i = self.index(id);
        self.nodes[i].stall = None;
        self.nodes[i].start_hold_us = None;
        self.nodes[i].inbox.clear();
        if self.nodes[i].node.take().is_some() {
            self.checker.crashed(i, self.now_us);
            self.nodes[i].transitions.push(Transition {
                at_us: self.now_us,
                state: ServerState::Looking,
                leader: None,
                epoch: None,
            });
        }
    }

    /// SIGTERM as the daemon handles it: step down and publish the end of the lease (the
    /// driver waits for the step-down hook, so the application has seen it), then the
    /// resign broadcast that releases the followers, then gone. A core that cannot step
    /// down reports LEADING until the resign; its end counts as seen at the resign, as it
    /// did before the two steps existed.
    pub fn shutdown(&mut self, id: u64) {
        trace(self.now_us, format_args!("shutdown {id}"));
        let i = self.index(id);
        if self.nodes[i].start_hold_us.is_some() {
            // Stopped before its start: it sent nothing and promised nothing.
            self.crash(id);
            return;
        }
        self.unstall(i);
        let now = self.nodes[i].local(self.now_us);
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        node.step_down(now);
        self.drain(i, Input::Other);
        let stepped_down = self.state_of(id) != Some(ServerState::Leading);
        if stepped_down {
            self.acknowledge_end(i);
        }
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.shutdown(now);
            self.drain(i, Input::Other);
            if !stepped_down {
                self.acknowledge_end(i);
            }
            self.nodes[i].node = None;
        }
    }

    pub(crate) fn acknowledge_end(&mut self, i: usize) {
        if let Err(violation) = self.checker.end_acknowledged(i) {
            self.violate(violation);
        }
    }

    /// Frames between the two groups are dropped both ways.
    pub fn partition(&mut self, side_a: &[u64], side_b: &[u64]) {
        trace(
            self.now_us,
            format_args!("partition {side_a:?} | {side_b:?}"),
        );
        for &a in side_a {
            for &b in side_b {
                self.block(a, b);
                self.block(b, a);
            }
        }
    }

    /// One-way: frames from `from` no longer reach `to`.
    pub fn block(&mut self, from: u64, to: u64) {
        trace(self.now_us, format_args!("block {from} -> {to}"));
        let (f, t) = (self.index(from), self.index(to));
        self.blocked[f][t] = true;
    }

    /// Frames for `to` alone are dropped (a firewall on its host that passes the group).
    pub fn block_unicast_to(&mut self, to: u64) {
        trace(self.now_us, format_args!("unicast to {to} blocked"));
        let t = self.index(to);
        self.unicast_blocked[t] = true;
    }

    /// Loss rate of one direction of one link.
    pub fn set_link_loss(&mut self, from: u64, to: u64, percent: u32) {
        trace(self.now_us, format_args!("loss {from} -> {to} {percent} %"));
        let (f, t) = (self.index(from), self.index(to));
        self.loss[f][t] = percent;
    }

    /// Remove partitions and per-link loss (back to the network's base loss rate).
    pub fn heal(&mut self) {
        trace(self.now_us, format_args!("heal"));
        let base = self.net.loss_percent;
        for row in self.loss.iter_mut() {
            row.iter_mut().for_each(|l| *l = base);
        }
        for row in self.blocked.iter_mut() {
            row.iter_mut().for_each(|b| *b = false);
        }
        self.unicast_blocked.iter_mut().for_each(|b| *b = false);
    }

    /// Advance virtual time by `duration`, processing everything due.
    pub fn run_for(&mut self, duration: Duration) {
        let end = self.now_us + duration.as_micros() as u64;
        self.run_until(end, |_| false);
    }

    /// Run until `done` holds (checked after every step) or `end` passes. True if done.
    pub fn run_until(&mut self, end_us: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if done(self) {
                return true;
            }
            let next_delivery = self.queue.peek().map(|Reverse(d)| d.at_us);
            let next_timer = self
                .nodes
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    if let Some(hold) = n.start_hold_us {
                        return Some((hold.max(self.now_us), i));
                    }
                    if let Some(stall) = n.stall {
                        return Some((stall.until_us.max(self.now_us), i));
                    }
                    let deadline = n.node.as_ref()?.poll_timeout()?;
                    Some((n.real_at(deadline, self.now_us), i))
                })
                .min();
            let next = match (next_delivery, next_timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => u64::MAX,
            };
            if next > end_us {
                self.now_us = end_us;
                return done(self);
            }
            self.now_us = next;
            if next_delivery == Some(next) {
                let Reverse(delivery) = self.queue.pop().expect("peeked");
                self.deliver(delivery);
            } else if let Some((_, i)) = next_timer {
                if self.nodes[i].start_hold_us.take().is_some() {
                    let now = self.nodes[i].local(self.now_us);
                    if let Some(node) = self.nodes[i].node.as_mut() {
                        node.start(now);
                    }
                    self.drain(i, Input::Other);
                    continue;
                }
                if self.nodes[i].stall.is_some() {
                    self.unstall(i);
                    continue;
                }
                // A leader whose frames can wait reads them when its timer fires, before
                // the timeout, as the daemon does (see `Node::frames_can_wait`).
                self.read_waiting(i);
                let floor = self.nodes[i].epoch_floor(self.now_us);
                let now = self.nodes[i].local(self.now_us);
                if let Some(node) = self.nodes[i].node.as_mut() {
                    node.set_epoch_floor(floor);
                    node.handle_timeout(now);
                }
                self.drain(i, Input::Timeout);
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let i = delivery.to;
        if self.nodes[i].node.is_none() || self.nodes[i].start_hold_us.is_some() {
            return;
        }
        if self.nodes[i].stall.is_some() {
            // The socket buffers it until the loop runs again.
            self.nodes[i].inbox.push(delivery);
            return;
        }
        if self.nodes[i]
            .node
            .as_ref()
            .is_some_and(Node::frames_can_wait)
        {
            // The daemon leaves the socket unwatched: the frame waits for the next timer.
            self.nodes[i].inbox.push(delivery);
            return;
        }
        self.read_waiting(i);
        self.handle_delivery(delivery, self.now_us);
    }

    /// Node `i` (not stalled) reads the frames that waited in its socket, each with the
    /// clock read now.
    fn read_waiting(&mut self, i: usize) {
        for delivery in std::mem::take(&mut self.nodes[i].inbox) {
            self.handle_delivery(delivery, self.now_us);
        }
    }

    /// Node `delivery.to` handles one frame with `now` read at global time `read_us`.
    fn handle_delivery(&mut self, delivery: Delivery, read_us: u64) {
        let i = delivery.to;
        let now = self.nodes[i].local(read_us);
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        self.frames_delivered += 1;
        if std::env::var_os("VOTECAST_SIM_TRACE").is_some() {
            if let Ok(f) = wire::parse_datagram(&delivery.bytes, 0) {
                println!(
                    "{:>9} {} -> {} {:?} vote=({},{},{}) round={} epoch={} acc={} flags={:?}",
                    self.now_us,
                    f.sender,
                    i + 1,
                    f.state,
                    f.vote.leader,
                    f.vote.zxid,
                    f.vote.peer_epoch,
                    f.round,
                    f.epoch,
                    f.accepted_epoch,
                    f.flags
                );
            }
        }
        match node.handle_datagram(now, &delivery.bytes) {
            Ok(()) => {
                let cluster = node.config().cluster;
                if let Ok(frame) = wire::parse_datagram(&delivery.bytes, cluster) {
                    let stamp = node.echo_stamp(frame.echo);
                    self.checker.received(i, &frame, stamp);
                }
            }
            Err(_) if delivery.hostile => self.hostile_rejected += 1,
            Err(err) => self.violate(format!(
                "node {} rejected a valid frame: {err}",
                self.nodes[i].id
            )),
        }
        self.drain_at(i, Input::Other, read_us);
    }

    /// Act on a node's outputs after one input (persist to disk, record events, multicast
    /// frames), checking the invariants on the way.
    fn drain(&mut self, i: usize, input: Input) {
        self.drain_at(i, input, self.now_us);
    }

    /// [`Self::drain`] after an input handled with `now` read at global time `read_us`.
    fn drain_at(&mut self, i: usize, input: Input, read_us: u64) {
        let at = At {
            global_us: read_us,
            clock: self.nodes[i].clock,
            real_us: self.now_us,
        };
        let Some(node) = self.nodes[i].node.as_mut() else {
            return;
        };
        let outputs = match invariants::drain(node) {
            Ok(outputs) => outputs,
            Err(violation) => return self.violate(violation),
        };
        for output in outputs {
            let node = self.nodes[i].node.as_ref().expect("up");
            if let Err(violation) = self.checker.output(i, node, &output, at) {
                self.violate(violation);
            }
            match output {
                Output::Persist(epochs) => self.nodes[i].disk = epochs,
                Output::Event(Event::StateChanged(change)) => {
                    self.nodes[i].transitions.push(Transition {
                        at_us: self.now_us,
                        state: change.state,
                        leader: change.leader,
                        epoch: change.epoch,
                    });
                }
                Output::Event(Event::DuplicateId(_)) => {}
                Output::Event(Event::Restarted(restart)) => {
                    self.nodes[i].restarts.push((self.now_us, restart));
                }
                Output::Transmit(frame) => {
                    self.nodes[i].frames_sent += 1;
                    // A frame for one voter goes to it alone, as the daemon unicasts it.
                    let only = frame
                        .to
                        .and_then(|id| self.nodes.iter().position(|n| n.id == id));
                    if only.is_some_and(|to| self.unicast_blocked[to]) {
                        trace(
                            self.now_us,
                            format_args!("{} -> {:?} dropped: unicast blocked", i + 1, frame.to),
                        );
                        continue;
                    }
                    self.multicast(i, frame.bytes, only);
                }
            }
        }
        let node = self.nodes[i].node.as_ref().expect("up");
        if let Err(violation) = self.checker.after_input(i, node, input, at) {
            self.violate(violation);
        }
    }

    fn multicast(&mut self, from: usize, bytes: [u8; FRAME_LEN], only: Option<usize>) {
        if self.record {
            self.recorded.push((self.now_us, bytes));
        }
        for to in 0..self.nodes.len() {
            if to == from || only.is_some_and(|only| only != to) {
                continue;
            }
            if self.blocked[from][to] || self.rng.chance(self.loss[from][to]) {
                if std::env::var_os("VOTECAST_SIM_TRACE").is_some() {
                    println!(
                        "{:>9} {} -> {} DROPPED (blocked {}, loss {}%)",
                        self.now_us,
                        from + 1,
                        to + 1,
                        self.blocked[from][to],
                        self.loss[from][to]
                    );
                }
                continue;
            }
            let copies = if self.rng.chance(self.net.duplicate_percent) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                if self.hold_frame(from, to, bytes) {
                    continue;
                }
                let mut delay = self.rng.range(self.net.min_delay_us, self.net.max_delay_us);
                if self.late.0 > 0 && self.rng.chance(self.late.0) {
                    delay += self.rng.range(0, self.late.1);
                }
                self.order += 1;
                self.queue.push(Reverse(Delivery {
                    at_us: self.now_us + delay,
                    order: self.order,
                    to,
                    bytes,
                    hostile: false,
                }));
            }
        }
    }

    // ----- invariants -------------------------------------------------------------------

    pub(crate) fn violate(&mut self, what: String) {
        if self.violation.is_none() {
            self.violation = Some(format!("seed {} at {} us: {what}", self.seed, self.now_us));
        }
    }

    // ----- queries ----------------------------------------------------------------------

    /// LEADING reports so far.
    pub fn leader_terms(&self) -> u64 {
        self.checker.leaderships()
    }

    /// Highest epoch any node reported LEADING with.
    pub fn max_leader_epoch(&self) -> u64 {
        self.checker.max_leader_epoch()
    }

    /// Every up node agrees on one up leader that reports LEADING; voters FOLLOWING it and
    /// observers OBSERVING it, all with the leader's epoch. Returns the leader.
    pub fn agreed_leader(&self) -> Option<u64> {
        let leader = self
            .nodes
            .iter()
            .find(|n| n.state() == Some(ServerState::Leading))?;
        let leader_node = leader.node.as_ref()?;
        let (id, epoch) = (leader.id, leader_node.epoch());
        let all = self.nodes.iter().all(|n| match n.node.as_ref() {
            None => true,
            Some(node) if n.id == id => node.state() == ServerState::Leading,
            Some(node) => {
                let expected = if node.config().is_voter(n.id) {
                    ServerState::Following
                } else {
                    ServerState::Observing
                };
                node.state() == expected && node.leader() == Some(id) && node.epoch() == epoch
            }
        });
        all.then_some(id)
    }

    /// Run until all up nodes agree on a leader, at most `bound`. Returns (leader, time).
    pub fn await_agreement(&mut self, bound: Duration) -> Option<(u64, Duration)> {
        let start = self.now_us;
        let end = start + bound.as_micros() as u64;
        if self.run_until(end, |s| s.agreed_leader().is_some()) {
            let leader = self.agreed_leader()?;
            Some((leader, Duration::from_micros(self.now_us - start)))
        } else {
            None
        }
    }

    /// Who reports LEADING now.
    pub fn leaders(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.state() == Some(ServerState::Leading))
            .map(|n| n.id)
            .collect()
    }

    pub fn state_of(&self, id: u64) -> Option<ServerState> {
        self.node(id).state()
    }

    pub fn leader_of(&self, id: u64) -> Option<u64> {
        self.node(id).node.as_ref().and_then(|n| n.leader())
    }

    pub fn epoch_of(&self, id: u64) -> Option<u64> {
        self.node(id).node.as_ref().and_then(|n| n.epoch())
    }

    /// Panics with the seed and a short history if an invariant was violated.
    pub fn assert_ok(&self) {
        if let Some(violation) = &self.violation {
            panic!(
                "{violation}\n(replay: seed {})\n{}",
                self.seed,
                self.history()
            );
        }
    }

    pub fn history(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push_str(&format!(
                "node {} (drift {} ppm, {} starts, {:?}):",
                n.id, n.clock.drift_ppm, n.starts, n.storage
            ));
            for t in n.transitions.iter().rev().take(12).rev() {
                out.push_str(&format!(
                    " [{}ms {} L{:?} E{:?}]",
                    t.at_us / 1000,
                    t.state,
                    t.leader,
                    t.epoch
                ));
            }
            out.push('\n');
        }
        out
    }
}

/// With `VOTECAST_SIM_TRACE` set, every fault the schedule injects is printed with its
/// time (to read a failing seed's schedule next to its history).
pub(crate) fn trace(now_us: u64, what: core::fmt::Arguments<'_>) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("VOTECAST_SIM_TRACE").is_some()) {
        eprintln!("{:>9.3} ms  {what}", now_us as f64 / 1000.0);
    }
}
