//! Running the LAN tests without root: the privilege path of the harness.
//!
//! The harness needs what root has: creating network namespaces, veth pairs, a bridge and
//! nftables rules, and mounting (`ip netns add` bind-mounts under `/run/netns`, `ip netns
//! exec` mounts a sysfs). As root, a test builds its LAN directly. As a normal user,
//! [`as_root`] runs the test's body in a child: the test binary itself, re-executed for
//! that one test (`--exact NAME`) under
//! `unshare --user --map-root-user --net --mount --pid --fork --mount-proc --kill-child`.
//! In that unprivileged user namespace the child is root over namespaces it owns, which is
//! all the harness needs; nothing it does can reach the machine's own network or mounts.
//!
//! Why the `unshare` program (util-linux) and not the syscalls through `nix`: a test
//! process is multi-threaded (libtest), and `unshare(CLONE_NEWUSER)` refuses a
//! multi-threaded caller, so the namespaces must be made in a fresh child before it
//! execs; that is exactly what `unshare` does (including the uid/gid maps and the fork
//! into the new PID namespace), and doing it by hand would take `unsafe` `pre_exec` code
//! for no gain. The same command line also reproduces a failure by hand.
//!
//! Inside, before the test runs, a tmpfs is mounted on `/var/run/netns` (on `/var/run` when
//! that directory does not exist yet: a normal user cannot create it), so `ip netns add`
//! works and sees only this test's namespaces.
//!
//! Clean-up: the child is PID 1 of its own PID namespace, and its namespaces (mount,
//! network, and the named network namespaces on the private tmpfs) exist only as long as
//! processes run in them. When the child exits, however it exits (even SIGKILL), the
//! kernel kills every node process left in its PID namespace and the namespaces vanish;
//! `--kill-child` does the same if the `unshare` process is killed. So there is nothing
//! stale to remove by creator PID as root does, except the files under the temp
//! directory, which the parent removes (see `netns::remove_stale_temp_dirs`). Names
//! (namespaces, temp dirs) use the parent's PID ([`run_pid`]): the child's own PID is 1.
//!
//! Where the kernel refuses unprivileged user namespaces, the test fails with the reason,
//! naming the sysctl that forbids them; it never skips.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::netns;

/// Set (to the parent's PID) in the environment of the re-executed child.
const CHILD_ENV: &str = "VOTECAST_LAN_USERNS";

/// Run inside the new namespaces before the program: a private `/var/run/netns` (the
/// directory iproute2 keeps named network namespaces in), then exec the program ("$0").
const SETUP: &str = "if [ -d /var/run/netns ]; then \
         mount -t tmpfs -o mode=0755 vclan-netns /var/run/netns; \
     else mount -t tmpfs -o mode=0755 vclan-run /var/run; fi && exec \"$0\" \"$@\"";

/// How this process may build a LAN.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Privilege {
    /// Effective uid 0 (CI): everything as before, apt-get included.
    Root,
    /// The re-executed child, root in its own user namespace only.
    UserNs,
    /// A normal user: the body must run in a child (see [`as_root`]).
    User,
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub fn privilege() -> Privilege {
    let root = effective_uid() == Some(0);
    match (root, std::env::var_os(CHILD_ENV).is_some()) {
        (true, true) => Privilege::UserNs,
        (true, false) => Privilege::Root,
        (false, _) => Privilege::User,
    }
}

/// The PID names are made of: this process's, or in the child its parent's (the child is
/// PID 1 of its PID namespace, which every such child is).
pub fn run_pid() -> u32 {
    match privilege() {
        Privilege::UserNs => std::env::var(CHILD_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(std::process::id()),
        _ => std::process::id(),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The settings that forbid unprivileged user namespaces, as found on this machine, each
/// with the command that allows them.
fn forbidding_settings() -> Vec<String> {
    let mut found = Vec::new();
    let sysctls = [
        // Debian and Ubuntu kernels: the switch for unprivileged user namespaces.
        ("kernel.unprivileged_userns_clone", "0", "1"),
        // Any kernel: how many user/net/mount/pid namespaces a user may have.
        ("user.max_user_namespaces", "0", "15000"),
        ("user.max_net_namespaces", "0", "15000"),
        ("user.max_mnt_namespaces", "0", "15000"),
        ("user.max_pid_namespaces", "0", "15000"),
        // Ubuntu 23.10+: AppArmor lets the namespace be made but takes its privileges.
        ("kernel.apparmor_restrict_unprivileged_userns", "1", "0"),
    ];
    for (name, forbids, allows) in sysctls {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        if read_trimmed(&path).as_deref() == Some(forbids) {
            found.push(format!(
                "sysctl {name} = {forbids} (allow with `sysctl -w {name}={allows}`)"
            ));
        }
    }
    let status = read_trimmed("/proc/self/status").unwrap_or_default();
    let seccomp = status.lines().find_map(|l| l.strip_prefix("Seccomp:"));
    if seccomp.map(str::trim) == Some("2") {
        found.push(
            "a seccomp filter is active (a container's default profile blocks unshare)".into(),
        );
    }
    found
}

/// Why the kernel refused: the forbidding settings found, or a note that none was found.
pub fn refusal_reason() -> String {
    let found = forbidding_settings();
    if found.is_empty() {
        "no known setting forbids them here (checked kernel.unprivileged_userns_clone, \
         user.max_{user,net,mnt,pid}_namespaces, kernel.apparmor_restrict_unprivileged_userns, \
         seccomp)"
            .into()
    } else {
        format!("{}; or run the tests as root", found.join("; "))
    }
}

/// `PATH` with the system directories appended: Debian's default `PATH` for a normal
/// user lacks `/usr/sbin` and `/sbin`, where `ip` and `nft` live.
pub fn tool_path() -> OsString {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for dir in ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        if !dirs.iter().any(|d| d == Path::new(dir)) {
            dirs.push(dir.into());
        }
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

/// `unshare ... sh -c SETUP PROGRAM ARGS...`: PROGRAM in fresh user (mapped to root),
/// network, mount and PID namespaces with a private `/var/run/netns`.
fn unshared(program: &str) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.env("PATH", tool_path()).args([
        "--user",
        "--map-root-user",
        "--net",
        "--mount",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "--",
        "sh",
        "-c",
        SETUP,
        program,
    ]);
    cmd
}

/// Once per process: the tools exist and an unprivileged user namespace can do what the
/// harness does (a namespace, a bridge, a veth pair, an nftables table, `ip netns exec`).
fn check_user_namespaces() -> Result<(), String> {
    static VERDICT: OnceLock<Result<(), String>> = OnceLock::new();
    VERDICT
        .get_or_init(|| {
            let mut missing = netns::missing_tools();
            if !netns::tool_works("unshare", "--version") {
                missing.push(("unshare", "util-linux"));
            }
            if !missing.is_empty() {
                return Err(netns::missing_tools_message(&missing));
            }
            let probe = "ip netns add probe && ip -n probe link add br0 type bridge \
                 && ip -n probe link add name va type veth peer name vb \
                 && ip netns exec probe nft add table inet probe \
                 && ip netns exec probe test -d /sys/class/net/br0";
            let out = unshared("sh")
                .args(["-c", probe])
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("cannot start unshare: {e}"))?;
            if out.status.success() {
                return Ok(());
            }
            Err(format!(
                "not root, and an unprivileged user namespace ({}) cannot do what the LAN \
                 tests need: {}. The probe `unshare --user --map-root-user --net \
                 --mount --pid --fork --mount-proc sh -c '<mount a tmpfs on /var/run/netns>; \
                 {probe}'` failed ({}): {}",
                "user, network, mount and PID namespaces",
                refusal_reason(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })
        .clone()
}

/// Copy `from` to this test's output line by line (libtest captures it as the test's
/// own, and prints it on failure or with --nocapture). Returns whether the child's libtest
/// reported exactly one passed test (a name that matched nothing would "pass" zero).
fn forward(from: impl Read, to_stderr: bool) -> bool {
    let mut one_passed = false;
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        one_passed |= line.starts_with("test result: ok. 1 passed;");
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
    one_passed
}

/// Run a LAN test's body with the privileges the harness needs: directly as root or in
/// the child, and as a normal user re-run this one test in a child inside an unprivileged
/// user namespace (see the module doc), passing on its output and its verdict. Call it
/// first thing in every test that builds a [`netns::Lan`].
pub fn as_root(body: impl FnOnce()) {
    if privilege() != Privilege::User {
        return body();
    }
    let name = std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            panic!("userns::as_root: the test thread has no test name to re-run the test by")
        });
    if let Err(e) = check_user_namespaces() {
        panic!("LAN harness cannot set up: {e}");
    }
    netns::remove_stale_temp_dirs();
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut child = unshared(&exe.to_string_lossy())
        .args([
            "--exact",
            &name,
            // The verdict of this one test, also when the outer run selected it with --ignored.
            "--include-ignored",
            "--nocapture",
            "--quiet",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start unshare for {name}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || forward(stdout, false));
    forward(stderr, true);
    let one_passed = out.join().unwrap_or(false);
    let status = child.wait().expect("wait for the test's child");
    assert!(
        status.success(),
        "{name} failed inside its unprivileged user namespace ({status}); its output is above"
    );
    assert!(
        one_passed,
        "{name}: the re-executed test binary did not report this one test as passed"
    );
}
