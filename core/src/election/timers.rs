//! The core's named timers: a small fixed table, one optional deadline per purpose.

use super::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// LOOKING: re-broadcast our vote when nothing new arrived (exponential backoff).
    Notification,
    /// LOOKING: a quorum agrees with our proposal; decide unless a better vote arrives first.
    Finalize,
    /// LEADING: next heartbeat broadcast.
    Heartbeat,
    /// FOLLOWING/OBSERVING: the leader has been silent for sync_limit ticks.
    SyncTimeout,
    /// FOLLOWING/LEADING: the leadership phase did not complete within init_limit ticks.
    InitTimeout,
    /// LEADING: the lease runs out unless a quorum renewed it.
    LeaseEnd,
    /// Stood down for health (silent): the reported lease has ended, come back.
    StandDown,
}

impl Timer {
    pub(crate) const ALL: [Timer; 7] = [
        Timer::Notification,
        Timer::Finalize,
        Timer::Heartbeat,
        Timer::SyncTimeout,
        Timer::InitTimeout,
        Timer::LeaseEnd,
        Timer::StandDown,
    ];
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer as usize] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub(crate) fn clear_all(&mut self) {
        self.deadlines = [None; Timer::ALL.len()];
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer as usize]
    }

    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.get(timer).is_some()
    }

    /// The earliest deadline of all timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The first timer (in declaration order) whose deadline has passed.
    pub(crate) fn first_expired(&self, now: Instant) -> Option<Timer> {
        Timer::ALL
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|at| at <= now))
    }
}
