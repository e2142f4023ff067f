//! Vote ordering: ZooKeeper's `totalOrderPredicate`, with eligibility in front.

use crate::wire::Vote;

/// True when `new` beats `current`: an eligible vote beats an ineligible one, then a
/// greater peer epoch wins, then a greater zxid, then a greater server id. Equal votes do
/// not beat each other.
///
/// Eligibility is part of the vote (its candidate set it when it cast the vote, and every
/// copy carries it), so every node orders the same two votes the same way: this stays a
/// total order on vote values, as FastLeaderElection needs. Without health checks every
/// vote is eligible and the order is ZooKeeper's.
///
/// Callers only pass votes whose leader is a configured voter (`validVoter`), which is
/// ZooKeeper's "weight 0 never wins" rule.
pub fn beats(new: &Vote, current: &Vote) -> bool {
    (!new.ineligible, new.peer_epoch, new.zxid, new.leader)
        > (
            !current.ineligible,
            current.peer_epoch,
            current.zxid,
            current.leader,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(leader: u64, zxid: u64, peer_epoch: u64) -> Vote {
        Vote {
            leader,
            zxid,
            peer_epoch,
            ineligible: false,
        }
    }

    #[test]
    fn peer_epoch_then_zxid_then_id() {
        // Epoch dominates zxid and id.
        assert!(beats(&v(1, 0, 2), &v(9, 99, 1)));
        // Equal epoch: zxid dominates id (FLE compares zxid first, then myid).
        assert!(beats(&v(1, 123, 1), &v(3, 122, 1)));
        // Equal epoch and zxid: the larger id wins.
        assert!(beats(&v(3, 0, 0), &v(2, 0, 0)));
        assert!(!beats(&v(2, 0, 0), &v(3, 0, 0)));
        // A vote never beats itself.
        assert!(!beats(&v(3, 5, 1), &v(3, 5, 1)));
    }

    #[test]
    fn an_eligible_vote_beats_every_ineligible_one() {
        let unhealthy = |leader, zxid, peer_epoch| Vote {
            ineligible: true,
            ..v(leader, zxid, peer_epoch)
        };
        assert!(beats(&v(1, 0, 0), &unhealthy(9, 99, 9)));
        assert!(!beats(&unhealthy(9, 99, 9), &v(1, 0, 0)));
        // Among ineligible votes the usual order holds.
        assert!(beats(&unhealthy(2, 5, 1), &unhealthy(3, 4, 1)));
        // The same candidate, eligible again, beats its ineligible vote.
        assert!(beats(&v(3, 5, 1), &unhealthy(3, 5, 1)));
        assert!(!beats(&unhealthy(3, 5, 1), &unhealthy(3, 5, 1)));
    }
}
