//! Stand-ins for core methods that are being added in parallel, so the driver compiles
//! against the core as it is. An inherent method of `Node` with the same name wins over a
//! trait method, so once the core has them this adapter is unused and can be deleted.
//!
//! The stand-ins keep the old behaviour: no process nonce (the core's default), no epoch
//! floor, and a `step_down` that changes nothing in the core (the driver then only stops
//! *publishing* LEADING; the core keeps sending heartbeats until `shutdown`, which is safe:
//! it only extends promises the followers already made).

use votecast_core::auth::KeySet;
use votecast_core::election::{Instant, Node};

#[allow(dead_code)]
pub(crate) trait CoreExt {
    fn set_process_nonce(&mut self, _nonce: u64) {}
    fn set_epoch_floor(&mut self, _floor: u64) {}
    fn step_down(&mut self, _now: Instant) {}
    /// Replace the keys that sign and verify frames. `false`: the core cannot swap keys on
    /// a running node (the keys stay as they were).
    fn set_keys(&mut self, _keys: KeySet) -> bool {
        false
    }
}

impl CoreExt for Node {}
