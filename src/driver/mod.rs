//! The driver: the mio event loop around one [`Node`] and its one UDP socket (multicast
//! group, or unicast to the `--peers`). The socket exists while `--interface` is usable;
//! [`link`] re-opens or closes it as the interface comes, goes and changes, and the node
//! runs on its timers either way.
//!
//! This is the only layer that reads the clock or touches the socket while running.
//! Everything it needs (buffers, paths, the socket) is set up before the first frame; per
//! frame it receives into a fixed buffer, hands the bytes to the core, and emits the core's
//! frames into a fixed buffer, so the steady state does not allocate. Persistence requests
//! are written synchronously before any later output, as the core requires.
//!
//! Beside this file: [`event_loop`] (the loop, the signals' effects, the graceful
//! handover), [`link`] (the interface watcher), [`clock`] (the clocks and what is
//! derived from them), [`publish`] (what the state file and the hooks are given, a pure
//! function), [`signals`], [`socket`]
//! (opening the socket of either transport, the multicast setup), [`peers`] (the
//! `--peers` list, own-address skipping and the source filter, pure), [`unicast`] (the
//! unicast socket), [`zxid_file`] (`--zxid-file`), [`refresh`] (when the state file is
//! rewritten while nothing changes), [`silence`] (the warning when no other voter is
//! heard although our sends succeed), `health` (the health checks' verdict into the
//! core), [`notify`] (systemd's notification socket), `announce` (when systemd is
//! notified and the `--metrics-file` rewritten), [`trace`] (the debug-level trace of
//! epoch rounds) and [`vip`] (the `--vip` floating addresses, held while LEADING is
//! published).

mod announce;
pub mod clock;
mod event_loop;
mod health;
pub mod link;
pub mod notify;
pub mod peers;
pub mod publish;
pub mod quiet;
pub mod refresh;
pub mod signals;
pub mod silence;
pub mod socket;
pub mod stall;
mod trace;
pub mod unicast;
pub mod vip;
pub mod zxid_file;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::UdpSocket;

use crate::daemon::hooks::{HookChange, HookRunner};
use crate::daemon::persist::DataDir;
use crate::daemon::settings::{RunSettings, ZxidSource};
use crate::daemon::state_file::{StateFileWriter, StateSnapshot};
use crate::daemon::track::Tracker;
use crate::daemon::DaemonError;
use votecast_core::auth::Fingerprint;
use votecast_core::election::{
    Epochs, Event, Frame, Instant, Node, Output, ServerState, StateChange, OUTPUT_CAPACITY,
};
use votecast_core::wire::{Packet, FRAME_LEN};

use self::announce::Announcer;
use self::clock::{epoch_floor, fresh_incarnation, incarnation_floor, process_nonce, Clock};
use self::link::{Link, LinkWatch};
use self::peers::{Peers, Transport};
use self::publish::{publish, NodeView, Published};
use self::refresh::LastWrite;
use self::silence::SilenceWatch;
pub use self::socket::{open_multicast_socket, open_socket, Opened};
use self::trace::RoundTrace;
use self::zxid_file::ZxidFile;

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
    /// Frames not sent because the interface was unusable (no socket).
    pub sends_unlinked: u64,
    /// Frames dropped for a missing or bad authentication tag (for the log rate limit).
    pub unauthentic: u64,
    /// Datagrams dropped because their source is not in `--peers`.
    pub not_peer: u64,
    /// Frames read from the quiet socket (see [`quiet`]) and counted from the kernel's
    /// receive stamp, or from when they were read (no stamp, or the wall clock was set).
    pub waited_stamped: u64,
    pub waited_unstamped: u64,
}

/// Everything the loop touches besides the node: the socket, the files, the hooks, the clock.
struct NodeIo {
    /// None while the interface is unusable (see [`link`]).
    socket: Option<UdpSocket>,
    /// This process's id, as published (read once: `getpid` is a system call).
    pid: u32,
    /// `Stats::group_answer_requests` as last seen (see `watch_group_requests`).
    group_requests_seen: u64,
    /// The socket is registered with the loop's poller (see `watch_socket`); true when
    /// there is no socket.
    socket_watched: bool,
    /// The second socket on the group, for the frames that can wait (see [`quiet`]).
    quiet: Option<quiet::Quiet>,
    /// The transport the socket is (re-)opened for.
    transport: Transport,
    /// Where every frame goes: the group, or every peer but this node (set when the
    /// socket is opened, so a send allocates nothing).
    destinations: Vec<SocketAddr>,
    /// With `--peers`: only their frames are accepted.
    peers: Option<Peers>,
    /// The leader we follow and the address its last accepted frame came from: where a
    /// frame for it alone (`Frame::to`) goes.
    leader_addr: Option<(u64, SocketAddr)>,
    link: LinkWatch,
    /// Send errors since the interface last came back (the log's rate limit counts these,
    /// so a new outage is logged from its first error again).
    send_errors_logged: u64,
    data_dir: Option<DataDir>,
    state_file: Option<StateFileWriter>,
    hooks: Option<HookRunner>,
    clock: Clock,
    stats: DriverStats,
    /// The event loop's own lateness (see [`stall`]).
    stalls: stall::StallWatch,
    last_state_write: Option<LastWrite>,
    /// A graceful shutdown has begun: LEADING is no longer published.
    stepping_down: bool,
    /// The latest lease end published as LEADING to a reader that may act on it (state
    /// file, hook, metrics file; floating addresses whose removal was not confirmed), on
    /// the core's clock: a graceful handover waits it out.
    published_until: Option<Instant>,
    /// The state, leader and epoch the hook was last given.
    hook_state: Option<(&'static str, Option<u64>, Option<u64>)>,
    /// A follower's LOOKING not yet handed to the hook: when it is due, and the state
    /// before it (see `notify_hook`).
    hook_deferred: Option<(Instant, &'static str)>,
    /// How long a follower's LOOKING must last before its hook hears of it.
    hook_settle: Duration,
    /// `--interface`, for the silence warning.
    interface: String,
    /// When a send last succeeded, and last failed (core clock): the silence watch's input.
    last_send_ok: Option<Instant>,
    last_send_failed: Option<Instant>,
    silence: SilenceWatch,
    /// systemd notifications and the metrics file.
    announce: Announcer,
    /// The health checks (`--track`), if any.
    tracker: Option<Tracker>,
    /// When the node stood down for health (for the log line when it is back).
    stand_down_since: Option<Instant>,
    /// The debug-level trace of epoch rounds.
    trace: RoundTrace,
    /// `--vip`: the floating addresses (None without).
    vip: Option<vip::VipHolder>,
    /// The published lease end the floating addresses were last judged on.
    vip_lease_end: Option<Instant>,
}

impl NodeIo {
    fn now(&self) -> Instant {
        self.clock.core()
    }

    /// What to publish for `node`, computed from the clocks read now.
    fn publication(&mut self, node: &Node) -> Published {
        let now = self.clock.now();
        let p = publish(
            &NodeView::of(node, now.core),
            now,
            self.stepping_down,
            self.pid,
        );
        if p.is_leading() && self.publishes_leases() {
            self.published_until = self.published_until.max(p.valid_until);
        }
        p
    }

    /// Whether an application can learn a lease end from this node: the state file, the
    /// hook's environment and the metrics file carry one (a hook told LEADING may act on
    /// it for as long as the lease is renewed, which it cannot see). The floating
    /// addresses are not among them: they are removed at step-down, before the handover
    /// waits, and count only if that removal is not confirmed (`vip_confirm_released`);
    /// the systemd status names no lease end.
    fn publishes_leases(&self) -> bool {
        self.state_file.is_some() || self.hooks.is_some() || self.announce.publishes_leases()
    }

    /// Act on every pending output of the node, in order, except that state changes are
    /// published (log, state file, hook) after the frames of the same input: replacing
    /// the state file takes a few hundred µs, and the frame behind it (the leader's
    /// ESTABLISHED flag, a follower's acknowledgement of it) is what the peers wait for.
    /// Epoch writes keep their place before the frames that announce them.
    fn drain(&mut self, node: &mut Node) -> Result<(), DaemonError> {
        let mut changes: heapless::Vec<StateChange, OUTPUT_CAPACITY> = heapless::Vec::new();
        while let Some(output) = node.poll_output() {
            match output {
                Output::Persist(epochs) => {
                    if let Err(e) = self.persist(epochs) {
                        // Stepped down for a handover, the only epoch write is the
                        // successor's, for the support our RESIGN would carry: resign
                        // without it rather than not at all.
                        if !node.forgo_successor() {
                            return Err(e);
                        }
                        log::error!(
                            "node {}: {e}; resigning without supporting the successor",
                            node.id()
                        );
                    }
                }
                Output::Event(Event::StateChanged(change)) => {
                    self.trace.state_changed(self.now(), &change);
                    if let Err(change) = changes.push(change) {
                        // More changes than the core's output queue holds: cannot happen.
                        self.report(node, change);
                    }
                }
                Output::Event(Event::Restarted(restart)) => {
                    self.trace.restarted(self.now(), &restart)
                }
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
                    self.write_state(node);
                }
                Output::Transmit(frame) => {
                    self.send(&frame);
                    if RoundTrace::enabled() {
                        self.trace.sent(self.now(), &frame.repr);
                    }
                }
            }
        }
        for change in changes {
            self.report(node, change);
        }
        self.watch_group_requests(node);
        Ok(())
    }

    /// Logs (at the 1st, 2nd, 4th, 8th... time) that this leader asked its followers to
    /// answer to the group because their unicast answers went missing.
    fn watch_group_requests(&mut self, node: &Node) {
        let n = node.stats().group_answer_requests;
        if n <= self.group_requests_seen {
            return;
        }
        self.group_requests_seen = n;
        if n.is_power_of_two() {
            let port = self.transport.port();
            log::warn!(
                "node {}: our followers' answers went missing, so they were asked to answer \
                 to the group instead ({n} times so far). Lost frames do this now and then; \
                 if the count keeps climbing, unicast UDP to port {port} of this host is \
                 likely blocked (a firewall that passes only the multicast group): allow it \
                 from the other nodes. The lease holds either way. See README, Diagnosis.",
                node.id()
            );
        }
    }

    fn persist(&mut self, epochs: Epochs) -> Result<(), DaemonError> {
        let Some(dir) = self.data_dir.as_mut() else {
            return Ok(());
        };
        // Continuing without durable epochs could reuse an epoch after a restart: stop.
        let began = self.clock.core();
        dir.store_epochs(&epochs)
            .map_err(DaemonError::StoreEpochs)?;
        let took = self.clock.core().saturating_duration_since(began);
        self.trace.persisted(began, took, &epochs);
        Ok(())
    }

    /// After `datagram` from `from` was handed to the node at `now`: if it is a frame of
    /// the leader we follow and the node accepted it, answers for that leader go to
    /// `from` from now on. Only accepted frames count, so a forged or replayed frame from
    /// elsewhere cannot divert the answers.
    fn learn_leader_addr(&mut self, node: &Node, datagram: &[u8], from: SocketAddr, now: Instant) {
        let Some(leader) = node.leader() else {
            return;
        };
        if datagram.len() >= FRAME_LEN
            && Packet::new_unchecked(datagram).sender() == leader
            && node.last_heard_from(leader) == Some(now)
        {
            self.leader_addr = Some((leader, from));
        }
    }

    /// Sends `frame` to the one voter it is for, if its address is known, or else to
    /// every destination; a failure for one does not stop the others.
    fn send(&mut self, frame: &Frame) {
        let Some(socket) = self.socket.as_ref() else {
            // The interface is unusable; its loss was logged once.
            self.stats.sends_unlinked += 1;
            return;
        };
        // One clock reading for the frame, not one per destination (the silence watch
        // needs it only to the tick).
        let now = self.clock.core();
        let leader = match (frame.to, self.leader_addr) {
            (Some(to), Some((leader, addr))) if to == leader => Some(addr),
            _ => None,
        };
        let destinations = match &leader {
            Some(addr) => std::slice::from_ref(addr),
            None => &self.destinations[..],
        };
        for to in destinations {
            match socket.send_to(&frame.bytes, *to) {
                Ok(_) => self.last_send_ok = Some(now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Never queue: the next frame carries the newer state anyway.
                    self.stats.sends_dropped += 1;
                }
                Err(e) => {
                    self.last_send_failed = Some(now);
                    self.stats.send_errors += 1;
                    self.send_errors_logged += 1;
                    // A link that vanished under the socket: re-check it (bounded in rate).
                    self.link.suspect |= link::is_link_error(&e);
                    // 1st, 2nd, 4th, 8th... failure since the interface last came back:
                    // visible, but no log flood while a link is broken or a peer
                    // unreachable.
                    if self.send_errors_logged.is_power_of_two() {
                        log::warn!(
                            "send to {to} failed ({} failures so far): {e}",
                            self.send_errors_logged
                        );
                    }
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
        self.write_state(node);
        self.vip_update(node);
        self.notify_hook(node, change.previous.as_str());
        self.announce_change(node);
    }

    /// Hands the node's view, as published now, to the hook, unless the hook was given
    /// the same state, leader and epoch last time (the core's view can change while the
    /// published one does not: a lease that ran out or a step-down was published first).
    fn notify_hook(&mut self, node: &Node, previous_state: &'static str) {
        if self.hooks.is_none() {
            return;
        }
        let s = self.publication(node).snapshot;
        let view = (s.state, s.leader, s.epoch);
        if self.hook_state == Some(view) {
            self.hook_deferred = None;
            return;
        }
        let looking = ServerState::Looking.as_str();
        let lost_leader = s.state == looking
            && (previous_state == ServerState::Following.as_str()
                || previous_state == ServerState::Observing.as_str())
            && !self.stepping_down;
        if lost_leader {
            // A follower that lost its leader usually follows or leads again within a few
            // ms (the survivors elect at once); its hook hears of the LOOKING only if it
            // lasts HOOK_SETTLE_TICKS, so the change that ends it is not queued behind a
            // run for LOOKING (a fork and exec on the failover path). A VRRP backup's
            // notify script, likewise, hears nothing until it becomes MASTER. Never for a
            // leader: its application must hear of the end of its lease at once.
            if self.hook_deferred.is_none() {
                self.hook_deferred = Some((self.now() + self.hook_settle, previous_state));
            }
            return;
        }
        self.hook_deferred = None;
        self.give_hook(&s, previous_state);
    }

    /// Hands snapshot `s` to the hook and remembers its view.
    fn give_hook(&mut self, s: &StateSnapshot<&'static str>, previous_state: &'static str) {
        self.hook_state = Some((s.state, s.leader, s.epoch));
        if let Some(hooks) = &self.hooks {
            hooks.notify(HookChange {
                id: s.id,
                state: s.state,
                previous_state,
                leader: s.leader,
                epoch: s.epoch,
                valid_until_unix_ms: s.valid_until_unix_ms,
                valid_until_boottime_ms: s.valid_until_boottime_ms,
            });
        }
    }

    /// When a deferred LOOKING is due for the hook (a deadline of the loop).
    fn hook_deferred_due(&self) -> Option<Instant> {
        self.hook_deferred.map(|(due, _)| due)
    }

    /// Hands a deferred LOOKING to the hook once it has lasted (see `notify_hook`).
    fn flush_deferred_hook(&mut self, node: &Node) {
        let Some((due, previous_state)) = self.hook_deferred else {
            return;
        };
        if self.now() < due {
            return;
        }
        self.hook_deferred = None;
        let s = self.publication(node).snapshot;
        if self.hook_state != Some((s.state, s.leader, s.epoch)) {
            self.give_hook(&s, previous_state);
        }
    }

    /// Replaces the state file with the node's view, as published now.
    /// Whether the state file and the metrics file hold what was last handed to their
    /// writers (see `daemon::file_publisher`).
    fn files_caught_up(&self) -> bool {
        self.state_file.as_ref().is_none_or(|w| w.caught_up()) && self.announce.metrics_caught_up()
    }

    /// Waits up to `timeout` for the state file writer to write what it was given
    /// (before the node starts only: this blocks).
    fn flush_state_file(&self, timeout: Duration) {
        if let Some(writer) = self.state_file.as_ref() {
            if !writer.flush(timeout) {
                log::warn!(
                    "state file {}: not written within {timeout:?}: the file system is slow",
                    writer.path().display()
                );
            }
        }
    }

    fn write_state(&mut self, node: &Node) {
        if self.state_file.is_none() {
            return;
        }
        let p = self.publication(node);
        if let Some(writer) = self.state_file.as_mut() {
            if let Err(e) = writer.write(&p.snapshot) {
                log::warn!("state file {}: {e}", writer.path().display());
            }
        }
        self.last_state_write = Some(LastWrite {
            at: self.now(),
            valid_until: p.valid_until,
        });
    }
}

/// Ticks a follower's LOOKING must last before its hook hears of it.
const HOOK_SETTLE_TICKS: u32 = 2;

struct OptionDisplay(Option<u64>);

impl fmt::Display for OptionDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("none"),
        }
    }
}

/// Run one node until a terminating signal (exit 0 after the graceful handover and the
/// resign broadcast) or a runtime failure.
pub fn run(settings: RunSettings) -> Result<(), DaemonError> {
    let clock = Clock::new();
    let started = clock.now();
    let mut data_dir = match &settings.data_dir {
        Some(dir) => Some(DataDir::open(dir)?),
        None => {
            log::warn!(
                "no --data-dir: epochs are kept in memory only; every start behaves as after \
                 a wiped data dir (see README, Limits)"
            );
            None
        }
    };
    let floor = incarnation_floor(started.unix_ms);
    let (epochs, incarnation) = match data_dir.as_mut() {
        // The incarnation is bumped before the first frame of this start, so every start's
        // frames are new to the peers.
        Some(dir) => (
            dir.load_epochs()?,
            dir.bump_incarnation(floor, fresh_incarnation())?,
        ),
        // Memory only: a random incarnation of this process's own (see the function).
        None => (Epochs::default(), fresh_incarnation()),
    };
    let transport = settings.transport();
    let (link, opened) = open_at_start(&settings.interface, &transport)?;
    let (socket, destinations, unicast_answers, quiet) = match opened {
        Some(o) => (
            Some(UdpSocket::from_std(o.socket.into())),
            o.destinations,
            o.unicast_answers,
            o.quiet.and_then(quiet::Quiet::open),
        ),
        None => (None, Vec::new(), false, None),
    };
    let mut node = Node::new(settings.election.clone(), epochs, incarnation)?;
    node.set_process_nonce(process_nonce());
    node.set_unicast_answers(unicast_answers);
    node.set_epoch_floor(epoch_floor(started.unix_ms));
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
    health::initial(&mut node, clock.core(), settings.track.is_enabled());
    let tracker = settings
        .track
        .is_enabled()
        .then(|| Tracker::start(&settings.track, &settings.interface));
    let vip = match settings.vip.addrs.is_empty() {
        true => None,
        false => Some(vip::VipHolder::open(
            &settings.interface,
            &settings.vip,
            settings.election.tick,
        )?),
    };
    let silence = SilenceWatch::new(clock.core(), NodeIo::silence_threshold(&node));
    let announce = Announcer::new(&settings, started);
    let mut io = NodeIo {
        socket,
        pid: std::process::id(),
        group_requests_seen: 0,
        socket_watched: true,
        quiet,
        transport: transport.clone(),
        destinations,
        peers: match transport {
            Transport::Unicast(peers) => Some(peers),
            Transport::Multicast(_) => None,
        },
        leader_addr: None,
        link,
        send_errors_logged: 0,
        data_dir,
        state_file: settings.state_file.clone().map(StateFileWriter::new),
        hooks: settings
            .on_change
            .clone()
            .map(|cmd| HookRunner::start(cmd, settings.hook_timeout)),
        clock,
        stats: DriverStats::default(),
        stalls: stall::StallWatch::new(settings.election.tick),
        last_state_write: None,
        stepping_down: false,
        published_until: None,
        hook_state: None,
        hook_deferred: None,
        hook_settle: settings.election.tick * HOOK_SETTLE_TICKS,
        interface: settings.interface.clone(),
        last_send_ok: None,
        last_send_failed: None,
        silence,
        announce,
        tracker,
        stand_down_since: None,
        trace: RoundTrace::new(settings.election.id),
        vip,
        vip_lease_end: None,
    };
    let result = event_loop::run(&mut io, &mut node, zxid_file.as_mut(), &settings);
    io.vip_release();
    log_stats(&node, &io, "stopped");
    if let Some(hooks) = io.hooks.take() {
        hooks.shutdown(HOOK_SHUTDOWN_GRACE);
    }
    result
}

/// The interface watcher and, if the interface is usable, the socket. An interface that
/// does not exist yet, is down or has no address is waited for (logged once); any other
/// failure to open the socket is a runtime error.
fn open_at_start(
    interface: &str,
    transport: &Transport,
) -> Result<(LinkWatch, Option<Opened>), DaemonError> {
    // Subscribed before the first look, so no change in between is missed.
    let mut watch = LinkWatch::new(interface, transport.is_ipv4());
    let found = link::probe(interface, transport.is_ipv4()).unwrap_or(Link::Absent);
    watch.link = found;
    let socket = match found {
        Link::Usable(binding) => match open_socket(interface, transport) {
            Ok(opened) => {
                watch.bound = Some(binding);
                Some(opened)
            }
            Err(e) if e.is_link_unready() => {
                log::warn!("{e}: waiting for interface {interface}; LOOKING and silent meanwhile");
                None
            }
            Err(e) => return Err(e),
        },
        Link::Absent => {
            log::warn!(
                "interface {interface} does not exist (yet): waiting for it; LOOKING and \
                 silent meanwhile"
            );
            None
        }
        _ => {
            let line = link::change_line(interface, Link::Absent, found);
            log::warn!("{}", line.map(|l| l.to_string()).unwrap_or_default());
            None
        }
    };
    Ok((watch, socket))
}

/// The start-up line: who we are, where we listen, the epochs we start from, and whether
/// frames are authenticated.
fn log_start(settings: &RunSettings, incarnation: u32, epochs: Epochs) {
    let election = &settings.election;
    let transport = match &settings.peers {
        Some(peers) => format!("unicast to --peers {:?}", peers.addrs()),
        None => format!("group {}", settings.group),
    };
    log::info!(
        "node {} ({}) starting: incarnation {incarnation}, {transport} on {}, voters {:?}, epochs {:?}",
        election.id,
        if settings.is_observer() { "observer" } else { "voter" },
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

/// The node's state and the core's and the driver's counters, after `what` ("stopped" at
/// shutdown, the state on SIGUSR1).
fn log_stats(node: &Node, io: &NodeIo, what: &str) {
    let stats = node.stats();
    let driver = &io.stats;
    let (stalls, longest) = io.stalls.seen();
    // How the wall clock behaved against the core's, as the quiet socket saw it.
    let clock = match io.quiet.as_ref().map(|q| q.clock_report()) {
        None => String::from("no quiet socket"),
        Some((_, _, true)) => String::from("a frame came without a kernel stamp"),
        Some((0, _, false)) => String::from("wall clock not seen set"),
        Some((n, largest, false)) => {
            format!(
                "wall clock seen set {n} times, by up to {} µs",
                largest / 1000
            )
        }
    };
    log::info!(
        "node {}: {what}; frames received {}, sent {}, malformed {}, other cluster {}, \
         unauthenticated {}, bad tags {}, stale {}, throttled {}, own id from elsewhere {}, \
         not from --peers {}, sends dropped {}, send errors {}, not sent without a usable \
         interface {}, elections {}; heartbeats slept through {} (counted from the kernel's \
         stamp) and {} (from when read); {clock}; event loop ran late {stalls} times (longest \
         {} ms)",
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
        driver.not_peer,
        driver.sends_dropped,
        driver.send_errors,
        driver.sends_unlinked,
        stats.elections_started,
        driver.waited_stamped,
        driver.waited_unstamped,
        longest.as_millis()
    );
}
