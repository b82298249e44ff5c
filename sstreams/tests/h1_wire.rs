//! The h1 binding against a scripted peer on loopback: the exact request bytes it sends, and
//! what it reports for responses nginx will not produce (cut short, malformed, absent)

mod support;

use std::time::Duration;

use sstreams::Policy;
use sstreams::bind::BindEvent;
use support::h1::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::oneshot;

/// Reads one request (head, then a content-length or chunked body) and answers `response`
/// verbatim, then closes; the request bytes come out of the receiver
async fn answer<S>(mut s: S, response: &'static [u8]) -> Vec<u8>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut req = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&req, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            return req;
        }
        req.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&req[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &req[head_end..];
        let done = match length {
            Some(n) => body.len() >= n,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => true,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let _ = s.write_all(response).await;
    let _ = s.shutdown().await;
    req
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A TCP peer answering one connection; its port and the request it got
async fn peer(response: &'static [u8]) -> (u16, oneshot::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let _ = tx.send(answer(s, response).await);
    });
    (port, rx)
}

fn policy(port: u16, extra: &str) -> Policy {
    let json =
        format!(r#"{{ "s": [{{ "st": {{ "endpoint": "127.0.0.1", "port": {port}{extra} }} }}] }}"#);
    Policy::from_json(&json).unwrap()
}

async fn request(rx: oneshot::Receiver<Vec<u8>>) -> String {
    let got = tokio::time::timeout(STEP, rx).await.unwrap().unwrap();
    String::from_utf8(got).unwrap()
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

#[tokio::test]
async fn get_request_bytes() {
    let (port, got) = peer(OK).await;
    let p = policy(
        port,
        r#", "http_url": "/x/${id}?q=1", "direct_proto_str": true,
            "metadata": [{ "id": "" }, { "token": "X-Token:" }, { "unset": "x-unset" }]"#,
    );
    let input = Input {
        metadata: &[("id", "42"), ("token", "t0")],
        direct: &[("x-direct", "d")],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(
        request(got).await,
        format!(
            "GET /x/42?q=1 HTTP/1.1\r\npragma: no-cache\r\ncache-control: no-cache\r\n\
             host: 127.0.0.1:{port}\r\norigin: http://127.0.0.1\r\nconnection: close\r\n\
             x-token: t0\r\nx-direct: d\r\n\r\n"
        )
    );
    // direct_proto_str offers every response header as metadata.
    let md = vec![("content-length".into(), bytes::Bytes::from_static(b"2"))];
    assert_eq!(
        events,
        [
            BindEvent::Metadata(md),
            BindEvent::Connected,
            rx("ok", SOM),
            eom(),
            ack(),
            closed()
        ]
    );
}

#[tokio::test]
async fn post_request_bytes() {
    let (port, got) = peer(OK).await;
    let p = policy(port, r#", "http_url": "up", "http_method": "post""#);
    let input = Input {
        length_hint: Some(6),
        tx: vec![chunk(b"abc", SOM), chunk(b"def", EOM)],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(
        request(got).await,
        format!(
            "POST /up HTTP/1.1\r\npragma: no-cache\r\ncache-control: no-cache\r\n\
             host: 127.0.0.1:{port}\r\norigin: http://127.0.0.1\r\nconnection: close\r\n\
             content-length: 6\r\n\r\nabcdef"
        )
    );
    assert_eq!(events[..2], [BindEvent::WantTx, BindEvent::WantTx]);
    assert_eq!(events[events.len() - 2..], [ack(), closed()]);

    // http_no_content_length: the codec chunk-encodes the body.
    let (port, got) = peer(OK).await;
    let p = policy(
        port,
        r#", "http_method": "PUT", "http_no_content_length": true"#,
    );
    let input = Input {
        length_hint: Some(6),
        tx: vec![chunk(b"abc", SOM), chunk(b"def", EOM)],
        ..Input::default()
    };
    transact(&p, input).await;
    let req = request(got).await;
    assert!(
        req.ends_with("transfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
        "{req:?}"
    );
    assert!(!req.contains("content-length"), "{req:?}");
}

#[tokio::test]
async fn response_cut_short_has_no_eom_and_no_verdict() {
    let (port, _got) = peer(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc").await;
    let events = transact(&policy(port, ""), Input::default()).await;
    assert_eq!(events[..2], [BindEvent::Connected, rx("abc", SOM)]);
    assert_eq!(events.len(), 3, "{events:?}");
    close_error(&events);
}

#[tokio::test]
async fn no_or_bad_response_fails_before_connected() {
    for response in [b"".as_slice(), b"SMTP ready\r\n\r\n"] {
        let (port, _got) = peer(response).await;
        let events = transact(&policy(port, ""), Input::default()).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert!(close_error(&events).starts_with("http/1.1: "), "{events:?}");
    }
}

#[tokio::test]
async fn retry_later_without_retry_after_is_zero() {
    let (port, _got) = peer(b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n").await;
    let events = transact(&policy(port, ""), Input::default()).await;
    assert_eq!(events[0], BindEvent::RetryLater(Duration::ZERO));
    assert!(close_error(&events).contains("503"));
}

#[tokio::test]
async fn redirect_to_https_needs_a_tls_config() {
    let (port, _got) =
        peer(b"HTTP/1.1 302 Found\r\nlocation: https://localhost:1/x\r\ncontent-length: 0\r\n\r\n")
            .await;
    let p = policy(port, r#", "allow_redirects": true"#);
    let events = transact(&p, Input::default()).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        close_error(&events).contains("no TLS configuration"),
        "{events:?}"
    );
}

#[tokio::test]
async fn unix_socket_endpoint_uses_localhost() {
    let dir = std::env::temp_dir().join(format!("sstreams-h1-wire-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, got) = oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let _ = tx.send(answer(s, OK).await);
    });
    let json = format!(
        r#"{{ "s": [{{ "st": {{ "endpoint": "+{}", "http_url": "u" }} }}] }}"#,
        path.display()
    );
    let events = transact(&Policy::from_json(&json).unwrap(), Input::default()).await;
    let req = request(got).await;
    assert!(
        req.starts_with("GET /u HTTP/1.1\r\n") && req.contains("\r\nhost: localhost\r\n"),
        "{req:?}"
    );
    assert_eq!(events[events.len() - 2..], [ack(), closed()]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP peer answering `responses.len()` connections in turn; the requests come out in order
async fn peers(responses: Vec<&'static [u8]>) -> (u16, tokio::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::channel(responses.len().max(1));
    tokio::spawn(async move {
        for response in responses {
            let (s, _) = listener.accept().await.unwrap();
            let got = answer(s, response).await;
            let _ = tx.send(String::from_utf8(got).unwrap()).await;
        }
    });
    (port, rx)
}

#[tokio::test]
async fn see_other_after_a_post_goes_on_as_get_without_body() {
    let (port, mut got) = peers(vec![
        b"HTTP/1.1 303 See Other\r\nlocation: /done\r\ncontent-length: 0\r\n\r\n",
        OK,
    ])
    .await;
    let p = policy(
        port,
        r#", "http_url": "form", "http_method": "POST", "allow_redirects": true"#,
    );
    let input = Input {
        length_hint: Some(3),
        tx: vec![chunk(b"a=1", SOM | EOM)],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(
        events,
        [
            BindEvent::WantTx,
            BindEvent::Connected,
            rx("ok", SOM),
            eom(),
            ack(),
            closed()
        ]
    );
    let first = got.recv().await.unwrap();
    assert!(first.starts_with("POST /form HTTP/1.1\r\n") && first.ends_with("\r\n\r\na=1"));
    let second = got.recv().await.unwrap();
    assert!(second.starts_with("GET /done HTTP/1.1\r\n"), "{second:?}");
    assert!(second.ends_with("connection: close\r\n\r\n"), "{second:?}");
}

#[tokio::test]
async fn temporary_redirect_after_a_body_cannot_be_followed() {
    let (port, _got) = peers(vec![
        b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /again\r\ncontent-length: 0\r\n\r\n",
    ])
    .await;
    let p = policy(port, r#", "http_method": "PUT", "allow_redirects": true"#);
    let input = Input {
        length_hint: Some(1),
        tx: vec![chunk(b"x", SOM | EOM)],
        ..Input::default()
    };
    let events = transact(&p, input).await;
    assert_eq!(events[0], BindEvent::WantTx);
    assert!(
        close_error(&events).contains("cannot be sent again"),
        "{events:?}"
    );
}

#[tokio::test]
async fn early_response_to_a_post_stops_asking_for_tx() {
    // The peer answers as soon as it has the head (a body of 1 MiB is announced), then closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while find(&head, b"\r\n\r\n").is_none() {
            let n = s.read(&mut buf).await.unwrap();
            assert_ne!(n, 0);
            head.extend_from_slice(&buf[..n]);
        }
        let _ = s
            .write_all(b"HTTP/1.1 413 Too Large\r\ncontent-length: 3\r\n\r\nbig")
            .await;
        let _ = s.shutdown().await;
    });
    let p = policy(port, r#", "http_method": "POST""#);
    let mut run = start(
        &p,
        Input {
            length_hint: Some(1024 * 1024),
            ..Input::default()
        },
    )
    .await;
    // The first WantTx is left unanswered: the response comes first.
    assert_eq!(run.next().await, Some(BindEvent::WantTx));
    assert_eq!(
        run.all().await,
        [
            BindEvent::Connected,
            rx("big", SOM),
            eom(),
            nack(),
            closed()
        ]
    );
}
