//! Fault schedules, generated from a seed by a small deterministic PRNG.
//!
//! A schedule fixes the cluster size, the faults (kind, start, duration, and the random
//! draws their targets use) and which minority stays down at the end. Targets written as
//! "leader" are resolved when the fault starts (the node that then reports LEADING, else
//! the draw), so a replay of a seed runs the same faults against whoever leads then; the
//! run log prints every resolution.

use std::fmt;

/// The schedule generator: seeds are small consecutive numbers, so they are scrambled
/// first ([`Rng::mixed`]). Percent draws are `below(100) < p`, which keeps every seed's
/// schedule as it has always been.
pub use votecast_testkit::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SIGKILL, restart with the data dir kept.
    Kill,
    /// SIGKILL, delete the data dir, restart after at least [`WIPE_MIN_DOWN_MS`].
    Wipe,
    /// SIGSTOP, SIGCONT (a hung board).
    Stop,
    /// `ip link set lan0 down`, then up.
    LinkDown,
    /// `ip link del lan0` (with its veth peer), then recreated as the LAN built it, with
    /// a new interface index or (drawn) the same one.
    Recreate,
    /// A minority side (drawn, with the leader when targeted) and the rest drop each
    /// other's frames.
    Partition,
    /// Receivers drop the senders' frames; the senders still hear the receivers.
    OneWay,
    /// Random input loss on some hosts.
    Loss,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub kind: Kind,
    /// Start, relative to the start of the fault phase.
    pub at_ms: u64,
    pub dur_ms: u64,
    /// Aim at whoever leads when the fault starts.
    pub at_leader: bool,
    /// Seed of the fault's own target draws (made when it starts).
    pub draw: u64,
    /// Loss percentage (Loss only).
    pub percent: u64,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub n: usize,
    pub faults: Vec<Fault>,
    /// How many voters stay down (SIGKILLed) after the faults heal: a minority.
    pub final_down: usize,
    /// Seed of the draw of the nodes that stay down.
    pub final_draw: u64,
}

/// Shortest down time of a wiped node: 2 × sync-limit (6 ticks of 50 ms) plus a margin.
pub const WIPE_MIN_DOWN_MS: u64 = 700;

/// The cluster size a seed runs with.
pub fn size_of(seed: u64) -> usize {
    [3, 5, 7][(seed % 3) as usize]
}

impl Schedule {
    pub fn generate(seed: u64) -> Schedule {
        let n = size_of(seed);
        let mut rng = Rng::mixed(seed);
        let count = rng.range(3, 6);
        let mut faults = Vec::new();
        let mut cursor = 0;
        let mut wiped = false;
        for _ in 0..count {
            let at_ms = cursor + rng.range(0, 1200);
            let mut kind = match rng.range(0, 99) {
                0..=19 => Kind::Kill,
                20..=34 => Kind::Stop,
                35..=40 => Kind::LinkDown,
                41..=46 => Kind::Recreate,
                47..=64 => Kind::Partition,
                65..=76 => Kind::OneWay,
                77..=89 => Kind::Loss,
                _ => Kind::Wipe,
            };
            if kind == Kind::Wipe && wiped {
                kind = Kind::Kill;
            }
            wiped |= kind == Kind::Wipe;
            let dur_ms = match kind {
                Kind::Kill => rng.range(200, 3000),
                // README "Limits": a wiped node stays down for at least twice sync-limit
                // ticks (600 ms), so the promises it forgot have run out.
                Kind::Wipe => rng.range(WIPE_MIN_DOWN_MS, 3000),
                Kind::Stop => rng.range(100, 2500),
                Kind::LinkDown | Kind::Recreate => rng.range(200, 3000),
                Kind::Partition => rng.range(500, 4000),
                Kind::OneWay => rng.range(500, 3000),
                Kind::Loss => rng.range(1000, 4000),
            };
            let percent = if kind == Kind::Loss {
                rng.range(5, 60)
            } else {
                0
            };
            faults.push(Fault {
                kind,
                at_ms,
                dur_ms,
                at_leader: rng.below(100) < 50,
                draw: rng.next_u64(),
                percent,
            });
            // The next fault may start while this one still runs.
            cursor = at_ms + rng.range(200, dur_ms + 200);
        }
        let minority = (n - 1) / 2;
        // A wiped node cannot be relied on for liveness (see main.rs): leave a quorum of
        // the others up.
        let budget = if wiped { minority - 1 } else { minority };
        let final_down = if budget > 0 && rng.below(100) < 35 {
            rng.range(1, budget as u64) as usize
        } else {
            0
        };
        Schedule {
            seed,
            n,
            faults,
            final_down,
            final_draw: rng.next_u64(),
        }
    }

    /// End of the last fault, relative to the start of the fault phase.
    pub fn phase_ms(&self) -> u64 {
        self.faults
            .iter()
            .map(|f| f.at_ms + f.dur_ms)
            .max()
            .unwrap_or(0)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "schedule seed={} n={}, faults over {} ms:",
            self.seed,
            self.n,
            self.phase_ms()
        )?;
        for (k, fault) in self.faults.iter().enumerate() {
            write!(
                f,
                "  #{k} {:?} at {} ms for {} ms{}",
                fault.kind,
                fault.at_ms,
                fault.dur_ms,
                if fault.at_leader && fault.kind != Kind::Loss {
                    " (leader)"
                } else {
                    ""
                }
            )?;
            if fault.kind == Kind::Loss {
                write!(f, " {}%", fault.percent)?;
            }
            writeln!(f)?;
        }
        write!(f, "  then heal; {} node(s) stay down", self.final_down)
    }
}
