//! The floating addresses (`--vip`) in the event loop: held exactly while the node
//! publishes LEADING with a running lease, judged on the same published view the state
//! file and the hooks get ([`NodeIo::publication`]).
//!
//! The rules:
//! - **Add** when the publication is LEADING and its lease ends more than
//!   [`RELEASE_EARLY`] from now; the kernel gets a lifetime (valid = preferred) of the
//!   remaining published lease rounded down to whole seconds, at least 1 s (the kernel
//!   counts lifetimes in seconds and refuses 0).
//! - **Renew** (the same request: create-or-replace) when less than half of that lifetime
//!   is left, or when the interface's index changed (a recreated interface lost it). A
//!   renewal may come up to a tick (at most a quarter of the lifetime) before the halfway
//!   point: a leader's loop wakes for its heartbeat every tick, so the renewal rides on a
//!   heartbeat's turn instead of waking the node on its own twice a second.
//! - **Remove** at `lease end - RELEASE_EARLY`, a deadline of the loop
//!   ([`VipHolder::next_due`]), and at once when the publication stops being LEADING
//!   (step-down, resign, lease lost, shutdown). After every add the clock is read again,
//!   and a lease that ran out meanwhile (the process was stopped between the decision
//!   and the request) removes the address at once.
//! - **Announce** after an add (not after a renewal): `--vip-announce-count` rounds,
//!   `--vip-announce-interval` apart, each round a gratuitous ARP request and reply per
//!   IPv4 address and an unsolicited neighbour advertisement per IPv6 address; the rounds
//!   are deadlines of the loop too, so nothing waits.
//!
//! Requests go out on a non-blocking rtnetlink socket ([`Requester`]); the kernel acts
//! within the send, and its error reports are read later and logged at most every 10 s.
//! A refused add is retried after [`RETRY`].
//!
//! What the lifetime bounds: a live node removes its addresses before its lease ends, and
//! the next leader publishes LEADING only after that, so two live nodes never hold one.
//! A node that cannot remove them (frozen, killed) loses them when the kernel lifetime
//! runs out: at most max(lease, 1 s) after its last renewal plus the kernel's expiry
//! check (README, Floating IP).

use std::time::Duration;

use votecast_core::election::{Instant, Node};

use super::NodeIo;
use crate::daemon::settings::VipSettings;
use crate::daemon::DaemonError;
use crate::logging::{RateLimit, WARN_EVERY};
use crate::vip::frames::{gratuitous_arp, unsolicited_na, ArpOp};
use crate::vip::packet::{link_target, LinkTarget, PacketSocket};
use crate::vip::requests::{release, Op, Refused, Requester, RELEASE_WAIT};
use crate::vip::VipAddr;

/// The addresses go this long before the published lease ends, so that the loop's
/// wake-up latency does not carry the removal past the lease end.
pub const RELEASE_EARLY: Duration = Duration::from_millis(5);
/// After a refused add, the next attempt waits this long.
pub const RETRY: Duration = Duration::from_secs(1);

/// What to do with the addresses now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Nothing,
    /// Add (or renew) with this lifetime in seconds; `fresh`: they were not held.
    Add {
        lifetime_secs: u32,
        fresh: bool,
    },
    Remove,
}

/// The addresses as this node last set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The interface index they were added on.
    pub index: u32,
    /// When the kernel drops them unless renewed (core clock).
    pub expires: Instant,
    pub lifetime_secs: u32,
}

/// Longest kernel lifetime given: a single voter's lease has no end, and an address must
/// still never be permanent (the kernel's "forever").
pub const MAX_LIFETIME_SECS: u32 = 86_400;

/// The kernel lifetime for a lease with `remaining` left: whole seconds, rounded down so
/// that it never outlasts the lease, but at least 1 s, the kernel's least.
pub fn lifetime_secs(remaining: Duration) -> u32 {
    u32::try_from(remaining.as_secs())
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_LIFETIME_SECS)
}

/// The decision, a pure function: `lease_end` is the published lease end (`None` unless
/// the publication is LEADING), `index` the interface's index now (`None`: it is gone),
/// `early` how long before the halfway point of a lifetime a renewal may come (the tick;
/// at most a quarter of the lifetime is used).
pub fn plan(
    held: Option<Held>,
    lease_end: Option<Instant>,
    index: Option<u32>,
    now: Instant,
    early: Duration,
) -> Step {
    let running = lease_end.filter(|&end| now + RELEASE_EARLY < end);
    let (Some(end), Some(index)) = (running, index) else {
        return if held.is_some() {
            Step::Remove
        } else {
            Step::Nothing
        };
    };
    let lifetime_secs = lifetime_secs(end.saturating_duration_since(now));
    match held {
        None => Step::Add {
            lifetime_secs,
            fresh: true,
        },
        Some(h) if h.index != index => Step::Add {
            lifetime_secs,
            fresh: true,
        },
        Some(h) => {
            let half = Duration::from_millis(u64::from(h.lifetime_secs) * 500);
            if h.expires.saturating_duration_since(now) < half + early.min(half / 2) {
                Step::Add {
                    lifetime_secs,
                    fresh: false,
                }
            } else {
                Step::Nothing
            }
        }
    }
}

/// When [`plan`] may change its answer: the removal deadline and the renewal point (the
/// latest one; the loop's turns before it may renew earlier).
pub fn next_change(held: Option<Held>, lease_end: Option<Instant>) -> Option<Instant> {
    let held = held?;
    let renew = held.expires - Duration::from_millis(u64::from(held.lifetime_secs) * 500);
    let release = lease_end.map(|end| end - RELEASE_EARLY);
    Some(release.map_or(renew, |r| r.min(renew)))
}

/// A warning, at most every [`WARN_EVERY`].
fn warn(limit: &mut RateLimit, what: std::fmt::Arguments<'_>) {
    if let Some(suppressed) = limit.allow(std::time::Instant::now()) {
        log::warn!("floating address: {what}{suppressed}");
    }
}

/// Announcement rounds still to send.
#[derive(Debug, Clone, Copy)]
struct Announcing {
    next: Instant,
    left: u32,
    target: Option<LinkTarget>,
}

/// The floating addresses of one node and the sockets that manage them.
#[derive(Debug)]
pub(super) struct VipHolder {
    interface: String,
    settings: VipSettings,
    requests: Requester,
    packet: PacketSocket,
    held: Option<Held>,
    retry_at: Option<Instant>,
    announcing: Option<Announcing>,
    warn: RateLimit,
    /// How early a renewal may come ([`plan`]): the tick.
    renew_early: Duration,
    /// A removal since the last add could not be sent or was refused: the addresses may
    /// still be on the interface.
    removal_failed: bool,
}

impl VipHolder {
    /// Opens the sockets and removes any of the addresses still on the interface (left by
    /// a process that could not remove them). A failure is a runtime error: a node that
    /// cannot manage its floating addresses must not lead without them.
    pub(super) fn open(
        interface: &str,
        settings: &VipSettings,
        tick: Duration,
    ) -> Result<VipHolder, DaemonError> {
        let vip = |what| move |source| DaemonError::Vip { what, source };
        let requests = Requester::open().map_err(vip("rtnetlink socket"))?;
        let packet = PacketSocket::open().map_err(vip("AF_PACKET socket (needs CAP_NET_RAW)"))?;
        let done = release(interface, &settings.addrs, RELEASE_WAIT)
            .map_err(vip("removing addresses left on the interface"))?;
        for addr in &done.removed {
            log::warn!("floating address {addr} was still on {interface} (left by an earlier process): removed");
        }
        if let Some((addr, why)) = done.failed.first() {
            let source = std::io::Error::other(format!("{addr} on {interface}: {why}"));
            return Err(DaemonError::Vip {
                what: "removing an address left on the interface (needs CAP_NET_ADMIN)",
                source,
            });
        }
        log::info!(
            "floating addresses {} on {interface}: held while leading",
            settings
                .addrs
                .iter()
                .map(VipAddr::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(VipHolder {
            interface: interface.to_string(),
            settings: settings.clone(),
            requests,
            packet,
            held: None,
            retry_at: None,
            announcing: None,
            warn: RateLimit::new(WARN_EVERY),
            renew_early: tick,
            removal_failed: false,
        })
    }

    pub(super) fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// The next moment something is due, given the published lease end.
    pub(super) fn next_due(&self, lease_end: Option<Instant>) -> Option<Instant> {
        let announce = self.announcing.map(|a| a.next);
        let retry = self.retry_at.filter(|_| lease_end.is_some());
        [next_change(self.held, lease_end), announce, retry]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the addresses are confirmed gone: none held, and the kernel acknowledged
    /// every removal (or had nothing to remove). The kernel acts within the request, so
    /// the acknowledgements are there to read at once.
    pub(super) fn released(&mut self, now: Instant) -> bool {
        self.read_acks(now);
        self.held.is_none() && !self.removal_failed && !self.requests.removals_pending()
    }

    /// Sends `op` for every address on `index`.
    fn request(&mut self, op: Op, index: u32) {
        for k in 0..self.settings.addrs.len() {
            let addr = self.settings.addrs[k];
            if let Err(e) = self.requests.send(op, addr, index) {
                self.removal_failed |= op == Op::Remove;
                warn(
                    &mut self.warn,
                    format_args!("{op:?} {addr} on {}: {e}", self.interface),
                );
            }
        }
    }

    /// Logs the kernel's refusals; a refused add is retried after [`RETRY`].
    fn read_acks(&mut self, now: Instant) {
        let mut refused: [Option<Refused>; 4] = [None; 4];
        let mut n = 0usize;
        let mut removal_refused = false;
        self.requests.read_acks(|r| {
            removal_refused |= r.op == Some(Op::Remove);
            refused[n % 4] = Some(r);
            n += 1;
        });
        self.removal_failed |= removal_refused;
        for r in refused.into_iter().flatten() {
            let e = std::io::Error::from_raw_os_error(r.error);
            let addr = r.vip.map_or(String::from("?"), |a| a.to_string());
            warn(
                &mut self.warn,
                format_args!(
                    "the kernel refused {:?} of {addr} on {}: {e}",
                    r.op, self.interface
                ),
            );
            if matches!(r.op, Some(Op::Add { .. })) {
                self.held = None;
                self.announcing = None;
                self.retry_at = Some(now + RETRY);
            }
        }
    }

    fn act(&mut self, step: Step, index: Option<u32>, now: Instant) {
        match (step, index) {
            (Step::Nothing, _) => {}
            (Step::Remove, _) => {
                if let Some(h) = self.held.take() {
                    self.request(Op::Remove, h.index);
                    log::info!("floating addresses removed from {}", self.interface);
                }
                self.announcing = None;
            }
            (
                Step::Add {
                    lifetime_secs,
                    fresh,
                },
                Some(index),
            ) => {
                if fresh && self.retry_at.is_some_and(|at| now < at) {
                    return;
                }
                self.retry_at = None;
                if fresh {
                    self.removal_failed = false;
                }
                self.request(Op::Add { lifetime_secs }, index);
                self.held = Some(Held {
                    index,
                    expires: now + Duration::from_secs(u64::from(lifetime_secs)),
                    lifetime_secs,
                });
                if fresh {
                    log::info!(
                        "floating addresses added to {} (kernel lifetime {lifetime_secs} s)",
                        self.interface
                    );
                    if self.settings.announce_count > 0 {
                        self.announcing = Some(Announcing {
                            next: now,
                            left: self.settings.announce_count,
                            target: None,
                        });
                    }
                }
            }
            (Step::Add { .. }, None) => {}
        }
    }

    /// One announcement round, if due.
    fn announce_due(&mut self, now: Instant) {
        let Some(mut a) = self.announcing.filter(|a| now >= a.next) else {
            return;
        };
        if a.target.is_none() {
            a.target = match link_target(&self.interface) {
                Ok(t) => t,
                Err(e) => {
                    warn(
                        &mut self.warn,
                        format_args!("looking up {}'s link address: {e}", self.interface),
                    );
                    None
                }
            };
        }
        if let Some(target) = a.target {
            for k in 0..self.settings.addrs.len() {
                let sent = match self.settings.addrs[k].ip {
                    std::net::IpAddr::V4(ip) => self
                        .packet
                        .send(&target, &gratuitous_arp(target.mac, ip, ArpOp::Request))
                        .and_then(|()| {
                            self.packet
                                .send(&target, &gratuitous_arp(target.mac, ip, ArpOp::Reply))
                        }),
                    std::net::IpAddr::V6(ip) => {
                        self.packet.send(&target, &unsolicited_na(target.mac, ip))
                    }
                };
                if let Err(e) = sent {
                    warn(
                        &mut self.warn,
                        format_args!("announcing on {}: {e}", self.interface),
                    );
                }
            }
        }
        a.left -= 1;
        a.next = now + self.settings.announce_interval;
        self.announcing = (a.left > 0).then_some(a);
    }
}

impl NodeIo {
    /// Brings the floating addresses in line with what is published now; sends the
    /// announcements that are due. Called every turn of the loop and on every change.
    pub(super) fn vip_update(&mut self, node: &Node) {
        if self.vip.is_none() {
            return;
        }
        let p = self.publication(node);
        let lease_end = p.valid_until.filter(|_| p.is_leading());
        let index = self.link.link.index();
        let now = self.now();
        let Some(vip) = self.vip.as_mut() else {
            return;
        };
        vip.read_acks(now);
        let step = plan(vip.held, lease_end, index, now, vip.renew_early);
        vip.act(step, index, now);
        if matches!(step, Step::Add { .. }) {
            // Stopped between the decision and the request: never keep an address past
            // the lease.
            let now = self.clock.core();
            if let Some(vip) = self.vip.as_mut() {
                let step = plan(vip.held, lease_end, index, now, vip.renew_early);
                if step == Step::Remove {
                    vip.act(step, index, now);
                }
            }
        }
        let now = self.now();
        if let Some(vip) = self.vip.as_mut() {
            vip.announce_due(now);
        }
        self.vip_lease_end = lease_end;
    }

    /// When [`NodeIo::vip_update`] is next due (a deadline of the loop).
    pub(super) fn vip_next_due(&self) -> Option<Instant> {
        self.vip.as_ref()?.next_due(self.vip_lease_end)
    }

    /// At a step-down, after the addresses were removed for it: if their removal is not
    /// confirmed, the lease they were held on (`held_on`) counts as published, and the
    /// handover waits it out as for a state file (the kernel's lifetime bounds them
    /// anyway). Confirmed, nothing of them is left for the next leader to overlap.
    pub(super) fn vip_confirm_released(&mut self, held_on: Option<Instant>) {
        let now = self.now();
        let Some(vip) = self.vip.as_mut() else {
            return;
        };
        if !vip.released(now) && held_on.is_some() {
            log::warn!(
                "floating addresses on {}: removal not confirmed; waiting out the lease they \
                 were held on",
                vip.interface
            );
            self.published_until = self.published_until.max(held_on);
        }
    }

    /// At exit: the addresses go, whatever the state.
    pub(super) fn vip_release(&mut self) {
        let now = self.now();
        if let Some(vip) = self.vip.as_mut() {
            vip.act(Step::Remove, None, now);
            vip.read_acks(now);
        }
    }

    /// For the metrics: `None` without `--vip`.
    pub(super) fn vip_held(&self) -> Option<bool> {
        self.vip.as_ref().map(VipHolder::is_held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_EARLY: Duration = Duration::ZERO;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn held(index: u32, expires_ms: u64, lifetime_secs: u32) -> Option<Held> {
        Some(Held {
            index,
            expires: ms(expires_ms),
            lifetime_secs,
        })
    }

    #[test]
    fn lifetimes_round_down_to_seconds_but_never_below_one() {
        assert_eq!(lifetime_secs(Duration::from_millis(290)), 1);
        assert_eq!(lifetime_secs(Duration::from_millis(1_999)), 1);
        assert_eq!(lifetime_secs(Duration::from_millis(2_000)), 2);
        assert_eq!(lifetime_secs(Duration::from_millis(5_900)), 5);
        assert_eq!(lifetime_secs(Duration::MAX), MAX_LIFETIME_SECS);
    }

    #[test]
    fn added_only_while_a_lease_runs_and_removed_before_it_ends() {
        let now = ms(10_000);
        // Not leading, nothing held: nothing to do.
        assert_eq!(plan(None, None, Some(3), now, NO_EARLY), Step::Nothing);
        // Leading with 290 ms left: add for the kernel's least, 1 s.
        let add = Step::Add {
            lifetime_secs: 1,
            fresh: true,
        };
        assert_eq!(plan(None, Some(ms(10_290)), Some(3), now, NO_EARLY), add);
        // Not when the lease ends within RELEASE_EARLY, and not without the interface.
        assert_eq!(
            plan(None, Some(ms(10_005)), Some(3), now, NO_EARLY),
            Step::Nothing
        );
        assert_eq!(
            plan(None, Some(ms(10_290)), None, now, NO_EARLY),
            Step::Nothing
        );
        // Held: removed when the lease is about to end, has ended, or is not published.
        let h = held(3, 10_900, 1);
        assert_eq!(
            plan(h, Some(ms(10_290)), Some(3), now, NO_EARLY),
            Step::Nothing
        );
        assert_eq!(
            plan(h, Some(ms(10_004)), Some(3), now, NO_EARLY),
            Step::Remove
        );
        assert_eq!(
            plan(h, Some(ms(9_990)), Some(3), now, NO_EARLY),
            Step::Remove
        );
        assert_eq!(plan(h, None, Some(3), now, NO_EARLY), Step::Remove);
        assert_eq!(plan(h, Some(ms(10_290)), None, now, NO_EARLY), Step::Remove);
    }

    #[test]
    fn renewed_at_half_the_lifetime_or_on_a_new_interface() {
        let now = ms(10_000);
        let lease = Some(ms(12_700));
        // 2.7 s of lease left: 2 s lifetimes, renewed once less than 1 s is left.
        assert_eq!(
            plan(held(3, 11_001, 2), lease, Some(3), now, NO_EARLY),
            Step::Nothing
        );
        let renew = Step::Add {
            lifetime_secs: 2,
            fresh: false,
        };
        assert_eq!(
            plan(held(3, 10_999, 2), lease, Some(3), now, NO_EARLY),
            renew
        );
        let readd = Step::Add {
            lifetime_secs: 2,
            fresh: true,
        };
        assert_eq!(
            plan(held(3, 11_500, 2), lease, Some(4), now, NO_EARLY),
            readd
        );
    }

    #[test]
    fn a_renewal_may_ride_on_a_turn_up_to_a_tick_early() {
        let now = ms(10_000);
        let lease = Some(ms(12_700));
        let renew = Step::Add {
            lifetime_secs: 2,
            fresh: false,
        };
        let tick = Duration::from_millis(50);
        // 2 s lifetime, halfway at 1 s left: a turn 40 ms before that renews, one 60 ms
        // before it does not.
        assert_eq!(plan(held(3, 11_040, 2), lease, Some(3), now, tick), renew);
        assert_eq!(
            plan(held(3, 11_060, 2), lease, Some(3), now, tick),
            Step::Nothing
        );
        // A tick longer than a quarter of the lifetime: a quarter at most (250 ms early
        // for a 1 s lifetime), so renewals never follow each other on every turn.
        let slow = Duration::from_secs(2);
        let short = Step::Add {
            lifetime_secs: 2,
            fresh: false,
        };
        assert_eq!(plan(held(3, 10_740, 1), lease, Some(3), now, slow), short);
        assert_eq!(
            plan(held(3, 10_760, 1), lease, Some(3), now, slow),
            Step::Nothing
        );
    }

    #[test]
    fn the_next_change_is_the_earlier_of_removal_and_renewal() {
        assert_eq!(next_change(None, Some(ms(10_290))), None);
        let h = held(3, 11_000, 1);
        assert_eq!(next_change(h, Some(ms(10_290))), Some(ms(10_285)));
        assert_eq!(next_change(h, Some(ms(12_000))), Some(ms(10_500)));
        assert_eq!(next_change(h, None), Some(ms(10_500)));
    }
}
