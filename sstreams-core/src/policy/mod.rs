//! The policy database
//!
//! A Secure Streams policy says, per *streamtype*, where a stream connects, over which
//! protocol, with which TLS trust store, retry/backoff scheme, timeouts, metadata and
//! protocol-specific options. Application code only names the streamtype.
//!
//! Three ways in, one validation:
//!
//! * JSON text or a file (feature `json`, on by default): [`Policy::from_json`],
//!   [`Policy::from_path`], [`Policy::from_text_or_path`]; [`json::load`] also returns the
//!   warnings (unknown keys with a suggestion, deprecated keys).
//! * An overlay fragment over a loaded policy: [`Policy::overlay`].
//! * A static policy compiled into the program: [`codegen::to_rust`] writes Rust source that
//!   builds a [`spec::PolicySpec`] and calls [`Policy::from_spec`], with no JSON parser.
//!
//! # Differences from the C parser
//!
//! The loader accepts every key of the C parser with the same meaning, and is stricter where
//! C is silent:
//!
//! * unknown keys are warnings naming the key, its position and the nearest known key;
//! * a boolean key set to `false` clears the flag (C ignores `false`), also in overlays;
//! * numbers out of range for their key are errors (C narrows them silently); quoted numbers
//!   such as `"443"` are accepted as in C;
//! * names defined twice, and `${name}` placeholders naming undeclared metadata, are errors;
//! * an overlay may add new streamtypes and new or replaced `retry`, `certs`, `trust_stores`,
//!   `auth` and `metrics` entries (C only patches existing streamtypes);
//! * the short trust store form `{ "<name>": ["cert", ...] }` shown in the SS README is
//!   accepted beside `{ "name": ..., "stack": [...] }`;
//! * `auth_hexify` (documented in the README, ignored by C) is honoured.
//!
//! Every error carries the dotted key path and, for text, the line and column.

mod builtin;
pub mod codegen;
mod endpoint;
mod error;
#[cfg(feature = "json")]
pub mod json;
mod model;
pub mod retry;
pub mod spec;
mod template;
mod validate;

pub use endpoint::{Endpoint, EndpointError, Target};
pub use error::{Location, PolicyError, PolicyErrorKind, PolicyWarning, PolicyWarningKind};
pub use model::{MqttTemplates, Policy, StreamType, TrustStore};
pub use retry::{RetryPolicy, RetryState, RetryStep};
pub use spec::{Bytes, PolicySpec, Protocol, StreamTypeSpec};
pub use template::{Template, TemplateError};
pub use validate::{MAX_AUTH_BLOB, MAX_METADATA, MAX_PRIORITY, MAX_QOS, MAX_RESP_MAP_ENTRIES};
