//! The checks behind the votecast fuzz targets, shared with `tests/fuzz_corpus.rs` (which
//! includes these files with `#[path]` and replays the committed corpus on stable Rust).
//!
//! - [`wire_check`]: arbitrary bytes into the frame parser; accepted frames must re-emit
//!   byte-exactly, rejected ones must be rejected for the right reason.
//! - [`core_sequence`]: a structured sequence of steps (frames, time, zxid, shutdown,
//!   crash, restart) for a few election cores, with invariants checked after every step.

pub mod core_sequence;
pub mod wire_check;
