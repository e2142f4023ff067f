//! Replaces a published file (the state file, the metrics file) from a thread of its own,
//! so that a slow or stalled file system never stalls the event loop: on ext4 a rename
//! can wait hundreds of milliseconds for a journal commit (online discard, a slow SD card
//! or virtual disk, another process's fsync), and a loop waiting there sends no
//! heartbeat and answers none, so its leader loses its lease and its followers leave.
//!
//! The loop hands over the newest content ([`FilePublisher::publish`]) and goes on; it
//! only takes a lock the writer holds to swap two buffers. The writer replaces the file
//! ([`AtomicFile::replace`]) with the newest content it was given: content superseded
//! before it was written is skipped, never written after newer content. Each hand-over
//! has a generation, and [`FilePublisher::caught_up`] tells the loop whether the file
//! holds the newest one (a graceful handover waits for that, or for the published lease
//! to run out, before it resigns). Write errors are logged by the writer (rate-limited).
//! The buffers keep their capacity, so a hand-over allocates nothing once the first
//! content of the largest size has been published.
//!
//! A file in a memory-backed file system (tmpfs, ramfs: `/run`, where the package puts
//! the state file, or `/dev/shm`) is replaced on the caller's thread instead: there no
//! write or rename waits for a device, and a writer thread would only add a wake-up of
//! its own to every replacement (the leader's state file is replaced every tick or two,
//! so the thread doubled its wake-ups and added more than a quarter to its CPU time at a
//! 50 ms tick).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::atomic_file::AtomicFile;
use crate::logging::{RateLimit, WARN_EVERY};

/// What the loop and the writer share.
#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    /// The writer waits on it for content; [`FilePublisher::flush`] for the writes.
    wake: Condvar,
    /// The generation the file holds (written or failed: the writer is done with it).
    done: AtomicU64,
}

#[derive(Debug, Default)]
struct Slot {
    /// The newest content not yet taken by the writer, and its generation.
    next: Vec<u8>,
    next_generation: u64,
    /// The writer is asked to write the pending content, then end.
    stop: bool,
}

/// A file replaced from its own thread (see the module docs).
#[derive(Debug)]
pub struct FilePublisher {
    path: PathBuf,
    /// For writing on the caller's thread where no writer thread could start.
    inline: AtomicFile,
    shared: Arc<Shared>,
    /// The newest generation handed over.
    handed: u64,
    thread: Option<JoinHandle<()>>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A writer that panicked leaves the content intact: go on with it.
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FilePublisher {
    /// Starts the writer for `path` (`what` names the file in the log: "state file").
    /// Touches nothing until the first [`publish`](Self::publish). In a memory-backed
    /// directory, or where the system refused a thread, the file is replaced on the
    /// caller's thread instead.
    pub fn new(path: PathBuf, what: &'static str, capacity: usize) -> FilePublisher {
        let shared = Arc::new(Shared::default());
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        if memory_backed(dir) {
            log::debug!(
                "{what} {}: in memory, written in the event loop",
                path.display()
            );
            return FilePublisher {
                inline: AtomicFile::new(path.clone()),
                path,
                shared,
                handed: 0,
                thread: None,
            };
        }
        lock(&shared.slot).next.reserve(capacity);
        let file = AtomicFile::new(path.clone());
        let writer = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("votecast-{}", what.replace(' ', "-")))
            .spawn(move || write_loop(&writer, &file, what, capacity))
            .inspect_err(|e| {
                log::warn!(
                    "{what} {}: no writer thread ({e}): written in the event loop",
                    path.display()
                )
            })
            .ok();
        FilePublisher {
            inline: AtomicFile::new(path.clone()),
            path,
            shared,
            handed: 0,
            thread,
        }
    }

    /// Whether a thread of its own replaces the file (else the caller's thread does).
    pub fn threaded(&self) -> bool {
        self.thread.is_some()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands `bytes` to the writer as the file's newest content.
    pub fn publish(&mut self, bytes: &[u8]) {
        self.handed += 1;
        if self.thread.is_none() {
            if let Err(e) = self.inline.replace(bytes) {
                log::warn!("{}: {e}", self.path.display());
            }
            self.shared.done.store(self.handed, Ordering::Release);
            return;
        }
        let mut slot = lock(&self.shared.slot);
        slot.next.clear();
        slot.next.extend_from_slice(bytes);
        slot.next_generation = self.handed;
        drop(slot);
        self.shared.wake.notify_all();
    }

    /// Whether the file holds the newest content handed over (or its write failed).
    pub fn caught_up(&self) -> bool {
        self.shared.done.load(Ordering::Acquire) >= self.handed
    }

    /// Waits up to `timeout` until [`caught_up`](Self::caught_up); returns whether it is.
    /// Blocks: for the end of the process and for tests, never for the event loop.
    pub fn flush(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut slot = lock(&self.shared.slot);
        while !self.caught_up() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            slot = self
                .shared
                .wake
                .wait_timeout(slot, left.min(Duration::from_millis(10)))
                .map(|(s, _)| s)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        true
    }
}

impl Drop for FilePublisher {
    /// The newest content is written before the process ends, unless the file system
    /// holds the writer for more than a second: then it is left behind, not waited for.
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        lock(&self.shared.slot).stop = true;
        self.shared.wake.notify_all();
        if self.flush(Duration::from_secs(1)) {
            let _ = thread.join();
        }
    }
}

/// Whether `dir` is in a file system kept in memory (tmpfs, ramfs), where replacing a
/// file never waits for a device. False when that cannot be told.
pub fn memory_backed(dir: &Path) -> bool {
    use nix::sys::statfs::{statfs, TMPFS_MAGIC};
    // linux/magic.h; the libc crate does not name it. Compared as the 32 bits it is,
    // whatever the width and sign of `f_type` on the target.
    const RAMFS_MAGIC: u32 = 0x8584_58f6;
    statfs(dir).is_ok_and(|fs| {
        let kind = fs.filesystem_type();
        kind == TMPFS_MAGIC || kind.0 as u32 == RAMFS_MAGIC
    })
}

fn write_loop(shared: &Shared, file: &AtomicFile, what: &str, capacity: usize) {
    let mut current: Vec<u8> = Vec::with_capacity(capacity);
    let mut warn = RateLimit::new(WARN_EVERY);
    let mut taken = 0;
    loop {
        let mut slot = lock(&shared.slot);
        while slot.next_generation == taken && !slot.stop {
            slot = shared
                .wake
                .wait(slot)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if slot.next_generation == taken {
            return; // stopped, and everything is written
        }
        std::mem::swap(&mut current, &mut slot.next);
        taken = slot.next_generation;
        drop(slot);
        match file.replace(&current) {
            Ok(()) => {
                warn.reset();
            }
            Err(e) => {
                if let Some(suppressed) = warn.allow(Instant::now()) {
                    log::warn!("{what} {}: {e}{suppressed}", file.path().display());
                }
            }
        }
        shared.done.store(taken, Ordering::Release);
        shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::TempDir;

    #[test]
    fn the_newest_content_is_written_and_flush_waits_for_it() {
        let dir = TempDir::new("votecast-file-publisher").unwrap();
        let path = dir.join("state");
        let mut p = FilePublisher::new(path.clone(), "state file", 64);
        for n in 0..200 {
            p.publish(format!("version {n}\n").as_bytes());
        }
        assert!(p.flush(Duration::from_secs(5)));
        assert!(p.caught_up());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "version 199\n");
        assert!(!dir.join("state.tmp").exists());
    }

    #[test]
    fn a_file_in_memory_is_written_by_the_caller_and_one_on_disk_by_a_thread() {
        // /dev/shm is a tmpfs on Linux; a directory under the build's target is on the
        // disk the sources are on.
        let shm = Path::new("/dev/shm");
        assert!(memory_backed(shm), "/dev/shm is no tmpfs here");
        let name = format!("votecast-publisher-test-{}", std::process::id());
        let mut p = FilePublisher::new(shm.join(&name), "state file", 64);
        assert!(!p.threaded());
        p.publish(b"at once\n");
        assert!(p.caught_up(), "written before publish returned");
        assert_eq!(std::fs::read_to_string(p.path()).unwrap(), "at once\n");
        let _ = std::fs::remove_file(p.path());
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
        if !memory_backed(&target) {
            let disk = FilePublisher::new(target.join(&name), "state file", 64);
            assert!(disk.threaded());
        }
        assert!(!memory_backed(Path::new("/proc/self")));
    }

    #[test]
    fn dropping_the_publisher_writes_what_is_pending() {
        let dir = TempDir::new("votecast-file-publisher").unwrap();
        let path = dir.join("state");
        let mut p = FilePublisher::new(path.clone(), "state file", 64);
        p.publish(b"first\n");
        p.publish(b"last\n");
        drop(p);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "last\n");
    }

    #[test]
    fn a_failing_write_is_done_with_and_the_next_one_succeeds() {
        let dir = TempDir::new("votecast-file-publisher").unwrap();
        let path = dir.join("missing").join("state");
        let mut p = FilePublisher::new(path.clone(), "state file", 64);
        p.publish(b"lost\n");
        assert!(
            p.flush(Duration::from_secs(5)),
            "a failed write still counts as done"
        );
        std::fs::create_dir(dir.join("missing")).unwrap();
        p.publish(b"kept\n");
        assert!(p.flush(Duration::from_secs(5)));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
    }
}
