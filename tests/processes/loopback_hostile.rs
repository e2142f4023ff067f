//! A hostile LAN with real `votecast run` processes on `lo`: authenticated clusters, key
//! rotation, a node with the wrong key, two processes with one id, and a flood of 100,000
//! forged, tampered, replayed and garbage frames during an election and a failover.
//!
//! Same rules as the `loopback` suite: each test has its own temporary directory and group
//! port on `lo`, TTL 1; every wait is bounded; every process we start is killed and reaped
//! when its cluster is dropped. Figures are printed (`-- --nocapture`).

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use votecast::cluster::{LocalCluster, TempDir};
use votecast::daemon::state_file::read_state_file;
use votecast_core::wire::{self, Flags, Packet, Repr, ServerState, Vote, FRAME_LEN};

const EXE: &str = env!("CARGO_BIN_EXE_votecast");
const ELECT: Duration = Duration::from_secs(10);

/// Two strong test keys (hex of 32 bytes).
const KEY_A: &str = "8a1f03c477925ee019d62ba841fc6d30950eb75ac26813ef842d79a136db50cb";
const KEY_B: &str = "3c9e51d0a7f2846b1e05c93a72db6f18e4a0295d7bc1f36a08e59d42c7b1306f";

fn write_key_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write key file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    path
}

fn cluster(voters: u64) -> LocalCluster {
    LocalCluster::new(Path::new(EXE), voters, 0).expect("prepare a local cluster")
}

fn agree(c: &LocalCluster, what: &str) -> (u64, u64, Duration) {
    c.await_agreement(ELECT)
        .unwrap_or_else(|| panic!("{}", c.report(format!("{what}: no agreement"))))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

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

/// A signed cluster elects and fails over like an unsigned one.
/// Rotation (auth module docs): old key only → both, old signs → both, new signs → new
/// only, one node at a time; every step keeps one agreed leader.
#[test]
fn authenticated_cluster_elects_and_rotates_keys_one_node_at_a_time() {
    let mut c = cluster(3);
    let keys = c.dir.path().to_path_buf();
    let steps = [
        write_key_file(&keys, "step0", &format!("1 {KEY_A}\n")),
        write_key_file(&keys, "step1", &format!("1 {KEY_A}\n2 {KEY_B}\n")),
        write_key_file(&keys, "step2", &format!("2 {KEY_B}\n1 {KEY_A}\n")),
        write_key_file(&keys, "step3", &format!("2 {KEY_B}\n")),
    ];
    for id in c.ids() {
        c.set_extra_args(id, ["--key-file", steps[0].to_str().unwrap()]);
    }
    c.start_all().unwrap();
    let (leader, epoch, took) = agree(&c, "signed cold start");
    println!(
        "signed cold start: leader {leader} epoch {epoch} in {:.1} ms",
        ms(took)
    );
    assert_eq!(leader, 3, "{}", c.report("FLE: the highest id wins"));
    assert!(c.log(1).contains("authentication on: signing with key 1"));

    let mut last_epoch = epoch;
    for (step, file) in steps.iter().enumerate().skip(1) {
        for id in c.ids() {
            c.terminate(id, Duration::from_secs(5)).unwrap();
            c.set_extra_args(id, ["--key-file", file.to_str().unwrap()]);
            c.start(id).unwrap();
            let (leader, epoch, took) = agree(&c, &format!("rotation step {step}, node {id}"));
            println!(
                "rotation step {step}, node {id} restarted: leader {leader} epoch {epoch} ({:.1} ms)",
                ms(took)
            );
            assert!(epoch >= last_epoch, "epochs never go back");
            last_epoch = epoch;
        }
    }
    for id in c.ids() {
        let log = c.log(id);
        assert!(
            !log.contains("bad authentication tag") && !log.contains("unknown key id"),
            "{}",
            c.report(format!("node {id} dropped a frame during the rotation"))
        );
    }
    assert!(c.log(1).contains("signing with key 2"));
}

/// A node whose key differs cannot take part: its frames are dropped (and logged) by the
/// others, theirs by it; the two with the right key still elect (2 of 3 is a quorum).
#[test]
fn a_node_with_another_key_is_shut_out_and_told_why() {
    let mut c = cluster(3);
    let dir = c.dir.path().to_path_buf();
    let good = write_key_file(&dir, "good", &format!("{KEY_A}\n"));
    let other = write_key_file(&dir, "other", &format!("{KEY_B}\n"));
    c.set_extra_args(1, ["--key-file", good.to_str().unwrap()]);
    c.set_extra_args(2, ["--key-file", good.to_str().unwrap()]);
    c.set_extra_args(3, ["--key-file", other.to_str().unwrap()]);
    c.start_all().unwrap();
    let elected = c.wait_until(ELECT, |c| {
        c.state(2).is_some_and(|s| s.state == "LEADING")
            && c.state(1).is_some_and(|s| s.state == "FOLLOWING")
    });
    assert!(elected.is_some(), "{}", c.report("1 and 2 should elect 2"));
    // Node 3 would win FLE if it were heard; it is not, and it never leads.
    std::thread::sleep(Duration::from_millis(500));
    let s3 = c.state(3).expect("node 3 state");
    assert_eq!(s3.state, "LOOKING", "{}", c.report("node 3 must stay out"));
    for id in [1, 2] {
        assert!(
            c.log(id).contains("bad authentication tag"),
            "{}",
            c.report(format!("node {id} should log the dropped frames"))
        );
    }
}

/// Two boards with one id. The second process with id 2 (its own data dir) is
/// detected by at least one of the two, which reports it in its state file, logs an
/// error and does not lead; the cluster keeps one leader throughout.
#[test]
fn two_processes_with_one_id_are_detected_and_never_both_lead() {
    let mut c = cluster(3);
    c.start_all().unwrap();
    let (leader, _, _) = agree(&c, "cold start");
    assert_eq!(leader, 3);
    let scratch = TempDir::new("votecast-dup").unwrap();
    let twin_state = scratch.path().join("state.json");
    let twin_log = scratch.path().join("log.txt");
    let mut twin = Twin(
        Command::new(EXE)
            .args(["run", "--id", "2", "--voters", "1,2,3", "--interface", "lo"])
            .args(["--group", &c.group.to_string()])
            .arg("--data-dir")
            .arg(scratch.path().join("data"))
            .arg("--state-file")
            .arg(&twin_state)
            .stdin(Stdio::null())
            // env_logger writes to stderr: that is where the twin's error line goes.
            .stdout(Stdio::null())
            .stderr(fs::File::create(&twin_log).unwrap())
            .spawn()
            .expect("spawn the twin"),
    );
    let detected = c.wait_until(Duration::from_secs(5), |c| {
        c.state(2).is_some_and(|s| s.duplicate_id)
            || read_state_file(&twin_state).is_ok_and(|s| s.duplicate_id)
    });
    let twin_log_text = || fs::read_to_string(&twin_log).unwrap_or_default();
    assert!(
        detected.is_some(),
        "{}\ntwin:\n{}",
        c.report("no process noticed the shared id"),
        twin_log_text()
    );
    println!("shared id detected after {:.1} ms", ms(detected.unwrap()));
    // For two seconds, sample who says LEADING: never two at once, and never an id-2 process.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        let mut leading: Vec<u64> = c
            .ids()
            .into_iter()
            .filter(|&id| c.state(id).is_some_and(|s| s.state == "LEADING"))
            .collect();
        if read_state_file(&twin_state).is_ok_and(|s| s.state == "LEADING") {
            leading.push(2);
        }
        assert!(
            leading.len() <= 1,
            "{}",
            c.report(format!("{leading:?} lead"))
        );
        assert!(
            !leading.contains(&2),
            "{}",
            c.report("an id-2 process leads")
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let logs = c.log(2) + &twin_log_text();
    assert!(
        logs.contains("another board sends frames with our id"),
        "{}",
        c.report("no error logged")
    );
    // The impostor leaves: the cluster (still led by 3) agrees again, id 2 included.
    twin.kill();
    let (leader, _, took) = agree(&c, "after the twin left");
    println!("agreement after the twin left: {:.1} ms", ms(took));
    assert_eq!(leader, 3);
}

/// A child that is killed and reaped on drop.
struct Twin(Child);

impl Twin {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // /proc reports clock ticks of USER_HZ, which Linux fixes at 100 for user space.
    Some(ticks / 100.0)
}

/// What the flood thread sent, by kind.
#[derive(Debug, Default, Clone, Copy)]
struct FloodCounts {
    garbage: u64,
    bad_crc: u64,
    other_cluster: u64,
    unsigned: u64,
    bad_tag: u64,
    replayed: u64,
}

impl FloodCounts {
    fn total(&self) -> u64 {
        self.garbage
            + self.bad_crc
            + self.other_cluster
            + self.unsigned
            + self.bad_tag
            + self.replayed
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn flood_frame(
    rng: &mut XorShift,
    captured: &[[u8; FRAME_LEN]],
    counts: &mut FloodCounts,
) -> Vec<u8> {
    let sender = 1 + rng.next() % 5;
    let tempting = Repr {
        state: if rng.next() % 2 == 0 {
            ServerState::Looking
        } else {
            ServerState::Leading
        },
        flags: Flags::ESTABLISHED,
        key_id: 1,
        cluster: 0,
        sender,
        incarnation: u32::MAX,
        sequence: rng.next(),
        vote: Vote {
            leader: 5,
            zxid: u64::MAX,
            peer_epoch: u64::MAX,
            ineligible: false,
        },
        round: 1 << 40,
        accepted_epoch: u64::MAX - 1,
        epoch: u64::MAX - 1,
        echo: rng.next(),
        auth_tag: [0x5a; 16],
    };
    let mut bytes = [0u8; FRAME_LEN];
    wire::emit_datagram(&tempting, &mut bytes).expect("fits");
    match rng.next() % 100 {
        0..=19 => {
            counts.garbage += 1;
            let len = (rng.next() % 200) as usize;
            return (0..len).map(|_| rng.next() as u8).collect();
        }
        20..=34 => {
            counts.bad_crc += 1;
            bytes[104] ^= 0xff;
        }
        35..=44 => {
            counts.other_cluster += 1;
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_cluster(77);
            packet.fill_checksum();
        }
        45..=59 => {
            counts.unsigned += 1;
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.set_key_id(0);
            packet.set_auth_tag([0; 16]);
            packet.fill_checksum();
        }
        60..=79 => counts.bad_tag += 1,
        _ if captured.is_empty() => counts.bad_tag += 1,
        _ => {
            counts.replayed += 1;
            bytes = captured[(rng.next() % captured.len() as u64) as usize];
        }
    }
    bytes.to_vec()
}

/// A flood of 100,000 garbage or forged frames while a cluster elects and fails over
/// leaves the outcome unchanged and the agents' CPU bounded.
/// Five signed nodes; the flood (garbage, bad CRC, other cluster, unsigned, bad tag and
/// replays of real signed frames) runs at about 10,000 frames/s through a cold start, a
/// SIGKILL failover and the old leader's rejoin. FLE with equal zxids fixes the outcome
/// (5 leads; after its death 4; 5 comes back and follows 4), so "unchanged" is exact.
#[test]
fn flood_of_forged_and_replayed_frames_changes_nothing() {
    const FLOOD: u64 = 100_000;
    const RATE_PER_MS: u64 = 10;
    let mut c = cluster(5);
    let dir = c.dir.path().to_path_buf();
    let key = write_key_file(&dir, "key", &format!("{KEY_A}\n"));
    for id in c.ids() {
        c.set_extra_args(id, ["--key-file", key.to_str().unwrap()]);
    }

    // The flooder listens to the group too: it replays the cluster's own signed frames,
    // captured moments earlier (up to the last 500), as an attacker on the LAN would.
    let listener: std::net::UdpSocket =
        votecast::driver::open_multicast_socket("lo", c.group, true)
            .expect("listen to the group")
            .into();
    listener.set_nonblocking(true).unwrap();

    let key_ring = votecast_core::auth::parse_key_file(&format!("{KEY_A}\n")).unwrap();
    let sender = loopback_sender().expect("sender socket");
    let group = SockAddr::from(c.group);
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            let mut counts = FloodCounts::default();
            let mut captured: Vec<[u8; FRAME_LEN]> = Vec::new();
            let mut buf = [0u8; 256];
            let start = Instant::now();
            while counts.total() < FLOOD && !stop.load(Ordering::Relaxed) {
                let due = start.elapsed().as_millis() as u64 * RATE_PER_MS;
                // Our own flood comes back too; keep only the cluster's valid frames.
                while let Ok(n) = listener.recv(&mut buf) {
                    let frame = &buf[..n];
                    if n == FRAME_LEN
                        && wire::parse_datagram(frame, 0).is_ok_and(|f| f.incarnation != u32::MAX)
                        && key_ring.verify(&Packet::new_unchecked(frame)).is_ok()
                    {
                        if captured.len() == 500 {
                            captured.remove(0);
                        }
                        captured.push(frame.try_into().expect("FRAME_LEN bytes"));
                    }
                }
                while counts.total() < due.min(FLOOD) {
                    let bytes = flood_frame(&mut rng, &captured, &mut counts);
                    let _ = sender.send_to(&bytes, &group);
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            (counts, start.elapsed())
        })
    };
    let flood_started = Instant::now();

    c.start_all().unwrap();
    let pids: Vec<(u64, u32)> = c
        .ids()
        .into_iter()
        .map(|id| (id, c.node(id).pid().unwrap()))
        .collect();
    let cpu_before: Vec<f64> = pids
        .iter()
        .map(|&(_, pid)| cpu_seconds(pid).unwrap_or(0.0))
        .collect();
    let (leader, epoch1, took) = agree(&c, "cold start under the flood");
    println!(
        "cold start under flood: leader {leader} epoch {epoch1} in {:.1} ms",
        ms(took)
    );
    assert_eq!(leader, 5, "{}", c.report("FLE: highest id"));

    std::thread::sleep(Duration::from_millis(1_500));
    c.kill(5).unwrap();
    let (leader, epoch2, took) = agree(&c, "failover under the flood");
    println!(
        "failover under flood: leader {leader} epoch {epoch2} in {:.1} ms",
        ms(took)
    );
    assert_eq!(leader, 4, "{}", c.report("FLE: highest surviving id"));
    assert!(epoch2 > epoch1);

    std::thread::sleep(Duration::from_millis(1_000));
    c.start(5).unwrap();
    let rejoined = c.wait_until(ELECT, |c| {
        c.agreed_leader()
            .is_some_and(|(l, e)| (l, e) == (4, epoch2))
            && c.state(5).is_some_and(|s| s.state == "FOLLOWING")
    });
    assert!(
        rejoined.is_some(),
        "{}",
        c.report("old leader did not rejoin 4")
    );
    println!(
        "old leader rejoined as follower in {:.1} ms",
        ms(rejoined.unwrap())
    );

    // Until the flood ends, sample every 10 ms: the agreed view must not change.
    let mut views = std::collections::BTreeSet::new();
    let mut samples = 0;
    while !flood.is_finished() {
        if let Some(view) = c.agreed_leader() {
            views.insert(view);
        }
        samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let (counts, flood_time) = flood.join().expect("flood thread");
    stop.store(true, Ordering::Relaxed);
    let elapsed = flood_started.elapsed().as_secs_f64();
    println!(
        "flood: {} frames in {:.2} s ({:.0}/s): {counts:?}",
        counts.total(),
        flood_time.as_secs_f64(),
        counts.total() as f64 / flood_time.as_secs_f64()
    );
    println!("agreed views in {samples} samples after the rejoin: {views:?}");
    // CPU of the nodes that ran through the whole flood (1..=4).
    let mut worst = 0.0f64;
    for (i, &(id, pid)) in pids.iter().enumerate().take(4) {
        let used = cpu_seconds(pid).unwrap_or(0.0) - cpu_before[i];
        let share = used / elapsed * 100.0;
        println!("node {id}: {used:.2} s CPU over {elapsed:.2} s = {share:.1} % of a core");
        worst = worst.max(share);
    }
    println!(
        "load average: {}",
        fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    assert_eq!(
        counts.total(),
        FLOOD,
        "the whole flood was sent while the cluster ran"
    );
    assert_eq!(
        views.into_iter().collect::<Vec<_>>(),
        vec![(4, epoch2)],
        "{}",
        c.report("the flood changed the agreed leader")
    );
    assert_eq!(
        c.agreed_leader(),
        Some((4, epoch2)),
        "{}",
        c.report("after the flood")
    );
    // Generous: a 2-core CI machine runs five agents, the flooder and other tests.
    assert!(
        worst < 60.0,
        "an agent used {worst:.1} % of a core during the flood"
    );

    // Every forged frame was counted as dropped, never acted on: the stop line of each
    // node's log has the counters.
    for id in [1, 2, 3, 4] {
        c.terminate(id, Duration::from_secs(5)).unwrap();
        let log = c.log(id);
        let line = log
            .lines()
            .rev()
            .find(|l| l.contains("stopped; frames received"))
            .unwrap_or_else(|| panic!("{}", c.report(format!("node {id}: no stop line"))));
        println!(
            "node {id}: {}",
            &line[line.find("frames received").unwrap()..]
        );
        let count = |name: &str| -> u64 {
            let at = line
                .find(name)
                .unwrap_or_else(|| panic!("{name} in {line}"))
                + name.len();
            line[at..]
                .trim_start()
                .split(|ch: char| !ch.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {line}"))
        };
        let rejected = count("malformed")
            + count("other cluster")
            + count("unauthenticated")
            + count("bad tags");
        let forged = counts.garbage
            + counts.bad_crc
            + counts.other_cluster
            + counts.unsigned
            + counts.bad_tag;
        // The kernel may drop some datagrams when a receive buffer overflows; most arrive.
        assert!(
            rejected >= forged / 2 && rejected <= forged,
            "node {id}: {rejected} rejected of {forged} forged: {line}"
        );
    }
}

/// Bad keys and key files: exit 2, naming the flag or key and the problem; nothing starts.
#[test]
fn bad_key_files_exit_2_with_the_problem_named() {
    let scratch = TempDir::new("votecast-keys").unwrap();
    let dir = scratch.path();
    let weak = write_key_file(dir, "weak", &"00".repeat(32));
    let short = write_key_file(dir, "short", &KEY_A[..40]);
    let malformed = write_key_file(dir, "malformed", "1 2 3\n");
    let not_a_key = write_key_file(dir, "words", "correct horse battery staple\n");
    let empty = write_key_file(dir, "empty", "# nothing\n");
    let three = write_key_file(dir, "three", &format!("1 {KEY_A}\n2 {KEY_B}\n3 {KEY_A}\n"));
    let open = dir.join("world-readable");
    fs::write(&open, KEY_A).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o644)).unwrap();
    let config = dir.join("config.toml");
    fs::write(&config, format!("key-file = \"{}\"\n", weak.display())).unwrap();
    let config_type = dir.join("config-type.toml");
    fs::write(&config_type, "key-file = 7\n").unwrap();
    let missing = dir.join("missing");

    let cases: Vec<(Vec<String>, &str, &str)> = vec![
        (flag(&weak), "--key-file", "weak"),
        (flag(&short), "--key-file", "at least 32"),
        (flag(&malformed), "--key-file", "line 1"),
        (flag(&not_a_key), "--key-file", "line 1"),
        (flag(&empty), "--key-file", "no key"),
        (flag(&three), "--key-file", "line 3"),
        (flag(&open), "--key-file", "readable by every user"),
        (flag(&missing), "--key-file", "cannot read"),
        (
            vec!["--key-file".into(), String::new()],
            "--key-file",
            "a value is required",
        ),
        (
            vec!["--config".into(), config.display().to_string()],
            "config key \"key-file\"",
            "weak",
        ),
        (
            vec!["--config".into(), config_type.display().to_string()],
            "key-file",
            "string",
        ),
    ];
    for (extra, named, problem) in cases {
        let out = Command::new(EXE)
            .args(["run", "--id", "1", "--voters", "1,2,3", "--interface", "lo"])
            .args(&extra)
            .output()
            .expect("run votecast");
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{extra:?}: exit {:?}: {}", out.status.code(), stderr.trim());
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(
            stderr.contains(named),
            "{extra:?} should name {named}: {stderr}"
        );
        assert!(
            stderr.contains(problem),
            "{extra:?} should say {problem}: {stderr}"
        );
        assert!(
            !stderr.contains(KEY_A) && !stderr.contains(&KEY_A[..40]),
            "secret leaked: {stderr}"
        );
    }
}

fn flag(path: &Path) -> Vec<String> {
    vec!["--key-file".into(), path.display().to_string()]
}
