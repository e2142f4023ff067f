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
//! - Votes are ordered by (eligible, peer epoch, zxid, id) ([`beats`]); without health
//!   checks every vote is eligible. An ineligible vote never decides (see `health`).
//! - LOOKING frame, larger round: adopt the round, forget received votes, take the better of
//!   the frame's vote and our *initial* vote, broadcast. Smaller round: ignore it, answer so
//!   the sender catches up. Equal round: adopt the vote if it beats ours, broadcast; if it
//!   is worse, answer (beyond ZooKeeper: on a lossy medium the sender evidently missed our
//!   vote, which TCP would have delivered).
//! - Decide when a strict majority of voters agrees with our proposal, after `finalize_wait`
//!   without a better vote; at once when *every* voter agrees (see `Node::check_decision`).
//! - FOLLOWING/LEADING frames let a LOOKING node join an established leader once a quorum
//!   reports the same leader and peer epoch and the leader itself reports LEADING.
//! - Retransmission is the exponential notification backoff only. It restarts from the
//!   minimum on news (beyond ZooKeeper, whose TCP delivered each notification once): a new
//!   proposal, the first vote of a voter in an older round in our round, an established
//!   ensemble we cannot join yet, a restored link.
//!
//! # Leadership phase (ZooKeeper leaves this to Zab)
//! After deciding, the leader proposes `epoch = max(accepted epochs it knows, its own) + 1`,
//! or the epoch floor ([`Node::set_epoch_floor`]) if that is higher, persists it as
//! accepted and broadcasts it in LEADING frames. A follower acknowledges an epoch only if
//! it is greater than its accepted epoch (or equal and from the same leader), after
//! persisting it; a floor epoch is just a greater one. With a quorum of acknowledgements
//! the epoch is *established*: the leader persists it as its current epoch and sets the
//! ESTABLISHED flag; followers then adopt it too. Each node acknowledges each epoch for at
//! most one leader and never a smaller one, so two leaders never establish the same epoch
//! *as long as the nodes keep their accepted epochs*. A node that lost them (a wiped data
//! dir) may acknowledge an epoch again; if it was the only node shared by the quorums of
//! two leaders, the later one can establish an epoch already used. The floor closes that
//! gap whenever every proposer's floor exceeds every epoch established before: the daemon
//! derives it from a wall clock that looks set (milliseconds since 2020), which holds when the
//! clocks are set and agree to within the time between two elections. A voter that starts
//! without epochs also takes its own floor as its accepted epoch (in memory), so it
//! acknowledges nothing at or below it and its frames make the next leader propose past
//! it: the gap then stays closed when that voter's clock was right at its start, even if
//! the proposer's clock has since been stepped back. Epochs saturate at `u64::MAX` (then
//! no new epoch can be established; nothing overflows).
//!
//! # Leases: why two nodes never report LEADING at the same time
//! Every LEADING frame carries the leader's clock, offset by a nonce of its process
//! ([`Node::set_process_nonce`]; `echo`). A follower that receives it *promises* not to
//! support any other leader for `sync_timeout` of its own clock, and only then echoes the
//! value back; while an earlier promise to another node is running it echoes nothing. The
//! leader keeps, per voter, the newest stamp that
//! - came in a FOLLOWING frame for it that acknowledges its *current* epoch proposal (the
//!   stamps are forgotten with the acknowledgements at each new proposal and term), and
//! - decodes under its *current* nonce to a time in `[term_start, now]`.
//!
//! Such a stamp was sent by this process in this term (a value encoded under another
//! nonce decodes to a time in that window with odds of about `now / 2^64`, however the
//! clocks' origins compare), so the voter promised support at or after the moment it was
//! sent; that promise lasts at least `sync_timeout / (1 + ρ)` of real time from then,
//! which the leader covers by `lease_duration = sync_timeout · (1 − ρ) / (1 + ρ)` of its
//! own (possibly slow) clock. Late and replayed frames change nothing here: a frame
//! recorded in this term repeats evidence of a promise really made; one recorded earlier
//! (another term, another process, another epoch) is not counted. The lease ends at the
//! quorum-th largest `stamp + lease_duration` (the leader counts itself once its own
//! promise is free). The leader reports LEADING only while the lease lasts and steps down
//! when it runs out. Two leases that overlap in time would need two quorums, hence one
//! node, promised to two leaders at once, which the promise rule forbids. The same
//! intersection argument shows that epochs of successive leaders strictly increase: the
//! common node acknowledged the later leader's epoch after the earlier one's.
//!
//! Ending a lease early: a LOOKING or RESIGN frame from the leader's own process (same
//! incarnation) ends the promises made to it: it stopped leading before sending it. A
//! leader that leaves before its lease ends (a duplicate id, a lease that shrank) still
//! supports nobody else until the lease end it reported, which its application may act
//! on without having seen the change.
//! Frames from a restarted leader do not: the crashed process's application may act on its
//! lease until it ends. A graceful handover has two steps: [`Node::step_down`] reports
//! LOOKING at once and then sends nothing but a handover notice (no LOOKING frame, which
//! would release the followers, and no heartbeat, which would renew them) and never
//! leads again; [`Node::shutdown`] sends the RESIGN that releases the followers. Between
//! the two the driver publishes the end of its lease; the followers' promises keep
//! running until the RESIGN or their own timeout, so no new leader is supported before
//! the old one's application was told. The notice (its LEADING frame with HANDOVER,
//! without a time stamp) changes no promise: it only lets the followers elect the
//! successor and establish its epoch meanwhile, which needs acknowledgements, not
//! promises; the successor's lease waits for the promises, which a follower gives it at
//! the RESIGN by echoing its last heartbeat at once (`Node::resume_support`), and which
//! the old leader gives in the RESIGN itself: it watched the successor's LEADING frames
//! while stepped down, so its RESIGN acknowledges the successor's epoch and echoes its
//! latest stamp (see `handover`). Assumptions: clock rates within ±`max_clock_drift_ppm`, and the
//! application treats leadership as ending at [`Node::valid_until`] even if its process is
//! descheduled.
//!
//! # Who hears what
//! Frames are broadcast (the driver multicasts them, or sends them to every peer), with
//! one exception: a follower's answer to its leader's heartbeat, once the epoch is
//! established, is a frame for the leader alone ([`Frame::to`]) if the leader's frames
//! carry UNICAST_ANSWERS ([`Node::set_unicast_answers`]: its socket receives unicast) and
//! no other node may still be LOOKING (one that said so within the notification
//! backoff's maximum, since it joins on the FOLLOWING frames of a quorum). With
//! [`Config::sparse_answers`] followers take turns: while every voter's support outlasts
//! [`Config::answer_slack`], the leader's frames carry ANSWER_OPTIONAL and a follower
//! that acknowledged the established epoch answers only the heartbeats whose sequence
//! makes it its turn (with three voters each follower answers every fourth heartbeat at
//! the default sync-limit 6, every other one at 3; see `answers` and
//! `leading::Node::answers_optional`). Nothing in
//! the safety argument depends on who hears a frame; the lease counts echoes wherever
//! they travel. Two consequences are handled where they arise: followers do not hear
//! each other while they follow, so the "every live voter agrees" rule counts silence
//! from the start of the election at the earliest (see `looking`); and two boards with
//! one id that follow the same leader notice each other only once either sends to
//! everyone (they both support that one leader meanwhile). A leader may read its frames
//! only when its next heartbeat is due ([`Node::frames_can_wait`]): an echo extends the
//! lease from the stamp it carries, not from when it is read.
//!
//! # Restarts
//! - Each process start has its own nonce and may restart its clock at a new origin. The
//!   default nonce mixes the id and the incarnation, so it is per-process only if
//!   incarnations are; the daemon passes OS randomness.
//! - Promises are kept in memory, so a restarted node that ever accepted an epoch makes no
//!   new promise for `sync_timeout` after start (it may have made one before it crashed).
//!   A node started without its epochs cannot tell a restart from a first start: its
//!   driver must not call [`Node::start`] within `sync_timeout` of the previous process's
//!   last frame (for example, wait `sync_timeout` after the process starts).
//! - Releases trust the incarnation: a LOOKING or RESIGN frame of incarnation `i` is taken
//!   as coming from the process promised to as `i`. If a node's processes repeat an
//!   incarnation, a late or replayed frame of the earlier one (with a sequence number
//!   above the later one's) can end a promise made to the later one; the driver must give
//!   every process start a new incarnation.
//! - A voter whose incarnation went *backwards* (restarted without its data dir, or with a
//!   clock behind) is readmitted: each peer follows a voter's newest (incarnation,
//!   sequence) position and accepts a frame if it is newer, or next in the stream it
//!   follows; a frame of a lower incarnation (other than the followed one) is accepted
//!   once the voter has been silent for [`Config::readmit_after`] (no frame accepted from
//!   it), and that incarnation's frames are followed from then on ([`Stats::readmitted`]).
//!   Frames of the retired incarnation stay stale unless newer than its newest sequence.
//!   A restarted voter is readmitted by the first frame it sends at least
//!   `readmit_after` after its previous process's last frame reached the peer (the new
//!   process's frames refused meanwhile do not count as heard).
//!
//! # Replays
//! An attacker without the key who recorded authentic frames and replays them:
//! - achieves nothing while the voter is heard at least once per `readmit_after`: every
//!   recorded frame is at or below a position already seen (a recorded frame never
//!   received, newer than all seen, is accepted like a late one);
//! - while the voter is silent for `readmit_after` (down, cut off, or all its frames lost),
//!   can get recorded frames of one of its lower incarnations accepted, in sequence order,
//!   and again after each further silence; and a node that restarted (forgetting the
//!   positions) accepts one recorded frame per voter once. That is old votes and
//!   heartbeats: a stale vote in an election, or a follower following (and promising
//!   support for `sync_timeout` per replayed LEADING frame to) a leader that is gone,
//!   which delays elections by its promise; replaying unseen frames of the newest
//!   incarnation keeps a readmitted lower one out for another `readmit_after` each;
//! - cannot make two leaders: (a) when a voter is readmitted, every promise the receiver
//!   made to any of its processes has run out: a promise lasts `sync_timeout` from a frame
//!   the receiver accepted, and `readmit_after > sync_timeout` of silence is measured on
//!   the same clock from the last one; so a readmitted LOOKING or RESIGN frame can end only
//!   promises made later to the same incarnation, which is a live process's own only if
//!   incarnations repeat (see Restarts); (b) no recorded frame extends a lease (above);
//!   (c) no recorded frame acknowledges a leader's current epoch unless the follower really
//!   did: that epoch was first proposed in the leader's current term (epochs are not
//!   reused, see above), so no frame recorded earlier carries it; (d) votes
//!   carry no safety: a leader decided on stale votes must still establish a fresh epoch
//!   and hold a lease.
//!
//! # Capacity
//! Per-voter state is a fixed array of [`MAX_VOTERS`] (64) entries; observers need no
//! state (their frames are only answered). The output queue holds [`OUTPUT_CAPACITY`]
//! entries; one input produces at most a handful.
//!
//! # Layout
//! - `node`: the [`Node`] itself, its commands (start, step down, shut down), inputs,
//!   outputs and queries; it admits frames and hands them to the handler of its current
//!   role.
//! - `looking`: FastLeaderElection proper (votes, rounds, the decision).
//! - `following`: a follower's (or observer's) side of the leadership phase.
//! - `leading`: epoch proposal, acknowledgements, the lease and stepping down.
//! - `handover`: a leader that stepped down watches its successor and supports it in its
//!   RESIGN.
//! - `promise`: a follower's promise not to support another leader.
//! - `duplicate`: our recent frames, and the quarantine when another board has our id.
//! - `health`: eligibility ([`Node::set_eligible`]): an unhealthy node votes but is never
//!   elected, and a leader that turns unhealthy stands down and comes back as a voter.
//! - `peers`: what we know of each voter, frame admission (staleness, readmission) and
//!   when each was last heard ([`Node::heard`]);
//!   `budget`: the token bucket that limits both
//!   our answers and each voter's frames.
//! - `outgoing`: reasons to send, the frame we send and the leader's stamp encoding;
//!   `output`: what the driver receives.
//! - `config`, `time`, `timers`, `vote`, `stats`: parameters, the clock type, the named
//!   deadlines, the vote order and the counters.

mod answers;
mod budget;
mod config;
mod duplicate;
mod following;
mod handover;
mod health;
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
mod wake;

#[cfg(test)]
mod testing;

pub use self::config::{Config, ConfigError, FRAME_BUDGET_BURST, MAX_VOTERS};
pub use self::duplicate::DuplicateId;
pub use self::node::Node;
pub use self::output::{
    DatagramError, Epochs, Event, Frame, Output, Restart, RestartReason, StateChange,
    OUTPUT_CAPACITY,
};
pub use self::peers::Heard;
pub use self::stats::Stats;
pub use self::time::Instant;
pub use self::vote::beats;
pub use self::wake::{Check, Turn, WakeRule, MAX_CHECKS, MAX_TURN_CYCLE};
pub use crate::wire::{ServerState, Vote};
