//! The debug-level trace of elections and epoch rounds, written where the driver acts on
//! the core's outputs: every epoch write (with how long the durable write took), every
//! frame whose content changes (a new vote, the decision, an epoch proposal, an
//! acknowledgement, the ESTABLISHED flag; not the heartbeats that repeat it), every state
//! change, and every new election round with the reason the core gives for it.
//!
//! Each line starts with `round-trace node=ID t_us=T`, where `T` is the core's clock
//! (CLOCK_BOOTTIME in µs), which is the same for every process on a host, so the lines of
//! several nodes on one machine merge into one timeline of a failover:
//!
//! ```text
//! round-trace node=2 t_us=5230101200 restart reason="sync timeout: no frame from the leader" from=FOLLOWING epoch=4 established=true round=9
//! round-trace node=2 t_us=5230101260 send LOOKING leader=2 round=9 epoch=0 accepted=4 established=false echo=false
//! round-trace node=2 t_us=5230101900 persist accepted_epoch=5 accepted_leader=2 current_epoch=4 took_us=310
//! round-trace node=2 t_us=5230102230 send LEADING leader=2 round=9 epoch=5 accepted=5 established=false echo=true
//! ```
//!
//! Nothing is formatted unless debug logging is on for this module, so the trace costs
//! nothing on the frame path otherwise.

use std::time::Duration;

use votecast_core::election::{Epochs, Instant, Restart, StateChange};
use votecast_core::wire::{Flags, Repr, ServerState};

/// What a frame says, apart from its sequence number and time stamp: the trace logs a
/// frame only when this differs from the previous frame's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameKey {
    state: ServerState,
    leader: u64,
    round: u64,
    epoch: u64,
    accepted: u64,
    established: bool,
    echo: bool,
    resign: bool,
}

impl FrameKey {
    fn of(repr: &Repr) -> FrameKey {
        FrameKey {
            state: repr.state,
            leader: repr.vote.leader,
            round: repr.round,
            epoch: repr.epoch,
            accepted: repr.accepted_epoch,
            established: repr.flags.contains(Flags::ESTABLISHED),
            echo: repr.echo != 0,
            resign: repr.flags.contains(Flags::RESIGN),
        }
    }
}

/// The trace of one node.
#[derive(Debug)]
pub(super) struct RoundTrace {
    id: u64,
    last_sent: Option<FrameKey>,
}

impl RoundTrace {
    pub(super) fn new(id: u64) -> RoundTrace {
        RoundTrace {
            id,
            last_sent: None,
        }
    }

    /// Whether the trace is on (debug logging for this module).
    pub(super) fn enabled() -> bool {
        log::log_enabled!(log::Level::Debug)
    }

    /// `epochs` were stored durably, starting at `at` and taking `took`.
    pub(super) fn persisted(&self, at: Instant, took: Duration, e: &Epochs) {
        log::debug!(
            "round-trace node={} t_us={} persist accepted_epoch={} accepted_leader={} \
             current_epoch={} took_us={}",
            self.id,
            at.as_micros(),
            e.accepted_epoch,
            e.accepted_leader,
            e.current_epoch,
            took.as_micros()
        );
    }

    /// `repr` was handed to the socket at `at`; logged if it says something new.
    pub(super) fn sent(&mut self, at: Instant, repr: &Repr) {
        let key = FrameKey::of(repr);
        if self.last_sent == Some(key) || !Self::enabled() {
            return;
        }
        self.last_sent = Some(key);
        log::debug!(
            "round-trace node={} t_us={} send {} leader={} round={} epoch={} accepted={} \
             established={} echo={}{}",
            self.id,
            at.as_micros(),
            key.state,
            key.leader,
            key.round,
            key.epoch,
            key.accepted,
            key.established,
            key.echo,
            if key.resign { " resign" } else { "" }
        );
    }

    pub(super) fn state_changed(&self, at: Instant, change: &StateChange) {
        log::debug!(
            "round-trace node={} t_us={} state {} (was {}) leader={:?} epoch={:?} round={}",
            self.id,
            at.as_micros(),
            change.state,
            change.previous,
            change.leader,
            change.epoch,
            change.round
        );
    }

    /// A new election round: why, and what was given up.
    pub(super) fn restarted(&self, at: Instant, r: &Restart) {
        log::debug!(
            "round-trace node={} t_us={} restart reason={:?} from={} epoch={} established={} \
             round={}",
            self.id,
            at.as_micros(),
            r.reason.as_str(),
            r.from,
            r.epoch,
            r.established,
            r.round
        );
    }
}
