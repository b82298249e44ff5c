//! SMD: the in-process System Message Distribution bus
//!
//! A bounded, class-filtered, ordered publish/subscribe bus with monotonic microsecond
//! timestamps, as in C libwebsockets (`lws_smd_*`). System state changes are posted on it as
//! [`SmdClass::SYSTEM_STATE`] messages (see [`crate::system_state`]).
//!
//! ```text
//!  post(class, body) ──► queue (≤ queue_depth owed messages, TTL) ──► handler participants
//!   any thread/task       full: QueueFull, counted                    (dispatcher: run/spawn)
//!                                                              └──► subscriptions (recv().await)
//!                                                              └──► SsBridge (`_lws_smd` payloads)
//! ```
//!
//! Differences from C, on purpose: registering late does not pin older messages until they
//! expire; the filter union is recomputed on unregister too (there is no union: recipients are
//! counted exactly); handler participants get up to 32 messages per turn instead of one.

mod bridge;
mod bus;
mod config;
mod error;
mod queue;
mod subscription;

pub use bridge::SsBridge;
pub use bus::{Participant, ParticipantId, SmdBus};
pub use config::{SmdConfig, SmdStats};
pub use error::SmdError;
pub use sstreams_core::smd::{
    MAX_PAYLOAD, SS_HEADER_LEN, STREAMTYPE_NAME, SmdClass, SmdFormatError, SmdMessage, SsHeader,
};
pub use subscription::Subscription;
