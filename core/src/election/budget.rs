//! The token bucket: how many frames may pass now.
//!
//! One type serves both limits of the core: the answers we multicast to LOOKING nodes (a
//! flood of LOOKING frames gets a bounded trickle of answers) and each voter's receive
//! budget (one voter cannot make us process an unbounded stream of frames).

use core::time::Duration;

use super::time::Instant;

/// Holds up to `BURST` tokens and earns one per `interval` of elapsed time. A refill
/// counts whole intervals since the previous refill and restarts the count at that
/// moment, so a fraction of an interval is not carried over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TokenBucket<const BURST: u32> {
    tokens: u32,
    refilled: Instant,
}

impl<const BURST: u32> TokenBucket<BURST> {
    /// A full bucket: a sender may burst right away.
    pub(super) const FULL: Self = TokenBucket {
        tokens: BURST,
        refilled: Instant::ZERO,
    };

    /// Refill for the time elapsed until `now`, then take one token if there is one. An
    /// `interval` of zero counts as one microsecond; a `now` before the last refill earns
    /// nothing.
    pub(super) fn take(&mut self, now: Instant, interval: Duration) -> bool {
        let interval = interval.max(Duration::from_micros(1));
        let elapsed = now.saturating_duration_since(self.refilled);
        let earned = u32::try_from(elapsed.as_micros() / interval.as_micros()).unwrap_or(u32::MAX);
        if earned > 0 {
            self.tokens = self.tokens.saturating_add(earned).min(BURST);
            self.refilled = now;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn drain<const B: u32>(bucket: &mut TokenBucket<B>, now: Instant) -> u32 {
        let mut taken = 0;
        while bucket.take(now, MS) {
            taken += 1;
        }
        taken
    }

    #[test]
    fn full_bucket_allows_one_burst_then_refuses() {
        let mut bucket = TokenBucket::<4>::FULL;
        assert_eq!(drain(&mut bucket, Instant::ZERO), 4);
        assert!(!bucket.take(Instant::ZERO, MS));
        // Less than one interval later: still nothing.
        assert!(!bucket.take(Instant::from_micros(999), MS));
    }

    #[test]
    fn earns_one_token_per_interval_up_to_the_burst() {
        let mut bucket = TokenBucket::<4>::FULL;
        drain(&mut bucket, Instant::ZERO);
        assert_eq!(drain(&mut bucket, Instant::from_millis(3)), 3);
        // A long silence refills to the burst, not beyond.
        assert_eq!(drain(&mut bucket, Instant::from_millis(1_000)), 4);
    }

    #[test]
    fn fraction_of_an_interval_is_dropped_at_a_refill() {
        let mut bucket = TokenBucket::<4>::FULL;
        drain(&mut bucket, Instant::ZERO);
        // 1.5 intervals: one token; the count restarts at 1.5 ms.
        assert_eq!(drain(&mut bucket, Instant::from_micros(1_500)), 1);
        // At 2.0 ms only half an interval has passed since that refill.
        assert!(!bucket.take(Instant::from_millis(2), MS));
        assert!(bucket.take(Instant::from_micros(2_500), MS));
    }

    #[test]
    fn zero_interval_and_backwards_clock() {
        let mut bucket = TokenBucket::<2>::FULL;
        drain(&mut bucket, Instant::from_millis(5));
        // Zero counts as one microsecond.
        assert!(bucket.take(Instant::from_micros(5_001), Duration::ZERO));
        assert!(!bucket.take(Instant::from_micros(5_001), Duration::ZERO));
        // A clock that goes back earns nothing.
        assert!(!bucket.take(Instant::from_millis(1), MS));
    }
}
