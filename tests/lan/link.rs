//! Interface lifecycle on the namespace LAN: a node's `--interface` deleted and recreated
//! (with a new index and with the same one), set down and up, given another address, and
//! absent when the node starts. After each, every voter must agree on one leader again
//! within [`REJOIN_BOUND`]; each test prints the time from the interface being usable
//! (the last `ip` command returned) to that full cluster. They also check what the node
//! says: one log line per change, no flood of send errors, and no exit.

use std::path::Path;
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votecast::daemon::state_file::read_state_file;
use votecast::daemon::unix_now_ms;

use crate::netns::{host_addr, Lan};
use crate::EXE;

/// A full cluster again within this of the interface being usable. The daemon notices a
/// change within a notification's latency and rejoins within a tick or two; the margin is
/// for a loaded 2-core CI machine.
const REJOIN_BOUND: Duration = Duration::from_secs(3);

/// The first election of a fresh LAN, and a re-election without one node.
const ELECTION_BOUND: Duration = Duration::from_secs(15);

/// (leader, epoch) if every node of `nodes` reports it from its current process with a
/// live validity: the leader LEADING, the others FOLLOWING.
fn full_cluster(lan: &Lan, nodes: &[usize]) -> Option<(u64, u64)> {
    let now = unix_now_ms();
    let mut agreed = None;
    for &i in nodes {
        let s = read_state_file(&lan.state_file(i)).ok()?;
        let live = Some(s.pid) == lan.pid(i) && s.valid_until_unix_ms.is_some_and(|v| v > now);
        let view = (s.leader?, s.epoch?);
        let role = if view.0 == i as u64 {
            "LEADING"
        } else {
            "FOLLOWING"
        };
        if !live || s.state != role || agreed.is_some_and(|a| a != view) {
            return None;
        }
        agreed = Some(view);
    }
    agreed
}

/// Waits (at most `bound`) for a full cluster of `nodes` with an epoch of at least
/// `min_epoch`; returns it and the time it took, or a message with every node's log.
fn await_full(
    lan: &mut Lan,
    nodes: &[usize],
    min_epoch: u64,
    bound: Duration,
    what: &str,
) -> (u64, u64, Duration) {
    let start = Instant::now();
    loop {
        if let Some((l, e)) = full_cluster(lan, nodes).filter(|&(_, e)| e >= min_epoch) {
            return (l, e, start.elapsed());
        }
        let exited = lan.reap_exited();
        if start.elapsed() > bound || !exited.is_empty() {
            let states: Vec<_> = (1..=lan.n)
                .map(|i| read_state_file(&lan.state_file(i)).ok())
                .collect();
            let logs: String = (1..=lan.n)
                .map(|i| format!("--- node {i} ---\n{}", lan.log(i)))
                .collect();
            panic!(
                "{what}: no full cluster of {nodes:?} within {bound:?} (exited: {exited:?}): \
                 {states:?}\n{logs}"
            );
        }
        sleep(Duration::from_millis(2));
    }
}

/// A LAN of `n` nodes, all started and agreed.
fn cluster(tag: &str, n: usize) -> (Lan, u64, u64) {
    let mut lan = Lan::new(Path::new(EXE), tag, n).expect("build the LAN");
    for i in 1..=n {
        lan.start(i).expect("start node");
    }
    let all: Vec<usize> = (1..=n).collect();
    let (leader, epoch, _) = await_full(&mut lan, &all, 1, ELECTION_BOUND, "cold start");
    (lan, leader, epoch)
}

fn others(n: usize, but: usize) -> Vec<usize> {
    (1..=n).filter(|&i| i != but).collect()
}

/// How often node `i` logged a line containing `what`.
fn count(lan: &Lan, i: usize, what: &str) -> usize {
    lan.log(i).lines().filter(|l| l.contains(what)).count()
}

/// Node `i` lost its link while leading: the others elect a newer epoch, and by then node
/// `i` no longer reports LEADING with a live lease (its lease ran out, as with any lost
/// link). Returns the new epoch.
fn others_take_over(lan: &mut Lan, i: usize, epoch: u64, what: &str) -> u64 {
    let rest = others(lan.n, i);
    let (next, next_epoch, took) = await_full(lan, &rest, epoch + 1, ELECTION_BOUND, what);
    assert_ne!(next, i as u64);
    let old = read_state_file(&lan.state_file(i)).expect("state file");
    assert!(
        !(old.state == "LEADING" && old.valid_until_unix_ms.is_some_and(|v| v > unix_now_ms())),
        "{what}: node {i} still reports a live LEADING lease after node {next} took over: {old:?}"
    );
    println!(
        "link: {what}: node {next} leads epoch {next_epoch} after {:.0} ms",
        took.as_secs_f64() * 1e3
    );
    next_epoch
}

/// At most this many send-error lines per outage: the log doubles its interval.
const SEND_ERROR_LINES: usize = 12;

#[test]
fn interface_deleted_and_recreated_rejoins() {
    crate::userns::as_root(interface_deleted_and_recreated_rejoins_as_root);
}

fn interface_deleted_and_recreated_rejoins_as_root() {
    let (mut lan, leader, epoch) = cluster("lrec", 3);
    let l = leader as usize;
    let all = [1, 2, 3];
    let old_index = lan.link_index(l).expect("interface index");
    // The leader's interface disappears; it recovers with a new index.
    lan.delete_link(l).expect("delete the leader's interface");
    let epoch = others_take_over(&mut lan, l, epoch, "leader's interface deleted");
    sleep(Duration::from_millis(500));
    lan.recreate_link(l, None, None).expect("recreate");
    let (_, epoch, took) = await_full(&mut lan, &all, epoch, REJOIN_BOUND, "recreated");
    assert_ne!(lan.link_index(l), Some(old_index), "a new index");
    println!(
        "link: interface recreated (new index) -> full cluster in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    // A follower's interface comes back with the same index.
    let f = others(3, l)[0];
    let index = lan.link_index(f).expect("interface index");
    lan.delete_link(f).expect("delete a follower's interface");
    sleep(Duration::from_millis(1_500));
    lan.recreate_link(f, Some(index), None)
        .expect("recreate with the same index");
    assert_eq!(lan.link_index(f), Some(index));
    let (_, _, took) = await_full(&mut lan, &all, epoch, REJOIN_BOUND, "recreated, same index");
    println!(
        "link: interface recreated (same index) -> full cluster in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    // The same again while the node is stopped, so that it reads the deletion and the
    // recreation together and finds the interface as it was: the deletion alone took the
    // group membership with it, so the socket must be re-opened anyway.
    lan.signal(f, Signal::SIGSTOP).expect("SIGSTOP");
    let recreated = lan
        .delete_link(f)
        .and_then(|()| lan.recreate_link(f, Some(index), None));
    lan.signal(f, Signal::SIGCONT).expect("SIGCONT");
    recreated.expect("delete and recreate");
    let (_, _, took) = await_full(&mut lan, &all, epoch, REJOIN_BOUND, "recreated unseen");
    // A follower that cannot hear its leader times out after sync-limit (300 ms).
    sleep(Duration::from_millis(1_000));
    let (_, _, _) = await_full(&mut lan, &all, epoch, Duration::ZERO, "still hearing");
    println!(
        "link: interface recreated while the node was stopped -> full cluster in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(
        count(&lan, f, "was deleted and recreated"),
        1,
        "{}",
        lan.log(f)
    );
    for (i, outages) in [(l, 1), (f, 1)] {
        assert_eq!(count(&lan, i, "is gone"), outages, "{}", lan.log(i));
        assert_eq!(count(&lan, i, "is usable"), outages, "{}", lan.log(i));
        assert!(
            count(&lan, i, "failed (") <= SEND_ERROR_LINES,
            "{}",
            lan.log(i)
        );
    }
}

#[test]
fn interface_down_and_up_rejoins() {
    crate::userns::as_root(interface_down_and_up_rejoins_as_root);
}

fn interface_down_and_up_rejoins_as_root() {
    let (mut lan, leader, epoch) = cluster("ldown", 3);
    let l = leader as usize;
    lan.set_link(l, false).expect("link down");
    let epoch = others_take_over(&mut lan, l, epoch, "leader's interface down");
    // Long enough for the LOOKING node's notification backoff to reach its 2 s cap.
    sleep(Duration::from_millis(3_000));
    lan.set_link(l, true).expect("link up");
    let (_, _, took) = await_full(&mut lan, &[1, 2, 3], epoch, REJOIN_BOUND, "link up");
    println!(
        "link: interface down 3 s, up -> full cluster in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(count(&lan, l, "is down"), 1, "{}", lan.log(l));
    assert_eq!(count(&lan, l, "is usable"), 1, "{}", lan.log(l));
    assert!(
        count(&lan, l, "failed (") <= SEND_ERROR_LINES,
        "{}",
        lan.log(l)
    );
}

#[test]
fn address_change_keeps_the_node_in_the_cluster() {
    crate::userns::as_root(address_change_keeps_the_node_in_the_cluster_as_root);
}

fn address_change_keeps_the_node_in_the_cluster_as_root() {
    let (mut lan, leader, epoch) = cluster("laddr", 3);
    let all = [1, 2, 3];
    // A follower, then the leader, move to another address of the link-local range.
    let f = others(3, leader as usize)[0];
    for (k, i) in [f, leader as usize].into_iter().enumerate() {
        let new = format!("169.254.1.{}", 10 + i);
        let begun = Instant::now();
        lan.change_address(i, &host_addr(i), &new)
            .expect("change the address");
        let (_, _, took) = await_full(&mut lan, &all, epoch, REJOIN_BOUND, "address changed");
        println!(
            "link: address of node {i} changed -> full cluster {:.1} ms later ({:.1} ms after \
             the change began)",
            took.as_secs_f64() * 1e3,
            begun.elapsed().as_secs_f64() * 1e3
        );
        // Frames now come from the new address: the others drop the old one and the
        // cluster holds (a socket still sending from the old address would time out).
        for other in others(3, i) {
            let rule = format!("ip saddr {} drop", host_addr(i));
            lan.apply_rules(other, vec![rule], false)
                .expect("drop the old address");
        }
        sleep(Duration::from_millis(1_000));
        await_full(&mut lan, &all, epoch, REJOIN_BOUND, "old address dropped");
        let s = read_state_file(&lan.state_file(i)).expect("state file");
        assert!(
            s.pid == lan.pid(i).unwrap() && s.state != "LOOKING",
            "{s:?}"
        );
        let line = format!("-> {new}): re-opening the socket");
        assert_eq!(count(&lan, i, &line), 1, "change {k}: {}", lan.log(i));
    }
}

#[test]
fn a_recreated_interface_restores_a_lost_quorum_at_once() {
    crate::userns::as_root(a_recreated_interface_restores_a_lost_quorum_at_once_as_root);
}

fn a_recreated_interface_restores_a_lost_quorum_at_once_as_root() {
    // Three voters: one killed, one loses its interface; the third is alone and LOOKING
    // with its notification backoff at the 2 s cap, as is the one without an interface.
    // When the interface is back, that node re-broadcasts at once instead of at its next
    // backoff expiry, so the two elect well within a second.
    let (mut lan, leader, epoch) = cluster("lquorum", 3);
    let dead = leader as usize;
    let [a, b] = others(3, dead)[..] else {
        unreachable!()
    };
    lan.kill(dead).expect("kill the leader");
    lan.delete_link(a).expect("delete an interface");
    sleep(Duration::from_millis(4_000));
    assert!(
        full_cluster(&lan, &[b]).is_none(),
        "one of three cannot lead"
    );
    lan.recreate_link(a, None, None).expect("recreate");
    let (_, _, took) = await_full(
        &mut lan,
        &[a, b],
        epoch + 1,
        Duration::from_secs(1),
        "quorum",
    );
    println!(
        "link: interface recreated, quorum restored -> elected in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
}

#[test]
fn interface_absent_at_start_is_waited_for() {
    crate::userns::as_root(interface_absent_at_start_is_waited_for_as_root);
}

fn interface_absent_at_start_is_waited_for_as_root() {
    let mut lan = Lan::new(Path::new(EXE), "labs", 3).expect("build the LAN");
    lan.start_before_link(3)
        .expect("start node 3 without its interface");
    lan.start(1).expect("start");
    lan.start(2).expect("start");
    let (_, epoch, _) = await_full(&mut lan, &[1, 2], 1, ELECTION_BOUND, "two of three");
    // Waiting, not exited, LOOKING, and it said so once.
    sleep(Duration::from_millis(2_000));
    assert!(lan.reap_exited().is_empty(), "{}", lan.log(3));
    let s = read_state_file(&lan.state_file(3)).expect("node 3's state file");
    assert_eq!(s.state, "LOOKING");
    assert_eq!(count(&lan, 3, "does not exist (yet)"), 1, "{}", lan.log(3));
    lan.recreate_link(3, None, None)
        .expect("create the interface");
    let (_, _, took) = await_full(&mut lan, &[1, 2, 3], epoch, REJOIN_BOUND, "created");
    println!(
        "link: interface created after start -> full cluster in {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    assert_eq!(count(&lan, 3, "is usable"), 1, "{}", lan.log(3));
}
