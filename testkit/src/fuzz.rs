//! The checks behind the fuzz targets in `fuzz/`. They live here, not in the fuzz crate,
//! so that the `sim` test binary (`tests/sim/`) replays the committed corpora through the same code on stable
//! Rust, and so that the election harness shares [`crate::invariants`] with the simulator.
//!
//! - [`wire_check`]: arbitrary bytes into the frame parser; accepted frames must re-emit
//!   byte-exactly, rejected ones must be rejected for the right reason.
//! - [`core_sequence`]: a structured sequence of steps (frames, time, zxid, shutdown,
//!   crash, restart) for a few election cores, with the invariants checked after every step.

pub mod core_sequence;
pub mod wire_check;
