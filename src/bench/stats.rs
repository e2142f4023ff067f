//! Samples of one measured quantity and their summary (min, nearest-rank p50 and p99, max).

/// Nearest-rank percentile of sorted samples (p in 0..=100).
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

/// The figures of a [`Series`] that the table and the JSON report show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Summary {
    pub min: f64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Samples in milliseconds, and how many repetitions produced none.
#[derive(Debug, Clone, Default)]
pub(super) struct Series {
    pub samples: Vec<f64>,
    pub failures: usize,
}

impl Series {
    /// None without samples.
    pub fn summary(&self) -> Option<Summary> {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        Some(Summary {
            min: *s.first()?,
            p50: percentile(&s, 50.0)?,
            p99: percentile(&s, 99.0)?,
            max: *s.last()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&s, 50.0), Some(10.0));
        assert_eq!(percentile(&s, 99.0), Some(20.0));
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
        let s: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(percentile(&s, 99.0), Some(198.0));
    }

    #[test]
    fn summary_sorts_unordered_samples() {
        let series = Series {
            samples: vec![5.0, 1.0, 4.0, 2.0, 3.0],
            failures: 1,
        };
        assert_eq!(
            series.summary(),
            Some(Summary {
                min: 1.0,
                p50: 3.0,
                p99: 5.0,
                max: 5.0
            })
        );
        assert_eq!(Series::default().summary(), None);
    }
}
