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
}

/// Opens the node's socket of `transport` on `interface`, non-blocking. Every (re-)open
/// goes through here.
pub fn open_socket(interface: &str, transport: &Transport) -> Result<Opened, DaemonError> {
    match transport {
        Transport::Multicast(group) => Ok(Opened {
            socket: open_multicast_socket(interface, *group)?,
            destinations: vec![*group],
        }),
        Transport::Unicast(peers) => {
            let unicast = open_unicast_socket(interface, peers)?;
            Ok(Opened {
                socket: unicast.socket,
                destinations: unicast.targets,
            })
        }
    }
}

/// Open the multicast socket: bound to the group port with SO_REUSEADDR/SO_REUSEPORT so
/// several nodes share a host, joined on `interface` only, sending through `interface`
/// only, TTL / hop limit 1, loopback on (our own frames come back and the core drops them).
pub fn open_multicast_socket(interface: &str, group: SocketAddr) -> Result<Socket, DaemonError> {
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
    let setup = |step: &'static str, r: io::Result<()>| {
        r.map_err(|source| DaemonError::SocketSetup {
            step,
            interface: interface.to_string(),
            group,
            source,
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
        let err =
            open_multicast_socket("nosuchif0", "239.1.2.3:7000".parse().unwrap()).unwrap_err();
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
