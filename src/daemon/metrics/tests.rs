//! The encoder's output, byte for byte, and the writer's file.

use super::*;
use crate::cluster::TempDir;

fn leader() -> Metrics {
    Metrics {
        id: 2,
        state: "LEADING",
        leader: Some(2),
        epoch: Some(4),
        round: 3,
        zxid: 17,
        lease_remaining_seconds: 0.2505,
        last_election_seconds: Some(0.054_21),
        duplicate_id: false,
        core: Stats {
            frames_received: 100,
            frames_sent: 90,
            malformed: 1,
            other_cluster: 2,
            unauthenticated: 3,
            bad_tags: 4,
            stale_frames: 5,
            throttled: 6,
            invalid_votes: 7,
            duplicate_id_frames: 8,
            elections_started: 9,
            group_answer_requests: 21,
            answers_skipped: 22,
            ..Stats::default()
        },
        sends_dropped: 10,
        send_errors: 11,
        hooks: Some(HookCounters {
            succeeded: 12,
            failed: 13,
            timed_out: 14,
            stopped: 15,
            skipped: 16,
        }),
        start_time_seconds: 1_795_000_000.123_4,
        peers_heard: None,
        healthy: None,
        vip_held: None,
    }
}

const EXPECTED: &str = "\
# HELP votecast_info Constant 1, labelled with this node's id and the daemon's version.
# TYPE votecast_info gauge
votecast_info{id=\"2\",version=\"VERSION\"} 1
# HELP votecast_state 1 for the node's published state, 0 for the others; LEADING only while its lease runs.
# TYPE votecast_state gauge
votecast_state{state=\"looking\"} 0
votecast_state{state=\"following\"} 0
votecast_state{state=\"leading\"} 1
votecast_state{state=\"observing\"} 0
# HELP votecast_leader_id The leader's id; 0 while there is none.
# TYPE votecast_leader_id gauge
votecast_leader_id 2
# HELP votecast_epoch The leader's epoch (fencing token); 0 while there is none.
# TYPE votecast_epoch gauge
votecast_epoch 4
# HELP votecast_round The election round (logical clock).
# TYPE votecast_round gauge
votecast_round 3
# HELP votecast_zxid The data version this node votes with.
# TYPE votecast_zxid gauge
votecast_zxid 17
# HELP votecast_duplicate_id 1 while another board sends frames with this node's id.
# TYPE votecast_duplicate_id gauge
votecast_duplicate_id 0
# HELP votecast_lease_remaining_seconds Until the published view ends unless renewed: the lease (leading) or the follower timeout; 0 without one.
# TYPE votecast_lease_remaining_seconds gauge
votecast_lease_remaining_seconds 0.250500
# HELP votecast_elections_started_total Elections this node started.
# TYPE votecast_elections_started_total counter
votecast_elections_started_total 9
# HELP votecast_last_election_duration_seconds From the start of the last election to its outcome.
# TYPE votecast_last_election_duration_seconds gauge
votecast_last_election_duration_seconds 0.054210
# HELP votecast_frames_received_total Frames that parsed and authenticated, own looped-back frames included.
# TYPE votecast_frames_received_total counter
votecast_frames_received_total 100
# HELP votecast_frames_sent_total Frames built for sending.
# TYPE votecast_frames_sent_total counter
votecast_frames_sent_total 90
# HELP votecast_group_answer_requests_total Times this leader, its followers' unicast answers missing, asked for answers to the group.
# TYPE votecast_group_answer_requests_total counter
votecast_group_answer_requests_total 21
# HELP votecast_answers_skipped_total Heartbeats this follower left unanswered: its leader said every support outlasts the next ones, and it was another follower's turn.
# TYPE votecast_answers_skipped_total counter
votecast_answers_skipped_total 22
# HELP votecast_frames_dropped_total Received datagrams and frames dropped, by reason.
# TYPE votecast_frames_dropped_total counter
votecast_frames_dropped_total{reason=\"malformed\"} 1
votecast_frames_dropped_total{reason=\"other_cluster\"} 2
votecast_frames_dropped_total{reason=\"unauthenticated\"} 3
votecast_frames_dropped_total{reason=\"bad_tag\"} 4
votecast_frames_dropped_total{reason=\"stale\"} 5
votecast_frames_dropped_total{reason=\"throttled\"} 6
votecast_frames_dropped_total{reason=\"invalid_vote\"} 7
votecast_frames_dropped_total{reason=\"duplicate_id\"} 8
# HELP votecast_frame_send_failures_total Frames that could not be sent, by reason.
# TYPE votecast_frame_send_failures_total counter
votecast_frame_send_failures_total{reason=\"buffer_full\"} 10
votecast_frame_send_failures_total{reason=\"error\"} 11
# HELP votecast_hook_runs_total On-change hook runs by how they ended.
# TYPE votecast_hook_runs_total counter
votecast_hook_runs_total{result=\"succeeded\"} 12
votecast_hook_runs_total{result=\"failed\"} 13
votecast_hook_runs_total{result=\"timed_out\"} 14
votecast_hook_runs_total{result=\"stopped\"} 15
# HELP votecast_hook_changes_skipped_total Changes replaced by a newer one before the hook ran for them.
# TYPE votecast_hook_changes_skipped_total counter
votecast_hook_changes_skipped_total 16
# HELP votecast_start_time_seconds When the daemon started, seconds since 1970.
# TYPE votecast_start_time_seconds gauge
votecast_start_time_seconds 1795000000.123
";

fn encoded(m: &Metrics) -> String {
    let mut out = String::new();
    m.encode(&mut out).unwrap();
    out
}

#[test]
fn exact_format() {
    let expected = EXPECTED.replace("VERSION", env!("CARGO_PKG_VERSION"));
    assert_eq!(encoded(&leader()), expected);
}

#[test]
fn a_looking_node_without_hooks_or_elections() {
    let m = Metrics {
        state: "LOOKING",
        leader: None,
        epoch: None,
        lease_remaining_seconds: 0.0,
        last_election_seconds: None,
        hooks: None,
        ..leader()
    };
    let out = encoded(&m);
    for line in [
        "votecast_state{state=\"looking\"} 1\n",
        "votecast_state{state=\"leading\"} 0\n",
        "votecast_leader_id 0\n",
        "votecast_epoch 0\n",
        "votecast_lease_remaining_seconds 0.000000\n",
    ] {
        assert!(out.contains(line), "{line} in\n{out}");
    }
    assert!(!out.contains("votecast_last_election"), "{out}");
    assert!(!out.contains("votecast_hook"), "{out}");
    let states_set = out
        .lines()
        .filter(|l| l.starts_with("votecast_state{") && l.ends_with("} 1"))
        .count();
    assert_eq!(states_set, 1, "{out}");
}

#[test]
fn optional_families_appear_when_known() {
    let m = Metrics {
        peers_heard: Some(3),
        healthy: Some(false),
        vip_held: Some(true),
        ..leader()
    };
    let out = encoded(&m);
    let tail = "\
# HELP votecast_peers_heard Voters heard from recently, this node included.
# TYPE votecast_peers_heard gauge
votecast_peers_heard 3
# HELP votecast_healthy 1 while the health checks pass (the node may lead).
# TYPE votecast_healthy gauge
votecast_healthy 0
# HELP votecast_vip_held 1 while this node holds its floating address(es).
# TYPE votecast_vip_held gauge
votecast_vip_held 1
# HELP votecast_start_time_seconds";
    assert!(out.contains(tail), "{out}");
}

#[test]
fn odd_floats_stay_parseable() {
    let m = Metrics {
        lease_remaining_seconds: f64::INFINITY,
        last_election_seconds: Some(f64::NAN),
        start_time_seconds: f64::NEG_INFINITY,
        ..leader()
    };
    let out = encoded(&m);
    assert!(
        out.contains("votecast_lease_remaining_seconds 0.000000\n"),
        "{out}"
    );
    assert!(
        out.contains("votecast_last_election_duration_seconds 0.000000\n"),
        "{out}"
    );
    assert!(out.contains("votecast_start_time_seconds 0.000\n"), "{out}");
    for bad in [" inf\n", " -inf\n", " NaN\n"] {
        assert!(!out.contains(bad), "{bad} in\n{out}");
    }
}

#[test]
fn the_writer_replaces_the_file_and_keeps_its_buffer() {
    let dir = TempDir::new("votecast-metrics").unwrap();
    let path = dir.join("votecast.prom");
    let mut w = MetricsWriter::new(path.clone());
    assert_eq!(w.path(), path);
    w.write(&leader()).unwrap();
    let capacity = w.buf.capacity();
    assert_eq!(capacity, BUFFER, "a full file fits the first buffer");
    let looking = Metrics {
        state: "LOOKING",
        ..leader()
    };
    w.write(&looking).unwrap();
    assert!(w.flush(std::time::Duration::from_secs(5)));
    assert_eq!(w.buf.capacity(), capacity);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), encoded(&looking));
    assert!(!dir.join("votecast.prom.tmp").exists());
}

#[test]
fn an_unwritable_directory_is_logged_not_a_panic() {
    let mut w = MetricsWriter::new("/nonexistent/votecast/m.prom".into());
    w.write(&leader()).unwrap();
    assert!(
        w.flush(std::time::Duration::from_secs(5)),
        "the writer is done with it"
    );
    assert!(!std::path::Path::new("/nonexistent/votecast/m.prom").exists());
}
