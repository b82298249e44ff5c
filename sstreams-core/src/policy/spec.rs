//! Plain-data form of a policy, before validation
//!
//! A [`PolicySpec`] is what the JSON loader produces and what generated static policies
//! (`sstreams policy to-rust`) construct. It holds names where the validated
//! [`Policy`](super::Policy) holds resolved references, and it checks nothing: turn it into a
//! `Policy` with [`Policy::from_spec`](super::Policy::from_spec).
//!
//! Field names follow the JSON keys of the libwebsockets Secure Streams policy
//! (`lib/secure-streams/README.md`); where a key has a `-` or a clash with a Rust keyword the
//! field says so in its doc.

pub use bytes::Bytes;

use super::codegen::{RustWriter, ToRust};

/// Declares a spec struct together with its `Default` and its [`ToRust`] emitter, so the code
/// generator always covers every field.
macro_rules! spec_struct {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl ToRust for $name {
            fn to_rust(&self, out: &mut RustWriter) {
                let default = Self::default();
                out.struct_start(stringify!($name));
                $(
                    if self.$field != default.$field {
                        out.field(stringify!($field), &self.$field);
                    }
                )*
                out.struct_end();
            }
        }
    };
}

/// Wire protocol of a streamtype (`protocol` key)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// HTTP/1.1 (`h1`), the default as in C
    #[default]
    H1,
    /// HTTP/2 (`h2`)
    H2,
    /// HTTP/3 (`h3`)
    H3,
    /// WebSocket over HTTP/1.1 (`ws`)
    Ws,
    /// MQTT 3.1.1 (`mqtt`)
    Mqtt,
    /// Raw byte stream, no framing (`raw`)
    Raw,
}

impl Protocol {
    /// Every protocol, in the C parser's index order
    pub const ALL: [Self; 6] = [
        Self::H1,
        Self::H2,
        Self::H3,
        Self::Ws,
        Self::Mqtt,
        Self::Raw,
    ];

    /// The policy name of the protocol (`h1`, `h2`, `h3`, `ws`, `mqtt`, `raw`)
    pub fn name(self) -> &'static str {
        match self {
            Self::H1 => "h1",
            Self::H2 => "h2",
            Self::H3 => "h3",
            Self::Ws => "ws",
            Self::Mqtt => "mqtt",
            Self::Raw => "raw",
        }
    }

    /// Looks a protocol up by its policy name
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether the protocol is one of the HTTP family (h1, h2, h3)
    pub fn is_http(self) -> bool {
        matches!(self, Self::H1 | Self::H2 | Self::H3)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

spec_struct! {
    /// A whole policy, as written
    pub struct PolicySpec {
        /// `release`: policy version label (informational)
        pub release: Option<String> = None,
        /// `product`: product the policy is for (informational)
        pub product: Option<String> = None,
        /// `schema-version`: minimum parser version the policy wants (informational)
        pub schema_version: Option<u32> = None,
        /// `via-socks5`: global SOCKS5 proxy as `host:port`, applied to every client connection
        pub via_socks5: Option<String> = None,
        /// `retry`: named retry and backoff schemes
        pub retry: Vec<RetrySpec> = Vec::new(),
        /// `certs`: named DER certificates (or private keys, for servers)
        pub certs: Vec<CertSpec> = Vec::new(),
        /// `trust_stores`: named CA bundles made of `certs`
        pub trust_stores: Vec<TrustStoreSpec> = Vec::new(),
        /// `metrics`: metrics reporting policies
        pub metrics: Vec<MetricsSpec> = Vec::new(),
        /// `auth`: auth scheme bindings
        pub auth: Vec<AuthSpec> = Vec::new(),
        /// `s`: the streamtypes
        pub streamtypes: Vec<StreamTypeSpec> = Vec::new(),
    }
}

spec_struct! {
    /// One entry of `retry`
    pub struct RetrySpec {
        /// Name that streamtypes refer to with `retry`
        pub name: String = String::new(),
        /// `backoff`: delay before each successive retry, in ms (at most 8 entries)
        pub backoff: Vec<u32> = Vec::new(),
        /// `conceal`: failures hidden before `ALL_RETRIES_FAILED`; 65535 retries forever
        pub conceal: u16 = 0,
        /// `jitterpc`: random extra delay, in percent of the table delay; 0 selects 30 as in C
        pub jitterpc: u8 = 0,
        /// `svalidping`: idle seconds before a protocol-level validity ping; 0 is off
        pub svalidping: u16 = 0,
        /// `svalidhup`: seconds without proof of validity before hanging up; 0 is off
        pub svalidhup: u16 = 0,
    }
}

spec_struct! {
    /// One entry of `certs`
    pub struct CertSpec {
        /// Name that trust stores and servers refer to
        pub name: String = String::new(),
        /// The DER bytes (the policy carries them as base64)
        pub der: Bytes = Bytes::new(),
    }
}

spec_struct! {
    /// One entry of `trust_stores`
    pub struct TrustStoreSpec {
        /// `name`: name that streamtypes refer to with `tls_trust_store`
        pub name: String = String::new(),
        /// `stack`: the cert names that make up the bundle (at least one)
        pub stack: Vec<String> = Vec::new(),
    }
}

spec_struct! {
    /// One entry of `metrics`
    pub struct MetricsSpec {
        /// `name`: name of the reporting policy
        pub name: String = String::new(),
        /// `us_schedule`: reporting interval in µs
        pub us_schedule: u64 = 0,
        /// `us_halflife`: decay of the running average in µs; 0 is no decay
        pub us_halflife: u32 = 0,
        /// `min_outlier`: contributors needed before a value can be judged an outlier
        pub min_outlier: u8 = 0,
        /// `report`: comma-separated metric-name patterns with wildcards
        pub report: Option<String> = None,
    }
}

spec_struct! {
    /// One entry of `auth`
    pub struct AuthSpec {
        /// `name`: name that streamtypes refer to with `use_auth`
        pub name: String = String::new(),
        /// `type`: auth kind; `sigv4` signs requests
        pub auth_type: Option<String> = None,
        /// `streamtype`: streamtype that refreshes the token
        pub streamtype: Option<String> = None,
        /// `blob`: index of the system blob holding the credential (0..=3)
        pub blob: u8 = 0,
    }
}

spec_struct! {
    /// One `metadata` declaration of a streamtype
    pub struct MetadataSpec {
        /// The metadata name used by the API and in `${name}`
        pub name: String = String::new(),
        /// The value as written: an http header name with a trailing `:`, or empty
        pub header: String = String::new(),
    }
}

spec_struct! {
    /// One `http_resp_map` entry
    pub struct RespMapSpec {
        /// The http status that triggers the mapping
        pub status: u16 = 0,
        /// The state delivered instead (normally a user state, 1000 or more)
        pub state: u16 = 0,
    }
}

spec_struct! {
    /// One per-vhost protocol option of a server streamtype (`options`)
    pub struct OptionSpec {
        /// Option name
        pub name: String = String::new(),
        /// Option value
        pub value: String = String::new(),
    }
}

spec_struct! {
    /// Keys of the HTTP family (h1, h2, h3; ws uses `http_url` and `http_cookies`)
    pub struct HttpSpec {
        /// `http_method`: `GET`, `POST`, `PUT`, `PATCH`, ...
        pub method: Option<String> = None,
        /// `http_url`: URL path with `${metadata}` expansion; a leading `/` is optional
        pub url: Option<String> = None,
        /// `http_expect`: the exact status that counts as success; 0 means any 2xx
        pub expect: u16 = 0,
        /// `http_fail_redirect`: a redirect also sets the captive-portal result
        pub fail_redirect: bool = false,
        /// `http_resp_map`: status to state mappings (at most 16)
        pub resp_map: Vec<RespMapSpec> = Vec::new(),
        /// `http_auth_header`: header carrying the auth token blob
        pub auth_header: Option<String> = None,
        /// `http_auth_preamble`: prefix of the auth header value, e.g. `Bearer `
        pub auth_preamble: Option<String> = None,
        /// `auth_hexify`: send the auth token hex-encoded
        pub auth_hexify: bool = false,
        /// `http_dsn_header`: header carrying the device serial blob
        pub dsn_header: Option<String> = None,
        /// `http_fwv_header`: header carrying the firmware version blob
        pub fwv_header: Option<String> = None,
        /// `http_devtype_header`: header carrying the device type blob
        pub devtype_header: Option<String> = None,
        /// `http_no_content_length`: never send Content-Length
        pub no_content_length: bool = false,
        /// `http_www_form_urlencoded`: send the body as a urlencoded form
        pub www_form_urlencoded: bool = false,
        /// `http_multipart_name`: send the body as a multipart part with this name
        pub multipart_name: Option<String> = None,
        /// `http_multipart_filename`: `filename=` of the multipart part
        pub multipart_filename: Option<String> = None,
        /// `http_mime_content_type`: `Content-Type` of the multipart part
        pub mime_content_type: Option<String> = None,
        /// `http_multipart_ss_in`: deliver each part of a multipart response as a message
        pub multipart_ss_in: bool = false,
        /// `http_cookies`: keep a cookie jar for this streamtype
        pub cookies: bool = false,
        /// `nghttp2_quirk_end_stream`: the h2 peer answers only after END_STREAM
        pub nghttp2_quirk_end_stream: bool = false,
        /// `h2q_oflow_txcr`: the h2 peer overflows its initial tx credit
        pub h2q_oflow_txcr: bool = false,
        /// `long_poll`: h2/h3 stream becomes an immortal rx-only long poll
        pub long_poll: bool = false,
    }
}

impl HttpSpec {
    /// Whether the body goes out as multipart (any of the three multipart keys is set)
    pub fn is_multipart(&self) -> bool {
        self.multipart_name.is_some()
            || self.multipart_filename.is_some()
            || self.mime_content_type.is_some()
    }
}

spec_struct! {
    /// WebSocket keys
    pub struct WsSpec {
        /// `ws_subprotocol`: subprotocol to request (client) or accept (server)
        pub subprotocol: Option<String> = None,
        /// `ws_binary`: send BINARY frames instead of TEXT
        pub binary: bool = false,
        /// `ws_prioritize_reads`: service reads before writes
        pub prioritize_reads: bool = false,
    }
}

spec_struct! {
    /// MQTT keys; every string allows `${metadata}` expansion
    pub struct MqttSpec {
        /// `mqtt_topic`: PUBLISH topic for tx
        pub topic: Option<String> = None,
        /// `mqtt_subscribe`: topic filter to subscribe to (`+` and `#` allowed)
        pub subscribe: Option<String> = None,
        /// `mqtt_qos`: QoS for publish and subscribe (0..=2)
        pub qos: u8 = 0,
        /// `mqtt_retain`: RETAIN flag on publishes
        pub retain: bool = false,
        /// `mqtt_keep_alive`: CONNECT keep-alive in seconds
        pub keep_alive: u16 = 0,
        /// `mqtt_clean_start`: CONNECT clean-session flag
        pub clean_start: bool = false,
        /// `mqtt_will_topic`: will topic
        pub will_topic: Option<String> = None,
        /// `mqtt_will_message`: will payload
        pub will_message: Option<String> = None,
        /// `mqtt_will_qos`: will QoS (0..=2)
        pub will_qos: u8 = 0,
        /// `mqtt_will_retain`: will retain flag
        pub will_retain: bool = false,
        /// `mqtt_birth_topic`: topic of the once-per-connection birth message
        pub birth_topic: Option<String> = None,
        /// `mqtt_birth_message`: birth payload
        pub birth_message: Option<String> = None,
        /// `mqtt_birth_qos`: birth QoS (0..=2)
        pub birth_qos: u8 = 0,
        /// `mqtt_birth_retain`: birth retain flag
        pub birth_retain: bool = false,
        /// `aws_iot`: AWS IoT topic limits and Device Shadow handling
        pub aws_iot: bool = false,
    }
}

/// Default of `proxy_buflen` and `client_buflen`, in bytes
pub const DEFAULT_BUFLEN: u32 = 32_768;

spec_struct! {
    /// Proxy and client buffer sizes (only used when the stream is proxied), in bytes
    pub struct BufferSpec {
        /// `proxy_buflen`: proxy-side buffer for onward rx waiting for the client
        pub proxy_buflen: u32 = DEFAULT_BUFLEN,
        /// `proxy_buflen_rxflow_on_above`: stop reading onward rx above this; 0 is off
        pub proxy_buflen_rxflow_on_above: u32 = 0,
        /// `proxy_buflen_rxflow_off_below`: resume reading below this
        pub proxy_buflen_rxflow_off_below: u32 = 0,
        /// `client_buflen`: client-side buffer, told to the client in CREATE_RESULT
        pub client_buflen: u32 = DEFAULT_BUFLEN,
        /// `client_buflen_rxflow_on_above`: client-side flow control high-water mark; 0 is off
        pub client_buflen_rxflow_on_above: u32 = 0,
        /// `client_buflen_rxflow_off_below`: client-side flow control low-water mark
        pub client_buflen_rxflow_off_below: u32 = 0,
    }
}

spec_struct! {
    /// Socket attributes of a streamtype
    pub struct AttrSpec {
        /// `attr_priority`: socket priority 0..=7 (7 needs CAP_NET_ADMIN)
        pub priority: u8 = 0,
        /// `attr_low_latency`: IP TOS low delay
        pub low_latency: bool = false,
        /// `attr_high_throughput`: IP TOS throughput
        pub high_throughput: bool = false,
        /// `attr_high_reliability`: IP TOS reliability
        pub high_reliability: bool = false,
        /// `attr_low_cost`: IP TOS low cost
        pub low_cost: bool = false,
    }
}

spec_struct! {
    /// One streamtype of `s`
    pub struct StreamTypeSpec {
        /// The streamtype name that applications create streams by
        pub name: String = String::new(),
        /// `server`: this streamtype listens instead of connecting
        pub server: bool = false,
        /// `endpoint`: host (with `${metadata}`), URL, `+path` / `+@abstract` Unix socket
        pub endpoint: Option<String> = None,
        /// `port`: destination port (client) or listen port (server)
        pub port: u16 = 0,
        /// `protocol`: wire protocol
        pub protocol: Protocol = Protocol::H1,
        /// `tls`: use TLS
        pub tls: bool = false,
        /// `client_cert`: index of the system-blob client certificate to present
        pub client_cert: Option<u8> = None,
        /// `tls_trust_store`: trust store validating the peer; `None` uses the OS store
        pub tls_trust_store: Option<String> = None,
        /// `retry`: name of the retry scheme
        pub retry: Option<String> = None,
        /// `timeout_ms`: default stream timeout in ms; 0 is none
        pub timeout_ms: u32 = 0,
        /// `opportunistic`: the connection exists only while in use
        pub opportunistic: bool = false,
        /// `nailed_up`: connect at creation and keep reconnecting
        pub nailed_up: bool = false,
        /// `allow_redirects`: follow http 3xx redirects
        pub allow_redirects: bool = false,
        /// `attr_*`: socket attributes
        pub attr: AttrSpec = AttrSpec::default(),
        /// `swake_validity`: validity and retry timers may wake the system from suspend
        pub swake_validity: bool = false,
        /// `perf`: once per connection, deliver its performance JSON
        /// ([`ConnPerf`](crate::stream::perf::ConnPerf)) as an extra rx with
        /// `SOM|EOM|PERF_JSON`; default false
        pub perf: bool = false,
        /// `metadata`: declared metadata names, in declaration order
        pub metadata: Vec<MetadataSpec> = Vec::new(),
        /// `use_auth`: name of the `auth` entry to use
        pub use_auth: Option<String> = None,
        /// `aws_region`: metadata name holding the AWS region (sigv4)
        pub aws_region: Option<String> = None,
        /// `aws_service`: metadata name holding the AWS service (sigv4)
        pub aws_service: Option<String> = None,
        /// `direct_proto_str`: arbitrary header names may be set and read as metadata
        pub direct_proto_str: bool = false,
        /// `rideshare`: next streamtype of a chained multipart upload
        pub rideshare: Option<String> = None,
        /// `payload_fmt`: free-form payload format name handed to the creator
        pub payload_fmt: Option<String> = None,
        /// `local_sink`: streams of this type are served by an in-process sink
        pub local_sink: bool = false,
        /// `via-socks5`: per-streamtype SOCKS5 proxy as `host:port`
        pub via_socks5: Option<String> = None,
        /// `urgent_tx`: marks the stream as carrying critical tx
        pub urgent_tx: bool = false,
        /// `urgent_rx`: marks the stream as carrying critical rx
        pub urgent_rx: bool = false,
        /// `server_cert`: cert name of the server certificate
        pub server_cert: Option<String> = None,
        /// `server_key`: cert name of the server private key
        pub server_key: Option<String> = None,
        /// `options`: per-vhost protocol options of a server
        pub options: Vec<OptionSpec> = Vec::new(),
        /// `http_*` keys
        pub http: HttpSpec = HttpSpec::default(),
        /// `ws_*` keys
        pub ws: WsSpec = WsSpec::default(),
        /// `mqtt_*` keys and `aws_iot`
        pub mqtt: MqttSpec = MqttSpec::default(),
        /// `proxy_buflen*` and `client_buflen*` keys
        pub buffers: BufferSpec = BufferSpec::default(),
    }
}

impl StreamTypeSpec {
    /// A streamtype with this name and every other key at its default
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

impl ToRust for Protocol {
    fn to_rust(&self, out: &mut RustWriter) {
        let variant = match self {
            Self::H1 => "H1",
            Self::H2 => "H2",
            Self::H3 => "H3",
            Self::Ws => "Ws",
            Self::Mqtt => "Mqtt",
            Self::Raw => "Raw",
        };
        out.raw("Protocol::");
        out.raw(variant);
    }
}
