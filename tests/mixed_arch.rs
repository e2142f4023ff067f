//! A mixed-architecture cluster on `lo`: a native x86_64 node, an aarch64 node under
//! qemu-aarch64 and an armv7 node under qemu-arm form one cluster, elect one leader, fail
//! over when the leader's process is SIGKILLed, and fail over again to the other
//! architecture. Every frame crosses between a 64-bit little-endian x86 build, a 64-bit ARM
//! build and a 32-bit ARM build (4-byte usize), so agreement proves that the frame format
//! and the election are architecture-independent.
//!
//! The ARM binaries are cross-built release artifacts, so this test is `#[ignore]`d in a
//! plain `cargo test`; `boards/ci.sh` builds them and runs it with `-- --ignored`, setting:
//!
//! - `VOTECAST_MIXED_AARCH64_BIN`, `VOTECAST_MIXED_ARMV7_BIN`: the two binaries;
//! - `VOTECAST_MIXED_AARCH64_RUNNER`, `VOTECAST_MIXED_ARMV7_RUNNER`: the command that runs
//!   each (words separated by spaces), e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu
//!   -E LD_PRELOAD=…/aarch64-linux-gnu.so`; see boards/qemu/mcast_compat.c for why qemu-user
//!   7.2 needs that shim for IPv4 multicast.
//!
//! A missing variable, a missing file or a binary of the wrong architecture fails the test;
//! it never passes without having run the cluster.
//!
//! Timing: the nodes keep the default 50 ms tick (sync-limit 6, finalize-wait 50 ms) under
//! emulation; the test measures the tick each emulated node actually keeps (from the state
//! file, rewritten every tick) and prints it. Bounds are generous (seconds), because qemu
//! starts slowly and CI machines have 2 busy cores.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use votecast::cluster::LocalCluster;

const NATIVE_EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// Node ids: the x86_64 node has the smallest id and zxid 0; the emulated nodes have zxid 1,
/// so the leader is always an emulated node (whose qemu process we SIGKILL).
const X86: u64 = 1;
const ARMV7: u64 = 2;
const AARCH64: u64 = 3;

/// Bound for the first election (includes qemu start-up and translation warm-up).
const COLD: Duration = Duration::from_secs(60);
/// Bound for a failover or a rejoin.
const FAILOVER: Duration = Duration::from_secs(30);
/// How long the cluster must hold one leader and epoch without flapping.
const HOLD: Duration = Duration::from_secs(3);

/// ELF `e_machine` values.
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn required_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs the cross-built binaries and their qemu \
             runners; run it through boards/ci.sh (which sets VOTECAST_MIXED_AARCH64_BIN, \
             VOTECAST_MIXED_AARCH64_RUNNER, VOTECAST_MIXED_ARMV7_BIN, VOTECAST_MIXED_ARMV7_RUNNER)"
        ),
    }
}

/// (ELF class: 1 = 32-bit, 2 = 64-bit; e_machine) of an executable.
fn elf_kind(path: &Path) -> (u8, u16) {
    let bytes =
        fs::read(path).unwrap_or_else(|e| panic!("cannot read the binary {}: {e}", path.display()));
    assert!(
        bytes.len() > 20 && bytes[..4] == *b"\x7fELF",
        "{} is not an ELF executable",
        path.display()
    );
    assert_eq!(bytes[5], 1, "{} is not little-endian", path.display());
    (bytes[4], u16::from_le_bytes([bytes[18], bytes[19]]))
}

/// The binary named by `bin_var`, checked to be (class, machine); and its runner.
fn emulated(bin_var: &str, runner_var: &str, class: u8, machine: u16) -> (PathBuf, Vec<String>) {
    let bin = PathBuf::from(required_env(bin_var));
    assert!(bin.is_file(), "{bin_var}={}: no such file", bin.display());
    assert_eq!(
        elf_kind(&bin),
        (class, machine),
        "{bin_var}={} is not the expected architecture (ELF class {class}, machine {machine})",
        bin.display()
    );
    let runner: Vec<String> = required_env(runner_var)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (bin, runner)
}

/// The executable the kernel runs for node `id`'s process.
fn process_exe(c: &LocalCluster, id: u64) -> PathBuf {
    let pid = c.node(id).pid().expect("node runs");
    fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_else(|e| panic!("/proc/{pid}/exe: {e}"))
}

fn arch(id: u64) -> &'static str {
    match id {
        X86 => "x86_64",
        ARMV7 => "armv7 (qemu-arm)",
        AARCH64 => "aarch64 (qemu-aarch64)",
        _ => "?",
    }
}

fn assert_all_alive(c: &mut LocalCluster) {
    let exited = c.reap_exited().expect("try_wait on our children");
    if !exited.is_empty() {
        panic!("{}", c.report(format!("node processes exited: {exited:?}")));
    }
}

fn agree(c: &LocalCluster, limit: Duration, what: &str) -> (u64, u64, Duration) {
    c.await_agreement(limit).unwrap_or_else(|| {
        panic!(
            "{}",
            c.report(format!("{what}: no agreement within {limit:?}"))
        )
    })
}

/// Hold for `HOLD`: every running node must keep reporting exactly (leader, epoch). Returns,
/// per running node, the gaps between successive state-file writes (one per tick).
fn hold(c: &mut LocalCluster, expected: (u64, u64), what: &str) -> Vec<(u64, Vec<u64>)> {
    let ids = c.running_ids();
    let mut last: Vec<Option<u64>> = vec![None; ids.len()];
    let mut gaps: Vec<Vec<u64>> = vec![Vec::new(); ids.len()];
    let start = Instant::now();
    while start.elapsed() < HOLD {
        match c.agreed_leader() {
            Some(view) if view == expected => {}
            other => panic!(
                "{}",
                c.report(format!(
                    "{what}: after {:.0} ms of the hold the cluster reports {other:?}, \
                         expected {expected:?} throughout (a node missed its ticks?)",
                    ms(start.elapsed())
                ))
            ),
        }
        for (i, &id) in ids.iter().enumerate() {
            if let Some(s) = c.state(id) {
                if let Some(prev) = last[i] {
                    if s.updated_unix_ms > prev {
                        gaps[i].push(s.updated_unix_ms - prev);
                    }
                }
                if last[i].is_none_or(|prev| s.updated_unix_ms > prev) {
                    last[i] = Some(s.updated_unix_ms);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_all_alive(c);
    ids.into_iter().zip(gaps).collect()
}

fn print_ticks(phase: &str, gaps: &[(u64, Vec<u64>)]) {
    for (id, g) in gaps {
        if g.is_empty() {
            println!(
                "{phase}: node {id} {}: no state-file refresh seen",
                arch(*id)
            );
            continue;
        }
        let mean = g.iter().sum::<u64>() as f64 / g.len() as f64;
        let max = g.iter().max().copied().unwrap_or(0);
        println!(
            "{phase}: node {id} {}: {} state-file refreshes, mean interval {mean:.1} ms, max {max} ms (tick 50 ms)",
            arch(*id),
            g.len()
        );
    }
}

#[test]
#[ignore = "needs cross-built binaries; run by boards/ci.sh"]
fn x86_64_aarch64_armv7_elect_and_fail_over_across_architectures() {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        panic!("the native node of this test must be x86_64 Linux");
    }
    let native = PathBuf::from(NATIVE_EXE);
    assert_eq!(elf_kind(&native), (2, EM_X86_64), "native binary");
    let (a64_bin, a64_runner) = emulated(
        "VOTECAST_MIXED_AARCH64_BIN",
        "VOTECAST_MIXED_AARCH64_RUNNER",
        2,
        EM_AARCH64,
    );
    let (arm_bin, arm_runner) = emulated(
        "VOTECAST_MIXED_ARMV7_BIN",
        "VOTECAST_MIXED_ARMV7_RUNNER",
        1,
        EM_ARM,
    );

    let mut c = LocalCluster::new(&native, 3, 0).expect("prepare a local cluster");
    c.set_launcher(AARCH64, &a64_bin, a64_runner);
    c.set_launcher(ARMV7, &arm_bin, arm_runner);
    c.set_extra_args(X86, ["--zxid", "0"]);
    c.set_extra_args(ARMV7, ["--zxid", "1"]);
    c.set_extra_args(AARCH64, ["--zxid", "1"]);

    // 1. Cold start: the emulated nodes first (they start slowly), then the native one.
    c.start(AARCH64).expect("start the aarch64 node");
    c.start(ARMV7).expect("start the armv7 node");
    c.start(X86).expect("start the x86_64 node");
    let t0 = Instant::now();
    let (l1, e1, took) = agree(&c, COLD, "cold start");
    assert_all_alive(&mut c);
    println!(
        "mixed: cold start: leader {l1} {} epoch {e1} after {:.1} ms",
        arch(l1),
        ms(took)
    );
    assert!(
        l1 == ARMV7 || l1 == AARCH64,
        "{}",
        c.report(format!(
            "leader {l1}: expected an emulated node (zxid 1 beats 0)"
        ))
    );
    // The processes really are what they claim: native votecast, and qemu for the others.
    assert_eq!(
        fs::canonicalize(process_exe(&c, X86)).ok(),
        fs::canonicalize(&native).ok(),
        "node {X86} must run the native binary"
    );
    for id in [ARMV7, AARCH64] {
        let exe = process_exe(&c, id);
        let name = exe.file_name().unwrap_or_default().to_string_lossy();
        assert!(
            name.starts_with("qemu-"),
            "node {id} should run under qemu-user, but its process is {}",
            exe.display()
        );
        assert_eq!(
            c.state(id).map(|s| s.pid),
            c.node(id).pid(),
            "node {id} pid"
        );
    }
    let gaps = hold(&mut c, (l1, e1), "after the cold start");
    print_ticks("mixed: steady state", &gaps);
    for (id, g) in &gaps {
        // A node rewrites its state file before the lease end in it is two ticks away,
        // at most once a tick: about every 200 ms at the default timing (sync-limit 6),
        // 15 times in 3 s. Demand 10, one per 300 ms: a node that misses its ticks under
        // emulation lets the file's lease run out between refreshes.
        assert!(
            g.len() >= 10,
            "{}",
            c.report(format!(
                "node {id} {} refreshed its state file only {} times in {HOLD:?}: it does \
                     not keep its 50 ms tick",
                arch(*id),
                g.len()
            ))
        );
    }

    // 2. SIGKILL the leader's qemu process (our own child, by PID): the other emulated node
    // (zxid 1) takes over with a larger epoch, the x86_64 node follows it.
    let l2 = if l1 == AARCH64 { ARMV7 } else { AARCH64 };
    let killed_pid = c.node(l1).pid().expect("leader runs");
    c.kill(l1).expect("SIGKILL the leader");
    let (leader, e2, took) = agree(&c, FAILOVER, "failover after SIGKILL");
    assert_all_alive(&mut c);
    println!(
        "mixed: SIGKILL of leader {l1} {} (pid {killed_pid}): {l2} {} leads epoch {e2} after {:.1} ms",
        arch(l1),
        arch(l2),
        ms(took)
    );
    assert_eq!(leader, l2, "{}", c.report("failover leader"));
    assert!(e2 > e1, "{}", c.report(format!("epoch {e2} after {e1}")));
    hold(&mut c, (l2, e2), "after the first failover");

    // 3. Restart the killed node: it follows the established leader instead of usurping it.
    c.start(l1).expect("restart the killed node");
    let (leader, epoch, took) = agree(&c, COLD, "rejoin of the killed leader");
    assert_all_alive(&mut c);
    println!(
        "mixed: restarted {l1} {} rejoined as follower of {leader} epoch {epoch} after {:.1} ms",
        arch(l1),
        ms(took)
    );
    assert_eq!((leader, epoch), (l2, e2), "{}", c.report("rejoin"));
    hold(&mut c, (l2, e2), "after the rejoin");

    // 4. SIGKILL the second leader (the other architecture): the restarted node leads now.
    c.kill(l2).expect("SIGKILL the second leader");
    let (leader, e3, took) = agree(&c, FAILOVER, "second failover");
    assert_all_alive(&mut c);
    println!(
        "mixed: SIGKILL of leader {l2} {}: {leader} {} leads epoch {e3} after {:.1} ms",
        arch(l2),
        arch(leader),
        ms(took)
    );
    assert_eq!(leader, l1, "{}", c.report("second failover leader"));
    assert!(e3 > e2, "{}", c.report(format!("epoch {e3} after {e2}")));
    let gaps = hold(&mut c, (l1, e3), "after the second failover");
    print_ticks("mixed: after two failovers", &gaps);
    println!("mixed: whole scenario {:.1} s", t0.elapsed().as_secs_f64());
}
