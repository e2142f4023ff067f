//! One focused test per FastLeaderElection rule, driving a single [`Node`] by hand.
//!
//! Every test builds frames as if they came from peers, feeds them at explicit instants,
//! and checks what the node emits (`Output::Transmit`, events, persistence requests, in
//! order), its proposal, round, state and next deadline. Each test cites the rule it
//! checks: ZooKeeper 3.6+ `FastLeaderElection.lookForLeader` (and its `WorkerReceiver`,
//! `totalOrderPredicate`, `checkLeader`, `validVoter`) or the module docs of
//! `votecast_core::election` for the parts ZooKeeper leaves to Zab (epochs, leases).
//!
//! All nodes use `Config::new` defaults: tick 50 ms, finalize wait 50 ms, notification
//! backoff 50 ms .. 2 s, sync limit 6 (sync timeout 300 ms), init limit 10.
//!
//! This module owns the helpers that build peer frames and drain a node's outputs; the
//! tests are grouped by topic:
//!
//! - `election`: rounds, the vote order, quorum and finalize wait, the decision, joining
//!   an established ensemble;
//! - `leadership`: the leadership phase after the decision: epochs and leases;
//! - `validation`: which frames count: non-voters and observers, per-sender order, our
//!   own looped-back frames, malformed datagrams.
//!
//! [`Node`]: votecast_core::election::Node

mod election;
mod leadership;
mod validation;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use votecast_core::election::{
    Config, Epochs, Event, Instant, Node, Output, ServerState, StateChange, Vote,
};
use votecast_core::wire::{Flags, Repr};

use ServerState::Looking;

/// Sequence numbers for peer frames. One counter for the whole test binary: it only ever
/// grows, so every sender's frames advance within each test (per-sender FIFO), whatever
/// order the tests run in.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

fn t(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn us(micros: u64) -> Duration {
    Duration::from_micros(micros)
}

fn vote(leader: u64, zxid: u64, peer_epoch: u64) -> Vote {
    Vote {
        leader,
        zxid,
        peer_epoch,
        ineligible: false,
    }
}

/// A frame from `sender` (incarnation 1, next sequence number), cluster 0, no flags and
/// no leadership fields.
fn frame(sender: u64, state: ServerState, vote: Vote, round: u64) -> Repr {
    Repr {
        state,
        flags: Flags::empty(),
        key_id: 0,
        cluster: 0,
        sender,
        incarnation: 1,
        sequence: SEQUENCE.fetch_add(1, Ordering::Relaxed),
        vote,
        round,
        accepted_epoch: 0,
        epoch: 0,
        echo: 0,
        auth_tag: [0; 16],
    }
}

fn looking(sender: u64, vote: Vote, round: u64) -> Repr {
    frame(sender, Looking, vote, round)
}

fn new_node(id: u64, voters: &[u64], epochs: Epochs) -> Node {
    Node::new(Config::new(id, voters).unwrap(), epochs, 1).unwrap()
}

/// A node started at `now` with default epochs and zxid 0; its first outputs are drained.
fn started(id: u64, voters: &[u64], now: Instant) -> Node {
    let mut node = new_node(id, voters, Epochs::default());
    node.start(now);
    outputs(&mut node);
    node
}

/// Everything the node has to say, in order.
fn outputs(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

fn feed(node: &mut Node, now: Instant, frame: &Repr) -> Vec<Output> {
    node.handle_frame(now, frame);
    outputs(node)
}

fn timeout(node: &mut Node, now: Instant) -> Vec<Output> {
    node.handle_timeout(now);
    outputs(node)
}

fn transmits(outputs: &[Output]) -> Vec<Repr> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(f) => Some(f.repr),
            _ => None,
        })
        .collect()
}

/// The single frame of `outputs`, which must hold nothing else.
fn only_transmit(outputs: &[Output]) -> Repr {
    match outputs {
        [Output::Transmit(f)] => f.repr,
        other => panic!("expected exactly one transmit, got {other:?}"),
    }
}

fn events(outputs: &[Output]) -> Vec<StateChange> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(Event::StateChanged(c)) => Some(*c),
            _ => None,
        })
        .collect()
}

fn persists(outputs: &[Output]) -> Vec<Epochs> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Persist(e) => Some(*e),
            _ => None,
        })
        .collect()
}

/// Position of the first output matching `pred`.
fn position(outputs: &[Output], pred: impl Fn(&Output) -> bool) -> usize {
    outputs
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no such output in {outputs:?}"))
}

/// Let a LOOKING node that hears nothing back off until `until`, so that its notification
/// timer (then 800 ms) can no longer be mistaken for the 50 ms finalize timer: from a
/// start at 0 the re-broadcasts happen at 50, 150, 350 and 750 ms, the next at 1550 ms.
fn quiet_until(node: &mut Node, until: Instant) {
    while let Some(deadline) = node.poll_timeout().filter(|d| *d <= until) {
        let out = timeout(node, deadline);
        assert_eq!(transmits(&out).len(), 1, "a re-broadcast at {deadline:?}");
    }
}

/// Drive a 3-voter node 1 (started at 0) to FOLLOWING leader 3 in round 1: 3 and 2 both
/// vote (3, 0, 0), so every voter agrees and it decides at once. Returns the decision's
/// outputs.
fn follow_three(node: &mut Node, now: Instant) -> Vec<Output> {
    follow_three_with(node, now, vote(3, 0, 0))
}

/// As [`follow_three`], with 3 and 2 voting for `v` (whose leader must be 3).
fn follow_three_with(node: &mut Node, now: Instant, v: Vote) -> Vec<Output> {
    let mut out = feed(node, now, &looking(3, v, 1));
    out.extend(feed(node, now, &looking(2, v, 1)));
    out
}
