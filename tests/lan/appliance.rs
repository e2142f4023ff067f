//! What an appliance (a pair or trio of boxes with a floating address and a health check)
//! relies on, on the wire of the namespace LAN rather than on `lo`:
//! - an IPv6 floating address (`--vip fe80::f00d/64`, added with IFA_F_NODAD) moves after
//!   SIGKILL of the leader, and the new leader's unsolicited neighbour advertisement
//!   (Override set) rewrites the client's existing neighbour entry by itself: the client's
//!   table is never flushed and the client sends nothing to the address meanwhile, so a
//!   change can only come from the advertisement. The time from the kill to the client's
//!   entry naming the new MAC is printed;
//! - a leader whose `--track` check fails hands over within [`HANDOVER_BOUND`] and keeps
//!   voting as a follower, and healthy again it does not depose the new leader.

use std::fs::File;
use std::mem::MaybeUninit;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use votecast::daemon::state_file::read_state_file;

use crate::netns::{Lan, HOST_IF};
use crate::vip::{ip_out, leader_of};
use crate::EXE;

const VIP6: &str = "fe80::f00d";
const VIP6_CIDR: &str = "fe80::f00d/64";
const CLIENT_ADDR: &str = "169.254.0.200";
const ELECTION_BOUND: Duration = Duration::from_secs(15);
/// From SIGKILL of the leader to the client's neighbour entry naming the new leader: the
/// failover (a few hundred ms at the default timing) plus the advertisement's trip; the
/// margin is for a loaded 2-core machine.
const NEIGH_SWITCH_BOUND: Duration = Duration::from_secs(5);
/// From the leader's check failing (its file removed) to another node leading: `fall`
/// runs of the check (2 × 100 ms) plus the stand-down and one election; margin for load.
const HANDOVER_BOUND: Duration = Duration::from_secs(3);

/// The MAC of `lan0` in `ns`, as `ip` prints it (lower-case, colon-separated).
fn mac_of(ns: &str) -> String {
    let out = ip_out(&["-o", "-n", ns, "link", "show", HOST_IF]);
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {out}"))
        .to_owned()
}

fn holds_vip6(ns: &str) -> bool {
    ip_out(&["-n", ns, "-6", "addr", "show", "dev", HOST_IF])
        .contains(&format!("inet6 {VIP6_CIDR}"))
}

/// The client's neighbour entry for the address: (MAC, state), if it has one with a MAC.
fn client_neigh(client: &str) -> (Option<String>, String) {
    let out = ip_out(&["-n", client, "-6", "neigh", "show", VIP6, "dev", HOST_IF]);
    let mac = out
        .split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .map(str::to_owned);
    (mac, out.trim().to_owned())
}

/// Waits (at most `bound`) for a leader of `nodes` other than `not`; returns it and the
/// time it took.
fn await_leader(
    lan: &mut Lan,
    nodes: &[usize],
    not: Option<usize>,
    bound: Duration,
    what: &str,
) -> (usize, Duration) {
    let start = Instant::now();
    loop {
        if let Some(l) = leader_of(lan, nodes).filter(|&l| Some(l) != not) {
            return (l, start.elapsed());
        }
        let exited = lan.reap_exited();
        if start.elapsed() > bound || !exited.is_empty() {
            panic!(
                "{what}: no leader among {nodes:?} (not {not:?}) within {bound:?} \
                 (exited: {exited:?})\n{}",
                logs(lan)
            );
        }
        sleep(Duration::from_millis(5));
    }
}

fn logs(lan: &Lan) -> String {
    (1..=lan.n)
        .map(|i| format!("--- node {i} ---\n{}", lan.log(i)))
        .collect()
}

/// Waits (at most 10 s) for the client's own link-local address to leave DAD: without
/// it the client cannot send to a link-local address.
fn await_client_link_local(client: &str) {
    let start = Instant::now();
    loop {
        let out = ip_out(&["-n", client, "-6", "addr", "show", "dev", HOST_IF]);
        if out
            .lines()
            .any(|l| l.contains("inet6 fe80:") && !l.contains("tentative"))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "client: no usable link-local address:\n{out}"
        );
        sleep(Duration::from_millis(50));
    }
}

/// One ICMPv6 echo request from the client to the address (hop limit 1, out of `lan0`),
/// answered within 1 s or an error. Sent from a thread moved into the client's
/// namespace (no `ping` needed); the kernel fills in the checksum of a raw ICMPv6 socket.
fn ping6(client: &str) -> Result<(), String> {
    let path = format!("/var/run/netns/{client}");
    std::thread::spawn(move || -> Result<(), String> {
        let netns = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {path}: {e}"))?;
        let scope =
            nix::net::if_::if_nametoindex(HOST_IF).map_err(|e| format!("{HOST_IF}: {e}"))?;
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
            .map_err(|e| format!("raw ICMPv6 socket: {e}"))?;
        socket.set_unicast_hops_v6(1).map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let vip: Ipv6Addr = VIP6.parse().expect("address");
        let to = SocketAddrV6::new(vip, 0, 0, scope);
        let echo = [128u8, 0, 0, 0, 0x76, 0x36, 0, 1];
        socket
            .send_to(&echo, &to.into())
            .map_err(|e| format!("echo request to {to}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
        while Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            // SAFETY: recv_from initialised the first `n` bytes.
            let reply: Vec<u8> = buf[..n]
                .iter()
                .map(|b| unsafe { b.assume_init() })
                .collect();
            let from_vip = from.as_socket_ipv6().is_some_and(|a| *a.ip() == vip);
            if from_vip && reply.len() >= 8 && reply[0] == 129 && reply[4..8] == echo[4..8] {
                return Ok(());
            }
        }
        Err(format!("no echo reply from {to} within 1 s"))
    })
    .join()
    .expect("ping thread")
}

/// Waits (at most [`NEIGH_SWITCH_BOUND`] from `t0`) until the client's entry names `mac`;
/// returns when, and every distinct entry seen from `first` on.
fn await_client_entry(
    lan: &Lan,
    client: &str,
    mac: &str,
    first: String,
    t0: Instant,
) -> (Duration, Vec<String>) {
    let mut entries = vec![first];
    loop {
        let (now, entry) = client_neigh(client);
        if entries.last() != Some(&entry) {
            entries.push(entry);
        }
        if now.as_deref() == Some(mac) {
            return (t0.elapsed(), entries);
        }
        assert!(
            t0.elapsed() <= NEIGH_SWITCH_BOUND,
            "the client's entry for {VIP6} never named the new leader's MAC {mac} within \
             {NEIGH_SWITCH_BOUND:?} of the kill; entries seen: {entries:#?}\n{}",
            logs(lan)
        );
        sleep(Duration::from_millis(2));
    }
}

#[test]
fn ipv6_vip_moves_after_sigkill() {
    crate::userns::as_root(ipv6_vip_moves);
}

fn ipv6_vip_moves() {
    let mut lan = Lan::new(Path::new(EXE), "a6", 3).expect("build the LAN");
    let client = lan.add_client("c", CLIENT_ADDR).expect("client namespace");
    for i in 1..=3 {
        lan.wait_ipv6_link_local(i, Duration::from_secs(10))
            .expect("IPv6 link-local address");
    }
    await_client_link_local(&client);
    let macs: Vec<String> = lan.hosts.iter().map(|h| mac_of(h)).collect();
    let args = vec!["--vip".to_string(), VIP6_CIDR.to_string()];
    for i in 1..=3 {
        lan.start_with(i, &args).expect("start node");
    }
    let (l, _) = await_leader(&mut lan, &[1, 2, 3], None, ELECTION_BOUND, "cold start");
    let start = Instant::now();
    while !holds_vip6(&lan.hosts[l - 1]) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "leader {l} never added {VIP6_CIDR}:\n{}",
            lan.log(l)
        );
        sleep(Duration::from_millis(10));
    }
    // The client resolves the address once, through the leader.
    let mut answered = Err(String::new());
    for _ in 0..5 {
        answered = ping6(&client);
        if answered.is_ok() {
            break;
        }
    }
    if let Err(e) = answered {
        panic!(
            "the client never reached {VIP6} on leader {l}: {e}; client's entry: {:?}",
            client_neigh(&client).1
        );
    }
    let (mac, entry) = client_neigh(&client);
    assert_eq!(
        mac.as_deref(),
        Some(macs[l - 1].as_str()),
        "client's entry after the ping: {entry:?}"
    );
    let t0 = Instant::now();
    lan.kill(l).expect("SIGKILL the leader");
    let others: Vec<usize> = (1..=3).filter(|&i| i != l).collect();
    let (n, elected) = await_leader(&mut lan, &others, Some(l), ELECTION_BOUND, "failover");
    // Only the advertisement can change the entry now: the client sends nothing to the
    // address, and its table is not flushed.
    let (switched, entries) = await_client_entry(&lan, &client, &macs[n - 1], entry, t0);
    // An unsolicited advertisement (Solicited clear) leaves the entry STALE; a resolution
    // by the client (a solicited one) would have left it REACHABLE.
    let last = entries.last().expect("an entry");
    assert!(
        last.ends_with("STALE"),
        "the new MAC came from an unsolicited advertisement: {entries:?}"
    );
    let added_by = holds_vip6(&lan.hosts[n - 1]);
    println!(
        "appliance: SIGKILL of leader {l}: node {n} leads after {:.0} ms; the client's \
         neighbour entry for {VIP6} named its MAC {:.0} ms after the kill (entries seen: \
         {entries:?})",
        elected.as_secs_f64() * 1e3,
        switched.as_secs_f64() * 1e3,
    );
    assert!(added_by, "new leader {n} holds {VIP6_CIDR}");
    // The client reaches the new leader, and the entry still names it.
    ping6(&client).unwrap_or_else(|e| panic!("the client cannot reach node {n}: {e}"));
    assert_eq!(
        client_neigh(&client).0.as_deref(),
        Some(macs[n - 1].as_str())
    );
    // Never on two live nodes: the killed leader is not live; of the two that run, only
    // the leader holds it.
    let holders: Vec<usize> = others
        .iter()
        .copied()
        .filter(|&i| holds_vip6(&lan.hosts[i - 1]))
        .collect();
    assert_eq!(holders, vec![n], "live nodes holding {VIP6_CIDR}");
}

/// The `--track` check of node `i`: healthy while its file exists.
fn health_file(lan: &Lan, i: usize) -> std::path::PathBuf {
    lan.node_dir(i).join("healthy")
}

#[test]
fn unhealthy_leader_hands_over_and_keeps_voting() {
    crate::userns::as_root(unhealthy_leader);
}

fn unhealthy_leader() {
    let mut lan = Lan::new(Path::new(EXE), "atr", 3).expect("build the LAN");
    for i in 1..=3 {
        let file = health_file(&lan, i);
        std::fs::write(&file, "").expect("health file");
        let args: Vec<String> = [
            "--track".to_string(),
            format!("test -e '{}'", file.display()),
            "--track-interval".into(),
            "100ms".into(),
            "--track-fall".into(),
            "2".into(),
            "--track-rise".into(),
            "2".into(),
        ]
        .into();
        lan.start_with(i, &args).expect("start node");
    }
    let all = [1, 2, 3];
    let (l, _) = await_leader(&mut lan, &all, None, ELECTION_BOUND, "cold start");
    std::fs::remove_file(health_file(&lan, l)).expect("remove the leader's file");
    // Every node agrees, the unhealthy one included: it follows the new leader.
    let (n, took) = await_leader(&mut lan, &all, Some(l), HANDOVER_BOUND, "hand-over");
    println!(
        "appliance: leader {l} unhealthy: node {n} leads (all three agree) {:.0} ms after \
         its check file went",
        took.as_secs_f64() * 1e3
    );
    assert!(
        lan.log(l).contains("unhealthy"),
        "node {l} logs its check turning unhealthy:\n{}",
        lan.log(l)
    );
    let old = read_state_file(&lan.state_file(l)).expect("state file");
    assert_eq!(old.state, "FOLLOWING", "{old:?}");
    assert_eq!(old.leader, Some(n as u64), "{old:?}");
    let epoch = read_state_file(&lan.state_file(n))
        .ok()
        .and_then(|s| s.epoch)
        .expect("the new leader's epoch");
    // For 2 s every node's current process names leader `n` in `epoch`, only `n` leads.
    // A state file caught mid-replacement is read again at the next poll.
    let hold = |lan: &mut Lan, what: &str| {
        let start = Instant::now();
        let mut polls = 0;
        while start.elapsed() < Duration::from_secs(2) {
            for i in all {
                let Ok(s) = read_state_file(&lan.state_file(i)) else {
                    continue;
                };
                let role = if i == n { "LEADING" } else { "FOLLOWING" };
                assert!(
                    Some(s.pid) == lan.pid(i)
                        && s.leader == Some(n as u64)
                        && s.epoch == Some(epoch)
                        && s.state == role,
                    "{what}: node {i} left leader {n} epoch {epoch} after {:?}: {s:?}\n{}",
                    start.elapsed(),
                    logs(lan)
                );
            }
            assert!(lan.reap_exited().is_empty(), "{}", logs(lan));
            polls += 1;
            sleep(Duration::from_millis(20));
        }
        polls
    };
    let polls = hold(&mut lan, "unhealthy node following");
    assert!(polls > 10, "only {polls} polls in 2 s");
    // Healthy again, it does not depose the leader.
    std::fs::write(health_file(&lan, l), "").expect("recreate the file");
    hold(&mut lan, "old leader healthy again");
    assert!(
        lan.log(l).contains("healthy again"),
        "node {l} logs its check turning healthy:\n{}",
        lan.log(l)
    );
}
