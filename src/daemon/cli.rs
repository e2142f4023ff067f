//! The command line: the clap definitions of every subcommand and [`parse_command_line`],
//! which turns `argv` into a [`Command`] or a [`UsageError`] (exit 2).
//!
//! The command line is a contract:
//!
//! ```text
//! votecast run --id N --voters 1,2,3 --interface NAME [--group ADDR:PORT]
//!              [--peers ADDR[:PORT],...] [--cluster N]
//!              [--zxid N | --zxid-file PATH] [--data-dir DIR] [--state-file PATH]
//!              [--metrics-file PATH]
//!              [--on-change CMD] [--hook-timeout DURATION] [--tick DURATION]
//!              [--sync-limit N] [--init-limit N] [--finalize-wait DURATION]
//!              [--max-notification-interval DURATION] [--key-file PATH] [--config FILE]
//!              [--track CMD]... [--track-interface] [--track-interval DURATION]
//!              [--track-timeout DURATION] [--track-fall N] [--track-rise N]
//!              [--vip ADDR/PREFIX ...] [--vip-announce-count N]
//!              [--vip-announce-interval DURATION]
//! votecast release-vip (--config FILE | --interface NAME --vip ADDR/PREFIX ...)
//! votecast check-config [--quiet] [run's flags...]
//! votecast status --state-file PATH [--json]
//! votecast demo [--nodes N]
//! votecast bench [--nodes 3,5,7,9] [--reps N] [--json PATH] [--footprint]
//! votecast completions SHELL
//! votecast man DIR          (hidden: writes the man pages, for packaging)
//! ```
//!
//! `run` values are taken as text here and converted, merged with the `--config` file and
//! checked in [`super::settings`], so every message has the same shape and names the flag
//! or key.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory, Parser, Subcommand};
use votecast_core::election::MAX_VOTERS;

use super::settings::input_file::{self, MAX_CONFIG_LEN};
use super::settings::{self, RunSettings};
use crate::vip::VipAddr;

/// Nodes of `votecast demo` when `--nodes` is not given.
const DEFAULT_DEMO_NODES: usize = 5;

/// What the command line asked for.
// Parsed once at start-up; boxing `RunSettings` would only make matching clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `votecast run ...`: run the agent.
    Run(RunSettings),
    /// `votecast check-config [--quiet] ...`: the settings `run` would use, checked.
    CheckConfig { settings: RunSettings, quiet: bool },
    /// `votecast status --state-file PATH [--json]`.
    Status { state_file: PathBuf, json: bool },
    /// `votecast demo [--nodes N]`.
    Demo { nodes: usize },
    /// `votecast bench [--nodes 3,5,7,9] [--reps N] [--json PATH] [--footprint]`.
    Bench(crate::bench::BenchSettings),
    /// `votecast release-vip`: remove these floating addresses from the interface.
    ReleaseVip {
        interface: String,
        vips: Vec<VipAddr>,
    },
    /// `votecast completions SHELL`: the completion script on stdout.
    Completions { shell: clap_complete::Shell },
    /// `votecast man DIR`: write the man pages into DIR.
    Man { dir: PathBuf },
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

/// Longest line of an error message: a value quoted from a huge argument or config line
/// is cut here, so an error is never megabytes long.
pub const MAX_MESSAGE_LINE: usize = 500;

impl UsageError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        UsageError {
            message: clip_lines(message.into()),
            is_help: false,
        }
    }
}

/// `message` with every line longer than [`MAX_MESSAGE_LINE`] bytes cut, saying how much
/// was left out.
fn clip_lines(message: String) -> String {
    if message.lines().all(|line| line.len() <= MAX_MESSAGE_LINE) {
        return message;
    }
    let mut clipped = String::new();
    for (n, line) in message.lines().enumerate() {
        if n > 0 {
            clipped.push('\n');
        }
        if line.len() <= MAX_MESSAGE_LINE {
            clipped.push_str(line);
            continue;
        }
        let mut end = MAX_MESSAGE_LINE;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        clipped.push_str(&line[..end]);
        clipped.push_str(&format!("... ({} more bytes)", line.len() - end));
    }
    clipped
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UsageError {}

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
    /// Check the settings `run` would use, without starting a node, and print them.
    ///
    /// Takes run's flags (and --config), checks them as run does, including the key file's
    /// contents and permissions and the zxid file, and warns if the interface is missing
    /// or unusable (run waits for it). Prints the effective settings as a config file.
    ///
    /// Exit status: 0 valid (warnings on stderr), 2 invalid (the problem on stderr).
    CheckConfig(Box<CheckConfigArgs>),
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
    /// Remove the floating addresses (--vip) from the interface and exit, e.g. as
    /// systemd's ExecStopPost= after any exit of `run`.
    ///
    /// Exit status: 0 when none of them is left, 1 when the kernel refused a removal.
    ReleaseVip(ReleaseArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    ///
    /// bash: votecast completions bash > /etc/bash_completion.d/votecast;
    /// zsh: into a directory of $fpath as _votecast; fish: into
    /// ~/.config/fish/completions/votecast.fish. The Debian package installs them.
    Completions {
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (votecast.1 and votecast-SUBCOMMAND.1) into DIR.
    #[command(hide = true)]
    Man {
        /// Directory to write the pages into (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// The clap definition of the whole command line (for the man pages and completions).
pub fn clap_command() -> clap::Command {
    Cli::command()
}

#[derive(Args, Debug)]
#[command(allow_negative_numbers = true)]
struct CheckConfigArgs {
    /// Print only problems and warnings, not the effective settings.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug, Default)]
pub(crate) struct ReleaseArgs {
    /// The `run` config file: its `interface` and `vip` keys (flags override them).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The interface the addresses are on.
    #[arg(long, value_name = "NAME")]
    pub(crate) interface: Option<String>,
    /// A floating address to remove, ADDR/PREFIX; repeat for several.
    #[arg(long, value_name = "ADDR/PREFIX")]
    pub(crate) vip: Vec<String>,
}

#[derive(Args, Debug, Default)]
#[command(allow_negative_numbers = true)]
pub(crate) struct RunArgs {
    /// TOML file with the same keys as these flags (without dashes); flags override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// This node's id, 1..=18446744073709551614 (required).
    #[arg(long, value_name = "N")]
    pub(crate) id: Option<String>,
    /// Comma-separated ids of the voting members, e.g. 1,2,3 (required). A node whose id is
    /// not listed runs as an observer.
    #[arg(long, value_name = "ID,ID,...")]
    pub(crate) voters: Option<String>,
    /// Network interface to use, e.g. eth0 (required).
    #[arg(long, value_name = "NAME")]
    pub(crate) interface: Option<String>,
    /// Multicast group [default: 239.192.77.77:7277]; IPv6 like [ff02::1:77]:7277 works too.
    /// With --peers only its port (the peers' default) and family are used.
    #[arg(long, value_name = "ADDR:PORT")]
    pub(crate) group: Option<String>,
    /// Send to these addresses by unicast instead of to the group, e.g.
    /// 10.0.0.1,10.0.0.2:7300,[fe80::3]:7277; the port defaults to the group's port. The
    /// list may include this node (skipped); frames from other sources are dropped.
    #[arg(long, value_name = "ADDR[:PORT],...")]
    pub(crate) peers: Option<String>,
    /// Cluster number; frames of other clusters are ignored [default: 0].
    #[arg(long, value_name = "N")]
    pub(crate) cluster: Option<String>,
    /// This node's last zxid [default: 0]. Conflicts with --zxid-file.
    #[arg(long, value_name = "N")]
    pub(crate) zxid: Option<String>,
    /// Read this node's last zxid from a file at start-up. Conflicts with --zxid.
    #[arg(long, value_name = "PATH")]
    pub(crate) zxid_file: Option<PathBuf>,
    /// Directory for durable epochs; without it they are kept in memory only.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Publish the live state as JSON in this file (read by `votecast status`).
    #[arg(long, value_name = "PATH")]
    pub(crate) state_file: Option<PathBuf>,
    /// Write Prometheus metrics to this file (node_exporter's textfile collector).
    #[arg(long, value_name = "PATH")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Shell command run on every state change, with VOTECAST_* variables set.
    #[arg(long, value_name = "CMD")]
    pub(crate) on_change: Option<String>,
    /// Time limit for one run of --on-change [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) hook_timeout: Option<String>,
    /// Length of one tick [default: 50ms].
    #[arg(long, value_name = "DURATION")]
    pub(crate) tick: Option<String>,
    /// Ticks a follower may go without hearing from its leader [default: 6].
    #[arg(long, value_name = "N")]
    pub(crate) sync_limit: Option<String>,
    /// Ticks a new leader has to gather a quorum of followers [default: 10].
    #[arg(long, value_name = "N")]
    pub(crate) init_limit: Option<String>,
    /// Wait for better votes once a quorum agrees [default: 50ms].
    #[arg(long, value_name = "DURATION")]
    pub(crate) finalize_wait: Option<String>,
    /// Upper bound of the notification back-off [default: 2s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) max_notification_interval: Option<String>,
    /// File with the shared secret(s) that authenticate frames: lines "ID SECRET", the
    /// first key signs; SECRET is at least 32 random bytes in hex or base64.
    #[arg(long, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
    /// Health check: a shell command that exits 0 while this node is fit to lead
    /// (repeatable). An unhealthy node keeps voting but is never elected; a leader that
    /// turns unhealthy hands over.
    #[arg(long, value_name = "CMD")]
    pub(crate) track: Vec<String>,
    /// Health check: healthy only while --interface has carrier.
    #[arg(long)]
    pub(crate) track_interface: bool,
    /// Time between the starts of two runs of each health check [default: 1s].
    #[arg(long, value_name = "DURATION")]
    pub(crate) track_interval: Option<String>,
    /// A health check still running after this fails, its process group killed
    /// [default: the interval].
    #[arg(long, value_name = "DURATION")]
    pub(crate) track_timeout: Option<String>,
    /// Consecutive failures that make a check unhealthy [default: 2].
    #[arg(long, value_name = "N")]
    pub(crate) track_fall: Option<String>,
    /// Consecutive successes that make it healthy again [default: 2].
    #[arg(long, value_name = "N")]
    pub(crate) track_rise: Option<String>,
    /// Floating address the leader holds on --interface while its lease runs, e.g.
    /// 192.168.1.10/24 or fd00::10/64; repeat for several.
    #[arg(long, value_name = "ADDR/PREFIX")]
    pub(crate) vip: Vec<String>,
    /// Gratuitous ARP / neighbour advertisements sent per floating address after adding
    /// it [default: 3].
    #[arg(long, value_name = "N")]
    pub(crate) vip_announce_count: Option<String>,
    /// Time between those announcements [default: 100ms].
    #[arg(long, value_name = "DURATION")]
    pub(crate) vip_announce_interval: Option<String>,
}

/// Parses the whole command line (`args` includes the program name, like `std::env::args_os`).
///
/// Reads the `--config` file, the `--key-file` and the `--zxid-file` if given (each a
/// regular file of bounded size). Does not touch anything else.
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
            if !is_help {
                message = clip_lines(message);
            }
            return Err(UsageError { message, is_help });
        }
    };
    match cli.command {
        CliCommand::Run(args) => resolve_run(&args).map(Command::Run),
        CliCommand::CheckConfig(args) => Ok(Command::CheckConfig {
            settings: resolve_run(&args.run)?,
            quiet: args.quiet,
        }),
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
        CliCommand::Bench(args) => args
            .resolve()
            .map(Command::Bench)
            .map_err(|e| UsageError::new(e.to_string())),
        CliCommand::Completions { shell } => Ok(Command::Completions { shell }),
        CliCommand::Man { dir } => Ok(Command::Man { dir }),
        CliCommand::ReleaseVip(args) => resolve_release(&args),
    }
}

/// `release-vip`: the interface and addresses from the flags, else from the `run` config
/// file, read and checked like the daemon reads it.
fn resolve_release(args: &ReleaseArgs) -> Result<Command, UsageError> {
    use super::settings::value::{self, Raw};
    let table = match &args.config {
        Some(path) => Some(read_config_file(path)?),
        None => None,
    };
    let key = |k: &'static str| {
        table
            .as_ref()
            .and_then(|t| t.get(k))
            .map(|v| Raw::File(k, v))
    };
    let interface = match (&args.interface, key("interface")) {
        (Some(name), _) => Some(value::to_interface(Raw::Flag("interface", name))?),
        (None, Some(raw)) => Some(value::to_interface(raw)?),
        (None, None) => None,
    };
    let vips = match (args.vip.is_empty(), key("vip")) {
        (false, _) => Some(value::to_vips(Raw::FlagList("vip", &args.vip))?),
        (true, Some(raw)) => Some(value::to_vips(raw)?),
        (true, None) => None,
    };
    match (interface, vips) {
        (Some(interface), Some(vips)) => Ok(Command::ReleaseVip { interface, vips }),
        (None, _) => Err(UsageError::new(
            "error: missing required setting: --interface NAME (as a flag or as a key in the \
             --config file)",
        )),
        (_, None) => Err(UsageError::new(
            "error: missing required setting: --vip ADDR/PREFIX (as flags or as the key \"vip\" \
             in the --config file)",
        )),
    }
}

/// `run`'s settings: the `--config` file (if any) under the flags, checked.
fn resolve_run(args: &RunArgs) -> Result<RunSettings, UsageError> {
    let table = match &args.config {
        Some(path) => Some(read_config_file(path)?),
        None => None,
    };
    settings::resolve(args, table.as_ref())
}

/// Reads the `--config` file as a TOML table and refuses unknown keys (naming the key and
/// the file, with a hint when only `_` vs `-` differs). The file must be a regular file of
/// at most [`MAX_CONFIG_LEN`] bytes.
fn read_config_file(path: &Path) -> Result<toml::Table, UsageError> {
    let (text, _) = input_file::read_text(path, MAX_CONFIG_LEN)
        .map_err(|e| UsageError::new(format!("error: --config: {}: {e}", path.display())))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        UsageError::new(format!(
            "error: --config: {} is not valid TOML: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })?;
    for key in table.keys() {
        if !settings::is_file_key(key) {
            let dashed = key.replace('_', "-");
            let hint = if settings::is_file_key(&dashed) {
                format!(" (did you mean \"{dashed}\"?)")
            } else {
                String::new()
            };
            return Err(UsageError::new(format!(
                "error: config key {key:?}: unknown key in {}{hint}; known keys: {}",
                path.display(),
                settings::file_keys().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use votecast_core::election::Config;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        let mut all = vec![OsString::from("votecast")];
        all.extend(args.iter().map(OsString::from));
        parse_command_line(all)
    }

    fn run_err(args: &[&str]) -> String {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        match parse(&all) {
            Ok(c) => panic!("expected an error for {args:?}, got {c:?}"),
            Err(e) => {
                assert!(!e.is_help);
                e.message
            }
        }
    }

    /// `50ms`, `2s`: how the help text writes a default.
    fn shown(d: Duration) -> String {
        match d.as_millis() {
            ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
            ms => format!("{ms}ms"),
        }
    }

    #[test]
    fn help_states_the_cores_defaults() {
        let help = parse(&["run", "--help"]).unwrap_err().message;
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        let core = Config::new(1, &[1]).unwrap();
        for (text, default) in [
            ("Length of one tick", shown(core.tick)),
            ("from its leader", core.sync_limit.to_string()),
            ("followers", core.init_limit.to_string()),
            ("once a quorum agrees", shown(core.finalize_wait)),
            (
                "notification back-off",
                shown(core.max_notification_interval),
            ),
            (
                "run of --on-change",
                shown(super::settings::DEFAULT_HOOK_TIMEOUT),
            ),
        ] {
            let at = help
                .find(text)
                .unwrap_or_else(|| panic!("{text:?} in {help}"));
            let rest = &help[at..];
            let stated = &rest[rest.find("[default: ").expect("a default") + 10..];
            let stated = &stated[..stated.find(']').expect("]")];
            assert_eq!(stated, default, "{text}");
        }
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
}
