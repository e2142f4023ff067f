//! Helpers for the unit tests of the election modules: nodes, frames from other voters,
//! and draining outputs.

use std::vec::Vec;

use super::node::Role;
use super::{Config, Epochs, Frame, Instant, Node, Output, ServerState, Vote};
use crate::wire::{Flags, Repr};

/// Node `id` of a cluster of `voters`, incarnation 1, started at time zero; its first
/// outputs are still queued.
pub(super) fn started(id: u64, voters: &[u64]) -> Node {
    let mut node = Node::new(Config::new(id, voters).unwrap(), Epochs::default(), 1).unwrap();
    node.start(Instant::ZERO);
    node
}

/// Node 1 of three, following 3 after the election of round 1 (2 and 3 voted for 3), its
/// outputs drained. Returns the node and the leader.
pub(super) fn follower() -> (Node, Sender) {
    let mut node = started(1, &[1, 2, 3]);
    let leader = follow_three(&mut node);
    (node, leader)
}

/// Round 1 for `node`, node 1 of three and started at time zero: 3 and 2 vote for 3, so
/// it follows 3; its outputs drained. Returns the leader.
pub(super) fn follow_three(node: &mut Node) -> Sender {
    let mut leader = Sender::new(3);
    let mut two = Sender::new(2);
    node.handle_frame(
        Instant::ZERO,
        &leader.frame(ServerState::Looking, vote(3, 0, 0), 1),
    );
    node.handle_frame(
        Instant::ZERO,
        &two.frame(ServerState::Looking, vote(3, 0, 0), 1),
    );
    assert!(matches!(node.role, Role::Following(_)));
    drain(node);
    leader
}

/// [`follower`], then node 2's FOLLOWING frame at 5 ms: 2 voted LOOKING in the
/// election, and this shows it is no longer. Returns the node, the leader and 2.
pub(super) fn follower_none_looking() -> (Node, Sender, Sender) {
    let (mut node, leader) = follower();
    let mut two = Sender::new(2);
    two.sequence_from(1);
    let following = two.frame(ServerState::Following, vote(3, 0, 0), 1);
    node.handle_frame(Instant::from_millis(5), &following);
    (node, leader, two)
}

/// Every queued output, frames included.
pub(super) fn drain(node: &mut Node) -> Vec<Output> {
    core::iter::from_fn(|| node.poll_output()).collect()
}

/// The frames among the queued outputs.
pub(super) fn frames(node: &mut Node) -> Vec<Frame> {
    drain(node)
        .into_iter()
        .filter_map(|o| match o {
            Output::Transmit(frame) => Some(frame),
            _ => None,
        })
        .collect()
}

pub(super) fn vote(leader: u64, zxid: u64, peer_epoch: u64) -> Vote {
    Vote {
        leader,
        zxid,
        peer_epoch,
        ineligible: false,
    }
}

/// Another server's frames, numbered in order.
pub(super) struct Sender {
    pub(super) id: u64,
    pub(super) incarnation: u32,
    sequence: u64,
}

impl Sender {
    pub(super) fn new(id: u64) -> Sender {
        Sender {
            id,
            incarnation: 1,
            sequence: 0,
        }
    }

    /// Continue numbering after `sequence` (a sender whose earlier frames we skip).
    pub(super) fn sequence_from(&mut self, sequence: u64) {
        self.sequence = sequence;
    }

    /// Its next frame: `state`, `vote` in `round`, no epochs, flags or echo.
    pub(super) fn frame(&mut self, state: ServerState, vote: Vote, round: u64) -> Repr {
        self.sequence += 1;
        Repr {
            state,
            flags: Flags::empty(),
            key_id: 0,
            cluster: 0,
            sender: self.id,
            incarnation: self.incarnation,
            sequence: self.sequence,
            vote,
            round,
            accepted_epoch: 0,
            epoch: 0,
            echo: 0,
            auth_tag: [0; 16],
        }
    }
}
