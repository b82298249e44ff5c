//! The policy database

/// A validated, immutable policy (placeholder while the model lands)
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {}
