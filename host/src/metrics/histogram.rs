//! A latency histogram any thread may record into and any other may read at
//! any time: one relaxed atomic add per value, nothing allocated or locked.
//! hdrhistogram needs `&mut` to record, so sharing one between a stage and
//! the live status would take a lock (or a copy per read) on the hot path.
//!
//! Buckets are log-linear, as HDR histograms are: exact below 32 µs, then 16
//! buckets per power of two (a value is known to within 1/16, and reported
//! at its bucket's middle: ±3 %). Values are microseconds, up to ~19 hours.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SUB_BUCKETS: u64 = 16;
const EXACT: u64 = 2 * SUB_BUCKETS;
/// Enough for any u64 of microseconds we will see (2^36 µs ≈ 19 h).
const BUCKETS: usize = (EXACT + 32 * SUB_BUCKETS) as usize;

fn bucket_of(value: u64) -> usize {
    if value < EXACT {
        return value as usize;
    }
    let bits = u64::BITS - value.leading_zeros();
    let shift = u64::from(bits) - 5;
    let mantissa = value >> shift; // 16..=31
    let index = EXACT + (shift - 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS);
    (index as usize).min(BUCKETS - 1)
}

/// The lowest and highest value a bucket holds.
fn bucket_range(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < EXACT {
        return (index, index);
    }
    let shift = (index - EXACT) / SUB_BUCKETS + 1;
    let mantissa = SUB_BUCKETS + (index - EXACT) % SUB_BUCKETS;
    (mantissa << shift, ((mantissa + 1) << shift) - 1)
}

/// Counts of values by bucket, recorded from any thread.
pub struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for AtomicHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AtomicHistogram({})", self.summary())
    }
}

impl AtomicHistogram {
    /// Records one value in microseconds. Never allocates, locks or waits.
    pub fn record_us(&self, us: u64) {
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.max.fetch_max(us, Relaxed);
    }

    /// Records a duration in nanoseconds (rounded down to microseconds).
    pub fn record_ns(&self, ns: u64) {
        self.record_us(ns / 1_000);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// A copy of the counts so far (allocates: not for the hot path).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            buckets: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            max: self.max.load(Relaxed),
        }
    }

    /// Median, 99th percentile and maximum so far.
    pub fn summary(&self) -> Summary {
        self.snapshot().summary()
    }
}

/// The counts of an [`AtomicHistogram`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    buckets: Vec<u64>,
    /// The exact maximum (of the whole run, not of a difference).
    max: u64,
}

impl Snapshot {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// What was recorded between `earlier` and this snapshot. Its maximum
    /// is its highest bucket's top, as the exact one is not known.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let buckets: Vec<u64> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| n.saturating_sub(earlier.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        let max = buckets
            .iter()
            .rposition(|&n| n > 0)
            .map_or(0, |i| bucket_range(i).1.min(self.max));
        Snapshot { buckets, max }
    }

    /// The value at quantile `q` (0..=1), at its bucket's middle.
    pub fn quantile(&self, q: f64) -> u64 {
        let count = self.count();
        if count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, high) = bucket_range(i);
                return (low + (high - low) / 2).min(self.max);
            }
        }
        self.max
    }

    pub fn summary(&self) -> Summary {
        Summary {
            count: self.count(),
            median_us: self.quantile(0.5),
            p99_us: self.quantile(0.99),
            max_us: self.max,
        }
    }
}

/// Median, 99th percentile and maximum of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub median_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl std::fmt::Display for Summary {
    /// `median/p99/max` in milliseconds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |us: u64| us as f64 / 1e3;
        write!(
            f,
            "{:.1}/{:.1}/{:.1}",
            ms(self.median_us),
            ms(self.p99_us),
            ms(self.max_us)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order_without_gaps() {
        let mut expected_low = 0;
        for index in 0..BUCKETS {
            let (low, high) = bucket_range(index);
            assert_eq!(low, expected_low, "bucket {index}");
            assert!(high >= low);
            assert_eq!(bucket_of(low), index);
            assert_eq!(bucket_of(high), index);
            expected_low = high + 1;
        }
    }

    #[test]
    fn quantiles_are_within_the_stated_precision() {
        let histogram = AtomicHistogram::default();
        // 1..=10000 µs, one each: the median is 5000, p99 9900.
        for us in 1..=10_000 {
            histogram.record_us(us);
        }
        let summary = histogram.summary();
        assert_eq!(summary.count, 10_000);
        assert_eq!(summary.max_us, 10_000);
        let near = |got: u64, want: f64| (got as f64 - want).abs() / want <= 1.0 / 32.0 + 1e-9;
        assert!(near(summary.median_us, 5_000.0), "{summary:?}");
        assert!(near(summary.p99_us, 9_900.0), "{summary:?}");
        assert_eq!(format!("{summary}").split('/').count(), 3);
    }

    #[test]
    fn a_difference_of_snapshots_holds_only_what_came_between() {
        let histogram = AtomicHistogram::default();
        for _ in 0..100 {
            histogram.record_us(50_000);
        }
        let before = histogram.snapshot();
        for _ in 0..10 {
            histogram.record_us(1_000);
        }
        let window = histogram.snapshot().since(&before);
        assert_eq!(window.count(), 10);
        let summary = window.summary();
        assert!((968..=1_031).contains(&summary.median_us), "{summary:?}");
        assert!(summary.max_us < 1_100, "{summary:?}");
        assert_eq!(histogram.summary().max_us, 50_000);
    }
}
