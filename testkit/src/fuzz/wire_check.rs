//! Fuzz check of the frame codec (`core/src/wire.rs`), for arbitrary input bytes.
//!
//! For every input:
//! - `parse_datagram`, `Packet::new_checked` + `Repr::parse` and `Repr::parse` on an
//!   unchecked packet never panic and agree with each other;
//! - the outcome equals an independent oracle written from the layout table in the module
//!   docs (its own bitwise CRC-32, its own offsets), including which error comes first;
//! - an accepted frame re-emits byte-exactly (apart from reserved flag bits 4..8, which
//!   are masked, and hence the CRC; bit 2 is the vote's INELIGIBLE bit) and the re-emitted frame parses to the same `Repr`;
//! - the bytes, read as field values, form a `Repr` whose emit → parse round-trips, so the
//!   emitting side sees arbitrary values too.

use votecast_core::wire::{
    emit_datagram, parse_datagram, Error, Flags, Packet, Repr, ServerState, Vote, FRAME_LEN, MAGIC,
    VERSION,
};

/// The cluster id the checks parse as (besides the frame's own cluster id).
pub const CLUSTER: u32 = 0x766f_7465;

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), bit by bit: independent of the
/// table-driven `crc32fast` the codec uses.
pub fn crc32_reference(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

fn be_u32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

fn be_u64(data: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"))
}

/// What `Repr::parse` must answer, derived from the documented layout and validation order.
pub fn oracle(data: &[u8], cluster: u32) -> Result<Repr, Error> {
    if data.len() != FRAME_LEN {
        return Err(Error::WrongLength);
    }
    if data[0..4] != *b"VCST" {
        return Err(Error::BadMagic);
    }
    if data[4] != 1 {
        return Err(Error::UnknownVersion);
    }
    if crc32_reference(&data[..104]) != be_u32(data, 104) {
        return Err(Error::BadChecksum);
    }
    let state = match data[5] {
        0 => ServerState::Looking,
        1 => ServerState::Following,
        2 => ServerState::Leading,
        3 => ServerState::Observing,
        _ => return Err(Error::UnknownState),
    };
    if be_u32(data, 8) != cluster {
        return Err(Error::OtherCluster);
    }
    Ok(repr_from_fields(data, state))
}

/// A `Repr` whose fields are read from `data` (at least 104 bytes) at the documented offsets.
fn repr_from_fields(data: &[u8], state: ServerState) -> Repr {
    let mut auth_tag = [0u8; 16];
    auth_tag.copy_from_slice(&data[88..104]);
    Repr {
        state,
        flags: Flags::from_bits_truncate(data[6]),
        key_id: data[7],
        cluster: be_u32(data, 8),
        sender: be_u64(data, 12),
        incarnation: be_u32(data, 20),
        sequence: be_u64(data, 24),
        vote: Vote {
            leader: be_u64(data, 32),
            zxid: be_u64(data, 40),
            peer_epoch: be_u64(data, 48),
            ineligible: data[6] & 0x04 != 0,
        },
        round: be_u64(data, 56),
        accepted_epoch: be_u64(data, 64),
        epoch: be_u64(data, 72),
        echo: be_u64(data, 80),
        auth_tag,
    }
}

/// Emit into a buffer pre-filled with 0xa5 (so a forgotten byte shows) and check that the
/// fallible and the panicking emitters agree.
pub fn emit(repr: &Repr) -> [u8; FRAME_LEN] {
    let mut a = [0xa5u8; FRAME_LEN + 4];
    assert_eq!(emit_datagram(repr, &mut a), Ok(FRAME_LEN));
    assert_eq!(a[FRAME_LEN..], [0xa5; 4], "emit wrote past the frame");
    let mut b = [0x5au8; FRAME_LEN];
    repr.emit(&mut Packet::new_unchecked(&mut b[..]));
    assert_eq!(a[..FRAME_LEN], b[..], "emit and emit_datagram differ");
    assert_eq!(repr.buffer_len(), FRAME_LEN);
    b
}

/// The defined bits of the flags byte (RESIGN, ESTABLISHED, INELIGIBLE, UNICAST_ANSWERS,
/// ANSWER_OPTIONAL, HANDOVER); bits 6..8 are reserved.
const DEFINED_FLAG_BITS: u8 = 0x3f;

/// The frame `data` (accepted) should re-emit as: reserved flag bits (6..8) cleared, CRC
/// redone.
fn canonical(data: &[u8]) -> [u8; FRAME_LEN] {
    let mut out = [0u8; FRAME_LEN];
    out.copy_from_slice(data);
    out[6] &= DEFINED_FLAG_BITS;
    let crc = crc32_reference(&out[..104]);
    out[104..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The fuzz entry point: [`check`] on `data`, and, for a 108-byte input, on a copy with the
/// CRC recomputed too (the fuzzer cannot guess CRCs, so without this almost nothing it
/// tries would get past the checksum).
pub fn check_input(data: &[u8]) {
    check(data);
    if data.len() == FRAME_LEN {
        let mut fixed = [0u8; FRAME_LEN];
        fixed.copy_from_slice(data);
        let crc = crc32_reference(&fixed[..104]);
        fixed[104..].copy_from_slice(&crc.to_be_bytes());
        check(&fixed);
    }
}

/// Runs every check on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    let result = parse_datagram(data, CLUSTER);
    assert_eq!(result, oracle(data, CLUSTER), "parse_datagram vs oracle");
    assert_eq!(
        Repr::parse(&Packet::new_unchecked(data), CLUSTER),
        result,
        "Repr::parse on an unchecked packet"
    );
    match Packet::new_checked(data) {
        Err(err) => {
            assert_eq!(err, Error::WrongLength);
            assert_ne!(data.len(), FRAME_LEN);
            assert_eq!(result, Err(Error::WrongLength));
            // A short buffer is refused by the emitter too, without writing anything.
            let mut short = data.to_vec();
            if short.len() < FRAME_LEN {
                let before = short.clone();
                let any = oracle_any_repr(data);
                assert_eq!(emit_datagram(&any, &mut short), Err(Error::WrongLength));
                assert_eq!(short, before, "a failed emit wrote into the buffer");
            }
        }
        Ok(packet) => {
            assert_eq!(data.len(), FRAME_LEN);
            // The getters read the documented offsets.
            assert_eq!(packet.magic(), data[0..4]);
            assert_eq!(packet.version(), data[4]);
            assert_eq!(packet.state_code(), data[5]);
            assert_eq!(packet.flags(), data[6]);
            assert_eq!(packet.key_id(), data[7]);
            assert_eq!(packet.cluster(), be_u32(data, 8));
            assert_eq!(packet.sender(), be_u64(data, 12));
            assert_eq!(packet.incarnation(), be_u32(data, 20));
            assert_eq!(packet.sequence(), be_u64(data, 24));
            assert_eq!(packet.vote_leader(), be_u64(data, 32));
            assert_eq!(packet.vote_zxid(), be_u64(data, 40));
            assert_eq!(packet.vote_peer_epoch(), be_u64(data, 48));
            assert_eq!(packet.round(), be_u64(data, 56));
            assert_eq!(packet.accepted_epoch(), be_u64(data, 64));
            assert_eq!(packet.epoch(), be_u64(data, 72));
            assert_eq!(packet.echo(), be_u64(data, 80));
            assert_eq!(packet.auth_tag(), data[88..104]);
            assert_eq!(packet.checksum(), be_u32(data, 104));
            assert_eq!(
                packet.verify_checksum(),
                crc32_reference(&data[..104]) == packet.checksum()
            );
            // Parsing as a member of the frame's own cluster: accepted unless malformed.
            let own = Repr::parse(&packet, packet.cluster());
            assert_eq!(own, oracle(data, packet.cluster()));
            assert_eq!(own, parse_datagram(data, packet.cluster()));
            if let Ok(repr) = own {
                let emitted = emit(&repr);
                assert_eq!(emitted, canonical(data), "accepted frame does not re-emit");
                if data[6] & !DEFINED_FLAG_BITS == 0 {
                    assert_eq!(emitted[..], data[..], "re-emit is not byte-exact");
                }
                assert_eq!(parse_datagram(&emitted, repr.cluster), Ok(repr));
            }
        }
    }
    // The emitting side, with the input's bytes as field values.
    let repr = oracle_any_repr(data);
    let frame = emit(&repr);
    assert_eq!(frame[0..4], MAGIC);
    assert_eq!(frame[4], VERSION);
    assert_eq!(
        frame[6] & !DEFINED_FLAG_BITS,
        0,
        "reserved flag bits emitted"
    );
    assert_eq!(parse_datagram(&frame, repr.cluster), Ok(repr));
    assert_eq!(oracle(&frame, repr.cluster), Ok(repr));
}

/// Any input as a `Repr`: the bytes (zero-padded to 104) as fields, the state code modulo 4.
fn oracle_any_repr(data: &[u8]) -> Repr {
    let mut padded = [0u8; 104];
    let n = data.len().min(104);
    padded[..n].copy_from_slice(&data[..n]);
    let state = ServerState::from_code(padded[5] % 4).expect("codes 0..4 exist");
    repr_from_fields(&padded, state)
}
