//! Durations as people read them: humantime's style, rounded to what matters, so a measured
//! 5.992624 ms reads "6ms" and 83.4 s reads "1m 23s" instead of a string of units.

use std::time::Duration;

/// A measured duration for messages: milliseconds under a minute, whole seconds above.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(cluster_sim_core::duration::human(Duration::from_nanos(5_992_624)), "6ms");
/// assert_eq!(cluster_sim_core::duration::human(Duration::from_millis(2_345)), "2s 345ms");
/// assert_eq!(cluster_sim_core::duration::human(Duration::from_millis(83_400)), "1m 23s");
/// ```
pub fn human(d: Duration) -> String {
    let rounded = if d < Duration::from_secs(60) {
        Duration::from_millis(((d.as_nanos() + 500_000) / 1_000_000) as u64)
    } else {
        Duration::from_secs(((d.as_millis() + 500) / 1000) as u64)
    };
    if rounded.is_zero() && !d.is_zero() {
        // Under half a millisecond: say so rather than "0s".
        return format!("{}us", d.as_micros().max(1));
    }
    humantime::format_duration(rounded).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_what_matters() {
        assert_eq!(human(Duration::ZERO), "0s");
        assert_eq!(human(Duration::from_micros(300)), "300us");
        assert_eq!(human(Duration::from_nanos(5_992_624)), "6ms");
        assert_eq!(human(Duration::from_secs(25)), "25s");
        assert_eq!(human(Duration::from_millis(59_999)), "59s 999ms");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
    }
}
