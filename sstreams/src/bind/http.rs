//! The http rules of a Secure Streams client, apart from any connection: the request head a
//! policy asks for, what a response status means, where a redirect goes
//!
//! Pure functions, shared by the http bindings (h1 now, h2 later). The C references are
//! `ss-h1.c` (`lws_apply_metadata`, `lws_extract_metadata`, the `ESTABLISHED_CLIENT_HTTP`
//! handler) and `client-http.c` (`lws_generate_client_handshake`).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use sstreams_core::policy::{Endpoint, StreamType, Target, Template};
use sstreams_core::stream::State;

use super::blobs::HttpBlobs;

/// Most redirects followed for one transaction (the C client's limit too)
pub(crate) const MAX_REDIRECTS: usize = 8;

/// Why a request cannot be made
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    /// `http_method` is not an http method token
    #[error("http_method {0:?} is not a valid method")]
    Method(String),
    /// The expanded URL path is not a valid request target
    #[error("request path {0:?} is not a valid URL path")]
    Path(String),
    /// A metadata, direct or blob header has a name or value http does not allow
    #[error("header {0:?} has an invalid name or value")]
    Header(String),
    /// The policy names a blob header whose system blob is not available
    #[error("header {header:?} needs the {blob} system blob, which is not set")]
    MissingBlob {
        /// The header
        header: String,
        /// The blob (`AUTH[0]`, `DEVICE_SERIAL`, ...)
        blob: &'static str,
    },
}

/// Why a redirect is not followed
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RedirectError {
    /// `allow_redirects` is off
    #[error("redirect to {location} refused (allow_redirects is off{})",
        if *.captive_portal { "; http_fail_redirect: captive portal" } else { "" })]
    Refused {
        /// The `Location`
        location: String,
        /// `http_fail_redirect` is set: the redirect suggests a captive portal
        captive_portal: bool,
    },
    /// More than [`MAX_REDIRECTS`] in a row
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
    /// The redirect leads back to a URL already requested
    #[error("redirect loop at {0}")]
    Loop(String),
    /// The `Location` is not an http(s) URL or path
    #[error("cannot follow redirect to {0:?}")]
    BadLocation(String),
    /// A 307/308 would need the request body again, which is not kept
    #[error("cannot follow {0} redirect: the request body cannot be sent again")]
    BodyReplay(u16),
}

/// One request of a transaction: where it goes and with which method
///
/// The first comes from the policy ([`Hop::first`]); a followed redirect makes the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hop {
    /// Where to connect
    pub(crate) endpoint: Endpoint,
    /// The request target, starting with `/`
    pub(crate) path: String,
    /// The method
    pub(crate) method: Method,
    /// Whether this request may carry the stream's body (false after a redirect to GET)
    pub(crate) body_allowed: bool,
}

/// The stream values that go into a request
#[derive(Debug, Clone, Copy)]
pub(crate) struct Values<'a> {
    /// Metadata values by declared slot
    pub(crate) metadata: &'a [Option<Bytes>],
    /// `direct_proto_str` headers: lowercase name, value
    pub(crate) direct_headers: &'a [(String, Bytes)],
    /// The `request_tx_len` hint, in bytes
    pub(crate) length_hint: Option<u64>,
    /// The system blob values for the blob headers
    pub(crate) blobs: &'a HttpBlobs,
}

impl Values<'_> {
    fn lookup<'v>(&'v self, st: &StreamType, name: &str) -> Option<&'v [u8]> {
        let i = st.metadata_index(name)?;
        self.metadata.get(i)?.as_deref()
    }
}

/// How the request body is framed
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyPlan {
    /// No body
    None,
    /// A body of exactly this many bytes on the wire (multipart framing included), framed by
    /// the `content-length` header already in the head
    Length(u64),
    /// A body of unknown length (`http_no_content_length`): the http/1.1 codec chunk-encodes
    /// it
    Unframed,
}

/// The request line and headers, in wire order
#[derive(Debug, Clone)]
pub(crate) struct RequestHead {
    /// The method
    pub(crate) method: Method,
    /// The request target
    pub(crate) uri: Uri,
    /// The headers, in the order they are written (names lowercase)
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// The body framing
    pub(crate) body: BodyPlan,
    /// The multipart wrapping of the body, when the policy asks for it and there is a body
    pub(crate) multipart: Option<Multipart>,
}

impl Hop {
    /// The request the policy describes: `http_method` (default GET) and `/` plus the
    /// expanded endpoint URL path, or else the expanded `http_url`
    pub(crate) fn first(
        st: &StreamType,
        endpoint: &Endpoint,
        values: &Values<'_>,
    ) -> Result<Self, RequestError> {
        let method = match st.http().method.as_deref().map(str::trim) {
            None | Some("") => Method::GET,
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| RequestError::Method(m.to_owned()))?,
        };
        let lookup = |name: &str| values.lookup(st, name);
        let expanded = match &endpoint.path {
            // The override is expanded too, as in C; one that does not parse is taken as is.
            Some(p) => Template::parse(p).map_or_else(|_| p.clone(), |t| t.expand(lookup)),
            None => st.http_url().map(|t| t.expand(lookup)).unwrap_or_default(),
        };
        let path = format!("/{}", expanded.strip_prefix('/').unwrap_or(&expanded));
        Ok(Self {
            endpoint: endpoint.clone(),
            path,
            method,
            body_allowed: true,
        })
    }

    /// The host name of the request (`localhost` for Unix sockets), as cookies see it
    pub(crate) fn host(&self) -> &str {
        match &self.endpoint.target {
            Target::Host { host, .. } => host,
            Target::Unix(_) | Target::UnixAbstract(_) => "localhost",
        }
    }

    /// Where this request goes, as a URL (for messages and loop detection)
    pub(crate) fn url(&self) -> String {
        let scheme = if self.endpoint.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.endpoint.target, self.path)
    }

    /// The next request after a `status` redirect to `location`; `had_body` says whether
    /// this request sent a body
    ///
    /// 303, and 301/302 after a body, become a GET without body (as browsers do); 307/308
    /// keep the method and so cannot follow a request that had a body.
    pub(crate) fn redirect(
        &self,
        status: u16,
        location: &str,
        had_body: bool,
    ) -> Result<Self, RedirectError> {
        let bad = || RedirectError::BadLocation(location.to_owned());
        let location = location.trim();
        let location = location.split_once('#').map_or(location, |(l, _)| l);
        let (endpoint, path) = if let Some((scheme, rest)) = split_scheme(location) {
            let tls = match scheme.to_ascii_lowercase().as_str() {
                "http" => false,
                "https" => true,
                _ => return Err(bad()),
            };
            authority_and_path(rest, tls).ok_or_else(bad)?
        } else if let Some(rest) = location.strip_prefix("//") {
            authority_and_path(rest, self.endpoint.tls).ok_or_else(bad)?
        } else if location.starts_with('/') {
            (self.endpoint.clone(), location.to_owned())
        } else if location.is_empty() {
            return Err(bad());
        } else {
            // Relative to the current path's directory (query dropped).
            let base = self.path.split(['?']).next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            (self.endpoint.clone(), format!("{dir}{location}"))
        };
        let to_get = status == 303 || (had_body && matches!(status, 301 | 302));
        if had_body && !to_get {
            return Err(RedirectError::BodyReplay(status));
        }
        Ok(Self {
            endpoint,
            path,
            method: if to_get {
                Method::GET
            } else {
                self.method.clone()
            },
            body_allowed: self.body_allowed && !to_get,
        })
    }
}

fn split_scheme(location: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = location.split_once("://")?;
    scheme
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        .then_some((scheme, rest))
}

fn authority_and_path(rest: &str, tls: bool) -> Option<(Endpoint, String)> {
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let authority: http::uri::Authority = authority.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let endpoint = Endpoint {
        target: Target::Host {
            host: host.to_owned(),
            port,
        },
        tls,
        path: None,
    };
    Some((endpoint, path))
}

/// Builds the request head of `hop`, headers in the C order
///
/// 1. `pragma` and `cache-control: no-cache`, `host` (with the port when not the scheme's
///    default), `origin` (as C: scheme and host);
/// 2. the multipart `content-type`, when multipart and a body;
/// 3. `connection: close` (one transaction per connection), then `cookie` if given (from the
///    jar, `http_cookies`);
/// 4. the blob headers: `http_auth_header` (`http_auth_preamble` then the token, hex-encoded
///    with `auth_hexify`), `http_dsn_header`, `http_fwv_header`, `http_devtype_header`; a
///    named header whose blob is not set is an error;
/// 5. metadata headers: each declared metadata with a header name and a set value;
/// 6. with `direct_proto_str`, the direct headers;
/// 7. `content-length` for a body, unless `http_no_content_length` or form-urlencoded;
/// 8. with `http_www_form_urlencoded`, its `content-type` and `content-length`.
///
/// A body goes with POST, PUT and PATCH given a nonzero length hint, with form-urlencoded
/// given a nonzero hint, or when a metadata or direct `content-length` header is nonzero
/// (the C "backdoor"; that header then frames the body). `boundary` is the multipart
/// boundary to use if one is needed.
pub(crate) fn request_head(
    st: &StreamType,
    hop: &Hop,
    values: &Values<'_>,
    cookie: Option<&str>,
    boundary: &str,
) -> Result<RequestHead, RequestError> {
    let http = st.http();
    let uri: Uri = hop
        .path
        .parse()
        .ok()
        .filter(|u: &Uri| u.scheme().is_none() && u.path().starts_with('/'))
        .ok_or_else(|| RequestError::Path(hop.path.clone()))?;

    let mut extra: Vec<(HeaderName, HeaderValue)> = Vec::new();
    let mut backdoor_length = None;
    for (i, md) in st.metadata().iter().enumerate() {
        let (Some(name), Some(Some(value))) = (md.header_name(), values.metadata.get(i)) else {
            continue;
        };
        extra.push(header_pair(&name, value)?);
    }
    if st.spec().direct_proto_str {
        for (name, value) in values.direct_headers {
            extra.push(header_pair(name, value)?);
        }
    }
    for (name, value) in &extra {
        if name == header::CONTENT_LENGTH {
            backdoor_length = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n != 0);
        }
    }

    let hint = values.length_hint.filter(|n| *n != 0);
    let takes_body = matches!(hop.method, Method::POST | Method::PUT | Method::PATCH);
    let form = http.www_form_urlencoded;
    let payload = match backdoor_length {
        Some(n) => Some(n),
        None if hop.body_allowed && (takes_body || form) => hint,
        None => None,
    }
    .filter(|_| hop.body_allowed);
    let multipart = match payload {
        Some(_) if http.is_multipart() => Some(Multipart::new(st, boundary)),
        _ => None,
    };
    let framed = payload.map(|n| n + multipart.as_ref().map_or(0, Multipart::framing_len));

    let mut headers = vec![
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    let (host, origin) = host_and_origin(&hop.endpoint);
    headers.push((header::HOST, value(header::HOST.as_str(), host)?));
    headers.push((header::ORIGIN, value(header::ORIGIN.as_str(), origin)?));
    if let Some(m) = &multipart {
        headers.push((header::CONTENT_TYPE, m.content_type()?));
    }
    headers.push((header::CONNECTION, HeaderValue::from_static("close")));
    if let Some(c) = cookie {
        headers.push((
            header::COOKIE,
            value(header::COOKIE.as_str(), c.to_owned())?,
        ));
    }
    headers.extend(blob_headers(st, values.blobs)?);
    headers.extend(extra);
    let body = match (framed, backdoor_length) {
        (None, _) => BodyPlan::None,
        (Some(n), Some(_)) => BodyPlan::Length(n),
        (Some(_), None) if http.no_content_length && !form => BodyPlan::Unframed,
        (Some(n), None) => {
            if !form {
                headers.push((header::CONTENT_LENGTH, HeaderValue::from(n)));
            }
            BodyPlan::Length(n)
        }
    };
    if form {
        headers.push((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        ));
        if backdoor_length.is_none() {
            headers.push((
                header::CONTENT_LENGTH,
                HeaderValue::from(framed.unwrap_or(0)),
            ));
        }
    }
    Ok(RequestHead {
        method: hop.method.clone(),
        uri,
        headers,
        body,
        multipart,
    })
}

fn blob_headers(
    st: &StreamType,
    blobs: &HttpBlobs,
) -> Result<Vec<(HeaderName, HeaderValue)>, RequestError> {
    let http = st.http();
    let named = [
        (&http.auth_header, &blobs.auth, "AUTH[0]"),
        (&http.dsn_header, &blobs.device_serial, "DEVICE_SERIAL"),
        (&http.fwv_header, &blobs.fw_version, "DEVICE_FW_VERSION"),
        (&http.devtype_header, &blobs.device_type, "DEVICE_TYPE"),
    ];
    let mut out = Vec::new();
    for (name, blob, blob_name) in named {
        let Some(name) = name.as_deref().map(policy_header_name) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let Some(blob) = blob else {
            return Err(RequestError::MissingBlob {
                header: name,
                blob: blob_name,
            });
        };
        let value = if blob_name == "AUTH[0]" {
            let mut v = http.auth_preamble.clone().unwrap_or_default().into_bytes();
            if http.auth_hexify {
                for b in blob.iter() {
                    v.extend_from_slice(format!("{b:02x}").as_bytes());
                }
            } else {
                v.extend_from_slice(blob);
            }
            Bytes::from(v)
        } else {
            blob.clone()
        };
        out.push(header_pair(&name, &value)?);
    }
    Ok(out)
}

/// A header name as policies write it (`"x-serial:"`): trimmed, lowercase, without the `:`
fn policy_header_name(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix(':')
        .unwrap_or(name)
        .trim()
        .to_ascii_lowercase()
}

fn header_pair(name: &str, v: &Bytes) -> Result<(HeaderName, HeaderValue), RequestError> {
    let bad = || RequestError::Header(name.to_owned());
    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?;
    let v = HeaderValue::from_maybe_shared(v.clone()).map_err(|_| bad())?;
    Ok((n, v))
}

fn value(name: &str, v: String) -> Result<HeaderValue, RequestError> {
    HeaderValue::try_from(v).map_err(|_| RequestError::Header(name.to_owned()))
}

/// The `host` header (with the port unless it is the scheme's default) and the C `origin`
fn host_and_origin(endpoint: &Endpoint) -> (String, String) {
    let scheme = if endpoint.tls { "https" } else { "http" };
    let default_port = if endpoint.tls { 443 } else { 80 };
    match &endpoint.target {
        Target::Host { host, port } => {
            let name = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            let host = if *port == default_port {
                name.clone()
            } else {
                format!("{name}:{port}")
            };
            (host, format!("{scheme}://{name}"))
        }
        Target::Unix(_) | Target::UnixAbstract(_) => {
            ("localhost".into(), format!("{scheme}://localhost"))
        }
    }
}

/// The multipart/form-data wrapping of an outgoing message (`http_multipart_name`,
/// `http_multipart_filename`, `http_mime_content_type`)
///
/// One SOM..EOM message is one part: [`preamble`](Self::preamble) before it and
/// [`epilogue`](Self::epilogue) after it. A part without `http_multipart_name` gets an
/// empty name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Multipart {
    boundary: String,
    preamble: Bytes,
    epilogue: Bytes,
}

impl Multipart {
    fn new(st: &StreamType, boundary: &str) -> Self {
        let http = st.http();
        let mut pre = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"",
            http.multipart_name.as_deref().unwrap_or_default()
        );
        if let Some(f) = &http.multipart_filename {
            pre.push_str(&format!("; filename=\"{f}\""));
        }
        if let Some(t) = &http.mime_content_type {
            pre.push_str(&format!("\r\nContent-Type: {t}"));
        }
        pre.push_str("\r\n\r\n");
        Self {
            boundary: boundary.to_owned(),
            preamble: Bytes::from(pre),
            epilogue: Bytes::from(format!("\r\n--{boundary}--\r\n")),
        }
    }

    /// The request `content-type`
    fn content_type(&self) -> Result<HeaderValue, RequestError> {
        let v = format!("multipart/form-data; boundary=\"{}\"", self.boundary);
        value(header::CONTENT_TYPE.as_str(), v)
    }

    /// The bytes before the part's payload: boundary and part headers
    pub(crate) fn preamble(&self) -> Bytes {
        self.preamble.clone()
    }

    /// The bytes after the part's payload: the closing boundary
    pub(crate) fn epilogue(&self) -> Bytes {
        self.epilogue.clone()
    }

    /// Bytes the framing adds to the payload
    pub(crate) fn framing_len(&self) -> u64 {
        (self.preamble.len() + self.epilogue.len()) as u64
    }
}

/// A fresh multipart boundary: 32 random hex digits after a fixed prefix
pub(crate) fn new_boundary() -> String {
    use std::hash::{BuildHasher, Hasher};

    let random = || {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u8(0);
        h.finish()
    };
    format!("sstreams-{:016x}{:016x}", random(), random())
}

/// What a response status means for the stream
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 503 or 429: back off at least this long (its `Retry-After`, else zero), no verdict, no
    /// payload
    RetryLater(Duration),
    /// A redirect (301, 302, 303, 307, 308 with a `Location`) that `allow_redirects` lets us
    /// follow
    Follow(String),
    /// A redirect that is not followed
    Refuse(RedirectError),
    /// A response for the stream: `good` is the QoS verdict to give at completion, `mapped` the
    /// `http_resp_map` state to deliver before `CONNECTED`
    Deliver {
        /// `http_expect` matched, or any 2xx without `http_expect`
        good: bool,
        /// The `http_resp_map` hit, if any
        mapped: Option<State>,
    },
}

/// Classifies a response to a request of `st` (C: the `ESTABLISHED_CLIENT_HTTP` handler and
/// the `CLIENT_HTTP_REDIRECT` callback)
///
/// `now` is the time to measure a `Retry-After` date from when the response has no `Date`.
pub(crate) fn classify(
    st: &StreamType,
    status: u16,
    headers: &HeaderMap,
    now: SystemTime,
) -> Verdict {
    if status == 503 || status == 429 {
        return Verdict::RetryLater(retry_after(headers, now));
    }
    if matches!(status, 301 | 302 | 303 | 307 | 308) {
        if let Some(location) = headers.get(header::LOCATION) {
            let location = String::from_utf8_lossy(location.as_bytes()).into_owned();
            return if st.spec().allow_redirects {
                Verdict::Follow(location)
            } else {
                Verdict::Refuse(RedirectError::Refused {
                    location,
                    captive_portal: st.http().fail_redirect,
                })
            };
        }
    }
    let expect = st.http().expect;
    let good = if expect != 0 {
        status == expect
    } else {
        (200..300).contains(&status)
    };
    let mapped = st
        .http()
        .resp_map
        .iter()
        .find(|m| m.status == status)
        .and_then(|m| State::from_u32(u32::from(m.state)));
    Verdict::Deliver { good, mapped }
}

/// `Retry-After` as a delay: whole seconds, or an http date less the response's `Date` (or
/// `now` without one, or an unreadable one); zero when absent, unreadable or in the past
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Duration {
    let Some(v) = headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
    else {
        return Duration::ZERO;
    };
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Duration::from_secs(secs);
    }
    let Ok(at) = httpdate::parse_http_date(v) else {
        return Duration::ZERO;
    };
    let server_now = headers
        .get(header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d.trim()).ok())
        .unwrap_or(now);
    at.duration_since(server_now).unwrap_or(Duration::ZERO)
}

/// Response headers that become metadata: declared metadata by their header name, and with
/// `direct_proto_str` every header by its lowercase name; repeated headers are joined with
/// `, `
pub(crate) fn response_metadata(st: &StreamType, headers: &HeaderMap) -> Vec<(String, Bytes)> {
    let joined = |name: &str| -> Option<Bytes> {
        let mut all = headers.get_all(name).iter();
        let first = all.next()?;
        let mut v = first.as_bytes().to_vec();
        for more in all {
            v.extend_from_slice(b", ");
            v.extend_from_slice(more.as_bytes());
        }
        Some(Bytes::from(v))
    };
    let mut out = Vec::new();
    for md in st.metadata() {
        if let Some(v) = md.header_name().and_then(|h| joined(&h)) {
            out.push((md.name.clone(), v));
        }
    }
    if st.spec().direct_proto_str {
        for name in headers.keys() {
            if let Some(v) = joined(name.as_str()) {
                out.push((name.as_str().to_owned(), v));
            }
        }
    }
    out
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use sstreams_core::policy::Policy;

    use super::*;

    fn policy(streamtype: &str) -> Policy {
        let json = format!(
            r#"{{"release": "1", "product": "t", "schema-version": 1,
                "s": [{{"st": {{"endpoint": "example.com", "port": 8080, {streamtype}}}}}]}}"#
        );
        Policy::from_json(&json).unwrap()
    }

    fn endpoint(tls: bool, port: u16) -> Endpoint {
        Endpoint {
            target: Target::Host {
                host: "example.com".into(),
                port,
            },
            tls,
            path: None,
        }
    }

    fn head_text(h: &RequestHead) -> String {
        let mut s = format!("{} {}\n", h.method, h.uri);
        for (n, v) in &h.headers {
            s.push_str(&format!("{n}: {}\n", v.to_str().unwrap()));
        }
        s
    }

    fn build(st_json: &str, values: Values<'_>) -> RequestHead {
        let p = policy(st_json);
        let st = p.streamtype("st").unwrap();
        let hop = Hop::first(st, &endpoint(false, 8080), &values).unwrap();
        request_head(st, &hop, &values, None, "B").unwrap()
    }

    const NONE: Values<'static> = Values {
        metadata: &[],
        direct_headers: &[],
        length_hint: None,
        blobs: &HttpBlobs {
            auth: None,
            device_serial: None,
            fw_version: None,
            device_type: None,
        },
    };

    #[test]
    fn get_head_in_c_order() {
        let h = build(r#""http_url": "a/b""#, NONE);
        assert_eq!(
            head_text(&h),
            "GET /a/b\npragma: no-cache\ncache-control: no-cache\nhost: example.com:8080\n\
             origin: http://example.com\nconnection: close\n"
        );
        assert_eq!(h.body, BodyPlan::None);
    }

    #[test]
    fn url_expands_metadata_and_endpoint_path_wins() {
        let p = policy(
            r#""http_url": "/x/${id}", "metadata": [{"id": ""}, {"tok": "x-token:"}],
               "direct_proto_str": true"#,
        );
        let st = p.streamtype("st").unwrap();
        let md = [
            Some(Bytes::from_static(b"42")),
            Some(Bytes::from_static(b"t0")),
        ];
        let direct = [("x-direct".to_owned(), Bytes::from_static(b"d"))];
        let values = Values {
            metadata: &md,
            direct_headers: &direct,
            ..NONE
        };
        let hop = Hop::first(st, &endpoint(true, 443), &values).unwrap();
        assert_eq!(hop.path, "/x/42");
        let h = request_head(st, &hop, &values, None, "B").unwrap();
        assert_eq!(
            head_text(&h),
            "GET /x/42\npragma: no-cache\ncache-control: no-cache\nhost: example.com\n\
             origin: https://example.com\nconnection: close\nx-token: t0\nx-direct: d\n"
        );
        let mut ep = endpoint(false, 80);
        ep.path = Some("over/${id}?q=1".into());
        assert_eq!(Hop::first(st, &ep, &values).unwrap().path, "/over/42?q=1");
    }

    #[test]
    fn blob_headers_after_cookie_before_metadata() {
        let p = policy(
            r#""http_auth_header": "Authorization:", "http_auth_preamble": "Bearer ",
               "http_dsn_header": "x-dsn:", "http_fwv_header": "x-fwv",
               "http_devtype_header": "X-Type:", "metadata": [{"m": "x-m:"}]"#,
        );
        let st = p.streamtype("st").unwrap();
        let md = [Some(Bytes::from_static(b"v"))];
        let blobs = HttpBlobs::new()
            .auth(&b"tok"[..])
            .device_serial(&b"sn1"[..])
            .fw_version(&b"1.2"[..])
            .device_type(&b"dt"[..]);
        let values = Values {
            metadata: &md,
            blobs: &blobs,
            ..NONE
        };
        let hop = Hop::first(st, &endpoint(false, 80), &values).unwrap();
        let h = request_head(st, &hop, &values, Some("c=1"), "B").unwrap();
        assert!(
            head_text(&h).ends_with(
                "connection: close\ncookie: c=1\nauthorization: Bearer tok\nx-dsn: sn1\n\
                 x-fwv: 1.2\nx-type: dt\nx-m: v\n"
            ),
            "{}",
            head_text(&h)
        );
        // A named header without its blob fails the request.
        let values = Values {
            blobs: &HttpBlobs::new().auth(&b"tok"[..]),
            ..NONE
        };
        assert_eq!(
            request_head(st, &hop, &values, None, "B").unwrap_err(),
            RequestError::MissingBlob {
                header: "x-dsn".into(),
                blob: "DEVICE_SERIAL"
            }
        );
        // auth_hexify sends the token as hex.
        let p = policy(r#""http_auth_header": "x-auth:", "auth_hexify": true"#);
        let st = p.streamtype("st").unwrap();
        let blobs = HttpBlobs::new().auth(&[0x41u8, 0x00, 0xff][..]);
        let values = Values {
            blobs: &blobs,
            ..NONE
        };
        let h = request_head(st, &hop, &values, None, "B").unwrap();
        assert!(
            head_text(&h).ends_with("x-auth: 4100ff\n"),
            "{}",
            head_text(&h)
        );
    }

    #[test]
    fn cookie_follows_connection_close() {
        let p = policy(r#""metadata": [{"m": "x-m:"}]"#);
        let st = p.streamtype("st").unwrap();
        let md = [Some(Bytes::from_static(b"v"))];
        let values = Values {
            metadata: &md,
            ..NONE
        };
        let hop = Hop::first(st, &endpoint(false, 80), &values).unwrap();
        assert_eq!(hop.host(), "example.com");
        let h = request_head(st, &hop, &values, Some("a=1; b=2"), "B").unwrap();
        assert!(
            head_text(&h).ends_with("connection: close\ncookie: a=1; b=2\nx-m: v\n"),
            "{}",
            head_text(&h)
        );
    }

    #[test]
    fn post_with_hint_has_content_length_last() {
        let values = Values {
            length_hint: Some(5),
            ..NONE
        };
        let h = build(r#""http_method": "POST""#, values);
        assert!(head_text(&h).ends_with("connection: close\ncontent-length: 5\n"));
        assert_eq!(h.body, BodyPlan::Length(5));
        // Without a hint an h1 POST has no body.
        assert_eq!(build(r#""http_method": "POST""#, NONE).body, BodyPlan::None);
        // GET never takes the hint as a body.
        assert_eq!(build(r#""http_url": "x""#, values).body, BodyPlan::None);
        // No content-length: the codec frames it.
        let h = build(
            r#""http_method": "PUT", "http_no_content_length": true"#,
            values,
        );
        assert_eq!(h.body, BodyPlan::Unframed);
        assert!(!head_text(&h).contains("content-length"));
    }

    #[test]
    fn backdoor_content_length_marks_a_body() {
        let p = policy(r#""http_method": "POST", "metadata": [{"cl": "content-length:"}]"#);
        let st = p.streamtype("st").unwrap();
        let md = [Some(Bytes::from_static(b"7"))];
        let values = Values {
            metadata: &md,
            length_hint: Some(7),
            ..NONE
        };
        let hop = Hop::first(st, &endpoint(false, 8080), &values).unwrap();
        let h = request_head(st, &hop, &values, None, "B").unwrap();
        assert_eq!(h.body, BodyPlan::Length(7));
        assert_eq!(head_text(&h).matches("content-length").count(), 1);
    }

    #[test]
    fn form_urlencoded_headers() {
        let values = Values {
            length_hint: Some(9),
            ..NONE
        };
        let h = build(
            r#""http_method": "POST", "http_www_form_urlencoded": true"#,
            values,
        );
        assert!(head_text(&h).ends_with(
            "connection: close\ncontent-type: application/x-www-form-urlencoded\n\
             content-length: 9\n"
        ));
        assert_eq!(h.body, BodyPlan::Length(9));
    }

    #[test]
    fn multipart_framing_and_length() {
        let values = Values {
            length_hint: Some(3),
            ..NONE
        };
        let h = build(
            r#""http_method": "POST", "http_multipart_name": "file",
               "http_multipart_filename": "a.txt", "http_mime_content_type": "text/plain""#,
            values,
        );
        let m = h.multipart.clone().unwrap();
        assert_eq!(
            m.preamble(),
            "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\
             Content-Type: text/plain\r\n\r\n"
        );
        assert_eq!(m.epilogue(), "\r\n--B--\r\n");
        let total = 3 + m.framing_len();
        assert_eq!(h.body, BodyPlan::Length(total));
        let text = head_text(&h);
        assert!(text.contains(
            "origin: http://example.com\ncontent-type: multipart/form-data; boundary=\"B\"\n\
             connection: close\n"
        ));
        assert!(text.ends_with(&format!("content-length: {total}\n")));
        let b = new_boundary();
        assert_eq!(b.len(), 9 + 32);
        assert_ne!(b, new_boundary());
    }

    #[test]
    fn bad_inputs_are_errors() {
        let p = policy(r#""http_method": "P OST""#);
        let st = p.streamtype("st").unwrap();
        assert!(matches!(
            Hop::first(st, &endpoint(false, 80), &NONE),
            Err(RequestError::Method(_))
        ));
        let p = policy(r#""http_url": "a b""#);
        let st = p.streamtype("st").unwrap();
        let hop = Hop::first(st, &endpoint(false, 80), &NONE).unwrap();
        assert_eq!(
            request_head(st, &hop, &NONE, None, "B").unwrap_err(),
            RequestError::Path("/a b".into())
        );
        let p = policy(r#""metadata": [{"m": "x-m:"}]"#);
        let st = p.streamtype("st").unwrap();
        let md = [Some(Bytes::from_static(b"a\r\nb"))];
        let values = Values {
            metadata: &md,
            ..NONE
        };
        let hop = Hop::first(st, &endpoint(false, 80), &values).unwrap();
        assert_eq!(
            request_head(st, &hop, &values, None, "B").unwrap_err(),
            RequestError::Header("x-m".into())
        );
    }

    #[test]
    fn host_header_ports_and_ipv6() {
        let ep = |host: &str, port, tls| Endpoint {
            target: Target::Host {
                host: host.into(),
                port,
            },
            tls,
            path: None,
        };
        assert_eq!(host_and_origin(&ep("h", 80, false)).0, "h");
        assert_eq!(host_and_origin(&ep("h", 443, false)).0, "h:443");
        assert_eq!(host_and_origin(&ep("h", 443, true)).0, "h");
        assert_eq!(host_and_origin(&ep("::1", 8443, true)).0, "[::1]:8443");
        let unix = Endpoint {
            target: Target::Unix("/s".into()),
            tls: false,
            path: None,
        };
        assert_eq!(host_and_origin(&unix).0, "localhost");
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v)))
            .collect()
    }

    fn classify_now(st: &StreamType, status: u16, headers: &HeaderMap) -> Verdict {
        classify(st, status, headers, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn retry_after_seconds_or_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let at = |pairs: &[(&'static str, &'static str)]| retry_after(&headers(pairs), now);
        assert_eq!(at(&[]), Duration::ZERO);
        assert_eq!(at(&[("retry-after", " 120 ")]), Duration::from_secs(120));
        assert_eq!(at(&[("retry-after", "soon")]), Duration::ZERO);
        let date = ("retry-after", "Wed, 21 Oct 2015 07:29:40 GMT");
        assert_eq!(at(&[date]), Duration::from_secs(100));
        // Measured from the server's Date when there is one.
        assert_eq!(
            at(&[date, ("date", "Wed, 21 Oct 2015 07:29:00 GMT")]),
            Duration::from_secs(40)
        );
        assert_eq!(
            at(&[date, ("date", "Wed, 21 Oct 2015 07:30:00 GMT")]),
            Duration::ZERO
        );
    }

    #[test]
    fn classify_statuses() {
        let p = policy(r#""http_resp_map": [{"530": 1234}]"#);
        let st = p.streamtype("st").unwrap();
        let none = HeaderMap::new();
        let deliver = |good, mapped| Verdict::Deliver { good, mapped };
        assert_eq!(classify_now(st, 200, &none), deliver(true, None));
        assert_eq!(classify_now(st, 299, &none), deliver(true, None));
        assert_eq!(classify_now(st, 404, &none), deliver(false, None));
        assert_eq!(
            classify_now(st, 530, &none),
            deliver(false, State::from_u32(1234))
        );
        assert_eq!(
            classify_now(st, 503, &headers(&[("retry-after", "7")])),
            Verdict::RetryLater(Duration::from_secs(7))
        );
        assert_eq!(
            classify_now(
                st,
                429,
                &headers(&[("retry-after", "Thu, 01 Jan 1970 00:00:09 GMT")])
            ),
            Verdict::RetryLater(Duration::from_secs(9))
        );
        // A 3xx without a Location is a plain (bad) response.
        assert_eq!(classify_now(st, 302, &none), deliver(false, None));
        assert_eq!(
            classify_now(st, 302, &headers(&[("location", "/x")])),
            Verdict::Refuse(RedirectError::Refused {
                location: "/x".into(),
                captive_portal: false
            })
        );
        let p = policy(r#""http_expect": 204, "allow_redirects": true"#);
        let st = p.streamtype("st").unwrap();
        assert_eq!(classify_now(st, 204, &none), deliver(true, None));
        assert_eq!(classify_now(st, 200, &none), deliver(false, None));
        assert_eq!(
            classify_now(st, 307, &headers(&[("location", "/x")])),
            Verdict::Follow("/x".into())
        );
        let p = policy(r#""http_fail_redirect": true"#);
        let st = p.streamtype("st").unwrap();
        let Verdict::Refuse(e) = classify_now(st, 301, &headers(&[("location", "/x")])) else {
            panic!()
        };
        assert!(e.to_string().contains("captive portal"), "{e}");
    }

    #[test]
    fn redirect_targets() {
        let hop = Hop {
            endpoint: endpoint(false, 8080),
            path: "/a/b?q".into(),
            method: Method::PUT,
            body_allowed: true,
        };
        let next = hop.redirect(302, "/c", false).unwrap();
        assert_eq!(next.url(), "http://example.com:8080/c");
        assert_eq!(next.method, Method::PUT);
        assert_eq!(hop.redirect(301, "d#frag", false).unwrap().path, "/a/d");
        let next = hop.redirect(307, "https://other.net/x?y", false).unwrap();
        assert_eq!(next.url(), "https://other.net:443/x?y");
        assert!(next.endpoint.tls);
        let next = hop.redirect(308, "HTTP://[::1]:81", false).unwrap();
        assert_eq!(next.url(), "http://[::1]:81/");
        assert_eq!(
            hop.redirect(302, "//h2:9/p", false).unwrap().url(),
            "http://h2:9/p"
        );
        let next = hop.redirect(303, "/c", false).unwrap();
        assert_eq!(next.method, Method::GET);
        let next = hop.redirect(302, "/c", true).unwrap();
        assert_eq!((next.method, next.body_allowed), (Method::GET, false));
        assert_eq!(
            hop.redirect(307, "/c", true).unwrap_err(),
            RedirectError::BodyReplay(307)
        );
        for bad in ["ftp://x/y", "", "http://u@h/", "http:///x"] {
            assert_eq!(
                hop.redirect(302, bad, false).unwrap_err(),
                RedirectError::BadLocation(bad.into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn response_headers_to_metadata() {
        let p = policy(r#""metadata": [{"reply": "X-Reply:"}, {"ct": "content-type"}]"#);
        let st = p.streamtype("st").unwrap();
        let h = headers(&[("x-reply", "a"), ("x-reply", "b"), ("server", "n")]);
        assert_eq!(
            response_metadata(st, &h),
            [("reply".to_owned(), Bytes::from_static(b"a, b"))]
        );
        let p = policy(r#""direct_proto_str": true"#);
        let st = p.streamtype("st").unwrap();
        assert_eq!(
            response_metadata(st, &h),
            [
                ("x-reply".to_owned(), Bytes::from_static(b"a, b")),
                ("server".to_owned(), Bytes::from_static(b"n"))
            ]
        );
    }
}
