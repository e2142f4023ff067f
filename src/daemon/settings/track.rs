//! The health-check settings: `--track CMD` (repeatable; `track = [...]` in the file),
//! `--track-interface`, `--track-interval`, `--track-timeout`, `--track-fall` and
//! `--track-rise`, their values and their rules (see README, Health checks).

use std::time::Duration;

use super::value::{bad, to_command, Origin, Raw};
use crate::daemon::cli::UsageError;

/// Time between the starts of two runs of a check when `--track-interval` is not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Consecutive failures that make a healthy check unhealthy, by default.
pub const DEFAULT_FALL: u32 = 2;
/// Consecutive successes that make an unhealthy check healthy again, by default.
pub const DEFAULT_RISE: u32 = 2;
/// Shortest interval: each run forks a shell; faster checks belong in the application.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest interval: a check that runs less than hourly does not track health.
pub const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Most consecutive results `fall` and `rise` may ask for.
pub const MAX_COUNT: u32 = 1000;
/// At most this many track commands (each is a thread and a process per interval).
pub const MAX_COMMANDS: usize = 16;

/// Validated health checks; `is_enabled` is false when none is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSettings {
    /// Shell commands; each must exit 0 for the node to be healthy.
    pub commands: Vec<String>,
    /// The node is healthy only while `--interface` has carrier.
    pub interface: bool,
    pub interval: Duration,
    /// A run still going after this is a failure, and its process group is killed.
    pub timeout: Duration,
    pub fall: u32,
    pub rise: u32,
}

impl Default for TrackSettings {
    fn default() -> Self {
        TrackSettings {
            commands: Vec::new(),
            interface: false,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_INTERVAL,
            fall: DEFAULT_FALL,
            rise: DEFAULT_RISE,
        }
    }
}

impl TrackSettings {
    /// Whether any check is configured.
    pub fn is_enabled(&self) -> bool {
        self.interface || !self.commands.is_empty()
    }
}

/// The track settings as given (flag or file), with their origins.
#[derive(Debug, Default)]
pub(super) struct GivenTrack {
    pub(super) commands: Option<(Vec<String>, Origin)>,
    pub(super) interface: Option<(bool, Origin)>,
    pub(super) interval: Option<(Duration, Origin)>,
    pub(super) timeout: Option<(Duration, Origin)>,
    pub(super) fall: Option<(u32, Origin)>,
    pub(super) rise: Option<(u32, Origin)>,
}

/// `--track` (repeated) or `track = "CMD"` / `track = ["CMD", ...]` in the file.
pub(super) fn to_commands(raw: Raw<'_>) -> Result<Vec<String>, UsageError> {
    let commands = match raw {
        Raw::FlagList(key, items) => items
            .iter()
            .map(|item| to_command(Raw::Flag(key, item)))
            .collect::<Result<Vec<_>, _>>()?,
        Raw::File(key, toml::Value::Array(items)) => items
            .iter()
            .map(|item| {
                to_command(Raw::File(key, item)).map_err(|_| {
                    raw.error(format_args!(
                        "expected a list of shell commands such as [\"test -f /run/ok\"], \
                         but {item} is not a non-blank string"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => vec![to_command(raw)?],
    };
    if commands.len() > MAX_COMMANDS {
        return Err(raw.error(format_args!(
            "{} commands given, at most {MAX_COMMANDS} are allowed",
            commands.len()
        )));
    }
    Ok(commands)
}

/// `--track-interface` (a flag without a value) or `track-interface = true|false`.
pub(super) fn to_switch(raw: Raw<'_>) -> Result<bool, UsageError> {
    match raw {
        Raw::File(_, toml::Value::Boolean(on)) => Ok(*on),
        Raw::Flag(_, "true") => Ok(true),
        _ => Err(raw.error(format_args!(
            "expected true or false, got {}",
            raw_shown(raw)
        ))),
    }
}

fn raw_shown(raw: Raw<'_>) -> String {
    match raw {
        Raw::File(_, value) => value.to_string(),
        Raw::Flag(_, text) => format!("{text:?}"),
        other => format!("{other:?}"),
    }
}

/// A count of consecutive results: 1 to [`MAX_COUNT`].
pub(super) fn to_count(raw: Raw<'_>) -> Result<u32, UsageError> {
    let n = super::value::to_u64(raw, "a positive integer")?;
    if n == 0 || n > u64::from(MAX_COUNT) {
        return Err(raw.error(format_args!("must be from 1 to {MAX_COUNT}, got {n}")));
    }
    Ok(n as u32)
}

/// Applies the defaults and checks the rules that tie the settings together.
pub(super) fn check(given: GivenTrack) -> Result<TrackSettings, UsageError> {
    let commands = given.commands.map(|(c, _)| c).unwrap_or_default();
    let interface = given.interface.is_some_and(|(on, _)| on);
    let enabled = interface || !commands.is_empty();
    let tuning = [
        given.interval.map(|(_, o)| o),
        given.timeout.map(|(_, o)| o),
        given.fall.map(|(_, o)| o),
        given.rise.map(|(_, o)| o),
    ];
    if let (false, Some(origin)) = (enabled, tuning.into_iter().flatten().next()) {
        return Err(bad(
            origin,
            "has no effect without a health check: give --track CMD or --track-interface",
        ));
    }
    let interval = match given.interval {
        Some((interval, origin)) if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) => {
            return Err(bad(
                origin,
                format_args!("must be from {MIN_INTERVAL:?} to {MAX_INTERVAL:?}, got {interval:?}"),
            ))
        }
        Some((interval, _)) => interval,
        None => DEFAULT_INTERVAL,
    };
    // A run longer than the interval would overlap the next one.
    let timeout = match given.timeout {
        Some((timeout, origin)) if timeout.is_zero() => {
            return Err(bad(origin, "must be greater than 0"))
        }
        Some((timeout, origin)) if timeout > interval => {
            return Err(bad(
                origin,
                format_args!("must be at most track-interval ({interval:?}), got {timeout:?}"),
            ))
        }
        Some((timeout, _)) => timeout,
        None => interval,
    };
    Ok(TrackSettings {
        commands,
        interface,
        interval,
        timeout,
        fall: given.fall.map_or(DEFAULT_FALL, |(n, _)| n),
        rise: given.rise.map_or(DEFAULT_RISE, |(n, _)| n),
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::*;
    use crate::cluster::TempDir;
    use crate::daemon::cli::{parse_command_line, Command};

    fn run(extra: &[&str]) -> Result<TrackSettings, UsageError> {
        let mut all: Vec<OsString> = ["votecast", "run", "--id", "1", "--voters", "1,2,3"]
            .iter()
            .map(OsString::from)
            .collect();
        all.extend(["--interface", "eth0"].iter().map(OsString::from));
        all.extend(extra.iter().map(OsString::from));
        match parse_command_line(all)? {
            Command::Run(s) => Ok(s.track),
            other => panic!("expected run, got {other:?}"),
        }
    }

    fn err(extra: &[&str]) -> String {
        match run(extra) {
            Ok(s) => panic!("expected an error for {extra:?}, got {s:?}"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn defaults_and_no_checks() {
        let t = run(&[]).unwrap();
        assert!(!t.is_enabled());
        assert_eq!(t, TrackSettings::default());
        assert_eq!(
            (t.interval, t.timeout),
            (DEFAULT_INTERVAL, DEFAULT_INTERVAL)
        );
        assert_eq!((t.fall, t.rise), (2, 2));
    }

    #[test]
    fn flags_repeat_and_set_everything() {
        let t = run(&[
            "--track",
            "test -f /run/a",
            "--track",
            "pidof x",
            "--track-interface",
            "--track-interval",
            "500ms",
            "--track-timeout",
            "200ms",
            "--track-fall",
            "3",
            "--track-rise",
            "5",
        ])
        .unwrap();
        assert_eq!(t.commands, ["test -f /run/a", "pidof x"]);
        assert!(t.interface && t.is_enabled());
        assert_eq!(t.interval, Duration::from_millis(500));
        assert_eq!(t.timeout, Duration::from_millis(200));
        assert_eq!((t.fall, t.rise), (3, 5));
        // The timeout defaults to the interval.
        let t = run(&["--track", "true", "--track-interval", "2s"]).unwrap();
        assert_eq!(t.timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_the_flag() {
        assert!(err(&["--track", " "]).contains("--track: the command is empty"));
        assert!(err(&["--track-interval", "1s"]).contains("--track-interval: has no effect"));
        assert!(err(&["--track-fall", "3"]).contains("--track-fall: has no effect"));
        let e = err(&[
            "--track",
            "true",
            "--track-interval",
            "1s",
            "--track-timeout",
            "2s",
        ]);
        assert!(
            e.contains("--track-timeout: must be at most track-interval (1s)"),
            "{e}"
        );
        let e = err(&["--track", "true", "--track-timeout", "2s"]);
        assert!(
            e.contains("--track-timeout: must be at most track-interval (1s)"),
            "{e}"
        );
        let e = err(&["--track", "true", "--track-timeout", "0s"]);
        assert!(e.contains("--track-timeout: must be greater than 0"), "{e}");
        let e = err(&["--track", "true", "--track-interval", "1ms"]);
        assert!(
            e.contains("--track-interval: must be from 10ms to 3600s"),
            "{e}"
        );
        let e = err(&["--track", "true", "--track-rise", "0"]);
        assert!(
            e.contains("--track-rise: must be from 1 to 1000, got 0"),
            "{e}"
        );
        let e = err(&["--track", "true", "--track-fall", "x"]);
        assert!(
            e.contains("--track-fall: expected a positive integer"),
            "{e}"
        );
        let e = err(&["--track-interface=yes"]);
        assert!(e.contains("--track-interface"), "{e}");
    }

    #[test]
    fn config_file_keys() {
        let dir = TempDir::new("votecast-track-test").unwrap();
        let path = dir.join("c.toml");
        let config = |text: &str| {
            std::fs::write(&path, text).unwrap();
            run(&["--config", path.to_str().unwrap()])
        };
        let t = config(
            "track = [\"test -f /run/ok\", \"true\"]\ntrack-interface = true\n\
             track-interval = \"300ms\"\ntrack-fall = 4\ntrack-rise = 1\n",
        )
        .unwrap();
        assert_eq!(t.commands, ["test -f /run/ok", "true"]);
        assert!(t.interface);
        assert_eq!(
            (t.interval, t.timeout),
            (Duration::from_millis(300), Duration::from_millis(300))
        );
        assert_eq!((t.fall, t.rise), (4, 1));
        assert_eq!(config("track = \"true\"\n").unwrap().commands, ["true"]);
        let e = config("track = [\"true\", 3]\n").unwrap_err().message;
        assert!(
            e.contains("config key \"track\": expected a list of shell commands"),
            "{e}"
        );
        let e = config("track-interface = \"yes\"\n").unwrap_err().message;
        assert!(
            e.contains("config key \"track-interface\": expected true or false"),
            "{e}"
        );
        let e = config("track = \"true\"\ntrack-timeout = \"3s\"\n")
            .unwrap_err()
            .message;
        assert!(
            e.contains("config key \"track-timeout\": must be at most"),
            "{e}"
        );
        // A flag overrides the file's list as a whole.
        std::fs::write(&path, "track = [\"a\", \"b\"]\n").unwrap();
        let t = run(&["--config", path.to_str().unwrap(), "--track", "c"]).unwrap();
        assert_eq!(t.commands, ["c"]);
        let many: Vec<String> = (0..=MAX_COMMANDS).map(|i| format!("\"t{i}\"")).collect();
        let e = config(&format!("track = [{}]\n", many.join(", ")))
            .unwrap_err()
            .message;
        assert!(e.contains("at most 16 are allowed"), "{e}");
    }
}
