//! The inverse of `arbitrary`'s decoding of a [`Scenario`]: [`encode`] gives bytes that
//! decode (through `Scenario::arbitrary_take_rest`, as libfuzzer-sys decodes a typed
//! target's input) to the same scenario. With it, hand-written scenarios become corpus
//! files, and a corpus can be re-encoded when a type of the input language changes.
//!
//! The layout is arbitrary 1.x's: integers little-endian in their own width, `bool` the
//! low bit of a byte, `Option` a `bool` then the value, a `Vec` a `true` before every
//! element and a `false` after the last, an enum variant a `u32` that the derive scales by
//! the variant count (`(u64::from(x) · count) >> 32`), then its fields in order.
//! `encodes_every_variant_back_to_itself` checks the variant counts below against the
//! derive.

use super::input::*;

/// Bytes that decode to `scenario`.
pub fn encode(scenario: &Scenario) -> Vec<u8> {
    let mut out = Vec::new();
    scenario.cluster.encode(&mut out);
    scenario.honest.encode(&mut out);
    // The last field takes the rest of the input: no final `false` is needed.
    for step in &scenario.steps {
        true.encode(&mut out);
        step.encode(&mut out);
    }
    out
}

trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

macro_rules! little_endian {
    ($($ty:ty),*) => {$(
        impl Encode for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
little_endian!(u8, u16, u32, u64, i8);

impl Encode for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        u8::from(*self).encode(out);
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        self.is_some().encode(out);
        if let Some(value) = self {
            value.encode(out);
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        for element in self {
            true.encode(out);
            element.encode(out);
        }
        false.encode(out);
    }
}

impl<A: Encode, B: Encode> Encode for (A, B) {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
        self.1.encode(out);
    }
}

/// The smallest `u32` the derive maps to variant `index` of `count`.
fn variant(out: &mut Vec<u8>, index: u64, count: u64) {
    debug_assert!(index < count);
    let x = (index << 32).div_ceil(count);
    (x as u32).encode(out);
}

/// Encode the listed fields in order.
macro_rules! fields {
    ($out:expr; $($field:expr),*) => {{ $($field.encode($out);)* }};
}

const STEP_VARIANTS: u64 = 19;

impl Encode for ClusterSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        fields!(out; self.voters, self.nodes, self.timing);
    }
}

impl Encode for NodeSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        fields!(out; self.role, self.offset, self.idle, self.epochs);
    }
}

impl Encode for Role {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Role::Voter(v) => {
                variant(out, 0, 2);
                v.encode(out);
            }
            Role::Observer => variant(out, 1, 2),
        }
    }
}

impl Encode for Timing {
    fn encode(&self, out: &mut Vec<u8>) {
        fields!(out; self.tick_ms, self.sync_limit, self.init_limit, self.finalize_ms,
            self.min_notification_ms, self.max_notification_extra_ms, self.drift);
    }
}

impl Encode for Num {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Num::Zero => variant(out, 0, 5),
            Num::Small(x) => fields!(out; variant_of(1, 5), x),
            Num::Rel(base, delta) => fields!(out; variant_of(2, 5), base, delta),
            Num::Max => variant(out, 3, 5),
            Num::Raw(x) => fields!(out; variant_of(4, 5), x),
        }
    }
}

/// A variant selector as a value, for [`fields!`].
struct VariantOf(u64, u64);

fn variant_of(index: u64, count: u64) -> VariantOf {
    VariantOf(index, count)
}

impl Encode for VariantOf {
    fn encode(&self, out: &mut Vec<u8>) {
        variant(out, self.0, self.1);
    }
}

impl Encode for Base {
    fn encode(&self, out: &mut Vec<u8>) {
        let index = match self {
            Base::Round => 0,
            Base::AcceptedEpoch => 1,
            Base::CurrentEpoch => 2,
            Base::Zxid => 3,
            Base::ReportedEpoch => 4,
        };
        variant(out, index, 5);
    }
}

impl Encode for Who {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Who::Voter(x) => fields!(out; variant_of(0, 6), x),
            Who::Receiver => variant(out, 1, 6),
            Who::Node(x) => fields!(out; variant_of(2, 6), x),
            Who::Stranger(x) => fields!(out; variant_of(3, 6), x),
            Who::NoLeader => variant(out, 4, 6),
            Who::Raw(x) => fields!(out; variant_of(5, 6), x),
        }
    }
}

impl Encode for Seq {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Seq::Next => variant(out, 0, 2),
            Seq::Raw(x) => fields!(out; variant_of(1, 2), x),
        }
    }
}

impl Encode for Echo {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Echo::Zero => variant(out, 0, 4),
            Echo::Past(x) => fields!(out; variant_of(1, 4), x),
            Echo::Future(x) => fields!(out; variant_of(2, 4), x),
            Echo::Raw(x) => fields!(out; variant_of(3, 4), x),
        }
    }
}

impl Encode for FrameSpec {
    fn encode(&self, out: &mut Vec<u8>) {
        fields!(out; self.state, self.flags, self.key_id, self.other_cluster, self.sender,
            self.incarnation, self.sequence, self.leader, self.zxid, self.peer_epoch,
            self.round, self.accepted_epoch, self.epoch, self.echo, self.tag);
    }
}

impl Encode for Step {
    fn encode(&self, out: &mut Vec<u8>) {
        let n = STEP_VARIANTS;
        match self {
            Step::Wait(x) => fields!(out; variant_of(0, n), x),
            Step::WaitLong(x) => fields!(out; variant_of(1, n), x),
            Step::Skip(x) => fields!(out; variant_of(2, n), x),
            Step::Timeout(x) => fields!(out; variant_of(3, n), x),
            Step::Run { rounds } => fields!(out; variant_of(4, n), rounds),
            Step::Broadcast(x) => fields!(out; variant_of(5, n), x),
            Step::Lose(x) => fields!(out; variant_of(6, n), x),
            Step::Replay { from, back, to } => fields!(out; variant_of(7, n), from, back, to),
            Step::Corrupt {
                from,
                back,
                to,
                at,
                xor,
            } => fields!(out; variant_of(8, n), from, back, to, at, xor),
            Step::Forge { to, frame } => fields!(out; variant_of(9, n), to, frame),
            Step::Raw { to, bytes } => fields!(out; variant_of(10, n), to, bytes),
            Step::SetZxid { node, zxid } => fields!(out; variant_of(11, n), node, zxid),
            Step::Start(x) => fields!(out; variant_of(12, n), x),
            Step::Shutdown(x) => fields!(out; variant_of(13, n), x),
            Step::Crash(x) => fields!(out; variant_of(14, n), x),
            Step::Restart { node, offset } => fields!(out; variant_of(15, n), node, offset),
            Step::Wipe(x) => fields!(out; variant_of(16, n), x),
            Step::MemoryRestart { node, offset } => {
                fields!(out; variant_of(17, n), node, offset)
            }
            Step::Stall {
                node,
                duration,
                stale,
            } => fields!(out; variant_of(18, n), node, duration, stale),
        }
    }
}

#[cfg(test)]
mod tests {
    use arbitrary::{Arbitrary, Unstructured};

    use super::*;

    fn frame(i: u8) -> FrameSpec {
        let nums = [
            Num::Zero,
            Num::Small(i),
            Num::Rel(Base::Round, -1),
            Num::Rel(Base::AcceptedEpoch, 2),
            Num::Rel(Base::CurrentEpoch, 3),
            Num::Rel(Base::Zxid, -4),
            Num::Rel(Base::ReportedEpoch, 5),
            Num::Max,
            Num::Raw(u64::MAX - 7),
        ];
        let whos = [
            Who::Voter(i),
            Who::Receiver,
            Who::Node(1),
            Who::Stranger(9),
            Who::NoLeader,
            Who::Raw(77),
        ];
        let echoes = [Echo::Zero, Echo::Past(3), Echo::Future(4), Echo::Raw(5)];
        let n = |k: usize| nums[(usize::from(i) + k) % nums.len()];
        FrameSpec {
            state: i,
            flags: 0xa5,
            key_id: 3,
            other_cluster: i % 2 == 1,
            sender: whos[usize::from(i) % whos.len()],
            incarnation: n(0),
            sequence: if i.is_multiple_of(2) {
                Seq::Next
            } else {
                Seq::Raw(8)
            },
            leader: whos[(usize::from(i) + 1) % whos.len()],
            zxid: n(1),
            peer_epoch: n(2),
            round: n(3),
            accepted_epoch: n(4),
            epoch: n(5),
            echo: echoes[usize::from(i) % echoes.len()],
            tag: 0x5a,
        }
    }

    /// Every variant of every type, with the counts `variant` assumes: a wrong count or
    /// index decodes to another variant or shifts every field after it.
    #[test]
    fn encodes_every_variant_back_to_itself() {
        let mut steps = vec![
            Step::Wait(1),
            Step::WaitLong(70_000),
            Step::Skip(2),
            Step::Timeout(3),
            Step::Run { rounds: 4 },
            Step::Broadcast(5),
            Step::Lose(6),
            Step::Replay {
                from: 1,
                back: 2,
                to: 3,
            },
            Step::Corrupt {
                from: 1,
                back: 2,
                to: 3,
                at: 4,
                xor: 5,
            },
            Step::Raw {
                to: 1,
                bytes: vec![0, 1, 255],
            },
            Step::SetZxid {
                node: 2,
                zxid: Num::Max,
            },
            Step::Start(7),
            Step::Shutdown(8),
            Step::Crash(9),
            Step::Restart {
                node: 1,
                offset: 123_456,
            },
            Step::Wipe(2),
            Step::MemoryRestart { node: 3, offset: 9 },
            Step::Stall {
                node: 1,
                duration: 500,
                stale: true,
            },
        ];
        steps.extend((0..12).map(|i| Step::Forge {
            to: i,
            frame: frame(i),
        }));
        let scenario = Scenario {
            cluster: ClusterSpec {
                voters: 4,
                nodes: vec![
                    NodeSpec {
                        role: Role::Voter(2),
                        offset: 99,
                        idle: true,
                        epochs: Some((3, 1)),
                    },
                    NodeSpec {
                        role: Role::Observer,
                        offset: 0,
                        idle: false,
                        epochs: None,
                    },
                ],
                timing: Timing {
                    tick_ms: 1,
                    sync_limit: 2,
                    init_limit: 3,
                    finalize_ms: 4,
                    min_notification_ms: 5,
                    max_notification_extra_ms: 600,
                    drift: 7,
                },
            },
            honest: true,
            steps,
        };
        let bytes = encode(&scenario);
        let decoded = Scenario::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        assert_eq!(format!("{decoded:?}"), format!("{scenario:?}"));
    }
}
