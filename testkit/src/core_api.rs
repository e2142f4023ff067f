//! Stand-ins for election-core methods the harnesses call before the core has them: a
//! process nonce for leader time stamps, a floor for proposed epochs, the two-step
//! graceful handover (`step_down`, then `shutdown`) and the readmission delay.
//!
//! Each stand-in does what the core did without the method: no nonce, no floor, no
//! step-down (the RESIGN at `shutdown` ends leadership), `Config::readmit_after` as
//! `2 × sync_timeout + tick`. Inherent methods take precedence over trait methods of the
//! same name, so once `Node` and `Config` have them, every call here resolves to the
//! core's own and this module can go (the imports of these traits then become unused).

use votecast_core::election::{Config, Instant, Node};

/// `Node` methods the harnesses call.
pub trait CoreExt {
    /// Bind leader time stamps to this process (call before `start`).
    fn set_process_nonce(&mut self, nonce: u64);
    /// Propose no epoch below `floor` (0 = none).
    fn set_epoch_floor(&mut self, floor: u64);
    /// Stop reporting LEADING without releasing the followers.
    fn step_down(&mut self, now: Instant);
}

impl CoreExt for Node {
    fn set_process_nonce(&mut self, _nonce: u64) {}

    fn set_epoch_floor(&mut self, _floor: u64) {}

    fn step_down(&mut self, _now: Instant) {}
}

/// `Config` methods the harnesses call.
pub trait ConfigExt {
    /// How long a higher incarnation must be silent before a lower one is readmitted.
    fn readmit_after(&self) -> std::time::Duration;
}

impl ConfigExt for Config {
    fn readmit_after(&self) -> std::time::Duration {
        2 * self.sync_timeout() + self.tick
    }
}

#[cfg(test)]
mod tests {
    // Which method a call resolves to, shown on a local type: the inherent one wins over
    // a trait method of the same name, the trait fills in where there is none.
    struct WithInherent;
    impl WithInherent {
        fn step_down(&mut self, _now: Instant) -> &'static str {
            "inherent"
        }
    }
    trait Ext {
        fn step_down(&mut self, now: Instant) -> &'static str;
    }
    impl Ext for WithInherent {
        fn step_down(&mut self, _now: Instant) -> &'static str {
            "trait"
        }
    }
    struct Without;
    impl Ext for Without {
        fn step_down(&mut self, _now: Instant) -> &'static str {
            "trait"
        }
    }
    use super::*;

    #[test]
    fn inherent_methods_take_precedence_over_the_stand_ins() {
        assert_eq!(WithInherent.step_down(Instant::ZERO), "inherent");
        assert_eq!(Ext::step_down(&mut WithInherent, Instant::ZERO), "trait");
        assert_eq!(Without.step_down(Instant::ZERO), "trait");
    }

    #[test]
    fn the_readmission_delay_outlasts_two_follower_timeouts() {
        let config = Config::new(1, &[1, 2, 3]).unwrap();
        assert!(config.readmit_after() > 2 * config.sync_timeout());
    }
}
