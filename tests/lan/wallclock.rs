//! Watches the host's wall clock against CLOCK_BOOTTIME from the test process, as the
//! daemon's quiet socket does (`driver::quiet`): a follower sleeps through heartbeats
//! only while the wall clock is not being set, so a test that expects it to sleep asks
//! this watch whether the host's clock was set meanwhile (some virtual machines' time
//! agents set it often).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// A move of the offset larger than this is the clock being set (the daemon's tolerance).
const TOLERANCE_NS: i128 = 100_000;
/// A reading wider than this (preempted between the clock reads) is not used.
const TIGHT_NS: i128 = 20_000;

/// What the watch saw: how often the wall clock was set, and by how much at most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen {
    pub moves: u64,
    pub largest_us: u64,
}

/// A thread reading the offset every millisecond until dropped.
pub struct WallClockWatch {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    moves: AtomicU64,
    largest_us: AtomicU64,
}

fn ns(id: ClockId) -> i128 {
    let t = clock_gettime(id).expect("clock_gettime");
    i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
}

/// Wall minus boot time, bracketed by two boot-time readings; `None` if not tight.
fn offset() -> Option<i128> {
    let before = ns(ClockId::CLOCK_BOOTTIME);
    let wall = ns(ClockId::CLOCK_REALTIME);
    let after = ns(ClockId::CLOCK_BOOTTIME);
    (after - before <= TIGHT_NS).then_some(wall - after)
}

impl WallClockWatch {
    pub fn start() -> WallClockWatch {
        let shared = Arc::new(Shared::default());
        let watch = shared.clone();
        let thread = std::thread::spawn(move || {
            let mut last = None;
            // Runs as long as the test that started it; stopped by the drop.
            while !watch.stop.load(Ordering::Relaxed) {
                if let Some(now) = offset() {
                    if let Some(before) = last.replace(now) {
                        let moved = (now - before).unsigned_abs();
                        if moved > TOLERANCE_NS.unsigned_abs() {
                            watch.moves.fetch_add(1, Ordering::Relaxed);
                            let us = u64::try_from(moved / 1000).unwrap_or(u64::MAX);
                            watch.largest_us.fetch_max(us, Ordering::Relaxed);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        WallClockWatch {
            shared,
            thread: Some(thread),
        }
    }

    /// What it saw so far.
    pub fn seen(&self) -> Seen {
        Seen {
            moves: self.shared.moves.load(Ordering::Relaxed),
            largest_us: self.shared.largest_us.load(Ordering::Relaxed),
        }
    }
}

impl Drop for WallClockWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sets the host's wall clock forward by `step` every `every` until dropped, as a time
/// agent that keeps correcting a virtual machine's clock does. Needs CAP_SYS_TIME over
/// the host's clock (root, not a user namespace). Forward only: every lease end already
/// published on the wall clock stays at or before the real one.
pub struct ClockSetter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ClockSetter {
    pub fn start(step: Duration, every: Duration) -> Result<ClockSetter, nix::Error> {
        let step = nix::sys::time::TimeSpec::from_duration(step);
        let set = move || {
            let now = clock_gettime(ClockId::CLOCK_REALTIME)?;
            nix::time::clock_settime(ClockId::CLOCK_REALTIME, now + step)
        };
        // Fails here, before any thread, without the privilege.
        set()?;
        let shared = Arc::new(Shared::default());
        let setter = shared.clone();
        let thread = std::thread::spawn(move || {
            // Runs as long as the test that started it; stopped by the drop.
            while !setter.stop.load(Ordering::Relaxed) {
                std::thread::sleep(every);
                if set().is_ok() {
                    setter.moves.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(ClockSetter {
            shared,
            thread: Some(thread),
        })
    }

    /// How often it has set the clock.
    pub fn times(&self) -> u64 {
        self.shared.moves.load(Ordering::Relaxed) + 1
    }
}

impl Drop for ClockSetter {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
