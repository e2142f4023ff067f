//! The notifier against a real unix datagram socket standing in for systemd.

use super::*;
use crate::cluster::TempDir;

struct Manager {
    _dir: TempDir,
    path: std::path::PathBuf,
    socket: UnixDatagram,
}

fn manager() -> Manager {
    let dir = TempDir::new("votecast-notify").unwrap();
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    Manager {
        _dir: dir,
        path,
        socket,
    }
}

impl Manager {
    fn env(&self) -> NotifyEnv<'_> {
        NotifyEnv {
            socket: Some(self.path.as_os_str()),
            watchdog_usec: None,
            watchdog_pid: None,
        }
    }

    fn next(&self) -> String {
        let mut buf = [0u8; 1024];
        let n = self.socket.recv(&mut buf).expect("a message");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }
}

const LEADING: Status = Status {
    state: "LEADING",
    leader: Some(2),
    epoch: Some(4),
};

#[test]
fn every_message_is_one_datagram_in_the_protocols_format() {
    let m = manager();
    let mut n = Notifier::new(&m.env()).expect("a notifier");
    n.ready(&LEADING);
    assert_eq!(m.next(), "READY=1\nSTATUS=LEADING leader=2 epoch=4\n");
    let looking = Status {
        state: "LOOKING",
        leader: None,
        epoch: None,
    };
    n.status(&looking);
    assert_eq!(m.next(), "STATUS=LOOKING leader=none epoch=none\n");
    n.watchdog_alive();
    assert_eq!(m.next(), "WATCHDOG=1\n");
    n.reloading();
    let reloading = m.next();
    let lines: Vec<&str> = reloading.lines().collect();
    assert_eq!(lines[0], "RELOADING=1", "{reloading}");
    let usec: u64 = lines[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap()
        .parse()
        .unwrap();
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).unwrap();
    let now = t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000;
    assert!(usec <= now && now - usec < 5_000_000, "{usec} vs {now}");
    n.reloaded(&LEADING);
    assert_eq!(m.next(), "READY=1\nSTATUS=LEADING leader=2 epoch=4\n");
    n.stopping();
    assert!(m.next().starts_with("STOPPING=1\n"));
    assert_eq!(n.failures, 0);
}

#[test]
fn a_manager_that_does_not_read_never_blocks_the_sender() {
    let m = manager();
    let mut n = Notifier::new(&m.env()).unwrap();
    let started = Instant::now();
    for _ in 0..5_000 {
        n.status(&LEADING);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        n.failures > 0,
        "the receive queue filled up, sends failed at once"
    );
    // What was queued is intact, and sending works again once the queue drains.
    assert_eq!(m.next(), "STATUS=LEADING leader=2 epoch=4\n");
}

#[test]
fn a_vanished_socket_is_counted_not_fatal() {
    let m = manager();
    let mut n = Notifier::new(&m.env()).unwrap();
    std::fs::remove_file(&m.path).unwrap();
    n.watchdog_alive();
    n.watchdog_alive();
    assert_eq!(n.failures, 2);
}

#[test]
fn an_abstract_socket_is_reached_by_its_at_name() {
    let name = format!("votecast-notify-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let at = format!("@{name}");
    let env = NotifyEnv {
        socket: Some(OsStr::new(&at)),
        watchdog_usec: None,
        watchdog_pid: None,
    };
    Notifier::new(&env).unwrap().watchdog_alive();
    let mut buf = [0u8; 64];
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"WATCHDOG=1\n");
}

#[test]
fn unusable_values_mean_no_notifier_or_no_watchdog() {
    for bad in ["", "relative/path", "x"] {
        let env = NotifyEnv {
            socket: Some(OsStr::new(bad)),
            watchdog_usec: None,
            watchdog_pid: None,
        };
        assert!(Notifier::new(&env).is_none(), "{bad:?}");
    }
    let none = NotifyEnv {
        socket: None,
        watchdog_usec: Some(OsStr::new("5000000")),
        watchdog_pid: None,
    };
    assert!(Notifier::new(&none).is_none());
    let m = manager();
    let pid = std::process::id().to_string();
    let other = (std::process::id() + 1).to_string();
    for (usec, watchdog_pid, expected) in [
        (None, None, None),
        (Some("5000000"), None, Some(Duration::from_millis(2500))),
        (
            Some("5000000"),
            Some(pid.as_str()),
            Some(Duration::from_millis(2500)),
        ),
        (Some("5000000"), Some(other.as_str()), None),
        (Some("0"), None, None),
        (Some("5s"), None, None),
    ] {
        let env = NotifyEnv {
            watchdog_usec: usec.map(OsStr::new),
            watchdog_pid: watchdog_pid.map(OsStr::new),
            ..m.env()
        };
        let n = Notifier::new(&env).unwrap();
        assert_eq!(n.watchdog(), expected, "{usec:?} {watchdog_pid:?}");
    }
}
