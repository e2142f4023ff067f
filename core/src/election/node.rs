//! The [`Node`]: one server's state, its commands, inputs, outputs and queries.
//!
//! Inputs arrive here: a datagram is parsed and authenticated, a frame is admitted (own id,
//! observer, stale, over budget, resigning or invalid vote are settled here) and then
//! handed to the handler of the current role (`looking`, `following`, `leading`). Timer
//! expiries are dispatched the same way. Outputs leave through one queue.

use core::time::Duration;

use super::budget::TokenBucket;
use super::config::{Config, ConfigError};
use super::duplicate::{DuplicateId, LaterProcess, OwnFrames, Quarantine};
use super::following::Following;
use super::handover::Successor;
use super::leading::Leading;
use super::looking::Looking;
use super::outgoing::ANSWER_BURST;
use super::output::{
    DatagramError, Epochs, Event, Output, RestartReason, StateChange, OUTPUT_CAPACITY,
};
use super::peers::{Admission, AdmitTiming, Heard, Voters};
use super::promise::Promise;
use super::stats::Stats;
use super::time::Instant;
use super::timers::{Timer, Timers};
use crate::auth::{self, KeySet};
use crate::wire::{self, Flags, Packet, Repr, ServerState, Vote, FRAME_LEN};

#[derive(Debug, Clone, Copy)]
pub(super) enum Role {
    /// Constructed, not started.
    Idle,
    Looking(Looking),
    /// FOLLOWING (voter) or OBSERVING (observer): same bookkeeping, observers never ack.
    Following(Following),
    Leading(Leading),
    /// Stepped down ([`Node::step_down`]) and silent until [`Node::shutdown`]: no role is
    /// reported, nothing is sent or timed, nothing is received but a successor's LEADING
    /// frames by a leader that handed over (see `handover`), and `last_vote` is what the
    /// RESIGN frame of the shutdown will repeat unless it supports that successor.
    SteppedDown {
        last_vote: Option<Vote>,
    },
    /// Shut down; the last frame (with RESIGN) repeats this vote.
    Stopped {
        last_vote: Option<Vote>,
    },
}

/// What the handover notice of a leader that stepped down repeats of its term: the
/// LEADING frame it would have sent, with HANDOVER and without a time stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Handover {
    pub(super) vote: Vote,
    pub(super) epoch: u64,
    pub(super) established: bool,
}

/// The state the application sees; a change is reported as [`Event::StateChanged`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PublicView {
    pub(super) state: ServerState,
    pub(super) leader: Option<u64>,
    pub(super) epoch: Option<u64>,
}

impl PublicView {
    pub(super) const LOOKING: PublicView = PublicView {
        state: ServerState::Looking,
        leader: None,
        epoch: None,
    };
}

/// One server's FastLeaderElection state machine. See the module docs.
#[derive(Debug)]
pub struct Node {
    pub(super) config: Config,
    pub(super) is_voter: bool,
    pub(super) incarnation: u32,
    pub(super) epochs: Epochs,
    pub(super) zxid: u64,
    pub(super) round: u64,
    pub(super) role: Role,
    pub(super) voters: Voters,
    pub(super) timers: Timers,
    pub(super) promise: Promise,
    pub(super) public: PublicView,
    outputs: heapless::Deque<Output, OUTPUT_CAPACITY>,
    /// A frame is due: built from the then current state when polled.
    pub(super) transmit_pending: bool,
    /// The due frame is only a heartbeat answer to this leader (see [`Frame::to`]);
    /// any other reason to send clears it.
    pub(super) reply_to: Option<u64>,
    /// When we last accepted a LOOKING frame from an observer (voters are followed one by
    /// one, see `Peer::looking`): see `Node::someone_looking`.
    pub(super) observer_looking_at: Option<Instant>,
    /// Our socket receives unicast at our frames' source address: our LEADING frames
    /// carry UNICAST_ANSWERS ([`Node::set_unicast_answers`]).
    pub(super) unicast_answers: bool,
    /// The next frame carries RESIGN.
    pub(super) resign_pending: bool,
    /// The next frame is the handover notice of a leader that stepped down (see
    /// [`Node::step_down`]).
    pub(super) handover_pending: Option<Handover>,
    /// A leader that stepped down watches for its successor, whose support its RESIGN
    /// carries (see `handover`).
    pub(super) successor: Successor,
    /// Answers to LOOKING nodes, one token per answer interval.
    pub(super) answers: TokenBucket<ANSWER_BURST>,
    /// The latest input time (never goes back).
    pub(super) now: Instant,
    election_started: Instant,
    /// When [`Node::start`] ran: voters never heard count as silent from here.
    pub(super) started: Instant,
    last_election_time: Option<Duration>,
    pub(super) own_frames: OwnFrames,
    /// Set while another board with our id is (or was recently) heard.
    pub(super) quarantine: Quarantine,
    /// A process with our id and a later incarnation, watched for liveness.
    pub(super) later_process: LaterProcess,
    pub(super) stats: Stats,
    /// Binds our leader time stamps to this process (see `outgoing::encode_echo`).
    pub(super) nonce: u64,
    /// Lowest epoch we propose (0 = none).
    pub(super) epoch_floor: u64,
    /// [`Node::step_down`] was called: this process never leads again.
    pub(super) renounced: bool,
    /// Its health checks pass: it may lead (see `health`).
    pub(super) eligible: bool,
}

/// The seed of the default process nonce: the id and the incarnation, which differ
/// between the processes of one cluster as long as incarnations do.
fn default_nonce_seed(id: u64, incarnation: u32) -> u64 {
    id ^ (u64::from(incarnation) << 32)
}

impl Node {
    /// A node that will run with `config`, restored `epochs` and this start's `incarnation`
    /// (which the driver bumps and persists before calling). Call [`Node::start`] next.
    pub fn new(config: Config, epochs: Epochs, incarnation: u32) -> Result<Node, ConfigError> {
        config.validate()?;
        let own_id = config.id;
        let own_index = config.voter_index(config.id);
        let voters = Voters::new(config.voters.len(), own_index, epochs.accepted_epoch);
        Ok(Node {
            is_voter: own_index.is_some(),
            config,
            incarnation,
            epochs,
            zxid: 0,
            round: 0,
            role: Role::Idle,
            voters,
            timers: Timers::default(),
            promise: Promise::NONE,
            public: PublicView::LOOKING,
            outputs: heapless::Deque::new(),
            transmit_pending: false,
            reply_to: None,
            observer_looking_at: None,
            unicast_answers: false,
            resign_pending: false,
            handover_pending: None,
            successor: Successor::Unwatched,
            answers: TokenBucket::FULL,
            now: Instant::ZERO,
            election_started: Instant::ZERO,
            started: Instant::ZERO,
            last_election_time: None,
            own_frames: OwnFrames::NEW,
            quarantine: Quarantine::default(),
            later_process: LaterProcess::default(),
            stats: Stats::default(),
            nonce: crate::rng::mix(default_nonce_seed(own_id, incarnation)),
            epoch_floor: 0,
            renounced: false,
            eligible: true,
        })
    }

    /// Whether our socket receives unicast at the source address and port of our frames
    /// (the driver knows: a socket bound to the group address does not). While set, our
    /// LEADING frames carry UNICAST_ANSWERS, as long as our lease is renewed comfortably
    /// ([`Node::frames_can_wait`]), and followers answer our heartbeats by unicast, so
    /// they do not wake each other every tick. When answers go missing (lost, or unicast
    /// blocked) the flag is dropped until they arrive again (counted in
    /// [`Stats::group_answer_requests`]). May change at any time (a re-opened socket);
    /// takes effect with the next frame.
    pub fn set_unicast_answers(&mut self, enabled: bool) {
        self.unicast_answers = enabled;
    }

    /// Bind this process's leader time stamps to `nonce` (call before [`Node::start`];
    /// a random value, different for every process start). A leader counts an echo only
    /// if it decodes under its *current* nonce to one of its stamps of the current term,
    /// so a frame from before a restart (late or replayed) never extends a lease, even
    /// once the new process's clock (which may start at a new origin) passes the old
    /// stamp. Default: a mix of the id and the incarnation, distinct per process as long
    /// as incarnations are.
    pub fn set_process_nonce(&mut self, nonce: u64) {
        self.nonce = nonce;
    }

    /// Propose no epoch below `floor` (0 = no floor); may be called at any time and takes
    /// effect at the next proposal. A leader proposes `max(known accepted epochs + 1,
    /// floor)`, so a floor that grows with a set wall clock keeps epochs from being reused
    /// after a lost data dir (see the module docs).
    pub fn set_epoch_floor(&mut self, floor: u64) {
        self.epoch_floor = floor;
    }

    /// Replace the keys that sign our frames and verify received ones (a reloaded key
    /// file); takes effect with the next frame. Rotation stays safe as long as every
    /// node's set shares a key with every other node's at each step (see `auth`).
    pub fn set_keys(&mut self, keys: KeySet) {
        self.config.keys = keys;
    }

    // ----- commands -------------------------------------------------------------------

    /// Start the first election.
    pub fn start(&mut self, now: Instant) {
        if !matches!(self.role, Role::Idle) {
            return;
        }
        self.now = now;
        self.started = now;
        // Restart quarantine: a node that ever accepted an epoch may have promised support
        // to a leader before it crashed; that promise is gone from memory, so make no new
        // one until it would have run out.
        self.promise = Promise::blocked_until(if self.epochs.accepted_epoch > 0 {
            now + self.config.sync_timeout()
        } else {
            now
        });
        self.bound_lost_epochs();
        self.start_election(now);
    }

    /// A voter that starts without epochs (no data dir, or a wiped one) cannot know which
    /// epochs an earlier process of it acknowledged. Each was proposed at or above its
    /// proposer's floor, so while the clocks agree this node's own floor now lies above
    /// them all: it takes that floor as its accepted epoch (in memory only; a later start
    /// takes its own floor again). It then acknowledges no epoch at or below the floor,
    /// and its frames carry the floor, so the next leader proposes past it even when that
    /// leader's own floor is behind (its wall clock stepped back). The restart quarantine
    /// is decided before this, on what the node really restored.
    fn bound_lost_epochs(&mut self) {
        if self.is_voter && self.epochs == Epochs::default() {
            self.epochs.accepted_epoch = self.epoch_floor;
            self.voters.set_own_accepted_epoch(self.epoch_floor);
        }
    }

    /// Graceful shutdown: stop reporting any role, then broadcast a frame with the RESIGN
    /// flag so that followers start a new round at once (after a handover, the frame
    /// also supports the successor: see `handover`). The node is inert afterwards.
    pub fn shutdown(&mut self, now: Instant) {
        self.advance_clock(now);
        if matches!(self.role, Role::Idle | Role::Stopped { .. }) {
            return;
        }
        let last_vote = self.last_vote();
        self.set_public(PublicView::LOOKING);
        self.role = Role::Stopped { last_vote };
        self.timers.clear_all();
        self.promise_successor(now);
        self.resign_pending = true;
        self.transmit_pending = true;
        self.reply_to = None;
    }

    /// First step of a graceful handover: stop leading without releasing anyone.
    ///
    /// A leader (reporting LEADING or still establishing its epoch) or a LOOKING node
    /// reports LOOKING at once (an [`Event::StateChanged`] if it was LEADING; then
    /// [`Node::valid_until`] is None) and falls silent: it ignores every input until
    /// [`Node::shutdown`] (a leader keeps only its successor's latest LEADING frame, whose
    /// epoch it accepts, with an [`Output::Persist`], and supports in its RESIGN: see
    /// `handover`) and sends one frame only, if it was a leader: the handover
    /// notice, its LEADING frame with HANDOVER and without a time stamp. The followers'
    /// promises keep running: any LOOKING frame from this process would end them (see
    /// `Promise::release`), which is why none is sent, and the notice renews none. They
    /// end at the RESIGN frame of the shutdown or when each follower's timeout runs out
    /// without a heartbeat, whichever comes first; either way after the application was
    /// told. The notice lets the followers elect a successor and establish its epoch
    /// meanwhile, so that it leads as soon as the promises end (see `handle_handover`);
    /// a node that misses it elects after the RESIGN, as without it. A follower keeps
    /// following (its state does not change), but this process never leads again: if it
    /// would start an election, it falls silent instead. Idempotent; no-op before
    /// [`Node::start`] and after [`Node::shutdown`].
    pub fn step_down(&mut self, now: Instant) {
        self.advance_clock(now);
        if matches!(self.role, Role::SteppedDown { .. }) {
            // Standing down for health (or stepped down already): now for good.
            self.renounced = true;
            self.timers.clear(Timer::StandDown);
            return;
        }
        if !self.is_running() {
            return;
        }
        self.renounced = true;
        let handover = match self.role {
            Role::Leading(l) => Some(Handover {
                vote: l.vote,
                epoch: l.epoch,
                established: l.established,
            }),
            _ => None,
        };
        if matches!(self.role, Role::Looking(_) | Role::Leading(_)) {
            self.fall_silent();
        }
        if handover.is_some() {
            self.handover_pending = handover;
            self.successor = Successor::Awaited;
            self.transmit_pending = true;
            self.reply_to = None;
        }
    }

    /// Leave any role for `SteppedDown`: report LOOKING, send and time nothing.
    pub(super) fn fall_silent(&mut self) {
        let last_vote = self.last_vote();
        self.set_public(PublicView::LOOKING);
        self.role = Role::SteppedDown { last_vote };
        self.timers.clear_all();
        // A frame built now would say LOOKING from our process and release the
        // followers' promises.
        self.transmit_pending = false;
    }

    /// The vote our frames carry in the current role.
    fn last_vote(&self) -> Option<Vote> {
        match self.role {
            Role::Looking(l) => l.proposal,
            Role::Following(f) => Some(f.vote),
            Role::Leading(l) => Some(l.vote),
            Role::Idle => None,
            Role::SteppedDown { last_vote } | Role::Stopped { last_vote } => last_vote,
        }
    }

    /// The application's data version changed. It is used from the next election on
    /// (ZooKeeper reads the last logged zxid when an election starts).
    pub fn set_zxid(&mut self, zxid: u64) {
        self.zxid = zxid;
    }

    /// The driver can send again after an outage of its link (an interface that was gone,
    /// down or without an address). Frames sent meanwhile were lost, and a LOOKING node's
    /// notification backoff may have grown to `max_notification_interval`: it restarts
    /// the backoff and re-broadcasts its vote now, so peers hear it at once. Other roles
    /// send every tick anyway and are left alone. Nothing else changes: the round, the
    /// votes and the promises are kept.
    pub fn handle_link_restored(&mut self, now: Instant) {
        self.advance_clock(now);
        self.restart_notifications(now);
    }

    // ----- inputs ---------------------------------------------------------------------

    /// Parse an untrusted datagram, check its authentication (when keys are configured)
    /// and handle it. Malformed, foreign and unauthentic datagrams are counted and returned
    /// as errors; they never change the node's state.
    ///
    /// `now` must be read after the datagram was received (as the daemon does, once per
    /// datagram). A follower's promise to its leader runs from `now`, while the leader
    /// counts the same support from when it sent the frame; a `now` from before the frame
    /// arrived would end the promise before the lease built on it.
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

    /// Handle a parsed frame of our cluster whose authentication (if any) was checked;
    /// `now` as for [`Node::handle_datagram`].
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
        let running = self.is_running();
        // Stepped down for a handover: only the successor's frames are read.
        let watching = matches!(self.role, Role::SteppedDown { .. }) && self.successor.is_watched();
        if !running && !watching {
            return;
        }
        self.stats.frames_received += 1;
        if frame.sender == self.config.id {
            if running {
                self.receive_own_id(now, frame, crc);
            }
            return;
        }
        let Some(index) = self.config.voter_index(frame.sender) else {
            if running {
                self.receive_non_voter(now, frame);
            }
            return;
        };
        let position = (frame.incarnation, frame.sequence);
        let timing = AdmitTiming {
            budget_interval: self.config.frame_budget_interval(),
            readmit_after: self.config.readmit_after(),
        };
        match self.voters[index].admit(now, timing, position) {
            Admission::Accepted => {}
            Admission::Readmitted => self.stats.readmitted += 1,
            Admission::Stale => {
                self.stats.stale_frames += 1;
                return;
            }
            Admission::Throttled => {
                self.stats.throttled += 1;
                return;
            }
        }
        if !running {
            self.watch_successor(frame);
            return;
        }
        let peer = &mut self.voters[index];
        peer.accepted_epoch = frame.accepted_epoch;
        peer.resigned = frame.flags.contains(Flags::RESIGN);
        peer.handing_over = !peer.resigned
            && frame.state == ServerState::Leading
            && frame.flags.contains(Flags::HANDOVER);
        peer.looking = frame.state == ServerState::Looking && !peer.resigned;
        if peer.resigned {
            self.handle_resign(now, index, frame);
            return;
        }
        if peer.handing_over {
            self.handle_handover(now, index, frame.sender);
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
            Role::Idle | Role::SteppedDown { .. } | Role::Stopped { .. } => {}
        }
    }

    /// Observers and strangers are never counted (validVoter), but a looking one gets our
    /// current state, as ZooKeeper answers non-voters.
    fn receive_non_voter(&mut self, now: Instant, frame: &Repr) {
        self.stats.non_voter_frames += 1;
        let settled = matches!(self.role, Role::Following(_) | Role::Leading(_));
        if frame.state == ServerState::Looking && !frame.flags.contains(Flags::RESIGN) {
            self.observer_looking_at = Some(now);
            if settled {
                self.answer(now);
            }
        }
    }

    /// Voter `frame.sender` (at `index`) announced its shutdown.
    fn handle_resign(&mut self, now: Instant, index: usize, frame: &Repr) {
        let sender = frame.sender;
        self.promise.release(sender, frame.incarnation, self.now);
        if self.voter_left(now, sender, RestartReason::Resigned) {
            return;
        }
        let for_us = frame.state == ServerState::Following && frame.vote.leader == self.config.id;
        match self.role {
            // A successor elected during a handover: the released promise may be what
            // its lease was waiting for.
            Role::Following(_) => self.resume_support(now),
            // Its predecessor's RESIGN may carry its support too (see `handover`): counted
            // like any follower's, after the release above.
            Role::Leading(_) if for_us => self.leader_receive(now, index, frame),
            Role::Leading(_) => self.update_leadership(now),
            _ => {}
        }
    }

    /// Voter `sender` (at `index`) stepped down for a graceful shutdown (HANDOVER): it never
    /// leads again, and resigns once its application was told. Our promise to it runs
    /// on (it may end only at that RESIGN, or at its own end), but the election of its
    /// successor need not wait: leave it out like a voter that resigned, so that the
    /// survivors decide at once, propose and establish the next epoch. The successor
    /// reports LEADING only with a lease, which needs the promises of a quorum: they
    /// come with the RESIGN (`resume_support`, and the successor's own once its
    /// promise is free), so the two leaderships cannot overlap. Without the notice (lost,
    /// or a sender that predates it) all this starts at the RESIGN.
    fn handle_handover(&mut self, now: Instant, index: usize, sender: u64) {
        // Its last LEADING report no longer shows an ensemble to join.
        self.voters[index].out_of_election = None;
        self.voter_left(now, sender, RestartReason::HandingOver);
    }

    /// Voter `sender` will never lead again (its RESIGN or handover notice). Following it,
    /// or voting for it while LOOKING, we start a new round without it, rather than
    /// decide for a node that will never lead or wait out a follower timeout; LOOKING
    /// otherwise, we check our decision again, since it no longer counts towards "every
    /// voter agrees". False in any other role, where nothing was done.
    fn voter_left(&mut self, now: Instant, sender: u64, reason: RestartReason) -> bool {
        match self.role {
            Role::Following(f) if f.vote.leader == sender => self.restart_election(now, reason),
            Role::Looking(l) if l.proposal.is_some_and(|p| p.leader == sender) => {
                self.restart_election(now, reason)
            }
            Role::Looking(_) => self.check_decision(now),
            _ => return false,
        }
        true
    }

    /// Handle every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance_clock(now);
        // Back from the quarantine: a fresh round, so that our vote is heard again.
        if self.quarantine.expire(now) && matches!(self.role, Role::Looking(_)) {
            self.restart_election(now, RestartReason::QuarantineOver);
        }
        // Each handler sets its next deadline strictly after `now`, so this terminates;
        // the bound is a guard against a future mistake, not a limit ever reached.
        for _ in 0..(4 * Timer::ALL.len()) {
            let Some(timer) = self.timers.first_expired(now) else {
                return;
            };
            let due = self.timers.get(timer).unwrap_or(now);
            self.timers.clear(timer);
            self.fire(now, timer, due);
        }
        debug_assert!(self.timers.first_expired(now).is_none(), "timer loop");
    }

    /// Act on `timer`, which was due at `due` (at or before `now`).
    fn fire(&mut self, now: Instant, timer: Timer, due: Instant) {
        match (timer, self.role) {
            (Timer::Notification, Role::Looking(_)) => self.notification_expired(now),
            (Timer::Finalize, Role::Looking(_)) => self.finalize_expired(now),
            (Timer::Heartbeat, Role::Leading(_)) => self.heartbeat(now, due),
            (Timer::LeaseEnd, Role::Leading(_)) => self.update_leadership(now),
            (Timer::StandDown, Role::SteppedDown { .. }) => self.come_back(now),
            (Timer::SyncTimeout, Role::Following(follow)) => {
                if let Some(i) = self.config.voter_index(follow.vote.leader) {
                    self.voters[i].timed_out = true;
                }
                self.restart_election(now, RestartReason::SyncTimeout)
            }
            (Timer::SyncTimeout, Role::Leading(_)) => {
                self.restart_election(now, RestartReason::SyncTimeout)
            }
            (Timer::InitTimeout, Role::Following(_) | Role::Leading(_)) => {
                self.restart_election(now, RestartReason::InitTimeout)
            }
            _ => {}
        }
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
            if matches!(self.role, Role::SteppedDown { .. }) && self.handover_pending.is_none() {
                // Stepped down: silent until the shutdown but for the handover notice (see
                // `Node::step_down`).
                return None;
            }
            if self.quarantine.is_active() {
                // Quarantined: another board speaks with our id; adding our frames would
                // only make peers drop one of us at random.
                return None;
            }
            return Some(Output::Transmit(self.transmit()));
        }
        None
    }

    /// The next instant at which [`Node::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        // A stopped node has nothing left to do, the end of a quarantine included.
        let quarantine = self
            .quarantine
            .current()
            .filter(|_| self.is_running())
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
        self.quarantine.current()
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

    /// Whether the frames that arrive until the next heartbeat may wait for it: true
    /// while we lead an established epoch whose lease, as it stands, outlasts the next
    /// heartbeat by half a tick (the margin for a late wake-up). Frames then change
    /// nothing that cannot wait a tick: an echo extends the lease from the time stamp it
    /// carries, not from when it is read, and a LOOKING voter is answered a tick later. A
    /// driver may then leave the socket unwatched and read it when
    /// [`Node::poll_timeout`] fires, *before* [`Node::handle_timeout`], so that the
    /// heartbeat reads every answer to the previous one in the same wake-up. If the lease
    /// stops outlasting the next read (answers lost), this turns false and frames count
    /// at once again; our frames then also stop asking for unicast answers (see
    /// [`Node::set_unicast_answers`]).
    pub fn frames_can_wait(&self) -> bool {
        let Role::Leading(lead) = &self.role else {
            return false;
        };
        let (Some(lease), Some(heartbeat)) = (lead.lease_until, self.timers.get(Timer::Heartbeat))
        else {
            return false;
        };
        lead.established
            && self.public.state == ServerState::Leading
            && lease > heartbeat + self.config.tick / 2
    }

    /// How recently a voter must have been heard to count as heard: `sync_limit` ticks,
    /// the time a follower waits for its leader.
    pub fn detection_window(&self) -> Duration {
        self.config.sync_timeout()
    }

    /// The other voters whose last authentic, well-formed frame was accepted (not stale,
    /// not over budget) less than [`Node::detection_window`] before `now`, in voter order,
    /// with the age of that frame at `now`. For operators: which peers reach us.
    pub fn heard(&self, now: Instant) -> impl Iterator<Item = Heard> + '_ {
        self.voters
            .heard(&self.config.voters, now, self.detection_window())
    }

    /// When the last frame of voter `id` was accepted (on the clock of the inputs); None
    /// if never, or if `id` is no other voter. A driver that just handed a datagram to
    /// [`Node::handle_datagram`] at `now` tells by `Some(now)` that it was accepted.
    pub fn last_heard_from(&self, id: u64) -> Option<Instant> {
        let index = self.config.voter_index(id)?;
        if Some(index) == self.voters.own() {
            return None;
        }
        self.voters[index].positions.map(|p| p.heard_at)
    }

    /// Every other voter heard since the start, in voter order, with the time its last
    /// frame was accepted (on the clock of the inputs).
    pub fn last_heard(&self) -> impl Iterator<Item = (u64, Instant)> + '_ {
        self.voters.last_frames(&self.config.voters)
    }

    /// The time stamp of ours in an `echo` value (as a follower echoes it), decoded under
    /// this process's nonce; None for zero. A value from another process decodes to an
    /// arbitrary time. For checkers that compare echoes with this node's clock.
    pub fn echo_stamp(&self, echo: u64) -> Option<Instant> {
        super::outgoing::decode_echo(echo, self.nonce)
    }

    /// The `echo` value our LEADING frame sent at `stamp` carries: the inverse of
    /// [`Node::echo_stamp`]. For harnesses that craft the echo of one of our stamps.
    pub fn stamp_echo(&self, stamp: Instant) -> u64 {
        super::outgoing::encode_echo(stamp, self.nonce)
    }

    /// The proposal of the running election, if LOOKING.
    pub fn proposal(&self) -> Option<Vote> {
        match self.role {
            Role::Looking(l) => l.proposal,
            _ => None,
        }
    }

    // ----- shared by the role handlers ------------------------------------------------

    /// Started, not stepped down and not shut down.
    fn is_running(&self) -> bool {
        !matches!(
            self.role,
            Role::Idle | Role::SteppedDown { .. } | Role::Stopped { .. }
        )
    }

    /// The latest time any input carried: a driver never hands the node an earlier one
    /// (earlier times are taken as this one).
    pub fn last_input(&self) -> Instant {
        self.now
    }

    pub(super) fn advance_clock(&mut self, now: Instant) {
        // Inputs come from a monotonic clock; guard against a driver bug anyway.
        self.now = self.now.max(now);
    }

    /// Whether another node may still be LOOKING: a voter whose latest frame said so, or
    /// an observer that said so, heard within `max_notification_interval` (a LOOKING
    /// node repeats its vote at least that often; at least the detection window). Such
    /// a node may join the leader on the FOLLOWING frames of a quorum. A voter that
    /// joined since, and answers its leader alone, counts until that window passes.
    pub(super) fn someone_looking(&self, now: Instant) -> bool {
        let window = self
            .config
            .max_notification_interval
            .max(self.config.sync_timeout());
        let recent = |t: Instant| now.saturating_duration_since(t) < window;
        self.observer_looking_at.is_some_and(recent)
            || self.voters.iter().enumerate().any(|(i, p)| {
                Some(i) != self.voters.own()
                    && p.looking
                    && p.positions.is_some_and(|pos| recent(pos.heard_at))
            })
    }

    /// When the current (or last) election started.
    pub(super) fn election_started(&self) -> Instant {
        self.election_started
    }

    /// Mark the start of an election, for the election time reported with its outcome.
    pub(super) fn mark_election_start(&mut self, now: Instant) {
        self.election_started = now;
    }

    /// Ask the driver to store our epochs before it acts on anything later.
    pub(super) fn persist(&mut self) {
        self.voters
            .set_own_accepted_epoch(self.epochs.accepted_epoch);
        self.push_output(Output::Persist(self.epochs));
    }

    pub(super) fn push_output(&mut self, output: Output) {
        if self.outputs.push_back(output).is_err() {
            self.stats.outputs_dropped += 1;
            debug_assert!(
                false,
                "output queue full: the driver must poll after every input"
            );
        }
    }

    /// Change what the application sees; a change is reported as an event.
    pub(super) fn set_public(&mut self, view: PublicView) {
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote, Sender};
    use super::*;

    #[test]
    fn inputs_before_start_and_after_shutdown_change_nothing() {
        let mut node =
            Node::new(Config::new(1, &[1, 2, 3]).unwrap(), Epochs::default(), 1).unwrap();
        let mut two = Sender::new(2);
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(2, 0, 0), 1),
        );
        assert_eq!(node.stats().frames_received, 0);
        assert!(node.poll_output().is_none());
        node.start(Instant::ZERO);
        drain(&mut node);
        node.shutdown(Instant::from_millis(1));
        let last = frames(&mut node);
        assert_eq!(last.len(), 1);
        assert!(last[0].repr.flags.contains(Flags::RESIGN));
        node.handle_frame(
            Instant::from_millis(2),
            &two.frame(ServerState::Looking, vote(2, 0, 0), 5),
        );
        assert_eq!(node.round(), 1);
        assert!(node.poll_output().is_none() && node.poll_timeout().is_none());
    }

    #[test]
    fn stale_and_throttled_frames_are_counted_and_ignored() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let mut two = Sender::new(2);
        let frame = two.frame(ServerState::Looking, vote(2, 0, 0), 1);
        node.handle_frame(Instant::ZERO, &frame);
        node.handle_frame(Instant::ZERO, &frame);
        assert_eq!(node.stats().stale_frames, 1);
        for _ in 0..crate::election::FRAME_BUDGET_BURST {
            node.handle_frame(
                Instant::ZERO,
                &two.frame(ServerState::Looking, vote(2, 0, 0), 1),
            );
        }
        assert_eq!(node.stats().throttled, 1);
    }

    #[test]
    fn votes_for_non_voters_are_invalid() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let mut two = Sender::new(2);
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(9, 0, 0), 1),
        );
        assert_eq!(node.stats().invalid_votes, 1);
        assert_eq!(node.proposal(), Some(vote(1, 0, 0)));
    }

    #[test]
    fn a_single_voter_leads_at_once_and_reports_it_in_order() {
        let mut node = started(1, &[1]);
        let out = drain(&mut node);
        // Persist the proposed epoch, persist it as established, report LEADING, then
        // the frame announcing it.
        let epochs = Epochs {
            accepted_epoch: 1,
            accepted_leader: 1,
            current_epoch: 0,
        };
        assert_eq!(out[0], Output::Persist(epochs));
        assert_eq!(
            out[1],
            Output::Persist(Epochs {
                current_epoch: 1,
                ..epochs
            })
        );
        assert!(matches!(
            out[2],
            Output::Event(Event::StateChanged(StateChange {
                state: ServerState::Leading,
                leader: Some(1),
                epoch: Some(1),
                ..
            }))
        ));
        assert!(matches!(out[3], Output::Transmit(_)));
        assert_eq!(out.len(), 4);
        assert_eq!(node.valid_until(), Some(Instant::FAR_FUTURE));
    }

    #[test]
    fn a_voter_whose_incarnation_went_backwards_is_readmitted_after_silence() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let readmit_after = node.config().readmit_after();
        // Voter 2 runs as incarnation 5, then restarts as 3 (its data dir was wiped and
        // its clock is behind).
        let mut old = Sender::new(2);
        old.incarnation = 5;
        node.handle_frame(
            Instant::ZERO,
            &old.frame(ServerState::Looking, vote(2, 0, 0), 1),
        );
        let mut new = Sender::new(2);
        new.incarnation = 3;
        let at = Instant::ZERO + readmit_after;
        let before = at - Duration::from_micros(1);
        // Voter 3 is heard too (with a worse vote), so no one is left out as silent and
        // the election stays open.
        node.handle_frame(
            before,
            &Sender::new(3).frame(ServerState::Looking, vote(1, 0, 0), 1),
        );
        node.handle_frame(before, &new.frame(ServerState::Looking, vote(3, 0, 0), 1));
        assert_eq!(node.stats().stale_frames, 1);
        assert_eq!(node.stats().readmitted, 0);
        assert_eq!(node.proposal(), Some(vote(2, 0, 0)));
        // Silent for readmit_after: its new process is heard.
        node.handle_frame(at, &new.frame(ServerState::Looking, vote(3, 0, 0), 1));
        assert_eq!(node.stats().readmitted, 1);
        assert_eq!(node.proposal(), Some(vote(3, 0, 0)));
        // A replay of incarnation 5 stays stale, and the readmitted one goes on normally.
        let mut replay = Sender::new(2);
        replay.incarnation = 5;
        node.handle_frame(at, &replay.frame(ServerState::Looking, vote(2, 0, 0), 1));
        assert_eq!(node.stats().stale_frames, 2);
        node.handle_frame(at, &new.frame(ServerState::Looking, vote(3, 0, 0), 1));
        assert_eq!(node.stats().stale_frames, 2);
        assert_eq!(node.stats().readmitted, 1);
    }
}
