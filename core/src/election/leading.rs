//! LEADING: the leader's side of the leadership phase. The leader proposes an epoch, counts
//! acknowledgements until a quorum establishes it, and holds a lease that ends at the
//! quorum-th largest support among the voters that acknowledged the epoch; it reports
//! LEADING only while the lease lasts and steps down when it runs out.

use super::config::MAX_VOTERS;
use super::node::{Node, PublicView, Role};
use super::outgoing::decode_echo;
use super::time::Instant;
use super::timers::Timer;
use crate::wire::{Repr, ServerState, Vote};

/// The LEADING role.
#[derive(Debug, Clone, Copy)]
pub(super) struct Leading {
    pub(super) vote: Vote,
    /// The epoch we propose; established once a quorum acknowledged it.
    pub(super) epoch: u64,
    pub(super) established: bool,
    /// Time stamps echoed before this are from an earlier term and ignored.
    term_start: Instant,
    pub(super) lease_until: Option<Instant>,
}

impl Leading {
    /// Whether `stamp`, echoed back to us at `now`, is one of our own time stamps of this
    /// term; anything else is stale or forged.
    fn is_own_stamp(&self, stamp: Instant, now: Instant) -> bool {
        stamp >= self.term_start && stamp <= now
    }
}

/// The end of a lease that needs `quorum` supporters, given when each supporter's support
/// ends: the quorum-th largest end (None with fewer supporters than that). Reorders
/// `support`.
fn lease_end(support: &mut [Instant], quorum: usize) -> Option<Instant> {
    let index = quorum.checked_sub(1)?;
    if support.len() < quorum {
        return None;
    }
    support.sort_unstable_by(|a, b| b.cmp(a));
    support.get(index).copied()
}

impl Node {
    /// The election decided for us: start a term with a fresh epoch proposal.
    pub(super) fn become_leader(&mut self, now: Instant, vote: Vote) {
        self.voters.start_term();
        self.role = Role::Leading(Leading {
            vote,
            epoch: 0,
            established: false,
            term_start: now,
            lease_until: None,
        });
        self.propose_epoch(now);
        self.timers.set(Timer::Heartbeat, now + self.config.tick);
        self.timers
            .set(Timer::InitTimeout, now + self.config.init_timeout());
        self.update_leadership(now);
    }

    /// Propose max(accepted epochs we know, ours) + 1, durably accepted by ourselves first.
    fn propose_epoch(&mut self, now: Instant) {
        let known = self
            .voters
            .max_accepted_epoch()
            .max(self.epochs.accepted_epoch);
        let epoch = known.saturating_add(1);
        self.epochs.accepted_epoch = epoch;
        self.epochs.accepted_leader = self.config.id;
        self.persist();
        if let Role::Leading(lead) = &mut self.role {
            lead.epoch = epoch;
        }
        self.voters.forget_acks();
        self.broadcast(now);
    }

    /// The heartbeat: a LEADING frame every tick, and a recount.
    pub(super) fn heartbeat(&mut self, now: Instant) {
        self.timers.set(Timer::Heartbeat, now + self.config.tick);
        self.broadcast(now);
        self.update_leadership(now);
    }

    /// A voter's frame while we lead.
    pub(super) fn leader_receive(&mut self, now: Instant, index: usize, frame: &Repr) {
        let Role::Leading(lead) = self.role else {
            return;
        };
        match frame.state {
            ServerState::Looking => self.answer(now),
            ServerState::Following if frame.vote.leader == self.config.id => {
                let peer = &mut self.voters[index];
                peer.acked_epoch = if frame.epoch == lead.epoch {
                    frame.epoch
                } else {
                    0
                };
                if let Some(stamp) = decode_echo(frame.echo) {
                    if lead.is_own_stamp(stamp, now) {
                        peer.record_echo(stamp);
                    }
                }
                if frame.epoch != lead.epoch {
                    // A follower that has not acknowledged our epoch yet (it just decided or
                    // joined): tell it now instead of at the next heartbeat.
                    self.answer(now);
                }
                if !lead.established
                    && frame.epoch != lead.epoch
                    && frame.accepted_epoch >= lead.epoch
                {
                    // It accepted our epoch or a later one from someone else: it will never
                    // acknowledge ours. Propose past it.
                    self.propose_epoch(now);
                }
                self.update_leadership(now);
            }
            _ => {}
        }
    }

    /// Recount acknowledgements and the lease; establish, report or step down.
    pub(super) fn update_leadership(&mut self, now: Instant) {
        let Role::Leading(lead) = self.role else {
            return;
        };
        let me = self.config.id;
        // We count ourselves towards the lease once our own promise is free.
        if !self.promise.is_to(me) && self.promise.is_free_for(me, self.now) {
            self.promise
                .promise_to(me, self.incarnation, Instant::FAR_FUTURE);
        }
        let established = lead.established || self.establish(now, lead.epoch);
        let lease_until = self.lease_until(lead.epoch);
        let vote = if established {
            // Like ZooKeeper's updateElectionVote: joiners compare the established epoch.
            Vote {
                peer_epoch: lead.epoch,
                ..lead.vote
            }
        } else {
            lead.vote
        };
        self.role = Role::Leading(Leading {
            vote,
            established,
            lease_until,
            ..lead
        });
        match lease_until.filter(|until| *until > now) {
            Some(until) if established => {
                self.timers.clear(Timer::InitTimeout);
                self.timers.set(Timer::LeaseEnd, until);
                self.set_public(PublicView {
                    state: ServerState::Leading,
                    leader: Some(me),
                    epoch: Some(lead.epoch),
                });
            }
            // The lease ran out: a quorum no longer supports us, and a leader without a
            // quorum steps down.
            _ if self.public.state == ServerState::Leading => self.start_election(now),
            _ => {}
        }
    }

    /// Establish `epoch` if a quorum acknowledged it: it becomes our current epoch,
    /// durably, and the followers learn it at once. True when established.
    fn establish(&mut self, now: Instant, epoch: u64) -> bool {
        if self.voters.acknowledged(epoch) < self.config.quorum() {
            return false;
        }
        self.epochs.current_epoch = epoch;
        self.persist();
        self.broadcast(now);
        true
    }

    /// The lease on `epoch`: each voter that acknowledged it supports us until its newest
    /// echo plus the lease duration, and we support ourselves while our promise is to us.
    fn lease_until(&self, epoch: u64) -> Option<Instant> {
        let me = self.config.id;
        let lease = self.config.lease_duration();
        let mut support: heapless::Vec<Instant, MAX_VOTERS> = heapless::Vec::new();
        for (i, peer) in self.voters.iter().enumerate() {
            let until = if Some(i) == self.voters.own() {
                self.promise.is_to(me).then_some(Instant::FAR_FUTURE)
            } else if peer.acked_epoch == epoch {
                peer.echo.map(|stamp| stamp + lease)
            } else {
                None
            };
            if let Some(until) = until {
                // Capacity equals the voter count bound, so this cannot fail.
                let _ = support.push(until);
            }
        }
        lease_end(&mut support, self.config.quorum())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote, Sender};
    use super::*;
    use crate::election::outgoing::encode_echo;
    use crate::election::Node;
    use crate::wire::Flags;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn lease_is_the_quorum_th_largest_support() {
        let mut support = [t(5), t(9), t(1), t(7), t(3)];
        assert_eq!(lease_end(&mut support, 3), Some(t(5)));
        assert_eq!(lease_end(&mut support, 1), Some(t(9)));
        assert_eq!(lease_end(&mut support, 5), Some(t(1)));
        assert_eq!(lease_end(&mut support[..2], 3), None, "fewer than a quorum");
        assert_eq!(lease_end(&mut [], 0), None);
    }

    #[test]
    fn stamps_count_only_from_this_term_and_not_from_the_future() {
        let lead = Leading {
            vote: vote(1, 0, 0),
            epoch: 1,
            established: false,
            term_start: t(10),
            lease_until: None,
        };
        assert!(lead.is_own_stamp(t(10), t(20)));
        assert!(lead.is_own_stamp(t(20), t(20)));
        assert!(!lead.is_own_stamp(t(9), t(20)), "earlier term");
        assert!(!lead.is_own_stamp(t(21), t(20)), "not sent yet: forged");
    }

    /// Node 3 of three, leading after the election of round 1 (epoch 1 proposed).
    fn leader() -> (Node, Sender, Sender) {
        let mut node = started(3, &[1, 2, 3]);
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        for sender in [&mut one, &mut two] {
            node.handle_frame(
                Instant::ZERO,
                &sender.frame(ServerState::Looking, vote(3, 0, 0), 1),
            );
        }
        assert!(matches!(node.role, Role::Leading(l) if l.epoch == 1));
        drain(&mut node);
        (node, one, two)
    }

    fn ack(sender: &mut Sender, epoch: u64, stamp: Option<Instant>) -> Repr {
        let mut frame = sender.frame(ServerState::Following, vote(3, 0, 0), 1);
        frame.epoch = epoch;
        frame.accepted_epoch = epoch;
        frame.echo = stamp.map_or(0, encode_echo);
        frame
    }

    #[test]
    fn one_acknowledgement_establishes_and_its_echo_sets_the_lease() {
        let (mut node, mut one, _) = leader();
        // An acknowledgement without an echo establishes the epoch, but gives no lease.
        node.handle_frame(t(5), &ack(&mut one, 1, None));
        assert!(matches!(node.role, Role::Leading(l) if l.established));
        assert_eq!(node.epochs().current_epoch, 1);
        assert_eq!(node.state(), ServerState::Looking);
        // With the echo of our stamp at 20: lease until 20 + lease_duration, since we
        // support ourselves for ever and the quorum is two.
        node.handle_frame(t(30), &ack(&mut one, 1, Some(t(20))));
        let until = t(20) + node.config.lease_duration();
        assert_eq!(node.state(), ServerState::Leading);
        assert_eq!(node.epoch(), Some(1));
        assert_eq!(node.valid_until(), Some(until));
        assert_eq!(node.timers.get(Timer::LeaseEnd), Some(until));
        let sent = frames(&mut node);
        assert!(sent
            .iter()
            .all(|f| f.repr.flags.contains(Flags::ESTABLISHED) && f.repr.epoch == 1));
        // Without renewal the lease runs out and the leader steps down.
        node.handle_timeout(until);
        assert_eq!(node.state(), ServerState::Looking);
        assert!(matches!(node.role, Role::Looking(_)));
    }

    #[test]
    fn acknowledgements_of_another_epoch_do_not_count() {
        let (mut node, mut one, mut two) = leader();
        node.handle_frame(t(5), &ack(&mut one, 7, Some(t(1))));
        // It accepted a later epoch: we propose past it.
        assert!(matches!(node.role, Role::Leading(l) if l.epoch == 8 && !l.established));
        assert_eq!(node.epochs().accepted_epoch, 8);
        node.handle_frame(t(6), &ack(&mut two, 8, Some(t(6))));
        assert!(matches!(node.role, Role::Leading(l) if l.established));
        assert_eq!(node.state(), ServerState::Leading);
    }
}
