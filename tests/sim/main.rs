//! The election core in-process: one test binary, so the simulator and the fuzz harnesses
//! (`votecast_testkit`) are compiled once. One module per suite:
//!
//! - `fle_rules`: one FastLeaderElection rule per test, a single [`Node`] driven by hand;
//! - `scenarios`: named election scenarios in the deterministic simulator;
//! - `randomized`: seeded random fault schedules (`VOTECAST_SIM_SEEDS`, `VOTECAST_SIM_SEED`);
//! - `health`: health checks: unhealthy nodes vote but are never elected, stand-downs;
//! - `hostile`: forged, tampered and replayed frames, twins and floods, in the simulator;
//! - `scale_sim`: election time and frame counts for 3 to 64 voters (`VOTECAST_SCALE_SEEDS`);
//! - `fuzz_corpus`: the fuzz targets' committed corpora, replayed on stable;
//! - `fuzz_steps`: hand-written `core_sequence` scenarios for the fault steps, and random
//!   scenarios for a bounded time (`VOTECAST_FUZZ_SECONDS`, `VOTECAST_FUZZ_SEED`).
//!
//! Run one suite with a path filter, e.g. `cargo test --test sim scenarios::`.
//!
//! [`Node`]: votecast_core::election::Node

mod faults;
mod fle_rules;
mod fuzz_corpus;
mod fuzz_steps;
mod health;
mod hostile;
mod randomized;
mod scale_sim;
mod scenarios;
