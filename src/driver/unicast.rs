//! The unicast socket (`--peers`): bound to this node's address on `--interface` and the
//! port, sending through that interface only (SO_BINDTODEVICE where the kernel allows
//! it), TTL / hop limit 1, and the list of peers each frame goes to.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::peers::Peers;
use crate::daemon::DaemonError;

/// An open unicast socket and where frames go.
#[derive(Debug)]
pub struct UnicastSocket {
    pub socket: Socket,
    /// The address frames are sent from (the other nodes accept only listed sources).
    pub local: SocketAddr,
    /// Every peer but this node itself.
    pub targets: Vec<SocketAddr>,
}

/// Open the socket for `peers` on `interface`: SO_REUSEADDR/SO_REUSEPORT as for the
/// group (several nodes with distinct addresses can share a host), bound to this node's
/// address (see [`Peers::local_ip`]) and port, pinned to the interface, TTL / hop limit 1.
pub fn open_unicast_socket(interface: &str, peers: &Peers) -> Result<UnicastSocket, DaemonError> {
    let index = nix::net::if_::if_nametoindex(interface).map_err(|source| {
        DaemonError::InterfaceNotFound {
            interface: interface.to_string(),
            source,
        }
    })?;
    let own = interface_addrs(interface)?;
    let family = if peers.is_ipv6() { "IPv6" } else { "IPv4" };
    let local_ip = peers
        .local_ip(&own)
        .ok_or_else(|| DaemonError::NoPeerAddress {
            interface: interface.to_string(),
            family,
        })?;
    let port = peers.local_port(local_ip);
    let local = match local_ip {
        // A link-local address exists only within its interface.
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
            SocketAddr::V6(SocketAddrV6::new(v6, port, 0, index))
        }
        ip => SocketAddr::new(ip, port),
    };
    let domain = if peers.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(DaemonError::CreateSocket)?;
    let setup = |step: &'static str, r: io::Result<()>| {
        r.map_err(|source| DaemonError::UnicastSetup {
            step,
            interface: interface.to_string(),
            local,
            source,
        })
    };
    setup("SO_REUSEADDR", socket.set_reuse_address(true))?;
    setup("SO_REUSEPORT", socket.set_reuse_port(true))?;
    if peers.is_ipv6() {
        setup("IPV6_V6ONLY", socket.set_only_v6(true))?;
        setup("IPV6_UNICAST_HOPS", socket.set_unicast_hops_v6(1))?;
    } else {
        setup("IP_TTL", socket.set_ttl(1))?;
    }
    match socket.bind_device(Some(interface.as_bytes())) {
        Ok(()) => {}
        // Older kernels reserve SO_BINDTODEVICE for CAP_NET_RAW. The bound source address
        // and TTL 1 still keep frames on the segment; the routing table picks the way out.
        Err(e) if e.raw_os_error() == Some(nix::libc::EPERM) => log::warn!(
            "SO_BINDTODEVICE {interface}: {e}; unicast frames leave by the route to each peer"
        ),
        Err(e) => setup("SO_BINDTODEVICE", Err(e))?,
    }
    setup(
        "binding the interface address",
        socket.bind(&SockAddr::from(local)),
    )?;
    setup("O_NONBLOCK", socket.set_nonblocking(true))?;
    let targets = peers.targets(&own, index);
    if !peers.allows(local_ip) {
        log::warn!(
            "--peers does not list this node's address {local_ip} on {interface}: nodes with \
             the same list drop its frames"
        );
    }
    log::info!(
        "unicast from {local} on {interface} to {} peer{}: {targets:?}",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
    );
    Ok(UnicastSocket {
        socket,
        local,
        targets,
    })
}

/// Every IPv4 and IPv6 address of `interface`, in the order the kernel lists them.
fn interface_addrs(interface: &str) -> Result<Vec<IpAddr>, DaemonError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(DaemonError::ListInterfaces)?;
    let mut own = Vec::new();
    for ifaddr in addrs.filter(|a| a.interface_name == interface) {
        let Some(address) = ifaddr.address else {
            continue;
        };
        if let Some(sin) = address.as_sockaddr_in() {
            own.push(IpAddr::V4(sin.ip()));
        } else if let Some(sin6) = address.as_sockaddr_in6() {
            own.push(IpAddr::V6(sin6.ip()));
        }
    }
    Ok(own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::peers::parse_list;

    fn peers(text: &str) -> Peers {
        Peers::new(&parse_list(text).unwrap(), 7277, None).unwrap()
    }

    #[test]
    fn an_unknown_interface_is_named() {
        let err = open_unicast_socket("nosuchif0", &peers("127.0.0.1")).unwrap_err();
        assert!(
            matches!(err, DaemonError::InterfaceNotFound { .. }),
            "{err}"
        );
    }

    #[test]
    fn binds_the_listed_address_skips_itself_and_sends_with_ttl_1() {
        // 127.0.0.1 is ours on lo: it is skipped as a target and bound as the source, on
        // its listed port (a free one).
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .unwrap()
            .port();
        let u = open_unicast_socket("lo", &peers(&format!("127.0.0.1:{port},127.0.0.9:7999")));
        let u = match u {
            Err(e) => panic!("{e}"),
            Ok(u) => u,
        };
        assert_eq!(u.local.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(u.local.port(), port);
        assert_eq!(
            u.socket.local_addr().unwrap().as_socket(),
            Some(u.local),
            "bound there"
        );
        assert_eq!(u.targets, vec!["127.0.0.9:7999".parse().unwrap()]);
        assert_eq!(u.socket.ttl().unwrap(), 1);
    }
}
