//! The leadership phase the module docs of `votecast_core::election` add to FLE (the
//! parts ZooKeeper leaves to Zab): the leader's epoch proposal, the followers'
//! acknowledgements and promises, and leases.

use votecast_core::election::ServerState::{Following, Leading, Looking};
use votecast_core::election::{Config, Epochs, Frame, Output};
use votecast_core::wire::Flags;

use super::{
    events, feed, follow_three, frame, looking, ms, new_node, only_transmit, outputs, persists,
    position, started, t, timeout, transmits, vote,
};

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
