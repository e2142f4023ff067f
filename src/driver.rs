//! The driver: one UDP multicast socket and a mio event loop around one [`Node`].
//!
//! This is the only layer that reads the clock or touches a socket. Everything it needs
//! (buffers, paths, the socket) is set up before the first frame; per frame it receives
//! into a fixed buffer, hands the bytes to the core, and emits the core's frames into a
//! fixed buffer, so the steady state does not allocate. Persistence requests are written
//! synchronously before any later output, as the core requires.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::path::PathBuf;
use std::time::{Duration, Instant as StdInstant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use crate::daemon::config::{RunSettings, ZxidSource};
use crate::daemon::hooks::{boottime_now_ms, HookRunner, StateChange as HookChange};
use crate::daemon::persist::{DataDir, PersistedEpochs};
use crate::daemon::state_file::{StateFileWriter, StateSnapshot};
use crate::daemon::unix_now_ms;
use votecast_core::auth::Fingerprint;
use votecast_core::election::{
    Config, DatagramError, Epochs, Event, Instant, Node, Output, StateChange,
};
use votecast_core::wire::FRAME_LEN;

const SOCKET: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Larger than a frame, so an oversized datagram arrives truncated and is rejected as
/// the wrong length instead of being mistaken for a frame.
const RECV_BUFFER: usize = 2 * FRAME_LEN;
/// Longest gap between state-file writes while nothing changes.
const STATE_REFRESH: Duration = Duration::from_secs(1);

/// A failure that stops the daemon with exit status 1.
#[derive(Debug)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

fn fail(what: impl fmt::Display) -> RunError {
    RunError(what.to_string())
}

/// Counters the driver keeps in addition to the core's.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    pub sends_dropped: u64,
    pub send_errors: u64,
    /// Frames dropped for a missing or bad authentication tag (for the log rate limit).
    pub unauthentic: u64,
}

/// Open the multicast socket: bound to the group port with SO_REUSEADDR/SO_REUSEPORT so
/// several nodes share a host, joined on `interface` only, sending through `interface`
/// only, TTL / hop limit 1, loopback on (our own frames come back and the core drops them).
pub fn open_multicast_socket(interface: &str, group: SocketAddr) -> Result<Socket, RunError> {
    let index = nix::net::if_::if_nametoindex(interface)
        .map_err(|e| fail(format_args!("interface {interface:?}: not found ({e})")))?;
    let domain = if group.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| fail(format_args!("cannot create a UDP socket: {e}")))?;
    let setup = |what: &str, r: io::Result<()>| {
        r.map_err(|e| {
            fail(format_args!(
                "{what} on interface {interface} for group {group}: {e}"
            ))
        })
    };
    setup("SO_REUSEADDR", socket.set_reuse_address(true))?;
    setup("SO_REUSEPORT", socket.set_reuse_port(true))?;
    match group.ip() {
        IpAddr::V4(addr) => {
            let local = interface_ipv4(interface)?;
            setup(
                "joining the group",
                socket.join_multicast_v4_n(&addr, &InterfaceIndexOrAddress::Index(index)),
            )?;
            setup("IP_MULTICAST_IF", socket.set_multicast_if_v4(&local))?;
            setup("IP_MULTICAST_TTL", socket.set_multicast_ttl_v4(1))?;
            setup("IP_MULTICAST_LOOP", socket.set_multicast_loop_v4(true))?;
        }
        IpAddr::V6(addr) => {
            setup("IPV6_V6ONLY", socket.set_only_v6(true))?;
            setup("joining the group", socket.join_multicast_v6(&addr, index))?;
            setup("IPV6_MULTICAST_IF", socket.set_multicast_if_v6(index))?;
            setup("IPV6_MULTICAST_HOPS", socket.set_multicast_hops_v6(1))?;
            setup("IPV6_MULTICAST_LOOP", socket.set_multicast_loop_v6(true))?;
        }
    }
    // Binding to the group address (not the wildcard) keeps other groups on the same port
    // out of this socket. A link-local IPv6 group needs the interface as its scope.
    let bind_addr = match group {
        SocketAddr::V6(v6) if v6.scope_id() == 0 => {
            SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, index))
        }
        other => other,
    };
    setup(
        "binding the group port",
        socket.bind(&SockAddr::from(bind_addr)),
    )?;
    setup("O_NONBLOCK", socket.set_nonblocking(true))?;
    Ok(socket)
}

/// The first IPv4 address of `interface`: IP_MULTICAST_IF takes an address.
fn interface_ipv4(interface: &str) -> Result<Ipv4Addr, RunError> {
    let addrs = nix::ifaddrs::getifaddrs()
        .map_err(|e| fail(format_args!("listing interface addresses: {e}")))?;
    for ifaddr in addrs {
        if ifaddr.interface_name != interface {
            continue;
        }
        if let Some(sin) = ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            return Ok(sin.ip());
        }
    }
    Err(fail(format_args!(
        "interface {interface} has no IPv4 address, needed for an IPv4 multicast group"
    )))
}

/// Map the daemon's settings onto the core's configuration.
pub fn core_config(settings: &RunSettings) -> Result<Config, RunError> {
    let mut config = Config::new(settings.id, &settings.voters).map_err(fail)?;
    config.cluster = settings.cluster;
    config.tick = settings.tick;
    config.sync_limit = settings.sync_limit;
    config.init_limit = settings.init_limit;
    config.finalize_wait = settings.finalize_wait;
    config.min_notification_interval = settings.finalize_wait;
    config.max_notification_interval = settings.max_notification_interval;
    config.keys = settings.keys.clone();
    config.validate().map_err(fail)?;
    Ok(config)
}

/// Reads `--zxid-file` into a fixed buffer; a missing or malformed file keeps the last
/// good value (logged once per change of condition).
struct ZxidFile {
    path: PathBuf,
    last_good: u64,
    complaining: bool,
}

impl ZxidFile {
    fn read(&mut self) -> u64 {
        use std::io::Read;
        let mut buf = [0u8; 32];
        let result = std::fs::File::open(&self.path).and_then(|mut f| f.read(&mut buf));
        let parsed = match result {
            Ok(n) => core::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or("not a decimal u64"),
            Err(_) => Err("cannot be read"),
        };
        match parsed {
            Ok(zxid) => {
                self.complaining = false;
                self.last_good = zxid;
            }
            Err(why) if !self.complaining => {
                self.complaining = true;
                log::warn!(
                    "zxid file {} {why}; keeping zxid {}",
                    self.path.display(),
                    self.last_good
                );
            }
            Err(_) => {}
        }
        self.last_good
    }
}

/// Everything the loop touches besides the node.
struct Daemon {
    socket: UdpSocket,
    group: SocketAddr,
    data_dir: Option<DataDir>,
    state_file: Option<StateFileWriter>,
    hooks: Option<HookRunner>,
    origin: StdInstant,
    stats: DriverStats,
    last_state_write: Option<Instant>,
    /// The lease end written with it (None: no lease then).
    last_state_valid_until: Option<Instant>,
}

impl Daemon {
    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Act on every pending output of the node, in order.
    fn drain(&mut self, node: &mut Node) -> Result<(), RunError> {
        while let Some(output) = node.poll_output() {
            match output {
                Output::Persist(epochs) => self.persist(epochs)?,
                Output::Event(Event::StateChanged(change)) => self.report(node, change),
                Output::Event(Event::DuplicateId(dup)) => {
                    let quiet = dup.quarantine_until.saturating_duration_since(self.now());
                    log::error!(
                        "node {}: another board sends frames with our id (its incarnation {}, \
                         ours {}): two boards share an id; refusing to lead and staying silent \
                         for {:.1} s after the last such frame. Give each board its own --id.",
                        node.id(),
                        dup.incarnation,
                        node.incarnation(),
                        quiet.as_secs_f64()
                    );
                    self.write_state(node, self.now());
                }
                Output::Transmit(frame) => self.send(&frame.bytes),
            }
        }
        Ok(())
    }

    fn persist(&mut self, epochs: Epochs) -> Result<(), RunError> {
        let Some(dir) = self.data_dir.as_mut() else {
            return Ok(());
        };
        let stored = PersistedEpochs {
            accepted_epoch: epochs.accepted_epoch,
            accepted_leader: epochs.accepted_leader,
            current_epoch: epochs.current_epoch,
        };
        // Continuing without durable epochs could reuse an epoch after a restart: stop.
        dir.store_epochs(&stored)
            .map_err(|e| fail(format_args!("cannot persist epochs: {e}")))
    }

    fn send(&mut self, frame: &[u8; FRAME_LEN]) {
        match self.socket.send_to(frame, self.group) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Never queue: the next frame carries the newer state anyway.
                self.stats.sends_dropped += 1;
            }
            Err(e) => {
                self.stats.send_errors += 1;
                // 1st, 2nd, 4th, 8th... failure: visible, but no log flood while a link is down.
                if self.stats.send_errors.is_power_of_two() {
                    log::warn!(
                        "send to {} failed ({} failures so far): {e}",
                        self.group,
                        self.stats.send_errors
                    );
                }
            }
        }
    }

    fn report(&mut self, node: &Node, change: StateChange) {
        let took = change
            .election_time
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0);
        log::info!(
            "node {}: {} leader={} epoch={} round={} (was {}, election took {:.3} ms)",
            node.id(),
            change.state,
            OptionDisplay(change.leader),
            OptionDisplay(change.epoch),
            change.round,
            change.previous,
            took
        );
        if let Some(hooks) = &self.hooks {
            // The published clocks first, the core's clock after: the lease end can only
            // come out early, never late.
            let (unix_now, boot_now) = (unix_now_ms(), boottime_now_ms());
            let ahead = node.valid_until().map(|until| {
                let ahead = until.saturating_duration_since(self.now());
                u64::try_from(ahead.as_millis()).unwrap_or(u64::MAX)
            });
            hooks.notify(HookChange {
                id: node.id(),
                state: change.state.as_str(),
                previous_state: change.previous.as_str(),
                leader: change.leader,
                epoch: change.epoch,
                valid_until_unix_ms: ahead.map(|ms| unix_now.saturating_add(ms)),
                valid_until_boottime_ms: ahead.and_then(|ms| boot_now?.checked_add(ms)),
            });
        }
        self.write_state(node, self.now());
    }

    fn write_state(&mut self, node: &Node, now: Instant) {
        let Some(writer) = self.state_file.as_mut() else {
            return;
        };
        let unix_now = unix_now_ms();
        let valid_until_unix_ms = node.valid_until().map(|until| {
            let ahead = until.saturating_duration_since(now);
            unix_now + u64::try_from(ahead.as_millis()).unwrap_or(u64::MAX / 2)
        });
        let snapshot = StateSnapshot {
            id: node.id(),
            state: node.state().as_str(),
            leader: node.leader(),
            epoch: node.epoch(),
            round: node.round(),
            zxid: node.zxid(),
            pid: std::process::id(),
            updated_unix_ms: unix_now,
            valid_until_unix_ms,
            last_election_ms: node.last_election_time().map(|d| d.as_secs_f64() * 1000.0),
            duplicate_id: node.duplicate_id().is_some(),
        };
        if let Err(e) = writer.write(&snapshot) {
            log::warn!("state file {}: {e}", writer.path().display());
        }
        self.last_state_write = Some(now);
        self.last_state_valid_until = node.valid_until();
    }
}

struct OptionDisplay(Option<u64>);

impl fmt::Display for OptionDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("none"),
        }
    }
}

/// The wall-clock second, if the clock looks set (after 2020-01-01), else 0: the floor of
/// this start's incarnation (see `DataDir::bump_incarnation`).
fn incarnation_floor() -> u32 {
    const JAN_2020_UNIX_S: u64 = 1_577_836_800;
    let now_s = unix_now_ms() / 1000;
    if now_s < JAN_2020_UNIX_S {
        return 0;
    }
    u32::try_from(now_s).unwrap_or(0)
}

/// Run one node until SIGTERM/SIGINT (exit 0 after the resign broadcast) or a runtime
/// failure.
pub fn run(settings: RunSettings) -> Result<(), RunError> {
    let config = core_config(&settings)?;
    let mut data_dir = match &settings.data_dir {
        Some(dir) => Some(DataDir::open(dir).map_err(fail)?),
        None => {
            log::warn!("no --data-dir: epochs are kept in memory only and reset on restart");
            None
        }
    };
    let (epochs, incarnation) = match data_dir.as_mut() {
        Some(dir) => {
            let stored = dir.load_epochs().map_err(fail)?;
            // Bumped before the first frame of this start, so every start's frames are new.
            let incarnation = dir.bump_incarnation(incarnation_floor()).map_err(fail)?;
            let epochs = Epochs {
                accepted_epoch: stored.accepted_epoch,
                accepted_leader: stored.accepted_leader,
                current_epoch: stored.current_epoch,
            };
            (epochs, incarnation)
        }
        None => (Epochs::default(), 1),
    };
    let socket = open_multicast_socket(&settings.interface, settings.group)?;
    let mut socket = UdpSocket::from_std(socket.into());
    let mut poll = Poll::new().map_err(|e| fail(format_args!("epoll: {e}")))?;
    let mut signals =
        Signals::new([SIGTERM, SIGINT]).map_err(|e| fail(format_args!("signals: {e}")))?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)
        .map_err(|e| fail(format_args!("epoll register: {e}")))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(|e| fail(format_args!("epoll register: {e}")))?;

    let mut node = Node::new(config, epochs, incarnation).map_err(fail)?;
    let mut zxid_file = match &settings.zxid {
        ZxidSource::Fixed(zxid) => {
            node.set_zxid(*zxid);
            None
        }
        ZxidSource::File(path) => {
            let mut file = ZxidFile {
                path: path.clone(),
                last_good: 0,
                complaining: false,
            };
            node.set_zxid(file.read());
            Some(file)
        }
    };
    let hooks = settings
        .on_change
        .clone()
        .map(|cmd| HookRunner::start(cmd, settings.hook_timeout));
    let state_file = settings.state_file.clone().map(StateFileWriter::new);
    log::info!(
        "node {} ({}) starting: incarnation {incarnation}, group {} on {}, voters {:?}, epochs {:?}",
        settings.id,
        if settings.is_observer() { "observer" } else { "voter" },
        settings.group,
        settings.interface,
        settings.voters,
        epochs
    );
    if settings.keys.is_enabled() {
        let mut keys = settings.keys.describe();
        if let Some((id, fingerprint)) = keys.next() {
            log::info!(
                "authentication on: signing with key {id} (fingerprint {})",
                Fingerprint(fingerprint)
            );
        }
        for (id, fingerprint) in keys {
            log::info!(
                "authentication: also accepting key {id} (fingerprint {})",
                Fingerprint(fingerprint)
            );
        }
    } else {
        log::warn!(
            "authentication off (no --key-file): anyone on the LAN can forge frames; \
             see README, Guarantees"
        );
    }
    let group = settings.group;
    let tick = settings.tick;
    let mut daemon = Daemon {
        socket,
        group,
        data_dir,
        state_file,
        hooks,
        origin: StdInstant::now(),
        stats: DriverStats::default(),
        last_state_write: None,
        last_state_valid_until: None,
    };
    let now = daemon.now();
    node.start(now);
    daemon.write_state(&node, now);
    daemon.drain(&mut node)?;

    let mut events = Events::with_capacity(16);
    let mut buf = [0u8; RECV_BUFFER];
    let mut last_housekeeping = now;
    let result = 'events: loop {
        let now = daemon.now();
        // Wake for the core's next deadline or the next housekeeping tick, whichever is first.
        let housekeeping = last_housekeeping + tick;
        let deadline = node
            .poll_timeout()
            .map_or(housekeeping, |d| d.min(housekeeping));
        let timeout = Some(deadline.saturating_duration_since(now));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break Err(fail(format_args!("epoll wait: {e}")));
        }
        let mut stop = false;
        for event in events.iter() {
            match event.token() {
                SOCKET => {
                    if let Err(e) = receive_all(&mut daemon, &mut node, &mut buf) {
                        break 'events Err(e);
                    }
                }
                SIGNALS => stop = signals.pending().next().is_some(),
                _ => {}
            }
        }
        let now = daemon.now();
        if stop {
            log::info!("node {}: shutting down, resigning", node.id());
            node.shutdown(now);
            daemon.drain(&mut node)?;
            break Ok(());
        }
        node.handle_timeout(now);
        daemon.drain(&mut node)?;
        // The zxid file is re-read once per tick, so an election always starts with a
        // value at most one tick old.
        if now.saturating_duration_since(last_housekeeping) >= tick {
            last_housekeeping = now;
            if let Some(file) = zxid_file.as_mut() {
                node.set_zxid(file.read());
            }
        }
        // Keep updated/valid_until fresh for readers of the state file without writing it
        // every tick (at 20 writes a second that was half of an idle node's CPU): at most
        // once a tick, rewrite when the lease end in the file is less than two ticks away,
        // so a reader does not see a live lease as run out, and at least once a second in
        // every state, so a live LOOKING node is not mistaken for a dead one. State changes
        // are written at once (see `report`).
        let due = match daemon.last_state_write {
            None => true,
            Some(written) => {
                let since = now.saturating_duration_since(written);
                let lease_runs_out = daemon
                    .last_state_valid_until
                    .is_some_and(|until| until.saturating_duration_since(now) < tick * 2);
                since >= tick && (lease_runs_out || since >= STATE_REFRESH)
            }
        };
        if due {
            daemon.write_state(&node, now);
        }
    };
    let stats = node.stats();
    log::info!(
        "node {}: stopped; frames received {}, sent {}, malformed {}, other cluster {}, \
         unauthenticated {}, bad tags {}, stale {}, throttled {}, own id from elsewhere {}, \
         sends dropped {}",
        node.id(),
        stats.frames_received,
        stats.frames_sent,
        stats.malformed,
        stats.other_cluster,
        stats.unauthenticated,
        stats.bad_tags,
        stats.stale_frames,
        stats.throttled,
        stats.duplicate_id_frames,
        daemon.stats.sends_dropped
    );
    if let Some(hooks) = daemon.hooks.take() {
        hooks.shutdown(Duration::from_secs(2));
    }
    result
}

/// Drain the socket until it would block, handing every datagram to the node.
fn receive_all(daemon: &mut Daemon, node: &mut Node, buf: &mut [u8]) -> Result<(), RunError> {
    loop {
        match daemon.socket.recv_from(buf) {
            Ok((len, from)) => {
                let now = daemon.now();
                let duplicates_before = node.stats().duplicate_id_frames;
                match node.handle_datagram(now, &buf[..len]) {
                    Ok(()) => {}
                    Err(err @ DatagramError::Unauthentic(_)) => {
                        // A peer with another key (or an attacker): visible without a log
                        // flood: the 1st, 2nd, 4th, 8th... such frame.
                        daemon.stats.unauthentic += 1;
                        if daemon.stats.unauthentic.is_power_of_two() {
                            log::warn!(
                                "dropped frame from {from}: {err} ({} so far; check that every \
                                 node has the same --key-file)",
                                daemon.stats.unauthentic
                            );
                        } else {
                            log::debug!("dropped frame from {from}: {err}");
                        }
                    }
                    Err(err) => log::debug!("dropped datagram of {len} bytes from {from}: {err}"),
                }
                let duplicates = node.stats().duplicate_id_frames;
                if duplicates > duplicates_before && duplicates.is_power_of_two() {
                    log::error!(
                        "frame with our id {} from {from} that we did not send ({duplicates} so far)",
                        node.id()
                    );
                }
                daemon.drain(node)?;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("receive failed: {e}");
                return Ok(());
            }
        }
    }
}
