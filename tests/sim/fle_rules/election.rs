//! FastLeaderElection's election proper (`lookForLeader`, `WorkerReceiver`,
//! `totalOrderPredicate`, `checkLeader`): rounds, the total order of votes, quorum and
//! finalize wait, the decision, notification backoff, and joining an established
//! ensemble.

use std::sync::atomic::Ordering;

use votecast_core::election::ServerState::{Following, Leading, Looking};
use votecast_core::election::{Config, Epochs, Event, Instant, Node, Output, RestartReason};
use votecast_core::wire::{Flags, Repr, NO_LEADER};

use super::{
    feed, follow_three, follow_three_with, frame, looking, ms, new_node, only_transmit, outputs,
    quiet_until, started, t, timeout, transmits, us, vote, SEQUENCE,
};

/// lookForLeader: "logicalclock.incrementAndGet(); updateProposal(getInitId(),
/// getInitLastLoggedZxid(), getPeerEpoch()); sendNotifications();" Module docs: a new
/// election increments the round and votes for itself (id, zxid, current epoch); the zxid
/// is read when an election starts.
#[test]
fn new_election_increments_round_and_votes_for_itself() {
    let epochs = Epochs {
        accepted_epoch: 3,
        accepted_leader: 2,
        current_epoch: 3,
    };
    let mut node = Node::new(Config::new(1, &[1, 2, 3]).unwrap(), epochs, 7).unwrap();
    node.set_zxid(0x3_0000_0010);
    node.start(t(0));
    let f = only_transmit(&outputs(&mut node));
    assert_eq!(f.state, Looking);
    assert_eq!(f.sender, 1);
    assert_eq!(f.incarnation, 7);
    assert_eq!(f.round, 1);
    assert_eq!(f.vote, vote(1, 0x3_0000_0010, 3));
    assert_eq!(f.accepted_epoch, 3);
    assert_eq!((f.epoch, f.echo, f.flags), (0, 0, Flags::empty()));
    assert_eq!(node.round(), 1);
    assert_eq!(node.proposal(), Some(vote(1, 0x3_0000_0010, 3)));
    assert_eq!(node.state(), Looking);
    assert_eq!(node.stats().elections_started, 1);

    // Follow 3, then let the follower timeout start the next election with a new zxid.
    let decided = transmits(&follow_three_with(
        &mut node,
        t(10),
        vote(3, 0x3_0000_0010, 3),
    ));
    assert_eq!(decided.last().map(|f| f.state), Some(Following));
    node.set_zxid(0x3_0000_0020);
    let deadline = node.poll_timeout().unwrap();
    assert_eq!(deadline, t(10) + node.config().sync_timeout());
    // The new round is reported with its reason, then voted in.
    let mut out = timeout(&mut node, deadline);
    assert!(
        matches!(
            out.first(),
            Some(Output::Event(Event::Restarted(r)))
                if r.reason == RestartReason::SyncTimeout && r.round == 2
        ),
        "{out:?}"
    );
    out.remove(0);
    let f = only_transmit(&out);
    assert_eq!(f.state, Looking);
    assert_eq!(f.round, 2);
    assert_eq!(f.vote, vote(1, 0x3_0000_0020, 3));
    assert_eq!(node.round(), 2);
    assert_eq!(node.proposal(), Some(vote(1, 0x3_0000_0020, 3)));
    assert_eq!(node.stats().elections_started, 2);
}

/// totalOrderPredicate: a vote wins on a greater peer epoch, then a greater zxid, then a
/// greater server id. lookForLeader, equal round: "else if (totalOrderPredicate(...)) {
/// updateProposal(...); sendNotifications(); }" — a vote that does not win is recorded
/// and not adopted. Beyond ZooKeeper, a strictly worse vote is answered with our own
/// proposal (its sender evidently lost our frame); an equal one needs no answer.
#[test]
fn total_order_predicate_epoch_then_zxid_then_id() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    // (sender, vote, adopted?) in round 1, starting from our own (1, 0, 0).
    let steps = [
        (3, vote(3, 5, 0), true),    // greater zxid
        (2, vote(2, 5, 0), false),   // same epoch and zxid, smaller id
        (2, vote(2, 9, 0), true),    // zxid beats a greater id
        (5, vote(5, 9, 0), true),    // same epoch and zxid, greater id
        (4, vote(4, 0, 1), true),    // peer epoch beats zxid and id
        (5, vote(5, 100, 0), false), // greater zxid and id, smaller peer epoch
        (3, vote(3, 0, 1), false),   // same epoch and zxid, smaller id
        (4, vote(4, 0, 1), false),   // equal votes do not beat each other
    ];
    let mut proposal = vote(1, 0, 0);
    for (i, (sender, v, adopted)) in steps.into_iter().enumerate() {
        let out = feed(&mut node, t(1 + i as u64), &looking(sender, v, 1));
        if adopted {
            proposal = v;
            let f = only_transmit(&out);
            assert_eq!((f.state, f.vote, f.round), (Looking, v, 1), "step {i}");
        } else if v == proposal {
            assert!(
                out.is_empty(),
                "step {i}: an equal vote needs no answer: {out:?}"
            );
        } else {
            // Beyond ZooKeeper: a worse vote in our round means the sender missed ours
            // (lossy medium), so it is answered with our unchanged proposal.
            let f = only_transmit(&out);
            assert_eq!(
                (f.state, f.vote, f.round),
                (Looking, proposal, 1),
                "step {i}"
            );
        }
        assert_eq!(node.proposal(), Some(proposal), "step {i}");
        assert_eq!(node.round(), 1);
    }
}

/// lookForLeader, LOOKING notification with "n.electionEpoch > logicalclock": set the
/// logical clock, "recvset.clear()", compare the received vote with the *initial* vote
/// (getInitId, getInitLastLoggedZxid, getPeerEpoch), update the proposal and
/// sendNotifications. Module docs: "take the better of the frame's vote and our *initial*
/// vote, broadcast".
#[test]
fn larger_round_adopts_round_forgets_votes_and_compares_with_initial_vote() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    quiet_until(&mut node, t(1000));
    // Round 1: 5 votes for itself and is adopted; 3 and 4 vote for 2 (worse: recorded, and
    // answered with our proposal so they learn of 5).
    let f = only_transmit(&feed(&mut node, t(1000), &looking(5, vote(5, 0, 0), 1)));
    assert_eq!(f.vote, vote(5, 0, 0));
    for (sender, at) in [(3, 1001), (4, 1002)] {
        let f = only_transmit(&feed(&mut node, t(at), &looking(sender, vote(2, 0, 0), 1)));
        assert_eq!((f.vote, f.round), (vote(5, 0, 0), 1));
    }

    // Round 2 from 2, voting for 2: propose max(initial (1,0,0), (2,0,0)) = 2, not 5.
    let now = t(1010);
    let f = only_transmit(&feed(&mut node, now, &looking(2, vote(2, 0, 0), 2)));
    assert_eq!((f.state, f.vote, f.round), (Looking, vote(2, 0, 0), 2));
    assert_eq!(node.round(), 2);
    assert_eq!(node.proposal(), Some(vote(2, 0, 0)));
    // Round-1 votes were forgotten: only we and 2 agree on 2, which is no quorum of 5,
    // so no finalizeWait runs; the next deadline is the notification, which repeats the
    // new proposal from the shortest interval (beyond ZooKeeper) and decides nothing.
    let notification = node.poll_timeout().unwrap();
    assert_eq!(
        notification,
        now + node.config().min_notification_interval,
        "a new proposal restarts the backoff"
    );
    let f = only_transmit(&timeout(&mut node, notification));
    assert_eq!((f.state, f.vote, f.round), (Looking, vote(2, 0, 0), 2));
    // 3's round-2 vote for 2 makes a quorum of round-2 votes.
    let later = notification + ms(10);
    assert!(feed(&mut node, later, &looking(3, vote(2, 0, 0), 2)).is_empty());
    assert_eq!(
        node.poll_timeout(),
        Some(later + node.config().finalize_wait)
    );

    // A larger round whose vote is worse than our initial vote: we propose ourselves again.
    let mut node = new_node(1, &[1, 2, 3, 4, 5], Epochs::default());
    node.set_zxid(10);
    node.start(t(0));
    outputs(&mut node);
    let f = only_transmit(&feed(&mut node, t(1), &looking(5, vote(5, 20, 0), 1)));
    assert_eq!(f.vote, vote(5, 20, 0));
    let f = only_transmit(&feed(&mut node, t(2), &looking(2, vote(2, 0, 0), 2)));
    assert_eq!((f.vote, f.round), (vote(1, 10, 0), 2));
    assert_eq!(node.proposal(), Some(vote(1, 10, 0)));
}

/// lookForLeader, LOOKING notification with "n.electionEpoch < logicalclock": break (not
/// recorded: the sender's vote of our round stays in recvset). WorkerReceiver: a LOOKING
/// receiver answers a LOOKING sender of a smaller round with its current vote. Module
/// docs: answers come in a burst of at most 4, then one per `answer_interval`.
#[test]
fn smaller_round_is_answered_not_recorded_and_rate_limited() {
    // Seven voters: quorum 4, so three agreeing votes leave room to observe a fourth.
    let mut node = started(1, &[1, 2, 3, 4, 5, 6, 7], t(0));
    quiet_until(&mut node, t(1000));
    let f = only_transmit(&feed(&mut node, t(1000), &looking(3, vote(3, 0, 0), 2)));
    assert_eq!((f.vote, f.round), (vote(3, 0, 0), 2));
    assert!(feed(&mut node, t(1000), &looking(4, vote(3, 0, 0), 2)).is_empty());

    // 4 restarts and sends round 1 for itself: answered, and 4's round-2 vote stays. The
    // first stale frame of a voter in our round restarts our backoff (beyond ZooKeeper):
    // the answer is that re-broadcast, outside the answers' budget, and the next
    // notification is due after the shortest interval.
    let restarted = Repr {
        incarnation: 2,
        ..looking(4, vote(4, 0, 0), 1)
    };
    let f = only_transmit(&feed(&mut node, t(1001), &restarted));
    assert_eq!((f.state, f.round, f.vote), (Looking, 2, vote(3, 0, 0)));
    assert_eq!(
        node.poll_timeout(),
        Some(t(1001) + node.config().min_notification_interval)
    );

    // 100 stale-round frames within 1 ms, each with a vote better than ours: the first
    // restarts the backoff, the rest are answered from a burst of at most 4.
    let base = t(1020);
    let mut answers = 0;
    for i in 0..100 {
        let out = feed(&mut node, base + us(10 * i), &looking(2, vote(2, 99, 0), 1));
        for f in transmits(&out) {
            assert_eq!((f.state, f.round, f.vote), (Looking, 2, vote(3, 0, 0)));
            answers += 1;
        }
        assert_eq!(out.len(), transmits(&out).len(), "only answers: {out:?}");
    }
    assert_eq!(
        answers,
        1 + 4,
        "one restart, then a burst of at most 4 answers"
    );
    assert_eq!(
        node.proposal(),
        Some(vote(3, 0, 0)),
        "not recorded or adopted"
    );
    assert_eq!(node.round(), 2);

    // Then one frame per millisecond for 100 ms: about one answer per answer interval (a
    // refill drops the fraction of an interval, so the phase of the frames costs one).
    let interval = node.config().answer_interval();
    assert_eq!(interval, ms(10));
    let mut answers = 0;
    for i in 1..=100 {
        let out = feed(&mut node, base + ms(i), &looking(2, vote(2, 99, 0), 1));
        answers += transmits(&out).len();
    }
    assert!(
        (8..=11).contains(&answers),
        "about one answer per {interval:?} over 100 ms, got {answers}"
    );
    assert_eq!(node.proposal(), Some(vote(3, 0, 0)));

    // 5's round-2 vote is the fourth with us, 3 and 4 (whose round-2 vote was kept): a
    // quorum of 7, so finalizeWait starts.
    let now = base + ms(101);
    assert!(feed(&mut node, now, &looking(5, vote(3, 0, 0), 2)).is_empty());
    assert_eq!(node.poll_timeout(), Some(now + node.config().finalize_wait));
}

/// Voters 2 and 3 of node 1's five are heard at `at`, voting for themselves in round 1,
/// and the node adopts 3's vote: they are live, so "every voter agrees" needs them, and
/// they do not agree with the vote for 5 that follows.
fn hear_two_and_three(node: &mut Node, at: Instant) {
    feed(node, at, &looking(2, vote(2, 0, 0), 1));
    feed(node, at, &looking(3, vote(3, 0, 0), 1));
    assert_eq!(node.proposal(), Some(vote(3, 0, 0)));
}

/// lookForLeader: "if (voteSet.hasAllQuorums()) { while ((n = recvqueue.poll(finalizeWait))
/// != null) {...} if (n == null) { setPeerState(...) } }" — a strict majority (QuorumMaj)
/// starts finalizeWait, and the decision is taken only when it expires.
#[test]
fn quorum_starts_finalize_wait_and_decides_when_it_expires() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    quiet_until(&mut node, t(1000));
    // 2 and 3 are heard (so not left out as silent) with votes that lose to 5.
    hear_two_and_three(&mut node, t(990));
    let finalize_wait = node.config().finalize_wait;

    // Two agreeing votes (ours and 5's) of five: no finalizeWait. The next deadline
    // repeats the new proposal (from the shortest interval, beyond ZooKeeper) and decides
    // nothing.
    only_transmit(&feed(&mut node, t(1000), &looking(5, vote(5, 0, 0), 1)));
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));
    let deadline = node.poll_timeout().unwrap();
    let f = only_transmit(&timeout(&mut node, deadline));
    assert_eq!((f.state, f.vote, f.round), (Looking, vote(5, 0, 0), 1));
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));

    // Three: finalizeWait starts.
    assert!(feed(&mut node, t(1060), &looking(4, vote(5, 0, 0), 1)).is_empty());
    let finalize_at = t(1060) + finalize_wait;
    assert_eq!(node.poll_timeout(), Some(finalize_at));

    // A fourth agreeing vote neither decides early nor extends the wait.
    assert!(feed(&mut node, t(1070), &looking(3, vote(5, 0, 0), 1)).is_empty());
    assert_eq!(node.poll_timeout(), Some(finalize_at));

    // Not before the timer fires...
    assert!(timeout(&mut node, finalize_at - us(1)).is_empty());
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));
    // ...but when it does: follow 5.
    let f = only_transmit(&timeout(&mut node, finalize_at));
    assert_eq!((f.state, f.vote, f.round), (Following, vote(5, 0, 0), 1));
    assert_eq!(node.proposal(), None);
}

/// lookForLeader, finalizeWait loop: "if (totalOrderPredicate(n.leader, ..., proposedLeader,
/// ...)) { recvqueue.put(n); break; }" — a better vote ends the wait without a decision and
/// is then processed (adopted and broadcast).
#[test]
fn better_vote_during_finalize_wait_cancels_it_and_is_adopted() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    quiet_until(&mut node, t(1000));
    hear_two_and_three(&mut node, t(990));
    feed(&mut node, t(1000), &looking(5, vote(5, 0, 0), 1));
    feed(&mut node, t(1010), &looking(4, vote(5, 0, 0), 1));
    let finalize_at = t(1010) + node.config().finalize_wait;
    assert_eq!(node.poll_timeout(), Some(finalize_at));

    let f = only_transmit(&feed(&mut node, t(1030), &looking(3, vote(3, 1, 0), 1)));
    assert_eq!((f.state, f.vote, f.round), (Looking, vote(3, 1, 0), 1));
    assert_eq!(node.proposal(), Some(vote(3, 1, 0)));
    let next = node.poll_timeout().unwrap();
    assert!(next > finalize_at, "finalizeWait cancelled: {next:?}");
    assert!(timeout(&mut node, finalize_at).is_empty(), "no decision");
    assert_eq!(node.proposal(), Some(vote(3, 1, 0)));

    // The drain loop compares votes only, not rounds: a better vote from a smaller round
    // also ends the wait without a decision, though it is then dropped (and answered).
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    quiet_until(&mut node, t(1000));
    hear_two_and_three(&mut node, t(990));
    feed(&mut node, t(1000), &looking(5, vote(5, 0, 0), 2));
    feed(&mut node, t(1010), &looking(4, vote(5, 0, 0), 2));
    let finalize_at = t(1010) + node.config().finalize_wait;
    assert_eq!(node.poll_timeout(), Some(finalize_at));
    let f = only_transmit(&feed(&mut node, t(1030), &looking(3, vote(3, 1, 0), 1)));
    assert_eq!((f.state, f.vote, f.round), (Looking, vote(5, 0, 0), 2));
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));
    assert!(timeout(&mut node, finalize_at).is_empty(), "no decision");
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));
}

/// Module docs / `check_decision`: decide at once when *every* voter's vote of this round
/// equals our proposal (ZooKeeper up to 3.4 had this rule); a mere quorum waits.
#[test]
fn all_voters_agreeing_decides_at_once() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    feed(&mut node, t(1), &looking(5, vote(5, 0, 0), 1));
    feed(&mut node, t(2), &looking(4, vote(5, 0, 0), 1));
    assert!(feed(&mut node, t(3), &looking(3, vote(5, 0, 0), 1)).is_empty());
    assert_eq!(
        node.proposal(),
        Some(vote(5, 0, 0)),
        "4 of 5: still waiting"
    );

    let out = feed(&mut node, t(4), &looking(2, vote(5, 0, 0), 1));
    let f = only_transmit(&out);
    assert_eq!((f.state, f.vote, f.round), (Following, vote(5, 0, 0), 1));
    assert_eq!(node.proposal(), None);
    // No finalize deadline is left: the next one is the follower timeout.
    assert_eq!(
        node.poll_timeout(),
        Some(t(4) + node.config().sync_timeout())
    );
}

/// Module docs / `check_decision`: "A voter that announced its shutdown (RESIGN) sends no
/// further votes and is left out of 'every voter'."
#[test]
fn resigned_voter_is_left_out_of_all_voters_agree() {
    // Without a resignation, a quorum of 3 (us and 3) waits for finalizeWait.
    let mut node = started(1, &[1, 2, 3], t(0));
    let f = only_transmit(&feed(&mut node, t(2), &looking(3, vote(3, 0, 0), 1)));
    assert_eq!(f.state, Looking);
    assert_eq!(node.proposal(), Some(vote(3, 0, 0)));

    // With 2 resigned, us and 3 are every remaining voter: decide at once.
    let mut node = started(1, &[1, 2, 3], t(0));
    let mut resign = looking(2, vote(2, 0, 0), 1);
    resign.flags = Flags::RESIGN;
    assert!(feed(&mut node, t(1), &resign).is_empty());
    let f = only_transmit(&feed(&mut node, t(2), &looking(3, vote(3, 0, 0), 1)));
    assert_eq!((f.state, f.vote), (Following, vote(3, 0, 0)));
    assert_eq!(node.proposal(), None);

    // The order does not matter: a resignation during finalizeWait completes "everyone".
    let mut node = started(1, &[1, 2, 3], t(0));
    feed(&mut node, t(1), &looking(3, vote(3, 0, 0), 1));
    let mut resign = looking(2, vote(2, 0, 0), 1);
    resign.flags = Flags::RESIGN;
    let f = only_transmit(&feed(&mut node, t(2), &resign));
    assert_eq!((f.state, f.vote), (Following, vote(3, 0, 0)));
}

/// lookForLeader: "if (n == null) { sendNotifications(); ... notTimeout = Math.min(notTimeout
/// * 2, maxNotificationInterval); }" — silence re-broadcasts, with exponential backoff.
#[test]
fn notification_backoff_doubles_up_to_max_interval() {
    let mut node = started(1, &[1, 2, 3], t(0));
    let expected = [50, 100, 200, 400, 800, 1600, 2000, 2000, 2000];
    let mut previous = t(0);
    let mut last_sequence = 1;
    for (i, delta) in expected.into_iter().enumerate() {
        let deadline = node.poll_timeout().unwrap();
        assert_eq!(deadline, previous + ms(delta), "expiry {i}");
        assert!(timeout(&mut node, deadline - us(1)).is_empty());
        let f = only_transmit(&timeout(&mut node, deadline));
        assert_eq!((f.state, f.vote, f.round), (Looking, vote(1, 0, 0), 1));
        assert!(f.sequence > last_sequence);
        last_sequence = f.sequence;
        previous = deadline;
    }
    assert_eq!(node.round(), 1, "re-broadcasting is not a new election");
}

/// lookForLeader, FOLLOWING/LEADING notification (receivedFollowingNotification): "Before
/// joining an established ensemble, verify that a majority are following the same leader"
/// (`outofelection`, equal by leader and peer epoch) "&& checkLeader(outofelection,
/// n.leader, n.electionEpoch)" — the leader itself must be reported LEADING. Our own
/// (better) vote plays no part; the round becomes the leader's.
#[test]
fn joining_established_ensemble_needs_quorum_and_leaders_own_leading_frame() {
    let voters = [1, 2, 3, 4, 5];
    let epochs = Epochs {
        accepted_epoch: 4,
        accepted_leader: 2,
        current_epoch: 4,
    };
    let ours = vote(1, 100, 4);
    let theirs = vote(2, 50, 4);
    assert!(votecast_core::election::beats(&ours, &theirs));
    let mut leading = frame(2, Leading, theirs, 7);
    leading.epoch = 4;
    leading.flags = Flags::ESTABLISHED;

    // Followers of 2 (one with another peer epoch, which does not count) and 2's LEADING
    // frame: one short of a quorum until 5 reports too.
    let mut node = new_node(1, &voters, epochs);
    node.set_zxid(100);
    node.start(t(0));
    outputs(&mut node);
    assert_eq!(node.proposal(), Some(ours));
    assert!(feed(&mut node, t(1), &frame(3, Following, theirs, 7)).is_empty());
    assert!(feed(&mut node, t(2), &frame(4, Following, vote(2, 50, 3), 7)).is_empty());
    assert!(feed(&mut node, t(3), &leading).is_empty());
    assert_eq!(node.proposal(), Some(ours));
    let f = only_transmit(&feed(&mut node, t(4), &frame(5, Following, theirs, 7)));
    assert_eq!((f.state, f.vote, f.round), (Following, theirs, 7));
    assert_eq!(node.proposal(), None);
    assert_eq!(node.round(), 7);

    // A quorum of followers without 2's own LEADING frame: no decision...
    let mut node = new_node(1, &voters, epochs);
    node.set_zxid(100);
    node.start(t(0));
    outputs(&mut node);
    for (i, sender) in [3, 4, 5].into_iter().enumerate() {
        let out = feed(
            &mut node,
            t(1 + i as u64),
            &frame(sender, Following, theirs, 7),
        );
        assert!(out.is_empty(), "{out:?}");
    }
    assert_eq!(node.proposal(), Some(ours));
    assert_eq!(node.round(), 1);
    // ...until it arrives.
    leading.sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let f = only_transmit(&feed(&mut node, t(5), &leading));
    assert_eq!((f.state, f.vote, f.round), (Following, theirs, 7));
}

/// WorkerReceiver: "if the receiver is not LOOKING and the sender is, send back the current
/// vote" — a follower answers LOOKING frames (of voters and non-voters) with its FOLLOWING
/// state, and stays FOLLOWING.
#[test]
fn follower_answers_looking_frames_with_following_state() {
    let mut node = started(1, &[1, 2, 3], t(0));
    let decided = follow_three(&mut node, t(1));
    assert_eq!(transmits(&decided).last().unwrap().state, Following);

    let f = only_transmit(&feed(&mut node, t(10), &looking(2, vote(2, 0, 0), 2)));
    assert_eq!((f.state, f.vote, f.round), (Following, vote(3, 0, 0), 1));
    assert_eq!(f.sender, 1);
    let f = only_transmit(&feed(
        &mut node,
        t(11),
        &looking(9, vote(NO_LEADER, 0, 0), 1),
    ));
    assert_eq!((f.state, f.vote), (Following, vote(3, 0, 0)));
    assert_eq!(node.proposal(), None);
    assert_eq!(node.round(), 1);
}
