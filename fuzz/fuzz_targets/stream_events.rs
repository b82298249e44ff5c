//! The stream core on arbitrary input sequences: each byte picks a `handle_*` call (or a
//! partial drain of the events with callback verdicts). Nothing may panic, every delivered
//! state must be legal after the previous one, and nothing may follow `Destroyed`.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sstreams_core::policy::Policy;
use sstreams_core::policy::spec::{PolicySpec, RetrySpec, StreamTypeSpec};
use sstreams_core::stream::{
    CloseRule, ConnectFailure, Event, State, StateReturn, StreamConfig, StreamCore, is_legal,
};

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let retry = |name: &str, conceal| RetrySpec {
            name: name.into(),
            backoff: vec![10, 20, 30],
            conceal,
            jitterpc: 20,
            ..RetrySpec::default()
        };
        Policy::from_spec(PolicySpec {
            retry: vec![retry("few", 2), retry("forever", 0xffff)],
            streamtypes: vec![StreamTypeSpec {
                endpoint: Some("h".into()),
                ..StreamTypeSpec::named("s")
            }],
            ..PolicySpec::default()
        })
        .expect("valid policy")
    })
}

/// The events seen by the user so far, checked as they come
struct Seen {
    last: Option<State>,
    destroyed: bool,
}

impl Seen {
    fn check(&mut self, event: Event) {
        assert!(!self.destroyed, "{event:?} after Destroyed");
        match event {
            Event::State { state, .. } => {
                assert!(is_legal(self.last, state), "{:?} -> {state:?}", self.last);
                if !state.is_transient() {
                    self.last = Some(state);
                }
            }
            Event::Destroyed => self.destroyed = true,
            _ => {}
        }
    }
}

fn verdict(b: u8) -> StateReturn {
    match b % 8 {
        0 => StateReturn::DisconnectMe,
        1 => StateReturn::DestroyMe,
        _ => StateReturn::Ok,
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&setup, ops)) = data.split_first() else {
        return;
    };
    let mut config = StreamConfig::default();
    config
        .close_rule(if setup & 1 != 0 {
            CloseRule::Stream
        } else {
            CloseRule::Http
        })
        .nailed_up(setup & 2 != 0)
        .opportunistic(setup & 4 != 0)
        .timeout((setup & 8 != 0).then(|| Duration::from_millis(15)))
        .retry(match setup >> 4 & 3 {
            0 => None,
            1 => policy().retry("few").cloned(),
            _ => policy().retry("forever").cloned(),
        });
    // jitter samples: the input read backwards
    let samples: Vec<u8> = ops.iter().rev().copied().collect();
    let mut next = 0;
    let mut core = StreamCore::new(config, move || {
        let sample = samples.get(next % samples.len().max(1)).copied();
        next += 1;
        u16::from(sample.unwrap_or(0)) * 257
    });
    let mut seen = Seen {
        last: None,
        destroyed: false,
    };
    let mut now = Instant::now();

    for &b in ops {
        let arg = b >> 4;
        match b & 0x0f {
            0 => core.handle_request_tx(),
            1 => core.handle_client_connect(),
            2 => core.handle_connected(),
            3 => core.handle_connect_failed(now, ConnectFailure::Unreachable),
            4 => core.handle_disconnected(now),
            5 => core.handle_retry_later(now, Duration::from_millis(u64::from(arg) * 5)),
            6 => {
                let state = match arg % 4 {
                    0 => State::QOS_ACK_REMOTE,
                    1 => State::QOS_NACK_REMOTE,
                    2 => State::USER_BASE,
                    _ => State::from_u32(u32::from(arg) + 1).expect("nonzero"),
                };
                let _ = core.handle_binding_state(state, 0);
            }
            7 => core.start_timeout(now, Some(Duration::from_millis(u64::from(arg)))),
            8 => core.cancel_timeout(),
            9 | 10 => {
                now += Duration::from_millis(u64::from(arg) * 3);
                core.handle_timeout(now);
                if let Some(at) = core.poll_timeout() {
                    assert!(at > now, "a due deadline was left behind");
                }
            }
            11 => core.handle_callback_return(now, verdict(arg)),
            12 => core.handle_destroy(),
            _ => {
                for i in 0..arg {
                    let Some(event) = core.poll_event() else {
                        break;
                    };
                    seen.check(event);
                    if matches!(event, Event::State { .. }) {
                        core.handle_callback_return(now, verdict(arg.wrapping_add(i)));
                    }
                }
            }
        }
        if core.is_destroyed() {
            assert_eq!(core.poll_timeout(), None);
        }
    }
    core.handle_destroy();
    while let Some(event) = core.poll_event() {
        seen.check(event);
    }
    assert!(seen.destroyed);
});
