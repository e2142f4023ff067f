//! A cluster of `votecast run` processes on the loopback interface, for the demo, the
//! loopback tests and benchmarks.
//!
//! Every node gets its own data dir and state file in a private temporary directory; the
//! group is an organisation-local IPv4 group on a free port, joined on `lo` only, TTL 1.
//! Processes are ours (spawned here) and are signalled by PID; dropping the cluster kills
//! and reaps all of them and removes the directory, also when a test panics.
//!
//! [`TempDir`] is the temporary directory every test uses, with or without a cluster.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::daemon::state_file::{read_state_file, StateSnapshot};

/// The group the local cluster uses; each cluster picks its own port.
pub const LOCAL_GROUP: Ipv4Addr = Ipv4Addr::new(239, 192, 77, 77);

/// A UDP port that was free a moment ago (good enough for tests: each cluster binds the
/// group address with SO_REUSEPORT anyway, the port only keeps clusters apart).
pub fn free_udp_port() -> io::Result<u16> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(socket.local_addr()?.port())
}

/// A private directory (mode 0700) under the system temp dir, removed with everything in
/// it on drop: the one temporary-directory helper of the crate and its tests.
///
/// Names are `PREFIX-PID-N`, N counting up within the process. The directory is created
/// exclusively, so a leftover of an earlier process that had the same PID is skipped,
/// never reused or removed.
#[derive(Debug)]
pub struct TempDir(PathBuf);

/// Names tried before giving up; each skipped name is a leftover directory.
const TEMP_DIR_ATTEMPTS: u32 = 1000;

impl TempDir {
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        TempDir::new_in(&std::env::temp_dir(), prefix)
    }

    /// A new directory `base/PREFIX-PID-N`.
    pub fn new_in(base: &Path, prefix: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        create_unique(base, prefix, || COUNTER.fetch_add(1, Ordering::Relaxed)).map(TempDir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory (nothing is created).
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Create `base/PREFIX-PID-N` for the first N from `next` that is not taken yet.
fn create_unique(base: &Path, prefix: &str, mut next: impl FnMut() -> u32) -> io::Result<PathBuf> {
    let mut builder = fs::DirBuilder::new();
    builder.mode(0o700);
    for _ in 0..TEMP_DIR_ATTEMPTS {
        let path = base.join(format!("{prefix}-{}-{}", std::process::id(), next()));
        match builder.create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{TEMP_DIR_ATTEMPTS} names {prefix}-{}-N in {} are all taken",
            std::process::id(),
            base.display()
        ),
    ))
}

/// One node of a [`LocalCluster`]: its process while it runs, and its files.
#[derive(Debug)]
pub struct LocalNode {
    pub id: u64,
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub state_file: PathBuf,
    /// Whether the node is started with `--state-file` (the default).
    pub writes_state_file: bool,
    pub log_file: PathBuf,
    pub hook_log: PathBuf,
    pub extra_args: Vec<String>,
    /// This node's own executable and the command that runs it (see
    /// [`LocalCluster::set_launcher`]); `None`: the cluster's executable, run directly.
    pub launcher: Option<(PathBuf, Vec<String>)>,
}

impl LocalNode {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// N `votecast run` processes on `lo`.
#[derive(Debug)]
pub struct LocalCluster {
    exe: PathBuf,
    pub dir: TempDir,
    pub group: SocketAddr,
    pub voters: Vec<u64>,
    pub nodes: Vec<LocalNode>,
    /// Arguments given to every node (timing, cluster id...).
    pub common_args: Vec<String>,
    /// Record every transition through `--on-change` into each node's hook log.
    pub with_hooks: bool,
}

impl LocalCluster {
    /// Prepare (not start) a cluster of `voters` plus `observers` (ids after the voters).
    pub fn new(exe: &Path, voters: u64, observers: u64) -> io::Result<LocalCluster> {
        LocalCluster::new_in(&std::env::temp_dir(), exe, voters, observers)
    }

    /// [`LocalCluster::new`] with the nodes' files in a new directory under `base`.
    pub fn new_in(
        base: &Path,
        exe: &Path,
        voters: u64,
        observers: u64,
    ) -> io::Result<LocalCluster> {
        let dir = TempDir::new_in(base, "votecast-cluster")?;
        let port = free_udp_port()?;
        let voter_ids: Vec<u64> = (1..=voters).collect();
        let mut nodes = Vec::new();
        for id in 1..=voters + observers {
            let node_dir = dir.path().join(format!("node{id}"));
            fs::create_dir_all(&node_dir)?;
            nodes.push(LocalNode {
                id,
                child: None,
                state_file: node_dir.join("state.json"),
                writes_state_file: true,
                log_file: node_dir.join("log.txt"),
                hook_log: node_dir.join("hooks.txt"),
                dir: node_dir,
                extra_args: Vec::new(),
                launcher: None,
            });
        }
        Ok(LocalCluster {
            exe: exe.to_path_buf(),
            dir,
            group: SocketAddr::from((LOCAL_GROUP, port)),
            voters: voter_ids,
            nodes,
            common_args: Vec::new(),
            with_hooks: false,
        })
    }

    pub fn node(&self, id: u64) -> &LocalNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .expect("known node id")
    }

    fn node_mut(&mut self, id: u64) -> &mut LocalNode {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("known node id")
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn running_ids(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.is_running())
            .map(|n| n.id)
            .collect()
    }

    /// Arguments given to node `id` only, after the common ones (takes effect at its next
    /// start).
    pub fn set_extra_args<S: Into<String>>(&mut self, id: u64, args: impl IntoIterator<Item = S>) {
        self.node_mut(id).extra_args = args.into_iter().map(Into::into).collect();
    }

    /// Run node `id` from its own executable `exe`, started through `prefix` (the program
    /// and its arguments, before `exe`), e.g. a foreign-architecture binary under
    /// qemu-user: `["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"]`. The spawned process
    /// is then the prefix program (qemu-user runs the guest in that same process, so
    /// [`LocalCluster::kill`] and [`LocalCluster::signal`] still reach the node by PID).
    /// An empty prefix runs `exe` directly. Takes effect at the node's next start.
    pub fn set_launcher(&mut self, id: u64, exe: &Path, prefix: Vec<String>) {
        self.node_mut(id).launcher = Some((exe.to_path_buf(), prefix));
    }

    /// Node `id`'s `--data-dir` (kept across restarts; created by the node on start).
    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.node(id).dir.join("data")
    }

    /// The command line of node `id`.
    pub fn command(&self, id: u64) -> Command {
        let node = self.node(id);
        let voters: Vec<String> = self.voters.iter().map(|v| v.to_string()).collect();
        let mut cmd = match &node.launcher {
            None => Command::new(&self.exe),
            Some((exe, prefix)) => match prefix.split_first() {
                None => Command::new(exe),
                Some((program, args)) => {
                    let mut cmd = Command::new(program);
                    cmd.args(args).arg(exe);
                    cmd
                }
            },
        };
        cmd.arg("run")
            .args(["--id", &id.to_string()])
            .args(["--voters", &voters.join(",")])
            .args(["--interface", "lo"])
            .args(["--group", &self.group.to_string()])
            .arg("--data-dir")
            .arg(self.data_dir(id));
        if node.writes_state_file {
            cmd.arg("--state-file").arg(&node.state_file);
        }
        cmd.args(&self.common_args).args(&node.extra_args);
        if self.with_hooks {
            cmd.arg("--on-change").arg(format!(
                "echo \"$VOTECAST_PREVIOUS_STATE $VOTECAST_STATE $VOTECAST_LEADER $VOTECAST_EPOCH\" >> '{}'",
                node.hook_log.display()
            ));
        }
        cmd
    }

    /// Start node `id` (its log goes to its log file).
    pub fn start(&mut self, id: u64) -> io::Result<()> {
        let mut cmd = self.command(id);
        let node = self.node(id);
        assert!(node.child.is_none(), "node {id} already runs");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log_file)?;
        let _ = fs::remove_file(&node.state_file);
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .env(
                "RUST_LOG",
                std::env::var("VOTECAST_CHILD_LOG").unwrap_or("info".into()),
            );
        let child = cmd.spawn()?;
        self.node_mut(id).child = Some(child);
        Ok(())
    }

    pub fn start_all(&mut self) -> io::Result<()> {
        for id in self.ids() {
            self.start(id)?;
        }
        Ok(())
    }

    /// Send `signal` to node `id` (our own child, by PID).
    pub fn signal(&self, id: u64, signal: Signal) -> io::Result<()> {
        let pid = self.node(id).pid().ok_or(io::ErrorKind::NotFound)?;
        kill(Pid::from_raw(pid as i32), signal).map_err(io::Error::from)
    }

    /// SIGKILL node `id` and reap it.
    pub fn kill(&mut self, id: u64) -> io::Result<()> {
        if let Some(mut child) = self.node_mut(id).child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM node `id` and wait (at most `limit`) for it to exit; returns its exit code.
    pub fn terminate(&mut self, id: u64, limit: Duration) -> io::Result<Option<i32>> {
        self.signal(id, Signal::SIGTERM)?;
        self.wait_exit(id, limit)
    }

    /// Wait (at most `limit`) for node `id` to exit; its exit code (`None`: ended by a
    /// signal, or killed at the limit). The node no longer counts as running.
    pub fn wait_exit(&mut self, id: u64, limit: Duration) -> io::Result<Option<i32>> {
        let mut child = self
            .node_mut(id)
            .child
            .take()
            .ok_or(io::ErrorKind::NotFound)?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() >= deadline {
                child.kill()?;
                child.wait()?;
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Reap every node process that has exited by itself (without a signal from us) and
    /// report it with its exit status; those nodes no longer count as running.
    pub fn reap_exited(&mut self) -> io::Result<Vec<(u64, ExitStatus)>> {
        let mut exited = Vec::new();
        for node in self.nodes.iter_mut() {
            let Some(child) = node.child.as_mut() else {
                continue;
            };
            if let Some(status) = child.try_wait()? {
                node.child = None;
                exited.push((node.id, status));
            }
        }
        Ok(exited)
    }

    /// Node `id`'s state file, if it is written and parses.
    pub fn state(&self, id: u64) -> Option<StateSnapshot> {
        read_state_file(&self.node(id).state_file).ok()
    }

    /// (leader, epoch) when every running node reports the same leader and epoch: voters
    /// FOLLOWING or LEADING (the leader), observers OBSERVING.
    pub fn agreed_leader(&self) -> Option<(u64, u64)> {
        let mut agreed: Option<(u64, u64)> = None;
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let state = self.state(node.id)?;
            let view = (state.leader?, state.epoch?);
            let expected = if view.0 == node.id {
                "LEADING"
            } else if self.voters.contains(&node.id) {
                "FOLLOWING"
            } else {
                "OBSERVING"
            };
            if state.state != expected || agreed.is_some_and(|a| a != view) {
                return None;
            }
            agreed = Some(view);
        }
        // The leader itself must be among the running nodes and report LEADING.
        let (leader, _) = agreed?;
        self.node(leader).is_running().then_some(())?;
        agreed
    }

    /// Poll state files every millisecond until `done` holds or `limit` passes; returns
    /// how long it took.
    pub fn wait_until(
        &self,
        limit: Duration,
        mut done: impl FnMut(&LocalCluster) -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if done(self) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    /// Wait for agreement; returns (leader, epoch, time waited).
    pub fn await_agreement(&self, limit: Duration) -> Option<(u64, u64, Duration)> {
        let mut seen = None;
        let took = self.wait_until(limit, |c| {
            seen = c.agreed_leader();
            seen.is_some()
        })?;
        seen.map(|(l, e)| (l, e, took))
    }

    /// Everything node `id` logged so far (for failure messages).
    pub fn log(&self, id: u64) -> String {
        fs::read_to_string(&self.node(id).log_file).unwrap_or_default()
    }

    /// The transitions node `id`'s hook recorded, one "PREVIOUS STATE LEADER EPOCH" per line.
    pub fn hook_lines(&self, id: u64) -> Vec<String> {
        fs::read_to_string(&self.node(id).hook_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// One line per node: running or stopped, how it is launched when not directly, and
    /// what its state file says (or that there is none). For failure messages.
    pub fn describe_states(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let running = if node.is_running() {
                "running"
            } else {
                "stopped"
            };
            let via = match &node.launcher {
                Some((_, prefix)) if !prefix.is_empty() => format!(" via {}", prefix[0]),
                _ => String::new(),
            };
            let view = match self.state(node.id) {
                Some(s) => format!(
                    "{} leader={:?} epoch={:?} round={} zxid={} pid={}",
                    s.state, s.leader, s.epoch, s.round, s.zxid, s.pid
                ),
                None => "no state file".into(),
            };
            out.push_str(&format!("  node {} ({running}{via}): {view}\n", node.id));
        }
        out
    }

    /// A failing test's message: what went wrong, every node's state and every log.
    pub fn report(&self, what: impl std::fmt::Display) -> String {
        format!(
            "{what}\nstate files:\n{}{}",
            self.describe_states(),
            self.all_logs()
        )
    }

    /// All logs, for a failing test's message.
    pub fn all_logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, self.log(n.id)))
            .collect()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(mut child) = node.child.take() {
                // SIGKILL also ends a SIGSTOPped child; reap it so none is left behind.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn temp_dirs_are_private_distinct_and_removed_with_their_content() {
        let a = TempDir::new("votecast-tempdir-test").unwrap();
        let b = TempDir::new("votecast-tempdir-test").unwrap();
        assert_ne!(a.path(), b.path());
        let mode = fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        fs::create_dir(a.join("sub")).unwrap();
        fs::write(a.join("sub").join("file"), "x").unwrap();
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists(), "{} left behind", path.display());
        assert!(b.path().is_dir());
    }

    #[test]
    fn a_leftover_with_the_same_name_is_skipped_not_reused() {
        let base = TempDir::new("votecast-tempdir-base").unwrap();
        let pid = std::process::id();
        let stale = base.join(format!("t-{pid}-0"));
        fs::create_dir(&stale).unwrap();
        fs::write(stale.join("old"), "stale").unwrap();
        let mut n = 0;
        let made = create_unique(base.path(), "t", || {
            n += 1;
            n - 1
        })
        .unwrap();
        assert_eq!(made, base.join(format!("t-{pid}-1")));
        assert_eq!(fs::read_to_string(stale.join("old")).unwrap(), "stale");
        assert!(fs::read_dir(&made).unwrap().next().is_none());
    }

    #[test]
    fn giving_up_when_every_name_is_taken_is_an_error() {
        let base = TempDir::new("votecast-tempdir-full").unwrap();
        fs::create_dir(base.join(format!("t-{}-7", std::process::id()))).unwrap();
        let e = create_unique(base.path(), "t", || 7).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert!(e.to_string().contains("are all taken"), "{e}");
    }
}
