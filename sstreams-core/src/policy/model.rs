//! The validated policy: immutable, with every name resolved

use std::collections::HashMap;
use std::sync::Arc;

use super::error::PolicyError;
use super::retry::RetryPolicy;
use super::spec::{
    AuthSpec, BufferSpec, CertSpec, HttpSpec, MetadataSpec, MetricsSpec, MqttSpec, PolicySpec,
    Protocol, StreamTypeSpec, WsSpec,
};
use super::template::Template;

/// A validated, immutable policy
///
/// Cheap to clone (one `Arc`). Built from JSON by `Policy::from_json` (feature `json`), from a
/// static [`PolicySpec`] by [`Policy::from_spec`], or by overlaying a fragment on another
/// policy. Nothing downstream needs to check it again: every reference is resolved and every
/// limit enforced.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    inner: Arc<Inner>,
}

#[derive(Debug, PartialEq)]
pub(super) struct Inner {
    pub(super) spec: PolicySpec,
    pub(super) retry: Vec<Arc<RetryPolicy>>,
    pub(super) trust_stores: Vec<Arc<TrustStore>>,
    pub(super) streamtypes: Vec<StreamType>,
    pub(super) by_name: HashMap<String, usize>,
}

impl Policy {
    /// Validates `spec` and resolves its references
    pub fn from_spec(spec: PolicySpec) -> Result<Self, PolicyError> {
        Ok(Self {
            inner: Arc::new(super::validate::validate(spec)?),
        })
    }

    /// The policy as written (names, not references)
    pub fn spec(&self) -> &PolicySpec {
        &self.inner.spec
    }

    /// A copy of the spec, e.g. to modify and validate again
    pub fn to_spec(&self) -> PolicySpec {
        self.inner.spec.clone()
    }

    /// The streamtypes, in policy order
    pub fn streamtypes(&self) -> impl ExactSizeIterator<Item = &StreamType> {
        self.inner.streamtypes.iter()
    }

    /// The streamtype called `name`
    pub fn streamtype(&self, name: &str) -> Option<&StreamType> {
        self.inner
            .by_name
            .get(name)
            .map(|&i| &self.inner.streamtypes[i])
    }

    /// The retry schemes, in policy order
    pub fn retry_schemes(&self) -> impl ExactSizeIterator<Item = &Arc<RetryPolicy>> {
        self.inner.retry.iter()
    }

    /// The retry scheme called `name`
    pub fn retry(&self, name: &str) -> Option<&Arc<RetryPolicy>> {
        self.inner.retry.iter().find(|r| r.name() == name)
    }

    /// The trust stores, in policy order
    pub fn trust_stores(&self) -> impl ExactSizeIterator<Item = &Arc<TrustStore>> {
        self.inner.trust_stores.iter()
    }

    /// The trust store called `name`
    pub fn trust_store(&self, name: &str) -> Option<&Arc<TrustStore>> {
        self.inner.trust_stores.iter().find(|t| t.name() == name)
    }

    /// The named certs (and server keys)
    pub fn certs(&self) -> &[CertSpec] {
        &self.inner.spec.certs
    }

    /// The cert called `name`
    pub fn cert(&self, name: &str) -> Option<&CertSpec> {
        self.inner.spec.certs.iter().find(|c| c.name == name)
    }

    /// The auth bindings
    pub fn auths(&self) -> &[AuthSpec] {
        &self.inner.spec.auth
    }

    /// The auth binding called `name`
    pub fn auth(&self, name: &str) -> Option<&AuthSpec> {
        self.inner.spec.auth.iter().find(|a| a.name == name)
    }

    /// The metrics reporting policies
    pub fn metrics(&self) -> &[MetricsSpec] {
        &self.inner.spec.metrics
    }

    /// The global SOCKS5 proxy, `host:port`
    pub fn via_socks5(&self) -> Option<&str> {
        self.inner.spec.via_socks5.as_deref()
    }
}

/// A named CA bundle
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustStore {
    pub(super) name: String,
    pub(super) certs: Vec<CertSpec>,
}

impl TrustStore {
    /// The trust store's name
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA certificates, in `stack` order
    pub fn certs(&self) -> &[CertSpec] {
        &self.certs
    }
}

/// The `${}` templates of an MQTT streamtype
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MqttTemplates {
    /// `mqtt_topic`
    pub topic: Option<Template>,
    /// `mqtt_subscribe`
    pub subscribe: Option<Template>,
    /// `mqtt_will_topic`
    pub will_topic: Option<Template>,
    /// `mqtt_will_message`
    pub will_message: Option<Template>,
    /// `mqtt_birth_topic`
    pub birth_topic: Option<Template>,
    /// `mqtt_birth_message`
    pub birth_message: Option<Template>,
}

/// A validated streamtype
#[derive(Debug, Clone, PartialEq)]
pub struct StreamType {
    pub(super) spec: StreamTypeSpec,
    pub(super) retry: Option<Arc<RetryPolicy>>,
    pub(super) trust_store: Option<Arc<TrustStore>>,
    pub(super) auth: Option<AuthSpec>,
    pub(super) server_cert: Option<CertSpec>,
    pub(super) server_key: Option<CertSpec>,
    pub(super) endpoint: Option<Template>,
    pub(super) http_url: Option<Template>,
    pub(super) mqtt: MqttTemplates,
}

impl StreamType {
    /// The streamtype as written, every key included
    pub fn spec(&self) -> &StreamTypeSpec {
        &self.spec
    }

    /// The streamtype name
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The wire protocol
    pub fn protocol(&self) -> Protocol {
        self.spec.protocol
    }

    /// Whether this streamtype is a server
    pub fn is_server(&self) -> bool {
        self.spec.server
    }

    /// The endpoint template
    pub fn endpoint(&self) -> Option<&Template> {
        self.endpoint.as_ref()
    }

    /// The port (client: destination; server: listen port)
    pub fn port(&self) -> u16 {
        self.spec.port
    }

    /// Whether TLS is used
    pub fn tls(&self) -> bool {
        self.spec.tls
    }

    /// The retry scheme, if any
    pub fn retry(&self) -> Option<&Arc<RetryPolicy>> {
        self.retry.as_ref()
    }

    /// The trust store; `None` with TLS means the OS trust store
    pub fn trust_store(&self) -> Option<&Arc<TrustStore>> {
        self.trust_store.as_ref()
    }

    /// The auth binding (`use_auth`)
    pub fn auth(&self) -> Option<&AuthSpec> {
        self.auth.as_ref()
    }

    /// The server certificate (`server_cert`)
    pub fn server_cert(&self) -> Option<&CertSpec> {
        self.server_cert.as_ref()
    }

    /// The server private key (`server_key`)
    pub fn server_key(&self) -> Option<&CertSpec> {
        self.server_key.as_ref()
    }

    /// The `http_url` template
    pub fn http_url(&self) -> Option<&Template> {
        self.http_url.as_ref()
    }

    /// The MQTT templates
    pub fn mqtt_templates(&self) -> &MqttTemplates {
        &self.mqtt
    }

    /// The declared metadata, in declaration order (the index is the metadata slot)
    pub fn metadata(&self) -> &[MetadataSpec] {
        &self.spec.metadata
    }

    /// The slot of metadata `name`
    pub fn metadata_index(&self, name: &str) -> Option<usize> {
        self.spec.metadata.iter().position(|m| m.name == name)
    }

    /// The default stream timeout, `None` when `timeout_ms` is 0
    pub fn timeout(&self) -> Option<std::time::Duration> {
        (self.spec.timeout_ms != 0)
            .then(|| std::time::Duration::from_millis(u64::from(self.spec.timeout_ms)))
    }

    /// The `http_*` keys
    pub fn http(&self) -> &HttpSpec {
        &self.spec.http
    }

    /// The `ws_*` keys
    pub fn ws(&self) -> &WsSpec {
        &self.spec.ws
    }

    /// The `mqtt_*` keys
    pub fn mqtt(&self) -> &MqttSpec {
        &self.spec.mqtt
    }

    /// The proxy and client buffer sizes
    pub fn buffers(&self) -> &BufferSpec {
        &self.spec.buffers
    }
}

impl MetadataSpec {
    /// The http header this metadata maps to, lowercased and without the trailing `:`
    pub fn header_name(&self) -> Option<String> {
        let h = self.header.trim();
        let h = h.strip_suffix(':').unwrap_or(h);
        (!h.is_empty()).then(|| h.to_ascii_lowercase())
    }
}
