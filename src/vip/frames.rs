//! The frames that tell a LAN where a floating address now lives, built byte for byte
//! into fixed arrays (no allocation), sent on an AF_PACKET socket ([`super::packet`]).
//!
//! - IPv4: gratuitous ARP (RFC 5227 announcement), a broadcast request and a reply, both
//!   with sender = target = the address and the sender hardware address ours. Linux
//!   neighbours update an existing entry from either at once (`arp_is_garp`: a reply
//!   counts only with target hardware = sender hardware, which ours has), whatever their
//!   lock time.
//! - IPv6: unsolicited neighbour advertisement (RFC 4861 7.2.6) to all nodes (ff02::1,
//!   33:33:00:00:00:01), from the address itself, hop limit 255, Override set, Solicited
//!   clear, with the target link-layer address option; ICMPv6 checksum over the IPv6
//!   pseudo-header.
//!
//! Layouts (network byte order):
//!
//! | frame | bytes |
//! |---|---|
//! | Ethernet | 0 destination, 6 source, 12 type (0x0806 ARP, 0x86dd IPv6) |
//! | ARP | 14 htype 1, 16 ptype 0x0800, 18 hlen 6, 19 plen 4, 20 op (1 request, 2 reply), 22 sender MAC, 28 sender IP, 32 target MAC, 38 target IP; zero padding to 60 |
//! | IPv6 | 14 version 6 / class / flow, 18 payload length 32, 20 next header 58, 21 hop limit 255, 22 source, 38 destination |
//! | NA | 54 type 136, 55 code 0, 56 checksum, 58 flags (0x20 Override), 62 target, 78 option type 2, 79 length 1 (8 bytes), 80 MAC |

use std::net::{Ipv4Addr, Ipv6Addr};

/// A gratuitous ARP frame: the 42 bytes of Ethernet and ARP, zero-padded to Ethernet's
/// minimum of 60 (without the FCS), which some drivers do not pad themselves.
pub const ARP_FRAME_LEN: usize = 60;
/// An unsolicited neighbour advertisement with its one option.
pub const NA_FRAME_LEN: usize = 86;

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];
/// ff02::1 on Ethernet (RFC 2464: 33:33 and the low 32 bits of the group).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ICMPV6: u8 = 58;
const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
/// The Override flag (the top bits of the NA's flags word: Router, Solicited, Override).
const OVERRIDE: u8 = 0x20;
const TARGET_LINK_LAYER_ADDRESS: u8 = 2;
const ICMPV6_NA_LEN: usize = 32;

/// Which ARP operation the announcement is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request = 1,
    Reply = 2,
}

fn ethernet(frame: &mut [u8], to: [u8; 6], from: [u8; 6], ethertype: u16) {
    frame[0..6].copy_from_slice(&to);
    frame[6..12].copy_from_slice(&from);
    frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// A broadcast gratuitous ARP for `ip` at `mac`. The request's target hardware address is
/// zero (RFC 5227); the reply's is `mac`, as Linux wants of a gratuitous reply.
pub fn gratuitous_arp(mac: [u8; 6], ip: Ipv4Addr, op: ArpOp) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    ethernet(&mut f, BROADCAST, mac, ETHERTYPE_ARP);
    f[14..16].copy_from_slice(&1u16.to_be_bytes());
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&(op as u16).to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    if op == ArpOp::Reply {
        f[32..38].copy_from_slice(&mac);
    }
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// An unsolicited neighbour advertisement of `ip` at `mac`, to all nodes.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    ethernet(&mut f, ALL_NODES_MAC, mac, ETHERTYPE_IPV6);
    f[14] = 0x60;
    f[18..20].copy_from_slice(&(ICMPV6_NA_LEN as u16).to_be_bytes());
    f[20] = ICMPV6;
    f[21] = 255;
    f[22..38].copy_from_slice(&ip.octets());
    f[38..54].copy_from_slice(&ALL_NODES.octets());
    let icmp = &mut f[54..];
    icmp[0] = NEIGHBOUR_ADVERTISEMENT;
    icmp[4] = OVERRIDE;
    icmp[8..24].copy_from_slice(&ip.octets());
    icmp[24] = TARGET_LINK_LAYER_ADDRESS;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    let sum = icmpv6_checksum(ip, ALL_NODES, &f[54..]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The Internet checksum (RFC 1071) of an ICMPv6 message (its checksum field zero) with
/// the IPv6 pseudo-header: source, destination, upper-layer length, next header.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |&b| u32::from(b));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(message.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ICMPV6]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn gratuitous_arp_request_byte_for_byte() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(169, 254, 0, 100), ArpOp::Request);
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01,
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, 169, 254, 0, 100,
            0, 0, 0, 0, 0, 0, 169, 254, 0, 100,
        ];
        assert_eq!(f[..42], want);
        assert_eq!(f[42..], [0u8; 18]);
    }

    #[test]
    fn gratuitous_arp_reply_names_our_mac_as_target() {
        let f = gratuitous_arp(MAC, Ipv4Addr::new(10, 1, 2, 3), ArpOp::Reply);
        assert_eq!(f[20..22], [0, 2]);
        assert_eq!(f[22..28], MAC);
        assert_eq!(f[28..32], [10, 1, 2, 3]);
        assert_eq!(f[32..38], MAC);
        assert_eq!(f[38..42], [10, 1, 2, 3]);
        assert_eq!(f[0..6], BROADCAST);
    }

    /// The checksum was computed independently (Python, RFC 1071 over the pseudo-header
    /// and the message) for this vector.
    #[test]
    fn unsolicited_na_byte_for_byte() {
        let ip: Ipv6Addr = "fd00::64".parse().unwrap();
        let f = unsolicited_na(MAC, ip);
        let mut want = Vec::new();
        want.extend([0x33, 0x33, 0, 0, 0, 1]);
        want.extend(MAC);
        want.extend([0x86, 0xdd]);
        want.extend([0x60, 0, 0, 0, 0, 32, 58, 255]);
        want.extend(ip.octets());
        want.extend([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        want.extend([136, 0, CHECKSUM[0], CHECKSUM[1], 0x20, 0, 0, 0]);
        want.extend(ip.octets());
        want.extend([2, 1]);
        want.extend(MAC);
        assert_eq!(f[..], want[..]);
    }

    const CHECKSUM: [u8; 2] = [0xdb, 0x95];

    #[test]
    fn the_checksum_verifies_to_zero() {
        for ip in ["fd00::64", "fe80::1:2:3:4", "2001:db8::ffff"] {
            let ip: Ipv6Addr = ip.parse().unwrap();
            let f = unsolicited_na(MAC, ip);
            // Summed with its checksum in place, a correct message sums to 0xffff, whose
            // complement is 0.
            assert_eq!(icmpv6_checksum(ip, ALL_NODES, &f[54..]), 0, "{ip}");
        }
    }
}
