//! rtnetlink messages: the netlink header ([`Packet`], [`Header`]), route attributes
//! ([`Attributes`], [`emit_attribute`]), link messages ([`LinkMessage`], `ifinfomsg`) and
//! address messages ([`AddressMessage`], `ifaddrmsg`), parsed without allocation from a
//! receive buffer and emitted into a caller's buffer.
//!
//! Integers are in the host's byte order, as the kernel writes them (except addresses,
//! which are in network order). Lengths come from the kernel but are checked anyway:
//! every accessor stays inside the buffer, and a malformed message is an [`Error`], never
//! a panic.
//!
//! Layouts (`linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_addr.h`):
//!
//! | struct | bytes |
//! |---|---|
//! | `nlmsghdr` | 0 len u32 (header included), 4 type u16, 6 flags u16, 8 seq u32, 12 port id u32 |
//! | `ifinfomsg` | 0 family u8, 1 pad, 2 type u16, 4 index i32, 8 flags u32 (`IFF_*`), 12 change u32 |
//! | `ifaddrmsg` | 0 family u8, 1 prefix length u8, 2 flags u8, 3 scope u8, 4 index u32 |
//! | `rtattr` | 0 len u16 (header included), 2 type u16, then the value; padded to 4 bytes |
//! | `ifa_cacheinfo` | 0 preferred lifetime u32 (s), 4 valid lifetime u32 (s), 8 created, 12 updated (1/100 s) |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Length of `nlmsghdr`.
pub const HEADER_LEN: usize = 16;
/// Length of `ifinfomsg`.
pub const LINK_LEN: usize = 16;
/// Length of `ifaddrmsg`.
pub const ADDRESS_LEN: usize = 8;
/// Length of `rtattr`'s header.
pub const ATTRIBUTE_HEADER_LEN: usize = 4;

/// Message types.
pub mod kind {
    pub const NOOP: u16 = 1;
    pub const ERROR: u16 = 2;
    pub const DONE: u16 = 3;
    pub const OVERRUN: u16 = 4;
    pub const NEW_LINK: u16 = 16;
    pub const DEL_LINK: u16 = 17;
    pub const GET_LINK: u16 = 18;
    pub const NEW_ADDRESS: u16 = 20;
    pub const DEL_ADDRESS: u16 = 21;
    pub const GET_ADDRESS: u16 = 22;
}

/// Header flags (`NLM_F_*`).
pub mod flags {
    pub const REQUEST: u16 = 0x1;
    pub const MULTI: u16 = 0x2;
    pub const ACK: u16 = 0x4;
    /// GET requests: every object (`NLM_F_ROOT | NLM_F_MATCH`).
    pub const DUMP: u16 = 0x300;
    /// NEW requests: replace an existing object.
    pub const REPLACE: u16 = 0x100;
    /// NEW requests: fail if it exists.
    pub const EXCL: u16 = 0x200;
    /// NEW requests: create it if it does not exist.
    pub const CREATE: u16 = 0x400;
}

/// Link attributes (`IFLA_*`) this module reads.
pub mod link_attr {
    pub const IFNAME: u16 = 3;
}

/// Address attributes (`IFA_*`).
pub mod address_attr {
    pub const ADDRESS: u16 = 1;
    pub const LOCAL: u16 = 2;
    pub const LABEL: u16 = 3;
    pub const CACHE_INFO: u16 = 6;
    /// The full 32-bit flags (the header holds only the low 8 bits).
    pub const FLAGS: u16 = 8;
}

/// `IFF_UP`: the interface is administratively up.
pub const IFF_UP: u32 = 0x1;
/// `IFF_RUNNING`: the interface is up and has a carrier.
pub const IFF_RUNNING: u32 = 0x40;
/// `IFA_F_SECONDARY`: an IPv4 address in the subnet of another address of the interface
/// (the primary); the kernel lists every primary address before the secondaries.
pub const IFA_F_SECONDARY: u32 = 0x01;
/// Address families.
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
/// Lifetime value meaning "forever" (`INFINITY_LIFE_TIME`).
pub const FOREVER: u32 = u32::MAX;

/// Attribute types carry two flag bits (nested, network byte order) above the type.
const ATTRIBUTE_TYPE_MASK: u16 = 0x3fff;

/// What is wrong with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends before a header or fixed part is complete.
    Truncated,
    /// A length field is smaller than its header or runs past the buffer.
    BadLength,
    /// An attribute value has the wrong size for its type.
    BadAttribute,
    /// An emit target buffer is too small.
    BufferTooSmall,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated netlink message",
            Error::BadLength => "netlink length field out of bounds",
            Error::BadAttribute => "netlink attribute of the wrong size",
            Error::BufferTooSmall => "buffer too small for the netlink message",
        })
    }
}

impl std::error::Error for Error {}

/// Netlink's 4-byte alignment.
pub const fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A netlink message over a byte buffer: typed access to the header fields.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks; the getters then panic on a short buffer.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking that the header fits and that its length field
    /// covers the header and stays inside the buffer.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer);
        let len = packet.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let declared = packet.length() as usize;
        if declared < HEADER_LEN || declared > len {
            return Err(Error::BadLength);
        }
        Ok(packet)
    }

    pub fn length(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 0)
    }
    pub fn message_type(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 4)
    }
    pub fn flags(&self) -> u16 {
        u16_at(self.buffer.as_ref(), 6)
    }
    pub fn sequence(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 8)
    }
    pub fn port(&self) -> u32 {
        u32_at(self.buffer.as_ref(), 12)
    }
    /// The bytes after the header, up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_length(&mut self, v: u32) {
        self.buffer.as_mut()[0..4].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn set_message_type(&mut self, v: u16) {
        self.buffer.as_mut()[4..6].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn set_flags(&mut self, v: u16) {
        self.buffer.as_mut()[6..8].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn set_sequence(&mut self, v: u32) {
        self.buffer.as_mut()[8..12].copy_from_slice(&v.to_ne_bytes());
    }
    pub fn set_port(&mut self, v: u32) {
        self.buffer.as_mut()[12..16].copy_from_slice(&v.to_ne_bytes());
    }
}

/// The header fields besides the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub message_type: u16,
    pub flags: u16,
    pub sequence: u32,
    pub port: u32,
}

impl Header {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Header {
        Header {
            message_type: packet.message_type(),
            flags: packet.flags(),
            sequence: packet.sequence(),
            port: packet.port(),
        }
    }
}

/// Writes a message into `buf`: this header, then the body `body` writes after it (it
/// gets the rest of the buffer and returns how many bytes it used). Returns the message
/// length, which is also written into the header.
pub fn emit_message(
    buf: &mut [u8],
    header: Header,
    body: impl FnOnce(&mut [u8]) -> Result<usize, Error>,
) -> Result<usize, Error> {
    if buf.len() < HEADER_LEN {
        return Err(Error::BufferTooSmall);
    }
    let body_len = body(&mut buf[HEADER_LEN..])?;
    let len = HEADER_LEN + body_len;
    let mut packet = Packet::new_unchecked(&mut buf[..len]);
    packet.set_length(len as u32);
    packet.set_message_type(header.message_type);
    packet.set_flags(header.flags);
    packet.set_sequence(header.sequence);
    packet.set_port(header.port);
    Ok(len)
}

/// The messages of one receive buffer (a datagram may hold several), each as its header
/// and payload. After an error it yields nothing more: the rest cannot be framed.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    pub fn new(buf: &'a [u8]) -> Messages<'a> {
        Messages { rest: buf }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<(Header, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        let packet = match Packet::new_checked(rest) {
            Ok(p) => p,
            Err(e) => {
                self.rest = &[];
                return Some(Err(e));
            }
        };
        let len = packet.length() as usize;
        self.rest = &rest[align(len).min(rest.len())..];
        Some(Ok((Header::parse(&packet), &rest[HEADER_LEN..len])))
    }
}

/// The route attributes of a payload (after the fixed part), as (type, value). The type
/// is without the nested / byte-order flag bits. After an error it yields nothing more.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Attributes<'a> {
    pub fn new(buf: &'a [u8]) -> Attributes<'a> {
        Attributes { rest: buf }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Result<(u16, &'a [u8]), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        if rest.len() < ATTRIBUTE_HEADER_LEN {
            // Trailing padding shorter than a header is not an attribute.
            self.rest = &[];
            return None;
        }
        let len = u16_at(rest, 0) as usize;
        if len < ATTRIBUTE_HEADER_LEN || len > rest.len() {
            self.rest = &[];
            return Some(Err(Error::BadLength));
        }
        let kind = u16_at(rest, 2) & ATTRIBUTE_TYPE_MASK;
        self.rest = &rest[align(len).min(rest.len())..];
        Some(Ok((kind, &rest[ATTRIBUTE_HEADER_LEN..len])))
    }
}

/// Writes one attribute at the start of `buf`, zero-padded to 4 bytes; returns the
/// padded length.
pub fn emit_attribute(buf: &mut [u8], kind: u16, value: &[u8]) -> Result<usize, Error> {
    let len = ATTRIBUTE_HEADER_LEN + value.len();
    let padded = align(len);
    if buf.len() < padded || len > usize::from(u16::MAX) {
        return Err(Error::BufferTooSmall);
    }
    buf[0..2].copy_from_slice(&(len as u16).to_ne_bytes());
    buf[2..4].copy_from_slice(&kind.to_ne_bytes());
    buf[ATTRIBUTE_HEADER_LEN..len].copy_from_slice(value);
    buf[len..padded].fill(0);
    Ok(padded)
}

/// A string attribute without its terminating NUL (and anything after it).
fn c_string(value: &[u8]) -> &[u8] {
    value.split(|&b| b == 0).next().unwrap_or(value)
}

/// An `RTM_NEWLINK` / `RTM_DELLINK` message: which interface, its `IFF_*` flags and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkMessage<'a> {
    pub family: u8,
    pub index: u32,
    /// `IFF_*` flags.
    pub flags: u32,
    /// The flags that changed (the kernel often sets all bits).
    pub change: u32,
    /// `IFLA_IFNAME`, without the NUL.
    pub name: Option<&'a [u8]>,
}

impl<'a> LinkMessage<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<LinkMessage<'a>, Error> {
        if payload.len() < LINK_LEN {
            return Err(Error::Truncated);
        }
        let mut link = LinkMessage {
            family: payload[0],
            index: u32_at(payload, 4),
            flags: u32_at(payload, 8),
            change: u32_at(payload, 12),
            name: None,
        };
        for attribute in Attributes::new(&payload[LINK_LEN..]) {
            if let (link_attr::IFNAME, value) = attribute? {
                link.name = Some(c_string(value));
            }
        }
        Ok(link)
    }

    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// `ifa_cacheinfo`: an address's lifetimes in seconds ([`FOREVER`] = no end) and its
/// timestamps in hundredths of a second since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheInfo {
    pub preferred_lifetime: u32,
    pub valid_lifetime: u32,
    pub created: u32,
    pub updated: u32,
}

impl CacheInfo {
    const LEN: usize = 16;

    fn parse(value: &[u8]) -> Result<CacheInfo, Error> {
        if value.len() != Self::LEN {
            return Err(Error::BadAttribute);
        }
        Ok(CacheInfo {
            preferred_lifetime: u32_at(value, 0),
            valid_lifetime: u32_at(value, 4),
            created: u32_at(value, 8),
            updated: u32_at(value, 12),
        })
    }

    fn bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        for (k, v) in [
            self.preferred_lifetime,
            self.valid_lifetime,
            self.created,
            self.updated,
        ]
        .into_iter()
        .enumerate()
        {
            b[4 * k..4 * k + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

/// An `RTM_NEWADDR` / `RTM_DELADDR` message (also the body of a request to add or remove
/// an address, with lifetimes in [`CacheInfo`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressMessage<'a> {
    pub family: u8,
    pub prefix_len: u8,
    /// `IFA_F_*` flags: `IFA_FLAGS` when present, else the 8 bits of the header.
    pub flags: u32,
    pub scope: u8,
    pub index: u32,
    /// `IFA_ADDRESS`: the peer on point-to-point links, else the same as `local`.
    pub address: Option<IpAddr>,
    /// `IFA_LOCAL`: the interface's own address (IPv4).
    pub local: Option<IpAddr>,
    /// `IFA_LABEL` (IPv4), without the NUL.
    pub label: Option<&'a [u8]>,
    pub cache_info: Option<CacheInfo>,
}

fn ip_of(family: u8, value: &[u8]) -> Result<IpAddr, Error> {
    match (family, value.len()) {
        (AF_INET, 4) => Ok(IpAddr::V4(Ipv4Addr::new(
            value[0], value[1], value[2], value[3],
        ))),
        (AF_INET6, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(value);
            Ok(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => Err(Error::BadAttribute),
    }
}

impl<'a> AddressMessage<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<AddressMessage<'a>, Error> {
        if payload.len() < ADDRESS_LEN {
            return Err(Error::Truncated);
        }
        let family = payload[0];
        let mut msg = AddressMessage {
            family,
            prefix_len: payload[1],
            flags: u32::from(payload[2]),
            scope: payload[3],
            index: u32_at(payload, 4),
            address: None,
            local: None,
            label: None,
            cache_info: None,
        };
        for attribute in Attributes::new(&payload[ADDRESS_LEN..]) {
            let (kind, value) = attribute?;
            match kind {
                address_attr::ADDRESS => msg.address = Some(ip_of(family, value)?),
                address_attr::LOCAL => msg.local = Some(ip_of(family, value)?),
                address_attr::LABEL => msg.label = Some(c_string(value)),
                address_attr::CACHE_INFO => msg.cache_info = Some(CacheInfo::parse(value)?),
                address_attr::FLAGS if value.len() == 4 => msg.flags = u32_at(value, 0),
                address_attr::FLAGS => return Err(Error::BadAttribute),
                _ => {}
            }
        }
        Ok(msg)
    }

    /// The interface's own address: `IFA_LOCAL` if present (IPv4), else `IFA_ADDRESS`.
    pub fn own_address(&self) -> Option<IpAddr> {
        self.local.or(self.address)
    }

    /// Writes the `ifaddrmsg` and the attributes that are set (local, address, label
    /// with its NUL, cache info, and `IFA_FLAGS` when a flag above the low 8 bits is
    /// set); returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.len() < ADDRESS_LEN {
            return Err(Error::BufferTooSmall);
        }
        buf[0] = self.family;
        buf[1] = self.prefix_len;
        buf[2] = self.flags as u8;
        buf[3] = self.scope;
        buf[4..8].copy_from_slice(&self.index.to_ne_bytes());
        let mut at = ADDRESS_LEN;
        let ip_bytes = |ip: IpAddr| -> ([u8; 16], usize) {
            let mut b = [0u8; 16];
            match ip {
                IpAddr::V4(v4) => {
                    b[..4].copy_from_slice(&v4.octets());
                    (b, 4)
                }
                IpAddr::V6(v6) => (v6.octets(), 16),
            }
        };
        for (kind, ip) in [
            (address_attr::LOCAL, self.local),
            (address_attr::ADDRESS, self.address),
        ] {
            if let Some(ip) = ip {
                let (b, n) = ip_bytes(ip);
                at += emit_attribute(&mut buf[at..], kind, &b[..n])?;
            }
        }
        if let Some(label) = self.label {
            let mut b = [0u8; 16];
            let n = label.len();
            if n >= b.len() {
                return Err(Error::BadAttribute);
            }
            b[..n].copy_from_slice(label);
            at += emit_attribute(&mut buf[at..], address_attr::LABEL, &b[..=n])?;
        }
        if let Some(info) = self.cache_info {
            at += emit_attribute(&mut buf[at..], address_attr::CACHE_INFO, &info.bytes())?;
        }
        if self.flags > 0xff {
            at += emit_attribute(
                &mut buf[at..],
                address_attr::FLAGS,
                &self.flags.to_ne_bytes(),
            )?;
        }
        Ok(at)
    }
}

/// One rtnetlink message, as far as the daemon cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    NewLink(LinkMessage<'a>),
    DelLink(LinkMessage<'a>),
    NewAddress(AddressMessage<'a>),
    DelAddress(AddressMessage<'a>),
    /// `NLMSG_ERROR`: 0 is an acknowledgement, otherwise the (positive) errno.
    Error(i32),
    Done,
    /// Any other type (`NLMSG_NOOP`, `NLMSG_OVERRUN`, other families' messages).
    Other(u16),
}

impl<'a> Message<'a> {
    pub fn parse(header: &Header, payload: &'a [u8]) -> Result<Message<'a>, Error> {
        Ok(match header.message_type {
            kind::NEW_LINK => Message::NewLink(LinkMessage::parse(payload)?),
            kind::DEL_LINK => Message::DelLink(LinkMessage::parse(payload)?),
            kind::NEW_ADDRESS => Message::NewAddress(AddressMessage::parse(payload)?),
            kind::DEL_ADDRESS => Message::DelAddress(AddressMessage::parse(payload)?),
            kind::ERROR => {
                if payload.len() < 4 {
                    return Err(Error::Truncated);
                }
                let code = u32_at(payload, 0) as i32;
                Message::Error(code.checked_neg().unwrap_or(i32::MAX))
            }
            kind::DONE => Message::Done,
            other => Message::Other(other),
        })
    }
}
