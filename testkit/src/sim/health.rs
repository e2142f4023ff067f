//! Health checks in the simulator: a node's eligibility is set from outside, as the
//! daemon's track commands set it, and survives restarts (the checks look at the
//! machine, not at the process).

use super::Sim;
use crate::invariants::Input;

impl Sim {
    /// Node `id`'s health checks now pass (`true`) or fail. A node that is up gets it at
    /// once (a stalled event loop first handles what waited); a node that is down starts
    /// with it.
    pub fn set_eligible(&mut self, id: u64, eligible: bool) {
        super::trace(self.now_us, format_args!("eligible {id} = {eligible}"));
        let i = self.index(id);
        self.nodes[i].eligible = eligible;
        if self.nodes[i].node.is_none() {
            return;
        }
        self.unstall(i);
        let now = self.nodes[i].local(self.now_us);
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.set_eligible(now, eligible);
        }
        self.drain(i, Input::Other);
    }

    /// The step-down hook of node `id` succeeded after it stood down for health: the
    /// application has stopped acting as coordinator, so the node comes back at once (as
    /// the daemon does). No-op unless it is standing down.
    pub fn confirm_stand_down(&mut self, id: u64) {
        super::trace(self.now_us, format_args!("confirm stand-down {id}"));
        let i = self.index(id);
        let standing_down = self.nodes[i]
            .node
            .as_ref()
            .is_some_and(|n| n.standing_down());
        if !standing_down || self.nodes[i].stall.is_some() {
            return;
        }
        self.acknowledge_end(i);
        let now = self.nodes[i].local(self.now_us);
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.end_stand_down(now);
        }
        self.drain(i, Input::Other);
    }

    /// Whether node `id` is up and standing down.
    pub fn standing_down(&self, id: u64) -> bool {
        self.node(id)
            .node
            .as_ref()
            .is_some_and(|n| n.standing_down())
    }
}
