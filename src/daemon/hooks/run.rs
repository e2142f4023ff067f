//! One hook run: `/bin/sh -c CMD` in a process group of its own, ended as a whole.
//!
//! The shell's exit is watched with `waitid(WNOWAIT)`, which leaves it a zombie: its pid,
//! and so the group id, cannot be reused until it is reaped, so the group signals below
//! can never reach an unrelated process. The shell is reaped only after the group has
//! been sent SIGKILL.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::output::Output;
use super::Job;

/// How long the group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_millis(500);
/// How often the shell is checked for exit while its output is read.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Exited,
    Timeout,
    Shutdown,
}

/// How a run ended, as counted for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The shell exited 0 by itself.
    Succeeded,
    /// The shell exited non-zero or by a signal, or could not be started or waited for.
    Failed,
    /// Still running at `--hook-timeout`: its process group was ended.
    TimedOut,
    /// Ended at shutdown, after the grace.
    Stopped,
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn spawn(command: &str, job: &Job) -> std::io::Result<Child> {
    let change = &job.change;
    Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("VOTECAST_ID", change.id.to_string())
        .env("VOTECAST_STATE", change.state)
        .env("VOTECAST_PREVIOUS_STATE", job.previous_state)
        .env("VOTECAST_LEADER", opt(change.leader))
        .env("VOTECAST_EPOCH", opt(change.epoch))
        .env(
            "VOTECAST_VALID_UNTIL_UNIX_MS",
            opt(change.valid_until_unix_ms),
        )
        .env(
            "VOTECAST_VALID_UNTIL_BOOTTIME_MS",
            opt(change.valid_until_boottime_ms),
        )
        .env("VOTECAST_SKIPPED", job.skipped.to_string())
        // systemd's notification socket and watchdog belong to the daemon: a hook that
        // inherited them could report readiness or pet the watchdog on its behalf.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own: the timeout and the shutdown reach everything the hook
        // started, and a terminal's Ctrl-C does not reach the hook directly.
        .process_group(0)
        .spawn()
}

/// The shell has exited (not yet reaped). An error means there is nothing left to wait for.
fn exited(pid: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::Pid(pid), flags), Ok(WaitStatus::StillAlive))
}

/// Runs the hook for `job` to its end; logs how it ended and returns it.
pub fn run_hook(command: &str, timeout: Duration, job: &Job, stop: &AtomicBool) -> Outcome {
    let what = format!("{} -> {}", job.previous_state, job.change.state);
    let started = Instant::now();
    let mut child = match spawn(command, job) {
        Ok(child) => child,
        Err(e) => {
            log::error!("cannot start on-change hook for {what}: /bin/sh: {e}");
            return Outcome::Failed;
        }
    };
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let mut output = Output::new(
        format!("for {what} (pid {pid})"),
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    );
    // A timeout too large for the clock means no limit.
    let deadline = started.checked_add(timeout);
    let end = loop {
        if exited(pid) {
            break End::Exited;
        }
        if stop.load(Ordering::Acquire) {
            break End::Shutdown;
        }
        let left = deadline.map_or(POLL_INTERVAL, |d| {
            d.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            break End::Timeout;
        }
        output.pump(POLL_INTERVAL.min(left));
    };
    let shell_ran = started.elapsed();
    end_group(pid, &mut output);
    let status = child.wait();
    output.finish();
    let ms = shell_ran.as_millis();
    let outcome = match end {
        End::Exited if status.as_ref().is_ok_and(|s| s.success()) => Outcome::Succeeded,
        End::Exited => Outcome::Failed,
        End::Timeout => Outcome::TimedOut,
        End::Shutdown => Outcome::Stopped,
    };
    match (end, status) {
        (End::Exited, Ok(status)) if status.success() => {
            log::info!("on-change hook for {what} (pid {pid}) finished in {ms} ms");
        }
        (End::Exited, Ok(status)) => {
            log::warn!("on-change hook for {what} (pid {pid}) failed after {ms} ms: {status}");
        }
        (End::Timeout, _) => log::error!(
            "on-change hook for {what} (pid {pid}) ran longer than {timeout:?}; \
             killed its process group"
        ),
        (End::Shutdown, _) => {
            log::warn!("on-change hook for {what} (pid {pid}) killed at shutdown");
        }
        (End::Exited, Err(e)) => {
            log::error!("cannot wait for on-change hook for {what} (pid {pid}): {e}");
        }
    }
    outcome
}

/// Ends every process left in the group of `pid` (whose shell is not reaped yet): SIGTERM,
/// then SIGKILL once the shell has exited and the pipes are closed, or after
/// [`KILL_GRACE`]. After a normal exit this only reaches what the hook left behind.
fn end_group(pid: Pid, output: &mut Output) {
    // ESRCH: the group is empty; nothing else can fail for our own child's group.
    let _ = killpg(pid, Signal::SIGTERM);
    let grace_end = Instant::now() + KILL_GRACE;
    loop {
        let done = exited(pid) && output.closed();
        let left = grace_end.saturating_duration_since(Instant::now());
        if done || left.is_zero() {
            break;
        }
        output.pump(POLL_INTERVAL.min(left));
    }
    let _ = killpg(pid, Signal::SIGKILL);
}
