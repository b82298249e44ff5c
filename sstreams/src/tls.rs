//! TLS client configuration from the policy, with rustls
//!
//! A streamtype with `tls_trust_store` trusts exactly the certificates of that trust store and
//! nothing else; without one it trusts the operating system's store (loaded once, on first
//! use). `client_cert: N` presents client identity N, supplied by the application with
//! [`TlsSettings::client_identity`]. SNI and certificate name checks use the endpoint host.
//! Certificate verification is never skipped unless [`TlsSettings::dangerous_skip_verify`]
//! was called explicitly.
//!
//! Every trust store of the policy is turned into a root store when the [`TlsContext`] is
//! made, so a trust store holding something that is not a CA certificate fails at once,
//! naming the trust store and the cert, instead of at the first connection.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use sstreams_core::policy::{Policy, Protocol, StreamType};

/// Why TLS could not be set up for a streamtype
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A cert of a trust store is not a usable CA certificate
    #[error("trust store `{store}`: cert `{cert}` is not a usable CA certificate: {reason}")]
    BadTrustCert {
        /// The trust store
        store: String,
        /// The cert name
        cert: String,
        /// What rustls said
        reason: String,
    },
    /// The OS trust store has no usable certificate
    #[error("the OS trust store has no usable certificates ({0})")]
    NoOsRoots(String),
    /// The policy asks for a client certificate the application did not provide
    #[error("client certificate {0} is named by the policy but was not provided")]
    MissingClientIdentity(u8),
    /// A client identity that rustls refuses
    #[error("client certificate {index}: {reason}")]
    BadClientIdentity {
        /// The `client_cert` index
        index: u8,
        /// What rustls said
        reason: String,
    },
    /// The endpoint is not a valid TLS server name
    #[error("`{0}` is not a valid TLS server name")]
    BadServerName(String),
}

/// A client certificate chain and its private key, as DER
#[derive(Clone)]
pub struct ClientIdentity {
    chain: Vec<Vec<u8>>,
    key: Vec<u8>,
}

impl ClientIdentity {
    /// A leaf-first certificate chain and a PKCS#8, PKCS#1 or SEC1 private key, all DER
    pub fn from_der(chain: Vec<Vec<u8>>, key: Vec<u8>) -> Self {
        Self { chain, key }
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("ClientIdentity")
            .field("certs", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Application-side TLS choices that are not in the policy
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    identities: HashMap<u8, ClientIdentity>,
    skip_verify: bool,
}

impl TlsSettings {
    /// Provides client identity `index`, presented by streamtypes with `client_cert: index`
    ///
    /// Default: none.
    pub fn client_identity(&mut self, index: u8, identity: ClientIdentity) -> &mut Self {
        self.identities.insert(index, identity);
        self
    }

    /// Accepts any server certificate. **Never use this outside tests.**
    ///
    /// Default: off; certificates are always verified.
    pub fn dangerous_skip_verify(&mut self) -> &mut Self {
        tracing::warn!("TLS server certificate verification is disabled");
        self.skip_verify = true;
        self
    }
}

/// Builds and caches the rustls client configurations of a policy
#[derive(Debug)]
pub struct TlsContext {
    provider: Arc<CryptoProvider>,
    stores: HashMap<String, Arc<RootCertStore>>,
    os_store: OnceLock<Result<Arc<RootCertStore>, TlsError>>,
    settings: TlsSettings,
    cache: Mutex<HashMap<ConfigKey, Arc<ClientConfig>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ConfigKey {
    store: Option<String>,
    protocol: Protocol,
    identity: Option<u8>,
}

impl TlsContext {
    /// Makes the root store of every trust store of `policy`
    pub fn new(policy: &Policy, settings: TlsSettings) -> Result<Self, TlsError> {
        let mut stores = HashMap::new();
        for ts in policy.trust_stores() {
            let mut roots = RootCertStore::empty();
            for cert in ts.certs() {
                roots
                    .add(CertificateDer::from(cert.der.to_vec()))
                    .map_err(|e| TlsError::BadTrustCert {
                        store: ts.name().to_owned(),
                        cert: cert.name.clone(),
                        reason: e.to_string(),
                    })?;
            }
            stores.insert(ts.name().to_owned(), Arc::new(roots));
        }
        Ok(Self {
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            stores,
            os_store: OnceLock::new(),
            settings,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The client configuration for streams of `st` (cached)
    pub fn client_config(&self, st: &StreamType) -> Result<Arc<ClientConfig>, TlsError> {
        let key = ConfigKey {
            store: st.trust_store().map(|t| t.name().to_owned()),
            protocol: st.protocol(),
            identity: st.spec().client_cert,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let config = Arc::new(self.build(&key)?);
        cache.insert(key, config.clone());
        Ok(config)
    }

    fn build(&self, key: &ConfigKey) -> Result<ClientConfig, TlsError> {
        let roots = match &key.store {
            // Validation resolved every trust store name, and `new` built them all.
            Some(name) => self
                .stores
                .get(name)
                .cloned()
                .ok_or_else(|| TlsError::BadTrustCert {
                    store: name.clone(),
                    cert: String::new(),
                    reason: "unknown trust store".into(),
                })?,
            None => self.os_roots()?,
        };
        let builder = ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default protocol versions")
            .with_root_certificates(roots);
        let mut config = match key.identity {
            None => builder.with_no_client_auth(),
            Some(index) => {
                let id = self
                    .settings
                    .identities
                    .get(&index)
                    .ok_or(TlsError::MissingClientIdentity(index))?;
                let chain = id
                    .chain
                    .iter()
                    .map(|c| CertificateDer::from(c.clone()))
                    .collect();
                let bad = |reason: String| TlsError::BadClientIdentity { index, reason };
                let key =
                    PrivateKeyDer::try_from(id.key.clone()).map_err(|e| bad(e.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad(e.to_string()))?
            }
        };
        config.alpn_protocols = alpn(key.protocol).iter().map(|p| p.to_vec()).collect();
        if self.settings.skip_verify {
            let algs = self.provider.signature_verification_algorithms;
            config
                .dangerous()
                .set_certificate_verifier(Arc::new(NoVerify(algs)));
        }
        Ok(config)
    }

    fn os_roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        self.os_store
            .get_or_init(|| {
                let found = rustls_native_certs::load_native_certs();
                for e in &found.errors {
                    tracing::debug!("OS trust store: {e}");
                }
                let mut roots = RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(found.certs);
                tracing::debug!("OS trust store: {added} certificates ({ignored} ignored)");
                if added == 0 {
                    let why = found
                        .errors
                        .first()
                        .map_or_else(|| "none found".into(), |e| e.to_string());
                    return Err(TlsError::NoOsRoots(why));
                }
                Ok(Arc::new(roots))
            })
            .clone()
    }
}

/// The ALPN protocols offered for a wire protocol
pub fn alpn(protocol: Protocol) -> &'static [&'static [u8]] {
    match protocol {
        Protocol::H1 | Protocol::Ws => &[b"http/1.1"],
        Protocol::H2 => &[b"h2"],
        Protocol::H3 => &[b"h3"],
        // AWS IoT on port 443 selects MQTT by this ALPN, as the C library always sends it.
        Protocol::Mqtt => &[b"x-amzn-mqtt-ca"],
        Protocol::Raw => &[],
    }
}

/// The TLS server name for an endpoint host (a DNS name or an IP address)
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned()).map_err(|_| TlsError::BadServerName(host.to_owned()))
}

/// Why a TLS handshake failed, for the state and the log line
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// The server certificate has expired
    Expired,
    /// The server certificate is not valid yet
    NotYetValid,
    /// The server certificate is for another host name
    WrongHost,
    /// The server certificate is not signed by a trusted CA
    UnknownIssuer,
    /// Any other TLS failure, as rustls describes it
    Other(String),
}

impl HandshakeFailure {
    /// Classifies the error of a failed `TlsConnector::connect`
    pub fn of(err: &std::io::Error) -> Self {
        let tls = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        match tls {
            Some(rustls::Error::InvalidCertificate(c)) => match c {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    Self::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    Self::NotYetValid
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => Self::WrongHost,
                CertificateError::UnknownIssuer => Self::UnknownIssuer,
                other => Self::Other(format!("invalid certificate: {other:?}")),
            },
            Some(other) => Self::Other(other.to_string()),
            None => Self::Other(err.to_string()),
        }
    }
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expired => f.write_str("server certificate has expired"),
            Self::NotYetValid => f.write_str("server certificate is not valid yet"),
            Self::WrongHost => f.write_str("server certificate is for another host name"),
            Self::UnknownIssuer => f.write_str("server certificate is not from a trusted CA"),
            Self::Other(s) => write!(f, "TLS handshake failed: {s}"),
        }
    }
}

/// Accepts every server certificate; signatures are still checked
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
