//! Notices when the event loop itself ran late: it woke long after the deadline it slept
//! for, or one turn took that long. The process was not scheduled (a stalled or
//! overloaded host, a paused virtual machine, memory being paged back in, a SIGSTOP) or a
//! system call blocked. Either delays every heartbeat and deadline at once, and explains
//! a lost lease or an election that no frame explains, so it is logged (rate-limited)
//! and counted in the stats line, as ZooKeeper logs its JVM pauses.

use std::time::Duration;

use votecast_core::election::Instant;

use crate::logging::RateLimit;

/// How late the loop may run before it counts as a stall: a whole tick (a heartbeat
/// sent or heard that much late), but never less than this.
pub const MIN_STALL: Duration = Duration::from_millis(20);

/// The stalls seen so far.
#[derive(Debug, Clone)]
pub struct StallWatch {
    threshold: Duration,
    count: u64,
    longest: Duration,
    reports: RateLimit,
}

impl StallWatch {
    /// Counts lateness of at least `tick` (or [`MIN_STALL`]).
    pub fn new(tick: Duration) -> StallWatch {
        StallWatch {
            threshold: tick.max(MIN_STALL),
            count: 0,
            longest: Duration::ZERO,
            reports: RateLimit::new(crate::logging::WARN_EVERY),
        }
    }

    /// The loop meant to wake at `planned` and woke at `now`.
    pub fn woke(&mut self, planned: Instant, now: Instant) {
        self.note(
            now.saturating_duration_since(planned),
            "woke",
            "after its deadline",
        );
    }

    /// A turn began at `began` and ended at `now`.
    pub fn turn_took(&mut self, began: Instant, now: Instant) {
        self.note(now.saturating_duration_since(began), "took", "for one turn");
    }

    fn note(&mut self, late: Duration, verb: &str, what: &str) {
        if late < self.threshold {
            return;
        }
        self.count += 1;
        self.longest = self.longest.max(late);
        if let Some(s) = self.reports.allow(std::time::Instant::now()) {
            log::warn!(
                "the event loop {verb} {} ms {what}: this process was not running or a \
                 system call blocked (an overloaded or paused host?); every heartbeat and \
                 deadline was that late{s}",
                late.as_millis()
            );
        }
    }

    /// How many stalls, and the longest.
    pub fn seen(&self) -> (u64, Duration) {
        (self.count, self.longest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn lateness_of_a_tick_or_more_counts_and_the_longest_is_kept() {
        let mut watch = StallWatch::new(Duration::from_millis(50));
        watch.woke(ms(100), ms(149));
        watch.woke(ms(100), ms(90));
        watch.turn_took(ms(200), ms(249));
        assert_eq!(watch.seen(), (0, Duration::ZERO), "under a tick");
        watch.woke(ms(100), ms(150));
        watch.turn_took(ms(300), ms(1_030));
        watch.woke(ms(2_000), ms(2_200));
        assert_eq!(watch.seen(), (3, Duration::from_millis(730)));
    }

    #[test]
    fn a_short_tick_still_counts_only_from_the_minimum() {
        let mut watch = StallWatch::new(Duration::from_millis(5));
        watch.woke(ms(100), ms(119));
        assert_eq!(watch.seen().0, 0);
        watch.woke(ms(100), ms(120));
        assert_eq!(watch.seen().0, 1);
    }
}
