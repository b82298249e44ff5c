//! Scenario tests of the stream core in virtual time, and a property test over arbitrary
//! input sequences

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::policy::spec::{PolicySpec, Protocol, RetrySpec, StreamTypeSpec};
use crate::policy::{Policy, RetryPolicy, retry::CONCEAL_FOREVER};

const S: fn(State) -> Ev = Ev::State;

/// An event as the tests compare it (`ack` dropped unless it matters)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    State(State),
    Connect,
    Disconnect,
    Writable,
    Destroyed,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn retry(backoff: &[u32], conceal: u16, jitterpc: u8) -> Option<Arc<RetryPolicy>> {
    Some(Arc::new(RetryPolicy::new(RetrySpec {
        name: "r".into(),
        backoff: backoff.to_vec(),
        conceal,
        jitterpc,
        ..RetrySpec::default()
    })))
}

/// The retry policy of `spec/smd-and-states.md` §6.4
fn c_example_retry() -> Option<Arc<RetryPolicy>> {
    retry(&[1000, 2000, 3000, 5000, 10000], 5, 20)
}

/// A stream core, the virtual clock, and an independent check of every delivered state
struct Harness {
    core: StreamCore,
    start: Instant,
    now: Instant,
    /// Last recorded state as seen by the user, tracked here, not by the core
    last: Option<State>,
    destroyed: bool,
}

impl Harness {
    fn new(config: StreamConfig, samples: &[u16]) -> Self {
        let samples = samples.to_vec();
        let mut i = 0;
        let random = move || {
            let s = samples.get(i).copied().unwrap_or(0);
            i += 1;
            s
        };
        let start = Instant::now();
        Self {
            core: StreamCore::new(config, random),
            start,
            now: start,
            last: None,
            destroyed: false,
        }
    }

    fn at(&self, ms_since_start: u64) -> Instant {
        self.start + ms(ms_since_start)
    }

    /// Drains every queued event, checking each state against the table
    fn drain(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(event) = self.core.poll_event() {
            out.push(self.check(event));
        }
        out
    }

    fn check(&mut self, event: Event) -> Ev {
        assert!(!self.destroyed, "{event:?} after Destroyed");
        match event {
            Event::State { state, .. } => {
                assert!(is_legal(self.last, state), "{:?} -> {state:?}", self.last);
                if !state.is_transient() {
                    self.last = Some(state);
                }
                Ev::State(state)
            }
            Event::Connect => Ev::Connect,
            Event::Disconnect => Ev::Disconnect,
            Event::RequestWritable => Ev::Writable,
            Event::Destroyed => {
                self.destroyed = true;
                Ev::Destroyed
            }
        }
    }

    /// Moves the clock to the next deadline and fires it; returns the wait
    fn sleep(&mut self) -> Duration {
        let at = self.core.poll_timeout().expect("a deadline");
        assert!(at >= self.now);
        // nothing fires a nanosecond early
        let early = at - Duration::from_nanos(1);
        if early >= self.now {
            self.core.handle_timeout(early);
            assert_eq!(self.drain(), []);
        }
        let waited = at - self.now;
        self.now = at;
        self.core.handle_timeout(at);
        waited
    }

    fn fail(&mut self) {
        self.core
            .handle_connect_failed(self.now, ConnectFailure::Unreachable);
    }
}

fn config(close_rule: CloseRule, retry: Option<Arc<RetryPolicy>>) -> StreamConfig {
    let mut c = StreamConfig::default();
    c.close_rule(close_rule).retry(retry);
    c
}

#[test]
fn config_from_streamtype() {
    let spec = PolicySpec {
        retry: vec![RetrySpec {
            name: "r".into(),
            backoff: vec![100],
            conceal: 3,
            ..RetrySpec::default()
        }],
        streamtypes: vec![
            StreamTypeSpec {
                protocol: Protocol::Raw,
                retry: Some("r".into()),
                nailed_up: true,
                timeout_ms: 1500,
                endpoint: Some("example.com".into()),
                ..StreamTypeSpec::named("a")
            },
            StreamTypeSpec {
                protocol: Protocol::H2,
                opportunistic: true,
                endpoint: Some("example.com".into()),
                ..StreamTypeSpec::named("b")
            },
        ],
        ..PolicySpec::default()
    };
    let policy = Policy::from_spec(spec).unwrap();
    let a = StreamConfig::from_streamtype(policy.streamtype("a").unwrap());
    assert_eq!(a.retry.as_ref().unwrap().conceal(), 3);
    assert!(a.nailed_up && !a.opportunistic);
    assert_eq!(a.timeout, Some(ms(1500)));
    assert_eq!(a.close_rule, CloseRule::Stream);
    let b = StreamConfig::from_streamtype(policy.streamtype("b").unwrap());
    assert!(b.retry.is_none() && !b.nailed_up && b.opportunistic);
    assert_eq!(b.timeout, None);
    assert_eq!(b.close_rule, CloseRule::Http);
    for (p, rule) in [
        (Protocol::H1, CloseRule::Http),
        (Protocol::H3, CloseRule::Http),
        (Protocol::Ws, CloseRule::Stream),
        (Protocol::Mqtt, CloseRule::Stream),
    ] {
        assert_eq!(CloseRule::for_protocol(p), rule);
    }
}

/// §6.4 policy, endpoint refusing connections: the exact states and the exact delays for
/// fixed random samples, then ALL_RETRIES_FAILED; afterwards request_tx gives one more
/// attempt and client_connect a fresh cycle
#[test]
fn connection_refused_backs_off_exactly_then_gives_up() {
    let samples = [
        0x0000, 0x8000, 0xffff, 0x4000, 0xc000, 0x1234, 0x1111, 0x2222,
    ];
    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &samples);
    assert_eq!(h.drain(), [S(State::CREATING)]);
    assert_eq!(h.core.poll_timeout(), None);

    h.core.handle_request_tx();
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    h.fail();
    assert_eq!(h.drain(), [S(State::UNREACHABLE)]);

    // base + ((base * 20 * sample) >> 16) / 100
    let expected_waits = [
        1000,  // 1000, sample 0
        2200,  // 2000 + 200 (sample 1/2)
        3599,  // 3000 + 59999 / 100
        5250,  // 5000 + 250 (sample 1/4)
        11500, // 10000 + 1500 (sample 3/4)
    ];
    for (i, want) in expected_waits.into_iter().enumerate() {
        assert_eq!(h.sleep(), ms(want));
        assert_eq!(
            h.drain(),
            [S(State::POLL), S(State::CONNECTING), Ev::Connect]
        );
        h.fail();
        if i < 4 {
            assert_eq!(h.drain(), [S(State::UNREACHABLE)]);
        } else {
            // the sixth failure is not concealed
            assert_eq!(
                h.drain(),
                [S(State::UNREACHABLE), S(State::ALL_RETRIES_FAILED)]
            );
        }
    }
    assert_eq!(h.core.poll_timeout(), None);
    assert_eq!(h.now, h.at(1000 + 2200 + 3599 + 5250 + 11500));
    assert_eq!(h.core.tries(), 6);

    // request_tx: exactly one more attempt, failing straight to ALL_RETRIES_FAILED
    h.core.handle_request_tx();
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    h.fail();
    assert_eq!(
        h.drain(),
        [S(State::UNREACHABLE), S(State::ALL_RETRIES_FAILED)]
    );
    assert_eq!(h.core.poll_timeout(), None);

    // client_connect: a fresh cycle (no POLL), first delay from the start of the table
    h.core.handle_client_connect();
    assert_eq!(h.drain(), [S(State::CONNECTING), Ev::Connect]);
    h.fail();
    assert_eq!(h.drain(), [S(State::UNREACHABLE)]);
    assert_eq!(h.core.tries(), 1);
    // sample 0x2222 = 8738: 1000 * 20 * 8738 >> 16 = 2666, / 100 = 26
    assert_eq!(h.sleep(), ms(1026));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
}

/// The same flow with the give-up step visible in one drain
#[test]
fn sixth_failure_reports_unreachable_then_all_retries_failed() {
    let mut h = Harness::new(config(CloseRule::Stream, c_example_retry()), &[]);
    h.core.handle_request_tx();
    h.drain();
    for _ in 0..5 {
        h.fail();
        assert_eq!(h.drain(), [S(State::UNREACHABLE)]);
        h.sleep();
        assert_eq!(
            h.drain(),
            [S(State::POLL), S(State::CONNECTING), Ev::Connect]
        );
    }
    h.fail();
    assert_eq!(
        h.drain(),
        [S(State::UNREACHABLE), S(State::ALL_RETRIES_FAILED)]
    );
    // idle: nothing scheduled, time passing changes nothing
    assert_eq!(h.core.poll_timeout(), None);
    h.core.handle_timeout(h.at(1_000_000));
    assert_eq!(h.drain(), []);
}

#[test]
fn no_retry_policy_gives_up_at_the_first_failure() {
    let mut h = Harness::new(config(CloseRule::Http, None), &[]);
    h.drain();
    h.core.handle_request_tx();
    h.drain();
    h.core
        .handle_connect_failed(h.now, ConnectFailure::DnsServerUnreachable);
    let events: Vec<_> = std::iter::from_fn(|| h.core.poll_event()).collect();
    assert_eq!(
        events,
        [
            Event::State {
                state: State::UNREACHABLE,
                ack: 1
            },
            Event::State {
                state: State::ALL_RETRIES_FAILED,
                ack: 0
            },
        ]
    );
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn nailed_up_connects_at_creation_and_reconnects_after_a_drop() {
    let mut c = config(CloseRule::Stream, c_example_retry());
    c.nailed_up(true);
    let mut h = Harness::new(c, &[0]);
    assert_eq!(
        h.drain(),
        [S(State::CREATING), S(State::CONNECTING), Ev::Connect]
    );
    h.core.handle_connected();
    assert_eq!(h.drain(), [S(State::CONNECTED)]);
    h.core.handle_request_tx();
    assert_eq!(h.drain(), [Ev::Writable]);

    h.now = h.at(5000);
    h.core.handle_disconnected(h.now);
    assert_eq!(h.drain(), [S(State::DISCONNECTED)]);
    assert_eq!(h.core.poll_timeout(), Some(h.at(6000)));
    // a request_tx while the retry is pending does not connect early
    h.core.handle_request_tx();
    assert_eq!(h.drain(), []);
    assert_eq!(h.sleep(), ms(1000));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    h.core.handle_connected();
    assert_eq!(h.drain(), [S(State::CONNECTED)]);
    assert_eq!(h.core.tries(), 0);
}

#[test]
fn opportunistic_does_not_reconnect() {
    let mut c = config(CloseRule::Stream, c_example_retry());
    c.opportunistic(true);
    let mut h = Harness::new(c, &[]);
    h.drain();
    h.core.handle_request_tx();
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    h.core.handle_connected();
    h.core.handle_disconnected(h.now);
    assert_eq!(h.drain(), [S(State::CONNECTED), S(State::DISCONNECTED)]);
    assert_eq!(h.core.poll_timeout(), None);
    // the next request_tx connects again
    h.core.handle_request_tx();
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
}

#[test]
fn http_incomplete_transaction_is_retried_without_disconnected() {
    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &[0, 0]);
    h.drain();
    h.core.handle_request_tx();
    h.drain();
    h.core.handle_connected();
    assert_eq!(h.drain(), [S(State::CONNECTED)]);
    h.core.handle_disconnected(h.now);
    assert_eq!(h.drain(), []);
    assert_eq!(h.sleep(), ms(1000));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    // the reconnect fails: now the outstanding CONNECTED is closed with DISCONNECTED
    h.fail();
    assert_eq!(h.drain(), [S(State::DISCONNECTED)]);
    // second failure without a success in between: second table entry
    assert_eq!(h.sleep(), ms(2000));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    h.core.handle_connected();
    assert_eq!(h.drain(), [S(State::CONNECTED)]);
}

#[test]
fn http_complete_transaction_reports_qos_then_disconnected_and_stays_idle() {
    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &[]);
    h.drain();
    h.core.handle_request_tx();
    h.drain();
    h.core.start_timeout(h.now, Some(ms(10_000)));
    assert_eq!(
        h.core.handle_binding_state(State::QOS_ACK_REMOTE, 0),
        Err(TransitionError::NotConnected(State::QOS_ACK_REMOTE))
    );
    h.core.handle_connected();
    let user = State::user(3).unwrap();
    h.core.handle_binding_state(user, 0).unwrap();
    h.core
        .handle_binding_state(State::QOS_NACK_REMOTE, 0)
        .unwrap();
    h.core.handle_disconnected(h.now);
    assert_eq!(
        h.drain(),
        [
            S(State::CONNECTED),
            S(user),
            S(State::QOS_NACK_REMOTE),
            S(State::DISCONNECTED)
        ]
    );
    // closing cancelled the stream timeout; no retry either
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn http_giving_up_on_a_silent_retry_closes_connected() {
    let mut h = Harness::new(config(CloseRule::Http, retry(&[10], 0, 0)), &[]);
    h.drain();
    h.core.handle_client_connect();
    h.core.handle_connected();
    h.core.handle_disconnected(h.now);
    // conceal 0: no retry; ALL_RETRIES_FAILED is illegal after DISCONNECTED
    assert_eq!(
        h.drain(),
        [
            S(State::CONNECTING),
            Ev::Connect,
            S(State::CONNECTED),
            S(State::DISCONNECTED)
        ]
    );
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn retry_later_waits_at_least_retry_after_and_is_not_a_nack() {
    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &[0, 0]);
    h.drain();
    h.core.handle_request_tx();
    h.drain();
    h.core.handle_retry_later(h.now, ms(7000));
    assert_eq!(h.drain(), [Ev::Disconnect]);
    assert_eq!(h.sleep(), ms(7000));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    // a shorter Retry-After than the backoff: the backoff wins
    h.core.handle_retry_later(h.now, ms(10));
    h.drain();
    assert_eq!(h.sleep(), ms(2000));
}

/// Found by the `stream_events` fuzz target: a 503 on a keep-alive connection whose first
/// transaction completed (QOS_NACK_REMOTE) must not leave the stream in a state from which it
/// cannot reconnect legally
#[test]
fn retry_later_after_a_completed_transaction_disconnects_then_retries() {
    let mut c = config(CloseRule::Http, c_example_retry());
    c.nailed_up(true);
    let mut h = Harness::new(c, &[0]);
    h.core.handle_connected();
    h.core
        .handle_binding_state(State::QOS_NACK_REMOTE, 0)
        .unwrap();
    h.core.handle_retry_later(h.now, ms(25));
    assert_eq!(
        h.drain(),
        [
            S(State::CREATING),
            S(State::CONNECTING),
            Ev::Connect,
            S(State::CONNECTED),
            S(State::QOS_NACK_REMOTE),
            Ev::Disconnect,
            S(State::DISCONNECTED)
        ]
    );
    h.core.handle_client_connect();
    assert_eq!(h.drain(), [S(State::CONNECTING), Ev::Connect]);
    // and without the client_connect the retry comes by itself
    let mut c = config(CloseRule::Http, c_example_retry());
    c.nailed_up(true).opportunistic(true);
    let mut h = Harness::new(c, &[0]);
    h.core.handle_connected();
    h.core
        .handle_binding_state(State::QOS_ACK_REMOTE, 0)
        .unwrap();
    h.core.handle_retry_later(h.now, ms(25));
    h.drain();
    assert_eq!(h.sleep(), ms(1000));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
}

#[test]
fn timeout_fires_at_the_exact_instant() {
    let mut h = Harness::new(config(CloseRule::Http, None), &[]);
    h.drain();
    h.core.start_timeout(h.now, Some(ms(1234)));
    assert_eq!(h.core.poll_timeout(), Some(h.at(1234)));
    h.core.handle_timeout(h.at(1233));
    assert_eq!(h.drain(), []);
    assert_eq!(h.sleep(), ms(1234));
    assert_eq!(h.drain(), [S(State::TIMEOUT)]);
    assert_eq!(h.core.poll_timeout(), None);

    // restart replaces; cancel stops; zero without a policy default does nothing
    h.core.start_timeout(h.now, Some(ms(100)));
    h.core.start_timeout(h.now, Some(ms(300)));
    assert_eq!(h.core.poll_timeout(), Some(h.now + ms(300)));
    h.core.cancel_timeout();
    assert_eq!(h.core.poll_timeout(), None);
    h.core.start_timeout(h.now, None);
    h.core.start_timeout(h.now, Some(Duration::ZERO));
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn timeout_defaults_to_the_policy_and_a_verdict_can_disconnect() {
    let mut c = config(CloseRule::Stream, None);
    c.timeout(Some(ms(2000))).opportunistic(true);
    let mut h = Harness::new(c, &[]);
    h.drain();
    h.core.handle_client_connect();
    h.core.handle_connected();
    h.drain();
    h.core.start_timeout(h.now, None);
    assert_eq!(h.sleep(), ms(2000));
    assert_eq!(h.drain(), [S(State::TIMEOUT)]);
    h.core
        .handle_callback_return(h.now, StateReturn::DisconnectMe);
    assert_eq!(h.drain(), [Ev::Disconnect, S(State::DISCONNECTED)]);
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn retry_timer_and_stream_timeout_interleave() {
    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &[0]);
    h.drain();
    h.core.handle_request_tx();
    h.drain();
    h.core.start_timeout(h.now, Some(ms(500)));
    h.fail();
    assert_eq!(h.drain(), [S(State::UNREACHABLE)]);
    // both overdue at once: the earlier (timeout at 500) first, then the retry at 1000
    h.now = h.at(3000);
    h.core.handle_timeout(h.now);
    assert_eq!(
        h.drain(),
        [
            S(State::TIMEOUT),
            S(State::POLL),
            S(State::CONNECTING),
            Ev::Connect
        ]
    );
}

#[test]
fn destroy_while_connected() {
    let mut h = Harness::new(config(CloseRule::Stream, c_example_retry()), &[]);
    h.drain();
    h.core.handle_client_connect();
    h.core.handle_connected();
    h.drain();
    h.core.start_timeout(h.now, Some(ms(100)));
    h.core.handle_destroy();
    assert_eq!(
        h.drain(),
        [
            Ev::Disconnect,
            S(State::DISCONNECTED),
            S(State::DESTROYING),
            Ev::Destroyed
        ]
    );
    assert!(h.core.is_destroyed());
    assert_eq!(h.core.poll_timeout(), None);
    // nothing more, whatever comes in
    h.core.handle_request_tx();
    h.core.handle_client_connect();
    h.core.handle_disconnected(h.now);
    h.core.handle_destroy();
    h.core.handle_timeout(h.at(1_000_000));
    assert_eq!(
        h.core.handle_binding_state(State::user(1).unwrap(), 0),
        Err(TransitionError::Destroyed)
    );
    assert_eq!(h.core.poll_event(), None);
}

#[test]
fn destroy_while_idle_and_while_retrying() {
    let mut h = Harness::new(config(CloseRule::Http, None), &[]);
    h.drain();
    h.core.handle_destroy();
    assert_eq!(h.drain(), [S(State::DESTROYING), Ev::Destroyed]);

    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &[]);
    h.core.handle_request_tx();
    h.fail();
    h.core.handle_destroy();
    assert_eq!(
        h.drain(),
        [
            S(State::CREATING),
            S(State::POLL),
            S(State::CONNECTING),
            Ev::Connect,
            S(State::UNREACHABLE),
            S(State::DESTROYING),
            Ev::Destroyed
        ]
    );
    assert_eq!(h.core.poll_timeout(), None);
}

#[test]
fn destroy_me_from_creating_cancels_the_nailed_up_connect() {
    let mut c = config(CloseRule::Http, None);
    c.nailed_up(true);
    let mut h = Harness::new(c, &[]);
    assert_eq!(
        h.core.poll_event().map(|e| h.check(e)),
        Some(S(State::CREATING))
    );
    h.core.handle_callback_return(h.now, StateReturn::DestroyMe);
    // CONNECTING and Connect were never delivered; Disconnect is harmless
    assert_eq!(
        h.drain(),
        [Ev::Disconnect, S(State::DESTROYING), Ev::Destroyed]
    );
}

#[test]
fn destroy_me_from_connected_disconnects_first() {
    let mut h = Harness::new(config(CloseRule::Http, None), &[]);
    h.drain();
    h.core.handle_client_connect();
    h.drain();
    h.core.handle_connected();
    assert_eq!(
        h.core.poll_event().map(|e| h.check(e)),
        Some(S(State::CONNECTED))
    );
    h.core.handle_callback_return(h.now, StateReturn::DestroyMe);
    assert_eq!(
        h.drain(),
        [
            Ev::Disconnect,
            S(State::DISCONNECTED),
            S(State::DESTROYING),
            Ev::Destroyed
        ]
    );
}

#[test]
fn disconnect_me_from_connecting_abandons_the_attempt_and_backs_off() {
    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &[0, 0]);
    h.drain();
    h.core.handle_request_tx();
    assert_eq!(
        h.core.poll_event().map(|e| h.check(e)),
        Some(S(State::POLL))
    );
    // from POLL: ignored
    h.core
        .handle_callback_return(h.now, StateReturn::DisconnectMe);
    assert_eq!(
        h.core.poll_event().map(|e| h.check(e)),
        Some(S(State::CONNECTING))
    );
    h.core
        .handle_callback_return(h.now, StateReturn::DisconnectMe);
    assert_eq!(h.drain(), []);
    assert_eq!(h.sleep(), ms(1000));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
    // during the attempt: the runtime is told to drop it, and it counts as failed
    h.core
        .handle_callback_return(h.now, StateReturn::DisconnectMe);
    assert_eq!(h.drain(), [Ev::Disconnect, S(State::UNREACHABLE)]);
    assert_eq!(h.sleep(), ms(2000));
    // Ok and TxDontSend change nothing
    h.core.handle_callback_return(h.now, StateReturn::Ok);
    h.core
        .handle_callback_return(h.now, StateReturn::TxDontSend);
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
}

#[test]
fn disconnect_me_on_a_connection_follows_the_close_rule() {
    // raw, not opportunistic: DISCONNECTED then reconnect
    let mut h = Harness::new(config(CloseRule::Stream, c_example_retry()), &[0]);
    h.drain();
    h.core.handle_client_connect();
    h.core.handle_connected();
    h.drain();
    h.core
        .handle_callback_return(h.now, StateReturn::DisconnectMe);
    assert_eq!(h.drain(), [Ev::Disconnect, S(State::DISCONNECTED)]);
    assert_eq!(h.sleep(), ms(1000));
    assert_eq!(
        h.drain(),
        [S(State::POLL), S(State::CONNECTING), Ev::Connect]
    );
}

#[test]
fn conceal_forever_retries_forever() {
    let mut h = Harness::new(
        config(CloseRule::Stream, retry(&[50, 100], CONCEAL_FOREVER, 10)),
        &[],
    );
    h.drain();
    h.core.handle_request_tx();
    h.drain();
    for i in 0..3000u32 {
        h.fail();
        assert_eq!(h.drain(), [S(State::UNREACHABLE)], "failure {i}");
        assert_eq!(h.sleep(), ms(if i == 0 { 50 } else { 100 }));
        assert_eq!(
            h.drain(),
            [S(State::POLL), S(State::CONNECTING), Ev::Connect]
        );
    }
    assert_eq!(h.core.tries(), 3000);
}

#[test]
fn client_connect_cancels_a_pending_retry_and_resets_the_counter() {
    let mut h = Harness::new(config(CloseRule::Http, c_example_retry()), &[]);
    h.drain();
    h.core.handle_request_tx();
    h.fail();
    h.drain();
    assert!(h.core.poll_timeout().is_some());
    h.core.handle_client_connect();
    assert_eq!(h.drain(), [S(State::CONNECTING), Ev::Connect]);
    assert_eq!(h.core.poll_timeout(), None);
    assert_eq!(h.core.tries(), 0);
    // already connecting: a second one only resets the counter
    h.core.handle_client_connect();
    assert_eq!(h.drain(), []);
}

#[test]
fn binding_states_are_checked() {
    let mut h = Harness::new(config(CloseRule::Stream, None), &[]);
    h.drain();
    for s in [
        State::CONNECTED,
        State::DISCONNECTED,
        State::DESTROYING,
        State::SERVER_TXN,
        State::SINK_JOIN,
        State::from_u32(42).unwrap(),
    ] {
        assert_eq!(
            h.core.handle_binding_state(s, 0),
            Err(TransitionError::NotABindingState(s))
        );
    }
    for s in [
        State::EVENT_WAIT_CANCELLED,
        State::UPSTREAM_LINK_RETRY,
        State::USER_BASE,
    ] {
        h.core.handle_binding_state(s, 9).unwrap();
    }
    assert_eq!(
        h.drain(),
        [
            S(State::EVENT_WAIT_CANCELLED),
            S(State::UPSTREAM_LINK_RETRY),
            S(State::USER_BASE)
        ]
    );
    // transient states are not recorded: the stream is still in CREATING
    assert_eq!(h.core.state(), Some(State::CREATING));
    h.core.handle_client_connect();
    h.core.handle_connected();
    // MQTT-style: several QoS verdicts on one connection
    h.core
        .handle_binding_state(State::QOS_ACK_REMOTE, 0)
        .unwrap();
    h.core
        .handle_binding_state(State::QOS_NACK_REMOTE, 0)
        .unwrap();
    h.core
        .handle_binding_state(State::QOS_ACK_REMOTE, 0)
        .unwrap();
    assert_eq!(
        TransitionError::Illegal {
            from: None,
            to: State::TIMEOUT
        }
        .to_string(),
        "(unset) -> LWSSSCS_TIMEOUT is not a legal transition"
    );
    h.drain();
}

/// One input to the core, for the property test
#[derive(Debug, Clone)]
enum Op {
    RequestTx,
    ClientConnect,
    Connected,
    ConnectFailed(bool),
    Disconnected,
    RetryLater(u16),
    Binding(u8),
    StartTimeout(Option<u16>),
    CancelTimeout,
    Advance(u16),
    Verdict(u8),
    Destroy,
    /// Deliver up to n events, each state followed by the verdict chosen by `ret`
    Deliver(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::RequestTx),
        1 => Just(Op::ClientConnect),
        3 => Just(Op::Connected),
        3 => any::<bool>().prop_map(Op::ConnectFailed),
        3 => Just(Op::Disconnected),
        2 => any::<u16>().prop_map(Op::RetryLater),
        4 => any::<u8>().prop_map(Op::Binding),
        1 => proptest::option::of(any::<u16>()).prop_map(Op::StartTimeout),
        1 => Just(Op::CancelTimeout),
        4 => any::<u16>().prop_map(Op::Advance),
        1 => any::<u8>().prop_map(Op::Verdict),
        1 => Just(Op::Destroy),
        6 => (any::<u8>(), any::<u8>()).prop_map(|(n, r)| Op::Deliver(n, r)),
    ]
}

fn verdict(v: u8) -> StateReturn {
    match v % 16 {
        0 => StateReturn::DisconnectMe,
        1 => StateReturn::DestroyMe,
        2 => StateReturn::TxDontSend,
        _ => StateReturn::Ok,
    }
}

fn binding_state(v: u8) -> State {
    match v % 8 {
        0 | 1 => State::QOS_ACK_REMOTE,
        2 | 3 => State::QOS_NACK_REMOTE,
        4 => State::EVENT_WAIT_CANCELLED,
        5 => State::user(u32::from(v)).unwrap(),
        6 => State::from_u32(u32::from(v % 22) + 1).unwrap(),
        _ => State::UPSTREAM_LINK_RETRY,
    }
}

fn stream_config() -> impl Strategy<Value = StreamConfig> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of((
            proptest::collection::vec(1u32..5000, 0..4),
            0u16..4,
            any::<bool>(),
        )),
        proptest::option::of(1u64..5000),
    )
        .prop_map(|(http, nailed, opp, retry_spec, timeout)| {
            let mut c = StreamConfig::default();
            c.close_rule(if http {
                CloseRule::Http
            } else {
                CloseRule::Stream
            })
            .nailed_up(nailed)
            .opportunistic(opp)
            .timeout(timeout.map(ms))
            .retry(retry_spec.and_then(|(backoff, conceal, forever)| {
                retry(
                    &backoff,
                    if forever { CONCEAL_FOREVER } else { conceal },
                    20,
                )
            }));
            c
        })
}

proptest! {
    // no regression file: a failure prints the minimal input, which goes into a scenario test
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Whatever the runtime and the user do, the core does not panic (its debug assertion
    /// on its own transitions included), every delivered state is legal after the previous
    /// one, DESTROYING is the last state and Destroyed the last event
    #[test]
    fn arbitrary_inputs_only_make_legal_transitions(
        config in stream_config(),
        samples in proptest::collection::vec(any::<u16>(), 0..8),
        ops in proptest::collection::vec(op(), 0..120),
    ) {
        let mut h = Harness::new(config, &samples);
        let mut destroying = false;
        let mut after = |ev: Ev| {
            if destroying {
                prop_assert!(matches!(ev, Ev::Destroyed), "{ev:?} after DESTROYING");
            }
            if ev == S(State::DESTROYING) {
                destroying = true;
            }
            Ok(())
        };
        for op in ops {
            let now = h.now;
            match op {
                Op::RequestTx => h.core.handle_request_tx(),
                Op::ClientConnect => h.core.handle_client_connect(),
                Op::Connected => h.core.handle_connected(),
                Op::ConnectFailed(dns) => h.core.handle_connect_failed(
                    now,
                    if dns { ConnectFailure::DnsServerUnreachable } else { ConnectFailure::Unreachable },
                ),
                Op::Disconnected => h.core.handle_disconnected(now),
                Op::RetryLater(t) => h.core.handle_retry_later(now, ms(u64::from(t))),
                Op::Binding(v) => {
                    let _ = h.core.handle_binding_state(binding_state(v), u32::from(v));
                }
                Op::StartTimeout(t) => {
                    h.core.start_timeout(now, t.map(|t| ms(u64::from(t))));
                }
                Op::CancelTimeout => h.core.cancel_timeout(),
                Op::Advance(t) => {
                    h.now += ms(u64::from(t));
                    let now = h.now;
                    h.core.handle_timeout(now);
                    if let Some(at) = h.core.poll_timeout() {
                        prop_assert!(at > now, "deadline {at:?} left behind at {now:?}");
                    }
                }
                Op::Verdict(v) => h.core.handle_callback_return(now, verdict(v)),
                Op::Destroy => h.core.handle_destroy(),
                Op::Deliver(n, r) => {
                    for i in 0..n {
                        let Some(event) = h.core.poll_event() else { break };
                        let ev = h.check(event);
                        after(ev)?;
                        if let Ev::State(_) = ev {
                            let v = verdict(r.wrapping_add(i));
                            h.core.handle_callback_return(now, v);
                        }
                    }
                }
            }
            if h.core.is_destroyed() {
                prop_assert_eq!(h.core.poll_timeout(), None);
            }
        }
        for ev in h.drain() {
            after(ev)?;
        }
        h.core.handle_destroy();
        let tail = h.drain();
        for &ev in &tail {
            after(ev)?;
        }
        prop_assert!(h.destroyed, "no Destroyed in {:?}", tail);
    }
}
