//! Micro benchmarks: the frame codec (parse, emit, reject) and the election core handling
//! one frame in steady state (a follower taking a leader heartbeat, a leader taking a
//! follower's acknowledgement), with and without the codec on the path.
//!
//! `cargo bench --bench frames` (criterion; `-- --quick` for a short run).

use std::collections::VecDeque;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use votecast_core::election::{Config, Epochs, Instant, Node, Output, ServerState};
use votecast_core::wire::{self, Repr, FRAME_LEN};

/// Three cores on an instant, lossless network, run until they agree. Returns the nodes
/// and the current time (µs).
fn elected_cluster() -> (Vec<Node>, u64) {
    let voters = [1u64, 2, 3];
    let mut nodes: Vec<Node> = voters
        .iter()
        .map(|&id| Node::new(Config::new(id, &voters).unwrap(), Epochs::default(), 1).unwrap())
        .collect();
    let mut now_us = 1_000u64;
    let mut queue: VecDeque<(usize, [u8; FRAME_LEN])> = VecDeque::new();
    for node in nodes.iter_mut() {
        node.start(Instant::from_micros(now_us));
    }
    // 2 s of virtual time in 100 µs steps: election, epoch, several heartbeats.
    for _ in 0..20_000 {
        now_us += 100;
        let now = Instant::from_micros(now_us);
        for i in 0..nodes.len() {
            if nodes[i].poll_timeout().is_some_and(|t| t <= now) {
                nodes[i].handle_timeout(now);
            }
            while let Some(output) = nodes[i].poll_output() {
                if let Output::Transmit(frame) = output {
                    let bytes = frame.bytes;
                    for to in 0..nodes.len() {
                        if to != i {
                            queue.push_back((to, bytes));
                        }
                    }
                }
            }
        }
        while let Some((to, bytes)) = queue.pop_front() {
            nodes[to].handle_datagram(now, &bytes).unwrap();
            while let Some(output) = nodes[to].poll_output() {
                if let Output::Transmit(frame) = output {
                    let out = frame.bytes;
                    for k in 0..nodes.len() {
                        if k != to {
                            queue.push_back((k, out));
                        }
                    }
                }
            }
        }
    }
    assert_eq!(nodes[2].state(), ServerState::Leading, "node 3 leads");
    assert_eq!(nodes[0].state(), ServerState::Following);
    (nodes, now_us)
}

/// One frame `node` would send now (a heartbeat from a leader, an ack from a follower).
fn next_frame(node: &mut Node, now: Instant) -> Repr {
    node.handle_timeout(now);
    let mut found = None;
    // A timeout may not be due: force a frame by letting the heartbeat timer fire.
    let mut t = now;
    for _ in 0..100 {
        while let Some(output) = node.poll_output() {
            if let Output::Transmit(frame) = output {
                found.get_or_insert(frame.repr);
            }
        }
        if let Some(frame) = found {
            return frame;
        }
        t = node.poll_timeout().unwrap_or(t).max(t);
        node.handle_timeout(t);
    }
    panic!("node {} sent nothing", node.id());
}

fn sample_frame() -> Repr {
    let (mut nodes, now_us) = elected_cluster();
    next_frame(&mut nodes[2], Instant::from_micros(now_us))
}

fn codec(c: &mut Criterion) {
    let repr = sample_frame();
    let mut bytes = [0u8; FRAME_LEN];
    wire::emit_datagram(&repr, &mut bytes).unwrap();
    let mut corrupt = bytes;
    corrupt[40] ^= 1;

    let mut group = c.benchmark_group("wire");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse", |b| {
        b.iter(|| wire::parse_datagram(black_box(&bytes), 0).unwrap())
    });
    group.bench_function("emit", |b| {
        let mut out = [0u8; FRAME_LEN];
        b.iter(|| wire::emit_datagram(black_box(&repr), &mut out).unwrap());
    });
    group.bench_function("reject_bad_crc", |b| {
        b.iter(|| wire::parse_datagram(black_box(&corrupt), 0).unwrap_err())
    });
    group.finish();
}

/// Feed `frame` (with a fresh sequence number each time, so it is not dropped as a
/// duplicate) to `node`, and drain what it answers.
fn bench_core(c: &mut Criterion, name: &str, receiver: usize, sender: usize, via_bytes: bool) {
    let (mut nodes, now_us) = elected_cluster();
    let mut frame = next_frame(&mut nodes[sender], Instant::from_micros(now_us));
    let mut node = nodes.swap_remove(receiver);
    let expected = node.state();
    // The clock stands still: with a constant echo stamp, a moving clock would run the
    // leader's lease out and measure a step-down instead of the steady state.
    let now = Instant::from_micros(now_us);
    let mut bytes = [0u8; FRAME_LEN];
    c.bench_function(name, |b| {
        b.iter(|| {
            frame.sequence += 1;
            if via_bytes {
                wire::emit_datagram(&frame, &mut bytes).unwrap();
                node.handle_datagram(now, black_box(&bytes)).unwrap();
            } else {
                node.handle_frame(now, black_box(&frame));
            }
            let mut sent = 0u32;
            while let Some(output) = node.poll_output() {
                if let Output::Transmit(out) = output {
                    if via_bytes {
                        // The signed bytes the driver would send.
                        black_box(&out.bytes);
                    }
                    sent += 1;
                }
            }
            black_box(sent)
        })
    });
    // The benchmark measured the steady state it meant to measure.
    assert_eq!(node.state(), expected, "{name}: the receiver changed state");
}

fn core(c: &mut Criterion) {
    // Node 1 (index 0) follows node 3 (index 2).
    bench_core(c, "core/follower_handles_heartbeat", 0, 2, false);
    bench_core(c, "core/leader_handles_ack", 2, 0, false);
    bench_core(c, "core/follower_handles_heartbeat_bytes", 0, 2, true);
}

criterion_group!(benches, codec, core);
criterion_main!(benches);
