//! One hook run: `CMD` as `/bin/sh -c CMD` would run it, in a process group of its own,
//! ended as a whole. [`run_in_group`] is that run for any command (the track commands use
//! it too); [`run_hook`] adds the hook's environment and its log lines. A command that is
//! a plain program and arguments is started without the shell ([`start`]).
//!
//! The shell's exit is watched with `waitid(WNOWAIT)`, which leaves it a zombie: its pid,
//! and so the group id, cannot be reused until it is reaped, so the group signals below
//! can never reach an unrelated process. The shell is reaped only after the group has
//! been sent SIGKILL.
//!
//! The exit is seen the moment it happens ([`ExitWatch`]), not at the next check: the
//! step-down hook's end is on the path of a graceful handover.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::output::Output;
use super::Job;

/// How long the group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_millis(500);
/// How often the shell is checked for exit while its output is read, when no
/// [`ExitWatch`] could be started.
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How often the stop flag is looked at while an [`ExitWatch`] waits for the exit.
const STOP_CHECK_INTERVAL: Duration = Duration::from_millis(50);

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

/// `/bin/sh -c LINE`.
fn shell(line: &str) -> Command {
    let mut shell = Command::new("/bin/sh");
    shell.arg("-c").arg(line);
    shell
}

/// `LINE` as a program and its arguments, when it is nothing but words of plain characters
/// (no quoting, variables, globs, redirections, comments or assignments) and the program
/// is a file the kernel runs itself ([`runnable`]): what `/bin/sh -c LINE` would run in
/// the end, without starting the shell first (~0.6 ms here, twice on a graceful
/// handover's path). `None` when the line needs the shell.
fn direct(line: &str) -> Option<Command> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,:+=@".contains(c);
    let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
    let program = words.next()?;
    let plain_line = line.chars().all(|c| plain(c) || c == ' ' || c == '\t');
    if !plain_line || program.contains('=') {
        return None;
    }
    let mut command = Command::new(runnable(program)?);
    // The name as written, as the shell passes it.
    command.arg0(program).args(words);
    Some(command)
}

/// The file the shell would run for `program` (a path as written, else the first
/// executable regular file of that name along `PATH`), when the kernel runs it itself: a
/// binary or a `#!` script. Not a builtin (no such file), not a script without `#!` (the
/// shell reads that itself). Looked up here rather than left to a failed spawn: not every
/// platform reports a failed exec to the spawner (under qemu-user the child just exits
/// 127).
fn runnable(program: &str) -> Option<PathBuf> {
    let found = if program.contains('/') {
        Some(PathBuf::from(program)).filter(|p| executable_file(p))
    } else {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| match dir.as_os_str().is_empty() {
                true => PathBuf::from(".").join(program),
                false => dir.join(program),
            })
            .find(|p| executable_file(p))
    }?;
    let mut head = [0u8; 4];
    let read = File::open(&found).and_then(|mut f| f.read_exact(&mut head));
    let kernel_runs_it = read.is_ok() && (head.starts_with(b"#!") || head == *b"\x7fELF");
    kernel_runs_it.then_some(found)
}

fn executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The hook's environment: the change it runs for.
fn hook_env(command: &mut Command, job: &Job) {
    let change = &job.change;
    command
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
}

/// Starts `line` with `env` added, stdin `/dev/null`, stdout and stderr piped, in a
/// process group of its own: directly when it is a plain program and arguments
/// ([`direct`]) and that program starts, else through `/bin/sh -c`, which then behaves
/// exactly as written (a builtin such as `exit 3`, a program not found: exit 127, a script
/// without `#!`). The error is the shell's.
fn start(line: &str, env: &dyn Fn(&mut Command)) -> std::io::Result<Child> {
    let configure = |mut command: Command| {
        env(&mut command);
        command
            // systemd's notification socket and watchdog belong to the daemon: a command
            // that inherited them could report readiness or pet the watchdog on its behalf.
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own: the timeout and the shutdown reach everything the
            // command started, and a terminal's Ctrl-C does not reach it directly.
            .process_group(0);
        command
    };
    if let Some(Ok(child)) = direct(line).map(|c| configure(c).spawn()) {
        return Ok(child);
    }
    configure(shell(line)).spawn()
}

/// The shell has exited (not yet reaped). An error means there is nothing left to wait for.
fn exited(pid: Pid) -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    !matches!(waitid(Id::Pid(pid), flags), Ok(WaitStatus::StillAlive))
}

/// Wakes the worker the moment the shell exits, on any kernel (a pidfd needs Linux 5.3): a
/// thread blocked in `waitid(WEXITED | WNOWAIT)`, which does not reap, drops its end of a
/// socket pair, and the other end, polled with the output pipes, reads end of file.
struct ExitWatch {
    wake: UnixStream,
    waiter: JoinHandle<()>,
}

impl ExitWatch {
    /// `None` when no socket pair or thread can be had: the exit is then polled for.
    fn start(pid: Pid) -> Option<ExitWatch> {
        let (wake, exited) = UnixStream::pair().ok()?;
        let waiter = thread::Builder::new()
            .name("votecast-hook-exit".into())
            .spawn(move || {
                let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
                while waitid(Id::Pid(pid), flags) == Err(Errno::EINTR) {}
                drop(exited);
            })
            .ok()?;
        Some(ExitWatch { wake, waiter })
    }

    /// Waits for the waiter thread; it ends once the shell has exited, so this comes after
    /// the group's SIGKILL, and before the shell is reaped (its pid must stay ours while
    /// the waiter names it).
    fn join(self) {
        let _ = self.waiter.join();
    }
}

/// What to wake on while waiting for the shell: the watch, until the shell has exited
/// (after that the watch is always readable and would spin the wait).
fn exit_wake<'a>(watch: &'a Option<ExitWatch>, shell_exited: bool) -> Option<BorrowedFd<'a>> {
    watch
        .as_ref()
        .filter(|_| !shell_exited)
        .map(|w| w.wake.as_fd())
}

/// Runs `line` ([`start`]; stdout and stderr into `output`) until it exits, `timeout`
/// passes (a timeout too large for the clock means no limit) or `stop` is set; then ends
/// the whole group and reaps the shell. `output` is made from the shell's pid and its two
/// pipes. `Err` when it cannot start.
pub fn run_in_group(
    line: &str,
    env: &dyn Fn(&mut Command),
    timeout: Duration,
    stop: &AtomicBool,
    output: impl FnOnce(Pid, Option<OwnedFd>, Option<OwnedFd>) -> Output,
) -> std::io::Result<(Ran, Output)> {
    let started = Instant::now();
    let mut child = start(line, env)?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let mut output = output(
        pid,
        child.stdout.take().map(OwnedFd::from),
        child.stderr.take().map(OwnedFd::from),
    );
    let watch = ExitWatch::start(pid);
    let interval = match watch {
        Some(_) => STOP_CHECK_INTERVAL,
        None => POLL_INTERVAL,
    };
    let deadline = started.checked_add(timeout);
    let end = loop {
        if exited(pid) {
            break End::Exited;
        }
        if stop.load(Ordering::Acquire) {
            break End::Shutdown;
        }
        let left = deadline.map_or(interval, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            break End::Timeout;
        }
        output.pump(interval.min(left), exit_wake(&watch, false));
    };
    let took = started.elapsed();
    end_group(pid, &mut output, &watch);
    if let Some(watch) = watch {
        watch.join();
    }
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
    let env = |c: &mut Command| hook_env(c, job);
    let ran = match run_in_group(command, &env, timeout, stop, output) {
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
fn end_group(pid: Pid, output: &mut Output, watch: &Option<ExitWatch>) {
    // ESRCH: the group is empty; nothing else can fail for our own child's group.
    let _ = killpg(pid, Signal::SIGTERM);
    let grace_end = Instant::now() + KILL_GRACE;
    loop {
        let shell_exited = exited(pid);
        let left = grace_end.saturating_duration_since(Instant::now());
        if (shell_exited && output.closed()) || left.is_zero() {
            break;
        }
        output.pump(POLL_INTERVAL.min(left), exit_wake(watch, shell_exited));
    }
    let _ = killpg(pid, Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The program started and its arguments.
    fn argv(line: &str) -> Option<Vec<String>> {
        let command = direct(line)?;
        let words = std::iter::once(command.get_program()).chain(command.get_args());
        Some(words.map(|w| w.to_string_lossy().into_owned()).collect())
    }

    #[test]
    fn plain_words_are_started_without_the_shell() {
        assert_eq!(
            argv("/bin/sh  -c\tx=1,y:z+w@h/16"),
            Some(vec!["/bin/sh".into(), "-c".into(), "x=1,y:z+w@h/16".into()])
        );
        // Along PATH, as the shell looks it up.
        let found = argv("sh -c true").expect("sh on PATH");
        assert!(
            found[0].ends_with("/sh") && found[1..] == ["-c", "true"],
            "{found:?}"
        );
    }

    /// Only what the kernel runs itself skips the shell; the shell is left whatever it
    /// would treat itself.
    #[test]
    fn only_binaries_and_hash_bang_scripts_skip_the_shell() {
        let dir = crate::cluster::TempDir::new("votecast-run-test").expect("temp dir");
        let file = |name: &str, text: &str, mode: u32| {
            let path = super::super::tests::file_with_mode(&dir, name, text, mode);
            path.to_str().expect("utf-8 path").to_string()
        };
        let script = file("script", "#!/bin/sh\nexit 0\n", 0o755);
        let bare = file("bare", "exit 0\n", 0o755);
        let unexecutable = file("unexecutable", "#!/bin/sh\nexit 0\n", 0o644);
        assert_eq!(argv(&script), Some(vec![script.clone()]));
        assert_eq!(
            argv(&bare),
            None,
            "a script without #! is the shell's to read"
        );
        assert_eq!(argv(&unexecutable), None);
        assert_eq!(argv(dir.path().to_str().unwrap()), None, "a directory");
        assert_eq!(argv("exit 3"), None, "a builtin, no such file");
        assert_eq!(argv("votecast-no-such-program"), None);
    }

    #[test]
    fn shell_syntax_goes_through_the_shell() {
        for line in [
            "",
            " \t ",
            "exec up \"$VOTECAST_STATE\"",
            "up $VOTECAST_STATE",
            "up 'a b'",
            "up > log",
            "up < in",
            "up | logger",
            "up; down",
            "up && down",
            "up &",
            "A=1 up",
            "up *.conf",
            "up [ab]",
            "up ?",
            "~/up",
            "up # comment",
            "up\ndown",
            "up a\\ b",
            "printf %s x",
            "(up)",
            "up {a,b}",
            "up `date`",
            "up !x",
            "üp",
        ] {
            assert!(argv(line).is_none(), "{line:?} needs the shell");
        }
    }
}
