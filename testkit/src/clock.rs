//! A node's local clock in a test harness: its own origin and a rate error against the
//! harness's global ("real") time, both in microseconds.

use votecast_core::election::Instant;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalClock {
    /// The local reading at global time 0.
    pub offset_us: u64,
    /// Rate error in ppm: local = offset + real + real · drift / 10⁶.
    pub drift_ppm: i64,
}

impl LocalClock {
    pub fn local(&self, real_us: u64) -> Instant {
        let real = i128::from(real_us);
        let skew = real * i128::from(self.drift_ppm) / 1_000_000;
        Instant::from_micros((i128::from(self.offset_us) + real + skew) as u64)
    }

    /// The earliest global time, not before `not_before`, at which the local clock reads
    /// at least `local`.
    pub fn real_at(&self, local: Instant, not_before: u64) -> u64 {
        let target = i128::from(local.as_micros()) - i128::from(self.offset_us);
        let mut real =
            (target * 1_000_000 / (1_000_000 + i128::from(self.drift_ppm))).max(0) as u64;
        real = real.max(not_before);
        while self.local(real) < local {
            real += 1;
        }
        while real > not_before && self.local(real - 1) >= local {
            real -= 1;
        }
        real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_at_inverts_local() {
        for drift_ppm in [-50_000, 0, 70_000] {
            let clock = LocalClock {
                offset_us: 1_000,
                drift_ppm,
            };
            for real in [0, 1, 999, 123_456_789] {
                let local = clock.local(real);
                let back = clock.real_at(local, 0);
                assert!(
                    back <= real && clock.local(back) >= local,
                    "{drift_ppm} {real}"
                );
                assert!(back == 0 || clock.local(back - 1) < local);
            }
            // Never before `not_before`.
            assert_eq!(clock.real_at(Instant::from_micros(0), 500), 500);
        }
    }
}
