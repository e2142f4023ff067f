//! Static parameters of one node, validated once at construction.

use core::time::Duration;

use crate::auth::KeySet;
use crate::wire::NO_LEADER;

/// Most voters a cluster may have. Per-voter state lives in fixed arrays of this size.
pub const MAX_VOTERS: usize = 64;

/// Frames a voter may send in one burst before its budget throttles it: one vote change per
/// other voter in an election, twice over.
pub const FRAME_BUDGET_BURST: u32 = 2 * MAX_VOTERS as u32;

/// Configuration errors. Each names exactly one problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    NoVoters,
    TooManyVoters,
    DuplicateVoter(u64),
    /// Ids 0 and `u64::MAX` are reserved (0 = none in some fields, MAX = "no vote").
    ReservedId(u64),
    ZeroTick,
    /// sync_limit and init_limit must each be at least 2 ticks.
    LimitTooSmall,
    /// finalize_wait, min and max notification intervals must satisfy
    /// 0 < finalize_wait, 0 < min <= max.
    BadNotificationInterval,
    /// Clock-rate error bound must be below 10 % (100_000 ppm).
    DriftTooLarge,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::NoVoters => write!(f, "the voter list is empty"),
            ConfigError::TooManyVoters => write!(f, "more than {MAX_VOTERS} voters"),
            ConfigError::DuplicateVoter(id) => write!(f, "voter {id} is listed twice"),
            ConfigError::ReservedId(id) => write!(f, "id {id} is reserved"),
            ConfigError::ZeroTick => write!(f, "tick must be greater than zero"),
            ConfigError::LimitTooSmall => write!(f, "sync/init limits must be at least 2 ticks"),
            ConfigError::BadNotificationInterval => {
                write!(
                    f,
                    "need 0 < finalize-wait and 0 < min <= max notification interval"
                )
            }
            ConfigError::DriftTooLarge => write!(f, "clock drift bound must be below 10 %"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Parameters of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// This node's server id.
    pub id: u64,
    /// Voting members, sorted ascending. Any other id is an observer.
    pub voters: heapless::Vec<u64, MAX_VOTERS>,
    /// Cluster id carried in every frame; frames of other clusters are dropped at parse time.
    pub cluster: u32,
    /// Heartbeat period (ZooKeeper's tickTime).
    pub tick: Duration,
    /// A follower that hears no leader frame for this many ticks goes LOOKING.
    pub sync_limit: u32,
    /// The leadership phase must complete within this many ticks of the decision.
    pub init_limit: u32,
    /// After a quorum agrees, wait this long for a better vote before deciding.
    pub finalize_wait: Duration,
    /// First notification timeout of an election (ZooKeeper: minNotificationInterval).
    pub min_notification_interval: Duration,
    /// Cap of the exponential notification backoff.
    pub max_notification_interval: Duration,
    /// Bound on the clock-rate error of every node, in parts per million (10_000 = 1 %).
    /// Leases are shortened so that they hold whenever every clock is within this bound.
    pub max_clock_drift_ppm: u32,
    /// Shared keys that sign our frames and verify received ones; empty = authentication
    /// off (every frame is accepted whatever its key id and tag).
    pub keys: KeySet,
    /// As leader, let followers take turns answering heartbeats while every voter's
    /// support outlasts [`Config::answer_slack`] (ANSWER_OPTIONAL, see `answers`).
    /// Fewer frames (with three voters a quarter of them at sync-limit 6, half at 3), but
    /// the lease is renewed in steps of two ticks at sync-limit 6, so a state file whose
    /// lease end must stay two ticks ahead is replaced every other tick instead of every
    /// third. The answers saved outweigh that (measured on the daemon, which always sets
    /// this). Off by default, so that the core's own tests see every heartbeat answered.
    pub sparse_answers: bool,
}

impl Config {
    /// A configuration with the LAN defaults: tick 50 ms, sync limit 6, init limit 10,
    /// finalize wait 50 ms, notification backoff from 50 ms to 2 s, clock drift 1 %.
    pub fn new(id: u64, voters: &[u64]) -> Result<Config, ConfigError> {
        let mut list: heapless::Vec<u64, MAX_VOTERS> = heapless::Vec::new();
        for &voter in voters {
            list.push(voter).map_err(|_| ConfigError::TooManyVoters)?;
        }
        list.sort_unstable();
        let config = Config {
            id,
            voters: list,
            cluster: 0,
            tick: Duration::from_millis(50),
            sync_limit: 6,
            init_limit: 10,
            finalize_wait: Duration::from_millis(50),
            min_notification_interval: Duration::from_millis(50),
            max_notification_interval: Duration::from_secs(2),
            max_clock_drift_ppm: 10_000,
            keys: KeySet::disabled(),
            sparse_answers: false,
        };
        config.validate()?;
        Ok(config)
    }

    /// Check every invariant the core relies on. Call again after changing fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id == 0 || self.id == NO_LEADER {
            return Err(ConfigError::ReservedId(self.id));
        }
        if self.voters.is_empty() {
            return Err(ConfigError::NoVoters);
        }
        for (i, &voter) in self.voters.iter().enumerate() {
            if voter == 0 || voter == NO_LEADER {
                return Err(ConfigError::ReservedId(voter));
            }
            if i > 0 && self.voters[i - 1] >= voter {
                // Sorted on construction, so equal neighbours are duplicates; an unsorted
                // list can only come from direct field edits and is reported the same way.
                return Err(ConfigError::DuplicateVoter(voter));
            }
        }
        if self.tick.is_zero() {
            return Err(ConfigError::ZeroTick);
        }
        if self.sync_limit < 2 || self.init_limit < 2 {
            return Err(ConfigError::LimitTooSmall);
        }
        if self.finalize_wait.is_zero()
            || self.min_notification_interval.is_zero()
            || self.min_notification_interval > self.max_notification_interval
        {
            return Err(ConfigError::BadNotificationInterval);
        }
        if self.max_clock_drift_ppm >= 100_000 {
            return Err(ConfigError::DriftTooLarge);
        }
        Ok(())
    }

    pub fn is_voter(&self, id: u64) -> bool {
        self.voter_index(id).is_some()
    }

    pub(crate) fn voter_index(&self, id: u64) -> Option<usize> {
        self.voters.binary_search(&id).ok()
    }

    /// Votes needed for a decision: a strict majority of the voters (QuorumMaj).
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// How long a follower waits for its leader: sync_limit ticks.
    pub fn sync_timeout(&self) -> Duration {
        self.tick * self.sync_limit
    }

    /// With [`Config::sparse_answers`], while every voter's support of a leader outlasts
    /// this, its heartbeats carry ANSWER_OPTIONAL and only the follower whose turn it is
    /// answers (see `answers`): `sync_limit − cycle` ticks less the drift margin of
    /// [`Config::lease_duration`] less half a tick, where `cycle` is the number of
    /// heartbeats from one follower's turn to its next; at least half a tick. A support
    /// renewed on its turn has `sync_limit − cycle` ticks less the drift margin left when
    /// its next turn comes, half a tick more than the slack, so in steady state every
    /// heartbeat is optional. If a turn's answer is lost, a heartbeat asks every follower
    /// before that support runs out whenever the turns leave two ticks to spare (three
    /// voters at sync-limit 4 and more). When they leave one (three voters at sync-limit
    /// 3) a support whose turn's answer was lost may run out before the next heartbeat
    /// asks; the lease then stands on the other followers' supports.
    pub fn answer_slack(&self) -> Duration {
        let others = self.voters.len().saturating_sub(1);
        let cycle = super::answers::cycle(self.sync_limit, others);
        let spare =
            u32::try_from(u64::from(self.sync_limit).saturating_sub(cycle)).unwrap_or(u32::MAX);
        let drift_margin = self.sync_timeout().saturating_sub(self.lease_duration());
        self.tick
            .saturating_mul(spare)
            .saturating_sub(drift_margin)
            .saturating_sub(self.tick / 2)
            .max(self.tick / 2)
    }

    /// How long the leadership phase may take: init_limit ticks.
    pub fn init_timeout(&self) -> Duration {
        self.tick * self.init_limit
    }

    /// How long one follower's acknowledgement keeps the leader's lease alive, measured on
    /// the leader's clock from the moment the acknowledged frame was sent.
    ///
    /// A follower promises support for `sync_timeout` on its own clock from receipt; with
    /// clock rates within ±ρ that is at least `sync_timeout / (1 + ρ)` of real time. The
    /// leader's clock may run slow by ρ, so it must stop after
    /// `sync_timeout · (1 − ρ) / (1 + ρ)` of its own time. Rounded down.
    pub fn lease_duration(&self) -> Duration {
        let ppm = u128::from(self.max_clock_drift_ppm);
        let sync = self.sync_timeout().as_micros();
        let micros = sync * (1_000_000 - ppm) / (1_000_000 + ppm);
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// How long a voter must have been silent before a frame of a lower incarnation than
    /// the newest one we saw from it is accepted (readmitted): `max(2 · sync_timeout,
    /// max_notification_interval) + tick`.
    ///
    /// - Longer than `sync_timeout`, so that every promise we made to any process of that
    ///   voter has run out when it is readmitted (a promise lasts `sync_timeout` of our
    ///   clock from a frame we accepted, and silence is measured on the same clock from
    ///   the last one): a readmitted frame, replayed or not, can end no running promise.
    ///   Twice over, so that its followers have also given up on it (they time out after
    ///   `sync_timeout`) and a leader it was has lost its lease.
    /// - At least `max_notification_interval + tick`: a live voter retransmits its vote at
    ///   least that often even while LOOKING and backed off (and sends every tick while
    ///   LEADING, and answers at least once per `sync_timeout` and a tick while
    ///   FOLLOWING: on its turn, or when its support ran down and a heartbeat asks
    ///   everyone, see [`Config::sparse_answers`]; both bounds are below this), so an
    ///   attacker's replay of an old incarnation cannot slip in between the frames of a
    ///   voter that is merely quiet.
    pub fn readmit_after(&self) -> Duration {
        self.sync_timeout()
            .saturating_mul(2)
            .max(self.max_notification_interval)
            .saturating_add(self.tick)
    }

    /// Per-voter receive budget: a voter may send [`FRAME_BUDGET_BURST`] frames at once, then
    /// one per this interval (16 per tick). A healthy voter sends about one per tick plus a
    /// burst of votes during an election; frames beyond the budget are dropped like lost ones.
    pub fn frame_budget_interval(&self) -> Duration {
        self.tick / 16
    }

    /// Minimum spacing of unsolicited answers to LOOKING frames: one answer per this
    /// interval serves every looking node (the answer is multicast).
    pub fn answer_interval(&self) -> Duration {
        self.tick.min(self.min_notification_interval) / 5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_derived_timing() {
        let c = Config::new(2, &[3, 1, 2]).unwrap();
        assert_eq!(c.voters.as_slice(), &[1, 2, 3]);
        assert_eq!(c.quorum(), 2);
        assert_eq!(c.sync_timeout(), Duration::from_millis(300));
        // 300 ms · 0.99 / 1.01 = 294.059... ms, rounded down to the microsecond.
        assert_eq!(c.lease_duration(), Duration::from_micros(294_059));
        assert_eq!(c.answer_interval(), Duration::from_millis(10));
        // max(2 · 300 ms, 2 s) + 50 ms: the backoff cap dominates at the defaults.
        assert_eq!(c.readmit_after(), Duration::from_millis(2_050));
        let mut slow = c.clone();
        slow.sync_limit = 30;
        assert_eq!(slow.readmit_after(), Duration::from_millis(3_050));
        assert!(c.is_voter(3) && !c.is_voter(4));
    }

    #[test]
    fn quorum_is_strict_majority() {
        for (n, q) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (64, 33)] {
            let voters: heapless::Vec<u64, 64> = (1..=n as u64).collect();
            assert_eq!(Config::new(1, &voters).unwrap().quorum(), q, "n = {n}");
        }
    }

    #[test]
    fn rejects_bad_configs() {
        assert_eq!(Config::new(1, &[]), Err(ConfigError::NoVoters));
        assert_eq!(
            Config::new(1, &[1, 2, 2]),
            Err(ConfigError::DuplicateVoter(2))
        );
        assert_eq!(Config::new(0, &[1]), Err(ConfigError::ReservedId(0)));
        assert_eq!(
            Config::new(1, &[1, u64::MAX]),
            Err(ConfigError::ReservedId(u64::MAX))
        );
        let many: heapless::Vec<u64, 70> = (1..=65).collect();
        assert_eq!(Config::new(1, &many), Err(ConfigError::TooManyVoters));
        let mut c = Config::new(1, &[1]).unwrap();
        c.tick = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::ZeroTick));
        c.tick = Duration::from_millis(50);
        c.sync_limit = 1;
        assert_eq!(c.validate(), Err(ConfigError::LimitTooSmall));
        c.sync_limit = 6;
        c.min_notification_interval = Duration::from_secs(3);
        assert_eq!(c.validate(), Err(ConfigError::BadNotificationInterval));
        c.min_notification_interval = Duration::from_millis(50);
        c.max_clock_drift_ppm = 100_000;
        assert_eq!(c.validate(), Err(ConfigError::DriftTooLarge));
    }
}
