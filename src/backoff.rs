//! Waits that double after each failure, up to a cap: an SFTP share's
//! reconnections, an alert's deliveries, and a file the daemon could not
//! process for a cause outside it.

use std::time::Duration;

/// The wait after failure `attempt + 1` (`attempt` 0 after the first
/// failure): `first` doubled `attempt` times, at most `cap`, then scaled by
/// `0.5 + jitter / 2` (`jitter` in 0..=1, out-of-range values clamped, a
/// non-finite one taken as 0) so that many clients do not retry in step.
/// A `jitter` of 1 keeps the wait whole.
pub fn doubling(first: Duration, attempt: u32, cap: Duration, jitter: f64) -> Duration {
    let doubled = first.saturating_mul(1u32 << attempt.min(20)).min(cap);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    doubled.mul_f64(0.5 + jitter / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_first_are_capped_and_jittered() {
        let (s, cap) = (Duration::from_secs(5), Duration::from_secs(300));
        let whole: Vec<u64> = (0..9).map(|a| doubling(s, a, cap, 1.0).as_secs()).collect();
        assert_eq!(whole, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(doubling(s, u32::MAX, cap, 1.0), cap);
        assert_eq!(doubling(s, u32::MAX, cap, 0.0), cap / 2);
        assert_eq!(doubling(s, 1, cap, 0.5), Duration::from_millis(7500));
        assert_eq!(doubling(s, 1, cap, f64::NAN), s);
        assert_eq!(doubling(s, 1, cap, -3.0), s);
        assert_eq!(doubling(s, 1, cap, 7.0), s * 2);
        // A first wait above the cap is the cap.
        assert_eq!(doubling(cap * 2, 0, cap, 1.0), cap);
    }
}
