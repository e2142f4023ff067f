//! Unicast peers (`--peers`): the transport mode, the peer list and its rules, which
//! peers a node sends to, which address it sends from, and which sources it accepts.
//! Pure: no sockets, no interface look-ups (the caller passes the interface's addresses).
//!
//! A peer is one IP address; its port defaults to the `--group` port. The list is the
//! same on every node: a node skips its own addresses (any address of `--interface`) when
//! sending, and accepts frames only from the listed addresses (the port is not compared:
//! the address is what the operator listed, and frames are authenticated by the key file,
//! not by the port).

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

/// Most peers a list may hold: 64 voters plus observers; a longer list is a mistake.
pub const MAX_PEERS: usize = 128;

/// How frames travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// To the multicast group (the default).
    Multicast(SocketAddr),
    /// To each listed peer by unicast.
    Unicast(Peers),
}

impl Transport {
    /// The port frames are received on: the group's, or (unicast) the default port of
    /// the peers (a peer listed with its own port uses that one).
    pub fn port(&self) -> u16 {
        match self {
            Transport::Multicast(group) => group.port(),
            Transport::Unicast(peers) => peers.default_port,
        }
    }

    /// Whether frames travel over IPv4 (the socket then needs an IPv4 address).
    pub fn is_ipv4(&self) -> bool {
        match self {
            Transport::Multicast(group) => group.is_ipv4(),
            Transport::Unicast(peers) => !peers.is_ipv6(),
        }
    }
}

/// One entry as written: an address and, if given, a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerEntry {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

/// What is wrong with a peer list. The caller names the flag or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerError {
    /// An entry that is not `A.B.C.D[:PORT]`, `[V6]:PORT`, `[V6]` or a bare IPv6 address.
    Syntax(String),
    /// The list has no entry.
    Empty,
    /// An entry with port 0.
    PortZero(String),
    /// A multicast, unspecified or broadcast address.
    NotUnicast(IpAddr),
    /// The same address twice.
    Duplicate(IpAddr),
    /// IPv4 and IPv6 addresses in one list.
    MixedFamilies(IpAddr, IpAddr),
    /// A peer of another family than the `--group` that was given.
    FamilyMismatch { peer: IpAddr, group: SocketAddr },
    /// More than [`MAX_PEERS`] entries.
    TooMany(usize),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Syntax(entry) => write!(
                f,
                "expected ADDR[:PORT] such as 169.254.0.11:7277, [fe80::1]:7277 or fe80::1 \
                 (an IP address, not a host name), got {entry:?}"
            ),
            PeerError::Empty => f.write_str("the list of peers is empty"),
            PeerError::PortZero(entry) => write!(f, "port 0 is not allowed, got {entry:?}"),
            PeerError::NotUnicast(ip) => write!(
                f,
                "{ip} is not a unicast address (multicast, unspecified and broadcast \
                 addresses are not peers)"
            ),
            PeerError::Duplicate(ip) => write!(f, "{ip} is listed more than once"),
            PeerError::MixedFamilies(a, b) => write!(
                f,
                "{a} and {b} are of different families; list IPv4 or IPv6 peers, not both"
            ),
            PeerError::FamilyMismatch { peer, group } => write!(
                f,
                "{peer} is {} but the group {group} is {}; the peers and --group must be \
                 of one family",
                family_name(*peer),
                family_name(group.ip())
            ),
            PeerError::TooMany(n) => {
                write!(f, "{n} peers given, at most {MAX_PEERS} are allowed")
            }
        }
    }
}

fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// One entry: `A.B.C.D`, `A.B.C.D:PORT`, `[V6]:PORT`, `[V6]` or a bare `V6` (surrounding
/// blanks ignored).
pub fn parse_entry(text: &str) -> Result<PeerEntry, PeerError> {
    let t = text.trim();
    let syntax = || PeerError::Syntax(t.to_string());
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(PeerEntry { ip, port: None });
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let ip = inner.parse::<std::net::Ipv6Addr>().map_err(|_| syntax())?;
        return Ok(PeerEntry {
            ip: IpAddr::V6(ip),
            port: None,
        });
    }
    // `A.B.C.D:PORT` and `[V6]:PORT`; SocketAddr refuses a bare `V6:PORT` (ambiguous).
    let addr = t.parse::<SocketAddr>().map_err(|_| syntax())?;
    if addr.port() == 0 {
        return Err(PeerError::PortZero(t.to_string()));
    }
    Ok(PeerEntry {
        ip: addr.ip(),
        port: Some(addr.port()),
    })
}

/// A comma-separated list of entries (`--peers` and a string in the config file).
pub fn parse_list(text: &str) -> Result<Vec<PeerEntry>, PeerError> {
    if text.trim().is_empty() {
        return Err(PeerError::Empty);
    }
    text.split(',').map(parse_entry).collect()
}

/// A checked peer list: unicast addresses of one family, each listed once, with their ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peers {
    addrs: Vec<SocketAddr>,
    /// The `--group` port: for entries without a port, and for this node's own port when
    /// its address is not listed.
    default_port: u16,
}

impl Peers {
    /// Checks `entries` and gives each its port (`default_port` when not written).
    /// `group`, when the user gave one, fixes the family.
    pub fn new(
        entries: &[PeerEntry],
        default_port: u16,
        group: Option<SocketAddr>,
    ) -> Result<Peers, PeerError> {
        let Some(first) = entries.first() else {
            return Err(PeerError::Empty);
        };
        if entries.len() > MAX_PEERS {
            return Err(PeerError::TooMany(entries.len()));
        }
        let mut addrs: Vec<SocketAddr> = Vec::with_capacity(entries.len());
        for entry in entries {
            let ip = entry.ip;
            let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
            if ip.is_multicast() || ip.is_unspecified() || broadcast {
                return Err(PeerError::NotUnicast(ip));
            }
            if let Some(group) = group.filter(|g| g.is_ipv4() != ip.is_ipv4()) {
                return Err(PeerError::FamilyMismatch { peer: ip, group });
            }
            if ip.is_ipv4() != first.ip.is_ipv4() {
                return Err(PeerError::MixedFamilies(first.ip, ip));
            }
            if addrs.iter().any(|a| a.ip() == ip) {
                return Err(PeerError::Duplicate(ip));
            }
            addrs.push(SocketAddr::new(ip, entry.port.unwrap_or(default_port)));
        }
        Ok(Peers {
            addrs,
            default_port,
        })
    }

    /// Every listed peer, in the order given.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn is_ipv6(&self) -> bool {
        self.addrs[0].is_ipv6()
    }

    /// Whether a frame from `source` is accepted: its address is listed.
    pub fn allows(&self, source: IpAddr) -> bool {
        let source = match source {
            // An IPv4 peer seen through an IPv6 socket.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(source, IpAddr::V4),
            v4 => v4,
        };
        self.addrs.iter().any(|a| a.ip() == source)
    }

    /// Where to send: every peer but this node's own addresses (`own`: the addresses of
    /// `--interface`). An IPv6 link-local peer gets the interface (`scope`) as its zone.
    pub fn targets(&self, own: &[IpAddr], scope: u32) -> Vec<SocketAddr> {
        self.addrs
            .iter()
            .filter(|a| !own.contains(&a.ip()))
            .map(|a| match a {
                SocketAddr::V6(v6) if is_link_local(a.ip()) => {
                    SocketAddr::V6(SocketAddrV6::new(*v6.ip(), v6.port(), 0, scope))
                }
                other => *other,
            })
            .collect()
    }

    /// The address to send from, among `own` (the interface's addresses, in order): the
    /// one listed here, since the other nodes accept only listed sources; else the first
    /// of the peers' family, for IPv6 of the same scope (link-local or not) as the first
    /// peer that is not ours. `None`: the interface has no address of that family.
    pub fn local_ip(&self, own: &[IpAddr]) -> Option<IpAddr> {
        if let Some(listed) = own
            .iter()
            .find(|ip| self.addrs.iter().any(|a| a.ip() == **ip))
        {
            return Some(*listed);
        }
        let family: Vec<IpAddr> = own
            .iter()
            .copied()
            .filter(|ip| ip.is_ipv6() == self.is_ipv6())
            .collect();
        let link_local_peers = self.addrs.first().is_some_and(|a| is_link_local(a.ip()));
        family
            .iter()
            .find(|ip| is_link_local(**ip) == link_local_peers)
            .or(family.first())
            .copied()
    }

    /// The port to bind: this node's own entry's port if it is listed, else the default.
    pub fn local_port(&self, local: IpAddr) -> u16 {
        self.addrs
            .iter()
            .find(|a| a.ip() == local)
            .map_or(self.default_port, SocketAddr::port)
    }
}

/// fe80::/10: needs the interface as its zone to be reachable.
fn is_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn peers(text: &str, group: Option<&str>) -> Result<Peers, PeerError> {
        let entries = parse_list(text)?;
        Peers::new(&entries, 7277, group.map(|g| g.parse().unwrap()))
    }

    #[test]
    fn entries_of_every_form() {
        let e = |t: &str| parse_entry(t).unwrap();
        assert_eq!(
            e("169.254.0.11"),
            PeerEntry {
                ip: ip("169.254.0.11"),
                port: None
            }
        );
        assert_eq!(e(" 10.0.0.1:7300 ").port, Some(7300));
        assert_eq!(e("[fe80::1]:7301").ip, ip("fe80::1"));
        assert_eq!(e("[fe80::1]:7301").port, Some(7301));
        assert_eq!(e("[2001:db8::5]").port, None);
        assert_eq!(e("2001:db8::5").ip, ip("2001:db8::5"));
        for bad in [
            "",
            "host.lan",
            "host.lan:7277",
            "10.0.0.1:",
            "10.0.0.1:70000",
            "10.0.0.1:x",
            "[10.0.0.1]:7277",
            "fe80::1:7277:",
            "[fe80::1",
            "fe80::1%eth0",
        ] {
            assert!(
                matches!(parse_entry(bad), Err(PeerError::Syntax(_))),
                "{bad:?}: {:?}",
                parse_entry(bad)
            );
        }
        assert_eq!(
            parse_entry("10.0.0.1:0"),
            Err(PeerError::PortZero("10.0.0.1:0".into()))
        );
        assert_eq!(
            parse_entry("[fe80::1]:0"),
            Err(PeerError::PortZero("[fe80::1]:0".into()))
        );
    }

    #[test]
    fn lists_take_the_default_port() {
        let p = peers("169.254.0.11, 169.254.0.12:7300,169.254.0.13", None).unwrap();
        let want: Vec<SocketAddr> = [
            "169.254.0.11:7277",
            "169.254.0.12:7300",
            "169.254.0.13:7277",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(p.addrs(), &want[..]);
        assert!(!p.is_ipv6());
        let p = peers("[fe80::1]:7400,fe80::2", Some("[ff02::1:77]:7277")).unwrap();
        assert!(p.is_ipv6());
        assert_eq!(p.addrs()[1], "[fe80::2]:7277".parse().unwrap());
    }

    #[test]
    fn bad_lists_say_why() {
        assert_eq!(peers("", None), Err(PeerError::Empty));
        assert_eq!(peers(" ", None), Err(PeerError::Empty));
        assert_eq!(Peers::new(&[], 7277, None), Err(PeerError::Empty));
        assert!(matches!(
            peers("10.0.0.1,,10.0.0.2", None),
            Err(PeerError::Syntax(_))
        ));
        for not_unicast in ["239.1.2.3", "0.0.0.0", "255.255.255.255", "ff02::1", "::"] {
            assert_eq!(
                peers(&format!("10.0.0.1,{not_unicast}"), None).map_err(|e| e.to_string()),
                Err(PeerError::NotUnicast(ip(not_unicast)).to_string()),
                "{not_unicast}"
            );
        }
        assert_eq!(
            peers("10.0.0.1,10.0.0.2,10.0.0.1:7300", None),
            Err(PeerError::Duplicate(ip("10.0.0.1")))
        );
        assert_eq!(
            peers("10.0.0.1,fe80::1", None),
            Err(PeerError::MixedFamilies(ip("10.0.0.1"), ip("fe80::1")))
        );
        let e = peers("fe80::1", Some("239.1.2.3:7277")).unwrap_err();
        assert!(matches!(e, PeerError::FamilyMismatch { .. }), "{e:?}");
        assert!(e.to_string().contains("IPv6"), "{e}");
        assert!(e.to_string().contains("239.1.2.3:7277"), "{e}");
        let many: Vec<String> = (0..=MAX_PEERS)
            .map(|i| format!("10.0.{}.{}", i / 200, i % 200 + 1))
            .collect();
        assert_eq!(
            peers(&many.join(","), None),
            Err(PeerError::TooMany(MAX_PEERS + 1))
        );
        assert!(peers(&many[..MAX_PEERS].join(","), None).is_ok());
    }

    #[test]
    fn own_addresses_are_skipped_and_link_local_peers_get_the_zone() {
        let p = peers("169.254.0.11,169.254.0.12,169.254.0.13", None).unwrap();
        let own = [ip("10.9.9.9"), ip("169.254.0.12")];
        let t = p.targets(&own, 4);
        assert_eq!(
            t,
            vec![
                "169.254.0.11:7277".parse::<SocketAddr>().unwrap(),
                "169.254.0.13:7277".parse().unwrap()
            ]
        );
        // A node not in the list sends to every peer.
        assert_eq!(p.targets(&[ip("10.9.9.9")], 4).len(), 3);
        let p = peers("fe80::1,fe80::2,2001:db8::3", None).unwrap();
        let t = p.targets(&[ip("fe80::2")], 7);
        assert_eq!(t.len(), 2);
        match (t[0], t[1]) {
            (SocketAddr::V6(a), SocketAddr::V6(b)) => {
                assert_eq!((*a.ip(), a.scope_id()), ("fe80::1".parse().unwrap(), 7));
                assert_eq!(b.scope_id(), 0, "a global address needs no zone");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_source_filter_compares_addresses() {
        let p = peers("169.254.0.11,169.254.0.12:7300", None).unwrap();
        assert!(p.allows(ip("169.254.0.11")));
        assert!(p.allows(ip("169.254.0.12")));
        assert!(p.allows(ip("::ffff:169.254.0.12")), "mapped IPv4");
        assert!(!p.allows(ip("169.254.0.14")));
        assert!(!p.allows(ip("fe80::1")));
        let p = peers("fe80::1", None).unwrap();
        assert!(p.allows(ip("fe80::1")));
        assert!(!p.allows(ip("fe80::2")));
    }

    #[test]
    fn the_local_address_is_the_listed_one() {
        let p = peers("169.254.0.11,169.254.0.12:7300", None).unwrap();
        let own = [ip("fe80::9"), ip("10.1.1.1"), ip("169.254.0.12")];
        assert_eq!(p.local_ip(&own), Some(ip("169.254.0.12")));
        assert_eq!(p.local_port(ip("169.254.0.12")), 7300);
        // Not listed: the first IPv4 address of the interface, on the default port.
        assert_eq!(p.local_ip(&own[..2]), Some(ip("10.1.1.1")));
        assert_eq!(p.local_port(ip("10.1.1.1")), 7277);
        assert_eq!(p.local_ip(&[ip("fe80::9")]), None);
        // IPv6: the scope of the peers decides between link-local and global.
        let own6 = [ip("2001:db8::9"), ip("fe80::9")];
        let ll = peers("fe80::1,fe80::2", None).unwrap();
        assert_eq!(ll.local_ip(&own6), Some(ip("fe80::9")));
        let global = peers("2001:db8::1", None).unwrap();
        assert_eq!(global.local_ip(&own6), Some(ip("2001:db8::9")));
        assert_eq!(global.local_ip(&[ip("fe80::9")]), Some(ip("fe80::9")));
    }
}
