//! Byte-exact vectors for the rtnetlink parser and emitter, written from the kernel's
//! struct layouts (little-endian hosts: netlink integers are in host order).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::wire::*;

/// RTM_NEWLINK for `lan0`, index 7, UP|BROADCAST|RUNNING|MULTICAST|LOWER_UP, MTU 1500.
const NEW_LINK: [u8; 52] = [
    0x34, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, // len 52, RTM_NEWLINK, flags 0
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 0, port 0
    0x00, 0x00, 0x01, 0x00, 0x07, 0x00, 0x00, 0x00, // AF_UNSPEC, ARPHRD_ETHER, index 7
    0x43, 0x10, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, // flags 0x11043, change all
    0x09, 0x00, 0x03, 0x00, b'l', b'a', b'n', b'0', // IFLA_IFNAME "lan0\0" + padding
    0x00, 0x00, 0x00, 0x00, //
    0x08, 0x00, 0x04, 0x00, 0xdc, 0x05, 0x00, 0x00, // IFLA_MTU 1500
];

/// RTM_NEWADDR 169.254.0.11/16 on index 7, permanent, label lan0, lifetimes forever.
const NEW_ADDRESS: [u8; 80] = [
    0x50, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, // len 80, RTM_NEWADDR
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
    0x02, 0x10, 0x80, 0x00, 0x07, 0x00, 0x00, 0x00, // AF_INET /16 IFA_F_PERMANENT, index 7
    0x08, 0x00, 0x01, 0x00, 169, 254, 0, 11, // IFA_ADDRESS
    0x08, 0x00, 0x02, 0x00, 169, 254, 0, 11, // IFA_LOCAL
    0x09, 0x00, 0x03, 0x00, b'l', b'a', b'n', b'0', // IFA_LABEL
    0x00, 0x00, 0x00, 0x00, //
    0x08, 0x00, 0x08, 0x00, 0x80, 0x00, 0x00, 0x00, // IFA_FLAGS
    0x14, 0x00, 0x06, 0x00, 0xff, 0xff, 0xff, 0xff, // IFA_CACHEINFO: preferred forever
    0xff, 0xff, 0xff, 0xff, 0x10, 0x27, 0x00, 0x00, // valid forever, created 10000
    0x10, 0x27, 0x00, 0x00, // updated 10000
];

fn one(buf: &[u8]) -> Message<'_> {
    let mut messages = Messages::new(buf);
    let (header, payload) = messages.next().unwrap().unwrap();
    assert!(messages.next().is_none());
    Message::parse(&header, payload).unwrap()
}

#[test]
fn a_link_message_parses() {
    let packet = Packet::new_checked(&NEW_LINK[..]).unwrap();
    assert_eq!(packet.length(), 52);
    assert_eq!(packet.message_type(), kind::NEW_LINK);
    assert_eq!(packet.payload().len(), 36);
    let Message::NewLink(link) = one(&NEW_LINK) else {
        panic!("not a link message");
    };
    assert_eq!(
        link,
        LinkMessage {
            family: 0,
            index: 7,
            flags: 0x11043,
            change: 0xffff_ffff,
            name: Some(&b"lan0"[..]),
        }
    );
    assert!(link.is_up());
    assert_ne!(link.flags & IFF_RUNNING, 0);
}

#[test]
fn an_ipv4_address_message_parses() {
    let Message::NewAddress(address) = one(&NEW_ADDRESS) else {
        panic!("not an address message");
    };
    let ip = IpAddr::V4(Ipv4Addr::new(169, 254, 0, 11));
    assert_eq!(
        address,
        AddressMessage {
            family: AF_INET,
            prefix_len: 16,
            flags: 0x80,
            scope: 0,
            index: 7,
            address: Some(ip),
            local: Some(ip),
            label: Some(&b"lan0"[..]),
            cache_info: Some(CacheInfo {
                preferred_lifetime: FOREVER,
                valid_lifetime: FOREVER,
                created: 10_000,
                updated: 10_000,
            }),
        }
    );
    assert_eq!(address.own_address(), Some(ip));
}

#[test]
fn an_ipv6_address_and_a_deletion_parse() {
    // RTM_DELADDR fe80::1/64 on index 3, scope link; IFA_ADDRESS only.
    let mut buf = vec![
        0x2c, 0x00, 0x00, 0x00, 0x15, 0x00, 0x00, 0x00, // len 44, RTM_DELADDR
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x0a, 0x40, 0x00, 0xfd, 0x03, 0x00, 0x00, 0x00, // AF_INET6 /64, scope 253
        0x14, 0x00, 0x01, 0x00, // IFA_ADDRESS, 16 bytes follow
    ];
    buf.extend_from_slice(&Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).octets());
    let Message::DelAddress(address) = one(&buf) else {
        panic!("not an address deletion");
    };
    assert_eq!(
        (address.family, address.prefix_len, address.scope),
        (AF_INET6, 64, 253)
    );
    assert_eq!(address.index, 3);
    assert_eq!(address.local, None);
    assert_eq!(address.own_address(), Some("fe80::1".parse().unwrap()));
}

#[test]
fn several_messages_in_one_datagram() {
    // RTM_DELLINK (the NEW_LINK body), an NLMSG_ERROR carrying ENODEV, NLMSG_DONE.
    let mut buf = NEW_LINK.to_vec();
    buf[4] = 0x11;
    buf.extend_from_slice(&[
        0x24, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, // len 36, NLMSG_ERROR
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 5
        0xed, 0xff, 0xff, 0xff, // -19
        0x10, 0x00, 0x00, 0x00, 0x12, 0x00, 0x05, 0x00, // the request's header
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x14, 0x00, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, // len 20, NLMSG_DONE, NLM_F_MULTI
        0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x00,
    ]);
    let parsed: Vec<(Header, Message)> = Messages::new(&buf)
        .map(|m| {
            let (h, p) = m.unwrap();
            (h, Message::parse(&h, p).unwrap())
        })
        .collect();
    assert_eq!(parsed.len(), 3);
    assert!(matches!(parsed[0].1, Message::DelLink(l) if l.index == 7 && l.name == Some(b"lan0")));
    assert_eq!(parsed[1].1, Message::Error(19));
    assert_eq!(parsed[1].0.sequence, 5);
    assert_eq!(parsed[2].1, Message::Done);
    assert_eq!(parsed[2].0.flags, flags::MULTI);
}

#[test]
fn malformed_messages_are_errors_and_end_the_datagram() {
    assert_eq!(
        Packet::new_checked(&NEW_LINK[..10]).unwrap_err(),
        Error::Truncated
    );
    // A length below the header, and one past the buffer.
    let mut short = NEW_LINK;
    short[0] = 8;
    assert_eq!(
        Packet::new_checked(&short[..]).unwrap_err(),
        Error::BadLength
    );
    assert_eq!(
        Packet::new_checked(&NEW_LINK[..40]).unwrap_err(),
        Error::BadLength
    );
    let mut messages = Messages::new(&short);
    assert_eq!(messages.next(), Some(Err(Error::BadLength)));
    assert_eq!(messages.next(), None);
    // An attribute whose length runs past the message.
    let mut bad_attr = NEW_LINK;
    bad_attr[32] = 0x30;
    let (h, p) = Messages::new(&bad_attr).next().unwrap().unwrap();
    assert_eq!(Message::parse(&h, p), Err(Error::BadLength));
    // An attribute length below its header.
    bad_attr[32] = 0x02;
    assert_eq!(Message::parse(&h, &bad_attr[16..]), Err(Error::BadLength));
    // The fixed part cut short.
    assert_eq!(LinkMessage::parse(&NEW_LINK[16..30]), Err(Error::Truncated));
    assert_eq!(
        AddressMessage::parse(&NEW_ADDRESS[16..20]),
        Err(Error::Truncated)
    );
    // An IPv4 address of 3 bytes, a cache info of 12.
    let mut bad_ip = NEW_ADDRESS;
    bad_ip[32] = 0x07;
    assert_eq!(
        AddressMessage::parse(&bad_ip[16..]),
        Err(Error::BadAttribute)
    );
    let mut bad_cache = NEW_ADDRESS;
    bad_cache[60] = 0x10;
    assert_eq!(
        AddressMessage::parse(&bad_cache[16..76]),
        Err(Error::BadAttribute)
    );
    // An error message without its code.
    let h = Header {
        message_type: kind::ERROR,
        flags: 0,
        sequence: 0,
        port: 0,
    };
    assert_eq!(Message::parse(&h, &[0, 0]), Err(Error::Truncated));
}

#[test]
fn attribute_flag_bits_are_masked_and_padding_is_skipped() {
    // IFLA_IFNAME with NLA_F_NESTED set, then 3 bytes of trailing padding.
    let attrs = [
        0x08, 0x00, 0x03, 0x80, b'e', b't', b'h', 0x00, 0x00, 0x00, 0x00,
    ];
    let parsed: Vec<_> = Attributes::new(&attrs).collect();
    assert_eq!(parsed, vec![Ok((3, &b"eth\0"[..]))]);
}

#[test]
fn an_address_request_is_emitted_byte_exactly() {
    // What the floating-IP feature will send: add 169.254.0.50/16 to index 7 with a
    // valid lifetime of 60 s and a preferred lifetime of 30 s.
    let ip = IpAddr::V4(Ipv4Addr::new(169, 254, 0, 50));
    let address = AddressMessage {
        family: AF_INET,
        prefix_len: 16,
        flags: 0,
        scope: 0,
        index: 7,
        address: Some(ip),
        local: Some(ip),
        label: None,
        cache_info: Some(CacheInfo {
            preferred_lifetime: 30,
            valid_lifetime: 60,
            created: 0,
            updated: 0,
        }),
    };
    let header = Header {
        message_type: kind::NEW_ADDRESS,
        flags: flags::REQUEST | flags::ACK | flags::CREATE | flags::REPLACE,
        sequence: 1,
        port: 0,
    };
    let mut buf = [0xaau8; 128];
    let len = emit_message(&mut buf, header, |b| address.emit(b)).unwrap();
    let expected: [u8; 60] = [
        0x3c, 0x00, 0x00, 0x00, 0x14, 0x00, 0x05, 0x05, // len 60, RTM_NEWADDR, flags 0x505
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // seq 1, port 0
        0x02, 0x10, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, // AF_INET /16, index 7
        0x08, 0x00, 0x02, 0x00, 169, 254, 0, 50, // IFA_LOCAL
        0x08, 0x00, 0x01, 0x00, 169, 254, 0, 50, // IFA_ADDRESS
        0x14, 0x00, 0x06, 0x00, 0x1e, 0x00, 0x00, 0x00, // IFA_CACHEINFO: preferred 30
        0x3c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // valid 60
        0x00, 0x00, 0x00, 0x00,
    ];
    assert_eq!(&buf[..len], &expected[..]);
    assert_eq!(buf[len], 0xaa, "nothing written past the message");
    // And it parses back to the same message.
    let (h, p) = Messages::new(&buf[..len]).next().unwrap().unwrap();
    assert_eq!(h, header);
    assert_eq!(Message::parse(&h, p), Ok(Message::NewAddress(address)));
    // A label is written with its NUL; flags above 8 bits go into IFA_FLAGS.
    let labelled = AddressMessage {
        label: Some(b"lan0"),
        flags: 0x100,
        cache_info: None,
        address: None,
        ..address
    };
    let n = labelled.emit(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &[
            0x02, 0x10, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, //
            0x08, 0x00, 0x02, 0x00, 169, 254, 0, 50, //
            0x09, 0x00, 0x03, 0x00, b'l', b'a', b'n', b'0', 0x00, 0x00, 0x00, 0x00, //
            0x08, 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00,
        ][..]
    );
    assert_eq!(AddressMessage::parse(&buf[..n]), Ok(labelled));
    // Too small a buffer is an error, not a panic.
    assert_eq!(address.emit(&mut buf[..20]), Err(Error::BufferTooSmall));
    assert_eq!(
        emit_message(&mut buf[..8], header, |b| address.emit(b)),
        Err(Error::BufferTooSmall)
    );
}
