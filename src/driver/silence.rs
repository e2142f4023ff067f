//! The silence warning: a node that hears no other voter for [`SILENCE_WARNING_AFTER`]
//! while its own frames leave without error is cut off by the network (its peers may be
//! down too, but then the operator knows that already), and says so once, naming the
//! usual causes.
//!
//! This module owns the decision ([`SilenceWatch`], a pure state machine over explicit
//! times) and the warning's text. It lives in the driver, not in the core, because its
//! inputs and its output are the driver's: whether a send succeeded is known only where
//! the socket is (the core hands out frames and never learns their fate), and the outcome
//! is a log line, which the core never writes. The core supplies when each voter was last
//! heard ([`Node::last_heard`]); the event loop calls [`NodeIo::watch_silence`] once per
//! tick, which reads no clock and allocates nothing unless it logs.
//!
//! The rule: the silence starts at the newest frame accepted from any other voter (or at
//! the start, if none was); once it has lasted the threshold, and a send has succeeded
//! since it started and none failed after that success, warn. Failing sends have their
//! own warning (the link or route is gone), so this one stays quiet then. After a warning
//! nothing more is said until a voter is heard again, which is logged once and re-arms the
//! watch. A node with no other voter to hear (a single-voter cluster) never warns.

use std::fmt;
use std::time::Duration;

use votecast_core::election::{Instant, Node};

use super::NodeIo;

/// How long a node may hear no other voter before it warns (at least the detection
/// window, so a slow `--tick` does not make normal gaps between frames look like silence).
pub const SILENCE_WARNING_AFTER: Duration = Duration::from_secs(10);

/// What the watch is told at each check, on the core's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observed {
    /// The newest frame accepted from another voter: (its id, when). `None`: none since
    /// the start.
    pub last_heard: Option<(u64, Instant)>,
    /// The last send that succeeded.
    pub last_send_ok: Option<Instant>,
    /// The last send that failed (an error, not a full socket buffer).
    pub last_send_failed: Option<Instant>,
}

/// What the watch decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Quiet,
    /// Warn now: no other voter heard for `silent_for` while sends succeed.
    Warn {
        silent_for: Duration,
    },
    /// After a warning, `voter` was heard again, `silent_for` after the silence began.
    HeardAgain {
        voter: u64,
        silent_for: Duration,
    },
}

/// The state machine behind the warning (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceWatch {
    threshold: Duration,
    /// Watching since (a node that never heard anyone is silent from here).
    since: Instant,
    /// Warned for the silence that began at this instant; `None`: armed.
    warned: Option<Instant>,
}

impl SilenceWatch {
    pub fn new(since: Instant, threshold: Duration) -> SilenceWatch {
        SilenceWatch {
            threshold,
            since,
            warned: None,
        }
    }

    /// The verdict at `now`.
    pub fn check(&mut self, now: Instant, seen: Observed) -> Verdict {
        let silence_began = seen
            .last_heard
            .map_or(self.since, |(_, at)| at.max(self.since));
        if let Some(warned_for) = self.warned {
            return match seen.last_heard {
                Some((voter, at)) if at > warned_for => {
                    self.warned = None;
                    let silent_for = at.saturating_duration_since(warned_for);
                    Verdict::HeardAgain { voter, silent_for }
                }
                _ => Verdict::Quiet,
            };
        }
        let silent_for = now.saturating_duration_since(silence_began);
        let sends_succeed = seen.last_send_ok.is_some_and(|ok| {
            ok >= silence_began && seen.last_send_failed.is_none_or(|failed| failed < ok)
        });
        if silent_for >= self.threshold && sends_succeed {
            self.warned = Some(silence_began);
            Verdict::Warn { silent_for }
        } else {
            Verdict::Quiet
        }
    }
}

/// The other voters' ids, for the warning: `2, 3`.
struct OtherVoters<'a>(&'a Node);

impl fmt::Display for OtherVoters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let own = self.0.id();
        let others = self.0.config().voters.iter().filter(|&&id| id != own);
        for (i, id) in others.enumerate() {
            let comma = if i > 0 { ", " } else { "" };
            write!(f, "{comma}{id}")?;
        }
        Ok(())
    }
}

impl NodeIo {
    /// The silence watch's threshold for `node`: [`SILENCE_WARNING_AFTER`], or the
    /// detection window if that is longer.
    pub(super) fn silence_threshold(node: &Node) -> Duration {
        SILENCE_WARNING_AFTER.max(node.detection_window())
    }

    /// Feeds the silence watch (once per tick) and logs what it decides.
    pub(super) fn watch_silence(&mut self, node: &Node) {
        let own = node.id();
        if node.config().voters.iter().all(|&id| id == own) {
            return;
        }
        let seen = Observed {
            last_heard: node.last_heard().max_by_key(|&(_, at)| at),
            last_send_ok: self.last_send_ok,
            last_send_failed: self.last_send_failed,
        };
        match self.silence.check(self.now(), seen) {
            Verdict::Quiet => {}
            Verdict::Warn { silent_for } => {
                let stats = node.stats();
                let dropped = format!(
                    "dropped so far: {} frames of another cluster, {} failing authentication",
                    stats.other_cluster,
                    stats.unauthenticated + stats.bad_tags
                );
                let port = self.destinations.first().map_or(0, |d| d.port());
                if self.peers.is_some() {
                    log::warn!(
                        "node {own}: no frame from any other voter ({}) for {:.0} s, although \
                         our own frames to the {} --peers addresses on {} are sent without \
                         error. Likely causes: a firewall dropping UDP to port {port}, wrong \
                         addresses in --peers (ours or theirs: frames from unlisted sources \
                         are dropped), the wrong --interface, or peers with another --cluster \
                         or key ({dropped}). See README, Diagnosis.",
                        OtherVoters(node),
                        silent_for.as_secs_f64(),
                        self.destinations.len(),
                        self.interface,
                    );
                } else {
                    log::warn!(
                        "node {own}: no frame from any other voter ({}) for {:.0} s, although \
                         our own frames to {} on {} are sent without error. Likely causes: a \
                         switch with IGMP snooping and no IGMP querier on the LAN (enable a \
                         querier or turn snooping off), a firewall dropping UDP to port \
                         {port}, the wrong --interface, or peers with another --group, \
                         --cluster or key ({dropped}). If this network cannot carry \
                         multicast, list the nodes with --peers (unicast). See README, \
                         Diagnosis.",
                        OtherVoters(node),
                        silent_for.as_secs_f64(),
                        OptionAddr(self.destinations.first()),
                        self.interface,
                    );
                }
            }
            Verdict::HeardAgain { voter, silent_for } => log::info!(
                "node {own}: voter {voter} heard again, {:.1} s after the last frame of any \
                 voter",
                silent_for.as_secs_f64()
            ),
        }
    }
}

/// The multicast group (the only destination in multicast mode).
struct OptionAddr<'a>(Option<&'a std::net::SocketAddr>);

impl std::fmt::Display for OptionAddr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("the group"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_secs(10);

    fn s(secs: f64) -> Instant {
        Instant::from_micros((secs * 1e6) as u64)
    }

    fn seen(heard: Option<(u64, f64)>, ok: Option<f64>, failed: Option<f64>) -> Observed {
        Observed {
            last_heard: heard.map(|(id, at)| (id, s(at))),
            last_send_ok: ok.map(s),
            last_send_failed: failed.map(s),
        }
    }

    #[test]
    fn a_lone_node_whose_sends_succeed_warns_once_after_the_threshold() {
        let mut watch = SilenceWatch::new(s(1.0), AFTER);
        let sending = |at| seen(None, Some(at), None);
        assert_eq!(watch.check(s(5.0), sending(4.9)), Verdict::Quiet);
        assert_eq!(watch.check(s(10.999), sending(10.9)), Verdict::Quiet);
        assert_eq!(
            watch.check(s(11.0), sending(10.9)),
            Verdict::Warn {
                silent_for: Duration::from_secs(10)
            }
        );
        // Once: however long the silence lasts.
        for at in [11.05, 20.0, 30.0, 500.0] {
            assert_eq!(watch.check(s(at), sending(at)), Verdict::Quiet, "at {at}");
        }
    }

    #[test]
    fn the_silence_starts_at_the_last_frame_heard() {
        let mut watch = SilenceWatch::new(s(0.0), AFTER);
        let heard_at = |at| seen(Some((3, at)), Some(14.0), None);
        assert_eq!(watch.check(s(12.0), heard_at(4.0)), Verdict::Quiet);
        assert_eq!(watch.check(s(13.9), heard_at(4.0)), Verdict::Quiet);
        assert_eq!(
            watch.check(s(14.0), heard_at(4.0)),
            Verdict::Warn {
                silent_for: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn failing_or_missing_sends_keep_it_quiet() {
        // Never sent (a quarantined or memory-only node before its first frame).
        let mut watch = SilenceWatch::new(s(0.0), AFTER);
        assert_eq!(watch.check(s(30.0), seen(None, None, None)), Verdict::Quiet);
        // The last send failed: the send-error warning speaks for it.
        assert_eq!(
            watch.check(s(30.0), seen(None, Some(20.0), Some(29.0))),
            Verdict::Quiet
        );
        // The only success was before the silence began (a link that went away since).
        assert_eq!(
            watch.check(s(30.0), seen(Some((2, 15.0)), Some(14.0), None)),
            Verdict::Quiet
        );
        // Sends work again: a success after the failure.
        assert_eq!(
            watch.check(s(30.0), seen(None, Some(29.5), Some(29.0))),
            Verdict::Warn {
                silent_for: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn hearing_a_voter_again_re_arms_the_warning() {
        let mut watch = SilenceWatch::new(s(0.0), AFTER);
        let ok = Some(1.0);
        assert!(matches!(
            watch.check(s(10.0), seen(None, ok, None)),
            Verdict::Warn { .. }
        ));
        assert_eq!(watch.check(s(12.0), seen(None, ok, None)), Verdict::Quiet);
        // Voter 2 heard at 12.5: reported once, with the length of the silence.
        let heard = seen(Some((2, 12.5)), Some(12.6), None);
        assert_eq!(
            watch.check(s(12.6), heard),
            Verdict::HeardAgain {
                voter: 2,
                silent_for: Duration::from_millis(12_500)
            }
        );
        assert_eq!(watch.check(s(13.0), heard), Verdict::Quiet);
        // Silent again for the threshold: a new warning.
        assert_eq!(watch.check(s(22.4), heard), Verdict::Quiet);
        assert_eq!(
            watch.check(s(22.5), heard),
            Verdict::Warn {
                silent_for: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn a_frame_heard_before_the_watch_started_does_not_shorten_the_wait() {
        // A restarted watch (or a clock read late) never warns early.
        let mut watch = SilenceWatch::new(s(100.0), AFTER);
        let old = seen(Some((2, 50.0)), Some(105.0), None);
        assert_eq!(watch.check(s(105.0), old), Verdict::Quiet);
        assert!(matches!(watch.check(s(110.0), old), Verdict::Warn { .. }));
    }
}
