//! A data dir whose epoch writes fail: the node must stop (exit 1, naming the epochs
//! file) rather than vote, acknowledge or lead without durable epochs. The fault is
//! injected into the real daemon with `strace -e inject=SYSCALL:error=EIO`, for the write
//! of the slot (`pwrite64`) and for its flush (`fdatasync`). The other voters go on and
//! elect a leader among themselves.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use votecast::cluster::LocalCluster;

const EXE: &str = env!("CARGO_BIN_EXE_votecast");

/// The path of `strace`; the test fails (never skips) without it.
fn strace() -> String {
    let found = Command::new("strace").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test needs strace (apt-get install strace) to inject disk errors"
    );
    "strace".into()
}

#[test]
fn a_failing_epochs_write_or_flush_stops_the_node_with_exit_1() {
    let strace = strace();
    for syscall in ["fdatasync", "pwrite64"] {
        let mut c = LocalCluster::new(Path::new(EXE), 3, 0).expect("prepare a local cluster");
        // Node 3 wins the first election (highest id); as leader or follower, its first
        // epoch write fails. Its data dir is prepared before the election (plain writes
        // and fsync, not injected), so the failure is the in-place store.
        let prefix = vec![
            strace.clone(),
            "-f".into(),
            "-qq".into(),
            "-o".into(),
            "/dev/null".into(),
            "-e".into(),
            format!("trace={syscall}"),
            "-e".into(),
            format!("inject={syscall}:error=EIO"),
        ];
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
