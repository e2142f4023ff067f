//! The node's socket: [`open_socket`] is the one place it is opened, at start and
//! whenever the interface changes (see `link`), for either transport: the multicast
//! socket here (group membership on one interface, sending pinned to that interface,
//! TTL / hop limit 1), the unicast one in [`super::unicast`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use super::peers::Transport;
use super::unicast::open_unicast_socket;
use crate::daemon::DaemonError;

/// An open socket and where every frame is sent.
pub struct Opened {
    pub socket: Socket,
    /// The group, or every peer but this node.
    pub destinations: Vec<SocketAddr>,
    /// The socket receives unicast at the source address of the frames it sends, so
    /// followers may answer this node's heartbeats there (`Node::set_unicast_answers`).
    pub unicast_answers: bool,
    /// A second socket on the group for the frames that can wait (see [`super::quiet`]):
    /// with a multicast group on a real interface, where it could be opened.
    pub quiet: Option<Socket>,
}

/// Opens the node's socket of `transport` on `interface`, non-blocking. Every (re-)open
/// goes through here.
pub fn open_socket(interface: &str, transport: &Transport) -> Result<Opened, DaemonError> {
    match transport {
        Transport::Multicast(group) => {
            let shared_host = is_loopback(interface)?;
            let socket = open_multicast_socket(interface, *group, shared_host)?;
            let quiet = if shared_host {
                None
            } else {
                open_quiet_socket(&socket, interface, *group)
                    .inspect_err(|e| {
                        log::warn!(
                            "{e}: every frame of the group wakes this node (no quiet socket)"
                        )
                    })
                    .ok()
            };
            Ok(Opened {
                socket,
                destinations: vec![*group],
                unicast_answers: !shared_host,
                quiet,
            })
        }
        Transport::Unicast(peers) => {
            let unicast = open_unicast_socket(interface, peers)?;
            Ok(Opened {
                socket: unicast.socket,
                destinations: unicast.targets,
                unicast_answers: true,
                quiet: None,
            })
        }
    }
}

/// Open the multicast socket: joined on `interface` only, sending through `interface`
/// only, TTL / hop limit 1. Two shapes:
/// - `shared_host` (the loopback interface, where every node of a cluster runs on one
///   host): bound to the group address and port with SO_REUSEADDR/SO_REUSEPORT, so the
///   nodes share the port; multicast loopback on, since that is how they reach each
///   other (our own frames come back too, and the core drops them). Unicast to one of
///   them cannot be told apart by address, so answers stay multicast.
/// - otherwise (one node per host): bound to the wildcard address and the group port,
///   receiving only the groups it joined (IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off) and
///   unicast to this host's addresses on that port, which is where followers answer a
///   leader's heartbeats. Multicast loopback off: our own frames do not come back, so no
///   node wakes for them (VRRP daemons do the same). No SO_REUSEPORT: a second daemon on
///   the same port would share the unicast answers at random; its bind fails instead.
pub fn open_multicast_socket(
    interface: &str,
    group: SocketAddr,
    shared_host: bool,
) -> Result<Socket, DaemonError> {
    let (socket, index) = group_socket(interface, group)?;
    let setup = setup_step(interface, group);
    if shared_host {
        setup("SO_REUSEADDR", socket.set_reuse_address(true))?;
        setup("SO_REUSEPORT", socket.set_reuse_port(true))?;
    }
    match group.ip() {
        IpAddr::V4(addr) => {
            let local = interface_ipv4(interface)?;
            setup(
                "joining the group",
                socket.join_multicast_v4_n(&addr, &InterfaceIndexOrAddress::Index(index)),
            )?;
            setup("IP_MULTICAST_IF", socket.set_multicast_if_v4(&local))?;
            setup("IP_MULTICAST_TTL", socket.set_multicast_ttl_v4(1))?;
            setup(
                "IP_MULTICAST_LOOP",
                socket.set_multicast_loop_v4(shared_host),
            )?;
            if !shared_host {
                setup("IP_MULTICAST_ALL", socket.set_multicast_all_v4(false))?;
            }
        }
        IpAddr::V6(addr) => {
            setup("IPV6_V6ONLY", socket.set_only_v6(true))?;
            setup("joining the group", socket.join_multicast_v6(&addr, index))?;
            setup("IPV6_MULTICAST_IF", socket.set_multicast_if_v6(index))?;
            setup("IPV6_MULTICAST_HOPS", socket.set_multicast_hops_v6(1))?;
            setup(
                "IPV6_MULTICAST_LOOP",
                socket.set_multicast_loop_v6(shared_host),
            )?;
            if !shared_host {
                setup("IPV6_MULTICAST_ALL", socket.set_multicast_all_v6(false))?;
            }
        }
    }
    // Shared host: binding to the group address (not the wildcard) keeps other groups on
    // the same port out of this socket. A link-local IPv6 group needs the interface as
    // its scope. Otherwise the wildcard, so that unicast to this host arrives too.
    let bind_addr = match group {
        _ if !shared_host => SocketAddr::new(
            match group {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            },
            group.port(),
        ),
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

/// The quiet socket beside `main` (bound to the wildcard address and the group port,
/// see [`open_multicast_socket`]): joined to the group on `interface` only, bound to the
/// group address itself, so that unicast to this host never reaches it, receiving
/// nothing until [`super::quiet::Quiet::set_rule`] sets its filter. Both sockets need
/// SO_REUSEADDR to share the port; `main` gets it only after its own bind, which
/// therefore still fails if another daemon holds the port.
pub fn open_quiet_socket(
    main: &Socket,
    interface: &str,
    group: SocketAddr,
) -> Result<Socket, DaemonError> {
    let (socket, index) = group_socket(interface, group)?;
    let setup = setup_step(interface, group);
    // Nothing is kept before the rule's filter replaces this one.
    setup(
        "the quiet socket's filter",
        socket.attach_filter(&super::quiet::drop_all()),
    )?;
    setup("SO_REUSEADDR", socket.set_reuse_address(true))?;
    let bind_addr = match group {
        SocketAddr::V4(v4) => {
            setup(
                "joining the group",
                socket.join_multicast_v4_n(v4.ip(), &InterfaceIndexOrAddress::Index(index)),
            )?;
            setup("IP_MULTICAST_ALL", socket.set_multicast_all_v4(false))?;
            group
        }
        SocketAddr::V6(v6) => {
            setup("IPV6_V6ONLY", socket.set_only_v6(true))?;
            setup(
                "joining the group",
                socket.join_multicast_v6(v6.ip(), index),
            )?;
            setup("IPV6_MULTICAST_ALL", socket.set_multicast_all_v6(false))?;
            if v6.scope_id() == 0 {
                SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, index))
            } else {
                group
            }
        }
    };
    // The main socket shares the port only if the quiet one is there to share it.
    setup("SO_REUSEADDR", main.set_reuse_address(true))?;
    if let Err(e) = setup(
        "binding the quiet socket to the group",
        socket.bind(&SockAddr::from(bind_addr)),
    ) {
        let _ = main.set_reuse_address(false);
        return Err(e);
    }
    setup("O_NONBLOCK", socket.set_nonblocking(true))?;
    Ok(socket)
}

/// A new UDP socket of `group`'s address family, and the index of `interface`.
fn group_socket(interface: &str, group: SocketAddr) -> Result<(Socket, u32), DaemonError> {
    let index = nix::net::if_::if_nametoindex(interface).map_err(|source| {
        DaemonError::InterfaceNotFound {
            interface: interface.to_string(),
            source,
        }
    })?;
    let domain = if group.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(DaemonError::CreateSocket)?;
    Ok((socket, index))
}

/// Names the failed `step` of setting up a socket for `group` on `interface`.
fn setup_step(
    interface: &str,
    group: SocketAddr,
) -> impl Fn(&'static str, io::Result<()>) -> Result<(), DaemonError> + '_ {
    move |step, r| {
        r.map_err(|source| DaemonError::SocketSetup {
            step,
            interface: interface.to_string(),
            group,
            source,
        })
    }
}

/// Whether `interface` is a loopback interface (IFF_LOOPBACK).
fn is_loopback(interface: &str) -> Result<bool, DaemonError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(DaemonError::ListInterfaces)?;
    Ok(addrs.filter(|a| a.interface_name == interface).any(|a| {
        a.flags
            .contains(nix::net::if_::InterfaceFlags::IFF_LOOPBACK)
    }))
}

/// The first IPv4 address of `interface`: IP_MULTICAST_IF takes an address.
fn interface_ipv4(interface: &str) -> Result<Ipv4Addr, DaemonError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(DaemonError::ListInterfaces)?;
    for ifaddr in addrs {
        if ifaddr.interface_name != interface {
            continue;
        }
        if let Some(sin) = ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
            return Ok(sin.ip());
        }
    }
    Err(DaemonError::NoIpv4Address {
        interface: interface.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_interface_is_named() {
        let err = open_multicast_socket("nosuchif0", "239.1.2.3:7000".parse().unwrap(), false)
            .unwrap_err();
        assert!(
            matches!(err, DaemonError::InterfaceNotFound { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("\"nosuchif0\": not found"),
            "{err}"
        );
    }
}
