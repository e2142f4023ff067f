//! The lease promise: a voter's word not to support any leader but one until a time on its
//! own clock. Followers promise to their leader (and only then echo its time stamp); a
//! leader promises to itself before it counts itself towards its own lease. Because each
//! node holds at most one running promise, two leases that overlap in time would need one
//! node promised to two leaders at once, which these rules forbid.

use super::time::Instant;

/// Our promise not to support any leader but `leader` before `until` (our clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Promise {
    leader: Option<u64>,
    /// The incarnation of `leader` we promised to: only that process can end the promise
    /// early (by stepping down), since only it knows its application stopped leading.
    incarnation: u32,
    until: Instant,
    /// The end of promises to earlier incarnations of `leader`, which no release shortens:
    /// a crashed leader's application may act on its lease until it runs out.
    floor: Instant,
}

impl Promise {
    pub(super) const NONE: Promise = Promise {
        leader: None,
        incarnation: 0,
        until: Instant::ZERO,
        floor: Instant::ZERO,
    };

    /// No promise to anyone, and none may be made before `until`: after a restart, a
    /// promise made before the crash is gone from memory but may still be running.
    pub(super) const fn blocked_until(until: Instant) -> Promise {
        Promise {
            until,
            ..Promise::NONE
        }
    }

    /// Whether the running promise (if any) is to `leader`.
    pub(super) fn is_to(&self, leader: u64) -> bool {
        self.leader == Some(leader)
    }

    /// Whether a promise to a leader other than `leader` still runs at `now`.
    pub(super) fn binds_to_another(&self, leader: u64, now: Instant) -> bool {
        self.leader.is_some_and(|other| other != leader) && now < self.until
    }

    /// Whether we may promise support to `leader` at `now`: the running promise is to it,
    /// or no promise is running any more.
    pub(super) fn is_free_for(&self, leader: u64, now: Instant) -> bool {
        self.is_to(leader) || now >= self.until
    }

    /// Promise support to `leader` (process `incarnation`) until `until`; the caller has
    /// checked [`Promise::is_free_for`]. Renewing a promise to a new incarnation of the same
    /// leader keeps the old one's end as a floor.
    pub(super) fn promise_to(&mut self, leader: u64, incarnation: u32, until: Instant) {
        let floor = match self.leader {
            Some(current) if current == leader && self.incarnation != incarnation => {
                self.floor.max(self.until)
            }
            Some(current) if current == leader => self.floor,
            // A promise to another node (or none) has run out, or we would not be here.
            _ => Instant::ZERO,
        };
        *self = Promise {
            leader: Some(leader),
            incarnation,
            until,
            floor,
        };
    }

    /// `leader`'s process `incarnation` stepped down: it told its application before it
    /// said so, so our promise to that process ends at `now`. A frame from another
    /// incarnation means the process we promised to crashed; its application may still act
    /// on its lease, so the promise runs its course, and a release after a restart never
    /// ends it before the floor.
    pub(super) fn release(&mut self, leader: u64, incarnation: u32, now: Instant) {
        if self.leader == Some(leader) && self.incarnation == incarnation {
            self.until = now.min(self.until).max(self.floor);
            self.leader = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn one_running_promise_at_a_time() {
        let mut p = Promise::NONE;
        assert!(p.is_free_for(1, t(0)) && p.is_free_for(2, t(0)));
        p.promise_to(1, 7, t(300));
        assert!(p.is_to(1));
        assert!(p.is_free_for(1, t(100)), "renewing to the same leader");
        assert!(!p.is_free_for(2, t(100)), "another leader while it runs");
        assert!(!p.is_free_for(2, t(299)));
        assert!(p.is_free_for(2, t(300)), "free once it ran out");
    }

    #[test]
    fn blocked_after_restart() {
        let p = Promise::blocked_until(t(300));
        assert!(!p.is_to(1));
        assert!(!p.is_free_for(1, t(299)));
        assert!(p.is_free_for(1, t(300)));
    }

    #[test]
    fn release_by_the_same_process_ends_the_promise_now() {
        let mut p = Promise::NONE;
        p.promise_to(1, 7, t(300));
        // Another leader or another incarnation cannot release it.
        p.release(2, 7, t(50));
        p.release(1, 8, t(50));
        assert!(!p.is_free_for(2, t(50)));
        p.release(1, 7, t(50));
        assert!(!p.is_to(1));
        assert!(p.is_free_for(2, t(50)));
        // A release never extends a promise past its end.
        let mut q = Promise::NONE;
        q.promise_to(1, 7, t(30));
        q.release(1, 7, t(50));
        assert!(q.is_free_for(2, t(30)));
    }

    #[test]
    fn a_restarted_leader_cannot_shorten_its_crashed_predecessors_promise() {
        let mut p = Promise::NONE;
        p.promise_to(1, 7, t(300));
        // Leader 1 restarted as incarnation 8 and we promise to the new process.
        p.promise_to(1, 8, t(200));
        // The new process steps down at 100: the old promise still runs to 300.
        p.release(1, 8, t(100));
        assert!(!p.is_free_for(2, t(299)));
        assert!(p.is_free_for(2, t(300)));
        // Renewal to the same incarnation keeps the floor.
        let mut q = Promise::NONE;
        q.promise_to(1, 7, t(300));
        q.promise_to(1, 8, t(350));
        q.promise_to(1, 8, t(400));
        q.release(1, 8, t(100));
        assert!(!q.is_free_for(2, t(299)));
    }
}
