//! [`DaemonError`]: every failure above the core, typed, with its source and the file,
//! interface or flag it concerns, and the exit status it maps to.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use votecast_core::election::ConfigError;

use super::cli::UsageError;
use super::persist::PersistError;

/// Exit status for bad usage or configuration.
pub const EXIT_USAGE: u8 = 2;
/// Exit status for a failure while running.
pub const EXIT_RUNTIME: u8 = 1;

/// A failure of the daemon. [`exit_code`](Self::exit_code) says which exit status it means.
///
/// The messages name what failed (the file, the interface, the flag) and keep the wording
/// that the end-to-end tests and operators rely on.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A command line or config file that cannot be run. The message names the flag or key.
    #[error("{0}")]
    Usage(#[from] UsageError),
    /// Settings the core refuses (a rule the settings check did not catch first).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `--interface` names no interface.
    #[error("interface {interface:?}: not found ({source})")]
    InterfaceNotFound {
        interface: String,
        source: nix::Error,
    },
    /// Listing the interface addresses failed.
    #[error("listing interface addresses: {0}")]
    ListInterfaces(#[source] nix::Error),
    /// An IPv4 group needs an IPv4 address on the interface to send from.
    #[error("interface {interface} has no IPv4 address, needed for an IPv4 multicast group")]
    NoIpv4Address { interface: String },
    /// `--peers` needs an address of the peers' family on the interface to send from.
    #[error("interface {interface} has no {family} address, needed to send to the --peers")]
    NoPeerAddress {
        interface: String,
        family: &'static str,
    },
    /// The UDP socket could not be created.
    #[error("cannot create a UDP socket: {0}")]
    CreateSocket(#[source] io::Error),
    /// One step of the multicast socket setup failed (`step` names the socket option).
    #[error("{step} on interface {interface} for group {group}: {source}")]
    SocketSetup {
        step: &'static str,
        interface: String,
        group: SocketAddr,
        source: io::Error,
    },
    /// One step of the unicast (`--peers`) socket setup failed (`step` names the option).
    #[error("{step} on interface {interface} for --peers (from {local}): {source}")]
    UnicastSetup {
        step: &'static str,
        interface: String,
        local: SocketAddr,
        source: io::Error,
    },
    /// The event loop's poller or signal handling failed (`what` names the call).
    #[error("{what}: {source}")]
    EventLoop {
        what: &'static str,
        source: io::Error,
    },
    /// `--vip` cannot be managed: its sockets could not be opened (CAP_NET_ADMIN and
    /// CAP_NET_RAW are needed) or the start-up clean-up was refused.
    #[error("floating address (--vip): {what}: {source}")]
    Vip {
        what: &'static str,
        source: io::Error,
    },
    /// `--data-dir` could not be opened or read at start-up.
    #[error(transparent)]
    DataDir(#[from] PersistError),
    /// Durable epochs could not be written: the node stops rather than risk reusing an epoch.
    #[error("cannot persist epochs: {0}")]
    StoreEpochs(#[source] PersistError),
    /// A state file could not be read.
    #[error("cannot read state file {}: {source}", path.display())]
    ReadStateFile { path: PathBuf, source: io::Error },
    /// A state file was read but is not a state file.
    #[error("state file {} is malformed: {problem}", path.display())]
    MalformedStateFile { path: PathBuf, problem: String },
}

impl DaemonError {
    /// The process exit status this error means: 2 for bad usage or configuration, 1 for
    /// everything that fails while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Usage(_) | DaemonError::Config(_) => EXIT_USAGE,
            _ => EXIT_RUNTIME,
        }
    }

    /// Does this error mean that the interface is not (or no longer) usable: absent,
    /// down, without its address, or gone while the socket was set up? Then the daemon
    /// waits for the interface instead of exiting.
    pub fn is_link_unready(&self) -> bool {
        use nix::libc::{EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENODEV, ENXIO};
        match self {
            DaemonError::InterfaceNotFound { .. } | DaemonError::NoIpv4Address { .. } => true,
            DaemonError::SocketSetup { source, .. } => matches!(
                source.raw_os_error(),
                Some(ENODEV | ENXIO | ENETDOWN | ENETUNREACH | EADDRNOTAVAIL)
            ),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_messages() {
        let usage = DaemonError::from(UsageError::new("error: --tick: must be greater than 0"));
        assert_eq!(usage.exit_code(), EXIT_USAGE);
        assert_eq!(usage.to_string(), "error: --tick: must be greater than 0");
        assert_eq!(
            DaemonError::from(ConfigError::ZeroTick).exit_code(),
            EXIT_USAGE
        );
        let setup = DaemonError::SocketSetup {
            step: "IP_MULTICAST_TTL",
            interface: "lo".into(),
            group: "239.1.2.3:7000".parse().unwrap(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(setup.exit_code(), EXIT_RUNTIME);
        let msg = setup.to_string();
        assert!(
            msg.starts_with("IP_MULTICAST_TTL on interface lo for group 239.1.2.3:7000: "),
            "{msg}"
        );
        let read = DaemonError::ReadStateFile {
            path: "/run/x.json".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(std::error::Error::source(&read).is_some());
        assert!(!read.is_link_unready());
        assert!(
            !setup.is_link_unready(),
            "permission denied is not the link"
        );
        let gone = DaemonError::SocketSetup {
            step: "joining the group",
            interface: "lan0".into(),
            group: "239.1.2.3:7000".parse().unwrap(),
            source: io::Error::from_raw_os_error(nix::libc::ENODEV),
        };
        assert!(gone.is_link_unready());
        let no_address = DaemonError::NoIpv4Address {
            interface: "lan0".into(),
        };
        assert!(no_address.is_link_unready());
        assert_eq!(no_address.exit_code(), EXIT_RUNTIME);
        assert!(read.to_string().contains("/run/x.json"));
    }
}
