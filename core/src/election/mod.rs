//! The sans-IO protocol core: ZooKeeper's FastLeaderElection plus a leadership phase with
//! epochs and leases, driven entirely by its inputs.
//!
//! # What this layer owns
//! One [`Node`] is one server's view. It never reads a clock, touches a socket, spawns a
//! thread or allocates after construction. Inputs are a received frame, a timeout or a
//! command, each at an explicit [`Instant`]. Outputs are pulled with [`Node::poll_output`]:
//! application [`Event`]s, [`Output::Persist`] requests and frames to multicast; and
//! [`Node::poll_timeout`] gives the next deadline. The driver must handle outputs in order:
//! a `Persist` must be durable before any output after it is acted on. Frames are
//! snapshots of the node's current state, built when polled, so several reasons to send
//! within one input produce one frame.
//!
//! # Election (FastLeaderElection, as in ZooKeeper 3.6+ `lookForLeader`)
//! - A new election increments the round (logical clock) and votes for itself
//!   `(id, zxid, current epoch)`; the own vote counts.
//! - Votes are ordered by (peer epoch, zxid, id) ([`beats`]).
//! - LOOKING frame, larger round: adopt the round, forget received votes, take the better of
//!   the frame's vote and our *initial* vote, broadcast. Smaller round: ignore it, answer so
//!   the sender catches up. Equal round: adopt the vote if it beats ours, broadcast; if it
//!   is worse, answer (beyond ZooKeeper: on a lossy medium the sender evidently missed our
//!   vote, which TCP would have delivered).
//! - Decide when a strict majority of voters agrees with our proposal, after `finalize_wait`
//!   without a better vote; at once when *every* voter agrees (see `Node::check_decision`).
//! - FOLLOWING/LEADING frames let a LOOKING node join an established leader once a quorum
//!   reports the same leader and peer epoch and the leader itself reports LEADING.
//! - Retransmission is the exponential notification backoff only.
//!
//! # Leadership phase (ZooKeeper leaves this to Zab)
//! After deciding, the leader proposes `epoch = max(accepted epochs it knows, its own) + 1`,
//! persists it as accepted and broadcasts it in LEADING frames. A follower acknowledges an
//! epoch only if it is greater than its accepted epoch (or equal and from the same leader),
//! after persisting it. With a quorum of acknowledgements the epoch is *established*: the
//! leader persists it as its current epoch and sets the ESTABLISHED flag; followers then
//! adopt it too. Each node acknowledges each epoch for at most one leader and never a
//! smaller one, so two leaders never establish the same epoch.
//!
//! # Leases: why two nodes never report LEADING at the same time
//! Every LEADING frame carries the leader's clock (`echo`). A follower that receives it
//! *promises* not to support any other leader for `sync_timeout` of its own clock, and only
//! then echoes the time stamp back; while an earlier promise to another node is running it
//! echoes nothing. The leader counts, per voter, the newest echo of a voter that has also
//! acknowledged the current epoch; that voter's promise lasts at least
//! `sync_timeout / (1 + ρ)` of real time after the echoed frame was sent, which the leader
//! covers by `lease_duration = sync_timeout · (1 − ρ) / (1 + ρ)` of its own (possibly slow)
//! clock. The lease ends at the quorum-th largest `echo + lease_duration` (the leader counts
//! itself once its own promise is free). The leader reports LEADING only while the lease
//! lasts and steps down when it runs out. Two leases that overlap in time would need two
//! quorums, hence one node, promised to two leaders at once, which the promise rule forbids.
//! The same intersection argument shows that epochs of successive leaders strictly increase:
//! the common node acknowledged the later leader's epoch after the earlier one's.
//!
//! Promises are kept in memory, so a restarted node that ever accepted an epoch makes no
//! new promise for `sync_timeout` after start (it may have made one before it crashed). A
//! LOOKING or RESIGN frame from the leader's own process (same incarnation) ends the
//! promises made to it early: it stopped leading before sending it. Frames from a restarted
//! leader do not: the crashed process's application may act on its lease until it ends.
//! Assumptions: clock rates within ±`max_clock_drift_ppm`, and the application treats
//! leadership as ending at [`Node::valid_until`] even if its process is descheduled.
//!
//! # Capacity
//! Per-voter state is a fixed array of [`MAX_VOTERS`] (64) entries; observers need no
//! state (their frames are only answered). The output queue holds [`OUTPUT_CAPACITY`]
//! entries; one input produces at most a handful.

mod config;
mod time;
mod timers;
mod vote;

use core::time::Duration;

pub use self::config::{Config, ConfigError, FRAME_BUDGET_BURST, MAX_VOTERS};
pub use self::time::Instant;
pub use self::vote::beats;
pub use crate::wire::{ServerState, Vote};

use self::timers::{Timer, Timers};
use crate::auth;
use crate::wire::{self, Flags, Packet, Repr, FRAME_LEN, NO_LEADER};

/// Capacity of the queue of events and persistence requests.
pub const OUTPUT_CAPACITY: usize = 16;

/// Answers to LOOKING nodes (and to followers that still need our epoch) may come in a
/// burst of this many, then one per [`Config::answer_interval`]: a joining node needs two
/// answers in quick succession, a flood of LOOKING frames gets a bounded trickle.
const ANSWER_BURST: u32 = 4;

/// Own frames remembered (sequence and CRC) to tell our looped-back frames from another
/// board's frames with our id. Older own frames are not compared, only dropped.
const SENT_RING: usize = 32;

/// Epoch state that must survive restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Epochs {
    /// Highest epoch this node has promised to a leader (or proposed as leader).
    pub accepted_epoch: u64,
    /// The leader `accepted_epoch` was promised to.
    pub accepted_leader: u64,
    /// Epoch of the last established leadership this node took part in; its votes carry it
    /// as their peer epoch.
    pub current_epoch: u64,
}

/// A change of the state the application sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub state: ServerState,
    pub previous: ServerState,
    /// The coordinator, once known (None while LOOKING).
    pub leader: Option<u64>,
    /// The established epoch: a fencing token that strictly increases across leaders.
    pub epoch: Option<u64>,
    /// The election round in which this view was reached.
    pub round: u64,
    /// From the start of the election to this state (None when entering LOOKING).
    pub election_time: Option<Duration>,
}

/// Another board sends frames with our id (see [`Node::duplicate_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateId {
    /// Incarnation and sequence of the frame that gave it away.
    pub incarnation: u32,
    pub sequence: u64,
    /// Until when we stay silent and refuse to lead, unless more such frames arrive.
    pub quarantine_until: Instant,
}

/// Something the application should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    StateChanged(StateChange),
    /// A frame with our id that we did not send: two boards share an id. Reported when the
    /// quarantine starts (not for every such frame).
    DuplicateId(DuplicateId),
}

/// A frame to multicast: its fields, and its bytes as they go on the wire (signed when
/// authentication is on, CRC last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub repr: Repr,
    pub bytes: [u8; FRAME_LEN],
}

/// What the node asks its driver to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Event(Event),
    /// Store these epochs durably before acting on any later output.
    Persist(Epochs),
    /// Multicast this frame.
    Transmit(Frame),
}

/// Why [`Node::handle_datagram`] dropped a datagram before looking at its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatagramError {
    /// Not a well-formed frame of our protocol and cluster.
    Malformed(wire::Error),
    /// Authentication is on and the frame's key id or tag is not valid.
    Unauthentic(auth::Error),
}

impl core::fmt::Display for DatagramError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DatagramError::Malformed(err) => err.fmt(f),
            DatagramError::Unauthentic(err) => err.fmt(f),
        }
    }
}

impl core::error::Error for DatagramError {}

/// Counters for operators and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub frames_received: u64,
    pub frames_sent: u64,
    /// Datagrams that failed to parse (wrong length, magic, version, CRC or state code).
    pub malformed: u64,
    /// Well-formed frames of another cluster id.
    pub other_cluster: u64,
    /// Our own frames (multicast loop).
    pub own_frames: u64,
    /// Frames whose (incarnation, sequence) did not advance: duplicates, reordered, replayed.
    pub stale_frames: u64,
    /// Frames from ids that are not voters (observers and strangers): answered, never counted.
    pub non_voter_frames: u64,
    /// Frames voting for an id that is not a voter (validVoter).
    pub invalid_votes: u64,
    /// Authentication on: frames with key id 0 or a key id we do not have.
    pub unauthenticated: u64,
    /// Authentication on: frames whose tag does not verify (forged or wrong secret).
    pub bad_tags: u64,
    /// Frames of a voter over its receive budget, dropped.
    pub throttled: u64,
    /// Frames with our id that we did not send (another board with our id).
    pub duplicate_id_frames: u64,
    pub elections_started: u64,
    /// Outputs dropped because the queue was full (a driver that does not poll); never
    /// expected.
    pub outputs_dropped: u64,
}

/// A received vote, as kept in `recvset` / `outofelection`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Notice {
    vote: Vote,
    round: u64,
    state: ServerState,
}

/// What we know of one voter.
#[derive(Debug, Clone, Copy)]
struct Peer {
    /// Newest (incarnation, sequence) seen; frames that do not advance it are stale. This
    /// gives FastLeaderElection the per-sender FIFO order TCP gave ZooKeeper.
    last_frame: Option<(u32, u64)>,
    /// Latest vote in the current round (ZooKeeper's recvset).
    election: Option<Notice>,
    /// Latest FOLLOWING/LEADING report (ZooKeeper's outofelection).
    out_of_election: Option<Notice>,
    /// The voter announced its shutdown and sends nothing until it restarts.
    resigned: bool,
    /// Its accepted epoch, as last reported.
    accepted_epoch: u64,
    /// While we lead: the epoch it acknowledged to us in its latest frame (0 = none).
    acked_epoch: u64,
    /// While we lead: newest of our time stamps it echoed during this term.
    echo: Option<Instant>,
    /// Receive budget: frames it may still send now, refilled one per budget interval.
    budget: u32,
    budget_refilled: Instant,
}

impl Default for Peer {
    fn default() -> Peer {
        Peer {
            last_frame: None,
            election: None,
            out_of_election: None,
            resigned: false,
            accepted_epoch: 0,
            acked_epoch: 0,
            echo: None,
            budget: FRAME_BUDGET_BURST,
            budget_refilled: Instant::ZERO,
        }
    }
}

/// Our promise not to support any leader but `leader` before `until` (our clock).
#[derive(Debug, Clone, Copy)]
struct Promise {
    leader: Option<u64>,
    /// The incarnation of `leader` we promised to: only that process can end the promise
    /// early (by stepping down), since only it knows its application stopped leading.
    incarnation: u32,
    until: Instant,
    /// The end of promises to earlier incarnations of `leader`, which no release shortens:
    /// a crashed leader's application may act on its lease until it runs out.
    floor: Instant,
}

impl Promise {
    const NONE: Promise = Promise {
        leader: None,
        incarnation: 0,
        until: Instant::ZERO,
        floor: Instant::ZERO,
    };
}

#[derive(Debug, Clone, Copy)]
struct Looking {
    /// Our initial vote of this election (None for an observer).
    initial: Option<Vote>,
    /// Our current proposal (None for an observer that has heard no voter yet).
    proposal: Option<Vote>,
    notification_interval: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Following {
    /// The decided vote; its peer epoch becomes the established epoch (updateElectionVote).
    vote: Vote,
    /// Epoch we acknowledged to the leader (0 = none).
    acked_epoch: u64,
    /// Epoch the leader reported established (0 = not yet).
    established_epoch: u64,
    /// Leader time stamp we echo (raw wire value, 0 = none).
    echo: u64,
    /// The round we decided in and the leader's incarnation then: a LOOKING frame from the
    /// same incarnation in that round is an old retransmission, not an abandonment.
    round: u64,
    leader_incarnation: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Leading {
    vote: Vote,
    /// The epoch we propose; established once a quorum acknowledged it.
    epoch: u64,
    established: bool,
    /// Time stamps echoed before this are from an earlier term and ignored.
    term_start: Instant,
    lease_until: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    /// Constructed, not started.
    Idle,
    Looking(Looking),
    /// FOLLOWING (voter) or OBSERVING (observer): same bookkeeping, observers never ack.
    Following(Following),
    Leading(Leading),
    /// Shut down; the last frame (with RESIGN) repeats this vote.
    Stopped {
        last_vote: Option<Vote>,
    },
}

/// One server's FastLeaderElection state machine. See the module docs.
#[derive(Debug)]
pub struct Node {
    config: Config,
    is_voter: bool,
    incarnation: u32,
    sequence: u64,
    epochs: Epochs,
    zxid: u64,
    round: u64,
    role: Role,
    /// Own slot in `peers` (voters only).
    own_index: Option<usize>,
    peers: [Peer; MAX_VOTERS],
    timers: Timers,
    promise: Promise,
    public: PublicView,
    outputs: heapless::Deque<Output, OUTPUT_CAPACITY>,
    transmit_pending: bool,
    resign_pending: bool,
    /// Answer budget: a token bucket of `ANSWER_BURST`, one token per answer interval.
    answer_tokens: u32,
    answer_refilled: Instant,
    now: Instant,
    election_started: Instant,
    last_election_time: Option<Duration>,
    /// (sequence, CRC) of our recent frames, at index `sequence % SENT_RING`.
    sent: [(u64, u32); SENT_RING],
    /// Set while another board with our id is (or was recently) heard.
    duplicate: Option<DuplicateId>,
    stats: Stats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PublicView {
    state: ServerState,
    leader: Option<u64>,
    epoch: Option<u64>,
}

impl PublicView {
    const LOOKING: PublicView = PublicView {
        state: ServerState::Looking,
        leader: None,
        epoch: None,
    };
}

impl Node {
    /// A node that will run with `config`, restored `epochs` and this start's `incarnation`
    /// (which the driver bumps and persists before calling). Call [`Node::start`] next.
    pub fn new(config: Config, epochs: Epochs, incarnation: u32) -> Result<Node, ConfigError> {
        config.validate()?;
        let own_index = config.voter_index(config.id);
        let mut peers = [Peer::default(); MAX_VOTERS];
        // The own slot mirrors our accepted epoch, so that proposing an epoch takes the
        // maximum over one uniform table.
        if let Some(i) = own_index {
            peers[i].accepted_epoch = epochs.accepted_epoch;
        }
        Ok(Node {
            is_voter: own_index.is_some(),
            config,
            incarnation,
            sequence: 0,
            epochs,
            zxid: 0,
            round: 0,
            role: Role::Idle,
            own_index,
            peers,
            timers: Timers::default(),
            promise: Promise::NONE,
            public: PublicView::LOOKING,
            outputs: heapless::Deque::new(),
            transmit_pending: false,
            resign_pending: false,
            answer_tokens: ANSWER_BURST,
            answer_refilled: Instant::ZERO,
            now: Instant::ZERO,
            election_started: Instant::ZERO,
            last_election_time: None,
            sent: [(0, 0); SENT_RING],
            duplicate: None,
            stats: Stats::default(),
        })
    }

    // ----- commands -------------------------------------------------------------------

    /// Start the first election.
    pub fn start(&mut self, now: Instant) {
        if !matches!(self.role, Role::Idle) {
            return;
        }
        self.now = now;
        // Restart quarantine: a node that ever accepted an epoch may have promised support
        // to a leader before it crashed; that promise is gone from memory, so make no new
        // one until it would have run out.
        self.promise = Promise {
            until: if self.epochs.accepted_epoch > 0 {
                now + self.config.sync_timeout()
            } else {
                now
            },
            ..Promise::NONE
        };
        self.start_election(now);
    }

    /// Graceful shutdown: stop reporting any role, then broadcast a frame with the RESIGN
    /// flag so that followers start a new round at once. The node is inert afterwards.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance_clock(now);
        let last_vote = match self.role {
            Role::Idle | Role::Stopped { .. } => return,
            Role::Looking(l) => l.proposal,
            Role::Following(f) => Some(f.vote),
            Role::Leading(l) => Some(l.vote),
        };
        self.set_public(PublicView::LOOKING);
        self.role = Role::Stopped { last_vote };
        self.timers.clear_all();
        self.resign_pending = true;
        self.transmit_pending = true;
    }

    /// The application's data version changed. It is used from the next election on
    /// (ZooKeeper reads the last logged zxid when an election starts).
    pub fn set_zxid(&mut self, zxid: u64) {
        self.zxid = zxid;
    }

    // ----- inputs ---------------------------------------------------------------------

    /// Parse an untrusted datagram, check its authentication (when keys are configured)
    /// and handle it. Malformed, foreign and unauthentic datagrams are counted and returned
    /// as errors; they never change the node's state.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DatagramError> {
        let packet = Packet::new_unchecked(datagram);
        let repr = match Repr::parse(&packet, self.config.cluster) {
            Ok(repr) => repr,
            Err(err) => {
                if err == wire::Error::OtherCluster {
                    self.stats.other_cluster += 1;
                } else {
                    self.stats.malformed += 1;
                }
                return Err(DatagramError::Malformed(err));
            }
        };
        if let Err(err) = self.config.keys.verify(&packet) {
            if err == auth::Error::BadTag {
                self.stats.bad_tags += 1;
            } else {
                self.stats.unauthenticated += 1;
            }
            return Err(DatagramError::Unauthentic(err));
        }
        self.handle_frame_crc(now, &repr, packet.checksum());
        Ok(())
    }

    /// Handle a parsed frame of our cluster whose authentication (if any) was checked.
    pub fn handle_frame(&mut self, now: Instant, frame: &Repr) {
        let mut bytes = [0u8; FRAME_LEN];
        frame.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        let crc = Packet::new_unchecked(&bytes[..]).checksum();
        self.handle_frame_crc(now, frame, crc);
    }

    /// `crc` is the frame's CRC as received: it tells our own frames from copies with
    /// different contents.
    fn handle_frame_crc(&mut self, now: Instant, frame: &Repr, crc: u32) {
        self.advance_clock(now);
        if matches!(self.role, Role::Idle | Role::Stopped { .. }) {
            return;
        }
        self.stats.frames_received += 1;
        if frame.sender == self.config.id {
            self.receive_own_id(now, frame, crc);
            return;
        }
        let Some(index) = self.config.voter_index(frame.sender) else {
            // Observers and strangers: never counted (validVoter), but a looking one gets
            // our current state, as ZooKeeper answers non-voters.
            self.stats.non_voter_frames += 1;
            let settled = matches!(self.role, Role::Following(_) | Role::Leading(_));
            if settled
                && frame.state == ServerState::Looking
                && !frame.flags.contains(Flags::RESIGN)
            {
                self.answer(now);
            }
            return;
        };
        let budget_interval = self
            .config
            .frame_budget_interval()
            .max(Duration::from_micros(1));
        let peer = &mut self.peers[index];
        let position = (frame.incarnation, frame.sequence);
        if peer.last_frame.is_some_and(|last| position <= last) {
            // Checked before the budget, so that replayed copies cannot use up the budget
            // of the voter they imitate.
            self.stats.stale_frames += 1;
            return;
        }
        let earned = now
            .saturating_duration_since(peer.budget_refilled)
            .as_micros()
            / budget_interval.as_micros();
        if earned > 0 {
            let earned = u32::try_from(earned).unwrap_or(u32::MAX);
            peer.budget = peer.budget.saturating_add(earned).min(FRAME_BUDGET_BURST);
            peer.budget_refilled = now;
        }
        if peer.budget == 0 {
            self.stats.throttled += 1;
            return;
        }
        peer.budget -= 1;
        peer.last_frame = Some(position);
        peer.accepted_epoch = frame.accepted_epoch;
        peer.resigned = frame.flags.contains(Flags::RESIGN);
        if peer.resigned {
            self.handle_resign(now, frame.sender, frame.incarnation);
            return;
        }
        if !self.config.is_voter(frame.vote.leader) {
            self.stats.invalid_votes += 1;
            return;
        }
        match self.role {
            Role::Looking(_) => self.looking_receive(now, index, frame),
            Role::Following(_) => self.follower_receive(now, frame),
            Role::Leading(_) => self.leader_receive(now, index, frame),
            Role::Idle | Role::Stopped { .. } => {}
        }
    }

    /// Handle every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance_clock(now);
        if self.duplicate.is_some_and(|d| d.quarantine_until <= now) {
            self.duplicate = None;
            // Back from the quarantine: a fresh round, so that our vote is heard again.
            if matches!(self.role, Role::Looking(_)) {
                self.start_election(now);
            }
        }
        // Each handler sets its next deadline strictly after `now`, so this terminates;
        // the bound is a guard against a future mistake, not a limit ever reached.
        for _ in 0..(4 * Timer::ALL.len()) {
            let Some(timer) = self.timers.first_expired(now) else {
                return;
            };
            self.timers.clear(timer);
            self.fire(now, timer);
        }
        debug_assert!(self.timers.first_expired(now).is_none(), "timer loop");
    }

    // ----- outputs --------------------------------------------------------------------

    /// Next output, in the order the driver must act on them. Frames come last within one
    /// input, so persistence always precedes the frames that announce what was persisted.
    pub fn poll_output(&mut self) -> Option<Output> {
        if let Some(output) = self.outputs.pop_front() {
            return Some(output);
        }
        if self.transmit_pending {
            self.transmit_pending = false;
            if self.duplicate.is_some() {
                // Quarantined: another board speaks with our id; adding our frames would
                // only make peers drop one of us at random.
                return None;
            }
            let repr = self.build_frame();
            let mut bytes = [0u8; FRAME_LEN];
            repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
            self.config.keys.sign(&mut bytes);
            let repr = Repr {
                key_id: bytes[7],
                ..repr
            };
            let crc = Packet::new_unchecked(&bytes[..]).checksum();
            self.sent[ring_slot(repr.sequence)] = (repr.sequence, crc);
            self.stats.frames_sent += 1;
            return Some(Output::Transmit(Frame { repr, bytes }));
        }
        None
    }

    /// The next instant at which [`Node::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // A stopped node has nothing left to do, the end of a quarantine included.
        let running = !matches!(self.role, Role::Idle | Role::Stopped { .. });
        let quarantine = self
            .duplicate
            .filter(|_| running)
            .map(|d| d.quarantine_until);
        match (self.timers.next(), quarantine) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- queries --------------------------------------------------------------------

    pub fn id(&self) -> u64 {
        self.config.id
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The state the application sees.
    pub fn state(&self) -> ServerState {
        self.public.state
    }

    /// The coordinator, while FOLLOWING, LEADING or OBSERVING.
    pub fn leader(&self) -> Option<u64> {
        self.public.leader
    }

    /// The established epoch, while FOLLOWING, LEADING or OBSERVING.
    pub fn epoch(&self) -> Option<u64> {
        self.public.epoch
    }

    pub fn round(&self) -> u64 {
        self.round
    }

    pub fn zxid(&self) -> u64 {
        self.zxid
    }

    pub fn epochs(&self) -> Epochs {
        self.epochs
    }

    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Set while another board with our id has been heard within the quarantine: we send
    /// nothing and refuse to lead until it ends.
    pub fn duplicate_id(&self) -> Option<DuplicateId> {
        self.duplicate
    }

    /// Duration of the last completed election (start of LOOKING to the reported state).
    pub fn last_election_time(&self) -> Option<Duration> {
        self.last_election_time
    }

    /// Until when the current view holds on our clock: the lease while LEADING, the
    /// follower timeout while FOLLOWING/OBSERVING, None while LOOKING.
    pub fn valid_until(&self) -> Option<Instant> {
        match (self.public.state, &self.role) {
            (ServerState::Leading, Role::Leading(lead)) => lead.lease_until,
            (ServerState::Following | ServerState::Observing, _) => {
                self.timers.get(Timer::SyncTimeout)
            }
            _ => None,
        }
    }

    /// The proposal of the running election, if LOOKING.
    pub fn proposal(&self) -> Option<Vote> {
        match self.role {
            Role::Looking(l) => l.proposal,
            _ => None,
        }
    }

    // ----- election -------------------------------------------------------------------

    fn advance_clock(&mut self, now: Instant) {
        // Inputs come from a monotonic clock; guard against a driver bug anyway.
        self.now = self.now.max(now);
    }

    /// A new election: next round, vote for ourselves, tell everyone.
    fn start_election(&mut self, now: Instant) {
        // Stepping down (or never having led): our support for ourselves ends now.
        self.release_promise_of(self.config.id, self.incarnation);
        // Saturating: a round comes from frames, and without authentication anyone can send
        // u64::MAX. Stuck at the top, rounds still compare equal and elections still
        // converge on the best vote.
        self.round = self.round.saturating_add(1);
        self.stats.elections_started += 1;
        for peer in self.peers.iter_mut() {
            peer.election = None;
            peer.out_of_election = None;
        }
        let initial = self.is_voter.then_some(Vote {
            leader: self.config.id,
            zxid: self.zxid,
            peer_epoch: self.epochs.current_epoch,
        });
        self.role = Role::Looking(Looking {
            initial,
            proposal: None,
            notification_interval: self.config.min_notification_interval,
        });
        self.timers.clear_all();
        self.set_public(PublicView::LOOKING);
        self.election_started = now;
        self.set_proposal(now, initial);
        self.check_decision(now);
    }

    /// Replace our proposal, record it as our own vote and broadcast it.
    fn set_proposal(&mut self, now: Instant, proposal: Option<Vote>) {
        let Role::Looking(looking) = &mut self.role else {
            return;
        };
        looking.proposal = proposal;
        if let (Some(i), Some(vote)) = (self.own_index, proposal) {
            self.peers[i].election = Some(Notice {
                vote,
                round: self.round,
                state: ServerState::Looking,
            });
        }
        self.broadcast(now);
    }

    fn looking(&self) -> Option<Looking> {
        match self.role {
            Role::Looking(l) => Some(l),
            _ => None,
        }
    }

    fn looking_receive(&mut self, now: Instant, index: usize, frame: &Repr) {
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
                if frame.round > self.round {
                    self.round = frame.round;
                    for peer in self.peers.iter_mut() {
                        peer.election = None;
                    }
                    self.timers.clear(Timer::Finalize);
                    // Compare against our *initial* vote, not the proposal of an old round.
                    let proposal = match looking.initial {
                        Some(initial) if !beats(&frame.vote, &initial) => initial,
                        _ => frame.vote,
                    };
                    self.set_proposal(now, Some(proposal));
                } else if frame.round < self.round {
                    self.answer(now);
                    return;
                } else if beats_proposal {
                    self.set_proposal(now, Some(frame.vote));
                } else if looking.proposal != Some(frame.vote) {
                    // Beyond ZooKeeper: the sender votes worse than us in our round, so it
                    // has not heard our vote (TCP would have delivered it; a multicast frame
                    // may be lost). Answer now instead of at our next backoff expiry.
                    self.answer(now);
                }
                self.record_election_vote(now, index, notice);
                self.check_decision(now);
            }
            ServerState::Following | ServerState::Leading => {
                if frame.round == self.round {
                    self.record_election_vote(now, index, notice);
                    let agreeing = self.count_votes(|n| {
                        n.election
                            .is_some_and(|e| e.vote == notice.vote && e.round == notice.round)
                    });
                    if agreeing >= self.config.quorum()
                        && self.check_leader(|p| p.election, notice.vote.leader, notice.round)
                    {
                        self.decide(now, notice.vote);
                        return;
                    }
                }
                // Joining an established ensemble: a quorum follows the same leader in the
                // same epoch, and the leader says it leads.
                self.peers[index].out_of_election = Some(notice);
                let following = self.count_votes(|n| {
                    n.out_of_election.is_some_and(|o| {
                        o.vote.leader == notice.vote.leader
                            && o.vote.peer_epoch == notice.vote.peer_epoch
                    })
                });
                if following >= self.config.quorum()
                    && self.check_leader(|p| p.out_of_election, notice.vote.leader, notice.round)
                {
                    self.round = notice.round;
                    self.decide(now, notice.vote);
                }
            }
            ServerState::Observing => {}
        }
    }

    /// Store a voter's vote of this round; news restarts the notification timer (only
    /// silence triggers a re-broadcast).
    fn record_election_vote(&mut self, now: Instant, index: usize, notice: Notice) {
        if self.peers[index].election != Some(notice) {
            self.peers[index].election = Some(notice);
            if let Some(looking) = self.looking() {
                self.timers
                    .set(Timer::Notification, now + looking.notification_interval);
            }
        }
    }

    /// Voters (including ourselves) for which `pred` holds.
    fn count_votes(&self, pred: impl Fn(&Peer) -> bool) -> usize {
        self.peers[..self.config.voters.len()]
            .iter()
            .filter(|p| pred(p))
            .count()
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
            Some(i) => notice_of(&self.peers[i]).is_some_and(|n| n.state == ServerState::Leading),
            None => false,
        }
    }

    /// Decide if a quorum agrees with our proposal: after finalizeWait, or at once when
    /// every voter agrees.
    ///
    /// Deciding at once is safe when every voter's latest vote in this round equals our
    /// proposal P. A voter's vote only ever changes to a better one within a round, and its
    /// first vote of the round is its own initial vote or one better, so P is at least as
    /// good as every voter's initial vote: no voter can still produce a vote that beats P
    /// in this round, which is what finalizeWait waits for. (ZooKeeper had this rule until
    /// 3.4.) A voter that announced its shutdown (RESIGN) sends no further votes and is left
    /// out of "every voter".
    fn check_decision(&mut self, now: Instant) {
        let Some(Looking {
            proposal: Some(proposal),
            ..
        }) = self.looking()
        else {
            return;
        };
        let round = self.round;
        let agrees = |p: &Peer| {
            p.election
                .is_some_and(|e| e.vote == proposal && e.round == round)
        };
        let agreeing = self.count_votes(agrees);
        if agreeing < self.config.quorum() {
            self.timers.clear(Timer::Finalize);
            return;
        }
        let everyone = self.count_votes(|p| agrees(p) || p.resigned) == self.config.voters.len();
        if everyone {
            self.decide(now, proposal);
        } else if !self.timers.is_set(Timer::Finalize) {
            self.timers
                .set(Timer::Finalize, now + self.config.finalize_wait);
        }
    }

    /// The election is over: lead, follow or observe `vote.leader`.
    fn decide(&mut self, now: Instant, vote: Vote) {
        if vote.leader == self.config.id && self.duplicate.is_some() {
            // Another board has our id: refuse to lead and stay LOOKING; the others time
            // out on us and elect someone else.
            return;
        }
        self.timers.clear_all();
        if vote.leader == self.config.id {
            self.become_leader(now, vote);
        } else {
            let leader_incarnation = self
                .config
                .voter_index(vote.leader)
                .and_then(|i| self.peers[i].last_frame)
                .map(|(incarnation, _)| incarnation);
            self.role = Role::Following(Following {
                vote,
                acked_epoch: 0,
                established_epoch: 0,
                echo: 0,
                round: self.round,
                leader_incarnation,
            });
            self.timers
                .set(Timer::SyncTimeout, now + self.config.sync_timeout());
            self.timers
                .set(Timer::InitTimeout, now + self.config.init_timeout());
            if self.is_voter {
                self.broadcast(now);
            }
        }
    }

    // ----- leadership -----------------------------------------------------------------

    fn become_leader(&mut self, now: Instant, vote: Vote) {
        for peer in self.peers.iter_mut() {
            peer.acked_epoch = 0;
            peer.echo = None;
        }
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
        let known = self.peers[..self.config.voters.len()]
            .iter()
            .map(|p| p.accepted_epoch)
            .max()
            .unwrap_or(0)
            .max(self.epochs.accepted_epoch);
        let epoch = known.saturating_add(1);
        self.epochs.accepted_epoch = epoch;
        self.epochs.accepted_leader = self.config.id;
        self.persist();
        if let Role::Leading(lead) = &mut self.role {
            lead.epoch = epoch;
        }
        for peer in self.peers.iter_mut() {
            peer.acked_epoch = 0;
        }
        self.broadcast(now);
    }

    fn leader_receive(&mut self, now: Instant, index: usize, frame: &Repr) {
        let Role::Leading(lead) = self.role else {
            return;
        };
        match frame.state {
            ServerState::Looking => self.answer(now),
            ServerState::Following if frame.vote.leader == self.config.id => {
                let peer = &mut self.peers[index];
                peer.acked_epoch = if frame.epoch == lead.epoch {
                    frame.epoch
                } else {
                    0
                };
                if let Some(stamp) = decode_echo(frame.echo) {
                    // Only our own time stamps of this term count; anything else is stale
                    // or forged.
                    if stamp >= lead.term_start && stamp <= now {
                        peer.echo = Some(peer.echo.map_or(stamp, |e| e.max(stamp)));
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
    fn update_leadership(&mut self, now: Instant) {
        let Role::Leading(lead) = self.role else {
            return;
        };
        let me = self.config.id;
        if self.promise.leader != Some(me) && self.promise_free_for(me) {
            self.promise_to(me, self.incarnation, Instant::FAR_FUTURE);
        }
        let quorum = self.config.quorum();
        let voters = self.config.voters.len();
        let own = self.own_index;
        let acked = self.peers[..voters]
            .iter()
            .enumerate()
            .filter(|(i, p)| Some(*i) == own || p.acked_epoch == lead.epoch)
            .count();
        let mut established = lead.established;
        if !established && acked >= quorum {
            established = true;
            self.epochs.current_epoch = lead.epoch;
            self.persist();
            self.broadcast(now);
        }
        // Lease: the quorum-th largest support among voters that acknowledged this epoch.
        let lease = self.config.lease_duration();
        let mut support: heapless::Vec<Instant, MAX_VOTERS> = heapless::Vec::new();
        for (i, peer) in self.peers[..voters].iter().enumerate() {
            let until = if Some(i) == own {
                (self.promise.leader == Some(me)).then_some(Instant::FAR_FUTURE)
            } else if peer.acked_epoch == lead.epoch {
                peer.echo.map(|stamp| stamp + lease)
            } else {
                None
            };
            if let Some(until) = until {
                // Capacity equals the voter count bound, so this cannot fail.
                let _ = support.push(until);
            }
        }
        let lease_until = if support.len() >= quorum {
            support.sort_unstable_by(|a, b| b.cmp(a));
            Some(support[quorum - 1])
        } else {
            None
        };
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
        let lease_valid = lease_until.is_some_and(|until| until > now);
        if established && lease_valid {
            self.timers.clear(Timer::InitTimeout);
            // lease_valid implies lease_until is set.
            self.timers.set(Timer::LeaseEnd, lease_until.unwrap_or(now));
            self.set_public(PublicView {
                state: ServerState::Leading,
                leader: Some(me),
                epoch: Some(lead.epoch),
            });
        } else if self.public.state == ServerState::Leading {
            // The lease ran out: a quorum no longer supports us (seed article 001: the leader
            // steps down without a majority).
            self.start_election(now);
        }
    }

    // ----- following ------------------------------------------------------------------

    fn follower_receive(&mut self, now: Instant, frame: &Repr) {
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
            // A LOOKING frame of the round we decided in, from the same incarnation, was
            // sent before the leader decided too: nothing changed.
            let late_vote = frame.state == ServerState::Looking
                && frame.round <= follow.round
                && follow.leader_incarnation == Some(frame.incarnation);
            if !late_vote {
                // Our leader stopped leading (or restarted, or follows someone else): a
                // new election may start at once. If this process stepped down, it did
                // so before sending this, so our promise to it is void; if it restarted,
                // the crashed process's lease runs its course (see `release_promise_of`).
                self.release_promise_of(leader, frame.incarnation);
                self.start_election(now);
            }
            return;
        }
        follow.leader_incarnation = Some(frame.incarnation);
        self.timers
            .set(Timer::SyncTimeout, now + self.config.sync_timeout());
        if self.is_voter {
            if self.promise_free_for(leader) {
                self.promise_to(leader, frame.incarnation, now + self.config.sync_timeout());
                follow.echo = frame.echo;
            } else {
                follow.echo = 0;
            }
            if frame.epoch != 0 && follow.acked_epoch != frame.epoch {
                let fresh = frame.epoch > self.epochs.accepted_epoch;
                let same = frame.epoch == self.epochs.accepted_epoch
                    && self.epochs.accepted_leader == leader;
                if fresh || same {
                    if fresh {
                        self.epochs.accepted_epoch = frame.epoch;
                        self.epochs.accepted_leader = leader;
                        self.persist();
                    }
                    follow.acked_epoch = frame.epoch;
                }
            }
        }
        if frame.flags.contains(Flags::ESTABLISHED) {
            follow.established_epoch = frame.epoch;
            follow.vote.peer_epoch = frame.epoch;
            if self.is_voter
                && follow.acked_epoch == frame.epoch
                && self.epochs.current_epoch < frame.epoch
            {
                self.epochs.current_epoch = frame.epoch;
                self.persist();
            }
        }
        self.role = Role::Following(follow);
        if follow.established_epoch != 0 {
            self.timers.clear(Timer::InitTimeout);
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
        if self.is_voter {
            // The heartbeat answer; it carries our echo and acknowledgement.
            self.broadcast(now);
        }
    }

    // ----- duplicate ids ------------------------------------------------------------------

    /// A frame carrying our id. Our own looped-back frames match what we sent. A frame
    /// from a later incarnation, with a sequence we have not reached, or with contents that
    /// differ from ours under the same sequence comes from another board with our id (with
    /// authentication on, nobody without the key can make one). An older incarnation is
    /// treated as a replay of our past, not as a duplicate: otherwise an attacker replaying
    /// a recorded frame could silence us.
    fn receive_own_id(&mut self, now: Instant, frame: &Repr, crc: u32) {
        self.stats.own_frames += 1;
        let ours = match frame.incarnation.cmp(&self.incarnation) {
            core::cmp::Ordering::Less => true,
            core::cmp::Ordering::Greater => false,
            core::cmp::Ordering::Equal if frame.sequence > self.sequence => false,
            core::cmp::Ordering::Equal => {
                let (sequence, sent_crc) = self.sent[ring_slot(frame.sequence)];
                // Too old to compare: assume it is ours.
                sequence != frame.sequence || sent_crc == crc
            }
        };
        if ours {
            return;
        }
        self.stats.duplicate_id_frames += 1;
        let fresh = self.duplicate.is_none();
        let until = now + self.quarantine_duration();
        let sighting = DuplicateId {
            incarnation: frame.incarnation,
            sequence: frame.sequence,
            quarantine_until: until,
        };
        self.duplicate = Some(sighting);
        if fresh {
            self.push_output(Output::Event(Event::DuplicateId(sighting)));
            if matches!(self.role, Role::Leading(_)) {
                self.start_election(now);
            }
        }
    }

    /// Four follower timeouts plus up to one more, spread by our incarnation: two boards
    /// with one id that both stood down come back at different times, and the first one
    /// back keeps the other quiet.
    fn quarantine_duration(&self) -> Duration {
        let sync = self.config.sync_timeout();
        let spread = crate::rng::mix(u64::from(self.incarnation) ^ self.config.id.rotate_left(32));
        let jitter_us = spread % u64::try_from(sync.as_micros()).unwrap_or(1).max(1);
        sync * 4 + Duration::from_micros(jitter_us)
    }

    // ----- promises, resign, answers ----------------------------------------------------

    fn promise_free_for(&self, leader: u64) -> bool {
        self.promise.leader == Some(leader) || self.now >= self.promise.until
    }

    /// Promise support to `leader` (process `incarnation`) until `until`. Renewing a
    /// promise to a new incarnation of the same leader keeps the old one's end as a floor.
    fn promise_to(&mut self, leader: u64, incarnation: u32, until: Instant) {
        let floor = match self.promise.leader {
            Some(current) if current == leader && self.promise.incarnation != incarnation => {
                self.promise.floor.max(self.promise.until)
            }
            Some(current) if current == leader => self.promise.floor,
            // A promise to another node (or none) has run out, or we would not be here.
            _ => Instant::ZERO,
        };
        self.promise = Promise {
            leader: Some(leader),
            incarnation,
            until,
            floor,
        };
    }

    /// `leader`'s process `incarnation` stepped down: it told its application before it
    /// said so, so our promise to that process ends now. A frame from another incarnation
    /// means the process we promised to crashed; its application may still act on its
    /// lease, so the promise runs its course (the fuzz input `fuzz/corpus/core_sequence/
    /// crash-ce082d2c…` found followers releasing a crashed leader's promise early).
    fn release_promise_of(&mut self, leader: u64, incarnation: u32) {
        if self.promise.leader == Some(leader) && self.promise.incarnation == incarnation {
            self.promise.until = self.now.min(self.promise.until).max(self.promise.floor);
            self.promise.leader = None;
        }
    }

    fn handle_resign(&mut self, now: Instant, sender: u64, incarnation: u32) {
        self.release_promise_of(sender, incarnation);
        match self.role {
            Role::Following(f) if f.vote.leader == sender => self.start_election(now),
            // The candidate we vote for is leaving: start over without it rather than
            // decide for a node that will never lead (or wait out a follower timeout).
            Role::Looking(l) if l.proposal.is_some_and(|p| p.leader == sender) => {
                self.start_election(now)
            }
            Role::Looking(_) => self.check_decision(now),
            _ => {}
        }
    }

    /// Answer a LOOKING node with our current state, within the answer budget: the answer
    /// is multicast, so one serves every looking node, and a looking node cannot make the
    /// cluster flood the group.
    fn answer(&mut self, now: Instant) {
        let interval = self.config.answer_interval().max(Duration::from_micros(1));
        let elapsed = now.saturating_duration_since(self.answer_refilled);
        let earned = u32::try_from(elapsed.as_micros() / interval.as_micros()).unwrap_or(u32::MAX);
        if earned > 0 {
            self.answer_tokens = self.answer_tokens.saturating_add(earned).min(ANSWER_BURST);
            self.answer_refilled = now;
        }
        if self.answer_tokens > 0 {
            self.answer_tokens -= 1;
            self.broadcast(now);
        }
    }

    fn broadcast(&mut self, now: Instant) {
        if matches!(self.role, Role::Following(_)) && !self.is_voter {
            // Observers stay silent once they observe.
            return;
        }
        self.transmit_pending = true;
        if let Some(looking) = self.looking() {
            self.timers
                .set(Timer::Notification, now + looking.notification_interval);
        }
    }

    fn persist(&mut self) {
        if let Some(i) = self.own_index {
            self.peers[i].accepted_epoch = self.epochs.accepted_epoch;
        }
        self.push_output(Output::Persist(self.epochs));
    }

    fn push_output(&mut self, output: Output) {
        if self.outputs.push_back(output).is_err() {
            self.stats.outputs_dropped += 1;
            debug_assert!(
                false,
                "output queue full: the driver must poll after every input"
            );
        }
    }

    fn set_public(&mut self, view: PublicView) {
        if view == self.public {
            return;
        }
        let previous = self.public.state;
        self.public = view;
        let election_time = (view.state != ServerState::Looking)
            .then(|| self.now.saturating_duration_since(self.election_started));
        if election_time.is_some() {
            self.last_election_time = election_time;
        }
        self.push_output(Output::Event(Event::StateChanged(StateChange {
            state: view.state,
            previous,
            leader: view.leader,
            epoch: view.epoch,
            round: self.round,
            election_time,
        })));
    }

    // ----- timers ---------------------------------------------------------------------

    fn fire(&mut self, now: Instant, timer: Timer) {
        match (timer, self.role) {
            (Timer::Notification, Role::Looking(mut looking)) => {
                // Nothing new arrived: re-broadcast and back off (the only retransmission).
                looking.notification_interval =
                    (looking.notification_interval * 2).min(self.config.max_notification_interval);
                self.role = Role::Looking(looking);
                self.broadcast(now);
            }
            (Timer::Finalize, Role::Looking(_)) => {
                let Some(proposal) = self.proposal() else {
                    return;
                };
                let round = self.round;
                let agreeing = self.count_votes(|p| {
                    p.election
                        .is_some_and(|e| e.vote == proposal && e.round == round)
                });
                if agreeing >= self.config.quorum() {
                    self.decide(now, proposal);
                }
            }
            (Timer::Heartbeat, Role::Leading(_)) => {
                self.timers.set(Timer::Heartbeat, now + self.config.tick);
                self.broadcast(now);
                self.update_leadership(now);
            }
            (Timer::LeaseEnd, Role::Leading(_)) => self.update_leadership(now),
            (Timer::SyncTimeout | Timer::InitTimeout, Role::Following(_) | Role::Leading(_)) => {
                self.start_election(now)
            }
            _ => {}
        }
    }

    // ----- frames ---------------------------------------------------------------------

    /// Our current state as a frame.
    fn build_frame(&mut self) -> Repr {
        self.sequence += 1;
        let no_vote = Vote {
            leader: NO_LEADER,
            zxid: 0,
            peer_epoch: 0,
        };
        let mut frame = Repr {
            state: ServerState::Looking,
            flags: Flags::empty(),
            key_id: 0,
            cluster: self.config.cluster,
            sender: self.config.id,
            incarnation: self.incarnation,
            sequence: self.sequence,
            vote: no_vote,
            round: self.round,
            accepted_epoch: self.epochs.accepted_epoch,
            epoch: 0,
            echo: 0,
            auth_tag: [0; 16],
        };
        match self.role {
            Role::Idle => {}
            Role::Looking(l) => frame.vote = l.proposal.unwrap_or(no_vote),
            Role::Following(f) => {
                frame.state = if self.is_voter {
                    ServerState::Following
                } else {
                    ServerState::Observing
                };
                frame.vote = f.vote;
                frame.epoch = f.acked_epoch;
                frame.echo = f.echo;
                if f.acked_epoch != 0 && f.established_epoch == f.acked_epoch {
                    frame.flags.insert(Flags::ESTABLISHED);
                }
            }
            Role::Leading(l) => {
                frame.state = ServerState::Leading;
                frame.vote = l.vote;
                frame.epoch = l.epoch;
                frame.echo = encode_echo(self.now);
                if l.established {
                    frame.flags.insert(Flags::ESTABLISHED);
                }
            }
            Role::Stopped { last_vote } => {
                frame.vote = last_vote.unwrap_or(no_vote);
                if self.resign_pending {
                    frame.flags.insert(Flags::RESIGN);
                    self.resign_pending = false;
                }
            }
        }
        frame
    }
}

fn ring_slot(sequence: u64) -> usize {
    // The remainder is below SENT_RING, so it fits.
    (sequence % SENT_RING as u64) as usize
}

/// Leader time stamps travel as microseconds plus one, so that zero means "none" even
/// for a clock whose origin is the start instant.
fn encode_echo(now: Instant) -> u64 {
    now.as_micros().saturating_add(1)
}

fn decode_echo(echo: u64) -> Option<Instant> {
    echo.checked_sub(1).map(Instant::from_micros)
}
