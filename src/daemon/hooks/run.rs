//! One hook run: `/bin/sh -c CMD` in a process group of its own, ended as a whole.
//! [`run_in_group`] is that run for any command (the track commands use it too);
//! [`run_hook`] adds the hook's environment and its log lines.
//!
//! The shell's exit is watched with `waitid(WNOWAIT)`, which leaves it a zombie: its pid,
//! and so the group id, cannot be reused until it is reaped, so the group signals below
//! can never reach an unrelated process. The shell is reaped only after the group has
//! been sent SIGKILL.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
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
pub enum End {
    /// The shell exited by itself.
    Exited,
    /// It ran past its timeout.
    Timeout,
    /// `stop` was set.
    Shutdown,
}

/// How one run in a process group went.
#[derive(Debug)]
pub struct Ran {
    /// The pid of the shell (and the group id).
    pub pid: Pid,
    pub end: End,
    /// The shell's exit status, as reaped.
    pub status: std::io::Result<ExitStatus>,
    /// How long the shell ran.
    pub took: Duration,
}

impl Ran {
    /// The shell exited 0 by itself (not at the timeout, not at shutdown).
    pub fn succeeded(&self) -> bool {
        self.end == End::Exited && self.status.as_ref().is_ok_and(|s| s.success())
    }

    /// How the run ended, as counted for the metrics.
    pub fn outcome(&self) -> Outcome {
        match self.end {
            End::Exited if self.succeeded() => Outcome::Succeeded,
            End::Exited => Outcome::Failed,
            End::Timeout => Outcome::TimedOut,
            End::Shutdown => Outcome::Stopped,
        }
    }
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

/// `/bin/sh -c COMMAND`, to be completed (environment) and given to [`run_in_group`].
pub fn shell(command: &str) -> Command {
    let mut shell = Command::new("/bin/sh");
    shell.arg("-c").arg(command);
    shell
}

fn spawn(command: &str, job: &Job) -> Command {
    let change = &job.change;
    let mut shell = shell(command);
    shell
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
        .env("VOTECAST_SKIPPED", job.skipped.to_string());
    shell
}

/// The shell has exited (not yet reaped). An error means there is nothing left to wait for.
fn exited(pid: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::Pid(pid), flags), Ok(WaitStatus::StillAlive))
}

/// Runs `command` (stdin `/dev/null`, stdout and stderr into `output`) in a process group
/// of its own until it exits, `timeout` passes (a timeout too large for the clock means no
/// limit) or `stop` is set; then ends the whole group and reaps the shell. `output` is
/// made from the shell's pid and its two pipes. `Err` when it cannot start.
pub fn run_in_group(
    mut command: Command,
    timeout: Duration,
    stop: &AtomicBool,
    output: impl FnOnce(Pid, Option<OwnedFd>, Option<OwnedFd>) -> Output,
) -> std::io::Result<(Ran, Output)> {
    let started = Instant::now();
    let mut child: Child = command
        // systemd's notification socket and watchdog belong to the daemon: a command that
        // inherited them could report readiness or pet the watchdog on its behalf.
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own: the timeout and the shutdown reach everything the command
        // started, and a terminal's Ctrl-C does not reach it directly.
        .process_group(0)
        .spawn()?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let mut output = output(
        pid,
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    );
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
    let took = started.elapsed();
    end_group(pid, &mut output);
    let status = child.wait();
    output.finish();
    let ran = Ran {
        pid,
        end,
        status,
        took,
    };
    Ok((ran, output))
}

/// Runs the hook for `job` to its end; logs how it ended and returns it.
pub(super) fn run_hook(command: &str, timeout: Duration, job: &Job, stop: &AtomicBool) -> Outcome {
    let what = format!("{} -> {}", job.previous_state, job.change.state);
    let output =
        |pid, stdout, stderr| Output::new(format!("for {what} (pid {pid})"), stdout, stderr);
    let ran = match run_in_group(spawn(command, job), timeout, stop, output) {
        Ok((ran, _)) => ran,
        Err(e) => {
            log::error!("cannot start on-change hook for {what}: /bin/sh: {e}");
            return Outcome::Failed;
        }
    };
    let (pid, ms) = (ran.pid, ran.took.as_millis());
    let outcome = ran.outcome();
    match (ran.end, ran.status) {
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
