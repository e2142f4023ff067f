//! Watching a cluster agree: sweeps over the nodes' state files, timed with this
//! process's monotonic clock.

use std::time::{Duration, Instant};

use super::LIMIT;
use crate::cluster::LocalCluster;
use crate::daemon::state_file::read_state_file;

/// An agreed view: leader, epoch, and the agreeing nodes' `last_election_ms`.
pub(super) struct Agreement {
    pub leader: u64,
    pub epoch: u64,
    pub election_ms: Vec<f64>,
    /// The leader's `updated_unix_ms` when first seen LEADING.
    pub leader_updated_unix_ms: u64,
}

/// One sweep over the state files of `ids`: Some when all of them report the same leader
/// and epoch, the leader (one of `ids`) LEADING, voters FOLLOWING, observers OBSERVING.
fn agreement(cluster: &LocalCluster, ids: &[u64]) -> Option<Agreement> {
    let mut view: Option<(u64, u64)> = None;
    let mut election_ms = Vec::with_capacity(ids.len());
    let mut leader_updated_unix_ms = 0;
    for &id in ids {
        let state = read_state_file(&cluster.node(id).state_file).ok()?;
        let this = (state.leader?, state.epoch?);
        if view.is_some_and(|v| v != this) {
            return None;
        }
        view = Some(this);
        let expected = if this.0 == id {
            leader_updated_unix_ms = state.updated_unix_ms;
            "LEADING"
        } else if cluster.voters.contains(&id) {
            "FOLLOWING"
        } else {
            "OBSERVING"
        };
        if state.state != expected {
            return None;
        }
        election_ms.extend(state.last_election_ms);
    }
    let (leader, epoch) = view?;
    ids.contains(&leader).then_some(Agreement {
        leader,
        epoch,
        election_ms,
        leader_updated_unix_ms,
    })
}

/// Polls state files; counts sweeps to report the effective polling period.
pub(super) struct Poller {
    pause: Duration,
    sweeps: u64,
    sweep_time: Duration,
    /// During the last `wait`: when every node's state file first existed (each node
    /// writes it right after opening its socket, just before its first vote).
    pub all_up: Option<Duration>,
}

impl Poller {
    /// A poller that sleeps `pause` between two sweeps.
    pub fn new(pause: Duration) -> Poller {
        Poller {
            pause,
            sweeps: 0,
            sweep_time: Duration::ZERO,
            all_up: None,
        }
    }

    /// Sweep until `accept` takes an agreement of `ids` or `LIMIT` passes after `start`.
    /// Returns the agreement and the time from `start` to the sweep that saw it.
    pub fn wait(
        &mut self,
        cluster: &LocalCluster,
        ids: &[u64],
        start: Instant,
        accept: impl Fn(&Agreement) -> bool,
    ) -> Option<(Agreement, Duration)> {
        self.all_up = None;
        loop {
            let sweep_start = Instant::now();
            let seen = agreement(cluster, ids);
            let now = Instant::now();
            if self.all_up.is_none() && ids.iter().all(|&id| cluster.node(id).state_file.exists()) {
                self.all_up = Some(now - start);
            }
            self.sweeps += 1;
            self.sweep_time += now - sweep_start;
            if let Some(a) = seen.filter(&accept) {
                // The moment the agreeing files were read, at the latest.
                return Some((a, now - start));
            }
            if now - start > LIMIT {
                return None;
            }
            std::thread::sleep(self.pause);
        }
    }

    /// The mean time one sweep over the state files took.
    pub fn mean_sweep(&self) -> Duration {
        if self.sweeps == 0 {
            Duration::ZERO
        } else {
            self.sweep_time / u32::try_from(self.sweeps).unwrap_or(u32::MAX)
        }
    }
}

/// A duration in milliseconds, the unit of every reported figure.
pub(super) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sweep_of_no_sweeps_is_zero() {
        let mut p = Poller::new(Duration::from_micros(500));
        assert_eq!(p.mean_sweep(), Duration::ZERO);
        p.sweeps = 4;
        p.sweep_time = Duration::from_micros(100);
        assert_eq!(p.mean_sweep(), Duration::from_micros(25));
    }

    #[test]
    fn milliseconds() {
        assert_eq!(ms(Duration::from_micros(1500)), 1.5);
    }
}
