//! Monotonic time as the core sees it: an opaque count of microseconds that the driver
//! (or the simulator) passes in. The core never reads a clock.

use core::ops::{Add, Sub};
use core::time::Duration;

/// A point on the node's own monotonic clock, in microseconds from an arbitrary origin.
///
/// The origin must not change while the process lives (leaders compare echoed time stamps
/// with their own clock). Across restarts it may change freely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant {
    micros: u64,
}

impl Instant {
    pub const ZERO: Instant = Instant { micros: 0 };
    /// Far enough in the future to mean "never", with room to add durations.
    pub const FAR_FUTURE: Instant = Instant {
        micros: u64::MAX / 2,
    };

    pub const fn from_micros(micros: u64) -> Instant {
        Instant { micros }
    }

    pub const fn from_millis(millis: u64) -> Instant {
        Instant {
            micros: millis.saturating_mul(1000),
        }
    }

    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating: a deadline past the end of time is "never".
    fn add(self, rhs: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_add(duration_micros(rhs)),
        }
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant {
            micros: self.micros.saturating_sub(duration_micros(rhs)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!((t + Duration::from_millis(2)).as_micros(), 7000);
        assert_eq!((t - Duration::from_secs(1)), Instant::ZERO);
        assert_eq!(
            Instant::from_micros(u64::MAX) + Duration::from_secs(1),
            Instant::from_micros(u64::MAX)
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_millis(9)),
            Duration::ZERO
        );
        assert_eq!(
            Instant::from_millis(9).saturating_duration_since(t),
            Duration::from_millis(4)
        );
    }
}
