//! Counters for operators and tests. The node only ever increments them.

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
    /// Frames of a voter whose incarnation went backwards, accepted after the voter's
    /// newer incarnation had been silent for `Config::readmit_after` (one per readmission;
    /// the following frames of that incarnation are ordinary).
    pub readmitted: u64,
    /// Frames of a voter over its receive budget, dropped.
    pub throttled: u64,
    /// Frames with our id that we did not send (another board with our id).
    pub duplicate_id_frames: u64,
    pub elections_started: u64,
    /// Times a leader that had asked for unicast answers asked for answers to the group
    /// again, because its lease ran short: answers went missing (lost, or unicast to it
    /// blocked by a firewall). See `outgoing`.
    pub group_answer_requests: u64,
    /// Heartbeats of our leader that we left unanswered because it said our support
    /// outlasts the next ones (ANSWER_OPTIONAL). See `leading::Node::answers_optional`.
    pub answers_skipped: u64,
    /// Outputs dropped because the queue was full (a driver that does not poll); never
    /// expected.
    pub outputs_dropped: u64,
}
