//! LEADING: the leader's side of the leadership phase. The leader proposes an epoch, counts
//! acknowledgements until a quorum establishes it, and holds a lease that ends at the
//! quorum-th largest support among the voters that acknowledged the epoch; it reports
//! LEADING only while the lease lasts and steps down when it runs out.

use super::config::MAX_VOTERS;
use super::node::{Node, PublicView, Role};
use super::outgoing::decode_echo;
use super::output::RestartReason;
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
    /// Our latest frame asked for unicast answers (UNICAST_ANSWERS).
    pub(super) asked_unicast: bool,
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
        // No acknowledgement or echo of an earlier term counts (`propose_epoch` forgets them
        // again for each proposal).
        self.voters.forget_acks();
        self.role = Role::Leading(Leading {
            vote,
            epoch: 0,
            established: false,
            term_start: now,
            lease_until: None,
            asked_unicast: false,
        });
        self.propose_epoch(now);
        self.timers.set(Timer::Heartbeat, now + self.config.tick);
        self.timers
            .set(Timer::InitTimeout, now + self.config.init_timeout());
        self.update_leadership(now);
    }

    /// Propose max(accepted epochs we know + 1, the epoch floor), durably accepted by
    /// ourselves first. Saturating: an epoch at `u64::MAX` (a floor or a frame can carry
    /// it) is proposed again and then refused by any follower that accepted it from another
    /// leader, which stops progress but never establishes one epoch twice.
    fn propose_epoch(&mut self, now: Instant) {
        let known = self
            .voters
            .max_accepted_epoch()
            .max(self.epochs.accepted_epoch);
        let epoch = known.saturating_add(1).max(self.epoch_floor);
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
    /// The heartbeat that was due at `due`. The next one is due a tick after `due`, not
    /// after `now`: a driver that wakes a little late (timer granularity, scheduling)
    /// must not stretch every period, or followers detect a crash up to that much later
    /// than sync-limit ticks. After a stall longer than a tick the schedule restarts
    /// from `now` instead of sending a burst to catch up.
    pub(super) fn heartbeat(&mut self, now: Instant, due: Instant) {
        let next = due + self.config.tick;
        let next = if next > now {
            next
        } else {
            now + self.config.tick
        };
        self.timers.set(Timer::Heartbeat, next);
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
                // Only a frame that acknowledges our current epoch is evidence of support,
                // and only a stamp this process sent in this term (it decodes under our
                // nonce to a time in [term_start, now]): a frame from before our restart,
                // late or replayed, carries another process's stamp or another epoch.
                let acknowledges = frame.epoch == lead.epoch;
                let stamp = decode_echo(frame.echo, self.nonce)
                    .filter(|stamp| acknowledges && lead.is_own_stamp(*stamp, now));
                let peer = &mut self.voters[index];
                peer.acked_epoch = if acknowledges { frame.epoch } else { 0 };
                if let Some(stamp) = stamp {
                    peer.record_echo(stamp);
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
        // A lease never shrinks within a term: each promise behind it holds until it runs
        // out (only our own LOOKING or RESIGN could end it early), even when the voter's
        // latest frame no longer counts (it acknowledges another epoch, or has no echo).
        // Stepping down early on a recount would end leadership before the lease we
        // reported, and our LOOKING would then release the followers while an
        // application may still act on that lease.
        let lease_until = self.lease_until(lead.epoch).max(lead.lease_until);
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
            _ if self.public.state == ServerState::Leading => {
                self.restart_election(now, RestartReason::LeaseLost)
            }
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

    /// Whether followers may leave the LEADING frame we send at `now` unanswered, all but
    /// the one whose turn it is (ANSWER_OPTIONAL): [`Config::sparse_answers`] is on, our
    /// epoch is established, our lease runs at least a tick and a half longer, and every
    /// other voter has acknowledged the epoch with an echo whose support runs at least
    /// [`Config::answer_slack`] longer.
    ///
    /// Answers exist to renew support, and asking every follower every tick renews
    /// supports `sync_limit` ticks long far sooner than needed: each answer is a frame
    /// sent and a frame received. With this rule the followers take turns (see
    /// `answers`), and a support that nears its end because its follower's answer was
    /// lost or its turn was missed makes the next heartbeat ask everyone. A voter whose
    /// support is not running (silent, lossy, not yet acknowledged) makes every heartbeat
    /// ask, as before. Safety does not depend on it: the lease counts only the echoes that
    /// arrived.
    ///
    /// [`Config::sparse_answers`]: super::config::Config::sparse_answers
    /// [`Config::answer_slack`]: super::config::Config::answer_slack
    pub(super) fn answers_optional(&self, now: Instant) -> bool {
        let Role::Leading(lead) = &self.role else {
            return false;
        };
        if !self.config.sparse_answers || !lead.established {
            return false;
        }
        // The lease stands on the quorum's supports, and one heartbeat's turn renews one
        // of them: where a quorum needs more supports than the turns renew before they run
        // out (many voters), they all run down together. So the lease itself must last
        // until the next heartbeat, which can then ask everyone, and half a tick more for
        // their answers; else this heartbeat asks.
        let tick = self.config.tick;
        let lease_lasts = lead
            .lease_until
            .is_some_and(|until| until >= now + tick + tick / 2);
        if !lease_lasts {
            return false;
        }
        let lease = self.config.lease_duration();
        let needed = now + self.config.answer_slack();
        // A voter that resigned answers nothing more, though its RESIGN may have carried
        // its support (see `handover`): its turns would go unanswered, so every heartbeat
        // asks, as for a voter that is silent.
        self.voters.iter().enumerate().all(|(i, peer)| {
            Some(i) == self.voters.own()
                || (!peer.resigned
                    && peer.acked_epoch == lead.epoch
                    && peer.echo.is_some_and(|stamp| stamp + lease >= needed))
        })
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
    use crate::election::{Config, Epochs, Event, Node, Output, Restart, StateChange};
    use crate::wire::Flags;
    use core::time::Duration;

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
            asked_unicast: false,
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

    /// `sender`'s acknowledgement of `epoch`, echoing the raw value `echo`.
    fn ack_raw(sender: &mut Sender, epoch: u64, echo: u64) -> Repr {
        let mut frame = sender.frame(ServerState::Following, vote(3, 0, 0), 1);
        frame.epoch = epoch;
        frame.accepted_epoch = epoch;
        frame.echo = echo;
        frame
    }

    /// `sender`'s acknowledgement of `epoch`, echoing our `stamp` as node 3 (default
    /// nonce of `started`) sent it.
    fn ack(sender: &mut Sender, epoch: u64, stamp: Option<Instant>) -> Repr {
        let nonce = crate::rng::mix(3 ^ (1 << 32));
        ack_raw(sender, epoch, stamp.map_or(0, |s| encode_echo(s, nonce)))
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
    fn a_leader_elected_during_a_handover_leads_only_once_its_predecessor_resigned() {
        // Established during 3's handover, without a lease: neither its own promise nor
        // 1's acknowledgement (no echo) counts while both are 3's; a heartbeat changes
        // nothing (asserted by the helper).
        let (mut node, mut one, mut three) = successor_during_handover();
        // 1's echo of our stamp at 60 (1 was released first): still no lease, our own
        // promise is 3's.
        let nonce = crate::rng::mix(2 ^ (1 << 32));
        let mut echo = ack_raw(&mut one, 2, encode_echo(t(60), nonce));
        echo.vote = vote(2, 0, 0);
        node.handle_frame(t(65), &echo);
        assert_eq!(node.state(), ServerState::Looking);
        // 3's RESIGN frees our own promise: we lead at once.
        let mut resign = three.frame(ServerState::Looking, vote(3, 0, 0), 1);
        resign.flags = Flags::RESIGN;
        node.handle_frame(t(70), &resign);
        assert_eq!(node.state(), ServerState::Leading);
        assert_eq!(
            node.valid_until(),
            Some(t(60) + node.config.lease_duration())
        );
    }

    /// Node 2 of three, elected during 3's handover: it followed 3 (promised to it), 3
    /// sent its handover notice, 1 voted for 2, and 2 established epoch 2 with 1's
    /// acknowledgement, which carries no echo (1 is promised to 3 too). No lease yet.
    /// Returns the node, 1 and 3.
    fn successor_during_handover() -> (Node, Sender, Sender) {
        let mut node = started(2, &[1, 2, 3]);
        let (mut one, mut three) = (Sender::new(1), Sender::new(3));
        for sender in [&mut one, &mut three] {
            node.handle_frame(t(0), &sender.frame(ServerState::Looking, vote(3, 0, 0), 1));
        }
        let mut heartbeat = three.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (heartbeat.epoch, heartbeat.flags) = (1, Flags::ESTABLISHED);
        node.handle_frame(t(10), &heartbeat);
        drain(&mut node);
        assert!(node.promise.is_to(3));
        // 3's handover notice, then 1's vote for us: we lead at once and propose epoch 2.
        let mut notice = three.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (notice.epoch, notice.flags) = (1, Flags::HANDOVER);
        node.handle_frame(t(12), &notice);
        node.handle_frame(t(13), &one.frame(ServerState::Looking, vote(2, 0, 1), 2));
        assert!(
            matches!(node.role, Role::Leading(l) if l.epoch == 2),
            "not leading: {:?}",
            node.role
        );
        let mut acknowledgement = ack_raw(&mut one, 2, 0);
        acknowledgement.vote = vote(2, 0, 0);
        node.handle_frame(t(14), &acknowledgement);
        assert!(matches!(node.role, Role::Leading(l) if l.established && l.epoch == 2));
        assert_eq!(node.state(), ServerState::Looking);
        node.handle_timeout(t(60));
        assert_eq!(
            node.state(),
            ServerState::Looking,
            "a heartbeat changes nothing"
        );
        drain(&mut node);
        (node, one, three)
    }

    /// 3's RESIGN as a stepped-down leader sends it: a FOLLOWING frame for node 2 that
    /// acknowledges epoch 2 and echoes `echo`.
    fn resign_supporting_two(three: &mut Sender, echo: u64) -> Repr {
        let mut resign = ack_raw(three, 2, echo);
        resign.vote = vote(2, 0, 2);
        resign.flags = Flags::RESIGN.with(Flags::ESTABLISHED);
        resign
    }

    #[test]
    fn a_successor_leads_at_a_resign_that_carries_its_predecessors_support() {
        let (mut node, mut one, mut three) = successor_during_handover();
        node.config.sparse_answers = true;
        // The RESIGN echoes our stamp at 60: it frees our own promise and is 3's
        // support, so we lead at once, before 1 heard the RESIGN.
        let nonce = crate::rng::mix(2 ^ (1 << 32));
        node.handle_frame(
            t(70),
            &resign_supporting_two(&mut three, encode_echo(t(60), nonce)),
        );
        assert_eq!(node.state(), ServerState::Leading);
        assert_eq!(
            node.valid_until(),
            Some(t(60) + node.config.lease_duration())
        );
        // 1 echoes at the RESIGN too. 3 answers nothing more, so our heartbeats ask
        // everyone (no ANSWER_OPTIONAL) and 1 renews its support at each one, instead of
        // on every other turn while 3's turns go unanswered.
        let mut echo = ack_raw(&mut one, 2, encode_echo(t(60), nonce));
        echo.vote = vote(2, 0, 2);
        node.handle_frame(t(71), &echo);
        drain(&mut node);
        let heartbeat = node.timers.get(Timer::Heartbeat).expect("heartbeat due");
        node.handle_timeout(heartbeat);
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].repr.state, ServerState::Leading);
        assert!(
            !sent[0].repr.flags.contains(Flags::ANSWER_OPTIONAL),
            "{:?}",
            sent[0].repr.flags
        );
    }

    #[test]
    fn a_resign_supports_only_with_a_stamp_of_the_current_term() {
        let nonce = crate::rng::mix(2 ^ (1 << 32));
        // A stamp not sent yet (forged), one from before the term, and one encoded under
        // another process's nonce.
        for echo in [
            encode_echo(t(80), nonce),
            encode_echo(t(5), nonce),
            encode_echo(t(60), nonce ^ (1 << 63)),
        ] {
            let (mut node, _, mut three) = successor_during_handover();
            node.handle_frame(t(70), &resign_supporting_two(&mut three, echo));
            assert_eq!(node.state(), ServerState::Looking, "echo {echo:#x}");
        }
        // A good stamp, but the acknowledgement is of another epoch.
        let (mut node, _, mut three) = successor_during_handover();
        let mut resign = resign_supporting_two(&mut three, encode_echo(t(60), nonce));
        resign.epoch = 1;
        node.handle_frame(t(70), &resign);
        assert_eq!(node.state(), ServerState::Looking);
    }

    #[test]
    fn frames_wait_for_the_heartbeat_only_while_the_lease_outlasts_it() {
        // sync-limit 3: an echo of the latest heartbeat's stamp puts the lease end about
        // two ticks past it, which outlasts the next heartbeat by more than half a tick.
        let mut config = crate::election::Config::new(3, &[1, 2, 3]).unwrap();
        config.sync_limit = 3;
        let mut node = Node::new(config, Epochs::default(), 1).unwrap();
        let mut one = Sender::new(1);
        let mut two = Sender::new(2);
        node.start(Instant::ZERO);
        node.handle_frame(t(0), &one.frame(ServerState::Looking, vote(3, 0, 0), 1));
        node.handle_frame(t(0), &two.frame(ServerState::Looking, vote(3, 0, 0), 1));
        assert!(matches!(node.role, Role::Leading(_)));
        assert!(
            !node.frames_can_wait(),
            "epoch round: every frame counts at once"
        );
        node.handle_frame(t(1), &ack(&mut one, 1, None));
        assert!(!node.frames_can_wait(), "established, but no lease yet");
        let tick = node.config.tick;
        let heartbeat = node.timers.get(Timer::Heartbeat).unwrap();
        node.handle_timeout(heartbeat);
        node.handle_frame(heartbeat, &ack(&mut one, 1, Some(heartbeat)));
        assert_eq!(node.state(), ServerState::Leading);
        assert!(node.frames_can_wait());
        // No answer to the next heartbeat and the one after: the lease, still from the
        // first stamp, no longer outlasts the next heartbeat by half a tick.
        node.handle_timeout(heartbeat + tick);
        assert!(node.frames_can_wait(), "ends {:?}", node.valid_until());
        node.handle_timeout(heartbeat + tick * 2);
        assert_eq!(node.state(), ServerState::Leading);
        assert!(!node.frames_can_wait());
        // Answers again: waiting is fine again.
        let now = heartbeat + tick * 2;
        node.handle_frame(now, &ack(&mut one, 1, Some(now)));
        assert!(node.frames_can_wait());
        // A node that steps down never waits.
        node.step_down(now);
        assert!(!node.frames_can_wait());
    }

    #[test]
    fn unicast_answers_are_asked_for_only_while_they_arrive() {
        // A leader whose answers stop (lost, or unicast to it blocked) asks for answers
        // to the group at the next heartbeat whose lease runs short, and for unicast
        // again once an answer has renewed it: the lease never depends on unicast alone.
        let mut config = crate::election::Config::new(3, &[1, 2, 3]).unwrap();
        config.sync_limit = 3;
        let mut node = Node::new(config, Epochs::default(), 1).unwrap();
        node.set_unicast_answers(true);
        let mut one = Sender::new(1);
        let mut two = Sender::new(2);
        node.start(t(0));
        node.handle_frame(t(0), &one.frame(ServerState::Looking, vote(3, 0, 0), 1));
        node.handle_frame(t(0), &two.frame(ServerState::Looking, vote(3, 0, 0), 1));
        node.handle_frame(t(1), &ack(&mut one, 1, None));
        let asks = |node: &mut Node| {
            let sent = frames(node);
            assert!(!sent.is_empty());
            sent.iter()
                .all(|f| f.repr.flags.contains(Flags::UNICAST_ANSWERS))
        };
        assert!(!asks(&mut node), "no lease yet: answers to the group");
        let tick = node.config.tick;
        let first = node.timers.get(Timer::Heartbeat).unwrap();
        node.handle_timeout(first);
        drain(&mut node);
        node.handle_frame(first, &ack(&mut one, 1, Some(first)));
        node.handle_timeout(first + tick);
        assert!(asks(&mut node), "the lease outlasts the next heartbeat");
        assert_eq!(node.stats().group_answer_requests, 0);
        // That heartbeat's answer never comes.
        node.handle_timeout(first + tick * 2);
        assert!(
            !asks(&mut node),
            "the lease runs short: answers to the group"
        );
        assert_eq!(node.stats().group_answer_requests, 1);
        node.handle_timeout(first + tick * 2 + tick / 4);
        assert_eq!(node.state(), ServerState::Leading);
        let now = first + tick * 2 + tick / 4;
        node.handle_frame(now, &ack(&mut one, 1, Some(first + tick * 2)));
        node.handle_timeout(first + tick * 3);
        assert!(asks(&mut node), "renewed: unicast again");
        assert_eq!(
            node.stats().group_answer_requests,
            1,
            "counted once per episode"
        );
    }

    /// Node 3 of three at `sync_limit`, leading with epoch 1 established; returns the node,
    /// the other two voters and the time of its next heartbeat.
    fn established(sync_limit: u32) -> (Node, Sender, Sender, Instant) {
        let mut config = crate::election::Config::new(3, &[1, 2, 3]).unwrap();
        config.sync_limit = sync_limit;
        config.sparse_answers = true;
        let mut node = Node::new(config, Epochs::default(), 1).unwrap();
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        node.start(t(0));
        node.handle_frame(t(0), &one.frame(ServerState::Looking, vote(3, 0, 0), 1));
        node.handle_frame(t(0), &two.frame(ServerState::Looking, vote(3, 0, 0), 1));
        node.handle_frame(t(1), &ack(&mut one, 1, None));
        drain(&mut node);
        let heartbeat = node.timers.get(Timer::Heartbeat).unwrap();
        (node, one, two, heartbeat)
    }

    /// Runs the heartbeat due at `at`; the frame it sent.
    fn heartbeat(node: &mut Node, at: Instant) -> crate::wire::Repr {
        node.handle_timeout(at);
        let sent = frames(node);
        assert_eq!(sent.len(), 1, "one heartbeat");
        sent[0].repr
    }

    /// Runs the heartbeat due at `at`; whether its frames carry ANSWER_OPTIONAL.
    fn heartbeat_optional(node: &mut Node, at: Instant) -> bool {
        heartbeat(node, at).flags.contains(Flags::ANSWER_OPTIONAL)
    }

    /// Whether follower `id` of node 3's followers 1 and 2 answers `frame`: every one
    /// that asks, an optional one on its turn.
    fn answers(node: &Node, id: u64, frame: &crate::wire::Repr) -> bool {
        let index = |id: u64| node.config.voter_index(id);
        let rank = super::super::answers::rank(index(id), index(3)).unwrap();
        let others = node.config.voters.len() - 1;
        !frame.flags.contains(Flags::ANSWER_OPTIONAL)
            || super::super::answers::is_turn(frame.sequence, rank, others, node.config.sync_limit)
    }

    /// Runs `n` heartbeats from `first`, followers 1 and 2 answering as followers do
    /// unless `lose(k, id)`; asserts that the node leads with a lease at least a tick
    /// ahead throughout. Returns the heartbeats (after the first) that asked everyone
    /// and how many answers each follower sent.
    fn run_turns(
        node: &mut Node,
        (one, two): (&mut Sender, &mut Sender),
        first: Instant,
        n: u32,
        lose: impl Fn(u32, u64) -> bool,
    ) -> (std::vec::Vec<u32>, [u32; 2]) {
        let tick = node.config.tick;
        let (mut asked, mut sent) = (std::vec::Vec::new(), [0; 2]);
        for k in 0..n {
            let at = first + tick * k;
            let frame = heartbeat(node, at);
            if k > 0 && !frame.flags.contains(Flags::ANSWER_OPTIONAL) {
                asked.push(k);
            }
            for (i, (id, f)) in [(1, &mut *one), (2, &mut *two)].into_iter().enumerate() {
                if answers(node, id, &frame) {
                    sent[i] += 1;
                    if !lose(k, id) {
                        node.handle_frame(at, &ack(f, 1, Some(at)));
                    }
                }
            }
            assert_eq!(node.state(), ServerState::Leading, "heartbeat {k}");
            assert!(
                node.valid_until().is_some_and(|v| v >= at + tick),
                "heartbeat {k}: lease {:?}",
                node.valid_until()
            );
        }
        (asked, sent)
    }

    #[test]
    fn followers_take_turns_while_every_support_outlasts_the_slack() {
        // Three voters: at sync-limit 3 and 4 each follower answers every other heartbeat,
        // at 6 every fourth; after the first (no support yet) none asks everyone.
        for (sync_limit, cycle) in [(3, 2), (4, 2), (6, 4)] {
            let (mut node, mut one, mut two, first) = established(sync_limit);
            let (asked, sent) = run_turns(&mut node, (&mut one, &mut two), first, 25, |_, _| false);
            assert!(
                asked.is_empty(),
                "sync-limit {sync_limit}: asked at {asked:?}"
            );
            for n in sent {
                assert_eq!(n, 1 + 24 / cycle, "sync-limit {sync_limit}: {sent:?}");
            }
        }
        // One follower silent: its support runs out, and every heartbeat asks again
        // although the other one's support (and the lease) is far from its end.
        let (mut node, mut one, _, first) = established(6);
        let tick = node.config.tick;
        for k in 0..10 {
            let at = first + tick * k;
            let optional = heartbeat_optional(&mut node, at);
            assert!(
                !optional,
                "heartbeat {k} asks: node 2's support is not running"
            );
            node.handle_frame(at, &ack(&mut one, 1, Some(at)));
        }
    }

    #[test]
    fn a_lost_answer_makes_a_heartbeat_ask_everyone_before_its_support_runs_out() {
        // sync-limit 6: follower 1's answer on its turn at heartbeat 8 is lost. Its
        // support (from heartbeat 4) runs out at 4 ticks + the lease; a heartbeat before
        // that asks everyone, and then the turns go on.
        for (sync_limit, cycle) in [(6, 4), (3, 2)] {
            let (mut node, mut one, mut two, first) = established(sync_limit);
            let tick = node.config.tick;
            let lost = core::cell::Cell::new(None);
            let (asked, _) = run_turns(&mut node, (&mut one, &mut two), first, 25, |k, id| {
                let lose = k >= 8 && id == 1 && lost.get().is_none();
                if lose {
                    lost.set(Some(k));
                }
                lose
            });
            let lost = lost.get().unwrap();
            assert_eq!(
                asked.len(),
                1,
                "sync-limit {sync_limit}: lost {lost}, asked {asked:?}"
            );
            assert!(
                asked[0] > lost,
                "sync-limit {sync_limit}: lost {lost}, asked {asked:?}"
            );
            // The support from follower 1's turn before the lost one.
            let runs_out = first + tick * (lost - cycle) + node.config.lease_duration();
            let asked_at = first + tick * asked[0];
            if sync_limit == 6 {
                assert!(asked_at < runs_out, "lost {lost}, asked {asked:?}");
            } else {
                // The turns leave one tick: the next heartbeat after the lost answer's
                // may come after that support ran out; the lease held on the other one's
                // (`run_turns` checked it at every heartbeat).
                assert!(asked_at < runs_out + tick, "lost {lost}, asked {asked:?}");
            }
        }
        // Answers stop after the first heartbeat: the heartbeats ask everyone from the
        // moment a support has less than the slack left, and the lease lasts its full
        // length from the last answer.
        let (mut node, mut one, mut two, first) = established(6);
        let tick = node.config.tick;
        assert!(!heartbeat_optional(&mut node, first));
        for f in [&mut one, &mut two] {
            node.handle_frame(first, &ack(f, 1, Some(first)));
        }
        let until = first + node.config.lease_duration();
        assert_eq!(node.valid_until(), Some(until));
        let mut optional = std::vec::Vec::new();
        let mut at = first + tick;
        while at < until {
            optional.push(heartbeat_optional(&mut node, at));
            at = at + tick;
        }
        assert_eq!(optional, [true, true, true, true, false]);
        assert_eq!(node.state(), ServerState::Leading);
        node.handle_timeout(until);
        assert_eq!(node.state(), ServerState::Looking, "lease ran out");
    }

    /// The `Restarted` events among `out`.
    fn restarts(out: &[Output]) -> std::vec::Vec<Restart> {
        out.iter()
            .filter_map(|o| match o {
                Output::Event(Event::Restarted(r)) => Some(*r),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_abandoned_epoch_round_or_term_is_reported_with_its_reason() {
        // Nobody acknowledges epoch 1: the round is given up at the init timeout.
        let (mut node, _, _) = leader();
        node.handle_timeout(Instant::ZERO + node.config.init_timeout());
        let expected = Restart {
            reason: RestartReason::InitTimeout,
            from: ServerState::Leading,
            epoch: 1,
            established: false,
            round: 2,
        };
        assert_eq!(restarts(&drain(&mut node)), [expected]);
        assert_eq!(node.round(), 2);
        // An established term whose lease runs out.
        let (mut node, mut one, _) = leader();
        node.handle_frame(t(30), &ack(&mut one, 1, Some(t(20))));
        drain(&mut node);
        node.handle_timeout(t(20) + node.config.lease_duration());
        let expected = Restart {
            reason: RestartReason::LeaseLost,
            established: true,
            ..expected
        };
        assert_eq!(restarts(&drain(&mut node)), [expected]);
    }

    #[test]
    fn a_leader_leaving_early_supports_nobody_else_before_its_reported_lease_end() {
        let (mut node, mut one, _) = leader();
        node.handle_frame(t(30), &ack(&mut one, 1, Some(t(20))));
        let until = t(20) + node.config.lease_duration();
        assert_eq!(node.valid_until(), Some(until));
        // A frame with our id and incarnation that we never sent (a duplicate id) makes
        // us leave at once, long before the lease we reported ends.
        let mut twin = Sender::new(3).frame(ServerState::Looking, vote(3, 0, 0), 1);
        twin.sequence = 1_000;
        node.handle_frame(t(40), &twin);
        assert_eq!(node.state(), ServerState::Looking);
        // An application may act on the reported lease until it ends: no promise to
        // another leader before then, but one at its end.
        assert!(!node.promise.is_free_for(2, t(41)));
        assert!(!node
            .promise
            .is_free_for(2, until - core::time::Duration::from_micros(1)));
        assert!(node.promise.is_free_for(2, until));
    }

    #[test]
    fn the_lease_never_shrinks_on_a_recount() {
        let (mut node, mut one, _) = leader();
        node.handle_frame(t(30), &ack(&mut one, 1, Some(t(20))));
        let until = t(20) + node.config.lease_duration();
        assert_eq!(node.valid_until(), Some(until));
        // Its next frame acknowledges nothing we count (no echo, another epoch): its
        // promise from the echo still holds, so we lead on until the reported end.
        node.handle_frame(t(40), &ack(&mut one, 0, None));
        assert_eq!(node.state(), ServerState::Leading);
        assert_eq!(node.valid_until(), Some(until));
        node.handle_timeout(until);
        assert_eq!(node.state(), ServerState::Looking);
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

    #[test]
    fn default_nonce_is_the_mix_of_id_and_incarnation() {
        let (node, _, _) = leader();
        assert_eq!(node.nonce, crate::rng::mix(3 ^ (1 << 32)));
        let stamp = t(20);
        assert_eq!(node.stamp_echo(stamp), encode_echo(stamp, node.nonce));
        assert_eq!(node.echo_stamp(node.stamp_echo(stamp)), Some(stamp));
        assert_eq!(node.echo_stamp(0), None);
    }

    #[test]
    fn an_echo_in_a_frame_not_acknowledging_the_current_epoch_never_counts() {
        let (mut node, mut one, _) = leader();
        // One has not acknowledged epoch 1 yet but echoes our stamp of 20.
        node.handle_frame(t(30), &ack(&mut one, 0, Some(t(20))));
        assert_eq!(node.voters[0].echo, None);
        // Its acknowledgement without an echo establishes the epoch, but no lease.
        node.handle_frame(t(31), &ack(&mut one, 1, None));
        assert!(matches!(node.role, Role::Leading(l) if l.established));
        assert_eq!(node.state(), ServerState::Looking);
        assert_eq!(node.valid_until(), None);
        // The same stamp in a frame acknowledging epoch 1 does count.
        node.handle_frame(t(32), &ack(&mut one, 1, Some(t(20))));
        assert_eq!(
            node.valid_until(),
            Some(t(20) + node.config.lease_duration())
        );
    }

    #[test]
    fn a_stamp_of_another_process_never_counts() {
        // Process A of node 3 leads and sends its stamp of 500 ms; it crashes, and process
        // B (incarnation 2, its clock restarted at a new origin) leads the next epoch.
        let mut a = Node::new(Config::new(3, &[1, 2, 3]).unwrap(), Epochs::default(), 1).unwrap();
        a.set_process_nonce(0xaaaa_aaaa_aaaa_aaaa);
        a.start(t(0));
        let old_echo = encode_echo(t(500), a.nonce);
        let epochs = Epochs {
            accepted_epoch: 1,
            accepted_leader: 3,
            current_epoch: 1,
        };
        let mut b = Node::new(Config::new(3, &[1, 2, 3]).unwrap(), epochs, 2).unwrap();
        b.set_process_nonce(0xbbbb_bbbb_bbbb_bbbb);
        b.start(t(0));
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        for sender in [&mut one, &mut two] {
            b.handle_frame(t(0), &sender.frame(ServerState::Looking, vote(3, 0, 1), 1));
        }
        assert!(matches!(b.role, Role::Leading(l) if l.epoch == 2));
        drain(&mut b);
        // One's frame from before the crash, delivered late (acknowledging epoch 1, echoing
        // A's stamp), once B's clock has passed 500 ms: no acknowledgement, no lease.
        b.handle_frame(t(600), &ack_raw(&mut one, 1, old_echo));
        assert_eq!((b.voters[0].acked_epoch, b.voters[0].echo), (0, None));
        // Even in a frame acknowledging B's epoch, A's stamp is not B's.
        b.handle_frame(t(601), &ack_raw(&mut one, 2, old_echo));
        assert!(matches!(b.role, Role::Leading(l) if l.established));
        assert_eq!(b.voters[0].echo, None);
        assert_eq!(b.state(), ServerState::Looking);
        // B's own stamp does.
        b.handle_frame(t(602), &ack_raw(&mut one, 2, encode_echo(t(550), b.nonce)));
        assert_eq!(b.state(), ServerState::Leading);
        assert_eq!(b.valid_until(), Some(t(550) + b.config.lease_duration()));
    }

    #[test]
    fn echoes_of_an_earlier_proposal_are_forgotten() {
        // Node 5 of five (quorum 3) leads and proposes epoch 1.
        let mut node = started(5, &[1, 2, 3, 4, 5]);
        let mut senders: std::vec::Vec<Sender> = (1..=4).map(Sender::new).collect();
        for sender in senders.iter_mut() {
            node.handle_frame(t(0), &sender.frame(ServerState::Looking, vote(5, 0, 0), 1));
        }
        assert!(matches!(node.role, Role::Leading(l) if l.epoch == 1));
        drain(&mut node);
        let nonce = node.nonce;
        let ack5 = |sender: &mut Sender, epoch: u64, accepted: u64, stamp: Option<Instant>| {
            let mut frame = sender.frame(ServerState::Following, vote(5, 0, 0), 1);
            (frame.epoch, frame.accepted_epoch) = (epoch, accepted);
            frame.echo = stamp.map_or(0, |s| encode_echo(s, nonce));
            frame
        };
        node.handle_frame(t(10), &ack5(&mut senders[0], 1, 1, Some(t(5))));
        assert_eq!(node.voters[0].echo, Some(t(5)));
        // Voter 2 accepted epoch 7 elsewhere: we propose 8, and 1's echo (given with its
        // acknowledgement of 1) no longer counts.
        node.handle_frame(t(11), &ack5(&mut senders[1], 0, 7, None));
        assert!(matches!(node.role, Role::Leading(l) if l.epoch == 8 && !l.established));
        assert_eq!(node.voters[0].echo, None);
        // 1 acknowledges 8 without an echo, 3 with one: established, but only two voters
        // (3 and ourselves) support a lease; the quorum is three.
        node.handle_frame(t(20), &ack5(&mut senders[0], 8, 8, None));
        node.handle_frame(t(21), &ack5(&mut senders[2], 8, 8, Some(t(15))));
        assert!(matches!(node.role, Role::Leading(l) if l.established));
        assert_eq!(node.state(), ServerState::Looking);
        node.handle_frame(t(22), &ack5(&mut senders[0], 8, 8, Some(t(16))));
        assert_eq!(node.state(), ServerState::Leading);
        assert_eq!(
            node.valid_until(),
            Some(t(15) + node.config.lease_duration())
        );
    }

    #[test]
    fn the_epoch_floor_sets_the_least_proposal() {
        let proposal = |floor: u64, restored: u64| {
            let epochs = Epochs {
                accepted_epoch: restored,
                accepted_leader: 2,
                current_epoch: restored,
            };
            let mut node = Node::new(Config::new(3, &[1, 2, 3]).unwrap(), epochs, 1).unwrap();
            node.set_epoch_floor(floor);
            node.start(t(0));
            let (mut one, mut two) = (Sender::new(1), Sender::new(2));
            for sender in [&mut one, &mut two] {
                let v = vote(3, 0, restored);
                node.handle_frame(t(0), &sender.frame(ServerState::Looking, v, 1));
            }
            let Role::Leading(lead) = node.role else {
                panic!("not leading");
            };
            assert_eq!(node.epochs().accepted_epoch, lead.epoch, "persisted");
            lead.epoch
        };
        assert_eq!(proposal(0, 4), 5, "no floor");
        assert_eq!(proposal(190_000_000, 4), 190_000_000);
        assert_eq!(proposal(3, 4), 5, "a floor below the known epochs");
        assert_eq!(proposal(5, 4), 5);
        assert_eq!(proposal(u64::MAX, 4), u64::MAX);
        assert_eq!(proposal(0, u64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn heartbeats_keep_their_period_when_the_driver_wakes_late() {
        // Leader since 0 with a 50 ms tick: woken 3 ms late every time, the heartbeats
        // stay due at 50, 100, 150 ms...; after a stall of several ticks the schedule
        // restarts a tick after the late wake-up instead of bursting.
        let (mut node, mut one, _) = leader();
        drain(&mut node);
        let tick = node.config.tick;
        let late = Duration::from_millis(3);
        for k in 1..=20u32 {
            let due = Instant::ZERO + tick * k;
            assert_eq!(
                node.timers.get(Timer::Heartbeat),
                Some(due),
                "heartbeat {k}"
            );
            node.handle_timeout(due + late);
            // Follower 1 acknowledges the heartbeat at once: the term goes on.
            node.handle_frame(due + late, &ack(&mut one, 1, Some(due + late)));
            assert_eq!(node.state(), ServerState::Leading);
            drain(&mut node);
        }
        let due = Instant::ZERO + tick * 21;
        let woke = due + tick * 4;
        node.handle_timeout(woke);
        assert_eq!(node.timers.get(Timer::Heartbeat), Some(woke + tick));
    }

    #[test]
    fn step_down_reports_looking_and_sends_only_the_handover_notice_until_shutdown() {
        let (mut node, mut one, mut two) = leader();
        node.handle_frame(t(30), &ack(&mut one, 1, Some(t(20))));
        assert_eq!(node.state(), ServerState::Leading);
        let heartbeat = frames(&mut node).pop().expect("the leader's frame").repr;
        node.step_down(t(40));
        let out = drain(&mut node);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(
            out[0],
            Output::Event(Event::StateChanged(StateChange {
                state: ServerState::Looking,
                previous: ServerState::Leading,
                ..
            }))
        ));
        // The notice: our LEADING frame of the term with HANDOVER, without a time stamp
        // (no answer to it can count towards a lease).
        let Output::Transmit(notice) = &out[1] else {
            panic!("not a frame: {out:?}");
        };
        let notice = notice.repr;
        assert_eq!(notice.state, ServerState::Leading);
        assert_eq!(notice.flags, Flags::HANDOVER.with(Flags::ESTABLISHED));
        assert_eq!(
            (notice.vote, notice.epoch, notice.round),
            (heartbeat.vote, heartbeat.epoch, heartbeat.round)
        );
        assert_eq!(notice.echo, 0);
        assert_eq!(
            (node.state(), node.valid_until()),
            (ServerState::Looking, None)
        );
        assert_eq!(node.poll_timeout(), None);
        // Silent whatever happens: no heartbeat, no answer, no LOOKING frame (which would
        // release the followers' promises), and no new leadership.
        node.handle_timeout(t(10_000));
        node.handle_frame(
            t(10_001),
            &two.frame(ServerState::Looking, vote(3, 0, 1), 9),
        );
        node.handle_frame(t(10_002), &ack(&mut one, 1, Some(t(20))));
        node.step_down(t(10_003));
        assert!(drain(&mut node).is_empty());
        assert_eq!(node.state(), ServerState::Looking);
        // The shutdown then releases them: one RESIGN frame repeating our vote.
        node.shutdown(t(10_004));
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert!(sent[0].repr.flags.contains(Flags::RESIGN));
        assert_eq!(sent[0].repr.vote.leader, 3);
        assert_eq!(sent[0].repr.state, ServerState::Looking);
    }

    #[test]
    fn step_down_before_the_epoch_is_established_falls_silent_too() {
        let (mut node, mut one, _) = leader();
        let Role::Leading(lead) = node.role else {
            panic!("not leading");
        };
        node.step_down(t(1));
        let sent = frames(&mut node);
        assert_eq!(
            sent.len(),
            1,
            "only the handover notice; never reported LEADING"
        );
        assert_eq!(sent[0].repr.flags, Flags::HANDOVER);
        assert_eq!(sent[0].repr.epoch, lead.epoch);
        node.handle_frame(t(2), &ack(&mut one, 1, Some(t(0))));
        assert!(drain(&mut node).is_empty());
        assert_eq!(node.state(), ServerState::Looking);
    }
}
