//! The epochs file, version 2: two fixed-size, checksummed slots that are overwritten in
//! place, alternately, so that a torn write never loses the value before it.
//!
//! The file is exactly [`FILE_LEN`] bytes: slot A at offset 0, slot B at offset
//! [`SLOT_LEN`], each in a 512-byte sector of its own so that a write to one never touches
//! the other. A slot holds [`RECORD_LEN`] bytes (little endian), the rest of it is zero:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 8 | magic `VCEPOCH2` |
//! | 8 | 8 | sequence number |
//! | 16 | 8 | `accepted_epoch` |
//! | 24 | 8 | `accepted_leader` |
//! | 32 | 8 | `current_epoch` |
//! | 40 | 4 | CRC-32 of bytes 0..40 |
//!
//! A store writes sequence `s + 1` into the slot that does *not* hold the newest value
//! `s` (slot `(s + 1) % 2`) with one `pwrite`, then `fdatasync`s: the file's size and
//! its directory entry never change, so no rename and no directory sync are needed, and
//! `fdatasync` does not wait for the modification time. A reader takes the valid slot
//! (magic and checksum) with the higher sequence number. A write torn by a crash leaves
//! that slot invalid (or, if it reached the disk whole, valid and newer); the other slot
//! still holds the previous value, which is then the durable one: the store had not
//! returned, so nothing that announces the new value was sent. Both slots invalid is
//! damage, never a torn write: an error that names the file.
//!
//! A damaged *newest* slot (bit rot rather than a torn write) cannot be told from a torn
//! write, so the reader falls back to the older value; the text format before it had the
//! same exposure to silent damage of a whole file with a matching checksum, and storage
//! that rots sectors loses more than epochs.

use votecast_core::election::Epochs;

/// Bytes per slot: one sector, so the slots never share one.
pub(super) const SLOT_LEN: usize = 512;
/// The file: slot A, slot B.
pub(super) const FILE_LEN: usize = 2 * SLOT_LEN;
/// The meaningful part of a slot.
pub(super) const RECORD_LEN: usize = 44;
/// The first bytes of a valid slot (and so of a version-2 file whose slot A is intact).
pub(super) const MAGIC: &[u8; 8] = b"VCEPOCH2";

/// A slot's content: a sequence number and the epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub sequence: u64,
    pub epochs: Epochs,
}

impl Record {
    /// The slot this record goes to.
    pub fn slot(&self) -> usize {
        (self.sequence % 2) as usize
    }

    /// Its offset in the file.
    pub fn offset(&self) -> u64 {
        (self.slot() * SLOT_LEN) as u64
    }

    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[..8].copy_from_slice(MAGIC);
        let e = &self.epochs;
        let fields = [
            self.sequence,
            e.accepted_epoch,
            e.accepted_leader,
            e.current_epoch,
        ];
        for (i, value) in fields.iter().enumerate() {
            out[8 + 8 * i..16 + 8 * i].copy_from_slice(&value.to_le_bytes());
        }
        let crc = crc32fast::hash(&out[..RECORD_LEN - 4]);
        out[RECORD_LEN - 4..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes one slot; the error says what is wrong with it.
    pub fn decode(slot: &[u8]) -> Result<Record, &'static str> {
        let Some(bytes) = slot.get(..RECORD_LEN) else {
            return Err("too short");
        };
        if &bytes[..8] != MAGIC {
            return Err("no valid record (wrong magic)");
        }
        let stored = u32::from_le_bytes(bytes[RECORD_LEN - 4..].try_into().expect("4 bytes"));
        if crc32fast::hash(&bytes[..RECORD_LEN - 4]) != stored {
            return Err("checksum mismatch");
        }
        let field = |i: usize| {
            u64::from_le_bytes(bytes[8 + 8 * i..16 + 8 * i].try_into().expect("8 bytes"))
        };
        Ok(Record {
            sequence: field(0),
            epochs: Epochs {
                accepted_epoch: field(1),
                accepted_leader: field(2),
                current_epoch: field(3),
            },
        })
    }
}

/// A whole file holding `epochs` in both slots (sequence numbers 0 and 1): what a new or
/// migrated file starts as. Returns the image and the newest record.
pub(super) fn image(epochs: Epochs) -> ([u8; FILE_LEN], Record) {
    let mut file = [0u8; FILE_LEN];
    let mut newest = Record {
        sequence: 0,
        epochs,
    };
    for sequence in 0..2 {
        newest = Record { sequence, epochs };
        let at = newest.slot() * SLOT_LEN;
        file[at..at + RECORD_LEN].copy_from_slice(&newest.encode());
    }
    (file, newest)
}

/// The newest valid record of a version-2 file, or what is wrong with the file.
pub(super) fn newest(file: &[u8]) -> Result<Record, String> {
    if file.len() != FILE_LEN {
        return Err(format!(
            "a two-slot epochs file must be {FILE_LEN} bytes, found {}",
            file.len()
        ));
    }
    let a = Record::decode(&file[..SLOT_LEN]);
    let b = Record::decode(&file[SLOT_LEN..]);
    match (a, b) {
        (Ok(a), Ok(b)) if a.sequence == b.sequence && a.epochs != b.epochs => Err(format!(
            "both slots carry sequence number {} with different epochs",
            a.sequence
        )),
        (Ok(a), Ok(b)) => Ok(if b.sequence > a.sequence { b } else { a }),
        (Ok(one), Err(_)) | (Err(_), Ok(one)) => Ok(one),
        (Err(a), Err(b)) => Err(format!("both slots are damaged (slot A: {a}; slot B: {b})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epochs(n: u64) -> Epochs {
        Epochs {
            accepted_epoch: n,
            accepted_leader: 2,
            current_epoch: n.saturating_sub(1),
        }
    }

    #[test]
    fn a_record_round_trips_and_its_layout_is_fixed() {
        let r = Record {
            sequence: 0x0102_0304_0506_0708,
            epochs: Epochs {
                accepted_epoch: u64::MAX,
                accepted_leader: 3,
                current_epoch: 7,
            },
        };
        let bytes = r.encode();
        assert_eq!(&bytes[..8], b"VCEPOCH2");
        assert_eq!(bytes[8..16], [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(bytes[16..24], [0xff; 8]);
        assert_eq!(bytes[24], 3);
        assert_eq!(bytes[32], 7);
        assert_eq!(Record::decode(&bytes), Ok(r));
        assert_eq!((r.slot(), r.offset()), (0, 0));
        let next = Record {
            sequence: r.sequence + 1,
            ..r
        };
        assert_eq!((next.slot(), next.offset()), (1, 512));
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let (mut file, newest_record) = image(epochs(3));
        assert_eq!(newest_record.sequence, 1);
        assert_eq!(newest(&file), Ok(newest_record));
        // Sequence 2 goes to slot A.
        let r = Record {
            sequence: 2,
            epochs: epochs(4),
        };
        file[..RECORD_LEN].copy_from_slice(&r.encode());
        assert_eq!(newest(&file), Ok(r));
    }

    #[test]
    fn any_single_damaged_byte_of_a_record_falls_back_to_the_other_slot() {
        let (mut file, old) = image(epochs(3));
        let r = Record {
            sequence: 2,
            epochs: epochs(4),
        };
        file[..RECORD_LEN].copy_from_slice(&r.encode());
        for i in 0..RECORD_LEN {
            let mut torn = file;
            torn[i] ^= 0x5a;
            assert_eq!(newest(&torn), Ok(old), "byte {i} of slot A");
        }
    }

    #[test]
    fn both_slots_damaged_or_a_wrong_length_is_an_error() {
        let (mut file, _) = image(epochs(3));
        file[5] ^= 1;
        file[SLOT_LEN + 40] ^= 1;
        let err = newest(&file).unwrap_err();
        assert!(err.contains("both slots are damaged"), "{err}");
        assert!(err.contains("slot A: no valid record"), "{err}");
        assert!(err.contains("slot B: checksum mismatch"), "{err}");
        assert!(newest(&[0u8; FILE_LEN]).is_err());
        let (file, _) = image(epochs(3));
        let err = newest(&file[..600]).unwrap_err();
        assert!(err.contains("must be 1024 bytes, found 600"), "{err}");
    }

    #[test]
    fn equal_sequence_numbers_with_different_epochs_are_an_error() {
        let mut file = [0u8; FILE_LEN];
        let a = Record {
            sequence: 4,
            epochs: epochs(4),
        };
        let b = Record {
            sequence: 4,
            epochs: epochs(5),
        };
        file[..RECORD_LEN].copy_from_slice(&a.encode());
        file[SLOT_LEN..SLOT_LEN + RECORD_LEN].copy_from_slice(&b.encode());
        assert!(newest(&file).unwrap_err().contains("sequence number 4"));
    }
}
