//! votecast: ZooKeeper's FastLeaderElection over fixed-size UDP multicast frames.
//!
//! Layers, with dependencies pointing one way:
//! - [`wire`]: the frame format (byte layout, parse/emit, CRC). No state, no I/O.
//! - [`election`]: the sans-IO protocol core. Takes frames, timeouts and commands at an
//!   explicit `now`; returns frames to send, events, persistence requests and its next deadline.
//! - the daemon (driver, config, persistence, hooks): the only code that reads the clock or
//!   touches sockets and files.
//! - [`rng`]: the seedable SplitMix64 generator the core, the bench and the tests share.
#![forbid(unsafe_code)]

pub mod auth;
pub mod bench;
pub mod cluster;
pub mod daemon;
pub mod demo;
pub mod driver;
pub mod election;
pub mod rng;
pub mod wire;
