//! `${name}` metadata substitution in policy strings

use std::fmt;

/// A policy string with `${name}` placeholders, parsed once at load time
///
/// Used for `endpoint`, `http_url` and the MQTT topics and messages. A `$` not followed by `{`
/// is literal. Expansion replaces each placeholder with the current metadata value, or with
/// nothing when the value is unset (as in C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(String),
}

/// A `${` with no closing `}`, or an empty `${}`
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad `${{...}}` placeholder in {0:?}")]
pub struct TemplateError(pub String);

impl Template {
    /// Parses `source`
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError(source.to_owned()))?;
            let name = &after[..end];
            if name.is_empty() || name.contains("${") {
                return Err(TemplateError(source.to_owned()));
            }
            parts.push(Part::Var(name.to_owned()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// The string as written in the policy
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the string has no placeholders
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The placeholder names, in order of appearance (repeats included)
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(n) => Some(n.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Expands the placeholders; `lookup` returns the value of a metadata name, or `None`
    /// when it is unset (which expands to nothing)
    ///
    /// Values that are not UTF-8 are expanded lossily.
    pub fn expand<'a, F>(&self, mut lookup: F) -> String
    where
        F: FnMut(&str) -> Option<&'a [u8]>,
    {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Var(name) => {
                    if let Some(v) = lookup(name) {
                        out.push_str(&String::from_utf8_lossy(v));
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_expands() {
        let t = Template::parse("${region}.example.com/${a}x${a}").unwrap();
        assert_eq!(t.names().collect::<Vec<_>>(), ["region", "a", "a"]);
        assert!(!t.is_literal());
        let got = t.expand(|n| match n {
            "region" => Some(b"uk".as_slice()),
            _ => None,
        });
        assert_eq!(got, ".example.com/x".replace(".ex", "uk.ex"));
    }

    #[test]
    fn dollar_without_brace_is_literal() {
        let t = Template::parse("a$b$").unwrap();
        assert!(t.is_literal());
        assert_eq!(t.expand(|_| None), "a$b$");
    }

    #[test]
    fn rejects_unterminated_and_empty() {
        assert!(Template::parse("x${abc").is_err());
        assert!(Template::parse("x${}").is_err());
        assert!(Template::parse("x${a${b}").is_err());
    }
}
