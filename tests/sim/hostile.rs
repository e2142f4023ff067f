//! A hostile LAN, at the level of the protocol core: forged and tampered frames, replays,
//! another board with our id, and a voter flooding the group.
//!
//! The simulator tests compare an attacked run with the same run without the attacker:
//! the attacker's frames use none of the simulator's randomness, so a core that rejects
//! them without a trace must produce exactly the same transitions at exactly the same
//! times. Every failure names its seed; `VOTECAST_SIM_SEED=N` is not needed to replay, the
//! seeds are fixed.

use std::time::Duration;

use votecast_core::auth::KeySet;
use votecast_core::election::{
    Config, DatagramError, Epochs, Event, Instant, Node, Output, ServerState, FRAME_BUDGET_BURST,
};
use votecast_core::wire::{self, Flags, Packet, Repr, Vote, FRAME_LEN};
use votecast_testkit::sim::{NetConfig, Rng, Sim};

const SECRET: [u8; 32] = *b"\x8a\x1f\x03\xc4\x77\x92\x5e\xe0\x19\xd6\x2b\xa8\x41\xfc\x6d\x30\
\x95\x0e\xb7\x5a\xc2\x68\x13\xef\x84\x2d\x79\xa1\x36\xdb\x50\xcb";

fn keys() -> KeySet {
    let mut keys = KeySet::disabled();
    keys.add(1, &SECRET).expect("strong test key");
    keys
}

/// One (time, node, state, leader, epoch) per transition of every node, in order.
type Trace = Vec<(u64, u64, ServerState, Option<u64>, Option<u64>)>;

fn trace(sim: &Sim) -> Trace {
    let mut all: Trace = sim
        .nodes
        .iter()
        .flat_map(|n| {
            n.transitions
                .iter()
                .map(move |t| (t.at_us, n.id, t.state, t.leader, t.epoch))
        })
        .collect();
    all.sort_by_key(|&(at, id, ..)| (at, id));
    all
}

const VOTERS: u64 = 5;

/// Five voters with a shared key: elect, crash the leader, fail over, restart it.
/// `attack` runs before each phase with the simulator and the phase's time window.
fn scripted_run(seed: u64, mut attack: impl FnMut(&mut Sim, u64, u64)) -> Sim {
    let mut sim = Sim::with_config(seed, VOTERS, 0, NetConfig::PERFECT, |c| c.keys = keys());
    sim.record = true;
    sim.start_all();
    attack(&mut sim, 0, 1_000_000);
    sim.run_for(Duration::from_secs(1));
    let leader = sim
        .agreed_leader()
        .unwrap_or_else(|| panic!("seed {seed}: no agreement after 1 s: {:?}", sim.violation));
    sim.crash(leader);
    attack(&mut sim, 1_000_000, 3_000_000);
    sim.run_for(Duration::from_secs(2));
    sim.start(leader);
    attack(&mut sim, 3_000_000, 5_000_000);
    sim.run_for(Duration::from_secs(2));
    assert!(
        sim.violation.is_none(),
        "seed {seed}: {}",
        sim.violation.as_deref().unwrap_or_default()
    );
    assert!(
        sim.agreed_leader().is_some(),
        "seed {seed}: no agreement at the end"
    );
    sim
}

fn best_vote() -> Vote {
    Vote {
        leader: VOTERS,
        zxid: u64::MAX,
        peer_epoch: u64::MAX,
        ineligible: false,
    }
}

/// A frame an attacker would like to be believed: the best possible vote, a far round,
/// a claim to lead a huge epoch.
fn tempting_frame(rng: &mut Rng, sender: u64) -> Repr {
    Repr {
        state: [
            ServerState::Looking,
            ServerState::Leading,
            ServerState::Following,
        ][rng.range(0, 2) as usize],
        flags: if rng.chance(20) {
            Flags::RESIGN
        } else {
            Flags::ESTABLISHED
        },
        key_id: 0,
        cluster: 0,
        sender,
        incarnation: u32::MAX,
        sequence: u64::MAX,
        vote: best_vote(),
        round: 1 << 40,
        accepted_epoch: u64::MAX - 1,
        epoch: u64::MAX - 1,
        echo: rng.next_u64(),
        auth_tag: [0; 16],
    }
}

/// Forged, tampered and garbage frames, built without the key.
fn forged_frame(rng: &mut Rng, recorded: &[[u8; FRAME_LEN]]) -> [u8; FRAME_LEN] {
    let sender = rng.range(1, VOTERS);
    let mut bytes = [0u8; FRAME_LEN];
    wire::emit_datagram(&tempting_frame(rng, sender), &mut bytes).expect("fits");
    match rng.range(0, 4) {
        // Unsigned (key id 0), valid CRC.
        0 => {}
        // Our key id with a random tag.
        1 => {
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_key_id(1);
            packet.set_auth_tag(rng.next_u64().to_be_bytes().repeat(2).try_into().unwrap());
            packet.fill_checksum();
        }
        // A key id nobody has.
        2 => {
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_key_id(rng.range(2, 255) as u8);
            packet.fill_checksum();
        }
        // A real signed frame with one field changed (the tag no longer matches).
        3 if !recorded.is_empty() => {
            bytes = recorded[rng.range(0, recorded.len() as u64 - 1) as usize];
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_round(packet.round() + 1000);
            packet.set_vote_leader(VOTERS);
            packet.fill_checksum();
        }
        // Garbage, or a real frame with a broken CRC.
        _ => {
            for byte in bytes.iter_mut() {
                *byte = rng.next_u64() as u8;
            }
        }
    }
    bytes
}

/// A forged multicast frame can neither elect, depose nor stall anyone.
/// 2,000 forged frames per run, at random times to random nodes, leave every transition of
/// the run exactly as it was without them.
#[test]
fn forged_frames_change_nothing() {
    for seed in 1..=12 {
        let reference = scripted_run(seed, |_, _, _| {});
        let honest_frames: Vec<_> = reference.recorded.iter().map(|&(_, f)| f).collect();
        let mut attacker = Rng::new(seed ^ 0xa77a_c4e5);
        let mut injected = 0u64;
        let attacked = scripted_run(seed, |sim, from_us, to_us| {
            for _ in 0..700 {
                let to = attacker.range(1, VOTERS);
                let at = attacker.range(from_us, to_us - 1);
                sim.inject(to, at, forged_frame(&mut attacker, &honest_frames));
                injected += 1;
            }
        });
        // Frames to a crashed node are never delivered, so count what was rejected.
        assert!(
            attacked.hostile_rejected >= injected * 3 / 4,
            "seed {seed}: only {} of {injected} forged frames reached a node",
            attacked.hostile_rejected
        );
        assert_eq!(
            trace(&attacked),
            trace(&reference),
            "seed {seed}: forged frames changed the run"
        );
        let stats: Vec<_> = attacked
            .nodes
            .iter()
            .filter_map(|n| n.node.as_ref().map(|node| node.stats()))
            .collect();
        let unauthentic: u64 = stats.iter().map(|s| s.unauthenticated + s.bad_tags).sum();
        assert!(
            unauthentic > 0,
            "seed {seed}: nothing counted as unauthentic"
        );
    }
}

/// Replay protection. Every frame of the first half of the run, replayed to every
/// node in the second half, is dropped as stale: the run does not change.
#[test]
fn replayed_frames_change_nothing() {
    for seed in 1..=12 {
        let reference = scripted_run(seed, |_, _, _| {});
        // Frames sent before 3.5 s (the old leader restarted at 3 s), replayed from 4.5 s
        // on, when every node has heard newer ones from each sender.
        let old_frames: Vec<_> = reference
            .recorded
            .iter()
            .filter(|&&(at, _)| at < 3_500_000)
            .map(|&(_, f)| f)
            .collect();
        assert!(
            old_frames.len() > 100,
            "seed {seed}: too few frames recorded"
        );

        let mut attacker = Rng::new(seed ^ 0x004e_91a7);
        let attacked = scripted_run(seed, |sim, from_us, _| {
            if from_us == 3_000_000 {
                for bytes in &old_frames {
                    for to in 1..=VOTERS {
                        let at = attacker.range(4_500_000, 4_999_999);
                        sim.inject(to, at, *bytes);
                    }
                }
            }
        });
        assert_eq!(attacked.hostile_rejected, 0, "replays are authentic");
        assert_eq!(
            trace(&attacked),
            trace(&reference),
            "seed {seed}: replayed frames changed the run"
        );
        let stale: u64 = attacked
            .nodes
            .iter()
            .filter_map(|n| n.node.as_ref())
            .map(|node| node.stats().stale_frames + node.stats().own_frames)
            .sum();
        assert!(
            stale >= old_frames.len() as u64 * 4,
            "seed {seed}: only {stale} frames dropped as stale or own"
        );
    }
}

/// What a replay can do after a receiver restarts (it forgot the senders' sequence
/// numbers): deliver old votes and heartbeats once. It must not break safety, and the
/// cluster must still agree once the replays stop. Random crashes and restarts, with
/// replays aimed at nodes right after they restart.
#[test]
fn replays_after_restarts_keep_safety_and_liveness() {
    for seed in 1..=40 {
        let mut sim = Sim::with_config(seed, VOTERS, 0, NetConfig::PERFECT, |c| c.keys = keys());
        sim.record = true;
        let mut attacker = Rng::new(seed ^ 0x5eed);
        sim.start_all();
        sim.run_for(Duration::from_millis(500));
        for _ in 0..6 {
            let victim = attacker.range(1, VOTERS);
            sim.crash(victim);
            sim.run_for(Duration::from_millis(attacker.range(50, 600)));
            sim.start(victim);
            let now = sim.now_us;
            let recorded = sim.recorded.clone();
            for _ in 0..300 {
                let (_, bytes) = recorded[attacker.range(0, recorded.len() as u64 - 1) as usize];
                let to = if attacker.chance(70) {
                    victim
                } else {
                    attacker.range(1, VOTERS)
                };
                sim.inject(to, now + attacker.range(0, 400_000), bytes);
            }
            sim.run_for(Duration::from_millis(attacker.range(300, 1_500)));
            assert!(
                sim.violation.is_none(),
                "seed {seed}: {}",
                sim.violation.as_deref().unwrap_or_default()
            );
        }
        let agreed = sim.await_agreement(Duration::from_secs(15));
        assert!(
            sim.violation.is_none(),
            "seed {seed}: {}",
            sim.violation.as_deref().unwrap_or_default()
        );
        assert!(agreed.is_some(), "seed {seed}: no agreement within 15 s");
    }
}

// ----- one node, fed by hand ----------------------------------------------------------------

fn t(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn drain(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

fn sent_frames(outputs: &[Output]) -> Vec<[u8; FRAME_LEN]> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(f) => Some(f.bytes),
            _ => None,
        })
        .collect()
}

/// A node that alone forms its cluster (voters [1]) leads at once.
fn sole_leader(keys: KeySet) -> Node {
    let mut config = Config::new(1, &[1]).unwrap();
    config.keys = keys;
    let mut node = Node::new(config, Epochs::default(), 5).unwrap();
    node.start(t(0));
    drain(&mut node);
    assert_eq!(node.state(), ServerState::Leading);
    node
}

/// A frame with our id (1) from incarnation `incarnation`, sequence `sequence`.
fn own_id_frame(incarnation: u32, sequence: u64, keys: &KeySet) -> [u8; FRAME_LEN] {
    let repr = Repr {
        state: ServerState::Leading,
        flags: Flags::ESTABLISHED,
        key_id: 0,
        cluster: 0,
        sender: 1,
        incarnation,
        sequence,
        vote: Vote {
            leader: 1,
            zxid: 0,
            peer_epoch: 1,
            ineligible: false,
        },
        round: 1,
        accepted_epoch: 1,
        epoch: 1,
        echo: 77,
        auth_tag: [0; 16],
    };
    let mut bytes = [0u8; FRAME_LEN];
    wire::emit_datagram(&repr, &mut bytes).unwrap();
    keys.sign(&mut bytes);
    bytes
}

/// Frames carrying our own id from a later incarnation, alive for the detection window,
/// mean two boards share an id: log an error, report it, and refuse to lead. A leader
/// steps down at once, falls silent, refuses to lead while it keeps hearing the other
/// board, and comes back after the quarantine. (One such frame alone may be a late one
/// of an earlier process of ours: see `fuzz_steps`.)
#[test]
fn later_incarnation_with_our_id_is_a_duplicate_leader_steps_down() {
    let mut node = sole_leader(keys());
    let window = node.config().sync_timeout();
    let mut at = t(10);
    let mut sequence = 1;
    while at < t(10) + window {
        node.handle_datagram(at, &own_id_frame(6, sequence, &keys()))
            .unwrap();
        assert_eq!(
            node.state(),
            ServerState::Leading,
            "not yet alive long enough"
        );
        drain(&mut node);
        at = at + Duration::from_millis(50);
        sequence += 1;
    }
    node.handle_datagram(at, &own_id_frame(6, sequence, &keys()))
        .unwrap();
    let out = drain(&mut node);
    let duplicate = out.iter().find_map(|o| match o {
        Output::Event(Event::DuplicateId(d)) => Some(*d),
        _ => None,
    });
    let duplicate = duplicate.unwrap_or_else(|| panic!("no DuplicateId event: {out:?}"));
    assert_eq!(duplicate.incarnation, 6);
    assert_eq!(
        node.state(),
        ServerState::Looking,
        "a duplicate must not lead"
    );
    assert!(sent_frames(&out).is_empty(), "quarantined: silent");
    assert_eq!(node.stats().duplicate_id_frames, 1);
    // Quarantine: 4..5 follower timeouts (300 ms each at the defaults).
    let until = duplicate.quarantine_until;
    assert!(
        until >= at + Duration::from_millis(1200) && until <= at + Duration::from_millis(1500),
        "{until:?}"
    );

    // Timers keep running but nothing is sent, and it never leads, though it is the
    // only voter and would win every election.
    let mut timeouts = 0;
    while let Some(now) = node.poll_timeout() {
        if now >= until {
            break;
        }
        timeouts += 1;
        node.handle_timeout(now);
        let out = drain(&mut node);
        assert!(
            sent_frames(&out).is_empty(),
            "sent while quarantined at {now:?}"
        );
        assert_eq!(node.state(), ServerState::Looking);
    }
    assert!(
        timeouts >= 3,
        "notification backoff kept running ({timeouts} timeouts)"
    );
    assert_eq!(node.poll_timeout(), Some(until));
    // The other board is gone: after the quarantine it votes, leads and sends again.
    node.handle_timeout(until);
    let out = drain(&mut node);
    assert!(node.duplicate_id().is_none());
    assert_eq!(node.state(), ServerState::Leading);
    assert!(!sent_frames(&out).is_empty());
}

#[test]
fn same_incarnation_with_unsent_sequence_or_other_contents_is_a_duplicate() {
    // A sequence we have not reached yet.
    let mut node = sole_leader(KeySet::disabled());
    node.handle_datagram(t(5), &own_id_frame(5, 1_000_000, &KeySet::disabled()))
        .unwrap();
    assert!(node.duplicate_id().is_some());

    // Our own sequence number, other contents.
    let mut node = sole_leader(KeySet::disabled());
    node.handle_timeout(node.poll_timeout().unwrap());
    let sent = sent_frames(&drain(&mut node));
    let mine = *sent.last().expect("a heartbeat");
    let mut other = mine;
    let mut packet = Packet::new_unchecked(&mut other[..]);
    packet.set_echo(packet.echo() + 5);
    packet.fill_checksum();
    node.handle_datagram(t(60), &mine).unwrap();
    assert!(node.duplicate_id().is_none(), "our own frame looped back");
    node.handle_datagram(t(61), &other).unwrap();
    assert!(
        node.duplicate_id().is_some(),
        "same sequence, other contents"
    );
}

/// With authentication on, nobody can forge our id, but anyone can replay what we sent
/// before: an older incarnation is a replay, never a reason to fall silent.
#[test]
fn older_incarnation_with_our_id_is_a_replay_not_a_duplicate() {
    let mut node = sole_leader(keys());
    for incarnation in [1, 4] {
        node.handle_datagram(t(10), &own_id_frame(incarnation, 99, &keys()))
            .unwrap();
    }
    assert!(node.duplicate_id().is_none());
    assert_eq!(node.stats().duplicate_id_frames, 0);
    assert_eq!(node.state(), ServerState::Leading);
}

#[test]
fn frames_without_a_valid_tag_are_rejected_and_counted() {
    let mut follower_config = Config::new(2, &[1, 2, 3]).unwrap();
    follower_config.keys = keys();
    let mut node = Node::new(follower_config, Epochs::default(), 1).unwrap();
    node.start(t(0));
    drain(&mut node);
    let round = node.round();
    let mut rng = Rng::new(7);
    let cases = [
        (own_id_frame(9, 9, &KeySet::disabled()), "unsigned"),
        (
            {
                let mut other_secret = SECRET;
                other_secret.reverse();
                let mut other = KeySet::disabled();
                other.add(1, &other_secret).unwrap();
                let mut bytes = [0u8; FRAME_LEN];
                wire::emit_datagram(&tempting_frame(&mut rng, 3), &mut bytes).unwrap();
                other.sign(&mut bytes);
                bytes
            },
            "signed with another secret under our key id",
        ),
    ];
    for (bytes, what) in cases {
        let err = node.handle_datagram(t(5), &bytes).unwrap_err();
        assert!(
            matches!(err, DatagramError::Unauthentic(_)),
            "{what}: {err:?}"
        );
        assert!(drain(&mut node).is_empty(), "{what}: caused output");
    }
    let stats = node.stats();
    assert_eq!((stats.unauthenticated, stats.bad_tags), (1, 1));
    assert_eq!(stats.frames_received, 0);
    assert_eq!(node.round(), round);
    assert!(
        node.duplicate_id().is_none(),
        "an unsigned frame with our id is not believed"
    );
}

/// A sender over its frame-rate budget is throttled. A voter may send a burst of
/// FRAME_BUDGET_BURST frames, then 16 per tick; beyond that its frames are dropped and
/// counted. Replayed copies of its frames are stale and do not use up its budget.
#[test]
fn a_voter_over_its_budget_is_throttled_and_recovers() {
    let mut node = Node::new(Config::new(2, &[1, 2, 3]).unwrap(), Epochs::default(), 1).unwrap();
    node.start(t(0));
    drain(&mut node);
    let frame = |sequence: u64| {
        let repr = Repr {
            state: ServerState::Looking,
            flags: Flags::empty(),
            key_id: 0,
            cluster: 0,
            sender: 3,
            incarnation: 1,
            sequence,
            vote: Vote {
                leader: 3,
                zxid: 0,
                peer_epoch: 0,
                ineligible: false,
            },
            round: 1,
            accepted_epoch: 0,
            epoch: 0,
            echo: 0,
            auth_tag: [0; 16],
        };
        let mut bytes = [0u8; FRAME_LEN];
        wire::emit_datagram(&repr, &mut bytes).unwrap();
        bytes
    };
    // Replays of one early frame first: stale, and free.
    node.handle_datagram(t(1), &frame(1)).unwrap();
    for _ in 0..500 {
        node.handle_datagram(t(1), &frame(1)).unwrap();
    }
    assert_eq!(node.stats().stale_frames, 500);
    assert_eq!(node.stats().throttled, 0);
    // A flood of fresh frames within one millisecond.
    let flood = 1_000u64;
    for sequence in 2..2 + flood {
        node.handle_datagram(t(1), &frame(sequence)).unwrap();
        drain(&mut node);
    }
    let throttled = node.stats().throttled;
    assert_eq!(
        throttled,
        flood + 1 - u64::from(FRAME_BUDGET_BURST),
        "burst of {FRAME_BUDGET_BURST}, counting the first frame"
    );
    // One tick later (50 ms): 16 more frames pass, the 17th does not.
    let mut sequence = 2 + flood;
    for _ in 0..16 {
        node.handle_datagram(t(51), &frame(sequence)).unwrap();
        sequence += 1;
    }
    assert_eq!(node.stats().throttled, throttled);
    node.handle_datagram(t(51), &frame(sequence)).unwrap();
    assert_eq!(node.stats().throttled, throttled + 1);
}
