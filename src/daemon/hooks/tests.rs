//! Hook runs against real `/bin/sh` processes.

use super::*;
use crate::cluster::TempDir;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Records every log line of the test binary, so tests can look for a hook's output.
struct Capture;

static CAPTURED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CAPTURE: Capture = Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}", record.level(), record.args());
        CAPTURED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in the unit tests");
        log::set_max_level(log::LevelFilter::Info);
    });
}

/// Captured log lines that contain `needle`.
fn logged(needle: &str) -> Vec<String> {
    let lines = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
    lines
        .iter()
        .filter(|l| l.contains(needle))
        .cloned()
        .collect()
}

fn temp() -> TempDir {
    TempDir::new("votecast-hooks-test").expect("temp dir")
}

fn file(dir: &TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

fn quoted(p: &Path) -> String {
    let s = p.to_str().unwrap();
    assert!(!s.contains('\''));
    format!("'{s}'")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let started = Instant::now();
    while !cond() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn change(state: &'static str, previous_state: &'static str, epoch: u64) -> HookChange {
    HookChange {
        id: 7,
        state,
        previous_state,
        leader: Some(3),
        epoch: Some(epoch),
        valid_until_unix_ms: None,
        valid_until_boottime_ms: None,
    }
}

/// True while process `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn hooks_run_in_order_with_the_right_environment() {
    let dir = temp();
    let out = file(&dir, "out");
    let cmd = format!(
        "read line; printf '%s\\n' \"$VOTECAST_ID:$VOTECAST_STATE:$VOTECAST_PREVIOUS_STATE:\
         $VOTECAST_LEADER:$VOTECAST_EPOCH:$VOTECAST_VALID_UNTIL_UNIX_MS:\
         $VOTECAST_VALID_UNTIL_BOOTTIME_MS:$VOTECAST_SKIPPED:$line\" >> {}",
        quoted(&out)
    );
    let hooks = HookRunner::start(cmd, Duration::from_secs(10));
    let out_ref = &out;
    let lines = |n| move || read(out_ref).lines().count() == n;
    hooks.notify(HookChange {
        leader: None,
        epoch: None,
        ..change("LOOKING", "LOOKING", 0)
    });
    wait_for("first run", lines(1));
    hooks.notify(change("FOLLOWING", "LOOKING", 4));
    wait_for("second run", lines(2));
    hooks.notify(HookChange {
        leader: Some(7),
        valid_until_unix_ms: Some(1_700_000_000_123),
        valid_until_boottime_ms: Some(98_765),
        ..change("LEADING", "FOLLOWING", 5)
    });
    hooks.shutdown(Duration::from_secs(20));
    assert_eq!(
        read(&out),
        "7:LOOKING:LOOKING:::::0:\n7:FOLLOWING:LOOKING:3:4:::0:\n\
         7:LEADING:FOLLOWING:7:5:1700000000123:98765:0:\n"
    );
}

#[test]
fn slow_hook_is_killed_and_the_next_one_runs() {
    let dir = temp();
    let out = file(&dir, "out");
    let started_marker = file(&dir, "started");
    let cmd = format!(
        "if [ \"$VOTECAST_STATE\" = LOOKING ]; then touch {}; exec sleep 30; fi; \
         echo \"$VOTECAST_STATE\" >> {}",
        quoted(&started_marker),
        quoted(&out)
    );
    let started = Instant::now();
    let hooks = HookRunner::start(cmd, Duration::from_millis(200));
    hooks.notify(change("LOOKING", "FOLLOWING", 1));
    wait_for("LOOKING hook started", || started_marker.exists());
    hooks.notify(change("FOLLOWING", "LOOKING", 2));
    hooks.shutdown(Duration::from_secs(20));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(read(&out), "FOLLOWING\n");
}

/// `--hook-timeout` ends the whole process group: a child the shell forked cannot finish
/// its work after the kill.
#[test]
fn timeout_kills_the_children_of_the_hook_too() {
    let dir = temp();
    let marker = file(&dir, "promoted");
    let started_marker = file(&dir, "started");
    let cmd = format!(
        "(sleep 0.6; touch {}) & touch {}; wait",
        quoted(&marker),
        quoted(&started_marker)
    );
    let hooks = HookRunner::start(cmd, Duration::from_millis(200));
    hooks.notify(change("LEADING", "LOOKING", 1));
    wait_for("hook started", || started_marker.exists());
    hooks.shutdown(Duration::from_secs(20));
    thread::sleep(Duration::from_millis(1200));
    assert!(
        !marker.exists(),
        "the hook's child ran on after the timeout"
    );
}

/// Processes a hook leaves behind when its shell exits are ended with the run.
#[test]
fn leftovers_of_a_finished_hook_are_ended() {
    let dir = temp();
    let marker = file(&dir, "late");
    let cmd = format!("(sleep 0.5; touch {}) & exit 0", quoted(&marker));
    let hooks = HookRunner::start(cmd, Duration::from_secs(30));
    hooks.notify(change("LEADING", "LOOKING", 1));
    hooks.shutdown(Duration::from_secs(20));
    thread::sleep(Duration::from_millis(1000));
    assert!(
        !marker.exists(),
        "a leftover of the hook ran on after its run"
    );
}

/// A slow hook with changes piling up runs once more, for the latest change only, and
/// is told how many it skipped; its records still chain.
#[test]
fn outdated_changes_are_skipped_and_the_latest_runs() {
    let dir = temp();
    let out = file(&dir, "out");
    let gate = file(&dir, "gate");
    let started_marker = file(&dir, "started");
    let cmd = format!(
        "touch {started}; while [ ! -e {gate} ]; do sleep 0.01; done; \
         echo \"$VOTECAST_PREVIOUS_STATE $VOTECAST_STATE $VOTECAST_EPOCH $VOTECAST_SKIPPED\" \
         >> {out}",
        started = quoted(&started_marker),
        gate = quoted(&gate),
        out = quoted(&out),
    );
    let hooks = HookRunner::start(cmd, Duration::from_secs(30));
    hooks.notify(change("FOLLOWING", "LOOKING", 0));
    wait_for("first hook started", || started_marker.exists());
    let states = ["LOOKING", "FOLLOWING", "LEADING"];
    for epoch in 1..10 {
        let i = epoch as usize;
        hooks.notify(change(states[i % 3], states[(i + 2) % 3], epoch));
    }
    assert_eq!(hooks.skipped(), 8);
    std::fs::write(&gate, "").unwrap();
    hooks.shutdown(Duration::from_secs(20));
    assert_eq!(read(&out), "LOOKING FOLLOWING 0 0\nFOLLOWING LOOKING 9 8\n");
}

/// The lease end the driver computes reaches the hook, on both clocks, ahead of the time
/// the hook starts.
#[test]
fn leading_hook_gets_the_lease_end_on_both_clocks() {
    let dir = temp();
    let out = file(&dir, "out");
    let cmd = format!(
        "echo \"$VOTECAST_VALID_UNTIL_UNIX_MS $VOTECAST_VALID_UNTIL_BOOTTIME_MS \
         $(date +%s%3N) $(cut -d' ' -f1 /proc/uptime)\" > {}",
        quoted(&out)
    );
    let hooks = HookRunner::start(cmd, Duration::from_secs(10));
    let lease = 5_000;
    let unix = crate::daemon::unix_now_ms() + lease;
    let boot = boottime_now_ms().expect("CLOCK_BOOTTIME") + lease;
    hooks.notify(HookChange {
        valid_until_unix_ms: Some(unix),
        valid_until_boottime_ms: Some(boot),
        ..change("LEADING", "LOOKING", 1)
    });
    hooks.shutdown(Duration::from_secs(20));
    let text = read(&out);
    let f: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(f.len(), 4, "{text:?}");
    let until_unix: u64 = f[0].parse().expect("VOTECAST_VALID_UNTIL_UNIX_MS");
    let until_boot: u64 = f[1].parse().expect("VOTECAST_VALID_UNTIL_BOOTTIME_MS");
    let hook_unix: u64 = f[2].parse().unwrap();
    let hook_boot = (f[3].parse::<f64>().unwrap() * 1000.0) as u64;
    assert!(
        until_unix > hook_unix && until_unix - hook_unix <= lease,
        "{text:?}"
    );
    // /proc/uptime has 10 ms resolution: the same clock within that.
    assert!(
        until_boot > hook_boot && until_boot - hook_boot <= lease + 10,
        "{text:?}"
    );
}

/// The hook's stdout and stderr are pipes read into the daemon's log, not the daemon's
/// own streams.
#[test]
fn hook_output_goes_to_the_log_not_to_the_daemon_streams() {
    capture_logs();
    let dir = temp();
    let fds = file(&dir, "fds");
    let cmd = format!(
        "fds=$(readlink /proc/$$/fd/1 /proc/$$/fd/2); echo \"$fds\" > {}; echo out-3f9a; echo err-3f9a >&2; \
         printf no-newline-3f9a",
        quoted(&fds)
    );
    let hooks = HookRunner::start(cmd, Duration::from_secs(10));
    hooks.notify(change("FOLLOWING", "LOOKING", 1));
    hooks.shutdown(Duration::from_secs(20));
    let ours: Vec<String> = [1, 2]
        .iter()
        .map(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let theirs = read(&fds);
    for (fd, line) in theirs.lines().enumerate() {
        assert!(line.starts_with("pipe:"), "{theirs:?}");
        assert_ne!(line, ours[fd], "hook fd {} is the daemon's", fd + 1);
    }
    assert_eq!(theirs.lines().count(), 2, "{theirs:?}");
    let out = logged("out-3f9a");
    assert!(
        out.len() == 1 && out[0].starts_with("INFO ") && out[0].ends_with("stdout: out-3f9a"),
        "{out:?}"
    );
    let err = logged("err-3f9a");
    assert!(
        err.len() == 1 && err[0].starts_with("WARN ") && err[0].ends_with("stderr: err-3f9a"),
        "{err:?}"
    );
    assert_eq!(logged("stdout: no-newline-3f9a").len(), 1);
}

/// A hook that writes far more than a pipe holds runs to its end: the worker keeps
/// reading, logs the first part and counts the rest.
#[test]
fn a_hook_flooding_its_output_neither_blocks_nor_floods_the_log() {
    capture_logs();
    let dir = temp();
    let done = file(&dir, "done");
    let cmd = format!(
        "yes flood-8c2e | head -n 300000; yes flood-8c2e | head -n 300000 >&2; touch {}",
        quoted(&done)
    );
    let started = Instant::now();
    let hooks = HookRunner::start(cmd, Duration::from_secs(30));
    hooks.notify(change("FOLLOWING", "LOOKING", 1));
    hooks.shutdown(Duration::from_secs(30));
    assert!(done.exists(), "the hook did not finish");
    assert!(started.elapsed() < Duration::from_secs(20));
    let lines = logged("flood-8c2e").len();
    assert!(
        lines > 100 && lines <= output::MAX_LOGGED_PER_RUN / 11 + 1,
        "{lines}"
    );
    assert!(!logged("byte(s) of output not logged").is_empty());
}

/// Shutdown ends a hung hook's whole process group: nothing of it is left.
#[test]
fn no_process_of_a_hung_hook_is_left_after_shutdown() {
    let dir = temp();
    let pids = file(&dir, "pids");
    let cmd = format!(
        "sleep 60 & echo $! > {p}.tmp; (trap '' TERM; sleep 60) & echo $! >> {p}.tmp; \
         mv {p}.tmp {p}; wait",
        p = quoted(&pids)
    );
    let hooks = HookRunner::start(cmd, Duration::from_secs(60));
    hooks.notify(change("LEADING", "LOOKING", 1));
    wait_for("hook started", || pids.exists());
    let started = Instant::now();
    hooks.shutdown(Duration::from_millis(100));
    assert!(started.elapsed() < Duration::from_secs(3));
    let pids: Vec<i32> = read(&pids).lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    // They are not our children: wait (bounded) for them to die.
    wait_for("the hook's processes are gone", || {
        !pids.iter().any(|&p| alive(p))
    });
}

#[test]
fn notify_does_not_block_while_a_hook_runs() {
    let hooks = HookRunner::start("exec sleep 5".into(), Duration::from_secs(30));
    let started = Instant::now();
    for i in 0..200 {
        hooks.notify(change("FOLLOWING", "LOOKING", i));
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(1), "notify took {elapsed:?}");
    // At most one was taken by the worker; every other one replaced its predecessor.
    assert!(hooks.skipped() >= 198, "{}", hooks.skipped());
    let started = Instant::now();
    hooks.shutdown(Duration::from_millis(100));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(3),
        "shutdown took {elapsed:?}"
    );
}

/// Timeouts and graces too large for `Instant` mean "no limit", not a panic.
#[test]
fn huge_timeout_and_grace_do_not_overflow() {
    let dir = temp();
    let out = file(&dir, "out");
    let cmd = format!("echo \"$VOTECAST_STATE\" >> {}", quoted(&out));
    let hooks = HookRunner::start(cmd, Duration::MAX);
    hooks.notify(change("LEADING", "LOOKING", 1));
    hooks.shutdown(Duration::MAX);
    assert_eq!(read(&out), "LEADING\n");
}

#[test]
fn shutdown_with_nothing_queued_is_quick() {
    let hooks = HookRunner::start("true".into(), Duration::from_secs(1));
    let started = Instant::now();
    hooks.shutdown(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn boottime_is_the_clock_of_proc_uptime() {
    let uptime = std::fs::read_to_string("/proc/uptime").expect("/proc/uptime");
    let ms = boottime_now_ms().expect("CLOCK_BOOTTIME");
    let uptime_ms = (uptime
        .split_whitespace()
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap()
        * 1000.0) as u64;
    assert!(
        ms >= uptime_ms && ms - uptime_ms < 1000,
        "{ms} vs {uptime_ms}"
    );
}

/// The graceful handover waits for the step-down hook: `wait_idle` tells when the run for
/// the latest change has ended, and whether it succeeded, never earlier.
#[test]
fn wait_idle_reports_the_end_of_the_latest_run() {
    let dir = temp();
    let gate = file(&dir, "gate");
    // LEADING waits for the gate; LOOKING fails unless the gate says "ok".
    let cmd = format!(
        "while [ ! -e {g} ]; do sleep 0.01; done; \
         [ \"$VOTECAST_STATE\" = LEADING ] || grep -q ok {g}",
        g = quoted(&gate)
    );
    let hooks = HookRunner::start(cmd, Duration::from_secs(10));
    assert_eq!(
        hooks.wait_idle(Duration::ZERO),
        Some(true),
        "nothing notified"
    );
    hooks.notify(change("LEADING", "FOLLOWING", 1));
    hooks.notify(change("LOOKING", "LEADING", 1));
    assert_eq!(hooks.wait_idle(Duration::from_millis(50)), None);
    std::fs::write(&gate, "no").unwrap();
    // The latest change (LOOKING) ran and failed.
    assert_eq!(hooks.wait_idle(Duration::from_secs(10)), Some(false));
    std::fs::write(&gate, "ok").unwrap();
    hooks.notify(change("LEADING", "LOOKING", 2));
    hooks.notify(change("LOOKING", "LEADING", 2));
    assert_eq!(hooks.wait_idle(Duration::from_secs(10)), Some(true));
    hooks.shutdown(Duration::from_secs(5));
}

#[test]
fn counters_tell_how_each_run_ended() {
    let dir = temp();
    let gate = file(&dir, "gate");
    // Epoch 1 succeeds, 2 fails, 3 runs into the timeout, 4 is stopped at shutdown.
    let cmd = format!(
        "case $VOTECAST_EPOCH in 1) exit 0;; 2) exit 3;; 3) sleep 30;; \
         4) touch {gate}; sleep 30;; esac",
        gate = quoted(&gate)
    );
    let hooks = HookRunner::start(cmd, Duration::from_millis(300));
    assert_eq!(hooks.counters(), HookCounters::default());
    for epoch in 1..=3 {
        hooks.notify(change("LEADING", "LOOKING", epoch));
        assert!(
            hooks.wait_idle(Duration::from_secs(10)).is_some(),
            "run {epoch}"
        );
    }
    let expected = HookCounters {
        succeeded: 1,
        failed: 1,
        timed_out: 1,
        ..HookCounters::default()
    };
    assert_eq!(hooks.counters(), expected);
    hooks.notify(change("LOOKING", "LEADING", 4));
    wait_for("the last hook started", || gate.exists());
    let counters = hooks.shared.clone();
    hooks.shutdown(Duration::ZERO);
    let stopped = counters.outcomes[Outcome::Stopped as usize].load(Ordering::Relaxed);
    assert_eq!(stopped, 1);
}

/// Voluntary context switches of the calling thread so far: each is a wait that ended.
fn voluntary_switches() -> u64 {
    let status = std::fs::read_to_string("/proc/thread-self/status").expect("/proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in /proc/thread-self/status")
}

/// The worker learns of a command's exit when it happens, not at its next look: it sleeps
/// through a run and wakes for the exit, whether the command's pipes are still open at
/// that moment or were closed long before. (A graceful handover waits for the step-down
/// hook's end; looking every 10 ms made it up to 10 ms late, and woke the worker ~30
/// times in these 0.3 s runs.)
#[test]
fn the_exit_of_a_command_wakes_the_worker_without_polling() {
    for script in ["sleep 0.3", "exec >/dev/null 2>&1; sleep 0.3"] {
        let before = voluntary_switches();
        let started = Instant::now();
        let output = |_, stdout, stderr| {
            output::Output::with_kind("test command", script.to_string(), stdout, stderr)
        };
        let stop = AtomicBool::new(false);
        let (ran, _) = run::run_in_group(script, &|_| {}, Duration::from_secs(30), &stop, output)
            .expect("/bin/sh starts");
        let took = started.elapsed();
        let woke = voluntary_switches() - before;
        assert!(ran.succeeded(), "{script}: {:?}", ran.status);
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{script}: {took:?}"
        );
        assert!(
            woke <= 15,
            "{script}: the worker woke {woke} times in {took:?}"
        );
    }
}

/// Writes a file `name` in `dir` with `text` and permission bits `mode`.
pub(super) fn file_with_mode(dir: &TempDir, name: &str, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = file(dir, name);
    std::fs::write(&path, text).expect("write file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

/// Writes an executable file `name` in `dir` with `text`.
fn executable(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    file_with_mode(dir, name, text, 0o755)
}

/// Runs `line` to its end as a track command would; its status code and kept output.
fn run_line(line: &str) -> (Option<i32>, String) {
    let output = |_, stdout, stderr| {
        output::Output::with_kind("test", line.into(), stdout, stderr).keeping()
    };
    let stop = AtomicBool::new(false);
    let (ran, mut out) =
        run::run_in_group(line, &|_| {}, Duration::from_secs(30), &stop, output).expect("starts");
    let code = ran.status.as_ref().ok().and_then(|s| s.code());
    (code, out.take_kept())
}

/// A command is run as `/bin/sh -c` would run it, whether or not it is started without
/// the shell: words as arguments, a builtin, a script without `#!`, a missing program.
#[test]
fn a_command_runs_as_the_shell_would_run_it() {
    let dir = temp();
    let args = executable(&dir, "args", "#!/bin/sh\nprintf '%s|' \"$@\"\n");
    let bare = executable(&dir, "bare", "printf 'no interpreter line'\n");
    let args = args.to_str().unwrap();
    assert_eq!(
        run_line(&format!("{args} a  b=c\t-d")),
        (Some(0), "a|b=c|-d|\n".into())
    );
    assert_eq!(
        run_line(&format!("{args} 'x y' $NO_SUCH_VAR")),
        (Some(0), "x y|\n".into())
    );
    assert_eq!(run_line("exit 3"), (Some(3), String::new()));
    assert_eq!(
        run_line(bare.to_str().unwrap()),
        (Some(0), "no interpreter line\n".into())
    );
    let (code, said) = run_line("votecast-no-such-program --flag");
    assert_eq!(code, Some(127), "{said}");
    assert!(said.contains("not found"), "{said}");
}

/// A hook started without the shell gets the change in its environment.
#[test]
fn a_plain_hook_command_gets_the_environment() {
    let dir = temp();
    let out = file(&dir, "out");
    let hook = executable(
        &dir,
        "hook",
        "#!/bin/sh\nprintf '%s %s %s\\n' \"$1\" \"$VOTECAST_STATE\" \"$VOTECAST_EPOCH\" >>\"$2\"\n",
    );
    let cmd = format!("{} leader-hook {}", hook.display(), out.display());
    let hooks = HookRunner::start(cmd, Duration::from_secs(10));
    hooks.notify(change("LEADING", "LOOKING", 9));
    hooks.shutdown(Duration::from_secs(20));
    assert_eq!(read(&out), "leader-hook LEADING 9\n");
}
