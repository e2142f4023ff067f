//! `--on-change CMD`: run a shell command on every state change, off the event loop.
//!
//! One worker thread runs the hooks in order, one at a time, as `/bin/sh -c CMD` with
//!
//! | variable                  | value                                         |
//! |---------------------------|-----------------------------------------------|
//! | `VOTECAST_ID`             | this node's id                                |
//! | `VOTECAST_STATE`          | new state (`LOOKING`, `FOLLOWING`, ...)       |
//! | `VOTECAST_PREVIOUS_STATE` | state before the change                       |
//! | `VOTECAST_LEADER`         | leader id, empty when there is none           |
//! | `VOTECAST_EPOCH`          | epoch, empty when there is none               |
//!
//! stdin is `/dev/null`; stdout and stderr are the daemon's. A hook that runs longer than
//! `--hook-timeout` is killed (SIGKILL to the shell votecast started; a hook that starts
//! long-running children of its own should `exec` them or manage them itself).
//!
//! [`HookRunner::notify`] never blocks the event loop. The queue holds 64 changes; when it
//! is full the newest change is parked in a one-change overflow slot, and each further
//! change replaces the parked one. Replaced changes are dropped, counted
//! ([`HookRunner::dropped`]) and logged. So under overload intermediate changes are
//! skipped, but the hook always ends up seeing the latest state, in order.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Changes the queue holds before the overflow slot is used.
pub const HOOK_QUEUE_CAPACITY: usize = 64;

/// How often a running hook is checked for exit, deadline and shutdown.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// One state change, as handed to the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub id: u64,
    pub state: &'static str,
    pub previous_state: &'static str,
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
}

/// State shared by [`HookRunner`] and its worker.
struct Shared {
    /// The newest change that did not fit the queue.
    overflow: Mutex<Option<StateChange>>,
    /// Set when the shutdown grace has run out: kill the running hook, skip the rest.
    stop: AtomicBool,
    dropped: AtomicU64,
}

impl Shared {
    fn overflow(&self) -> MutexGuard<'_, Option<StateChange>> {
        // The lock guards a plain Option; a panic elsewhere cannot leave it inconsistent.
        self.overflow.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs `--on-change` hooks on a worker thread.
pub struct HookRunner {
    tx: Option<SyncSender<StateChange>>,
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl HookRunner {
    /// Starts the worker thread for `command`, each run limited to `timeout`.
    ///
    /// # Panics
    /// If the operating system refuses to start a thread (at start-up, so it fails early).
    pub fn start(command: String, timeout: Duration) -> HookRunner {
        Self::start_with_capacity(command, timeout, HOOK_QUEUE_CAPACITY)
    }

    fn start_with_capacity(command: String, timeout: Duration, capacity: usize) -> HookRunner {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let shared = Arc::new(Shared {
            overflow: Mutex::new(None),
            stop: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let worker_shared = Arc::clone(&shared);
        let worker = thread::Builder::new()
            .name("votecast-hooks".into())
            .spawn(move || worker(rx, &worker_shared, &command, timeout))
            .expect("cannot start the on-change hook thread");
        HookRunner {
            tx: Some(tx),
            shared,
            worker: Some(worker),
        }
    }

    /// Queues `change` for the hook. Never blocks; never allocates unless it has to log.
    pub fn notify(&self, change: StateChange) {
        let Some(tx) = &self.tx else { return };
        let mut overflow = self.shared.overflow();
        if let Some(parked) = overflow.as_mut() {
            // Keep order: while a change is parked, newer ones replace it.
            let old = std::mem::replace(parked, change);
            drop(overflow);
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            log::warn!(
                "on-change hook queue is full: skipping change {} -> {} (epoch {:?}), \
                 a newer one replaces it ({n} skipped so far)",
                old.previous_state,
                old.state,
                old.epoch
            );
            return;
        }
        match tx.try_send(change) {
            Ok(()) => {}
            Err(TrySendError::Full(change)) => {
                *overflow = Some(change);
                drop(overflow);
                log::warn!(
                    "on-change hook queue is full ({} changes waiting); \
                     further changes replace each other until it drains",
                    HOOK_QUEUE_CAPACITY
                );
            }
            Err(TrySendError::Disconnected(change)) => {
                drop(overflow);
                let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                log::error!(
                    "on-change hook worker is gone: change {} -> {} not run ({n} skipped so far)",
                    change.previous_state,
                    change.state
                );
            }
        }
    }

    /// How many changes were skipped because the queue was full (or the worker gone).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Stops accepting changes and waits up to `grace` for the queued hooks to finish. When
    /// the grace runs out, the running hook is killed and the rest are skipped (and logged).
    pub fn shutdown(mut self, grace: Duration) {
        drop(self.tx.take());
        let Some(worker) = self.worker.take() else {
            return;
        };
        let deadline = Instant::now() + grace;
        while !worker.is_finished() {
            let now = Instant::now();
            if now >= deadline {
                log::warn!(
                    "on-change hooks still running after {grace:?} at shutdown; stopping them"
                );
                self.shared.stop.store(true, Ordering::Release);
                break;
            }
            thread::sleep(POLL_INTERVAL.min(deadline - now));
        }
        // With `stop` set the worker returns within one poll interval.
        if worker.join().is_err() {
            log::error!("on-change hook worker panicked");
        }
    }
}

fn worker(rx: Receiver<StateChange>, shared: &Shared, command: &str, timeout: Duration) {
    loop {
        if shared.stop.load(Ordering::Acquire) {
            let left = rx.try_iter().count() + usize::from(shared.overflow().take().is_some());
            if left > 0 {
                log::warn!("shutdown: {left} queued on-change hook run(s) skipped");
            }
            return;
        }
        // The queue first, then the parked overflow change; both under the overflow lock so
        // that `notify` cannot slip a change past the parked one.
        let next = {
            let mut overflow = shared.overflow();
            match rx.try_recv() {
                Ok(change) => Some(change),
                Err(TryRecvError::Empty) => overflow.take(),
                Err(TryRecvError::Disconnected) => match overflow.take() {
                    Some(change) => Some(change),
                    None => return,
                },
            }
        };
        let change = match next {
            Some(change) => change,
            None => match rx.recv() {
                Ok(change) => change,
                Err(_) => continue, // closed: the loop above drains what is left and returns
            },
        };
        run_hook(command, timeout, &change, &shared.stop);
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn kill_and_reap(child: &mut Child) {
    // Our own child, by its handle: the pid cannot have been reused before we reap it.
    let _ = child.kill();
    let _ = child.wait();
}

fn run_hook(command: &str, timeout: Duration, change: &StateChange, stop: &AtomicBool) {
    let what = format!("{} -> {}", change.previous_state, change.state);
    let started = Instant::now();
    let mut child = match Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("VOTECAST_ID", change.id.to_string())
        .env("VOTECAST_STATE", change.state)
        .env("VOTECAST_PREVIOUS_STATE", change.previous_state)
        .env("VOTECAST_LEADER", opt(change.leader))
        .env("VOTECAST_EPOCH", opt(change.epoch))
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            log::error!("cannot start on-change hook for {what}: /bin/sh: {e}");
            return;
        }
    };
    let pid = child.id();
    let deadline = started + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let ms = started.elapsed().as_millis();
                if status.success() {
                    log::info!("on-change hook for {what} (pid {pid}) finished in {ms} ms");
                } else {
                    log::warn!(
                        "on-change hook for {what} (pid {pid}) failed after {ms} ms: {status}"
                    );
                }
                return;
            }
            Ok(None) => {}
            Err(e) => {
                log::error!("cannot wait for on-change hook for {what} (pid {pid}): {e}");
                kill_and_reap(&mut child);
                return;
            }
        }
        if stop.load(Ordering::Acquire) {
            kill_and_reap(&mut child);
            log::warn!("on-change hook for {what} (pid {pid}) killed at shutdown");
            return;
        }
        let now = Instant::now();
        if now >= deadline {
            kill_and_reap(&mut child);
            log::error!(
                "on-change hook for {what} (pid {pid}) ran longer than {timeout:?}; killed it"
            );
            return;
        }
        thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicU32;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "votecast-hooks-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        fn file(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn quoted(p: &Path) -> String {
        let s = p.to_str().unwrap();
        assert!(!s.contains('\''));
        format!("'{s}'")
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    fn change(state: &'static str, previous_state: &'static str, epoch: u64) -> StateChange {
        StateChange {
            id: 7,
            state,
            previous_state,
            leader: Some(3),
            epoch: Some(epoch),
        }
    }

    #[test]
    fn hooks_run_in_order_with_the_right_environment() {
        let dir = TempDir::new();
        let out = dir.file("out");
        let cmd = format!(
            "read line; printf '%s\\n' \"$VOTECAST_ID:$VOTECAST_STATE:$VOTECAST_PREVIOUS_STATE:\
             $VOTECAST_LEADER:$VOTECAST_EPOCH:$line\" >> {}",
            quoted(&out)
        );
        let hooks = HookRunner::start(cmd, Duration::from_secs(10));
        hooks.notify(StateChange {
            id: 7,
            state: "LOOKING",
            previous_state: "LOOKING",
            leader: None,
            epoch: None,
        });
        hooks.notify(change("FOLLOWING", "LOOKING", 4));
        hooks.notify(StateChange {
            leader: Some(7),
            ..change("LEADING", "FOLLOWING", 5)
        });
        hooks.shutdown(Duration::from_secs(20));
        assert_eq!(
            read(&out),
            "7:LOOKING:LOOKING:::\n7:FOLLOWING:LOOKING:3:4:\n7:LEADING:FOLLOWING:7:5:\n"
        );
    }

    #[test]
    fn slow_hook_is_killed_and_the_next_one_runs() {
        let dir = TempDir::new();
        let out = dir.file("out");
        let cmd = format!(
            "if [ \"$VOTECAST_STATE\" = LOOKING ]; then exec sleep 30; fi; \
             echo \"$VOTECAST_STATE\" >> {}",
            quoted(&out)
        );
        let started = Instant::now();
        let hooks = HookRunner::start(cmd, Duration::from_millis(200));
        hooks.notify(change("LOOKING", "FOLLOWING", 1));
        hooks.notify(change("FOLLOWING", "LOOKING", 2));
        hooks.shutdown(Duration::from_secs(20));
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
        assert_eq!(read(&out), "FOLLOWING\n");
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
        // 64 queued, at most one running, one parked; the rest were replaced.
        assert!(hooks.dropped() >= 200 - 66, "{}", hooks.dropped());
        let started = Instant::now();
        hooks.shutdown(Duration::from_millis(100));
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(3),
            "shutdown took {elapsed:?}"
        );
    }

    #[test]
    fn overflow_keeps_the_newest_change_in_order() {
        let dir = TempDir::new();
        let out = dir.file("out");
        let gate = dir.file("gate");
        let started0 = dir.file("started");
        let cmd = format!(
            "touch {started}; while [ ! -e {gate} ]; do sleep 0.01; done; \
             echo \"$VOTECAST_EPOCH\" >> {out}",
            started = quoted(&started0),
            gate = quoted(&gate),
            out = quoted(&out),
        );
        let hooks = HookRunner::start_with_capacity(cmd, Duration::from_secs(30), 2);
        hooks.notify(change("FOLLOWING", "LOOKING", 0));
        let wait_start = Instant::now();
        while !started0.exists() {
            assert!(wait_start.elapsed() < Duration::from_secs(10));
            thread::sleep(Duration::from_millis(5));
        }
        for epoch in 1..10 {
            hooks.notify(change("FOLLOWING", "LOOKING", epoch));
        }
        // 1 and 2 are queued, 3 was parked and replaced by 4..9 in turn.
        assert_eq!(hooks.dropped(), 6);
        std::fs::write(&gate, "").unwrap();
        hooks.shutdown(Duration::from_secs(20));
        assert_eq!(read(&out), "0\n1\n2\n9\n");
    }

    #[test]
    fn shutdown_with_nothing_queued_is_quick() {
        let hooks = HookRunner::start("true".into(), Duration::from_secs(1));
        let started = Instant::now();
        hooks.shutdown(Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
