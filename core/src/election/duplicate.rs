//! Our own frames and the duplicate-id quarantine.
//!
//! Frames carrying our id come back to us over the multicast loop. We number our frames
//! and remember the checksums of the recent ones, so that a frame with our id that we did
//! not send gives away another board configured with our id. Then we quarantine
//! ourselves: no frames and no leadership until that board has been silent for a while.
//!
//! A frame of a later incarnation proves another board only once that process has been
//! seen alive for the detection window (new frames, spanning sync-limit ticks, without a
//! gap longer than that): incarnations drawn at random (a wiped or absent data dir) say
//! nothing about the order of our own processes, so a single late or replayed frame of
//! an earlier process of ours may carry a later incarnation than ours. This is the same
//! notion of "alive" the failure detector uses; a recorded stream replayed in order is
//! the only way to imitate it, and each recorded frame counts once.

use core::cmp::Ordering;
use core::time::Duration;

use super::config::Config;
use super::node::{Node, Role};
use super::output::{Event, Output, RestartReason};
use super::time::Instant;
use crate::wire::Repr;

/// Own frames remembered (sequence and CRC) to tell our looped-back frames from another
/// board's frames with our id. Older own frames are not compared, only dropped.
const SENT_RING: usize = 32;

/// Another board sends frames with our id (see [`Node::duplicate_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateId {
    /// Incarnation and sequence of the frame that gave it away.
    pub incarnation: u32,
    pub sequence: u64,
    /// Until when we stay silent and refuse to lead, unless more such frames arrive.
    pub quarantine_until: Instant,
}

/// The numbering of our frames and the (sequence, CRC) of the recent ones.
#[derive(Debug, Clone)]
pub(super) struct OwnFrames {
    /// Sequence of the last frame we built.
    sequence: u64,
    /// At index `sequence % SENT_RING`.
    sent: [(u64, u32); SENT_RING],
}

impl OwnFrames {
    pub(super) const NEW: OwnFrames = OwnFrames {
        sequence: 0,
        sent: [(0, 0); SENT_RING],
    };

    /// The sequence number of the next frame we build.
    pub(super) fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    /// Remember the checksum of our frame `sequence` as sent.
    pub(super) fn record(&mut self, sequence: u64, crc: u32) {
        self.sent[slot(sequence)] = (sequence, crc);
    }

    /// Who sent a frame with our id, from process `incarnation` at `sequence` with
    /// checksum `crc`, as seen by us (process `own_incarnation`). A sequence we have not
    /// reached, or contents that differ from ours under the same sequence, come from
    /// another board with our id (with authentication on, nobody without the key can make
    /// one). An older incarnation counts as ours, a replay of our past: otherwise an
    /// attacker replaying a recorded frame could silence us. A sequence too old to be
    /// remembered is assumed ours. A later incarnation is another process whose
    /// liveness [`LaterProcess`] judges.
    pub(super) fn origin(
        &self,
        own_incarnation: u32,
        incarnation: u32,
        sequence: u64,
        crc: u32,
    ) -> Origin {
        match incarnation.cmp(&own_incarnation) {
            Ordering::Less => Origin::Ours,
            Ordering::Greater => Origin::LaterIncarnation,
            Ordering::Equal if sequence > self.sequence => Origin::Twin,
            Ordering::Equal => {
                let (sent_sequence, sent_crc) = self.sent[slot(sequence)];
                if sent_sequence != sequence || sent_crc == crc {
                    Origin::Ours
                } else {
                    Origin::Twin
                }
            }
        }
    }
}

/// See [`OwnFrames::origin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    Ours,
    /// Our incarnation, but not our frame: another board.
    Twin,
    /// Another board, or a late or replayed frame of an earlier process of ours.
    LaterIncarnation,
}

/// The one later-incarnation process with our id we are watching: it proves another
/// board once it has been alive for the detection window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LaterProcess(Option<Watched>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Watched {
    incarnation: u32,
    /// Newest sequence seen: older or repeated frames do not count again.
    sequence: u64,
    first_at: Instant,
    last_at: Instant,
}

impl LaterProcess {
    /// A frame of process `incarnation` at `sequence` arrived at `now`: whether that
    /// process has now been alive for `window` (new frames since at least `window` ago,
    /// no gap longer than `window`). A frame of another process, or after a longer gap,
    /// starts watching anew.
    pub(super) fn alive_for(
        &mut self,
        now: Instant,
        incarnation: u32,
        sequence: u64,
        window: Duration,
    ) -> bool {
        match &mut self.0 {
            Some(w) if w.incarnation == incarnation && sequence <= w.sequence => false,
            Some(w) if w.incarnation == incarnation && now <= w.last_at + window => {
                w.sequence = sequence;
                w.last_at = now;
                now >= w.first_at + window
            }
            _ => {
                self.0 = Some(Watched {
                    incarnation,
                    sequence,
                    first_at: now,
                    last_at: now,
                });
                false
            }
        }
    }
}

fn slot(sequence: u64) -> usize {
    // The remainder is below SENT_RING, so it fits.
    (sequence % SENT_RING as u64) as usize
}

/// The duplicate-id quarantine: the latest sighting of another board with our id, until
/// its quarantine ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Quarantine(Option<DuplicateId>);

impl Quarantine {
    /// Another board with our id was heard: (re)start the quarantine. True when it was
    /// not running, that is when the application must be told.
    pub(super) fn sighted(&mut self, sighting: DuplicateId) -> bool {
        let fresh = self.0.is_none();
        self.0 = Some(sighting);
        fresh
    }

    /// End the quarantine if it is over at `now`; true when it ended.
    pub(super) fn expire(&mut self, now: Instant) -> bool {
        if self.0.is_some_and(|d| d.quarantine_until <= now) {
            self.0 = None;
            return true;
        }
        false
    }

    /// Whether we are quarantined (until [`Quarantine::expire`] ends it).
    pub(super) fn is_active(&self) -> bool {
        self.0.is_some()
    }

    pub(super) fn current(&self) -> Option<DuplicateId> {
        self.0
    }
}

/// Four follower timeouts plus up to one more, spread by our incarnation: two boards with
/// one id that both stood down come back at different times, and the first one back keeps
/// the other quiet.
pub(super) fn quarantine_duration(config: &Config, incarnation: u32) -> Duration {
    let sync = config.sync_timeout();
    let spread = crate::rng::mix(u64::from(incarnation) ^ config.id.rotate_left(32));
    let jitter_us = spread % u64::try_from(sync.as_micros()).unwrap_or(1).max(1);
    sync * 4 + Duration::from_micros(jitter_us)
}

impl Node {
    /// A frame carrying our id, with the checksum it arrived with: our own looped-back
    /// frame, or the sign of another board with our id, which quarantines us. A leader
    /// steps down at once.
    pub(super) fn receive_own_id(&mut self, now: Instant, frame: &Repr, crc: u32) {
        self.stats.own_frames += 1;
        let origin =
            self.own_frames
                .origin(self.incarnation, frame.incarnation, frame.sequence, crc);
        let twin = match origin {
            Origin::Ours => false,
            Origin::Twin => true,
            Origin::LaterIncarnation => self.later_process.alive_for(
                now,
                frame.incarnation,
                frame.sequence,
                self.config.sync_timeout(),
            ),
        };
        if !twin {
            return;
        }
        self.stats.duplicate_id_frames += 1;
        let sighting = DuplicateId {
            incarnation: frame.incarnation,
            sequence: frame.sequence,
            quarantine_until: now + quarantine_duration(&self.config, self.incarnation),
        };
        if self.quarantine.sighted(sighting) {
            self.push_output(Output::Event(Event::DuplicateId(sighting)));
            if matches!(self.role, Role::Leading(_)) {
                self.restart_election(now, RestartReason::DuplicateId);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{drain, frames, started, vote, Sender};
    use super::*;
    use crate::election::ServerState;

    #[test]
    fn own_frames_are_recognised_by_sequence_and_checksum() {
        let mut own = OwnFrames::NEW;
        for _ in 0..40 {
            let sequence = own.next_sequence();
            own.record(sequence, 1000 + sequence as u32);
        }
        assert_eq!(own.origin(5, 5, 40, 1040), Origin::Ours);
        assert_eq!(
            own.origin(5, 5, 40, 7),
            Origin::Twin,
            "same sequence, other contents"
        );
        assert_eq!(
            own.origin(5, 5, 41, 1041),
            Origin::Twin,
            "a sequence we have not reached"
        );
        assert_eq!(own.origin(5, 6, 1, 1001), Origin::LaterIncarnation);
        assert_eq!(
            own.origin(5, 4, 99, 0),
            Origin::Ours,
            "an older incarnation is a replay"
        );
        // Sequence 8 was overwritten by 40 in the ring: too old to compare.
        assert_eq!(own.origin(5, 5, 8, 7), Origin::Ours);
        // Sequence 9 is still remembered (ring of 32: 9..=40).
        assert_eq!(own.origin(5, 5, 9, 1009), Origin::Ours);
        assert_eq!(own.origin(5, 5, 9, 7), Origin::Twin);
    }

    #[test]
    fn a_later_process_counts_once_alive_for_the_window() {
        let window = Duration::from_millis(300);
        let ms = Instant::from_millis;
        let mut later = LaterProcess::default();
        // New frames every 50 ms: alive once the first is 300 ms old.
        for (i, t) in (0..=300).step_by(50).enumerate() {
            let alive = later.alive_for(ms(t), 9, i as u64 + 1, window);
            assert_eq!(alive, t >= 300, "at {t} ms");
        }
        // Repeated or older frames never count, not even once alive.
        assert!(!later.alive_for(ms(350), 9, 7, window));
        assert!(!later.alive_for(ms(350), 9, 3, window));
        assert!(later.alive_for(ms(350), 9, 8, window));
        // A gap longer than the window: watched anew.
        assert!(!later.alive_for(ms(651), 9, 9, window));
        assert!(!later.alive_for(ms(700), 9, 10, window));
        // Another process in between restarts the watch too.
        assert!(!later.alive_for(ms(1000), 10, 1, window));
        assert!(!later.alive_for(ms(1001), 9, 11, window));
    }

    #[test]
    fn quarantine_reports_once_and_ends_at_its_deadline() {
        let mut q = Quarantine::default();
        let sighting = |until| DuplicateId {
            incarnation: 2,
            sequence: 9,
            quarantine_until: Instant::from_millis(until),
        };
        assert!(!q.is_active());
        assert!(q.sighted(sighting(100)));
        assert!(
            !q.sighted(sighting(150)),
            "already running: not reported again"
        );
        assert_eq!(q.current(), Some(sighting(150)));
        assert!(!q.expire(Instant::from_millis(149)));
        assert!(q.is_active());
        assert!(q.expire(Instant::from_millis(150)));
        assert!(!q.is_active() && q.current().is_none());
    }

    #[test]
    fn quarantine_lasts_four_to_five_follower_timeouts() {
        let config = Config::new(1, &[1, 2, 3]).unwrap();
        let sync = config.sync_timeout();
        let a = quarantine_duration(&config, 1);
        let b = quarantine_duration(&config, 2);
        for d in [a, b] {
            assert!(d >= sync * 4 && d < sync * 5, "{d:?}");
        }
        assert_ne!(a, b, "spread by incarnation");
    }

    #[test]
    fn another_board_with_our_id_silences_us() {
        let mut node = started(1, &[1, 2, 3]);
        let mut ours = frames(&mut node);
        assert_eq!(ours.len(), 1);
        let mut copy = ours.remove(0).repr;
        // Our own frame back from the loop: nothing happens.
        node.handle_frame(Instant::from_millis(1), &copy);
        assert!(drain(&mut node).is_empty());
        assert!(node.duplicate_id().is_none());
        // Same sequence, other contents: another board.
        copy.round += 1;
        node.handle_frame(Instant::from_millis(2), &copy);
        let out = drain(&mut node);
        assert!(
            matches!(out.as_slice(), [Output::Event(Event::DuplicateId(d))] if d.sequence == copy.sequence),
            "{out:?}"
        );
        assert_eq!(node.stats().duplicate_id_frames, 1);
        // While quarantined nothing is sent, even when the notification timer fires.
        let until = node.duplicate_id().unwrap().quarantine_until;
        node.handle_timeout(Instant::from_millis(500));
        assert!(frames(&mut node).is_empty());
        // Once it ends, a fresh round with our vote.
        node.handle_timeout(until);
        assert!(node.duplicate_id().is_none());
        let sent = frames(&mut node);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].repr.state, ServerState::Looking);
        assert_eq!(sent[0].repr.round, 2);
    }

    #[test]
    fn a_later_incarnation_silences_us_only_once_alive_for_the_window() {
        let mut node = started(1, &[1, 2, 3]);
        drain(&mut node);
        let window = node.config.sync_timeout();
        let tick = node.config.tick;
        // One late frame of an earlier process of ours that drew a higher incarnation (a
        // wiped or absent data dir), even repeated: nothing happens.
        let mut past = Sender::new(1);
        past.incarnation = 9;
        let old = past.frame(ServerState::Looking, vote(1, 0, 0), 1);
        for t in [10, 500, 1_000] {
            node.handle_frame(Instant::from_millis(t), &old);
        }
        assert!(node.duplicate_id().is_none());
        assert_eq!(node.stats().duplicate_id_frames, 0);
        // A live process with our id and incarnation 9 sends every tick: once it has
        // been alive for the window, we stand down.
        let start = Instant::from_millis(2_000);
        let mut at = start;
        while at < start + window {
            node.handle_frame(at, &past.frame(ServerState::Looking, vote(1, 0, 0), 1));
            assert!(node.duplicate_id().is_none(), "at {at:?}");
            at = at + tick;
        }
        node.handle_frame(at, &past.frame(ServerState::Looking, vote(1, 0, 0), 1));
        assert!(node.duplicate_id().is_some_and(|d| d.incarnation == 9));
    }
}
