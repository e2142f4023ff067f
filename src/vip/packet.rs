//! The AF_PACKET socket the announcements go out on: raw Ethernet frames (built in
//! [`super::frames`]) sent to the interface's link address as `getifaddrs` reports it
//! (its index and MAC), so no address structure is built by hand. Non-blocking: a frame
//! the queue cannot take at once is dropped (the next repeat follows). Needs CAP_NET_RAW.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{sendto, socket, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockType};

fn io_error(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Where frames for an interface go: its link address (index) and its MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTarget {
    pub address: LinkAddr,
    pub mac: [u8; 6],
}

impl LinkTarget {
    pub fn index(&self) -> usize {
        self.address.ifindex()
    }
}

/// The interface's link address, if it exists and has an Ethernet-style (6-byte) one.
pub fn link_target(interface: &str) -> io::Result<Option<LinkTarget>> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(io_error)?;
    for ifaddr in addrs {
        if ifaddr.interface_name != interface {
            continue;
        }
        let Some(link) = ifaddr.address.as_ref().and_then(|a| a.as_link_addr()) else {
            continue;
        };
        if let Some(mac) = link.addr() {
            return Ok(Some(LinkTarget {
                address: *link,
                mac,
            }));
        }
    }
    Ok(None)
}

/// A send-only `AF_PACKET` raw socket (protocol 0: it receives nothing).
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    pub fn open() -> io::Result<PacketSocket> {
        let fd = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(io_error)?;
        Ok(PacketSocket { fd })
    }

    /// Sends one whole Ethernet frame out of `to`'s interface.
    pub fn send(&self, to: &LinkTarget, frame: &[u8]) -> io::Result<()> {
        sendto(self.fd.as_raw_fd(), frame, &to.address, MsgFlags::empty()).map_err(io_error)?;
        Ok(())
    }
}
