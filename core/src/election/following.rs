//! FOLLOWING (and OBSERVING): the follower's side of the leadership phase. A follower
//! tracks its leader's frames, acknowledges the leader's epoch under the epoch rule,
//! promises support and echoes the leader's time stamp, and adopts the epoch once the
//! leader reports it established. Observers keep the same bookkeeping but never
//! acknowledge, promise or send.

use super::answers;
use super::node::{Node, PublicView, Role};
use super::output::{Epochs, RestartReason};
use super::time::Instant;
use super::timers::Timer;
use crate::wire::{Flags, Repr, ServerState, Vote};

/// The FOLLOWING (or OBSERVING) role.
#[derive(Debug, Clone, Copy)]
pub(super) struct Following {
    /// The decided vote; its peer epoch becomes the established epoch (updateElectionVote).
    pub(super) vote: Vote,
    /// Epoch we acknowledged to the leader (0 = none).
    pub(super) acked_epoch: u64,
    /// Epoch the leader reported established (0 = not yet).
    pub(super) established_epoch: u64,
    /// Leader time stamp we echo (raw wire value, 0 = none).
    pub(super) echo: u64,
    /// The round we decided in and the leader's incarnation then: a LOOKING frame from the
    /// same incarnation in that round is an old retransmission, not an abandonment.
    round: u64,
    leader_incarnation: Option<u32>,
    /// The leader's last LEADING frame carried UNICAST_ANSWERS.
    leader_unicast: bool,
    /// The time stamp of the leader's last LEADING frame, as it came (0 = none yet).
    leader_stamp: u64,
}

impl Following {
    /// Following `vote.leader` (last heard as `leader_incarnation`) after deciding in
    /// `round`; nothing acknowledged yet.
    fn new(vote: Vote, round: u64, leader_incarnation: Option<u32>) -> Following {
        Following {
            vote,
            acked_epoch: 0,
            established_epoch: 0,
            echo: 0,
            round,
            leader_incarnation,
            leader_unicast: false,
            leader_stamp: 0,
        }
    }

    /// A LOOKING frame of the round we decided in, from the same incarnation of the leader:
    /// the leader has not decided yet (or the frame is late); it has not left.
    fn is_late_vote(&self, frame: &Repr) -> bool {
        frame.state == ServerState::Looking
            && frame.round <= self.round
            && self.leader_incarnation == Some(frame.incarnation)
    }

    /// The leader's incarnation as last heard.
    pub(super) fn leader_incarnation(&self) -> Option<u32> {
        self.leader_incarnation
    }

    /// We acknowledged the epoch the leader reported established (our frames say so).
    pub(super) fn acked_established(&self) -> bool {
        self.acked_epoch != 0 && self.established_epoch == self.acked_epoch
    }
}

/// May a follower with `epochs` acknowledge `epoch`, proposed by `leader`?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpochAck {
    /// Greater than any epoch accepted so far: accept it (durably) and acknowledge.
    Accept,
    /// Already accepted from this same leader: acknowledge again.
    Repeat,
    /// Smaller, or equal but accepted from another leader: never acknowledged, so no two
    /// leaders establish the same epoch.
    Refuse,
}

fn epoch_ack(epochs: &Epochs, epoch: u64, leader: u64) -> EpochAck {
    if epoch > epochs.accepted_epoch {
        EpochAck::Accept
    } else if epoch == epochs.accepted_epoch && epochs.accepted_leader == leader {
        EpochAck::Repeat
    } else {
        EpochAck::Refuse
    }
}

impl Node {
    /// The election decided for another node: follow (or observe) it.
    pub(super) fn become_follower(&mut self, now: Instant, vote: Vote) {
        let leader_incarnation = self
            .config
            .voter_index(vote.leader)
            .and_then(|i| self.voters[i].incarnation());
        self.role = Role::Following(Following::new(vote, self.round, leader_incarnation));
        self.timers
            .set(Timer::SyncTimeout, now + self.config.sync_timeout());
        self.timers
            .set(Timer::InitTimeout, now + self.config.init_timeout());
        if self.is_voter {
            self.broadcast(now);
        }
    }

    /// A voter's frame while we follow.
    pub(super) fn follower_receive(&mut self, now: Instant, frame: &Repr) {
        let Role::Following(mut follow) = self.role else {
            return;
        };
        let leader = follow.vote.leader;
        if frame.sender != leader {
            if frame.state == ServerState::Looking {
                self.answer(now);
            }
            return;
        }
        if frame.state != ServerState::Leading || frame.vote.leader != leader {
            if follow.is_late_vote(frame) {
                // Our leader is still LOOKING in the round we decided in: it repeats its
                // vote because it has not decided, which it cannot do without our vote if
                // our decision's frame was lost. Tell it again (within the answer budget)
                // instead of waiting for the sync timeout to end a round that a lost
                // frame stalled.
                self.answer(now);
            } else {
                // Our leader stopped leading (or restarted, or follows someone else): a
                // new election may start at once. If this process stepped down, it did
                // so before sending this, so our promise to it is void; if it restarted,
                // the crashed process's lease runs its course (see `Promise::release`).
                self.promise.release(leader, frame.incarnation, self.now);
                self.restart_election(now, RestartReason::LeaderLeft);
            }
            return;
        }
        follow.leader_incarnation = Some(frame.incarnation);
        follow.leader_unicast = frame.flags.contains(Flags::UNICAST_ANSWERS);
        follow.leader_stamp = frame.echo;
        let was_established = follow.acked_established() && frame.epoch == follow.acked_epoch;
        self.timers
            .set(Timer::SyncTimeout, now + self.config.sync_timeout());
        if self.is_voter {
            self.support_leader(now, &mut follow, frame);
        }
        if frame.flags.contains(Flags::ESTABLISHED) {
            self.adopt_established(&mut follow, frame.epoch);
        }
        self.role = Role::Following(follow);
        if follow.established_epoch != 0 {
            self.timers.clear(Timer::InitTimeout);
            self.publish_following(follow);
        }
        if self.is_voter {
            self.answer_leader(now, follow, was_established, frame);
        }
    }

    /// Report FOLLOWING (OBSERVING) `follow`'s leader in its established epoch, unless we
    /// are still promised to another leader (a successor elected during a handover): it
    /// cannot lead before that promise ends, and we report it once we support it
    /// (`resume_support`), so that no application hears of a leader that does not lead
    /// yet, and its hook does not run beside the old leader's step-down hook.
    fn publish_following(&mut self, follow: Following) {
        let leader = follow.vote.leader;
        if self.promise.binds_to_another(leader, self.now) {
            return;
        }
        self.set_public(PublicView {
            state: if self.is_voter {
                ServerState::Following
            } else {
                ServerState::Observing
            },
            leader: Some(leader),
            epoch: Some(follow.established_epoch),
        });
    }

    /// The answer to our leader's LEADING `frame`; it carries our echo and
    /// acknowledgement. Once the epoch is established only the leader needs it, so it goes
    /// to the leader alone if the leader takes answers by unicast, and not at all if the
    /// leader says every support outlasts the next heartbeats (ANSWER_OPTIONAL), we had
    /// acknowledged its established epoch before this frame (`was_established`) and this
    /// heartbeat is another follower's turn (see `answers`). Until then, and while another
    /// node may still be LOOKING, it goes to everyone: a LOOKING node joins on the
    /// FOLLOWING frames of a quorum, and one answer to its vote may be lost.
    fn answer_leader(
        &mut self,
        now: Instant,
        follow: Following,
        was_established: bool,
        frame: &Repr,
    ) {
        let looking = self.someone_looking(now);
        let optional = was_established
            && frame.flags.contains(Flags::ANSWER_OPTIONAL)
            && !self.is_answer_turn(follow.vote.leader, frame.sequence);
        if optional && !looking {
            // No answer; our promise was renewed all the same.
            self.stats.answers_skipped += 1;
        } else {
            self.send_answer(now, follow, looking);
        }
    }

    /// Our answer to `follow`'s leader goes to the leader alone once the epoch is
    /// established and it takes answers by unicast, unless a node may be LOOKING;
    /// otherwise to everyone.
    fn send_answer(&mut self, now: Instant, follow: Following, looking: bool) {
        if follow.acked_established() && follow.leader_unicast && !looking {
            self.reply_to_leader(follow.vote.leader);
        } else {
            self.broadcast(now);
        }
    }

    /// The promise that kept us from supporting our leader ended (the node it was to
    /// resigned): promise now, until the end the leader's last frame would have given it
    /// (its receipt plus `sync_timeout`: our follower timeout), and echo that frame's
    /// stamp at once. A successor elected during a handover thus leads one frame after
    /// its predecessor's RESIGN, not after its next heartbeat and our answer.
    ///
    /// Safe like an answer at that frame's receipt: the leader counts the support from
    /// the stamp, which it sent before we received it, for less than `sync_timeout`
    /// (the lease duration), and starts to lead only once this echo arrived, by which
    /// time the promise is made; it ends where a promise made at the receipt would.
    pub(super) fn resume_support(&mut self, now: Instant) {
        let Role::Following(mut follow) = self.role else {
            return;
        };
        let leader = follow.vote.leader;
        let (Some(until), Some(incarnation)) = (
            self.timers.get(Timer::SyncTimeout),
            follow.leader_incarnation,
        ) else {
            return;
        };
        if !self.is_voter
            || follow.echo != 0
            || follow.leader_stamp == 0
            || follow.acked_epoch == 0
            || until <= self.now
            || !self.promise.is_free_for(leader, self.now)
        {
            return;
        }
        self.promise.promise_to(leader, incarnation, until);
        follow.echo = follow.leader_stamp;
        self.role = Role::Following(follow);
        if follow.established_epoch != 0 {
            self.publish_following(follow);
        }
        let looking = self.someone_looking(now);
        self.send_answer(now, follow, looking);
    }

    /// Whether an optional heartbeat of `leader` with `sequence` is ours to answer (see
    /// [`answers`](super::answers)); a leader that is no voter (never the case when
    /// configurations agree) is answered every time.
    fn is_answer_turn(&self, leader: u64, sequence: u64) -> bool {
        let others = self.config.voters.len() - 1;
        match answers::rank(self.voters.own(), self.config.voter_index(leader)) {
            Some(rank) => answers::is_turn(sequence, rank, others, self.config.sync_limit),
            None => true,
        }
    }

    /// A voter's answer to its leader's LEADING frame: promise support and echo the time
    /// stamp (only if no promise to another leader is running), and acknowledge the
    /// proposed epoch if the epoch rule allows.
    /// The promise runs for `sync_timeout` from the input's `now`.
    fn support_leader(&mut self, now: Instant, follow: &mut Following, frame: &Repr) {
        let leader = follow.vote.leader;
        if self.promise.is_free_for(leader, self.now) {
            self.promise
                .promise_to(leader, frame.incarnation, now + self.config.sync_timeout());
            follow.echo = frame.echo;
        } else {
            follow.echo = 0;
        }
        if frame.epoch == 0 || follow.acked_epoch == frame.epoch {
            return;
        }
        if self.may_acknowledge(frame.epoch, leader) {
            follow.acked_epoch = frame.epoch;
        }
    }

    /// Whether we may acknowledge `epoch`, proposed by `leader`, under the epoch rule;
    /// an epoch greater than any accepted so far is accepted first, durably (an
    /// [`Output::Persist`](super::Output::Persist) ahead of the acknowledgement).
    pub(super) fn may_acknowledge(&mut self, epoch: u64, leader: u64) -> bool {
        match epoch_ack(&self.epochs, epoch, leader) {
            EpochAck::Accept => {
                self.epochs.accepted_epoch = epoch;
                self.epochs.accepted_leader = leader;
                self.persist();
                true
            }
            EpochAck::Repeat => true,
            EpochAck::Refuse => false,
        }
    }

    /// The leader reports `epoch` established: it becomes our view's epoch, and (if we
    /// acknowledged it) our current epoch, durably.
    fn adopt_established(&mut self, follow: &mut Following, epoch: u64) {
        follow.established_epoch = epoch;
        follow.vote.peer_epoch = epoch;
        if self.is_voter && follow.acked_epoch == epoch && self.epochs.current_epoch < epoch {
            self.epochs.current_epoch = epoch;
            self.persist();
        }
    }
}

#[cfg(test)]
mod tests {
    use core::time::Duration;

    use super::super::testing::{
        drain, follow_three, follower, follower_none_looking, frames, vote, Sender,
    };
    use super::*;
    use crate::election::outgoing::encode_echo;
    use crate::election::{Event, Output, StateChange};

    #[test]
    fn epoch_rule() {
        let epochs = Epochs {
            accepted_epoch: 5,
            accepted_leader: 3,
            current_epoch: 4,
        };
        assert_eq!(epoch_ack(&epochs, 6, 2), EpochAck::Accept);
        assert_eq!(epoch_ack(&epochs, 5, 3), EpochAck::Repeat);
        assert_eq!(
            epoch_ack(&epochs, 5, 2),
            EpochAck::Refuse,
            "same epoch, other leader"
        );
        assert_eq!(epoch_ack(&epochs, 4, 3), EpochAck::Refuse, "smaller");
    }

    #[test]
    fn a_voter_without_epochs_acknowledges_nothing_at_or_below_its_floor() {
        // Started without epochs (no data dir, or a wiped one) and with an epoch floor
        // from its wall clock: the floor stands for what an earlier process of it may
        // have acknowledged. A leader whose floor is behind (its wall clock stepped back)
        // proposes below it: refused, and the answer carries the floor so the leader
        // proposes past it. The next epoch is acknowledged with a promise at once: the
        // restart quarantine is for epochs really restored.
        let floor = 190_000_000;
        let config = || crate::election::Config::new(1, &[1, 2, 3]).unwrap();
        let mut node = Node::new(config(), Epochs::default(), 1).unwrap();
        node.set_epoch_floor(floor);
        node.start(Instant::ZERO);
        assert_eq!(node.epochs().accepted_epoch, floor);
        let first_vote = frames(&mut node);
        assert_eq!(
            first_vote[0].repr.accepted_epoch, floor,
            "told in its first vote"
        );
        let mut leader = follow_three(&mut node);
        let t = Instant::from_millis(10);
        let mut behind = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (behind.epoch, behind.accepted_epoch) = (floor - 5, floor - 5);
        behind.echo = encode_echo(Instant::from_millis(7), 0x5eed);
        node.handle_frame(t, &behind);
        let out = drain(&mut node);
        assert!(
            out.iter().all(|o| match o {
                Output::Persist(_) => false,
                Output::Transmit(f) => f.repr.epoch != floor - 5 && f.repr.accepted_epoch == floor,
                _ => true,
            }),
            "not acknowledged, and the answer carries the floor: {out:?}"
        );
        assert_eq!(node.epochs().accepted_epoch, floor);

        let mut past = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (past.epoch, past.accepted_epoch) = (floor + 1, floor + 1);
        past.echo = encode_echo(Instant::from_millis(8), 0x5eed);
        node.handle_frame(t, &past);
        let out = drain(&mut node);
        assert_eq!(
            out[0],
            Output::Persist(Epochs {
                accepted_epoch: floor + 1,
                accepted_leader: 3,
                current_epoch: 0,
            })
        );
        let Output::Transmit(answer) = out[1] else {
            panic!("{out:?}");
        };
        assert_eq!(
            (answer.repr.epoch, answer.repr.echo),
            (floor + 1, past.echo)
        );

        // Restored epochs are kept as they are, whatever the floor.
        let restored = Epochs {
            accepted_epoch: 4,
            accepted_leader: 2,
            current_epoch: 4,
        };
        let mut node = Node::new(config(), restored, 2).unwrap();
        node.set_epoch_floor(floor);
        node.start(Instant::ZERO);
        assert_eq!(node.epochs(), restored);
    }

    #[test]
    fn late_vote_is_same_incarnation_and_decided_round_only() {
        let follow = Following::new(vote(3, 0, 0), 4, Some(9));
        let mut leader = Sender::new(3);
        leader.incarnation = 9;
        assert!(follow.is_late_vote(&leader.frame(ServerState::Looking, vote(3, 0, 0), 4)));
        assert!(follow.is_late_vote(&leader.frame(ServerState::Looking, vote(3, 0, 0), 3)));
        assert!(!follow.is_late_vote(&leader.frame(ServerState::Looking, vote(3, 0, 0), 5)));
        assert!(!follow.is_late_vote(&leader.frame(ServerState::Following, vote(2, 0, 0), 4)));
        leader.incarnation = 10;
        assert!(!follow.is_late_vote(&leader.frame(ServerState::Looking, vote(3, 0, 0), 4)));
    }

    #[test]
    fn acknowledges_persists_echoes_then_adopts_the_established_epoch() {
        let (mut node, mut leader) = follower();
        let t = Instant::from_millis(10);
        let mut lead = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        lead.epoch = 1;
        lead.echo = encode_echo(Instant::from_millis(7), 0x5eed);
        node.handle_frame(t, &lead);
        let out = drain(&mut node);
        let accepted = Epochs {
            accepted_epoch: 1,
            accepted_leader: 3,
            current_epoch: 0,
        };
        assert_eq!(out[0], Output::Persist(accepted));
        let Output::Transmit(answer) = out[1] else {
            panic!("{out:?}");
        };
        assert_eq!(out.len(), 2, "not reported before the epoch is established");
        assert_eq!((answer.repr.epoch, answer.repr.echo), (1, lead.echo));
        assert_eq!(answer.repr.state, ServerState::Following);
        assert_eq!(node.state(), ServerState::Looking);

        let mut established = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        established.epoch = 1;
        established.flags = Flags::ESTABLISHED;
        node.handle_frame(t, &established);
        let out = drain(&mut node);
        assert_eq!(
            out[0],
            Output::Persist(Epochs {
                current_epoch: 1,
                ..accepted
            })
        );
        assert!(matches!(
            out[1],
            Output::Event(Event::StateChanged(StateChange {
                state: ServerState::Following,
                leader: Some(3),
                epoch: Some(1),
                ..
            }))
        ));
        let Output::Transmit(answer) = out[2] else {
            panic!("{out:?}");
        };
        assert!(answer.repr.flags.contains(Flags::ESTABLISHED));
        assert_eq!(answer.repr.echo, 0, "the leader sent no stamp this time");
        assert_eq!(
            node.valid_until(),
            Some(t + node.config.sync_timeout()),
            "the follower timeout"
        );
    }

    #[test]
    fn heartbeat_answers_go_to_a_unicast_leader_alone_once_established() {
        // Until the epoch is established the answer goes to everyone (a LOOKING node may
        // join on FOLLOWING frames); after it, to a leader that takes answers by unicast
        // alone, and to everyone if the leader does not.
        let (mut node, mut leader) = follower();
        // 2 voted LOOKING in the election; its FOLLOWING frame shows it is no longer.
        let mut two = Sender::new(2);
        two.sequence_from(1);
        node.handle_frame(
            Instant::from_millis(5),
            &two.frame(ServerState::Following, vote(3, 0, 0), 1),
        );
        let mut lead = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (lead.epoch, lead.flags) = (1, Flags::UNICAST_ANSWERS);
        node.handle_frame(Instant::from_millis(10), &lead);
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, None, "epoch not established yet");
        let mut unicast = established(&mut leader);
        unicast.flags.insert(Flags::UNICAST_ANSWERS);
        node.handle_frame(Instant::from_millis(20), &unicast);
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].to, Some(3));
        assert_eq!(sent[0].repr.state, ServerState::Following);
        node.handle_frame(Instant::from_millis(30), &established(&mut leader));
        assert_eq!(frames(&mut node)[0].to, None, "the leader wants the group");
        // A LOOKING node is answered to everyone, whatever the leader takes.
        let mut unicast = established(&mut leader);
        unicast.flags.insert(Flags::UNICAST_ANSWERS);
        node.handle_frame(Instant::from_millis(40), &unicast);
        assert_eq!(frames(&mut node)[0].to, Some(3));
        let looking = two.frame(ServerState::Looking, vote(2, 0, 0), 2);
        node.handle_frame(Instant::from_millis(41), &looking);
        assert_eq!(frames(&mut node)[0].to, None);
        // ...and, while it may still be looking (it repeats its vote at least every
        // max_notification_interval), so are the heartbeat answers: it may join on them.
        let quiet = Instant::from_millis(41) + node.config.max_notification_interval;
        let mut unicast = established(&mut leader);
        unicast.flags.insert(Flags::UNICAST_ANSWERS);
        node.handle_frame(quiet - Duration::from_millis(1), &unicast);
        assert_eq!(frames(&mut node)[0].to, None, "2 may still be looking");
        let mut unicast = established(&mut leader);
        unicast.flags.insert(Flags::UNICAST_ANSWERS);
        node.handle_frame(quiet, &unicast);
        assert_eq!(frames(&mut node)[0].to, Some(3));
    }

    #[test]
    fn an_optional_heartbeat_goes_unanswered_once_the_established_epoch_was_acknowledged() {
        let (mut node, mut leader, mut two) = follower_none_looking();
        let ms = Instant::from_millis;
        let optional = |leader: &mut Sender| {
            let mut frame = established(leader);
            frame.flags.insert(Flags::ANSWER_OPTIONAL);
            frame
        };
        // The first frame with the epoch: acknowledged, optional or not.
        node.handle_frame(ms(10), &optional(&mut leader));
        assert_eq!(frames(&mut node).len(), 1, "the acknowledgement");
        // Acknowledged and established: no answer, but the promise is renewed.
        node.handle_frame(ms(20), &optional(&mut leader));
        assert!(frames(&mut node).is_empty());
        assert_eq!(node.stats().answers_skipped, 1);
        assert_eq!(
            node.valid_until(),
            Some(ms(20) + node.config.sync_timeout())
        );
        assert_eq!(node.state(), ServerState::Following);
        // Without the flag every heartbeat is answered.
        node.handle_frame(ms(30), &established(&mut leader));
        assert_eq!(frames(&mut node).len(), 1);
        // A proposal of a new epoch is acknowledged even when the flag is set.
        let mut next = optional(&mut leader);
        (next.epoch, next.accepted_epoch) = (2, 2);
        next.flags = Flags::ANSWER_OPTIONAL;
        node.handle_frame(ms(40), &next);
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].repr.epoch, 2);
        // While a node may still be LOOKING it hears our answers: it may join on them.
        node.handle_frame(ms(41), &two.frame(ServerState::Looking, vote(2, 0, 0), 2));
        drain(&mut node);
        let epoch_2 = |leader: &mut Sender| {
            let mut frame = optional(leader);
            (frame.epoch, frame.accepted_epoch) = (2, 2);
            frame
        };
        node.handle_frame(ms(50), &epoch_2(&mut leader));
        drain(&mut node);
        node.handle_frame(ms(60), &epoch_2(&mut leader));
        assert_eq!(frames(&mut node).len(), 1, "2 may still be looking");
        assert_eq!(node.stats().answers_skipped, 1);
    }

    #[test]
    fn an_optional_heartbeat_is_answered_on_our_turn() {
        // Node 1 of voters 1, 2, 3 following 3: rank 0 of 2 others; at the default
        // sync-limit 6 its turn is every fourth sequence number, starting at 0.
        let (mut node, mut leader, _) = follower_none_looking();
        let ms = Instant::from_millis;
        node.handle_frame(ms(10), &established(&mut leader));
        drain(&mut node);
        leader.sequence_from(99);
        let mut answered = std::vec::Vec::new();
        for k in 0..8u64 {
            let mut frame = established(&mut leader);
            frame.flags.insert(Flags::ANSWER_OPTIONAL);
            let sequence = frame.sequence;
            node.handle_frame(ms(20 + 10 * k), &frame);
            if !frames(&mut node).is_empty() {
                answered.push(sequence);
            }
        }
        assert_eq!(answered, [100, 104]);
        assert_eq!(node.stats().answers_skipped, 6);
        assert_eq!(node.state(), ServerState::Following);
    }

    #[test]
    fn a_leader_frame_promises_support_for_sync_timeout_from_its_receipt() {
        let (mut node, mut leader) = follower();
        let t = Instant::from_millis(10);
        node.handle_frame(t, &leader.frame(ServerState::Leading, vote(3, 0, 0), 1));
        let end = t + node.config.sync_timeout();
        assert!(node.promise.is_to(3));
        assert!(!node
            .promise
            .is_free_for(2, end - core::time::Duration::from_micros(1)));
        assert!(node.promise.is_free_for(2, end));
    }

    #[test]
    fn a_successor_elected_during_a_handover_is_supported_at_the_resign() {
        let ms = Instant::from_millis;
        let (mut node, mut three) = follower();
        let mut heartbeat = three.frame(ServerState::Leading, vote(3, 0, 0), 1);
        heartbeat.epoch = 1;
        heartbeat.echo = encode_echo(ms(9), 77);
        node.handle_frame(ms(10), &heartbeat);
        drain(&mut node);
        assert!(node.promise.is_to(3));
        // 3 steps down: its handover notice starts an election without releasing us.
        let mut notice = three.frame(ServerState::Leading, vote(3, 0, 0), 1);
        notice.epoch = 1;
        notice.flags = Flags::HANDOVER.with(Flags::ESTABLISHED);
        node.handle_frame(ms(12), &notice);
        let restarted = drain(&mut node).into_iter().any(|o| {
            matches!(o, Output::Event(Event::Restarted(r)) if r.reason == RestartReason::HandingOver)
        });
        assert!(restarted, "a new round on the notice");
        assert_eq!(node.state(), ServerState::Looking);
        assert!(node.promise.is_to(3), "the notice releases nothing");
        // 2's vote: with 3 left out of "every voter agrees", we decide at once.
        let mut two = Sender::new(2);
        two.sequence_from(10);
        node.handle_frame(ms(13), &two.frame(ServerState::Looking, vote(2, 0, 0), 2));
        drain(&mut node);
        assert!(matches!(node.role, Role::Following(f) if f.vote.leader == 2));
        // 2 proposes epoch 2: acknowledged, but no echo while we are promised to 3.
        let mut proposal = two.frame(ServerState::Leading, vote(2, 0, 0), 2);
        proposal.epoch = 2;
        proposal.echo = encode_echo(ms(13), 5);
        node.handle_frame(ms(14), &proposal);
        let sent = frames(&mut node);
        let answer = sent.last().expect("the acknowledgement").repr;
        assert_eq!((answer.epoch, answer.echo), (2, 0));
        assert_eq!(node.epochs.accepted_epoch, 2);
        assert!(node.promise.is_to(3));
        // 2 establishes it: our current epoch, but we report no leader that cannot lead.
        let mut established = two.frame(ServerState::Leading, vote(2, 0, 0), 2);
        (established.epoch, established.flags) = (2, Flags::ESTABLISHED);
        established.echo = encode_echo(ms(15), 5);
        node.handle_frame(ms(16), &established);
        frames(&mut node);
        assert_eq!(node.epochs.current_epoch, 2);
        assert_eq!((node.state(), node.leader()), (ServerState::Looking, None));
        // 3 resigns: we promise 2 at once, until our follower timeout, and echo its stamp.
        let mut resign = three.frame(ServerState::Looking, vote(3, 0, 0), 1);
        resign.flags = Flags::RESIGN;
        node.handle_frame(ms(20), &resign);
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(
            (sent[0].repr.epoch, sent[0].repr.echo),
            (2, established.echo)
        );
        assert!(node.promise.is_to(2));
        assert_eq!(
            (node.state(), node.leader(), node.epoch()),
            (ServerState::Following, Some(2), Some(2))
        );
        let end = ms(16) + node.config.sync_timeout();
        assert!(!node.promise.is_free_for(3, end - Duration::from_micros(1)));
        assert!(node.promise.is_free_for(3, end));
        // Nothing more on a second release.
        node.handle_frame(ms(21), &resign);
        assert!(frames(&mut node).is_empty());
    }

    fn established(leader: &mut Sender) -> crate::wire::Repr {
        let mut frame = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (frame.epoch, frame.accepted_epoch) = (1, 1);
        frame.flags = Flags::ESTABLISHED;
        frame
    }

    #[test]
    fn a_leader_still_looking_in_our_round_gets_our_decision_again() {
        // Our leader repeats its vote of the round we decided in: it has not decided, and
        // may have lost our FOLLOWING frame. We answer with it and keep following.
        let (mut node, mut leader) = follower();
        let t = Instant::from_millis(50);
        node.handle_frame(t, &leader.frame(ServerState::Looking, vote(3, 0, 0), 1));
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert_eq!(sent[0].repr.state, ServerState::Following);
        assert_eq!((sent[0].repr.vote.leader, sent[0].repr.round), (3, 1));
        assert!(matches!(node.role, Role::Following(_)));
    }

    #[test]
    fn a_silent_leader_and_a_leader_looking_are_reported_as_the_reasons() {
        let reason = |out: &[Output]| -> std::vec::Vec<crate::election::Restart> {
            out.iter()
                .filter_map(|o| match o {
                    Output::Event(Event::Restarted(r)) => Some(*r),
                    _ => None,
                })
                .collect()
        };
        let (mut node, mut leader) = follower();
        let t = Instant::from_millis(10);
        node.handle_frame(t, &established(&mut leader));
        drain(&mut node);
        node.handle_timeout(t + node.config.sync_timeout());
        let r = reason(&drain(&mut node));
        assert_eq!(r.len(), 1);
        assert_eq!(
            (
                r[0].reason,
                r[0].from,
                r[0].epoch,
                r[0].established,
                r[0].round
            ),
            (
                RestartReason::SyncTimeout,
                ServerState::Following,
                1,
                true,
                2
            )
        );
        let (mut node, mut leader) = follower();
        node.handle_frame(t, &leader.frame(ServerState::Looking, vote(3, 0, 0), 2));
        let r = reason(&drain(&mut node));
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].reason, r[0].epoch, r[0].established),
            (RestartReason::LeaderLeft, 0, false)
        );
    }

    #[test]
    fn a_restarted_leader_looking_leaves_the_promise_to_its_crashed_process_running() {
        let (mut node, mut leader) = follower();
        let t = Instant::from_millis(10);
        node.handle_frame(t, &established(&mut leader));
        node.handle_frame(t, &established(&mut leader));
        assert_eq!(node.state(), ServerState::Following, "publicly following");
        let end = t + node.config.sync_timeout();
        // The leader restarted (new incarnation) and is LOOKING: we look too, but the
        // crashed process's lease runs its course; we support nobody, ourselves included.
        leader.incarnation = 2;
        let later = Instant::from_millis(20);
        node.handle_frame(later, &leader.frame(ServerState::Looking, vote(3, 0, 0), 2));
        assert!(matches!(node.role, Role::Looking(_)));
        assert!(node.promise.is_to(3));
        let me = node.config.id;
        assert!(!node.promise.is_free_for(me, later));
        assert!(!node
            .promise
            .is_free_for(2, end - core::time::Duration::from_micros(1)));
        assert!(node.promise.is_free_for(me, end));
    }

    #[test]
    fn the_leader_looking_again_starts_an_election() {
        let (mut node, mut leader) = follower();
        // A late LOOKING frame of the decided round: ignored.
        node.handle_frame(
            Instant::from_millis(1),
            &leader.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        assert!(matches!(node.role, Role::Following(_)));
        // LOOKING in a later round: the leader gave up.
        node.handle_frame(
            Instant::from_millis(2),
            &leader.frame(ServerState::Looking, vote(3, 0, 0), 2),
        );
        assert!(matches!(node.role, Role::Looking(_)));
        assert_eq!(node.round(), 2);
        assert_eq!(frames(&mut node).len(), 1);
    }

    #[test]
    fn an_epoch_from_a_floor_is_acknowledged_like_any_greater_one() {
        let (mut node, mut leader) = follower();
        let mut lead = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (lead.epoch, lead.accepted_epoch) = (190_000_000, 190_000_000);
        node.handle_frame(Instant::from_millis(1), &lead);
        let answer = *frames(&mut node).last().expect("an answer");
        assert_eq!(answer.repr.epoch, 190_000_000);
        assert_eq!(answer.repr.accepted_epoch, 190_000_000);
    }

    #[test]
    fn a_follower_that_stepped_down_follows_on_but_never_leads() {
        let (mut node, mut leader) = follower();
        let mut lead = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        lead.epoch = 1;
        lead.flags = Flags::ESTABLISHED;
        node.handle_frame(Instant::from_millis(1), &lead);
        assert_eq!(node.state(), ServerState::Following);
        drain(&mut node);
        // Nothing changes for a follower, and it keeps answering its leader.
        node.step_down(Instant::from_millis(2));
        assert!(drain(&mut node).is_empty());
        assert_eq!(node.state(), ServerState::Following);
        node.handle_frame(Instant::from_millis(3), &lead_again(&mut leader));
        assert_eq!(frames(&mut node).len(), 1);
        // Its leader gives up: instead of a new election, it falls silent, and even votes
        // for it from everyone do not make it lead.
        node.handle_frame(
            Instant::from_millis(4),
            &leader.frame(ServerState::Looking, vote(1, 0, 1), 2),
        );
        let out = drain(&mut node);
        assert_eq!(out.len(), 1, "only the event: {out:?}");
        assert_eq!(node.state(), ServerState::Looking);
        let mut two = super::super::testing::Sender::new(2);
        node.handle_frame(
            Instant::from_millis(5),
            &two.frame(ServerState::Looking, vote(1, 0, 1), 2),
        );
        assert!(drain(&mut node).is_empty());
        assert!(matches!(node.role, Role::SteppedDown { .. }));
        assert_eq!(node.poll_timeout(), None);
    }

    fn lead_again(leader: &mut Sender) -> Repr {
        let mut lead = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        lead.epoch = 1;
        lead.flags = Flags::ESTABLISHED;
        lead
    }
}
