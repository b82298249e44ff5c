//! The JSON policy loader (feature `json`)
//!
//! Reads the libwebsockets Secure Streams policy format into a [`PolicySpec`], then validates
//! it into a [`Policy`]. Errors name the key by its dotted path and give line:column; unknown
//! keys are warnings with the nearest known key. See the [module docs](super) for where the
//! loader is stricter than C.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::Path;

use jsonc_parser::ast::{Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;
use jsonc_parser::{CollectOptions, ParseOptions};

use super::Policy;
use super::error::{
    LineIndex, Location, PolicyError, PolicyErrorKind as K, PolicyWarning, PolicyWarningKind as W,
};
use super::spec::{PolicySpec, StreamTypeSpec};

mod keys;
mod sections;
mod streamtype;

/// A loaded policy and what the loader noticed on the way
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Loaded {
    /// The validated policy
    pub policy: Policy,
    /// Keys that were ignored or odd, in document order
    pub warnings: Vec<PolicyWarning>,
}

/// Loads a policy from JSON text
pub fn load(text: &str) -> Result<Loaded, PolicyError> {
    Loader::new(text, None).run(PolicySpec::default())
}

/// Applies the JSON fragment `text` over `base`
///
/// Keys of streamtypes that exist in `base` are overwritten in place (booleans included:
/// `false` clears); new streamtypes are added; `retry`, `certs`, `trust_stores`, `auth` and
/// `metrics` entries are added or replace the entry of the same name; top-level scalars
/// replace. A string key set to `null` clears it (e.g. `"tls_trust_store": null` returns to
/// the OS trust store). The result is validated as a whole.
pub fn load_overlay(base: &Policy, text: &str) -> Result<Loaded, PolicyError> {
    Loader::new(text, Some(base)).run(base.to_spec())
}

/// Loads a policy from a file; errors name the file
pub fn load_path(path: impl AsRef<Path>) -> Result<Loaded, PolicyError> {
    with_file(path.as_ref(), load)
}

/// Applies the overlay fragment in file `path` over `base` (see [`load_overlay`])
pub fn load_overlay_path(base: &Policy, path: impl AsRef<Path>) -> Result<Loaded, PolicyError> {
    with_file(path.as_ref(), |text| load_overlay(base, text))
}

fn with_file(
    path: &Path,
    f: impl FnOnce(&str) -> Result<Loaded, PolicyError>,
) -> Result<Loaded, PolicyError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| PolicyError::new("", K::Io(e.to_string())).with_source_name(&name))?;
    f(&text).map_err(|e| e.with_source_name(name))
}

/// Loads `s` as JSON text if it starts with `{` (after whitespace), else as a file path
///
/// This is the C library's rule for the policy given at context creation.
pub fn load_text_or_path(s: &str) -> Result<Loaded, PolicyError> {
    if s.trim_start().starts_with('{') {
        load(s)
    } else {
        load_path(s)
    }
}

impl Policy {
    /// Loads a policy from JSON text; warnings are logged with `tracing`
    pub fn from_json(text: &str) -> Result<Self, PolicyError> {
        load(text).map(log_warnings)
    }

    /// Loads a policy from a JSON file; warnings are logged with `tracing`
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        load_path(path).map(log_warnings)
    }

    /// Loads JSON text, or a file when `s` does not start with `{`
    pub fn from_text_or_path(s: &str) -> Result<Self, PolicyError> {
        load_text_or_path(s).map(log_warnings)
    }

    /// A new policy: this one with the JSON fragment `overlay` applied (see [`load_overlay`])
    pub fn overlay(&self, overlay: &str) -> Result<Self, PolicyError> {
        load_overlay(self, overlay).map(log_warnings)
    }
}

fn log_warnings(l: Loaded) -> Policy {
    for w in &l.warnings {
        tracing::warn!("policy: {w}");
    }
    l.policy
}

/// Kinds of named definitions that streamtypes refer to
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Def {
    Retry,
    Cert,
    TrustStore,
    Auth,
}

impl Def {
    pub(super) fn what(self) -> &'static str {
        match self {
            Self::Retry => "retry scheme",
            Self::Cert => "cert",
            Self::TrustStore => "trust store",
            Self::Auth => "auth",
        }
    }
}

/// One pass over one document
pub(super) struct Loader<'t> {
    text: &'t str,
    base: Option<&'t Policy>,
    warnings: Vec<PolicyWarning>,
    /// Canonical path → byte offset of its key, for placing validation errors
    positions: HashMap<String, usize>,
    /// Every definition in the document, found by a first pass, for forward references
    defs: HashMap<(Def, String), usize>,
    /// Line starts, made on the first error or warning
    lines: OnceCell<LineIndex>,
}

impl<'t> Loader<'t> {
    fn new(text: &'t str, base: Option<&'t Policy>) -> Self {
        Self {
            text,
            base,
            warnings: Vec::new(),
            positions: HashMap::new(),
            defs: HashMap::new(),
            lines: OnceCell::new(),
        }
    }

    fn run(mut self, mut spec: PolicySpec) -> Result<Loaded, PolicyError> {
        let parse_options = ParseOptions {
            allow_comments: false,
            allow_loose_object_property_names: false,
            allow_trailing_commas: false,
            allow_missing_commas: false,
            allow_single_quoted_strings: false,
            allow_hexadecimal_numbers: false,
            allow_unary_plus_numbers: false,
            allow_bare_decimal_point_numbers: false,
            allow_non_finite_numbers: false,
            allow_extended_string_escapes: false,
        };
        let parsed =
            jsonc_parser::parse_to_ast(self.text, &CollectOptions::default(), &parse_options)
                .map_err(|e| {
                    PolicyError::new("", K::Syntax(e.kind().to_string()))
                        .at(self.location(e.range().start))
                })?;
        let Some(root) = parsed.value else {
            return Err(self.err("", 0, K::Syntax("the document is empty".into())));
        };
        let root = self.object(&root, "")?;
        self.find_definitions(root)?;
        self.document(root, &mut spec)?;
        let policy = Policy::from_spec(spec).map_err(|e| self.place(e))?;
        Ok(Loaded {
            policy,
            warnings: self.warnings,
        })
    }

    fn document(&mut self, root: &Object<'t>, spec: &mut PolicySpec) -> Result<(), PolicyError> {
        for prop in &root.properties {
            let key = prop.name.as_str();
            let v = &prop.value;
            self.mark(key, prop);
            match key {
                "release" => spec.release = self.opt_string(v, key)?,
                "product" => spec.product = self.opt_string(v, key)?,
                "schema-version" => {
                    spec.schema_version = match v {
                        Value::NullKeyword(_) => None,
                        v => Some(self.uint(v, key, u32::MAX.into())? as u32),
                    }
                }
                "via-socks5" => spec.via_socks5 = self.opt_string(v, key)?,
                "retry" => self.retry_section(v, spec)?,
                "certs" => self.certs_section(v, spec)?,
                "trust_stores" => self.trust_stores_section(v, spec)?,
                "metrics" => self.metrics_section(v, spec)?,
                "auth" => self.auth_section(v, spec)?,
                "s" => self.streamtypes_section(v, spec)?,
                _ => self.unknown_key(prop, key.to_owned(), keys::TOP),
            }
        }
        Ok(())
    }

    fn streamtypes_section(
        &mut self,
        v: &Value<'t>,
        spec: &mut PolicySpec,
    ) -> Result<(), PolicyError> {
        let mut in_doc = HashMap::new();
        for el in self.array(v, "s")? {
            for prop in &self.object(el, "s")?.properties {
                let name = prop.name.as_str();
                let path = format!("s.{name}");
                if in_doc.insert(name.to_owned(), ()).is_some() {
                    let kind = K::Duplicate {
                        what: "streamtype",
                        name: name.to_owned(),
                    };
                    return Err(self.err(path, prop.range.start, kind));
                }
                self.mark(&path, prop);
                let idx = match spec.streamtypes.iter().position(|s| s.name == name) {
                    Some(i) => i,
                    None => {
                        spec.streamtypes.push(StreamTypeSpec::named(name));
                        spec.streamtypes.len() - 1
                    }
                };
                let body = self.object(&prop.value, &path)?;
                streamtype::apply(self, &mut spec.streamtypes[idx], body, &path)?;
            }
        }
        Ok(())
    }

    // ---- helpers shared by the section readers ----

    fn location(&self, offset: usize) -> Location {
        self.lines
            .get_or_init(|| LineIndex::new(self.text))
            .location(self.text, offset)
    }

    pub(super) fn err(&self, path: impl Into<String>, offset: usize, kind: K) -> PolicyError {
        PolicyError::new(path, kind).at(self.location(offset))
    }

    /// Records where the key of `path` is
    pub(super) fn mark(&mut self, path: &str, prop: &ObjectProp<'t>) {
        self.positions.insert(path.to_owned(), prop.range.start);
    }

    /// Gives a validation error the position of its path (or of the nearest enclosing key)
    fn place(&self, e: PolicyError) -> PolicyError {
        let mut path = e.path();
        loop {
            if let Some(&off) = self.positions.get(path) {
                return e.at(self.location(off));
            }
            match path.rfind('.') {
                Some(i) => path = &path[..i],
                None => return e,
            }
        }
    }

    pub(super) fn warn(&mut self, path: String, offset: usize, kind: W) {
        let location = self.location(offset);
        self.warnings.push(PolicyWarning {
            path,
            location,
            kind,
        });
    }

    pub(super) fn unknown_key(
        &mut self,
        prop: &ObjectProp<'t>,
        path: String,
        known: &'static [&'static str],
    ) {
        let key = prop.name.as_str();
        let suggestion = keys::suggest(key, known);
        self.warn(
            path,
            prop.range.start,
            W::UnknownKey {
                key: key.to_owned(),
                suggestion,
            },
        );
    }

    /// Checks that a reference to `name` does not point forward in the document
    pub(super) fn check_forward(
        &self,
        def: Def,
        name: &str,
        path: &str,
        offset: usize,
    ) -> Result<(), PolicyError> {
        match self.defs.get(&(def, name.to_owned())) {
            Some(&at) if at > offset => Err(self.err(
                path,
                offset,
                K::ForwardReference {
                    what: def.what(),
                    name: name.to_owned(),
                    defined_at: self.location(at),
                },
            )),
            _ => Ok(()),
        }
    }

    /// Whether the base policy of an overlay defines `name`
    pub(super) fn base_has(&self, def: Def, name: &str) -> bool {
        self.base.is_some_and(|b| match def {
            Def::Retry => b.retry(name).is_some(),
            Def::Cert => b.cert(name).is_some(),
            Def::TrustStore => b.trust_store(name).is_some(),
            Def::Auth => b.auth(name).is_some(),
        })
    }

    pub(super) fn object<'v>(
        &self,
        v: &'v Value<'t>,
        path: &str,
    ) -> Result<&'v Object<'t>, PolicyError> {
        match v {
            Value::Object(o) => Ok(o),
            other => Err(self.wrong(other, path, "an object")),
        }
    }

    pub(super) fn array<'v>(
        &self,
        v: &'v Value<'t>,
        path: &str,
    ) -> Result<&'v [Value<'t>], PolicyError> {
        match v {
            Value::Array(a) => Ok(&a.elements),
            other => Err(self.wrong(other, path, "an array")),
        }
    }

    pub(super) fn boolean(&self, v: &Value<'t>, path: &str) -> Result<bool, PolicyError> {
        match v {
            Value::BooleanLit(b) => Ok(b.value),
            other => Err(self.wrong(other, path, "true or false")),
        }
    }

    pub(super) fn string(&self, v: &Value<'t>, path: &str) -> Result<String, PolicyError> {
        match v {
            Value::StringLit(s) => Ok(s.value.clone().into_owned()),
            other => Err(self.wrong(other, path, "a string")),
        }
    }

    /// A string, or `null` for none
    pub(super) fn opt_string(
        &self,
        v: &Value<'t>,
        path: &str,
    ) -> Result<Option<String>, PolicyError> {
        match v {
            Value::NullKeyword(_) => Ok(None),
            v => self.string(v, path).map(Some),
        }
    }

    /// A non-negative integer up to `max`, written as a number or as a quoted number
    pub(super) fn uint(&self, v: &Value<'t>, path: &str, max: u64) -> Result<u64, PolicyError> {
        let text = match v {
            Value::NumberLit(n) => n.value.to_owned(),
            Value::StringLit(s) => s.value.trim().to_owned(),
            other => return Err(self.wrong(other, path, "an integer")),
        };
        let off = v.range().start;
        let digits = text.strip_prefix('-').unwrap_or(&text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(
                path,
                off,
                K::WrongType {
                    expected: "an integer",
                },
            ));
        }
        let out_of_range = || K::OutOfRange {
            value: text.clone(),
            min: 0,
            max,
        };
        if text.starts_with('-') && digits.bytes().any(|b| b != b'0') {
            return Err(self.err(path, off, out_of_range()));
        }
        match digits.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(self.err(path, off, out_of_range())),
        }
    }

    pub(super) fn wrong(&self, v: &Value<'t>, path: &str, expected: &'static str) -> PolicyError {
        self.err(path, v.range().start, K::WrongType { expected })
    }
}

#[cfg(test)]
mod tests;
