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
/// fresh for its readers, given the last write (`None`: never written) and `next_turn`,
/// the time until the loop's next turn in steady state: a tick (the next heartbeat, sent
/// or received), or a sleeping follower's turns apart (see `quiet`).
///
/// Rewritten when the lease end in the file is less than a tick past the next turn (so a
/// reader does not see a live lease as run out before that turn can rewrite it) or the
/// file is [`STATE_REFRESH`] old (so a live LOOKING node is not mistaken for a dead one),
/// and never twice within half a tick. The loop turns about once a tick in steady state,
/// so this is at most one write per turn; "once a tick" measured between two writes would
/// skip a turn whenever the later one came a little early, and let the file's lease run
/// out. State changes are written at once by the loop, whatever this rule says.
pub fn refresh_due(
    last: Option<LastWrite>,
    now: Instant,
    tick: Duration,
    next_turn: Duration,
) -> bool {
    let Some(last) = last else {
        return true;
    };
    let since = now.saturating_duration_since(last.at);
    let lease_runs_out = last
        .valid_until
        .is_some_and(|until| until.saturating_duration_since(now) < tick + next_turn);
    since >= tick / 2 && (lease_runs_out || since >= STATE_REFRESH)
}

/// When a loop that may sleep longer than a tick (a follower that sleeps through
/// heartbeats, see `quiet`) must wake to rewrite the state file if no turn came first:
/// half a tick before the lease end in the file (the write and a late wake-up fit in
/// that half tick), or when the file turns [`STATE_REFRESH`] old, and never within half a
/// tick of the last write. [`refresh_due`] holds then. `None`: never written (due at
/// once).
pub fn next_refresh(last: Option<LastWrite>, tick: Duration) -> Option<Instant> {
    let last = last?;
    let calm = last.at + tick / 2;
    let old = last.at + STATE_REFRESH;
    let lease = last.valid_until.map_or(old, |until| {
        Instant::from_micros(
            until
                .as_micros()
                .saturating_sub(u64::try_from((tick / 2).as_micros()).unwrap_or(u64::MAX)),
        )
    });
    Some(calm.max(lease.min(old)))
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
        assert!(refresh_due(None, ms(0), TICK, TICK));
    }

    #[test]
    fn without_a_lease_the_file_is_refreshed_once_a_second() {
        assert!(!refresh_due(written(1_000, None), ms(1_050), TICK, TICK));
        assert!(!refresh_due(written(1_000, None), ms(1_999), TICK, TICK));
        assert!(refresh_due(written(1_000, None), ms(2_000), TICK, TICK));
    }

    #[test]
    fn a_far_lease_end_waits_for_the_second() {
        // Lease end 300 ms after the write: more than two ticks away until 200 ms in.
        assert!(!refresh_due(
            written(1_000, Some(1_300)),
            ms(1_100),
            TICK,
            TICK
        ));
        assert!(!refresh_due(
            written(1_000, Some(1_300)),
            ms(1_200),
            TICK,
            TICK
        ));
    }

    #[test]
    fn a_lease_end_less_than_two_ticks_away_is_due_once_half_a_tick_has_passed() {
        assert!(refresh_due(
            written(1_000, Some(1_300)),
            ms(1_201),
            TICK,
            TICK
        ));
        // Already run out: due as well.
        assert!(refresh_due(
            written(1_000, Some(1_030)),
            ms(1_050),
            TICK,
            TICK
        ));
        // But never twice within half a tick, however close the lease end.
        assert!(!refresh_due(
            written(1_000, Some(1_010)),
            ms(1_024),
            TICK,
            TICK
        ));
        assert!(refresh_due(
            written(1_000, Some(1_010)),
            ms(1_025),
            TICK,
            TICK
        ));
    }

    #[test]
    fn a_turn_a_little_less_than_a_tick_after_the_write_still_refreshes() {
        // A leader with sync-limit 3 writes at each heartbeat a lease end about two ticks
        // ahead; the next heartbeat's turn may come a little less than a tick after the
        // write (the write itself took time). Skipping it would let the file's lease run
        // out before the turn after.
        let written_at = 1_000 + 2;
        let last = written(written_at, Some(1_000 + 99));
        assert!(refresh_due(last, ms(1_050), TICK, TICK));
    }

    #[test]
    fn a_follower_that_sleeps_through_heartbeats_refreshes_on_the_turn_before() {
        // Turns four ticks apart: the lease end 5 ticks away is within a tick of the turn
        // after next, so the file is rewritten on this turn, not on a wake-up of its own.
        let four = TICK * 4;
        assert!(refresh_due(
            written(1_000, Some(1_500)),
            ms(1_251),
            TICK,
            four
        ));
        assert!(!refresh_due(
            written(1_000, Some(1_500)),
            ms(1_251),
            TICK,
            TICK
        ));
        assert!(!refresh_due(
            written(1_000, Some(1_600)),
            ms(1_340),
            TICK,
            four
        ));
    }

    #[test]
    fn a_sleeping_loop_wakes_for_the_file_half_a_tick_before_its_lease_end() {
        assert_eq!(next_refresh(None, TICK), None);
        assert_eq!(
            next_refresh(written(1_000, Some(1_300)), TICK),
            Some(ms(1_275))
        );
        assert_eq!(next_refresh(written(1_000, None), TICK), Some(ms(2_000)));
        assert_eq!(
            next_refresh(written(1_000, Some(9_000)), TICK),
            Some(ms(2_000))
        );
        // Never within half a tick of the write, however close the lease end.
        assert_eq!(
            next_refresh(written(1_000, Some(1_010)), TICK),
            Some(ms(1_025))
        );
        for tick in [TICK, Duration::from_millis(10), Duration::from_millis(200)] {
            for (at, until) in [(1_000, None), (1_000, Some(1_300)), (1_000, Some(900))] {
                let last = written(at, until);
                let next = next_refresh(last, tick).unwrap();
                assert!(
                    refresh_due(last, next, tick, tick),
                    "{at} {until:?} {tick:?}"
                );
            }
        }
    }

    #[test]
    fn the_tick_scales_the_rule() {
        let tick = Duration::from_millis(200);
        // 90 ms since the write: less than half a tick, not due although the lease ends
        // soon.
        assert!(!refresh_due(written(0, Some(300)), ms(90), tick, tick));
        // 250 ms: half a tick has passed and the end (50 ms away) is within two ticks.
        assert!(refresh_due(written(0, Some(300)), ms(250), tick, tick));
        // Half a tick longer than the refresh interval still bounds the rate.
        let slow = Duration::from_secs(3);
        assert!(!refresh_due(written(0, None), ms(1_499), slow, slow));
        assert!(refresh_due(written(0, None), ms(1_500), slow, slow));
    }
}
