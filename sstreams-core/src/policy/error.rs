//! Policy errors and warnings, each naming the key and where it is

use std::fmt;

/// A 1-based line and column (in characters) in the policy text
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, counting from 1
    pub line: u32,
    /// Column in characters, counting from 1
    pub column: u32,
}

impl Location {
    /// The location of byte offset `offset` in `text`
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let mut line = 1u32;
        let mut line_start = 0usize;
        for (i, b) in text.as_bytes()[..offset].iter().enumerate() {
            if *b == b'\n' {
                line = line.saturating_add(1);
                line_start = i + 1;
            }
        }
        // Round down to a char boundary so a bad offset can never panic.
        let mut end = offset;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let column = text[line_start.min(end)..end].chars().count() + 1;
        Self {
            line,
            column: u32::try_from(column).unwrap_or(u32::MAX),
        }
    }
}

/// Byte offsets of the line starts of a text, for many offset → [`Location`] lookups
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) fn new(text: &str) -> Self {
        let newlines = text
            .bytes()
            .enumerate()
            .filter(|(_, b)| *b == b'\n')
            .map(|(i, _)| i + 1);
        Self {
            starts: std::iter::once(0).chain(newlines).collect(),
        }
    }

    /// The location of byte `offset` of `text` (the text this index was made from)
    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) fn location(&self, text: &str, offset: usize) -> Location {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let mut end = offset;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let column = text[start.min(end)..end].chars().count() + 1;
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Location {
            line: clamp(line),
            column: clamp(column),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a policy was refused
///
/// `path` names the key in a dotted form with streamtypes, retry schemes and certs by name,
/// e.g. `s.t_h1.retry` or `retry.default.backoff[8]`; `location` is set when the policy came
/// from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(Box<ErrorInner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct ErrorInner {
    kind: PolicyErrorKind,
    path: String,
    location: Option<Location>,
    source_name: Option<String>,
}

impl PolicyError {
    pub(crate) fn new(path: impl Into<String>, kind: PolicyErrorKind) -> Self {
        let path = path.into();
        Self(Box::new(ErrorInner {
            kind,
            path,
            location: None,
            source_name: None,
        }))
    }

    #[cfg_attr(not(feature = "json"), allow(dead_code))]
    pub(crate) fn at(mut self, location: Location) -> Self {
        self.0.location = Some(location);
        self
    }

    /// Names the file (or other source) the policy came from, for the message
    pub fn with_source_name(mut self, name: impl Into<String>) -> Self {
        self.0.source_name = Some(name.into());
        self
    }

    /// What is wrong
    pub fn kind(&self) -> &PolicyErrorKind {
        &self.0.kind
    }

    /// The dotted path of the offending key; empty for the document as a whole
    pub fn path(&self) -> &str {
        &self.0.path
    }

    /// Where in the text, when the policy came from text
    pub fn location(&self) -> Option<Location> {
        self.0.location
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.0;
        if let Some(name) = &e.source_name {
            write!(f, "{name}:")?;
        }
        if let Some(loc) = e.location {
            write!(f, "{loc}: ")?;
        } else if e.source_name.is_some() {
            f.write_str(" ")?;
        }
        if !e.path.is_empty() {
            write!(f, "`{}`: ", e.path)?;
        }
        write!(f, "{}", e.kind)
    }
}

impl std::error::Error for PolicyError {}

/// The kinds of [`PolicyError`]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// The file could not be read
    #[error("cannot read policy file: {0}")]
    Io(String),
    /// The text is not JSON
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// A value has the wrong JSON type
    #[error("expected {expected}")]
    WrongType {
        /// What was expected, e.g. "a boolean"
        expected: &'static str,
    },
    /// A number is outside the range its key allows
    #[error("{value} is out of range {min}..={max}")]
    OutOfRange {
        /// The value as written
        value: String,
        /// Smallest allowed value
        min: i64,
        /// Largest allowed value
        max: u64,
    },
    /// A protocol name that is not one of h1, h2, h3, ws, mqtt, raw
    #[error("unknown protocol `{0}` (expected one of h1, h2, h3, ws, mqtt, raw)")]
    UnknownProtocol(String),
    /// A reference to a retry scheme, trust store, cert, auth or streamtype that is not defined
    #[error("unknown {what} `{name}`{}", in_streamtype(.streamtype))]
    UnknownReference {
        /// "retry scheme", "trust store", "cert", "auth" or "streamtype"
        what: &'static str,
        /// The name referred to
        name: String,
        /// The streamtype that refers to it, if any
        streamtype: Option<String>,
    },
    /// A reference to something defined only later in the document
    #[error(
        "{what} `{name}` is used before it is defined (at {defined_at}); \
         move its definition above this point"
    )]
    ForwardReference {
        /// "retry scheme", "trust store", "cert" or "auth"
        what: &'static str,
        /// The name referred to
        name: String,
        /// Where it is defined
        defined_at: Location,
    },
    /// The same name defined twice
    #[error("{what} `{name}` is defined twice")]
    Duplicate {
        /// "streamtype", "retry scheme", "cert", "trust store", "auth" or "metadata"
        what: &'static str,
        /// The name
        name: String,
    },
    /// More than 8 entries in a `backoff` table
    #[error("at most 8 backoff entries are allowed, found {0}")]
    TooManyBackoff(usize),
    /// `svalidhup` not greater than `svalidping`
    #[error("svalidhup ({hup} s) must be greater than svalidping ({ping} s)")]
    ValidityTimers {
        /// `svalidping`
        ping: u16,
        /// `svalidhup`
        hup: u16,
    },
    /// More than 16 `http_resp_map` entries
    #[error("at most 16 http_resp_map entries are allowed, found {0}")]
    TooManyRespMap(usize),
    /// More than 255 metadata names in one streamtype
    #[error("at most 255 metadata names are allowed, found {0}")]
    TooManyMetadata(usize),
    /// A trust store with no certs
    #[error("a trust store needs at least one cert in `stack`")]
    EmptyTrustStore,
    /// A required key is missing
    #[error("missing required key `{0}`")]
    Missing(&'static str),
    /// A cert that is not valid base64
    #[error("cert is not valid base64: {0}")]
    BadBase64(String),
    /// A `${name}` placeholder naming metadata the streamtype does not declare
    #[error(
        "`${{{name}}}` names metadata that streamtype `{streamtype}` does not declare \
         (add {{\"{name}\": \"\"}} to its `metadata`)"
    )]
    UndeclaredMetadata {
        /// The placeholder name
        name: String,
        /// The streamtype
        streamtype: String,
    },
    /// A `${` without its closing `}`, or an empty `${}`
    #[error("bad `${{...}}` placeholder in {0:?}")]
    BadTemplate(String),
    /// A `host:port` value that is not one
    #[error("expected `host:port`, found {0:?}")]
    BadHostPort(String),
    /// A server streamtype with TLS but no certificate or key
    #[error("a TLS server needs both `server_cert` and `server_key`")]
    ServerNeedsCert,
    /// A value that is empty where it must not be
    #[error("must not be empty")]
    Empty,
}

fn in_streamtype(st: &Option<String>) -> String {
    match st {
        Some(st) => format!(" (referenced by streamtype `{st}`)"),
        None => String::new(),
    }
}

/// Something in a policy that loads but is probably not what the author meant
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWarning {
    /// Dotted path of the key
    pub path: String,
    /// Where in the text
    pub location: Location,
    /// What is odd about it
    pub kind: PolicyWarningKind,
}

impl fmt::Display for PolicyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: `{}`: {}", self.location, self.path, self.kind)
    }
}

/// The kinds of [`PolicyWarning`]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyWarningKind {
    /// A key the parser does not know; it is ignored
    #[error("unknown key `{key}` is ignored{}", did_you_mean(.suggestion))]
    UnknownKey {
        /// The key as written
        key: String,
        /// The nearest known key, if one is close
        suggestion: Option<&'static str>,
    },
    /// A key that is accepted for compatibility and has no effect
    #[error("`{0}` is deprecated and has no effect")]
    Deprecated(&'static str),
    /// A key that does nothing for the streamtype's protocol
    #[error("`{key}` has no effect with protocol {protocol}")]
    NoEffect {
        /// The key
        key: &'static str,
        /// The streamtype's protocol
        protocol: &'static str,
    },
}

fn did_you_mean(s: &Option<&'static str>) -> String {
    match s {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_chars() {
        let text = "{\n  \"é\": 1,\n  \"x\"";
        assert_eq!(
            Location::of_offset(text, 0),
            Location { line: 1, column: 1 }
        );
        let x = text.find("\"x\"").unwrap();
        assert_eq!(
            Location::of_offset(text, x),
            Location { line: 3, column: 3 }
        );
        let one = text.find('1').unwrap();
        // `é` is two bytes but one column.
        assert_eq!(
            Location::of_offset(text, one),
            Location { line: 2, column: 8 }
        );
        // Past the end, or inside a char, never panics.
        assert_eq!(Location::of_offset(text, 10_000).line, 3);
        let inside_e = text.find('é').unwrap() + 1;
        assert_eq!(Location::of_offset(text, inside_e).line, 2);
    }

    #[test]
    fn line_index_agrees_with_scanning() {
        let text = "{\n  \"é\": 1,\n\n  \"x\"\n";
        let index = LineIndex::new(text);
        for off in 0..=text.len() + 3 {
            assert_eq!(
                index.location(text, off),
                Location::of_offset(text, off),
                "offset {off}"
            );
        }
    }

    #[test]
    fn display_has_file_position_path_and_reason() {
        let e = PolicyError::new("s.t_h1.retry", PolicyErrorKind::TooManyBackoff(9))
            .at(Location { line: 3, column: 7 })
            .with_source_name("p.json");
        assert_eq!(
            e.to_string(),
            "p.json:3:7: `s.t_h1.retry`: at most 8 backoff entries are allowed, found 9"
        );
    }
}
