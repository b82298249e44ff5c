//! Retry and backoff schedule: a pure function of the policy, the try count and a random sample
//!
//! The algorithm is the C library's (`lws_retry_get_delay_ms`), described exactly in
//! `spec/smd-and-states.md` §6.2:
//!
//! 1. the base delay is `backoff[min(tries, len - 1)]` (past the table the last delay repeats),
//!    or 3000 ms without a table;
//! 2. the jitter percentage is `jitterpc`, or 30 when that is 0 (or there is no policy);
//! 3. `delay = base + ((base * pc * random) >> 16) / 100`, `random` being a uniform 16-bit
//!    sample, so the jitter is below `pc`% of the base;
//! 4. the try count goes up by one, saturating at 65535;
//! 5. the failure is concealed (retried) while the new try count is at most `conceal`; with
//!    `conceal` 65535 that is forever. Without a retry policy nothing is concealed.

use std::time::Duration;

use super::spec::RetrySpec;

/// Largest number of `backoff` entries a scheme may have
pub const MAX_BACKOFF_ENTRIES: usize = 8;
/// `conceal` value meaning "retry forever"
pub const CONCEAL_FOREVER: u16 = 0xffff;
/// Base delay without a backoff table, in ms
pub const DEFAULT_DELAY_MS: u32 = 3000;
/// Jitter used when `jitterpc` is 0 or there is no retry policy, in percent
pub const DEFAULT_JITTER_PERCENT: u8 = 30;

/// A validated retry scheme (one entry of the policy's `retry` section)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    spec: RetrySpec,
}

impl RetryPolicy {
    pub(crate) fn new(spec: RetrySpec) -> Self {
        Self { spec }
    }

    /// The scheme's name
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The backoff table, in ms (at most [`MAX_BACKOFF_ENTRIES`])
    pub fn backoff_ms(&self) -> &[u32] {
        &self.spec.backoff
    }

    /// How many failures are retried before giving up; [`CONCEAL_FOREVER`] never gives up
    pub fn conceal(&self) -> u16 {
        self.spec.conceal
    }

    /// The jitter in percent actually applied (`jitterpc`, or 30 when that is 0)
    pub fn jitter_percent(&self) -> u8 {
        match self.spec.jitterpc {
            0 => DEFAULT_JITTER_PERCENT,
            pc => pc,
        }
    }

    /// Idle time after which the connection's validity is probed with a protocol ping
    pub fn validity_ping(&self) -> Option<Duration> {
        secs(self.spec.svalidping)
    }

    /// Time without proof of validity after which the connection is hung up
    pub fn validity_hangup(&self) -> Option<Duration> {
        secs(self.spec.svalidhup)
    }

    /// The scheme as written in the policy
    pub fn spec(&self) -> &RetrySpec {
        &self.spec
    }
}

fn secs(s: u16) -> Option<Duration> {
    (s != 0).then(|| Duration::from_secs(u64::from(s)))
}

/// What to do after a failure
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryStep {
    /// Try again after this delay
    RetryAfter(Duration),
    /// Stop: report `ALL_RETRIES_FAILED` (the delay that would have applied is given, as the
    /// C library computes it either way)
    GiveUp(Duration),
}

/// The try counter of one stream
///
/// Reset it when a connection succeeds or a connection is explicitly requested; keep it
/// across `request_tx` (spec §6.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryState {
    tries: u16,
}

impl RetryState {
    /// A fresh counter
    pub fn new() -> Self {
        Self::default()
    }

    /// Failures counted since the last reset (saturates at 65535)
    pub fn tries(&self) -> u16 {
        self.tries
    }

    /// Starts a fresh cycle
    pub fn reset(&mut self) {
        self.tries = 0;
    }

    /// Records a failure and decides what follows
    ///
    /// `policy` is the streamtype's retry scheme, if it has one; `random` is a uniformly
    /// distributed 16-bit sample supplied by the caller.
    pub fn handle_failure(&mut self, policy: Option<&RetryPolicy>, random: u16) -> RetryStep {
        let (base, pc) = match policy {
            Some(p) => {
                let table = p.backoff_ms();
                let base = match table.len() {
                    0 => DEFAULT_DELAY_MS,
                    n => table[usize::from(self.tries).min(n - 1)],
                };
                (base, p.jitter_percent())
            }
            None => (DEFAULT_DELAY_MS, DEFAULT_JITTER_PERCENT),
        };
        let base = u64::from(base);
        let jitter = ((base * u64::from(pc) * u64::from(random)) >> 16) / 100;
        let delay = Duration::from_millis(base + jitter);
        self.tries = self.tries.saturating_add(1);
        match policy {
            Some(p) if self.tries <= p.conceal() => RetryStep::RetryAfter(delay),
            _ => RetryStep::GiveUp(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: &[u32], conceal: u16, jitterpc: u8) -> RetryPolicy {
        RetryPolicy::new(RetrySpec {
            name: "t".into(),
            backoff: backoff.to_vec(),
            conceal,
            jitterpc,
            ..Default::default()
        })
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn table_then_last_entry_repeats_then_give_up() {
        let p = policy(&[1000, 2000, 3000, 5000, 10000], 7, 20);
        let mut s = RetryState::new();
        let steps: Vec<_> = (0..8).map(|_| s.handle_failure(Some(&p), 0)).collect();
        assert_eq!(
            steps,
            [
                RetryStep::RetryAfter(ms(1000)),
                RetryStep::RetryAfter(ms(2000)),
                RetryStep::RetryAfter(ms(3000)),
                RetryStep::RetryAfter(ms(5000)),
                RetryStep::RetryAfter(ms(10000)),
                RetryStep::RetryAfter(ms(10000)),
                RetryStep::RetryAfter(ms(10000)),
                RetryStep::GiveUp(ms(10000)),
            ]
        );
        assert_eq!(s.tries(), 8);
    }

    #[test]
    fn jitter_is_exact() {
        let p = policy(&[1000], 5, 20);
        // 1000 * 20 * 65535 >> 16 = 19999 (floor), / 100 = 199
        assert_eq!(
            RetryState::new().handle_failure(Some(&p), 0xffff),
            RetryStep::RetryAfter(ms(1199))
        );
        // 1000 * 20 * 32768 >> 16 = 10000, / 100 = 100
        assert_eq!(
            RetryState::new().handle_failure(Some(&p), 0x8000),
            RetryStep::RetryAfter(ms(1100))
        );
        // 1000 * 20 * 1 >> 16 = 0
        assert_eq!(
            RetryState::new().handle_failure(Some(&p), 1),
            RetryStep::RetryAfter(ms(1000))
        );
    }

    #[test]
    fn zero_jitter_means_thirty_percent() {
        let p = policy(&[1000], 5, 0);
        assert_eq!(p.jitter_percent(), 30);
        // 1000 * 30 * 32768 >> 16 = 15000, / 100 = 150
        assert_eq!(
            RetryState::new().handle_failure(Some(&p), 0x8000),
            RetryStep::RetryAfter(ms(1150))
        );
    }

    #[test]
    fn conceal_zero_gives_up_at_once() {
        let p = policy(&[500], 0, 10);
        assert_eq!(
            RetryState::new().handle_failure(Some(&p), 0),
            RetryStep::GiveUp(ms(500))
        );
    }

    #[test]
    fn conceal_n_retries_n_times() {
        let p = policy(&[100], 3, 10);
        let mut s = RetryState::new();
        for _ in 0..3 {
            assert!(matches!(
                s.handle_failure(Some(&p), 0),
                RetryStep::RetryAfter(_)
            ));
        }
        assert!(matches!(
            s.handle_failure(Some(&p), 0),
            RetryStep::GiveUp(_)
        ));
        s.reset();
        assert!(matches!(
            s.handle_failure(Some(&p), 0),
            RetryStep::RetryAfter(_)
        ));
    }

    #[test]
    fn conceal_forever_never_gives_up_and_counter_saturates() {
        let p = policy(&[7], CONCEAL_FOREVER, 1);
        let mut s = RetryState::new();
        for _ in 0..70_000 {
            assert_eq!(s.handle_failure(Some(&p), 0), RetryStep::RetryAfter(ms(7)));
        }
        assert_eq!(s.tries(), u16::MAX);
    }

    #[test]
    fn without_policy_gives_up_with_default_delay() {
        // 3000 * 30 * 65535 >> 16 = 89998, / 100 = 899
        assert_eq!(
            RetryState::new().handle_failure(None, 0xffff),
            RetryStep::GiveUp(ms(3899))
        );
    }

    #[test]
    fn empty_table_uses_default_delay() {
        let p = policy(&[], 2, 10);
        assert_eq!(
            RetryState::new().handle_failure(Some(&p), 0),
            RetryStep::RetryAfter(ms(3000))
        );
    }

    #[test]
    fn no_overflow_at_extremes() {
        let p = policy(&[u32::MAX], 1, u8::MAX);
        let step = RetryState::new().handle_failure(Some(&p), u16::MAX);
        let d = match step {
            RetryStep::RetryAfter(d) => d,
            RetryStep::GiveUp(_) => panic!("conceal 1 retries once"),
        };
        assert!(d.as_millis() > u128::from(u32::MAX));
    }

    #[test]
    fn validity_timers() {
        let mut spec = policy(&[1], 1, 1).spec().clone();
        spec.svalidping = 30;
        spec.svalidhup = 35;
        let p = RetryPolicy::new(spec);
        assert_eq!(p.validity_ping(), Some(Duration::from_secs(30)));
        assert_eq!(p.validity_hangup(), Some(Duration::from_secs(35)));
        assert_eq!(policy(&[1], 1, 1).validity_ping(), None);
    }
}
