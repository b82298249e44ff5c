//! The stream lifecycle, without I/O
//!
//! (Work in progress: states, payload flags and callback return codes.)

mod flags;
mod ret;
pub mod state;

pub use flags::PayloadFlags;
pub use ret::{StateReturn, UnknownReturnCode};
pub use state::{State, is_legal};
