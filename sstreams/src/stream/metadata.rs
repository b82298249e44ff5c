//! A stream's metadata values, shared by its handle and its task

use std::sync::Mutex;

use bytes::Bytes;
use sstreams_core::policy::StreamType;

use super::lock;

/// Metadata that a stream cannot take
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// The name is not declared in the streamtype's `metadata` (and is not a header name with
    /// `direct_proto_str`)
    #[error(
        "metadata `{name}` is not declared by streamtype `{streamtype}` \
         (declare it in the policy, or use direct_proto_str with a `header:` name)"
    )]
    Undeclared {
        /// The name
        name: String,
        /// The streamtype
        streamtype: String,
    },
}

/// Values by declared slot, plus undeclared header values (`direct_proto_str`)
#[derive(Debug, Default)]
pub(crate) struct MetadataStore {
    inner: Mutex<Values>,
    /// Proxied streams: any name goes (the proxy's policy checks it)
    any_name: bool,
}

#[derive(Debug, Default, Clone)]
struct Values {
    slots: Vec<Option<Bytes>>,
    /// Lowercase header name without `:`, value
    direct: Vec<(String, Bytes)>,
}

impl MetadataStore {
    pub(crate) fn new(st: &StreamType) -> Self {
        let values = Values {
            slots: vec![None; st.metadata().len()],
            direct: Vec::new(),
        };
        Self {
            inner: Mutex::new(values),
            any_name: false,
        }
    }

    /// A store that takes any name (a proxied stream's: its policy is at the proxy)
    pub(crate) fn any_name() -> Self {
        Self {
            inner: Mutex::new(Values::default()),
            any_name: true,
        }
    }

    pub(crate) fn set(
        &self,
        st: &StreamType,
        name: &str,
        value: Bytes,
    ) -> Result<(), MetadataError> {
        let mut v = lock(&self.inner);
        if let Some(i) = st.metadata_index(name).filter(|_| !self.any_name) {
            v.slots[i] = Some(value);
            return Ok(());
        }
        let direct = if self.any_name {
            Some(name.to_owned())
        } else {
            direct_name(st, name)
        };
        match direct {
            Some(h) => {
                match v.direct.iter_mut().find(|(n, _)| *n == h) {
                    Some(slot) => slot.1 = value,
                    None => v.direct.push((h, value)),
                }
                Ok(())
            }
            None => Err(MetadataError::Undeclared {
                name: name.to_owned(),
                streamtype: st.name().to_owned(),
            }),
        }
    }

    pub(crate) fn get(&self, st: &StreamType, name: &str) -> Option<Bytes> {
        let v = lock(&self.inner);
        if let Some(i) = st.metadata_index(name).filter(|_| !self.any_name) {
            return v.slots[i].clone();
        }
        let h = if self.any_name {
            name.to_owned()
        } else {
            direct_name(st, name)?
        };
        v.direct
            .iter()
            .find(|(n, _)| *n == h)
            .map(|(_, b)| b.clone())
    }

    /// Values captured from the peer: metadata names, or header names (`direct_proto_str`)
    pub(crate) fn capture(&self, st: &StreamType, items: Vec<(String, Bytes)>) {
        for (name, value) in items {
            // A captured name the stream does not know is simply not kept.
            let _ = self
                .set(st, &name, value.clone())
                .or_else(|_| self.set(st, &format!("{name}:"), value));
        }
    }

    /// A copy for one connection: slot values and direct headers
    pub(crate) fn snapshot(&self) -> (Vec<Option<Bytes>>, Vec<(String, Bytes)>) {
        let v = lock(&self.inner);
        (v.slots.clone(), v.direct.clone())
    }
}

/// The direct header name for `name`, if the streamtype allows undeclared headers
fn direct_name(st: &StreamType, name: &str) -> Option<String> {
    if !st.spec().direct_proto_str {
        return None;
    }
    let h = name.strip_suffix(':')?.trim();
    (!h.is_empty()).then(|| h.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sstreams_core::Policy;

    fn policy() -> Policy {
        Policy::from_json(
            r#"{ "s": [ { "a": { "metadata": [{ "m": "" }, { "ct": "content-type:" }] } },
                        { "d": { "direct_proto_str": true, "metadata": [{ "m": "" }] } } ] }"#,
        )
        .unwrap()
    }

    #[test]
    fn declared_names_only_unless_direct() {
        let p = policy();
        let a = p.streamtype("a").unwrap();
        let s = MetadataStore::new(a);
        s.set(a, "ct", Bytes::from_static(b"text/plain")).unwrap();
        assert_eq!(s.get(a, "ct").unwrap(), "text/plain");
        assert_eq!(s.get(a, "m"), None);
        let e = s.set(a, "X-Foo:", Bytes::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("metadata `X-Foo:` is not declared by streamtype `a`")
        );

        let d = p.streamtype("d").unwrap();
        let s = MetadataStore::new(d);
        s.set(d, "X-Foo:", Bytes::from_static(b"1")).unwrap();
        assert_eq!(s.get(d, "x-foo:").unwrap(), "1");
        s.capture(
            d,
            vec![
                ("x-reply".into(), Bytes::from_static(b"r")),
                ("m".into(), Bytes::from_static(b"v")),
            ],
        );
        assert_eq!(s.get(d, "X-Reply:").unwrap(), "r");
        assert_eq!(s.get(d, "m").unwrap(), "v");
        let (slots, direct) = s.snapshot();
        assert_eq!(slots, [Some(Bytes::from_static(b"v"))]);
        assert_eq!(direct.len(), 2);
    }
}
