//! Health checks (`--track CMD`, `--track-interface`), off the event loop.
//!
//! This module owns the checks' threads, their fall/rise counting and their log lines;
//! the event loop only reads the verdict ([`Tracker::healthy`], an atomic load per check)
//! once per turn and hands it to the core (`Node::set_eligible`).
//!
//! Each check has a thread of its own that runs it every `--track-interval` (runs never
//! overlap: the timeout is at most the interval, and a late run is not made up for):
//! - a command runs as `/bin/sh -c CMD` would run it, exactly like an on-change hook run
//!   ([`crate::daemon::hooks::run::run_in_group`]): stdin `/dev/null`, a process group of
//!   its own, the whole group ended when the shell exits, at `--track-timeout` (a failure)
//!   or at shutdown; exit 0 is a success. Its output is kept (at most 1 KiB), not logged
//!   line by line, and shown with the failure it explains;
//! - the interface check reads `/sys/class/net/IF/carrier`: `1` is a success; `0`, or an
//!   error (the interface is down or gone), is a failure.
//!
//! Counting ([`Check`]): a check starts *unknown*, which counts as failing, and turns
//! healthy at its first success (so a node is never elected before its checks passed
//! once, and is not held back longer than one run). A healthy check turns unhealthy after
//! `--track-fall` consecutive failures, an unhealthy one healthy after `--track-rise`
//! consecutive successes. The node is healthy while every check is.
//!
//! Logging stays bounded whatever a check does: changes of a check's state are logged
//! once each; failures that do not change it at most once per [`WARN_EVERY`].

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::hooks::output::Output;
use super::hooks::run::{run_in_group, End};
use super::settings::track::TrackSettings;
use crate::logging::{RateLimit, WARN_EVERY};

/// A check's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// Not passed yet since the start (counts as failing).
    Unknown,
    Healthy,
    Unhealthy,
}

/// One check's fall/rise counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Check {
    pub state: CheckState,
    /// Consecutive results against the current state.
    pub streak: u32,
}

impl Check {
    pub const NEW: Check = Check {
        state: CheckState::Unknown,
        streak: 0,
    };

    /// One result; the new state if it changed.
    pub fn record(&mut self, ok: bool, fall: u32, rise: u32) -> Option<CheckState> {
        let (target, needed) = match (self.state, ok) {
            (CheckState::Unknown, true) => (CheckState::Healthy, 1),
            (CheckState::Unknown, false) => (CheckState::Unknown, u32::MAX),
            (CheckState::Healthy, false) => (CheckState::Unhealthy, fall),
            (CheckState::Unhealthy, true) => (CheckState::Healthy, rise),
            (CheckState::Healthy, true) | (CheckState::Unhealthy, false) => {
                self.streak = 0;
                return None;
            }
        };
        self.streak = self.streak.saturating_add(1);
        if self.streak < needed {
            return None;
        }
        self.state = target;
        self.streak = 0;
        Some(target)
    }
}

/// What a check looks at.
#[derive(Debug, Clone)]
enum Probe {
    Command(String),
    Carrier { interface: String, path: PathBuf },
}

impl Probe {
    fn name(&self) -> String {
        match self {
            Probe::Command(cmd) => format!("track command `{cmd}`"),
            Probe::Carrier { interface, .. } => format!("carrier of {interface}"),
        }
    }

    /// One run: `Err` says why it failed.
    fn run(&self, timeout: Duration, stop: &AtomicBool) -> Result<(), String> {
        match self {
            Probe::Command(cmd) => run_command(cmd, timeout, stop),
            Probe::Carrier { path, .. } => match fs::read_to_string(path) {
                Ok(text) if text.trim() == "1" => Ok(()),
                Ok(_) => Err("no carrier".into()),
                // EINVAL: the interface is administratively down.
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            },
        }
    }
}

/// Runs `cmd` once, like a hook; `Err` with the exit status (or the timeout) and the
/// output it wrote.
fn run_command(cmd: &str, timeout: Duration, stop: &AtomicBool) -> Result<(), String> {
    let output = |pid, stdout, stderr| {
        Output::with_kind(
            "track command",
            format!("`{cmd}` (pid {pid})"),
            stdout,
            stderr,
        )
        .keeping()
    };
    let (ran, mut output) =
        run_in_group(cmd, &|_| {}, timeout, stop, output).map_err(|e| format!("/bin/sh: {e}"))?;
    if ran.succeeded() {
        return Ok(());
    }
    let how = match (ran.end, &ran.status) {
        (End::Timeout, _) => format!("ran longer than {timeout:?}; killed its process group"),
        (End::Shutdown, _) => "killed at shutdown".into(),
        (End::Exited, Ok(status)) => format!("{status}"),
        (End::Exited, Err(e)) => format!("cannot wait for it: {e}"),
    };
    let kept = output.take_kept();
    let kept = kept.trim_end();
    if kept.is_empty() {
        Err(how)
    } else {
        Err(format!("{how}; output: {}", kept.replace('\n', " | ")))
    }
}

/// State shared by the [`Tracker`] and its threads.
struct Shared {
    /// Per check: healthy now.
    healthy: Vec<AtomicBool>,
    names: Vec<String>,
    stop: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

/// The running health checks.
pub struct Tracker {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Tracker {
    /// Starts one thread per check of `settings` (`interface`: `--interface`).
    ///
    /// # Panics
    /// If the operating system refuses to start a thread (at start-up, so it fails early).
    pub fn start(settings: &TrackSettings, interface: &str) -> Tracker {
        let mut probes: Vec<Probe> = settings
            .commands
            .iter()
            .cloned()
            .map(Probe::Command)
            .collect();
        if settings.interface {
            probes.push(Probe::Carrier {
                interface: interface.to_string(),
                path: PathBuf::from(format!("/sys/class/net/{interface}/carrier")),
            });
        }
        let shared = Arc::new(Shared {
            healthy: probes.iter().map(|_| AtomicBool::new(false)).collect(),
            names: probes.iter().map(Probe::name).collect(),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let workers = probes
            .into_iter()
            .enumerate()
            .map(|(index, probe)| {
                let shared = Arc::clone(&shared);
                let settings = settings.clone();
                thread::Builder::new()
                    .name(format!("votecast-track-{index}"))
                    .spawn(move || worker(&shared, index, &probe, &settings))
                    .expect("cannot start a health-check thread")
            })
            .collect();
        Tracker { shared, workers }
    }

    /// Every check is healthy. Never blocks and never allocates.
    pub fn healthy(&self) -> bool {
        self.shared
            .healthy
            .iter()
            .all(|h| h.load(Ordering::Acquire))
    }

    /// The names of the checks that are not healthy now, for the log.
    pub fn failing(&self) -> Vec<&str> {
        self.shared
            .names
            .iter()
            .zip(&self.shared.healthy)
            .filter(|(_, h)| !h.load(Ordering::Acquire))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

impl Drop for Tracker {
    /// Stops every check; a running command's process group is ended (within about half a
    /// second).
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        {
            let _guard = self.shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for worker in self.workers.drain(..) {
            if worker.join().is_err() {
                log::error!("a health-check thread panicked");
            }
        }
    }
}

fn worker(shared: &Shared, index: usize, probe: &Probe, settings: &TrackSettings) {
    let name = &shared.names[index];
    let mut check = Check::NEW;
    let mut still_failing = RateLimit::new(WARN_EVERY);
    let mut next = Instant::now();
    while !shared.stop.load(Ordering::Acquire) {
        let result = probe.run(settings.timeout, &shared.stop);
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let before = check;
        let changed = check.record(result.is_ok(), settings.fall, settings.rise);
        shared.healthy[index].store(check.state == CheckState::Healthy, Ordering::Release);
        report(name, settings, before, changed, &result, &mut still_failing);
        next += settings.interval;
        let now = Instant::now();
        if next < now {
            // A run that took the whole interval: go on at once, but make nothing up.
            next = now;
        }
        let mut guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
        while !shared.stop.load(Ordering::Acquire) {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            guard = shared
                .wake
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// The log line for one result, if any (see the module docs).
fn report(
    name: &str,
    settings: &TrackSettings,
    before: Check,
    changed: Option<CheckState>,
    result: &Result<(), String>,
    still_failing: &mut RateLimit,
) {
    let why = result.as_ref().err().map_or("", String::as_str);
    match (changed, before.state) {
        (Some(CheckState::Healthy), CheckState::Unknown) => {
            still_failing.reset();
            log::info!("health check {name}: passed");
        }
        (Some(CheckState::Healthy), _) => {
            still_failing.reset();
            log::info!(
                "health check {name}: healthy again ({} consecutive successes)",
                settings.rise
            );
        }
        (Some(_), _) => {
            still_failing.allow(Instant::now());
            log::warn!(
                "health check {name}: unhealthy ({} consecutive failures): {why}",
                settings.fall
            );
        }
        (None, CheckState::Healthy) if result.is_err() => log::info!(
            "health check {name} failed ({} of {} before unhealthy): {why}",
            before.streak + 1,
            settings.fall
        ),
        (None, state) if result.is_err() => {
            if let Some(suppressed) = still_failing.allow(Instant::now()) {
                let what = if state == CheckState::Unknown {
                    "has not passed yet"
                } else {
                    "still fails"
                };
                log::warn!("health check {name} {what}: {why}{suppressed}");
            }
        }
        (None, _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_success_then_fall_and_rise() {
        let mut c = Check::NEW;
        assert_eq!(c.record(false, 2, 3), None);
        assert_eq!(c.record(false, 2, 3), None);
        assert_eq!(
            c.state,
            CheckState::Unknown,
            "never healthy before a success"
        );
        assert_eq!(c.record(true, 2, 3), Some(CheckState::Healthy));
        // One failure is not enough; a success in between starts the count again.
        assert_eq!(c.record(false, 2, 3), None);
        assert_eq!(c.record(true, 2, 3), None);
        assert_eq!(c.record(false, 2, 3), None);
        assert_eq!(c.record(false, 2, 3), Some(CheckState::Unhealthy));
        assert_eq!(c.record(true, 2, 3), None);
        assert_eq!(c.record(true, 2, 3), None);
        assert_eq!(c.record(false, 2, 3), None, "rise starts over");
        for _ in 0..2 {
            assert_eq!(c.record(true, 2, 3), None);
        }
        assert_eq!(c.record(true, 2, 3), Some(CheckState::Healthy));
        let mut c = Check::NEW;
        c.record(true, 1, 1);
        assert_eq!(c.record(false, 1, 1), Some(CheckState::Unhealthy));
        assert_eq!(c.record(true, 1, 1), Some(CheckState::Healthy));
    }

    fn settings(commands: &[&str], interval_ms: u64) -> TrackSettings {
        TrackSettings {
            commands: commands.iter().map(|c| c.to_string()).collect(),
            interface: false,
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(interval_ms),
            fall: 2,
            rise: 2,
        }
    }

    fn wait_for(tracker: &Tracker, healthy: bool) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if tracker.healthy() == healthy {
                return true;
            }
            thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn commands_turn_the_node_healthy_and_unhealthy() {
        let dir = crate::cluster::TempDir::new("votecast-track-unit").unwrap();
        let flag = dir.join("ok");
        let cmd = format!("test -f '{}'", flag.display());
        let tracker = Tracker::start(&settings(&[&cmd, "true"], 20), "lo");
        thread::sleep(Duration::from_millis(100));
        assert!(!tracker.healthy(), "unknown until the first success");
        assert_eq!(
            tracker.failing(),
            [format!("track command `{cmd}`").as_str()]
        );
        fs::write(&flag, "").unwrap();
        assert!(wait_for(&tracker, true));
        fs::remove_file(&flag).unwrap();
        assert!(wait_for(&tracker, false));
        drop(tracker);
    }

    #[test]
    fn a_hung_command_times_out_and_shutdown_ends_it() {
        let dir = crate::cluster::TempDir::new("votecast-track-unit").unwrap();
        let pid_file = dir.join("pid");
        // Succeeds once (healthy), then hangs with a child in its group.
        let marker = dir.join("ran");
        let cmd = format!(
            "if [ -e '{m}' ]; then sleep 30 & echo $! > '{p}'; wait; fi; touch '{m}'",
            m = marker.display(),
            p = pid_file.display()
        );
        let mut s = settings(&[&cmd], 100);
        s.timeout = Duration::from_millis(50);
        s.fall = 1;
        let tracker = Tracker::start(&s, "lo");
        assert!(wait_for(&tracker, true));
        assert!(wait_for(&tracker, false), "a run past the timeout fails");
        let started = Instant::now();
        drop(tracker);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "shutdown is prompt"
        );
        let pid: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The sleep of the timed-out run was killed with its group (it may take a moment
        // to be reaped by init).
        let gone = (0..200).any(|_| {
            let alive =
                fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
            thread::sleep(Duration::from_millis(5));
            !alive
        });
        assert!(gone, "the timed-out command's child {pid} outlived its run");
    }

    #[test]
    fn carrier_of_lo_and_of_a_missing_interface() {
        let mut s = settings(&[], 20);
        s.interface = true;
        // lo has no carrier file semantics of a NIC, but reports 1 while up.
        let lo = Tracker::start(&s, "lo");
        assert!(wait_for(&lo, true), "lo is up");
        let missing = Tracker::start(&s, "votecast-none0");
        thread::sleep(Duration::from_millis(100));
        assert!(!missing.healthy());
        assert_eq!(missing.failing(), ["carrier of votecast-none0"]);
    }
}
