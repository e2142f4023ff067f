//! The daemon's support layer.
//!
//! This layer owns everything that touches files, processes and the clock outside the
//! event loop: parsing the command line and the `--config` file ([`config`]), the durable
//! epochs and incarnation counter in `--data-dir` ([`persist`]), the live `--state-file`
//! ([`state_file`]), the `--on-change` hook worker ([`hooks`]) and `votecast status`
//! ([`status`]).
//!
//! The pieces the event loop calls while running ([`persist::DataDir::store_epochs`],
//! [`state_file::StateFileWriter::write`], [`hooks::HookRunner::notify`]) do not allocate on
//! their success paths; everything else runs at start-up, at shutdown or on its own thread.

pub mod config;
pub mod hooks;
pub mod persist;
pub mod state_file;
pub mod status;

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
///
/// Used for the `updated_unix_ms` / `valid_until_unix_ms` fields of the state file, which
/// are read by other processes; the election itself runs on a monotonic clock.
pub fn unix_now_ms() -> u64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
        Err(_) => 0,
    }
}
