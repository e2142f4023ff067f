//! The settings of `votecast run`: every setting once, in one table (`SETTINGS`) that
//! says where its flag is, what its config-file key is and how its value is read. Flags
//! override the `--config` file, which overrides the defaults; the defaults and limits of
//! the election settings are the core's ([`votecast_core::election::Config`]).
//!
//! - [`value`]: one raw value (flag text or file value) into a typed value.
//! - [`check`]: the rules on the merged values, in one place: the core's own check
//!   ([`Config::validate`]) with its errors named by flag or key, plus the daemon's bounds.
//! - [`key_file`]: reading and checking `--key-file`.
//! - [`input_file`]: reading the small input files (config, key, zxid): regular files of
//!   bounded size, opened without blocking.
//!
//! `--config FILE` is a TOML file with the same keys as the `run` flags, spelled like the
//! flags without the leading dashes (`sync-limit = 6`, `voters = [1, 2, 3]`,
//! `tick = "50ms"`). An unknown key is an error. Integer keys also accept a decimal string
//! (TOML integers stop at 2^63-1; ids and zxids may not).
//!
//! `--peers` is a list of addresses (`peers = ["169.254.0.11", "[fe80::2]:7277"]` or one
//! comma-separated string in the file); its entries' default port is the group's port,
//! and a `--group` given explicitly fixes their family (see [`crate::driver::peers`]).
//!
//! `--zxid` and `--zxid-file` are one setting: giving both on the command line, or both in
//! the file, is an error; a flag of either kind overrides either key in the file. The
//! `--zxid-file` is read once here: a node must not vote with a zxid it could not read, so
//! a file that is missing, malformed or not a regular file at start is a usage error.
//!
//! Every error message names the flag (`--sync-limit`) or the file key
//! (`config key "sync-limit"`) and says what is wrong with the value.

pub mod check;
pub mod input_file;
pub mod key_file;
pub mod track;
pub mod value;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_vip;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::driver::peers::{PeerEntry, Peers, Transport};
use crate::vip::VipAddr;
use votecast_core::election::Config;
use votecast_core::wire::NO_LEADER;

use self::track::{GivenTrack, TrackSettings};
use self::value::{Origin, Raw};
use super::cli::{RunArgs, UsageError};

/// Multicast group used when `--group` is not given.
pub const DEFAULT_GROUP: &str = "239.192.77.77:7277";
/// Largest id a node may have; `u64::MAX` means "no leader" on the wire.
pub const MAX_ID: u64 = NO_LEADER - 1;
/// Time limit for one hook run when `--hook-timeout` is not given.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Announcements per floating address when `--vip-announce-count` is not given.
pub const DEFAULT_VIP_ANNOUNCE_COUNT: u32 = 3;
/// Time between announcements when `--vip-announce-interval` is not given.
pub const DEFAULT_VIP_ANNOUNCE_INTERVAL: Duration = Duration::from_millis(100);

/// Where this node's initial zxid comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZxidSource {
    /// `--zxid N` (default 0).
    Fixed(u64),
    /// `--zxid-file PATH`: read once when the settings are checked (`initial`), then by
    /// the daemon once a tick.
    File { path: PathBuf, initial: u64 },
}

impl Default for ZxidSource {
    fn default() -> Self {
        ZxidSource::Fixed(0)
    }
}

/// Validated settings of `votecast run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// The core's configuration: id, voters, cluster, timing and keys, already validated.
    pub election: Config,
    /// Network interface to join the group on (never guessed).
    pub interface: String,
    /// Multicast group and port. With `peers`, only its port is used (the peers' default).
    pub group: SocketAddr,
    /// `--peers`: unicast to these instead of multicast to the group.
    pub peers: Option<Peers>,
    /// Source of the initial zxid.
    pub zxid: ZxidSource,
    /// Directory for durable epochs; `None` keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    /// Where to publish the live state as JSON, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Where to write the metrics (Prometheus text format), if anywhere.
    pub metrics_file: Option<PathBuf>,
    /// Shell command run on every state change, if any.
    pub on_change: Option<String>,
    /// Time limit for one run of `on_change`.
    pub hook_timeout: Duration,
    /// `--key-file`, re-read on SIGHUP (its keys are in `election.keys`).
    pub key_file: Option<PathBuf>,
    /// Health checks (`--track`...); none by default.
    pub track: TrackSettings,
    /// `--vip`: the floating addresses and how they are announced (empty: none).
    pub vip: VipSettings,
}

/// The floating addresses (`--vip`) and their announcements.
#[derive(Debug, Clone, PartialEq)]
pub struct VipSettings {
    pub addrs: Vec<VipAddr>,
    /// Announcements (gratuitous ARP, neighbour advertisement) per address after adding it.
    pub announce_count: u32,
    /// Time between two announcements of one address.
    pub announce_interval: Duration,
}

impl Default for VipSettings {
    fn default() -> Self {
        VipSettings {
            addrs: Vec::new(),
            announce_count: DEFAULT_VIP_ANNOUNCE_COUNT,
            announce_interval: DEFAULT_VIP_ANNOUNCE_INTERVAL,
        }
    }
}

impl RunSettings {
    /// True when this node's id is not among the voters: it follows, but never votes.
    pub fn is_observer(&self) -> bool {
        !self.election.is_voter(self.election.id)
    }

    /// How frames travel: to the `peers` if given, else to the group.
    pub fn transport(&self) -> Transport {
        match &self.peers {
            Some(peers) => Transport::Unicast(peers.clone()),
            None => Transport::Multicast(self.group),
        }
    }
}

/// The values the user gave (flag or file), each with where it came from; unset ones
/// take their defaults in [`check::settings`].
#[derive(Debug, Default)]
struct Given {
    id: Option<(u64, Origin)>,
    voters: Option<(Vec<u64>, Origin)>,
    interface: Option<String>,
    group: Option<SocketAddr>,
    peers: Option<(Vec<PeerEntry>, Origin)>,
    cluster: Option<u32>,
    zxid: Option<u64>,
    zxid_file: Option<(PathBuf, Origin)>,
    data_dir: Option<(PathBuf, Origin)>,
    state_file: Option<(PathBuf, Origin)>,
    metrics_file: Option<(PathBuf, Origin)>,
    on_change: Option<String>,
    hook_timeout: Option<(Duration, Origin)>,
    tick: Option<(Duration, Origin)>,
    sync_limit: Option<(u32, Origin)>,
    init_limit: Option<(u32, Origin)>,
    finalize_wait: Option<(Duration, Origin)>,
    max_notification_interval: Option<(Duration, Origin)>,
    key_file: Option<(PathBuf, Origin)>,
    track: GivenTrack,
    vip: Option<(Vec<VipAddr>, Origin)>,
    vip_announce_count: Option<(u32, Origin)>,
    vip_announce_interval: Option<(Duration, Origin)>,
}

/// A flag's value as clap parsed it.
#[derive(Debug, Clone, Copy)]
enum FlagValue<'a> {
    Text(&'a str),
    Path(&'a Path),
    /// A repeatable flag, given at least once.
    List(&'a [String]),
}

/// One `run` setting: its key (the flag without dashes), where clap put its flag, and how
/// a raw value of it is read into [`Given`].
struct Setting {
    key: &'static str,
    /// How a missing required setting is named (`--id N`); `None`: optional.
    required: Option<&'static str>,
    /// The other key of the same setting (`zxid` / `zxid-file`): a flag of either
    /// overrides both keys in the file, and both in one layer is an error.
    same_setting_as: Option<&'static str>,
    flag: fn(&RunArgs) -> Option<FlagValue<'_>>,
    read: fn(&mut Given, Raw<'_>) -> Result<(), UsageError>,
}

fn text(flag: &Option<String>) -> Option<FlagValue<'_>> {
    flag.as_deref().map(FlagValue::Text)
}

fn path(flag: &Option<PathBuf>) -> Option<FlagValue<'_>> {
    flag.as_deref().map(FlagValue::Path)
}

fn list(flag: &[String]) -> Option<FlagValue<'_>> {
    (!flag.is_empty()).then_some(FlagValue::List(flag))
}

fn switch(flag: bool) -> Option<FlagValue<'static>> {
    flag.then_some(FlagValue::Text("true"))
}

/// Every `run` setting but `--config`, in the order they are read and reported.
const SETTINGS: &[Setting] = &[
    Setting {
        key: "id",
        required: Some("--id N"),
        same_setting_as: None,
        flag: |a| text(&a.id),
        read: |g, raw| {
            let expected = "an integer from 1 to 18446744073709551614 (the node id)";
            g.id = Some((value::to_u64(raw, expected)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "voters",
        required: Some("--voters ID,ID,..."),
        same_setting_as: None,
        flag: |a| text(&a.voters),
        read: |g, raw| {
            g.voters = Some((value::to_ids(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "interface",
        required: Some("--interface NAME"),
        same_setting_as: None,
        flag: |a| text(&a.interface),
        read: |g, raw| {
            g.interface = Some(value::to_interface(raw)?);
            Ok(())
        },
    },
    Setting {
        key: "group",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.group),
        read: |g, raw| {
            g.group = Some(value::to_group(raw)?);
            Ok(())
        },
    },
    Setting {
        key: "peers",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.peers),
        read: |g, raw| {
            g.peers = Some((value::to_peers(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "cluster",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.cluster),
        read: |g, raw| {
            g.cluster = Some(value::to_u32(raw, "an integer from 0 to 4294967295")?);
            Ok(())
        },
    },
    Setting {
        key: "zxid",
        required: None,
        same_setting_as: Some("zxid-file"),
        flag: |a| text(&a.zxid),
        read: |g, raw| {
            g.zxid = Some(value::to_u64(raw, "a non-negative integer")?);
            Ok(())
        },
    },
    Setting {
        key: "zxid-file",
        required: None,
        same_setting_as: Some("zxid"),
        flag: |a| path(&a.zxid_file),
        read: |g, raw| {
            g.zxid_file = Some((value::to_path(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "data-dir",
        required: None,
        same_setting_as: None,
        flag: |a| path(&a.data_dir),
        read: |g, raw| {
            g.data_dir = Some((value::to_path(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "state-file",
        required: None,
        same_setting_as: None,
        flag: |a| path(&a.state_file),
        read: |g, raw| {
            g.state_file = Some((value::to_path(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "metrics-file",
        required: None,
        same_setting_as: None,
        flag: |a| path(&a.metrics_file),
        read: |g, raw| {
            g.metrics_file = Some((value::to_path(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "on-change",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.on_change),
        read: |g, raw| {
            g.on_change = Some(value::to_command(raw)?);
            Ok(())
        },
    },
    Setting {
        key: "hook-timeout",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.hook_timeout),
        read: |g, raw| {
            g.hook_timeout = Some((value::to_duration(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "tick",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.tick),
        read: |g, raw| {
            g.tick = Some((value::to_duration(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "sync-limit",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.sync_limit),
        read: |g, raw| {
            g.sync_limit = Some((value::to_limit(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "init-limit",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.init_limit),
        read: |g, raw| {
            g.init_limit = Some((value::to_limit(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "max-notification-interval",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.max_notification_interval),
        read: |g, raw| {
            g.max_notification_interval = Some((value::to_duration(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "finalize-wait",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.finalize_wait),
        read: |g, raw| {
            g.finalize_wait = Some((value::to_duration(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "key-file",
        required: None,
        same_setting_as: None,
        flag: |a| path(&a.key_file),
        read: |g, raw| {
            g.key_file = Some((value::to_path(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "track",
        required: None,
        same_setting_as: None,
        flag: |a| list(&a.track),
        read: |g, raw| {
            g.track.commands = Some((track::to_commands(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "vip",
        required: None,
        same_setting_as: None,
        flag: |a| list(&a.vip),
        read: |g, raw| {
            g.vip = Some((value::to_vips(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "track-interface",
        required: None,
        same_setting_as: None,
        flag: |a| switch(a.track_interface),
        read: |g, raw| {
            g.track.interface = Some((track::to_switch(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "vip-announce-count",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.vip_announce_count),
        read: |g, raw| {
            let n = value::to_u32(raw, "an integer from 0 to 20")?;
            g.vip_announce_count = Some((n, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "track-interval",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.track_interval),
        read: |g, raw| {
            g.track.interval = Some((value::to_duration(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "track-timeout",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.track_timeout),
        read: |g, raw| {
            g.track.timeout = Some((value::to_duration(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "track-fall",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.track_fall),
        read: |g, raw| {
            g.track.fall = Some((track::to_count(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "track-rise",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.track_rise),
        read: |g, raw| {
            g.track.rise = Some((track::to_count(raw)?, raw.origin()));
            Ok(())
        },
    },
    Setting {
        key: "vip-announce-interval",
        required: None,
        same_setting_as: None,
        flag: |a| text(&a.vip_announce_interval),
        read: |g, raw| {
            g.vip_announce_interval = Some((value::to_duration(raw)?, raw.origin()));
            Ok(())
        },
    },
];

/// Whether `key` is a key of the `--config` file.
pub fn is_file_key(key: &str) -> bool {
    SETTINGS.iter().any(|s| s.key == key)
}

/// The keys of the `--config` file, in table order.
pub fn file_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|s| s.key)
}

/// The raw value of `setting`: its flag if given, else its key in the file, unless a flag
/// of the same setting under its other key was given.
fn pick<'a>(
    setting: &Setting,
    args: &'a RunArgs,
    file: Option<&'a toml::Table>,
) -> Result<Option<Raw<'a>>, UsageError> {
    let partner = setting
        .same_setting_as
        .and_then(|key| SETTINGS.iter().find(|s| s.key == key));
    let partner_flag = partner.and_then(|p| (p.flag)(args)).is_some();
    if let Some(flag) = (setting.flag)(args) {
        if let (true, Some(p)) = (partner_flag, partner) {
            return Err(UsageError::new(format!(
                "error: --{} and --{} cannot both be given",
                setting.key, p.key
            )));
        }
        return Ok(Some(match flag {
            FlagValue::Text(text) => Raw::Flag(setting.key, text),
            FlagValue::Path(path) => Raw::FlagPath(setting.key, path),
            FlagValue::List(items) => Raw::FlagList(setting.key, items),
        }));
    }
    if partner_flag {
        return Ok(None);
    }
    let Some(value) = file.and_then(|t| t.get(setting.key)) else {
        return Ok(None);
    };
    if let Some(p) = partner.filter(|p| file.is_some_and(|t| t.contains_key(p.key))) {
        return Err(UsageError::new(format!(
            "error: config keys \"{}\" and \"{}\" cannot both be given",
            setting.key, p.key
        )));
    }
    Ok(Some(Raw::File(setting.key, value)))
}

/// Merges the flags over the `--config` file over the defaults, then checks the result.
pub(crate) fn resolve(
    args: &RunArgs,
    file: Option<&toml::Table>,
) -> Result<RunSettings, UsageError> {
    let picked: Vec<_> = SETTINGS.iter().map(|s| pick(s, args, file)).collect();
    // Required settings first, so that all missing ones are named at once.
    let missing: Vec<&str> = SETTINGS
        .iter()
        .zip(&picked)
        .filter(|(_, raw)| matches!(raw, Ok(None)))
        .filter_map(|(s, _)| s.required)
        .collect();
    if !missing.is_empty() {
        return Err(UsageError::new(format!(
            "error: missing required setting{}: {} (as flags or as keys in the --config file)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    let mut given = Given::default();
    for (setting, raw) in SETTINGS.iter().zip(picked) {
        if let Some(raw) = raw? {
            (setting.read)(&mut given, raw)?;
        }
    }
    check::settings(given)
}
