//! Vote ordering: ZooKeeper's `totalOrderPredicate`.

use crate::wire::Vote;

/// True when `new` beats `current`: a greater peer epoch wins, then a greater zxid, then
/// a greater server id. Equal votes do not beat each other.
///
/// Callers only pass votes whose leader is a configured voter (`validVoter`), which is
/// ZooKeeper's "weight 0 never wins" rule.
pub fn beats(new: &Vote, current: &Vote) -> bool {
    (new.peer_epoch, new.zxid, new.leader) > (current.peer_epoch, current.zxid, current.leader)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(leader: u64, zxid: u64, peer_epoch: u64) -> Vote {
        Vote {
            leader,
            zxid,
            peer_epoch,
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
}
