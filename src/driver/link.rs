//! The interface watcher: keeps the node's socket matched to what `--interface` is now.
//!
//! An interface can go down and up, be deleted and recreated (a network restart, a DHCP
//! client, NetworkManager), change its address, or not exist yet at start. The kernel
//! announces each of these on rtnetlink ([`crate::netlink`]); the watcher reads those
//! notifications in the event loop, and when one concerns our interface (by name, or by
//! its last known index) it re-checks the interface ([`probe`]: its index, flags and IPv4
//! address, a few system calls the kernel answers at once) and compares the result with
//! what the socket was opened for ([`decide`]):
//! - usable and not what the socket was opened for (or no socket): open a new socket,
//!   re-joining the group on the new link and pinning the outgoing interface, and tell the
//!   core ([`Node::handle_link_restored`]) so it re-broadcasts its vote at once;
//! - unusable (gone, down, no IPv4 address for an IPv4 group): close the socket. The core
//!   keeps running on its timers; its frames are dropped, so the cluster sees the node as
//!   gone, and a leader's lease runs out as with any lost link.
//!
//! Each change is logged once. Fallbacks, all bounded to one check per [`RECHECK`]: a
//! missed notification (ENOBUFS on the netlink socket) re-checks at once; while there is
//! no socket the interface is re-checked every [`RECHECK`] (this also covers a netlink
//! socket that could not be opened); sends that fail with an error meaning "no such
//! link" re-check and re-open the socket even if the interface looks unchanged.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};
use nix::net::if_::InterfaceFlags;
use votecast_core::election::{Instant, Node};

use super::socket::open_socket;
use super::NodeIo;
use crate::logging::{RateLimit, WARN_EVERY};
use crate::netlink::socket::is_overrun;
use crate::netlink::wire::{
    AddressMessage, LinkMessage, Message, Messages, AF_INET, IFA_F_SECONDARY,
};
use crate::netlink::{groups, RouteSocket};

/// The node's UDP socket in the poller.
pub(super) const SOCKET: Token = Token(0);
/// The netlink socket in the poller.
pub(super) const NETLINK: Token = Token(2);

/// The longest the watcher goes without a check while it has no socket, and the shortest
/// interval between two re-opens forced by send errors.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Netlink datagrams are at most a page or `NLMSG_GOODSIZE` (8 KiB); four times that
/// leaves room for any kernel's larger pages.
const NETLINK_BUFFER: usize = 32 * 1024;

/// What the socket is opened for: the interface index and (IPv4 groups) the address
/// frames are sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub index: u32,
    pub ipv4: Option<Ipv4Addr>,
}

/// The interface as a probe found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// No interface of that name.
    Absent,
    /// It exists but is administratively down.
    Down { index: u32 },
    /// Up, but without the IPv4 address an IPv4 group is sent from.
    NoAddress { index: u32 },
    /// Up and ready for the socket.
    Usable(Binding),
}

impl Link {
    pub fn index(&self) -> Option<u32> {
        match *self {
            Link::Absent => None,
            Link::Down { index } | Link::NoAddress { index } => Some(index),
            Link::Usable(b) => Some(b.index),
        }
    }
}

/// Looks the interface up now: its index, whether it is up, its first IPv4 address (only
/// asked for an IPv4 group). `None` if the addresses could not be listed.
pub fn probe(interface: &str, ipv4: bool) -> Option<Link> {
    let Ok(index) = nix::net::if_::if_nametoindex(interface) else {
        return Some(Link::Absent);
    };
    let mut up = false;
    let mut address = None;
    for ifaddr in nix::ifaddrs::getifaddrs().ok()? {
        if ifaddr.interface_name != interface {
            continue;
        }
        up |= ifaddr.flags.contains(InterfaceFlags::IFF_UP);
        if let Some(sin) = ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            address = address.or(Some(sin.ip()));
        }
    }
    Some(match (up, ipv4, address) {
        (false, ..) => Link::Down { index },
        (true, true, None) => Link::NoAddress { index },
        (true, true, Some(a)) => Link::Usable(Binding {
            index,
            ipv4: Some(a),
        }),
        (true, false, _) => Link::Usable(Binding { index, ipv4: None }),
    })
}

/// Whether an address notification can change what [`probe`] finds on the interface
/// with `index`. The probe reads addresses only for an IPv4 group, and then only the first
/// IPv4 address, which is a primary one: the kernel lists every primary address before the
/// secondaries (addresses in the subnet of one already there). So an IPv6 address, or a
/// secondary IPv4 one such as a floating address in the LAN's subnet renewed twice a
/// second (`--vip`), cannot change the binding.
pub fn address_matters(address: &AddressMessage<'_>, index: Option<u32>, ipv4: bool) -> bool {
    ipv4 && address.family == AF_INET
        && Some(address.index) == index
        && address.flags & IFA_F_SECONDARY == 0
}

/// What to do with the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Keep,
    Open(Binding),
    Close,
}

/// The socket was opened for `bound` (None: there is none); the interface is `link` now.
/// `force` re-opens a usable interface's socket even if it looks the same (sends failed).
pub fn decide(bound: Option<Binding>, link: Link, force: bool) -> Action {
    match link {
        Link::Usable(b) if force || bound != Some(b) => Action::Open(b),
        Link::Usable(_) => Action::Keep,
        _ if bound.is_some() => Action::Close,
        _ => Action::Keep,
    }
}

/// The log line for a change of the interface from `was` to `now`; `None` if nothing
/// changed.
pub fn change_line(interface: &str, was: Link, now: Link) -> Option<ChangeLine<'_>> {
    (was != now).then_some(ChangeLine {
        interface,
        was,
        now,
    })
}

/// See [`change_line`].
#[derive(Debug)]
pub struct ChangeLine<'a> {
    interface: &'a str,
    was: Link,
    now: Link,
}

impl ChangeLine<'_> {
    /// Losing the link is a warning; anything else is news.
    pub fn level(&self) -> log::Level {
        match self.now {
            Link::Usable(_) => log::Level::Info,
            _ => log::Level::Warn,
        }
    }
}

struct Address(Option<Ipv4Addr>);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(a) => write!(f, ", address {a}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for ChangeLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.interface;
        const SILENT: &str = "not sending until it is back; the cluster sees this node as gone";
        match (self.was, self.now) {
            (_, Link::Absent) => write!(f, "interface {name} is gone: {SILENT}"),
            (_, Link::Down { index }) => {
                write!(f, "interface {name} (index {index}) is down: {SILENT}")
            }
            (_, Link::NoAddress { index }) => write!(
                f,
                "interface {name} (index {index}) has no IPv4 address: {SILENT}"
            ),
            (Link::Usable(old), Link::Usable(new)) => {
                write!(
                    f,
                    "interface {name} changed (index {} -> {}",
                    old.index, new.index
                )?;
                if let (Some(a), Some(b)) = (old.ipv4, new.ipv4) {
                    write!(f, ", address {a} -> {b}")?;
                }
                write!(f, "): re-opening the socket")
            }
            (_, Link::Usable(new)) => write!(
                f,
                "interface {name} is usable (index {}{}): joining the group",
                new.index,
                Address(new.ipv4)
            ),
        }
    }
}

/// Does this send error say that the socket's link is gone (so re-checking may help)?
pub fn is_link_error(e: &io::Error) -> bool {
    use nix::libc::{EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENODEV, ENXIO};
    matches!(
        e.raw_os_error(),
        Some(ENODEV | ENXIO | ENETDOWN | ENETUNREACH | EADDRNOTAVAIL)
    )
}

/// The watcher's state (see the module docs).
pub(super) struct LinkWatch {
    interface: String,
    ipv4: bool,
    netlink: Option<RouteSocket>,
    buf: Box<[u8]>,
    /// The interface as last probed.
    pub(super) link: Link,
    /// What the current socket was opened for.
    pub(super) bound: Option<Binding>,
    /// A notification concerned the interface (or some were lost): check it.
    dirty: bool,
    /// The interface was deleted, or notifications were lost: the socket may be stale
    /// even if the interface looks the same at the next check (deleted and recreated
    /// with the same index and address, which drops the group membership): re-open it.
    stale: bool,
    /// Sends failed with a link error: re-check and re-open.
    pub(super) suspect: bool,
    last_check: Option<Instant>,
    last_forced: Option<Instant>,
    open_failures: RateLimit,
    /// Warnings about a socket registration that could not be changed.
    pub(super) watch_failures: RateLimit,
    forced_reopens: RateLimit,
}

impl LinkWatch {
    /// Subscribes to link notifications, and to IPv4 address notifications for an IPv4
    /// group (the only addresses [`probe`] reads), before the first probe, so that no
    /// change between the two is missed. Without netlink (a warning) the interface is
    /// re-checked every [`RECHECK`] while there is no socket.
    pub(super) fn new(interface: &str, ipv4: bool) -> LinkWatch {
        let addresses = if ipv4 { groups::IPV4_ADDRESS } else { 0 };
        let subscribed = groups::LINK | addresses;
        let netlink = RouteSocket::open(subscribed)
            .inspect_err(|e| {
                log::warn!(
                    "cannot watch interface changes (netlink: {e}); interface {interface} is \
                     re-checked every {RECHECK:?} while it is unusable"
                )
            })
            .ok();
        LinkWatch {
            interface: interface.to_string(),
            ipv4,
            netlink,
            buf: vec![0u8; NETLINK_BUFFER].into_boxed_slice(),
            link: Link::Absent,
            bound: None,
            dirty: false,
            stale: false,
            suspect: false,
            last_check: None,
            last_forced: None,
            open_failures: RateLimit::new(WARN_EVERY),
            watch_failures: RateLimit::new(WARN_EVERY),
            forced_reopens: RateLimit::new(WARN_EVERY),
        }
    }

    pub(super) fn register(&mut self, registry: &Registry) -> io::Result<()> {
        match self.netlink.as_mut() {
            Some(s) => registry.register(s, NETLINK, Interest::READABLE),
            None => Ok(()),
        }
    }

    /// Reads every queued notification; marks the watcher dirty if one concerns our
    /// interface, or if some were lost.
    pub(super) fn read(&mut self) {
        let Some(socket) = self.netlink.as_ref() else {
            return;
        };
        loop {
            let len = match socket.recv(&mut self.buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_overrun(&e) => {
                    log::debug!("netlink: notifications lost ({e}): re-checking the interface");
                    self.dirty = true;
                    self.stale = true;
                    continue;
                }
                Err(e) => {
                    log::warn!("netlink receive failed: {e}; re-checking the interface");
                    self.dirty = true;
                    return;
                }
            };
            for message in Messages::new(&self.buf[..len]) {
                let ours = |l: &LinkMessage| {
                    l.name == Some(self.interface.as_bytes()) || Some(l.index) == self.link.index()
                };
                let concerns_us = match message.and_then(|(h, p)| Message::parse(&h, p)) {
                    Ok(Message::NewLink(l)) => ours(&l),
                    Ok(Message::DelLink(l)) => {
                        self.stale |= ours(&l);
                        ours(&l)
                    }
                    Ok(Message::NewAddress(a) | Message::DelAddress(a)) => {
                        address_matters(&a, self.link.index(), self.ipv4)
                    }
                    Ok(_) => false,
                    // Cannot tell: look.
                    Err(_) => true,
                };
                self.dirty |= concerns_us;
            }
        }
    }

    /// Is a check due at `now`?
    pub(super) fn due(&self, now: Instant) -> bool {
        self.next_check().is_some_and(|at| at <= now) || self.dirty
    }

    /// When the next check is due without a notification: [`RECHECK`] after the last one
    /// while there is no socket or sends fail.
    pub(super) fn next_check(&self) -> Option<Instant> {
        let waiting = self.bound.is_none() || self.suspect;
        match (waiting, self.last_check) {
            (false, _) => None,
            (true, None) => Some(Instant::ZERO),
            (true, Some(last)) => Some(last + RECHECK),
        }
    }

    /// The interface as it is now, recorded; logs the change if there was one.
    fn check(&mut self, now: Instant) -> Link {
        self.dirty = false;
        self.last_check = Some(now);
        let Some(link) = probe(&self.interface, self.ipv4) else {
            log::warn!("cannot list the addresses of interface {}", self.interface);
            return self.link;
        };
        if let Some(line) = change_line(&self.interface, self.link, link) {
            log::log!(line.level(), "{line}");
        }
        self.link = link;
        link
    }
}

impl NodeIo {
    /// Checks the interface if due and re-opens, closes or keeps the socket to match;
    /// tells the node when it can send again. The caller drains the node afterwards.
    pub(super) fn check_link(&mut self, registry: &Registry, node: &mut Node) {
        let now = self.now();
        if !self.link.due(now) {
            return;
        }
        let stale = std::mem::take(&mut self.link.stale);
        let suspect = std::mem::take(&mut self.link.suspect)
            && self
                .link
                .last_forced
                .is_none_or(|t| now.saturating_duration_since(t) >= RECHECK);
        let was = self.link.link;
        let link = self.link.check(now);
        let action = decide(self.link.bound, link, stale || suspect);
        if suspect && action != Action::Close {
            self.link.last_forced = Some(now);
        }
        match action {
            Action::Keep => {}
            Action::Close => self.close_socket(registry),
            Action::Open(binding) if stale && was == link => {
                log::info!(
                    "interface {} was deleted and recreated (or notifications were lost): \
                     re-opening the socket",
                    self.link.interface
                );
                self.open_socket(registry, binding, node, true);
            }
            Action::Open(binding) => {
                if suspect && was == link {
                    if let Some(s) = self.link.forced_reopens.allow(std::time::Instant::now()) {
                        log::warn!(
                            "sends on interface {} fail: re-opening the socket{s}",
                            self.link.interface
                        );
                    }
                }
                self.open_socket(registry, binding, node, was != link);
            }
        }
    }

    fn close_socket(&mut self, registry: &Registry) {
        self.quiet = None;
        if let Some(mut socket) = self.socket.take() {
            if self.socket_watched {
                let _ = registry.deregister(&mut socket);
            }
        }
        self.socket_watched = true;
        self.link.bound = None;
    }

    /// Watch the socket for frames (`watch`), or leave it to be read on the loop's turns
    /// while the node says its frames can wait (`Node::frames_can_wait`): a leader then
    /// wakes once per tick, for its heartbeat, instead of once more per answer. A socket
    /// registered again with frames waiting is reported readable at once.
    pub(super) fn watch_socket(&mut self, registry: &Registry, watch: bool) {
        if watch == self.socket_watched {
            return;
        }
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        let result = if watch {
            registry.register(socket, SOCKET, Interest::READABLE)
        } else {
            registry.deregister(socket)
        };
        match result {
            Ok(()) => self.socket_watched = watch,
            // Still in its old registration: the loop reads it as before, and tries again
            // on the next turn.
            Err(e) => {
                if let Some(s) = self.link.watch_failures.allow(std::time::Instant::now()) {
                    log::warn!("epoll: cannot change the socket's registration: {e}{s}");
                }
            }
        }
    }

    /// Sets the quiet socket's filters (and the main socket's) to the node's current
    /// [`Node::wake_rule`]. A filter that cannot be set sends every frame to the main
    /// socket again; that is logged (rate-limited) and tried again on a later turn.
    pub(super) fn quiet_update(&mut self, node: &Node) {
        let (Some(quiet), Some(socket)) = (self.quiet.as_mut(), self.socket.as_ref()) else {
            return;
        };
        // Read every turn, asleep or not, to see the wall clock being set.
        let offset = super::quiet::clock_offset(self.clock.id());
        let now = self.clock.core();
        quiet.watch_offset(now, offset);
        let rule = node.wake_rule(now).filter(|_| quiet.may_sleep(now));
        if rule == quiet.rule() {
            return;
        }
        match quiet.set_rule(socket, rule) {
            // The first frame to wait arrives after this reading.
            Ok(()) if rule.is_some() => quiet.note_offset(offset),
            Ok(()) => {}
            Err(e) => {
                if let Some(s) = self.link.watch_failures.allow(std::time::Instant::now()) {
                    log::warn!("cannot set the quiet socket's filters: {e}{s}");
                }
            }
        }
    }

    /// Replaces the socket with one opened for `binding`. `changed`: the interface came
    /// back or changed (not a re-open forced by send errors), so the send-error log
    /// counts from 1 again.
    fn open_socket(
        &mut self,
        registry: &Registry,
        binding: Binding,
        node: &mut Node,
        changed: bool,
    ) {
        self.close_socket(registry);
        let opened = open_socket(&self.link.interface, &self.transport).and_then(|o| {
            let mut socket = UdpSocket::from_std(o.socket.into());
            registry
                .register(&mut socket, SOCKET, Interest::READABLE)
                .map_err(|source| crate::daemon::DaemonError::EventLoop {
                    what: "epoll register",
                    source,
                })?;
            Ok((socket, o.destinations, o.unicast_answers, o.quiet))
        });
        match opened {
            Ok((socket, destinations, unicast_answers, quiet)) => {
                self.socket = Some(socket);
                self.quiet = quiet.and_then(super::quiet::Quiet::open);
                // A new socket may have a new source address: learn the leader's again.
                self.leader_addr = None;
                node.set_unicast_answers(unicast_answers);
                // Re-derived on every open: own addresses may have changed (unicast).
                self.destinations = destinations;
                self.link.bound = Some(binding);
                if changed {
                    self.send_errors_logged = 0;
                }
                node.handle_link_restored(self.now());
            }
            Err(e) => {
                if let Some(s) = self.link.open_failures.allow(std::time::Instant::now()) {
                    log::warn!(
                        "interface {}: cannot open the socket, retrying every {RECHECK:?}: {e}{s}",
                        self.link.interface
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Binding = Binding {
        index: 4,
        ipv4: Some(Ipv4Addr::new(169, 254, 0, 11)),
    };

    #[test]
    fn the_socket_follows_the_interface() {
        let b = Binding {
            ipv4: Some(Ipv4Addr::new(169, 254, 0, 51)),
            ..A
        };
        let recreated = Binding { index: 9, ..A };
        assert_eq!(decide(None, Link::Absent, false), Action::Keep);
        assert_eq!(decide(None, Link::Usable(A), false), Action::Open(A));
        assert_eq!(decide(Some(A), Link::Usable(A), false), Action::Keep);
        assert_eq!(decide(Some(A), Link::Usable(A), true), Action::Open(A));
        assert_eq!(decide(Some(A), Link::Usable(b), false), Action::Open(b));
        assert_eq!(
            decide(Some(A), Link::Usable(recreated), false),
            Action::Open(recreated)
        );
        for gone in [
            Link::Absent,
            Link::Down { index: 4 },
            Link::NoAddress { index: 4 },
        ] {
            assert_eq!(decide(Some(A), gone, false), Action::Close);
            assert_eq!(decide(Some(A), gone, true), Action::Close);
            assert_eq!(decide(None, gone, true), Action::Keep);
        }
    }

    #[test]
    fn every_change_has_one_line() {
        let line = |was, now| change_line("lan0", was, now).map(|l| (l.level(), l.to_string()));
        assert!(line(Link::Usable(A), Link::Usable(A)).is_none());
        assert!(line(Link::Absent, Link::Absent).is_none());
        assert_eq!(
            line(Link::Usable(A), Link::Absent).unwrap(),
            (
                log::Level::Warn,
                "interface lan0 is gone: not sending until it is back; the cluster sees this \
                 node as gone"
                    .into()
            )
        );
        assert!(line(Link::Usable(A), Link::Down { index: 4 })
            .unwrap()
            .1
            .starts_with("interface lan0 (index 4) is down: not sending"));
        assert!(line(Link::Down { index: 4 }, Link::NoAddress { index: 4 })
            .unwrap()
            .1
            .starts_with("interface lan0 (index 4) has no IPv4 address"));
        assert_eq!(
            line(Link::Absent, Link::Usable(A)).unwrap(),
            (
                log::Level::Info,
                "interface lan0 is usable (index 4, address 169.254.0.11): joining the group"
                    .into()
            )
        );
        let moved = Binding {
            index: 9,
            ipv4: Some(Ipv4Addr::new(169, 254, 0, 51)),
        };
        assert_eq!(
            line(Link::Usable(A), Link::Usable(moved)).unwrap().1,
            "interface lan0 changed (index 4 -> 9, address 169.254.0.11 -> 169.254.0.51): \
             re-opening the socket"
        );
        let v6 = Binding {
            index: 4,
            ipv4: None,
        };
        assert_eq!(
            line(Link::Down { index: 4 }, Link::Usable(v6)).unwrap().1,
            "interface lan0 is usable (index 4): joining the group"
        );
    }

    #[test]
    fn link_errors_are_recognised() {
        for errno in [
            nix::libc::ENODEV,
            nix::libc::ENETUNREACH,
            nix::libc::EADDRNOTAVAIL,
        ] {
            assert!(is_link_error(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!is_link_error(&io::Error::from_raw_os_error(
            nix::libc::EPERM
        )));
        assert!(!is_link_error(&io::Error::from(io::ErrorKind::WouldBlock)));
    }

    #[test]
    fn probing_lo_and_a_missing_interface() {
        assert_eq!(probe("nosuchif0", true), Some(Link::Absent));
        // lo is up everywhere tests run, with 127.0.0.1.
        let Some(Link::Usable(b)) = probe("lo", true) else {
            panic!("lo is not usable: {:?}", probe("lo", true));
        };
        assert_eq!(b.ipv4, Some(Ipv4Addr::LOCALHOST));
        assert_eq!(Some(b.index), nix::net::if_::if_nametoindex("lo").ok());
    }

    #[test]
    fn only_a_primary_ipv4_address_of_our_interface_matters_to_an_ipv4_group() {
        let primary = AddressMessage {
            family: AF_INET,
            prefix_len: 16,
            flags: 0x80, // IFA_F_PERMANENT
            scope: 0,
            index: 4,
            address: Some(Ipv4Addr::new(169, 254, 0, 11).into()),
            local: Some(Ipv4Addr::new(169, 254, 0, 11).into()),
            label: None,
            cache_info: None,
        };
        assert!(address_matters(&primary, Some(4), true));
        assert!(
            !address_matters(&primary, Some(5), true),
            "another interface"
        );
        assert!(!address_matters(&primary, None, true), "ours is gone");
        assert!(!address_matters(&primary, Some(4), false), "an IPv6 group");
        // A floating address in the LAN's subnet, as a --vip renewal announces it.
        let secondary = AddressMessage {
            flags: IFA_F_SECONDARY,
            address: Some(Ipv4Addr::new(169, 254, 100, 1).into()),
            local: Some(Ipv4Addr::new(169, 254, 100, 1).into()),
            ..primary
        };
        assert!(!address_matters(&secondary, Some(4), true));
        let v6 = AddressMessage {
            family: crate::netlink::wire::AF_INET6,
            address: Some(std::net::Ipv6Addr::LOCALHOST.into()),
            local: None,
            ..primary
        };
        assert!(!address_matters(&v6, Some(4), true));
    }

    #[test]
    fn checks_are_due_while_unbound_or_dirty_at_most_once_a_recheck() {
        let mut w = LinkWatch::new("nosuchif0", true);
        let t0 = Instant::ZERO + Duration::from_secs(5);
        assert!(w.due(t0), "never checked");
        assert_eq!(w.check(t0), Link::Absent);
        assert!(!w.due(t0 + RECHECK / 2));
        assert!(w.due(t0 + RECHECK));
        w.bound = Some(A);
        assert!(!w.due(t0 + RECHECK * 10), "bound: only on notifications");
        w.suspect = true;
        assert!(w.due(t0 + RECHECK));
        w.suspect = false;
        w.dirty = true;
        assert!(w.due(t0), "a notification: at once");
    }
}
