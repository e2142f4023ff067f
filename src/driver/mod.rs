//! The driver: the mio event loop around one [`Node`] and its one UDP multicast socket.
//!
//! This is the only layer that reads the clock or touches the socket while running.
//! Everything it needs (buffers, paths, the socket) is set up before the first frame; per
//! frame it receives into a fixed buffer, hands the bytes to the core, and emits the core's
//! frames into a fixed buffer, so the steady state does not allocate. Persistence requests
//! are written synchronously before any later output, as the core requires.
//!
//! Beside the loop: [`socket`] (multicast setup), [`zxid_file`] (`--zxid-file`) and
//! [`refresh`] (when the state file is rewritten while nothing changes).

pub mod refresh;
pub mod socket;
pub mod zxid_file;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant as StdInstant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

use crate::daemon::hooks::{boottime_now_ms, HookChange, HookRunner};
use crate::daemon::persist::DataDir;
use crate::daemon::settings::{RunSettings, ZxidSource};
use crate::daemon::state_file::{StateFileWriter, StateSnapshot};
use crate::daemon::{unix_now_ms, DaemonError};
use votecast_core::auth::Fingerprint;
use votecast_core::election::{DatagramError, Epochs, Event, Instant, Node, Output, StateChange};
use votecast_core::wire::FRAME_LEN;

use self::refresh::{refresh_due, LastWrite};
pub use self::socket::open_multicast_socket;
use self::zxid_file::ZxidFile;

const SOCKET: Token = Token(0);
const SIGNALS: Token = Token(1);
/// Larger than a frame, so an oversized datagram arrives truncated and is rejected as
/// the wrong length instead of being mistaken for a frame.
const RECV_BUFFER: usize = 2 * FRAME_LEN;
/// How long hooks still queued at shutdown may run before they are killed.
const HOOK_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Counters the driver keeps in addition to the core's.
#[derive(Debug, Default, Clone, Copy)]
pub struct DriverStats {
    pub sends_dropped: u64,
    pub send_errors: u64,
    /// Frames dropped for a missing or bad authentication tag (for the log rate limit).
    pub unauthentic: u64,
}

/// Everything the loop touches besides the node: the socket, the files, the hooks, the clock.
struct NodeIo {
    socket: UdpSocket,
    group: SocketAddr,
    data_dir: Option<DataDir>,
    state_file: Option<StateFileWriter>,
    hooks: Option<HookRunner>,
    origin: StdInstant,
    stats: DriverStats,
    last_state_write: Option<LastWrite>,
}

impl NodeIo {
    fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Act on every pending output of the node, in order.
    fn drain(&mut self, node: &mut Node) -> Result<(), DaemonError> {
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

    fn persist(&mut self, epochs: Epochs) -> Result<(), DaemonError> {
        let Some(dir) = self.data_dir.as_mut() else {
            return Ok(());
        };
        // Continuing without durable epochs could reuse an epoch after a restart: stop.
        dir.store_epochs(&epochs).map_err(DaemonError::StoreEpochs)
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
        self.last_state_write = Some(LastWrite {
            at: now,
            valid_until: node.valid_until(),
        });
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
pub fn run(settings: RunSettings) -> Result<(), DaemonError> {
    let mut data_dir = match &settings.data_dir {
        Some(dir) => Some(DataDir::open(dir)?),
        None => {
            log::warn!("no --data-dir: epochs are kept in memory only and reset on restart");
            None
        }
    };
    let (epochs, incarnation) = match data_dir.as_mut() {
        // The incarnation is bumped before the first frame of this start, so every start's
        // frames are new to the peers.
        Some(dir) => (
            dir.load_epochs()?,
            dir.bump_incarnation(incarnation_floor())?,
        ),
        None => (Epochs::default(), 1),
    };
    let socket = open_multicast_socket(&settings.interface, settings.group)?;
    let socket = UdpSocket::from_std(socket.into());
    let mut node = Node::new(settings.election.clone(), epochs, incarnation)?;
    let mut zxid_file = match &settings.zxid {
        ZxidSource::Fixed(zxid) => {
            node.set_zxid(*zxid);
            None
        }
        ZxidSource::File { path, initial } => {
            node.set_zxid(*initial);
            Some(ZxidFile::new(path.clone(), *initial))
        }
    };
    log_start(&settings, incarnation, epochs);
    let mut io = NodeIo {
        socket,
        group: settings.group,
        data_dir,
        state_file: settings.state_file.clone().map(StateFileWriter::new),
        hooks: settings
            .on_change
            .clone()
            .map(|cmd| HookRunner::start(cmd, settings.hook_timeout)),
        origin: StdInstant::now(),
        stats: DriverStats::default(),
        last_state_write: None,
    };
    let result = event_loop(
        &mut io,
        &mut node,
        zxid_file.as_mut(),
        settings.election.tick,
    );
    log_stats(&node, &io.stats);
    if let Some(hooks) = io.hooks.take() {
        hooks.shutdown(HOOK_SHUTDOWN_GRACE);
    }
    result
}

/// The poller with the socket and SIGTERM/SIGINT registered.
fn register(socket: &mut UdpSocket) -> Result<(Poll, Signals), DaemonError> {
    let event_loop = |what: &'static str| move |source| DaemonError::EventLoop { what, source };
    let poll = Poll::new().map_err(event_loop("epoll"))?;
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(event_loop("signals"))?;
    poll.registry()
        .register(socket, SOCKET, Interest::READABLE)
        .map_err(event_loop("epoll register"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(event_loop("epoll register"))?;
    Ok((poll, signals))
}

/// Start the node and run until a signal (resign, then `Ok`) or a runtime failure.
fn event_loop(
    io: &mut NodeIo,
    node: &mut Node,
    mut zxid_file: Option<&mut ZxidFile>,
    tick: Duration,
) -> Result<(), DaemonError> {
    let (mut poll, mut signals) = register(&mut io.socket)?;
    let now = io.now();
    node.start(now);
    io.write_state(node, now);
    io.drain(node)?;

    let mut events = Events::with_capacity(16);
    let mut buf = [0u8; RECV_BUFFER];
    let mut last_housekeeping = now;
    loop {
        let now = io.now();
        // Wake for the core's next deadline or the next housekeeping tick, whichever is first.
        let housekeeping = last_housekeeping + tick;
        let deadline = node
            .poll_timeout()
            .map_or(housekeeping, |d| d.min(housekeeping));
        if let Err(source) = poll.poll(&mut events, Some(deadline.saturating_duration_since(now))) {
            if source.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            let what = "epoll wait";
            return Err(DaemonError::EventLoop { what, source });
        }
        let mut stop = false;
        for event in events.iter() {
            match event.token() {
                SOCKET => receive_all(io, node, &mut buf)?,
                SIGNALS => stop = signals.pending().next().is_some(),
                _ => {}
            }
        }
        let now = io.now();
        if stop {
            log::info!("node {}: shutting down, resigning", node.id());
            node.shutdown(now);
            return io.drain(node);
        }
        node.handle_timeout(now);
        io.drain(node)?;
        // The zxid file is re-read once per tick, so an election always starts with a
        // value at most one tick old.
        if now.saturating_duration_since(last_housekeeping) >= tick {
            last_housekeeping = now;
            if let Some(file) = zxid_file.as_deref_mut() {
                node.set_zxid(file.read());
            }
        }
        if refresh_due(io.last_state_write, now, tick) {
            io.write_state(node, now);
        }
    }
}

/// The start-up line: who we are, where we listen, the epochs we start from, and whether
/// frames are authenticated.
fn log_start(settings: &RunSettings, incarnation: u32, epochs: Epochs) {
    let election = &settings.election;
    log::info!(
        "node {} ({}) starting: incarnation {incarnation}, group {} on {}, voters {:?}, epochs {:?}",
        election.id,
        if settings.is_observer() { "observer" } else { "voter" },
        settings.group,
        settings.interface,
        election.voters,
        epochs
    );
    if !election.keys.is_enabled() {
        log::warn!(
            "authentication off (no --key-file): anyone on the LAN can forge frames; \
             see README, Guarantees"
        );
        return;
    }
    let mut keys = election.keys.describe();
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
}

/// The shutdown line: the core's and the driver's counters.
fn log_stats(node: &Node, driver: &DriverStats) {
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
        driver.sends_dropped
    );
}

/// Drain the socket until it would block, handing every datagram to the node.
fn receive_all(io: &mut NodeIo, node: &mut Node, buf: &mut [u8]) -> Result<(), DaemonError> {
    loop {
        match io.socket.recv_from(buf) {
            Ok((len, from)) => {
                let now = io.now();
                let duplicates_before = node.stats().duplicate_id_frames;
                match node.handle_datagram(now, &buf[..len]) {
                    Ok(()) => {}
                    Err(err @ DatagramError::Unauthentic(_)) => {
                        // A peer with another key (or an attacker): visible without a log
                        // flood: the 1st, 2nd, 4th, 8th... such frame.
                        io.stats.unauthentic += 1;
                        if io.stats.unauthentic.is_power_of_two() {
                            log::warn!(
                                "dropped frame from {from}: {err} ({} so far; check that every \
                                 node has the same --key-file)",
                                io.stats.unauthentic
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
                io.drain(node)?;
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
