//! The system state manager: steps through lws_system states and announces each on SMD
//!
//! ```text
//!  CONTEXT_CREATED ─► PRE_PRIV_DROP ─► INITIALIZED ─► … ─► TIME_VALID ─► … ─► OPERATIONAL
//!                                                          ▲ hold(TimeValid) stops here
//!  teardown: ─► POLICY_INVALID ─► DESTROYING
//! ```
//!
//! Every state entered is posted on the bus as a [`SmdClass::SYSTEM_STATE`] message with the
//! body `{"state":"<NAME>"}` (C names, e.g. `DESTROYING` for
//! [`SystemState::ContextDestroying`]).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

pub use sstreams_core::system_state::{SystemState, SystemStateMachine, Transition};

use crate::smd::{SmdBus, SmdClass, SmdError};

struct Inner {
    machine: Mutex<SystemStateMachine>,
    bus: SmdBus,
    watch: watch::Sender<SystemState>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, SystemStateMachine> {
        // Nothing that can panic runs under this lock except our own bookkeeping.
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Apply every transition the machine allows now, announcing each
    fn pump(&self, machine: &mut SystemStateMachine) -> SystemState {
        while let Some(t) = machine.poll_transition() {
            self.announce(t);
        }
        machine.current()
    }

    fn announce(&self, t: Transition) {
        tracing::debug!(from = %t.from, to = %t.to, "system state");
        self.watch.send_replace(t.to);
        let body = format!("{{\"state\":\"{}\"}}", t.to.name());
        match self.bus.post(SmdClass::SYSTEM_STATE, body.as_bytes()) {
            Ok(_) | Err(SmdError::Closed) => {}
            Err(e) => tracing::warn!(state = %t.to, error = %e, "system state not announced"),
        }
    }
}

/// The process's system state manager (C `lws_system` state manager)
///
/// Starts at [`SystemState::ContextCreated`] (not announced). Cloning gives another handle to
/// the same manager. All methods may be called from any thread, including from SMD handlers.
#[derive(Clone)]
pub struct SystemStates {
    inner: Arc<Inner>,
}

impl SystemStates {
    /// A manager announcing its transitions on `bus`
    pub fn new(bus: &SmdBus) -> Self {
        let machine = SystemStateMachine::new();
        let (watch, _) = watch::channel(machine.current());
        Self {
            inner: Arc::new(Inner {
                machine: Mutex::new(machine),
                bus: bus.clone(),
                watch,
            }),
        }
    }

    /// The current state
    pub fn current(&self) -> SystemState {
        self.inner.lock().current()
    }

    /// Keep the machine from stepping into `state` until the returned hold is released or
    /// dropped; stepping then resumes towards the pending goal
    ///
    /// Holds on one state are counted. They only stop step-wise progress
    /// ([`step_to`](Self::step_to)), not direct [`transition`](Self::transition)s.
    pub fn hold(&self, state: SystemState) -> StateHold {
        self.inner.lock().hold(state);
        StateHold {
            inner: self.inner.clone(),
            state,
        }
    }

    /// Step one state at a time towards `target`, announcing each (C
    /// `lws_state_transition_steps`); returns the state reached
    ///
    /// Stops before a held state and goes on when the hold is released. Does nothing if the
    /// machine is already at or past `target`.
    pub fn step_to(&self, target: SystemState) -> SystemState {
        let mut m = self.inner.lock();
        m.step_to(target);
        self.inner.pump(&mut m)
    }

    /// Jump directly to `target` and announce it (C `lws_state_transition`); `false` if the
    /// machine was already there
    pub fn transition(&self, target: SystemState) -> bool {
        let mut m = self.inner.lock();
        let Some(t) = m.transition(target) else {
            return false;
        };
        self.inner.announce(t);
        self.inner.pump(&mut m);
        true
    }

    /// Context teardown as in C: jump to [`SystemState::PolicyInvalid`], then step to
    /// [`SystemState::ContextDestroying`] (announced as `DESTROYING`)
    pub fn teardown(&self) {
        self.transition(SystemState::PolicyInvalid);
        self.step_to(SystemState::ContextDestroying);
    }

    /// A receiver that always holds the latest state, for waiting on a state asynchronously
    /// (e.g. `rx.wait_for(|s| *s >= SystemState::Operational).await`)
    pub fn watch(&self) -> watch::Receiver<SystemState> {
        self.inner.watch.subscribe()
    }
}

impl fmt::Debug for SystemStates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemStates")
            .field("machine", &*self.inner.lock())
            .finish()
    }
}

/// Keeps the system state machine from entering one state; releasing or dropping it resumes
/// stepping
#[must_use = "dropping the hold releases it at once"]
pub struct StateHold {
    inner: Arc<Inner>,
    state: SystemState,
}

impl StateHold {
    /// The state being held back
    pub fn state(&self) -> SystemState {
        self.state
    }

    /// Release the hold and resume stepping (same as dropping it)
    pub fn release(self) {}
}

impl Drop for StateHold {
    fn drop(&mut self) {
        let mut m = self.inner.lock();
        m.release(self.state);
        self.inner.pump(&mut m);
    }
}

impl fmt::Debug for StateHold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateHold")
            .field("state", &self.state)
            .finish()
    }
}
