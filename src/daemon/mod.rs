//! The daemon's support layer: everything that touches files, processes and the clock
//! outside the event loop.
//!
//! - [`atomic_file`]: replacing a file as a whole (temporary file and rename), for the
//!   state file and the metrics file.
//! - [`check_config`]: `votecast check-config` (the interface check, the effective
//!   settings).
//! - [`cli`]: the command line (clap definitions, [`cli::parse_command_line`]).
//! - [`settings`]: the `run` settings: flags over the `--config` file over the core's
//!   defaults, checked in one place.
//! - [`error`]: [`DaemonError`], every failure above the core, and its exit status.
//! - [`persist`]: the durable epochs and incarnation counter in `--data-dir`.
//! - [`state_file`]: the live `--state-file` (writer and reader) and the JSON string
//!   escaper.
//! - [`hooks`]: the `--on-change` hook worker.
//! - [`manual`]: the man pages and shell completions, generated from [`cli`].
//! - [`metrics`]: the `--metrics-file` (Prometheus text format) and its encoder.
//! - [`status`]: `votecast status`.
//! - [`track`]: the health checks (`--track`, `--track-interface`) on threads of their
//!   own; the loop reads their verdict.
//!
//! The pieces the event loop calls while running ([`persist::DataDir::store_epochs`],
//! [`state_file::StateFileWriter::write`], [`hooks::HookRunner::notify`]) do not allocate on
//! their success paths; everything else runs at start-up, at shutdown or on its own thread.

pub mod atomic_file;
pub mod check_config;
pub mod cli;
pub mod error;
pub mod file_publisher;
pub mod hooks;
pub mod manual;
pub mod metrics;
pub mod persist;
pub mod settings;
pub mod state_file;
pub mod status;
pub mod track;

pub use self::error::DaemonError;

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
