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
//! | 6 | 1 | flags: bit 0 RESIGN (sender is shutting down and gives up its role), bit 1 ESTABLISHED (LEADING: a quorum acknowledged `epoch`; FOLLOWING: the sender has seen its leader establish `epoch`). Other bits reserved: emitted as 0, ignored (masked off) on parse. |
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
/// dropped on parse and always emitted as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// The sender is shutting down and gives up its role.
    pub const RESIGN: Flags = Flags(0b01);
    /// LEADING: a quorum acknowledged `epoch`. FOLLOWING: the sender has seen its leader
    /// establish `epoch`.
    pub const ESTABLISHED: Flags = Flags(0b10);

    /// All defined bits.
    const KNOWN: u8 = Self::RESIGN.0 | Self::ESTABLISHED.0;

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

/// A FastLeaderElection vote: who the sender proposes as leader, and that candidate's
/// last zxid and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    /// Proposed leader's server id, or [`NO_LEADER`].
    pub leader: u64,
    pub zxid: u64,
    pub peer_epoch: u64,
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
        packet.set_flags(self.flags.bits());
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
mod tests {
    use super::*;

    const CLUSTER: u32 = 0xc0ff_ee01;

    // Test vectors. The CRCs (last four bytes) were computed once, independently of this
    // code, with Python's `zlib.crc32` over bytes 0..104.

    /// LOOKING, no flags, unauthenticated, no leadership fields.
    #[rustfmt::skip]
    static LOOKING_FRAME: [u8; FRAME_LEN] = [
        0x56, 0x43, 0x53, 0x54, 0x01, 0x00, 0x00, 0x00, // magic, version, state, flags, key id
        0xc0, 0xff, 0xee, 0x01, // cluster
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // sender
        0x00, 0x00, 0x00, 0x07, // incarnation
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // sequence
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // vote leader
        0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x10, // vote zxid
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // vote peer epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // round
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // accepted epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // echo
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // auth tag
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xa4, 0x41, 0x4f, 0x1d, // crc
    ];

    fn looking_repr() -> Repr {
        Repr {
            state: ServerState::Looking,
            flags: Flags::empty(),
            key_id: 0,
            cluster: CLUSTER,
            sender: 3,
            incarnation: 7,
            sequence: 42,
            vote: Vote {
                leader: 3,
                zxid: 0x0000_0005_0000_0010,
                peer_epoch: 5,
            },
            round: 9,
            accepted_epoch: 5,
            epoch: 0,
            echo: 0,
            auth_tag: [0; 16],
        }
    }

    /// LEADING with ESTABLISHED, key id 1, non-zero echo and tag.
    #[rustfmt::skip]
    static LEADING_FRAME: [u8; FRAME_LEN] = [
        0x56, 0x43, 0x53, 0x54, 0x01, 0x02, 0x02, 0x01, // magic, version, state, flags, key id
        0xc0, 0xff, 0xee, 0x01, // cluster
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // sender
        0x01, 0x02, 0x03, 0x04, // incarnation
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // sequence
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // vote leader
        0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, // vote zxid
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, // vote peer epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, // round
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, // accepted epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, // epoch
        0x00, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, // echo
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, // auth tag
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0x29, 0x88, 0x91, 0xe8, // crc
    ];

    fn leading_repr() -> Repr {
        Repr {
            state: ServerState::Leading,
            flags: Flags::ESTABLISHED,
            key_id: 1,
            cluster: CLUSTER,
            sender: 5,
            incarnation: 0x0102_0304,
            sequence: 0x1122_3344_5566_7788,
            vote: Vote {
                leader: 5,
                zxid: 0x0000_0006_0000_0000,
                peer_epoch: 6,
            },
            round: 12,
            accepted_epoch: 6,
            epoch: 6,
            echo: 0x0000_0001_2345_6789,
            auth_tag: [
                0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad,
                0xae, 0xaf,
            ],
        }
    }

    /// LEADING_FRAME with every flag bit set (0xfe: ESTABLISHED plus all reserved bits,
    /// RESIGN clear) and the CRC recomputed (also with `zlib.crc32`).
    #[rustfmt::skip]
    static RESERVED_FLAGS_FRAME: [u8; FRAME_LEN] = [
        0x56, 0x43, 0x53, 0x54, 0x01, 0x02, 0xfe, 0x01, // magic, version, state, flags, key id
        0xc0, 0xff, 0xee, 0x01, // cluster
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // sender
        0x01, 0x02, 0x03, 0x04, // incarnation
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // sequence
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // vote leader
        0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, // vote zxid
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, // vote peer epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, // round
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, // accepted epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, // epoch
        0x00, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, // echo
        0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, // auth tag
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
        0x2a, 0xc6, 0xc3, 0xec, // crc
    ];

    /// LOOKING_FRAME with state code 4 and the CRC recomputed (also with `zlib.crc32`).
    #[rustfmt::skip]
    static STATE_4_FRAME: [u8; FRAME_LEN] = [
        0x56, 0x43, 0x53, 0x54, 0x01, 0x04, 0x00, 0x00, // magic, version, state, flags, key id
        0xc0, 0xff, 0xee, 0x01, // cluster
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // sender
        0x00, 0x00, 0x00, 0x07, // incarnation
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, // sequence
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, // vote leader
        0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x10, // vote zxid
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // vote peer epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // round
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, // accepted epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // epoch
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // echo
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // auth tag
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xc7, 0x37, 0x44, 0x97, // crc
    ];

    /// Emit into a buffer pre-filled with 0xa5, so any byte `emit` forgets shows up.
    fn emit_to_array(repr: &Repr) -> [u8; FRAME_LEN] {
        let mut buf = [0xa5u8; FRAME_LEN];
        assert_eq!(repr.buffer_len(), FRAME_LEN);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..]));
        buf
    }

    /// Minimal 64-bit LCG (Knuth's MMIX constants); the high half is the output.
    struct Lcg(u64);

    impl Lcg {
        fn next_u64(&mut self) -> u64 {
            let hi = self.step() >> 32;
            let lo = self.step() >> 32;
            (hi << 32) | lo
        }

        fn step(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }

        fn byte(&mut self) -> u8 {
            self.next_u64() as u8
        }

        /// Mostly full-range values, sometimes the edges.
        fn field(&mut self) -> u64 {
            match self.below(8) {
                0 => 0,
                1 => u64::MAX,
                2 => self.below(16),
                _ => self.next_u64(),
            }
        }
    }

    fn random_repr(rng: &mut Lcg) -> Repr {
        let mut auth_tag = [0u8; 16];
        auth_tag.iter_mut().for_each(|b| *b = rng.byte());
        Repr {
            state: ServerState::from_code(rng.below(4) as u8).unwrap(),
            flags: Flags::from_bits_truncate(rng.byte()),
            key_id: rng.byte(),
            cluster: rng.field() as u32,
            sender: rng.field(),
            incarnation: rng.field() as u32,
            sequence: rng.field(),
            vote: Vote {
                leader: rng.field(),
                zxid: rng.field(),
                peer_epoch: rng.field(),
            },
            round: rng.field(),
            accepted_epoch: rng.field(),
            epoch: rng.field(),
            echo: rng.field(),
            auth_tag,
        }
    }

    #[test]
    fn looking_vector_parses() {
        assert_eq!(parse_datagram(&LOOKING_FRAME, CLUSTER), Ok(looking_repr()));
    }

    #[test]
    fn looking_vector_emits() {
        assert_eq!(emit_to_array(&looking_repr()), LOOKING_FRAME);
    }

    #[test]
    fn leading_vector_parses() {
        let repr = parse_datagram(&LEADING_FRAME, CLUSTER).unwrap();
        assert_eq!(repr, leading_repr());
        assert!(repr.flags.contains(Flags::ESTABLISHED));
        assert!(!repr.flags.contains(Flags::RESIGN));
    }

    #[test]
    fn leading_vector_emits() {
        assert_eq!(emit_to_array(&leading_repr()), LEADING_FRAME);
    }

    #[test]
    fn getters_read_leading_vector() {
        let p = Packet::new_checked(&LEADING_FRAME[..]).unwrap();
        assert_eq!(p.magic(), MAGIC);
        assert_eq!(p.version(), VERSION);
        assert_eq!(p.state_code(), 2);
        assert_eq!(p.flags(), 0x02);
        assert_eq!(p.key_id(), 1);
        assert_eq!(p.cluster(), CLUSTER);
        assert_eq!(p.sender(), 5);
        assert_eq!(p.incarnation(), 0x0102_0304);
        assert_eq!(p.sequence(), 0x1122_3344_5566_7788);
        assert_eq!(p.vote_leader(), 5);
        assert_eq!(p.vote_zxid(), 0x0000_0006_0000_0000);
        assert_eq!(p.vote_peer_epoch(), 6);
        assert_eq!(p.round(), 12);
        assert_eq!(p.accepted_epoch(), 6);
        assert_eq!(p.epoch(), 6);
        assert_eq!(p.echo(), 0x0000_0001_2345_6789);
        assert_eq!(p.auth_tag(), leading_repr().auth_tag);
        assert_eq!(p.checksum(), 0x2988_91e8);
        assert!(p.verify_checksum());
        assert_eq!(p.into_inner(), &LEADING_FRAME[..]);
    }

    #[test]
    fn emit_datagram_writes_prefix_only() {
        let mut buf = [0xa5u8; FRAME_LEN + 10];
        assert_eq!(emit_datagram(&leading_repr(), &mut buf), Ok(FRAME_LEN));
        assert_eq!(buf[..FRAME_LEN], LEADING_FRAME);
        assert!(buf[FRAME_LEN..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn emit_datagram_short_buffer_is_an_error() {
        for len in [0, 1, FRAME_LEN - 1] {
            let mut buf = [0xa5u8; FRAME_LEN];
            assert_eq!(
                emit_datagram(&looking_repr(), &mut buf[..len]),
                Err(Error::WrongLength)
            );
            // Nothing was written.
            assert!(buf.iter().all(|&b| b == 0xa5));
        }
    }

    #[test]
    fn wrong_length() {
        for len in [0, FRAME_LEN - 1] {
            assert_eq!(
                parse_datagram(&LOOKING_FRAME[..len], CLUSTER),
                Err(Error::WrongLength)
            );
            assert_eq!(
                Packet::new_checked(&LOOKING_FRAME[..len]).err(),
                Some(Error::WrongLength)
            );
        }
        // A valid frame followed by one extra byte is not silently truncated.
        let mut long = [0u8; FRAME_LEN + 1];
        long[..FRAME_LEN].copy_from_slice(&LOOKING_FRAME);
        assert_eq!(parse_datagram(&long, CLUSTER), Err(Error::WrongLength));
        assert_eq!(
            Packet::new_checked(&long[..]).err(),
            Some(Error::WrongLength)
        );
        // Repr::parse checks the length itself, even on an unchecked packet.
        let short = Packet::new_unchecked(&LOOKING_FRAME[..10]);
        assert_eq!(Repr::parse(&short, CLUSTER), Err(Error::WrongLength));
    }

    #[test]
    fn bad_magic() {
        let mut frame = LOOKING_FRAME;
        frame[3] = b'X';
        let mut p = Packet::new_unchecked(&mut frame[..]);
        p.fill_checksum();
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::BadMagic));
    }

    #[test]
    fn unknown_version() {
        let mut frame = LOOKING_FRAME;
        let mut p = Packet::new_unchecked(&mut frame[..]);
        p.set_version(2);
        p.fill_checksum();
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::UnknownVersion));
    }

    #[test]
    fn bad_checksum() {
        // Flip one bit in a payload byte (the vote zxid).
        let mut frame = LEADING_FRAME;
        frame[45] ^= 0x01;
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::BadChecksum));
        // And one bit of the CRC itself.
        let mut frame = LEADING_FRAME;
        frame[FRAME_LEN - 1] ^= 0x80;
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::BadChecksum));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        for byte in 0..FRAME_LEN {
            for bit in 0..8 {
                let mut frame = LEADING_FRAME;
                frame[byte] ^= 1 << bit;
                assert!(
                    parse_datagram(&frame, CLUSTER).is_err(),
                    "byte {byte} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn unknown_state() {
        assert!(Packet::new_checked(&STATE_4_FRAME[..])
            .unwrap()
            .verify_checksum());
        assert_eq!(
            parse_datagram(&STATE_4_FRAME, CLUSTER),
            Err(Error::UnknownState)
        );
        // Every code above 3 is unknown.
        for code in 4..=u8::MAX {
            let mut frame = LOOKING_FRAME;
            let mut p = Packet::new_unchecked(&mut frame[..]);
            p.set_state_code(code);
            p.fill_checksum();
            assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::UnknownState));
        }
    }

    #[test]
    fn other_cluster() {
        assert_eq!(
            parse_datagram(&LOOKING_FRAME, CLUSTER + 1),
            Err(Error::OtherCluster)
        );
        assert_eq!(parse_datagram(&LEADING_FRAME, 0), Err(Error::OtherCluster));
    }

    #[test]
    fn validation_order() {
        // Length before magic.
        let mut junk = [0u8; FRAME_LEN - 1];
        junk[..4].copy_from_slice(b"NOPE");
        assert_eq!(parse_datagram(&junk, CLUSTER), Err(Error::WrongLength));

        // Magic before checksum: bad magic and a stale CRC.
        let mut frame = LOOKING_FRAME;
        frame[0] = b'X';
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::BadMagic));

        // Magic before version.
        let mut frame = LOOKING_FRAME;
        frame[0] = b'X';
        frame[field::VERSION] = 9;
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::BadMagic));

        // Version before checksum: bad version and a stale CRC.
        let mut frame = LOOKING_FRAME;
        frame[field::VERSION] = 0;
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::UnknownVersion));

        // Checksum before state: state 4 with a stale CRC.
        let mut frame = LOOKING_FRAME;
        frame[field::STATE] = 4;
        assert_eq!(parse_datagram(&frame, CLUSTER), Err(Error::BadChecksum));

        // Checksum before cluster: a corrupted frame from another cluster.
        let mut frame = LOOKING_FRAME;
        frame[60] ^= 0x10;
        assert_eq!(parse_datagram(&frame, CLUSTER + 1), Err(Error::BadChecksum));

        // State before cluster: valid CRC, state 4, other cluster.
        assert_eq!(
            parse_datagram(&STATE_4_FRAME, CLUSTER + 1),
            Err(Error::UnknownState)
        );
    }

    #[test]
    fn reserved_flag_bits_ignored_on_parse() {
        let repr = parse_datagram(&RESERVED_FLAGS_FRAME, CLUSTER).unwrap();
        assert_eq!(repr, leading_repr());
        assert_eq!(repr.flags.bits(), Flags::ESTABLISHED.bits());
        // Re-emitting drops the reserved bits.
        assert_eq!(emit_to_array(&repr), LEADING_FRAME);
    }

    #[test]
    fn reserved_flag_bits_emitted_as_zero() {
        let mut repr = looking_repr();
        repr.flags = Flags::from_bits_truncate(0xff);
        assert!(repr.flags.contains(Flags::RESIGN.with(Flags::ESTABLISHED)));
        let frame = emit_to_array(&repr);
        assert_eq!(frame[field::FLAGS], 0x03);
    }

    #[test]
    fn flags_ops() {
        let mut f = Flags::empty();
        assert_eq!(f, Flags::default());
        assert_eq!(f.bits(), 0);
        assert!(f.contains(Flags::empty()));
        assert!(!f.contains(Flags::RESIGN));
        f.insert(Flags::RESIGN);
        assert!(f.contains(Flags::RESIGN));
        assert!(!f.contains(Flags::ESTABLISHED));
        assert!(!f.contains(Flags::RESIGN.with(Flags::ESTABLISHED)));
        let both = f.with(Flags::ESTABLISHED);
        assert_eq!(both.bits(), 0x03);
        assert_eq!(Flags::from_bits_truncate(0xfd), Flags::RESIGN);
    }

    #[test]
    fn server_state_codes_and_names() {
        for code in 0..=u8::MAX {
            match ServerState::from_code(code) {
                Some(state) => assert_eq!(state.code(), code),
                None => assert!(code > 3),
            }
        }
        assert_eq!(ServerState::Looking.as_str(), "LOOKING");
        assert_eq!(ServerState::Following.as_str(), "FOLLOWING");
        assert_eq!(ServerState::Leading.to_string(), "LEADING");
        assert_eq!(format!("{:>10}", ServerState::Observing), " OBSERVING");
    }

    #[test]
    fn error_display() {
        assert_eq!(Error::WrongLength.to_string(), "wrong frame length");
        assert_eq!(
            Error::OtherCluster.to_string(),
            "frame from another cluster"
        );
        let boxed: Box<dyn std::error::Error> = Box::new(Error::BadChecksum);
        assert_eq!(boxed.to_string(), "bad checksum");
    }

    #[test]
    fn round_trip_many() {
        let mut rng = Lcg(0x5eed);
        for _ in 0..5000 {
            let repr = random_repr(&mut rng);
            let mut buf = [0u8; FRAME_LEN];
            assert_eq!(emit_datagram(&repr, &mut buf), Ok(FRAME_LEN));
            assert_eq!(buf[field::FLAGS] & !0x03, 0);
            assert_eq!(parse_datagram(&buf, repr.cluster), Ok(repr));
            // The Packet view agrees with the Repr.
            let p = Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(p.sender(), repr.sender);
            assert_eq!(p.vote_leader(), repr.vote.leader);
            assert_eq!(p.echo(), repr.echo);
        }
    }

    #[test]
    fn no_vote_round_trips() {
        let mut repr = looking_repr();
        repr.state = ServerState::Observing;
        repr.vote.leader = NO_LEADER;
        let frame = emit_to_array(&repr);
        assert_eq!(frame[field::VOTE_LEADER], [0xff; 8]);
        assert_eq!(parse_datagram(&frame, CLUSTER), Ok(repr));
    }

    #[test]
    fn truncations_do_not_panic() {
        for frame in [&LOOKING_FRAME, &LEADING_FRAME, &STATE_4_FRAME] {
            for len in 0..FRAME_LEN {
                assert_eq!(
                    parse_datagram(&frame[..len], CLUSTER),
                    Err(Error::WrongLength)
                );
            }
        }
    }

    #[test]
    fn random_bytes_do_not_panic() {
        let mut rng = Lcg(0xfeed_f00d);
        let mut buf = [0u8; 200];
        // How often each outcome was seen: Ok, then the errors in validation order.
        let mut seen = [0u32; 7];
        for i in 0..20_000 {
            // Most random bytes die at the magic check. To reach the later checks, every
            // fourth input is a frame with valid magic and version, a state code that is
            // sometimes unknown, sometimes our cluster id, and mostly a valid CRC.
            let structured = i % 4 == 0;
            let len = if structured {
                FRAME_LEN
            } else {
                rng.below(200) as usize
            };
            let data = &mut buf[..len];
            data.iter_mut().for_each(|b| *b = rng.byte());
            if structured {
                let mut p = Packet::new_unchecked(&mut *data);
                p.set_magic(MAGIC);
                p.set_version(VERSION);
                p.set_state_code(rng.byte() % 6);
                if rng.below(2) == 0 {
                    p.set_cluster(CLUSTER);
                }
                if rng.below(4) != 0 {
                    p.fill_checksum();
                }
            }
            let slot = match check_arbitrary(data) {
                Ok(_) => 0,
                Err(Error::WrongLength) => 1,
                Err(Error::BadMagic) => 2,
                Err(Error::UnknownVersion) => 3,
                Err(Error::BadChecksum) => 4,
                Err(Error::UnknownState) => 5,
                Err(Error::OtherCluster) => 6,
            };
            seen[slot] += 1;
        }
        // Every outcome except UnknownVersion (random bytes essentially never carry the
        // magic) must have been exercised.
        for (slot, &count) in seen.iter().enumerate() {
            assert!(
                slot == 3 || count > 0,
                "outcome {slot} never seen: {seen:?}"
            );
        }
    }

    /// Parse arbitrary bytes; if they are accepted, re-emitting must reproduce them
    /// exactly, apart from the reserved flag bits (and hence the CRC). Returns the
    /// result of parsing as a member of `CLUSTER`.
    fn check_arbitrary(data: &[u8]) -> Result<Repr, Error> {
        let result = parse_datagram(data, CLUSTER);
        if let Ok(repr) = result {
            let mut expected = [0u8; FRAME_LEN];
            expected.copy_from_slice(data);
            let mut p = Packet::new_unchecked(&mut expected[..]);
            p.set_flags(p.flags() & 0x03);
            p.fill_checksum();
            assert_eq!(emit_to_array(&repr), expected);
        }
        result
    }
}
