//! What we send and when. Handlers only mark a frame as due ([`Node::broadcast`], or
//! [`Node::answer`] within the answer budget); the frame is built from the then current
//! state when the driver polls, so several reasons to send within one input produce one
//! frame. Also the encoding of the leader's time stamp (`echo`).

use super::node::{Node, Role};
use super::output::Frame;
use super::time::Instant;
use super::timers::Timer;
use crate::wire::{Flags, Packet, Repr, ServerState, Vote, FRAME_LEN, NO_LEADER};

/// Answers to LOOKING nodes (and to followers that still need our epoch) may come in a
/// burst of this many, then one per [`Config::answer_interval`](super::Config::answer_interval):
/// a joining node needs two answers in quick succession, a flood of LOOKING frames gets a
/// bounded trickle.
pub(super) const ANSWER_BURST: u32 = 4;

impl Node {
    /// Answer a LOOKING node with our current state, within the answer budget: the answer
    /// is multicast, so one serves every looking node, and a looking node cannot make the
    /// cluster flood the group.
    pub(super) fn answer(&mut self, now: Instant) {
        if self.answers.take(now, self.config.answer_interval()) {
            self.broadcast(now);
        }
    }

    /// Send our state. While LOOKING this restarts the notification timer: a broadcast is
    /// the retransmission it would have made.
    pub(super) fn broadcast(&mut self, now: Instant) {
        if matches!(self.role, Role::Following(_)) && !self.is_voter {
            // Observers stay silent once they observe.
            return;
        }
        self.transmit_pending = true;
        self.reply_to = None;
        if let Some(looking) = self.looking() {
            self.timers
                .set(Timer::Notification, now + looking.notification_interval);
        }
    }

    /// Send our state to `leader` only: a follower's heartbeat answer to a leader that
    /// takes answers by unicast. Nobody else needs it: the leader's lease counts the
    /// echoes, and a LOOKING node learns of the leader from the answers to its own votes
    /// (see [`Node::answer`]). If a frame to everyone is due already, that one serves.
    pub(super) fn reply_to_leader(&mut self, leader: u64) {
        if !self.transmit_pending {
            self.transmit_pending = true;
            self.reply_to = Some(leader);
        }
    }

    /// The due frame: built, signed, remembered as ours and counted.
    pub(super) fn transmit(&mut self) -> Frame {
        let repr = self.build_frame();
        let mut bytes = [0u8; FRAME_LEN];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        self.config.keys.sign(&mut bytes);
        let repr = Repr {
            key_id: bytes[7],
            ..repr
        };
        let crc = Packet::new_unchecked(&bytes[..]).checksum();
        self.own_frames.record(repr.sequence, crc);
        self.stats.frames_sent += 1;
        Frame {
            repr,
            bytes,
            to: self.reply_to.take(),
        }
    }

    /// Our current state as a frame, with the next sequence number.
    fn build_frame(&mut self) -> Repr {
        let no_vote = Vote {
            leader: NO_LEADER,
            zxid: 0,
            peer_epoch: 0,
            ineligible: false,
        };
        let mut frame = Repr {
            state: ServerState::Looking,
            flags: Flags::empty(),
            key_id: 0,
            cluster: self.config.cluster,
            sender: self.config.id,
            incarnation: self.incarnation,
            sequence: self.own_frames.next_sequence(),
            vote: no_vote,
            round: self.round,
            accepted_epoch: self.epochs.accepted_epoch,
            epoch: 0,
            echo: 0,
            auth_tag: [0; 16],
        };
        match self.role {
            Role::Idle => {}
            Role::Looking(l) => frame.vote = l.proposal.unwrap_or(no_vote),
            Role::Following(f) => {
                frame.state = if self.is_voter {
                    ServerState::Following
                } else {
                    ServerState::Observing
                };
                frame.vote = f.vote;
                frame.epoch = f.acked_epoch;
                frame.echo = f.echo;
                if f.acked_established() {
                    frame.flags.insert(Flags::ESTABLISHED);
                }
            }
            Role::Leading(l) => {
                frame.state = ServerState::Leading;
                frame.vote = l.vote;
                frame.epoch = l.epoch;
                frame.echo = encode_echo(self.now, self.nonce);
                if l.established {
                    frame.flags.insert(Flags::ESTABLISHED);
                }
                // Unicast answers only while they demonstrably arrive: once the lease no
                // longer outlasts the next heartbeat comfortably, answers are missing (lost,
                // or unicast to us blocked), and the followers answer to the group until
                // it does again. A firewall that passes the group but not unicast thus
                // costs every other answer, never the lease.
                let ask_unicast = self.unicast_answers && self.frames_can_wait();
                if ask_unicast {
                    frame.flags.insert(Flags::UNICAST_ANSWERS);
                } else if l.asked_unicast {
                    self.stats.group_answer_requests += 1;
                }
                if let Role::Leading(lead) = &mut self.role {
                    lead.asked_unicast = ask_unicast;
                }
                if self.answers_optional(self.now) {
                    frame.flags.insert(Flags::ANSWER_OPTIONAL);
                }
            }
            // A stepped-down leader's handover notice: its LEADING frame with HANDOVER, so
            // that nodes that predate the flag take it for a heartbeat (which renews their
            // promise and so cannot end it), and no time stamp, so that no answer to it
            // counts towards a lease. Any other frame of a stepped-down node is never
            // sent (`poll_output` keeps it silent); built like the frame of a node that
            // stopped, without RESIGN.
            Role::SteppedDown { last_vote } => match self.handover_pending.take() {
                Some(handover) => {
                    frame.state = ServerState::Leading;
                    frame.vote = handover.vote;
                    frame.epoch = handover.epoch;
                    frame.flags.insert(Flags::HANDOVER);
                    if handover.established {
                        frame.flags.insert(Flags::ESTABLISHED);
                    }
                }
                None => frame.vote = last_vote.unwrap_or(no_vote),
            },
            Role::Stopped { last_vote } => {
                frame.vote = last_vote.unwrap_or(no_vote);
                if self.resign_pending {
                    frame.flags.insert(Flags::RESIGN);
                    self.resign_pending = false;
                    // A stepped-down leader's RESIGN supports its successor (see
                    // `handover`): a FOLLOWING frame's acknowledgement and echo.
                    if let Some(support) = self.successor.support() {
                        frame.state = ServerState::Following;
                        frame.vote = support.vote;
                        frame.epoch = support.epoch;
                        frame.echo = support.echo;
                        if support.established {
                            frame.flags.insert(Flags::ESTABLISHED);
                        }
                    }
                }
            }
        }
        frame
    }
}

/// Leader time stamps travel as microseconds plus one, offset by the leader's process
/// nonce (wrapping), so that zero means "none" even for a clock whose origin is the start
/// instant, and a stamp is bound to the process that sent it: under another process's
/// nonce it decodes to a time as good as random, which lies in a term's
/// `[term_start, now]` with odds of about `now / 2^64`. The offset keeps the order of one
/// process's stamps (the wrap point is 2^64 µs away from the origin in either direction
/// at worst, centuries of uptime). Followers echo the value as it came.
pub(super) fn encode_echo(now: Instant, nonce: u64) -> u64 {
    now.as_micros().saturating_add(1).wrapping_add(nonce)
}

/// The leader time stamp in a received `echo` under process `nonce`, None for zero.
pub(super) fn decode_echo(echo: u64, nonce: u64) -> Option<Instant> {
    if echo == 0 {
        return None;
    }
    echo.wrapping_sub(nonce)
        .checked_sub(1)
        .map(Instant::from_micros)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote, Sender};
    use super::*;
    use crate::election::Config;

    #[test]
    fn echo_round_trip_and_zero_means_none() {
        for nonce in [0, 1, 0x9e37_79b9_7f4a_7c15, u64::MAX] {
            for micros in [0, 1, 999, 123_456_789, u64::MAX - 1] {
                let at = Instant::from_micros(micros);
                let echo = encode_echo(at, nonce);
                if echo != 0 {
                    assert_eq!(decode_echo(echo, nonce), Some(at));
                }
            }
            assert_eq!(decode_echo(0, nonce), None);
        }
        assert_ne!(encode_echo(Instant::ZERO, 0), 0);
        // The very last microsecond cannot be told apart from the one before; it saturates.
        assert_eq!(encode_echo(Instant::from_micros(u64::MAX), 0), u64::MAX);
    }

    #[test]
    fn a_stamp_of_another_process_decodes_to_another_time() {
        let at = Instant::from_millis(1_500);
        let echo = encode_echo(at, 0x1234_5678_9abc_def0);
        let other = decode_echo(echo, 0x0fed_cba9_8765_4321);
        assert!(other.is_none_or(|t| t != at && t > Instant::from_micros(1 << 40)));
        // One process's stamps keep their order.
        let nonce = u64::MAX - 5;
        let (a, b) = (
            encode_echo(Instant::from_micros(1), nonce),
            encode_echo(Instant::from_micros(2), nonce),
        );
        assert_eq!(b.wrapping_sub(a), 1);
    }

    #[test]
    fn frames_are_numbered_signed_and_parse_back() {
        let mut node = started(2, &[1, 2, 3]);
        let mut sent = frames(&mut node);
        node.handle_timeout(Instant::from_millis(50));
        sent.extend(frames(&mut node));
        assert_eq!(sent.len(), 2, "initial vote and one retransmission");
        for (i, frame) in sent.iter().enumerate() {
            assert_eq!(frame.repr.sequence, i as u64 + 1);
            let parsed = Repr::parse(&Packet::new_unchecked(&frame.bytes[..]), 0).unwrap();
            assert_eq!(parsed, frame.repr);
            assert_eq!(parsed.vote, vote(2, 0, 0));
            assert_eq!(parsed.state, ServerState::Looking);
        }
        assert_eq!(node.stats().frames_sent, 2);
    }

    #[test]
    fn several_reasons_to_send_make_one_frame() {
        let mut node = started(1, &[1, 2, 3]);
        let mut two = Sender::new(2);
        node.handle_frame(
            Instant::ZERO,
            &two.frame(ServerState::Looking, vote(2, 0, 0), 1),
        );
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].repr.vote, vote(2, 0, 0), "built when polled");
    }

    #[test]
    fn answers_are_throttled_to_a_burst_then_one_per_interval() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let interval = node.config.answer_interval();
        let mut answered = 0;
        for _ in 0..10 {
            node.answer(Instant::ZERO);
            answered += frames(&mut node).len();
        }
        assert_eq!(answered, ANSWER_BURST as usize);
        node.answer(Instant::ZERO + interval);
        assert_eq!(frames(&mut node).len(), 1);
        node.answer(Instant::ZERO + interval);
        assert!(frames(&mut node).is_empty());
    }

    #[test]
    fn observers_are_silent_once_observing() {
        let config = Config::new(9, &[1, 2, 3]).unwrap();
        let mut node = crate::election::Node::new(config, Default::default(), 1).unwrap();
        node.start(Instant::ZERO);
        // An observer's looking frame carries no vote.
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].repr.vote.leader, NO_LEADER);
        node.become_follower(Instant::ZERO, vote(3, 0, 0));
        node.broadcast(Instant::ZERO);
        assert!(frames(&mut node).is_empty());
    }
}
