//! Bandwidth limits for the whole engine (all torrents, all peers), upload and download
//! apart: a token bucket in debt mode (bytes are taken at once; whoever took them waits
//! until the bucket has paid them back), its arithmetic pure and time a parameter.

use std::num::NonZeroU64;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The bucket: what may go now, in bytes (negative: owed).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes `n` bytes at `now` with `rate` bytes a second; returns how long the taker waits.
    /// Unused allowance accumulates up to a burst of a tenth of a second (at least 64 KiB),
    /// so a quiet spell does not turn into a flood.
    fn take(&mut self, now: Instant, n: u64, rate: u64) -> Duration {
        let rate = rate as f64;
        let burst = (rate / 10.0).max(64.0 * 1024.0);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * rate).min(burst) - n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// A limit that can change at any time; `None`: unlimited.
#[derive(Debug)]
pub struct Limiter {
    rate: AtomicU64,
    bucket: Mutex<Bucket>,
}

impl Limiter {
    pub fn new(rate: Option<NonZeroU64>) -> Limiter {
        Limiter {
            rate: AtomicU64::new(rate.map_or(0, NonZeroU64::get)),
            bucket: Mutex::new(Bucket {
                tokens: 0.0,
                last: Instant::now(),
            }),
        }
    }

    pub fn set(&self, rate: Option<NonZeroU64>) {
        self.rate
            .store(rate.map_or(0, NonZeroU64::get), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<NonZeroU64> {
        NonZeroU64::new(self.rate.load(Ordering::Relaxed))
    }

    /// Takes `n` bytes, waiting as long as the limit asks.
    pub async fn take(&self, n: u64) {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 || n == 0 {
            return;
        }
        let wait = self
            .bucket
            .lock()
            .map(|mut b| b.take(Instant::now(), n, rate))
            .unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_the_rate_and_a_small_burst() {
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: 0.0,
            last: t0,
        };
        let rate = 1_000_000;
        // A burst of a tenth of a second goes at once, after a quiet second.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(b.take(t1, 100_000, rate), Duration::ZERO);
        // Then every byte waits its turn: 500 kB more is half a second of debt.
        let w = b.take(t1, 500_000, rate);
        assert!((w.as_secs_f64() - 0.5).abs() < 1e-6, "{w:?}");
        // Paid back over time.
        let w = b.take(t1 + Duration::from_millis(500), 0, rate);
        assert!(w.as_secs_f64() < 1e-6, "{w:?}");
        // Over ten seconds of steady taking, what went is the rate, give or take the burst.
        let mut t = t1 + Duration::from_secs(1);
        let mut waited = Duration::ZERO;
        for _ in 0..100 {
            let w = b.take(t, 100_000, rate);
            waited += w;
            t += w;
        }
        let secs = (t - (t1 + Duration::from_secs(1))).as_secs_f64();
        assert!(
            (9.8..=10.01).contains(&secs),
            "10 MB at 1 MB/s took {secs}s"
        );
    }
}
