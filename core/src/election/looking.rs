//! FastLeaderElection proper (ZooKeeper's `lookForLeader`): rounds, votes, the
//! notification backoff, and the decision to lead, follow or observe.

use core::time::Duration;

use super::node::{Node, PublicView, Role};
use super::output::{Event, Output, Restart, RestartReason};
use super::peers::{Notice, Peer};
use super::time::Instant;
use super::timers::Timer;
use super::vote::beats;
use crate::wire::{Repr, ServerState, Vote};

/// The LOOKING role.
#[derive(Debug, Clone, Copy)]
pub(super) struct Looking {
    /// Our initial vote of this election (None for an observer).
    pub(super) initial: Option<Vote>,
    /// Our current proposal (None for an observer that has heard no voter yet).
    pub(super) proposal: Option<Vote>,
    /// Silence for this long re-broadcasts our vote.
    pub(super) notification_interval: Duration,
    /// The established ensemble (leader, epoch of its vote) a FOLLOWING or LEADING voter
    /// last showed us, if any.
    pub(super) heard_ensemble: Option<(u64, u64)>,
}

impl Looking {
    /// The notification backoff: double the interval, up to `max`.
    fn back_off(&mut self, max: Duration) {
        self.notification_interval = self.notification_interval.saturating_mul(2).min(max);
    }

    /// Our proposal on moving to a later round in which someone votes `vote`: the better of
    /// that vote and our *initial* vote, not the proposal of an old round.
    fn proposal_in_new_round(&self, vote: Vote) -> Vote {
        match self.initial {
            Some(initial) if !beats(&vote, &initial) => initial,
            _ => vote,
        }
    }
}

impl Node {
    /// Give up the current role (or round) for a new election, and report why: an epoch
    /// round that never completes is otherwise invisible, because a leader whose epoch is
    /// not established yet is still published LOOKING.
    pub(super) fn restart_election(&mut self, now: Instant, reason: RestartReason) {
        if !self.renounced {
            let (from, epoch, established) = match self.role {
                Role::Leading(l) => (ServerState::Leading, l.epoch, l.established),
                Role::Following(f) => {
                    (ServerState::Following, f.acked_epoch, f.acked_established())
                }
                _ => (ServerState::Looking, 0, false),
            };
            self.push_output(Output::Event(Event::Restarted(Restart {
                reason,
                from,
                epoch,
                established,
                round: self.round.saturating_add(1),
            })));
        }
        self.start_election(now);
    }

    /// A new election: next round, vote for ourselves, tell everyone.
    pub(super) fn start_election(&mut self, now: Instant) {
        if self.renounced {
            // Stepped down: this process never leads again, and a LOOKING frame from it
            // would release the promises made to it.
            self.fall_silent();
            return;
        }
        // Stepping down (or never having led): our support for ourselves ends, but not
        // before the lease end we reported. However early we leave (a duplicate id, a
        // lease that shrank), an application may act on that lease until it ends, even if
        // it misses this change; supporting another leader before then would let two
        // overlap.
        let reported = match self.role {
            Role::Leading(_) => self.valid_until().filter(|&until| until > self.now),
            _ => None,
        };
        self.promise
            .release(self.config.id, self.incarnation, self.now);
        if let Some(until) = reported {
            self.promise
                .promise_to(self.config.id, self.incarnation, until);
        }
        // Saturating: a round comes from frames, and without authentication anyone can send
        // u64::MAX. Stuck at the top, rounds still compare equal and elections still
        // converge on the best vote.
        self.round = self.round.saturating_add(1);
        self.stats.elections_started += 1;
        self.voters.forget_votes();
        let initial = self.is_voter.then_some(Vote {
            leader: self.config.id,
            zxid: self.zxid,
            peer_epoch: self.epochs.current_epoch,
            ineligible: !self.eligible,
        });
        self.role = Role::Looking(Looking {
            initial,
            proposal: None,
            notification_interval: self.config.min_notification_interval,
            heard_ensemble: None,
        });
        self.timers.clear_all();
        self.set_public(PublicView::LOOKING);
        self.mark_election_start(now);
        self.set_proposal(now, initial);
        self.check_decision(now);
    }

    /// LOOKING: back to the shortest notification interval and re-broadcast now (see
    /// [`Node::handle_link_restored`]). No-op in every other role.
    pub(super) fn restart_notifications(&mut self, now: Instant) {
        let Role::Looking(looking) = &mut self.role else {
            return;
        };
        looking.notification_interval = self.config.min_notification_interval;
        self.broadcast(now);
    }

    /// Replace our proposal, record it as our own vote and broadcast it, restarting the
    /// backoff from the minimum (`restart_notifications`): a new proposal (a new round, or
    /// a better vote) is news. Beyond ZooKeeper, whose TCP delivered the one notification
    /// of each change: a multicast frame may be lost, and after a long election (a
    /// partition) the backoff would repeat the news only at `max_notification_interval`,
    /// each repeat a chance to be lost. Proposals only improve within a round and rounds
    /// only grow, so this cannot flood.
    fn set_proposal(&mut self, now: Instant, proposal: Option<Vote>) {
        let Role::Looking(looking) = &mut self.role else {
            return;
        };
        looking.proposal = proposal;
        if let (Some(i), Some(vote)) = (self.voters.own(), proposal) {
            self.voters[i].election = Some(Notice {
                vote,
                round: self.round,
                state: ServerState::Looking,
            });
        }
        self.restart_notifications(now);
    }

    pub(super) fn looking(&self) -> Option<Looking> {
        match self.role {
            Role::Looking(l) => Some(l),
            _ => None,
        }
    }

    /// A voter's frame while we look.
    pub(super) fn looking_receive(&mut self, now: Instant, index: usize, frame: &Repr) {
        let Some(looking) = self.looking() else {
            return;
        };
        let beats_proposal = looking.proposal.is_none_or(|p| beats(&frame.vote, &p));
        if self.timers.is_set(Timer::Finalize) {
            if beats_proposal {
                // A better vote during finalizeWait resumes the election.
                self.timers.clear(Timer::Finalize);
            } else if frame.state == ServerState::Looking && frame.round != self.round {
                // ZooKeeper drains and drops votes that do not beat the proposal while it
                // waits; only a lagging sender still gets an answer.
                if frame.round < self.round {
                    self.answer(now);
                }
                return;
            }
        }
        let notice = Notice {
            vote: frame.vote,
            round: frame.round,
            state: frame.state,
        };
        match frame.state {
            ServerState::Looking => {
                self.receive_looking_vote(now, looking, beats_proposal, index, notice)
            }
            ServerState::Following | ServerState::Leading => {
                self.receive_settled_vote(now, index, notice)
            }
            ServerState::Observing => {}
        }
    }

    /// A LOOKING voter's vote: adopt a later round, a better vote, or answer a sender that
    /// is behind.
    fn receive_looking_vote(
        &mut self,
        now: Instant,
        looking: Looking,
        beats_proposal: bool,
        index: usize,
        notice: Notice,
    ) {
        if notice.round > self.round {
            self.round = notice.round;
            self.voters.forget_round();
            self.timers.clear(Timer::Finalize);
            let proposal = looking.proposal_in_new_round(notice.vote);
            self.set_proposal(now, Some(proposal));
        } else if notice.round < self.round {
            // The sender has not heard our round. Answer it; the first time in our round,
            // also restart our backoff (beyond ZooKeeper, as for a new proposal): our vote
            // is then repeated from the shortest interval until news arrives, instead of
            // once per notification of the sender, which may be backed off to
            // `max_notification_interval` after a partition. Once per voter and round, so
            // a voter that keeps missing our frames costs a few frames per round, not a
            // stream.
            if self.voters[index].behind_in == self.round {
                self.answer(now);
            } else {
                self.voters[index].behind_in = self.round;
                self.restart_notifications(now);
            }
            return;
        } else if beats_proposal {
            self.set_proposal(now, Some(notice.vote));
        } else if looking.proposal != Some(notice.vote) {
            // Beyond ZooKeeper: the sender votes worse than us in our round, so it has not
            // heard our vote (TCP would have delivered it; a multicast frame may be lost).
            // Answer now instead of at our next backoff expiry.
            self.answer(now);
        }
        self.record_election_vote(now, index, notice);
        self.check_decision(now);
    }

    /// A FOLLOWING or LEADING voter's report: it may complete our round's quorum, or show
    /// an established ensemble we can join.
    fn receive_settled_vote(&mut self, now: Instant, index: usize, notice: Notice) {
        if notice.round == self.round {
            self.record_election_vote(now, index, notice);
            if self.voters.agreeing(&notice.vote, notice.round) >= self.config.quorum()
                && self.check_leader(|p| p.election, notice.vote.leader, notice.round)
            {
                self.decide(now, notice.vote);
                return;
            }
        }
        // Joining an established ensemble: a quorum follows the same leader in the same
        // epoch, and the leader says it leads.
        self.voters[index].out_of_election = Some(notice);
        let following = self.voters.count(|n| {
            n.out_of_election.is_some_and(|o| {
                o.vote.leader == notice.vote.leader && o.vote.peer_epoch == notice.vote.peer_epoch
            })
        });
        if following >= self.config.quorum()
            && self.check_leader(|p| p.out_of_election, notice.vote.leader, notice.round)
        {
            self.round = notice.round;
            self.decide(now, notice.vote);
            return;
        }
        self.note_ensemble(now, (notice.vote.leader, notice.vote.peer_epoch));
    }

    /// A settled vote showed `ensemble` (leader, epoch) that we cannot join yet. If it is
    /// news (a partition healed, or we started beside a running ensemble), ask every voter
    /// for its vote now rather than at our next backed-off notification, which may be up
    /// to `max_notification_interval` away: its followers answer only their leader, so
    /// the votes the join needs come only as answers to ours. Beyond ZooKeeper, whose
    /// TCP delivered the one notification we sent at the start of the round. The backoff
    /// restarts from the minimum. At most one such broadcast per ensemble, and none while
    /// a notification is due within the minimum interval anyway (which also spaces these
    /// broadcasts, should ensembles alternate, by at least that interval).
    fn note_ensemble(&mut self, now: Instant, ensemble: (u64, u64)) {
        let min = self.config.min_notification_interval;
        let Role::Looking(looking) = &mut self.role else {
            return;
        };
        if looking.heard_ensemble == Some(ensemble) {
            return;
        }
        looking.heard_ensemble = Some(ensemble);
        looking.notification_interval = min;
        if self
            .timers
            .get(Timer::Notification)
            .is_none_or(|due| due > now + min)
        {
            self.broadcast(now);
        }
    }

    /// Store a voter's vote of this round; news restarts the notification timer (silence
    /// triggers a re-broadcast, and so does news of an ensemble: see `note_ensemble`).
    fn record_election_vote(&mut self, now: Instant, index: usize, notice: Notice) {
        if self.voters[index].election != Some(notice) {
            self.voters[index].election = Some(notice);
            if let Some(looking) = self.looking() {
                self.timers
                    .set(Timer::Notification, now + looking.notification_interval);
            }
        }
    }

    /// ZooKeeper's checkLeader: someone else must report LEADING itself; if it is us, the
    /// round must be ours.
    fn check_leader(
        &self,
        notice_of: impl Fn(&Peer) -> Option<Notice>,
        leader: u64,
        round: u64,
    ) -> bool {
        if leader == self.config.id {
            return round == self.round;
        }
        match self.config.voter_index(leader) {
            Some(i) => notice_of(&self.voters[i]).is_some_and(|n| n.state == ServerState::Leading),
            None => false,
        }
    }

    /// Decide if a quorum agrees with our proposal: after finalizeWait, or at once when
    /// every voter that is still there agrees.
    ///
    /// Deciding at once is safe when every voter's latest vote in this round equals our
    /// proposal P. A voter's vote only ever changes to a better one within a round, and its
    /// first vote of the round is its own initial vote or one better, so P is at least as
    /// good as every voter's initial vote: no voter can still produce a vote that beats P
    /// in this round, which is what finalizeWait waits for. (ZooKeeper had this rule until
    /// 3.4.)
    ///
    /// Voters that are gone are left out of "every voter": one that announced its shutdown
    /// (RESIGN) or stepped down for it (HANDOVER) sends nothing more; the leader we followed until our follower timeout
    /// fired on its silence is, by that same rule, down (until it is heard again); and
    /// any other voter silent for twice the detection window while we look (counted from
    /// the start of this election, or from its last frame if that came later) is treated
    /// as down too. Silence alone is a weak sign for the others, because followers only
    /// answer their leader (by unicast, when it takes answers so, so followers never hear
    /// each other while they follow): when a leader crashes, its followers fall silent
    /// with it, and one whose last answers were lost stays silent until its own timeout
    /// fires, up to a window after its last frame; a live voter that is LOOKING sends its
    /// vote at once and repeats it within the notification interval, so only a voter
    /// silent well past the start of our election is left out. The outcome is the one ZooKeeper reaches with
    /// those servers stopped: the remaining voters run the same FLE rules on the same
    /// votes, and a gone voter that comes back follows the established leader (FLE's
    /// out-of-election path) like any restarted server. Safety does not depend on this
    /// rule at all: LEADING still needs a quorum of promises and the lease. Without it,
    /// the survivors of a leader's crash always waited the full finalizeWait, because
    /// the crashed leader can never agree. When the last undecided voter only counts as
    /// gone later, finalizeWait is cut short to that moment.
    pub(super) fn check_decision(&mut self, now: Instant) {
        let Some(proposal) = self.proposal().filter(|p| !p.ineligible) else {
            // No candidate, or only an unhealthy one: nothing to decide (see `health`).
            self.timers.clear(Timer::Finalize);
            return;
        };
        let round = self.round;
        if self.voters.agreeing(&proposal, round) < self.config.quorum() {
            self.timers.clear(Timer::Finalize);
            return;
        }
        let others_gone_at = self.undecided_gone_at(&proposal, round);
        if others_gone_at <= now {
            self.decide(now, proposal);
            return;
        }
        let at = others_gone_at.min(now + self.config.finalize_wait);
        if self.timers.get(Timer::Finalize).is_none_or(|t| at < t) {
            self.timers.set(Timer::Finalize, at);
        }
    }

    /// When the last voter that does not (yet) agree with `proposal` in `round` counts as
    /// gone (see [`Node::check_decision`]): at once if it resigned or we timed out on it
    /// as its follower or it is handing over, else two detection windows after the start of this election or
    /// the last frame we accepted from it, whichever is later. `Instant::ZERO` when every
    /// voter agrees.
    fn undecided_gone_at(&self, proposal: &Vote, round: u64) -> Instant {
        let silence = self.config.sync_timeout() * 2;
        self.voters
            .iter()
            .enumerate()
            .filter(|(i, p)| Some(*i) != self.voters.own() && !p.agrees_with(proposal, round))
            .map(|(_, p)| {
                if p.resigned || p.handing_over || p.timed_out {
                    Instant::ZERO
                } else {
                    let heard = p.positions.map_or(self.started, |pos| pos.heard_at);
                    heard.max(self.election_started()) + silence
                }
            })
            .max()
            .unwrap_or(Instant::ZERO)
    }

    /// Nothing new arrived: re-broadcast and back off (the retransmission; the other
    /// early re-broadcast is on news of an ensemble, see `note_ensemble`).
    pub(super) fn notification_expired(&mut self, now: Instant) {
        let Role::Looking(looking) = &mut self.role else {
            return;
        };
        looking.back_off(self.config.max_notification_interval);
        self.broadcast(now);
    }

    /// finalizeWait passed without a better vote: decide if a quorum still agrees.
    pub(super) fn finalize_expired(&mut self, now: Instant) {
        let Some(proposal) = self.proposal() else {
            return;
        };
        if self.voters.agreeing(&proposal, self.round) >= self.config.quorum() {
            self.decide(now, proposal);
        }
    }

    /// The election is over: lead, follow or observe `vote.leader`.
    pub(super) fn decide(&mut self, now: Instant, vote: Vote) {
        if vote.leader == self.config.id && self.quarantine.is_active() {
            // Another board has our id: refuse to lead and stay LOOKING; the others time
            // out on us and elect someone else.
            return;
        }
        if vote.ineligible || (vote.leader == self.config.id && !self.eligible) {
            // An unhealthy candidate is never elected (see `health`).
            return;
        }
        self.timers.clear_all();
        if vote.leader == self.config.id {
            self.become_leader(now, vote);
        } else {
            self.become_follower(now, vote);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote, Sender};
    use super::*;
    use crate::election::{Event, Output};

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut looking = Looking {
            initial: None,
            proposal: None,
            notification_interval: Duration::from_millis(50),
            heard_ensemble: None,
        };
        let max = Duration::from_millis(150);
        looking.back_off(max);
        assert_eq!(looking.notification_interval, Duration::from_millis(100));
        looking.back_off(max);
        assert_eq!(looking.notification_interval, max);
        looking.notification_interval = Duration::MAX;
        looking.back_off(Duration::MAX);
        assert_eq!(looking.notification_interval, Duration::MAX);
    }

    /// Node 1 of three, alone since its start until its notification backoff reached its
    /// cap; returns the time of its last broadcast.
    fn backed_off_to_the_cap(node: &mut Node) -> Instant {
        drain(node);
        let mut now = Instant::ZERO;
        for _ in 0..10 {
            now = node.poll_timeout().expect("notification timer");
            node.handle_timeout(now);
            drain(node);
        }
        let max = node.config.max_notification_interval;
        assert_eq!(node.looking().unwrap().notification_interval, max);
        now
    }

    #[test]
    fn a_restored_link_restarts_the_backoff_and_rebroadcasts() {
        let mut node = started(1, &[1, 2, 3]);
        let now = backed_off_to_the_cap(&mut node);
        let round = node.round();
        node.handle_link_restored(now);
        assert_eq!(frames(&mut node).len(), 1, "the vote goes out at once");
        assert_eq!(node.round(), round, "same round");
        let min = node.config.min_notification_interval;
        assert_eq!(node.looking().unwrap().notification_interval, min);
        assert_eq!(node.poll_timeout(), Some(now + min));

        // A leader (a single voter) sends nothing extra.
        let mut single = started(1, &[1]);
        drain(&mut single);
        assert_eq!(single.state(), ServerState::Leading);
        single.handle_link_restored(Instant::ZERO);
        assert!(frames(&mut single).is_empty());
    }

    #[test]
    fn news_of_an_ensemble_asks_every_voter_at_once_but_not_twice() {
        let mut node = started(1, &[1, 2, 3]);
        let mut now = backed_off_to_the_cap(&mut node);
        let min = node.config.min_notification_interval;
        // The link heals: the leader's heartbeat arrives (3 leads, 2 follows it), 10 ms
        // after our last broadcast. One leader is not a quorum to join on.
        let mut three = Sender::new(3);
        now = now + Duration::from_millis(10);
        node.handle_frame(now, &three.frame(ServerState::Leading, vote(3, 0, 7), 4));
        assert_eq!(node.state(), ServerState::Looking);
        assert_eq!(frames(&mut node).len(), 1, "our vote goes out at once");
        assert_eq!(node.looking().unwrap().notification_interval, min);
        assert_eq!(node.poll_timeout(), Some(now + min));
        // More heartbeats of the same ensemble are no news.
        now = now + Duration::from_millis(5);
        node.handle_frame(now, &three.frame(ServerState::Leading, vote(3, 0, 7), 4));
        assert!(frames(&mut node).is_empty());
        // Another ensemble within the minimum interval: the backoff restarts, but the
        // broadcast waits for the timer already due.
        now = now + Duration::from_millis(5);
        node.handle_frame(now, &three.frame(ServerState::Leading, vote(3, 0, 8), 5));
        assert!(frames(&mut node).is_empty());
        assert_eq!(node.looking().unwrap().notification_interval, min);
        // The follower's answer completes the quorum: we decide to follow 3 (published
        // once its epoch reaches us).
        let mut two = Sender::new(2);
        node.handle_frame(now, &two.frame(ServerState::Following, vote(3, 0, 8), 5));
        assert!(matches!(node.role, Role::Following(_)), "decided to follow");
    }

    #[test]
    fn a_new_round_compares_with_the_initial_vote() {
        let looking = Looking {
            initial: Some(vote(2, 5, 0)),
            // An old round's proposal better than both: forgotten.
            proposal: Some(vote(3, 9, 0)),
            notification_interval: Duration::from_millis(50),
            heard_ensemble: None,
        };
        assert_eq!(looking.proposal_in_new_round(vote(1, 4, 0)), vote(2, 5, 0));
        assert_eq!(looking.proposal_in_new_round(vote(1, 6, 0)), vote(1, 6, 0));
        let observer = Looking {
            initial: None,
            ..looking
        };
        assert_eq!(observer.proposal_in_new_round(vote(1, 4, 0)), vote(1, 4, 0));
    }

    #[test]
    fn quorum_waits_for_finalize_and_everyone_decides_at_once() {
        // Node 3 of three: 2 agreeing in round 1 is a quorum, not everyone.
        let mut node = started(3, &[1, 2, 3]);
        drain(&mut node);
        let mut two = Sender::new(2);
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        assert_eq!(node.state(), ServerState::Looking);
        assert!(node.timers.is_set(Timer::Finalize));
        // finalizeWait passes with the quorum intact: decide.
        node.handle_timeout(Instant::ZERO + node.config.finalize_wait);
        assert_eq!(node.proposal(), None, "no longer looking");
        assert!(matches!(node.role, Role::Leading(_)));

        let mut node = started(3, &[1, 2, 3]);
        drain(&mut node);
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        node.handle_frame(
            Instant::ZERO,
            &one.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        assert!(matches!(node.role, Role::Leading(_)), "every voter agrees");
    }

    #[test]
    fn a_voter_silent_for_two_detection_windows_is_left_out_of_everyone() {
        // Node 3 of three heard voter 1 last at 0 (it crashed then); voter 2's agreeing
        // vote arrives once 1 has been silent for twice sync-limit ticks: decide at once.
        let mut node = started(3, &[1, 2, 3]);
        drain(&mut node);
        let silence = node.config.sync_timeout() * 2;
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        node.handle_frame(
            Instant::ZERO,
            &one.frame(ServerState::Looking, vote(1, 0, 0), 1),
        );
        node.handle_frame(
            Instant::ZERO + silence,
            &two.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        assert!(matches!(node.role, Role::Leading(_)), "1 is gone: decided");

        // One tick short of that, voter 1 still counts; finalizeWait (4 ticks here) is
        // cut short to the moment it counts as gone, one tick later.
        let mut config = crate::election::Config::new(3, &[1, 2, 3]).unwrap();
        config.finalize_wait = config.tick * 4;
        let mut node = Node::new(config, crate::election::Epochs::default(), 1).unwrap();
        node.start(Instant::ZERO);
        drain(&mut node);
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        let heard = Instant::ZERO + Duration::from_millis(10);
        node.handle_frame(heard, &one.frame(ServerState::Looking, vote(1, 0, 0), 1));
        let agreed = heard + silence - node.config.tick;
        node.handle_frame(agreed, &two.frame(ServerState::Looking, vote(3, 0, 0), 1));
        assert_eq!(node.state(), ServerState::Looking);
        assert_eq!(node.timers.get(Timer::Finalize), Some(heard + silence));
        node.handle_timeout(heard + silence - Duration::from_micros(1));
        assert_eq!(node.state(), ServerState::Looking);
        node.handle_timeout(heard + silence);
        assert!(matches!(node.role, Role::Leading(_)));
    }

    #[test]
    fn the_leader_we_timed_out_on_is_left_out_at_once() {
        // Node 1 follows 3; 3 falls silent and 1's follower timeout fires. 2, which
        // followed 3 too and fell silent with it, votes for itself: with 3 left out,
        // 1 and 2 are everyone, and they decide without finalizeWait.
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let (mut two, mut three) = (Sender::new(2), Sender::new(3));
        node.handle_frame(
            Instant::ZERO,
            &three.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        assert!(matches!(node.role, Role::Following(_)));
        let timeout = node
            .timers
            .get(Timer::SyncTimeout)
            .expect("follower timeout");
        node.handle_timeout(timeout);
        assert_eq!(node.state(), ServerState::Looking);
        assert_eq!(node.proposal(), Some(vote(1, 0, 0)));
        let later = timeout + Duration::from_millis(2);
        node.handle_frame(later, &two.frame(ServerState::Looking, vote(2, 0, 0), 2));
        assert!(
            matches!(node.role, Role::Following(f) if f.vote.leader == 2),
            "decided at once"
        );
        // Heard again, 3 counts like any voter.
        assert!(node.voters[2].timed_out);
        node.handle_frame(later, &three.frame(ServerState::Looking, vote(3, 0, 0), 2));
        assert!(!node.voters[2].timed_out);
    }

    #[test]
    fn a_follower_unheard_while_following_is_not_gone_at_once() {
        // Node 1 of five follows 5 for a second without hearing 2, 3 or 4 (followers
        // answer a leader that takes answers by unicast to it alone). 5 falls silent;
        // 3 and 2 vote for 3, which node 1 adopts: a quorum agrees, 5 is gone (we timed
        // out on it), but 4 is silent only since this election started, not for two
        // detection windows: it may still send a better vote, so finalizeWait runs.
        let mut node = started(1, &[1, 2, 3, 4, 5]);
        drain(&mut node);
        let mut senders: Vec<Sender> = (1..=5).map(Sender::new).collect();
        for sender in &mut senders[1..] {
            let f = sender.frame(ServerState::Looking, vote(5, 0, 0), 1);
            node.handle_frame(Instant::ZERO, &f);
        }
        assert!(matches!(node.role, Role::Following(f) if f.vote.leader == 5));
        let mut t = Instant::ZERO;
        for _ in 0..10 {
            t = t + Duration::from_millis(100);
            let f = senders[4].frame(ServerState::Leading, vote(5, 0, 0), 1);
            node.handle_frame(t, &f);
        }
        drain(&mut node);
        let timeout = node.timers.get(Timer::SyncTimeout).expect("following");
        node.handle_timeout(timeout);
        assert_eq!(node.state(), ServerState::Looking);
        let later = timeout + Duration::from_millis(2);
        for i in [2, 1] {
            let f = senders[i].frame(ServerState::Looking, vote(3, 0, 0), 2);
            node.handle_frame(later, &f);
        }
        assert_eq!(node.proposal(), Some(vote(3, 0, 0)));
        assert_eq!(node.state(), ServerState::Looking, "4 is not gone yet");
        assert_eq!(
            node.timers.get(Timer::Finalize),
            Some(later + node.config.finalize_wait)
        );
    }

    #[test]
    fn a_voter_heard_within_the_window_still_gets_finalize_wait() {
        // Voter 1 keeps sending (a worse vote, it has not heard ours yet): it could still
        // send a better one, so the quorum waits the full finalizeWait.
        let mut node = started(3, &[1, 2, 3]);
        drain(&mut node);
        let (mut one, mut two) = (Sender::new(1), Sender::new(2));
        let t = Instant::ZERO + node.config.sync_timeout() * 3;
        node.handle_frame(t, &one.frame(ServerState::Looking, vote(1, 0, 0), 1));
        node.handle_frame(t, &two.frame(ServerState::Looking, vote(3, 0, 0), 1));
        assert_eq!(node.state(), ServerState::Looking);
        assert_eq!(
            node.timers.get(Timer::Finalize),
            Some(t + node.config.finalize_wait)
        );
    }

    #[test]
    fn agreement_needs_the_same_round() {
        // Node 3 is in round 1; node 2 votes for 3 but in a round node 3 then adopts,
        // which forgets round 1's votes: only the new round's votes count.
        let mut node = started(3, &[1, 2, 3]);
        drain(&mut node);
        let mut two = Sender::new(2);
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(2, 0, 0), 1),
        );
        assert_eq!(node.voters.agreeing(&vote(3, 0, 0), 1), 1);
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(3, 0, 0), 4),
        );
        assert_eq!(node.round(), 4);
        assert_eq!(node.voters.agreeing(&vote(3, 0, 0), 1), 0);
        assert_eq!(node.voters.agreeing(&vote(3, 0, 0), 4), 2);
        assert!(node.timers.is_set(Timer::Finalize));
    }

    #[test]
    fn a_lagging_sender_is_answered_but_not_followed() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let (mut two, mut three) = (Sender::new(2), Sender::new(3));
        // A later round: adopted, with the better of its vote and our initial one.
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(2, 0, 0), 2),
        );
        assert_eq!((node.round(), node.proposal()), (2, Some(vote(2, 0, 0))));
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].repr.vote, sent[0].repr.round), (vote(2, 0, 0), 2));
        // A better vote from an older round: answered with our state, not adopted.
        node.handle_frame(
            Instant::from_millis(1),
            &three.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].repr.vote, sent[0].repr.round), (vote(2, 0, 0), 2));
        assert_eq!(node.proposal(), Some(vote(2, 0, 0)));
    }

    #[test]
    fn joins_an_established_leader_reported_by_a_quorum() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let (mut two, mut three) = (Sender::new(2), Sender::new(3));
        // A follower of 3 in a later round alone is not enough.
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Following, vote(3, 0, 4), 7),
        );
        assert_eq!(node.state(), ServerState::Looking);
        // The leader itself reports LEADING: a quorum (2 and 3) with the leader leading.
        node.handle_frame(
            Instant::ZERO,
            &three.frame(ServerState::Leading, vote(3, 0, 4), 7),
        );
        assert!(matches!(node.role, Role::Following(f) if f.vote == vote(3, 0, 4)));
        assert_eq!(node.round(), 7);
        // Not reported before the leader establishes its epoch.
        assert!(!drain(&mut node)
            .iter()
            .any(|o| matches!(o, Output::Event(Event::StateChanged(_)))));
    }

    #[test]
    fn resign_of_the_candidate_restarts_the_election() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let mut three = Sender::new(3);
        node.handle_frame(
            Instant::ZERO,
            &three.frame(ServerState::Looking, vote(3, 0, 0), 1),
        );
        assert_eq!(node.proposal(), Some(vote(3, 0, 0)));
        let mut resign = three.frame(ServerState::Looking, vote(3, 0, 0), 1);
        resign.flags = crate::wire::Flags::RESIGN;
        node.handle_frame(Instant::from_millis(1), &resign);
        assert_eq!(node.round(), 2);
        assert_eq!(node.proposal(), Some(vote(1, 0, 0)));
    }
}
