//! An emulated LAN in network namespaces: one bridge namespace and N host namespaces,
//! each host joined to the bridge by a veth pair, plus the tools to break it (link
//! down, nftables drop rules) and to run one `votecast run` per host.
//!
//! Nothing here touches the machine's own interfaces: every link is created inside a
//! namespace this harness created (`ip -n BRIDGE link add ... peer ... netns HOST`), so the
//! interface names (`br0`, `p1`..`pN`, `lan0`) live in those namespaces only. Namespace
//! names carry this process's PID and the schedule index (`vclan-PID-IDX-br`,
//! `vclan-PID-IDX-h3`), so parallel tests never clash, and namespaces left by a crashed
//! earlier run (a PID that is no longer a running `lan` test) are removed on start.
//! [`Lan`]'s `Drop` kills and reaps every node process it spawned (by PID: `ip netns exec`
//! execs the program, so the child's PID is the node's) and deletes every namespace it
//! created, also when a test panics.
//!
//! As root all of this happens on the machine's `/var/run/netns`. As a normal user each
//! test runs in its own unprivileged user, network, mount and PID namespaces with a
//! private `/var/run/netns` (see `lan/userns.rs`): the same code runs there as root of
//! those namespaces, whatever it leaves vanishes with the test process, and the PID in
//! the names is the parent's (`userns::run_pid`).

use std::ffi::OsStr;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use votecast::cluster::TempDir;

use crate::userns::{self, Privilege};

/// Prefix of every namespace this harness creates.
pub const PREFIX: &str = "vclan-";

/// The interface of a host namespace (the host end of its veth pair).
pub const HOST_IF: &str = "lan0";

/// Group and port every LAN uses (each LAN is its own broadcast domain).
pub const GROUP: &str = "239.192.77.77:7277";

/// Name of the nftables table the harness owns in each host namespace.
const NFT_TABLE: &str = "vclan";

/// The address of host `i` (1-based): 169.254.0.(10+i)/16.
pub fn host_addr(i: usize) -> String {
    format!("169.254.0.{}", 10 + i)
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Run a command to completion; an error carries the command line, status and stderr.
pub fn run(cmd: &mut Command) -> Result<String, String> {
    run_with_input(cmd, None)
}

fn run_with_input(cmd: &mut Command, input: Option<&str>) -> Result<String, String> {
    let line = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{line}: cannot start: {e}"))?;
    if let Some(text) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("{line}: writing stdin: {e}"))?;
    }
    let out: Output = child
        .wait_with_output()
        .map_err(|e| format!("{line}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{line}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn ip(args: &[&str]) -> Result<String, String> {
    run(Command::new("ip").args(args))
}

/// Whether `program arg` runs and succeeds (looked up in `userns::tool_path`).
pub fn tool_works(program: &str, arg: &str) -> bool {
    Command::new(program)
        .env("PATH", userns::tool_path())
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools the harness runs that do not work here: (program, Debian package).
pub fn missing_tools() -> Vec<(&'static str, &'static str)> {
    [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")]
        .into_iter()
        .filter(|(program, arg, _)| !tool_works(program, arg))
        .map(|(program, _, package)| (program, package))
        .collect()
}

/// The error for tools a normal user cannot install.
pub fn missing_tools_message(missing: &[(&str, &str)]) -> String {
    let programs: Vec<&str> = missing.iter().map(|m| m.0).collect();
    let packages: Vec<&str> = missing.iter().map(|m| m.1).collect();
    format!(
        "the LAN harness needs {programs:?}, missing here; not being root it cannot install \
         them: run `apt-get install {}` as root (or run the tests as root, which installs them)",
        packages.join(" ")
    )
}

/// `apt-get ARGS`, waiting (bounded) for the dpkg/apt locks other apt users hold.
fn apt_get(args: &[&str]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let result = run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["-o", "DPkg::Lock::Timeout=120", "-q", "-y"])
            .args(args));
        match result {
            Ok(_) => return Ok(()),
            Err(e) if e.contains("lock") && Instant::now() < deadline => {
                eprintln!("lan: apt-get {args:?}: a lock is held, retrying in 5 s");
                std::thread::sleep(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Make sure `ip` (iproute2) and `nft` (nftables) exist, installing them with apt-get when
/// missing and root (in a user namespace a clear error names them instead). Runs once per
/// test process; every caller gets the same verdict. An error is meant to fail the test
/// loudly, never to skip it. A normal user gets here only inside the user namespace
/// `userns::as_root` runs the test in.
pub fn ensure_tools() -> Result<(), String> {
    static VERDICT: OnceLock<Result<(), String>> = OnceLock::new();
    VERDICT
        .get_or_init(|| {
            let privilege = userns::privilege();
            if privilege == Privilege::User {
                return Err("not root, and this test does not run its body through \
                     userns::as_root (which re-runs it in an unprivileged user namespace)"
                    .into());
            }
            let missing = missing_tools();
            if !missing.is_empty() {
                if privilege != Privilege::Root {
                    return Err(missing_tools_message(&missing));
                }
                let packages: Vec<&str> = missing.iter().map(|m| m.1).collect();
                eprintln!("lan: installing {packages:?} with apt-get");
                let mut install = vec!["install", "--no-install-recommends"];
                install.extend(&packages);
                if apt_get(&install).is_err() {
                    apt_get(&["update"]).map_err(|e| format!("apt-get update failed: {e}"))?;
                    apt_get(&install)
                        .map_err(|e| format!("apt-get install {packages:?} failed: {e}"))?;
                }
            }
            if let Some((program, _)) = missing_tools().first() {
                return Err(format!("{program} does not work after installing it"));
            }
            // In a user namespace, `/var/run/netns` is a fresh tmpfs of this test alone
            // and the parent removed stale temp dirs: nothing stale to see.
            if privilege == Privilege::Root {
                remove_stale_temp_dirs();
                remove_stale_namespaces();
            }
            Ok(())
        })
        .clone()
}

/// Is `pid` a running process of a `lan` test binary (ours or a parallel run)?
fn lan_test_alive(pid: u32) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    let name = Path::new(std::str::from_utf8(argv0).unwrap_or_default())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with("lan-") || name == "lan"
}

/// The creating PID in one of our names (`vclan-PID-...`).
fn creator_pid(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.split('-').next()?.parse().ok()
}

/// Delete the temporary directories with our prefix whose creating test process is gone
/// (a crashed or killed earlier run). Those of other users stay (no permission).
pub fn remove_stale_temp_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = creator_pid(&name) {
            if pid != userns::run_pid() && !lan_test_alive(pid) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Delete namespaces with our prefix whose creating test process is gone (a crashed or
/// killed earlier run), after killing the node processes still inside them.
fn remove_stale_namespaces() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = creator_pid(name) else {
            continue;
        };
        if pid == userns::run_pid() || lan_test_alive(pid) {
            continue;
        }
        if let Ok(pids) = ip(&["netns", "pids", name]) {
            for p in pids.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        match ip(&["netns", "del", name]) {
            Ok(_) => eprintln!("lan: removed stale namespace {name} (pid {pid} is gone)"),
            Err(e) => eprintln!("lan: cannot remove stale namespace {name}: {e}"),
        }
    }
}

/// One node process of the LAN.
pub struct NodeProc {
    pub child: Child,
    pub pid: u32,
}

/// The LAN: namespaces, links, the files of each node and its running process.
pub struct Lan {
    pub n: usize,
    pub bridge: String,
    pub hosts: Vec<String>,
    created: Vec<String>,
    /// The LAN's files (one folder per node), removed with the LAN unless kept.
    files: Option<TempDir>,
    pub dir: PathBuf,
    /// Per host (index 0 = node 1): the running process, if any.
    pub procs: Vec<Option<NodeProc>>,
    exe: PathBuf,
    /// nftables rules currently installed per host (to skip no-op updates).
    rules: Vec<Vec<String>>,
    /// `--key-file` for every node (authenticated frames), if set.
    pub key_file: Option<PathBuf>,
    /// `--group` of every node ([`GROUP`] unless a test sets another).
    pub group: String,
}

impl Lan {
    /// Build the LAN for schedule `tag` with `n` hosts. Nodes are not started. They run
    /// `exe`, or the binary `VOTECAST_LAN_EXE` names (a copy another user can read).
    pub fn new(exe: &Path, tag: &str, n: usize) -> Result<Lan, String> {
        ensure_tools()?;
        let exe = std::env::var_os("VOTECAST_LAN_EXE").map_or(exe.to_path_buf(), PathBuf::from);
        let base = format!("{PREFIX}{}-{tag}", userns::run_pid());
        // Named `vclan-PID-...` like the namespaces, so a later run removes it if this
        // process dies before dropping it.
        let files = TempDir::new(&base).map_err(|e| format!("temp dir {base}: {e}"))?;
        let dir = files.path().to_path_buf();
        let mut lan = Lan {
            n,
            bridge: format!("{base}-br"),
            hosts: (1..=n).map(|i| format!("{base}-h{i}")).collect(),
            created: Vec::new(),
            files: Some(files),
            dir,
            procs: (0..n).map(|_| None).collect(),
            exe,
            rules: vec![Vec::new(); n],
            key_file: None,
            group: GROUP.to_string(),
        };
        lan.build()?;
        Ok(lan)
    }

    fn add_netns(&mut self, name: &str) -> Result<(), String> {
        ip(&["netns", "add", name])?;
        self.created.push(name.to_owned());
        Ok(())
    }

    fn build(&mut self) -> Result<(), String> {
        let br = self.bridge.clone();
        self.add_netns(&br)?;
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        // Snooping off: every port gets the group's frames without an IGMP querier.
        ip(&[
            "-n",
            &br,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        let details = ip(&["-n", &br, "-d", "link", "show", "br0"])?;
        if !details.contains("mcast_snooping 0") {
            return Err(format!(
                "bridge br0 in {br}: multicast snooping is not off:\n{details}"
            ));
        }
        for i in 1..=self.n {
            let host = self.hosts[i - 1].clone();
            self.add_netns(&host)?;
            let port = format!("p{i}");
            ip(&[
                "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", HOST_IF, "netns",
                &host,
            ])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", &host, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &host,
                "addr",
                "add",
                &format!("{}/16", host_addr(i)),
                "dev",
                HOST_IF,
            ])?;
            ip(&["-n", &host, "link", "set", HOST_IF, "up"])?;
            self.apply_rules(i, Vec::new(), true)?;
            fs::create_dir_all(self.node_dir(i)).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A further host namespace on the bridge without a node (a client of the cluster):
    /// `{base}-{name}` with `lan0` at `addr` (169.254.0.0/16) on bridge port `p{name}`.
    /// Deleted with the LAN.
    pub fn add_client(&mut self, name: &str, addr: &str) -> Result<String, String> {
        let ns = format!("{}-{name}", self.bridge.trim_end_matches("-br"));
        let (br, port) = (self.bridge.clone(), format!("p{name}"));
        self.add_netns(&ns)?;
        ip(&[
            "-n", &br, "link", "add", &port, "type", "veth", "peer", "name", HOST_IF, "netns", &ns,
        ])?;
        ip(&["-n", &br, "link", "set", &port, "master", "br0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/16"),
            "dev",
            HOST_IF,
        ])?;
        ip(&["-n", &ns, "link", "set", HOST_IF, "up"])?;
        Ok(ns)
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("data")
    }
    pub fn state_file(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("state.json")
    }
    pub fn hook_log(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("hooks.txt")
    }
    pub fn log_file(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("log.txt")
    }

    /// Install exactly `rules` (nft statements) in host `i`'s input chain, atomically.
    pub fn apply_rules(&mut self, i: usize, rules: Vec<String>, force: bool) -> Result<(), String> {
        if !force && self.rules[i - 1] == rules {
            return Ok(());
        }
        let mut script = format!(
            "table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\ntable inet {NFT_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n"
        );
        for r in &rules {
            script.push_str("    ");
            script.push_str(r);
            script.push('\n');
        }
        script.push_str("  }\n}\n");
        run_with_input(
            Command::new("ip").args(["netns", "exec", &self.hosts[i - 1], "nft", "-f", "-"]),
            Some(&script),
        )?;
        self.rules[i - 1] = rules;
        Ok(())
    }

    /// `ip link set lan0 up|down` in host `i`.
    pub fn set_link(&self, i: usize, up: bool) -> Result<(), String> {
        ip(&[
            "-n",
            &self.hosts[i - 1],
            "link",
            "set",
            HOST_IF,
            if up { "up" } else { "down" },
        ])
        .map(drop)
    }

    /// Start `votecast run` for node `i` inside its namespace (data dir kept).
    pub fn start(&mut self, i: usize) -> Result<u32, String> {
        self.start_with(i, &[])
    }

    /// [`Lan::start`] with `extra` arguments after the harness's own (`--peers ...`).
    pub fn start_with(&mut self, i: usize, extra: &[String]) -> Result<u32, String> {
        self.start_node(i, extra, true)
    }

    /// [`Lan::start_with`] without the harness's state file and hook: the node publishes
    /// nothing but what `extra` asks for (`--vip`, say).
    pub fn start_bare(&mut self, i: usize, extra: &[String]) -> Result<u32, String> {
        self.start_node(i, extra, false)
    }

    fn start_node(&mut self, i: usize, extra: &[String], publish: bool) -> Result<u32, String> {
        assert!(self.procs[i - 1].is_none(), "node {i} already runs");
        let voters: Vec<String> = (1..=self.n).map(|v| v.to_string()).collect();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(i))
            .map_err(|e| e.to_string())?;
        let _ = fs::remove_file(self.state_file(i));
        let hook = format!(
            "echo \"$(date +%s%3N) $VOTECAST_PREVIOUS_STATE $VOTECAST_STATE $VOTECAST_LEADER $VOTECAST_EPOCH\" >> '{}'",
            self.hook_log(i).display()
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.hosts[i - 1]])
            .arg(&self.exe)
            .arg("run")
            .args(["--id", &i.to_string()])
            .args(["--voters", &voters.join(",")])
            .args(["--interface", HOST_IF])
            .args(["--group", &self.group])
            .arg("--data-dir")
            .arg(self.data_dir(i));
        if publish {
            cmd.arg("--state-file")
                .arg(self.state_file(i))
                .arg("--on-change")
                .arg(hook);
        }
        cmd.args(
            self.key_file
                .iter()
                .flat_map(|k| [OsStr::new("--key-file"), k.as_os_str()]),
        )
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .env(
            "RUST_LOG",
            std::env::var("VOTECAST_CHILD_LOG").unwrap_or("info".into()),
        );
        let child = cmd.spawn().map_err(|e| format!("start node {i}: {e}"))?;
        let pid = child.id();
        self.procs[i - 1] = Some(NodeProc { child, pid });
        Ok(pid)
    }

    /// Wait (at most `bound`) until host `i`'s interface has an IPv6 link-local address
    /// that is no longer tentative (duplicate address detection done), so that frames to
    /// an IPv6 group can leave it.
    pub fn wait_ipv6_link_local(&self, i: usize, bound: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let out = ip(&[
                "-n",
                &self.hosts[i - 1],
                "-6",
                "addr",
                "show",
                "dev",
                HOST_IF,
            ])?;
            let ready = out
                .lines()
                .any(|l| l.contains("inet6 fe80:") && !l.contains("tentative"));
            if ready {
                return Ok(());
            }
            if start.elapsed() > bound {
                return Err(format!(
                    "host {i}: no usable IPv6 link-local address on {HOST_IF} after {bound:?}:\n{out}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs[i - 1].as_ref().map(|p| p.pid)
    }

    /// Send `signal` to node `i`'s process (our child, by PID).
    pub fn signal(&self, i: usize, signal: nix::sys::signal::Signal) -> Result<(), String> {
        let pid = self.pid(i).ok_or(format!("node {i} is not running"))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .map_err(|e| format!("kill({pid}, {signal}): {e}"))
    }

    /// SIGKILL node `i` and reap it; returns its PID.
    pub fn kill(&mut self, i: usize) -> Result<u32, String> {
        let mut p = self.procs[i - 1]
            .take()
            .ok_or(format!("node {i} is not running"))?;
        p.child.kill().map_err(|e| format!("kill node {i}: {e}"))?;
        p.child.wait().map_err(|e| format!("reap node {i}: {e}"))?;
        Ok(p.pid)
    }

    /// Nodes whose process exited without us killing it: (node, status).
    pub fn reap_exited(&mut self) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (k, slot) in self.procs.iter_mut().enumerate() {
            if let Some(p) = slot.as_mut() {
                if let Ok(Some(status)) = p.child.try_wait() {
                    out.push((k + 1, status.to_string()));
                    *slot = None;
                }
            }
        }
        out
    }

    /// Node `i`'s log (for failure messages).
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.log_file(i)).unwrap_or_default()
    }

    /// Keep the files (logs, state files, hook logs) for a post-mortem instead of deleting
    /// them with the LAN; returns where they are.
    pub fn keep_files(&mut self) -> PathBuf {
        // Forgetting the handle skips its removal on drop.
        std::mem::forget(self.files.take());
        self.dir.clone()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for slot in self.procs.iter_mut() {
            if let Some(mut p) = slot.take() {
                // SIGKILL also ends a SIGSTOPped process.
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        for name in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("lan: cannot delete namespace {name}: {e}");
            }
        }
        // The files go last (the `files` field drops after this), once nothing runs.
    }
}

/// Name of the nftables table that drops multicast in the bridge namespace.
const NFT_BRIDGE_TABLE: &str = "vclan_nomcast";
/// The numbers after each `packets` in `nft list` output (an unreadable one counts 0).
fn packet_counts(out: &str) -> Vec<u64> {
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "packets")
        .map(|w| w[1].parse().unwrap_or(0))
        .collect()
}

/// The table of [`Lan::count_on_bridge`].
const NFT_COUNT_TABLE: &str = "vclan_count";

/// The bridge itself: a bridge that loses multicast, and IGMP snooping.
impl Lan {
    /// Make the bridge drop every multicast frame it would forward (a switch or access
    /// point that does not carry multicast), keeping broadcast (ARP) and unicast: an
    /// nftables `bridge` table in the bridge namespace, with counters.
    pub fn drop_multicast_on_bridge(&self) -> Result<(), String> {
        let script = format!(
            "table bridge {NFT_BRIDGE_TABLE} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 ether daddr != ff:ff:ff:ff:ff:ff counter drop\n    ip daddr 224.0.0.0/4 counter drop\n  }}\n}}\n"
        );
        run_with_input(
            Command::new("ip").args(["netns", "exec", &self.bridge, "nft", "-f", "-"]),
            Some(&script),
        )
        .map(drop)
    }

    /// `nft ARGS` in the bridge namespace; its output.
    fn nft_on_bridge(&self, args: &[&str]) -> Result<String, String> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.bridge, "nft"])
            .args(args))
    }

    /// Packets the rules of [`Lan::drop_multicast_on_bridge`] dropped so far.
    pub fn bridge_multicast_drops(&self) -> Result<u64, String> {
        let out = self.nft_on_bridge(&["list", "table", "bridge", NFT_BRIDGE_TABLE])?;
        Ok(packet_counts(&out).iter().sum())
    }

    /// Count what the bridge forwards: one named counter per `(name, match)`, each an
    /// nftables `bridge` match expression (e.g. `ip saddr 169.254.0.11 ip daddr
    /// 224.0.0.0/4`), in a table of its own in the bridge namespace. Nothing is dropped.
    pub fn count_on_bridge(&self, counters: &[(&str, String)]) -> Result<(), String> {
        let mut script = format!("table bridge {NFT_COUNT_TABLE} {{\n");
        for (name, _) in counters {
            script.push_str(&format!("  counter {name} {{ }}\n"));
        }
        script.push_str(
            "  chain forward {\n    type filter hook forward priority 0; policy accept;\n",
        );
        for (name, matches) in counters {
            script.push_str(&format!("    {matches} counter name {name}\n"));
        }
        script.push_str("  }\n}\n");
        run_with_input(
            Command::new("ip").args(["netns", "exec", &self.bridge, "nft", "-f", "-"]),
            Some(&script),
        )
        .map(drop)
    }

    /// Packets counted so far by counter `name` of [`Lan::count_on_bridge`].
    pub fn bridge_count(&self, name: &str) -> Result<u64, String> {
        let out = self.nft_on_bridge(&["list", "counter", "bridge", NFT_COUNT_TABLE, name])?;
        packet_counts(&out)
            .first()
            .copied()
            .ok_or_else(|| format!("counter {name}: no packet count in {out:?}"))
    }

    /// Turn IGMP snooping on with the bridge as the querier, and check that it took.
    pub fn snooping_with_querier(&self) -> Result<(), String> {
        let br = &self.bridge;
        ip(&[
            "-n",
            br,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "1",
            "mcast_querier",
            "1",
        ])?;
        let details = ip(&["-n", br, "-d", "link", "show", "br0"])?;
        if !details.contains("mcast_snooping 1") || !details.contains("mcast_querier 1") {
            return Err(format!(
                "bridge br0 in {br}: snooping/querier not on:\n{details}"
            ));
        }
        Ok(())
    }

    /// Host `i`'s IPv6 link-local address on its interface (wait for it first with
    /// [`Lan::wait_ipv6_link_local`]).
    pub fn ipv6_link_local(&self, i: usize) -> Result<String, String> {
        let out = ip(&[
            "-n",
            &self.hosts[i - 1],
            "-6",
            "addr",
            "show",
            "dev",
            HOST_IF,
        ])?;
        out.split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .filter(|a| a.starts_with("fe80:"))
            .and_then(|a| a.split('/').next())
            .map(str::to_owned)
            .ok_or(format!("host {i}: no IPv6 link-local address:\n{out}"))
    }

    /// The bridge's multicast database (`bridge mdb show`): the groups snooping learned.
    pub fn bridge_mdb(&self) -> Result<String, String> {
        run(Command::new("bridge").args(["-n", &self.bridge, "mdb", "show"]))
    }
}

/// Interface lifecycle: what a network restart, a DHCP client or NetworkManager does to a
/// host's interface. Kept apart from the LAN's setup above.
impl Lan {
    /// The index of host `i`'s interface, if it exists.
    pub fn link_index(&self, i: usize) -> Option<u32> {
        let out = ip(&["-n", &self.hosts[i - 1], "-o", "link", "show", HOST_IF]).ok()?;
        out.split(':').next()?.trim().parse().ok()
    }

    /// Delete host `i`'s interface (and its veth peer on the bridge).
    pub fn delete_link(&self, i: usize) -> Result<(), String> {
        ip(&["-n", &self.hosts[i - 1], "link", "del", HOST_IF]).map(drop)
    }

    /// Recreate host `i`'s interface as the LAN built it: its veth pair, the peer on the
    /// bridge, its address (169.254.0.(10+i)/16 unless `address` says otherwise), up. With
    /// `index`, the interface gets that index (the same one as before, say); otherwise the
    /// kernel picks a new one.
    pub fn recreate_link(
        &self,
        i: usize,
        index: Option<u32>,
        address: Option<&str>,
    ) -> Result<(), String> {
        let host = &self.hosts[i - 1];
        let port = format!("p{i}");
        let index = index.map(|x| x.to_string());
        let mut add = vec!["-n", host.as_str(), "link", "add", HOST_IF];
        if let Some(index) = &index {
            add.extend(["index", index.as_str()]);
        }
        add.extend(["type", "veth", "peer", "name", &port, "netns", &self.bridge]);
        ip(&add)?;
        ip(&[
            "-n",
            &self.bridge,
            "link",
            "set",
            &port,
            "master",
            "br0",
            "up",
        ])?;
        let address = format!("{}/16", address.map_or_else(|| host_addr(i), str::to_owned));
        ip(&["-n", host, "addr", "add", &address, "dev", HOST_IF])?;
        ip(&["-n", host, "link", "set", HOST_IF, "up"]).map(drop)
    }

    /// Give host `i`'s interface `new` (in 169.254.0.0/16) instead of `old`, without a
    /// moment without an address: the new one is added (as a secondary address), then the
    /// old one removed, and the kernel promotes the new one (`promote_secondaries`, which
    /// systemd turns on by default; a fresh namespace has it off).
    pub fn change_address(&self, i: usize, old: &str, new: &str) -> Result<(), String> {
        let host = &self.hosts[i - 1];
        let promote = format!("net.ipv4.conf.{HOST_IF}.promote_secondaries=1");
        run(Command::new("ip").args(["netns", "exec", host, "sysctl", "-q", "-w", &promote]))?;
        ip(&[
            "-n",
            host,
            "addr",
            "add",
            &format!("{new}/16"),
            "dev",
            HOST_IF,
        ])?;
        ip(&[
            "-n",
            host,
            "addr",
            "del",
            &format!("{old}/16"),
            "dev",
            HOST_IF,
        ])
        .map(drop)
    }

    /// Start node `i` while its host has no interface yet (boot ordering): the interface
    /// is deleted first, then the node started. [`Lan::recreate_link`] brings it.
    pub fn start_before_link(&mut self, i: usize) -> Result<u32, String> {
        if self.link_index(i).is_some() {
            self.delete_link(i)?;
        }
        self.start(i)
    }
}
