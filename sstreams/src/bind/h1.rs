//! The h1 binding: one HTTP/1.1 client transaction per connection
//!
//! [`run`] sends one request built from the policy (`http_method`, `http_url`, metadata
//! headers; see the request rules below) with `connection: close`, reads the response and
//! reports it; the driver opens a new connection for the next transaction. The http/1.1 codec
//! is hyper's client connection.
//!
//! # Events, in order
//!
//! For a response that is delivered to the stream:
//!
//! 0. With `"perf": true`, [`BindEvent::Perf`] as soon as the final response head is in (as
//!    C), with `txn_resp_time` from handing the request to the codec to the response head,
//!    and the status. A connection that ends before that reports it just before
//!    [`BindEvent::Closed`], with status 0 if the socket was connected. After a followed
//!    redirect the record is that of the last connection.
//! 1. [`BindEvent::Metadata`]: response headers named by a declared metadata's header (values
//!    under the metadata name) and, with `direct_proto_str`, every response header under its
//!    lowercase name; repeated headers are joined with `, `. Left out when there are none.
//! 2. [`BindEvent::State`] with the `http_resp_map` state of the status, if it maps.
//! 3. [`BindEvent::Connected`].
//! 4. [`BindEvent::Rx`] for each body chunk as the codec decodes it (de-chunked), SOM on the
//!    first; then, at completion, a separate zero-length rx with EOM. As in C, a response
//!    with no body at all (a 204, say) has neither. With `http_multipart_ss_in` and a
//!    `multipart/form-data` or `multipart/related` response, a zero-length `RELATED_START`
//!    rx comes first and each part is a message of its own (its part headers included, as
//!    C; the preamble and epilogue dropped): SOM..EOM per part, `RELATED_END` with the last EOM,
//!    no trailing zero-length EOM.
//! 5. [`BindEvent::State`] `QOS_ACK_REMOTE` when the status is `http_expect` (if set) or any
//!    2xx (if not), else `QOS_NACK_REMOTE`.
//! 6. [`BindEvent::Closed`] with no error.
//!
//! Other endings, each followed by [`BindEvent::Closed`] with the reason as its error:
//!
//! * 503 or 429: [`BindEvent::RetryLater`] with the `Retry-After` delay (seconds, or a date
//!   less the response's `Date`, as C; zero if absent), and nothing else: no metadata, no
//!   verdict, no rx.
//! * A redirect (301, 302, 303, 307, 308 with a `Location`) without `allow_redirects`: no
//!   event but the close ("redirect to … refused", naming the captive portal hint when
//!   `http_fail_redirect` is set). With `allow_redirects` it is followed on a new connection
//!   opened with [`BindContext::tls`], at most 8 in a row and never back to a URL already
//!   requested; only the final response is reported. 303 (and 301/302 after a body) go on as
//!   GET without body; a 307/308 after a body fails, as the body is not kept.
//! * A connection, protocol or request error, before or after `Connected`.
//!
//! Rx waits for the driver (the bounded event channel): while it does, the socket is not
//! read, so a large download holds at most the codec's read buffer and one chunk.
//!
//! # Request
//!
//! The head is built as C builds it (`pragma`/`cache-control: no-cache`, `host` with the port
//! when not the default, `origin`, the multipart `content-type`, `connection: close`,
//! `cookie` from [`BindContext::cookies`] with `http_cookies`, blob headers, metadata headers, direct headers, `content-length`, form-urlencoded `content-type` and
//! `content-length`). POST, PUT and PATCH with a nonzero `request_tx_len` hint carry a body
//! of exactly that length (form-urlencoded too, whatever the method; a nonzero metadata
//! `content-length` header also makes one): the binding sends [`BindEvent::WantTx`], takes
//! one [`TxChunk`], and repeats until a chunk with EOM, which must complete
//! the announced length. Without a hint there is no body and no chunked request encoding,
//! except that `http_no_content_length` leaves the framing to the codec (chunked). With
//! `http_multipart_*` the message is wrapped as one form-data part and `content-length`
//! counts the framing.
//!
//! The blob headers (`http_auth_header` after `http_auth_preamble`, hex with `auth_hexify`;
//! `http_dsn_header`, `http_fwv_header`, `http_devtype_header`) take their values from
//! [`BindContext::blobs`]; a named header whose blob is not set fails the request before
//! anything is sent, as in C. Not done yet: the sigv4 `authorization` header (`use_auth`
//! with a sigv4 auth) and `rideshare` chains.
//!
//! With `http_cookies` and a jar in [`BindContext::cookies`], every response's `set-cookie`
//! headers (a followed redirect's too) are stored, and each request sends the cookies that
//! apply to it (see [`CookieJar`](super::cookies::CookieJar)).

use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sstreams_core::policy::StreamType;
use sstreams_core::stream::{PayloadFlags, State};
use tokio::sync::mpsc;

use super::http::{
    BodyPlan, Hop, MAX_REDIRECTS, Multipart, RedirectError, RequestError, Values, Verdict,
    classify, new_boundary, request_head, response_metadata,
};
use super::{BindContext, BindEvent, TxChunk, multipart};
use crate::transport::{self, ConnectError, Transport};

/// Runs one http/1.1 transaction (following redirects if the policy allows) on `transport`,
/// then reports [`BindEvent::Closed`]
///
/// Returns early, without `Closed`, when the driver has dropped its end of the channels.
pub async fn run(mut cx: BindContext, transport: Transport) {
    let error = match transaction(&mut cx, transport).await {
        Ok(()) => None,
        Err(Failure::DriverGone) => return,
        Err(e) => {
            tracing::debug!(streamtype = cx.streamtype.name(), "h1: {e}");
            Some(e.to_string())
        }
    };
    // Not reported yet if there was no final response.
    if cx.emit_perf().await {
        cx.emit(BindEvent::Closed { error }).await;
    }
}

/// Why a transaction ended without its verdict
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The driver dropped the event or tx channel
    #[error("the stream driver has gone")]
    DriverGone,
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The codec or the connection failed (the text includes hyper's causes)
    #[error("http/1.1: {0}")]
    Http(String),
    #[error(transparent)]
    Tx(#[from] TxError),
    /// 503 or 429 (reported as [`BindEvent::RetryLater`] first)
    #[error("http {0}: the server asks to retry later")]
    RetryLater(u16),
}

impl From<hyper::Error> for Failure {
    fn from(e: hyper::Error) -> Self {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        Self::Http(text)
    }
}

/// The user's tx does not match the announced length
#[derive(Debug, thiserror::Error)]
enum TxError {
    #[error("request body longer than the {0} bytes announced")]
    TooLong(u64),
    #[error("request body ended (EOM) after {sent} of the {announced} bytes announced")]
    TooShort { sent: u64, announced: u64 },
}

async fn emit(events: &mpsc::Sender<BindEvent>, event: BindEvent) -> Result<(), Failure> {
    events.send(event).await.map_err(|_| Failure::DriverGone)
}

async fn transaction(cx: &mut BindContext, transport: Transport) -> Result<(), Failure> {
    let BindContext {
        streamtype: st,
        endpoint,
        tls,
        cookies,
        blobs,
        metadata,
        direct_headers,
        length_hint,
        perf,
        events,
        tx,
    } = cx;
    let values = Values {
        metadata,
        direct_headers,
        length_hint: *length_hint,
        blobs,
    };
    let jar = cookies.as_deref().filter(|_| st.http().cookies);
    let boundary = new_boundary();
    let mut hop = Hop::first(st, endpoint, &values)?;
    let mut visited = vec![hop.url()];
    let mut transport = Some(transport);
    loop {
        let io = match (transport.take(), perf.as_deref_mut()) {
            (Some(t), _) => t,
            (None, Some(p)) => transport::connect_measured(&hop.endpoint, tls.clone(), p).await?,
            (None, None) => transport::connect(&hop.endpoint, tls.clone()).await?,
        };
        if let Some(p) = perf.as_deref_mut() {
            // Connected: an end before the response reports status 0, as C.
            p.http_response = Some(0);
        }
        let cookie =
            jar.and_then(|j| j.header(hop.host(), &hop.path, hop.endpoint.tls, SystemTime::now()));
        let head = request_head(st, &hop, &values, cookie.as_deref(), &boundary)?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(io)).await?;
        let mut conn = Driven {
            conn: Box::pin(conn),
            done: false,
        };
        let (body, body_tx) = TxBody::new(&head.body);
        let had_body = body_tx.is_some();
        let mut request = Request::builder().method(head.method).uri(head.uri);
        for (name, value) in head.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(body)
            .map_err(|e| Failure::Http(format!("request: {e}")))?;
        let length = match head.body {
            BodyPlan::Length(n) => {
                Some(n - head.multipart.as_ref().map_or(0, Multipart::framing_len))
            }
            BodyPlan::None | BodyPlan::Unframed => None,
        };
        let pump = body_tx.map(|out| pump_body(events, tx, out, length, head.multipart));
        let sent = Instant::now();
        let response = conn.run(exchange(&mut sender, request, pump)).await?;
        let status = response.status().as_u16();
        if let Some(p) = perf.as_deref_mut() {
            p.txn_resp_time = sent.elapsed();
            p.http_response = Some(status);
        }
        tracing::debug!(streamtype = st.name(), status, url = %hop.url(), "h1 response");
        if let Some(jar) = jar {
            // Every response stores its cookies, a redirect's too.
            for set in response.headers().get_all(http::header::SET_COOKIE) {
                let set = String::from_utf8_lossy(set.as_bytes());
                jar.store(hop.host(), &hop.path, &set, SystemTime::now());
            }
        }
        let verdict = classify(st, status, response.headers(), SystemTime::now());
        if !matches!(verdict, Verdict::Follow(_)) {
            // As C, the record goes as soon as the final response head is in, before anything
            // else about the response.
            if let Some(p) = perf.take() {
                emit(events, BindEvent::Perf(p)).await?;
            }
        }
        match verdict {
            Verdict::RetryLater(delay) => {
                emit(events, BindEvent::RetryLater(delay)).await?;
                return Err(Failure::RetryLater(status));
            }
            Verdict::Refuse(e) => return Err(e.into()),
            Verdict::Follow(location) => {
                if visited.len() > MAX_REDIRECTS {
                    return Err(RedirectError::TooMany.into());
                }
                let next = hop.redirect(status, &location, had_body)?;
                let url = next.url();
                if visited.contains(&url) {
                    return Err(RedirectError::Loop(url).into());
                }
                visited.push(url);
                hop = next;
            }
            Verdict::Deliver { good, mapped } => {
                return deliver(st, events, &mut conn, response, good, mapped).await;
            }
        }
    }
}

/// Reports a response for the stream: metadata, mapped state, `Connected`, the body, the
/// verdict
async fn deliver(
    st: &StreamType,
    events: &mpsc::Sender<BindEvent>,
    conn: &mut Driven,
    response: hyper::Response<Incoming>,
    good: bool,
    mapped: Option<State>,
) -> Result<(), Failure> {
    let metadata = response_metadata(st, response.headers());
    if !metadata.is_empty() {
        emit(events, BindEvent::Metadata(metadata)).await?;
    }
    if let Some(state) = mapped {
        emit(events, BindEvent::State(state)).await?;
    }
    emit(events, BindEvent::Connected).await?;
    let parts = st
        .http()
        .multipart_ss_in
        .then(|| response.headers().get(http::header::CONTENT_TYPE))
        .flatten()
        .and_then(|ct| multipart::boundary(&String::from_utf8_lossy(ct.as_bytes())));
    let body = response.into_body();
    if let Some(boundary) = parts {
        let start = BindEvent::Rx(Bytes::new(), PayloadFlags::RELATED_START);
        emit(events, start).await?;
        let splitter = multipart::Splitter::new(&boundary);
        conn.run(receive_parts(events, body, splitter)).await?;
    } else if conn.run(receive(events, body)).await? {
        emit(events, BindEvent::Rx(Bytes::new(), PayloadFlags::EOM)).await?;
    }
    let verdict = if good {
        State::QOS_ACK_REMOTE
    } else {
        State::QOS_NACK_REMOTE
    };
    emit(events, BindEvent::State(verdict)).await
}

/// Sends the request and waits for the response head, producing the body meanwhile
async fn exchange<P>(
    sender: &mut http1::SendRequest<TxBody>,
    request: Request<TxBody>,
    pump: Option<P>,
) -> Result<hyper::Response<Incoming>, Failure>
where
    P: Future<Output = Result<(), Failure>>,
{
    sender.ready().await?;
    let mut send = pin!(sender.send_request(request));
    let Some(pump) = pump else {
        return Ok(send.await?);
    };
    let mut pump = pin!(pump);
    let mut pumping = true;
    loop {
        tokio::select! {
            response = &mut send => return Ok(response?),
            // A response before the whole body (an early error status, say) stops the body.
            done = &mut pump, if pumping => {
                done?;
                pumping = false;
            }
        }
    }
}

/// Produces the request body: `WantTx`, one chunk, until EOM; `length` is the announced
/// payload length to check (without multipart framing)
async fn pump_body(
    events: &mpsc::Sender<BindEvent>,
    tx: &mut mpsc::Receiver<TxChunk>,
    out: mpsc::Sender<Bytes>,
    length: Option<u64>,
    multipart: Option<Multipart>,
) -> Result<(), Failure> {
    if let Some(m) = &multipart {
        if out.send(m.preamble()).await.is_err() {
            return Ok(());
        }
    }
    let mut sent = 0u64;
    loop {
        emit(events, BindEvent::WantTx).await?;
        let chunk = tx.recv().await.ok_or(Failure::DriverGone)?;
        sent += chunk.data.len() as u64;
        if let Some(n) = length.filter(|n| sent > *n) {
            return Err(TxError::TooLong(n).into());
        }
        // The codec stopped taking the body: the response (or its error) says why.
        if !chunk.data.is_empty() && out.send(chunk.data).await.is_err() {
            return Ok(());
        }
        if chunk.flags.contains(PayloadFlags::EOM) {
            if let Some(announced) = length.filter(|n| sent < *n) {
                return Err(TxError::TooShort { sent, announced }.into());
            }
            if let Some(m) = &multipart {
                let _ = out.send(m.epilogue()).await;
            }
            return Ok(());
        }
    }
}

/// Delivers the response body as rx, SOM on the first chunk; returns whether there was any
async fn receive(events: &mpsc::Sender<BindEvent>, mut body: Incoming) -> Result<bool, Failure> {
    let mut any = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        let flags = if any {
            PayloadFlags::empty()
        } else {
            PayloadFlags::SOM
        };
        any = true;
        emit(events, BindEvent::Rx(data, flags)).await?;
    }
    Ok(any)
}

/// Delivers a multipart response body as one message per part (`http_multipart_ss_in`)
async fn receive_parts(
    events: &mpsc::Sender<BindEvent>,
    mut body: Incoming,
    mut splitter: multipart::Splitter,
) -> Result<(), Failure> {
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue; // trailers
        };
        for (data, flags) in splitter.push(&data) {
            emit(events, BindEvent::Rx(data, flags)).await?;
        }
    }
    for (data, flags) in splitter.finish() {
        emit(events, BindEvent::Rx(data, flags)).await?;
    }
    Ok(())
}

/// A hyper connection, polled alongside whatever the transaction awaits
struct Driven {
    conn: Pin<Box<http1::Connection<TokioIo<Transport>, TxBody>>>,
    done: bool,
}

impl Driven {
    /// Awaits `fut` while driving the connection; once the connection is over, `fut` alone
    /// (hyper reports a failed connection to the pending request or body)
    async fn run<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        if !self.done {
            tokio::select! {
                biased;
                out = &mut fut => return out,
                end = &mut self.conn => {
                    self.done = true;
                    if let Err(e) = end {
                        tracing::debug!("h1 connection: {e}");
                    }
                }
            }
        }
        fut.await
    }
}

/// The request body: nothing, or what the pump sends until it drops its sender
#[derive(Debug)]
struct TxBody {
    rx: Option<mpsc::Receiver<Bytes>>,
    len: Option<u64>,
}

impl TxBody {
    fn new(plan: &BodyPlan) -> (Self, Option<mpsc::Sender<Bytes>>) {
        let len = match plan {
            BodyPlan::None => {
                let body = Self {
                    rx: None,
                    len: Some(0),
                };
                return (body, None);
            }
            BodyPlan::Length(n) => Some(*n),
            BodyPlan::Unframed => None,
        };
        let (out, rx) = mpsc::channel(1);
        (Self { rx: Some(rx), len }, Some(out))
    }
}

impl Body for TxBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Poll::Ready(None) => {
                self.rx = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rx.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.len
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
