//! Driving the h1 binding as the stream driver would: open the transport, make the channels,
//! run the binding, collect its events and answer `WantTx`

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sstreams::Policy;
use sstreams::bind::blobs::HttpBlobs;
use sstreams::bind::cookies::CookieJar;
use sstreams::bind::{BindContext, BindEvent, EVENT_QUEUE, TxChunk, h1};
use sstreams::tls::{TlsContext, TlsSettings};
use sstreams::transport;
use sstreams_core::stream::{PayloadFlags, State};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Longest wait for any one event
pub const STEP: Duration = Duration::from_secs(20);

pub const SOM: PayloadFlags = PayloadFlags::SOM;
pub const EOM: PayloadFlags = PayloadFlags::EOM;
pub const NONE: PayloadFlags = PayloadFlags::empty();

/// What a transaction is given besides the policy
#[derive(Default)]
pub struct Input<'a> {
    pub metadata: &'a [(&'a str, &'a str)],
    pub direct: &'a [(&'a str, &'a str)],
    pub length_hint: Option<u64>,
    pub tx: Vec<TxChunk>,
    pub cookies: Option<Arc<CookieJar>>,
    pub blobs: HttpBlobs,
}

/// A running binding: its events, and the tx chunks it will be given
pub struct Running {
    pub events: mpsc::Receiver<BindEvent>,
    pub tx: mpsc::Sender<TxChunk>,
    pub pending_tx: VecDeque<TxChunk>,
    pub task: JoinHandle<()>,
}

impl Running {
    /// The next event (answering `WantTx` with the next tx chunk, but still reporting it)
    pub async fn next(&mut self) -> Option<BindEvent> {
        let ev = timeout(STEP, self.events.recv())
            .await
            .expect("event in time")?;
        if ev == BindEvent::WantTx {
            if let Some(chunk) = self.pending_tx.pop_front() {
                self.tx.send(chunk).await.unwrap();
            }
        }
        Some(ev)
    }

    /// Every event until the binding ends
    pub async fn all(mut self) -> Vec<BindEvent> {
        let mut out = Vec::new();
        while let Some(ev) = self.next().await {
            out.push(ev);
        }
        out
    }
}

/// Connects as the driver would and starts the binding
pub async fn start(policy: &Policy, input: Input<'_>) -> Running {
    let st = policy.streamtype("st").unwrap().clone();
    let endpoint = st.resolve_endpoint(|_| None).unwrap();
    let tls = endpoint.tls.then(|| {
        TlsContext::new(policy, TlsSettings::default())
            .unwrap()
            .client_config(&st)
            .unwrap()
    });
    let transport = transport::connect(&endpoint, tls.clone()).await.unwrap();
    if tls.is_some() {
        assert_eq!(transport.alpn(), Some(b"http/1.1".as_slice()));
    }
    let metadata = st
        .metadata()
        .iter()
        .map(|m| {
            let v = input.metadata.iter().find(|(n, _)| *n == m.name);
            v.map(|(_, v)| Bytes::copy_from_slice(v.as_bytes()))
        })
        .collect();
    let direct_headers = input
        .direct
        .iter()
        .map(|(n, v)| ((*n).to_owned(), Bytes::copy_from_slice(v.as_bytes())))
        .collect();
    let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
    let (tx, tx_rx) = mpsc::channel(1);
    let cx = BindContext {
        streamtype: st,
        endpoint,
        tls,
        cookies: input.cookies,
        blobs: input.blobs,
        metadata,
        direct_headers,
        length_hint: input.length_hint,
        perf: None,
        events: events_tx,
        tx: tx_rx,
    };
    let task = tokio::spawn(h1::run(cx, transport));
    Running {
        events,
        tx,
        pending_tx: input.tx.into(),
        task,
    }
}

pub async fn transact(policy: &Policy, input: Input<'_>) -> Vec<BindEvent> {
    start(policy, input).await.all().await
}

pub fn rx(data: &'static str, flags: PayloadFlags) -> BindEvent {
    BindEvent::Rx(Bytes::from_static(data.as_bytes()), flags)
}

pub fn eom() -> BindEvent {
    BindEvent::Rx(Bytes::new(), EOM)
}

pub fn closed() -> BindEvent {
    BindEvent::Closed { error: None }
}

pub fn ack() -> BindEvent {
    BindEvent::State(State::QOS_ACK_REMOTE)
}

pub fn nack() -> BindEvent {
    BindEvent::State(State::QOS_NACK_REMOTE)
}

/// The error of the last event, which must be the only `Closed`
pub fn close_error(events: &[BindEvent]) -> String {
    match events.last() {
        Some(BindEvent::Closed { error: Some(e) }) => e.clone(),
        other => panic!("expected a failed close, got {other:?} in {events:?}"),
    }
}

/// The payload of the rx events, checking SOM on the first and EOM alone at the end
pub fn payload(events: &[BindEvent]) -> Vec<u8> {
    let rx: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            BindEvent::Rx(d, f) => Some((d, *f)),
            _ => None,
        })
        .collect();
    assert!(rx.len() >= 2, "{events:?}");
    assert_eq!(rx[0].1, SOM);
    assert_eq!(rx[rx.len() - 1], (&Bytes::new(), EOM));
    for (_, f) in &rx[1..rx.len() - 1] {
        assert_eq!(*f, NONE);
    }
    rx.iter().flat_map(|(d, _)| d.to_vec()).collect()
}

pub fn chunk(data: &[u8], flags: PayloadFlags) -> TxChunk {
    TxChunk {
        data: Bytes::copy_from_slice(data),
        flags,
    }
}
