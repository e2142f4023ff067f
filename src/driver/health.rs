//! The health checks' verdict into the core, once per loop turn: an unhealthy node is
//! never elected; a leader that turns unhealthy stands down (see the core's `health`
//! module) and comes back as a voter once its published lease has ended, or as soon as
//! its step-down hook succeeded (the same rule as the graceful handover on SIGTERM).

use std::time::Duration;

use votecast_core::election::{Instant, Node, ServerState};

use super::NodeIo;
use crate::daemon::DaemonError;

impl NodeIo {
    /// Hands the checks' verdict to the core and ends a stand-down the step-down hook
    /// confirmed. Reads atomics only, unless something changed.
    pub(super) fn track_health(&mut self, node: &mut Node) -> Result<(), DaemonError> {
        let Some(tracker) = &self.tracker else {
            return Ok(());
        };
        let healthy = tracker.healthy();
        let now = self.now();
        if healthy != node.eligible() {
            let id = node.id();
            if healthy {
                log::info!("node {id}: health checks pass: eligible to lead");
            } else {
                let failing = tracker.failing().join(", ");
                let what = if node.state() == ServerState::Leading {
                    "stepping down: silent until the published lease ends or the step-down \
                     hook succeeds, then voting"
                } else {
                    "still voting"
                };
                log::warn!(
                    "node {id}: health check failing ({failing}): not eligible to lead; {what}"
                );
            }
            node.set_eligible(now, healthy);
            if node.standing_down() {
                self.stand_down_since = Some(now);
            }
        }
        if node.standing_down() && self.step_down_confirmed() {
            node.end_stand_down(now);
        }
        if let Some(since) = self.stand_down_since.filter(|_| !node.standing_down()) {
            self.stand_down_since = None;
            log::info!(
                "node {}: stood down after {:.1} ms; voting again",
                node.id(),
                now.saturating_duration_since(since).as_secs_f64() * 1000.0
            );
        }
        self.drain(node)
    }

    /// The hook was told the node no longer leads, and that run exited 0.
    fn step_down_confirmed(&self) -> bool {
        let told = self
            .hook_state
            .is_some_and(|(state, ..)| state != ServerState::Leading.as_str());
        told && self
            .hooks
            .as_ref()
            .is_some_and(|hooks| hooks.wait_idle(Duration::ZERO) == Some(true))
    }
}

/// The first verdict, before the node starts: not eligible until every check has passed
/// once (README, Health checks).
pub(super) fn initial(node: &mut Node, now: Instant, tracking: bool) {
    if tracking {
        node.set_eligible(now, false);
    }
}
