//! systemd's notification protocol (`sd_notify(3)`): readiness, status, watchdog, reload
//! and stop messages to the socket in `NOTIFY_SOCKET`.
//!
//! This module owns the socket and the message format; when each message is due is the
//! driver's (see `announce`). The protocol is one datagram of `KEY=VALUE` lines per
//! message to a unix datagram socket (a path, or an abstract name written `@name`).
//!
//! Written here, not with the `sd-notify` crate: the crate opens a blocking socket and
//! formats into a new `String` on every call, and a blocking send waits whenever the
//! receiver's queue is full (a busy or stopped service manager), which the event loop
//! must never do. This sender has one non-blocking socket and one buffer for the life of
//! the process: a message that cannot be sent at once is dropped, counted and logged at
//! most every 10 s. The next status or watchdog message carries the news again.

use std::ffi::OsStr;
use std::fmt::{self, Write as _};
use std::io;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

use crate::logging::{RateLimit, WARN_EVERY};

/// Room for the longest message (a status line with two 20-digit numbers).
const MESSAGE_CAPACITY: usize = 256;

/// The service manager's side of the environment, as read at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyEnv<'a> {
    /// `NOTIFY_SOCKET`.
    pub socket: Option<&'a OsStr>,
    /// `WATCHDOG_USEC`.
    pub watchdog_usec: Option<&'a OsStr>,
    /// `WATCHDOG_PID`: the watchdog is meant for this process only if it is absent or ours.
    pub watchdog_pid: Option<&'a OsStr>,
}

/// A sender of notifications to the service manager.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    buf: String,
    /// How often the watchdog wants to hear from us: half of `WATCHDOG_USEC`, as
    /// `sd_watchdog_enabled(3)` recommends. `None`: no watchdog.
    watchdog: Option<Duration>,
    /// Messages that could not be sent.
    pub failures: u64,
    warn: RateLimit,
}

impl Notifier {
    /// A notifier for `env` if `NOTIFY_SOCKET` is set; a value it cannot use is logged
    /// and ignored (the daemon runs on without notifying, as outside systemd).
    pub fn new(env: &NotifyEnv<'_>) -> Option<Notifier> {
        let path = env.socket?;
        let bytes = path.as_bytes();
        let addr = match bytes.split_first() {
            Some((b'@', name)) => SocketAddr::from_abstract_name(name),
            Some((b'/', _)) => SocketAddr::from_pathname(path),
            _ => Err(io::Error::other("neither an absolute path nor @name")),
        };
        let opened = addr.and_then(|addr| {
            let socket = UnixDatagram::unbound()?;
            socket.set_nonblocking(true)?;
            Ok((socket, addr))
        });
        let (socket, addr) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                log::warn!(
                    "NOTIFY_SOCKET={}: {e}; not notifying the service manager",
                    path.to_string_lossy()
                );
                return None;
            }
        };
        Some(Notifier {
            socket,
            addr,
            buf: String::with_capacity(MESSAGE_CAPACITY),
            watchdog: watchdog_interval(env),
            failures: 0,
            warn: RateLimit::new(WARN_EVERY),
        })
    }

    /// How often to send `WATCHDOG=1`, if the service manager watches this process.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `READY=1` with the first status.
    pub fn ready(&mut self, status: &Status) {
        self.send(format_args!("READY=1\nSTATUS={status}\n"));
    }

    /// `STATUS=` after a change of state, leader or epoch.
    pub fn status(&mut self, status: &Status) {
        self.send(format_args!("STATUS={status}\n"));
    }

    /// `WATCHDOG=1`: the event loop is alive.
    pub fn watchdog_alive(&mut self) {
        self.send(format_args!("WATCHDOG=1\n"));
    }

    /// `RELOADING=1` with the monotonic time, as systemd 253 and later require of a
    /// reload (older ones ignore the time).
    pub fn reloading(&mut self) {
        let usec = clock_gettime(ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or(0);
        self.send(format_args!(
            "RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading\n"
        ));
    }

    /// `READY=1` after a reload, with the status again (the reload message replaced it).
    pub fn reloaded(&mut self, status: &Status) {
        self.ready(status);
    }

    /// `STOPPING=1`: the graceful handover has begun.
    pub fn stopping(&mut self) {
        self.send(format_args!("STOPPING=1\nSTATUS=stopping: handing over\n"));
    }

    /// Sends one message without waiting; a failure is counted and logged (rate-limited).
    fn send(&mut self, message: fmt::Arguments<'_>) {
        self.buf.clear();
        let sent = match self.buf.write_fmt(message) {
            Err(_) => Err(io::Error::other("cannot format the message")),
            Ok(()) => self.socket.send_to_addr(self.buf.as_bytes(), &self.addr),
        };
        if let Err(e) = sent {
            self.failures += 1;
            if let Some(suppressed) = self.warn.allow(Instant::now()) {
                log::warn!(
                    "cannot notify the service manager ({} failures so far): {e}{suppressed}",
                    self.failures
                );
            }
        }
    }
}

/// Half of `WATCHDOG_USEC` when the watchdog is meant for this process.
fn watchdog_interval(env: &NotifyEnv<'_>) -> Option<Duration> {
    let number = |v: &OsStr| v.to_str().and_then(|s| s.parse::<u64>().ok());
    if let Some(pid) = env.watchdog_pid {
        if number(pid) != Some(u64::from(std::process::id())) {
            return None;
        }
    }
    let raw = env.watchdog_usec?;
    match number(raw).filter(|&usec| usec > 0) {
        Some(usec) => Some(Duration::from_micros(usec) / 2),
        None => {
            log::warn!(
                "WATCHDOG_USEC={}: not a positive number of microseconds; no watchdog",
                raw.to_string_lossy()
            );
            None
        }
    }
}

/// The status line: what `systemctl status` shows, e.g. `LEADING leader=2 epoch=4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub state: &'static str,
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} leader={} epoch={}",
            self.state,
            super::OptionDisplay(self.leader),
            super::OptionDisplay(self.epoch)
        )
    }
}

#[cfg(test)]
mod tests;
