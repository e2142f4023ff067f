//! The daemon's clocks: one reading of the core's clock and the two published clocks
//! together, and the values derived from the wall clock at start (process nonce,
//! incarnation floor) and on every tick (epoch floor).
//!
//! The core runs on CLOCK_BOOTTIME (in µs): it never steps, counts suspend, is the same for
//! every process on the host and continues across a restart of the daemon. So a lease
//! stamp taken by an earlier process is always older than anything this process starts,
//! and a lease end on the core's clock *is* the published `*_boottime_ms` value, without
//! a conversion. Only the wall-clock value is converted, from a reading taken together
//! with the core's.

use std::io::Read as _;

use nix::time::{clock_gettime, ClockId};
use votecast_core::election::Instant;

use crate::daemon::unix_now_ms;

/// 2020-01-01T00:00:00Z: a wall clock before this is not set (a board without a real-time
/// clock boots at 1970 or at its build date).
pub const JAN_2020_UNIX_S: u64 = 1_577_836_800;

/// The clocks read at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The core's clock.
    pub core: Instant,
    /// The wall clock, ms since 1970.
    pub unix_ms: u64,
    /// CLOCK_BOOTTIME in ms, `None` when the core's clock had to fall back to
    /// CLOCK_MONOTONIC (then the two are not the same clock).
    pub boottime_ms: Option<u64>,
}

/// The core's clock source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    id: ClockId,
}

impl Clock {
    /// CLOCK_BOOTTIME when the system has it (Linux since 2.6.39), else CLOCK_MONOTONIC.
    pub fn new() -> Clock {
        let id = if clock_gettime(ClockId::CLOCK_BOOTTIME).is_ok() {
            ClockId::CLOCK_BOOTTIME
        } else {
            log::warn!("no CLOCK_BOOTTIME: the election runs on CLOCK_MONOTONIC");
            ClockId::CLOCK_MONOTONIC
        };
        Clock { id }
    }

    /// The clock the core runs on.
    pub fn id(&self) -> ClockId {
        self.id
    }

    /// The core's clock now.
    pub fn core(&self) -> Instant {
        Instant::from_micros(micros(self.id))
    }

    /// Every clock, read back to back: the core's clock first, the wall clock after, so a
    /// lease end converted to the wall clock can only come out early, never late.
    pub fn now(&self) -> Now {
        let core = self.core();
        let unix_ms = unix_now_ms();
        Now {
            core,
            unix_ms,
            boottime_ms: (self.id == ClockId::CLOCK_BOOTTIME).then(|| core.as_micros() / 1000),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// `id` in µs (0 if it cannot be read, which [`Clock::new`] has ruled out).
fn micros(id: ClockId) -> u64 {
    let Ok(t) = clock_gettime(id) else {
        return 0;
    };
    let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
    let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1000)
}

/// Whether a wall-clock reading looks set (after 2020-01-01).
pub fn looks_set(unix_ms: u64) -> bool {
    unix_ms / 1000 >= JAN_2020_UNIX_S
}

/// The floor of this start's incarnation: the wall-clock second when the clock looks set,
/// else 0 (see `DataDir::bump_incarnation`).
pub fn incarnation_floor(unix_ms: u64) -> u32 {
    if !looks_set(unix_ms) {
        return 0;
    }
    u32::try_from(unix_ms / 1000).unwrap_or(0)
}

/// The floor for the epochs this node proposes: milliseconds since 2020 when the wall
/// clock looks set, else 0 (no floor). Epochs then keep increasing across a wiped data dir
/// as long as the clocks are set and agree within the time between two leaderships
/// (seconds would let two leaderships within one second share a floor).
pub fn epoch_floor(unix_ms: u64) -> u64 {
    if !looks_set(unix_ms) {
        return 0;
    }
    unix_ms - JAN_2020_UNIX_S * 1000
}

/// 64 random bits: 8 bytes of `/dev/urandom`, or, where that cannot be read, the clocks
/// and the pid mixed (`what` names the use in the warning).
fn random_u64(what: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    match read {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(e) => {
            log::warn!("cannot read /dev/urandom ({e}); the {what} mixes clocks and pid");
            let boot = micros(ClockId::CLOCK_BOOTTIME);
            let pid = u64::from(std::process::id());
            votecast_core::rng::mix(boot ^ unix_now_ms().rotate_left(20) ^ (pid << 44))
        }
    }
}

/// A random number for this process, which the core binds its lease stamps to.
pub fn process_nonce() -> u64 {
    random_u64("process nonce")
}

/// The incarnation of a start without a stored counter (no data dir, a first start, a
/// wiped data dir): random, nonzero and below 2^31 (room to count up). Every process start
/// needs an incarnation of its own (a repeated one would let a late frame of the earlier
/// process end promises made to this one); a lower one than the last process's is
/// readmitted by the peers once that one has been silent (`Config::readmit_after`),
/// whereas a fixed start value or the wall-clock second can repeat.
pub fn fresh_incarnation() -> u32 {
    ((random_u64("incarnation") >> 33) as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_clock_is_boottime_and_moves_with_the_published_one() {
        let clock = Clock::new();
        let a = clock.now();
        let boot = a.boottime_ms.expect("Linux has CLOCK_BOOTTIME");
        assert_eq!(boot, a.core.as_micros() / 1000);
        // The same clock as /proc/uptime (10 ms resolution there).
        let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
        let uptime_ms = (uptime.split(' ').next().unwrap().parse::<f64>().unwrap() * 1000.0) as u64;
        assert!(uptime_ms.abs_diff(boot) < 1_000, "{uptime_ms} vs {boot}");
        let b = clock.now();
        assert!(b.core >= a.core && b.unix_ms + 1_000 >= a.unix_ms);
    }

    #[test]
    fn floors_only_from_a_clock_that_looks_set() {
        let jan_2020_ms = JAN_2020_UNIX_S * 1000;
        assert_eq!(epoch_floor(0), 0);
        assert_eq!(epoch_floor(jan_2020_ms - 1), 0);
        assert_eq!(epoch_floor(jan_2020_ms), 0);
        assert_eq!(epoch_floor(jan_2020_ms + 86_400_500), 86_400_500);
        assert!(epoch_floor(jan_2020_ms + 1_001) > epoch_floor(jan_2020_ms + 1_000));
        assert_eq!(incarnation_floor(1_000_000), 0);
        assert_eq!(
            incarnation_floor(jan_2020_ms + 5_000),
            u32::try_from(JAN_2020_UNIX_S + 5).unwrap()
        );
        // Beyond 2106 the incarnation floor no longer fits: no floor rather than a wrap.
        assert_eq!(incarnation_floor((u64::from(u32::MAX) + 1) * 1000), 0);
    }

    #[test]
    fn nonces_and_fresh_incarnations_differ_between_calls() {
        assert_ne!(process_nonce(), process_nonce());
        let incarnations: Vec<u32> = (0..4).map(|_| fresh_incarnation()).collect();
        assert!(incarnations.iter().all(|i| (1..1 << 31).contains(i)));
        assert!(
            incarnations.windows(2).any(|w| w[0] != w[1]),
            "{incarnations:?}"
        );
    }
}
