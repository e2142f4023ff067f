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

mod input;
pub use input::*;
use votecast_core::wire::{self, Flags, Packet, Repr, Vote, FRAME_LEN, NO_LEADER};

/// The cluster id of every node under test.
pub const CLUSTER: u32 = 0x0f0f_0001;
/// Most steps taken from one scenario.
pub const MAX_STEPS: usize = 256;
/// Most nodes under test.
pub const MAX_NODES: usize = 3;
/// Frames of each node kept for replays.
const HISTORY: usize = 8;
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
}

/// What the harness observed, for reports and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub steps: usize,
    pub frames_delivered: u64,
    pub frames_rejected: u64,
    pub leaderships: u64,
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
    let mut outcome = Outcome::default();
    for step in scenario.steps.iter().take(MAX_STEPS) {
        h.step(step, &mut outcome);
        h.check_all();
        outcome.steps += 1;
    }
    outcome.leaderships = h.checker.leaderships();
    outcome
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

    /// A new process: next incarnation (bumped on "disk" first, as the driver does).
    fn construct(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.incarnation = slot.incarnation.wrapping_add(1).max(1);
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
        self.checker.process_started(i);
    }

    fn start(&mut self, i: usize) {
        let now = self.local(i);
        let slot = &mut self.slots[i];
        let Some(node) = slot.node.as_mut() else {
            return;
        };
        if slot.started {
            return;
        }
        node.start(now);
        slot.started = true;
        self.after_input(i, Input::Other);
    }

    fn crash(&mut self, i: usize) {
        // A crashed leader's application may believe in its lease until it runs out.
        if self.slots[i].node.is_some() {
            self.checker.crashed(i, self.now);
        }
        self.slots[i].node = None;
        self.slots[i].started = false;
        self.slots[i].stopped = false;
    }

    fn shutdown(&mut self, i: usize) {
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
    fn step(&mut self, step: &Step, outcome: &mut Outcome) {
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
                            self.broadcast(from, outcome);
                        }
                    }
                    let next = (0..self.slots.len())
                        .filter_map(|i| {
                            let slot = &self.slots[i];
                            let deadline = slot.node.as_ref()?.poll_timeout()?;
                            Some(deadline.as_micros().saturating_sub(slot.offset))
                        })
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
                self.broadcast(from, outcome);
            }
            Step::Lose(n) => {
                let from = self.index(*n);
                self.slots[from].outbox.clear();
            }
            Step::Replay { from, back, to } => {
                let from = self.index(*from);
                let to = self.index(*to);
                if let Some(frame) = self.old_frame(from, *back) {
                    self.deliver(to, &frame, outcome);
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
                    let accepted = self.deliver(to, &frame, outcome);
                    // CRC-32 detects every error confined to one byte.
                    assert!(*xor == 0 || !accepted, "a corrupted frame was accepted");
                }
            }
            Step::Forge { to, frame } => {
                let to = self.index(*to);
                let bytes = self.forge(to, frame);
                self.deliver(to, &bytes, outcome);
            }
            Step::Raw { to, bytes } => {
                let to = self.index(*to);
                let forged_voter = wire::parse_datagram(bytes, CLUSTER).is_ok_and(|r| {
                    self.is_voter(r.sender) || self.slots.iter().any(|s| s.id == r.sender)
                });
                if !(self.honest && forged_voter) {
                    self.deliver(to, bytes, outcome);
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
        let now = self.local(i);
        if let Some(node) = self.slots[i].node.as_mut() {
            node.handle_timeout(now);
            self.after_input(i, Input::Timeout);
        }
    }

    fn broadcast(&mut self, from: usize, outcome: &mut Outcome) {
        let frames: Vec<_> = self.slots[from].outbox.drain(..).collect();
        for frame in frames {
            for to in 0..self.slots.len() {
                if to != from {
                    self.deliver(to, &frame, outcome);
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

    fn resolve(&self, i: usize, num: Num) -> u64 {
        let node = self.slots[i].node.as_ref();
        match num {
            Num::Zero => 0,
            Num::Small(x) => u64::from(x),
            Num::Max => u64::MAX,
            Num::Raw(x) => x,
            Num::Rel(base, delta) => {
                let base = node.map_or(0, |n| match base {
                    Base::Round => n.round(),
                    Base::AcceptedEpoch => n.epochs().accepted_epoch,
                    Base::CurrentEpoch => n.epochs().current_epoch,
                    Base::Zxid => n.zxid(),
                    Base::ReportedEpoch => n.epoch().unwrap_or(0),
                });
                base.wrapping_add_signed(i64::from(delta))
            }
        }
    }

    fn who(&self, receiver: usize, who: Who) -> u64 {
        match who {
            Who::Voter(x) => self.voters[usize::from(x) % self.voters.len()],
            Who::Receiver => self.slots[receiver].id,
            Who::Node(x) => self.slots[self.index(x)].id,
            Who::Stranger(x) => STRANGER_BASE + u64::from(x),
            Who::NoLeader => NO_LEADER,
            Who::Raw(x) => x,
        }
    }

    /// A correctly framed datagram from `spec`. In an honest scenario a voter's (or a node
    /// under test's) id is replaced by a stranger's.
    fn forge(&mut self, to: usize, spec: &FrameSpec) -> [u8; FRAME_LEN] {
        let mut sender = self.who(to, spec.sender);
        if self.honest && (self.is_voter(sender) || self.slots.iter().any(|s| s.id == sender)) {
            // Honest scenario: whoever forges is a stranger.
            sender = STRANGER_BASE + sender % 50;
        }
        let sequence = match spec.sequence {
            Seq::Next => {
                self.next_forged_sequence += 1;
                self.next_forged_sequence
            }
            Seq::Raw(x) => x,
        };
        let local = self.local(to).as_micros();
        // Past and future stamps are encoded under the receiver's nonce, as its own echoes
        // would be, so that they decode to stamps near its clock.
        let stamp = |micros: u64| {
            let stamp = Instant::from_micros(micros);
            self.slots[to]
                .node
                .as_ref()
                .map_or(micros.saturating_add(1), |node| node.stamp_echo(stamp))
        };
        let echo = match spec.echo {
            Echo::Zero => 0,
            Echo::Past(x) => stamp(local.saturating_sub(u64::from(x) * 64)),
            Echo::Future(x) => stamp(local.saturating_add(u64::from(x))),
            Echo::Raw(x) => x,
        };
        let repr = Repr {
            state: ServerState::from_code(spec.state % 4).expect("codes 0..4 exist"),
            flags: Flags::from_bits_truncate(spec.flags),
            key_id: spec.key_id,
            cluster: if spec.other_cluster {
                CLUSTER ^ 1
            } else {
                CLUSTER
            },
            sender,
            incarnation: self.resolve(to, spec.incarnation) as u32,
            sequence,
            vote: Vote {
                leader: self.who(to, spec.leader),
                zxid: self.resolve(to, spec.zxid),
                peer_epoch: self.resolve(to, spec.peer_epoch),
                ineligible: false,
            },
            round: self.resolve(to, spec.round),
            accepted_epoch: self.resolve(to, spec.accepted_epoch),
            epoch: self.resolve(to, spec.epoch),
            echo,
            auth_tag: [spec.tag; 16],
        };
        let mut frame = [0u8; FRAME_LEN];
        let mut packet = Packet::new_unchecked(&mut frame[..]);
        repr.emit(&mut packet);
        // Reserved flag bits go out as well: receivers must ignore them.
        packet.set_flags(spec.flags);
        packet.fill_checksum();
        frame
    }

    /// Hand a datagram to node `to`; returns whether it parsed.
    fn deliver(&mut self, to: usize, bytes: &[u8], outcome: &mut Outcome) -> bool {
        let now = self.local(to);
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
        outcome.frames_delivered += 1;
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
                self.after_input(to, Input::Other);
                true
            }
            Err(err) => {
                outcome.frames_rejected += 1;
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
        let at = self.at(i);
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
