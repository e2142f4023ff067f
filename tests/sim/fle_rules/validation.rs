//! Which frames count (`validVoter`, per-sender FIFO, own frames, the wire checks):
//! non-voters and observers, stale and looped-back frames, malformed datagrams.

use std::sync::atomic::Ordering;

use votecast_core::election::ServerState::{Following, Leading, Looking, Observing};
use votecast_core::election::{DatagramError, Epochs, Output};
use votecast_core::wire::{self, Flags, Packet, Repr, FRAME_LEN, NO_LEADER};

use super::{
    events, feed, frame, looking, new_node, only_transmit, outputs, quiet_until, started, t,
    timeout, transmits, vote, SEQUENCE,
};

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
    // The adopted vote is repeated after the shortest interval (a new proposal restarts
    // the backoff).
    let f = only_transmit(&timeout(&mut node, t(110)));
    assert_eq!((f.state, f.vote), (Looking, vote(2, 0, 0)));

    // Join leader 3 (1 follows it, 3 leads): decided, but silent.
    let mut leading = frame(3, Leading, vote(3, 0, 1), 4);
    leading.epoch = 1;
    leading.echo = 12_345;
    leading.flags = Flags::ESTABLISHED;
    // A settled vote it cannot join on yet is news of an ensemble: it asks again at once
    // (still with the vote it adopted, never its own), and only once for that ensemble.
    let f = only_transmit(&feed(
        &mut node,
        t(120),
        &frame(1, Following, vote(3, 0, 1), 4),
    ));
    assert_eq!((f.state, f.vote, f.sender), (Looking, vote(2, 0, 0), 9));
    assert!(feed(&mut node, t(121), &leading).is_empty());
    let sent = node.stats().frames_sent;
    assert_eq!(node.proposal(), None);
    // The next leader frame makes it OBSERVING.
    leading.sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let out = feed(&mut node, t(130), &leading);
    assert!(transmits(&out).is_empty(), "{out:?}");
    let change = events(&out);
    assert_eq!(change.len(), 1);
    assert_eq!(
        (change[0].state, change[0].leader, change[0].epoch),
        (Observing, Some(3), Some(1))
    );
    assert_eq!(node.state(), Observing);

    // LOOKING voters and strangers, and more heartbeats: still nothing.
    let mut quiet = feed(&mut node, t(140), &looking(2, vote(2, 0, 0), 5));
    quiet.extend(feed(&mut node, t(141), &looking(8, vote(2, 0, 0), 5)));
    for i in 0..5 {
        leading.sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        quiet.extend(feed(&mut node, t(150 + 50 * i), &leading));
        quiet.extend(timeout(&mut node, t(150 + 50 * i)));
    }
    assert!(quiet.is_empty(), "{quiet:?}");
    assert_eq!(node.stats().frames_sent, sent);
    assert_eq!(node.state(), Observing);
}

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
