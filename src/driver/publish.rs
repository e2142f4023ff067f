//! What the daemon publishes (state file, hook environment): a pure function of the node's
//! view and the clocks read at the moment of publishing.
//!
//! The rules:
//! - every time in the snapshot comes from one [`Now`] read just before the snapshot is
//!   written, never from a `now` read earlier in the loop: a stall between the two (a hung
//!   file system, a stopped process) would move a lease end forward by the stall;
//! - a lease end on the core's clock is converted to the wall clock through that same
//!   reading; on CLOCK_BOOTTIME it needs no conversion;
//! - LEADING is never published once the lease has run out at that reading (the core steps
//!   down at its next timeout; the publication must not wait for it), nor while the node
//!   is stepping down for a graceful shutdown: both are published as LOOKING without a
//!   leader, an epoch or a lease;
//! - the voters heard and the ages of their last frames are taken at that same reading
//!   ([`NodeView::of`]), so a reader adds the file's own age to get theirs.

use votecast_core::election::{Instant, Node, ServerState};

use super::clock::Now;
use crate::daemon::state_file::{HeardVoter, HeardVoters, StateSnapshot};

/// The node's view as far as publishing cares (a copy, so it can be built in tests).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub id: u64,
    pub state: ServerState,
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
    pub round: u64,
    pub zxid: u64,
    /// End of the lease (leader) or of the follower timeout, on the core's clock.
    pub valid_until: Option<Instant>,
    pub last_election_ms: Option<f64>,
    pub duplicate_id: bool,
    /// The other voters heard within the detection window at the reading the view was
    /// taken at, with the age of their last frames then.
    pub heard: HeardVoters,
}

impl NodeView {
    /// The current view of `node`; `now` (the core's clock, read just before) is the
    /// moment the voters heard and their ages refer to.
    pub fn of(node: &Node, now: Instant) -> NodeView {
        let mut heard = HeardVoters::new();
        for voter in node.heard(now) {
            let age_ms = u64::try_from(voter.age.as_millis()).unwrap_or(u64::MAX);
            // Never full: the core lists at most its voters, which are at most MAX_VOTERS.
            let _ = heard.push(HeardVoter {
                id: voter.id,
                age_ms,
            });
        }
        NodeView {
            id: node.id(),
            state: node.state(),
            leader: node.leader(),
            epoch: node.epoch(),
            round: node.round(),
            zxid: node.zxid(),
            valid_until: node.valid_until(),
            last_election_ms: node.last_election_time().map(|d| d.as_secs_f64() * 1000.0),
            duplicate_id: node.duplicate_id().is_some(),
            heard,
        }
    }
}

/// A snapshot ready to publish, and its lease end on the core's clock (`None` when it
/// publishes none).
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub snapshot: StateSnapshot<&'static str>,
    pub valid_until: Option<Instant>,
}

impl Published {
    /// Whether this publishes a live lease: LEADING with a lease end.
    pub fn is_leading(&self) -> bool {
        self.snapshot.state == ServerState::Leading.as_str()
    }
}

/// The snapshot to publish for `view` at `now`, by process `pid`. `stepping_down`: a
/// graceful shutdown has begun, so LEADING is no longer published whatever the core says.
pub fn publish(view: &NodeView, now: Now, stepping_down: bool, pid: u32) -> Published {
    let lease_over = view.valid_until.is_none_or(|until| until <= now.core);
    let demoted = view.state == ServerState::Leading && (stepping_down || lease_over);
    let (state, leader, epoch, valid_until) = if demoted {
        (ServerState::Looking, None, None, None)
    } else {
        (view.state, view.leader, view.epoch, view.valid_until)
    };
    let valid_until_unix_ms = valid_until.map(|until| {
        // Whole ms, rounded towards the reading: a lease end comes out early, never late.
        // Saturating: a lease end beyond u64 ms cannot come from the core; never wrap.
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        if until >= now.core {
            now.unix_ms
                .saturating_add(ms(until.saturating_duration_since(now.core)))
        } else {
            now.unix_ms
                .saturating_sub(ms(now.core.saturating_duration_since(until)))
        }
    });
    let on_boottime = |t: Instant| now.boottime_ms.map(|_| t.as_micros() / 1000);
    let snapshot = StateSnapshot {
        id: view.id,
        state: state.as_str(),
        leader,
        epoch,
        round: view.round,
        zxid: view.zxid,
        pid,
        updated_unix_ms: now.unix_ms,
        updated_boottime_ms: now.boottime_ms,
        valid_until_unix_ms,
        valid_until_boottime_ms: valid_until.and_then(on_boottime),
        last_election_ms: view.last_election_ms,
        duplicate_id: view.duplicate_id,
        heard: Some(view.heard.clone()),
    };
    Published {
        snapshot,
        valid_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIX: u64 = 1_800_000_000_000;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn now_at(core_ms: u64) -> Now {
        Now {
            core: ms(core_ms),
            unix_ms: UNIX + core_ms,
            boottime_ms: Some(core_ms),
        }
    }

    fn leader(until_ms: u64) -> NodeView {
        NodeView {
            id: 2,
            state: ServerState::Leading,
            leader: Some(2),
            epoch: Some(7),
            round: 3,
            zxid: 9,
            valid_until: Some(ms(until_ms)),
            last_election_ms: Some(1.5),
            duplicate_id: false,
            heard: HeardVoters::new(),
        }
    }

    #[test]
    fn a_live_lease_is_published_on_both_clocks_from_one_reading() {
        let p = publish(&leader(10_300), now_at(10_000), false, 42);
        let s = &p.snapshot;
        assert_eq!(s.state, "LEADING");
        assert_eq!((s.leader, s.epoch), (Some(2), Some(7)));
        assert_eq!(s.updated_unix_ms, UNIX + 10_000);
        assert_eq!(s.updated_boottime_ms, Some(10_000));
        assert_eq!(s.valid_until_unix_ms, Some(UNIX + 10_300));
        assert_eq!(s.valid_until_boottime_ms, Some(10_300));
        assert_eq!(s.pid, 42);
        assert_eq!(p.valid_until, Some(ms(10_300)));
        assert!(p.is_leading());
    }

    /// The stall: the loop read its time at 10,000 ms, then stalled for 400 ms (a blocking
    /// file, a stopped process) before publishing. The old driver combined the early core
    /// time with a fresh wall clock: `valid_until = wall_now + (until - early_now)`, a
    /// lease 400 ms too long, published as LEADING after the lease had run out.
    #[test]
    fn a_lease_that_ran_out_during_a_stall_is_never_published_as_leading() {
        let view = leader(10_300);
        let stale = publish(&view, now_at(10_000), false, 1);
        assert_eq!(stale.snapshot.state, "LEADING");
        let fresh = now_at(10_400);
        let p = publish(&view, fresh, false, 1);
        assert_eq!(p.snapshot.state, "LOOKING");
        assert_eq!((p.snapshot.leader, p.snapshot.epoch), (None, None));
        assert_eq!(p.snapshot.valid_until_unix_ms, None);
        assert_eq!(p.snapshot.valid_until_boottime_ms, None);
        assert_eq!(p.valid_until, None);
        assert_eq!(p.snapshot.updated_unix_ms, UNIX + 10_400);
        assert!(!p.is_leading());
        // Exactly at the lease end it is over too.
        assert_eq!(
            publish(&view, now_at(10_300), false, 1).snapshot.state,
            "LOOKING"
        );
    }

    #[test]
    fn a_published_lease_end_never_lies_beyond_the_core_lease() {
        // Whatever the reading, the published wall-clock end is the core's end seen from
        // that reading: never later than the lease.
        let view = leader(10_300);
        for core_ms in [9_000, 10_000, 10_299] {
            let now = now_at(core_ms);
            let s = publish(&view, now, false, 1).snapshot;
            assert_eq!(s.valid_until_unix_ms, Some(UNIX + 10_300));
            assert_eq!(s.valid_until_boottime_ms, Some(10_300));
        }
        // The wall clock stepped back an hour between two readings: the lease end in wall
        // time moves with it, the boottime one does not.
        let stepped = Now {
            unix_ms: UNIX + 10_000 - 3_600_000,
            ..now_at(10_000)
        };
        let s = publish(&view, stepped, false, 1).snapshot;
        assert_eq!(s.valid_until_unix_ms, Some(UNIX + 10_300 - 3_600_000));
        assert_eq!(s.valid_until_boottime_ms, Some(10_300));
    }

    #[test]
    fn stepping_down_publishes_no_lease() {
        let p = publish(&leader(10_300), now_at(10_000), true, 1);
        assert_eq!(p.snapshot.state, "LOOKING");
        assert_eq!(p.valid_until, None);
        // A follower is published as it is, a past follower deadline included (readers
        // see it as stale).
        let follower = NodeView {
            state: ServerState::Following,
            leader: Some(3),
            ..leader(10_300)
        };
        let p = publish(&follower, now_at(10_500), true, 1);
        assert_eq!(p.snapshot.state, "FOLLOWING");
        assert_eq!(p.snapshot.valid_until_unix_ms, Some(UNIX + 10_300));
    }

    #[test]
    fn without_boottime_only_the_wall_clock_is_published() {
        let now = Now {
            boottime_ms: None,
            ..now_at(10_000)
        };
        let s = publish(&leader(10_300), now, false, 1).snapshot;
        assert_eq!(s.updated_boottime_ms, None);
        assert_eq!(s.valid_until_boottime_ms, None);
        assert_eq!(s.valid_until_unix_ms, Some(UNIX + 10_300));
    }

    #[test]
    fn the_voters_heard_are_published_whatever_the_state() {
        let heard: HeardVoters = [(1, 12), (3, 40)]
            .into_iter()
            .map(|(id, age_ms)| HeardVoter { id, age_ms })
            .collect();
        let view = NodeView {
            heard: heard.clone(),
            ..leader(10_300)
        };
        assert_eq!(
            publish(&view, now_at(10_000), false, 1).snapshot.heard,
            Some(heard.clone())
        );
        // Demoted (lease over): no lease, but who is heard is still news to the operator.
        let p = publish(&view, now_at(10_400), false, 1);
        assert_eq!(p.snapshot.state, "LOOKING");
        assert_eq!(p.snapshot.heard, Some(heard));
    }
}
