//! Floating addresses (`--vip ADDR/PREFIX`): what the leader adds to `--interface` while
//! it publishes LEADING, and the pieces that do it without blocking the event loop.
//!
//! This module owns the address syntax ([`VipAddr`]), the announcement frames
//! ([`frames`]: gratuitous ARP, unsolicited neighbour advertisement, built byte for byte),
//! the AF_PACKET socket they go out on ([`packet`]) and the rtnetlink requests that add,
//! renew and remove the addresses ([`requests`]: non-blocking for the event loop, and a
//! blocking [`requests::release`] for start-up and `votecast release-vip`). When to hold
//! an address, for how long, and when to announce it is the driver's
//! (`driver/vip.rs`), judged on the published view.

pub mod frames;
pub mod packet;
pub mod requests;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Most floating addresses one node manages.
pub const MAX_VIPS: usize = 16;

/// One floating address with its prefix length, as `ip addr add` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VipAddr {
    pub ip: IpAddr,
    pub prefix: u8,
}

impl fmt::Display for VipAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

impl FromStr for VipAddr {
    type Err = String;

    /// `ADDR/PREFIX`, IPv4 or IPv6; a unicast address a host can hold (not unspecified,
    /// multicast, broadcast or loopback), a prefix of 1 to 32 (IPv4) or 1 to 128 (IPv6).
    fn from_str(text: &str) -> Result<VipAddr, String> {
        let text = text.trim();
        let Some((addr, prefix)) = text.split_once('/') else {
            return Err(format!(
                "expected ADDR/PREFIX such as 192.168.1.10/24 or fd00::10/64, got {text:?} \
                 (the prefix length is required)"
            ));
        };
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IPv4 or IPv6 address (in {text:?})"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix
            .parse::<u8>()
            .ok()
            .filter(|p| (1..=max).contains(p))
            .ok_or_else(|| format!("prefix length {prefix:?} is not 1 to {max} (in {text:?})"))?;
        let unfit = match ip {
            IpAddr::V4(v4) => {
                v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || v4.is_loopback()
            }
            IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast() || v6.is_loopback(),
        };
        if unfit {
            return Err(format!(
                "{ip} cannot be a floating address (unspecified, multicast, broadcast or loopback)"
            ));
        }
        Ok(VipAddr { ip, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_with_prefixes_parse_and_show_as_given() {
        for text in [
            "169.254.0.100/16",
            "192.168.1.10/32",
            "fd00::10/64",
            "fe80::7/128",
        ] {
            let vip: VipAddr = text.parse().unwrap();
            assert_eq!(vip.to_string(), text);
        }
        let vip: VipAddr = " 10.0.0.1/8 ".parse().unwrap();
        assert_eq!((vip.ip, vip.prefix), ("10.0.0.1".parse().unwrap(), 8));
    }

    #[test]
    fn unfit_addresses_are_refused_with_the_reason() {
        for (text, reason) in [
            ("10.0.0.1", "prefix length is required"),
            ("10.0.0.1/0", "not 1 to 32"),
            ("10.0.0.1/33", "not 1 to 32"),
            ("fd00::1/129", "not 1 to 128"),
            ("fd00::1/x", "not 1 to 128"),
            ("eth0/24", "not an IPv4 or IPv6 address"),
            ("0.0.0.0/8", "cannot be a floating address"),
            ("224.0.0.1/32", "cannot be a floating address"),
            ("255.255.255.255/32", "cannot be a floating address"),
            ("127.0.0.2/8", "cannot be a floating address"),
            ("ff02::1/128", "cannot be a floating address"),
            ("::/64", "cannot be a floating address"),
            ("::1/128", "cannot be a floating address"),
        ] {
            let e = text.parse::<VipAddr>().unwrap_err();
            assert!(e.contains(reason), "{text}: {e}");
        }
    }
}
