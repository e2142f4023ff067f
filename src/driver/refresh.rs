//! When the state file is rewritten although nothing changed: a pure rule over the last
//! write and the clock, so it can be tested without a loop, a file or a clock.

use std::time::Duration;

use votecast_core::election::Instant;

/// Longest gap between state-file writes while nothing changes.
pub const STATE_REFRESH: Duration = Duration::from_secs(1);

/// What was last written to the state file, as far as the refresh rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastWrite {
    /// When it was written (core clock).
    pub at: Instant,
    /// The lease end it carried (`None`: it carried no lease).
    pub valid_until: Option<Instant>,
}

/// Whether the state file must be rewritten at `now` to keep `updated`/`valid_until`
/// fresh for its readers, given the last write (`None`: never written).
///
/// Rewritten when the lease end in the file is less than two ticks away (so a reader does
/// not see a live lease as run out before the loop's next turn, which comes about a tick
/// later: the next heartbeat, sent or received) or the file is [`STATE_REFRESH`] old (so a
/// live LOOKING node is not mistaken for a dead one), and never twice within half a tick.
/// The loop turns about once a tick in steady state, so this is at most one write per
/// turn; "once a tick" measured between two writes would skip a turn whenever the later
/// one came a little early, and let the file's lease run out. State changes are written
/// at once by the loop, whatever this rule says.
pub fn refresh_due(last: Option<LastWrite>, now: Instant, tick: Duration) -> bool {
    let Some(last) = last else {
        return true;
    };
    let since = now.saturating_duration_since(last.at);
    let lease_runs_out = last
        .valid_until
        .is_some_and(|until| until.saturating_duration_since(now) < tick * 2);
    since >= tick / 2 && (lease_runs_out || since >= STATE_REFRESH)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_millis(50);

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn written(at: u64, valid_until: Option<u64>) -> Option<LastWrite> {
        Some(LastWrite {
            at: ms(at),
            valid_until: valid_until.map(ms),
        })
    }

    #[test]
    fn a_file_never_written_is_due_at_once() {
        assert!(refresh_due(None, ms(0), TICK));
    }

    #[test]
    fn without_a_lease_the_file_is_refreshed_once_a_second() {
        assert!(!refresh_due(written(1_000, None), ms(1_050), TICK));
        assert!(!refresh_due(written(1_000, None), ms(1_999), TICK));
        assert!(refresh_due(written(1_000, None), ms(2_000), TICK));
    }

    #[test]
    fn a_far_lease_end_waits_for_the_second() {
        // Lease end 300 ms after the write: more than two ticks away until 200 ms in.
        assert!(!refresh_due(written(1_000, Some(1_300)), ms(1_100), TICK));
        assert!(!refresh_due(written(1_000, Some(1_300)), ms(1_200), TICK));
    }

    #[test]
    fn a_lease_end_less_than_two_ticks_away_is_due_once_half_a_tick_has_passed() {
        assert!(refresh_due(written(1_000, Some(1_300)), ms(1_201), TICK));
        // Already run out: due as well.
        assert!(refresh_due(written(1_000, Some(1_030)), ms(1_050), TICK));
        // But never twice within half a tick, however close the lease end.
        assert!(!refresh_due(written(1_000, Some(1_010)), ms(1_024), TICK));
        assert!(refresh_due(written(1_000, Some(1_010)), ms(1_025), TICK));
    }

    #[test]
    fn a_turn_a_little_less_than_a_tick_after_the_write_still_refreshes() {
        // A leader with sync-limit 3 writes at each heartbeat a lease end about two ticks
        // ahead; the next heartbeat's turn may come a little less than a tick after the
        // write (the write itself took time). Skipping it would let the file's lease run
        // out before the turn after.
        let written_at = 1_000 + 2;
        let last = written(written_at, Some(1_000 + 99));
        assert!(refresh_due(last, ms(1_050), TICK));
    }

    #[test]
    fn the_tick_scales_the_rule() {
        let tick = Duration::from_millis(200);
        // 90 ms since the write: less than half a tick, not due although the lease ends
        // soon.
        assert!(!refresh_due(written(0, Some(300)), ms(90), tick));
        // 250 ms: half a tick has passed and the end (50 ms away) is within two ticks.
        assert!(refresh_due(written(0, Some(300)), ms(250), tick));
        // Half a tick longer than the refresh interval still bounds the rate.
        let slow = Duration::from_secs(3);
        assert!(!refresh_due(written(0, None), ms(1_499), slow));
        assert!(refresh_due(written(0, None), ms(1_500), slow));
    }
}
