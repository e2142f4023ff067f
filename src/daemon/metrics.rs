//! `--metrics-file PATH`: the node's metrics in the Prometheus text exposition format
//! (version 0.0.4), for node_exporter's textfile collector.
//!
//! This module owns the metric names, their help and the encoder. The driver fills a
//! [`Metrics`] from the node, its counters and the published view, and [`MetricsWriter`]
//! formats it into a buffer kept between writes and replaces the file atomically
//! ([`AtomicFile`]), so node_exporter never reads half a file. The encoder is a few lines
//! of `write!`: the format is plain text, and no encoder crate is needed for it.
//!
//! Conventions (Prometheus' naming guide): every name starts with `votecast_`, counters
//! end in `_total`, times are in seconds, every family has `# HELP` and `# TYPE`. A state
//! is one gauge per state, 1 for the current one; ids, epochs and rounds are gauges
//! (exact up to 2^53, far above anything a real cluster reaches).
//!
//! Adding a metric: a field in [`Metrics`] and a family in [`Metrics::encode`]. Optional
//! fields (`None`) leave their family out, for features that are not configured; the
//! peers-heard, health and floating-IP fields are the places for those features.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use votecast_core::election::{ServerState, Stats};

use super::file_publisher::FilePublisher;
use super::hooks::HookCounters;

/// What one write of the metrics file reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub id: u64,
    /// The published state (`"LEADING"` only with a running lease, as in the state file).
    pub state: &'static str,
    pub leader: Option<u64>,
    pub epoch: Option<u64>,
    pub round: u64,
    pub zxid: u64,
    /// Seconds until the published view ends unless renewed: the lease (LEADING) or the
    /// follower timeout (FOLLOWING, OBSERVING); 0 without one.
    pub lease_remaining_seconds: f64,
    /// Duration of the last completed election, if there was one.
    pub last_election_seconds: Option<f64>,
    pub duplicate_id: bool,
    /// The core's counters.
    pub core: Stats,
    /// Frames the socket refused because its send buffer was full.
    pub sends_dropped: u64,
    /// Sends that failed with an error.
    pub send_errors: u64,
    /// The `--on-change` runs (`None`: no hook configured).
    pub hooks: Option<HookCounters>,
    /// When this process started, seconds since 1970.
    pub start_time_seconds: f64,
    /// Voters heard from recently (`None`: not known to this daemon).
    pub peers_heard: Option<u64>,
    /// The health checks pass (`None`: no health check configured).
    pub healthy: Option<bool>,
    /// This node holds its floating address(es) (`None`: none configured).
    pub vip_held: Option<bool>,
}

/// The states in the order they are listed.
const STATES: [ServerState; 4] = [
    ServerState::Looking,
    ServerState::Following,
    ServerState::Leading,
    ServerState::Observing,
];

impl Metrics {
    /// Writes every family in the text exposition format, `\n`-terminated lines.
    pub fn encode<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        let mut e = Encoder { out };
        self.encode_view(&mut e)?;
        self.encode_elections(&mut e)?;
        self.encode_frames(&mut e)?;
        self.encode_hooks(&mut e)?;
        self.encode_optional(&mut e)?;
        e.family(
            "votecast_start_time_seconds",
            "gauge",
            "When the daemon started, seconds since 1970.",
        )?;
        writeln!(
            e.out,
            "votecast_start_time_seconds {:.3}",
            finite(self.start_time_seconds)
        )
    }

    /// Who this node is and what it publishes.
    fn encode_view<W: fmt::Write>(&self, e: &mut Encoder<'_, W>) -> fmt::Result {
        e.family(
            "votecast_info",
            "gauge",
            "Constant 1, labelled with this node's id and the daemon's version.",
        )?;
        writeln!(
            e.out,
            "votecast_info{{id=\"{}\",version=\"{}\"}} 1",
            self.id,
            env!("CARGO_PKG_VERSION")
        )?;
        e.family("votecast_state", "gauge", "1 for the node's published state, 0 for the others; LEADING only while its lease runs.")?;
        for state in STATES {
            let name = state.as_str();
            e.out.write_str("votecast_state{state=\"")?;
            for c in name.chars() {
                e.out.write_char(c.to_ascii_lowercase())?;
            }
            writeln!(e.out, "\"}} {}", u8::from(self.state == name))?;
        }
        e.gauge(
            "votecast_leader_id",
            "The leader's id; 0 while there is none.",
            self.leader.unwrap_or(0),
        )?;
        e.gauge(
            "votecast_epoch",
            "The leader's epoch (fencing token); 0 while there is none.",
            self.epoch.unwrap_or(0),
        )?;
        e.gauge(
            "votecast_round",
            "The election round (logical clock).",
            self.round,
        )?;
        e.gauge(
            "votecast_zxid",
            "The data version this node votes with.",
            self.zxid,
        )?;
        e.gauge(
            "votecast_duplicate_id",
            "1 while another board sends frames with this node's id.",
            u8::from(self.duplicate_id),
        )?;
        e.seconds("votecast_lease_remaining_seconds", "Until the published view ends unless renewed: the lease (leading) or the follower timeout; 0 without one.", self.lease_remaining_seconds)
    }

    fn encode_elections<W: fmt::Write>(&self, e: &mut Encoder<'_, W>) -> fmt::Result {
        e.counter(
            "votecast_elections_started_total",
            "Elections this node started.",
            self.core.elections_started,
        )?;
        if let Some(seconds) = self.last_election_seconds {
            e.seconds(
                "votecast_last_election_duration_seconds",
                "From the start of the last election to its outcome.",
                seconds,
            )?;
        }
        Ok(())
    }

    /// Only with a hook.
    fn encode_hooks<W: fmt::Write>(&self, e: &mut Encoder<'_, W>) -> fmt::Result {
        if let Some(hooks) = &self.hooks {
            e.family(
                "votecast_hook_runs_total",
                "counter",
                "On-change hook runs by how they ended.",
            )?;
            for (result, n) in [
                ("succeeded", hooks.succeeded),
                ("failed", hooks.failed),
                ("timed_out", hooks.timed_out),
                ("stopped", hooks.stopped),
            ] {
                writeln!(e.out, "votecast_hook_runs_total{{result=\"{result}\"}} {n}")?;
            }
            e.counter(
                "votecast_hook_changes_skipped_total",
                "Changes replaced by a newer one before the hook ran for them.",
                hooks.skipped,
            )?;
        }
        Ok(())
    }

    /// The families of features that may be absent.
    fn encode_optional<W: fmt::Write>(&self, e: &mut Encoder<'_, W>) -> fmt::Result {
        if let Some(n) = self.peers_heard {
            e.gauge(
                "votecast_peers_heard",
                "Voters heard from recently, this node included.",
                n,
            )?;
        }
        if let Some(healthy) = self.healthy {
            e.gauge(
                "votecast_healthy",
                "1 while the health checks pass (the node may lead).",
                u8::from(healthy),
            )?;
        }
        if let Some(held) = self.vip_held {
            e.gauge(
                "votecast_vip_held",
                "1 while this node holds its floating address(es).",
                u8::from(held),
            )?;
        }
        Ok(())
    }

    fn encode_frames<W: fmt::Write>(&self, e: &mut Encoder<'_, W>) -> fmt::Result {
        let c = &self.core;
        e.counter(
            "votecast_frames_received_total",
            "Frames that parsed and authenticated, own looped-back frames included.",
            c.frames_received,
        )?;
        e.counter(
            "votecast_frames_sent_total",
            "Frames built for sending.",
            c.frames_sent,
        )?;
        e.counter(
            "votecast_group_answer_requests_total",
            "Times this leader, its followers' unicast answers missing, asked for answers to the group.",
            c.group_answer_requests,
        )?;
        e.counter(
            "votecast_answers_skipped_total",
            "Heartbeats this follower left unanswered: its leader said every support outlasts the next ones, and it was another follower's turn.",
            c.answers_skipped,
        )?;
        e.family(
            "votecast_frames_dropped_total",
            "counter",
            "Received datagrams and frames dropped, by reason.",
        )?;
        for (reason, n) in [
            ("malformed", c.malformed),
            ("other_cluster", c.other_cluster),
            ("unauthenticated", c.unauthenticated),
            ("bad_tag", c.bad_tags),
            ("stale", c.stale_frames),
            ("throttled", c.throttled),
            ("invalid_vote", c.invalid_votes),
            ("duplicate_id", c.duplicate_id_frames),
        ] {
            writeln!(
                e.out,
                "votecast_frames_dropped_total{{reason=\"{reason}\"}} {n}"
            )?;
        }
        e.family(
            "votecast_frame_send_failures_total",
            "counter",
            "Frames that could not be sent, by reason.",
        )?;
        writeln!(
            e.out,
            "votecast_frame_send_failures_total{{reason=\"buffer_full\"}} {}",
            self.sends_dropped
        )?;
        writeln!(
            e.out,
            "votecast_frame_send_failures_total{{reason=\"error\"}} {}",
            self.send_errors
        )
    }
}

/// A value Prometheus can parse in every case (the format has no `inf` without a sign).
fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Writes `# HELP`/`# TYPE` headers and single-sample families.
struct Encoder<'a, W> {
    out: &'a mut W,
}

impl<W: fmt::Write> Encoder<'_, W> {
    fn family(&mut self, name: &str, kind: &str, help: &str) -> fmt::Result {
        writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}")
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl fmt::Display) -> fmt::Result {
        self.family(name, "gauge", help)?;
        writeln!(self.out, "{name} {value}")
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        self.family(name, "counter", help)?;
        writeln!(self.out, "{name} {value}")
    }

    /// A gauge in seconds, to the microsecond.
    fn seconds(&mut self, name: &str, help: &str, value: f64) -> fmt::Result {
        self.family(name, "gauge", help)?;
        writeln!(self.out, "{name} {:.6}", finite(value))
    }
}

/// Initial capacity of the buffer: a full file is about 3 KiB.
const BUFFER: usize = 8 * 1024;

/// Replaces the metrics file on every [`write`](Self::write), formatting into one buffer
/// kept between writes (it grows once if ever too small, then never again) and handing
/// it to a writer thread ([`FilePublisher`]): the event loop never waits for the disk.
#[derive(Debug)]
pub struct MetricsWriter {
    file: FilePublisher,
    buf: String,
}

impl MetricsWriter {
    /// Prepares a writer for `path` (temporary file `path` + `.tmp`). Touches nothing.
    pub fn new(path: PathBuf) -> Self {
        MetricsWriter {
            file: FilePublisher::new(path, "metrics file", BUFFER),
            buf: String::with_capacity(BUFFER),
        }
    }

    /// The metrics file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Formats `m` and hands it to the writer, which replaces the file and logs a
    /// failure. Fails only if `m` cannot be formatted.
    pub fn write(&mut self, m: &Metrics) -> io::Result<()> {
        self.buf.clear();
        m.encode(&mut self.buf)
            .map_err(|_| io::Error::other("cannot format the metrics"))?;
        self.file.publish(self.buf.as_bytes());
        Ok(())
    }

    /// Whether the file holds the last metrics written (see [`FilePublisher`]).
    pub fn caught_up(&self) -> bool {
        self.file.caught_up()
    }

    /// Waits up to `timeout` for the file to hold the last metrics written. Blocks: not
    /// for the event loop.
    pub fn flush(&self, timeout: std::time::Duration) -> bool {
        self.file.flush(timeout)
    }
}

#[cfg(test)]
mod tests;
