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
//!
//! # Layout
//! - `node`: the [`Node`] itself, its commands, inputs, outputs and queries; it admits
//!   frames and hands them to the handler of its current role.
//! - `looking`: FastLeaderElection proper (votes, rounds, the decision).
//! - `following`: a follower's (or observer's) side of the leadership phase.
//! - `leading`: epoch proposal, acknowledgements, the lease and stepping down.
//! - `promise`: a follower's promise not to support another leader.
//! - `duplicate`: our recent frames, and the quarantine when another board has our id.
//! - `peers`: what we know of each voter; `budget`: the token bucket that limits both
//!   our answers and each voter's frames.
//! - `outgoing`: reasons to send and the frame we send; `output`: what the driver receives.
//! - `config`, `time`, `timers`, `vote`, `stats`: parameters, the clock type, the named
//!   deadlines, the vote order and the counters.

mod budget;
mod config;
mod duplicate;
mod following;
mod leading;
mod looking;
mod node;
mod outgoing;
mod output;
mod peers;
mod promise;
mod stats;
mod time;
mod timers;
mod vote;

#[cfg(test)]
mod testing;

pub use self::config::{Config, ConfigError, FRAME_BUDGET_BURST, MAX_VOTERS};
pub use self::duplicate::DuplicateId;
pub use self::node::Node;
pub use self::output::{DatagramError, Epochs, Event, Frame, Output, StateChange, OUTPUT_CAPACITY};
pub use self::stats::Stats;
pub use self::time::Instant;
pub use self::vote::beats;
pub use crate::wire::{ServerState, Vote};
