//! lws_system states and the pure logic of stepping through them
//!
//! A process moves through a fixed sequence of system states from [`SystemState::ContextCreated`]
//! to [`SystemState::Operational`], one state at a time; the application (or a system service)
//! can *hold* the sequence before a state until it is ready, e.g. until the clock is valid.
//! Every state entered is announced on SMD as `{"state":"<NAME>"}` by the runtime; this module
//! only decides which transitions happen.

use std::fmt;

/// One lws_system state, with the C numbering of libwebsockets v5.0+ (`lws_system_states_t`)
///
/// Only the names ([`SystemState::name`]) leave the process; the numbers have changed between
/// C releases and are not on any wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum SystemState {
    /// Never entered (C name `undef`)
    Unknown = 0,
    /// The context was just created
    ContextCreated = 1,
    /// Just before privileges are dropped
    PrePrivDrop = 2,
    /// Protocols initialized
    Initialized = 3,
    /// Waiting for stdin to be read (skipped when nothing reads stdin)
    CollectingStdin = 4,
    /// Existing network interfaces enumerated
    IfaceColdplug = 5,
    /// At least one interface configured
    Dhcp = 6,
    /// Captive-portal detection before the time is known
    CpdPreTime = 7,
    /// The clock is valid; TLS can work from here on
    TimeValid = 8,
    /// Captive-portal detection after the time is known
    CpdPostTime = 9,
    /// A valid policy is loaded
    PolicyValid = 10,
    /// The device has an identity
    Registered = 11,
    /// Main authentication done
    Auth1 = 12,
    /// Optional authentication done
    Auth2 = 13,
    /// One-time updates before operation
    OneTimeUpdates = 14,
    /// Normal operation
    Operational = 15,
    /// The policy is being replaced or torn down
    PolicyInvalid = 16,
    /// The context is being destroyed (C name `DESTROYING`)
    ContextDestroying = 17,
    /// Negotiating a modal firmware update
    AwaitingModalUpdating = 18,
    /// Applying a firmware update
    ModalUpdating = 19,
}

impl SystemState {
    /// Every state, in numeric order
    pub const ALL: [Self; 20] = [
        Self::Unknown,
        Self::ContextCreated,
        Self::PrePrivDrop,
        Self::Initialized,
        Self::CollectingStdin,
        Self::IfaceColdplug,
        Self::Dhcp,
        Self::CpdPreTime,
        Self::TimeValid,
        Self::CpdPostTime,
        Self::PolicyValid,
        Self::Registered,
        Self::Auth1,
        Self::Auth2,
        Self::OneTimeUpdates,
        Self::Operational,
        Self::PolicyInvalid,
        Self::ContextDestroying,
        Self::AwaitingModalUpdating,
        Self::ModalUpdating,
    ];

    /// The name C announces on SMD (`{"state":"<NAME>"}`); note `DESTROYING` and `undef`
    pub const fn name(self) -> &'static str {
        match self {
            Self::Unknown => "undef",
            Self::ContextCreated => "CONTEXT_CREATED",
            Self::PrePrivDrop => "PRE_PRIV_DROP",
            Self::Initialized => "INITIALIZED",
            Self::CollectingStdin => "COLLECTING_STDIN",
            Self::IfaceColdplug => "IFACE_COLDPLUG",
            Self::Dhcp => "DHCP",
            Self::CpdPreTime => "CPD_PRE_TIME",
            Self::TimeValid => "TIME_VALID",
            Self::CpdPostTime => "CPD_POST_TIME",
            Self::PolicyValid => "POLICY_VALID",
            Self::Registered => "REGISTERED",
            Self::Auth1 => "AUTH1",
            Self::Auth2 => "AUTH2",
            Self::OneTimeUpdates => "ONE_TIME_UPDATES",
            Self::Operational => "OPERATIONAL",
            Self::PolicyInvalid => "POLICY_INVALID",
            Self::ContextDestroying => "DESTROYING",
            Self::AwaitingModalUpdating => "AWAITING_MODAL_UPDATING",
            Self::ModalUpdating => "MODAL_UPDATING",
        }
    }

    /// The state with this C number, if any
    pub fn from_number(n: u8) -> Option<Self> {
        Self::ALL.get(usize::from(n)).copied()
    }

    /// The state with this SMD name, if any
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The C number
    pub const fn number(self) -> u8 {
        self as u8
    }

    /// The next state by number (`None` after the last)
    pub fn next(self) -> Option<Self> {
        Self::from_number(self.number() + 1)
    }
}

impl fmt::Display for SystemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A change of system state
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State left
    pub from: SystemState,
    /// State entered
    pub to: SystemState,
}

/// The system state machine without any I/O
///
/// It starts at [`SystemState::ContextCreated`] (set, not announced, as in C). Two ways to
/// move:
///
/// * [`step_to`](Self::step_to) sets a goal; [`poll_transition`](Self::poll_transition) then
///   yields one transition at a time (current + 1, + 2, …) until the goal is reached or the
///   next state is held. A goal behind the current state is ignored, as C does.
/// * [`transition`](Self::transition) jumps directly to any state (teardown, modal updates);
///   holds do not apply to direct jumps.
///
/// A hold on state `S` ([`hold`](Self::hold)) stops stepping *before* `S` is entered; holds are
/// counted, and stepping resumes when the last hold on `S` is [`release`](Self::release)d.
#[derive(Debug, Clone)]
pub struct SystemStateMachine {
    current: SystemState,
    goal: Option<SystemState>,
    holds: [u16; SystemState::ALL.len()],
}

impl SystemStateMachine {
    /// A machine at [`SystemState::ContextCreated`] with no goal and no holds
    pub fn new() -> Self {
        Self {
            current: SystemState::ContextCreated,
            goal: None,
            holds: [0; SystemState::ALL.len()],
        }
    }

    /// The current state
    pub fn current(&self) -> SystemState {
        self.current
    }

    /// The state stepping is heading for, if it is not there yet
    pub fn goal(&self) -> Option<SystemState> {
        self.goal
    }

    /// Block stepping into `state` until a matching [`release`](Self::release)
    pub fn hold(&mut self, state: SystemState) {
        let n = &mut self.holds[usize::from(state.number())];
        *n = n.saturating_add(1);
    }

    /// Drop one hold on `state`; stepping may resume (call
    /// [`poll_transition`](Self::poll_transition))
    pub fn release(&mut self, state: SystemState) {
        let n = &mut self.holds[usize::from(state.number())];
        *n = n.saturating_sub(1);
    }

    /// Whether stepping into `state` is currently held
    pub fn is_held(&self, state: SystemState) -> bool {
        self.holds[usize::from(state.number())] > 0
    }

    /// The state stepping is waiting to enter, if it is held
    pub fn held_before(&self) -> Option<SystemState> {
        let goal = self.goal?;
        let next = self.current.next()?;
        (next <= goal && self.is_held(next)).then_some(next)
    }

    /// Step one state at a time towards `target` (C `lws_state_transition_steps`)
    ///
    /// Does nothing if the machine is already at or past `target`.
    pub fn step_to(&mut self, target: SystemState) {
        if target > self.current {
            self.goal = Some(self.goal.map_or(target, |g| g.max(target)));
        }
    }

    /// The next step towards the goal, applied, or `None` if there is no goal, the goal is
    /// reached or the next state is held
    pub fn poll_transition(&mut self) -> Option<Transition> {
        let goal = self.goal?;
        if self.current >= goal {
            self.goal = None;
            return None;
        }
        let to = self.current.next()?;
        if self.is_held(to) {
            return None;
        }
        let from = std::mem::replace(&mut self.current, to);
        if to == goal {
            self.goal = None;
        }
        Some(Transition { from, to })
    }

    /// Jump directly to `target` (C `lws_state_transition`); `None` if already there
    ///
    /// A pending goal stays pending if it is still ahead, and is dropped otherwise.
    pub fn transition(&mut self, target: SystemState) -> Option<Transition> {
        if target == self.current {
            return None;
        }
        let from = std::mem::replace(&mut self.current, target);
        if self.goal.is_some_and(|g| g <= target) {
            self.goal = None;
        }
        Some(Transition { from, to: target })
    }
}

impl Default for SystemStateMachine {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(m: &mut SystemStateMachine) -> Vec<SystemState> {
        std::iter::from_fn(|| m.poll_transition().map(|t| t.to)).collect()
    }

    #[test]
    fn numbers_and_names_match_c_head() {
        let expect = [
            (0, "undef"),
            (1, "CONTEXT_CREATED"),
            (2, "PRE_PRIV_DROP"),
            (3, "INITIALIZED"),
            (4, "COLLECTING_STDIN"),
            (5, "IFACE_COLDPLUG"),
            (6, "DHCP"),
            (7, "CPD_PRE_TIME"),
            (8, "TIME_VALID"),
            (9, "CPD_POST_TIME"),
            (10, "POLICY_VALID"),
            (11, "REGISTERED"),
            (12, "AUTH1"),
            (13, "AUTH2"),
            (14, "ONE_TIME_UPDATES"),
            (15, "OPERATIONAL"),
            (16, "POLICY_INVALID"),
            (17, "DESTROYING"),
            (18, "AWAITING_MODAL_UPDATING"),
            (19, "MODAL_UPDATING"),
        ];
        for (n, name) in expect {
            let s = SystemState::from_number(n).unwrap();
            assert_eq!(s.number(), n);
            assert_eq!(s.to_string(), name);
            assert_eq!(SystemState::from_name(name), Some(s));
        }
        assert_eq!(SystemState::from_number(20), None);
        assert_eq!(SystemState::ContextDestroying.name(), "DESTROYING");
    }

    #[test]
    fn steps_one_at_a_time_to_operational() {
        let mut m = SystemStateMachine::new();
        m.step_to(SystemState::Operational);
        let seen = drain(&mut m);
        let want: Vec<_> = (2..=15)
            .map(|n| SystemState::from_number(n).unwrap())
            .collect();
        assert_eq!(seen, want);
        assert_eq!(m.current(), SystemState::Operational);
        assert_eq!(m.goal(), None);
    }

    #[test]
    fn hold_stops_before_state_and_release_resumes() {
        let mut m = SystemStateMachine::new();
        m.hold(SystemState::TimeValid);
        m.step_to(SystemState::Operational);
        let seen = drain(&mut m);
        assert_eq!(seen.last(), Some(&SystemState::CpdPreTime));
        assert_eq!(m.held_before(), Some(SystemState::TimeValid));
        m.release(SystemState::TimeValid);
        let seen = drain(&mut m);
        assert_eq!(seen.first(), Some(&SystemState::TimeValid));
        assert_eq!(m.current(), SystemState::Operational);
    }

    #[test]
    fn holds_are_counted() {
        let mut m = SystemStateMachine::new();
        m.hold(SystemState::Initialized);
        m.hold(SystemState::Initialized);
        m.step_to(SystemState::Initialized);
        assert_eq!(drain(&mut m), [SystemState::PrePrivDrop]);
        m.release(SystemState::Initialized);
        assert_eq!(drain(&mut m), []);
        m.release(SystemState::Initialized);
        assert_eq!(drain(&mut m), [SystemState::Initialized]);
    }

    #[test]
    fn step_backwards_is_ignored_and_direct_jump_works() {
        let mut m = SystemStateMachine::new();
        m.step_to(SystemState::Operational);
        drain(&mut m);
        m.step_to(SystemState::Initialized);
        assert_eq!(m.poll_transition(), None);
        let t = m.transition(SystemState::PolicyInvalid).unwrap();
        assert_eq!(
            (t.from, t.to),
            (SystemState::Operational, SystemState::PolicyInvalid)
        );
        assert_eq!(m.transition(SystemState::PolicyInvalid), None);
    }

    #[test]
    fn direct_jump_ignores_holds_and_keeps_goal_ahead() {
        let mut m = SystemStateMachine::new();
        m.hold(SystemState::Initialized);
        m.step_to(SystemState::Dhcp);
        assert_eq!(drain(&mut m), [SystemState::PrePrivDrop]);
        assert!(m.transition(SystemState::Initialized).is_some());
        assert_eq!(
            drain(&mut m),
            [
                SystemState::CollectingStdin,
                SystemState::IfaceColdplug,
                SystemState::Dhcp
            ]
        );
    }
}
