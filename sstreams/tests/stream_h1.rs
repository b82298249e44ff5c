//! h1 streams end to end through the public API, against a real nginx

mod support;

use std::time::Duration;

use sstreams::stream::{ConnState as State, Flags};
use sstreams::{Context, StreamEvent, StreamEvents};
use support::nginx::Nginx;

const LIMIT: Duration = Duration::from_secs(30);

fn context(ngx: &Nginx) -> Context {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(&ngx.ca_der);
    let other = base64::engine::general_purpose::STANDARD.encode(support::ca("other").der());
    let policy = format!(
        r#"{{ "retry": [{{ "r": {{ "backoff": [100], "conceal": 1 }} }}],
             "certs": [{{ "ca": "{ca}" }}, {{ "other_ca": "{other}" }}],
             "trust_stores": [{{ "name": "ts", "stack": ["ca"] }}, {{ "name": "other", "stack": ["other_ca"] }}],
             "s": [
               {{ "get": {{ "endpoint": "localhost", "port": {port}, "protocol": "h1",
                           "http_method": "GET", "http_url": "${{path}}", "retry": "r",
                           "metadata": [{{ "path": "" }}, {{ "test": "x-test:" }}, {{ "reply": "x-reply:" }}] }} }},
               {{ "get_tls": {{ "endpoint": "localhost", "port": {tls_port}, "protocol": "h1", "tls": true,
                           "tls_trust_store": "ts", "http_method": "GET", "http_url": "small.txt" }} }},
               {{ "wrong_ca": {{ "endpoint": "localhost", "port": {tls_port}, "protocol": "h1", "tls": true,
                           "tls_trust_store": "other", "retry": "r", "http_method": "GET", "http_url": "small.txt" }} }},
               {{ "post": {{ "endpoint": "localhost", "port": {port}, "protocol": "h1",
                           "http_method": "POST", "http_url": "post" }} }}
             ] }}"#,
        port = ngx.port,
        tls_port = ngx.tls_port,
    );
    Context::builder().policy_json(&policy).build().unwrap()
}

/// Events until the QoS verdict (inclusive), as (states, rx payload, rx flags)
async fn until_verdict(events: &mut StreamEvents) -> (Vec<State>, Vec<u8>, Vec<Flags>) {
    let (mut states, mut body, mut flags) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        match tokio::time::timeout(LIMIT, events.next())
            .await
            .expect("in time")
            .expect("alive")
        {
            StreamEvent::State(s, _) => {
                states.push(s);
                if s == State::QOS_ACK_REMOTE || s == State::QOS_NACK_REMOTE {
                    return (states, body, flags);
                }
            }
            StreamEvent::Rx(d, f) => {
                body.extend_from_slice(&d);
                flags.push(f);
            }
            // Captured metadata is checked through `Stream::metadata`.
            StreamEvent::Metadata(..) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn get_with_metadata_both_ways() {
    let Some(ngx) = Nginx::start() else { return };
    let cx = context(&ngx);
    let (stream, mut events) = cx.open("get").unwrap();
    stream.set_metadata("path", "headers").unwrap();
    stream.set_metadata("test", "from-sstreams").unwrap();
    stream.request_tx();
    let (states, body, flags) = until_verdict(&mut events).await;
    use State as S;
    assert_eq!(
        states,
        [
            S::CREATING,
            S::POLL,
            S::CONNECTING,
            S::CONNECTED,
            S::QOS_ACK_REMOTE
        ]
    );
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "x-test=from-sstreams method=GET uri=/headers\n"
    );
    // SOM on the data, EOM as a separate empty rx.
    assert_eq!(flags, [Flags::SOM, Flags::EOM]);
    assert_eq!(stream.metadata("reply").unwrap(), "from-nginx");
}

#[tokio::test]
async fn get_over_tls_and_404_nack() {
    let Some(ngx) = Nginx::start() else { return };
    let cx = context(&ngx);
    let (stream, mut events) = cx.open("get_tls").unwrap();
    stream.request_tx();
    let (states, body, _) = until_verdict(&mut events).await;
    assert_eq!(
        states.last(),
        Some(&State::QOS_ACK_REMOTE),
        "{states:?}\n{}",
        ngx.error_log()
    );
    assert_eq!(body, b"hello from nginx\n");

    let (stream, mut events) = cx.open("get").unwrap();
    stream.set_metadata("path", "status/404").unwrap();
    stream.request_tx();
    let (states, body, _) = until_verdict(&mut events).await;
    assert_eq!(states.last(), Some(&State::QOS_NACK_REMOTE));
    assert_eq!(body, b"missing\n");
}

#[tokio::test]
async fn post_with_length_hint() {
    let Some(ngx) = Nginx::start() else { return };
    let cx = context(&ngx);
    let (stream, mut events) = cx.open("post").unwrap();
    stream.request_tx_len(11);
    stream.send(&b"hello "[..], Flags::SOM);
    stream.send(&b"world"[..], Flags::EOM);
    let (states, body, _) = until_verdict(&mut events).await;
    assert_eq!(states.last(), Some(&State::QOS_ACK_REMOTE), "{states:?}");
    assert_eq!(body, b"hello world");
}

#[tokio::test]
async fn wrong_ca_fails_the_connection_and_retries_run_out() {
    let Some(ngx) = Nginx::start() else { return };
    let cx = context(&ngx);
    let (stream, mut events) = cx.open("wrong_ca").unwrap();
    stream.request_tx();
    let mut states = Vec::new();
    loop {
        match tokio::time::timeout(LIMIT, events.next())
            .await
            .expect("in time")
            .expect("alive")
        {
            StreamEvent::State(s, _) => {
                states.push(s);
                if s == State::ALL_RETRIES_FAILED {
                    break;
                }
            }
            other => panic!("no payload may arrive: {other:?}"),
        }
    }
    use State as S;
    assert_eq!(
        states,
        [
            S::CREATING,
            S::POLL,
            S::CONNECTING,
            S::UNREACHABLE,
            S::POLL,
            S::CONNECTING,
            S::UNREACHABLE,
            S::ALL_RETRIES_FAILED,
        ]
    );
}

/// Sends its body in two tx callbacks, and reports rx and the verdict
struct TwoPartPost {
    out: tokio::sync::mpsc::UnboundedSender<(Option<State>, Vec<u8>)>,
}

impl sstreams::StreamHandler for TwoPartPost {
    fn state(
        &mut self,
        cx: &mut sstreams::stream::StreamCx<'_>,
        state: State,
        _: u32,
    ) -> sstreams::stream::StateReturn {
        if state == State::CREATING {
            cx.request_tx_len(11);
        }
        let _ = self.out.send((Some(state), Vec::new()));
        sstreams::stream::StateReturn::Ok
    }

    fn rx(
        &mut self,
        _: &mut sstreams::stream::StreamCx<'_>,
        data: &[u8],
        _: Flags,
    ) -> sstreams::stream::StateReturn {
        let _ = self.out.send((None, data.to_vec()));
        sstreams::stream::StateReturn::Ok
    }

    fn tx(
        &mut self,
        _: &mut sstreams::stream::StreamCx<'_>,
        ord: u32,
        buf: &mut bytes::BytesMut,
        flags: &mut Flags,
    ) -> sstreams::stream::StateReturn {
        match ord {
            0 => {
                buf.extend_from_slice(b"hello ");
                *flags = Flags::SOM;
            }
            1 => {
                buf.extend_from_slice(b"world");
                *flags = Flags::EOM;
            }
            _ => return sstreams::stream::StateReturn::TxDontSend,
        }
        sstreams::stream::StateReturn::Ok
    }
}

#[tokio::test]
async fn handler_post_body_in_two_tx_callbacks() {
    let Some(ngx) = Nginx::start() else { return };
    let cx = context(&ngx);
    let (out, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let _stream = cx.create_stream("post", TwoPartPost { out }).unwrap();
    let mut body = Vec::new();
    loop {
        let (state, data) = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("in time")
            .expect("alive");
        body.extend(data);
        if let Some(s) = state {
            assert_ne!(s, State::QOS_NACK_REMOTE);
            if s == State::QOS_ACK_REMOTE {
                break;
            }
        }
    }
    assert_eq!(body, b"hello world");
}
