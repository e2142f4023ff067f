//! Frames built from a [`FrameSpec`]: field values resolved against the receiver's state,
//! emitted with a correct CRC so that they reach the state machine.

use votecast_core::election::{Instant, ServerState};
use votecast_core::wire::{Flags, Packet, Repr, Vote, FRAME_LEN, NO_LEADER, VOTE_INELIGIBLE_BIT};

use super::{Base, Echo, FrameSpec, Harness, Num, Seq, Who, CLUSTER, STRANGER_BASE};

impl Harness {
    pub(super) fn resolve(&self, i: usize, num: Num) -> u64 {
        let node = self.slots[i].node.as_ref();
        match num {
            Num::Zero => 0,
            Num::Small(x) => u64::from(x),
            Num::Max => u64::MAX,
            Num::Raw(x) => x,
            Num::Rel(base, delta) => {
                let base = node.map_or(0, |n| match base {
                    Base::Round => n.round(),
                    Base::AcceptedEpoch => n.epochs().accepted_epoch,
                    Base::CurrentEpoch => n.epochs().current_epoch,
                    Base::Zxid => n.zxid(),
                    Base::ReportedEpoch => n.epoch().unwrap_or(0),
                });
                base.wrapping_add_signed(i64::from(delta))
            }
        }
    }

    fn who(&self, receiver: usize, who: Who) -> u64 {
        match who {
            Who::Voter(x) => self.voters[usize::from(x) % self.voters.len()],
            Who::Receiver => self.slots[receiver].id,
            Who::Node(x) => self.slots[self.index(x)].id,
            Who::Stranger(x) => STRANGER_BASE + u64::from(x),
            Who::NoLeader => NO_LEADER,
            Who::Raw(x) => x,
        }
    }

    /// A correctly framed datagram from `spec`. In an honest scenario a voter's (or a node
    /// under test's) id is replaced by a stranger's.
    pub(super) fn forge(&mut self, to: usize, spec: &FrameSpec) -> [u8; FRAME_LEN] {
        let mut sender = self.who(to, spec.sender);
        if self.honest && (self.is_voter(sender) || self.slots.iter().any(|s| s.id == sender)) {
            // Honest scenario: whoever forges is a stranger.
            sender = STRANGER_BASE + sender % 50;
        }
        let sequence = match spec.sequence {
            Seq::Next => {
                self.next_forged_sequence += 1;
                self.next_forged_sequence
            }
            Seq::Raw(x) => x,
        };
        let local = self.local(to).as_micros();
        // Past and future stamps are encoded under the receiver's nonce, as its own echoes
        // would be, so that they decode to stamps near its clock.
        let stamp = |micros: u64| {
            let stamp = Instant::from_micros(micros);
            self.slots[to]
                .node
                .as_ref()
                .map_or(micros.saturating_add(1), |node| node.stamp_echo(stamp))
        };
        let echo = match spec.echo {
            Echo::Zero => 0,
            Echo::Past(x) => stamp(local.saturating_sub(u64::from(x) * 64)),
            Echo::Future(x) => stamp(local.saturating_add(u64::from(x))),
            Echo::Raw(x) => x,
        };
        let repr = Repr {
            state: ServerState::from_code(spec.state % 4).expect("codes 0..4 exist"),
            flags: Flags::from_bits_truncate(spec.flags),
            key_id: spec.key_id,
            cluster: if spec.other_cluster {
                CLUSTER ^ 1
            } else {
                CLUSTER
            },
            sender,
            incarnation: self.resolve(to, spec.incarnation) as u32,
            sequence,
            vote: Vote {
                leader: self.who(to, spec.leader),
                zxid: self.resolve(to, spec.zxid),
                peer_epoch: self.resolve(to, spec.peer_epoch),
                // Bit 2 of the forged flags byte: the vote's INELIGIBLE bit.
                ineligible: spec.flags & VOTE_INELIGIBLE_BIT != 0,
            },
            round: self.resolve(to, spec.round),
            accepted_epoch: self.resolve(to, spec.accepted_epoch),
            epoch: self.resolve(to, spec.epoch),
            echo,
            auth_tag: [spec.tag; 16],
        };
        let mut frame = [0u8; FRAME_LEN];
        let mut packet = Packet::new_unchecked(&mut frame[..]);
        repr.emit(&mut packet);
        // Reserved flag bits go out as well: receivers must ignore them.
        packet.set_flags(spec.flags);
        packet.fill_checksum();
        frame
    }
}
