//! Eligibility: a node whose health checks fail keeps voting but is never elected, and a
//! leader that turns unhealthy hands over without leaving the cluster.
//!
//! # Design
//! Eligibility is part of the vote ([`Vote::ineligible`], flags bit 2 on the wire). A
//! node's initial vote carries its own eligibility; every copy of a vote carries the bit
//! it was cast with, and the vote order puts every eligible vote above every ineligible
//! one ([`beats`](super::beats)). Because the bit travels with the vote instead of being
//! looked up per candidate, all nodes order the same two votes the same way: the order
//! stays total and consistent, which FastLeaderElection's convergence needs. An
//! ineligible vote never decides an election (`check_decision`, `decide`), so:
//! - an unhealthy node proposes itself as ineligible, adopts any eligible vote it hears
//!   (it beats its own) and so lends its vote to a healthy candidate: the quorum is not
//!   weakened (three voters, one down and one unhealthy, still elect the third);
//! - when every reachable voter is unhealthy, nobody is elected and they stay LOOKING.
//!
//! A vote only says what its candidate was when it cast it, so a change must not leave
//! old copies behind: a LOOKING node whose eligibility changes starts a new round (like
//! the RESIGN rule), and the votes of the old round no longer count anywhere. The new
//! round's votes are cast afresh (each node's initial vote, or the better of a frame's
//! vote and it), so a candidate's eligible vote can only circulate in rounds in which it
//! was eligible.
//!
//! # Roles
//! - LOOKING: a new round with the new initial vote (see above).
//! - FOLLOWING: nothing changes. An unhealthy follower keeps following, acknowledging and
//!   promising; a healthy-again one never deposes the leader it follows (a LOOKING node
//!   with a better vote does not either: settled nodes answer it and it joins them).
//! - LEADING, turning ineligible: the node *stands down*. As in the first step of a
//!   graceful shutdown ([`Node::step_down`]) it reports LOOKING at once and then sends
//!   nothing: no LOOKING frame (which would release its followers' promises) and no
//!   heartbeat (which would renew them). So no other leader can be supported before the
//!   lease it reported ends. When that lease has ended (at most `sync_timeout` from the
//!   stand-down; a single voter's lease has no end), or earlier when the driver reports
//!   that the application confirmed the step-down ([`Node::end_stand_down`]), it comes
//!   back: a new election round, as an ineligible voter, whose LOOKING frame releases the
//!   followers at once. Unlike [`Node::step_down`] this is reversible: the node may lead
//!   again once it is eligible and an election picks it.
//!
//! # Guarantees
//! Safety does not depend on any of this: LEADING still needs a quorum of promises and
//! the lease. Liveness: after an unhealthy leader comes back from its stand-down, the
//! others elect a healthy node like after a RESIGN, within a failover (their promises
//! are released by its LOOKING frame, and its vote loses to theirs).

use super::node::{Node, Role};
use super::time::Instant;
use super::timers::Timer;

impl Node {
    /// The node's health changed (`eligible`: it may lead). Idempotent; may be called
    /// before [`Node::start`] (the first election then votes accordingly). See the
    /// module docs for what each role does.
    pub fn set_eligible(&mut self, now: Instant, eligible: bool) {
        self.advance_clock(now);
        if self.eligible == eligible {
            return;
        }
        self.eligible = eligible;
        if !self.is_voter {
            return;
        }
        match self.role {
            Role::Looking(_) => self.start_election(now),
            Role::Leading(_) if !eligible => self.stand_down(now),
            _ => {}
        }
    }

    /// Whether this node may be elected (its health checks pass).
    pub fn eligible(&self) -> bool {
        self.eligible
    }

    /// A leader that turned ineligible is silent until its reported lease has ended (see
    /// the module docs); [`Node::end_stand_down`] ends the wait early.
    pub fn standing_down(&self) -> bool {
        matches!(self.role, Role::SteppedDown { .. }) && self.timers.is_set(Timer::StandDown)
    }

    /// The application confirmed that it stopped acting as coordinator (its step-down hook
    /// succeeded): a standing-down node comes back now instead of at its lease end. No-op
    /// otherwise.
    pub fn end_stand_down(&mut self, now: Instant) {
        self.advance_clock(now);
        if self.standing_down() {
            self.timers.clear(Timer::StandDown);
            self.come_back(now);
        }
    }

    /// Stop leading without releasing anyone, until the lease we reported has ended.
    fn stand_down(&mut self, now: Instant) {
        // The lease ends at most a lease duration after now; a single voter's has no end,
        // and nobody else could lead anyway, so it waits what a follower would.
        let until = self
            .valid_until()
            .filter(|&until| until > now)
            .map_or(now, |until| until.min(now + self.config.sync_timeout()));
        self.fall_silent();
        self.timers.set(Timer::StandDown, until);
    }

    /// Back from a stand-down: a new round, as an ineligible voter (unless healthy again
    /// meanwhile). A node that has also stepped down for good stays silent.
    pub(super) fn come_back(&mut self, now: Instant) {
        if !self.renounced {
            self.start_election(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote, Sender};
    use super::*;
    use crate::election::outgoing::encode_echo;
    use crate::election::{Event, Output};
    use crate::wire::{Repr, ServerState, Vote};

    fn ineligible(v: Vote) -> Vote {
        Vote {
            ineligible: true,
            ..v
        }
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn an_ineligible_node_votes_ineligible_and_adopts_an_eligible_vote() {
        let mut node = started(3, &[1, 2, 3]);
        drain(&mut node);
        node.set_eligible(t(1), false);
        assert_eq!(node.round(), 2, "a new round");
        assert_eq!(node.proposal(), Some(ineligible(vote(3, 0, 0))));
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].repr.vote.ineligible);
        // Voter 2 (worse by id, but eligible) wins our vote; 2 and 3 are a quorum, and
        // after finalizeWait node 3 follows 2.
        let mut two = Sender::new(2);
        node.handle_frame(t(2), &two.frame(ServerState::Looking, vote(2, 0, 0), 2));
        assert_eq!(node.proposal(), Some(vote(2, 0, 0)));
        node.handle_timeout(t(2) + node.config.finalize_wait);
        assert_eq!(node.proposal(), None, "decided");
        assert!(matches!(node.role, Role::Following(f) if f.vote.leader == 2));
    }

    #[test]
    fn an_ineligible_vote_never_decides() {
        // Every voter agrees on an ineligible vote: nobody is elected.
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let (mut two, mut three) = (Sender::new(2), Sender::new(3));
        let bad = ineligible(vote(3, 0, 0));
        node.handle_frame(t(0), &three.frame(ServerState::Looking, bad, 1));
        assert_eq!(node.proposal(), Some(vote(1, 0, 0)), "eligible 1 beats it");
        node.set_eligible(t(1), false);
        node.handle_frame(t(2), &three.frame(ServerState::Looking, bad, 2));
        node.handle_frame(t(2), &two.frame(ServerState::Looking, bad, 2));
        assert_eq!(node.proposal(), Some(bad));
        node.handle_timeout(t(1_000));
        assert_eq!(node.state(), ServerState::Looking);
        assert!(node.looking().is_some());
    }

    #[test]
    fn a_follower_keeps_following_whatever_its_health() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        node.become_follower(t(0), vote(3, 0, 0));
        node.set_eligible(t(1), false);
        node.set_eligible(t(2), true);
        assert!(matches!(node.role, Role::Following(f) if f.vote.leader == 3));
        assert_eq!(node.round(), 1);
    }

    /// Node 3 of three, LEADING epoch 1 with a lease from node 1's echo of our stamp at 20.
    fn leading() -> (Node, Sender, Sender, Instant) {
        let mut node = started(3, &[1, 2, 3]);
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        for sender in [&mut one, &mut two] {
            node.handle_frame(t(0), &sender.frame(ServerState::Looking, vote(3, 0, 0), 1));
        }
        let nonce = crate::rng::mix(3 ^ (1 << 32));
        let mut ack: Repr = one.frame(ServerState::Following, vote(3, 0, 0), 1);
        ack.epoch = 1;
        ack.accepted_epoch = 1;
        ack.echo = encode_echo(t(20), nonce);
        node.handle_frame(t(30), &ack);
        assert_eq!(node.state(), ServerState::Leading);
        let until = node.valid_until().expect("lease");
        drain(&mut node);
        (node, one, two, until)
    }

    #[test]
    fn an_unhealthy_leader_stands_down_silently_until_its_lease_ends() {
        let (mut node, mut one, _, until) = leading();
        node.set_eligible(t(40), false);
        let out = drain(&mut node);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Event(Event::StateChanged(c)) if c.state == ServerState::Looking
        )));
        assert!(
            !out.iter().any(|o| matches!(o, Output::Transmit(_))),
            "no LOOKING frame: it would release the followers"
        );
        assert!(node.standing_down());
        assert_eq!(node.poll_timeout(), Some(until));
        // Frames are ignored meanwhile; nothing is sent.
        node.handle_frame(t(50), &one.frame(ServerState::Looking, vote(1, 0, 0), 1));
        node.handle_timeout(until - core::time::Duration::from_micros(1));
        assert!(frames(&mut node).is_empty());
        // At the lease end: a new round, as an ineligible voter.
        node.handle_timeout(until);
        assert!(!node.standing_down());
        assert_eq!(node.round(), 2);
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].repr.state, ServerState::Looking);
        assert_eq!(sent[0].repr.vote, ineligible(vote(3, 0, 1)));
    }

    #[test]
    fn a_confirmed_step_down_comes_back_at_once_and_healthy_again_may_lead_again() {
        let (mut node, _, _, until) = leading();
        node.set_eligible(t(40), false);
        drain(&mut node);
        node.set_eligible(t(41), true);
        assert!(
            node.standing_down(),
            "health back: the stand-down still runs"
        );
        node.end_stand_down(t(42));
        assert!(!node.standing_down() && t(42) < until);
        assert_eq!(
            node.proposal(),
            Some(vote(3, 0, 1)),
            "eligible: votes for itself"
        );
        node.end_stand_down(t(43));
        assert_eq!(node.round(), 2, "no-op when not standing down");
    }

    #[test]
    fn a_shutdown_during_a_stand_down_stays_silent() {
        let (mut node, _, _, until) = leading();
        node.set_eligible(t(40), false);
        drain(&mut node);
        node.step_down(t(41));
        assert!(!node.standing_down());
        node.handle_timeout(until);
        node.end_stand_down(until);
        assert!(frames(&mut node).is_empty());
        assert_eq!(node.poll_timeout(), None);
        node.shutdown(until);
        let last = frames(&mut node);
        assert_eq!(last.len(), 1);
        assert!(last[0].repr.flags.contains(crate::wire::Flags::RESIGN));
    }

    #[test]
    fn eligibility_set_before_the_start_shapes_the_first_vote() {
        let config = crate::election::Config::new(2, &[1, 2, 3]).unwrap();
        let mut node = Node::new(config, Default::default(), 1).unwrap();
        node.set_eligible(t(0), false);
        assert!(!node.eligible());
        node.start(t(0));
        assert_eq!(node.round(), 1);
        assert_eq!(node.proposal(), Some(ineligible(vote(2, 0, 0))));
    }
}
