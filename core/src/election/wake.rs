//! Which received frames a follower may leave unread until it wakes anyway.
//!
//! An established leader heartbeats every tick. Once a follower has acknowledged the
//! established epoch, most of those heartbeats only renew what the one before did (the
//! sync deadline and the promise, both counted from the receipt) and ask for no answer:
//! they are ANSWER_OPTIONAL and not this follower's turn (see [`answers`]). An observer
//! answers none. A driver may leave such a heartbeat in its socket and hand it to the
//! node at its next wake-up (the next frame that cannot wait, or the node's next
//! deadline), as long as it gives the frame a receipt time no earlier than the moment it
//! arrived: then the node ends up exactly where it would have been had it been woken
//! for the frame, except that the promise may run a little longer (safe). Reading the
//! frames before acting on a deadline keeps the deadline from firing for a heartbeat
//! that had arrived.
//!
//! Every other frame needs the node at once: a heartbeat that asks for an answer, one of
//! another leader, incarnation or epoch, a RESIGN or handover notice, any vote. While a LOOKING node may be
//! about, heartbeats are answered to everyone, so no rule is given then.
//!
//! A [`WakeRule`] states the frames that can wait as [`Check`]s on the raw bytes, which a
//! kernel socket filter can make before the frame ever wakes the process (the driver
//! compiles them to a classic BPF program). Frames a filter lets wait by mistake only
//! wait; frames it wakes for by mistake only cost a wake-up. [`WakeRule::lets_wait`]
//! makes the same checks in Rust, so the two can be compared.
//!
//! [`answers`]: super::answers

use super::answers;
use super::node::{Node, Role};
use super::time::Instant;
use crate::wire::{layout, Flags, ServerState, FRAME_LEN, VOTE_INELIGIBLE_BIT};

/// The largest turn cycle a rule carries: the filter computes a 64-bit sequence number
/// modulo the cycle in 32-bit arithmetic, which needs `cycle² < 2³²`.
pub const MAX_TURN_CYCLE: u64 = 0xffff;

/// The frames an established follower (or observer) may leave unread for a while: the
/// heartbeats of its leader's process and epoch that ask it for no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeRule {
    pub leader: u64,
    pub incarnation: u32,
    pub epoch: u64,
    /// A voter's turns: heartbeat `s` is answered when `s mod cycle = residue`, so only
    /// ANSWER_OPTIONAL heartbeats off the turn can wait. `None` for an observer, which
    /// answers no heartbeat.
    pub turn: Option<Turn>,
}

/// A voter's turn among the followers (see [`answers`](super::answers)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    pub cycle: u32,
    pub residue: u32,
}

/// One check on a received datagram's bytes (offsets from the start of the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `byte[offset] & mask == value`.
    Byte { offset: usize, mask: u8, value: u8 },
    /// The big-endian `u32` at `offset` is `value`.
    Word { offset: usize, value: u32 },
    /// The big-endian `u64` at `offset`, modulo `cycle`, is not `residue`.
    NotModulo {
        offset: usize,
        cycle: u32,
        residue: u32,
    },
}

/// At most this many checks make a rule.
pub const MAX_CHECKS: usize = 10;

impl Check {
    /// Whether `datagram` (at least [`FRAME_LEN`] bytes) passes this check.
    pub fn holds(&self, datagram: &[u8]) -> bool {
        match *self {
            Check::Byte {
                offset,
                mask,
                value,
            } => datagram.get(offset).is_some_and(|b| b & mask == value),
            Check::Word { offset, value } => read_u32(datagram, offset) == Some(value),
            Check::NotModulo {
                offset,
                cycle,
                residue,
            } => match (read_u32(datagram, offset), read_u32(datagram, offset + 4)) {
                (Some(hi), Some(lo)) if cycle > 0 => {
                    let sequence = (u64::from(hi) << 32) | u64::from(lo);
                    sequence % u64::from(cycle) != u64::from(residue)
                }
                _ => false,
            },
        }
    }
}

fn read_u32(datagram: &[u8], offset: usize) -> Option<u32> {
    let bytes = datagram.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The two big-endian words of a `u64` field at `offset`.
fn words(offset: usize, value: u64) -> [Check; 2] {
    [
        Check::Word {
            offset,
            value: (value >> 32) as u32,
        },
        Check::Word {
            offset: offset + 4,
            value: value as u32,
        },
    ]
}

impl WakeRule {
    /// The checks a datagram of [`FRAME_LEN`] bytes must pass, all of them, to wait.
    pub fn checks(&self) -> heapless::Vec<Check, MAX_CHECKS> {
        let mut flags_mask = Flags::RESIGN.bits()
            | Flags::ESTABLISHED.bits()
            | Flags::HANDOVER.bits()
            | VOTE_INELIGIBLE_BIT;
        let mut flags = Flags::ESTABLISHED.bits();
        if self.turn.is_some() {
            flags_mask |= Flags::ANSWER_OPTIONAL.bits();
            flags |= Flags::ANSWER_OPTIONAL.bits();
        }
        let mut checks = heapless::Vec::new();
        let all = [
            Check::Byte {
                offset: layout::STATE,
                mask: 0xff,
                value: ServerState::Leading.code(),
            },
            Check::Byte {
                offset: layout::FLAGS,
                mask: flags_mask,
                value: flags,
            },
            Check::Word {
                offset: layout::INCARNATION.start,
                value: self.incarnation,
            },
        ]
        .into_iter()
        .chain(words(layout::SENDER.start, self.leader))
        .chain(words(layout::VOTE_LEADER.start, self.leader))
        .chain(words(layout::EPOCH.start, self.epoch))
        .chain(self.turn.map(|turn| Check::NotModulo {
            offset: layout::SEQUENCE.start,
            cycle: turn.cycle,
            residue: turn.residue,
        }));
        for check in all {
            // MAX_CHECKS is the length of the longest chain above.
            let _ = checks.push(check);
        }
        checks
    }

    /// Whether `datagram` may wait: a whole frame that passes every check.
    pub fn lets_wait(&self, datagram: &[u8]) -> bool {
        datagram.len() == FRAME_LEN && self.checks().iter().all(|c| c.holds(datagram))
    }
}

impl Node {
    /// The frames this node may leave unread until its next wake-up at `now` (see the
    /// module docs), or `None` if every frame needs it at once: not an established
    /// follower or observer, a voter that has not acknowledged the established epoch, a
    /// LOOKING node about, or turns too long for a filter.
    pub fn wake_rule(&self, now: Instant) -> Option<WakeRule> {
        let Role::Following(follow) = &self.role else {
            return None;
        };
        let incarnation = follow.leader_incarnation()?;
        if follow.established_epoch == 0 || self.someone_looking(now) {
            return None;
        }
        let leader = follow.vote.leader;
        let turn = if self.is_voter {
            if !follow.acked_established() {
                return None;
            }
            let others = self.config.voters.len() - 1;
            let rank = answers::rank(self.voters.own(), self.config.voter_index(leader))?;
            let cycle = answers::cycle(self.config.sync_limit, others);
            if cycle > MAX_TURN_CYCLE {
                return None;
            }
            let residue = answers::residue(rank, others, self.config.sync_limit);
            Some(Turn {
                cycle: u32::try_from(cycle).ok()?,
                residue: u32::try_from(residue).ok()?,
            })
        } else {
            None
        };
        Some(WakeRule {
            leader,
            incarnation,
            epoch: follow.established_epoch,
            turn,
        })
    }
}

#[cfg(test)]
mod tests {

    use super::super::testing::{drain, follower_none_looking, frames, started, vote, Sender};
    use super::*;
    use crate::election::Output;
    use crate::wire::{emit_datagram, Repr};

    /// A change to a frame, named.
    type Change = fn(&mut Repr);

    fn bytes(frame: &Repr) -> [u8; FRAME_LEN] {
        let mut buf = [0u8; FRAME_LEN];
        emit_datagram(frame, &mut buf).unwrap();
        buf
    }

    /// Node 1 following 3 in a cluster of 1, 2, 3 (2 following too), the established
    /// epoch 1 acknowledged, at 10 ms. Returns the node and the leader.
    fn established_follower() -> (Node, Sender) {
        let (mut node, mut leader, _) = follower_none_looking();
        assert_eq!(
            node.wake_rule(Instant::from_millis(5)),
            None,
            "no epoch yet"
        );
        node.handle_frame(Instant::from_millis(10), &heartbeat(&mut leader));
        drain(&mut node);
        (node, leader)
    }

    /// The leader's next heartbeat of the established epoch 1, ANSWER_OPTIONAL.
    fn heartbeat(leader: &mut Sender) -> Repr {
        let mut frame = leader.frame(ServerState::Leading, vote(3, 0, 0), 1);
        (frame.epoch, frame.accepted_epoch) = (1, 1);
        frame.flags = Flags::ESTABLISHED.with(Flags::ANSWER_OPTIONAL);
        frame
    }

    /// A LOOKING node heard long ago no longer counts (see `someone_looking`).
    fn later(node: &Node) -> Instant {
        Instant::from_millis(5)
            + node
                .config
                .max_notification_interval
                .max(node.config.sync_timeout())
    }

    #[test]
    fn a_heartbeat_that_may_wait_is_one_the_node_does_not_answer() {
        let (mut node, mut leader) = established_follower();
        let mut now = later(&node);
        let rule = node
            .wake_rule(now)
            .expect("an established follower has a rule");
        assert_eq!(rule.leader, 3);
        assert_eq!(rule.epoch, 1);
        let turn = rule.turn.expect("a voter has turns");
        assert_eq!(turn.cycle, 4, "two followers, every fourth at sync-limit 6");
        let (mut waited, mut answered) = (0, 0);
        for _ in 0..16 {
            now = now + node.config.tick;
            let frame = heartbeat(&mut leader);
            let waits = rule.lets_wait(&bytes(&frame));
            let valid_before = node.valid_until();
            node.handle_frame(now, &frame);
            let sent = frames(&mut node);
            if waits {
                waited += 1;
                assert!(sent.is_empty(), "sequence {}: {sent:?}", frame.sequence);
                assert!(node.valid_until() >= valid_before, "the promise only grows");
            } else {
                answered += 1;
                assert_eq!(sent.len(), 1, "sequence {}: its turn", frame.sequence);
            }
            assert_eq!(node.wake_rule(now), Some(rule), "nothing changed");
        }
        assert_eq!((waited, answered), (12, 4));
    }

    #[test]
    fn every_other_frame_needs_the_node_at_once() {
        let (node, mut leader) = established_follower();
        let rule = node.wake_rule(later(&node)).unwrap();
        let turn = rule.turn.unwrap();
        // A heartbeat off the turn that may wait, and variations of it that may not.
        let mut base = heartbeat(&mut leader);
        while u64::from(turn.residue) == base.sequence % u64::from(turn.cycle) {
            base = heartbeat(&mut leader);
        }
        assert!(rule.lets_wait(&bytes(&base)));
        let mut on_turn = base;
        on_turn.sequence =
            base.sequence - base.sequence % u64::from(turn.cycle) + u64::from(turn.residue);
        assert!(!rule.lets_wait(&bytes(&on_turn)), "its turn");
        let variants: [(&str, Change); 13] = [
            ("asks everyone", |f| f.flags = Flags::ESTABLISHED),
            ("resigns", |f| f.flags.insert(Flags::RESIGN)),
            ("hands over", |f| f.flags.insert(Flags::HANDOVER)),
            ("not established", |f| f.flags = Flags::ANSWER_OPTIONAL),
            ("ineligible", |f| f.vote.ineligible = true),
            ("another epoch", |f| f.epoch = 2),
            ("an epoch beyond 32 bits", |f| f.epoch = 1 << 32 | 1),
            ("another incarnation", |f| f.incarnation = 2),
            ("another sender", |f| f.sender = 2),
            ("a sender beyond 32 bits", |f| f.sender = 1 << 32 | 3),
            ("votes for another", |f| f.vote.leader = 2),
            ("looking", |f| f.state = ServerState::Looking),
            ("following", |f| f.state = ServerState::Following),
        ];
        for (what, change) in variants {
            let mut frame = base;
            change(&mut frame);
            assert!(!rule.lets_wait(&bytes(&frame)), "{what}");
        }
        assert!(!rule.lets_wait(&bytes(&base)[..FRAME_LEN - 1]), "short");
        // A sequence beyond 32 bits: the filter's arithmetic is 32-bit.
        for s in [1u64 << 32, (1 << 40) + 7, u64::MAX - 3] {
            let mut frame = base;
            frame.sequence = s;
            assert_eq!(
                rule.lets_wait(&bytes(&frame)),
                s % u64::from(turn.cycle) != u64::from(turn.residue),
                "sequence {s}"
            );
        }
    }

    #[test]
    fn no_rule_while_a_looking_node_may_be_about_or_for_a_leader() {
        let (mut node, mut leader) = established_follower();
        assert!(
            node.wake_rule(Instant::from_millis(10)).is_some(),
            "no one is LOOKING"
        );
        let mut two = Sender::new(2);
        two.sequence_from(10);
        let t = later(&node);
        node.handle_frame(t, &two.frame(ServerState::Looking, vote(2, 0, 0), 2));
        drain(&mut node);
        assert_eq!(node.wake_rule(t), None, "2 is LOOKING");
        node.handle_frame(t, &heartbeat(&mut leader));
        drain(&mut node);
        assert_eq!(node.wake_rule(t), None);
        let mut lead = started(3, &[1, 2, 3]);
        let outputs = drain(&mut lead);
        assert!(outputs.iter().any(|o| matches!(o, Output::Transmit(_))));
        assert_eq!(lead.wake_rule(Instant::ZERO), None, "LOOKING");
    }
}
