//! What we know of each voter, our own slot included (our own vote counts like anyone's):
//! the newest frame position it sent and when its last frame was accepted, its votes
//! (ZooKeeper's recvset and outofelection), its accepted epoch, and while we lead its
//! acknowledgement and echo. Observers have no slot.

use core::ops::{Index, IndexMut};
use core::time::Duration;

use super::budget::TokenBucket;
use super::config::{FRAME_BUDGET_BURST, MAX_VOTERS};
use super::time::Instant;
use crate::wire::{ServerState, Vote};

/// A voter heard within the detection window (see `Node::heard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    /// The voter's id.
    pub id: u64,
    /// Time since its last accepted frame.
    pub age: Duration,
}

/// A received vote, as kept in `recvset` / `outofelection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Notice {
    pub(super) vote: Vote,
    pub(super) round: u64,
    pub(super) state: ServerState,
}

/// What became of a frame offered to [`Peer::admit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    Accepted,
    /// From an incarnation lower than the newest one seen, after the voter was silent for
    /// `readmit_after`: accepted, and that incarnation's frames are followed from now on.
    Readmitted,
    /// Its (incarnation, sequence) does not advance past the newest one seen (or the
    /// followed stream), and it may not be readmitted.
    Stale,
    /// The voter is over its receive budget.
    Throttled,
}

/// The frame positions of one voter: the newest ever seen and the stream we follow. Both
/// are the same until a lower incarnation is readmitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Positions {
    /// Newest (incarnation, sequence) ever accepted.
    pub(super) newest: (u32, u64),
    /// Position of the last accepted frame: the stream we follow.
    pub(super) current: (u32, u64),
    /// When the last frame was accepted (our clock).
    pub(super) heard_at: Instant,
}

/// How a frame at some position relates to the positions seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Newer than anything seen, or next in the followed (readmitted) stream.
    Newer,
    /// From an incarnation below the newest one and other than the followed one: a
    /// restarted process whose incarnation went backwards, or a replay of an old one.
    LowerIncarnation,
    Stale,
}

impl Positions {
    fn order(&self, position: (u32, u64)) -> Order {
        let (incarnation, sequence) = position;
        if position > self.newest {
            Order::Newer
        } else if incarnation == self.current.0 {
            // The followed stream: frames in order only (its replays stay stale).
            if sequence > self.current.1 {
                Order::Newer
            } else {
                Order::Stale
            }
        } else if incarnation < self.newest.0 {
            Order::LowerIncarnation
        } else {
            // The newest incarnation after a readmission retired it: only frames newer
            // than its newest sequence (the first case) are accepted again.
            Order::Stale
        }
    }
}

/// The timing [`Peer::admit`] needs, from `Config`.
#[derive(Debug, Clone, Copy)]
pub(super) struct AdmitTiming {
    /// One frame of budget comes back per this interval.
    pub(super) budget_interval: Duration,
    /// Silence after which a lower incarnation is readmitted.
    pub(super) readmit_after: Duration,
}

/// What we know of one voter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    /// Frame positions seen (None before the first frame); frames that do not advance
    /// them are stale. This gives FastLeaderElection the per-sender FIFO order TCP gave
    /// ZooKeeper.
    pub(super) positions: Option<Positions>,
    /// Latest vote in the current round (ZooKeeper's recvset).
    pub(super) election: Option<Notice>,
    /// Latest FOLLOWING/LEADING report (ZooKeeper's outofelection).
    pub(super) out_of_election: Option<Notice>,
    /// The voter announced its shutdown and sends nothing until it restarts.
    pub(super) resigned: bool,
    /// The voter stepped down for a graceful shutdown (HANDOVER): it never leads again and
    /// sends nothing but its RESIGN, but the promises made to it still run.
    pub(super) handing_over: bool,
    /// We followed it and timed out on its silence (until it is heard again).
    pub(super) timed_out: bool,
    /// Its latest accepted frame said LOOKING (not a RESIGN).
    pub(super) looking: bool,
    /// Our round in which we last restarted our notification backoff because it voted in
    /// an older round (0: never); see `Node::receive_looking_vote`.
    pub(super) behind_in: u64,
    /// Its accepted epoch, as last reported.
    pub(super) accepted_epoch: u64,
    /// While we lead: the epoch it acknowledged to us in its latest frame (0 = none).
    pub(super) acked_epoch: u64,
    /// While we lead: newest of our time stamps it echoed during this term, in a frame
    /// acknowledging our current epoch.
    pub(super) echo: Option<Instant>,
    /// Receive budget: frames it may still send now.
    budget: TokenBucket<FRAME_BUDGET_BURST>,
}

impl Peer {
    const NEW: Peer = Peer {
        positions: None,
        election: None,
        out_of_election: None,
        resigned: false,
        handing_over: false,
        timed_out: false,
        looking: false,
        behind_in: 0,
        accepted_epoch: 0,
        acked_epoch: 0,
        echo: None,
        budget: TokenBucket::FULL,
    };

    /// Admit a frame at `position` = (incarnation, sequence) if it is newer than any seen
    /// (or next in the followed stream) and within the budget (refilled one frame per
    /// `budget_interval`). A frame of an incarnation lower than the newest one seen is
    /// readmitted once the voter has been silent for `readmit_after`: a process whose
    /// incarnation went backwards (a restart without its data dir, a clock behind) gets
    /// in. Staleness is checked first, so replayed copies cannot use up the budget of the
    /// voter they imitate. The `election` module docs say what this lets a replay do.
    pub(super) fn admit(
        &mut self,
        now: Instant,
        timing: AdmitTiming,
        position: (u32, u64),
    ) -> Admission {
        let admission = match self.positions.map(|p| (p, p.order(position))) {
            None | Some((_, Order::Newer)) => Admission::Accepted,
            Some((p, Order::LowerIncarnation)) if now >= p.heard_at + timing.readmit_after => {
                Admission::Readmitted
            }
            Some(_) => return Admission::Stale,
        };
        if !self.budget.take(now, timing.budget_interval) {
            return Admission::Throttled;
        }
        let newest = self.positions.map_or(position, |p| p.newest.max(position));
        self.positions = Some(Positions {
            newest,
            current: position,
            heard_at: now,
        });
        self.timed_out = false;
        admission
    }

    /// The incarnation of the stream we follow (None before its first frame).
    pub(super) fn incarnation(&self) -> Option<u32> {
        self.positions.map(|p| p.current.0)
    }

    /// Its latest vote of the current election is `vote`, cast in `round`.
    pub(super) fn agrees_with(&self, vote: &Vote, round: u64) -> bool {
        self.election
            .is_some_and(|e| e.vote == *vote && e.round == round)
    }

    /// Keep the newest of our time stamps it echoed.
    pub(super) fn record_echo(&mut self, stamp: Instant) {
        self.echo = Some(self.echo.map_or(stamp, |e| e.max(stamp)));
    }
}

/// The per-voter table, indexed like `Config::voters`.
#[derive(Debug, Clone)]
pub(super) struct Voters {
    peers: [Peer; MAX_VOTERS],
    /// Number of configured voters; slots past it are never used.
    len: usize,
    /// Our own slot (voters only).
    own: Option<usize>,
}

impl Voters {
    /// The own slot mirrors our `accepted_epoch`, so that proposing an epoch takes the
    /// maximum over one uniform table.
    pub(super) fn new(len: usize, own: Option<usize>, accepted_epoch: u64) -> Voters {
        let mut voters = Voters {
            peers: [Peer::NEW; MAX_VOTERS],
            len: len.min(MAX_VOTERS),
            own,
        };
        voters.set_own_accepted_epoch(accepted_epoch);
        voters
    }

    pub(super) fn own(&self) -> Option<usize> {
        self.own
    }

    pub(super) fn set_own_accepted_epoch(&mut self, epoch: u64) {
        if let Some(i) = self.own {
            self.peers[i].accepted_epoch = epoch;
        }
    }

    /// The voters' slots, in voter order.
    pub(super) fn iter(&self) -> core::slice::Iter<'_, Peer> {
        self.peers[..self.len].iter()
    }

    /// Voters (ourselves included) for which `pred` holds.
    pub(super) fn count(&self, pred: impl Fn(&Peer) -> bool) -> usize {
        self.iter().filter(|p| pred(p)).count()
    }

    /// Voters whose latest vote of this election is `vote` in `round`.
    pub(super) fn agreeing(&self, vote: &Vote, round: u64) -> usize {
        self.count(|p| p.agrees_with(vote, round))
    }

    /// Voters that acknowledged `epoch` to us, ourselves included.
    pub(super) fn acknowledged(&self, epoch: u64) -> usize {
        self.iter()
            .enumerate()
            .filter(|(i, p)| Some(*i) == self.own || p.acked_epoch == epoch)
            .count()
    }

    /// `(id, when its last frame was accepted)` of every voter heard since we started, in
    /// voter order; `ids` are the voters' ids (`Config::voters`). Our own slot never admits
    /// a frame, so it is never listed.
    pub(super) fn last_frames<'a>(
        &'a self,
        ids: &'a [u64],
    ) -> impl Iterator<Item = (u64, Instant)> + 'a {
        ids.iter()
            .zip(self.iter())
            .filter_map(|(&id, peer)| peer.positions.map(|p| (id, p.heard_at)))
    }

    /// The voters whose last frame was accepted less than `window` before `now`, with its
    /// age (zero for a frame accepted after `now`).
    pub(super) fn heard<'a>(
        &'a self,
        ids: &'a [u64],
        now: Instant,
        window: Duration,
    ) -> impl Iterator<Item = Heard> + 'a {
        self.last_frames(ids).filter_map(move |(id, at)| {
            let age = now.saturating_duration_since(at);
            (age < window).then_some(Heard { id, age })
        })
    }

    /// Highest accepted epoch any voter reported (ours included).
    pub(super) fn max_accepted_epoch(&self) -> u64 {
        self.iter().map(|p| p.accepted_epoch).max().unwrap_or(0)
    }

    /// A new election: forget every vote, in and out of the election.
    pub(super) fn forget_votes(&mut self) {
        for peer in self.peers.iter_mut() {
            peer.election = None;
            peer.out_of_election = None;
        }
    }

    /// A later round: the votes of the old round no longer count.
    pub(super) fn forget_round(&mut self) {
        for peer in self.peers.iter_mut() {
            peer.election = None;
        }
    }

    /// A new epoch proposal (or a new term as leader): earlier acknowledgements, and the
    /// echoes that came with them, were for another epoch and no longer count.
    pub(super) fn forget_acks(&mut self) {
        for peer in self.peers.iter_mut() {
            peer.acked_epoch = 0;
            peer.echo = None;
        }
    }
}

impl Index<usize> for Voters {
    type Output = Peer;
    fn index(&self, i: usize) -> &Peer {
        &self.peers[i]
    }
}

impl IndexMut<usize> for Voters {
    fn index_mut(&mut self, i: usize) -> &mut Peer {
        &mut self.peers[i]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote as vote_for, Sender};
    use super::super::Node;
    use super::*;
    use crate::auth::KeySet;
    use crate::wire::{Packet, FRAME_LEN};
    use std::vec::Vec;

    fn vote(leader: u64) -> Vote {
        Vote {
            leader,
            zxid: 0,
            peer_epoch: 0,
            ineligible: false,
        }
    }

    fn voted(vote: Vote, round: u64) -> Peer {
        Peer {
            election: Some(Notice {
                vote,
                round,
                state: ServerState::Looking,
            }),
            ..Peer::NEW
        }
    }

    #[test]
    fn agrees_only_with_the_same_vote_in_the_same_round() {
        let p = voted(vote(3), 5);
        assert!(p.agrees_with(&vote(3), 5));
        assert!(!p.agrees_with(&vote(3), 4), "other round");
        assert!(!p.agrees_with(&vote(2), 5), "other vote");
        assert!(!Peer::NEW.agrees_with(&vote(3), 5), "no vote yet");
    }

    #[test]
    fn agreeing_counts_configured_voters_only() {
        let mut voters = Voters::new(3, Some(0), 0);
        voters[0] = voted(vote(3), 2);
        voters[1] = voted(vote(3), 2);
        voters[2] = voted(vote(2), 2);
        // A slot past the voter count is never counted.
        voters[3] = voted(vote(3), 2);
        assert_eq!(voters.agreeing(&vote(3), 2), 2);
        assert_eq!(voters.agreeing(&vote(2), 2), 1);
        voters.forget_round();
        assert_eq!(voters.agreeing(&vote(3), 2), 0);
    }

    const TIMING: AdmitTiming = AdmitTiming {
        budget_interval: Duration::from_millis(1),
        readmit_after: Duration::from_millis(100),
    };

    fn ms(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn stale_frames_are_refused_before_they_use_the_budget() {
        let mut peer = Peer::NEW;
        let now = Instant::ZERO;
        assert_eq!(peer.admit(now, TIMING, (1, 1)), Admission::Accepted);
        // Replays of the same or an older position, however many: never throttled.
        for _ in 0..3 * FRAME_BUDGET_BURST {
            assert_eq!(peer.admit(now, TIMING, (1, 1)), Admission::Stale);
            assert_eq!(peer.admit(now, TIMING, (0, 99)), Admission::Stale);
        }
        for sequence in 2..=FRAME_BUDGET_BURST as u64 {
            assert_eq!(peer.admit(now, TIMING, (1, sequence)), Admission::Accepted);
        }
        let next = (1, FRAME_BUDGET_BURST as u64 + 1);
        assert_eq!(peer.admit(now, TIMING, next), Admission::Throttled);
        // A throttled frame does not advance the position: resent later, it passes.
        assert_eq!(
            peer.positions.map(|p| p.current),
            Some((1, FRAME_BUDGET_BURST as u64))
        );
        assert_eq!(peer.admit(ms(1), TIMING, next), Admission::Accepted);
        // A new incarnation restarts the sequence.
        assert_eq!(peer.admit(ms(2), TIMING, (2, 0)), Admission::Accepted);
    }

    #[test]
    fn a_lower_incarnation_is_readmitted_after_silence_only() {
        let mut peer = Peer::NEW;
        assert_eq!(peer.admit(ms(0), TIMING, (5, 100)), Admission::Accepted);
        // Incarnation 3 (a restart that lost its incarnation): stale while 5 is heard.
        assert_eq!(peer.admit(ms(99), TIMING, (3, 1)), Admission::Stale);
        assert_eq!(peer.admit(ms(99), TIMING, (5, 101)), Admission::Accepted);
        assert_eq!(peer.admit(ms(198), TIMING, (3, 1)), Admission::Stale);
        // 5 silent for readmit_after: 3 gets in, and its frames follow in order.
        assert_eq!(peer.admit(ms(199), TIMING, (3, 1)), Admission::Readmitted);
        assert_eq!(peer.admit(ms(200), TIMING, (3, 1)), Admission::Stale);
        assert_eq!(peer.admit(ms(200), TIMING, (3, 2)), Admission::Accepted);
        // The retired incarnation's old frames (replays) stay stale, even after silence;
        // a lower one still needs the readmitted stream to be silent.
        for at in [201, 400, 900] {
            assert_eq!(peer.admit(ms(at), TIMING, (5, 101)), Admission::Stale);
            assert_eq!(peer.admit(ms(at), TIMING, (5, 7)), Admission::Stale);
        }
        assert_eq!(peer.admit(ms(250), TIMING, (2, 9)), Admission::Stale);
        assert_eq!(peer.admit(ms(300), TIMING, (3, 3)), Admission::Accepted);
        assert_eq!(peer.admit(ms(301), TIMING, (2, 9)), Admission::Stale);
        // A frame of 5 newer than any seen is accepted: 5 is followed again, and 3 must
        // wait for silence once more.
        assert_eq!(peer.admit(ms(310), TIMING, (5, 102)), Admission::Accepted);
        assert_eq!(peer.admit(ms(311), TIMING, (3, 4)), Admission::Stale);
        assert_eq!(peer.admit(ms(410), TIMING, (3, 4)), Admission::Readmitted);
    }

    #[test]
    fn the_newest_or_an_equal_incarnation_is_never_readmitted() {
        let mut peer = Peer::NEW;
        assert_eq!(peer.admit(ms(0), TIMING, (5, 100)), Admission::Accepted);
        // A replay (or a restart that reused incarnation 5) never gets in by silence:
        // within one incarnation, frames are accepted in order only.
        assert_eq!(peer.admit(ms(10_000), TIMING, (5, 1)), Admission::Stale);
        assert_eq!(peer.admit(ms(10_000), TIMING, (5, 100)), Admission::Stale);
        assert_eq!(
            peer.admit(ms(10_000), TIMING, (5, 101)),
            Admission::Accepted
        );
    }

    #[test]
    fn heard_lists_voters_within_the_window_with_their_age() {
        let ids = [1, 4, 9];
        let window = Duration::from_millis(300);
        let mut voters = Voters::new(3, Some(1), 0);
        let heard = |v: &Voters, at: u64| -> std::vec::Vec<(u64, u64)> {
            v.heard(&ids, ms(at), window)
                .map(|h| (h.id, h.age.as_millis() as u64))
                .collect()
        };
        assert_eq!(heard(&voters, 0), []);
        assert_eq!(
            voters[0].admit(ms(100), TIMING, (1, 1)),
            Admission::Accepted
        );
        assert_eq!(
            voters[2].admit(ms(250), TIMING, (1, 1)),
            Admission::Accepted
        );
        assert_eq!(heard(&voters, 260), [(1, 160), (9, 10)]);
        // The window is open at its start and closed at its end.
        assert_eq!(heard(&voters, 399), [(1, 299), (9, 149)]);
        assert_eq!(heard(&voters, 400), [(9, 150)]);
        assert_eq!(heard(&voters, 550), []);
        // Still listed as last heard, however long ago.
        let last: std::vec::Vec<_> = voters.last_frames(&ids).collect();
        assert_eq!(last, [(1, ms(100)), (9, ms(250))]);
        // A refused frame (stale, here a replay) does not count as heard.
        assert_eq!(voters[0].admit(ms(560), TIMING, (1, 1)), Admission::Stale);
        assert_eq!(heard(&voters, 560), []);
        assert_eq!(
            voters[0].admit(ms(570), TIMING, (1, 2)),
            Admission::Accepted
        );
        assert_eq!(heard(&voters, 580), [(1, 10)]);
        // A time before the frame (a driver's earlier reading) gives age zero.
        assert_eq!(heard(&voters, 500), [(1, 0), (9, 250)]);
    }

    #[test]
    fn a_node_hears_the_other_voters_by_their_last_accepted_frame() {
        let mut node = started(2, &[1, 2, 3]);
        drain(&mut node);
        let window = node.detection_window();
        assert_eq!(window, Duration::from_millis(300), "6 ticks of 50 ms");
        let heard = |node: &Node, at_ms: u64| -> Vec<(u64, u64)> {
            node.heard(Instant::from_millis(at_ms))
                .map(|h| (h.id, h.age.as_millis() as u64))
                .collect()
        };
        assert_eq!(heard(&node, 0), []);
        let (mut one, mut three) = (Sender::new(1), Sender::new(3));
        node.handle_frame(
            Instant::from_millis(10),
            &one.frame(ServerState::Looking, vote_for(1, 0, 0), 1),
        );
        node.handle_frame(
            Instant::from_millis(40),
            &three.frame(ServerState::Looking, vote_for(3, 0, 0), 1),
        );
        // Our own frames (multicast loop) never make us heard.
        let own = frames(&mut node);
        node.handle_frame(Instant::from_millis(45), &own[0].repr);
        assert_eq!(heard(&node, 52), [(1, 42), (3, 12)]);
        assert_eq!(heard(&node, 310), [(3, 270)]);
        assert_eq!(heard(&node, 340), []);
        assert_eq!(
            node.last_heard().collect::<Vec<_>>(),
            [(1, Instant::from_millis(10)), (3, Instant::from_millis(40))]
        );
        // An unauthentic datagram is not heard either.
        let mut bytes = [0u8; FRAME_LEN];
        one.frame(ServerState::Looking, vote_for(1, 0, 0), 1)
            .emit(&mut Packet::new_unchecked(&mut bytes[..]));
        let mut keys = KeySet::disabled();
        keys.add(1, b"eight bytes, twice: 0123456789abcdef")
            .unwrap();
        node.set_keys(keys);
        assert!(node
            .handle_datagram(Instant::from_millis(350), &bytes)
            .is_err());
        assert_eq!(heard(&node, 350), []);
    }

    #[test]
    fn own_slot_counts_as_acknowledged_and_mirrors_accepted_epoch() {
        let mut voters = Voters::new(3, Some(1), 7);
        assert_eq!(voters[1].accepted_epoch, 7);
        voters[2].accepted_epoch = 9;
        assert_eq!(voters.max_accepted_epoch(), 9);
        assert_eq!(voters.acknowledged(10), 1);
        voters[0].acked_epoch = 10;
        voters[2].acked_epoch = 9;
        assert_eq!(voters.acknowledged(10), 2);
        voters.forget_acks();
        assert_eq!(voters.acknowledged(10), 1);
    }

    #[test]
    fn echo_keeps_the_newest_stamp() {
        let mut peer = Peer::NEW;
        peer.record_echo(Instant::from_millis(5));
        peer.record_echo(Instant::from_millis(3));
        assert_eq!(peer.echo, Some(Instant::from_millis(5)));
        peer.record_echo(Instant::from_millis(8));
        assert_eq!(peer.echo, Some(Instant::from_millis(8)));
    }
}
