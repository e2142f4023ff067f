//! The faults a deployed node sees beyond the network's: restarts with a new clock origin
//! and process nonce, wiped or absent data dirs, incarnations that go back, event-loop
//! stalls, frames held back and delivered late, wall-clock steps, and the two-step
//! graceful handover (see [`Sim::shutdown`]).

use std::cmp::Reverse;
use std::time::Duration;

use votecast_core::election::{Config, Epochs};
use votecast_core::wire::FRAME_LEN;

use super::{Delivery, Sim, SimNode};
use crate::invariants::Input;

/// 2020-01-01 in Unix seconds: a wall clock before it does not look set.
pub const JAN_2020_UNIX_S: u64 = 1_577_836_800;

/// Where a node keeps its epochs and incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A data dir: both survive restarts (until wiped).
    DataDir,
    /// No data dir: every process starts with no epochs and incarnation 1.
    MemoryOnly,
}

/// The incarnation of a process that finds no stored counter (first start, wiped data
/// dir, no data dir), from a random draw: as the daemon's, random and nonzero, so it may
/// be lower than the last one (peers readmit it). Shared with the fuzz harness.
pub fn fresh_incarnation(random: u64) -> u32 {
    ((random >> 33) as u32).max(1)
}

/// How long a new process waits before it starts its core, dropping every frame: a voter
/// without a data dir cannot know whether an earlier process promised support to a
/// leader, so the daemon keeps it silent for sync-limit ticks. Shared with the fuzz
/// harness.
pub fn start_hold(storage: Storage, config: &Config) -> Option<Duration> {
    (storage == Storage::MemoryOnly && config.is_voter(config.id)).then(|| config.sync_timeout())
}

/// A stalled event loop: it handles nothing until `until_us`, then everything that
/// arrived, with `now` read when the stall began (`stale_now`) or a fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stall {
    pub since_us: u64,
    pub until_us: u64,
    pub stale_now: bool,
}

impl SimNode {
    /// Unix time in µs on this node's wall clock at real time `real_us`.
    pub fn wall_us(&self, real_us: u64) -> u64 {
        (real_us as i64).saturating_add(self.wall_offset_us).max(0) as u64
    }

    /// The wall-clock second if the wall clock looks set (after 2020), else 0.
    fn wall_second(&self, real_us: u64) -> u64 {
        let s = self.wall_us(real_us) / 1_000_000;
        if s < JAN_2020_UNIX_S {
            0
        } else {
            s
        }
    }

    /// The epoch floor the daemon derives from the wall clock: milliseconds since 2020
    /// when the clock looks set, else 0 (no floor).
    pub fn epoch_floor(&self, real_us: u64) -> u64 {
        if self.wall_second(real_us) == 0 {
            return 0;
        }
        (self.wall_us(real_us) / 1000).saturating_sub(JAN_2020_UNIX_S * 1000)
    }

    /// A new process's epochs and incarnation, read from (and bumped on) the "disk";
    /// without one, the daemon draws the incarnation at random (`random`).
    pub(super) fn boot(&mut self, real_us: u64, random: u64) -> (Epochs, u32) {
        match self.storage {
            Storage::DataDir => {
                let floor = u32::try_from(self.wall_second(real_us)).unwrap_or(0);
                // As the daemon: no counter (first start, wiped) starts at a random value.
                self.incarnation = match self.incarnation {
                    0 => fresh_incarnation(random),
                    stored => stored.saturating_add(1).max(floor),
                };
                (self.disk, self.incarnation)
            }
            Storage::MemoryOnly => {
                self.disk = Epochs::default();
                self.incarnation = fresh_incarnation(random);
                (self.disk, self.incarnation)
            }
        }
    }
}

impl Sim {
    /// The clock origin of node `i`'s next process (µs, below 2^36 ≈ 19 h): anywhere,
    /// ahead of or behind its previous clock. Derived from the seed, not drawn, so that a
    /// restart does not shift the network's draws.
    pub(super) fn next_origin(&mut self, i: usize) -> u64 {
        let now_us = self.now_us;
        let node = &mut self.nodes[i];
        match node.reading_at_start.take() {
            Some(reading) => {
                let zero = crate::clock::LocalClock {
                    offset_us: 0,
                    ..node.clock
                };
                reading.saturating_sub(zero.local(now_us).as_micros())
            }
            None => {
                votecast_core::rng::mix(self.seed ^ 0x0c10c4 ^ (node.id << 32) ^ node.starts)
                    % (1 << 36)
            }
        }
    }

    /// Start node `id` with its clock reading `local_us` now (a chosen new origin; at
    /// least the real time since the simulation began).
    pub fn start_with_clock(&mut self, id: u64, local_us: u64) {
        let i = self.index(id);
        self.nodes[i].reading_at_start = Some(local_us);
        self.start(id);
    }

    /// Where node `id` keeps its epochs and incarnation (takes effect at its next start).
    pub fn set_storage(&mut self, id: u64, storage: Storage) {
        let i = self.index(id);
        self.nodes[i].storage = storage;
    }

    /// Wipe node `id`'s data dir (it must be down): epochs and incarnation are lost.
    pub fn wipe(&mut self, id: u64) {
        super::trace(self.now_us, format_args!("wipe {id}"));
        let i = self.index(id);
        assert!(
            self.nodes[i].node.is_none(),
            "wipe node {id} while it is up"
        );
        self.nodes[i].disk = Epochs::default();
        self.nodes[i].incarnation = 0;
        self.checker.wiped(i, Epochs::default());
    }

    /// Set node `id`'s wall clock to read `unix_ms` now.
    pub fn set_wall_clock(&mut self, id: u64, unix_ms: u64) {
        let i = self.index(id);
        self.nodes[i].wall_offset_us = (unix_ms * 1000) as i64 - self.now_us as i64;
    }

    /// Set every wall clock to read `unix_ms` now.
    pub fn set_wall_clocks(&mut self, unix_ms: u64) {
        for id in self.ids() {
            self.set_wall_clock(id, unix_ms);
        }
    }

    /// Whether every node's epoch floor comes from the same wall clock, and that clock
    /// looks set: only then does the floor keep a node that lost its epochs from reusing
    /// one.
    pub(super) fn epoch_floors_agree(&self, real_us: u64) -> bool {
        let first = &self.nodes[0];
        first.epoch_floor(real_us) > 0
            && self
                .nodes
                .iter()
                .all(|n| n.wall_offset_us == first.wall_offset_us)
    }

    /// Step node `id`'s wall clock by `delta_ms` (back when negative).
    pub fn step_wall_clock(&mut self, id: u64, delta_ms: i64) {
        super::trace(self.now_us, format_args!("wall clock {id} {delta_ms:+} ms"));
        let i = self.index(id);
        self.nodes[i].wall_offset_us += delta_ms * 1000;
    }

    /// Stall node `id`'s event loop for `duration`; afterwards it handles everything that
    /// arrived, its timers with `now` read before the stall (`stale_now`) or a fresh one,
    /// each frame no earlier than it arrived.
    pub fn stall(&mut self, id: u64, duration: Duration, stale_now: bool) {
        super::trace(
            self.now_us,
            format_args!("stall {id} for {duration:?} (stale now: {stale_now})"),
        );
        let i = self.index(id);
        if self.nodes[i].node.is_none()
            || self.nodes[i].stall.is_some()
            || self.nodes[i].start_hold_us.is_some()
        {
            return;
        }
        self.nodes[i].stall = Some(Stall {
            since_us: self.now_us,
            until_us: self.now_us + duration.as_micros() as u64,
            stale_now,
        });
    }

    /// End node `i`'s stall (if any): the frames that arrived and the due timers are
    /// handled, then the driver publishes with a fresh clock reading.
    pub(super) fn unstall(&mut self, i: usize) {
        let Some(stall) = self.nodes[i].stall.take() else {
            return;
        };
        let read_us = if stall.stale_now {
            stall.since_us
        } else {
            self.now_us
        };
        for delivery in std::mem::take(&mut self.nodes[i].inbox) {
            // A frame is never handled with a time from before it arrived: the daemon reads
            // the clock after receiving each datagram, and the core's promises count from
            // that reading (see `Node::handle_datagram`). Timers and the epoch floor do see
            // the stale reading.
            let frame_read_us = read_us.max(delivery.at_us);
            self.handle_delivery(delivery, frame_read_us);
        }
        let now = self.nodes[i].local(read_us);
        let floor = self.nodes[i].epoch_floor(self.now_us);
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.set_epoch_floor(floor);
            node.handle_timeout(now);
            self.drain_at(i, Input::Other, read_us);
        }
    }

    /// Deliver `late_percent` % of the frames up to `max_late` later than the network's
    /// delay: they may arrive after the sender or the receiver restarted.
    pub fn set_late_frames(&mut self, late_percent: u32, max_late: Duration) {
        self.late = (late_percent, max_late.as_micros() as u64);
    }

    /// Keep back every frame from `from` to `to` until [`Self::release`].
    pub fn hold(&mut self, from: u64, to: u64) {
        let (f, t) = (self.index(from), self.index(to));
        self.holding[f][t] = true;
    }

    /// Stop holding the link and deliver what it kept back, in order, `after` from now.
    pub fn release(&mut self, from: u64, to: u64, after: Duration) {
        let (f, t) = (self.index(from), self.index(to));
        self.holding[f][t] = false;
        let at_us = self.now_us + after.as_micros() as u64;
        for bytes in std::mem::take(&mut self.held[f][t]) {
            self.order += 1;
            self.queue.push(Reverse(Delivery {
                at_us,
                order: self.order,
                to: t,
                bytes,
                hostile: false,
            }));
        }
    }

    /// Frames kept back on one link so far.
    pub fn held_frames(&self, from: u64, to: u64) -> usize {
        self.held[self.index(from)][self.index(to)].len()
    }

    pub(super) fn hold_frame(&mut self, from: usize, to: usize, bytes: [u8; FRAME_LEN]) -> bool {
        if self.holding[from][to] {
            self.held[from][to].push(bytes);
        }
        self.holding[from][to]
    }

    /// Step node `id` down as a shutting-down daemon's first step does (publish the end
    /// of its lease; followers keep their promises). The application acknowledges the end
    /// once the node no longer reports LEADING.
    /// The first half of the daemon's graceful handover: the node steps down and, once it
    /// no longer reports LEADING, the end of its lease counts as published (state file
    /// rewritten, step-down hook run). Its followers stay promised until [`Sim::shutdown`].
    pub fn step_down(&mut self, id: u64) {
        let i = self.index(id);
        let now = self.nodes[i].local(self.now_us);
        if let Some(node) = self.nodes[i].node.as_mut() {
            node.step_down(now);
            self.drain(i, Input::Other);
            if self.state_of(id) != Some(votecast_core::election::ServerState::Leading) {
                self.acknowledge_end(i);
            }
        }
    }

    /// Real time until which node `id` is published LEADING (None: not, or over).
    pub fn published_until(&self, id: u64) -> Option<u64> {
        self.checker.published_until(self.index(id), self.now_us)
    }
}
