//! The h1 client binding against a real nginx

mod support;

use support::nginx::Nginx;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn nginx_harness_serves() {
    let Some(ngx) = Nginx::start() else { return };
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", ngx.port))
        .await
        .unwrap();
    s.write_all(b"GET /small.txt HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).await.unwrap();
    assert!(
        got.starts_with("HTTP/1.1 200 OK"),
        "{got}\n{}",
        ngx.error_log()
    );
    assert!(got.ends_with("hello from nginx\n"), "{got}");
}
