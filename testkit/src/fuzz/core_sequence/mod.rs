//! The `core_sequence` fuzz check of the election core (`votecast_core::election`): a structured [`Scenario`] drives one
//! to three [`Node`]s through arbitrary steps, and invariants are checked after every
//! input.
//!
//! Steps: frames built from arbitrary field values (emitted through `wire::Repr` with a
//! correct CRC, so they pass parsing and reach the state machine), raw bytes, corrupted
//! copies of real frames, real frames between the nodes (lost, duplicated, reordered or
//! replayed at will), time (with or without handling timeouts), zxid changes, graceful
//! shutdown, crash and restart (the persisted epochs and the incarnation survive, as on
//! disk). Every node has its own clock origin, which may change at a restart.
//!
//! The invariants are [`crate::invariants`]'s, the same the simulator checks; the
//! cluster-wide ones only in an *honest* scenario, where nobody forges frames from voters
//! (forged frames come from non-voter ids only; raw bytes that happen to parse as a voter's
//! frame are not delivered). On top, for the steps only this harness takes:
//! - no panic, no debug assertion (the output queue never overflows while the driver polls
//!   after every input);
//! - a datagram the parser rejects changes nothing but a counter; a frame with one byte
//!   changed is rejected (CRC-32);
//! - a shutdown is the daemon's graceful handover: `step_down` (the end of the lease is
//!   published and acknowledged), then `shutdown`;
//! - after `shutdown` the node reports LOOKING, sends one RESIGN frame (unless it heard its
//!   id from another board) and is inert.

use std::collections::VecDeque;
use std::time::Duration;

use votecast_core::election::{
    Config, DatagramError, Epochs, Event, Instant, Node, Output, ServerState,
};

use crate::clock::LocalClock;
use crate::invariants::{self, At, Checker, Input};
use crate::sim::faults::{fresh_incarnation, start_hold, Stall, Storage};
use faults::Hold;

mod encode;
mod faults;
mod forge;
mod input;
pub use encode::encode;
pub use input::*;
use votecast_core::wire::{self, Vote, FRAME_LEN};

/// The cluster id of every node under test.
pub const CLUSTER: u32 = 0x0f0f_0001;
/// Most steps taken from one scenario.
pub const MAX_STEPS: usize = 256;
/// Most nodes under test.
pub const MAX_NODES: usize = 3;
/// Frames of each node kept for replays.
const HISTORY: usize = 8;
/// Datagrams a stalled node's socket holds.
const INBOX: usize = 64;
/// The harness clock stops here (2^40 µs, about 12.7 days): a monotonic clock in
/// microseconds since start never gets near the end of `u64`.
const TIME_LIMIT: u64 = 1 << 40;
/// Id of the first observer under test; forged non-voter senders start at 200.
const OBSERVER_BASE: u64 = 100;
const STRANGER_BASE: u64 = 200;

/// One node under test and what the harness knows about it.
struct Slot {
    id: u64,
    config: Config,
    node: Option<Node>,
    started: bool,
    stopped: bool,
    /// Local time = harness time + offset.
    offset: u64,
    /// "Disk": the last persisted epochs and the incarnation of the running process.
    disk: Epochs,
    incarnation: u32,
    /// Frames sent and not yet delivered by the network, and the last few sent.
    outbox: VecDeque<[u8; FRAME_LEN]>,
    history: VecDeque<[u8; FRAME_LEN]>,
    /// The faults of [`faults`]: storage, a lost incarnation counter, when its last
    /// running process ended, the start hold, a stalled loop and the datagrams it has not
    /// read yet.
    storage: Storage,
    counter_lost: bool,
    down_since: Option<u64>,
    hold: Hold,
    stall: Option<Stall>,
    /// Datagrams that arrived while stalled, with when they arrived.
    inbox: Vec<(Vec<u8>, u64)>,
    starts: u64,
}

struct Harness {
    honest: bool,
    /// `VOTECAST_FUZZ_TRACE` set: print every step, frame and event to stderr (for
    /// reading a reproducer, not for fuzzing).
    trace: bool,
    now: u64,
    voters: Vec<u64>,
    slots: Vec<Slot>,
    next_forged_sequence: u64,
    /// The invariants, fed every output of every node; cluster-wide in honest scenarios.
    checker: Checker,
    outcome: Outcome,
}

/// What the harness observed, for reports and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub steps: usize,
    pub frames_delivered: u64,
    pub frames_rejected: u64,
    pub leaderships: u64,
    /// Data dirs wiped, processes started without one (after their hold), stalls ended
    /// and the inputs handled after them with a `now` read before the stall.
    pub wipes: u64,
    pub memory_starts: u64,
    pub stalls: u64,
    pub stale_inputs: u64,
}

fn config_for(spec: &ClusterSpec, id: u64, voters: &[u64]) -> Config {
    let t = spec.timing;
    let mut config = Config::new(id, voters).expect("valid ids");
    config.cluster = CLUSTER;
    config.tick = Duration::from_millis(1 + u64::from(t.tick_ms) % 100);
    config.sync_limit = 2 + u32::from(t.sync_limit) % 8;
    config.init_limit = 2 + u32::from(t.init_limit) % 12;
    config.finalize_wait = Duration::from_millis(1 + u64::from(t.finalize_ms) % 200);
    let min = 1 + u64::from(t.min_notification_ms) % 200;
    config.min_notification_interval = Duration::from_millis(min);
    config.max_notification_interval =
        Duration::from_millis(min + u64::from(t.max_notification_extra_ms) % 5000);
    config.max_clock_drift_ppm = u32::from(t.drift) * 3 % 100_000;
    config.validate().expect("the harness builds valid configs");
    config
}

/// Runs a scenario, panicking on any violated invariant.
pub fn run(scenario: &Scenario) -> Outcome {
    let mut h = Harness::new(scenario);
    for step in scenario.steps.iter().take(MAX_STEPS) {
        h.step(step);
        h.check_all();
        h.outcome.steps += 1;
    }
    h.outcome.leaderships = h.checker.leaderships();
    h.outcome
}

impl Harness {
    fn new(scenario: &Scenario) -> Harness {
        let spec = &scenario.cluster;
        let n_voters = 1 + u64::from(spec.voters) % 7;
        let voters: Vec<u64> = (1..=n_voters).collect();
        let mut ids = Vec::new();
        let mut specs = Vec::new();
        for (i, node) in spec.nodes.iter().take(MAX_NODES).enumerate() {
            let id = match node.role {
                Role::Voter(v) => 1 + u64::from(v) % n_voters,
                Role::Observer => OBSERVER_BASE + i as u64,
            };
            if !ids.contains(&id) {
                ids.push(id);
                specs.push(*node);
            }
        }
        if ids.is_empty() {
            ids.push(1);
            specs.push(NodeSpec {
                role: Role::Voter(0),
                offset: 0,
                idle: false,
                epochs: None,
            });
        }
        let slots = ids
            .iter()
            .zip(&specs)
            .map(|(&id, node)| {
                let config = config_for(spec, id, &voters);
                let disk = match node.epochs {
                    None => Epochs::default(),
                    Some((accepted, current)) => {
                        let accepted = u64::from(accepted);
                        Epochs {
                            accepted_epoch: accepted,
                            // A made-up disk must not promise an epoch to a leader in an
                            // honest scenario.
                            accepted_leader: if accepted > 0 && !scenario.honest {
                                1
                            } else {
                                0
                            },
                            current_epoch: u64::from(current).min(accepted),
                        }
                    }
                };
                Slot {
                    id,
                    config,
                    node: None,
                    started: false,
                    stopped: false,
                    offset: u64::from(node.offset),
                    disk,
                    incarnation: 0,
                    outbox: VecDeque::new(),
                    history: VecDeque::new(),
                    storage: Storage::DataDir,
                    counter_lost: false,
                    down_since: None,
                    hold: Hold::None,
                    stall: None,
                    inbox: Vec::new(),
                    starts: 0,
                }
            })
            .collect::<Vec<Slot>>();
        let mut checker = Checker::new(scenario.honest);
        for slot in &slots {
            checker.watch(slot.id, slot.disk);
        }
        let mut h = Harness {
            honest: scenario.honest,
            now: 0,
            voters,
            slots,
            trace: std::env::var_os("VOTECAST_FUZZ_TRACE").is_some(),
            next_forged_sequence: 1 << 32,
            checker,
            outcome: Outcome::default(),
        };
        for (i, node) in specs.iter().enumerate() {
            h.construct(i);
            if !node.idle {
                h.start(i);
            }
        }
        h
    }

    /// Node `i`'s clock: the harness time plus its origin (no rate error here).
    fn at(&self, i: usize) -> At {
        At::fresh(
            self.now,
            LocalClock {
                offset_us: self.slots[i].offset,
                drift_ppm: 0,
            },
        )
    }

    fn local(&self, i: usize) -> Instant {
        self.at(i).local()
    }

    fn index(&self, x: u8) -> usize {
        usize::from(x) % self.slots.len()
    }

    fn is_voter(&self, id: u64) -> bool {
        self.voters.contains(&id)
    }

    // ----- process life cycle ---------------------------------------------------------

    /// A new process: the next incarnation, bumped on "disk" first as the driver does, or
    /// drawn at random when there is no counter (wiped, no data dir).
    fn construct(&mut self, i: usize) {
        if self.slots[i].storage == Storage::MemoryOnly {
            self.lose_epochs(i);
        }
        let slot = &mut self.slots[i];
        slot.starts += 1;
        slot.incarnation = if slot.storage == Storage::MemoryOnly || slot.counter_lost {
            let draw = slot.id << 40 ^ slot.starts ^ slot.offset << 8 ^ 0x1ca4;
            fresh_incarnation(votecast_core::rng::mix(draw))
        } else {
            slot.incarnation.wrapping_add(1).max(1)
        };
        slot.counter_lost = false;
        let mut node = Node::new(slot.config.clone(), slot.disk, slot.incarnation)
            .expect("valid config accepted");
        // Leader stamps are bound to the process (a new nonce at every construction).
        node.set_process_nonce(votecast_core::rng::mix(
            slot.id << 32 ^ u64::from(slot.incarnation) ^ slot.offset,
        ));
        assert_eq!(node.state(), ServerState::Looking);
        assert_eq!(node.poll_timeout(), None, "an idle node has no deadline");
        slot.node = Some(node);
        slot.started = false;
        slot.stopped = false;
        slot.hold = match start_hold(slot.storage, &slot.config) {
            Some(_) => Hold::Pending,
            None => Hold::None,
        };
        slot.stall = None;
        slot.inbox.clear();
        self.checker.process_started(i);
    }

    /// Start the core of node `i`'s process, once its start hold (if any) is over.
    fn start(&mut self, i: usize) {
        let now = self.local(i);
        let slot = &mut self.slots[i];
        if slot.node.is_none() || slot.started || !self.hold_over(i) {
            return;
        }
        let slot = &mut self.slots[i];
        let node = slot.node.as_mut().expect("present");
        node.start(now);
        slot.started = true;
        slot.down_since = None;
        self.after_input(i, Input::Other);
    }

    fn crash(&mut self, i: usize) {
        // A crashed leader's application may believe in its lease until it runs out.
        if self.slots[i].node.is_some() {
            self.checker.crashed(i, self.now);
        }
        let slot = &mut self.slots[i];
        if slot.started && !slot.stopped {
            slot.down_since = Some(self.now);
        }
        slot.node = None;
        slot.started = false;
        slot.stopped = false;
        slot.hold = Hold::None;
        slot.stall = None;
        slot.inbox.clear();
    }

    fn shutdown(&mut self, i: usize) {
        if self.slots[i].hold != Hold::None {
            // Stopped before its core started: it sent nothing and promised nothing.
            self.crash(i);
            return;
        }
        self.unstall(i);
        let now = self.local(i);
        let slot = &mut self.slots[i];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        let was_running = slot.started && !slot.stopped;
        // A node that heard another board with its id stays silent, RESIGN included.
        let quarantined = node.duplicate_id().is_some();
        // The daemon's graceful handover: step down and publish the end (the driver waits
        // for the hook, so the application has seen it), then resign. A core that cannot
        // step down reports LEADING until the resign, whose end counts as seen.
        node.step_down(now);
        self.after_input(i, Input::Other);
        let stepped_down =
            self.slots[i].node.as_ref().expect("present").state() != ServerState::Leading;
        if stepped_down {
            self.checker
                .end_acknowledged(i)
                .unwrap_or_else(|v| panic!("{v}"));
        }
        let node = self.slots[i].node.as_mut().expect("present");
        node.shutdown(now);
        self.checker.clear_resigned(i);
        self.after_input(i, Input::Other);
        if !stepped_down {
            self.checker
                .end_acknowledged(i)
                .unwrap_or_else(|v| panic!("{v}"));
        }
        let slot = &mut self.slots[i];
        if was_running {
            slot.down_since = Some(self.now);
            slot.stopped = true;
            self.checker.stopped(i);
            assert_eq!(
                self.checker.resigned(i),
                !quarantined,
                "node {}: RESIGN frame sent at shutdown (quarantined: {quarantined})",
                slot.id
            );
        }
        let node = slot.node.as_ref().expect("present");
        assert_eq!(node.state(), ServerState::Looking, "state after shutdown");
        assert_eq!(node.leader(), None);
        assert_eq!(node.valid_until(), None);
        if slot.stopped {
            assert_eq!(node.poll_timeout(), None, "a stopped node has no deadline");
        }
    }

    // ----- steps ----------------------------------------------------------------------

    // One arm per `Step` variant: longer than the usual limit, but the whole input
    // language reads in one place, next to the enum it decodes.
    fn step(&mut self, step: &Step) {
        if self.trace {
            eprintln!("{:>12} step {step:?}", self.now);
        }
        match step {
            Step::Wait(x) => {
                self.advance(u64::from(*x) * 100);
                self.timeouts_all();
            }
            Step::WaitLong(x) => {
                self.advance(u64::from(*x));
                self.timeouts_all();
            }
            Step::Skip(x) => self.advance(u64::from(*x) * 100),
            Step::Timeout(n) => {
                let i = self.index(*n);
                self.timeout(i);
            }
            Step::Run { rounds } => {
                for _ in 0..(*rounds).min(32) {
                    for _ in 0..8 {
                        if self.slots.iter().all(|s| s.outbox.is_empty()) {
                            break;
                        }
                        for from in 0..self.slots.len() {
                            self.broadcast(from);
                        }
                    }
                    let next = (0..self.slots.len())
                        .filter_map(|i| self.next_timer(i))
                        .min();
                    let Some(next) = next else {
                        break;
                    };
                    self.advance(next.saturating_sub(self.now));
                    self.timeouts_all();
                }
            }
            Step::Broadcast(n) => {
                let from = self.index(*n);
                self.broadcast(from);
            }
            Step::Lose(n) => {
                let from = self.index(*n);
                self.slots[from].outbox.clear();
            }
            Step::Replay { from, back, to } => {
                let from = self.index(*from);
                let to = self.index(*to);
                if let Some(frame) = self.old_frame(from, *back) {
                    self.deliver(to, &frame);
                }
            }
            Step::Corrupt {
                from,
                back,
                to,
                at,
                xor,
            } => {
                let from = self.index(*from);
                let to = self.index(*to);
                if let Some(mut frame) = self.old_frame(from, *back) {
                    frame[usize::from(*at) % FRAME_LEN] ^= *xor;
                    let accepted = self.deliver(to, &frame);
                    // CRC-32 detects every error confined to one byte.
                    assert!(*xor == 0 || !accepted, "a corrupted frame was accepted");
                }
            }
            Step::Forge { to, frame } => {
                let to = self.index(*to);
                let bytes = self.forge(to, frame);
                self.deliver(to, &bytes);
            }
            Step::Raw { to, bytes } => {
                let to = self.index(*to);
                let forged_voter = wire::parse_datagram(bytes, CLUSTER).is_ok_and(|r| {
                    self.is_voter(r.sender) || self.slots.iter().any(|s| s.id == r.sender)
                });
                if !(self.honest && forged_voter) {
                    self.deliver(to, bytes);
                }
            }
            Step::SetZxid { node, zxid } => {
                let i = self.index(*node);
                let zxid = self.resolve(i, *zxid);
                if let Some(node) = self.slots[i].node.as_mut() {
                    node.set_zxid(zxid);
                    assert_eq!(node.zxid(), zxid);
                    self.after_input(i, Input::Other);
                }
            }
            Step::Start(n) => {
                let i = self.index(*n);
                if self.slots[i].node.is_none() {
                    self.construct(i);
                }
                self.start(i);
            }
            Step::Shutdown(n) => {
                let i = self.index(*n);
                self.shutdown(i);
            }
            Step::Crash(n) => {
                let i = self.index(*n);
                self.crash(i);
            }
            Step::Restart { node, offset } => {
                let i = self.index(*node);
                self.crash(i);
                self.slots[i].offset = u64::from(*offset);
                self.construct(i);
                self.start(i);
            }
            Step::Wipe(n) => {
                let i = self.index(*n);
                self.wipe(i);
            }
            Step::MemoryRestart { node, offset } => {
                let i = self.index(*node);
                self.crash(i);
                self.slots[i].storage = Storage::MemoryOnly;
                self.slots[i].offset = u64::from(*offset);
                self.construct(i);
                self.start(i);
            }
            Step::Stall {
                node,
                duration,
                stale,
            } => {
                let i = self.index(*node);
                self.stall(i, u64::from(*duration) * 100, *stale);
            }
        }
    }

    fn advance(&mut self, micros: u64) {
        self.now = self.now.saturating_add(micros).min(TIME_LIMIT);
    }

    fn timeouts_all(&mut self) {
        for i in 0..self.slots.len() {
            self.timeout(i);
        }
    }

    fn timeout(&mut self, i: usize) {
        if self.slots[i].hold != Hold::None {
            // The driver's hold: its end is the process's only timer.
            self.start(i);
            return;
        }
        if let Some(stall) = self.slots[i].stall {
            if self.now >= stall.until_us {
                self.unstall(i);
            }
            return;
        }
        let now = self.local(i);
        if let Some(node) = self.slots[i].node.as_mut() {
            node.handle_timeout(now);
            self.after_input(i, Input::Timeout);
        }
    }

    fn broadcast(&mut self, from: usize) {
        let frames: Vec<_> = self.slots[from].outbox.drain(..).collect();
        for frame in frames {
            for to in 0..self.slots.len() {
                if to != from {
                    self.deliver(to, &frame);
                }
            }
        }
    }

    fn old_frame(&self, from: usize, back: u8) -> Option<[u8; FRAME_LEN]> {
        let history = &self.slots[from].history;
        if history.is_empty() {
            return None;
        }
        let back = usize::from(back) % history.len();
        history.get(history.len() - 1 - back).copied()
    }

    /// Hand a datagram to node `to`; returns whether it parsed. A node in its start hold
    /// drops it; a stalled one reads it when the stall ends.
    fn deliver(&mut self, to: usize, bytes: &[u8]) -> bool {
        let slot = &mut self.slots[to];
        if slot.node.is_none() || slot.hold != Hold::None {
            return false;
        }
        if slot.stall.is_some() {
            // The socket buffers a bounded number; beyond that, datagrams are lost.
            if slot.inbox.len() < INBOX {
                slot.inbox.push((bytes.to_vec(), self.now));
            }
            return false;
        }
        self.deliver_at(to, bytes, self.at(to))
    }

    /// [`Self::deliver`] with the core's `now` read at `at`.
    fn deliver_at(&mut self, to: usize, bytes: &[u8], at: At) -> bool {
        let now = at.local();
        let slot = &mut self.slots[to];
        let Some(node) = slot.node.as_mut() else {
            return false;
        };
        let before = Snapshot::of(node);
        let stats_before = node.stats();
        let parsed = wire::parse_datagram(bytes, CLUSTER);
        let result = node.handle_datagram(now, bytes);
        // Authentication is off here, so every rejection is the parser's.
        assert_eq!(
            result,
            parsed.map(|_| ()).map_err(DatagramError::Malformed),
            "parse outcome"
        );
        self.outcome.frames_delivered += 1;
        if self.trace {
            match &parsed {
                Ok(f) => eprintln!(
                    "{:>12}   {} <- {} {:?} {:?} vote {}/{}/{} round {} acc {} epoch {} echo {} inc {} seq {} -> {:?}",
                    self.now, slot.id, f.sender, f.state, f.flags, f.vote.leader, f.vote.zxid,
                    f.vote.peer_epoch, f.round, f.accepted_epoch, f.epoch, f.echo,
                    f.incarnation, f.sequence, result
                ),
                Err(e) => eprintln!("{:>12}   {} <- rejected {e:?}", self.now, slot.id),
            }
        }
        match parsed {
            Ok(frame) => {
                let stamp = self.slots[to]
                    .node
                    .as_ref()
                    .and_then(|node| node.echo_stamp(frame.echo));
                self.checker.received(to, &frame, stamp);
                self.after_input_at(to, Input::Other, at);
                true
            }
            Err(err) => {
                self.outcome.frames_rejected += 1;
                let node = slot.node.as_mut().expect("present");
                assert_eq!(
                    Snapshot::of(node),
                    before,
                    "a rejected datagram changed state"
                );
                let stats = node.stats();
                let mut expected = stats_before;
                if err == wire::Error::OtherCluster {
                    expected.other_cluster += 1;
                } else {
                    expected.malformed += 1;
                }
                assert_eq!(stats, expected, "counters after a rejected datagram");
                assert_eq!(
                    node.poll_output(),
                    None,
                    "a rejected datagram produced output"
                );
                false
            }
        }
    }

    // ----- invariants -----------------------------------------------------------------

    /// Drain node `i`'s outputs, act on them and check the invariants after one input.
    fn after_input(&mut self, i: usize, input: Input) {
        self.after_input_at(i, input, self.at(i));
    }

    /// [`Self::after_input`] for an input handled with the core's `now` read at `at`.
    fn after_input_at(&mut self, i: usize, input: Input, at: At) {
        let node = self.slots[i]
            .node
            .as_mut()
            .expect("after_input on a live node");
        let outputs = invariants::drain(node).unwrap_or_else(|v| panic!("{v}"));
        for output in &outputs {
            let node = self.slots[i].node.as_ref().expect("live");
            if self.trace {
                trace_output(self.now, at, node, output);
            }
            self.checker
                .output(i, node, output, at)
                .unwrap_or_else(|v| panic!("{v}"));
            let slot = &mut self.slots[i];
            match output {
                Output::Persist(epochs) => slot.disk = *epochs,
                Output::Transmit(signed) => {
                    // The driver sends whatever the core hands it, stopped or not.
                    if slot.outbox.len() >= 4 * HISTORY {
                        slot.outbox.pop_front();
                    }
                    slot.outbox.push_back(signed.bytes);
                    if slot.history.len() >= HISTORY {
                        slot.history.pop_front();
                    }
                    slot.history.push_back(signed.bytes);
                }
                Output::Event(_) => {}
            }
        }
        let node = self.slots[i].node.as_ref().expect("live");
        self.checker
            .after_input(i, node, input, at)
            .unwrap_or_else(|v| panic!("{v}"));
    }

    fn check_all(&mut self) {
        if self.honest {
            self.checker
                .check_exclusive(self.now)
                .unwrap_or_else(|v| panic!("{v}"));
        }
        for slot in &self.slots {
            if let Some(node) = slot.node.as_ref() {
                assert_eq!(node.incarnation(), slot.incarnation);
            }
        }
    }
}

/// `VOTECAST_FUZZ_TRACE`: one line per event and per frame sent.
fn trace_output(now: u64, at: At, node: &Node, output: &Output) {
    let id = node.id();
    match output {
        Output::Event(Event::StateChanged(change)) => eprintln!(
            "{now:>12}   node {id} (local {:?}): {change:?}, valid until {:?}",
            at.local(),
            node.valid_until()
        ),
        Output::Transmit(signed) => {
            let f = signed.repr;
            eprintln!(
                "{now:>12}   {id} sends {:?} {:?} vote {}/{}/{} round {} acc {} epoch {} echo {}",
                f.state,
                f.flags,
                f.vote.leader,
                f.vote.zxid,
                f.vote.peer_epoch,
                f.round,
                f.accepted_epoch,
                f.epoch,
                f.echo
            );
        }
        _ => {}
    }
}

/// What a rejected datagram must leave untouched.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    state: ServerState,
    leader: Option<u64>,
    epoch: Option<u64>,
    round: u64,
    epochs: Epochs,
    deadline: Option<Instant>,
    valid_until: Option<Instant>,
    proposal: Option<Vote>,
}

impl Snapshot {
    fn of(node: &Node) -> Snapshot {
        Snapshot {
            state: node.state(),
            leader: node.leader(),
            epoch: node.epoch(),
            round: node.round(),
            epochs: node.epochs(),
            deadline: node.poll_timeout(),
            valid_until: node.valid_until(),
            proposal: node.proposal(),
        }
    }
}
