//! The rtnetlink requests that add (with lifetimes), renew and remove a floating address,
//! on a socket of their own (subscribed to nothing, so only our acknowledgements arrive).
//!
//! - An add is `RTM_NEWADDR` with `NLM_F_CREATE | NLM_F_REPLACE`: it creates the address,
//!   or renews the lifetimes of the one already there (the kernel answers a plain add of
//!   an existing address with EEXIST; replace is that renewal in one request). Valid and
//!   preferred lifetimes are equal: the kernel deletes the address when they run out.
//!   IPv6 addresses are added with `IFA_F_NODAD`: duplicate address detection would keep
//!   a new leader's address unusable for a second, and the election already ensures that
//!   no live node holds it.
//! - A removal is `RTM_DELADDR` for the address and its prefix length.
//! - The kernel handles a request within the `send` (rtnetlink requests are processed in
//!   the sender's system call), so the address is added or gone when `send` returns; the
//!   acknowledgement only reports errors, and [`Requester`] reads it later, without
//!   waiting. [`release`] waits (bounded) for them, for start-up and `release-vip`.

use std::io;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::VipAddr;
use crate::netlink::wire::{
    emit_message, flags, kind, AddressMessage, CacheInfo, Header, Message, Messages, AF_INET,
    AF_INET6,
};
use crate::netlink::RouteSocket;

/// `IFA_F_NODAD`.
const IFA_F_NODAD: u32 = 0x02;
/// The kernel's answer to removing an address that is not there.
const NOT_PRESENT: [i32; 2] = [nix::libc::EADDRNOTAVAIL, nix::libc::ENODEV];
/// Requests whose acknowledgement is still awaited, remembered to name them in errors.
const PENDING: usize = 32;
/// A request is a header, an `ifaddrmsg` and three attributes: well under this.
const REQUEST_BUFFER: usize = 128;
/// Acknowledgements of errors quote the request: room for several per datagram.
const RECEIVE_BUFFER: usize = 8 * 1024;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Add, or renew, with this valid and preferred lifetime in seconds.
    Add {
        lifetime_secs: u32,
    },
    Remove,
}

/// Writes the request to `op` on `vip` on interface `index` into `buf`; returns its length.
pub fn emit_request(
    buf: &mut [u8],
    op: Op,
    vip: VipAddr,
    index: u32,
    sequence: u32,
) -> Result<usize, crate::netlink::wire::Error> {
    let (message_type, extra_flags, cache_info) = match op {
        Op::Add { lifetime_secs } => (
            kind::NEW_ADDRESS,
            flags::CREATE | flags::REPLACE,
            Some(CacheInfo {
                preferred_lifetime: lifetime_secs,
                valid_lifetime: lifetime_secs,
                created: 0,
                updated: 0,
            }),
        ),
        Op::Remove => (kind::DEL_ADDRESS, 0, None),
    };
    let family = match vip.ip {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    };
    let body = AddressMessage {
        family,
        prefix_len: vip.prefix,
        flags: if vip.ip.is_ipv6() && cache_info.is_some() {
            IFA_F_NODAD
        } else {
            0
        },
        scope: 0,
        index,
        address: Some(vip.ip),
        local: Some(vip.ip),
        label: None,
        cache_info,
    };
    let header = Header {
        message_type,
        flags: flags::REQUEST | flags::ACK | extra_flags,
        sequence,
        port: 0,
    };
    emit_message(buf, header, |b| body.emit(b))
}

/// A request sent and not yet acknowledged.
#[derive(Debug, Clone, Copy)]
struct Sent {
    sequence: u32,
    op: Op,
    vip: VipAddr,
}

/// The event loop's request socket: sends without waiting, reads acknowledgements when
/// asked, and names the request each error is about.
#[derive(Debug)]
pub struct Requester {
    socket: RouteSocket,
    next_sequence: u32,
    sent: [Option<Sent>; PENDING],
    receive: Box<[u8]>,
}

/// A request the kernel refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub op: Option<Op>,
    pub vip: Option<VipAddr>,
    /// The errno.
    pub error: i32,
}

impl Requester {
    pub fn open() -> io::Result<Requester> {
        Ok(Requester {
            socket: RouteSocket::open(0)?,
            next_sequence: 1,
            sent: [None; PENDING],
            receive: vec![0u8; RECEIVE_BUFFER].into_boxed_slice(),
        })
    }

    /// Sends the request; the change is made (or refused) when this returns.
    pub fn send(&mut self, op: Op, vip: VipAddr, index: u32) -> io::Result<()> {
        let sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1).max(1);
        let mut buf = [0u8; REQUEST_BUFFER];
        let len = emit_request(&mut buf, op, vip, index, sequence)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.socket.send(&buf[..len])?;
        self.sent[sequence as usize % PENDING] = Some(Sent { sequence, op, vip });
        Ok(())
    }

    /// Whether a removal was sent whose acknowledgement has not been read.
    pub fn removals_pending(&self) -> bool {
        self.sent.iter().flatten().any(|s| s.op == Op::Remove)
    }

    /// Reads every acknowledgement queued, without waiting; calls `refused` for each
    /// error (removing an address that is not there is no error).
    pub fn read_acks(&mut self, mut refused: impl FnMut(Refused)) {
        loop {
            let len = match self.socket.recv(&mut self.receive) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Lost acknowledgements lose only error reports.
                    log::debug!("floating address: reading acknowledgements: {e}");
                    return;
                }
            };
            for (header, payload) in Messages::new(&self.receive[..len]).flatten() {
                let Ok(Message::Error(code)) = Message::parse(&header, payload) else {
                    continue;
                };
                let slot = &mut self.sent[header.sequence as usize % PENDING];
                let sent = slot.take().filter(|s| s.sequence == header.sequence);
                let op = sent.map(|s| s.op);
                if code == 0 || (op == Some(Op::Remove) && NOT_PRESENT.contains(&code)) {
                    continue;
                }
                refused(Refused {
                    op,
                    vip: sent.map(|s| s.vip),
                    error: code,
                });
            }
        }
    }
}

/// What [`release`] did with each address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub removed: Vec<VipAddr>,
    pub absent: Vec<VipAddr>,
    /// Removals that failed, with the reason.
    pub failed: Vec<(VipAddr, String)>,
}

/// Removes each of `vips` from `interface`, waiting at most `wait` for the kernel's
/// answers. An interface that does not exist holds none of them. Blocking: for start-up
/// (before the event loop) and `votecast release-vip`.
pub fn release(interface: &str, vips: &[VipAddr], wait: Duration) -> io::Result<Released> {
    let mut done = Released {
        removed: Vec::new(),
        absent: Vec::new(),
        failed: Vec::new(),
    };
    let Ok(index) = nix::net::if_::if_nametoindex(interface) else {
        done.absent = vips.to_vec();
        return Ok(done);
    };
    let socket = RouteSocket::open(0)?;
    let mut buf = [0u8; REQUEST_BUFFER];
    for (k, vip) in vips.iter().enumerate() {
        let len = emit_request(&mut buf, Op::Remove, *vip, index, k as u32 + 1)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        socket.send(&buf[..len])?;
    }
    let mut answered = vec![false; vips.len()];
    let mut receive = vec![0u8; RECEIVE_BUFFER];
    let deadline = Instant::now() + wait;
    while answered.contains(&false) {
        let len = match socket.recv(&mut receive) {
            Ok(len) => len,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for (header, payload) in Messages::new(&receive[..len]).flatten() {
            let Ok(Message::Error(code)) = Message::parse(&header, payload) else {
                continue;
            };
            let Some(k) = (header.sequence as usize).checked_sub(1) else {
                continue;
            };
            let Some(vip) = vips.get(k).copied() else {
                continue;
            };
            if std::mem::replace(&mut answered[k], true) {
                continue;
            }
            match code {
                0 => done.removed.push(vip),
                c if NOT_PRESENT.contains(&c) => done.absent.push(vip),
                c => done
                    .failed
                    .push((vip, io::Error::from_raw_os_error(c).to_string())),
            }
        }
    }
    for (k, vip) in vips.iter().enumerate() {
        if !answered[k] {
            done.failed
                .push((*vip, format!("no answer from the kernel within {wait:?}")));
        }
    }
    Ok(done)
}

/// How long `release-vip` and the start-up clean-up wait for the kernel's answers (it
/// answers within the request; this bounds a kernel that does not).
pub const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// [`release`] for `votecast release-vip`: one line per address, or the error text when
/// the socket failed or any removal was refused.
pub fn release_and_report(interface: &str, vips: &[VipAddr]) -> Result<String, String> {
    let done = release(interface, vips, RELEASE_WAIT)
        .map_err(|e| format!("rtnetlink on {interface}: {e}"))?;
    let mut text = String::new();
    for vip in &done.removed {
        text.push_str(&format!("removed {vip} from {interface}\n"));
    }
    for vip in &done.absent {
        text.push_str(&format!("{vip} was not on {interface}\n"));
    }
    if done.failed.is_empty() {
        return Ok(text);
    }
    for (vip, why) in &done.failed {
        text.push_str(&format!("could not remove {vip} from {interface}: {why}\n"));
    }
    Err(text.trim_end().to_string())
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_add_with_lifetimes_byte_for_byte() {
        let vip: VipAddr = "169.254.0.100/16".parse().unwrap();
        let mut buf = [0u8; REQUEST_BUFFER];
        let len = emit_request(&mut buf, Op::Add { lifetime_secs: 3 }, vip, 7, 0x0102).unwrap();
        #[rustfmt::skip]
        let want: &[u8] = &[
            // nlmsghdr: length 60, RTM_NEWADDR (20), REQUEST|ACK|REPLACE|CREATE (0x505), seq, port
            60, 0, 0, 0, 20, 0, 0x05, 0x05, 0x02, 0x01, 0, 0, 0, 0, 0, 0,
            // ifaddrmsg: AF_INET, /16, flags 0, scope 0, index 7
            2, 16, 0, 0, 7, 0, 0, 0,
            // IFA_LOCAL, IFA_ADDRESS
            8, 0, 2, 0, 169, 254, 0, 100,
            8, 0, 1, 0, 169, 254, 0, 100,
            // IFA_CACHEINFO: preferred 3, valid 3, created 0, updated 0
            20, 0, 6, 0, 3, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(&buf[..len], want);
    }

    #[test]
    fn an_ipv6_add_skips_duplicate_address_detection_and_a_removal_has_no_lifetimes() {
        let vip: VipAddr = "fd00::64/64".parse().unwrap();
        let mut buf = [0u8; REQUEST_BUFFER];
        let len = emit_request(&mut buf, Op::Add { lifetime_secs: 1 }, vip, 3, 9).unwrap();
        let (header, payload) = Messages::new(&buf[..len]).next().unwrap().unwrap();
        assert_eq!(header.message_type, kind::NEW_ADDRESS);
        let m = AddressMessage::parse(payload).unwrap();
        assert_eq!(
            (m.family, m.prefix_len, m.flags),
            (AF_INET6, 64, IFA_F_NODAD)
        );
        assert_eq!((m.local, m.address), (Some(vip.ip), Some(vip.ip)));
        let info = m.cache_info.unwrap();
        assert_eq!((info.valid_lifetime, info.preferred_lifetime), (1, 1));

        let len = emit_request(&mut buf, Op::Remove, vip, 3, 10).unwrap();
        let (header, payload) = Messages::new(&buf[..len]).next().unwrap().unwrap();
        assert_eq!(header.message_type, kind::DEL_ADDRESS);
        assert_eq!(header.flags, flags::REQUEST | flags::ACK);
        let m = AddressMessage::parse(payload).unwrap();
        assert_eq!((m.flags, m.cache_info, m.index), (0, None, 3));
    }
}
