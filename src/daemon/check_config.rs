//! `votecast check-config`: what `votecast run` would do with the same flags and `--config`
//! file, without starting a node.
//!
//! The settings are resolved by the same code as `run` ([`super::settings::resolve`]), so
//! every rule `run` applies to flags, the config file, the key file (contents and
//! permissions) and the zxid file applies here too, with the same message and exit status 2.
//! On top, this module checks what `run` only meets after it started: the interface.
//! `run` waits for an interface that is missing, down or without an IPv4 address (a bridge
//! or USB NIC that appears later is normal), so here that is a warning on stderr, not an
//! error: the exit status stays 0.
//!
//! On success the effective settings (flags over file over defaults) are printed as a
//! config file that `run --config` accepts and that resolves to the same settings; unset
//! optional settings are shown as comments.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::settings::{self, RunSettings, ZxidSource};
use crate::driver::link::{self, Link};

/// The result of a check that passed: the effective settings and any warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The effective settings as a config file (stdout).
    pub settings: String,
    /// Conditions `run` would wait out (stderr, one line each); the exit status stays 0.
    pub warnings: Vec<String>,
}

/// Checks what `run` checks only at start (the interface) and renders the settings.
pub fn check(settings: &RunSettings) -> Report {
    let found = link::probe(&settings.interface, settings.transport().is_ipv4());
    Report {
        settings: effective(settings),
        warnings: interface_warning(&settings.interface, found)
            .into_iter()
            .collect(),
    }
}

/// The warning for an interface `run` would have to wait for, if it is not usable.
fn interface_warning(interface: &str, found: Option<Link>) -> Option<String> {
    let why = match found? {
        Link::Usable(_) => return None,
        Link::Absent => "does not exist",
        Link::Down { .. } => "is down",
        Link::NoAddress { .. } => "has no IPv4 address (needed for an IPv4 group)",
    };
    Some(format!(
        "warning: --interface {interface:?} {why}; run would wait for it, LOOKING and \
         silent meanwhile"
    ))
}

/// How one setting is shown.
enum Shown {
    /// `key = value` (a TOML value).
    Set(String),
    /// `# key: why` (not set; what that means).
    Unset(&'static str),
}

/// The settings as a config file, in the order of [`settings::file_keys`].
pub fn effective(s: &RunSettings) -> String {
    let mut out = String::from("# votecast check-config: the effective settings\n");
    for key in settings::file_keys() {
        let _ = match shown(key, s) {
            Some(Shown::Set(value)) => writeln!(out, "{key} = {value}"),
            Some(Shown::Unset(why)) => writeln!(out, "# {key}: {why}"),
            // A setting this function does not know yet: said, never silently left out.
            None => writeln!(out, "# {key}: (not shown by check-config)"),
        };
    }
    if s.election.keys.is_enabled() {
        for (id, fingerprint) in s.election.keys.describe() {
            let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(out, "# key {id}: fingerprint {hex}");
        }
    }
    out
}

/// `key`'s effective value; `None` for a key this function does not know.
fn shown(key: &str, s: &RunSettings) -> Option<Shown> {
    let e = &s.election;
    let path = |p: &Option<std::path::PathBuf>, why| match p {
        Some(p) => Shown::Set(path_value(p)),
        None => Shown::Unset(why),
    };
    Some(match key {
        "id" => Shown::Set(id_value(e.id)),
        "voters" => Shown::Set(format!(
            "[{}]",
            e.voters
                .iter()
                .map(|&v| id_value(v))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        "interface" => Shown::Set(string_value(&s.interface)),
        "group" => Shown::Set(string_value(&s.group.to_string())),
        "peers" => match &s.peers {
            Some(peers) => Shown::Set(format!(
                "[{}]",
                peers
                    .addrs()
                    .iter()
                    .map(|a| string_value(&a.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Shown::Unset("not set (multicast to the group)"),
        },
        "cluster" => Shown::Set(e.cluster.to_string()),
        "zxid" => match &s.zxid {
            ZxidSource::Fixed(zxid) => Shown::Set(id_value(*zxid)),
            ZxidSource::File { .. } => Shown::Unset("read from zxid-file"),
        },
        "zxid-file" => match &s.zxid {
            ZxidSource::File { path, initial } => {
                Shown::Set(format!("{}  # now {initial}", path_value(path)))
            }
            ZxidSource::Fixed(_) => Shown::Unset("not set"),
        },
        "data-dir" => path(&s.data_dir, "not set (epochs in memory only)"),
        "state-file" => path(&s.state_file, "not set"),
        "metrics-file" => path(&s.metrics_file, "not set"),
        "on-change" => match &s.on_change {
            Some(cmd) => Shown::Set(string_value(cmd)),
            None => Shown::Unset("not set"),
        },
        "hook-timeout" => Shown::Set(duration_value(s.hook_timeout)),
        "tick" => Shown::Set(duration_value(e.tick)),
        "sync-limit" => Shown::Set(e.sync_limit.to_string()),
        "init-limit" => Shown::Set(e.init_limit.to_string()),
        "finalize-wait" => Shown::Set(duration_value(e.finalize_wait)),
        "max-notification-interval" => Shown::Set(duration_value(e.max_notification_interval)),
        "key-file" => path(&s.key_file, "not set (authentication off)"),
        "track" => match s.track.commands.is_empty() {
            true => Shown::Unset("not set (no health check commands)"),
            false => Shown::Set(list_value(s.track.commands.iter().map(String::as_str))),
        },
        "track-interface" if s.track.interface => Shown::Set("true".to_string()),
        "track-interface" => Shown::Unset("not set (carrier not checked)"),
        // Tuning keys without a check are refused, so they are shown only with one.
        "track-interval" | "track-timeout" | "track-fall" | "track-rise"
            if !s.track.is_enabled() =>
        {
            Shown::Unset("not used without a health check")
        }
        "track-interval" => Shown::Set(duration_value(s.track.interval)),
        "track-timeout" => Shown::Set(duration_value(s.track.timeout)),
        "track-fall" => Shown::Set(s.track.fall.to_string()),
        "track-rise" => Shown::Set(s.track.rise.to_string()),
        "vip" => match s.vip.addrs.is_empty() {
            true => Shown::Unset("not set (no floating address)"),
            false => Shown::Set(list_value(
                s.vip
                    .addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
            )),
        },
        "vip-announce-count" | "vip-announce-interval" if s.vip.addrs.is_empty() => {
            Shown::Unset("not used without a floating address")
        }
        "vip-announce-count" => Shown::Set(s.vip.announce_count.to_string()),
        "vip-announce-interval" => Shown::Set(duration_value(s.vip.announce_interval)),
        _ => return None,
    })
}

/// A TOML array of strings.
fn list_value<'a>(items: impl Iterator<Item = &'a str>) -> String {
    format!(
        "[{}]",
        items.map(string_value).collect::<Vec<_>>().join(", ")
    )
}

/// A TOML string (quoted and escaped).
fn string_value(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A path as a TOML string (a path that is not UTF-8 is shown lossily).
fn path_value(path: &Path) -> String {
    string_value(&path.to_string_lossy())
}

/// An id or zxid: a TOML integer, or a decimal string above TOML's integer range.
fn id_value(id: u64) -> String {
    match i64::try_from(id) {
        Ok(_) => id.to_string(),
        Err(_) => format!("\"{id}\""),
    }
}

/// A duration in the largest unit that shows it exactly, quoted (`"50ms"`, `"2s"`).
fn duration_value(d: Duration) -> String {
    let nanos = d.as_nanos();
    let (value, unit) = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "us")]
        .into_iter()
        .find(|(per, _)| nanos % per == 0)
        .map_or((nanos, "ns"), |(per, unit)| (nanos / per, unit));
    format!("\"{value}{unit}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::cli::{parse_command_line, Command};
    use std::ffi::OsString;

    fn resolve(args: &[&str]) -> RunSettings {
        let mut all = vec![OsString::from("votecast"), OsString::from("run")];
        all.extend(args.iter().map(OsString::from));
        match parse_command_line(all) {
            Ok(Command::Run(settings)) => settings,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn every_config_key_is_shown() {
        let s = resolve(&["--id", "1", "--voters", "1,2,3", "--interface", "lo"]);
        for key in settings::file_keys() {
            assert!(
                shown(key, &s).is_some(),
                "check-config does not show {key:?}"
            );
        }
    }

    #[test]
    fn the_output_is_a_config_file_that_resolves_to_the_same_settings() {
        let dir = crate::cluster::TempDir::new("votecast-effective").unwrap();
        let s = resolve(&[
            "--id",
            "18446744073709551614",
            "--voters",
            "1,2,18446744073709551614",
            "--interface",
            "lo",
            "--peers",
            "127.0.0.2,127.0.0.3:7300",
            "--tick",
            "1500us",
            "--finalize-wait",
            "1.5s",
            "--on-change",
            "echo \"changed\" \\ now",
            "--state-file",
            "/run/votecast/state.json",
        ]);
        let text = effective(&s);
        assert!(text.contains("tick = \"1500us\"\n"), "{text}");
        assert!(text.contains("finalize-wait = \"1500ms\"\n"), "{text}");
        assert!(text.contains("# data-dir: not set"), "{text}");
        let file = dir.path().join("effective.toml");
        std::fs::write(&file, &text).unwrap();
        let again = resolve(&["--config", file.to_str().unwrap()]);
        assert_eq!(again, s, "{text}");
        assert_eq!(effective(&again), text);
    }

    #[test]
    fn durations_are_shown_exactly() {
        for (d, shown) in [
            (Duration::from_millis(50), "\"50ms\""),
            (Duration::from_secs(2), "\"2s\""),
            (Duration::from_micros(1500), "\"1500us\""),
            (Duration::from_nanos(7), "\"7ns\""),
            (Duration::ZERO, "\"0s\""),
        ] {
            assert_eq!(duration_value(d), shown);
        }
    }

    #[test]
    fn only_an_unusable_interface_is_warned_about() {
        let usable = Link::Usable(link::Binding {
            index: 1,
            ipv4: None,
        });
        assert_eq!(interface_warning("eth0", Some(usable)), None);
        assert_eq!(interface_warning("eth0", None), None);
        for (link, why) in [
            (Link::Absent, "does not exist"),
            (Link::Down { index: 2 }, "is down"),
            (Link::NoAddress { index: 2 }, "no IPv4 address"),
        ] {
            let warning = interface_warning("eth9", Some(link)).unwrap();
            assert!(warning.contains("\"eth9\""), "{warning}");
            assert!(warning.contains(why), "{warning}");
            assert!(warning.contains("run would wait"), "{warning}");
        }
    }
}
