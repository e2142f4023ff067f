//! The Wireshark dissector (`contrib/wireshark/votecast.lua`) against real frames: a
//! 3-voter cluster on `lo` is captured with tcpdump, and tshark with the dissector must
//! decode, for each node's last frame, the sender, state, leader, epoch and round that
//! node's state file shows, with a good CRC. Two frames this test sends itself (on `lo`,
//! to the cluster's port, with another cluster id so the nodes drop them) check the other
//! paths: an unnamed flag bit shown as "bit 7" (the highest, the last to get a name), and
//! a bad CRC flagged.
//!
//! Tools: tcpdump and tshark (Debian packages `tcpdump`, `tshark`), and capturing on `lo`
//! needs root (or CAP_NET_RAW). With `CI` set a missing tool or a failed capture fails the
//! test; elsewhere the test says it did not run. tcpdump is stopped by PID (SIGTERM, then
//! SIGKILL) in every case, and bounded by a packet count.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use votecast::cluster::LocalCluster;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");
const STATES: [&str; 4] = ["LOOKING", "FOLLOWING", "LEADING", "OBSERVING"];

fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Whether `name` runs; a missing one fails under CI, else the test is not run.
fn have(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found || !required(),
        "{name} not installed (.ci/run installs it)"
    );
    if !found {
        eprintln!("NOT RUN: {name} not installed");
    }
    found
}

/// tcpdump, stopped by PID when dropped, and the lines of its stderr.
struct Capture(Child, mpsc::Receiver<String>);

impl Capture {
    /// Stops tcpdump; its last words (the packet counts).
    fn stop(mut self) -> String {
        self.end();
        let mut said = String::new();
        while let Ok(line) = self.1.recv_timeout(Duration::from_secs(2)) {
            said.push_str(&line);
            said.push('\n');
        }
        said
    }

    fn end(&mut self) {
        let _ = kill(Pid::from_raw(self.0.id() as i32), Signal::SIGTERM);
        for _ in 0..200 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.end();
    }
}

/// Starts tcpdump on `lo` for UDP `port` into `file`; `None` if it could not capture.
fn capture(port: u16, file: &Path) -> Option<Capture> {
    let mut child = Command::new("tcpdump")
        // Immediate mode: packets are written as they come, not in blocks a timeout releases
        // (a capture stopped before that would hold none).
        .args([
            "-i",
            "lo",
            "-n",
            "-U",
            "--immediate-mode",
            "-c",
            "20000",
            "-w",
        ])
        .arg(file)
        .args(["udp", "port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let stderr = child.stderr.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let capture = Capture(child, rx);
    loop {
        match capture.1.recv_timeout(Duration::from_secs(10)) {
            Ok(line) if line.contains("listening on") => return Some(capture),
            Ok(line) => eprintln!("tcpdump: {line}"),
            Err(_) => return None,
        }
    }
}

/// A frame with cluster id 77, sender `sender`, flags `flags`; CRC right or wrong.
fn frame(sender: u64, flags: u8, good_crc: bool) -> [u8; 108] {
    let mut f = [0u8; 108];
    f[0..4].copy_from_slice(b"VCST");
    f[4] = 1;
    f[5] = 0;
    f[6] = flags;
    f[8..12].copy_from_slice(&77u32.to_be_bytes());
    f[12..20].copy_from_slice(&sender.to_be_bytes());
    f[32..40].copy_from_slice(&sender.to_be_bytes());
    f[56..64].copy_from_slice(&5u64.to_be_bytes());
    let crc = crc32fast::hash(&f[..104]) ^ u32::from(!good_crc);
    f[104..].copy_from_slice(&crc.to_be_bytes());
    f
}

#[test]
fn tshark_decodes_real_frames_like_the_state_files_say() {
    if !have("tcpdump") || !have("tshark") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/wireshark/votecast.lua");
    let mut c = LocalCluster::new(Path::new(EXE), 3, 0).expect("prepare a cluster");
    let pcap = c.dir.join("capture.pcap");
    let port = c.group.port();
    let Some(tcpdump) = capture(port, &pcap) else {
        assert!(!required(), "tcpdump could not capture on lo (root needed)");
        eprintln!("NOT RUN: tcpdump could not capture on lo (root or CAP_NET_RAW needed)");
        return;
    };
    c.start_all().expect("start");
    let agreed = c.await_agreement(Duration::from_secs(10));
    assert!(agreed.is_some(), "no agreement: {}", c.describe_states());
    // Steady state: a few heartbeats of every node after agreement.
    std::thread::sleep(Duration::from_millis(600));
    let states: Vec<_> = c
        .ids()
        .iter()
        .map(|&id| c.state(id).expect("state"))
        .collect();
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    probe
        .send_to(&frame(98, 0b1001_1001, true), ("127.0.0.1", port))
        .expect("send");
    probe
        .send_to(&frame(99, 0, false), ("127.0.0.1", port))
        .expect("send");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        c.agreed_leader(),
        agreed.map(|(l, e, _)| (l, e)),
        "changed meanwhile"
    );
    let tcpdump_said = tcpdump.stop();

    let out = Command::new("tshark")
        .arg("-X")
        .arg(format!("lua_script:{}", script.display()))
        .arg("-r")
        .arg(&pcap)
        .args(["-Y", "votecast", "-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "votecast.sender",
            "-e",
            "votecast.state",
            "-e",
            "votecast.vote.leader",
        ])
        .args([
            "-e",
            "votecast.epoch",
            "-e",
            "votecast.round",
            "-e",
            "votecast.crc.status",
        ])
        .args(["-e", "votecast.flags.names", "-e", "votecast.state.name"])
        .stdin(Stdio::null())
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark: {errors}");
    assert!(
        !errors.contains("Lua"),
        "the dissector failed to load: {errors}"
    );
    let mut last: HashMap<u64, Vec<String>> = HashMap::new();
    let mut frames = 0;
    for line in text.lines() {
        let fields: Vec<String> = line.split('|').map(str::to_string).collect();
        assert_eq!(fields.len(), 8, "{line}");
        let sender: u64 = fields[0]
            .parse()
            .unwrap_or_else(|_| panic!("sender: {line}"));
        if sender < 98 {
            frames += 1;
            assert_eq!(fields[5], "good", "a real frame with a bad CRC: {line}");
        }
        last.insert(sender, fields);
    }
    let captured = fs::metadata(&pcap).map_or(0, |m| m.len());
    assert!(
        frames >= 9,
        "too few frames decoded from {captured} bytes of capture ({tcpdump_said}): {text}\n{errors}"
    );
    for state in &states {
        let f = last
            .get(&state.id)
            .unwrap_or_else(|| panic!("no frame of node {}: {text}", state.id));
        let code = STATES
            .iter()
            .position(|s| *s == state.state)
            .expect("state");
        assert_eq!(f[1], code.to_string(), "node {} state: {f:?}", state.id);
        assert_eq!(f[7], state.state, "the state by name: {f:?}");
        assert_eq!(Some(f[2].parse().unwrap()), state.leader, "leader: {f:?}");
        assert_eq!(Some(f[3].parse().unwrap()), state.epoch, "epoch: {f:?}");
        assert_eq!(f[4].parse::<u64>().unwrap(), state.round, "round: {f:?}");
    }
    let unnamed = &last.get(&98).expect("the frame with bit 7")[..];
    assert_eq!(unnamed[5], "good", "{unnamed:?}");
    assert_eq!(
        unnamed[6], "RESIGN,UNICAST_ANSWERS,ANSWER_OPTIONAL,bit 7",
        "{unnamed:?}"
    );
    let bad = &last.get(&99).expect("the frame with a bad CRC")[..];
    assert_eq!(bad[5], "bad", "{bad:?}");
    let _ = fs::remove_file(&pcap);
}
