//! The fuzzer's input: a [`Scenario`] (cluster, honesty, steps), decoded by `arbitrary`
//! from the fuzzer's bytes. Numbers are kept small or relative to the receiver's state so
//! that the fuzzer reaches the comparisons that matter.

use arbitrary::Arbitrary;

#[derive(Arbitrary, Debug, Clone)]
pub struct Scenario {
    pub cluster: ClusterSpec,
    /// No frames forged in a voter's name: cluster-wide guarantees are checked too.
    pub honest: bool,
    pub steps: Vec<Step>,
}

#[derive(Arbitrary, Debug, Clone)]
pub struct ClusterSpec {
    /// Voters are 1..=n, n = 1 + voters % 7.
    pub voters: u8,
    /// The nodes under test (1 to 3; none means voter 1).
    pub nodes: Vec<NodeSpec>,
    pub timing: Timing,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct NodeSpec {
    /// Voter index (modulo the voter count), or an observer.
    pub role: Role,
    /// Origin of its clock: its local time is the harness time plus this (µs).
    pub offset: u32,
    /// Constructed but not started until a `Start` or `Restart` step.
    pub idle: bool,
    /// Epochs restored at construction, as from a data dir.
    pub epochs: Option<(u8, u8)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Role {
    Voter(u8),
    Observer,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Timing {
    /// tick = 1 + x % 100 ms.
    pub tick_ms: u8,
    /// sync_limit = 2 + x % 8.
    pub sync_limit: u8,
    /// init_limit = 2 + x % 12.
    pub init_limit: u8,
    /// finalize_wait = 1 + x % 200 ms.
    pub finalize_ms: u8,
    /// min notification interval = 1 + x % 200 ms.
    pub min_notification_ms: u8,
    /// max notification interval = min + x % 5000 ms.
    pub max_notification_extra_ms: u16,
    /// drift bound = x * 3 ppm (below 10 %).
    pub drift: u16,
}

/// A number for a frame field, often relative to the receiver's own state so that the
/// fuzzer reaches the comparisons that matter.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Num {
    Zero,
    Small(u8),
    Rel(Base, i8),
    Max,
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Base {
    Round,
    AcceptedEpoch,
    CurrentEpoch,
    Zxid,
    ReportedEpoch,
}

/// A server id for a frame's sender or vote.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Who {
    /// Voter index modulo the voter count.
    Voter(u8),
    /// The receiving node itself.
    Receiver,
    /// A node under test (index modulo their count).
    Node(u8),
    /// A non-voter that is not under test.
    Stranger(u8),
    NoLeader,
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Seq {
    /// Larger than anything forged before.
    Next,
    Raw(u64),
}

/// The echo field: a leader clock stamp (µs + 1) or raw.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Echo {
    Zero,
    /// Receiver's clock minus this many times 64 µs.
    Past(u16),
    /// Receiver's clock plus this many µs.
    Future(u16),
    Raw(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct FrameSpec {
    /// Modulo 4.
    pub state: u8,
    /// Raw flags byte (reserved bits included).
    pub flags: u8,
    pub key_id: u8,
    /// Sent from another cluster id (dropped at parse time).
    pub other_cluster: bool,
    pub sender: Who,
    pub incarnation: Num,
    pub sequence: Seq,
    pub leader: Who,
    pub zxid: Num,
    pub peer_epoch: Num,
    pub round: Num,
    pub accepted_epoch: Num,
    pub epoch: Num,
    pub echo: Echo,
    pub tag: u8,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    /// Advance the clock by x · 100 µs, then handle timeouts on every running node.
    Wait(u16),
    /// Advance the clock by x µs, then handle timeouts on every running node.
    WaitLong(u32),
    /// Advance the clock by x · 100 µs without handling timeouts (a driver that reads
    /// frames before it looks at its timers).
    Skip(u16),
    /// Handle timeouts on one node.
    Timeout(u8),
    /// Perfect network for a while: deliver every queued frame to every other node, then
    /// jump to the next deadline; `rounds` times (at most 32).
    Run {
        rounds: u8,
    },
    /// Deliver the queued frames of one node to every other node.
    Broadcast(u8),
    /// Lose the queued frames of one node.
    Lose(u8),
    /// Deliver an old frame of `from` (the `back`-th newest) to `to`: duplication,
    /// reordering, replay (also across restarts of either side).
    Replay {
        from: u8,
        back: u8,
        to: u8,
    },
    /// Deliver a copy of a real frame with one byte changed.
    Corrupt {
        from: u8,
        back: u8,
        to: u8,
        at: u8,
        xor: u8,
    },
    /// A frame with arbitrary field values, correctly framed.
    Forge {
        to: u8,
        frame: FrameSpec,
    },
    /// Arbitrary bytes.
    Raw {
        to: u8,
        bytes: Vec<u8>,
    },
    SetZxid {
        node: u8,
        zxid: Num,
    },
    Start(u8),
    Shutdown(u8),
    /// Lose the process: memory is gone, disk (epochs, incarnation) stays.
    Crash(u8),
    /// Crash if running, then start a new incarnation with a new clock origin.
    Restart {
        node: u8,
        offset: u32,
    },
    // New variants go last: the derive maps a `u32` to a variant by the variant count,
    // so every corpus file changes meaning when the count changes (re-encode the corpus
    // through `encode`, as `fuzz_corpus` explains).
    /// Wipe the node's data dir (a re-flashed board): it loses its process if up, stays
    /// down for twice sync-limit ticks as README "Limits" requires (time passes; the other
    /// nodes handle their timeouts), and its next process starts with no epochs and a
    /// random incarnation. A node without a data dir gets an empty one.
    Wipe(u8),
    /// Crash if running, then start without a data dir from now on (until a `Wipe`): no
    /// epochs, a random incarnation, a new clock origin, and the driver's start hold (a
    /// voter drops every frame for sync-limit ticks before the core starts).
    MemoryRestart {
        node: u8,
        offset: u32,
    },
    /// The node's event loop stalls for x · 100 µs: frames wait in its socket, timers
    /// wait; when time has passed the end, it handles them all with `now` read when the
    /// stall began (`stale`, a driver that read the clock before a blocking call) or a
    /// fresh one, and publishes with a fresh clock reading.
    Stall {
        node: u8,
        duration: u16,
        stale: bool,
    },
}
