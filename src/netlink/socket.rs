//! The rtnetlink socket: non-blocking, subscribed to multicast groups of link and
//! address changes, and a mio event source.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use nix::sys::socket::{
    bind, recv, send, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};

/// rtnetlink multicast groups (`RTMGRP_*`, a bit mask for `bind`).
pub mod groups {
    pub const LINK: u32 = 0x1;
    pub const IPV4_ADDRESS: u32 = 0x10;
}

/// Receive buffer of the socket in the kernel: room for a burst of notifications (an
/// interface that comes up brings a link message and one per address) before the kernel
/// drops them and reports ENOBUFS.
const KERNEL_RECEIVE_BUFFER: usize = 256 * 1024;

/// A `NETLINK_ROUTE` socket.
#[derive(Debug)]
pub struct RouteSocket {
    fd: OwnedFd,
}

fn io_error(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl RouteSocket {
    /// A non-blocking, close-on-exec socket subscribed to `groups` (see [`groups`]);
    /// 0 subscribes to nothing (a socket for requests only).
    pub fn open(groups: u32) -> io::Result<RouteSocket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .map_err(io_error)?;
        // Best effort: a smaller buffer only makes ENOBUFS (handled by a resync) likelier.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &KERNEL_RECEIVE_BUFFER);
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups)).map_err(io_error)?;
        Ok(RouteSocket { fd })
    }

    /// Receives one datagram (one or more messages) into `buf`. `WouldBlock` when none is
    /// queued; an `ENOBUFS` error (`raw_os_error`) means the kernel dropped notifications
    /// because we read too slowly. A datagram larger than `buf` is an `InvalidData` error
    /// (its tail is lost, so it is treated like dropped notifications).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // MSG_TRUNC: the return value is the datagram's real length, even if cut short.
        let len = recv(self.fd.as_raw_fd(), buf, MsgFlags::MSG_TRUNC).map_err(io_error)?;
        if len > buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("netlink datagram of {len} bytes truncated to {}", buf.len()),
            ));
        }
        Ok(len)
    }

    /// Sends one request (built with [`super::wire::emit_message`]) to the kernel.
    pub fn send(&self, message: &[u8]) -> io::Result<()> {
        send(self.fd.as_raw_fd(), message, MsgFlags::empty()).map_err(io_error)?;
        Ok(())
    }
}

/// Is `e` the kernel saying that notifications were dropped (the receive queue was full)?
pub fn is_overrun(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::ENOBUFS) || e.kind() == io::ErrorKind::InvalidData
}

impl Source for RouteSocket {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::{emit_message, flags, kind, Header, Message, Messages};

    #[test]
    fn lost_notifications_are_recognised() {
        assert!(is_overrun(&io::Error::from_raw_os_error(
            nix::libc::ENOBUFS
        )));
        assert!(is_overrun(&io::Error::new(
            io::ErrorKind::InvalidData,
            "cut"
        )));
        assert!(!is_overrun(&io::Error::from(io::ErrorKind::WouldBlock)));
    }

    #[test]
    fn a_dump_of_the_links_names_lo() {
        // Subscribed but idle: nothing queued, and the socket does not block.
        let socket = RouteSocket::open(groups::LINK).expect("netlink socket");
        let mut buf = vec![0u8; 32 * 1024];
        assert_eq!(
            socket.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // RTM_GETLINK dump (an ifinfomsg of zeros): the kernel's real messages parse.
        let header = Header {
            message_type: kind::GET_LINK,
            flags: flags::REQUEST | flags::DUMP,
            sequence: 9,
            port: 0,
        };
        let mut request = [0u8; 32];
        let len = emit_message(&mut request, header, |b| {
            b[..16].fill(0);
            Ok(16)
        })
        .unwrap();
        socket.send(&request[..len]).expect("send the request");
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        let mut seen_lo = false;
        for _ in 0..1000 {
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            for m in Messages::new(&buf[..n]) {
                let (h, p) = m.unwrap();
                match Message::parse(&h, p).unwrap() {
                    Message::NewLink(l) if l.index == lo => {
                        assert_eq!(l.name, Some(&b"lo"[..]));
                        assert_eq!(h.sequence, 9);
                        seen_lo = true;
                    }
                    Message::Done => {
                        assert!(seen_lo, "lo in the dump");
                        return;
                    }
                    _ => {}
                }
            }
        }
        panic!("no end of the dump");
    }
}
