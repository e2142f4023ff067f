//! Command line and `--config` file, resolved into validated [`RunSettings`].
//!
//! The command line is a contract:
//!
//! ```text
//! votecast run --id N --voters 1,2,3 --interface NAME [--group ADDR:PORT] [--cluster N]
//!              [--zxid N | --zxid-file PATH] [--data-dir DIR] [--state-file PATH]
//!              [--on-change CMD] [--hook-timeout DURATION] [--tick DURATION]
//!              [--sync-limit N] [--init-limit N] [--finalize-wait DURATION]
//!              [--max-notification-interval DURATION] [--key-file PATH] [--config FILE]
//! votecast status --state-file PATH [--json]
//! votecast demo [--nodes N]
//! ```
//!
//! `--config FILE` is a TOML file with the same keys as the `run` flags, spelled like the
//! flags without the leading dashes (`sync-limit = 6`, `voters = [1, 2, 3]`,
//! `tick = "50ms"`). Flags override the file. An unknown key is an error. Integer keys also
//! accept a decimal string (TOML integers stop at 2^63-1; ids and zxids may not).
//!
//! `--zxid` and `--zxid-file` are one setting: giving both on the command line, or both in
//! the file, is an error; a flag of either kind overrides either key in the file.
//!
//! Every error message names the flag (`--sync-limit`) or the file key
//! (`config key "sync-limit"`) and says what is wrong with the value.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration::parse_duration;

use votecast_core::auth::{self, KeySet};

/// Most voters a cluster may have (the wire format carries a 64-bit voter bitmap).
pub const MAX_VOTERS: usize = 64;
/// Multicast group used when `--group` is not given.
pub const DEFAULT_GROUP: &str = "239.192.77.77:7277";
/// Largest id a node may have; `u64::MAX` is reserved.
pub const MAX_ID: u64 = u64::MAX - 1;

const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_TICK: Duration = Duration::from_millis(50);
const DEFAULT_SYNC_LIMIT: u32 = 6;
const DEFAULT_INIT_LIMIT: u32 = 10;
const DEFAULT_FINALIZE_WAIT: Duration = Duration::from_millis(50);
const DEFAULT_MAX_NOTIFICATION_INTERVAL: Duration = Duration::from_secs(2);
const MAX_TICK: Duration = Duration::from_secs(10);
const MAX_MAX_NOTIFICATION_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_DEMO_NODES: usize = 5;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const MAX_INTERFACE_LEN: usize = 15;

/// Keys accepted in the `--config` file.
const FILE_KEYS: &[&str] = &[
    "id",
    "voters",
    "interface",
    "group",
    "cluster",
    "zxid",
    "zxid-file",
    "data-dir",
    "state-file",
    "on-change",
    "hook-timeout",
    "tick",
    "sync-limit",
    "init-limit",
    "finalize-wait",
    "max-notification-interval",
    "key-file",
];

/// What the command line asked for.
// Parsed once at start-up; boxing `RunSettings` would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `votecast run ...`: run the agent.
    Run(RunSettings),
    /// `votecast status --state-file PATH [--json]`.
    Status { state_file: PathBuf, json: bool },
    /// `votecast demo [--nodes N]`.
    Demo { nodes: usize },
    /// `votecast bench [--nodes 3,5,7,9] [--reps N] [--json PATH] [--footprint]`.
    Bench(crate::bench::BenchSettings),
}

/// A command line that cannot be run, or a request for help/version text.
///
/// `message` is ready to print as is. When `is_help` is true it is the `--help` or
/// `--version` text: print it to stdout and exit 0. Otherwise print it to stderr and exit 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    pub is_help: bool,
}

impl UsageError {
    fn new(message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            is_help: false,
        }
    }
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

/// Where this node's initial zxid comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZxidSource {
    /// `--zxid N` (default 0).
    Fixed(u64),
    /// `--zxid-file PATH`: read by the daemon at start-up.
    File(PathBuf),
}

impl Default for ZxidSource {
    fn default() -> Self {
        ZxidSource::Fixed(0)
    }
}

/// Validated settings of `votecast run`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// This node's id, 1..=u64::MAX-1.
    pub id: u64,
    /// The voting members, sorted ascending, no duplicates, 1..=64 entries.
    pub voters: Vec<u64>,
    /// Network interface to join the group on (never guessed).
    pub interface: String,
    /// Multicast group and port.
    pub group: SocketAddr,
    /// Cluster number; nodes ignore frames of other clusters.
    pub cluster: u32,
    /// Source of the initial zxid.
    pub zxid: ZxidSource,
    /// Directory for durable epochs; `None` keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    /// Where to publish the live state as JSON, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Shell command run on every state change, if any.
    pub on_change: Option<String>,
    /// Time limit for one run of `on_change`.
    pub hook_timeout: Duration,
    /// Length of one tick.
    pub tick: Duration,
    /// Ticks a follower may go without hearing from the leader.
    pub sync_limit: u32,
    /// Ticks allowed for a new leader to gather its followers.
    pub init_limit: u32,
    /// How long to wait for better votes once a quorum agrees.
    pub finalize_wait: Duration,
    /// Upper bound of the notification back-off.
    pub max_notification_interval: Duration,
    /// Shared keys from `--key-file`; empty = authentication off.
    pub keys: KeySet,
}

impl RunSettings {
    /// True when this node's id is not among the voters: it follows, but never votes.
    pub fn is_observer(&self) -> bool {
        self.voters.binary_search(&self.id).is_err()
    }
}

// ---------------------------------------------------------------------------------------
// clap definitions. Values are taken as text and converted here, so that every message has
// the same shape and names the flag.

#[derive(Parser, Debug)]
#[command(
    name = "votecast",
    version,
    about = "Elects exactly one coordinator among LAN appliances \
             (ZooKeeper FastLeaderElection over UDP multicast)",
    propagate_version = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Subcommand, Debug)]
enum CliCommand {
    /// Run the election agent.
    Run(Box<RunArgs>),
    /// Show the state a running agent last wrote to its state file.
    ///
    /// Exit status: 0 fresh, 3 stale, 2 unreadable.
    Status {
        /// The agent's --state-file.
        #[arg(long, value_name = "PATH")]
        state_file: PathBuf,
        /// Print the state as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run an election among N in-process nodes and print what happens.
    Demo {
        /// Number of nodes [default: 5].
        #[arg(long, value_name = "N")]
        nodes: Option<String>,
    },
    /// Measure election/failover latency (or --footprint) of real processes on lo.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug, Default)]
#[command(allow_negative_numbers = true)]
struct RunArgs {
    /// TOML file with the same keys as these flags (without dashes); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's id, 1..=18446744073709551614 (required).
    #[arg(long, value_name = "N")]
    id: Option<String>,
    /// Comma-separated ids of the voting members, e.g. 1,2,3 (required). A node whose id is
    /// not listed runs as an observer.
    #[arg(long, value_name = "ID,ID,...")]
    voters: Option<String>,
    /// Network interface to use, e.g. eth0 (required).
    #[arg(long, value_name = "NAME")]
    interface: Option<String>,
    /// Multicast group [default: 239.192.77.77:7277]; IPv6 like [ff02::1:77]:7277 works too.
    #[arg(long, value_name = "ADDR:PORT")]
    group: Option<String>,
    /// Cluster number; frames of other clusters are ignored [default: 0].
    #[arg(long, value_name = "N")]
    cluster: Option<String>,
    /// This node's last zxid [default: 0]. Conflicts with --zxid-file.
    #[arg(long, value_name = "N")]
    zxid: Option<String>,
    /// Read this node's last zxid from a file at start-up. Conflicts with --zxid.
    #[arg(long, value_name = "PATH")]
    zxid_file: Option<PathBuf>,
    /// Directory for durable epochs; without it they are kept in memory only.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Publish the live state as JSON in this file (read by `votecast status`).
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,
    /// Shell command run on every state change, with VOTECAST_* variables set.
    #[arg(long, value_name = "CMD")]
    on_change: Option<String>,
    /// Time limit for one run of --on-change [default: 10s].
    #[arg(long, value_name = "DURATION")]
    hook_timeout: Option<String>,
    /// Length of one tick [default: 50ms].
    #[arg(long, value_name = "DURATION")]
    tick: Option<String>,
    /// Ticks a follower may go without hearing from its leader [default: 6].
    #[arg(long, value_name = "N")]
    sync_limit: Option<String>,
    /// Ticks a new leader has to gather a quorum of followers [default: 10].
    #[arg(long, value_name = "N")]
    init_limit: Option<String>,
    /// Wait for better votes once a quorum agrees [default: 50ms].
    #[arg(long, value_name = "DURATION")]
    finalize_wait: Option<String>,
    /// Upper bound of the notification back-off [default: 2s].
    #[arg(long, value_name = "DURATION")]
    max_notification_interval: Option<String>,
    /// File with the shared secret(s) that authenticate frames: lines "ID SECRET", the
    /// first key signs; SECRET is at least 32 random bytes in hex or base64.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
}

/// Parses the whole command line (`args` includes the program name, like `std::env::args_os`).
///
/// Reads the `--config` file if one is given. Does not touch anything else.
pub fn parse_command_line<I: IntoIterator<Item = OsString>>(
    args: I,
) -> Result<Command, UsageError> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let is_help = matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let mut message = e.render().to_string().trim_end().to_string();
            if message.contains("'--log-level'") {
                message.push_str("\n\nThe log level is taken from RUST_LOG, e.g. RUST_LOG=debug.");
            }
            return Err(UsageError { message, is_help });
        }
    };
    match cli.command {
        CliCommand::Run(args) => {
            let table = match &args.config {
                Some(path) => Some(read_config_file(path)?),
                None => None,
            };
            resolve_run(&args, table.as_ref()).map(Command::Run)
        }
        CliCommand::Status { state_file, json } => Ok(Command::Status { state_file, json }),
        CliCommand::Demo { nodes } => {
            let nodes = match nodes {
                None => DEFAULT_DEMO_NODES,
                Some(text) => match text.parse::<usize>() {
                    Ok(n) if (1..=MAX_VOTERS).contains(&n) => n,
                    _ => {
                        return Err(UsageError::new(format!(
                        "error: --nodes: expected an integer from 1 to {MAX_VOTERS}, got {text:?}"
                    )))
                    }
                },
            };
            Ok(Command::Demo { nodes })
        }
        CliCommand::Bench(args) => args.resolve().map(Command::Bench).map_err(UsageError::new),
    }
}

fn read_config_file(path: &Path) -> Result<toml::Table, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError::new(format!(
            "error: --config: cannot read {}: {e}",
            path.display()
        ))
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        UsageError::new(format!(
            "error: --config: {} is not valid TOML: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    for key in table.keys() {
        if !FILE_KEYS.contains(&key.as_str()) {
            let dashed = key.replace('_', "-");
            let hint = if FILE_KEYS.contains(&dashed.as_str()) {
                format!(" (did you mean \"{dashed}\"?)")
            } else {
                String::new()
            };
            return Err(UsageError::new(format!(
                "error: config key {key:?}: unknown key in {}{hint}; known keys: {}",
                path.display(),
                FILE_KEYS.join(", ")
            )));
        }
    }
    Ok(table)
}

// ---------------------------------------------------------------------------------------
// Resolution: flag over file over default, then validation.

/// Where a value came from, for naming it in messages.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Flag(&'static str),
    File(&'static str),
    Default(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(key) => write!(f, "--{key}"),
            Origin::File(key) => write!(f, "config key \"{key}\""),
            Origin::Default(key) => write!(f, "--{key} (default)"),
        }
    }
}

/// One raw value as given by the user.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Flag(&'static str, &'a str),
    File(&'static str, &'a toml::Value),
}

impl<'a> Raw<'a> {
    fn origin(&self) -> Origin {
        match self {
            Raw::Flag(key, _) => Origin::Flag(key),
            Raw::File(key, _) => Origin::File(key),
        }
    }

    fn error(&self, problem: impl fmt::Display) -> UsageError {
        bad(self.origin(), problem)
    }

    /// The value as text, when it is text (any flag; a string in the file).
    fn text(&self) -> Option<&'a str> {
        match *self {
            Raw::Flag(_, text) => Some(text),
            Raw::File(_, toml::Value::String(s)) => Some(s.as_str()),
            Raw::File(..) => None,
        }
    }

    /// How the value looks, for "got ..." in messages.
    fn shown(&self) -> String {
        match self {
            Raw::Flag(_, text) => format!("{text:?}"),
            Raw::File(_, value) => value.to_string(),
        }
    }
}

fn bad(origin: Origin, problem: impl fmt::Display) -> UsageError {
    UsageError::new(format!("error: {origin}: {problem}"))
}

/// The flag's text if given, else the file's value if present.
fn pick<'a>(
    key: &'static str,
    flag: &'a Option<String>,
    file: Option<&'a toml::Table>,
) -> Option<Raw<'a>> {
    match flag {
        Some(text) => Some(Raw::Flag(key, text.as_str())),
        None => file.and_then(|t| t.get(key)).map(|v| Raw::File(key, v)),
    }
}

fn to_u64(raw: Raw<'_>, expected: &str) -> Result<u64, UsageError> {
    let fail = || raw.error(format_args!("expected {expected}, got {}", raw.shown()));
    match raw {
        Raw::File(_, toml::Value::Integer(i)) => u64::try_from(*i).map_err(|_| fail()),
        _ => raw
            .text()
            .and_then(|t| t.parse::<u64>().ok())
            .ok_or_else(fail),
    }
}

fn to_duration(raw: Raw<'_>) -> Result<Duration, UsageError> {
    match raw.text() {
        Some(text) => parse_duration(text).map_err(|e| raw.error(e)),
        None => {
            let note = match raw {
                Raw::File(_, toml::Value::Integer(_)) | Raw::File(_, toml::Value::Float(_)) => {
                    " (a bare number needs a unit and quotes, e.g. \"50ms\")"
                }
                _ => "",
            };
            Err(raw.error(format_args!(
                "expected a duration such as 50ms, got {}{note}",
                raw.shown()
            )))
        }
    }
}

fn to_string(raw: Raw<'_>) -> Result<&str, UsageError> {
    raw.text().ok_or_else(|| {
        raw.error(format_args!(
            "expected a string, got {} {}",
            type_name(raw),
            raw.shown()
        ))
    })
}

fn type_name(raw: Raw<'_>) -> &'static str {
    match raw {
        Raw::Flag(..) => "string",
        Raw::File(_, v) => v.type_str(),
    }
}

/// A path: the flag's (any bytes) or the file's string.
fn path_setting(
    key: &'static str,
    flag: &Option<PathBuf>,
    file: Option<&toml::Table>,
) -> Result<Option<PathBuf>, UsageError> {
    if let Some(path) = flag {
        if path.as_os_str().is_empty() {
            return Err(bad(Origin::Flag(key), "the path is empty"));
        }
        return Ok(Some(path.clone()));
    }
    match file.and_then(|t| t.get(key)) {
        None => Ok(None),
        Some(value) => {
            let raw = Raw::File(key, value);
            let text = to_string(raw)?;
            if text.is_empty() {
                return Err(raw.error("the path is empty"));
            }
            Ok(Some(PathBuf::from(text)))
        }
    }
}

fn check_id(raw: Raw<'_>, id: u64) -> Result<u64, UsageError> {
    match id {
        0 => Err(raw.error("id 0 is not allowed")),
        u64::MAX => Err(raw.error(format_args!("id {} is reserved", u64::MAX))),
        _ => Ok(id),
    }
}

fn to_voters(raw: Raw<'_>) -> Result<Vec<u64>, UsageError> {
    const EXPECTED: &str = "expected comma-separated ids such as 1,2,3";
    let mut ids = Vec::new();
    match raw {
        Raw::File(_, toml::Value::Array(items)) => {
            for item in items {
                let id = match item {
                    toml::Value::Integer(i) => u64::try_from(*i).ok(),
                    toml::Value::String(s) => s.trim().parse::<u64>().ok(),
                    _ => None,
                };
                match id {
                    Some(id) => ids.push(check_id(raw, id)?),
                    None => {
                        return Err(raw.error(format_args!(
                            "expected a list of ids such as [1, 2, 3], but {item} is not an id"
                        )))
                    }
                }
            }
        }
        _ => {
            let Some(text) = raw.text() else {
                return Err(raw.error(format_args!(
                    "expected a list of ids such as [1, 2, 3], got {}",
                    raw.shown()
                )));
            };
            if !text.trim().is_empty() {
                for part in text.split(',') {
                    let part = part.trim();
                    if part.is_empty() {
                        return Err(
                            raw.error(format_args!("{EXPECTED}, got {text:?} (empty entry)"))
                        );
                    }
                    match part.parse::<u64>() {
                        Ok(id) => ids.push(check_id(raw, id)?),
                        Err(_) => {
                            return Err(
                                raw.error(format_args!("{EXPECTED}, but {part:?} is not an id"))
                            )
                        }
                    }
                }
            }
        }
    }
    if ids.is_empty() {
        return Err(raw.error("the list of voters is empty"));
    }
    if ids.len() > MAX_VOTERS {
        return Err(raw.error(format_args!(
            "{} voters given, at most {MAX_VOTERS} are allowed",
            ids.len()
        )));
    }
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(raw.error(format_args!("id {} is listed more than once", pair[0])));
    }
    Ok(ids)
}

fn to_group(raw: Raw<'_>) -> Result<SocketAddr, UsageError> {
    let text = to_string(raw)?;
    let addr: SocketAddr = text.parse().map_err(|_| {
        raw.error(format_args!(
            "expected ADDR:PORT such as {DEFAULT_GROUP} or [ff02::1:77]:7277, got {text:?}"
        ))
    })?;
    if !addr.ip().is_multicast() {
        return Err(raw.error(format_args!(
            "{} is not a multicast address (IPv4 224.0.0.0/4 or IPv6 ff00::/8)",
            addr.ip()
        )));
    }
    if addr.port() == 0 {
        return Err(raw.error("port 0 is not allowed"));
    }
    Ok(addr)
}

fn to_interface(raw: Raw<'_>) -> Result<String, UsageError> {
    let name = to_string(raw)?;
    if name.is_empty() {
        return Err(raw.error("the interface name is empty"));
    }
    if name.len() > MAX_INTERFACE_LEN {
        return Err(raw.error(format_args!(
            "interface name {name:?} is longer than {MAX_INTERFACE_LEN} bytes"
        )));
    }
    if name.contains('/') || name.chars().any(char::is_whitespace) {
        return Err(raw.error(format_args!(
            "{name:?} is not a valid interface name (no '/' or whitespace)"
        )));
    }
    Ok(name.to_string())
}

/// A resolved duration and where it came from.
fn duration_setting(
    key: &'static str,
    flag: &Option<String>,
    file: Option<&toml::Table>,
    default: Duration,
) -> Result<(Duration, Origin), UsageError> {
    match pick(key, flag, file) {
        Some(raw) => Ok((to_duration(raw)?, raw.origin())),
        None => Ok((default, Origin::Default(key))),
    }
}

fn limit_setting(
    key: &'static str,
    flag: &Option<String>,
    file: Option<&toml::Table>,
    default: u32,
) -> Result<(u32, Origin), UsageError> {
    match pick(key, flag, file) {
        Some(raw) => {
            let n = to_u64(raw, "a positive integer")?;
            let n = u32::try_from(n)
                .map_err(|_| raw.error(format_args!("must be at most {}, got {n}", u32::MAX)))?;
            Ok((n, raw.origin()))
        }
        None => Ok((default, Origin::Default(key))),
    }
}

fn resolve_run(args: &RunArgs, file: Option<&toml::Table>) -> Result<RunSettings, UsageError> {
    // Required settings first, so that all missing ones are named at once.
    let id_raw = pick("id", &args.id, file);
    let voters_raw = pick("voters", &args.voters, file);
    let interface_raw = pick("interface", &args.interface, file);
    let missing: Vec<&str> = [
        ("--id N", id_raw.is_none()),
        ("--voters ID,ID,...", voters_raw.is_none()),
        ("--interface NAME", interface_raw.is_none()),
    ]
    .iter()
    .filter(|(_, missing)| *missing)
    .map(|(flag, _)| *flag)
    .collect();
    let (Some(id_raw), Some(voters_raw), Some(interface_raw)) = (id_raw, voters_raw, interface_raw)
    else {
        return Err(UsageError::new(format!(
            "error: missing required setting{}: {} (as flags or as keys in the --config file)",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    };

    let id = to_u64(
        id_raw,
        "an integer from 1 to 18446744073709551614 (the node id)",
    )?;
    let id = check_id(id_raw, id)?;
    let voters = to_voters(voters_raw)?;
    let interface = to_interface(interface_raw)?;

    let group = match pick("group", &args.group, file) {
        Some(raw) => to_group(raw)?,
        None => DEFAULT_GROUP
            .parse()
            .expect("default group is a valid address"),
    };

    let cluster = match pick("cluster", &args.cluster, file) {
        Some(raw) => {
            let n = to_u64(raw, "an integer from 0 to 4294967295")?;
            u32::try_from(n).map_err(|_| {
                raw.error(format_args!(
                    "expected an integer from 0 to 4294967295, got {n}"
                ))
            })?
        }
        None => 0,
    };

    // --zxid / --zxid-file: one setting, flags over file, both in one layer is an error.
    let zxid = if args.zxid.is_some() || args.zxid_file.is_some() {
        if args.zxid.is_some() && args.zxid_file.is_some() {
            return Err(UsageError::new(
                "error: --zxid and --zxid-file cannot both be given",
            ));
        }
        match &args.zxid {
            Some(text) => {
                ZxidSource::Fixed(to_u64(Raw::Flag("zxid", text), "a non-negative integer")?)
            }
            None => ZxidSource::File(
                path_setting("zxid-file", &args.zxid_file, None)?.expect("checked above"),
            ),
        }
    } else {
        let in_file = file.map_or((false, false), |t| {
            (t.contains_key("zxid"), t.contains_key("zxid-file"))
        });
        match in_file {
            (true, true) => {
                return Err(UsageError::new(
                    "error: config keys \"zxid\" and \"zxid-file\" cannot both be given",
                ))
            }
            (true, false) => ZxidSource::Fixed(to_u64(
                Raw::File("zxid", &file.expect("present")["zxid"]),
                "a non-negative integer",
            )?),
            (false, true) => {
                ZxidSource::File(path_setting("zxid-file", &None, file)?.expect("present"))
            }
            (false, false) => ZxidSource::default(),
        }
    };

    let data_dir = path_setting("data-dir", &args.data_dir, file)?;
    let state_file = path_setting("state-file", &args.state_file, file)?;

    let on_change = match pick("on-change", &args.on_change, file) {
        Some(raw) => {
            let cmd = to_string(raw)?;
            if cmd.trim().is_empty() {
                return Err(raw.error("the command is empty"));
            }
            Some(cmd.to_string())
        }
        None => None,
    };

    let (hook_timeout, hook_origin) = duration_setting(
        "hook-timeout",
        &args.hook_timeout,
        file,
        DEFAULT_HOOK_TIMEOUT,
    )?;
    if hook_timeout.is_zero() {
        return Err(bad(hook_origin, "must be greater than 0"));
    }

    let (tick, tick_origin) = duration_setting("tick", &args.tick, file, DEFAULT_TICK)?;
    if tick.is_zero() {
        return Err(bad(tick_origin, "must be greater than 0"));
    }
    if tick > MAX_TICK {
        return Err(bad(
            tick_origin,
            format_args!("must be at most {MAX_TICK:?}, got {tick:?}"),
        ));
    }

    let (sync_limit, sync_origin) =
        limit_setting("sync-limit", &args.sync_limit, file, DEFAULT_SYNC_LIMIT)?;
    if sync_limit < 2 {
        return Err(bad(
            sync_origin,
            format_args!("must be at least 2, got {sync_limit}"),
        ));
    }
    let (init_limit, init_origin) =
        limit_setting("init-limit", &args.init_limit, file, DEFAULT_INIT_LIMIT)?;
    if init_limit < 2 || init_limit < sync_limit {
        return Err(bad(
            init_origin,
            format_args!(
                "must be at least 2 and at least sync-limit ({sync_limit}), got {init_limit}"
            ),
        ));
    }

    let (max_notification_interval, mni_origin) = duration_setting(
        "max-notification-interval",
        &args.max_notification_interval,
        file,
        DEFAULT_MAX_NOTIFICATION_INTERVAL,
    )?;
    if max_notification_interval.is_zero() {
        return Err(bad(mni_origin, "must be greater than 0"));
    }
    if max_notification_interval > MAX_MAX_NOTIFICATION_INTERVAL {
        return Err(bad(
            mni_origin,
            format_args!(
                "must be at most {MAX_MAX_NOTIFICATION_INTERVAL:?}, got {max_notification_interval:?}"
            ),
        ));
    }
    let (finalize_wait, fw_origin) = duration_setting(
        "finalize-wait",
        &args.finalize_wait,
        file,
        DEFAULT_FINALIZE_WAIT,
    )?;
    if finalize_wait.is_zero() {
        return Err(bad(fw_origin, "must be greater than 0"));
    }
    if finalize_wait >= max_notification_interval {
        return Err(bad(
            fw_origin,
            format_args!(
                "must be less than max-notification-interval ({max_notification_interval:?}), \
                 got {finalize_wait:?}"
            ),
        ));
    }

    let keys = match path_setting("key-file", &args.key_file, file)? {
        Some(path) => read_key_file(
            &path,
            if args.key_file.is_some() {
                "--key-file"
            } else {
                "config key \"key-file\""
            },
        )?,
        None => KeySet::disabled(),
    };

    Ok(RunSettings {
        id,
        voters,
        interface,
        group,
        cluster,
        zxid,
        data_dir,
        state_file,
        on_change,
        hook_timeout,
        tick,
        sync_limit,
        init_limit,
        finalize_wait,
        max_notification_interval,
        keys,
    })
}

/// Read and check a key file. Refused (exit 2): unreadable, readable by every user,
/// malformed, short or weak keys. Group-readable is fine (a root-owned file, group votecast).
fn read_key_file(path: &Path, origin: &str) -> Result<KeySet, UsageError> {
    use std::os::unix::fs::PermissionsExt;
    let problem = |what: fmt::Arguments<'_>| {
        UsageError::new(format!("error: {origin} {}: {what}", path.display()))
    };
    let metadata = std::fs::metadata(path)
        .map_err(|e| problem(format_args!("cannot read the key file: {e}")))?;
    if metadata.permissions().mode() & 0o004 != 0 {
        return Err(problem(format_args!(
            "the key file is readable by every user; restrict it (chmod o-rwx)"
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem(format_args!("cannot read the key file: {e}")))?;
    auth::parse_key_file(&text).map_err(|e| problem(format_args!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const BASE: &[&str] = &["--id", "1", "--voters", "1,2,3", "--interface", "eth0"];

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        let mut all = vec![OsString::from("votecast")];
        all.extend(args.iter().map(OsString::from));
        parse_command_line(all)
    }

    fn run(args: &[&str]) -> Result<RunSettings, UsageError> {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        match parse(&all)? {
            Command::Run(s) => Ok(s),
            other => panic!("expected run, got {other:?}"),
        }
    }

    fn run_err(args: &[&str]) -> String {
        match run(args) {
            Ok(s) => panic!("expected an error for {args:?}, got {s:?}"),
            Err(e) => {
                assert!(!e.is_help);
                e.message
            }
        }
    }

    /// A temporary config file, removed on drop.
    struct TempConfig(PathBuf);

    impl TempConfig {
        fn new(text: &str) -> TempConfig {
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "votecast-config-test-{}-{}.toml",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, text).unwrap();
            TempConfig(path)
        }

        fn arg(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempConfig {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn with_base(extra: &[&str]) -> Vec<String> {
        BASE.iter().chain(extra).map(|s| s.to_string()).collect()
    }

    fn run_owned(args: &[String]) -> Result<RunSettings, UsageError> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&refs)
    }

    #[test]
    fn defaults() {
        let s = run(BASE).unwrap();
        assert_eq!(
            s,
            RunSettings {
                id: 1,
                voters: vec![1, 2, 3],
                interface: "eth0".into(),
                group: "239.192.77.77:7277".parse().unwrap(),
                cluster: 0,
                zxid: ZxidSource::Fixed(0),
                data_dir: None,
                state_file: None,
                on_change: None,
                hook_timeout: Duration::from_secs(10),
                tick: Duration::from_millis(50),
                sync_limit: 6,
                init_limit: 10,
                finalize_wait: Duration::from_millis(50),
                max_notification_interval: Duration::from_secs(2),
                keys: KeySet::disabled(),
            }
        );
        assert!(!s.is_observer());
    }

    #[test]
    fn all_flags() {
        let s = run(&[
            "--id",
            "7",
            "--voters",
            "3, 1,2",
            "--interface",
            "br-lan",
            "--group",
            "[ff02::1:77]:7300",
            "--cluster",
            "9",
            "--zxid-file",
            "/var/lib/app/zxid",
            "--data-dir",
            "/var/lib/votecast",
            "--state-file",
            "/run/votecast.json",
            "--on-change",
            "logger changed",
            "--hook-timeout",
            "1500ms",
            "--tick",
            "100ms",
            "--sync-limit",
            "3",
            "--init-limit",
            "5",
            "--finalize-wait",
            "200ms",
            "--max-notification-interval",
            "1m",
        ])
        .unwrap();
        assert_eq!(s.id, 7);
        assert_eq!(s.voters, vec![1, 2, 3]);
        assert!(s.is_observer());
        assert_eq!(s.interface, "br-lan");
        assert_eq!(s.group, "[ff02::1:77]:7300".parse().unwrap());
        assert_eq!(s.cluster, 9);
        assert_eq!(s.zxid, ZxidSource::File("/var/lib/app/zxid".into()));
        assert_eq!(s.data_dir, Some("/var/lib/votecast".into()));
        assert_eq!(s.state_file, Some("/run/votecast.json".into()));
        assert_eq!(s.on_change.as_deref(), Some("logger changed"));
        assert_eq!(s.hook_timeout, Duration::from_millis(1500));
        assert_eq!(s.tick, Duration::from_millis(100));
        assert_eq!((s.sync_limit, s.init_limit), (3, 5));
        assert_eq!(s.finalize_wait, Duration::from_millis(200));
        assert_eq!(s.max_notification_interval, Duration::from_secs(60));
    }

    #[test]
    fn observer_detection() {
        assert!(!run(BASE).unwrap().is_observer());
        let s = run(&["--id", "4", "--voters", "1,2,3", "--interface", "eth0"]).unwrap();
        assert!(s.is_observer());
    }

    #[test]
    fn ipv6_group() {
        let s = run(&with_base(&["--group", "[ff02::1:77]:7277"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>())
        .unwrap();
        assert!(s.group.is_ipv6());
        assert_eq!(s.group.port(), 7277);
    }

    #[test]
    fn missing_required_flags_are_named() {
        let msg = run_err(&[]);
        for flag in ["--id", "--voters", "--interface"] {
            assert!(msg.contains(flag), "{msg}");
        }
        let msg = run_err(&["--voters", "1", "--interface", "eth0"]);
        assert!(msg.contains("--id"), "{msg}");
        assert!(!msg.contains("--voters"), "{msg}");
        let msg = run_err(&["--id", "1", "--interface", "eth0"]);
        assert!(msg.contains("--voters"), "{msg}");
        let msg = run_err(&["--id", "1", "--voters", "1"]);
        assert!(msg.contains("--interface"), "{msg}");
    }

    /// (key, bad flag value, bad TOML value, expected fragment of the message)
    const BAD: &[(&str, &str, &str, &str)] = &[
        ("id", "abc", "\"abc\"", "expected an integer"),
        ("id", "0", "0", "id 0 is not allowed"),
        (
            "id",
            "18446744073709551615",
            "\"18446744073709551615\"",
            "reserved",
        ),
        ("id", "-1", "-1", "expected an integer"),
        ("voters", "1,x", "[1, \"x\"]", "not an id"),
        ("voters", "1,0", "[1, 0]", "id 0 is not allowed"),
        ("voters", "1,2,1", "[1, 2, 1]", "listed more than once"),
        ("voters", "", "[]", "empty"),
        ("voters", "1,,2", "true", "expected"),
        ("interface", "", "\"\"", "empty"),
        ("interface", "averyveryverylongname0", "3", ""),
        (
            "group",
            "10.0.0.1:7277",
            "\"10.0.0.1:7277\"",
            "not a multicast address",
        ),
        ("group", "239.1.1.1", "\"239.1.1.1\"", "expected ADDR:PORT"),
        ("group", "239.1.1.1:0", "\"239.1.1.1:0\"", "port 0"),
        ("cluster", "4294967296", "4294967296", "4294967295"),
        ("cluster", "x", "1.5", "expected an integer"),
        ("zxid", "x", "\"x\"", "expected a non-negative integer"),
        ("data-dir", "", "5", ""),
        ("state-file", "", "false", ""),
        ("zxid-file", "", "[1]", ""),
        ("on-change", " ", "\"\"", "empty"),
        (
            "hook-timeout",
            "10",
            "10",
            "expected a duration such as 50ms",
        ),
        ("hook-timeout", "0s", "\"0s\"", "greater than 0"),
        ("tick", "5", "5", "expected a duration such as 50ms"),
        ("tick", "0ms", "\"0ms\"", "greater than 0"),
        ("tick", "11s", "\"11s\"", "at most 10s"),
        ("tick", "5x", "\"5x\"", "unknown unit"),
        (
            "sync-limit",
            "abc",
            "\"abc\"",
            "expected a positive integer, got \"abc\"",
        ),
        ("sync-limit", "1", "1", "at least 2"),
        ("init-limit", "5", "5", "at least sync-limit"),
        ("init-limit", "x", "1.0", "expected a positive integer"),
        (
            "finalize-wait",
            "2s",
            "\"2s\"",
            "less than max-notification-interval",
        ),
        ("finalize-wait", "0ms", "\"0ms\"", "greater than 0"),
        ("max-notification-interval", "61s", "\"61s\"", "at most 60s"),
        (
            "max-notification-interval",
            "0s",
            "\"0s\"",
            "greater than 0",
        ),
        ("max-notification-interval", "2", "2", "expected a duration"),
    ];

    #[test]
    fn bad_flag_values_name_the_flag() {
        for (key, flag_value, _, fragment) in BAD {
            let flag = format!("--{key}");
            // The required flags are given again only when they are not the one under test.
            let mut args: Vec<String> = Vec::new();
            for pair in BASE.chunks(2) {
                if pair[0] != flag {
                    args.extend(pair.iter().map(|s| s.to_string()));
                }
            }
            args.push(flag.clone());
            args.push(flag_value.to_string());
            let msg = match run_owned(&args) {
                Ok(s) => panic!("{args:?} accepted: {s:?}"),
                Err(e) => e.message,
            };
            assert!(msg.contains(&flag), "{args:?}: {msg}");
            assert!(msg.contains(fragment), "{args:?}: {msg}");
        }
    }

    #[test]
    fn bad_file_values_name_the_key() {
        for (key, _, toml_value, fragment) in BAD {
            let mut text = String::new();
            for (k, v) in [
                ("id", "1"),
                ("voters", "[1, 2, 3]"),
                ("interface", "\"eth0\""),
            ] {
                if k != *key {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
            text.push_str(&format!("{key} = {toml_value}\n"));
            let cfg = TempConfig::new(&text);
            let msg = match run(&["--config", cfg.arg()]) {
                Ok(s) => panic!("{text} accepted: {s:?}"),
                Err(e) => e.message,
            };
            let named = format!("config key \"{key}\"");
            assert!(msg.contains(&named), "{text}: {msg}");
            assert!(msg.contains(fragment), "{text}: {msg}");
        }
    }

    #[test]
    fn spec_example_message() {
        let cfg =
            TempConfig::new("id = 1\nvoters = [1]\ninterface = \"eth0\"\nsync-limit = \"abc\"\n");
        let msg = run_err(&["--config", cfg.arg()]);
        assert!(
            msg.contains(r#"config key "sync-limit": expected a positive integer, got "abc""#),
            "{msg}"
        );
        let msg = run_err(&["--id", "1", "--voters", "0,1", "--interface", "eth0"]);
        assert!(msg.contains("--voters: id 0 is not allowed"), "{msg}");
    }

    #[test]
    fn unknown_file_key() {
        let cfg = TempConfig::new("id = 1\ncolour = \"blue\"\n");
        let msg = run_err(&["--config", cfg.arg()]);
        assert!(msg.contains("\"colour\""), "{msg}");
        assert!(msg.contains("unknown key"), "{msg}");
        let cfg = TempConfig::new("sync_limit = 3\n");
        let msg = run_err(&["--config", cfg.arg()]);
        assert!(msg.contains("\"sync_limit\""), "{msg}");
        assert!(msg.contains("did you mean \"sync-limit\""), "{msg}");
    }

    #[test]
    fn unreadable_and_invalid_config_files() {
        let msg = run_err(&["--config", "/nonexistent/votecast.toml"]);
        assert!(msg.contains("--config"), "{msg}");
        assert!(msg.contains("/nonexistent/votecast.toml"), "{msg}");
        let cfg = TempConfig::new("id = = 1\n");
        let msg = run_err(&["--config", cfg.arg()]);
        assert!(msg.contains("not valid TOML"), "{msg}");
    }

    #[test]
    fn file_only_and_flags_override_file() {
        let cfg = TempConfig::new(
            "id = 2\nvoters = [3, 2, 1]\ninterface = \"eth1\"\ngroup = \"[ff02::1:77]:7277\"\n\
             cluster = 4\nzxid = 17\ndata-dir = \"/data\"\nstate-file = \"/run/s.json\"\n\
             on-change = \"true\"\nhook-timeout = \"3s\"\ntick = \"20ms\"\nsync-limit = 4\n\
             init-limit = 8\nfinalize-wait = \"30ms\"\nmax-notification-interval = \"5s\"\n",
        );
        let s = run(&["--config", cfg.arg()]).unwrap();
        assert_eq!(s.id, 2);
        assert_eq!(s.voters, vec![1, 2, 3]);
        assert_eq!(s.interface, "eth1");
        assert!(s.group.is_ipv6());
        assert_eq!(s.cluster, 4);
        assert_eq!(s.zxid, ZxidSource::Fixed(17));
        assert_eq!(s.data_dir, Some("/data".into()));
        assert_eq!(s.state_file, Some("/run/s.json".into()));
        assert_eq!(s.on_change.as_deref(), Some("true"));
        assert_eq!(s.hook_timeout, Duration::from_secs(3));
        assert_eq!(s.tick, Duration::from_millis(20));
        assert_eq!((s.sync_limit, s.init_limit), (4, 8));
        assert_eq!(s.finalize_wait, Duration::from_millis(30));
        assert_eq!(s.max_notification_interval, Duration::from_secs(5));

        let s = run(&[
            "--config",
            cfg.arg(),
            "--id",
            "5",
            "--voters",
            "5,6",
            "--tick",
            "40ms",
            "--sync-limit",
            "2",
            "--zxid-file",
            "/z",
            "--data-dir",
            "/other",
        ])
        .unwrap();
        assert_eq!(s.id, 5);
        assert_eq!(s.voters, vec![5, 6]);
        assert_eq!(s.interface, "eth1");
        assert_eq!(s.tick, Duration::from_millis(40));
        assert_eq!((s.sync_limit, s.init_limit), (2, 8));
        assert_eq!(s.zxid, ZxidSource::File("/z".into()));
        assert_eq!(s.data_dir, Some("/other".into()));
        assert_eq!(s.cluster, 4);
    }

    #[test]
    fn zxid_and_zxid_file_conflict() {
        let msg = run_err(
            &with_base(&["--zxid", "1", "--zxid-file", "/z"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(
            msg.contains("--zxid") && msg.contains("--zxid-file"),
            "{msg}"
        );
        let cfg = TempConfig::new("zxid = 1\nzxid-file = \"/z\"\n");
        let mut args = with_base(&["--config"]);
        args.push(cfg.arg().to_string());
        let msg = run_owned(&args).unwrap_err().message;
        assert!(
            msg.contains("\"zxid\"") && msg.contains("\"zxid-file\""),
            "{msg}"
        );
    }

    #[test]
    fn too_many_voters() {
        let list: Vec<String> = (1..=65).map(|i| i.to_string()).collect();
        let list = list.join(",");
        let msg = run_err(&["--id", "1", "--voters", &list, "--interface", "eth0"]);
        assert!(
            msg.contains("--voters") && msg.contains("at most 64"),
            "{msg}"
        );
        let list: Vec<String> = (1..=64).map(|i| i.to_string()).collect();
        let list = list.join(",");
        assert_eq!(
            run(&["--id", "1", "--voters", &list, "--interface", "eth0"])
                .unwrap()
                .voters
                .len(),
            64
        );
    }

    #[test]
    fn status_and_demo() {
        assert_eq!(
            parse(&["status", "--state-file", "/run/v.json"]).unwrap(),
            Command::Status {
                state_file: "/run/v.json".into(),
                json: false
            }
        );
        assert_eq!(
            parse(&["status", "--state-file", "/run/v.json", "--json"]).unwrap(),
            Command::Status {
                state_file: "/run/v.json".into(),
                json: true
            }
        );
        let msg = parse(&["status"]).unwrap_err().message;
        assert!(msg.contains("--state-file"), "{msg}");
        assert_eq!(parse(&["demo"]).unwrap(), Command::Demo { nodes: 5 });
        assert_eq!(
            parse(&["demo", "--nodes", "3"]).unwrap(),
            Command::Demo { nodes: 3 }
        );
        let msg = parse(&["demo", "--nodes", "0"]).unwrap_err().message;
        assert!(msg.contains("--nodes"), "{msg}");
    }

    #[test]
    fn help_and_usage_errors() {
        let e = parse(&["--help"]).unwrap_err();
        assert!(e.is_help);
        assert!(e.message.contains("run"), "{}", e.message);
        let e = parse(&["run", "--help"]).unwrap_err();
        assert!(e.is_help);
        assert!(e.message.contains("--max-notification-interval"));
        assert!(parse(&["--version"]).unwrap_err().is_help);
        let e = parse(&[]).unwrap_err();
        assert!(!e.is_help);
        let e = parse(&["run", "--log-level", "debug"]).unwrap_err();
        assert!(!e.is_help);
        assert!(e.message.contains("--log-level"), "{}", e.message);
        assert!(e.message.contains("RUST_LOG"), "{}", e.message);
        let e = parse(&["run", "--id", "1", "--id", "2"]).unwrap_err();
        assert!(!e.is_help);
        assert!(e.message.contains("--id"), "{}", e.message);
    }
}
