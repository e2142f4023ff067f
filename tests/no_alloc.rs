//! Steady state allocates nothing: a counting global allocator, armed only while the
//! election core and the codec run, sees zero allocations while five cores elect,
//! heartbeat, lose their leader, fail over and take the old leader back.
//!
//! The network here is a preallocated vector and the clock a counter, so only the core's
//! own behaviour is measured (the simulator in `tests/sim` allocates freely).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use votecast::election::{Config, Epochs, Instant, Node, Output, ServerState};
use votecast::wire::FRAME_LEN;

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(|a| a.get()) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.with(|a| a.get()) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
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
}

const VOTERS: [u64; 5] = [1, 2, 3, 4, 5];
const DELAY_US: u64 = 200;

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            nodes: (0..VOTERS.len()).map(|_| None).collect(),
            disks: vec![Epochs::default(); VOTERS.len()],
            incarnations: vec![0; VOTERS.len()],
            in_flight: Vec::with_capacity(100_000),
            now_us: 1,
            frames: 0,
        }
    }

    /// Start-up: construction may allocate nothing either, but it is not steady state.
    fn boot(&mut self, i: usize) {
        self.incarnations[i] += 1;
        let config = Config::new(VOTERS[i], &VOTERS).unwrap();
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
                if self.in_flight[k].0 <= self.now_us {
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
                if let Some(node) = self.nodes[i].as_mut() {
                    if node.poll_timeout().is_some_and(|t| t <= now) {
                        armed(|| node.handle_timeout(now));
                        self.drain(i);
                    }
                }
            }
        }
    }

    fn leader(&self) -> Option<usize> {
        self.nodes.iter().position(|n| {
            n.as_ref()
                .is_some_and(|n| n.state() == ServerState::Leading)
        })
    }
}

#[test]
fn election_heartbeats_and_failover_allocate_nothing() {
    let mut cluster = Cluster::new();
    for i in 0..VOTERS.len() {
        cluster.boot(i);
    }
    cluster.run_for(Duration::from_secs(2));
    let leader = cluster.leader().expect("a leader after 2 s");
    assert_eq!(VOTERS[leader], 5);

    // Failover: crash the leader (dropping a node is not steady state either).
    cluster.nodes[leader] = None;
    cluster.run_for(Duration::from_secs(2));
    let new_leader = cluster.leader().expect("a new leader");
    assert_eq!(VOTERS[new_leader], 4);

    cluster.boot(leader);
    cluster.run_for(Duration::from_secs(2));
    assert_eq!(cluster.leader(), Some(new_leader));

    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    println!(
        "{} frames exchanged, {allocations} heap allocations in the core and codec",
        cluster.frames
    );
    assert!(cluster.frames > 400, "the cluster was busy");
    assert_eq!(allocations, 0);
}
