//! Readers for the top-level sections other than `s`

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonc_parser::ast::{Object, ObjectProp, Value};
use jsonc_parser::common::Ranged;

use super::super::error::{PolicyError, PolicyErrorKind as K};
use super::super::spec::{
    AuthSpec, Bytes, CertSpec, MetricsSpec, PolicySpec, RetrySpec, TrustStoreSpec,
};
use super::{Def, Loader, keys};

/// Standard base64, padding optional (C's decoder does not insist on it)
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Adds `item`, or replaces the entry with the same name (overlays)
fn upsert<T>(list: &mut Vec<T>, item: T, name: impl Fn(&T) -> &str) {
    match list.iter().position(|x| name(x) == name(&item)) {
        Some(i) => list[i] = item,
        None => list.push(item),
    }
}

impl<'t> Loader<'t> {
    /// First pass: where each retry scheme, cert, trust store and auth is defined
    pub(super) fn find_definitions(&mut self, root: &Object<'t>) -> Result<(), PolicyError> {
        let mut found = Vec::new();
        for section in &root.properties {
            let Value::Array(arr) = &section.value else {
                continue;
            };
            let def = match section.name.as_str() {
                "retry" => Def::Retry,
                "certs" => Def::Cert,
                "trust_stores" => Def::TrustStore,
                "auth" => Def::Auth,
                _ => continue,
            };
            for el in &arr.elements {
                let Value::Object(obj) = el else { continue };
                match def {
                    Def::Retry | Def::Cert => {
                        for p in &obj.properties {
                            found.push((def, p.name.as_str().to_owned(), p.range.start));
                        }
                    }
                    Def::TrustStore | Def::Auth => {
                        if let Some(n) = obj.properties.iter().find(|p| p.name.as_str() == "name") {
                            if let Value::StringLit(s) = &n.value {
                                found.push((def, s.value.to_string(), obj.range.start));
                            }
                        } else if def == Def::TrustStore {
                            for p in &obj.properties {
                                found.push((def, p.name.as_str().to_owned(), p.range.start));
                            }
                        }
                    }
                }
            }
        }
        for (def, name, offset) in found {
            if self.defs.insert((def, name.clone()), offset).is_some() {
                let path = format!("{}.{name}", def.section());
                return Err(self.err(
                    path,
                    offset,
                    K::Duplicate {
                        what: def.what(),
                        name,
                    },
                ));
            }
        }
        Ok(())
    }

    /// `retry: [ { "<name>": { backoff, conceal, jitterpc, svalidping, svalidhup } } ]`
    pub(super) fn retry_section(
        &mut self,
        v: &Value<'t>,
        spec: &mut PolicySpec,
    ) -> Result<(), PolicyError> {
        for el in self.array(v, "retry")? {
            for prop in &self.object(el, "retry")?.properties {
                let name = prop.name.as_str();
                let path = format!("retry.{name}");
                self.mark(&path, prop);
                let mut r = RetrySpec {
                    name: name.to_owned(),
                    ..Default::default()
                };
                for k in &self.object(&prop.value, &path)?.properties {
                    let key = k.name.as_str();
                    let kp = format!("{path}.{key}");
                    self.mark(&kp, k);
                    let v = &k.value;
                    match key {
                        "backoff" => {
                            let items = self.array(v, &kp)?;
                            r.backoff = items
                                .iter()
                                .enumerate()
                                .map(|(i, x)| {
                                    let ip = format!("{kp}[{i}]");
                                    self.uint(x, &ip, u32::MAX.into()).map(|n| n as u32)
                                })
                                .collect::<Result<_, _>>()?;
                        }
                        "conceal" => r.conceal = self.uint(v, &kp, u16::MAX.into())? as u16,
                        "jitterpc" => r.jitterpc = self.uint(v, &kp, u8::MAX.into())? as u8,
                        "svalidping" => r.svalidping = self.uint(v, &kp, u16::MAX.into())? as u16,
                        "svalidhup" => r.svalidhup = self.uint(v, &kp, u16::MAX.into())? as u16,
                        _ => self.unknown_key(k, kp, keys::RETRY),
                    }
                }
                upsert(&mut spec.retry, r, |r| &r.name);
            }
        }
        Ok(())
    }

    /// `certs: [ { "<name>": "<base64 DER>", ... } ]`
    pub(super) fn certs_section(
        &mut self,
        v: &Value<'t>,
        spec: &mut PolicySpec,
    ) -> Result<(), PolicyError> {
        for el in self.array(v, "certs")? {
            for prop in &self.object(el, "certs")?.properties {
                let name = prop.name.as_str();
                let path = format!("certs.{name}");
                self.mark(&path, prop);
                let Value::StringLit(b64) = &prop.value else {
                    return Err(self.wrong(&prop.value, &path, "a string"));
                };
                let b64 = b64.value.as_bytes();
                let compact: Vec<u8>;
                let b64 = if b64.iter().any(u8::is_ascii_whitespace) {
                    compact = b64
                        .iter()
                        .copied()
                        .filter(|c| !c.is_ascii_whitespace())
                        .collect();
                    &compact[..]
                } else {
                    b64
                };
                let der = BASE64.decode(b64).map_err(|e| {
                    self.err(&path, prop.value.range().start, K::BadBase64(e.to_string()))
                })?;
                let cert = CertSpec {
                    name: name.to_owned(),
                    der: Bytes::from(der),
                };
                upsert(&mut spec.certs, cert, |c| &c.name);
            }
        }
        Ok(())
    }

    /// `trust_stores: [ { "name": n, "stack": [certs] } ]`, or the README's short form
    /// `[ { "<name>": [certs] } ]`
    pub(super) fn trust_stores_section(
        &mut self,
        v: &Value<'t>,
        spec: &mut PolicySpec,
    ) -> Result<(), PolicyError> {
        for el in self.array(v, "trust_stores")? {
            let obj = self.object(el, "trust_stores")?;
            let long_form = obj
                .properties
                .iter()
                .any(|p| matches!(p.name.as_str(), "name" | "stack"));
            if long_form {
                let name_prop = obj.properties.iter().find(|p| p.name.as_str() == "name");
                let Some(name_prop) = name_prop else {
                    return Err(self.err("trust_stores", obj.range.start, K::Missing("name")));
                };
                let name = self.string(&name_prop.value, "trust_stores.name")?;
                let path = format!("trust_stores.{name}");
                self.mark(&path, name_prop);
                let mut ts = TrustStoreSpec {
                    name,
                    stack: Vec::new(),
                };
                for p in &obj.properties {
                    match p.name.as_str() {
                        "name" => {}
                        "stack" => ts.stack = self.stack(p, &path)?,
                        _ => self.unknown_key(
                            p,
                            format!("{path}.{}", p.name.as_str()),
                            keys::TRUST_STORE,
                        ),
                    }
                }
                upsert(&mut spec.trust_stores, ts, |t| &t.name);
            } else {
                for p in &obj.properties {
                    let path = format!("trust_stores.{}", p.name.as_str());
                    self.mark(&path, p);
                    let stack = self.stack(p, &path)?;
                    let ts = TrustStoreSpec {
                        name: p.name.as_str().to_owned(),
                        stack,
                    };
                    upsert(&mut spec.trust_stores, ts, |t| &t.name);
                }
            }
        }
        Ok(())
    }

    fn stack(&mut self, p: &ObjectProp<'t>, path: &str) -> Result<Vec<String>, PolicyError> {
        let sp = format!("{path}.stack");
        self.mark(&sp, p);
        let items = self.array(&p.value, &sp)?;
        if items.is_empty() {
            return Err(self.err(sp, p.value.range().start, K::EmptyTrustStore));
        }
        items
            .iter()
            .map(|x| {
                let name = self.string(x, &sp)?;
                if !self.base_has(Def::Cert, &name) {
                    self.check_forward(Def::Cert, &name, &sp, x.range().start)?;
                }
                Ok(name)
            })
            .collect()
    }

    /// `metrics: [ { name, us_schedule, us_halflife, min_outlier, report } ]`
    pub(super) fn metrics_section(
        &mut self,
        v: &Value<'t>,
        spec: &mut PolicySpec,
    ) -> Result<(), PolicyError> {
        let mut seen = HashSet::new();
        for el in self.array(v, "metrics")? {
            let obj = self.object(el, "metrics")?;
            let mut m = MetricsSpec::default();
            for p in &obj.properties {
                let key = p.name.as_str();
                let kp = format!("metrics.{key}");
                let v = &p.value;
                match key {
                    "name" => m.name = self.string(v, &kp)?,
                    "us_schedule" => m.us_schedule = self.uint(v, &kp, u64::MAX)?,
                    "us_halflife" => m.us_halflife = self.uint(v, &kp, u32::MAX.into())? as u32,
                    "min_outlier" => m.min_outlier = self.uint(v, &kp, u8::MAX.into())? as u8,
                    "report" => m.report = self.opt_string(v, &kp)?,
                    _ => self.unknown_key(p, kp, keys::METRICS),
                }
            }
            if m.name.is_empty() {
                return Err(self.err("metrics", obj.range.start, K::Missing("name")));
            }
            if !seen.insert(m.name.clone()) {
                let kind = K::Duplicate {
                    what: "metrics policy",
                    name: m.name.clone(),
                };
                return Err(self.err(format!("metrics.{}", m.name), obj.range.start, kind));
            }
            self.positions
                .insert(format!("metrics.{}", m.name), obj.range.start);
            upsert(&mut spec.metrics, m, |m| &m.name);
        }
        Ok(())
    }

    /// `auth: [ { name, type, streamtype, blob } ]`
    pub(super) fn auth_section(
        &mut self,
        v: &Value<'t>,
        spec: &mut PolicySpec,
    ) -> Result<(), PolicyError> {
        for el in self.array(v, "auth")? {
            let obj = self.object(el, "auth")?;
            let mut a = AuthSpec::default();
            let mut blob_at = None;
            for p in &obj.properties {
                let key = p.name.as_str();
                let kp = format!("auth.{key}");
                let v = &p.value;
                match key {
                    "name" => a.name = self.string(v, &kp)?,
                    "type" => a.auth_type = self.opt_string(v, &kp)?,
                    "streamtype" => a.streamtype = self.opt_string(v, &kp)?,
                    "blob" => {
                        a.blob = self.uint(v, &kp, u8::MAX.into())? as u8;
                        blob_at = Some(p.range.start);
                    }
                    _ => self.unknown_key(p, kp, keys::AUTH),
                }
            }
            if a.name.is_empty() {
                return Err(self.err("auth", obj.range.start, K::Missing("name")));
            }
            self.positions
                .insert(format!("auth.{}", a.name), obj.range.start);
            if let Some(at) = blob_at {
                self.positions.insert(format!("auth.{}.blob", a.name), at);
            }
            upsert(&mut spec.auth, a, |a| &a.name);
        }
        Ok(())
    }
}

impl Def {
    fn section(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Cert => "certs",
            Self::TrustStore => "trust_stores",
            Self::Auth => "auth",
        }
    }
}
