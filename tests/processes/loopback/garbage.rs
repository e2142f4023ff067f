//! Robustness against foreign traffic: forged, corrupted, foreign-cluster and non-voter
//! datagrams sent to the group on `lo`.

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use votecast_core::wire::{self, Flags, Repr, ServerState, Vote, FRAME_LEN};
use votecast_testkit::rng::Rng;

use super::{agree, assert_all_alive, assert_first_epoch, cluster, ms, secs, view, View};

/// A socket that can only reach the group on `lo`: bound to 127.0.0.1, multicast
/// interface 127.0.0.1, TTL 1.
fn loopback_sender() -> io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind(&SockAddr::from(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)))?;
    socket.set_multicast_if_v4(&Ipv4Addr::LOCALHOST)?;
    socket.set_multicast_ttl_v4(1)?;
    socket.set_multicast_loop_v4(true)?;
    Ok(socket)
}

fn frame(repr: &Repr) -> [u8; FRAME_LEN] {
    let mut buf = [0u8; FRAME_LEN];
    wire::emit_datagram(repr, &mut buf).expect("a FRAME_LEN buffer");
    buf
}

/// The epoch of the forged claims: far above any real one (the daemon's epochs are about
/// the milliseconds since 2020, below 2^42 until the year 2159), so a claim that got
/// through would win on its epoch.
const HUGE_EPOCH: u64 = 1 << 62;

/// A well-formed frame of `cluster` from `sender` claiming to lead in a huge epoch.
fn leading_claim(cluster: u32, sender: u64, vote_leader: u64, sequence: u64) -> Repr {
    Repr {
        state: ServerState::Leading,
        flags: Flags::ESTABLISHED,
        key_id: 0,
        cluster,
        sender,
        incarnation: 1,
        sequence,
        vote: Vote {
            leader: vote_leader,
            zxid: u64::MAX - 1,
            peer_epoch: HUGE_EPOCH,
            ineligible: false,
        },
        round: 1_000,
        accepted_epoch: HUGE_EPOCH,
        epoch: HUGE_EPOCH,
        echo: 1 + sequence,
        auth_tag: [0; 16],
    }
}

/// Counters a node logs when it stops: (malformed, other cluster).
fn stop_counters(log: &str) -> Option<(u64, u64)> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("stopped; frames received"))?;
    let after = |key: &str| -> Option<u64> {
        let rest = &line[line.find(key)? + key.len()..];
        rest.trim_start()
            .split(|ch: char| !ch.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    Some((after("malformed")?, after("other cluster")?))
}

/// Only well-formed frames of our cluster from voters count (FLE validVoter; frame CRC and
/// cluster id): thousands of random, truncated, corrupted, foreign-cluster and non-voter
/// "LEADING" datagrams sent to the group during ~1 s change no node's state, leader, epoch
/// or round, and kill no process.
#[test]
fn garbage_and_foreign_datagrams_change_nothing() {
    let mut c = cluster(3);
    let start = SystemTime::now();
    c.start_all().expect("start nodes");
    let (leader, epoch, _) = agree(&c, "cold start");
    assert_eq!(leader, 3, "{}", c.report("initial election"));
    assert_first_epoch(&c, epoch, start);
    // Let the first heartbeats settle, then take the baseline.
    std::thread::sleep(secs(0.3));
    let baseline: Vec<(u64, Option<View>)> = c.ids().iter().map(|&id| (id, view(&c, id))).collect();

    let group = c.group;
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0x5eed, |d| d.as_nanos() as u64)
        | 1;
    println!("garbage: seed {seed:#x}, group {group}");
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || -> io::Result<u64> {
            let socket = loopback_sender()?;
            let to = SockAddr::from(group);
            let mut rng = Rng::new(seed);
            let real = frame(&leading_claim(0, 3, 3, 1));
            let mut sent = 0u64;
            let started = Instant::now();
            for i in 0..1_000u64 {
                // 1. random bytes of random length (up to twice a frame)
                let len = rng.below(2 * FRAME_LEN as u64 + 1) as usize;
                let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                socket.send_to(&junk, &to)?;
                // 2. a real frame cut short
                let cut = rng.below(FRAME_LEN as u64) as usize;
                socket.send_to(&real[..cut], &to)?;
                // 3. a real frame with one CRC bit flipped
                let mut bad_crc = real;
                let bit = rng.below(32) as usize;
                bad_crc[FRAME_LEN - 4 + bit / 8] ^= 1 << (bit % 8);
                socket.send_to(&bad_crc, &to)?;
                // 4. a valid frame of another cluster, from a voter id
                socket.send_to(&frame(&leading_claim(99, 3, 3, i + 1)), &to)?;
                // 5. a valid frame of our cluster from a non-voter claiming to lead
                //    (voting for itself, or for voter 1)
                let vote = if i % 2 == 0 { 9 } else { 1 };
                socket.send_to(&frame(&leading_claim(0, 9, vote, i + 1)), &to)?;
                sent += 5;
                std::thread::sleep(Duration::from_micros(800));
            }
            done.store(true, Ordering::Relaxed);
            println!(
                "garbage: sent {sent} datagrams in {:.1} ms",
                ms(started.elapsed())
            );
            Ok(sent)
        })
    };

    // Watch while the garbage flows and for 0.5 s after (a follower that missed its
    // leader would show LOOKING within 300 ms).
    let mut changed = None;
    let mut after = None::<Instant>;
    c.wait_until(secs(15.0), |c| {
        for (id, before) in &baseline {
            let now = view(c, *id);
            if &now != before {
                changed = Some((*id, before.clone(), now));
                return true;
            }
        }
        if done.load(Ordering::Relaxed) {
            return after.get_or_insert_with(Instant::now).elapsed() > secs(0.5);
        }
        false
    });
    let sent = sender.join().expect("sender thread");
    if let Some((id, before, now)) = changed {
        panic!(
            "{}",
            c.report(format!(
                "node {id} changed under garbage: {before:?} -> {now:?}"
            ))
        );
    }
    let sent = sent.expect("send garbage to the group on lo");
    assert!(
        done.load(Ordering::Relaxed) && after.is_some(),
        "{}",
        c.report("the garbage took longer than 15 s to send")
    );
    assert_eq!(sent, 5_000);
    assert_all_alive(&mut c);

    // Stop gracefully and check the garbage did arrive (and was classified as such).
    for id in [1, 2, 3] {
        let code = c.terminate(id, secs(5.0)).expect("SIGTERM");
        assert_eq!(
            code,
            Some(0),
            "{}",
            c.report(format!("node {id} exit status"))
        );
    }
    for id in [1, 2, 3] {
        let counters = stop_counters(&c.log(id));
        println!("garbage: node {id} (malformed, other cluster) = {counters:?}");
        let (malformed, other_cluster) =
            counters.unwrap_or_else(|| panic!("{}", c.report(format!("node {id}: no stop line"))));
        assert!(
            malformed > 0 && other_cluster > 0,
            "{}",
            c.report(format!("node {id} never received the garbage"))
        );
    }
}
