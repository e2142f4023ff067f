use std::net::UdpSocket;
use std::time::Duration;

use votecast_core::election::Turn;
use votecast_core::wire::{emit_datagram, Flags, Repr, ServerState, Vote};

use super::*;

fn rule(turn: Option<Turn>) -> WakeRule {
    WakeRule {
        leader: 3,
        incarnation: 0x0102_0304,
        epoch: 77,
        turn,
    }
}

/// A heartbeat of `rule`'s leader that waits unless its sequence is the turn.
fn heartbeat(rule: &WakeRule, sequence: u64) -> Repr {
    Repr {
        state: ServerState::Leading,
        flags: Flags::ESTABLISHED.with(Flags::ANSWER_OPTIONAL),
        key_id: 0,
        cluster: 0,
        sender: rule.leader,
        incarnation: rule.incarnation,
        sequence,
        vote: Vote {
            leader: rule.leader,
            zxid: 0,
            peer_epoch: rule.epoch,
            ineligible: false,
        },
        round: 1,
        accepted_epoch: rule.epoch,
        epoch: rule.epoch,
        echo: 12345,
        auth_tag: [0; 16],
    }
}

/// Datagrams around `rule`: heartbeats over many sequence numbers (some beyond 32 bits),
/// the same heartbeat changed in each field a check looks at, and datagrams of other
/// lengths.
fn datagrams(rule: &WakeRule) -> Vec<Vec<u8>> {
    let emit = |f: &Repr| {
        let mut buf = vec![0u8; FRAME_LEN];
        emit_datagram(f, &mut buf).unwrap();
        buf
    };
    let mut out: Vec<Vec<u8>> = (0..12)
        .chain([
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 5,
            (7 << 40) + 3,
            u64::MAX,
        ])
        .map(|s| emit(&heartbeat(rule, s)))
        .collect();
    let changes: [fn(&mut Repr); 9] = [
        |f| f.flags = Flags::ESTABLISHED,
        |f| f.flags.insert(Flags::RESIGN),
        |f| f.vote.ineligible = true,
        |f| f.epoch = 78,
        |f| f.incarnation = 9,
        |f| f.sender = 2,
        |f| f.vote.leader = (1 << 32) | 3,
        |f| f.state = ServerState::Looking,
        |f| f.flags.insert(Flags::UNICAST_ANSWERS),
    ];
    for change in changes {
        let mut f = heartbeat(rule, 5);
        change(&mut f);
        out.push(emit(&f));
    }
    let whole = emit(&heartbeat(rule, 5));
    out.push(whole[..FRAME_LEN - 1].to_vec());
    let mut longer = whole.clone();
    longer.push(0);
    out.push(longer);
    out
}

/// Sends every datagram to a socket filtered with `side`'s program of `rule` on
/// 127.0.0.1, and returns which of them it kept (by index: the first byte of each is
/// replaced by nothing; the datagrams are told apart by their content).
fn kept_by_the_kernel(rule: &WakeRule, side: Side, all: &[Vec<u8>]) -> Vec<bool> {
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    SockRef::from(&rx)
        .attach_filter(&program(rule, side))
        .unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in all {
        tx.send_to(d, rx.local_addr().unwrap()).unwrap();
    }
    // A marker the filter of either side keeps (a heartbeat of the turn, or one that
    // cannot wait) ends the stream: every datagram before it has been filtered by then.
    let marker_waits = side == Side::Waiting;
    let marker = all
        .iter()
        .position(|d| rule.lets_wait(d) == marker_waits)
        .expect("a datagram for each side");
    tx.send_to(&all[marker], rx.local_addr().unwrap()).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 2 * FRAME_LEN];
    loop {
        let (n, _) = rx.recv_from(&mut buf).expect("the marker arrives");
        received.push(buf[..n].to_vec());
        let markers = received.iter().filter(|d| **d == all[marker]).count();
        if markers == 2 {
            break;
        }
    }
    received.pop();
    all.iter().map(|d| received.contains(d)).collect()
}

#[test]
fn the_kernel_splits_frames_as_the_rule_says() {
    for turn in [
        Some(Turn {
            cycle: 4,
            residue: 2,
        }),
        Some(Turn {
            cycle: 3,
            residue: 0,
        }),
        Some(Turn {
            cycle: 2,
            residue: 1,
        }),
        None,
    ] {
        let rule = rule(turn);
        let all = datagrams(&rule);
        let waits: Vec<bool> = all.iter().map(|d| rule.lets_wait(d)).collect();
        assert!(waits.iter().any(|w| *w) && waits.iter().any(|w| !*w));
        assert_eq!(
            kept_by_the_kernel(&rule, Side::Waiting, &all),
            waits,
            "quiet socket, {turn:?}"
        );
        let wakes: Vec<bool> = waits.iter().map(|w| !w).collect();
        assert_eq!(
            kept_by_the_kernel(&rule, Side::Waking, &all),
            wakes,
            "main socket, {turn:?}"
        );
    }
}

#[test]
fn a_quiet_socket_keeps_nothing_until_a_rule_is_set_and_again_after() {
    let main = UdpSocket::bind("127.0.0.1:0").unwrap();
    let quiet_socket = Socket::from(UdpSocket::bind("127.0.0.1:0").unwrap());
    let quiet_addr = quiet_socket.local_addr().unwrap().as_socket().unwrap();
    quiet_socket.set_nonblocking(true).unwrap();
    let mut quiet = match Quiet::new(quiet_socket.try_clone().unwrap()) {
        Ok(quiet) => quiet,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOPROTOOPT) => {
            // qemu-user: no SO_TIMESTAMPNS. The node then opens no quiet socket and
            // wakes for every frame, as before; nothing more to test here.
            println!("no receive stamps on this platform ({e}): no quiet socket");
            assert!(Quiet::open(quiet_socket).is_none());
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rule = rule(None);
    let frame = &datagrams(&rule)[0];
    assert!(rule.lets_wait(frame));
    let mut buf = [0u8; 2 * FRAME_LEN];
    let mut arrives = |quiet: &mut Quiet| {
        tx.send_to(frame, quiet_addr).unwrap();
        // Loopback delivers within the send; a short wait covers a slow machine.
        let deadline = std::time::Instant::now() + Duration::from_millis(200);
        loop {
            if let Some(got) = quiet.recv(&mut buf) {
                return Some(got);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    assert!(arrives(&mut quiet).is_none(), "dropped without a rule");
    quiet.set_rule(&main, Some(rule)).unwrap();
    assert_eq!(quiet.rule(), Some(rule));
    let (len, from, stamp) = arrives(&mut quiet).expect("kept under the rule");
    assert_eq!(len, FRAME_LEN);
    assert_eq!(from, tx.local_addr().unwrap());
    let stamp = stamp.expect("SO_TIMESTAMPNS gives a stamp");
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    assert!(
        (wall - stamp).abs() < 5_000_000_000,
        "stamp {stamp}, wall {wall}"
    );
    quiet.set_rule(&main, None).unwrap();
    assert!(arrives(&mut quiet).is_none(), "dropped again");
}

fn us(n: u64) -> Instant {
    Instant::from_micros(n)
}

#[test]
fn a_stamp_converts_to_the_core_clock_never_early_and_within_the_turn() {
    // Wall clock 1,000 s ahead of the core's.
    let offset = 1_000_000_000_000i128;
    let stamp = |core_ns: i128| Some(core_ns + offset);
    // 5.0004 ms on the core's clock: rounded up to the next µs.
    assert_eq!(
        receipt_time(stamp(5_000_400), Some(offset), us(0), us(9_000)),
        us(5_001)
    );
    assert_eq!(
        receipt_time(stamp(5_000_000), Some(offset), us(0), us(9_000)),
        us(5_001)
    );
    // Never before the node's last input, never after the read.
    assert_eq!(
        receipt_time(stamp(5_000_000), Some(offset), us(7_000), us(9_000)),
        us(7_000)
    );
    assert_eq!(
        receipt_time(stamp(12_000_000), Some(offset), us(0), us(9_000)),
        us(9_000)
    );
    // No stamp, or no trusted offset: when read.
    assert_eq!(
        receipt_time(None, Some(offset), us(0), us(9_000)),
        us(9_000)
    );
    assert_eq!(
        receipt_time(stamp(5_000_000), None, us(0), us(9_000)),
        us(9_000)
    );
    // A stamp before the core clock's start.
    assert_eq!(
        receipt_time(Some(5), Some(offset), us(0), us(9_000)),
        us(9_000)
    );
}

#[test]
fn a_wall_clock_step_between_two_turns_makes_the_frames_count_when_read() {
    let mut check = OffsetCheck::default();
    let base = 1_000_000_000_000i128;
    let at = us(1_000_000);
    assert_eq!(
        check.turn(at, Some(base)),
        None,
        "nothing to compare with yet"
    );
    assert_eq!(
        check.turn(at, Some(base + 30)),
        Some(base),
        "the smaller reading"
    );
    assert_eq!(
        check.turn(at, Some(base + 30 - STEP_TOLERANCE_NS)),
        Some(base + 30 - STEP_TOLERANCE_NS)
    );
    assert!(check.steady(at), "within the tolerance: no step");
    assert_eq!(
        check.turn(at, Some(base + 2_000_000)),
        None,
        "a step of 2 ms"
    );
    assert_eq!(
        check.turn(at, Some(base + 2_000_000)),
        Some(base + 2_000_000)
    );
    assert_eq!(
        check.turn(at, Some(base - 3_600_000_000_000)),
        None,
        "back an hour"
    );
    check.note(None);
    assert_eq!(check.turn(at, Some(base)), None, "not to be trusted");
    // A reading that was not tight: this turn counts from when read, and the baseline
    // (read before this turn's frames arrived, so before the next turn's too) stays.
    assert_eq!(check.turn(at, None), None);
    assert_eq!(check.turn(at, Some(base)), Some(base));
}

#[test]
fn a_wall_clock_that_was_set_keeps_the_node_awake_until_it_keeps_still() {
    let mut check = OffsetCheck::default();
    let base = 1_000_000_000_000i128;
    let s = |n: u64| us(n * 1_000_000);
    assert!(check.steady(s(0)), "never moved");
    assert_eq!(check.watch(s(0), Some(base)), None);
    assert_eq!(
        check.watch(s(1), None),
        None,
        "an unreadable offset is no move"
    );
    assert_eq!(check.watch(s(1), Some(base + STEP_TOLERANCE_NS)), None);
    assert!(check.steady(s(1)));
    // Set back 0.3 ms at 2 s (seen by a watch), forward again at 3 s (seen by a turn).
    assert_eq!(
        check.watch(s(2), Some(base - 200_000)),
        Some(-300_000),
        "from the reading before"
    );
    assert!(!check.steady(s(2)));
    assert!(!check.steady(s(11)));
    assert_eq!(check.turn(s(3), Some(base)), None);
    assert_eq!(check.moves(), (2, 300_000));
    assert!(!check.steady(s(12)));
    assert!(
        check.steady(s(3) + STEADY_FOR),
        "still for STEADY_FOR since the last move"
    );
    // A clock set every 100 ms (some virtual machines' time agents do it): never steady.
    let mut check = OffsetCheck::default();
    for k in 0..100u64 {
        let offset = base + if k % 2 == 0 { 0 } else { 300_000 };
        check.watch(us(k * 100_000), Some(offset));
        if k > 0 {
            assert!(!check.steady(us(k * 100_000)), "at {k}");
        }
    }
    assert_eq!(check.moves(), (99, 300_000));
}

#[test]
fn an_offset_reading_is_tight_and_never_more_than_the_offset() {
    let mut tight = 0;
    for _ in 0..100 {
        // Not tight only if preempted between the clock reads in all three tries.
        let Some(offset) = clock_offset(ClockId::CLOCK_BOOTTIME) else {
            continue;
        };
        tight += 1;
        // Read the other way round, core first: at least the true offset.
        let core = clock_gettime(ClockId::CLOCK_BOOTTIME).unwrap();
        let wall = clock_gettime(ClockId::CLOCK_REALTIME).unwrap();
        let ns = |t: TimeSpec| i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec());
        let above = ns(wall) - ns(core);
        assert!(offset <= above, "{offset} > {above}");
        // Both readings close to the true offset, unless preempted in between.
        assert!(above - offset < 50_000_000, "{offset} vs {above}");
    }
    println!("{tight} of 100 readings tight");
    assert!(tight >= 90, "{tight} of 100 readings tight");
}

#[test]
fn a_frame_without_a_stamp_keeps_the_node_awake_for_good() {
    let main = UdpSocket::bind("127.0.0.1:0").unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    socket.set_nonblocking(true).unwrap();
    // No SO_TIMESTAMPNS: the kernel gives no stamp.
    let mut quiet = Quiet::unstamped(Socket::from(socket)).unwrap();
    assert!(quiet.may_sleep(us(0)));
    let rule = rule(None);
    quiet.set_rule(&main, Some(rule)).unwrap();
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.send_to(&datagrams(&rule)[0], addr).unwrap();
    let mut buf = [0u8; 2 * FRAME_LEN];
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let got = loop {
        if let Some(got) = quiet.recv(&mut buf) {
            break got;
        }
        assert!(std::time::Instant::now() < deadline, "the frame never came");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(got.2, None, "no stamp");
    assert!(!quiet.may_sleep(us(0)));
    assert!(!quiet.may_sleep(us(0) + STEADY_FOR * 100));
    assert_eq!(quiet.clock_report(), (0, 0, true));
}

#[test]
fn the_offset_noted_with_a_rule_counts_only_if_no_earlier_frame_waits() {
    let main = UdpSocket::bind("127.0.0.1:0").unwrap();
    let socket = Socket::from(UdpSocket::bind("127.0.0.1:0").unwrap());
    // The rule's bookkeeping, not the stamps (which qemu-user lacks).
    let mut quiet = Quiet::unstamped(socket).unwrap();
    let base = 1_000_000_000_000i128;
    quiet.set_rule(&main, Some(rule(None))).unwrap();
    quiet.note_offset(Some(base));
    assert_eq!(
        quiet.turn_offset(us(0), Some(base)),
        Some(base),
        "the first turn trusts it"
    );
    // Straight to another rule: frames of the first may still wait, which arrived
    // before the reading taken now.
    quiet
        .set_rule(
            &main,
            Some(rule(Some(Turn {
                cycle: 2,
                residue: 1,
            }))),
        )
        .unwrap();
    assert!(quiet.may_hold_frames());
    quiet.note_offset(Some(base));
    assert_eq!(
        quiet.turn_offset(us(0), Some(base)),
        None,
        "counted when read"
    );
    assert_eq!(quiet.turn_offset(us(0), Some(base)), Some(base));
}
