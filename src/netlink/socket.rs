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
    pub const IPV6_ADDRESS: u32 = 0x100;
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
