//! Diagnosis: which voters a node hears (state file, `votecast status`), and the one
//! warning of a voter that hears nobody although its sends succeed.

use std::time::{Duration, Instant};

use votecast::cluster::{LocalCluster, TempDir};

use super::{agree, cluster, run_to_exit, secs, votecast};

/// The start of the silence warning, as the daemon logs it.
const SILENCE_WARNING: &str = "no frame from any other voter";
/// The detection window with the default timing: 6 ticks of 50 ms.
const WINDOW_MS: u64 = 300;

/// Polls `done` every 50 ms (cheap for a 20 s wait on a 2-core machine) until it holds or
/// `limit` has passed since `start`; returns the time since `start` when it held.
fn poll_until(start: Instant, limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The ids node `id` published as heard, with their ages.
fn heard(c: &LocalCluster, id: u64) -> Option<Vec<(u64, u64)>> {
    let heard = c.state(id)?.heard?;
    Some(heard.iter().map(|h| (h.id, h.age_ms)).collect())
}

fn heard_ids(c: &LocalCluster, id: u64) -> Option<Vec<u64>> {
    heard(c, id).map(|h| h.into_iter().map(|(id, _)| id).collect())
}

/// Every node of a running cluster hears the two others, within the detection window;
/// `votecast status` shows it as text and JSON; a killed node drops out of the others'
/// lists within the window plus the state file's refresh (1 s); nobody warns.
#[test]
fn each_node_of_three_hears_the_other_two_and_a_killed_one_drops_out() {
    let mut c = cluster(3);
    c.start_all().expect("start");
    let (leader, _, _) = agree(&c, "start");
    let started = Instant::now();
    let all_hear_the_others = poll_until(started, secs(5.0), || {
        (1..=3).all(|id| {
            let others: Vec<u64> = (1..=3).filter(|&o| o != id).collect();
            heard_ids(&c, id) == Some(others)
        })
    });
    assert!(
        all_hear_the_others.is_some(),
        "{}",
        c.report("every node publishes the two others as heard")
    );
    for id in 1..=3 {
        let ages = heard(&c, id).unwrap_or_default();
        assert!(
            ages.iter().all(|&(_, age)| age < WINDOW_MS),
            "{}",
            c.report(format!("node {id}: ages {ages:?} within the window"))
        );
    }

    // `votecast status` of node 1, text and JSON. Retried (bounded): on a loaded machine
    // a stalled process can miss the window for a moment, and the file shows that too.
    let scratch = TempDir::new("votecast-diagnosis").expect("scratch dir");
    let state_file = c.node(1).state_file.display().to_string();
    let status = |json: bool| {
        let mut args = vec!["status", "--state-file", &state_file];
        if json {
            args.push("--json");
        }
        run_to_exit(votecast(&args), scratch.path())
    };
    let mut text = status(false);
    let mut json = status(true);
    for _ in 0..20 {
        let text_ok = text.stdout.contains("; heard 2 (")
            && text.stdout.contains("), 3 (")
            && text.stdout.contains(" as of the update");
        let json_ok = json
            .stdout
            .contains("\"heard\":[2,3],\"heard_age_ms\":{\"2\":");
        if text_ok && json_ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        (text, json) = (status(false), status(true));
    }
    assert_eq!(text.code, Some(0), "{text:?}");
    assert!(text.stdout.contains("; heard 2 ("), "{text:?}");
    assert!(text.stdout.contains("), 3 ("), "{text:?}");
    assert!(text.stdout.contains(" as of the update"), "{text:?}");
    assert_eq!(json.code, Some(0), "{json:?}");
    assert!(
        json.stdout
            .contains("\"heard\":[2,3],\"heard_age_ms\":{\"2\":"),
        "{json:?}"
    );

    // Kill a follower: the two others stop listing it.
    let gone = (1..=3).find(|&id| id != leader).expect("a follower");
    c.kill(gone).expect("kill a follower");
    let killed = Instant::now();
    let dropped = poll_until(killed, secs(5.0), || {
        c.running_ids()
            .iter()
            .all(|&id| heard_ids(&c, id).is_some_and(|h| !h.contains(&gone) && h.len() == 1))
    });
    match dropped {
        Some(took) => println!("killed voter {gone} left the heard lists after {took:?}"),
        None => panic!(
            "{}",
            c.report(format!("voter {gone} still listed as heard"))
        ),
    }
    for id in c.running_ids() {
        assert!(
            !c.log(id).contains(SILENCE_WARNING),
            "{}",
            c.report(format!("node {id} warned although it hears a voter"))
        );
    }
}

/// A voter configured with three voters, the two others never started: its sends
/// succeed on `lo` and it hears nobody, so after 10 s it logs the warning, naming the
/// causes and `--peers`, and only once (checked until 21.5 s, past where a warning
/// repeated every 10 s would show). When a voter starts, it logs that it hears one again
/// and publishes it.
#[test]
fn a_lone_voter_warns_once_that_it_hears_no_other_voter() {
    let mut c = cluster(3);
    let started = Instant::now();
    c.start(1).expect("start node 1 alone");
    let warned = poll_until(started, secs(20.0), || c.log(1).contains(SILENCE_WARNING));
    let Some(warned) = warned else {
        panic!("{}", c.report("no silence warning within 20 s"));
    };
    println!("lone voter warned after {warned:?}");
    assert!(
        warned >= secs(9.9),
        "{}",
        c.report(format!("warned after {warned:?}, before the 10 s"))
    );
    let log = c.log(1);
    for cause in [
        "IGMP snooping",
        "querier",
        "firewall",
        "--interface",
        "--cluster",
        "--peers",
        "voter (2, 3)",
    ] {
        assert!(log.contains(cause), "warning names {cause:?}:\n{log}");
    }
    assert_eq!(
        heard_ids(&c, 1),
        Some(vec![]),
        "{}",
        c.report("heard nobody")
    );

    let quiet_until = secs(21.5);
    std::thread::sleep(quiet_until.saturating_sub(started.elapsed()));
    let warnings = c.log(1).matches(SILENCE_WARNING).count();
    assert_eq!(warnings, 1, "{}", c.report("exactly one silence warning"));

    c.start(2).expect("start node 2");
    let restarted = Instant::now();
    let recovered = poll_until(restarted, secs(10.0), || {
        c.log(1).contains("voter 2 heard again")
            && heard_ids(&c, 1) == Some(vec![2])
            && heard_ids(&c, 2) == Some(vec![1])
    });
    assert!(
        recovered.is_some(),
        "{}",
        c.report("node 1 logs voter 2 heard again; 1 and 2 publish each other")
    );
    let (_, _, _) = agree(&c, "two of three");
    assert_eq!(c.log(1).matches(SILENCE_WARNING).count(), 1);
    assert!(!c.log(2).contains(SILENCE_WARNING), "{}", c.log(2));
}
