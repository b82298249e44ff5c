//! The monotonic clock SMD timestamps use

/// Microseconds of the monotonic clock
///
/// On Unix this is `CLOCK_MONOTONIC` (time since boot), the clock C libwebsockets stamps SMD
/// messages with, so timestamps are comparable between processes on one host. Elsewhere it is
/// time since the first call in this process.
pub(crate) fn monotonic_us() -> u64 {
    #[cfg(unix)]
    {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        // The monotonic clock is never negative.
        (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
    }
    #[cfg(not(unix))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_goes_backwards() {
        let mut last = monotonic_us();
        for _ in 0..10_000 {
            let now = monotonic_us();
            assert!(now >= last);
            last = now;
        }
    }
}
