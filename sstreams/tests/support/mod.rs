//! Shared test helpers: certificates made with rcgen, and a one-shot rustls server
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: Vec<u8>,
}

pub fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, host: &str, expired: bool) -> Leaf {
    let mut p = CertificateParams::new(vec![host.to_owned()]).unwrap();
    if expired {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, ca).unwrap();
    Leaf {
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

/// Serves one TLS connection: handshake, then "hello" and the negotiated ALPN
pub async fn serve_once(leaf: Leaf, client_ca: Option<&CertifiedIssuer<'static, KeyPair>>) -> u16 {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der().clone()).unwrap();
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(v)
        }
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key));
    let mut config = builder.with_single_cert(vec![leaf.cert], key).unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let alpn = tls.get_ref().1.alpn_protocol().unwrap_or(b"none").to_vec();
            let _ = tls.write_all(&[b"hello ".as_slice(), &alpn].concat()).await;
            let _ = tls.shutdown().await;
        }
    });
    port
}
pub mod h1;
pub mod nginx;

/// A loopback port where connections are refused, reserved while the socket lives: it is
/// bound but never listens, so no other test can take the port meanwhile
pub fn refused_port() -> (tokio::net::TcpSocket, u16) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// A TCP server on loopback echoing whatever it gets, on every connection; its port
pub async fn echo_server() -> u16 {
    use tokio::io::AsyncReadExt;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A name no other test of this run uses (for abstract sockets), starting with `tag`
pub fn unique_name(tag: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("sstreams-test-{tag}-{}-{r}", std::process::id())
}

/// An HTTP server answering one request with `response`; reports the request's head (as
/// text) and its body (read up to its Content-Length)
pub async fn http_once(
    response: &'static [u8],
) -> (u16, tokio::sync::oneshot::Receiver<(String, Vec<u8>)>) {
    use tokio::io::AsyncReadExt;
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        let (head_end, len) = loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "request ended early");
            req.extend_from_slice(&buf[..n]);
            if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&req[..i]).to_ascii_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                break (i + 4, len);
            }
        };
        while req.len() < head_end + len {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "body ended early");
            req.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&req[..head_end]).into_owned();
        let _ = tx.send((head, req[head_end..].to_vec()));
        s.write_all(response).await.unwrap();
    });
    (port, rx)
}

/// The next frame `dec` decodes from `s`, reading as needed (each read within 10 s, else a
/// panic); `Ok(None)` when the peer closed the link first
pub async fn next_frame(
    s: &mut tokio::net::UnixStream,
    dec: &mut sstreams_core::wire::Decoder,
) -> std::io::Result<Option<sstreams_core::wire::Frame>> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(f) = dec.poll_frame().unwrap() {
            return Ok(Some(f));
        }
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("in time")?;
        if n == 0 {
            return Ok(None);
        }
        dec.handle_bytes(&buf[..n]);
    }
}
