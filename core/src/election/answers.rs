//! Which optional heartbeats a follower answers: a pure rule over the heartbeat's
//! sequence number, the follower's rank among the voters other than the leader and the
//! sync limit.
//!
//! A leader marks a heartbeat ANSWER_OPTIONAL while its lease outlasts a tick and a half
//! and every other voter's support outlasts [`Config::answer_slack`] (see
//! `leading::Node::answers_optional`). Left at that, every follower would skip the same
//! heartbeats and answer the same ones, so the leader would hear from all of them at
//! once, every other tick. But a lease needs a quorum, and every voter's support needs
//! renewing only once per `sync_limit` ticks. So optional
//! heartbeats take turns instead: heartbeat `s` is answered by the follower of rank `r`
//! if `s mod (others · spacing) = r · spacing`, where `others` is the number of voters
//! other than the leader and `spacing = max(1, (sync_limit − 2) / others)` ticks. Each
//! follower answers one heartbeat in `others · spacing ≤ max(others, sync_limit − 2)`,
//! and the followers' answers are spread evenly over the ticks.
//!
//! With three voters that is every other heartbeat for each follower at sync-limit 3 or
//! 4, and every fourth at the default 6, where the leader hears one answer every other
//! tick. A support renewed on its follower's turn has about `sync_limit − others ·
//! spacing` ticks left when the next turn comes (at least two whenever the spacing is not
//! clamped to 1), more than the slack, so in steady state no heartbeat needs to ask
//! everyone. Where a turn's answer is lost, that support runs down to the slack and the
//! next heartbeat asks every follower again; where the turns come too rarely for the
//! supports (many voters, small sync limit), heartbeats that ask everyone come between
//! them, at the latest when the lease is down to a tick and a half. Neither the leader nor
//! safety depends on the followers applying the rule alike: the lease counts only the
//! echoes that arrive, and a follower skipping its turn only makes the leader ask everyone
//! sooner.
//!
//! A heartbeat's sequence number is the leader's frame counter, so the turns go round
//! exactly while the leader sends nothing but heartbeats, and irregularly (never less
//! often than the supports require, by the rule above) when it sends other frames in
//! between.
//!
//! [`Config::answer_slack`]: super::config::Config::answer_slack

/// The rank of the voter at index `mine` among the voters other than the one at index
/// `leader` (in voter order). `None` if either is not a voter or they are the same.
pub(super) fn rank(mine: Option<usize>, leader: Option<usize>) -> Option<usize> {
    let (mine, leader) = (mine?, leader?);
    match mine.cmp(&leader) {
        core::cmp::Ordering::Less => Some(mine),
        core::cmp::Ordering::Equal => None,
        core::cmp::Ordering::Greater => Some(mine - 1),
    }
}

/// Ticks between two followers' turns: `max(1, (sync_limit − 2) / others)`.
fn spacing(sync_limit: u32, others: usize) -> u64 {
    let others = u64::try_from(others.max(1)).unwrap_or(u64::MAX);
    (u64::from(sync_limit.saturating_sub(2)) / others).max(1)
}

/// Heartbeats from one follower's turn to its next: `others · spacing`.
pub(super) fn cycle(sync_limit: u32, others: usize) -> u64 {
    let n = u64::try_from(others.max(1)).unwrap_or(u64::MAX);
    n.saturating_mul(spacing(sync_limit, others))
}

/// The sequence numbers, modulo [`cycle`], that are the turns of the follower of `rank`
/// (of `others`): `rank · spacing mod cycle`.
pub(super) fn residue(rank: usize, others: usize, sync_limit: u32) -> u64 {
    let rank = u64::try_from(rank).unwrap_or(u64::MAX);
    rank.saturating_mul(spacing(sync_limit, others)) % cycle(sync_limit, others)
}

/// Whether the follower of `rank` (of `others`) answers the optional heartbeat with
/// `sequence` (see the module docs).
pub(super) fn is_turn(sequence: u64, rank: usize, others: usize, sync_limit: u32) -> bool {
    sequence % cycle(sync_limit, others) == residue(rank, others, sync_limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks whose turn each of the sequences `from..from + n` is.
    fn turns(from: u64, n: u64, others: usize, sync_limit: u32) -> heapless::Vec<i64, 64> {
        (from..from + n)
            .map(|s| {
                (0..others)
                    .find(|&r| is_turn(s, r, others, sync_limit))
                    .map_or(-1, |r| r as i64)
            })
            .collect()
    }

    #[test]
    fn the_rank_skips_the_leader() {
        let voters = [10, 20, 30, 40];
        let rank = |me: u64, leader: u64| {
            let at = |id: u64| voters.iter().position(|&v| v == id);
            rank(at(me), at(leader))
        };
        assert_eq!(rank(10, 30), Some(0));
        assert_eq!(rank(20, 30), Some(1));
        assert_eq!(rank(40, 30), Some(2));
        assert_eq!(rank(40, 10), Some(2));
        assert_eq!(rank(30, 30), None, "the leader itself");
        assert_eq!(rank(50, 30), None, "an observer");
        assert_eq!(rank(10, 50), None, "a leader that is no voter");
    }

    #[test]
    fn three_voters_take_turns_by_sequence() {
        // sync-limit 3 and 4: the two followers alternate.
        assert_eq!(turns(0, 6, 2, 3), [0, 1, 0, 1, 0, 1]);
        assert_eq!(turns(7, 4, 2, 4), [1, 0, 1, 0]);
        // The default 6: one answer every other tick, each follower every fourth.
        assert_eq!(turns(0, 8, 2, 6), [0, -1, 1, -1, 0, -1, 1, -1]);
        // A large sync limit spreads the turns further.
        assert_eq!(turns(0, 8, 2, 10), [0, -1, -1, -1, 1, -1, -1, -1]);
    }

    #[test]
    fn every_follower_gets_a_turn_within_the_slack_its_support_allows() {
        for others in 1..=8usize {
            for sync_limit in 2..=12u32 {
                let cycle = cycle(sync_limit, others);
                assert!(
                    cycle <= (others as u64).max(u64::from(sync_limit.saturating_sub(2))),
                    "{others} others, sync-limit {sync_limit}: cycle {cycle}"
                );
                for rank in 0..others {
                    let mine = (0..cycle)
                        .filter(|&s| is_turn(s + 1000, rank, others, sync_limit))
                        .count();
                    assert_eq!(mine, 1, "{others} others, sync-limit {sync_limit}");
                }
                // At most one follower per heartbeat.
                for s in 0..cycle {
                    let n = (0..others)
                        .filter(|&r| is_turn(s, r, others, sync_limit))
                        .count();
                    assert!(n <= 1);
                }
            }
        }
    }
}
