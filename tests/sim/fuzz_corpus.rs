//! The fuzz targets' corpora, replayed as regular tests on stable Rust.
//!
//! `fuzz/` holds two cargo-fuzz targets (nightly + libFuzzer): `wire_parse` (arbitrary
//! bytes into the frame codec) and `core_sequence` (arbitrary step sequences for a few
//! election cores). Their checks live in `votecast_testkit::fuzz`, so the same assertions
//! run here on every input the fuzzers kept in `fuzz/corpus/<target>`
//! (inputs that reached new code) — and on any crash reproducer, which goes into the same
//! directory once the bug is fixed.
//!
//! `arbitrary` picks an enum variant by scaling a `u32` by the variant count, so a new
//! `Step` variant changes what every corpus file decodes to. Before such a change, decode
//! the corpus and write it back through `core_sequence::encode` with the new count (as
//! was done when the fault steps were added: the re-encoded corpus replayed exactly the
//! same steps, frames and leaderships as before).

use std::fs;
use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};

use votecast_testkit::fuzz::{core_sequence, wire_check};

/// Every file of `fuzz/corpus/<target>`, sorted, with its bytes.
fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            (path, bytes)
        })
        .collect()
}

/// Run `check` on one input; on a panic, name the file to rerun it with
/// `cargo +nightly fuzz run <target> <file>` before passing the panic on.
fn replay(path: &Path, check: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
        eprintln!("fuzz corpus input failed: {}", path.display());
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn wire_parse_corpus_replays_clean() {
    let inputs = corpus("wire_parse");
    assert!(!inputs.is_empty(), "the wire_parse corpus is empty");
    let mut accepted = 0;
    for (path, bytes) in &inputs {
        replay(path, || wire_check::check_input(bytes));
        if votecast_core::wire::parse_datagram(bytes, wire_check::CLUSTER).is_ok() {
            accepted += 1;
        }
    }
    println!(
        "wire_parse: {} inputs replayed, {accepted} parse as frames",
        inputs.len()
    );
}

/// `VOTECAST_FUZZ_INPUT=<file>` replays that one core_sequence input instead of the
/// corpus (with `VOTECAST_FUZZ_TRACE=1`, every step, frame and event is printed).
#[test]
fn core_sequence_corpus_replays_clean() {
    let inputs = match std::env::var_os("VOTECAST_FUZZ_INPUT") {
        Some(path) => {
            let path = PathBuf::from(path);
            let bytes = fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            vec![(path, bytes)]
        }
        None => corpus("core_sequence"),
    };
    let mut decoded = 0usize;
    let mut total = core_sequence::Outcome::default();
    for (path, bytes) in &inputs {
        // As libfuzzer-sys does for a typed target: inputs that do not decode are skipped.
        let Ok(scenario) = core_sequence::Scenario::arbitrary_take_rest(Unstructured::new(bytes))
        else {
            continue;
        };
        decoded += 1;
        replay(path, || {
            let outcome = core_sequence::run(&scenario);
            total.steps += outcome.steps;
            total.leaderships += outcome.leaderships;
            total.frames_delivered += outcome.frames_delivered;
            total.frames_rejected += outcome.frames_rejected;
            total.wipes += outcome.wipes;
            total.memory_starts += outcome.memory_starts;
            total.stale_inputs += outcome.stale_inputs;
        });
    }
    println!(
        "core_sequence: {decoded} of {} inputs replayed: {} steps, {} frames delivered ({} rejected), {} leaderships, {} wipes, {} memory-only starts, {} stale inputs",
        inputs.len(),
        total.steps,
        total.frames_delivered,
        total.frames_rejected,
        total.leaderships,
        total.wipes,
        total.memory_starts,
        total.stale_inputs
    );
    // The replay is not vacuous: the corpus decodes (a changed `Scenario` type would make
    // most of it undecodable, and the corpus should then be regenerated) and it drives
    // the cores through elections.
    assert!(
        decoded * 10 >= inputs.len() * 9,
        "only {decoded} of {} corpus inputs decode as a Scenario",
        inputs.len()
    );
    assert!(total.leaderships > 0, "no corpus input elects a leader");
    assert!(
        total.frames_rejected > 0,
        "no corpus input sends a bad frame"
    );
    if std::env::var_os("VOTECAST_FUZZ_INPUT").is_none() {
        assert!(
            total.wipes > 0 && total.memory_starts > 0 && total.stale_inputs > 0,
            "the corpus does not reach the fault steps: {total:?}"
        );
    }
}
