//! The votecast frame: byte layout, validation, parse and emit.
//!
//! This layer owns the on-the-wire representation of one election message and nothing
//! else: no state, no clocks, no sockets, no allocation. A frame carries a ZooKeeper
//! FastLeaderElection vote (`leader`, `zxid`, `peer_epoch`, `round`) plus the fields the
//! leadership phase needs (accepted epoch, proposed/acknowledged epoch, echo timestamp),
//! and is protected by a CRC-32 against corruption. Whether the values *make sense* is
//! the election core's business; this module only guarantees that a [`Repr`] came from a
//! well-formed frame of our protocol version and our cluster.
//!
//! Following smoltcp's `wire` modules, there are two levels:
//! - [`Packet`] wraps a byte buffer and offers typed getters and setters for every field
//!   (raw values, no validation beyond the length check of [`Packet::new_checked`]);
//! - [`Repr`] is the validated, high-level form, produced by [`Repr::parse`] and written
//!   back by [`Repr::emit`]. [`parse_datagram`] and [`emit_datagram`] wrap both for
//!   drivers.
//!
//! # Layout (protocol version 1)
//!
//! Every frame is exactly [`FRAME_LEN`] = 108 bytes. All integers are big-endian.
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 4 | magic = `b"VCST"` (0x56 0x43 0x53 0x54) |
//! | 4 | 1 | version = 1 |
//! | 5 | 1 | sender state: 0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING |
//! | 6 | 1 | flags: bit 0 RESIGN (sender is shutting down and gives up its role), bit 1 ESTABLISHED (LEADING: a quorum acknowledged `epoch`; FOLLOWING: the sender has seen its leader establish `epoch`), bit 2 INELIGIBLE (part of the vote, [`Vote::ineligible`]: the vote's candidate failed its health checks when it cast the vote, so the vote loses to every eligible one), bit 3 UNICAST_ANSWERS (LEADING: the sender receives unicast at this frame's source address and port, so its followers answer its heartbeats there and not to the group; added in wire version 1 without a version change, since receivers that predate it mask it off and keep answering to the group), bit 4 ANSWER_OPTIONAL (LEADING: the sender's lease outlasts a tick and a half and every voter's support of it outlasts `Config::answer_slack`, so a follower that acknowledged the established epoch answers this heartbeat only if its `sequence` makes it that follower's turn, unless it knows of a LOOKING node; see `election::answers`; added in wire version 1 without a version change, since receivers that predate it mask it off and answer every heartbeat), bit 5 HANDOVER (LEADING: the sender stepped down for a graceful shutdown and sends RESIGN once its application was told; its followers elect a successor meanwhile, and support it only after the RESIGN or their own timeout; added in wire version 1 without a version change, since receivers that predate it mask it off and take the frame for a heartbeat, which renews their promise to the sender until its RESIGN). Other bits reserved: emitted as 0, ignored (masked off) on parse. |
//! | 7 | 1 | key id (0 = frame not authenticated) |
//! | 8 | 4 | cluster id u32 |
//! | 12 | 8 | sender server id u64 |
//! | 20 | 4 | sender incarnation u32 (bumped and persisted at every start) |
//! | 24 | 8 | sequence u64 (per frame, per incarnation, increasing) |
//! | 32 | 8 | vote: proposed leader u64 (`u64::MAX` = no vote, used by an observer that has no candidate yet) |
//! | 40 | 8 | vote: zxid u64 |
//! | 48 | 8 | vote: peer epoch u64 |
//! | 56 | 8 | round u64 (electionEpoch: the sender's logical clock) |
//! | 64 | 8 | accepted epoch u64 (highest epoch the sender has promised, durable) |
//! | 72 | 8 | epoch u64 (LEADING: the epoch the leader proposes or has established; FOLLOWING: the epoch the sender acknowledged to the vote's leader; 0 = none) |
//! | 80 | 8 | echo u64 (LEADING: the sender's monotonic clock in microseconds when sent, plus one so that 0 never occurs; FOLLOWING: the latest leader `echo` the sender is acknowledging; 0 = none) |
//! | 88 | 16 | authentication tag: HMAC-SHA256(key, bytes 0..88) truncated to 16 bytes (see [`crate::auth`]); all zero while authentication is off |
//! | 104 | 4 | CRC-32 (IEEE, as computed by `crc32fast`) over bytes 0..104 |
//!
//! # Validation order
//!
//! [`Repr::parse`] checks, in exactly this order, and reports the first failure:
//! 1. length: must be exactly [`FRAME_LEN`] ([`Error::WrongLength`]; a longer datagram is
//!    wrong too, it is not silently truncated);
//! 2. magic ([`Error::BadMagic`]);
//! 3. version ([`Error::UnknownVersion`]);
//! 4. CRC ([`Error::BadChecksum`]);
//! 5. state code ([`Error::UnknownState`]);
//! 6. cluster id ([`Error::OtherCluster`]).
//!
//! Cheap structural checks come first so that foreign traffic on the multicast group is
//! classified as such rather than as corruption; the CRC is checked before any field is
//! interpreted, so a corrupted frame is never reported as, say, an unknown state.
//!
//! # Why a fixed size
//!
//! One frame size means one receive buffer of known size, no allocation anywhere on the
//! receive path, and parsing whose cost and reachable offsets are bounded by a constant:
//! every field sits at a fixed offset, so after the single length check no access can
//! go out of bounds, whatever a peer (or a fuzzer) sends. The frame is far below any
//! LAN MTU, so it never fragments.

use core::fmt;

/// Length in bytes of every votecast frame.
pub const FRAME_LEN: usize = 108;
/// Bit of the flags byte that carries [`Vote::ineligible`]. It belongs to the vote, not to
/// [`Flags`]: a vote is copied from frame to frame with it. Receivers before this bit
/// existed mask it off like any reserved bit and see an eligible vote.
pub const VOTE_INELIGIBLE_BIT: u8 = 0b100;
/// The four bytes every frame starts with.
pub const MAGIC: [u8; 4] = *b"VCST";
/// The protocol version this module reads and writes.
pub const VERSION: u8 = 1;
/// `Vote::leader` value meaning "no vote" (an observer without a candidate yet).
pub const NO_LEADER: u64 = u64::MAX;
/// The bytes the authentication tag covers: every field before the tag (see [`crate::auth`]).
pub const AUTHENTICATED: core::ops::Range<usize> = 0..field::AUTH_TAG.start;

/// Byte ranges of the fields, as in smoltcp.
mod field {
    pub type Field = core::ops::Range<usize>;

    pub const MAGIC: Field = 0..4;
    pub const VERSION: usize = 4;
    pub const STATE: usize = 5;
    pub const FLAGS: usize = 6;
    pub const KEY_ID: usize = 7;
    pub const CLUSTER: Field = 8..12;
    pub const SENDER: Field = 12..20;
    pub const INCARNATION: Field = 20..24;
    pub const SEQUENCE: Field = 24..32;
    pub const VOTE_LEADER: Field = 32..40;
    pub const VOTE_ZXID: Field = 40..48;
    pub const VOTE_PEER_EPOCH: Field = 48..56;
    pub const ROUND: Field = 56..64;
    pub const ACCEPTED_EPOCH: Field = 64..72;
    pub const EPOCH: Field = 72..80;
    pub const ECHO: Field = 80..88;
    pub const AUTH_TAG: Field = 88..104;
    pub const CHECKSUM: Field = 104..108;

    /// The bytes the CRC covers: everything before the CRC itself.
    pub const CHECKED: Field = 0..CHECKSUM.start;
}

/// The offsets of the fields a receive filter looks at (see
/// [`WakeRule`](crate::election::WakeRule)), from the start of the frame.
pub mod layout {
    pub use super::field::{EPOCH, FLAGS, INCARNATION, SENDER, SEQUENCE, STATE, VOTE_LEADER};
}

// The layout must tile the frame exactly.
const _: () = assert!(field::CHECKSUM.end == FRAME_LEN);

/// Why a received frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is not exactly [`FRAME_LEN`] bytes long.
    WrongLength,
    /// The frame does not start with [`MAGIC`].
    BadMagic,
    /// The version byte is not [`VERSION`].
    UnknownVersion,
    /// The CRC-32 does not match the frame contents.
    BadChecksum,
    /// The sender state code is not one of [`ServerState`].
    UnknownState,
    /// The frame belongs to a different cluster id.
    OtherCluster,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::WrongLength => "wrong frame length",
            Error::BadMagic => "bad magic",
            Error::UnknownVersion => "unknown protocol version",
            Error::BadChecksum => "bad checksum",
            Error::UnknownState => "unknown server state",
            Error::OtherCluster => "frame from another cluster",
        })
    }
}

impl core::error::Error for Error {}

/// The sender's role, as in ZooKeeper's `QuorumPeer.ServerState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    /// Decode a wire state code; `None` for unknown codes.
    pub const fn from_code(code: u8) -> Option<ServerState> {
        match code {
            0 => Some(ServerState::Looking),
            1 => Some(ServerState::Following),
            2 => Some(ServerState::Leading),
            3 => Some(ServerState::Observing),
            _ => None,
        }
    }

    /// The wire state code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Upper-case name, as ZooKeeper prints it (`"LOOKING"`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ServerState::Looking => "LOOKING",
            ServerState::Following => "FOLLOWING",
            ServerState::Leading => "LEADING",
            ServerState::Observing => "OBSERVING",
        }
    }
}

impl fmt::Display for ServerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that width/alignment specifiers work in log lines.
        f.pad(self.as_str())
    }
}

/// The flags byte. Only the defined bits can be represented, so reserved bits are
/// dropped on parse and always emitted as zero. Bit 2 ([`VOTE_INELIGIBLE_BIT`]) is part of
/// the vote and lives in [`Vote::ineligible`], never here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// The sender is shutting down and gives up its role.
    pub const RESIGN: Flags = Flags(0b01);
    /// LEADING: a quorum acknowledged `epoch`. FOLLOWING: the sender has seen its leader
    /// establish `epoch`.
    pub const ESTABLISHED: Flags = Flags(0b10);
    /// LEADING: the sender takes its followers' heartbeat answers by unicast at the
    /// frame's source address; without it they answer to the group.
    pub const UNICAST_ANSWERS: Flags = Flags(0b1000);
    /// LEADING: a follower that acknowledged the established epoch answers this
    /// heartbeat only on its turn by the frame's `sequence` (unless it knows of a LOOKING
    /// node); without it, every heartbeat is answered.
    pub const ANSWER_OPTIONAL: Flags = Flags(0b1_0000);
    /// LEADING: the sender stepped down for a graceful shutdown and will send RESIGN once
    /// its application was told. The promises made to it run until then, but it will never
    /// lead again: its followers elect a successor at once and support it after the
    /// RESIGN (or their own timeout). Receivers that predate it mask it off and take the
    /// frame for a heartbeat.
    pub const HANDOVER: Flags = Flags(0b10_0000);

    /// All defined bits.
    const KNOWN: u8 = Self::RESIGN.0
        | Self::ESTABLISHED.0
        | Self::UNICAST_ANSWERS.0
        | Self::ANSWER_OPTIONAL.0
        | Self::HANDOVER.0;

    /// No flag set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// Whether every flag in `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Set the flags in `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// `self` with the flags in `other` also set.
    #[must_use]
    pub const fn with(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The raw byte (reserved bits are always zero).
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Build from a raw byte, discarding reserved bits.
    pub const fn from_bits_truncate(bits: u8) -> Flags {
        Flags(bits & Self::KNOWN)
    }
}

/// A FastLeaderElection vote: who the sender proposes as leader, that candidate's last
/// zxid and epoch, and whether the candidate was ineligible (unhealthy) when it cast it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    /// Proposed leader's server id, or [`NO_LEADER`].
    pub leader: u64,
    pub zxid: u64,
    pub peer_epoch: u64,
    /// The candidate's health checks failed when it cast this vote (flags bit 2,
    /// [`VOTE_INELIGIBLE_BIT`]): such a vote loses to every eligible vote and never elects.
    pub ineligible: bool,
}

/// A read/write wrapper around a frame buffer.
///
/// Getters and setters index fixed offsets: on a buffer shorter than [`FRAME_LEN`] they
/// panic, so wrap untrusted input with [`Packet::new_checked`] (or use [`Repr::parse`],
/// which checks the length itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

#[inline]
fn read_array<const N: usize>(data: &[u8], range: field::Field) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&data[range]);
    out
}

#[inline]
fn read_u32(data: &[u8], range: field::Field) -> u32 {
    u32::from_be_bytes(read_array(data, range))
}

#[inline]
fn read_u64(data: &[u8], range: field::Field) -> u64 {
    u64::from_be_bytes(read_array(data, range))
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer, checking that it is exactly [`FRAME_LEN`] bytes long. No other
    /// field is validated; that is [`Repr::parse`]'s job.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err(Error::WrongLength)` unless the buffer is exactly [`FRAME_LEN`] bytes long.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() == FRAME_LEN {
            Ok(())
        } else {
            Err(Error::WrongLength)
        }
    }

    /// Unwrap the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn magic(&self) -> [u8; 4] {
        read_array(self.buffer.as_ref(), field::MAGIC)
    }

    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION]
    }

    /// Raw sender state code (see [`ServerState::from_code`]).
    pub fn state_code(&self) -> u8 {
        self.buffer.as_ref()[field::STATE]
    }

    /// Raw flags byte, reserved bits included (see [`Flags::from_bits_truncate`]).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn key_id(&self) -> u8 {
        self.buffer.as_ref()[field::KEY_ID]
    }

    pub fn cluster(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::CLUSTER)
    }

    pub fn sender(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::SENDER)
    }

    pub fn incarnation(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::INCARNATION)
    }

    pub fn sequence(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::SEQUENCE)
    }

    pub fn vote_leader(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::VOTE_LEADER)
    }

    pub fn vote_zxid(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::VOTE_ZXID)
    }

    pub fn vote_peer_epoch(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::VOTE_PEER_EPOCH)
    }

    pub fn round(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::ROUND)
    }

    pub fn accepted_epoch(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::ACCEPTED_EPOCH)
    }

    pub fn epoch(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::EPOCH)
    }

    pub fn echo(&self) -> u64 {
        read_u64(self.buffer.as_ref(), field::ECHO)
    }

    pub fn auth_tag(&self) -> [u8; 16] {
        read_array(self.buffer.as_ref(), field::AUTH_TAG)
    }

    /// The CRC stored in the frame.
    pub fn checksum(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// Whether the stored CRC matches the CRC-32 of bytes 0..104.
    pub fn verify_checksum(&self) -> bool {
        crc32fast::hash(&self.buffer.as_ref()[field::CHECKED]) == self.checksum()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    pub fn set_magic(&mut self, value: [u8; 4]) {
        self.data_mut()[field::MAGIC].copy_from_slice(&value);
    }

    pub fn set_version(&mut self, value: u8) {
        self.data_mut()[field::VERSION] = value;
    }

    pub fn set_state_code(&mut self, value: u8) {
        self.data_mut()[field::STATE] = value;
    }

    /// Write the raw flags byte (no masking: tests use this to set reserved bits).
    pub fn set_flags(&mut self, value: u8) {
        self.data_mut()[field::FLAGS] = value;
    }

    pub fn set_key_id(&mut self, value: u8) {
        self.data_mut()[field::KEY_ID] = value;
    }

    pub fn set_cluster(&mut self, value: u32) {
        self.data_mut()[field::CLUSTER].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_sender(&mut self, value: u64) {
        self.data_mut()[field::SENDER].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_incarnation(&mut self, value: u32) {
        self.data_mut()[field::INCARNATION].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_sequence(&mut self, value: u64) {
        self.data_mut()[field::SEQUENCE].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_vote_leader(&mut self, value: u64) {
        self.data_mut()[field::VOTE_LEADER].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_vote_zxid(&mut self, value: u64) {
        self.data_mut()[field::VOTE_ZXID].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_vote_peer_epoch(&mut self, value: u64) {
        self.data_mut()[field::VOTE_PEER_EPOCH].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_round(&mut self, value: u64) {
        self.data_mut()[field::ROUND].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_accepted_epoch(&mut self, value: u64) {
        self.data_mut()[field::ACCEPTED_EPOCH].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_epoch(&mut self, value: u64) {
        self.data_mut()[field::EPOCH].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_echo(&mut self, value: u64) {
        self.data_mut()[field::ECHO].copy_from_slice(&value.to_be_bytes());
    }

    pub fn set_auth_tag(&mut self, value: [u8; 16]) {
        self.data_mut()[field::AUTH_TAG].copy_from_slice(&value);
    }

    /// Write a raw CRC value (see [`Packet::fill_checksum`] for the usual case).
    pub fn set_checksum(&mut self, value: u32) {
        self.data_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Compute the CRC over bytes 0..104 and store it. Call after every other setter.
    pub fn fill_checksum(&mut self) {
        let crc = crc32fast::hash(&self.buffer.as_ref()[field::CHECKED]);
        self.set_checksum(crc);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A validated frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    pub state: ServerState,
    pub flags: Flags,
    /// Authentication key id; 0 = not authenticated.
    pub key_id: u8,
    pub cluster: u32,
    pub sender: u64,
    pub incarnation: u32,
    pub sequence: u64,
    pub vote: Vote,
    /// The sender's logical clock (ZooKeeper's electionEpoch).
    pub round: u64,
    pub accepted_epoch: u64,
    pub epoch: u64,
    pub echo: u64,
    pub auth_tag: [u8; 16],
}

impl Repr {
    /// Parse and validate an untrusted frame. `cluster` is the cluster id we belong to.
    ///
    /// Checks length, magic, version, checksum, state code and cluster, in that order,
    /// and returns the first failure. Never panics, even on an unchecked `Packet` of any
    /// length. Reserved flag bits are ignored.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, cluster: u32) -> Result<Repr, Error> {
        packet.check_len()?;
        if packet.magic() != MAGIC {
            return Err(Error::BadMagic);
        }
        if packet.version() != VERSION {
            return Err(Error::UnknownVersion);
        }
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let state = ServerState::from_code(packet.state_code()).ok_or(Error::UnknownState)?;
        if packet.cluster() != cluster {
            return Err(Error::OtherCluster);
        }
        Ok(Repr {
            state,
            flags: Flags::from_bits_truncate(packet.flags()),
            key_id: packet.key_id(),
            cluster: packet.cluster(),
            sender: packet.sender(),
            incarnation: packet.incarnation(),
            sequence: packet.sequence(),
            vote: Vote {
                leader: packet.vote_leader(),
                zxid: packet.vote_zxid(),
                peer_epoch: packet.vote_peer_epoch(),
                ineligible: packet.flags() & VOTE_INELIGIBLE_BIT != 0,
            },
            round: packet.round(),
            accepted_epoch: packet.accepted_epoch(),
            epoch: packet.epoch(),
            echo: packet.echo(),
            auth_tag: packet.auth_tag(),
        })
    }

    /// Length of the emitted frame: always [`FRAME_LEN`].
    pub const fn buffer_len(&self) -> usize {
        FRAME_LEN
    }

    /// Write every byte of the frame (magic, version, all fields) and the CRC last.
    ///
    /// # Panics
    ///
    /// If the buffer is shorter than [`FRAME_LEN`] (smoltcp convention: size the buffer
    /// with [`Repr::buffer_len`]). Use [`emit_datagram`] for a non-panicking variant.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_magic(MAGIC);
        packet.set_version(VERSION);
        packet.set_state_code(self.state.code());
        let ineligible = if self.vote.ineligible {
            VOTE_INELIGIBLE_BIT
        } else {
            0
        };
        packet.set_flags(self.flags.bits() | ineligible);
        packet.set_key_id(self.key_id);
        packet.set_cluster(self.cluster);
        packet.set_sender(self.sender);
        packet.set_incarnation(self.incarnation);
        packet.set_sequence(self.sequence);
        packet.set_vote_leader(self.vote.leader);
        packet.set_vote_zxid(self.vote.zxid);
        packet.set_vote_peer_epoch(self.vote.peer_epoch);
        packet.set_round(self.round);
        packet.set_accepted_epoch(self.accepted_epoch);
        packet.set_epoch(self.epoch);
        packet.set_echo(self.echo);
        packet.set_auth_tag(self.auth_tag);
        packet.fill_checksum();
    }
}

/// Convenience for drivers: parse a received datagram (any length) in one call.
pub fn parse_datagram(datagram: &[u8], cluster: u32) -> Result<Repr, Error> {
    Repr::parse(&Packet::new_unchecked(datagram), cluster)
}

/// Convenience for drivers: emit `repr` into `buf[..FRAME_LEN]` and return `FRAME_LEN`.
///
/// Never panics: returns `Err(Error::WrongLength)` if `buf` is shorter than
/// [`FRAME_LEN`]. Bytes past `FRAME_LEN` are left untouched.
pub fn emit_datagram(repr: &Repr, buf: &mut [u8]) -> Result<usize, Error> {
    let frame = buf.get_mut(..FRAME_LEN).ok_or(Error::WrongLength)?;
    repr.emit(&mut Packet::new_unchecked(frame));
    Ok(FRAME_LEN)
}

#[cfg(test)]
mod tests;
