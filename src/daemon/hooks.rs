//! `--on-change CMD`: run a shell command on state changes, off the event loop.
//!
//! This module owns the hand-over from the event loop ([`HookRunner::notify`]) to one
//! worker thread, and the coalescing of changes that arrive while a hook runs; one run
//! (process group, timeout, captured output) is [`run`], the line capture [`output`]; the
//! health checks (`super::track`) run their commands through the same two.
//!
//! The worker runs `/bin/sh -c CMD` (or CMD directly when it is plain words: [`run`]) with
//! stdin `/dev/null` and
//!
//! | variable                          | value                                                  |
//! |-----------------------------------|--------------------------------------------------------|
//! | `VOTECAST_ID`                     | this node's id                                         |
//! | `VOTECAST_STATE`                  | new state (`LOOKING`, `FOLLOWING`, ...)                |
//! | `VOTECAST_PREVIOUS_STATE`         | the state the previous run was given (the first run: the state before the change) |
//! | `VOTECAST_LEADER`                 | leader id, empty when there is none                    |
//! | `VOTECAST_EPOCH`                  | epoch, empty when there is none                        |
//! | `VOTECAST_VALID_UNTIL_UNIX_MS`    | end of the lease (LEADING) or of the follower timeout (FOLLOWING/OBSERVING), wall clock, ms since 1970; empty when none |
//! | `VOTECAST_VALID_UNTIL_BOOTTIME_MS`| the same instant on CLOCK_BOOTTIME in ms (`/proc/uptime` × 1000); empty when none |
//! | `VOTECAST_SKIPPED`                | changes skipped since the previous run                 |
//!
//! Coalescing: changes are not queued. [`HookRunner::notify`] keeps only the newest change
//! not yet handed to the hook; when the worker is free it runs the hook once for that
//! change, and the changes it replaced are dropped (counted in `VOTECAST_SKIPPED`, in
//! [`HookRunner::skipped`] and in the log). Like keepalived's notify scripts, a hook sees
//! the latest state, not every transition; the last change before shutdown always runs
//! (within the shutdown grace). `VOTECAST_PREVIOUS_STATE` is the state of the previous
//! run, so a hook's own records always chain. The driver holds a follower's LOOKING back
//! for two ticks (it is usually over by then; see `driver::NodeIo::notify_hook`).
//!
//! Each run is its own process group. It ends when the shell exits, at `--hook-timeout`,
//! or at shutdown; then the whole group gets SIGTERM and, after at most 0.5 s, SIGKILL, so
//! nothing a hook started outlives its run (a hook that must start a long-lived process
//! hands it to the service manager or uses `setsid`). stdout and stderr go through pipes
//! into the daemon's log, line by line, at most 16 KiB per run (the rest is read and
//! counted).

pub(crate) mod output;
pub(crate) mod run;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};

use self::run::Outcome;

/// How often the shutdown waits re-check the worker.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One state change, as handed to the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookChange {
    pub id: u64,
    pub state: &'static str,
    pub previous_state: &'static str,
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
    /// End of the node's current view (lease or follower timeout), wall clock, ms since 1970.
    pub valid_until_unix_ms: Option<u64>,
    /// The same instant on CLOCK_BOOTTIME, in ms: it does not step with the wall clock and
    /// is comparable across processes on one host.
    pub valid_until_boottime_ms: Option<u64>,
}

/// CLOCK_BOOTTIME in ms (the clock of `/proc/uptime`; counts suspend, never steps), or
/// `None` if the system has no such clock.
pub fn boottime_now_ms() -> Option<u64> {
    let t = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    let secs = u64::try_from(t.tv_sec()).ok()?;
    let ms = u64::try_from(t.tv_nsec()).ok()? / 1_000_000;
    secs.checked_mul(1000)?.checked_add(ms)
}

/// The change not yet handed to the hook.
#[derive(Default)]
struct Pending {
    latest: Option<HookChange>,
    /// How many changes were notified; the latest is number `notified`.
    notified: u64,
    /// The number of the last change whose run has ended, and whether it succeeded.
    finished: u64,
    finished_ok: bool,
    /// Changes `latest` replaced since the worker last took one.
    skipped: u64,
    /// No more changes come: run `latest` (if any) and return.
    closed: bool,
}

/// Hook runs by how they ended, since start.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HookCounters {
    pub succeeded: u64,
    /// Exited non-zero or by a signal, or could not be started.
    pub failed: u64,
    /// Ended at `--hook-timeout`.
    pub timed_out: u64,
    /// Ended at shutdown.
    pub stopped: u64,
    /// Changes replaced by a newer one before the hook ran for them.
    pub skipped: u64,
}

/// State shared by [`HookRunner`] and its worker.
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Signalled when a run ends.
    ran: Condvar,
    /// Set when the shutdown grace has run out: end the running hook, skip the rest.
    stop: AtomicBool,
    skipped: AtomicU64,
    /// Runs by outcome, in [`run::Outcome`] order.
    outcomes: [AtomicU64; 4],
    /// Woken when a run ends, so an event loop waiting for it need not poll.
    waker: OnceLock<mio::Waker>,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // The lock guards plain data that every holder leaves consistent; a panic elsewhere
        // cannot break it.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `--on-change` hooks on a worker thread.
pub struct HookRunner {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl HookRunner {
    /// Starts the worker thread for `command`, each run limited to `timeout` (a timeout too
    /// large for the clock means no limit).
    ///
    /// # Panics
    /// If the operating system refuses to start a thread (at start-up, so it fails early).
    pub fn start(command: String, timeout: Duration) -> HookRunner {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            ran: Condvar::new(),
            stop: AtomicBool::new(false),
            skipped: AtomicU64::new(0),
            outcomes: Default::default(),
            waker: OnceLock::new(),
        });
        let worker_shared = Arc::clone(&shared);
        let worker = thread::Builder::new()
            .name("votecast-hooks".into())
            .spawn(move || worker(&worker_shared, &command, timeout))
            .expect("cannot start the on-change hook thread");
        HookRunner {
            shared,
            worker: Some(worker),
        }
    }

    /// Hands `change` to the hook, replacing a change that is still waiting. Never waits
    /// for a hook and never allocates: the lock is only held to swap one value.
    pub fn notify(&self, change: HookChange) {
        let mut pending = self.shared.pending();
        if pending.closed {
            return;
        }
        pending.notified += 1;
        if pending.latest.replace(change).is_some() {
            pending.skipped += 1;
            self.shared.skipped.fetch_add(1, Ordering::Relaxed);
        }
        drop(pending);
        self.shared.wake.notify_one();
    }

    /// Wake `waker` whenever a run ends (the event loop's, while it waits for the
    /// step-down hook of a graceful handover). The first one set stays.
    pub fn set_waker(&self, waker: mio::Waker) {
        let _ = self.shared.waker.set(waker);
    }

    /// How many changes were replaced by a newer one before the hook ran for them.
    pub fn skipped(&self) -> u64 {
        self.shared.skipped.load(Ordering::Relaxed)
    }

    /// How many runs ended in each way, and how many changes were skipped (for the
    /// metrics; never waits for a running hook).
    pub fn counters(&self) -> HookCounters {
        let n = |outcome: Outcome| self.shared.outcomes[outcome as usize].load(Ordering::Relaxed);
        HookCounters {
            succeeded: n(Outcome::Succeeded),
            failed: n(Outcome::Failed),
            timed_out: n(Outcome::TimedOut),
            stopped: n(Outcome::Stopped),
            skipped: self.skipped(),
        }
    }

    /// Waits up to `limit` until the hook has run for the latest change notified (at once
    /// when nothing was ever notified): `Some(true)` when that run exited 0, `Some(false)`
    /// when it failed, timed out or could not start, `None` when it has not ended within
    /// `limit` (`Duration::ZERO` just looks).
    pub fn wait_idle(&self, limit: Duration) -> Option<bool> {
        let deadline = Instant::now().checked_add(limit);
        let mut pending = self.shared.pending();
        loop {
            if pending.finished == pending.notified {
                return Some(pending.notified == 0 || pending.finished_ok);
            }
            let left = deadline.map_or(POLL_INTERVAL, |d| {
                d.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return None;
            }
            pending = self
                .shared
                .ran
                .wait_timeout(pending, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Stops accepting changes and waits up to `grace` for the hook to run the last one.
    /// When the grace runs out, the running hook's process group is killed and a change
    /// still waiting is skipped (and logged).
    pub fn shutdown(mut self, grace: Duration) {
        let Some(worker) = self.worker.take() else {
            return;
        };
        self.shared.pending().closed = true;
        self.shared.wake.notify_one();
        // A grace too large for the clock: wait for the worker as long as it takes.
        let deadline = Instant::now().checked_add(grace);
        while !worker.is_finished() {
            let now = Instant::now();
            let left = deadline.map_or(POLL_INTERVAL, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                log::warn!("on-change hook still running after {grace:?} at shutdown; stopping it");
                break;
            }
            thread::sleep(POLL_INTERVAL.min(left));
        }
        stop_and_join(&self.shared, worker);
    }
}

impl Drop for HookRunner {
    /// Without [`HookRunner::shutdown`] (an early return): end the running hook at once.
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.shared.pending().closed = true;
            stop_and_join(&self.shared, worker);
        }
    }
}

fn stop_and_join(shared: &Shared, worker: JoinHandle<()>) {
    shared.stop.store(true, Ordering::Release);
    shared.wake.notify_one();
    // With `stop` set the worker ends the running group within `run::KILL_GRACE`.
    if worker.join().is_err() {
        log::error!("on-change hook worker panicked");
    }
}

/// One hook run: the change, the state the previous run was given, and how many changes
/// were skipped in between.
struct Job {
    change: HookChange,
    previous_state: &'static str,
    skipped: u64,
}

/// The next change for the hook (with its number and how many were skipped before it),
/// after waiting for one; `None` when the worker is done.
fn next_change(shared: &Shared) -> Option<(HookChange, u64, u64)> {
    let mut pending = shared.pending();
    loop {
        if shared.stop.load(Ordering::Acquire) {
            if let Some(change) = pending.latest.take() {
                log::warn!(
                    "shutdown: on-change hook for {} -> {} not run",
                    change.previous_state,
                    change.state
                );
            }
            return None;
        }
        if let Some(change) = pending.latest.take() {
            let skipped = std::mem::take(&mut pending.skipped);
            return Some((change, pending.notified, skipped));
        }
        if pending.closed {
            return None;
        }
        pending = shared.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
    }
}

fn worker(shared: &Shared, command: &str, timeout: Duration) {
    let mut last_state: Option<&'static str> = None;
    while let Some((change, number, skipped)) = next_change(shared) {
        let previous_state = last_state.unwrap_or(change.previous_state);
        if skipped > 0 {
            log::info!(
                "on-change hook: skipped {skipped} outdated change(s); running the latest, \
                 {previous_state} -> {} ({} skipped in all)",
                change.state,
                shared.skipped.load(Ordering::Relaxed)
            );
        }
        last_state = Some(change.state);
        let job = Job {
            change,
            previous_state,
            skipped,
        };
        let outcome = run::run_hook(command, timeout, &job, &shared.stop);
        shared.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        let mut pending = shared.pending();
        pending.finished = number;
        pending.finished_ok = outcome == Outcome::Succeeded;
        drop(pending);
        shared.ran.notify_all();
        if let Some(waker) = shared.waker.get() {
            if let Err(e) = waker.wake() {
                log::debug!("on-change hook: cannot wake the event loop: {e}");
            }
        }
    }
}
