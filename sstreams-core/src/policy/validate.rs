//! `PolicySpec` → `Policy`: the one place where a policy is checked
//!
//! Errors carry canonical dotted paths (`s.<streamtype>.<key>`, `retry.<name>.<key>`,
//! `trust_stores.<name>.stack`, ...); the JSON loader maps them back to line:column.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::error::{PolicyError, PolicyErrorKind as K};
use super::model::{Inner, MqttTemplates, StreamType, TrustStore};
use super::retry::{MAX_BACKOFF_ENTRIES, RetryPolicy};
use super::spec::{PolicySpec, StreamTypeSpec};
use super::template::Template;

/// Most `http_resp_map` entries a streamtype may have
pub const MAX_RESP_MAP_ENTRIES: usize = 16;
/// Most metadata names a streamtype may declare
pub const MAX_METADATA: usize = 255;
/// Highest `attr_priority`
pub const MAX_PRIORITY: u8 = 7;
/// Highest MQTT QoS
pub const MAX_QOS: u8 = 2;
/// Highest `auth[].blob` index
pub const MAX_AUTH_BLOB: u8 = 3;

pub(super) fn validate(spec: PolicySpec) -> Result<Inner, PolicyError> {
    if let Some(hp) = &spec.via_socks5 {
        check_host_port("via-socks5", hp)?;
    }

    let mut retry: Vec<Arc<RetryPolicy>> = Vec::with_capacity(spec.retry.len());
    for r in &spec.retry {
        let path = format!("retry.{}", r.name);
        check_name(
            "retry scheme",
            &r.name,
            &path,
            retry.iter().map(|x| x.name()),
        )?;
        if r.backoff.len() > MAX_BACKOFF_ENTRIES {
            return Err(PolicyError::new(
                format!("{path}.backoff"),
                K::TooManyBackoff(r.backoff.len()),
            ));
        }
        if (r.svalidping != 0 || r.svalidhup != 0) && r.svalidhup <= r.svalidping {
            return Err(PolicyError::new(
                format!("{path}.svalidhup"),
                K::ValidityTimers {
                    ping: r.svalidping,
                    hup: r.svalidhup,
                },
            ));
        }
        retry.push(Arc::new(RetryPolicy::new(r.clone())));
    }

    let mut seen = HashSet::new();
    for c in &spec.certs {
        let path = format!("certs.{}", c.name);
        if c.name.is_empty() {
            return Err(PolicyError::new("certs", K::Empty));
        }
        if !seen.insert(c.name.as_str()) {
            return Err(dup(path, "cert", &c.name));
        }
        if c.der.is_empty() {
            return Err(PolicyError::new(path, K::Empty));
        }
    }

    let mut trust_stores: Vec<Arc<TrustStore>> = Vec::with_capacity(spec.trust_stores.len());
    for t in &spec.trust_stores {
        let path = format!("trust_stores.{}", t.name);
        check_name(
            "trust store",
            &t.name,
            &path,
            trust_stores.iter().map(|x| x.name()),
        )?;
        if t.stack.is_empty() {
            return Err(PolicyError::new(
                format!("{path}.stack"),
                K::EmptyTrustStore,
            ));
        }
        let certs = t
            .stack
            .iter()
            .map(|name| {
                spec.certs
                    .iter()
                    .find(|c| &c.name == name)
                    .cloned()
                    .ok_or_else(|| {
                        PolicyError::new(format!("{path}.stack"), unknown("cert", name, None))
                    })
            })
            .collect::<Result<_, _>>()?;
        trust_stores.push(Arc::new(TrustStore {
            name: t.name.clone(),
            certs,
        }));
    }

    let mut seen = HashSet::new();
    for m in &spec.metrics {
        let path = format!("metrics.{}", m.name);
        if m.name.is_empty() {
            return Err(PolicyError::new("metrics", K::Missing("name")));
        }
        if !seen.insert(m.name.as_str()) {
            return Err(dup(path, "metrics policy", &m.name));
        }
    }

    let mut seen = HashSet::new();
    for a in &spec.auth {
        let path = format!("auth.{}", a.name);
        if a.name.is_empty() {
            return Err(PolicyError::new("auth", K::Missing("name")));
        }
        if !seen.insert(a.name.as_str()) {
            return Err(dup(path, "auth", &a.name));
        }
        if a.blob > MAX_AUTH_BLOB {
            return Err(out_of_range(format!("{path}.blob"), a.blob, MAX_AUTH_BLOB));
        }
    }

    let mut by_name = HashMap::with_capacity(spec.streamtypes.len());
    for (i, st) in spec.streamtypes.iter().enumerate() {
        if st.name.is_empty() {
            return Err(PolicyError::new("s", K::Empty));
        }
        if by_name.insert(st.name.clone(), i).is_some() {
            return Err(dup(format!("s.{}", st.name), "streamtype", &st.name));
        }
    }
    let streamtypes = spec
        .streamtypes
        .iter()
        .map(|st| streamtype(&spec, st, &retry, &trust_stores, &by_name))
        .collect::<Result<_, _>>()?;

    Ok(Inner {
        spec,
        retry,
        trust_stores,
        streamtypes,
        by_name,
    })
}

fn streamtype(
    spec: &PolicySpec,
    st: &StreamTypeSpec,
    retry: &[Arc<RetryPolicy>],
    trust_stores: &[Arc<TrustStore>],
    by_name: &HashMap<String, usize>,
) -> Result<StreamType, PolicyError> {
    let name = st.name.as_str();
    let p = |key: &str| format!("s.{name}.{key}");
    let who = Some(name.to_owned());

    let retry = match &st.retry {
        Some(r) => Some(
            retry
                .iter()
                .find(|x| x.name() == r)
                .cloned()
                .ok_or_else(|| {
                    PolicyError::new(p("retry"), unknown("retry scheme", r, who.clone()))
                })?,
        ),
        None => None,
    };
    let trust_store = match &st.tls_trust_store {
        Some(t) => Some(
            trust_stores
                .iter()
                .find(|x| x.name() == t)
                .cloned()
                .ok_or_else(|| {
                    PolicyError::new(p("tls_trust_store"), unknown("trust store", t, who.clone()))
                })?,
        ),
        None => None,
    };
    let auth = match &st.use_auth {
        Some(a) => Some(
            spec.auth
                .iter()
                .find(|x| &x.name == a)
                .cloned()
                .ok_or_else(|| PolicyError::new(p("use_auth"), unknown("auth", a, who.clone())))?,
        ),
        None => None,
    };
    let cert = |key: &str, v: &Option<String>| -> Result<_, PolicyError> {
        match v {
            Some(c) => spec
                .certs
                .iter()
                .find(|x| &x.name == c)
                .cloned()
                .map(Some)
                .ok_or_else(|| PolicyError::new(p(key), unknown("cert", c, Some(name.to_owned())))),
            None => Ok(None),
        }
    };
    let server_cert = cert("server_cert", &st.server_cert)?;
    let server_key = cert("server_key", &st.server_key)?;
    if st.server && st.tls && (server_cert.is_none() || server_key.is_none()) {
        let missing = if server_cert.is_none() {
            "server_cert"
        } else {
            "server_key"
        };
        return Err(PolicyError::new(p(missing), K::ServerNeedsCert));
    }
    if let Some(r) = &st.rideshare {
        if !by_name.contains_key(r) {
            return Err(PolicyError::new(
                p("rideshare"),
                unknown("streamtype", r, who.clone()),
            ));
        }
    }
    if let Some(hp) = &st.via_socks5 {
        check_host_port(&p("via-socks5"), hp)?;
    }

    let mut seen = HashSet::new();
    for m in &st.metadata {
        if m.name.is_empty() {
            return Err(PolicyError::new(p("metadata"), K::Empty));
        }
        if !seen.insert(m.name.as_str()) {
            return Err(dup(p("metadata"), "metadata", &m.name));
        }
    }
    if st.metadata.len() > MAX_METADATA {
        return Err(PolicyError::new(
            p("metadata"),
            K::TooManyMetadata(st.metadata.len()),
        ));
    }
    for (key, v) in [
        ("aws_region", &st.aws_region),
        ("aws_service", &st.aws_service),
    ] {
        if let Some(m) = v {
            if !seen.contains(m.as_str()) {
                return Err(PolicyError::new(
                    p(key),
                    K::UndeclaredMetadata {
                        name: m.clone(),
                        streamtype: name.to_owned(),
                    },
                ));
            }
        }
    }
    if st.http.resp_map.len() > MAX_RESP_MAP_ENTRIES {
        return Err(PolicyError::new(
            p("http_resp_map"),
            K::TooManyRespMap(st.http.resp_map.len()),
        ));
    }
    if st.attr.priority > MAX_PRIORITY {
        return Err(out_of_range(
            p("attr_priority"),
            st.attr.priority,
            MAX_PRIORITY,
        ));
    }
    for (key, q) in [
        ("mqtt_qos", st.mqtt.qos),
        ("mqtt_will_qos", st.mqtt.will_qos),
        ("mqtt_birth_qos", st.mqtt.birth_qos),
    ] {
        if q > MAX_QOS {
            return Err(out_of_range(p(key), q, MAX_QOS));
        }
    }

    let template = |key: &str, v: &Option<String>| -> Result<Option<Template>, PolicyError> {
        let Some(s) = v else { return Ok(None) };
        let t = Template::parse(s).map_err(|e| PolicyError::new(p(key), K::BadTemplate(e.0)))?;
        if let Some(undeclared) = t.names().find(|n| !seen.contains(n)) {
            return Err(PolicyError::new(
                p(key),
                K::UndeclaredMetadata {
                    name: undeclared.to_owned(),
                    streamtype: name.to_owned(),
                },
            ));
        }
        Ok(Some(t))
    };
    let endpoint = template("endpoint", &st.endpoint)?;
    let http_url = template("http_url", &st.http.url)?;
    let m = &st.mqtt;
    let mqtt = MqttTemplates {
        topic: template("mqtt_topic", &m.topic)?,
        subscribe: template("mqtt_subscribe", &m.subscribe)?,
        will_topic: template("mqtt_will_topic", &m.will_topic)?,
        will_message: template("mqtt_will_message", &m.will_message)?,
        birth_topic: template("mqtt_birth_topic", &m.birth_topic)?,
        birth_message: template("mqtt_birth_message", &m.birth_message)?,
    };

    Ok(StreamType {
        spec: st.clone(),
        retry,
        trust_store,
        auth,
        server_cert,
        server_key,
        endpoint,
        http_url,
        mqtt,
    })
}

fn check_name<'a>(
    what: &'static str,
    name: &str,
    path: &str,
    mut before: impl Iterator<Item = &'a str>,
) -> Result<(), PolicyError> {
    if name.is_empty() {
        return Err(PolicyError::new(path.trim_end_matches('.'), K::Empty));
    }
    if before.any(|n| n == name) {
        return Err(dup(path.to_owned(), what, name));
    }
    Ok(())
}

fn check_host_port(path: &str, hp: &str) -> Result<(), PolicyError> {
    let ok = hp
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0));
    if ok {
        Ok(())
    } else {
        Err(PolicyError::new(path, K::BadHostPort(hp.to_owned())))
    }
}

fn unknown(what: &'static str, name: &str, streamtype: Option<String>) -> K {
    K::UnknownReference {
        what,
        name: name.to_owned(),
        streamtype,
    }
}

fn dup(path: String, what: &'static str, name: &str) -> PolicyError {
    PolicyError::new(
        path,
        K::Duplicate {
            what,
            name: name.to_owned(),
        },
    )
}

fn out_of_range(path: String, v: u8, max: u8) -> PolicyError {
    PolicyError::new(
        path,
        K::OutOfRange {
            value: v.to_string(),
            min: 0,
            max: u64::from(max),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::spec::{CertSpec, MetadataSpec, RetrySpec, StreamTypeSpec, TrustStoreSpec};
    use crate::policy::{Bytes, Policy};

    fn st(name: &str) -> StreamTypeSpec {
        StreamTypeSpec::named(name)
    }

    fn err(spec: PolicySpec) -> PolicyError {
        Policy::from_spec(spec).expect_err("should be refused")
    }

    #[test]
    fn unknown_retry_names_key_and_streamtype() {
        let e = err(PolicySpec {
            streamtypes: vec![StreamTypeSpec {
                retry: Some("nope".into()),
                ..st("a")
            }],
            ..Default::default()
        });
        assert_eq!(e.path(), "s.a.retry");
        assert!(
            e.to_string()
                .contains("unknown retry scheme `nope` (referenced by streamtype `a`)")
        );
    }

    #[test]
    fn resolves_references() {
        let p = Policy::from_spec(PolicySpec {
            retry: vec![RetrySpec {
                name: "r".into(),
                backoff: vec![5],
                ..Default::default()
            }],
            certs: vec![CertSpec {
                name: "c".into(),
                der: Bytes::from_static(b"\x30\x00"),
            }],
            trust_stores: vec![TrustStoreSpec {
                name: "t".into(),
                stack: vec!["c".into()],
            }],
            streamtypes: vec![StreamTypeSpec {
                retry: Some("r".into()),
                tls: true,
                tls_trust_store: Some("t".into()),
                ..st("a")
            }],
            ..Default::default()
        })
        .unwrap();
        let a = p.streamtype("a").unwrap();
        assert_eq!(a.retry().unwrap().backoff_ms(), [5]);
        assert_eq!(
            a.trust_store().unwrap().certs()[0].der.as_ref(),
            b"\x30\x00"
        );
    }

    #[test]
    fn backoff_limit_and_validity_order() {
        let e = err(PolicySpec {
            retry: vec![RetrySpec {
                name: "r".into(),
                backoff: vec![1; 9],
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(e.kind(), &K::TooManyBackoff(9));
        let ok = RetrySpec {
            name: "r".into(),
            backoff: vec![1; 8],
            ..Default::default()
        };
        assert!(
            Policy::from_spec(PolicySpec {
                retry: vec![ok],
                ..Default::default()
            })
            .is_ok()
        );
        let e = err(PolicySpec {
            retry: vec![RetrySpec {
                name: "r".into(),
                svalidping: 30,
                svalidhup: 30,
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(e.path(), "retry.r.svalidhup");
        assert_eq!(e.kind(), &K::ValidityTimers { ping: 30, hup: 30 });
    }

    #[test]
    fn templates_need_declared_metadata() {
        let mut a = st("a");
        a.endpoint = Some("${region}.example.com".into());
        let e = err(PolicySpec {
            streamtypes: vec![a.clone()],
            ..Default::default()
        });
        assert_eq!(e.path(), "s.a.endpoint");
        assert!(matches!(e.kind(), K::UndeclaredMetadata { name, .. } if name == "region"));
        a.metadata.push(MetadataSpec {
            name: "region".into(),
            header: String::new(),
        });
        let p = Policy::from_spec(PolicySpec {
            streamtypes: vec![a],
            ..Default::default()
        })
        .unwrap();
        let ep = p.streamtype("a").unwrap().endpoint().unwrap();
        assert_eq!(ep.expand(|_| Some(b"uk")), "uk.example.com");
    }

    #[test]
    fn duplicates_are_refused() {
        let e = err(PolicySpec {
            streamtypes: vec![st("a"), st("a")],
            ..Default::default()
        });
        assert_eq!(
            e.kind(),
            &K::Duplicate {
                what: "streamtype",
                name: "a".into()
            }
        );
    }

    #[test]
    fn tls_server_needs_cert_and_key() {
        let e = err(PolicySpec {
            streamtypes: vec![StreamTypeSpec {
                server: true,
                tls: true,
                ..st("srv")
            }],
            ..Default::default()
        });
        assert_eq!(e.path(), "s.srv.server_cert");
    }

    #[test]
    fn socks5_must_be_host_port() {
        let e = err(PolicySpec {
            via_socks5: Some("nope".into()),
            ..Default::default()
        });
        assert_eq!(e.path(), "via-socks5");
        assert!(
            Policy::from_spec(PolicySpec {
                via_socks5: Some("127.0.0.1:1080".into()),
                ..Default::default()
            })
            .is_ok()
        );
    }
}
