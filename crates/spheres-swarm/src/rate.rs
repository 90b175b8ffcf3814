//! How fast bytes go, over the last few seconds (for the choker and request pipelining).

use std::time::{Duration, Instant};

/// Seconds the rate is averaged over.
const SECONDS: usize = 5;

/// A rate over a sliding window of [`SECONDS`] one-second buckets. Time is a parameter.
#[derive(Debug, Clone)]
pub struct Rate {
    origin: Instant,
    /// The second (since `origin`) that `buckets[0]` counts.
    newest: u64,
    buckets: [u64; SECONDS],
    total: u64,
}

impl Rate {
    pub fn new(now: Instant) -> Rate {
        Rate {
            origin: now,
            newest: 0,
            buckets: [0; SECONDS],
            total: 0,
        }
    }

    fn advance(&mut self, now: Instant) {
        let second = now.saturating_duration_since(self.origin).as_secs();
        if second <= self.newest {
            return;
        }
        let shift = (second - self.newest).min(SECONDS as u64) as usize;
        self.buckets.rotate_right(shift);
        self.buckets[..shift].fill(0);
        self.newest = second;
    }

    /// `bytes` went at `now`.
    pub fn add(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        self.buckets[0] = self.buckets[0].saturating_add(bytes);
        self.total = self.total.saturating_add(bytes);
    }

    /// Every byte counted since the start.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes a second over the last [`SECONDS`] seconds (fewer when younger).
    pub fn per_second(&mut self, now: Instant) -> u64 {
        self.advance(now);
        let age = now.saturating_duration_since(self.origin);
        let span = age.clamp(Duration::from_secs(1), Duration::from_secs(SECONDS as u64));
        let sum: u64 = self.buckets.iter().sum();
        (u128::from(sum) * 1000 / span.as_millis().max(1)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_averages_recent_seconds_and_forgets_old_ones() {
        let t0 = Instant::now();
        let mut r = Rate::new(t0);
        r.add(t0, 1000);
        assert_eq!(r.per_second(t0), 1000, "young: over one second");
        for s in 1..10 {
            r.add(t0 + Duration::from_secs(s), 1000);
        }
        assert_eq!(r.per_second(t0 + Duration::from_secs(9)), 1000);
        assert_eq!(r.per_second(t0 + Duration::from_secs(12)), 400);
        assert_eq!(r.per_second(t0 + Duration::from_secs(60)), 0);
        assert_eq!(r.total(), 10_000);
    }
}
