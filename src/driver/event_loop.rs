//! The event loop: the socket, the signals, the interface watcher's notifications and the
//! core's deadlines, one turn at a time,
//! and what the signals ask for: a reload (SIGHUP), a state report (SIGUSR1), and the
//! graceful handover before exit (SIGTERM and the other terminating signals).
//!
//! The graceful handover keeps "never two coordinators" for what an application can see,
//! not only for the core's state:
//! 1. step down: the core stops leading (no RESIGN yet, the followers' promises keep
//!    running), the state file is rewritten without a lease and the hook is given LOOKING;
//! 2. wait for the hook to finish that change (at most `--hook-timeout`);
//! 3. if that run exited 0, the application has stopped acting as coordinator: go on at
//!    once. Otherwise (no hook, a failed or hung hook) wait until the last lease end this
//!    node published (state file or hook) has passed, at most `sync-limit` ticks: an
//!    application that missed the step-down still believes in that lease until then;
//! 4. shutdown: the RESIGN frame releases the followers, who elect at once.
//!
//! The followers' promises never outlast what the old leader's lease was built on, so the
//! waits in 2–3 cannot let two leaders overlap either: at worst the followers time out
//! and elect without the RESIGN.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;

use super::clock::epoch_floor;
use super::link::{NETLINK, SOCKET};
use super::quiet::{clock_offset, receipt_time};
use super::refresh::{next_refresh, refresh_due};
use super::signals::{self, Requests};
use super::zxid_file::ZxidFile;
use super::{log_stats, NodeIo, RECV_BUFFER};
use crate::daemon::settings::key_file::read_key_file;
use crate::daemon::settings::value::Origin;
use crate::daemon::settings::RunSettings;
use crate::daemon::{unix_now_ms, DaemonError};
use votecast_core::auth::Fingerprint;
use votecast_core::election::{DatagramError, Instant, Node, ServerState};

const SIGNALS: Token = Token(1);
/// The hook worker wakes the loop when a run ends.
const HOOKS: Token = Token(3);
/// The longest the handover waits before looking at the hook again; the hook worker
/// wakes it sooner when the run ends.
const HANDOVER_POLL: Duration = Duration::from_millis(5);
/// How long the start waits for the first state file to be written before READY.
const STARTUP_FLUSH: Duration = Duration::from_secs(1);

/// The loop's state between turns.
struct Loop<'a> {
    io: &'a mut NodeIo,
    node: &'a mut Node,
    zxid_file: Option<&'a mut ZxidFile>,
    key_file: Option<PathBuf>,
    poll: Poll,
    signals: Signals,
    events: Events,
    tick: Duration,
    hook_timeout: Duration,
    sync_timeout: Duration,
    last_housekeeping: Instant,
}

/// Start the node and run until a terminating signal (graceful handover, resign, then
/// `Ok`) or a runtime failure.
pub(super) fn run(
    io: &mut NodeIo,
    node: &mut Node,
    zxid_file: Option<&mut ZxidFile>,
    settings: &RunSettings,
) -> Result<(), DaemonError> {
    let (poll, signals) = register(io)?;
    let now = io.now();
    let mut lp = Loop {
        io,
        node,
        zxid_file,
        key_file: settings.key_file.clone(),
        poll,
        signals,
        events: Events::with_capacity(16),
        tick: settings.election.tick,
        hook_timeout: settings.hook_timeout,
        sync_timeout: settings.election.sync_timeout(),
        last_housekeeping: now,
    };
    lp.io.write_state(lp.node);
    // READY promises the state file is there. Before the first frame, waiting for the
    // disk delays no election; a disk that takes more than a second is logged.
    lp.io.flush_state_file(STARTUP_FLUSH);
    lp.io.announce_ready(lp.node);
    // Memory only, the restart quarantine: this process cannot know whether an earlier
    // one promised support to a leader, so it makes no promise until any such promise
    // would have run out. It stays silent meanwhile (observers never promise).
    if settings.data_dir.is_none() && !settings.is_observer() {
        let hold = settings.election.sync_timeout();
        log::info!(
            "node {}: memory only: silent for {hold:?} (sync-limit) before the first frame",
            lp.node.id()
        );
        if let Some(signal) = lp.hold(now + hold)? {
            lp.io.announce.stopping();
            log::info!(
                "node {}: {}: stopped before start",
                lp.node.id(),
                signals::name(signal)
            );
            return Ok(());
        }
    }
    let now = lp.io.now();
    lp.node.start(now);
    lp.io.write_state(lp.node);
    lp.io.drain(lp.node)?;
    loop {
        let requests = lp.turn(None)?;
        if requests.report {
            log_stats(lp.node, lp.io, &state_line(lp.node));
        }
        if requests.reload {
            lp.reload();
        }
        if let Some(signal) = requests.terminate {
            return lp.handover(signal);
        }
    }
}

/// The poller with the socket (if the interface is usable), the netlink socket and the
/// signals registered.
fn register(io: &mut NodeIo) -> Result<(Poll, Signals), DaemonError> {
    let event_loop = |what: &'static str| move |source| DaemonError::EventLoop { what, source };
    let poll = Poll::new().map_err(event_loop("epoll"))?;
    let mut signals = Signals::new(signals::handled()).map_err(event_loop("signals"))?;
    if let Some(socket) = io.socket.as_mut() {
        poll.registry()
            .register(socket, SOCKET, Interest::READABLE)
            .map_err(event_loop("epoll register"))?;
    }
    io.link
        .register(poll.registry())
        .map_err(event_loop("epoll register"))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(event_loop("epoll register"))?;
    if let Some(hooks) = &io.hooks {
        let waker = mio::Waker::new(poll.registry(), HOOKS).map_err(event_loop("eventfd"))?;
        hooks.set_waker(waker);
    }
    Ok((poll, signals))
}

fn state_line(node: &Node) -> String {
    format!(
        "{} leader={} epoch={} round={} zxid={} incarnation={}",
        node.state(),
        super::OptionDisplay(node.leader()),
        super::OptionDisplay(node.epoch()),
        node.round(),
        node.zxid(),
        node.incarnation()
    )
}

impl Loop<'_> {
    /// Waits for the socket, a signal, the core's next deadline or the next housekeeping
    /// tick (or `limit`, if sooner), and handles what happened. Returns what the signals
    /// received ask for.
    fn turn(&mut self, limit: Option<Duration>) -> Result<Requests, DaemonError> {
        let now = self.io.now();
        // Housekeeping rides on the turns the loop makes anyway (each heartbeat, sent or
        // received), so it runs on any turn at least 3/4 of a tick after the last one and
        // wakes the loop by itself only if no turn came for a tick and a half. A follower
        // that sleeps through heartbeats (see `quiet`) is not woken for it: it does it
        // first thing on its next turn, before any frame or deadline can start an
        // election.
        let housekeeping = self.last_housekeeping + self.tick * 3 / 2;
        let sleeping = self.sleeps_for().is_some();
        // A sleeping follower's state file is rewritten on the turn before its lease end
        // comes close (see `refresh_due`); this deadline is for a turn that does not come.
        let refresh = self
            .io
            .state_file
            .as_ref()
            .filter(|_| sleeping)
            .and_then(|_| next_refresh(self.io.last_state_write, self.tick));
        let deadline = [
            self.node.poll_timeout(),
            self.io.link.next_check(),
            self.io.announce.next_due(),
            self.io.vip_next_due(),
            self.io.hook_deferred_due(),
            refresh,
            (!sleeping).then_some(housekeeping),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(housekeeping);
        let mut wait = deadline.saturating_duration_since(now);
        if let Some(limit) = limit {
            wait = wait.min(limit);
        }
        let mut requests = Requests::default();
        let (socket, signalled) = self.wait(wait)?;
        let began = self.io.now();
        self.io.stalls.woke(now + wait, began);
        // The zxid file is re-read and the epoch floor renewed about once per tick, and
        // before the turn's frames and deadlines, so an election always starts with values
        // at most a tick and a half old (or read in the same turn).
        let now = self.io.now();
        if now.saturating_duration_since(self.last_housekeeping) >= self.tick * 3 / 4 {
            self.last_housekeeping = now;
            if let Some(file) = self.zxid_file.as_deref_mut() {
                self.node.set_zxid(file.read());
            }
            self.node.set_epoch_floor(epoch_floor(unix_now_ms()));
            self.io.watch_silence(self.node);
        }
        // The frames that waited came before anything the main socket holds now, and
        // before any deadline that is due: read them first.
        receive_quiet(self.io, self.node)?;
        // An unwatched socket (see `watch_socket`) is read on every turn, before the
        // timeouts: the heartbeat reads the answers to the previous one.
        if socket || !self.io.socket_watched {
            receive_all(self.io, self.node)?;
        }
        self.io.check_link(self.poll.registry(), self.node);
        if signalled {
            for signal in self.signals.pending() {
                requests.add(signal);
            }
        }
        let now = self.io.now();
        self.node.handle_timeout(now);
        self.io.drain(self.node)?;
        self.io.track_health(self.node)?;
        let next_turn = self.sleeps_for().unwrap_or(self.tick);
        if refresh_due(
            self.io.last_state_write,
            self.io.now(),
            self.tick,
            next_turn,
        ) {
            self.io.write_state(self.node);
        }
        self.io.vip_update(self.node);
        self.io.announce_due(self.node);
        self.io.flush_deferred_hook(self.node);
        self.io
            .watch_socket(self.poll.registry(), !self.node.frames_can_wait());
        self.io.quiet_update(self.node);
        self.io.stalls.turn_took(began, self.io.now());
        Ok(requests)
    }

    /// How long this follower sleeps between turns while it sleeps through heartbeats
    /// (see `quiet`): its turns to answer apart, or for an observer the sync timeout.
    fn sleeps_for(&self) -> Option<Duration> {
        let rule = self.io.quiet.as_ref()?.rule()?;
        Some(match rule.turn {
            Some(turn) => self.tick * turn.cycle,
            None => self.sync_timeout,
        })
    }

    /// Waits for events at most `wait`; reads the netlink notifications. Returns whether
    /// the socket and the signals have something.
    fn wait(&mut self, wait: Duration) -> Result<(bool, bool), DaemonError> {
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok((false, false)),
            Err(source) => {
                let what = "epoll wait";
                return Err(DaemonError::EventLoop { what, source });
            }
        }
        if self.events.iter().any(|e| e.token() == NETLINK) {
            self.io.link.read();
        }
        Ok((
            self.events.iter().any(|e| e.token() == SOCKET),
            self.events.iter().any(|e| e.token() == SIGNALS),
        ))
    }

    /// Before the start: waits until `until`, dropping every datagram, following the
    /// interface and handling the signals. Returns the terminating signal if one came
    /// first.
    fn hold(&mut self, until: Instant) -> Result<Option<i32>, DaemonError> {
        let mut buf = [0u8; RECV_BUFFER];
        loop {
            let now = self.io.now();
            if now >= until {
                return Ok(None);
            }
            let wait = [self.io.link.next_check(), self.io.announce.next_due()]
                .into_iter()
                .flatten()
                .fold(until, Instant::min)
                .saturating_duration_since(now);
            self.wait(wait)?;
            self.io.check_link(self.poll.registry(), self.node);
            while let Some(Ok(_)) = self.io.socket.as_ref().map(|s| s.recv_from(&mut buf)) {}
            let mut requests = Requests::default();
            for signal in self.signals.pending() {
                requests.add(signal);
            }
            if requests.report {
                log_stats(self.node, self.io, "memory-only start quarantine");
            }
            if requests.reload {
                self.reload();
            }
            if requests.terminate.is_some() {
                return Ok(requests.terminate);
            }
            if refresh_due(
                self.io.last_state_write,
                self.io.now(),
                self.tick,
                self.tick,
            ) {
                self.io.write_state(self.node);
            }
            self.io.announce_due(self.node);
        }
    }

    /// SIGHUP: reload the key file and re-read the zxid file. A key file that fails its
    /// checks keeps the current keys, and the log says why.
    fn reload(&mut self) {
        self.io.announce.reloading();
        let id = self.node.id();
        match &self.key_file {
            None => log::info!("node {id}: SIGHUP: no --key-file, authentication stays off"),
            Some(path) => match read_key_file(path, Origin::Flag("key-file")) {
                Err(e) => log::warn!(
                    "node {id}: SIGHUP: key file not reloaded, keeping the current keys: {}",
                    e.message.trim_start_matches("error: ")
                ),
                Ok(keys) => {
                    let signing = keys.describe().next();
                    self.node.set_keys(keys);
                    if let Some((key, fingerprint)) = signing {
                        log::info!(
                            "node {id}: SIGHUP: key file reloaded; signing with key {key} \
                             (fingerprint {})",
                            Fingerprint(fingerprint)
                        );
                    }
                }
            },
        }
        if let Some(file) = self.zxid_file.as_deref_mut() {
            let zxid = file.reread();
            self.node.set_zxid(zxid);
            log::info!("node {id}: SIGHUP: zxid file re-read, zxid {zxid}");
        }
        self.io.announce_reloaded(self.node);
    }

    /// The graceful handover (see the module docs), then the resign.
    fn handover(&mut self, signal: i32) -> Result<(), DaemonError> {
        let id = self.node.id();
        let name = signals::name(signal);
        let began = self.io.now();
        self.io.announce.stopping();
        let hook_leading = |io: &NodeIo| {
            io.hook_state
                .is_some_and(|(state, ..)| state == ServerState::Leading.as_str())
        };
        // Standing down for health counts as leading: its published lease may still run.
        let leading = self.node.state() == ServerState::Leading
            || hook_leading(self.io)
            || self.node.standing_down();
        if leading {
            log::info!("node {id}: {name}: stepping down");
        }
        self.node.step_down(began);
        self.io.stepping_down = true;
        let vip_held_on = self.io.vip_lease_end;
        self.io.vip_update(self.node);
        self.io.vip_confirm_released(vip_held_on);
        let written = self.io.last_state_write;
        self.io.drain(self.node)?;
        // The change the core reported is written already; only a view the core did not
        // change (a health stand-down) still needs it. The hook is starting meanwhile.
        if self.io.last_state_write == written {
            self.io.write_state(self.node);
        }
        self.io.announce_change(self.node);
        // The core's step-down reported the change already, unless it is still leading in
        // the core's view; the hook must hear of the end of the lease either way.
        if hook_leading(self.io) {
            self.io
                .notify_hook(self.node, ServerState::Leading.as_str());
        }
        if leading {
            let released = self.wait_for_step_down(began)?;
            let waited = self.io.now().saturating_duration_since(began);
            log::info!(
                "node {id}: stepped down after {:.1} ms ({released})",
                waited.as_secs_f64() * 1000.0
            );
        }
        log::info!("node {id}: {name}: shutting down, resigning");
        let now = self.io.now();
        self.node.shutdown(now);
        self.io.drain(self.node)?;
        // The last metrics say how the node left.
        self.io.announce_change(self.node);
        Ok(())
    }

    /// Steps 2 and 3 of the handover; returns why the wait ended, for the log.
    fn wait_for_step_down(&mut self, began: Instant) -> Result<String, DaemonError> {
        if let Some(until) = self.io.published_until {
            log::info!(
                "node {}: last published lease end: boottime {} ms",
                self.node.id(),
                until.as_micros() / 1000
            );
        }
        let hook_deadline = began + self.hook_timeout;
        let mut acknowledged = false;
        while let Some(hooks) = &self.io.hooks {
            match hooks.wait_idle(Duration::ZERO) {
                Some(ok) => {
                    acknowledged = ok;
                    break;
                }
                None if self.io.now() >= hook_deadline => break,
                None => self.turn_ignoring_signals(HANDOVER_POLL)?,
            }
        }
        // The files say we no longer lead only once their writers have written the
        // step-down (a stalled file system may hold them): until then, or until the
        // published lease runs out, the handover waits.
        while acknowledged && !self.io.files_caught_up() {
            match self.io.published_until {
                Some(until) if self.io.now() < until.min(began + self.sync_timeout) => {
                    self.turn_ignoring_signals(HANDOVER_POLL)?
                }
                _ => break,
            }
        }
        if acknowledged {
            return Ok("the step-down hook succeeded".into());
        }
        if self.io.published_until.is_none() {
            // No state file, hook or metrics file, and the floating addresses (if any)
            // confirmed gone: no application holds a lease end of ours to act on.
            return Ok("no lease end was published".into());
        }
        // Bounded by sync-limit: no other leader can be elected before the followers'
        // promises run out anyway, which a lease never outlasts. (A single voter's lease
        // has no end: nobody else can lead, and its application is told at step-down.)
        let cap = began + self.sync_timeout;
        while let Some(until) = self.io.published_until.map(|u| u.min(cap)) {
            let now = self.io.now();
            if now >= until {
                break;
            }
            self.turn_ignoring_signals(until.saturating_duration_since(now))?;
        }
        Ok("the published lease has run out".into())
    }

    /// One turn during the handover: a report is still given; further terminating
    /// signals and reloads are ignored (the handover is bounded anyway).
    fn turn_ignoring_signals(&mut self, limit: Duration) -> Result<(), DaemonError> {
        let requests = self.turn(Some(limit))?;
        if requests.report {
            log_stats(self.node, self.io, "stepping down");
        }
        if let Some(signal) = requests.terminate {
            log::info!(
                "node {}: {} ignored: already stepping down",
                self.node.id(),
                signals::name(signal)
            );
        }
        Ok(())
    }
}

/// Drain the socket until it would block, handing every datagram to the node.
fn receive_all(io: &mut NodeIo, node: &mut Node) -> Result<(), DaemonError> {
    let mut buf = [0u8; RECV_BUFFER];
    loop {
        let Some(socket) = io.socket.as_ref() else {
            return Ok(());
        };
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                let now = io.now();
                deliver(io, node, &buf[..len], from, now)?;
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

/// Drain the quiet socket (see [`super::quiet`]): each frame goes to the node at the time
/// the kernel received it, converted to the core's clock, or at the time it is read where
/// that cannot be trusted.
fn receive_quiet(io: &mut NodeIo, node: &mut Node) -> Result<(), DaemonError> {
    let mut buf = [0u8; RECV_BUFFER];
    let mut offset = None;
    let mut first = true;
    loop {
        let Some(quiet) = io.quiet.as_mut().filter(|q| q.may_hold_frames()) else {
            return Ok(());
        };
        let Some((len, from, stamp)) = quiet.recv(&mut buf) else {
            return Ok(());
        };
        if std::mem::take(&mut first) {
            offset = quiet.turn_offset(io.clock.core(), clock_offset(io.clock.id()));
        }
        let read = io.clock.core();
        let at = receipt_time(stamp, offset, node.last_input(), read);
        if stamp.is_some() && offset.is_some() {
            io.stats.waited_stamped += 1;
        } else {
            io.stats.waited_unstamped += 1;
        }
        deliver(io, node, &buf[..len], from, at)?;
    }
}

/// One datagram from `from`, received at `now`, to the node; then its outputs.
fn deliver(
    io: &mut NodeIo,
    node: &mut Node,
    datagram: &[u8],
    from: SocketAddr,
    now: Instant,
) -> Result<(), DaemonError> {
    if io.peers.as_ref().is_some_and(|p| !p.allows(from.ip())) {
        // A stray sender (or a node missing from the list): counted, and the 1st, 2nd,
        // 4th, 8th... logged, so a wrong list shows without a flood.
        io.stats.not_peer += 1;
        if io.stats.not_peer.is_power_of_two() {
            log::warn!(
                "dropped datagram from {from}: not in --peers ({} so far)",
                io.stats.not_peer
            );
        }
        return Ok(());
    }
    let duplicates_before = node.stats().duplicate_id_frames;
    match node.handle_datagram(now, datagram) {
        Ok(()) => io.learn_leader_addr(node, datagram, from, now),
        Err(err @ DatagramError::Unauthentic(_)) => {
            // A peer with another key (or an attacker): visible without a log flood: the
            // 1st, 2nd, 4th, 8th... such frame.
            io.stats.unauthentic += 1;
            if io.stats.unauthentic.is_power_of_two() {
                log::warn!(
                    "dropped frame from {from}: {err} ({} so far; check that every node has \
                     the same --key-file)",
                    io.stats.unauthentic
                );
            } else {
                log::debug!("dropped frame from {from}: {err}");
            }
        }
        Err(err) => log::debug!(
            "dropped datagram of {} bytes from {from}: {err}",
            datagram.len()
        ),
    }
    let duplicates = node.stats().duplicate_id_frames;
    if duplicates > duplicates_before && duplicates.is_power_of_two() {
        log::error!(
            "frame with our id {} from {from} that we did not send ({duplicates} so far)",
            node.id()
        );
    }
    io.drain(node)
}
