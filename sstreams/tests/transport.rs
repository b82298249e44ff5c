//! Opening connections: TCP over IPv4 and IPv6, DNS, Unix sockets, TLS, and the failures

mod support;

use std::sync::Arc;
use std::time::Duration;

use sstreams::Policy;
use sstreams::policy::spec::{CertSpec, PolicySpec, StreamTypeSpec, TrustStoreSpec};
use sstreams::policy::{Bytes, Endpoint, Target};
use sstreams::tls::{HandshakeFailure, TlsContext, TlsSettings};
use sstreams::transport::{ConnectError, Transport, connect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

fn plain(target: Target) -> Endpoint {
    Endpoint {
        target,
        tls: false,
        path: None,
    }
}

/// Sends "ping", expects "pong" back
async fn ping(mut t: Transport) {
    t.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    t.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

async fn pong<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    s.write_all(b"pong").await.unwrap();
}

async fn tcp_server(addr: &str) -> u16 {
    let l = TcpListener::bind(addr).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move { pong(l.accept().await.unwrap().0).await });
    port
}

#[tokio::test]
async fn tcp_ipv4_ipv6_and_name() {
    let port = tcp_server("127.0.0.1:0").await;
    ping(
        connect(
            &plain(Target::Host {
                host: "127.0.0.1".into(),
                port,
            }),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    let port = tcp_server("[::1]:0").await;
    ping(
        connect(
            &plain(Target::Host {
                host: "::1".into(),
                port,
            }),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
    // `localhost` may resolve to ::1 first; the IPv4 listener must still be found.
    let port = tcp_server("127.0.0.1:0").await;
    ping(
        connect(
            &plain(Target::Host {
                host: "localhost".into(),
                port,
            }),
            None,
        )
        .await
        .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn unix_path_and_abstract() {
    let dir = std::env::temp_dir().join(format!("sstreams-transport-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move { pong(l.accept().await.unwrap().0).await });
    let t = connect(&plain(Target::Unix(path.to_str().unwrap().into())), None)
        .await
        .unwrap();
    ping(t).await;
    std::fs::remove_dir_all(&dir).unwrap();

    use std::os::linux::net::SocketAddrExt;
    let name = format!("sstreams-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let std_l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    std_l.set_nonblocking(true).unwrap();
    let l = UnixListener::from_std(std_l).unwrap();
    tokio::spawn(async move { pong(l.accept().await.unwrap().0).await });
    ping(
        connect(&plain(Target::UnixAbstract(name)), None)
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn refused_and_unresolvable() {
    // Bind then drop: the port is free and nothing listens.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = connect(
        &plain(Target::Host {
            host: "127.0.0.1".into(),
            port,
        }),
        None,
    )
    .await
    .unwrap_err();
    match &e {
        ConnectError::Connect { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused)
        }
        other => panic!("expected refused, got {other}"),
    }
    let target = Target::Host {
        host: "nonexistent.invalid".into(),
        port: 80,
    };
    let e = tokio::time::timeout(Duration::from_secs(30), connect(&plain(target), None))
        .await
        .expect("the resolver answers")
        .unwrap_err();
    assert!(matches!(e, ConnectError::Dns { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("cannot resolve `nonexistent.invalid`"),
        "{e}"
    );
}

#[tokio::test]
async fn tls_from_policy_and_failures() {
    let ca = support::ca("ca");
    let policy = Policy::from_spec(PolicySpec {
        certs: vec![CertSpec {
            name: "ca".into(),
            der: Bytes::from(ca.der().to_vec()),
        }],
        trust_stores: vec![TrustStoreSpec {
            name: "ts".into(),
            stack: vec!["ca".into()],
        }],
        streamtypes: vec![StreamTypeSpec {
            endpoint: Some("localhost".into()),
            tls: true,
            tls_trust_store: Some("ts".into()),
            ..StreamTypeSpec::named("st")
        }],
        ..Default::default()
    })
    .unwrap();
    let tls = TlsContext::new(&policy, TlsSettings::default()).unwrap();
    let st = policy.streamtype("st").unwrap();
    let config = tls.client_config(st).unwrap();

    let port = support::serve_once(support::leaf(&ca, "localhost", false), None).await;
    let mut ep = st.resolve_endpoint(|_| None).unwrap();
    ep.target = Target::Host {
        host: "localhost".into(),
        port,
    };
    let mut t = connect(&ep, Some(Arc::clone(&config))).await.unwrap();
    assert_eq!(t.alpn(), Some(b"http/1.1".as_slice()));
    let mut got = String::new();
    t.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "hello http/1.1");

    let port = support::serve_once(support::leaf(&ca, "localhost", true), None).await;
    ep.target = Target::Host {
        host: "localhost".into(),
        port,
    };
    let e = connect(&ep, Some(config)).await.unwrap_err();
    assert!(
        matches!(
            &e,
            ConnectError::Tls {
                failure: HandshakeFailure::Expired,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().ends_with("server certificate has expired"),
        "{e}"
    );

    let e = connect(&ep, None).await.unwrap_err();
    assert!(matches!(e, ConnectError::TlsSetup { .. }), "{e}");
}
