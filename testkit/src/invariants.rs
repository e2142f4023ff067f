//! The election invariants, in one place for every harness that drives [`Node`]s: the
//! simulator ([`crate::sim`]) and the `core_sequence` fuzz harness ([`crate::fuzz`]).
//!
//! A harness owns the nodes and the network; after every input it drains the node's
//! outputs, hands each to [`Checker::output`], then calls [`Checker::after_input`]. It
//! tells the checker about process life ([`Checker::process_started`],
//! [`Checker::crashed`], [`Checker::stopped`]) and about the frames a node accepted
//! ([`Checker::received`]). Each check returns the first rule broken as an error; the
//! fuzz harness panics on it, the simulator keeps the first one with its time.
//!
//! Rules for every node, whatever it is sent:
//! - `StateChanged` events chain (`previous` is the last reported state) and are
//!   self-consistent: no leader or epoch while LOOKING, both otherwise; a LEADING node
//!   names itself; voters never OBSERVE, observers never FOLLOW or LEAD; nobody follows a
//!   non-voter;
//! - the queries (`state`, `leader`, `epoch`, `valid_until`) agree with the last event;
//! - after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now`; a stopped
//!   node has no deadline;
//! - a LEADING node whose timers are all in the future holds a running lease, and has
//!   persisted its epoch as current;
//! - LEADING with epoch E needs evidence in the frames the node accepted: quorum − 1 other
//!   voters sent FOLLOWING frames for it acknowledging E, and (while its timers are
//!   current) echoed a stamp whose lease has not run out;
//! - a node never leads while it has heard another board with its id;
//! - a node's successive leaderships have strictly increasing epochs, across restarts;
//! - persisted epochs never go backwards and `current_epoch <= accepted_epoch`;
//! - frames a node transmits carry its id, cluster and incarnation, strictly increasing
//!   sequence numbers, a state its role may send, and round-trip through parse.
//!
//! Cluster-wide rules, checked when nobody forges frames in a voter's name (`cluster_wide`):
//! - at no real time are two nodes *published* LEADING: after every input the harness's
//!   driver publishes the node's state with its `valid_until` converted to real time (a
//!   driver reads the clock afresh to publish and never publishes LEADING once the lease
//!   ran out, whatever `now` the core was given). An application may hold leadership until
//!   the end of the last validity it saw, even if it missed a later event, so a published
//!   validity stays in force until it runs out — through crashes, stalls and later
//!   non-LEADING reports — unless the harness reports that the application acknowledged
//!   the end ([`Checker::end_acknowledged`]: the driver published the step-down and waited
//!   for the hook before releasing the followers). FLE with leases: a new leader waits out
//!   the old one's lease;
//! - each new leader's epoch is greater than every earlier leader's;
//! - no node reports a duplicate of its id (only a forged frame can look like a twin).

use std::collections::{HashMap, HashSet};

use votecast_core::election::{Epochs, Event, Instant, Node, Output, ServerState, StateChange};
use votecast_core::wire::{self, Flags, Repr, FRAME_LEN};

use crate::clock::LocalClock;

/// More outputs than this from one input means `poll_output` never runs dry.
pub const MAX_OUTPUTS_PER_INPUT: usize = 64;

/// Which input the node just handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Timeout,
    Other,
}

/// When an input happened: the harness's global time at which the core's `now` was read,
/// the node's clock, and the global time at which the driver publishes the outcome (later
/// than `global_us` when the event loop stalled and handled the input with a stale `now`).
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub global_us: u64,
    pub clock: LocalClock,
    pub real_us: u64,
}

impl At {
    /// An input handled with a fresh `now` and published at once.
    pub fn fresh(global_us: u64, clock: LocalClock) -> At {
        At {
            global_us,
            clock,
            real_us: global_us,
        }
    }

    /// The core's `now`.
    pub fn local(&self) -> Instant {
        self.clock.local(self.global_us)
    }
}

pub type Violation = String;

/// What the checker remembers of one node (across its processes where noted).
#[derive(Debug, Default)]
struct Watch {
    id: u64,
    /// The state reported by the last event of this process.
    reported: Option<ServerState>,
    /// The last persisted epochs (across processes: the disk).
    disk: Epochs,
    last_sequence: u64,
    /// FOLLOWING frames for this node accepted by this process: (sender, epoch) pairs, and
    /// the latest leader stamp echoed per sender (decoded under this process's nonce).
    acked: HashSet<(u64, u64)>,
    echoes: HashMap<u64, Instant>,
    /// Epoch of the last leadership of this node (any process).
    last_led_epoch: Option<u64>,
    /// Global time until which this node is published LEADING (the latest end of every
    /// validity published by any of its processes, until acknowledged as ended).
    published_until: Option<u64>,
    stopped: bool,
    /// A RESIGN frame was sent since the last [`Checker::process_started`] or
    /// [`Checker::clear_resigned`].
    resigned: bool,
}

pub struct Checker {
    cluster_wide: bool,
    /// A node lost its epochs while no reliable epoch floor was in force (wall clocks
    /// unset or not agreeing): from then on epochs may repeat, as README "Limits" says,
    /// and epoch order is no longer checked (leases still are).
    epochs_may_repeat: bool,
    nodes: Vec<Watch>,
    /// Highest epoch any node led with.
    max_leader_epoch: u64,
    leaderships: u64,
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), Violation> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

impl Checker {
    pub fn new(cluster_wide: bool) -> Checker {
        Checker {
            cluster_wide,
            nodes: Vec::new(),
            max_leader_epoch: 0,
            leaderships: 0,
            epochs_may_repeat: false,
        }
    }

    /// Watch one more node; its index is the number of nodes watched before.
    pub fn watch(&mut self, id: u64, disk: Epochs) -> usize {
        self.nodes.push(Watch {
            id,
            disk,
            ..Watch::default()
        });
        self.nodes.len() - 1
    }

    /// LEADING reports so far.
    pub fn leaderships(&self) -> u64 {
        self.leaderships
    }

    /// Highest epoch any node led with.
    pub fn max_leader_epoch(&self) -> u64 {
        self.max_leader_epoch
    }

    /// Whether node `i` sent a RESIGN frame since it started or since [`Self::clear_resigned`].
    pub fn resigned(&self, i: usize) -> bool {
        self.nodes[i].resigned
    }

    pub fn clear_resigned(&mut self, i: usize) {
        self.nodes[i].resigned = false;
    }

    /// A new process of node `i` was constructed: it reports LOOKING and knows nothing.
    pub fn process_started(&mut self, i: usize) {
        let w = &mut self.nodes[i];
        w.reported = Some(ServerState::Looking);
        w.last_sequence = 0;
        w.acked.clear();
        w.echoes.clear();
        w.stopped = false;
        w.resigned = false;
    }

    /// Node `i` lost its process at global time `now_us`; what it published stays in force.
    pub fn crashed(&mut self, i: usize, now_us: u64) {
        let w = &mut self.nodes[i];
        w.published_until = w.published_until.filter(|&until| until > now_us);
        w.reported = None;
        w.stopped = false;
    }

    /// Node `i` reports anything but LEADING and its application acknowledged the end of
    /// its leadership (the driver published it and waited for the step-down hook): what it
    /// published before no longer counts.
    pub fn end_acknowledged(&mut self, i: usize) -> Result<(), Violation> {
        let w = &mut self.nodes[i];
        let id = w.id;
        check(w.reported != Some(ServerState::Leading), || {
            format!("node {id}: end of leadership acknowledged while LEADING")
        })?;
        w.published_until = None;
        Ok(())
    }

    /// Global time until which node `i` is published LEADING (None: not, or over).
    pub fn published_until(&self, i: usize, now_us: u64) -> Option<u64> {
        self.nodes[i]
            .published_until
            .filter(|&until| until > now_us)
    }

    /// Node `i`'s persisted epochs were lost (a wiped data dir, or none): they restart
    /// from `disk`.
    pub fn wiped(&mut self, i: usize, disk: Epochs) {
        self.nodes[i].disk = disk;
    }

    /// A node lost its epochs (wiped, memory only) while the epoch floors could not cover
    /// it (see `epochs_may_repeat`).
    pub fn epochs_may_repeat(&mut self) {
        self.epochs_may_repeat = true;
    }

    /// Node `i` was shut down and must stay inert.
    pub fn stopped(&mut self, i: usize) {
        self.nodes[i].stopped = true;
    }

    /// Node `i` accepted `frame`: a FOLLOWING frame for it counts as evidence. `stamp` is
    /// the frame's echo decoded by the receiving node (`Node::echo_stamp`): stamps are
    /// offset by a per-process nonce, so only the node can read them.
    pub fn received(&mut self, i: usize, frame: &Repr, stamp: Option<Instant>) {
        let w = &mut self.nodes[i];
        if frame.state == ServerState::Following
            && frame.vote.leader == w.id
            && frame.sender != w.id
        {
            w.acked.insert((frame.sender, frame.epoch));
            if let Some(stamp) = stamp {
                let echo = w.echoes.entry(frame.sender).or_insert(stamp);
                *echo = (*echo).max(stamp);
            }
        }
    }

    /// One output of node `i`, as drained after an input.
    pub fn output(
        &mut self,
        i: usize,
        node: &Node,
        output: &Output,
        at: At,
    ) -> Result<(), Violation> {
        let id = self.nodes[i].id;
        match output {
            Output::Event(Event::DuplicateId(sighting)) => {
                check(!self.cluster_wide, || {
                    format!("node {id}: duplicate id {sighting:?} though nobody forges frames")
                })?;
                check(sighting.quarantine_until > at.local(), || {
                    format!("node {id}: quarantine {sighting:?} already over")
                })?;
                check(
                    node.duplicate_id()
                        .is_some_and(|d| d.quarantine_until >= sighting.quarantine_until),
                    || format!("node {id}: duplicate_id() does not match {sighting:?}"),
                )
            }
            Output::Event(Event::StateChanged(change)) => self.state_changed(i, node, change, at),
            Output::Event(Event::Restarted(_)) => Ok(()),
            Output::Persist(epochs) => {
                let w = &mut self.nodes[i];
                let disk = w.disk;
                check(epochs.accepted_epoch >= disk.accepted_epoch, || {
                    format!("node {id}: accepted epoch went back: {disk:?} -> {epochs:?}")
                })?;
                check(epochs.current_epoch >= disk.current_epoch, || {
                    format!("node {id}: current epoch went back: {disk:?} -> {epochs:?}")
                })?;
                check(epochs.current_epoch <= epochs.accepted_epoch, || {
                    format!("node {id}: current epoch above accepted: {epochs:?}")
                })?;
                w.disk = *epochs;
                Ok(())
            }
            Output::Transmit(signed) => self.transmitted(i, node, &signed.repr, &signed.bytes),
        }
    }

    fn state_changed(
        &mut self,
        i: usize,
        node: &Node,
        change: &StateChange,
        at: At,
    ) -> Result<(), Violation> {
        let w = &mut self.nodes[i];
        let id = w.id;
        let config = node.config();
        check_change(id, config.is_voter(id), w.reported, change)?;
        check(change.leader.is_none_or(|l| config.is_voter(l)), || {
            format!("node {id} follows non-voter {:?}", change.leader)
        })?;
        w.reported = Some(change.state);
        if change.state != ServerState::Leading {
            // What it published stays in force until it runs out or the end is
            // acknowledged: an application may miss this event.
            return Ok(());
        }
        // A report whose lease already ended when the driver publishes (the loop stalled
        // and handled old frames with a stale `now`) is never published: the driver
        // reads the clock afresh. Epoch order is a promise about published leaderships.
        let published = node
            .valid_until()
            .is_some_and(|until| at.clock.real_at(until, at.real_us) > at.real_us);
        if !published {
            return Ok(());
        }
        let epoch = change.epoch.unwrap_or(0);
        if let Some(last) = w.last_led_epoch.filter(|_| !self.epochs_may_repeat) {
            check(epoch > last, || {
                format!("node {id} leads epoch {epoch} after leading epoch {last}")
            })?;
        }
        w.last_led_epoch = Some(epoch);
        self.leaderships += 1;
        let previous = self.max_leader_epoch;
        self.max_leader_epoch = previous.max(epoch);
        if self.cluster_wide && !self.epochs_may_repeat {
            check(epoch > previous, || {
                format!(
                    "leader {id} reports epoch {epoch}, not above an earlier leader's {previous}"
                )
            })?;
        }
        Ok(())
    }

    fn transmitted(
        &mut self,
        i: usize,
        node: &Node,
        frame: &Repr,
        bytes: &[u8; FRAME_LEN],
    ) -> Result<(), Violation> {
        let w = &mut self.nodes[i];
        let id = w.id;
        let config = node.config();
        check(frame.sender == id, || {
            format!("node {id} sends as {}", frame.sender)
        })?;
        check(frame.cluster == config.cluster, || {
            format!("node {id} sends for cluster {:#x}", frame.cluster)
        })?;
        check(frame.incarnation == node.incarnation(), || {
            format!("node {id} sends incarnation {}", frame.incarnation)
        })?;
        check(frame.sequence > w.last_sequence, || {
            format!(
                "node {id}: sequence {} after {}",
                frame.sequence, w.last_sequence
            )
        })?;
        w.last_sequence = frame.sequence;
        let allowed = if config.is_voter(id) {
            frame.state != ServerState::Observing
        } else {
            matches!(frame.state, ServerState::Looking | ServerState::Observing)
        };
        check(allowed, || {
            format!("node {id} sent a {} frame", frame.state)
        })?;
        if frame.flags.contains(Flags::RESIGN) {
            w.resigned = true;
        }
        // The bytes are the frame: exactly its encoding when unsigned, the same fields
        // with a key id and tag when signed.
        let parsed = wire::parse_datagram(bytes, config.cluster)
            .map_err(|e| format!("node {id} sent bytes that do not parse: {e:?}"))?;
        let signed = parsed.key_id != 0;
        let unsigned = Repr {
            key_id: frame.key_id,
            auth_tag: frame.auth_tag,
            ..parsed
        };
        check(unsigned == *frame, || {
            format!("node {id}: sent bytes are not the frame: {parsed:?} vs {frame:?}")
        })?;
        if !signed {
            let mut emitted = [0u8; FRAME_LEN];
            check(
                wire::emit_datagram(frame, &mut emitted) == Ok(FRAME_LEN) && &emitted == bytes,
                || format!("node {id}: unsigned bytes are not the frame's encoding"),
            )?;
        }
        Ok(())
    }

    /// After node `i` handled one input and all its outputs went through [`Self::output`].
    pub fn after_input(
        &mut self,
        i: usize,
        node: &Node,
        input: Input,
        at: At,
    ) -> Result<(), Violation> {
        let now = at.local();
        let w = &self.nodes[i];
        let id = w.id;
        let state = node.state();
        if let Some(sighting) = node.duplicate_id() {
            check(state != ServerState::Leading, || {
                format!("node {id}: leads while another board has its id: {sighting:?}")
            })?;
        }
        check(Some(state) == w.reported, || {
            format!("node {id}: state() {state} vs events {:?}", w.reported)
        })?;
        if state == ServerState::Looking {
            check(
                node.leader().is_none() && node.epoch().is_none() && node.valid_until().is_none(),
                || format!("node {id}: LOOKING with a leader, epoch or lease"),
            )?;
        } else {
            check(node.leader().is_some() && node.epoch().is_some(), || {
                format!("node {id}: {state} without a leader or epoch")
            })?;
        }
        check(
            node.leader().is_none_or(|l| node.config().is_voter(l)),
            || format!("node {id} follows non-voter {:?}", node.leader()),
        )?;
        if input == Input::Timeout {
            if let Some(deadline) = node.poll_timeout() {
                check(deadline > now, || {
                    format!(
                        "node {id}: deadline {deadline:?} not after handling timeouts at {now:?}"
                    )
                })?;
            }
        }
        if w.stopped {
            check(state == ServerState::Looking, || {
                format!("node {id}: stopped but {state}")
            })?;
            check(node.poll_timeout().is_none(), || {
                format!("node {id}: stopped but has a deadline")
            })?;
        }
        if state == ServerState::Leading {
            self.check_leading(i, node, at)?;
        }
        if self.cluster_wide {
            self.check_exclusive(at.real_us)?;
        }
        Ok(())
    }

    /// A LEADING node: lease, persisted epoch, evidence; then its claim is extended.
    fn check_leading(&mut self, i: usize, node: &Node, at: At) -> Result<(), Violation> {
        let now = at.local();
        let config = node.config();
        let w = &mut self.nodes[i];
        let id = w.id;
        check(config.is_voter(id), || {
            format!("observer {id} reports LEADING")
        })?;
        let epoch = node.epoch().unwrap_or(0);
        check(node.epochs().current_epoch == epoch, || {
            format!("node {id}: leads epoch {epoch} without having persisted it as current")
        })?;
        let current = node.poll_timeout().is_none_or(|d| d > now);
        let until = node.valid_until();
        if current {
            check(until.is_some_and(|u| u > now), || {
                format!("node {id}: LEADING at {now:?} with lease until {until:?}")
            })?;
        }
        // Evidence: quorum - 1 other voters acknowledged this epoch, and echoed a stamp
        // whose lease runs past now.
        let lease = config.lease_duration();
        let acked: Vec<u64> = w
            .acked
            .iter()
            .filter(|&&(sender, e)| e == epoch && sender != id && config.is_voter(sender))
            .map(|&(sender, _)| sender)
            .collect();
        let supported = acked
            .iter()
            .filter(|s| w.echoes.get(s).is_some_and(|&stamp| stamp + lease > now))
            .count();
        let quorum = config.quorum();
        check(acked.len() + 1 >= quorum, || {
            format!("node {id}: LEADING epoch {epoch} with acknowledgements from {acked:?} only (quorum {quorum})")
        })?;
        if current {
            check(supported + 1 >= quorum, || {
                format!("node {id}: LEADING at {now:?} but only {supported} voters echoed a live stamp (quorum {quorum})")
            })?;
        }
        // Publication: the driver converts the lease end with a fresh clock reading and
        // publishes LEADING only while it is ahead; the application may hold leadership
        // until then.
        if let Some(until) = until {
            let until = at.clock.real_at(until, at.real_us);
            if until > at.real_us {
                let active = w.published_until.filter(|&c| c > at.real_us);
                w.published_until = Some(active.map_or(until, |c| c.max(until)));
            }
        }
        Ok(())
    }

    /// At most one node is published LEADING at global time `now_us` (a crashed process
    /// and its successor are the same node). Checked by [`Self::after_input`] when
    /// `cluster_wide`; harnesses that let time pass call it too.
    pub fn check_exclusive(&self, now_us: u64) -> Result<(), Violation> {
        let holders: Vec<(u64, u64)> = self
            .nodes
            .iter()
            .filter_map(|w| Some((w.id, w.published_until.filter(|&c| c > now_us)?)))
            .collect();
        check(holders.len() <= 1, || {
            format!("two nodes published LEADING at {now_us} us: (id, until) {holders:?}")
        })
    }
}

/// Drain a node's outputs (at most [`MAX_OUTPUTS_PER_INPUT`]).
pub fn drain(node: &mut Node) -> Result<Vec<Output>, Violation> {
    let mut outputs = Vec::new();
    while let Some(output) = node.poll_output() {
        outputs.push(output);
        check(outputs.len() <= MAX_OUTPUTS_PER_INPUT, || {
            format!("node {}: poll_output never runs dry", node.id())
        })?;
    }
    Ok(outputs)
}

/// A state change must follow the last one and be self-consistent.
fn check_change(
    id: u64,
    is_voter: bool,
    previous: Option<ServerState>,
    change: &StateChange,
) -> Result<(), Violation> {
    check(previous == Some(change.previous), || {
        format!("node {id}: events do not chain: {previous:?} then {change:?}")
    })?;
    let ok = match change.state {
        ServerState::Looking => {
            change.leader.is_none() && change.epoch.is_none() && change.election_time.is_none()
        }
        ServerState::Leading => {
            is_voter && change.leader == Some(id) && change.epoch.is_some_and(|e| e > 0)
        }
        ServerState::Following => {
            is_voter && change.leader.is_some_and(|l| l != id) && change.epoch.is_some()
        }
        ServerState::Observing => !is_voter && change.leader.is_some() && change.epoch.is_some(),
    };
    check(ok, || {
        let role = if is_voter { "voter" } else { "observer" };
        format!("{role} {id}: inconsistent state change {change:?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use votecast_core::election::Config;

    fn change(previous: ServerState, state: ServerState, leader: Option<u64>) -> StateChange {
        StateChange {
            previous,
            state,
            leader,
            epoch: leader.map(|_| 1),
            round: 1,
            election_time: None,
        }
    }

    #[test]
    fn state_changes_must_chain_and_name_the_right_leader() {
        use ServerState::*;
        let ok = change(Looking, Leading, Some(1));
        assert!(check_change(1, true, Some(Looking), &ok).is_ok());
        assert!(check_change(1, true, Some(Following), &ok).is_err());
        assert!(
            check_change(1, false, Some(Looking), &ok).is_err(),
            "observer leads"
        );
        let wrong = change(Looking, Leading, Some(2));
        assert!(check_change(1, true, Some(Looking), &wrong).is_err());
        let own = change(Looking, Following, Some(1));
        assert!(
            check_change(1, true, Some(Looking), &own).is_err(),
            "follows itself"
        );
        let observing = change(Looking, Observing, Some(1));
        assert!(check_change(4, true, Some(Looking), &observing).is_err());
        assert!(check_change(4, false, Some(Looking), &observing).is_ok());
    }

    #[test]
    fn two_published_validities_are_two_leaders_until_one_runs_out_or_is_acknowledged() {
        let mut checker = Checker::new(true);
        let a = checker.watch(1, Epochs::default());
        let b = checker.watch(2, Epochs::default());
        checker.nodes[a].published_until = Some(100);
        assert!(checker.check_exclusive(50).is_ok());
        checker.crashed(a, 50);
        checker.nodes[b].published_until = Some(200);
        assert!(
            checker.check_exclusive(99).is_err(),
            "the crashed leader's published validity runs"
        );
        assert!(checker.check_exclusive(100).is_ok(), "it ran out");
        checker.nodes[a].published_until = Some(150);
        checker.nodes[a].reported = Some(ServerState::Looking);
        assert!(
            checker.check_exclusive(120).is_err(),
            "a LOOKING report alone"
        );
        checker.end_acknowledged(a).unwrap();
        assert!(checker.check_exclusive(120).is_ok(), "acknowledged");
        checker.nodes[b].reported = Some(ServerState::Leading);
        assert!(checker.end_acknowledged(b).is_err(), "still LEADING");
    }

    #[test]
    fn persisted_epochs_never_go_back() {
        let mut checker = Checker::new(true);
        let config = Config::new(1, &[1, 2, 3]).unwrap();
        let node = Node::new(config, Epochs::default(), 1).unwrap();
        let i = checker.watch(1, Epochs::default());
        checker.process_started(i);
        let at = At::fresh(0, LocalClock::default());
        let up = Epochs {
            accepted_epoch: 2,
            accepted_leader: 1,
            current_epoch: 1,
        };
        assert!(checker.output(i, &node, &Output::Persist(up), at).is_ok());
        let back = Epochs {
            accepted_epoch: 1,
            ..up
        };
        assert!(checker
            .output(i, &node, &Output::Persist(back), at)
            .is_err());
        let above = Epochs {
            current_epoch: 3,
            ..up
        };
        assert!(checker
            .output(i, &node, &Output::Persist(above), at)
            .is_err());
    }
}
