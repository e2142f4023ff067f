//! A follower that sleeps through its leader's routine heartbeats.
//!
//! An established follower wakes for every heartbeat, but most of them ask it for no
//! answer: they only renew its sync deadline and promise (see `votecast_core`'s
//! [`WakeRule`]). With a multicast group on a real interface the node keeps a second
//! socket on the group, never watched by the loop, and splits the group's frames between
//! the two with a pair of classic BPF filters compiled from the core's rule: frames that
//! can wait go to the quiet socket only, every other frame to the main socket only, which
//! wakes the loop. The quiet socket is read at the start of every turn, before anything
//! else: before a deadline can fire for a heartbeat that had arrived, and before the
//! frames of the main socket, which came later. So a follower at the default timing
//! wakes for one heartbeat in four (its turn to answer) instead of every one.
//!
//! A frame read late must not look as if it arrived late: its receipt starts the sync
//! timeout, and a receipt time that is too late delays the failover (and the promise).
//! Nor may it look earlier than it arrived: the promise made on it would run out early.
//! The kernel stamps each frame on arrival (SO_TIMESTAMPNS), on the wall clock, which
//! steps. [`receipt_time`] converts the stamp to the core's clock with the offset between
//! the two clocks, read once per turn; the offset changes only when the wall clock is
//! set, so if it is the same (within [`STEP_TOLERANCE_NS`]) at the turn before the frame
//! arrived and at the turn that reads it, the conversion holds; otherwise, or without a
//! stamp, the frame counts as received when it is read (late, never early). The offset
//! is read between two readings of the core's clock, so a preempted reading is seen and
//! not taken for a step.
//!
//! A node whose wall clock is set often (some virtual machines' time agents set it every
//! few hundred milliseconds) would count most frames from when it read them, and fail
//! over late. So the offset is read on every turn, awake or asleep, and once it has moved
//! the node sets no rule (it wakes for every frame) until the offset has kept still for
//! [`STEADY_FOR`]. A frame without a stamp keeps it awake for good.
//!
//! Where the filters cannot be set, or the rule changes, the frames go to the main socket
//! as before: a filter that fails only costs wake-ups.

use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use nix::libc::sock_filter;
use nix::sys::socket::{
    recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrStorage,
};
use nix::sys::time::TimeSpec;
use nix::time::{clock_gettime, ClockId};
use socket2::{SockRef, Socket};
use votecast_core::election::{Check, Instant, WakeRule, MAX_CHECKS};
use votecast_core::wire::FRAME_LEN;

use crate::logging::RateLimit;

/// A wall-clock step smaller than this between two turns goes unnoticed; receipt times
/// are converted with the smaller of the two turns' offsets (the later result), so such
/// a step cannot make one early either.
pub const STEP_TOLERANCE_NS: i128 = 100_000;
/// The widest a reading of the offset may be (the time between the two readings of the
/// core's clock around the wall clock's). A reading lies within its width below the
/// true offset, so two readings of an unchanged offset differ by less than this: half
/// the tolerance, so that readings never look like a step. (Clock reads take well under
/// a microsecond with the vDSO, a few without; tens under qemu-user.)
pub const MAX_READING_NS: i128 = STEP_TOLERANCE_NS / 2;
/// After the offset moved (the wall clock was set), how long it must keep still before
/// the node sleeps through heartbeats again: a clock that is set often would leave
/// frames counted from when they were read, late, and the failover with them.
pub const STEADY_FOR: Duration = Duration::from_secs(10);

/// The UDP header before the frame, as a socket filter sees the datagram.
const UDP_HEADER: u32 = 8;
/// Instructions of the longest program: the length check, each check's (at most eight)
/// instructions and the two returns.
const MAX_PROGRAM: usize = 2 + MAX_CHECKS * 8 + 2;
/// A filter's verdicts: keep the whole datagram, or drop it.
const KEEP: u32 = u32::MAX;
const DROP: u32 = 0;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const BPF_LD: u16 = 0x00;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_B: u16 = 0x10;
const BPF_ABS: u16 = 0x20;
const BPF_LEN: u16 = 0x80;
const BPF_ADD: u16 = 0x00;
const BPF_MUL: u16 = 0x20;
const BPF_AND: u16 = 0x50;
const BPF_MOD: u16 = 0x90;
const BPF_JEQ: u16 = 0x10;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_TAX: u16 = 0x00;

/// Which side of the split a program is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The quiet socket: keeps the frames that can wait.
    Waiting,
    /// The main socket: keeps every other datagram.
    Waking,
}

/// A classic BPF program.
pub type Program = heapless::Vec<sock_filter, MAX_PROGRAM>;

fn op(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

/// The program for `side` of `rule`: a datagram "can wait" if it is one whole frame and
/// passes every check of the rule.
pub fn program(rule: &WakeRule, side: Side) -> Program {
    // Jumps to the end are patched once its place is known: `jf` of each marked
    // instruction (or `jt`, for a check that fails on equality) goes to "cannot wait".
    let mut code: heapless::Vec<(sock_filter, Jump), MAX_PROGRAM> = heapless::Vec::new();
    let mut push = |i: sock_filter, jump: Jump| {
        // MAX_PROGRAM covers the longest rule.
        let _ = code.push((i, jump));
    };
    push(op(BPF_LD | BPF_W | BPF_LEN, 0), Jump::None);
    push(
        op(BPF_JMP | BPF_JEQ | BPF_K, UDP_HEADER + FRAME_LEN as u32),
        Jump::FailIfFalse,
    );
    for check in rule.checks() {
        match check {
            Check::Byte {
                offset,
                mask,
                value,
            } => {
                push(op(BPF_LD | BPF_B | BPF_ABS, at(offset)), Jump::None);
                if mask != 0xff {
                    push(op(BPF_ALU | BPF_AND | BPF_K, u32::from(mask)), Jump::None);
                }
                push(
                    op(BPF_JMP | BPF_JEQ | BPF_K, u32::from(value)),
                    Jump::FailIfFalse,
                );
            }
            Check::Word { offset, value } => {
                push(op(BPF_LD | BPF_W | BPF_ABS, at(offset)), Jump::None);
                push(op(BPF_JMP | BPF_JEQ | BPF_K, value), Jump::FailIfFalse);
            }
            Check::NotModulo {
                offset,
                cycle,
                residue,
            } => {
                // (hi · 2³² + lo) mod c = ((hi mod c) · (2³² mod c) + lo mod c) mod c, in
                // 32 bits since c² < 2³² (MAX_TURN_CYCLE).
                let wrap = ((1u64 << 32) % u64::from(cycle.max(1))) as u32;
                push(op(BPF_LD | BPF_W | BPF_ABS, at(offset)), Jump::None);
                push(op(BPF_ALU | BPF_MOD | BPF_K, cycle), Jump::None);
                push(op(BPF_ALU | BPF_MUL | BPF_K, wrap), Jump::None);
                push(op(BPF_MISC | BPF_TAX, 0), Jump::None);
                push(op(BPF_LD | BPF_W | BPF_ABS, at(offset + 4)), Jump::None);
                push(op(BPF_ALU | BPF_MOD | BPF_K, cycle), Jump::None);
                push(op(BPF_ALU | BPF_ADD | BPF_X, 0), Jump::None);
                push(op(BPF_ALU | BPF_MOD | BPF_K, cycle), Jump::None);
                push(op(BPF_JMP | BPF_JEQ | BPF_K, residue), Jump::FailIfTrue);
            }
        }
    }
    let (wait, wake) = match side {
        Side::Waiting => (KEEP, DROP),
        Side::Waking => (DROP, KEEP),
    };
    push(op(BPF_RET | BPF_K, wait), Jump::None);
    push(op(BPF_RET | BPF_K, wake), Jump::None);
    let fail = code.len() - 1;
    code.iter()
        .enumerate()
        .map(|(i, &(mut ins, jump))| {
            // Relative to the next instruction; programs are far shorter than 256.
            let to_fail = fail.saturating_sub(i + 1) as u8;
            match jump {
                Jump::None => {}
                Jump::FailIfFalse => ins.jf = to_fail,
                Jump::FailIfTrue => ins.jt = to_fail,
            }
            ins
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Jump {
    None,
    FailIfFalse,
    FailIfTrue,
}

fn at(offset: usize) -> u32 {
    UDP_HEADER + offset as u32
}

/// Drops every datagram: the quiet socket while no rule is set.
pub fn drop_all() -> [sock_filter; 1] {
    [op(BPF_RET | BPF_K, DROP)]
}

/// The quiet socket and the rule its filters (and the main socket's) are set for.
pub struct Quiet {
    socket: Socket,
    rule: Option<WakeRule>,
    /// The wall clock minus the core's, as read at the last turn that read a frame or
    /// when the rule was set.
    offset: OffsetCheck,
    /// Frames may still wait here although no rule is set (it was until lately).
    leftover: bool,
    /// A frame came without a kernel stamp: the node never sleeps through frames again.
    unstamped: bool,
    /// The offset had moved when last asked ([`Quiet::may_sleep`]), for the log.
    held_awake: bool,
    /// Reports of a wall clock that was set (a clock set every few seconds would fill
    /// the log).
    set_reports: RateLimit,
    /// The control-message buffer of `recvmsg`, allocated once.
    control: Vec<u8>,
}

impl Quiet {
    /// The quiet side of a freshly opened group socket, which drops every datagram until
    /// a rule is set. Fails where the kernel cannot filter or stamp the frames (qemu-user
    /// does not emulate SO_TIMESTAMPNS): without stamps, frames read late would delay
    /// the failure detection, so the node stays awake instead.
    pub fn new(socket: Socket) -> io::Result<Quiet> {
        let quiet = Quiet::unstamped(socket)?;
        setsockopt(&quiet.socket, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
        Ok(quiet)
    }

    /// [`Quiet::new`] without the receive stamps.
    fn unstamped(socket: Socket) -> io::Result<Quiet> {
        socket.attach_filter(&drop_all())?;
        Ok(Quiet {
            socket,
            rule: None,
            offset: OffsetCheck::default(),
            leftover: false,
            unstamped: false,
            held_awake: false,
            set_reports: RateLimit::new(Duration::from_secs(600)),
            control: nix::cmsg_space!(TimeSpec),
        })
    }

    /// [`Quiet::new`], or `None` (logged) if the socket cannot be made quiet: then every
    /// frame goes to the main socket.
    pub fn open(socket: Socket) -> Option<Quiet> {
        Quiet::new(socket)
            .inspect_err(|e| {
                log::warn!("the quiet socket: {e}: every frame of the group wakes this node")
            })
            .ok()
    }

    /// The rule the filters are set for.
    pub fn rule(&self) -> Option<WakeRule> {
        self.rule
    }

    /// Whether frames may wait here: a rule is set, or was until the socket was last
    /// found empty.
    pub fn may_hold_frames(&self) -> bool {
        self.rule.is_some() || self.leftover
    }

    /// Sets both filters for `rule` (`None`: every frame to `main`). The side that gains
    /// frames is set first, so that none is dropped by both while they change; a frame
    /// kept by both meanwhile reaches the node twice, and the second copy is stale. If a
    /// filter cannot be set, every frame goes to `main`.
    pub fn set_rule(&mut self, main: &impl AsFd, rule: Option<WakeRule>) -> io::Result<()> {
        if rule == self.rule {
            return Ok(());
        }
        let main = SockRef::from(main);
        // From one rule to another through none: a frame that waits under the old rule
        // but not under the new one would otherwise be dropped by both filters meanwhile.
        if self.rule.is_some() {
            self.release(&main);
        }
        let Some(rule) = rule else {
            return Ok(());
        };
        let set = self
            .socket
            .attach_filter(&program(&rule, Side::Waiting))
            .and_then(|()| main.attach_filter(&program(&rule, Side::Waking)));
        match set {
            Ok(()) => {
                self.rule = Some(rule);
                Ok(())
            }
            Err(e) => {
                self.release(&main);
                Err(e)
            }
        }
    }

    /// Every frame to the main socket: first it keeps everything, then the quiet one
    /// nothing. (Detaching fails harmlessly where no filter was set.)
    fn release(&mut self, main: &SockRef<'_>) {
        let _ = main.detach_filter();
        let _ = self.socket.attach_filter(&drop_all());
        self.leftover |= self.rule.is_some();
        self.rule = None;
    }

    /// Reads one datagram into `buf`: its length, sender and kernel stamp (ns since
    /// 1970, if the kernel gave one). `None` when the socket has nothing (or fails).
    pub fn recv(&mut self, buf: &mut [u8]) -> Option<(usize, SocketAddr, Option<i128>)> {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = loop {
            match recvmsg::<SockaddrStorage>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut self.control),
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(msg) => break msg,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    if e != nix::errno::Errno::EAGAIN {
                        log::debug!("the quiet socket: receive failed: {e}");
                    }
                    self.leftover = false;
                    return None;
                }
            }
        };
        let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
            cmsgs.find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(t) => {
                    Some(i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
                }
                _ => None,
            })
        });
        if stamp.is_none() && !self.unstamped {
            self.unstamped = true;
            log::warn!(
                "the quiet socket: a frame came without the kernel's receive stamp: every \
                 frame of the group wakes this node from now on"
            );
        }
        let from = msg.address.as_ref().and_then(socket_addr)?;
        Some((msg.bytes, from, stamp))
    }

    /// Remembers `offset` (see [`clock_offset`]), read just after the rule was set, as
    /// read before any frame that waits here arrives. Not if frames of an earlier rule
    /// may still be here: they arrived before this reading, so the first turn counts
    /// them (and the others it reads) from when it reads them.
    pub fn note_offset(&mut self, offset: Option<i128>) {
        self.offset.note(if self.leftover { None } else { offset });
    }

    /// See [`OffsetCheck::turn`].
    pub fn turn_offset(&mut self, now: Instant, offset: Option<i128>) -> Option<i128> {
        self.offset.turn(now, offset)
    }

    /// See [`OffsetCheck::watch`].
    pub fn watch_offset(&mut self, now: Instant, offset: Option<i128>) {
        self.offset.watch(now, offset);
    }

    /// Whether the node may sleep through frames at `now`: the kernel stamps them, and
    /// the wall clock has kept still against the core's for [`STEADY_FOR`]. Logs when
    /// that changes because the wall clock moved.
    pub fn may_sleep(&mut self, now: Instant) -> bool {
        let steady = self.offset.steady(now);
        if steady == self.held_awake {
            self.held_awake = !steady;
            let (moves, largest) = self.offset.moves();
            if steady {
                log::debug!("the wall clock kept still for {STEADY_FOR:?}: sleeping through heartbeats again");
            } else if let Some(s) = self.set_reports.allow(std::time::Instant::now()) {
                log::info!(
                    "the wall clock was set ({moves} times so far, by up to {} µs): every frame \
                     wakes this node until the clock keeps still for {STEADY_FOR:?}{s}",
                    largest / 1000
                );
            }
        }
        steady && !self.unstamped
    }

    /// How often the wall clock was seen set, and by how much at most (ns); whether a
    /// frame came without a stamp.
    pub fn clock_report(&self) -> (u64, u128, bool) {
        let (moves, largest) = self.offset.moves();
        (moves, largest, self.unstamped)
    }
}

/// The wall-minus-core clock offset from one turn to the next: whether the wall clock
/// was set between them (see the module docs), and whether it has been left alone long
/// enough ([`STEADY_FOR`]) for the node to sleep through heartbeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffsetCheck {
    /// The baseline for the next turn's frames, in ns: read before any of them arrived
    /// (`None`: not read, or not to be trusted).
    last: Option<i128>,
    /// The latest reading of any kind, for [`OffsetCheck::watch`].
    seen: Option<i128>,
    /// When (core clock) the offset last moved by more than [`STEP_TOLERANCE_NS`].
    moved_at: Option<Instant>,
    /// How often it moved, and the largest move (ns).
    moves: u64,
    largest_move_ns: u128,
}

impl OffsetCheck {
    /// Remembers `offset`, read before any frame the next turn will read arrived.
    pub fn note(&mut self, offset: Option<i128>) {
        self.last = offset;
    }

    /// The offset to use for the frames of this turn (`None`: count them as received
    /// when read), given the offset read at this turn (at `now`, `None` if it could not
    /// be read tightly); remembers it for the next turn.
    pub fn turn(&mut self, now: Instant, offset: Option<i128>) -> Option<i128> {
        self.watch(now, offset);
        let offset = offset?;
        let before = self.last.replace(offset)?;
        ((offset - before).abs() <= STEP_TOLERANCE_NS).then_some(before.min(offset))
    }

    /// A reading taken at `now`, only to see whether the wall clock is being set:
    /// returns the move (ns) since the reading before, if larger than the tolerance.
    pub fn watch(&mut self, now: Instant, offset: Option<i128>) -> Option<i128> {
        let offset = offset?;
        let moved = offset - self.seen.replace(offset)?;
        if moved.abs() <= STEP_TOLERANCE_NS {
            return None;
        }
        self.moved_at = Some(now);
        self.moves += 1;
        self.largest_move_ns = self.largest_move_ns.max(moved.unsigned_abs());
        Some(moved)
    }

    /// Whether the offset has kept still for [`STEADY_FOR`] (or never moved) at `now`.
    pub fn steady(&self, now: Instant) -> bool {
        self.moved_at.is_none_or(|at| now >= at + STEADY_FOR)
    }

    /// How often the offset moved, and the largest move in ns.
    pub fn moves(&self) -> (u64, u128) {
        (self.moves, self.largest_move_ns)
    }
}

fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    if let Some(v6) = addr.as_sockaddr_in6() {
        return Some(SocketAddr::V6(SocketAddrV6::from(*v6)));
    }
    None
}

/// The wall clock minus the core's clock `core`, in ns, read between two readings of the
/// core's clock and taken against the later one: the offset can only come out small, and
/// a receipt time converted with it (`stamp − offset`) only late, never early. Of up to
/// three tries the tightest counts; `None` if none came within [`MAX_READING_NS`] (the
/// thread was preempted between the readings every time).
pub fn clock_offset(core: ClockId) -> Option<i128> {
    let ns = |id: ClockId| {
        clock_gettime(id)
            .ok()
            .map(|t| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec()))
    };
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..3 {
        let before = ns(core)?;
        let wall = ns(ClockId::CLOCK_REALTIME)?;
        let after = ns(core)?;
        let width = after - before;
        if best.is_none_or(|(w, _)| width < w) {
            best = Some((width, wall - after));
        }
        if width <= MAX_READING_NS / 4 {
            break;
        }
    }
    best.filter(|&(width, _)| width <= MAX_READING_NS)
        .map(|(_, offset)| offset)
}

/// When a frame stamped `stamp` (wall clock, ns) arrived, on the core's clock: `stamp −
/// offset`, but no earlier than `floor` (the node's last input: the core's inputs never
/// go back) and no later than `read` (when it was read, which is always safe). Without a
/// stamp or a trusted offset, `read`.
pub fn receipt_time(
    stamp: Option<i128>,
    offset: Option<i128>,
    floor: Instant,
    read: Instant,
) -> Instant {
    let (Some(stamp), Some(offset)) = (stamp, offset) else {
        return read;
    };
    let micros = (stamp - offset).div_euclid(1000) + 1;
    let Ok(micros) = u64::try_from(micros) else {
        return read;
    };
    let at = Instant::from_micros(micros);
    if at > read {
        return read;
    }
    at.max(floor)
}

#[cfg(test)]
mod tests;
