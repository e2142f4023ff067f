//! The seeded generator of every test schedule: `votecast_core::rng::SplitMix64` with the
//! draws tests need (ranges, percentages, picks). A schedule replays from its seed.

use votecast_core::rng::{mix, SplitMix64};

#[derive(Clone, Debug)]
pub struct Rng(SplitMix64);

impl Rng {
    /// The simulator's derivation (the seed xored with a fixed constant). Kept as it is so
    /// that a seed printed by an earlier run replays the same schedule.
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed ^ 0x5eed_1e55_c0ff_ee00))
    }

    /// The seed scrambled first, so that neighbouring seeds start far apart (the LAN
    /// schedules, whose seeds are small consecutive numbers).
    pub fn mixed(seed: u64) -> Rng {
        Rng(SplitMix64::new(mix(seed)))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.next_u64() % 10_000 < u64::from(percent) * 100
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// `k` distinct items of `candidates` (fewer if there are fewer), in draw order.
    pub fn sample<T: Copy>(&mut self, candidates: &[T], k: usize) -> Vec<T> {
        let mut pool = candidates.to_vec();
        let mut out = Vec::new();
        while out.len() < k && !pool.is_empty() {
            let at = self.range(0, pool.len() as u64 - 1) as usize;
            out.push(pool.swap_remove(at));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_bounds_and_replay() {
        let mut a = Rng::new(3);
        let mut b = Rng::new(3);
        for _ in 0..1000 {
            let x = a.range(5, 9);
            assert!((5..=9).contains(&x));
            assert_eq!(x, b.range(5, 9));
        }
        assert!(!a.chance(0));
        assert!(a.chance(100));
        let s = a.sample(&[1, 2, 3, 4], 3);
        assert_eq!(s.len(), 3);
        assert!(s.iter().all(|x| (1..=4).contains(x)));
        assert_ne!(s[0], s[1]);
        assert_eq!(a.sample(&[7], 5), vec![7]);
    }

    #[test]
    fn the_two_derivations_differ() {
        assert_ne!(Rng::new(1).next_u64(), Rng::mixed(1).next_u64());
    }
}
