//! What the daemon tells the outside world besides the state file and the hooks, and
//! when: systemd's notifications ([`notify`](super::notify)) and the `--metrics-file`
//! ([`metrics`](crate::daemon::metrics)).
//!
//! The rules:
//! - `READY=1` once the socket is joined and the first state is written; `STATUS=` on
//!   every change of the published state, leader or epoch; `RELOADING=1` and `READY=1`
//!   around a SIGHUP reload; `STOPPING=1` when the graceful handover begins (no status
//!   after it: the stop is what `systemctl status` should show).
//! - `WATCHDOG=1` every half `WATCHDOG_USEC`, sent from the event loop's own turn, never
//!   from another thread: a loop that hangs stops petting, and systemd restarts it.
//! - The metrics file is rewritten on every change and at least once a second.
//! - Both schedules are deadlines the loop waits for ([`Announcer::next_due`]) together
//!   with its own, so they add no wake-ups while the tick is shorter than them.

use std::time::Duration;

use votecast_core::election::{Instant, Node};

use super::clock::Now;
use super::notify::{Notifier, NotifyEnv, Status};
use super::NodeIo;
use crate::daemon::metrics::{Metrics, MetricsWriter};
use crate::daemon::settings::RunSettings;
use crate::logging::{RateLimit, WARN_EVERY};

/// Longest gap between two writes of the metrics file.
pub const METRICS_REFRESH: Duration = Duration::from_secs(1);

/// The notifier, the metrics writer and their schedules.
#[derive(Debug)]
pub(super) struct Announcer {
    notifier: Option<Notifier>,
    metrics: Option<MetricsWriter>,
    start_time_seconds: f64,
    /// The status last sent (`None`: not ready yet).
    status: Option<Status>,
    /// The handover has begun: no more status lines.
    stopping: bool,
    next_watchdog: Option<Instant>,
    next_metrics: Option<Instant>,
    metrics_warn: RateLimit,
}

impl Announcer {
    /// Whether the metrics file (if any) holds the last metrics written.
    pub(super) fn metrics_caught_up(&self) -> bool {
        self.metrics.as_ref().is_none_or(MetricsWriter::caught_up)
    }

    /// From the settings and the environment the service manager gave; `started` is when
    /// the daemon started.
    pub(super) fn new(settings: &RunSettings, started: Now) -> Announcer {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let watchdog_usec = std::env::var_os("WATCHDOG_USEC");
        let watchdog_pid = std::env::var_os("WATCHDOG_PID");
        let notifier = Notifier::new(&NotifyEnv {
            socket: socket.as_deref(),
            watchdog_usec: watchdog_usec.as_deref(),
            watchdog_pid: watchdog_pid.as_deref(),
        });
        if let Some(n) = &notifier {
            match n.watchdog() {
                Some(every) => log::info!("systemd: notifying; watchdog every {every:?}"),
                None => log::info!("systemd: notifying; no watchdog"),
            }
        }
        Announcer {
            next_watchdog: notifier
                .as_ref()
                .and_then(|n| n.watchdog())
                .map(|_| started.core),
            notifier,
            metrics: settings.metrics_file.clone().map(MetricsWriter::new),
            start_time_seconds: started.unix_ms as f64 / 1000.0,
            status: None,
            stopping: false,
            next_metrics: None,
            metrics_warn: RateLimit::new(WARN_EVERY),
        }
    }

    /// The earliest moment something is due (the loop waits at most until then).
    pub(super) fn next_due(&self) -> Option<Instant> {
        match (self.next_watchdog, self.next_metrics) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// SIGHUP: a reload begins.
    pub(super) fn reloading(&mut self) {
        if let Some(n) = self.notifier.as_mut() {
            n.reloading();
        }
    }

    /// The graceful handover begins.
    pub(super) fn stopping(&mut self) {
        self.stopping = true;
        if let Some(n) = self.notifier.as_mut() {
            n.stopping();
        }
    }

    /// Pets the watchdog if it is due at `now`.
    fn watchdog_due(&mut self, now: Instant) {
        let (Some(n), Some(due)) = (self.notifier.as_mut(), self.next_watchdog) else {
            return;
        };
        if now >= due {
            n.watchdog_alive();
            // From now, not from `due`: after a stall, one message, not a burst.
            self.next_watchdog = n.watchdog().map(|every| now + every);
        }
    }

    /// Whether the metrics file (it carries the lease's remaining time) is written.
    pub(super) fn publishes_leases(&self) -> bool {
        self.metrics.is_some()
    }
}

impl NodeIo {
    /// Once the socket is joined and the first state written: `READY=1` and the metrics.
    pub(super) fn announce_ready(&mut self, node: &Node) {
        let status = self.status_of(node);
        self.announce.status = Some(status);
        if let Some(n) = self.announce.notifier.as_mut() {
            n.ready(&status);
        }
        self.write_metrics(node);
    }

    /// After a reload: `READY=1` with the current status.
    pub(super) fn announce_reloaded(&mut self, node: &Node) {
        let status = self.status_of(node);
        self.announce.status = Some(status);
        if let Some(n) = self.announce.notifier.as_mut() {
            n.reloaded(&status);
        }
    }

    /// After a change: the status (if it changed) and the metrics.
    pub(super) fn announce_change(&mut self, node: &Node) {
        if self.announce.notifier.is_some() && !self.announce.stopping {
            let status = self.status_of(node);
            // Before READY nothing is sent; READY carries the status then.
            if self.announce.status.is_some_and(|last| last != status) {
                self.announce.status = Some(status);
                if let Some(n) = self.announce.notifier.as_mut() {
                    n.status(&status);
                }
            }
        }
        self.write_metrics(node);
    }

    /// Every turn of the loop: the watchdog and the metrics refresh, when due.
    pub(super) fn announce_due(&mut self, node: &Node) {
        let now = self.now();
        self.announce.watchdog_due(now);
        if self.announce.next_metrics.is_some_and(|due| now >= due) {
            self.write_metrics(node);
        }
    }

    /// The published state, leader and epoch.
    fn status_of(&mut self, node: &Node) -> Status {
        let s = self.publication(node).snapshot;
        Status {
            state: s.state,
            leader: s.leader,
            epoch: s.epoch,
        }
    }

    fn write_metrics(&mut self, node: &Node) {
        if self.announce.metrics.is_none() {
            return;
        }
        let p = self.publication(node);
        let now = self.now();
        let stats = node.stats();
        let m = Metrics {
            id: p.snapshot.id,
            state: p.snapshot.state,
            leader: p.snapshot.leader,
            epoch: p.snapshot.epoch,
            round: p.snapshot.round,
            zxid: p.snapshot.zxid,
            lease_remaining_seconds: p.valid_until.map_or(0.0, |until| {
                until.saturating_duration_since(now).as_secs_f64()
            }),
            last_election_seconds: p.snapshot.last_election_ms.map(|ms| ms / 1000.0),
            duplicate_id: p.snapshot.duplicate_id,
            core: stats,
            sends_dropped: self.stats.sends_dropped,
            send_errors: self.stats.send_errors,
            hooks: self.hooks.as_ref().map(|h| h.counters()),
            start_time_seconds: self.announce.start_time_seconds,
            peers_heard: Some(
                node.heard(now).count() as u64 + u64::from(node.config().is_voter(node.id())),
            ),
            healthy: self.tracker.as_ref().map(|t| t.healthy()),
            // Filled in by the features that know them.
            vip_held: self.vip_held(),
        };
        self.announce.next_metrics = Some(now + METRICS_REFRESH);
        let Some(writer) = self.announce.metrics.as_mut() else {
            return;
        };
        match writer.write(&m) {
            Ok(()) => {
                self.announce.metrics_warn.reset();
            }
            Err(e) => {
                if let Some(suppressed) =
                    self.announce.metrics_warn.allow(std::time::Instant::now())
                {
                    log::warn!("metrics file {}: {e}{suppressed}", writer.path().display());
                }
            }
        }
    }
}
