//! Test support shared by the integration tests (`tests/`) and the fuzz targets (`fuzz/`).
//!
//! Dev-only (never published, never linked into the daemon); it depends on `votecast-core`
//! alone, so the fuzz crate builds without the daemon's dependencies.
//!
//! - [`rng`]: the one seeded generator of every test schedule ([`rng::Rng`], SplitMix64).
//! - [`clock`]: a node's local clock (origin and rate error) and its inverse.
//! - [`invariants`]: the election invariants, checked after every input of every node; the
//!   simulator and the `core_sequence` fuzz harness both feed it.
//! - [`sim`]: the deterministic multi-node simulator (virtual time, lossy multicast,
//!   partitions, crashes, and the faults of [`sim::faults`]).
//! - [`fuzz`]: the checks behind the fuzz targets, replayed on stable by the `sim` test binary.
//!
//! Temporary directories come from `votecast::cluster::TempDir`, the process-cluster
//! helper's own, so tests need no second one.

pub mod clock;
pub mod fuzz;
pub mod invariants;
pub mod rng;
pub mod sim;
