//! The deployed-node faults of the `core_sequence` harness, modelled as the simulator
//! models them (`crate::sim::faults`, whose rules they share): wiped data dirs, processes
//! without a data dir (random incarnation, start hold), and stalled event loops that
//! handle what arrived with a stale or a fresh `now`. The checker sees them as it does in
//! the simulator: lost epochs through [`crate::invariants::Checker::wiped`], stale inputs
//! through an [`At`] whose read time precedes its publication time.

use votecast_core::election::Epochs;

use super::{Harness, Stall, Storage};
use crate::invariants::{At, Input};
use crate::sim::faults::start_hold;

/// The driver's start hold of a process without a data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    None,
    /// Constructed; the hold begins when the process is started.
    Pending,
    /// Dropping every frame until this harness time, then the core starts.
    Until(u64),
}

impl Harness {
    /// Whether node `i`'s process may start its core now; begins its hold if it has one.
    pub(super) fn hold_over(&mut self, i: usize) -> bool {
        let slot = &mut self.slots[i];
        match slot.hold {
            Hold::None => true,
            Hold::Pending => {
                let hold = start_hold(slot.storage, &slot.config).expect("a held process");
                slot.hold = Hold::Until(self.now.saturating_add(hold.as_micros() as u64));
                false
            }
            Hold::Until(until) if self.now < until => false,
            Hold::Until(_) => {
                slot.hold = Hold::None;
                self.outcome.memory_starts += 1;
                true
            }
        }
    }

    /// Harness time of node `i`'s next timer: the end of its start hold or stall, or its
    /// core's deadline.
    pub(super) fn next_timer(&self, i: usize) -> Option<u64> {
        let slot = &self.slots[i];
        if let Hold::Until(until) = slot.hold {
            return Some(until);
        }
        if let Some(stall) = slot.stall {
            return Some(stall.until_us);
        }
        let deadline = slot.node.as_ref()?.poll_timeout()?;
        Some(deadline.as_micros().saturating_sub(slot.offset))
    }

    /// Node `i`'s persisted epochs are gone (a wiped data dir, or a process without one).
    /// If they held anything and a leadership was published, epochs may repeat from now
    /// on: no wall-clock floor covers the loss here (README "Limits"), so the checker stops
    /// checking epoch order, as in the simulator. Leases are still checked.
    pub(super) fn lose_epochs(&mut self, i: usize) {
        if self.slots[i].disk != Epochs::default() && self.checker.leaderships() > 0 {
            self.checker.epochs_may_repeat();
        }
        self.slots[i].disk = Epochs::default();
        self.checker.wiped(i, Epochs::default());
    }

    /// Wipe node `i`'s data dir. It is down first for twice sync-limit ticks since its
    /// last process ended (README "Limits": the promises that process made have run out).
    pub(super) fn wipe(&mut self, i: usize) {
        self.crash(i);
        if let Some(since) = self.slots[i].down_since {
            let down = 2 * self.slots[i].config.sync_timeout().as_micros() as u64;
            let until = since.saturating_add(down);
            if self.now < until {
                self.advance(until - self.now);
                self.timeouts_all();
            }
        }
        self.lose_epochs(i);
        let slot = &mut self.slots[i];
        slot.storage = Storage::DataDir;
        slot.counter_lost = true;
        self.outcome.wipes += 1;
    }

    /// Stall node `i`'s running event loop for `micros`.
    pub(super) fn stall(&mut self, i: usize, micros: u64, stale_now: bool) {
        let slot = &mut self.slots[i];
        let running = slot.node.is_some() && slot.started && !slot.stopped;
        if !running || slot.stall.is_some() {
            return;
        }
        slot.stall = Some(Stall {
            since_us: self.now,
            until_us: self.now.saturating_add(micros),
            stale_now,
        });
    }

    /// End node `i`'s stall (if any): it handles the datagrams that arrived (each no
    /// earlier than it arrived), then its timers, with `now` read when the stall began or
    /// afresh; the driver publishes with a fresh clock reading (as `Sim::unstall`).
    pub(super) fn unstall(&mut self, i: usize) {
        let Some(stall) = self.slots[i].stall.take() else {
            return;
        };
        let read_us = if stall.stale_now {
            stall.since_us
        } else {
            self.now
        };
        let at = At {
            global_us: read_us,
            ..self.at(i)
        };
        let inbox = std::mem::take(&mut self.slots[i].inbox);
        self.outcome.stalls += 1;
        if read_us < self.now {
            self.outcome.stale_inputs += inbox.len() as u64 + 1;
        }
        for (bytes, arrived_us) in inbox {
            // Never with a time from before the datagram arrived (as `Sim::unstall`).
            let at = At {
                global_us: read_us.max(arrived_us),
                ..self.at(i)
            };
            self.deliver_at(i, &bytes, at);
        }
        if let Some(node) = self.slots[i].node.as_mut() {
            node.handle_timeout(at.local());
            self.after_input_at(i, Input::Other, at);
        }
    }
}
