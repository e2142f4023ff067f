//! The data directory's files: formats, migration, damage and torn writes.

use super::*;
use crate::cluster::TempDir;

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn with_crc(body: &str) -> String {
    format!("{body}crc32={:08x}\n", crc32fast::hash(body.as_bytes()))
}

#[test]
fn round_trip_and_format() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let dir = tmp.path().join("nested/data");
    let mut data = DataDir::open(&dir).unwrap();
    assert!(dir.is_dir());
    assert_eq!(data.load_epochs().unwrap(), Epochs::default());
    let e = Epochs {
        accepted_epoch: 3,
        accepted_leader: 2,
        current_epoch: 3,
    };
    data.store_epochs(&e).unwrap();
    assert_eq!(data.load_epochs().unwrap(), e);
    // Two 512-byte slots; sequence 2 went to slot A, slot B still holds the zeros.
    let bytes = std::fs::read(dir.join("epochs")).unwrap();
    assert_eq!(bytes.len(), 1024);
    let a = slots::Record::decode(&bytes[..512]).unwrap();
    let b = slots::Record::decode(&bytes[512..]).unwrap();
    assert_eq!((a.sequence, a.epochs), (2, e));
    assert_eq!((b.sequence, b.epochs), (1, Epochs::default()));
    assert!(bytes[slots::RECORD_LEN..512].iter().all(|&b| b == 0));
    let max = Epochs {
        accepted_epoch: u64::MAX,
        accepted_leader: u64::MAX,
        current_epoch: u64::MAX,
    };
    data.store_epochs(&max).unwrap();
    drop(data);
    let data = DataDir::open(&dir).unwrap();
    assert_eq!(data.load_epochs().unwrap(), max);
    assert_eq!(names_in(&dir), vec!["epochs"]);
}

#[test]
fn incarnation_bumps_and_survives_reopen() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.load_incarnation().unwrap(), 0);
    assert_eq!(data.bump_incarnation(0, 1).unwrap(), 1);
    assert_eq!(data.bump_incarnation(0, 1).unwrap(), 2);
    drop(data);
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.load_incarnation().unwrap(), 2);
    assert_eq!(data.bump_incarnation(0, 1).unwrap(), 3);
    assert_eq!(names_in(tmp.path()), vec!["epochs", "incarnation"]);
    let text = std::fs::read_to_string(tmp.path().join("incarnation")).unwrap();
    assert_eq!(text, with_crc("votecast-incarnation v1\nincarnation=3\n"));
}

#[test]
fn incarnation_floor_survives_a_wiped_directory() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(
        data.bump_incarnation(1_700_000_000, 1).unwrap(),
        1_700_000_000
    );
    // A clock that went backwards never lowers it.
    assert_eq!(
        data.bump_incarnation(1_600_000_000, 1).unwrap(),
        1_700_000_001
    );
    std::fs::remove_file(tmp.path().join("incarnation")).unwrap();
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(
        data.bump_incarnation(1_700_000_100, 1).unwrap(),
        1_700_000_100
    );
}

#[test]
fn a_directory_without_a_counter_starts_at_the_fresh_value() {
    // Without a set clock, a wiped directory must not start at 1 again: the process
    // before the wipe may have been incarnation 1, which peers never readmit.
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.bump_incarnation(0, 1).unwrap(), 1);
    std::fs::remove_file(tmp.path().join("incarnation")).unwrap();
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.bump_incarnation(0, 912_345).unwrap(), 912_345);
    // Once there is a counter, `fresh` is not used; 0 is never an incarnation.
    assert_eq!(data.bump_incarnation(0, 7).unwrap(), 912_346);
    std::fs::remove_file(tmp.path().join("incarnation")).unwrap();
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.bump_incarnation(0, 0).unwrap(), 1);
}

#[test]
fn incarnation_overflow_is_an_error() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let mut data = DataDir::open(tmp.path()).unwrap();
    std::fs::write(
        tmp.path().join("incarnation"),
        with_crc(&format!(
            "votecast-incarnation v1\nincarnation={}\n",
            u32::MAX
        )),
    )
    .unwrap();
    let err = data.bump_incarnation(0, 1).unwrap_err();
    assert!(matches!(err, PersistError::Overflow { .. }), "{err}");
    assert!(err.to_string().contains("incarnation"), "{err}");
    std::fs::write(
        tmp.path().join("incarnation"),
        with_crc("votecast-incarnation v1\nincarnation=4294967296\n"),
    )
    .unwrap();
    let err = data.bump_incarnation(0, 1).unwrap_err();
    assert!(matches!(err, PersistError::Corrupt { .. }), "{err}");
}

#[test]
fn damaged_files_are_errors_that_name_the_file() {
    let good = "votecast-epochs v1\naccepted_epoch=3\naccepted_leader=2\ncurrent_epoch=3\n";
    let good_file = with_crc(good);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty"),
        ("garbage", b"\x00\xff\xfe garbage \x01".to_vec(), "not text"),
        ("text garbage", b"hello world\n".to_vec(), "wrong header"),
        (
            "wrong header",
            with_crc(&good.replace("v1", "v2")).into_bytes(),
            "wrong header",
        ),
        (
            "bad crc",
            good_file
                .replace("accepted_epoch=3", "accepted_epoch=4")
                .into_bytes(),
            "checksum mismatch",
        ),
        (
            "truncated mid-line",
            good_file.as_bytes()[..good_file.len() - 3].to_vec(),
            "truncated",
        ),
        (
            "truncated at a line end",
            good.as_bytes()[..good.len()].to_vec(),
            "truncated",
        ),
        ("header only", b"votecast-epochs v1\n".to_vec(), "truncated"),
        (
            "non-numeric value",
            with_crc(&good.replace("current_epoch=3", "current_epoch=x3")).into_bytes(),
            "current_epoch value",
        ),
        (
            "negative value",
            with_crc(&good.replace("current_epoch=3", "current_epoch=-3")).into_bytes(),
            "not a non-negative integer",
        ),
        (
            "plus sign",
            with_crc(&good.replace("current_epoch=3", "current_epoch=+3")).into_bytes(),
            "not a non-negative integer",
        ),
        (
            "overflowing value",
            with_crc(&good.replace("current_epoch=3", "current_epoch=18446744073709551616"))
                .into_bytes(),
            "not a non-negative integer",
        ),
        (
            "wrong key",
            with_crc(&good.replace("accepted_leader", "leader")).into_bytes(),
            "line 3",
        ),
        (
            "missing line",
            with_crc(&good.replace("accepted_leader=2\n", "")).into_bytes(),
            "expected 3 value line(s)",
        ),
        (
            "bad crc digits",
            good_file.replace("crc32=", "crc32=zz").into_bytes(),
            "8 hex digits",
        ),
        ("huge", vec![b'a'; 10_000], "larger than"),
    ];
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let data = DataDir::open(tmp.path()).unwrap();
    let path = tmp.path().join("epochs");
    for (what, content, fragment) in cases {
        std::fs::write(&path, &content).unwrap();
        // At start (the node stops before its first frame) and on a later read.
        for err in [
            DataDir::open(tmp.path()).unwrap_err(),
            data.load_epochs().unwrap_err(),
        ] {
            let msg = err.to_string();
            assert!(matches!(err, PersistError::Corrupt { .. }), "{what}: {msg}");
            assert_eq!(err.path(), path, "{what}");
            assert!(msg.contains(&path.display().to_string()), "{what}: {msg}");
            assert!(msg.contains(fragment), "{what}: {msg}");
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            content,
            "{what}: left as it was"
        );
    }
    std::fs::write(&path, &good_file).unwrap();
    assert_eq!(data.load_epochs().unwrap().accepted_leader, 2);
}

#[test]
fn stale_tmp_is_removed_on_open_and_not_read() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    std::fs::create_dir_all(tmp.path()).unwrap();
    std::fs::write(tmp.path().join("epochs.tmp"), "half a fi").unwrap();
    let data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.load_epochs().unwrap(), Epochs::default());
    assert_eq!(
        names_in(tmp.path()),
        vec!["epochs"],
        "a fresh file of zeros"
    );
}

#[test]
fn open_fails_on_a_file() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    std::fs::create_dir_all(tmp.path()).unwrap();
    let file = tmp.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let err = DataDir::open(&file).unwrap_err();
    assert!(err.to_string().contains("plain"), "{err}");
}

#[test]
fn an_unusable_epochs_path_is_an_error_that_names_it_and_leaves_no_tmp() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    std::fs::create_dir_all(tmp.path().join("epochs")).unwrap();
    std::fs::write(tmp.path().join("epochs/x"), "x").unwrap();
    let err = DataDir::open(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("epochs"), "{err}");
    assert!(!tmp.path().join("epochs.tmp").exists());
}

fn epochs(n: u64) -> Epochs {
    Epochs {
        accepted_epoch: n,
        accepted_leader: 2,
        current_epoch: n - 1,
    }
}

/// Rewrites the bytes of `slot` in the file as a write torn after `keep` bytes left
/// them: the first `keep` bytes of `new`, then what was there (`from_end`: the last
/// `keep` bytes of `new`, before them what was there).
fn tear(path: &Path, slot: usize, new: &Epochs, sequence: u64, keep: usize, from_end: bool) {
    let mut bytes = std::fs::read(path).unwrap();
    let record = slots::Record {
        sequence,
        epochs: *new,
    }
    .encode();
    let at = slot * slots::SLOT_LEN;
    let range = if from_end {
        slots::RECORD_LEN - keep..slots::RECORD_LEN
    } else {
        0..keep
    };
    for i in range {
        bytes[at + i] = record[i];
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_torn_write_of_either_slot_keeps_the_previous_value() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let path = tmp.path().join("epochs");
    // Slot A holds sequence 2 (epochs 4), slot B sequence 3 (epochs 5).
    let mut data = DataDir::open(tmp.path()).unwrap();
    data.store_epochs(&epochs(4)).unwrap();
    data.store_epochs(&epochs(5)).unwrap();
    drop(data);
    let clean = std::fs::read(&path).unwrap();
    // The next store (sequence 4, epochs 6) goes to slot A; then one (5) to slot B.
    for (slot, sequence, previous) in [(0, 4, epochs(5)), (1, 5, epochs(4))] {
        for keep in 1..slots::RECORD_LEN {
            for from_end in [false, true] {
                std::fs::write(&path, &clean).unwrap();
                if slot == 1 {
                    // Slot A got sequence 4 (epochs 6) whole; then the store of 5 to B tore.
                    tear(&path, 0, &epochs(6), 4, slots::RECORD_LEN, false);
                }
                tear(&path, slot, &epochs(7), sequence, keep, from_end);
                // Bytes the old and the new record share (the magic, the leader) need not
                // be written: a tear that leaves the whole new record is a complete write.
                let at = slot * slots::SLOT_LEN;
                let whole = std::fs::read(&path).unwrap()[at..at + slots::RECORD_LEN]
                    == slots::Record {
                        sequence,
                        epochs: epochs(7),
                    }
                    .encode();
                let data = DataDir::open(tmp.path()).unwrap();
                let expected = match (whole, slot) {
                    (true, _) => epochs(7),
                    (false, 1) => epochs(6),
                    (false, _) => previous,
                };
                assert_eq!(
                    data.load_epochs().unwrap(),
                    expected,
                    "slot {slot}, {keep} bytes kept, from the end: {from_end}"
                );
            }
        }
    }
    // Torn or not, writing goes on from the value read, and the file stays readable.
    std::fs::write(&path, &clean).unwrap();
    tear(&path, 0, &epochs(6), 4, 10, false);
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.load_epochs().unwrap(), epochs(5));
    data.store_epochs(&epochs(8)).unwrap();
    drop(data);
    assert_eq!(
        DataDir::open(tmp.path()).unwrap().load_epochs().unwrap(),
        epochs(8)
    );
}

#[test]
fn both_slots_damaged_is_an_error_that_names_the_file_and_keeps_it() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let path = tmp.path().join("epochs");
    let mut data = DataDir::open(tmp.path()).unwrap();
    data.store_epochs(&epochs(4)).unwrap();
    drop(data);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0xff;
    bytes[512 + 3] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = DataDir::open(tmp.path()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, PersistError::Corrupt { .. }), "{msg}");
    assert_eq!(err.path(), path);
    assert!(msg.contains("both slots are damaged"), "{msg}");
    assert!(msg.contains("never resets"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "never reset");
    // A two-slot file cut short is damage too, not a text file.
    std::fs::write(&path, &bytes[..700]).unwrap();
    let msg = DataDir::open(tmp.path()).unwrap_err().to_string();
    assert!(msg.contains("must be 1024 bytes, found 700"), "{msg}");
}

#[test]
fn a_version_1_text_file_is_migrated_with_its_values() {
    let tmp = TempDir::new("votecast-persist-test").unwrap();
    let path = tmp.path().join("epochs");
    let v1 = with_crc("votecast-epochs v1\naccepted_epoch=9\naccepted_leader=3\ncurrent_epoch=8\n");
    std::fs::write(&path, &v1).unwrap();
    let expected = Epochs {
        accepted_epoch: 9,
        accepted_leader: 3,
        current_epoch: 8,
    };
    let mut data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.load_epochs().unwrap(), expected);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 1024, "converted at open");
    assert_eq!(slots::newest(&bytes).unwrap().epochs, expected);
    assert_eq!(names_in(tmp.path()), vec!["epochs"], "no temporary left");
    // From then on the in-place writes; a reopen reads them.
    data.store_epochs(&epochs(10)).unwrap();
    drop(data);
    let data = DataDir::open(tmp.path()).unwrap();
    assert_eq!(data.load_epochs().unwrap(), epochs(10));
    // A damaged version-1 file is not converted: the error names it.
    std::fs::write(&path, v1.replace("accepted_epoch=9", "accepted_epoch=1")).unwrap();
    let msg = DataDir::open(tmp.path()).unwrap_err().to_string();
    assert!(msg.contains("checksum mismatch"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
}
