//! System states stepping, holds, teardown and their SMD announcements

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sstreams::smd::{SmdBus, SmdClass, SmdConfig};
use sstreams::system_state::{SystemState, SystemStates};

/// Bodies of the SYSTEM_STATE messages seen so far
type Seen = Arc<Mutex<Vec<String>>>;

fn setup() -> (SmdBus, SystemStates, Seen, sstreams::smd::Participant) {
    let bus = SmdBus::new(SmdConfig::default().queue_depth(100));
    let seen = Seen::default();
    let s = seen.clone();
    let p = bus.register(SmdClass::SYSTEM_STATE, move |m| {
        s.lock()
            .unwrap()
            .push(String::from_utf8(m.payload().to_vec()).unwrap());
    });
    let states = SystemStates::new(&bus);
    (bus, states, seen, p)
}

fn body(name: &str) -> String {
    format!("{{\"state\":\"{name}\"}}")
}

#[test]
fn steps_to_operational_announcing_each_state() {
    let (bus, states, seen, _p) = setup();
    assert_eq!(states.current(), SystemState::ContextCreated);
    assert_eq!(
        states.step_to(SystemState::Operational),
        SystemState::Operational
    );
    bus.dispatch_pending();
    let want: Vec<String> = [
        "PRE_PRIV_DROP",
        "INITIALIZED",
        "COLLECTING_STDIN",
        "IFACE_COLDPLUG",
        "DHCP",
        "CPD_PRE_TIME",
        "TIME_VALID",
        "CPD_POST_TIME",
        "POLICY_VALID",
        "REGISTERED",
        "AUTH1",
        "AUTH2",
        "ONE_TIME_UPDATES",
        "OPERATIONAL",
    ]
    .into_iter()
    .map(body)
    .collect();
    assert_eq!(*seen.lock().unwrap(), want);
}

#[test]
fn hold_keeps_machine_before_state_until_released() {
    let (bus, states, seen, _p) = setup();
    let hold = states.hold(SystemState::TimeValid);
    assert_eq!(
        states.step_to(SystemState::Operational),
        SystemState::CpdPreTime
    );
    bus.dispatch_pending();
    assert_eq!(seen.lock().unwrap().last().unwrap(), &body("CPD_PRE_TIME"));
    assert!(!seen.lock().unwrap().contains(&body("TIME_VALID")));
    // Release from another thread, as a time service would.
    std::thread::spawn(move || hold.release()).join().unwrap();
    assert_eq!(states.current(), SystemState::Operational);
    bus.dispatch_pending();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[6], body("TIME_VALID"));
    assert_eq!(seen.last().unwrap(), &body("OPERATIONAL"));
    assert_eq!(seen.len(), 14);
}

#[test]
fn teardown_goes_to_policy_invalid_then_destroying() {
    let (bus, states, seen, _p) = setup();
    states.step_to(SystemState::Operational);
    bus.dispatch_pending();
    seen.lock().unwrap().clear();
    states.teardown();
    bus.dispatch_pending();
    assert_eq!(
        *seen.lock().unwrap(),
        [body("POLICY_INVALID"), body("DESTROYING")]
    );
    assert_eq!(states.current(), SystemState::ContextDestroying);
}

#[test]
fn direct_transition_is_announced_once() {
    let (bus, states, seen, _p) = setup();
    assert!(states.transition(SystemState::Initialized));
    assert!(!states.transition(SystemState::Initialized));
    bus.dispatch_pending();
    assert_eq!(*seen.lock().unwrap(), [body("INITIALIZED")]);
}

#[tokio::test]
async fn watch_sees_operational_after_release() {
    let (_bus, states, _seen, _p) = setup();
    let hold = states.hold(SystemState::PolicyValid);
    states.step_to(SystemState::Operational);
    let mut rx = states.watch();
    assert_eq!(*rx.borrow(), SystemState::CpdPostTime);
    let waiter = tokio::spawn(async move {
        rx.wait_for(|s| *s == SystemState::Operational)
            .await
            .map(|s| *s)
    });
    drop(hold);
    let got = tokio::time::timeout(Duration::from_secs(20), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.unwrap(), SystemState::Operational);
}
