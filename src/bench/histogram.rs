//! A log-linear latency histogram in nanoseconds, cheap enough to record on every
//! request and mergeable across clients.
//!
//! Invariant: a recorded value lands in a bucket whose width is at most 1/128 of the
//! bucket's lower bound (values below 128 ns are exact), so every reported quantile is
//! within 0.8 % of a value that was really recorded; `max` is exact.

use std::time::Duration;

/// Sub-buckets per power of two: 2^7 = 128, for a relative error below 0.8 %.
const SUB_BITS: u32 = 7;
const SUB_COUNT: u64 = 1 << SUB_BITS;
/// Largest shift stored; values at or above 2^(SUB_BITS + MAX_SHIFT + 1) ns (about
/// 39 hours) are clamped into the last bucket.
const MAX_SHIFT: u32 = 40;
const BUCKETS: usize = ((MAX_SHIFT as usize) + 2) * (SUB_COUNT as usize);

/// Counts of latencies, bucketed log-linearly.
#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            max_ns: 0,
        }
    }

    /// Records one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.record_ns(ns);
    }

    /// Records one latency given in nanoseconds.
    pub fn record_ns(&mut self, ns: u64) {
        self.counts[bucket_of(ns)] += 1;
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    /// Adds every sample of `other` to `self`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest sample, exact, in nanoseconds (0 when empty).
    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    /// The value at quantile `q` (0.0..=1.0) in nanoseconds: the midpoint of the bucket
    /// holding the sample of rank ceil(q * count), never above the exact maximum.
    /// Returns 0 when empty.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (index, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, width) = bucket_bounds(index);
                return (low + width / 2).min(self.max_ns);
            }
        }
        self.max_ns
    }
}

/// The bucket index of `ns`.
fn bucket_of(ns: u64) -> usize {
    if ns < SUB_COUNT {
        return ns as usize;
    }
    let msb = 63 - ns.leading_zeros();
    let shift = msb - SUB_BITS;
    if shift > MAX_SHIFT {
        return BUCKETS - 1;
    }
    let mantissa = ns >> shift; // in [SUB_COUNT, 2 * SUB_COUNT)
    ((shift as u64 + 1) * SUB_COUNT + (mantissa - SUB_COUNT)) as usize
}

/// The lower bound and width of bucket `index`, in nanoseconds.
fn bucket_bounds(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB_COUNT {
        return (index, 1);
    }
    let shift = index / SUB_COUNT - 1;
    let mantissa = index % SUB_COUNT + SUB_COUNT;
    (mantissa << shift, 1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut previous_end = 0;
        for index in 0..BUCKETS {
            let (low, width) = bucket_bounds(index);
            assert_eq!(
                low, previous_end,
                "bucket {index} starts where the last ended"
            );
            assert!(
                low < SUB_COUNT || width * SUB_COUNT <= low,
                "bucket {index} is tight"
            );
            assert_eq!(bucket_of(low), index);
            assert_eq!(bucket_of(low + width - 1), index);
            previous_end = low + width;
        }
    }

    #[test]
    fn quantiles_of_a_uniform_spread() {
        let mut h = Histogram::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        for (q, expect_ms) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0), (1.0, 1000.0)] {
            let got = h.quantile_ns(q) as f64 / 1e6;
            assert!(
                (got - expect_ms).abs() / expect_ms < 0.008,
                "q{q}: {got} vs {expect_ms}"
            );
        }
        assert_eq!(h.max_ns(), 1_000_000_000);
        assert_eq!(h.count(), 1000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record_ns(100);
        b.record_ns(5_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.max_ns(), 5_000_000);
        assert_eq!(a.quantile_ns(0.5), 100);
        assert_eq!(Histogram::new().quantile_ns(0.5), 0);
        let mut huge = Histogram::new();
        huge.record_ns(u64::MAX);
        assert_eq!(huge.max_ns(), u64::MAX);
        assert!(
            huge.quantile_ns(1.0) >= 255 << MAX_SHIFT,
            "clamped into the last bucket"
        );
    }
}
