//! SMD (System Message Distribution) types
//!
//! SMD is a small publish/subscribe bus inside one process: every message carries a class
//! bitfield ([`SmdClass`]), every participant a class filter, and a message reaches each
//! participant whose filter shares a bit with the message's class. This module holds the pure
//! parts: classes, the message value and the 16-byte header an SMD message carries when it
//! travels as the payload of an `_lws_smd` secure stream. The bus itself lives in the runtime
//! crate (`sstreams::smd`).

mod class;
mod error;
mod header;
mod message;

pub use class::SmdClass;
pub use error::SmdFormatError;
pub use header::SsHeader;
pub use message::SmdMessage;

/// Largest message body, in bytes (C `LWS_SMD_MAX_PAYLOAD`)
pub const MAX_PAYLOAD: usize = 384;

/// Length in bytes of the header before the body on `_lws_smd` stream payloads
/// (C `LWS_SMD_SS_RX_HEADER_LEN`): 8-byte class then 8-byte timestamp, both big-endian
pub const SS_HEADER_LEN: usize = 16;

/// Name of the built-in streamtype that links a secure stream to the bus
/// (C `LWS_SMD_STREAMTYPENAME`)
pub const STREAMTYPE_NAME: &str = "_lws_smd";

/// Default bound on the number of queued, not yet fully delivered messages (C default: 40)
pub const DEFAULT_QUEUE_DEPTH: usize = 40;

/// Default age after which an undelivered message is discarded, in microseconds
/// (C default: 2 s)
pub const DEFAULT_TTL_US: u64 = 2_000_000;
