//! The signals the daemon handles, and what each one asks for.
//!
//! - SIGHUP: reload the key file and re-read the zxid file (a failed reload keeps the old
//!   keys and says why);
//! - SIGUSR1: log the node's state and counters;
//! - every other signal whose default action ends the process and that can be caught
//!   without hiding a fault of the process itself: resign gracefully and exit 0, exactly
//!   like SIGTERM. Left out: SIGKILL and SIGSTOP (cannot be caught), SIGSEGV, SIGBUS,
//!   SIGILL, SIGFPE, SIGTRAP, SIGSYS and SIGABRT (they report a fault of this process, and
//!   returning from a handler would only repeat it), SIGPIPE (ignored by the Rust runtime:
//!   a closed pipe is an error return instead).

use nix::sys::signal::Signal;
use signal_hook::consts::{
    SIGALRM, SIGHUP, SIGINT, SIGIO, SIGPROF, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGVTALRM,
    SIGXCPU, SIGXFSZ,
};

/// Signals that end the daemon after a graceful resign.
pub const TERMINATE: [i32; 12] = [
    SIGTERM,
    SIGINT,
    SIGQUIT,
    SIGUSR2,
    SIGALRM,
    SIGVTALRM,
    SIGPROF,
    SIGXCPU,
    SIGXFSZ,
    SIGIO,
    Signal::SIGPWR as i32,
    Signal::SIGSTKFLT as i32,
];

/// Every signal the daemon registers.
pub fn handled() -> impl Iterator<Item = i32> {
    TERMINATE.into_iter().chain([SIGHUP, SIGUSR1])
}

/// What the signals received in one turn of the loop ask for.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Requests {
    /// The first terminating signal received.
    pub terminate: Option<i32>,
    pub reload: bool,
    pub report: bool,
}

impl Requests {
    /// Adds one received signal.
    pub fn add(&mut self, signal: i32) {
        match signal {
            SIGHUP => self.reload = true,
            SIGUSR1 => self.report = true,
            s if TERMINATE.contains(&s) => {
                self.terminate.get_or_insert(s);
            }
            _ => {}
        }
    }
}

/// `SIGTERM` etc., for the log.
pub fn name(signal: i32) -> &'static str {
    Signal::try_from(signal).map_or("signal", Signal::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catchable_terminating_signal_resigns() {
        let mut r = Requests::default();
        for s in [SIGUSR1, SIGHUP] {
            r.add(s);
        }
        assert_eq!(r.terminate, None);
        assert!(r.reload && r.report);
        r.add(SIGQUIT);
        r.add(SIGTERM);
        assert_eq!(r.terminate, Some(SIGQUIT), "the first one is kept");
        assert_eq!(name(SIGQUIT), "SIGQUIT");
        // Registering them all is allowed (none is forbidden by signal-hook).
        for s in handled() {
            assert!(!signal_hook::consts::FORBIDDEN.contains(&s), "{s}");
        }
        assert_eq!(handled().count(), 14);
    }
}
