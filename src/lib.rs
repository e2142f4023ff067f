//! votecast, the daemon: runs the `votecast-core` protocol over UDP multicast and publishes
//! what it decides (state file, hooks, status).
//!
//! Dependencies point one way: everything here uses [`votecast_core`]; the core knows
//! nothing of this crate.
//! - [`driver`]: the mio event loop, the only code that reads the clock and touches the
//!   socket while running; beside it the socket setup, the `--zxid-file` reader and the
//!   state-file refresh rule.
//! - [`daemon`]: the command line, the `run` settings (one table, checked in one place),
//!   [`daemon::DaemonError`], durable epochs, the state file, hooks, `votecast status`.
//! - [`duration`]: durations as written on the command line (`50ms`), for the settings
//!   and the bench.
//! - [`logging`]: the daemon's logger (a bounded queue and a writer thread: the loop never
//!   waits for stderr) and [`logging::RateLimit`] for repeated warnings.
//! - [`cluster`], [`demo`], [`bench`](mod@bench): local multi-process clusters for the
//!   demo, the benchmark and the tests.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cluster;
pub mod daemon;
pub mod demo;
pub mod driver;
pub mod duration;
pub mod logging;
pub mod netlink;
pub mod vip;

/// `println!` that never panics: a closed or full stdout loses the line instead of
/// aborting the command (its exit status still tells), like the daemon's own output.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see [`outln!`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
