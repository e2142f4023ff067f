//! A data dir whose epoch writes fail: the node must stop (exit 1, naming the epochs
//! file) rather than vote, acknowledge or lead without durable epochs (a leader handing
//! over resigns instead, without its support for the successor). The fault is
//! injected into the real daemon with `strace -e inject=SYSCALL:error=EIO`, for the write
//! of the slot (`pwrite64`) and for its flush (`fdatasync`). The other voters go on and
//! elect a leader among themselves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use votecast::cluster::LocalCluster;
use votecast::daemon::file_publisher::memory_backed;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// The launcher prefix that runs a node under `strace` (the test fails, never skips,
/// without it), following its threads, quietly, with the trace discarded: only the
/// faults that `args` inject matter.
fn strace(args: &[&str]) -> Vec<String> {
    let found = Command::new("strace").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test needs strace (apt-get install strace) to inject disk errors"
    );
    ["strace", "-f", "-qq", "-o", "/dev/null"]
        .iter()
        .chain(args)
        .map(|a| a.to_string())
        .collect()
}

#[test]
fn a_failing_epochs_write_or_flush_stops_the_node_with_exit_1() {
    for syscall in ["fdatasync", "pwrite64"] {
        let mut c = LocalCluster::new(Path::new(EXE), 3, 0).expect("prepare a local cluster");
        // Node 3 wins the first election (highest id); as leader or follower, its first
        // epoch write fails. Its data dir is prepared before the election (plain writes
        // and fsync, not injected), so the failure is the in-place store.
        let trace = format!("trace={syscall}");
        let inject = format!("inject={syscall}:error=EIO");
        let prefix = strace(&["-e", &trace, "-e", &inject]);
        c.set_launcher(3, Path::new(EXE), prefix);
        c.start_all().expect("start");
        let code = c
            .wait_exit(3, Duration::from_secs(10))
            .expect("node running");
        let log = c.log(3);
        assert_eq!(code, Some(1), "{syscall}: {}", c.report("exit status"));
        let epochs = c.data_dir(3).join("epochs");
        assert!(
            log.contains("cannot persist epochs")
                && log.contains(&epochs.display().to_string())
                && log.contains("Input/output error"),
            "{syscall}: {log}"
        );
        assert!(
            !log.contains("LEADING leader=3"),
            "{syscall}: led without durable epochs: {log}"
        );
        // The two others elect without it.
        let (leader, _, _) = c
            .await_agreement(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("{}", c.report(format!("{syscall}: no agreement"))));
        assert_ne!(leader, 3);
    }
}

/// A leader that hands over stores its successor's epoch while it waits (the support its
/// RESIGN carries needs it durably accepted). If that write fails, the handover must go
/// on: the leader resigns without the support and exits 0, and the others elect the
/// successor, instead of the failure ending the process without its RESIGN. The flush of
/// the epochs file fails from its third call on: node 3 stored two epochs as leader (its
/// proposal, then the established epoch), and the third is the successor's.
#[test]
fn a_failing_epochs_write_during_a_handover_resigns_without_support() {
    let mut c = LocalCluster::new(Path::new(EXE), 3, 0).expect("prepare a local cluster");
    let epochs = c.data_dir(3).join("epochs").display().to_string();
    let prefix = strace(&[
        "-P",
        &epochs,
        "-e",
        "trace=fdatasync",
        "-e",
        "inject=fdatasync:error=EIO:when=3+",
    ]);
    c.set_launcher(3, Path::new(EXE), prefix);
    let (daemon, epoch) = start_traced_leader(&mut c);
    std::thread::sleep(Duration::from_millis(300));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.0).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM node 3");
    let code = c
        .wait_exit(3, Duration::from_secs(10))
        .expect("node running");
    let log = c.log(3);
    assert!(
        log.contains("cannot persist epochs")
            && log.contains("Input/output error")
            && log.contains("resigning without supporting the successor"),
        "the successor's epoch was not written (or not refused): {log}"
    );
    assert_eq!(code, Some(0), "{}", c.report("node 3's exit status"));
    let (next, next_epoch, _) = c
        .await_agreement(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", c.report("no new leader")));
    assert_ne!(next, 3);
    assert!(next_epoch > epoch);
}

/// A file system that makes every rename wait 400 ms (an ext4 journal commit held up by
/// online discard, a slow SD card) must not stall the election: the state file is
/// replaced by a rename on the leader's ticks, and an event loop waiting in that rename
/// sent no heartbeat, so its followers left it and the cluster re-elected every few
/// hundred milliseconds. The delay is injected into the leader's renames with
/// `strace -e inject=rename:delay_enter=400000`; the leader must keep its term for 4 s
/// and its state file must still come to say it leads. The files are on a disk (the
/// build's, else `/var/tmp` or the temporary directory): a state file in memory, on
/// tmpfs, is replaced in the event loop, since no device holds it there.
#[test]
fn a_state_file_held_up_by_the_disk_does_not_stall_the_election() {
    let candidates = [
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
        PathBuf::from("/var/tmp"),
        std::env::temp_dir(),
    ];
    let base = candidates
        .iter()
        .find(|dir| dir.is_dir() && !memory_backed(dir))
        .unwrap_or_else(|| {
            panic!("this test needs a directory on a disk; all of {candidates:?} are in memory")
        });
    let mut c = LocalCluster::new_in(base, Path::new(EXE), 3, 0).expect("prepare a local cluster");
    let prefix = strace(&[
        "--seccomp-bpf",
        "-e",
        "trace=rename,renameat,renameat2",
        "-e",
        "inject=rename,renameat,renameat2:delay_enter=400000",
    ]);
    c.set_launcher(3, Path::new(EXE), prefix);
    let (_daemon, epoch) = start_traced_leader(&mut c);
    let watched = std::time::Instant::now();
    let mut published = false;
    while watched.elapsed() < Duration::from_secs(4) {
        for id in 1..=2 {
            let state = c.state(id);
            assert!(
                state
                    .as_ref()
                    .is_some_and(|s| s.leader == Some(3) && s.epoch == Some(epoch)),
                "node {id} left leader 3 after {:?}: {}",
                watched.elapsed(),
                c.report("the term ended")
            );
        }
        published |= c
            .state(3)
            .is_some_and(|s| s.state == "LEADING" && s.epoch == Some(epoch));
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = c.log(3);
    assert_eq!(
        log.matches("LOOKING leader=none").count(),
        0,
        "the leader gave up its term: {log}"
    );
    assert!(
        published,
        "{}",
        c.report("node 3's state file never said LEADING")
    );
}

/// Starts node 3 (launched under strace) first, so that its own start-up writes (its data
/// dir) are behind it when the others come, then nodes 1 and 2; FLE makes 3 the leader
/// (highest id). Returns a guard on 3's daemon process, which strace leaves running when
/// it is killed, and the agreed epoch.
fn start_traced_leader(c: &mut LocalCluster) -> (KillOnDrop, u64) {
    c.start(3).expect("start node 3");
    let began = std::time::Instant::now();
    while c.state(3).is_none() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "{}",
            c.report("node 3 never started")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon = KillOnDrop(c.state(3).map(|s| s.pid).expect("node 3's pid"));
    c.start(1).expect("start node 1");
    c.start(2).expect("start node 2");
    let (leader, epoch, _) = c
        .await_agreement(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", c.report("no agreement")));
    assert_eq!(leader, 3, "FLE: the highest id leads");
    (daemon, epoch)
}

/// SIGKILLs the process `0` (one this test started) when dropped, also on a failure.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
