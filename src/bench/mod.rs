//! `votecast bench`: the multi-process cluster benchmark built into the binary. It starts
//! real `votecast run` processes on `lo` and measures election and failover latency, or
//! (`--footprint`) the resident memory, CPU use and binary size of idle nodes.
//!
//! Not to be confused with `benches/frames.rs`: those are the criterion micro benchmarks
//! of single in-process operations (frame encoding, signing, one core step), run with
//! `cargo bench --bench frames`. This module measures whole processes talking over
//! multicast, with the clock of the process that runs it.
//!
//! Latency scenarios, each repeated `--reps` times for every cluster size in `--nodes`:
//! - `cold start`: all voters launched together (fresh data dirs); from the return of the
//!   last launch to every node reporting the same leader and epoch, the leader LEADING.
//!   The per-node `last_election_ms` (each node's own clock, from its election start to its
//!   decision) is read from the state files at that moment;
//! - `SIGKILL`: the leader is killed; from the kill to every survivor agreeing on a new
//!   leader with a higher epoch, the leader LEADING;
//! - `SIGSTOP`: the leader is stopped (a hung board); likewise. The stopped process is
//!   continued afterwards and must rejoin;
//! - `SIGTERM`: graceful handover, the leader resigns on its way out;
//! - the `fast` scenarios run the same at `--tick 20ms --finalize-wait 20ms`.
//!
//! All time stamps come from this process's monotonic clock. State files are polled every
//! `--poll` (default 500 µs) plus the time one sweep over the files takes; both are
//! reported, and bound the measurement error. Between a rejoin and the next fault the
//! cluster settles for a random time (at least the restart quarantine of `sync-limit`
//! ticks), so faults hit the leader at random phases of its heartbeat.
//!
//! `--failovers N` measures the tail instead: N SIGKILL failovers on one cluster at the
//! default timing (`failovers`).
//!
//! Layout: this file holds the flags, the settings and the errors; `latency` runs and
//! reports the latency scenarios that `scenarios` drives through `poll`;
//! `footprint` measures idle nodes through `proc`; `stats` and `report` turn
//! samples into the printed table and the JSON file.

mod failovers;
mod footprint;
mod latency;
mod poll;
mod proc;
mod report;
mod scenarios;
mod stats;

use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::duration::parse_duration;

pub use self::stats::percentile;

const DEFAULT_NODES: &[usize] = &[3, 5, 7, 9];
const DEFAULT_REPS: usize = 20;
const DEFAULT_POLL: Duration = Duration::from_micros(500);
const DEFAULT_FOOTPRINT_WINDOW: Duration = Duration::from_secs(30);
/// Longest wait for any agreement before a repetition counts as failed.
const LIMIT: Duration = Duration::from_secs(10);

/// `votecast bench` flags, as clap sees them (text; converted by [`BenchArgs::resolve`]).
#[derive(clap::Args, Debug, Default)]
pub struct BenchArgs {
    /// Cluster sizes (voters) to measure, comma-separated, each 3..=64 [default: 3,5,7,9].
    #[arg(long, value_name = "N,N,...")]
    nodes: Option<String>,
    /// Repetitions of every scenario per cluster size [default: 20].
    #[arg(long, value_name = "N")]
    reps: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Pause between two sweeps over the state files, at most 1ms [default: 500us].
    #[arg(long, value_name = "DURATION")]
    poll: Option<String>,
    /// Measure the footprint instead: RSS of idle nodes, their CPU use over --window at
    /// the default tick, and the binary size (a cluster of the first --nodes size, default 3).
    #[arg(long)]
    footprint: bool,
    /// Footprint measuring window [default: 30s].
    #[arg(long, value_name = "DURATION")]
    window: Option<String>,
    /// Measure the failover tail instead: one cluster of the first --nodes size (default
    /// 3) at the default timing, its leader SIGKILLed this many times (restarted and
    /// rejoined in between); prints p50/p99/max and every failover over 400 ms.
    #[arg(long, value_name = "N", conflicts_with = "footprint")]
    failovers: Option<String>,
    /// With --failovers: copy every node's log and a table of the faults (their time on
    /// CLOCK_BOOTTIME, as in the nodes' `round-trace` lines) into this directory. Run
    /// with VOTECAST_CHILD_LOG=votecast::driver::trace=debug for the step trace.
    #[arg(long, value_name = "DIR", requires = "failovers")]
    logs: Option<PathBuf>,
}

/// Resolved `votecast bench` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchSettings {
    pub nodes: Vec<usize>,
    pub reps: usize,
    pub json: Option<PathBuf>,
    pub poll: Duration,
    pub footprint: bool,
    pub window: Duration,
    /// `--failovers`: the failover-tail run, with this many failovers.
    pub failovers: Option<usize>,
    pub logs: Option<PathBuf>,
}

/// A `votecast bench` flag whose value does not parse or is out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagError {
    /// The flag as written on the command line, e.g. `--reps`.
    pub flag: &'static str,
    /// What was expected and what was given.
    pub problem: String,
}

impl FlagError {
    fn new(flag: &'static str, problem: impl Into<String>) -> FlagError {
        FlagError {
            flag,
            problem: problem.into(),
        }
    }
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}: {}", self.flag, self.problem)
    }
}

impl std::error::Error for FlagError {}

/// Why a `votecast bench` run failed.
#[derive(Debug)]
pub enum BenchError {
    /// The path of the running executable (the nodes run the same binary) is unknown.
    OwnBinary(io::Error),
    /// The binary's size for the footprint report.
    Stat { path: PathBuf, source: io::Error },
    /// The temporary cluster directory could not be made.
    Prepare(io::Error),
    /// A node process could not be spawned.
    Start(io::Error),
    /// The footprint cluster never agreed on a leader.
    NoAgreement,
    /// The `--json` file could not be written.
    WriteJson { path: PathBuf, source: io::Error },
    /// Some latency repetitions failed (each is printed with the table).
    Failed { repetitions: usize, errors: usize },
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::OwnBinary(e) => write!(f, "cannot find own binary: {e}"),
            BenchError::Stat { path, source } => {
                write!(f, "cannot stat {}: {source}", path.display())
            }
            BenchError::Prepare(e) => write!(f, "cannot prepare the cluster: {e}"),
            BenchError::Start(e) => write!(f, "cannot start a node: {e}"),
            BenchError::NoAgreement => f.write_str("no agreement"),
            BenchError::WriteJson { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            BenchError::Failed {
                repetitions,
                errors,
            } => write!(f, "{repetitions} repetitions failed ({errors} errors)"),
        }
    }
}

impl std::error::Error for BenchError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BenchError::OwnBinary(e) | BenchError::Prepare(e) | BenchError::Start(e) => Some(e),
            BenchError::Stat { source, .. } | BenchError::WriteJson { source, .. } => Some(source),
            BenchError::NoAgreement | BenchError::Failed { .. } => None,
        }
    }
}

impl BenchArgs {
    /// Check and convert the flags; the error names the flag.
    pub fn resolve(&self) -> Result<BenchSettings, FlagError> {
        let nodes = match &self.nodes {
            None if self.footprint || self.failovers.is_some() => vec![3],
            None => DEFAULT_NODES.to_vec(),
            Some(text) => parse_nodes(text)?,
        };
        let reps = match &self.reps {
            None => DEFAULT_REPS,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => n,
                _ => {
                    return Err(FlagError::new(
                        "--reps",
                        format!("expected an integer from 1 to 10000, got {text:?}"),
                    ))
                }
            },
        };
        let poll = match &self.poll {
            None => DEFAULT_POLL,
            Some(text) => parse_within(
                "--poll",
                text,
                Duration::ZERO..=Duration::from_millis(1),
                "at most 1ms",
            )?,
        };
        let window = match &self.window {
            None => DEFAULT_FOOTPRINT_WINDOW,
            Some(text) => parse_within(
                "--window",
                text,
                Duration::from_secs(1)..=Duration::from_secs(3600),
                "from 1s to 1h",
            )?,
        };
        let failovers = match &self.failovers {
            None => None,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=100_000).contains(&n) => Some(n),
                _ => {
                    return Err(FlagError::new(
                        "--failovers",
                        format!("expected an integer from 1 to 100000, got {text:?}"),
                    ))
                }
            },
        };
        Ok(BenchSettings {
            nodes,
            reps,
            json: self.json.clone(),
            poll,
            footprint: self.footprint,
            window,
            failovers,
            logs: self.logs.clone(),
        })
    }
}

/// `--nodes`: comma-separated cluster sizes, each a valid voter count of at least 3.
fn parse_nodes(text: &str) -> Result<Vec<usize>, FlagError> {
    text.split(',')
        .map(|part| match part.trim().parse::<usize>() {
            Ok(n) if (3..=64).contains(&n) => Ok(n),
            _ => Err(FlagError::new(
                "--nodes",
                format!("expected comma-separated sizes from 3 to 64, got {text:?}"),
            )),
        })
        .collect()
}

/// A duration flag within `range`; `bound` words the range for the message.
fn parse_within(
    flag: &'static str,
    text: &str,
    range: RangeInclusive<Duration>,
    bound: &str,
) -> Result<Duration, FlagError> {
    match parse_duration(text) {
        Ok(d) if range.contains(&d) => Ok(d),
        Ok(_) => Err(FlagError::new(flag, format!("{bound}, got {text:?}"))),
        Err(e) => Err(FlagError::new(flag, e)),
    }
}

/// The daemon's default tick and sync limit (the core's defaults), against which the
/// default-timing scenarios run and the footprint is measured.
fn default_timing() -> (Duration, u32) {
    let config = votecast_core::election::Config::new(1, &[1])
        .expect("one voter with id 1 is a valid configuration");
    (config.tick, config.sync_limit)
}

/// Run `votecast bench` with the binary that runs it (build it with `--release`).
pub fn run(settings: &BenchSettings) -> Result<(), BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::OwnBinary)?;
    if cfg!(debug_assertions) {
        crate::errln!("votecast bench: warning: this is a debug build; publish figures of `cargo build --release` only");
    }
    if settings.footprint {
        footprint::run(settings, exe)
    } else if let Some(count) = settings.failovers {
        failovers::run(settings, count, exe)
    } else {
        latency::run(settings, exe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_flags() {
        let args = BenchArgs::default();
        let s = args.resolve().unwrap();
        assert_eq!(s.nodes, vec![3, 5, 7, 9]);
        assert_eq!(s.reps, 20);
        assert_eq!(s.poll, Duration::from_micros(500));
        let args = BenchArgs {
            nodes: Some("3,15".into()),
            reps: Some("5".into()),
            poll: Some("250us".into()),
            ..BenchArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(
            (s.nodes, s.reps, s.poll),
            (vec![3, 15], 5, Duration::from_micros(250))
        );
        for (nodes, reps, poll) in [
            (Some("2"), None, None),
            (Some("3,x"), None, None),
            (None, Some("0"), None),
            (None, None, Some("5ms")),
        ] {
            let args = BenchArgs {
                nodes: nodes.map(Into::into),
                reps: reps.map(Into::into),
                poll: poll.map(Into::into),
                ..BenchArgs::default()
            };
            let e = args.resolve().unwrap_err();
            let flag = if nodes.is_some() {
                "--nodes"
            } else if reps.is_some() {
                "--reps"
            } else {
                "--poll"
            };
            assert_eq!(e.flag, flag);
            assert!(
                e.to_string().starts_with(&format!("error: {flag}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn flag_messages_state_the_bound_and_the_value() {
        let resolve = |poll: Option<&str>, window: Option<&str>| {
            BenchArgs {
                poll: poll.map(Into::into),
                window: window.map(Into::into),
                ..BenchArgs::default()
            }
            .resolve()
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            resolve(Some("5ms"), None),
            "error: --poll: at most 1ms, got \"5ms\""
        );
        assert_eq!(
            resolve(None, Some("500ms")),
            "error: --window: from 1s to 1h, got \"500ms\""
        );
        assert_eq!(
            resolve(None, Some("2h")),
            "error: --window: from 1s to 1h, got \"2h\""
        );
        let bad = resolve(None, Some("5"));
        assert!(
            bad.starts_with("error: --window: expected a duration"),
            "{bad}"
        );
        let s = BenchArgs {
            poll: Some("1ms".into()),
            window: Some("1h".into()),
            ..BenchArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            (s.poll, s.window),
            (Duration::from_millis(1), Duration::from_secs(3600))
        );
    }

    #[test]
    fn run_errors_read_as_before() {
        let e = BenchError::Failed {
            repetitions: 2,
            errors: 3,
        };
        assert_eq!(e.to_string(), "2 repetitions failed (3 errors)");
        let e = BenchError::WriteJson {
            path: PathBuf::from("/x/y.json"),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(e.to_string().starts_with("cannot write /x/y.json: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn default_timing_is_the_daemons() {
        assert_eq!(default_timing(), (Duration::from_millis(50), 6));
    }

    #[test]
    fn the_command_line_reaches_bench() {
        use crate::daemon::cli::{parse_command_line, Command};
        let parse = |args: &[&str]| {
            parse_command_line(
                std::iter::once("votecast")
                    .chain(args.iter().copied())
                    .map(Into::into),
            )
        };
        let Ok(Command::Bench(s)) = parse(&[
            "bench",
            "--nodes",
            "5",
            "--reps",
            "3",
            "--json",
            "/tmp/x.json",
        ]) else {
            panic!("bench did not parse");
        };
        assert_eq!((s.nodes, s.reps, s.footprint), (vec![5], 3, false));
        assert_eq!(s.json, Some(PathBuf::from("/tmp/x.json")));
        let Ok(Command::Bench(s)) = parse(&["bench", "--footprint", "--window", "5s"]) else {
            panic!("bench --footprint did not parse");
        };
        assert_eq!(
            (s.nodes, s.footprint, s.window),
            (vec![3], true, Duration::from_secs(5))
        );
        let e = parse(&["bench", "--reps", "x"]).unwrap_err();
        assert!(!e.is_help && e.message.contains("--reps"), "{}", e.message);
    }
}
