//! What a node hands its driver: events for the application, epochs to persist and frames
//! to multicast, plus the reasons a datagram was dropped.

use core::time::Duration;

use super::duplicate::DuplicateId;
use crate::auth;
use crate::wire::{self, Repr, ServerState, FRAME_LEN};

/// Capacity of the queue of events and persistence requests.
pub const OUTPUT_CAPACITY: usize = 16;

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

/// Why a node gave up its role (or its round) for a new election round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RestartReason {
    /// The leadership phase (epoch proposal, acknowledgements, lease) did not complete
    /// within `init_limit` ticks of the decision.
    InitTimeout,
    /// A follower heard no LEADING frame from its leader for `sync_limit` ticks.
    SyncTimeout,
    /// The leader's lease ran out: no quorum supports it any more.
    LeaseLost,
    /// Our leader's frames say it no longer leads (LOOKING, another leader, a restart).
    LeaderLeft,
    /// Our leader, or the candidate we voted for, resigned (graceful shutdown).
    Resigned,
    /// Our leader, or the candidate we voted for, stepped down for a graceful shutdown
    /// (HANDOVER): it will resign once its application was told.
    HandingOver,
    /// Our own id's quarantine ended: a fresh round so that our vote is heard again.
    QuarantineOver,
    /// A leader saw another board send frames with its id.
    DuplicateId,
}

impl RestartReason {
    /// A short lower-case description, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartReason::InitTimeout => "init timeout: the epoch round did not complete",
            RestartReason::SyncTimeout => "sync timeout: no frame from the leader",
            RestartReason::LeaseLost => "lease ran out: no quorum supports the leader",
            RestartReason::LeaderLeft => "the leader stopped leading",
            RestartReason::Resigned => "the leader or our candidate resigned",
            RestartReason::HandingOver => "the leader or our candidate is handing over",
            RestartReason::QuarantineOver => "duplicate-id quarantine over",
            RestartReason::DuplicateId => "another board uses our id",
        }
    }
}

/// A new election round began, and what it replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    pub reason: RestartReason,
    /// The role given up: LOOKING, FOLLOWING or LEADING (the role, not the published
    /// state: a leader whose epoch round had not completed was still published LOOKING).
    pub from: ServerState,
    /// The epoch the leader proposed, or the follower acknowledged (0 = none).
    pub epoch: u64,
    /// Whether that epoch was established.
    pub established: bool,
    /// The new round.
    pub round: u64,
}

/// Something the application should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    StateChanged(StateChange),
    /// A new election round began after the first one (the reason, and what was given up).
    Restarted(Restart),
    /// A frame with our id that we did not send: two boards share an id. Reported when the
    /// quarantine starts (not for every such frame).
    DuplicateId(DuplicateId),
}

/// A frame to send: its fields, its bytes as they go on the wire (signed when
/// authentication is on, CRC last), and who needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub repr: Repr,
    pub bytes: [u8; FRAME_LEN],
    /// `Some(id)`: only voter `id` needs this frame: a follower's answer to the heartbeat
    /// of a leader whose frames carry UNICAST_ANSWERS. The driver sends it by unicast to
    /// the address that leader's accepted frames come from, or, if it knows none, like
    /// any other frame. `None`: to every node (the group, or every peer).
    pub to: Option<u64>,
}

/// What the node asks its driver to do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Event(Event),
    /// Store these epochs durably before acting on any later output.
    Persist(Epochs),
    /// Send this frame (to the group, or to [`Frame::to`] only).
    Transmit(Frame),
}

/// Why [`Node::handle_datagram`](super::Node::handle_datagram) dropped a datagram before
/// looking at its contents.
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
