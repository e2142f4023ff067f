//! The daemon as systemd and Prometheus see it: a fake `NOTIFY_SOCKET` receives READY,
//! STATUS, WATCHDOG (none while the process is stopped), RELOADING/READY and STOPPING; the
//! `--metrics-file` follows the election and passes `promtool check metrics`; the shipped
//! units pass `systemd-analyze verify`.
//!
//! Tools: `promtool` (Debian package `prometheus`) and `systemd-analyze` (package
//! `systemd`) are installed by `.ci/run`. A test whose tool is missing fails when `CI` or
//! `VOTECAST_REQUIRE_TOOLS=1` is set; elsewhere it prints that the tool's check was not
//! run, and still asserts everything else.

use std::fs;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use votecast::cluster::{LocalCluster, TempDir};

const EXE: &str = env!("CARGO_BIN_EXE_votecast");
const ELECT: Duration = Duration::from_secs(10);
/// The watchdog interval given to the daemon; it pets every half of it.
const WATCHDOG_USEC: u64 = 400_000;
const PET: Duration = Duration::from_micros(WATCHDOG_USEC / 2);

fn cluster(voters: u64) -> LocalCluster {
    LocalCluster::new(Path::new(EXE), voters, 0).expect("prepare a local cluster")
}

/// Whether a missing tool fails the test (CI) or only skips its own check.
fn tools_required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
        || std::env::var("VOTECAST_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
}

/// The tool's path, or `None` (after saying so) when it is missing and not required.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = format!("{name} not found (apt-get install {package}); .ci/run installs it");
        assert!(!tools_required(), "{msg}");
        eprintln!("NOT CHECKED: {msg}");
    }
    found
}

/// The fake service manager: the socket, and every message with its arrival time.
struct Manager {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<(Instant, String)>,
}

impl Manager {
    fn bind(dir: &TempDir) -> Manager {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        Manager {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// The next message within `limit`, if any.
    fn recv(&mut self, limit: Duration) -> Option<String> {
        let limit = limit.max(Duration::from_millis(1));
        self.socket.set_read_timeout(Some(limit)).expect("timeout");
        let mut buf = [0u8; 4096];
        match self.socket.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push((Instant::now(), text.clone()));
                Some(text)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }

    /// Receives until a message satisfies `want` (bounded by `limit`); returns it.
    fn until(&mut self, limit: Duration, want: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            if let Some(m) = self.recv(left) {
                if want(&m) {
                    return Some(m);
                }
            }
        }
    }

    /// Everything received, for failure messages.
    fn transcript(&self) -> String {
        let Some((first, _)) = self.seen.first() else {
            return "nothing received\n".into();
        };
        self.seen
            .iter()
            .map(|(t, m)| {
                let ms = t.duration_since(*first).as_secs_f64() * 1000.0;
                format!("{ms:9.1} ms  {}\n", m.trim_end().replace('\n', " | "))
            })
            .collect()
    }
}

/// Starts node `id` of `c` with the notification environment set, as systemd would.
fn start_notified(c: &mut LocalCluster, id: u64, manager: &Manager) {
    let mut cmd = c.command(id);
    let node = c.nodes.iter_mut().find(|n| n.id == id).expect("node");
    let log = fs::File::create(&node.log_file).expect("log file");
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .env("RUST_LOG", "info")
        .env("NOTIFY_SOCKET", &manager.path)
        .env("WATCHDOG_USEC", WATCHDOG_USEC.to_string())
        // systemd sets it to the main pid, which the test cannot know before the spawn;
        // without it the watchdog is meant for the process that reads WATCHDOG_USEC.
        .env_remove("WATCHDOG_PID");
    node.child = Some(cmd.spawn().expect("spawn votecast"));
}

/// Gaps between consecutive `WATCHDOG=1` messages received after `from`.
fn watchdog_gaps(m: &Manager, from: Instant) -> Vec<Duration> {
    let times: Vec<Instant> = m
        .seen
        .iter()
        .filter(|(t, msg)| *t >= from && msg == "WATCHDOG=1\n")
        .map(|(t, _)| *t)
        .collect();
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

/// A failing check's message: what, the messages received, the nodes' states and logs.
fn report(m: &Manager, c: &LocalCluster, what: &str) -> String {
    c.report(format!("{what}\nnotify messages:\n{}", m.transcript()))
}

#[test]
fn a_fake_notify_socket_sees_ready_status_watchdog_reload_and_stop() {
    let mut c = cluster(3);
    let dir = TempDir::new("votecast-notify-test").expect("temp dir");
    let mut m = Manager::bind(&dir);
    let hook_env = c.node(1).dir.join("hook-env");
    c.set_extra_args(
        1,
        [
            "--on-change".to_string(),
            format!(
                "echo \"${{NOTIFY_SOCKET:-unset}} ${{WATCHDOG_USEC:-unset}}\" >> '{}'",
                hook_env.display()
            ),
        ],
    );
    start_notified(&mut c, 1, &m);
    ready_then_status(&mut m, &mut c);
    watchdog_at_its_rate(&mut m, &c);
    no_watchdog_while_stopped(&mut m, &c);

    // SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1.
    c.signal(1, Signal::SIGHUP).expect("SIGHUP");
    let reloading = m.until(ELECT, |msg| msg.starts_with("RELOADING=1\n"));
    let reloading = reloading.unwrap_or_else(|| panic!("{}", report(&m, &c, "no RELOADING=1")));
    assert!(
        reloading.contains("\nMONOTONIC_USEC="),
        "{}",
        report(&m, &c, "RELOADING=1 without MONOTONIC_USEC")
    );
    let ready = m.until(ELECT, |msg| msg.starts_with("READY=1\n"));
    assert!(
        ready.is_some(),
        "{}",
        report(&m, &c, "no READY=1 after the reload")
    );

    // Hooks do not inherit the notification socket or the watchdog.
    let hook_lines = fs::read_to_string(&hook_env).unwrap_or_default();
    assert!(
        !hook_lines.is_empty() && hook_lines.lines().all(|l| l == "unset unset"),
        "{}",
        report(&m, &c, &format!("hook environment: {hook_lines:?}"))
    );

    // SIGTERM: STOPPING=1 at the start of the handover, then exit 0.
    c.signal(1, Signal::SIGTERM).expect("SIGTERM");
    let stopping = m.until(ELECT, |msg| msg.starts_with("STOPPING=1\n"));
    assert!(stopping.is_some(), "{}", report(&m, &c, "no STOPPING=1"));
    let code = c.wait_exit(1, ELECT).expect("node running");
    assert_eq!(code, Some(0), "{}", report(&m, &c, "exit status"));
}

/// READY=1 first, once the state file exists, with the status; then, with nodes 2 and 3
/// started, STATUS with the role, leader and epoch the cluster agreed on.
fn ready_then_status(m: &mut Manager, c: &mut LocalCluster) {
    let ready = m.until(ELECT, |msg| msg.starts_with("READY=1\n"));
    assert!(ready.is_some(), "{}", report(m, c, "no READY=1"));
    assert!(
        c.node(1).state_file.exists(),
        "{}",
        report(m, c, "READY before the state file")
    );
    assert!(
        m.seen[0]
            .1
            .starts_with("READY=1\nSTATUS=LOOKING leader=none epoch=none"),
        "{}",
        report(m, c, "READY is the first message and carries the status")
    );
    c.start(2).expect("start 2");
    c.start(3).expect("start 3");
    let (leader, epoch, _) = c
        .await_agreement(ELECT)
        .unwrap_or_else(|| panic!("{}", report(m, c, "no agreement")));
    let role = if leader == 1 { "LEADING" } else { "FOLLOWING" };
    let expected = format!("STATUS={role} leader={leader} epoch={epoch}\n");
    let status = m.until(ELECT, |msg| msg == expected);
    assert!(
        status.is_some(),
        "{}",
        report(m, c, &format!("no {expected:?}"))
    );
}

/// WATCHDOG=1 every half WATCHDOG_USEC over 1.5 s.
fn watchdog_at_its_rate(m: &mut Manager, c: &LocalCluster) {
    let from = Instant::now();
    while from.elapsed() < Duration::from_millis(1500) {
        m.recv(Duration::from_millis(50));
    }
    let gaps = watchdog_gaps(m, from);
    let n = gaps.len() + 1;
    let what = format!("{n} WATCHDOG=1 in 1.5 s, expected ~7 at {PET:?}");
    assert!((4..=9).contains(&n), "{}", report(m, c, &what));
    // Never early: the loop pets when it is due, not before. Received times jitter by the
    // test's own scheduling, which shortens one gap only by lengthening its neighbour, so
    // pairs of gaps are held to the rate. Late by a loaded machine's stalls at most.
    let early = gaps.iter().any(|g| *g < PET / 2)
        || gaps
            .windows(2)
            .any(|w| w[0] + w[1] < PET * 2 - Duration::from_millis(30));
    let late = gaps.iter().any(|g| *g > Duration::from_secs(1));
    let what = format!("watchdog gaps {gaps:?}");
    assert!(!early && !late, "{}", report(m, c, &what));
    eprintln!("watchdog: {n} pets in 1.5 s at {PET:?}; gaps {gaps:?}");
}

/// Stopped, the loop cannot pet the watchdog; continued, it does again.
fn no_watchdog_while_stopped(m: &mut Manager, c: &LocalCluster) {
    c.signal(1, Signal::SIGSTOP).expect("SIGSTOP");
    std::thread::sleep(Duration::from_millis(50));
    while m.recv(Duration::from_millis(1)).is_some() {} // sent before the stop
    let stopped = Instant::now();
    let during = m.until(Duration::from_millis(1200), |_| true);
    let what = format!("{during:?} while SIGSTOPped");
    assert!(during.is_none(), "{}", report(m, c, &what));
    c.signal(1, Signal::SIGCONT).expect("SIGCONT");
    let resumed = m.until(Duration::from_secs(2), |msg| msg == "WATCHDOG=1\n");
    assert!(
        resumed.is_some(),
        "{}",
        report(m, c, "no WATCHDOG=1 after SIGCONT")
    );
    eprintln!("watchdog: none for {:?} while stopped", stopped.elapsed());
}

/// `name`'s value in a metrics file (the first sample line that starts with it).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_metrics_file_follows_the_election_and_passes_promtool() {
    let mut c = cluster(3);
    for id in c.ids() {
        let path = c.node(id).dir.join("votecast.prom");
        c.set_extra_args(
            id,
            ["--metrics-file".to_string(), path.display().to_string()],
        );
    }
    c.start_all().expect("start");
    let (leader, epoch, _) = c
        .await_agreement(ELECT)
        .unwrap_or_else(|| panic!("{}", c.report("no agreement")));
    let files: Vec<PathBuf> = c
        .ids()
        .iter()
        .map(|&id| c.node(id).dir.join("votecast.prom"))
        .collect();
    let metrics = |id: u64| fs::read_to_string(&files[id as usize - 1]);
    // Every file says what the state file says, within a second (written on the change).
    let agreed = c.wait_until(ELECT, |c| {
        c.ids().iter().all(|&id| {
            let role = if id == leader { "leading" } else { "following" };
            metrics(id).is_ok_and(|t| {
                t.contains(&format!("votecast_state{{state=\"{role}\"}} 1\n"))
                    && sample(&t, "votecast_leader_id") == Some(leader as f64)
                    && sample(&t, "votecast_epoch") == Some(epoch as f64)
                    // All three voters heard, this one included.
                    && sample(&t, "votecast_peers_heard") == Some(3.0)
            })
        })
    });
    let first = metrics(leader).unwrap_or_default();
    assert!(
        agreed.is_some(),
        "{}",
        c.report(format!("metrics never agreed:\n{first}"))
    );
    let lease = sample(&first, "votecast_lease_remaining_seconds").unwrap_or(-1.0);
    assert!(lease > 0.0 && lease < 1.0, "lease {lease}:\n{first}");
    assert!(
        sample(&first, "votecast_elections_started_total") >= Some(1.0),
        "{first}"
    );

    // Rewritten about once a second while nothing changes: the counters move on.
    let sent = |t: &str| sample(t, "votecast_frames_sent_total").unwrap_or(0.0);
    let before = metrics(2).unwrap_or_default();
    let rewritten = c.wait_until(Duration::from_secs(3), |_| {
        metrics(2).is_ok_and(|t| sent(&t) > sent(&before))
    });
    assert!(
        rewritten.is_some(),
        "{}",
        c.report("metrics file not rewritten in 3 s")
    );
    eprintln!("metrics file of node 2 rewritten after {rewritten:?}");
    let names: Vec<String> = fs::read_dir(&c.node(2).dir)
        .expect("node dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".prom.tmp")), "{names:?}");

    promtool_accepts(&c);

    // A leader that hands over says so in its last file.
    let code = c.terminate(leader, ELECT).expect("terminate");
    assert_eq!(code, Some(0));
    let last = metrics(leader).unwrap_or_default();
    assert!(
        last.contains("votecast_state{state=\"leading\"} 0\n"),
        "{}",
        c.report(format!("after the handover:\n{last}"))
    );
}

/// `promtool check metrics` accepts every node's file without a lint.
fn promtool_accepts(c: &LocalCluster) {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    for id in c.ids() {
        let path = c.node(id).dir.join("votecast.prom");
        let out = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(fs::File::open(&path).expect("metrics file"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool check metrics on node {id}: {:?}\n{}{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            fs::read_to_string(&path).unwrap_or_default()
        );
    }
}

/// Every shipped unit passes `systemd-analyze verify` without a warning about itself. The
/// units name `/usr/local/bin/votecast`, which verify wants to exist: the copies checked
/// here name the binary under test instead.
#[test]
fn the_shipped_units_pass_systemd_analyze_verify() {
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
    let mut units: Vec<PathBuf> = fs::read_dir(&boards)
        .expect("boards/")
        .filter_map(|e| Some(e.ok()?.path().join("votecast.service")))
        .filter(|p| p.is_file())
        .collect();
    units.sort();
    assert!(units.len() >= 4, "{units:?}");
    // The Debian package's unit (packaging/debian/), which names /usr/bin/votecast.
    units.push(
        boards
            .with_file_name("packaging")
            .join("debian/votecast.service"),
    );
    for unit in &units {
        let text = fs::read_to_string(unit).expect("unit");
        for line in [
            "Type=notify\n",
            "NotifyAccess=main\n",
            "WatchdogSec=",
            "ExecReload=",
        ] {
            assert!(text.contains(line), "{}: no {line}", unit.display());
        }
    }
    let Some(analyze) = tool("systemd-analyze", "systemd") else {
        return;
    };
    let dir = TempDir::new("votecast-units").expect("temp dir");
    for unit in &units {
        let board = unit.parent().and_then(Path::file_name).expect("board");
        let copy_dir = dir.join(board);
        fs::create_dir(&copy_dir).expect("dir");
        let copy = copy_dir.join("votecast.service");
        let text = fs::read_to_string(unit).expect("unit");
        let text = text
            .replace("/usr/local/bin/votecast", EXE)
            .replace("/usr/bin/votecast", EXE);
        fs::write(&copy, text).expect("copy");
        verify(&analyze, &copy, &unit.display().to_string());
        // The same unit with the floating-IP drop-in, read from the unit's directory.
        let drop_in = copy_dir.join("votecast.service.d");
        fs::create_dir(&drop_in).expect("dir");
        let vip = fs::read_to_string(boards.join("votecast-vip.conf")).expect("drop-in");
        let vip = vip.replace("/usr/local/bin/votecast", EXE);
        fs::write(drop_in.join("vip.conf"), vip).expect("copy");
        verify(
            &analyze,
            &copy,
            &format!("{} + votecast-vip.conf", unit.display()),
        );
    }
}

/// `systemd-analyze verify UNIT` exits 0 and says nothing about the unit or its drop-ins.
fn verify(analyze: &Path, unit: &Path, what: &str) {
    let out = Command::new(analyze)
        .arg("verify")
        .arg(unit)
        .output()
        .expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It exits 0 for many problems (an unknown key, a bad value) and only warns.
    let about_unit: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("votecast.service") || l.contains("vip.conf"))
        .collect();
    assert!(
        out.status.success() && about_unit.is_empty(),
        "systemd-analyze verify {what}: {:?}\n{stderr}",
        out.status
    );
}

/// The floating-IP drop-in grants exactly what `--vip` needs, and the plain units none.
#[test]
fn the_vip_drop_in_adds_only_the_vip_capabilities() {
    let boards = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards");
    let vip = fs::read_to_string(boards.join("votecast-vip.conf")).expect("drop-in");
    for line in [
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW\n",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW\n",
        "RestrictAddressFamilies=AF_PACKET\n",
        "ExecStopPost=/usr/local/bin/votecast release-vip --config /etc/votecast/votecast.toml\n",
    ] {
        assert!(vip.contains(line), "votecast-vip.conf: no {line}");
    }
    for entry in fs::read_dir(&boards).expect("boards/") {
        let unit = entry.expect("entry").path().join("votecast.service");
        if let Ok(text) = fs::read_to_string(&unit) {
            assert!(
                text.contains("CapabilityBoundingSet=\n"),
                "{}",
                unit.display()
            );
            assert!(
                text.contains("AmbientCapabilities=\n"),
                "{}",
                unit.display()
            );
            assert!(!text.contains("AF_PACKET"), "{}", unit.display());
        }
    }
}
