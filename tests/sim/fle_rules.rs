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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use votecast_core::election::{
    Config, DatagramError, Epochs, Event, Frame, Instant, Node, Output, ServerState, StateChange,
    Vote,
};
use votecast_core::wire::{self, Flags, Packet, Repr, FRAME_LEN, NO_LEADER};

use ServerState::{Following, Leading, Looking, Observing};

// ----- helpers ----------------------------------------------------------------------------

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

// ----- election ---------------------------------------------------------------------------

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
    let f = only_transmit(&timeout(&mut node, deadline));
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
    // so no finalizeWait runs; the next deadline is the (backed-off) notification.
    let notification = node.poll_timeout().unwrap();
    assert!(
        notification > now + node.config().finalize_wait,
        "finalizeWait must not run: {notification:?}"
    );
    // 3's round-2 vote for 2 makes a quorum of round-2 votes.
    assert!(feed(&mut node, t(1020), &looking(3, vote(2, 0, 0), 2)).is_empty());
    assert_eq!(
        node.poll_timeout(),
        Some(t(1020) + node.config().finalize_wait)
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

    // 4 restarts and sends round 1 for itself: answered, and 4's round-2 vote stays.
    let restarted = Repr {
        incarnation: 2,
        ..looking(4, vote(4, 0, 0), 1)
    };
    let f = only_transmit(&feed(&mut node, t(1001), &restarted));
    assert_eq!((f.state, f.round, f.vote), (Looking, 2, vote(3, 0, 0)));

    // 100 stale-round frames within 1 ms, each with a vote better than ours. The answer
    // above used one token of the burst; 10 ms later the bucket is full again.
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
    assert_eq!(answers, 4, "a burst of at most 4 answers");
    assert_eq!(
        node.proposal(),
        Some(vote(3, 0, 0)),
        "not recorded or adopted"
    );
    assert_eq!(node.round(), 2);

    // Then one frame per millisecond for 100 ms: about one answer per answer interval.
    let interval = node.config().answer_interval();
    assert_eq!(interval, ms(10));
    let mut answers = 0;
    for i in 1..=100 {
        let out = feed(&mut node, base + ms(i), &looking(2, vote(2, 99, 0), 1));
        answers += transmits(&out).len();
    }
    assert!(
        (9..=11).contains(&answers),
        "about one answer per {interval:?} over 100 ms, got {answers}"
    );
    assert_eq!(node.proposal(), Some(vote(3, 0, 0)));

    // 5's round-2 vote is the fourth with us, 3 and 4 (whose round-2 vote was kept): a
    // quorum of 7, so finalizeWait starts.
    let now = base + ms(101);
    assert!(feed(&mut node, now, &looking(5, vote(3, 0, 0), 2)).is_empty());
    assert_eq!(node.poll_timeout(), Some(now + node.config().finalize_wait));
}

/// lookForLeader: "if (voteSet.hasAllQuorums()) { while ((n = recvqueue.poll(finalizeWait))
/// != null) {...} if (n == null) { setPeerState(...) } }" — a strict majority (QuorumMaj)
/// starts finalizeWait, and the decision is taken only when it expires.
#[test]
fn quorum_starts_finalize_wait_and_decides_when_it_expires() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    quiet_until(&mut node, t(1000));
    let finalize_wait = node.config().finalize_wait;

    // Two agreeing votes (ours and 5's) of five: no finalizeWait.
    only_transmit(&feed(&mut node, t(1000), &looking(5, vote(5, 0, 0), 1)));
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));
    let deadline = node.poll_timeout().unwrap();
    assert!(deadline > t(1000) + finalize_wait, "{deadline:?}");

    // Three: finalizeWait starts.
    assert!(feed(&mut node, t(1010), &looking(4, vote(5, 0, 0), 1)).is_empty());
    let finalize_at = t(1010) + finalize_wait;
    assert_eq!(node.poll_timeout(), Some(finalize_at));

    // A fourth agreeing vote neither decides early nor extends the wait.
    assert!(feed(&mut node, t(1020), &looking(3, vote(5, 0, 0), 1)).is_empty());
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

/// lookForLeader: "else if (validVoter(n.sid) && validVoter(n.leader))" — notifications
/// from non-voters, or voting for a non-voter, are never processed.
#[test]
fn valid_voter_non_voter_frames_and_votes_are_ignored() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    quiet_until(&mut node, t(1000));
    only_transmit(&feed(&mut node, t(1000), &looking(5, vote(5, 0, 0), 1)));
    let notification = node.poll_timeout().unwrap();

    // Three non-voters agreeing with us would make a quorum if they counted.
    for (i, sender) in [7, 8, 9].into_iter().enumerate() {
        let out = feed(
            &mut node,
            t(1001 + i as u64),
            &looking(sender, vote(5, 0, 0), 1),
        );
        assert!(out.is_empty(), "{out:?}");
    }
    // Nor is a non-voter's better vote, or larger round, adopted.
    assert!(feed(&mut node, t(1004), &looking(7, vote(5, 100, 9), 9)).is_empty());
    assert_eq!(node.stats().non_voter_frames, 4);
    assert_eq!(node.poll_timeout(), Some(notification), "no finalizeWait");
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));
    assert_eq!(node.round(), 1);

    // A voter voting for a non-voter: ignored, even with a larger round.
    assert!(feed(&mut node, t(1005), &looking(2, vote(7, 100, 9), 1)).is_empty());
    assert!(feed(&mut node, t(1006), &looking(3, vote(9, 0, 0), 4)).is_empty());
    assert_eq!(node.stats().invalid_votes, 2);
    assert_eq!(node.proposal(), Some(vote(5, 0, 0)));
    assert_eq!(node.round(), 1);
    assert_eq!(node.poll_timeout(), Some(notification));
}

/// Stats docs / `Peer::last_frame`: the per-sender FIFO order ZooKeeper got from TCP. A
/// frame whose (incarnation, sequence) does not advance is stale (duplicate, reordered);
/// a restart (higher incarnation) starts a new sequence.
#[test]
fn per_sender_fifo_drops_stale_frames_and_accepts_restarts() {
    let mut node = started(1, &[1, 2, 3, 4, 5], t(0));
    let at = |incarnation, sequence, v| Repr {
        incarnation,
        sequence,
        ..looking(2, v, 1)
    };

    let f = only_transmit(&feed(&mut node, t(1), &at(1, 5, vote(2, 0, 0))));
    assert_eq!(f.vote, vote(2, 0, 0));
    // Duplicate and reordered frames, carrying a vote that would win: dropped.
    assert!(feed(&mut node, t(2), &at(1, 5, vote(2, 7, 0))).is_empty());
    assert!(feed(&mut node, t(3), &at(1, 4, vote(2, 7, 0))).is_empty());
    assert_eq!(node.stats().stale_frames, 2);
    assert_eq!(node.proposal(), Some(vote(2, 0, 0)));

    // Restart: higher incarnation, lower sequence: accepted.
    let f = only_transmit(&feed(&mut node, t(4), &at(2, 1, vote(2, 7, 0))));
    assert_eq!(f.vote, vote(2, 7, 0));
    assert_eq!(node.proposal(), Some(vote(2, 7, 0)));
    // The old incarnation is stale from now on.
    assert!(feed(&mut node, t(5), &at(1, 6, vote(2, 8, 0))).is_empty());
    assert_eq!(node.stats().stale_frames, 3);
    assert_eq!(node.stats().frames_received, 5);
}

/// Stats docs: our own frames, looped back by the multicast socket, are dropped and
/// counted (`own_frames`); they change nothing.
#[test]
fn own_frames_are_dropped_and_counted() {
    let mut node = new_node(1, &[1, 2, 3], Epochs::default());
    node.start(t(0));
    let Some(Output::Transmit(first)) = node.poll_output() else {
        panic!("a started node votes for itself");
    };
    assert!(node.poll_output().is_none());
    // Silence: the notification timer re-broadcasts.
    let deadline = node.poll_timeout().unwrap();
    let resent = only_transmit(&timeout(&mut node, deadline));
    assert!(resent.sequence > first.repr.sequence);
    let deadline = node.poll_timeout();
    for copy in [first.bytes, first.bytes] {
        node.handle_datagram(t(60), &copy).unwrap();
        assert!(outputs(&mut node).is_empty());
    }
    assert_eq!(node.stats().own_frames, 2);
    assert_eq!(node.stats().duplicate_id_frames, 0);
    assert!(node.duplicate_id().is_none());
    assert_eq!(node.proposal(), Some(vote(1, 0, 0)));
    assert_eq!(node.round(), 1);
    assert_eq!(node.state(), Looking);
    assert_eq!(node.poll_timeout(), deadline);
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

/// Module docs: an observer (id not among the voters) has no initial vote (ZooKeeper's
/// getInitId() is Long.MIN_VALUE for observers), so its LOOKING frames carry
/// `NO_LEADER` until it adopts a voter's vote; once OBSERVING it never sends a frame.
#[test]
fn observer_never_proposes_itself_and_is_silent_once_observing() {
    let mut node = new_node(9, &[1, 2, 3], Epochs::default());
    node.start(t(0));
    let f = only_transmit(&outputs(&mut node));
    assert_eq!((f.state, f.vote.leader, f.sender), (Looking, NO_LEADER, 9));
    assert_eq!(node.proposal(), None);
    let f = only_transmit(&timeout(&mut node, t(50)));
    assert_eq!(
        f.vote.leader, NO_LEADER,
        "a re-broadcast proposes no one either"
    );
    let f = only_transmit(&feed(&mut node, t(60), &looking(2, vote(2, 0, 0), 1)));
    assert_eq!((f.state, f.vote), (Looking, vote(2, 0, 0)));

    // Join leader 3 (1 follows it, 3 leads): decided, but silent.
    let sent = node.stats().frames_sent;
    let mut leading = frame(3, Leading, vote(3, 0, 1), 4);
    leading.epoch = 1;
    leading.echo = 12_345;
    leading.flags = Flags::ESTABLISHED;
    assert!(feed(&mut node, t(70), &frame(1, Following, vote(3, 0, 1), 4)).is_empty());
    assert!(feed(&mut node, t(71), &leading).is_empty());
    assert_eq!(node.proposal(), None);
    // The next leader frame makes it OBSERVING.
    leading.sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let out = feed(&mut node, t(80), &leading);
    assert!(transmits(&out).is_empty(), "{out:?}");
    let change = events(&out);
    assert_eq!(change.len(), 1);
    assert_eq!(
        (change[0].state, change[0].leader, change[0].epoch),
        (Observing, Some(3), Some(1))
    );
    assert_eq!(node.state(), Observing);

    // LOOKING voters and strangers, and more heartbeats: still nothing.
    let mut quiet = feed(&mut node, t(90), &looking(2, vote(2, 0, 0), 5));
    quiet.extend(feed(&mut node, t(91), &looking(8, vote(2, 0, 0), 5)));
    for i in 0..5 {
        leading.sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        quiet.extend(feed(&mut node, t(100 + 50 * i), &leading));
        quiet.extend(timeout(&mut node, t(100 + 50 * i)));
    }
    assert!(quiet.is_empty(), "{quiet:?}");
    assert_eq!(node.stats().frames_sent, sent);
    assert_eq!(node.state(), Observing);
}

// ----- leadership phase -------------------------------------------------------------------

/// Module docs, leadership phase: the leader proposes `epoch = max(accepted epochs it
/// knows, its own) + 1` and persists it as accepted before broadcasting it; it reports
/// LEADING only once a quorum acknowledged the epoch (FOLLOWING frames with `epoch` = the
/// proposal) and echoed its time stamp (the lease); it steps down to LOOKING when the
/// lease, `lease_duration` after the newest quorum echo, runs out.
#[test]
fn leader_persists_epoch_first_reports_after_quorum_ack_and_steps_down_at_lease_end() {
    let mut node = started(3, &[1, 2, 3], t(0));
    let mut from1 = looking(1, vote(3, 0, 0), 1);
    from1.accepted_epoch = 6;
    let mut from2 = looking(2, vote(3, 0, 0), 1);
    from2.accepted_epoch = 2;
    assert!(feed(&mut node, t(1), &from1).is_empty());
    let out = feed(&mut node, t(1), &from2);

    // Persist(accepted 7) strictly before the first LEADING frame; nothing reported yet.
    let proposed = Epochs {
        accepted_epoch: 7,
        accepted_leader: 3,
        current_epoch: 0,
    };
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], Output::Persist(proposed));
    let Output::Transmit(Frame { repr: lead, .. }) = out[1] else {
        panic!("{out:?}");
    };
    assert_eq!(
        (lead.state, lead.vote, lead.epoch),
        (Leading, vote(3, 0, 0), 7)
    );
    assert_eq!(lead.accepted_epoch, 7);
    assert!(!lead.flags.contains(Flags::ESTABLISHED));
    assert_ne!(lead.echo, 0);
    assert_eq!(node.state(), Looking);
    assert_eq!(node.epochs(), proposed);

    let ack = |sender: u64, epoch: u64, echo: u64| {
        let mut f = frame(sender, Following, vote(3, 0, 0), 1);
        f.accepted_epoch = epoch;
        f.epoch = epoch;
        f.echo = echo;
        f
    };
    // An acknowledgement of another epoch does not count.
    let mut wrong = ack(2, 6, lead.echo);
    wrong.accepted_epoch = 2;
    let out = feed(&mut node, t(2), &wrong);
    assert!(
        events(&out).is_empty() && persists(&out).is_empty(),
        "{out:?}"
    );
    // The right epoch without an echo: established (persisted), but no lease yet.
    let out = feed(&mut node, t(3), &ack(1, 7, 0));
    assert_eq!(
        persists(&out),
        vec![Epochs {
            current_epoch: 7,
            ..proposed
        }]
    );
    assert!(events(&out).is_empty(), "{out:?}");
    let f = transmits(&out);
    assert!(
        f.iter().all(|f| f.flags.contains(Flags::ESTABLISHED)),
        "{f:?}"
    );
    assert_eq!(node.state(), Looking);
    // The echo of our LEADING frame: LEADING, with the lease counted from when it was sent.
    let out = feed(&mut node, t(4), &ack(1, 7, lead.echo));
    let change = events(&out);
    assert_eq!(change.len(), 1, "{out:?}");
    assert_eq!(
        (change[0].state, change[0].previous, change[0].leader),
        (Leading, Looking, Some(3))
    );
    assert_eq!(change[0].epoch, Some(7));
    assert_eq!(node.state(), Leading);
    let lease = node.config().lease_duration();
    assert_eq!(node.valid_until(), Some(t(1) + lease));

    // Heartbeat at 51 ms, echoed once at 52 ms; then silence.
    let out = timeout(&mut node, t(51));
    let heartbeat = only_transmit(&out);
    assert_eq!(heartbeat.state, Leading);
    assert!(feed(&mut node, t(52), &ack(1, 7, heartbeat.echo)).is_empty());
    let lease_end = t(51) + lease;
    assert_eq!(node.valid_until(), Some(lease_end));

    let mut stepped_down = None;
    for _ in 0..100 {
        let deadline = node.poll_timeout().unwrap();
        let out = timeout(&mut node, deadline);
        if node.state() == Leading {
            assert!(deadline < lease_end);
            assert_eq!(only_transmit(&out).state, Leading);
            continue;
        }
        // Event first, then our LOOKING frame of the next round.
        let change = events(&out);
        assert_eq!(change.len(), 1, "{out:?}");
        assert_eq!((change[0].state, change[0].previous), (Looking, Leading));
        let event_at = position(&out, |o| matches!(o, Output::Event(_)));
        let frame_at = position(&out, |o| matches!(o, Output::Transmit(_)));
        assert!(event_at < frame_at);
        let f = transmits(&out)[0];
        assert_eq!((f.state, f.round, f.vote), (Looking, 2, vote(3, 0, 7)));
        stepped_down = Some(deadline);
        break;
    }
    assert_eq!(
        stepped_down,
        Some(lease_end),
        "steps down exactly at lease end"
    );
    assert!(lease > ms(250) && lease <= node.config().sync_timeout());
}

/// Module docs, leadership phase: "A follower acknowledges an epoch only if it is greater
/// than its accepted epoch (or equal and from the same leader), after persisting it", and
/// echoes the leader's time stamp (its promise); a lower epoch is refused (epoch 0).
#[test]
fn follower_persists_accepted_epoch_before_ack_and_refuses_lower_epoch() {
    let mut node = started(1, &[1, 2, 3], t(0));
    follow_three(&mut node, t(1));
    let leading = |epoch: u64, echo: u64| {
        let mut f = frame(3, Leading, vote(3, 0, 0), 1);
        f.accepted_epoch = epoch;
        f.epoch = epoch;
        f.echo = echo;
        f
    };
    let out = feed(&mut node, t(5), &leading(5, 4242));
    let accepted = Epochs {
        accepted_epoch: 5,
        accepted_leader: 3,
        current_epoch: 0,
    };
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[0],
        Output::Persist(accepted),
        "persisted before the ack"
    );
    let Output::Transmit(Frame { repr: f, .. }) = out[1] else {
        panic!("{out:?}");
    };
    assert_eq!((f.state, f.vote), (Following, vote(3, 0, 0)));
    assert_eq!((f.epoch, f.echo, f.accepted_epoch), (5, 4242, 5));
    assert_eq!(node.epochs(), accepted);

    // A follower that accepted epoch 9 (from 2) refuses 3's epoch 5, then accepts 10.
    let restored = Epochs {
        accepted_epoch: 9,
        accepted_leader: 2,
        current_epoch: 0,
    };
    let mut node = new_node(1, &[1, 2, 3], restored);
    node.start(t(0));
    outputs(&mut node);
    follow_three(&mut node, t(1));
    let f = only_transmit(&feed(&mut node, t(5), &leading(5, 4242)));
    assert_eq!((f.state, f.epoch, f.accepted_epoch), (Following, 0, 9));
    assert_eq!(node.epochs(), restored);
    let out = feed(&mut node, t(10), &leading(10, 9999));
    let epochs10 = Epochs {
        accepted_epoch: 10,
        accepted_leader: 3,
        current_epoch: 0,
    };
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], Output::Persist(epochs10));
    let Output::Transmit(Frame { repr: f, .. }) = out[1] else {
        panic!("{out:?}");
    };
    assert_eq!((f.state, f.epoch, f.accepted_epoch), (Following, 10, 10));
}

/// Module docs, Leases: a LOOKING frame from the leader's own process ends the promise made
/// to it (it stepped down before sending it), but one from a *restarted* leader does not:
/// the crashed process's application may act on its lease until it runs out, so the
/// follower echoes nothing to a new leader until its promise ends. (Found by the
/// core_sequence fuzzer: two leaders for 13 ms after a leader crashed and restarted.)
#[test]
fn restarted_leaders_looking_frame_does_not_end_the_promise_to_the_crashed_process() {
    let sync_timeout = Config::new(1, &[1, 2, 3]).unwrap().sync_timeout();
    let promise_ends = t(5) + sync_timeout;
    // Node 1 follows 3 and promises it support at t(5); at t(10) 3 (process `incarnation`)
    // says LOOKING; then 2 wins and sends LEADING. Returns node 1's echo at t(20) and just
    // after the promise made at t(5) has run out.
    // Acknowledgements come after a Persist: the frame sent is the last output.
    let sent = |out: Vec<Output>| *transmits(&out).last().expect("a frame sent");
    let echoes_after_looking_from = |incarnation: u32| {
        let mut node = started(1, &[1, 2, 3], t(0));
        follow_three(&mut node, t(1));
        let mut leading3 = frame(3, Leading, vote(3, 0, 0), 1);
        (leading3.accepted_epoch, leading3.epoch, leading3.echo) = (5, 5, 4242);
        let f = sent(feed(&mut node, t(5), &leading3));
        assert_eq!((f.state, f.echo), (Following, 4242), "promised to 3");
        // 3 starts a new election (round 2).
        let mut looking3 = looking(3, vote(3, 0, 5), 2);
        looking3.incarnation = incarnation;
        feed(&mut node, t(10), &looking3);
        assert!(
            node.proposal().is_some(),
            "3 stopped leading: node 1 looks too"
        );
        let round = node.round();
        let mut for_two = looking(3, vote(2, 0, 5), round);
        for_two.incarnation = incarnation;
        feed(&mut node, t(11), &looking(2, vote(2, 0, 5), round));
        feed(&mut node, t(11), &for_two);
        let leading2 = |echo: u64| {
            let mut f = frame(2, Leading, vote(2, 0, 5), round);
            (f.accepted_epoch, f.epoch, f.echo) = (6, 6, echo);
            f
        };
        let early = sent(feed(&mut node, t(20), &leading2(777)));
        // Everyone voted for 2: node 1 follows it and acknowledges its epoch.
        assert_eq!(
            (early.state, early.vote.leader, early.epoch),
            (Following, 2, 6)
        );
        let late = sent(feed(&mut node, promise_ends, &leading2(888)));
        (early.echo, late.echo)
    };
    // The same process stepped down: its promise ended with its LOOKING frame.
    assert_eq!(echoes_after_looking_from(1), (777, 888));
    // A new process of 3 (incarnation 2): the crashed one's lease may still run.
    assert_eq!(echoes_after_looking_from(2), (0, 888));
}

// ----- wire -------------------------------------------------------------------------------

/// `Node::handle_datagram`: "Malformed and foreign datagrams are counted and returned as
/// errors; they never change the node's state." Each parse failure of `wire::Repr::parse`.
#[test]
fn malformed_datagrams_are_returned_counted_and_silent() {
    let mut node = started(1, &[1, 2, 3], t(0));
    let deadline = node.poll_timeout();
    // A LOOKING frame from 2 with a vote that would be adopted.
    let mut good = [0u8; FRAME_LEN];
    wire::emit_datagram(&looking(2, vote(2, 9, 0), 1), &mut good).unwrap();
    let patched = |patch: &dyn Fn(&mut Packet<&mut [u8]>)| {
        let mut bytes = good;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        patch(&mut packet);
        bytes
    };
    let mut long = [0u8; FRAME_LEN + 1];
    long[..FRAME_LEN].copy_from_slice(&good);
    let mut corrupt = good;
    corrupt[41] ^= 0x10;
    let cases: Vec<(Vec<u8>, wire::Error)> = vec![
        (good[..FRAME_LEN - 1].to_vec(), wire::Error::WrongLength),
        (long.to_vec(), wire::Error::WrongLength),
        (Vec::new(), wire::Error::WrongLength),
        (
            patched(&|p| {
                p.set_magic(*b"XCST");
                p.fill_checksum();
            })
            .to_vec(),
            wire::Error::BadMagic,
        ),
        (
            patched(&|p| {
                p.set_version(2);
                p.fill_checksum();
            })
            .to_vec(),
            wire::Error::UnknownVersion,
        ),
        (corrupt.to_vec(), wire::Error::BadChecksum),
        (
            patched(&|p| {
                p.set_state_code(4);
                p.fill_checksum();
            })
            .to_vec(),
            wire::Error::UnknownState,
        ),
        (
            patched(&|p| {
                p.set_cluster(42);
                p.fill_checksum();
            })
            .to_vec(),
            wire::Error::OtherCluster,
        ),
    ];
    let mut malformed = 0;
    let mut other_cluster = 0;
    for (i, (bytes, error)) in cases.into_iter().enumerate() {
        assert_eq!(
            node.handle_datagram(t(1 + i as u64), &bytes),
            Err(DatagramError::Malformed(error))
        );
        if error == wire::Error::OtherCluster {
            other_cluster += 1;
        } else {
            malformed += 1;
        }
        let stats = node.stats();
        assert_eq!(
            (stats.malformed, stats.other_cluster),
            (malformed, other_cluster)
        );
        assert_eq!(stats.frames_received, 0);
        assert!(outputs(&mut node).is_empty(), "{error:?}");
        assert_eq!(node.proposal(), Some(vote(1, 0, 0)));
        assert_eq!(node.poll_timeout(), deadline);
    }
    // The intact datagram is accepted.
    assert_eq!(node.handle_datagram(t(20), &good), Ok(()));
    assert_eq!(only_transmit(&outputs(&mut node)).vote, vote(2, 9, 0));
    assert_eq!(node.stats().frames_received, 1);
}
