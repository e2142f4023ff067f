//! votecast-core: ZooKeeper's FastLeaderElection with epochs and leases, over fixed-size
//! authenticated frames, as a sans-IO library.
//!
//! Layers, with dependencies pointing one way (`election` → `auth` → `wire`; `rng` is a
//! leaf):
//! - [`wire`]: the frame format (byte layout, parse/emit, CRC). No state, no I/O.
//! - [`auth`]: signs and verifies one frame with the shared keys; parses key-file text.
//! - [`election`]: the protocol state machine. Takes frames, timeouts and commands at an
//!   explicit `now`; returns frames to send, events, persistence requests and its next
//!   deadline.
//! - [`rng`]: the seedable SplitMix64 generator the core, the bench and the tests share.
//!
//! The crate is `no_std` and never allocates: it reads no clock, opens no socket or file
//! and takes its randomness as input, so the same code runs in the daemon, the simulator
//! and the fuzzers, and can later run on targets without an operating system.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod auth;
pub mod election;
pub mod rng;
pub mod wire;
