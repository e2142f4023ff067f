//! A stepped-down leader's support for its successor, given with its RESIGN.
//!
//! During a graceful handover ([`Node::step_down`]) the followers elect a successor and
//! establish its epoch while the old leader's application is being told. The successor
//! then leads once a quorum promises it support, which cannot happen before the RESIGN:
//! every follower's promise (and the successor's own) runs to the old leader until then.
//! Without this module the successor's lease waits for a follower that heard the RESIGN
//! to echo its stamp: one frame more after the RESIGN.
//!
//! The old leader is a voter too, and it knows what no follower can: when its own
//! leadership ended. So while it waits, it follows the successor's LEADING frames as far
//! as a voter may without promising anything: it acknowledges the successor's epoch under
//! the epoch rule (accepting it durably first, as a follower does) and keeps the
//! successor's latest time stamp. Its RESIGN frame then is a FOLLOWING frame for the
//! successor that acknowledges that epoch and echoes that stamp, with RESIGN set. It
//! releases every promise made to the old leader as before, and it is the old leader's
//! own promise to the successor, made at the RESIGN, when its promise to itself ends like
//! every follower's. With its own promise free at the same frame, a successor in a
//! cluster of three holds a quorum's support and leads one frame after the RESIGN's send
//! instead of two.
//!
//! Safe like a follower's echo at the RESIGN (`Node::resume_support`): the promise is made
//! after the stamp was sent (the stamp is one the successor had sent before we read it),
//! and it is never broken: the old process is stopped after the RESIGN and supports no
//! one, and a later process of this node makes no promise for `sync_timeout` after it
//! starts, since it has accepted an epoch (see `Node::start`), so the promise holds
//! longer than the lease the successor builds on the stamp. The successor counts the echo
//! only if it decodes to one of its own stamps of its current term and comes with an
//! acknowledgement of its current epoch, as any echo. The acknowledgement is made only
//! after the epoch was accepted durably, so an epoch is still acknowledged for one leader
//! at most. Nodes that predate this take the frame for a plain RESIGN: the vote and state
//! of a RESIGN frame were never read.

use super::node::{Node, Role};
use super::time::Instant;
use crate::wire::{Flags, Repr, ServerState, Vote};

/// What a stepped-down leader knows of its successor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Successor {
    /// Not a leader that stepped down for a handover: nothing is watched.
    Unwatched,
    /// Stepped down from leading; no successor's LEADING frame was taken yet.
    Awaited,
    /// The successor's latest LEADING frame we may acknowledge.
    Seen(Support),
}

/// The support a RESIGN frame carries: a FOLLOWING frame's vote, acknowledged epoch and
/// echo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Support {
    pub(super) vote: Vote,
    /// The successor's proposed epoch, accepted (durably) before it is acknowledged.
    pub(super) epoch: u64,
    /// The successor reported the epoch established.
    pub(super) established: bool,
    /// The successor's latest time stamp, as it came.
    pub(super) echo: u64,
    /// The successor's process, as its frame named it.
    pub(super) incarnation: u32,
}

impl Successor {
    pub(super) fn is_watched(&self) -> bool {
        *self != Successor::Unwatched
    }

    pub(super) fn support(&self) -> Option<Support> {
        match self {
            Successor::Seen(support) => Some(*support),
            _ => None,
        }
    }
}

impl Node {
    /// A voter's frame while stepped down for a handover: keep the latest LEADING frame
    /// of a successor whose epoch we may acknowledge (accepting it durably first, as a
    /// follower would), and nothing else. No promise is made and nothing is sent here.
    pub(super) fn watch_successor(&mut self, frame: &Repr) {
        let timed = frame.echo != 0 && !frame.flags.contains(Flags::HANDOVER);
        if frame.state != ServerState::Leading
            || frame.vote.leader != frame.sender
            || frame.epoch == 0
            || !timed
        {
            return;
        }
        if !self.may_acknowledge(frame.epoch, frame.sender) {
            return;
        }
        self.successor = Successor::Seen(Support {
            vote: frame.vote,
            epoch: frame.epoch,
            established: frame.flags.contains(Flags::ESTABLISHED),
            echo: frame.echo,
            incarnation: frame.incarnation,
        });
    }

    /// The driver could not make the last [`Output::Persist`](super::Output::Persist)
    /// durable while this node was stepped down for a handover, which can only be the
    /// successor's epoch: stop watching, and resign without supporting anyone (an
    /// acknowledgement needs the epoch accepted durably). The RESIGN still releases
    /// every promise, so the handover goes on, only a frame slower. The epoch stays
    /// accepted in memory, so the RESIGN's accepted-epoch field may name it; that field
    /// only raises the epochs others propose. Returns false, and changes nothing, when
    /// no successor was watched: the failed write was for something else.
    pub fn forgo_successor(&mut self) -> bool {
        if !matches!(self.role, Role::SteppedDown { .. }) || !self.successor.is_watched() {
            return false;
        }
        self.successor = Successor::Unwatched;
        true
    }

    /// At the shutdown of a node that stepped down: our promise to ourselves ends with
    /// the RESIGN, as every follower's to us does, and if a successor was seen we promise
    /// it support from now on (the process supports no one else again; see the module
    /// docs). Afterwards [`Successor::support`] is what the RESIGN frame carries.
    pub(super) fn promise_successor(&mut self, now: Instant) {
        let Some(support) = self.successor.support() else {
            self.successor = Successor::Unwatched;
            return;
        };
        let me = self.config.id;
        self.promise.release(me, self.incarnation, now);
        if self.promise.is_free_for(support.vote.leader, now) {
            self.promise.promise_to(
                support.vote.leader,
                support.incarnation,
                Instant::FAR_FUTURE,
            );
        } else {
            self.successor = Successor::Unwatched;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote, Sender};
    use super::*;
    use crate::election::{Epochs, Output};

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    /// Node 3 of three, leading epoch 1 (established by 1's acknowledgement, with a lease
    /// from 1's echo), then stepped down for a handover; outputs drained. Returns the
    /// node and 2, the successor-to-be.
    fn stepped_down_leader() -> (Node, Sender) {
        let mut node = started(3, &[1, 2, 3]);
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        for sender in [&mut one, &mut two] {
            node.handle_frame(t(0), &sender.frame(ServerState::Looking, vote(3, 0, 0), 1));
        }
        let stamp = super::super::outgoing::encode_echo(t(0), crate::rng::mix(3 ^ (1 << 32)));
        let mut ack = one.frame(ServerState::Following, vote(3, 0, 0), 1);
        (ack.epoch, ack.accepted_epoch, ack.echo) = (1, 1, stamp);
        node.handle_frame(t(5), &ack);
        assert_eq!(node.state(), ServerState::Leading);
        node.step_down(t(10));
        drain(&mut node);
        (node, two)
    }

    /// 2's LEADING frame proposing `epoch`, with time stamp `echo` as it travels.
    fn successor_frame(two: &mut Sender, epoch: u64, echo: u64) -> Repr {
        let mut frame = two.frame(ServerState::Leading, vote(2, 0, 1), 2);
        (frame.epoch, frame.accepted_epoch, frame.echo) = (epoch, epoch, echo);
        frame
    }

    /// Shuts `node` down at 20 ms and checks that its one frame is a plain RESIGN: LOOKING,
    /// its own last vote, no acknowledgement or echo, and no promise to 2. Returns the
    /// vote's leader.
    fn plain_resign(node: &mut Node) -> u64 {
        node.shutdown(t(20));
        let sent = frames(node);
        assert_eq!(sent.len(), 1);
        let resign = sent[0].repr;
        assert_eq!(resign.flags, Flags::RESIGN);
        assert_eq!(resign.state, ServerState::Looking);
        assert_eq!((resign.epoch, resign.echo), (0, 0));
        assert!(!node.promise.is_to(2));
        resign.vote.leader
    }

    #[test]
    fn a_stepped_down_leader_acknowledges_and_echoes_its_successor_in_its_resign() {
        let (mut node, mut two) = stepped_down_leader();
        // 2's proposal: accepted durably (a Persist, nothing sent), as a follower would.
        node.handle_frame(t(12), &successor_frame(&mut two, 2, 0xaaaa));
        let out = drain(&mut node);
        let expected = Epochs {
            accepted_epoch: 2,
            accepted_leader: 2,
            current_epoch: 1,
        };
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            matches!(out[0], Output::Persist(e) if e == expected),
            "{out:?}"
        );
        // Its next frame (established) only updates the stamp; its handover notice or a
        // frame without a stamp changes nothing.
        let mut established = successor_frame(&mut two, 2, 0xbbbb);
        established.flags = Flags::ESTABLISHED;
        node.handle_frame(t(14), &established);
        let mut untimed = successor_frame(&mut two, 2, 0);
        untimed.flags = Flags::ESTABLISHED;
        node.handle_frame(t(15), &untimed);
        let mut notice = successor_frame(&mut two, 2, 0xcccc);
        notice.flags = Flags::HANDOVER;
        node.handle_frame(t(16), &notice);
        assert!(drain(&mut node).is_empty());
        assert_eq!(node.state(), ServerState::Looking);
        // The RESIGN: a FOLLOWING frame for 2 acknowledging epoch 2 with 2's latest
        // stamp, and from now on our promise is 2's.
        node.shutdown(t(20));
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        let resign = sent[0].repr;
        assert_eq!(resign.flags, Flags::RESIGN.with(Flags::ESTABLISHED));
        assert_eq!(resign.state, ServerState::Following);
        assert_eq!(resign.vote.leader, 2);
        assert_eq!((resign.epoch, resign.accepted_epoch), (2, 2));
        assert_eq!(resign.echo, 0xbbbb);
        assert!(node.promise.is_to(2));
    }

    #[test]
    fn a_successor_epoch_not_stored_is_not_acknowledged() {
        let (mut node, mut two) = stepped_down_leader();
        node.handle_frame(t(12), &successor_frame(&mut two, 2, 0xaaaa));
        assert!(matches!(drain(&mut node)[..], [Output::Persist(_)]));
        // The driver could not store it: no support, and 2's later frames (which would
        // now only repeat the epoch) are not taken either.
        assert!(node.forgo_successor());
        node.handle_frame(t(14), &successor_frame(&mut two, 2, 0xbbbb));
        assert!(drain(&mut node).is_empty());
        assert_eq!(plain_resign(&mut node), 3);
        // Nothing to forgo in any other state.
        assert!(!node.forgo_successor());
        let mut leader = started(3, &[1, 2, 3]);
        assert!(!leader.forgo_successor());
    }

    #[test]
    fn a_successor_whose_epoch_may_not_be_acknowledged_gets_a_plain_resign() {
        let (mut node, mut two) = stepped_down_leader();
        // Epoch 1 is ours (accepted from ourselves): 2 may not have it.
        node.handle_frame(t(12), &successor_frame(&mut two, 1, 0xaaaa));
        assert!(drain(&mut node).is_empty());
        assert_eq!(plain_resign(&mut node), 3);
    }

    #[test]
    fn only_a_leader_that_stepped_down_watches_for_a_successor() {
        // A LOOKING node that steps down falls silent too, but ignores every frame and
        // resigns with its own vote.
        let mut node = started(1, &[1, 2, 3]);
        let mut two = Sender::new(2);
        node.step_down(t(10));
        drain(&mut node);
        node.handle_frame(t(12), &successor_frame(&mut two, 2, 0xaaaa));
        assert!(drain(&mut node).is_empty(), "nothing accepted");
        assert_eq!(plain_resign(&mut node), 1);
    }
}
