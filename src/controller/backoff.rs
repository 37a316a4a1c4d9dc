//! Retry delays after transient errors: exponential from 2 s with jitter, at most 300 s (jitter
//! included), never shorter than the provider's own Retry-After (which may ask for longer).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// First retry delay.
pub const MIN_DELAY: Duration = Duration::from_secs(2);
/// Longest delay between two attempts, jitter included (a provider's Retry-After may ask for more).
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// Delay before retry number `retry` (1 for the first retry), at least `retry_after`.
pub fn retry_delay(retry: u32, retry_after: Option<Duration>) -> Duration {
    // backon's jitter adds up to 100% of the delay: capping the base at half of MAX_DELAY keeps
    // the jittered delay within it.
    let exponential = ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY / 2)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(retry.saturating_sub(1) as usize)
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY);
    match retry_after {
        Some(wait) if wait > exponential => wait,
        _ => exponential,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_are_capped() {
        for _ in 0..50 {
            let first = retry_delay(1, None);
            assert!(first >= MIN_DELAY && first <= MIN_DELAY * 2, "{first:?}");
            let third = retry_delay(3, None);
            assert!(third >= MIN_DELAY * 4 && third <= MIN_DELAY * 8, "{third:?}");
            let late = retry_delay(30, None);
            assert!(late >= MAX_DELAY / 2 && late <= MAX_DELAY, "{late:?}");
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert!(retry_delay(1, Some(Duration::from_secs(55))) >= Duration::from_secs(55));
        let d = retry_delay(5, Some(Duration::from_secs(1)));
        assert!(
            d >= MIN_DELAY * 16,
            "a short Retry-After does not shorten the backoff: {d:?}"
        );
    }
}
