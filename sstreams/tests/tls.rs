//! TLS from policy against a real rustls server on loopback, certificates made by rcgen

mod support;

use rcgen::{CertifiedIssuer, KeyPair};
use sstreams::Policy;
use sstreams::policy::Bytes;
use sstreams::policy::spec::{CertSpec, PolicySpec, Protocol, StreamTypeSpec, TrustStoreSpec};
use sstreams::tls::{
    ClientIdentity, HandshakeFailure, TlsContext, TlsError, TlsSettings, server_name,
};
use support::{ca, leaf, serve_once};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A policy with trust store `store` holding `ca`, and streamtype `st` using it
fn policy(
    ca: &CertifiedIssuer<'static, KeyPair>,
    protocol: Protocol,
    client_cert: Option<u8>,
) -> Policy {
    Policy::from_spec(PolicySpec {
        certs: vec![CertSpec {
            name: "ca".into(),
            der: Bytes::from(ca.der().to_vec()),
        }],
        trust_stores: vec![TrustStoreSpec {
            name: "store".into(),
            stack: vec!["ca".into()],
        }],
        streamtypes: vec![StreamTypeSpec {
            endpoint: Some("localhost".into()),
            tls: true,
            tls_trust_store: Some("store".into()),
            protocol,
            client_cert,
            ..StreamTypeSpec::named("st")
        }],
        ..Default::default()
    })
    .unwrap()
}

/// Connects as streamtype `st` of `policy`; the server's greeting, or why it failed
async fn connect(
    policy: &Policy,
    settings: TlsSettings,
    port: u16,
) -> Result<String, HandshakeFailure> {
    let tls = TlsContext::new(policy, settings).unwrap();
    let config = tls.client_config(policy.streamtype("st").unwrap()).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut s = connector
        .connect(server_name("localhost").unwrap(), tcp)
        .await
        .map_err(|e| HandshakeFailure::of(&e))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| HandshakeFailure::of(&e))?;
    Ok(out)
}

#[tokio::test]
async fn trusted_ca_connects_and_offers_alpn_for_the_protocol() {
    let ca = ca("test ca");
    let port = serve_once(leaf(&ca, "localhost", false), None).await;
    let got = connect(
        &policy(&ca, Protocol::H2, None),
        TlsSettings::default(),
        port,
    )
    .await;
    assert_eq!(got.unwrap(), "hello h2");
    let port = serve_once(leaf(&ca, "localhost", false), None).await;
    let got = connect(
        &policy(&ca, Protocol::H1, None),
        TlsSettings::default(),
        port,
    )
    .await;
    assert_eq!(got.unwrap(), "hello http/1.1");
}

#[tokio::test]
async fn wrong_ca_fails_with_unknown_issuer() {
    let (ca1, ca2) = (ca("one"), ca("two"));
    let port = serve_once(leaf(&ca2, "localhost", false), None).await;
    let got = connect(
        &policy(&ca1, Protocol::H1, None),
        TlsSettings::default(),
        port,
    )
    .await;
    assert_eq!(got.unwrap_err(), HandshakeFailure::UnknownIssuer);
}

#[tokio::test]
async fn expired_certificate_fails() {
    let ca = ca("test ca");
    let port = serve_once(leaf(&ca, "localhost", true), None).await;
    let got = connect(
        &policy(&ca, Protocol::H1, None),
        TlsSettings::default(),
        port,
    )
    .await;
    let failure = got.unwrap_err();
    assert_eq!(failure, HandshakeFailure::Expired);
    assert_eq!(failure.to_string(), "server certificate has expired");
}

#[tokio::test]
async fn wrong_host_fails() {
    let ca = ca("test ca");
    let port = serve_once(leaf(&ca, "other.example", false), None).await;
    let got = connect(
        &policy(&ca, Protocol::H1, None),
        TlsSettings::default(),
        port,
    )
    .await;
    assert_eq!(got.unwrap_err(), HandshakeFailure::WrongHost);
}

#[tokio::test]
async fn skip_verify_only_when_asked() {
    let (ca1, ca2) = (ca("one"), ca("two"));
    let port = serve_once(leaf(&ca2, "other.example", true), None).await;
    let mut settings = TlsSettings::default();
    settings.dangerous_skip_verify();
    let got = connect(&policy(&ca1, Protocol::H1, None), settings, port).await;
    assert_eq!(got.unwrap(), "hello http/1.1");
}

#[tokio::test]
async fn client_certificate_is_presented() {
    let server_ca = ca("server ca");
    let client_ca = ca("client ca");
    let id = leaf(&client_ca, "device-1", false);
    let identity = ClientIdentity::from_der(vec![id.cert.to_vec()], id.key);

    let port = serve_once(leaf(&server_ca, "localhost", false), Some(&client_ca)).await;
    let mut settings = TlsSettings::default();
    settings.client_identity(0, identity);
    let got = connect(&policy(&server_ca, Protocol::H1, Some(0)), settings, port).await;
    assert_eq!(got.unwrap(), "hello http/1.1");

    // Without the certificate the server refuses the connection.
    let port = serve_once(leaf(&server_ca, "localhost", false), Some(&client_ca)).await;
    let got = connect(
        &policy(&server_ca, Protocol::H1, None),
        TlsSettings::default(),
        port,
    )
    .await;
    assert!(matches!(got, Err(HandshakeFailure::Other(_))), "{got:?}");
}

#[test]
fn missing_client_identity_and_bad_trust_cert_are_clear_errors() {
    let ca = ca("test ca");
    let p = policy(&ca, Protocol::H1, Some(3));
    let tls = TlsContext::new(&p, TlsSettings::default()).unwrap();
    let e = tls.client_config(p.streamtype("st").unwrap()).unwrap_err();
    assert_eq!(e, TlsError::MissingClientIdentity(3));

    let bad = Policy::from_spec(PolicySpec {
        certs: vec![CertSpec {
            name: "junk".into(),
            der: Bytes::from_static(b"\x30\x03\x02\x01\x00"),
        }],
        trust_stores: vec![TrustStoreSpec {
            name: "ts".into(),
            stack: vec!["junk".into()],
        }],
        ..Default::default()
    })
    .unwrap();
    let e = TlsContext::new(&bad, TlsSettings::default()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("trust store `ts`: cert `junk` is not a usable CA certificate"),
        "{e}"
    );
}
