//! Retry schedule: exponential backoff with full jitter.
//!
//! Attempt `n` (1-based) that fails waits `uniform(0, min(max_delay, base · 2^(n−1)))` before
//! attempt `n + 1`; after `max_attempts` failures the delivery is dead-lettered. Full jitter
//! spreads retries of many failing deliveries so a receiver coming back is not hit by a wave.

use std::time::Duration;

use rand::RngExt as _;

/// Retry parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (≥ 1).
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 2 s base, 5 min cap: retries span at most about 10 minutes.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The cap of the wait after failed attempt `attempt` (1-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        self.base_delay
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// The jittered wait after failed attempt `attempt`, or `None` when it was the last.
    pub fn delay_after(&self, attempt: u32, rng: &mut impl rand::Rng) -> Option<Duration> {
        if attempt >= self.max_attempts.max(1) {
            return None;
        }
        let cap = self.ceiling(attempt).as_millis() as u64;
        Some(Duration::from_millis(if cap == 0 {
            0
        } else {
            rng.random_range(0..=cap)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap_and_attempts_end() {
        let p = RetryPolicy::default();
        let c: Vec<u64> = (1..=6).map(|a| p.ceiling(a).as_secs()).collect();
        assert_eq!(c, [2, 4, 8, 16, 32, 64]);
        assert_eq!(p.ceiling(20), Duration::from_secs(300));
        assert_eq!(p.ceiling(u32::MAX), Duration::from_secs(300));
        let mut rng = rand::rng();
        for a in 1..6 {
            for _ in 0..200 {
                let d = p.delay_after(a, &mut rng).unwrap();
                assert!(d <= p.ceiling(a));
            }
        }
        assert_eq!(p.delay_after(6, &mut rng), None);
        let one = RetryPolicy {
            max_attempts: 1,
            ..p
        };
        assert_eq!(one.delay_after(1, &mut rng), None);
    }

    #[test]
    fn jitter_actually_spreads() {
        let p = RetryPolicy::default();
        let mut rng = rand::rng();
        let v: std::collections::BTreeSet<Duration> = (0..50)
            .map(|_| p.delay_after(5, &mut rng).unwrap())
            .collect();
        assert!(v.len() > 10, "full jitter should produce varied delays");
    }
}
