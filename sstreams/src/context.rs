//! The context: a policy, the TLS configurations made from it, the SMD bus and the system
//! state machine; streams are created from it by streamtype name

use std::sync::{Arc, Mutex};

use sstreams_core::policy::{Policy, PolicyError, Protocol};
use sstreams_core::smd::{STREAMTYPE_NAME, SmdClass, SmdMessage};
use sstreams_core::system_state::SystemState;
use tokio::sync::mpsc;

use crate::bind::blobs::HttpBlobs;
use crate::bind::cookies::CookieJar;
use crate::proxy::listen::ProxyAddr;
use crate::smd::{Participant, SmdBus, SmdConfig};
use crate::stream::driver::{Link, Network, channel_face};
use crate::stream::proxied::spawn_proxied;
use crate::stream::{ASYNC_EVENT_QUEUE, Face, Stream, StreamEvents, StreamHandler, lock, spawn};
use crate::system_state::SystemStates;
use crate::tls::{TlsContext, TlsError, TlsSettings};

/// Why a context could not be made
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContextError {
    /// The policy is invalid
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A trust store of the policy cannot be used
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// `build` was called outside a tokio runtime
    #[error("a Context needs a tokio runtime: build it from inside one")]
    NoRuntime,
}

/// Why a stream could not be created
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// No streamtype of that name in the policy
    #[error("no streamtype `{0}` in the policy")]
    UnknownStreamtype(String),
    /// The streamtype's protocol has no binding in this build yet
    #[error("streamtype `{streamtype}`: protocol {protocol} is not supported yet")]
    UnsupportedProtocol {
        /// The streamtype
        streamtype: String,
        /// Its protocol
        protocol: Protocol,
    },
    /// Server streamtypes are not supported yet
    #[error("streamtype `{0}` is a server; server streams are not supported yet")]
    Server(String),
}

/// Per-stream creation options beyond the streamtype
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamOptions {
    tx_credit: Option<i32>,
    tx_queue_limit: Option<usize>,
}

impl StreamOptions {
    /// The initial tx credit (C `manual_initial_tx_credit`); for `_lws_smd` streams this is
    /// the SMD class mask to receive. Default: none (an `_lws_smd` stream then receives
    /// nothing, only sends).
    pub fn tx_credit(&mut self, credit: i32) -> &mut Self {
        self.tx_credit = Some(credit);
        self
    }

    /// Bytes of queued payload at which [`Stream::write`](crate::Stream::write) waits.
    /// Default: [`DEFAULT_TX_QUEUE_LIMIT`](crate::stream::DEFAULT_TX_QUEUE_LIMIT) (64 KiB).
    pub fn tx_queue_limit(&mut self, bytes: usize) -> &mut Self {
        self.tx_queue_limit = Some(bytes);
        self
    }

    fn queue_limit(&self) -> usize {
        self.tx_queue_limit
            .unwrap_or(crate::stream::DEFAULT_TX_QUEUE_LIMIT)
    }
}

/// Builds a [`Context`]
#[derive(Default)]
pub struct ContextBuilder {
    policy: Option<Result<Policy, PolicyError>>,
    tls: TlsSettings,
    smd: SmdConfig,
    jitter: Option<JitterSource>,
    blobs: HttpBlobs,
    early: Vec<(SmdClass, EarlyHandler)>,
    proxy: Option<ProxyAddr>,
}

type EarlyHandler = Box<dyn FnMut(&SmdMessage) + Send + 'static>;

/// Where the backoff jitter's 16-bit uniform samples come from
pub(crate) type JitterSource = Arc<dyn Fn() -> u16 + Send + Sync>;

impl std::fmt::Debug for ContextBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextBuilder")
            .field("policy", &self.policy)
            .field("tls", &self.tls)
            .field("smd", &self.smd)
            .field("early_participants", &self.early.len())
            .finish_non_exhaustive()
    }
}

impl ContextBuilder {
    /// Uses this policy (e.g. a static one from `sstreams policy to-rust`)
    pub fn policy(&mut self, policy: Policy) -> &mut Self {
        self.policy = Some(Ok(policy));
        self
    }

    /// Loads the policy from JSON text, or from a file when the text does not start with `{`
    #[cfg(feature = "json")]
    pub fn policy_json(&mut self, text_or_path: &str) -> &mut Self {
        self.policy = Some(Policy::from_text_or_path(text_or_path));
        self
    }

    /// TLS choices that are not in the policy (client identities, ...)
    pub fn tls(&mut self, settings: TlsSettings) -> &mut Self {
        self.tls = settings;
        self
    }

    /// SMD bus settings
    pub fn smd(&mut self, config: SmdConfig) -> &mut Self {
        self.smd = config;
        self
    }

    /// The values of the http blob headers (`http_auth_header` with its preamble, and the
    /// device serial, firmware version and device type headers). Default: none set; a
    /// streamtype naming a blob header then fails its requests, as in C.
    pub fn http_blobs(&mut self, blobs: HttpBlobs) -> &mut Self {
        self.blobs = blobs;
        self
    }

    /// Registers an SMD participant before the context starts, so it sees every system state
    /// from the first (C `early_smd_cb`); it stays registered for the context's lifetime
    pub fn smd_participant(
        &mut self,
        filter: SmdClass,
        handler: impl FnMut(&SmdMessage) + Send + 'static,
    ) -> &mut Self {
        self.early.push((filter, Box::new(handler)));
        self
    }

    /// Runs every stream at the SS proxy listening on `addr` instead of connecting directly
    /// (e.g. `"@proxy.ss.lws".parse()`); the same application code works either way. The
    /// policy then lives at the proxy. Default: direct.
    pub fn proxy(&mut self, addr: ProxyAddr) -> &mut Self {
        self.proxy = Some(addr);
        self
    }

    /// As [`proxy`](Self::proxy), for an SS proxy listening on TCP `addr` (C
    /// `ss_proxy_address` + `ss_proxy_port`). Plain TCP, no TLS: keep it on loopback or a
    /// trusted network. Default: direct.
    pub fn proxy_tcp(&mut self, addr: std::net::SocketAddr) -> &mut Self {
        self.proxy(ProxyAddr::Tcp(addr))
    }

    /// Supplies the uniform 16-bit samples behind the retry jitter, e.g. a constant to make
    /// backoff delays exact in tests. Default: random.
    pub fn jitter_source(&mut self, source: impl Fn() -> u16 + Send + Sync + 'static) -> &mut Self {
        self.jitter = Some(Arc::new(source));
        self
    }

    /// Makes the context: validates the TLS side of the policy, starts the SMD bus and steps
    /// the system state machine to OPERATIONAL. Without a policy, the built-in default
    /// policy is used. Must be called inside a tokio runtime.
    pub fn build(&mut self) -> Result<Context, ContextError> {
        tokio::runtime::Handle::try_current().map_err(|_| ContextError::NoRuntime)?;
        let policy = match self.policy.take() {
            Some(p) => p?,
            None => Policy::builtin_default(),
        };
        let tls = Arc::new(TlsContext::new(&policy, self.tls.clone())?);
        let smd = SmdBus::new(&self.smd);
        smd.spawn();
        let participants = self
            .early
            .drain(..)
            .map(|(filter, h)| smd.register(filter, h))
            .collect();
        let system = SystemStates::new(&smd);
        system.step_to(SystemState::Operational);
        Ok(Context {
            inner: Arc::new(Inner {
                current: Mutex::new(Current { policy, tls }),
                tls_settings: self.tls.clone(),
                smd,
                system,
                jitter: self.jitter.take(),
                cookies: Arc::new(CookieJar::new()),
                blobs: self.blobs.clone(),
                _participants: participants,
                proxy: self.proxy.take(),
            }),
        })
    }
}

/// The root of an sstreams application
///
/// Cheap to clone. When the last clone goes, the system state machine is torn down and the
/// SMD bus closed; streams still open keep running until their handles are dropped.
#[derive(Debug, Clone)]
pub struct Context {
    inner: Arc<Inner>,
}

struct Inner {
    current: Mutex<Current>,
    tls_settings: TlsSettings,
    smd: SmdBus,
    system: SystemStates,
    jitter: Option<JitterSource>,
    cookies: Arc<CookieJar>,
    blobs: HttpBlobs,
    _participants: Vec<Participant>,
    proxy: Option<ProxyAddr>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("policy", &lock(&self.current).policy)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Current {
    policy: Policy,
    tls: Arc<TlsContext>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.system.teardown();
        self.smd.close();
    }
}

impl Context {
    /// A builder
    pub fn builder() -> ContextBuilder {
        ContextBuilder::default()
    }

    /// The current policy
    pub fn policy(&self) -> Policy {
        lock(&self.inner.current).policy.clone()
    }

    /// Applies a policy overlay; streams created from now on use it
    #[cfg(feature = "json")]
    pub fn apply_overlay(&self, overlay: &str) -> Result<(), ContextError> {
        let policy = self.policy().overlay(overlay)?;
        self.set_policy(policy)
    }

    /// Replaces the policy; streams created from now on use it
    pub fn set_policy(&self, policy: Policy) -> Result<(), ContextError> {
        let tls = Arc::new(TlsContext::new(&policy, self.inner.tls_settings.clone())?);
        *lock(&self.inner.current) = Current { policy, tls };
        Ok(())
    }

    /// The SMD bus
    pub fn smd(&self) -> &SmdBus {
        &self.inner.smd
    }

    /// The system state machine
    pub fn system_states(&self) -> &SystemStates {
        &self.inner.system
    }

    /// Creates a stream of `streamtype` driven by `handler`
    pub fn create_stream(
        &self,
        streamtype: &str,
        handler: impl StreamHandler,
    ) -> Result<Stream, CreateError> {
        self.create_stream_with(streamtype, handler, StreamOptions::default())
    }

    /// As [`create_stream`](Self::create_stream), with options
    pub fn create_stream_with(
        &self,
        streamtype: &str,
        handler: impl StreamHandler,
        options: StreamOptions,
    ) -> Result<Stream, CreateError> {
        if let Some(addr) = &self.inner.proxy {
            return Ok(spawn_proxied(
                streamtype,
                Face::Handler(Box::new(handler)),
                addr.clone(),
                options.tx_credit,
                options.queue_limit(),
            ));
        }
        let (st, link) = self.resolve(streamtype, options)?;
        Ok(spawn(
            st,
            Face::Handler(Box::new(handler)),
            link,
            self.inner.jitter.clone(),
            options.queue_limit(),
        ))
    }

    /// Opens a stream of `streamtype` with the async face: send with [`Stream::send`], read
    /// states and payload from the [`StreamEvents`]
    pub fn open(&self, streamtype: &str) -> Result<(Stream, StreamEvents), CreateError> {
        self.open_with(streamtype, StreamOptions::default())
    }

    /// As [`open`](Self::open), with options
    pub fn open_with(
        &self,
        streamtype: &str,
        options: StreamOptions,
    ) -> Result<(Stream, StreamEvents), CreateError> {
        let (events_tx, rx) = mpsc::channel(ASYNC_EVENT_QUEUE);
        if let Some(addr) = &self.inner.proxy {
            let stream = spawn_proxied(
                streamtype,
                channel_face(events_tx),
                addr.clone(),
                options.tx_credit,
                options.queue_limit(),
            );
            return Ok((stream, StreamEvents { rx }));
        }
        let (st, link) = self.resolve(streamtype, options)?;
        let stream = spawn(
            st,
            channel_face(events_tx),
            link,
            self.inner.jitter.clone(),
            options.queue_limit(),
        );
        Ok((stream, StreamEvents { rx }))
    }

    fn resolve(
        &self,
        name: &str,
        options: StreamOptions,
    ) -> Result<(sstreams_core::policy::StreamType, Link), CreateError> {
        if name == STREAMTYPE_NAME {
            let mask = SmdClass::from_bits(options.tx_credit.unwrap_or(0) as u32);
            return Ok((smd_streamtype(), Link::Smd(self.inner.smd.clone(), mask)));
        }
        let current = lock(&self.inner.current);
        let st = current
            .policy
            .streamtype(name)
            .ok_or_else(|| CreateError::UnknownStreamtype(name.to_owned()))?;
        if st.is_server() {
            return Err(CreateError::Server(name.to_owned()));
        }
        if !matches!(st.protocol(), Protocol::Raw | Protocol::H1) {
            return Err(CreateError::UnsupportedProtocol {
                streamtype: name.to_owned(),
                protocol: st.protocol(),
            });
        }
        let net = Network {
            tls: Arc::clone(&current.tls),
            cookies: Arc::clone(&self.inner.cookies),
            blobs: self.inner.blobs.clone(),
        };
        Ok((st.clone(), Link::Network(Arc::new(net))))
    }
}

/// The streamtype of `_lws_smd` streams, which the policy does not declare
fn smd_streamtype() -> sstreams_core::policy::StreamType {
    use sstreams_core::policy::spec::{PolicySpec, StreamTypeSpec};
    let spec = PolicySpec {
        streamtypes: vec![StreamTypeSpec {
            protocol: Protocol::Raw,
            nailed_up: true,
            ..StreamTypeSpec::named(STREAMTYPE_NAME)
        }],
        ..PolicySpec::default()
    };
    let policy = Policy::from_spec(spec).expect("a fixed, valid streamtype");
    policy
        .streamtype(STREAMTYPE_NAME)
        .expect("just declared")
        .clone()
}
