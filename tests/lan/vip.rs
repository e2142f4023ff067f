//! Floating IP (`--vip`) on the namespace LAN: three voters and a client namespace on the
//! bridge. The client probes the address every 5 ms (ICMP echo from a thread moved into
//! its namespace) and sees which MAC answers (an AF_PACKET socket there). A sampler looks
//! at the address in every node namespace about every millisecond (an rtnetlink dump per
//! namespace: the in-process `ip -o addr`, without a process per sample).
//!
//! For each fault of the leader (SIGKILL, SIGSTOP, SIGTERM, a silent partition):
//! - the client reaches the new leader's MAC within the failover (the new leader adding
//!   the address) plus [`REACH_AFTER_ADD`]; the client-visible outage is printed;
//! - no two live nodes ever hold the address; a killed or frozen leader's address is
//!   gone by itself within [`DEAD_LEADER_BOUND`] (the kernel lifetime), measured;
//! - the client's neighbour entry for the address names the new leader's MAC.
//!
//! Also: an address left on the interface is removed at start, and `votecast
//! release-vip` removes the addresses (exit 0, also when they are not there).

use std::fs::File;
use std::io::Read as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use socket2::{Domain, Protocol, Socket, Type};
use votecast::daemon::state_file::read_state_file;
use votecast::daemon::unix_now_ms;

use crate::netns::{host_addr, run, Lan, HOST_IF};
use crate::EXE;
use votecast::netlink::wire::{emit_message, flags, kind, Header, Message, Messages, AF_INET};
use votecast::netlink::RouteSocket;

const VIP: Ipv4Addr = Ipv4Addr::new(169, 254, 200, 1);
const VIP_CIDR: &str = "169.254.200.1/16";
const CLIENT_ADDR: &str = "169.254.0.200";
/// Between two probes of the client.
const PROBE_EVERY: Duration = Duration::from_millis(5);
/// The client reaches the new leader at most this long after it added the address: the
/// first gratuitous ARP goes out with the add, and the next probe uses it. The margin is
/// for a loaded 2-core machine.
const REACH_AFTER_ADD: Duration = Duration::from_millis(100);
/// A killed or frozen leader's address is gone within this of the fault: its lifetime
/// (1 s at the default lease) plus the kernel's expiry check (up to ~0.25 s), plus a
/// margin for a loaded machine. README, Floating IP, gives the measured values.
const DEAD_LEADER_BOUND: Duration = Duration::from_millis(2_000);
const ELECTION_BOUND: Duration = Duration::from_secs(15);

/// Samples of every node namespace, in round-robin order: (when, node, holds it).
type Samples = Arc<Mutex<Vec<(Instant, usize, bool)>>>;

/// Samples the address on every node about every 1 ms: one thread holding an rtnetlink
/// socket opened inside each node namespace, dumping its IPv4 addresses in turn (a dump
/// takes well under a millisecond, where an `ip addr` process takes several).
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Samples,
    thread: Option<JoinHandle<Result<(), String>>>,
}

/// Whether the namespace of `socket` holds the address now (an RTM_GETADDR dump).
fn dump_holds(socket: &RouteSocket, buf: &mut [u8], seq: u32) -> Result<bool, String> {
    let header = Header {
        message_type: kind::GET_ADDRESS,
        flags: flags::REQUEST | flags::DUMP,
        sequence: seq,
        port: 0,
    };
    let mut request = [0u8; 32];
    let len = emit_message(&mut request, header, |b| {
        b[..8].fill(0);
        b[0] = AF_INET;
        Ok(8)
    })
    .map_err(|e| e.to_string())?;
    socket.send(&request[..len]).map_err(|e| e.to_string())?;
    let mut holds = false;
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let n = match socket.recv(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                continue
            }
            Err(e) => return Err(format!("address dump: {e}")),
        };
        for m in Messages::new(&buf[..n]) {
            let (h, p) = m.map_err(|e| e.to_string())?;
            match Message::parse(&h, p).map_err(|e| e.to_string())? {
                Message::NewAddress(a) if h.sequence == seq => {
                    holds |= a.own_address() == Some(VIP.into());
                }
                Message::Done if h.sequence == seq => return Ok(holds),
                Message::Error(e) if h.sequence == seq => return Err(format!("dump error {e}")),
                _ => {}
            }
        }
    }
}

impl Sampler {
    fn start(hosts: &[String]) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let samples: Samples = Arc::default();
        let (halt, sink) = (stop.clone(), samples.clone());
        let paths: Vec<String> = hosts
            .iter()
            .map(|h| format!("/var/run/netns/{h}"))
            .collect();
        let thread = std::thread::spawn(move || {
            let mut sockets = Vec::new();
            for path in &paths {
                let netns = File::open(path).map_err(|e| format!("{path}: {e}"))?;
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| format!("setns {path}: {e}"))?;
                sockets.push(RouteSocket::open(0).map_err(|e| e.to_string())?);
            }
            let mut buf = vec![0u8; 32 * 1024];
            let mut seq = 0u32;
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                for (k, socket) in sockets.iter().enumerate() {
                    seq += 1;
                    let holds = dump_holds(socket, &mut buf, seq)?;
                    sink.lock().unwrap().push((Instant::now(), k + 1, holds));
                }
                sleep(Duration::from_micros(500));
            }
            Ok(())
        });
        Sampler {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    fn samples(&self) -> Vec<(Instant, usize, bool)> {
        self.samples.lock().unwrap().clone()
    }

    /// When node `i` was first seen holding the address after `from`.
    fn added_after(&self, i: usize, from: Instant) -> Option<Instant> {
        let s = self.samples();
        s.into_iter()
            .find(|&(t, n, h)| n == i && h && t >= from)
            .map(|s| s.0)
    }

    /// When node `i` was first seen without the address after `from`, if it never held
    /// it again.
    fn gone_after(&self, i: usize, from: Instant) -> Option<Instant> {
        let mine: Vec<_> = self
            .samples()
            .into_iter()
            .filter(|s| s.1 == i && s.0 >= from)
            .collect();
        let last_held = mine.iter().rposition(|s| s.2);
        match last_held {
            None => mine.first().map(|s| s.0),
            Some(k) => mine.get(k + 1).map(|s| s.0),
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("sampler thread").expect("sampler");
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Moments when two nodes provably held the address at once: a sample of one showing it
/// between two consecutive samples of the other that both show it. `live(node, t)` says
/// whether a node counts at `t` (a killed or frozen one does not).
fn proven_overlaps(
    samples: &[(Instant, usize, bool)],
    live: impl Fn(usize, Instant) -> bool,
) -> Vec<(Instant, usize, usize)> {
    let mut out = Vec::new();
    for (k, &(t, b, held)) in samples.iter().enumerate() {
        if !held || !live(b, t) {
            continue;
        }
        for a in (1..=3).filter(|&a| a != b && live(a, t)) {
            let before = samples[..k].iter().rev().find(|s| s.1 == a);
            let after = samples[k + 1..].iter().find(|s| s.1 == a);
            if let (Some(x), Some(y)) = (before, after) {
                if x.2 && y.2 {
                    out.push((t, a, b));
                }
            }
        }
    }
    out
}

/// The RFC 1071 checksum of an ICMP message.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| (u32::from(c[0]) << 8) | c.get(1).map_or(0, |&b| u32::from(b)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Echo replies the client received: (when, the MAC they came from).
type Replies = Arc<Mutex<Vec<(Instant, [u8; 6])>>>;

/// The client: echo requests to the address every [`PROBE_EVERY`], and the source MAC of
/// each reply, from a thread inside the client's namespace.
struct Prober {
    stop: Arc<AtomicBool>,
    replies: Replies,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Prober {
    fn start(ns: &str) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let replies: Replies = Arc::default();
        let (halt, sink) = (stop.clone(), replies.clone());
        let path = format!("/var/run/netns/{ns}");
        let thread = std::thread::spawn(move || {
            let netns = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            let icmp = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
                .map_err(|e| format!("raw ICMP socket: {e}"))?;
            let eth_p_ip = i32::from(0x0800u16.to_be());
            let mut packets =
                Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(eth_p_ip)))
                    .map_err(|e| format!("AF_PACKET socket: {e}"))?;
            packets
                .set_read_timeout(Some(Duration::from_millis(1)))
                .map_err(|e| e.to_string())?;
            let to: SocketAddr = (VIP, 0).into();
            let mut seq: u16 = 0;
            let mut next = Instant::now();
            let mut frame = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                if Instant::now() >= next {
                    seq = seq.wrapping_add(1);
                    let mut echo = [8u8, 0, 0, 0, 0x77, 0x77, 0, 0];
                    echo[6..8].copy_from_slice(&seq.to_be_bytes());
                    let sum = checksum(&echo);
                    echo[2..4].copy_from_slice(&sum.to_be_bytes());
                    // Unreachable while nobody answers ARP: expected during the outage.
                    let _ = icmp.send_to(&echo, &to.into());
                    next += PROBE_EVERY;
                }
                let Ok(n) = packets.read(&mut frame) else {
                    continue;
                };
                let f = &frame[..n];
                if n < 42 || f[12..14] != [0x08, 0x00] || f[23] != 1 || f[26..30] != VIP.octets() {
                    continue;
                }
                let ihl = usize::from(f[14] & 0x0f) * 4;
                if f.get(14 + ihl) == Some(&0) {
                    let mut mac = [0u8; 6];
                    mac.copy_from_slice(&f[6..12]);
                    sink.lock().unwrap().push((Instant::now(), mac));
                }
            }
            Ok(())
        });
        Prober {
            stop,
            replies,
            thread: Some(thread),
        }
    }

    fn replies(&self) -> Vec<(Instant, [u8; 6])> {
        self.replies.lock().unwrap().clone()
    }

    /// Waits (at most `bound`) for a reply from `mac` after `from`; returns its time.
    fn await_mac(&self, mac: [u8; 6], from: Instant, bound: Duration) -> Option<Instant> {
        let start = Instant::now();
        loop {
            let hit = self
                .replies()
                .into_iter()
                .find(|&(t, m)| t >= from && m == mac);
            if let Some((t, _)) = hit {
                return Some(t);
            }
            if start.elapsed() > bound {
                return None;
            }
            sleep(Duration::from_millis(2));
        }
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("prober thread").expect("prober");
        }
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub(crate) fn ip_out(args: &[&str]) -> String {
    run(Command::new("ip").args(args)).unwrap_or_else(|e| panic!("{e}"))
}

/// The MAC of `lan0` in `ns`.
fn mac_of(ns: &str) -> [u8; 6] {
    let out = ip_out(&["-o", "-n", ns, "link", "show", HOST_IF]);
    let text = out
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {out}"));
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(text.split(':')) {
        *b = u8::from_str_radix(part, 16).expect("hex");
    }
    mac
}

fn holds_vip(ns: &str) -> bool {
    ip_out(&["-o", "-n", ns, "addr", "show", "dev", HOST_IF]).contains(&format!("inet {VIP}/"))
}

/// The node every one of `nodes` agrees leads (the leader LEADING, the others FOLLOWING,
/// each from its current process with a live validity), if any.
pub(crate) fn leader_of(lan: &Lan, nodes: &[usize]) -> Option<usize> {
    let now = unix_now_ms();
    let mut agreed = None;
    for &i in nodes {
        let s = read_state_file(&lan.state_file(i)).ok()?;
        let live = Some(s.pid) == lan.pid(i) && s.valid_until_unix_ms.is_some_and(|v| v > now);
        let leader = s.leader? as usize;
        let role = if leader == i { "LEADING" } else { "FOLLOWING" };
        if !live || s.state != role || agreed.is_some_and(|a| a != leader) {
            return None;
        }
        agreed = Some(leader);
    }
    agreed
}

fn await_leader(lan: &mut Lan, nodes: &[usize], not: Option<usize>, what: &str) -> usize {
    let start = Instant::now();
    loop {
        if let Some(l) = leader_of(lan, nodes).filter(|&l| Some(l) != not) {
            return l;
        }
        if start.elapsed() > ELECTION_BOUND {
            let logs: String = (1..=lan.n)
                .map(|i| format!("--- node {i} ---\n{}", lan.log(i)))
                .collect();
            panic!("{what}: no leader among {nodes:?} within {ELECTION_BOUND:?}\n{logs}");
        }
        sleep(Duration::from_millis(5));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    Stop,
    Term,
    Partition,
}

fn vip_args() -> Vec<String> {
    vec!["--vip".into(), VIP_CIDR.into()]
}

/// One fault of the leader, observed from the client and from every namespace.
fn failover(tag: &str, fault: Fault) {
    let mut lan = Lan::new(Path::new(EXE), tag, 3).expect("build the LAN");
    let client = lan.add_client("c", CLIENT_ADDR).expect("client namespace");
    let macs: Vec<[u8; 6]> = lan.hosts.iter().map(|h| mac_of(h)).collect();
    let mut sampler = Sampler::start(&lan.hosts);
    for i in 1..=3 {
        lan.start_with(i, &vip_args()).expect("start node");
    }
    let l = await_leader(&mut lan, &[1, 2, 3], None, "cold start");
    let mut prober = Prober::start(&client);
    let since = Instant::now();
    prober
        .await_mac(macs[l - 1], since, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the client never reached leader {l}:\n{}", lan.log(l)));
    sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    match fault {
        Fault::Kill => drop(lan.kill(l).expect("SIGKILL")),
        Fault::Stop => lan.signal(l, Signal::SIGSTOP).expect("SIGSTOP"),
        Fault::Term => lan.signal(l, Signal::SIGTERM).expect("SIGTERM"),
        Fault::Partition => {
            lan.apply_rules(l, vec!["iifname \"lan0\" drop".into()], false)
                .expect("cut the leader off");
            for other in (1..=3).filter(|&i| i != l) {
                let rule = format!("ip saddr {} drop", host_addr(l));
                lan.apply_rules(other, vec![rule], false)
                    .expect("drop the leader");
            }
        }
    }
    let others: Vec<usize> = (1..=3).filter(|&i| i != l).collect();
    let n = await_leader(&mut lan, &others, Some(l), "failover");
    let reached = prober
        .await_mac(macs[n - 1], t0, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{fault:?}: the client never reached node {n}"));
    // Long enough for a dead leader's kernel lifetime to run out.
    sleep(DEAD_LEADER_BOUND + Duration::from_millis(300));
    prober.stop();
    sampler.stop();
    let added = sampler
        .added_after(n, t0)
        .expect("the new leader added the address");
    let replies = prober.replies();
    let last_old = replies
        .iter()
        .filter(|r| r.0 < reached)
        .map(|r| r.0)
        .max()
        .unwrap_or(t0);
    let outage = reached.saturating_duration_since(last_old);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let old_gone = sampler.gone_after(l, t0);
    println!(
        "vip: {fault:?} of leader {l}: node {n} added the address {:.1} ms after the fault; \
         the client reached its MAC {:.1} ms after the fault, {:.1} ms after the add; \
         client-visible outage {:.1} ms; old leader's address gone {} after the fault",
        ms(added - t0),
        ms(reached - t0),
        ms(reached.saturating_duration_since(added)),
        ms(outage),
        old_gone.map_or("never".into(), |g| format!(
            "{:.1} ms",
            ms(g.saturating_duration_since(t0))
        )),
    );
    assert!(
        reached.saturating_duration_since(added) <= REACH_AFTER_ADD,
        "{fault:?}: client reached node {n} {:?} after its add",
        reached.saturating_duration_since(added)
    );
    // After the new leader answered, only it answers.
    let strays: Vec<_> = replies
        .iter()
        .filter(|r| r.0 > reached && r.1 != macs[n - 1])
        .collect();
    assert!(
        strays.is_empty(),
        "{fault:?}: replies from another MAC: {strays:?}"
    );
    let gone = old_gone.unwrap_or_else(|| panic!("{fault:?}: node {l} still holds the address"));
    assert!(
        gone - t0 <= DEAD_LEADER_BOUND,
        "{fault:?}: gone after {:?}",
        gone - t0
    );
    // Never on two live nodes. A killed or stopped leader is not live after the fault.
    let dead = matches!(fault, Fault::Kill | Fault::Stop);
    let samples = sampler.samples();
    let both = proven_overlaps(&samples, |i, t| !(dead && i == l && t >= t0));
    assert!(
        both.is_empty(),
        "{fault:?}: two live nodes held the address: {both:?}"
    );
    println!(
        "vip: {fault:?}: {} samples of the three namespaces",
        samples.len()
    );
    if fault == Fault::Stop {
        // The frozen node's stale address beside the new leader's, bounded by its lifetime.
        let stale = proven_overlaps(&samples, |_, _| true);
        let span = stale.first().zip(stale.last()).map(|(a, b)| b.0 - a.0);
        println!("vip: frozen leader's stale address beside the new leader's for {span:?}");
        lan.signal(l, Signal::SIGCONT).expect("SIGCONT");
        sleep(Duration::from_millis(300));
        assert!(
            !holds_vip(&lan.hosts[l - 1]),
            "the woken node must not hold the address"
        );
    }
    let neigh = ip_out(&["-n", &client, "neigh", "show", &VIP.to_string()]);
    let want: Vec<String> = macs[n - 1].iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        neigh.contains(&want.join(":")),
        "{fault:?}: client's neighbour entry {neigh:?}"
    );
    assert!(
        holds_vip(&lan.hosts[n - 1]),
        "the new leader holds the address"
    );
}

#[test]
fn vip_moves_after_sigkill() {
    crate::userns::as_root(|| failover("vkill", Fault::Kill));
}

#[test]
fn vip_moves_after_sigstop() {
    crate::userns::as_root(|| failover("vstop", Fault::Stop));
}

#[test]
fn vip_moves_after_sigterm() {
    crate::userns::as_root(|| failover("vterm", Fault::Term));
}

#[test]
fn vip_moves_after_a_partition() {
    crate::userns::as_root(|| failover("vpart", Fault::Partition));
}

#[test]
fn stale_addresses_are_removed_at_start_and_by_release_vip() {
    crate::userns::as_root(stale_addresses_as_root);
}

fn stale_addresses_as_root() {
    let mut lan = Lan::new(Path::new(EXE), "vrel", 3).expect("build the LAN");
    let (h1, h2) = (lan.hosts[0].clone(), lan.hosts[1].clone());
    // Left by a crashed process: removed when the node starts (alone it only looks).
    ip_out(&["-n", &h1, "addr", "add", VIP_CIDR, "dev", HOST_IF]);
    assert!(holds_vip(&h1));
    lan.start_with(1, &vip_args()).expect("start");
    let start = Instant::now();
    while holds_vip(&h1) {
        assert!(start.elapsed() < Duration::from_secs(5), "{}", lan.log(1));
        sleep(Duration::from_millis(10));
    }
    assert!(lan.log(1).contains("was still on lan0"), "{}", lan.log(1));
    // release-vip with flags, twice (the second finds nothing), and with the config.
    ip_out(&["-n", &h2, "addr", "add", VIP_CIDR, "dev", HOST_IF]);
    ip_out(&[
        "-n",
        &h2,
        "addr",
        "add",
        "fd00::c8/64",
        "dev",
        HOST_IF,
        "nodad",
    ]);
    let release = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &h2, EXE, "release-vip"])
            .args(args)
            .output()
            .expect("release-vip")
    };
    let flags = [
        "--interface",
        HOST_IF,
        "--vip",
        VIP_CIDR,
        "--vip",
        "fd00::c8/64",
    ];
    let out = release(&flags);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("removed {VIP_CIDR}")) && text.contains("removed fd00::c8/64"),
        "{text}"
    );
    assert!(!holds_vip(&h2));
    assert!(!ip_out(&["-n", &h2, "addr"]).contains("fd00::c8"));
    let out = release(&flags);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("was not on"));
    let config = lan.dir.join("release.toml");
    std::fs::write(
        &config,
        format!("id = 2\nvoters = [1, 2, 3]\ninterface = \"{HOST_IF}\"\nvip = [\"{VIP_CIDR}\"]\n"),
    )
    .expect("config");
    ip_out(&["-n", &h2, "addr", "add", VIP_CIDR, "dev", HOST_IF]);
    let out = release(&["--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!holds_vip(&h2));
    // An interface that does not exist holds nothing.
    let out = release(&["--interface", "nosuch0", "--vip", VIP_CIDR]);
    assert_eq!(out.status.code(), Some(0));
    // Bad usage names the flag.
    let out = release(&["--interface", HOST_IF, "--vip", "169.254.200.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--vip"));
}

/// A leader that publishes nothing but the floating address (no state file, no hook: as a
/// keepalived replacement runs) resigns on SIGTERM once the kernel has confirmed the
/// address's removal, instead of waiting out its lease: the address moves within an
/// election, and never sits on two nodes.
#[test]
fn vip_alone_moves_at_once_after_sigterm() {
    crate::userns::as_root(vip_alone_after_sigterm);
}

fn vip_alone_after_sigterm() {
    let mut lan = Lan::new(Path::new(EXE), "vbare", 3).expect("build the LAN");
    let mut sampler = Sampler::start(&lan.hosts);
    // Node 3 leads (equal zxids: the largest id) and publishes only the address.
    lan.start_with(1, &vip_args()).expect("start node 1");
    lan.start_with(2, &vip_args()).expect("start node 2");
    lan.start_bare(3, &vip_args()).expect("start node 3");
    let start = Instant::now();
    while !holds_vip(&lan.hosts[2]) {
        assert!(
            start.elapsed() < ELECTION_BOUND,
            "node 3 never took the address"
        );
        sleep(Duration::from_millis(5));
    }
    sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    lan.signal(3, Signal::SIGTERM).expect("SIGTERM");
    let n = await_leader(&mut lan, &[1, 2], Some(3), "handover");
    sleep(Duration::from_millis(300));
    sampler.stop();
    let added = sampler
        .added_after(n, t0)
        .expect("the new leader added the address");
    let gone = sampler
        .gone_after(3, t0)
        .expect("node 3 removed the address");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "vip alone: SIGTERM of node 3; its address gone {:.1} ms after, node {n} added it {:.1} \
         ms after",
        ms(gone - t0),
        ms(added - t0)
    );
    let both = proven_overlaps(&sampler.samples(), |_, _| true);
    assert!(both.is_empty(), "two nodes held the address: {both:?}");
    let log = lan.log(3);
    assert!(log.contains("(no lease end was published)"), "{log}");
}

/// The handover's confirmation that the addresses are gone rests on the request socket:
/// a removal is pending until its acknowledgement is read (the kernel acts within the
/// send, so it is there at once); removing an absent address is no refusal; a removal
/// the kernel refuses (here EPERM: a socket opened without CAP_NET_ADMIN) is reported,
/// so the handover waits out the lease the addresses were held on.
#[test]
fn removals_are_confirmed_by_their_acknowledgements() {
    crate::userns::as_root(removals_confirmed_as_root);
}

/// Drops CAP_NET_ADMIN from the calling thread's effective set (capabilities are per
/// thread; a socket keeps the credentials of the thread that opened it).
fn drop_net_admin() -> Result<(), String> {
    use nix::libc;
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_ADMIN: u32 = 12;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: both calls get a valid header and room for the two data words of version 3.
    let got = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if got != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: as above.
    let set = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if set != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

fn removals_confirmed_as_root() {
    use votecast::vip::requests::{Op, Requester};
    let lan = Lan::new(Path::new(EXE), "vack", 1).expect("build the LAN");
    let host = lan.hosts[0].clone();
    let path = format!("/var/run/netns/{host}");
    let vip: votecast::vip::VipAddr = VIP_CIDR.parse().expect("address");
    let result = std::thread::spawn(move || -> Result<(), String> {
        let netns = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {path}: {e}"))?;
        let index = nix::net::if_::if_nametoindex(HOST_IF).map_err(|e| e.to_string())?;
        let mut requests = Requester::open().map_err(|e| e.to_string())?;
        let mut refused = Vec::new();
        requests
            .send(Op::Add { lifetime_secs: 5 }, vip, index)
            .map_err(|e| e.to_string())?;
        requests
            .send(Op::Remove, vip, index)
            .map_err(|e| e.to_string())?;
        assert!(requests.removals_pending(), "no acknowledgement read yet");
        requests.read_acks(|r| refused.push(r));
        assert!(!requests.removals_pending());
        requests
            .send(Op::Remove, vip, index)
            .map_err(|e| e.to_string())?;
        requests.read_acks(|r| refused.push(r));
        assert!(
            refused.is_empty(),
            "the absent address is no refusal: {refused:?}"
        );
        // The address is there again; a socket without CAP_NET_ADMIN cannot remove it.
        requests
            .send(Op::Add { lifetime_secs: 5 }, vip, index)
            .map_err(|e| e.to_string())?;
        requests.read_acks(|r| refused.push(r));
        drop_net_admin()?;
        let mut powerless = Requester::open().map_err(|e| e.to_string())?;
        powerless
            .send(Op::Remove, vip, index)
            .map_err(|e| e.to_string())?;
        powerless.read_acks(|r| refused.push(r));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].op, Some(Op::Remove));
        assert_eq!(refused[0].error, nix::libc::EPERM);
        Ok(())
    })
    .join()
    .expect("the namespace thread");
    result.expect("requests in the host namespace");
    assert!(holds_vip(&host), "the refused removal left the address");
}
