//! Steady state allocates nothing: a counting global allocator, armed only while the
//! election core and the codec run, sees zero allocations while five cores elect,
//! heartbeat, lose their leader (crash), fail over, take the old leader back, hand over
//! after a graceful shutdown, and get over a hung leader (no input for a while, then it
//! resumes, finds its lease gone and rejoins). It runs twice: without authentication and
//! with an HMAC key, so signing and verifying every frame is counted too. The operators'
//! queries the daemon makes every tick (the voters heard, the snapshot it publishes) are
//! counted as well.
//!
//! The network here is a preallocated vector and the clock a counter, so only the core's
//! own behaviour is measured (the simulator in `tests/sim` allocates freely).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use votecast_core::auth::KeySet;
use votecast_core::election::{Config, Epochs, Instant, Node, Output, ServerState};
use votecast_core::wire::FRAME_LEN;

struct CountingAllocator;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    /// Allocations of this thread while armed: tests running in parallel do not mix.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if ARMED.with(|a| a.get()) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

fn allocations() -> u64 {
    ALLOCATIONS.with(|n| n.get())
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Run `f` with allocation counting on.
fn armed<T>(f: impl FnOnce() -> T) -> T {
    ARMED.with(|a| a.set(true));
    let result = f();
    ARMED.with(|a| a.set(false));
    result
}

struct Cluster {
    nodes: Vec<Option<Node>>,
    disks: Vec<Epochs>,
    incarnations: Vec<u32>,
    /// (deliver at µs, to, bytes); capacity reserved up front.
    in_flight: Vec<(u64, usize, [u8; FRAME_LEN])>,
    now_us: u64,
    frames: u64,
    /// A paused node (SIGSTOP) gets no input; frames for it wait, as in a socket buffer.
    paused: Vec<bool>,
    keys: KeySet,
}

const VOTERS: [u64; 5] = [1, 2, 3, 4, 5];
const DELAY_US: u64 = 200;

impl Cluster {
    fn new(keys: KeySet) -> Cluster {
        Cluster {
            nodes: (0..VOTERS.len()).map(|_| None).collect(),
            disks: vec![Epochs::default(); VOTERS.len()],
            incarnations: vec![0; VOTERS.len()],
            in_flight: Vec::with_capacity(100_000),
            now_us: 1,
            frames: 0,
            paused: vec![false; VOTERS.len()],
            keys,
        }
    }

    /// Start-up: construction may allocate nothing either, but it is not steady state.
    fn boot(&mut self, i: usize) {
        self.incarnations[i] += 1;
        let mut config = Config::new(VOTERS[i], &VOTERS).unwrap();
        config.keys = self.keys.clone();
        // Odd ids lead with sparse answers (the first leader, 5, among them), even ones
        // without: both kinds of steady state are counted.
        config.sparse_answers = VOTERS[i] % 2 == 1;
        let mut node = Node::new(config, self.disks[i], self.incarnations[i]).unwrap();
        node.start(Instant::from_micros(self.now_us));
        self.nodes[i] = Some(node);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        loop {
            let Some(node) = self.nodes[i].as_mut() else {
                return;
            };
            let mut bytes = [0u8; FRAME_LEN];
            let output = armed(|| {
                let output = node.poll_output();
                if let Some(Output::Transmit(frame)) = &output {
                    bytes = frame.bytes;
                }
                output
            });
            match output {
                None => return,
                Some(Output::Persist(epochs)) => self.disks[i] = epochs,
                Some(Output::Event(_)) => {}
                Some(Output::Transmit(_)) => {
                    self.frames += 1;
                    for to in 0..VOTERS.len() {
                        if to != i {
                            assert!(self.in_flight.len() < self.in_flight.capacity());
                            self.in_flight.push((self.now_us + DELAY_US, to, bytes));
                        }
                    }
                }
            }
        }
    }

    fn run_for(&mut self, duration: Duration) {
        let end = self.now_us + duration.as_micros() as u64;
        while self.now_us < end {
            self.now_us += 100;
            let now = Instant::from_micros(self.now_us);
            // Deliver everything due (swap_remove keeps the vector's capacity).
            let mut k = 0;
            while k < self.in_flight.len() {
                if self.in_flight[k].0 <= self.now_us && !self.paused[self.in_flight[k].1] {
                    let (_, to, bytes) = self.in_flight.swap_remove(k);
                    if let Some(node) = self.nodes[to].as_mut() {
                        armed(|| node.handle_datagram(now, &bytes)).unwrap();
                        self.drain(to);
                    }
                } else {
                    k += 1;
                }
            }
            for i in 0..VOTERS.len() {
                if self.paused[i] {
                    continue;
                }
                if let Some(node) = self.nodes[i].as_mut() {
                    if node.poll_timeout().is_some_and(|t| t <= now) {
                        armed(|| node.handle_timeout(now));
                        self.drain(i);
                    }
                }
                if let Some(node) = self.nodes[i].as_ref() {
                    // What the daemon's silence watch and state file ask each tick.
                    armed(|| {
                        std::hint::black_box(node.heard(now).map(|h| h.age).sum::<Duration>());
                        std::hint::black_box(node.last_heard().max_by_key(|&(_, at)| at));
                    });
                }
            }
        }
    }

    /// The leader every live node agrees on (leader LEADING, the others FOLLOWING it, all
    /// with its epoch), ignoring paused nodes. Returns (index, epoch).
    fn agreed(&self) -> Option<(usize, u64)> {
        let leader = self.nodes.iter().enumerate().position(|(i, n)| {
            !self.paused[i]
                && n.as_ref()
                    .is_some_and(|n| n.state() == ServerState::Leading)
        })?;
        let epoch = self.nodes[leader].as_ref()?.epoch()?;
        let all = self.nodes.iter().enumerate().all(|(i, n)| match n {
            None => true,
            Some(_) if self.paused[i] || i == leader => true,
            Some(n) => {
                n.state() == ServerState::Following
                    && n.leader() == Some(VOTERS[leader])
                    && n.epoch() == Some(epoch)
            }
        });
        all.then_some((leader, epoch))
    }

    /// SIGTERM: the resign broadcast is part of the measured steady state.
    fn shutdown(&mut self, i: usize) {
        let now = Instant::from_micros(self.now_us);
        if let Some(node) = self.nodes[i].as_mut() {
            armed(|| node.shutdown(now));
        }
        self.drain(i);
        self.nodes[i] = None;
    }
}

#[test]
fn the_counting_allocator_counts() {
    let before = allocations();
    let v = armed(|| std::hint::black_box(Vec::<u8>::with_capacity(64)));
    drop(v);
    assert!(allocations() > before);
}

#[test]
fn election_heartbeats_and_failover_allocate_nothing() {
    election_heartbeats_and_failover(KeySet::disabled());
}

#[test]
fn with_authentication_signing_and_verifying_allocate_nothing() {
    let mut keys = KeySet::disabled();
    let secret: Vec<u8> = (0u8..32).map(|b| b.wrapping_mul(37) ^ 0x5c).collect();
    keys.add(7, &secret).expect("a strong test key");
    election_heartbeats_and_failover(keys);
}

fn election_heartbeats_and_failover(keys: KeySet) {
    let authenticated = keys.is_enabled();
    let mut cluster = Cluster::new(keys);
    for i in 0..VOTERS.len() {
        cluster.boot(i);
    }
    // Start-up is over once every core has been constructed and started; from here on
    // every call into the core and the codec is counted.
    let baseline = allocations();
    let mut phases = Vec::new();
    let mut phase = |name: &str, cluster: &Cluster, frames_before: u64| {
        phases.push(format!("{name}: {} frames", cluster.frames - frames_before));
    };

    // Election and heartbeats (5 leads with sparse answers: its followers take turns).
    let f = cluster.frames;
    cluster.run_for(Duration::from_secs(5));
    let (leader, epoch) = cluster.agreed().expect("a leader after 5 s");
    assert_eq!(VOTERS[leader], 5);
    assert_publishes_the_voters_heard(&cluster, leader);
    phase("election + heartbeats", &cluster, f);

    // Failover: crash the leader (dropping a node is not steady state; it is not armed).
    let f = cluster.frames;
    cluster.nodes[leader] = None;
    cluster.run_for(Duration::from_secs(2));
    let (new_leader, new_epoch) = cluster.agreed().expect("a new leader after a crash");
    assert_eq!(VOTERS[new_leader], 4);
    assert!(new_epoch > epoch);
    phase("failover after crash", &cluster, f);

    // The old leader restarts (construction is start-up, not counted) and rejoins.
    let f = cluster.frames;
    let zero_during_boot = allocations();
    cluster.boot(leader);
    assert_eq!(allocations(), zero_during_boot);
    cluster.run_for(Duration::from_secs(2));
    assert_eq!(cluster.agreed(), Some((new_leader, new_epoch)));
    phase("rejoin", &cluster, f);

    // A hung leader: no input at all for 2 s; the others elect; it resumes and rejoins.
    let f = cluster.frames;
    cluster.paused[new_leader] = true;
    cluster.run_for(Duration::from_secs(2));
    let (hang_leader, hang_epoch) = cluster.agreed().expect("a new leader after a hang");
    assert_ne!(hang_leader, new_leader);
    assert!(hang_epoch > new_epoch);
    cluster.paused[new_leader] = false;
    cluster.run_for(Duration::from_secs(2));
    assert_eq!(cluster.agreed(), Some((hang_leader, hang_epoch)));
    assert_eq!(
        cluster.nodes[new_leader].as_ref().unwrap().state(),
        ServerState::Following
    );
    phase("hung leader, resumed", &cluster, f);

    // Graceful handover: the leader resigns.
    let f = cluster.frames;
    cluster.shutdown(hang_leader);
    cluster.run_for(Duration::from_secs(1));
    let (last_leader, last_epoch) = cluster.agreed().expect("a leader after the resign");
    assert_ne!(last_leader, hang_leader);
    assert!(last_epoch > hang_epoch);
    phase("handover after resign", &cluster, f);

    let allocations = allocations() - baseline;
    println!(
        "authentication {}: {} frames exchanged ({}), {allocations} heap allocations in the core and codec",
        if authenticated { "on" } else { "off" },
        cluster.frames,
        phases.join(", ")
    );
    assert!(cluster.frames > 1_000, "the cluster was busy");
    assert_eq!(allocations, 0);
}

/// The snapshot the daemon publishes for the leader (the voters it heard included) is
/// built and formatted without allocating, and names the four others as heard.
fn assert_publishes_the_voters_heard(cluster: &Cluster, leader: usize) {
    use votecast::daemon::state_file::MAX_SNAPSHOT_JSON_LEN;
    use votecast::driver::clock::Now;
    use votecast::driver::publish::{publish, NodeView};
    let node = cluster.nodes[leader].as_ref().expect("the leader runs");
    let now = Now {
        core: Instant::from_micros(cluster.now_us),
        unix_ms: 1_800_000_000_000,
        boottime_ms: Some(cluster.now_us / 1000),
    };
    let mut json = heapless::String::<MAX_SNAPSHOT_JSON_LEN>::new();
    let before = allocations();
    armed(|| {
        let published = publish(&NodeView::of(node, now.core), now, false, 1);
        published.snapshot.write_json(&mut json).expect("fits");
    });
    assert_eq!(allocations(), before, "publishing allocated");
    assert!(json.contains("\"heard\":[1,2,3,4],"), "{json}");
}

/// The event loop hands every state change to the `--on-change` worker: that hand-over
/// allocates nothing, also while a hook runs and newer changes replace waiting ones.
#[test]
fn hook_notify_allocates_nothing() {
    use votecast::daemon::hooks::{HookChange, HookRunner};
    let hooks = HookRunner::start("sleep 1".into(), Duration::from_secs(10));
    let change = |epoch| HookChange {
        id: 1,
        state: "LEADING",
        previous_state: "LOOKING",
        leader: Some(1),
        epoch: Some(epoch),
        valid_until_unix_ms: Some(1_800_000_000_000),
        valid_until_boottime_ms: Some(1_000_000),
    };
    let n = armed(|| {
        let before = allocations();
        for epoch in 0..100 {
            hooks.notify(change(epoch));
        }
        allocations() - before
    });
    assert!(hooks.skipped() >= 98, "changes replaced each other");
    hooks.shutdown(Duration::from_millis(100));
    assert_eq!(n, 0);
}

/// Epochs are stored on the event loop at every proposal, acknowledgement and
/// establishment: the in-place write of a slot allocates nothing, in a fresh data dir
/// and in one converted from the version-1 text file.
#[test]
fn storing_epochs_allocates_nothing() {
    use votecast::cluster::TempDir;
    use votecast::daemon::persist::DataDir;
    let tmp = TempDir::new("votecast-no-alloc").expect("temp dir");
    let v1 = "votecast-epochs v1\naccepted_epoch=9\naccepted_leader=3\ncurrent_epoch=8\n";
    std::fs::create_dir_all(tmp.join("migrated")).expect("mkdir");
    std::fs::write(
        tmp.join("migrated/epochs"),
        format!("{v1}crc32={:08x}\n", crc32fast::hash(v1.as_bytes())),
    )
    .expect("write v1");
    for dir in ["fresh", "migrated"] {
        let mut data = DataDir::open(&tmp.join(dir)).expect("open");
        let n = armed(|| {
            let before = allocations();
            for n in 10..60 {
                let e = Epochs {
                    accepted_epoch: n,
                    accepted_leader: 2,
                    current_epoch: n - 1,
                };
                data.store_epochs(&e).expect("store");
            }
            allocations() - before
        });
        assert_eq!(n, 0, "{dir}");
        drop(data);
        let data = DataDir::open(&tmp.join(dir)).expect("reopen");
        assert_eq!(
            data.load_epochs().expect("load").accepted_epoch,
            59,
            "{dir}"
        );
    }
}
