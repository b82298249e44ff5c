//! `sstreams get`: payload on stdout, states on stderr, exit status from the outcome

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

mod support;

/// Serves one HTTP/1.1 response; returns the port and the request it received
fn serve_once(status: &str, body: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let status = status.to_owned();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "request ended early");
            req.extend_from_slice(&buf[..n]);
        }
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(resp.as_bytes()).unwrap();
        String::from_utf8(req).unwrap()
    });
    (port, t)
}

fn policy(port: u16) -> String {
    let dir = std::env::temp_dir().join(format!("sstreams-get-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("p.json");
    let json = format!(
        r#"{{ "s": [{{ "web": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
               "http_method": "GET", "http_url": "${{page}}",
               "metadata": [{{ "page": "" }}, {{ "tag": "x-tag:" }}] }} }}] }}"#
    );
    std::fs::write(&p, json).unwrap();
    p.to_str().unwrap().to_owned()
}

fn get(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .arg("get")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn get_writes_payload_and_states() {
    let (port, server) = serve_once("200 OK", "hello from the peer\n");
    let p = policy(port);
    let out = get(&[
        "--policy", &p, "web", "--meta", "page=a/b", "--meta", "tag=t1",
    ]);
    let req = server.join().unwrap();
    assert!(req.starts_with("GET /a/b HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("x-tag: t1\r\n"), "{req}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the peer\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web: LWSSSCS_CONNECTED") && err.contains("web: LWSSSCS_QOS_ACK_REMOTE"),
        "{err}"
    );
    assert!(out.status.success());
}

#[test]
fn get_fails_on_nack_and_bad_input() {
    let (port, server) = serve_once("404 Not Found", "missing\n");
    let p = policy(port);
    let out = get(&["--policy", &p, "web", "--meta", "page=x"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "missing\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("QOS_NACK_REMOTE"));

    let out = get(&["--policy", &p, "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no streamtype `nope` in the policy"));
    let out = get(&["--policy", &p, "web", "--meta", "undeclared=1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("metadata `undeclared` is not declared"));
}

/// `sstreams proxy --policy P --listen ADDR`, once it says it listens; killed on drop
struct OurProxy(std::process::Child);

impl OurProxy {
    fn start(policy: &str, addr: &str) -> Self {
        Self(support::spawn_proxy(&["--policy", policy, "--listen", addr]).0)
    }
}

impl Drop for OurProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn get_through_a_proxy() {
    let (port, server) = serve_once("200 OK", "hello via the proxy\n");
    let p = policy(port);
    let addr = format!("@sstreams-cli-get-{}", std::process::id());
    let _proxy = OurProxy::start(&p, &addr);
    // No --policy: the proxy has it. The metadata reaches the proxy's request.
    let out = get(&[
        "--proxy", &addr, "web", "--meta", "page=via", "--meta", "tag=t2",
    ]);
    let req = server.join().unwrap();
    assert!(req.starts_with("GET /via HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("x-tag: t2\r\n"), "{req}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello via the proxy\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for state in ["CREATING", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"] {
        assert!(err.contains(&format!("web: LWSSSCS_{state}\n")), "{err}");
    }
    assert!(out.status.success(), "{err}");

    // A streamtype the proxy's policy lacks: the proxy refuses to create it, and the client
    // retries the link (as a C client does) until the timeout.
    let out = get(&["--proxy", &addr, "nope", "--timeout-s", "2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nope: LWSSSCS_UPSTREAM_LINK_RETRY"), "{err}");
    assert!(!err.contains("LWSSSCS_CONNECTED"), "{err}");

    // Neither a policy nor a proxy: a usage error.
    let out = get(&["web"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--policy"));
}

#[test]
fn get_raw_through_a_proxy() {
    // A raw peer that says something and closes.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"raw bytes\n").unwrap();
    });
    let dir = std::env::temp_dir().join(format!("sstreams-get-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("p.json");
    std::fs::write(
        &p,
        format!(
            r#"{{ "s": [{{ "peer": {{ "endpoint": "127.0.0.1", "port": {port},
                           "protocol": "raw" }} }}] }}"#
        ),
    )
    .unwrap();
    let addr = format!("@sstreams-cli-get-raw-{}", std::process::id());
    let _proxy = OurProxy::start(p.to_str().unwrap(), &addr);
    // Through a proxy the client cannot tell raw from h1: --raw says the close is the end.
    let out = get(&["--proxy", &addr, "--raw", "peer", "--timeout-s", "10"]);
    server.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "raw bytes\n", "{err}");
    assert!(err.contains("peer: LWSSSCS_DISCONNECTED"), "{err}");
    assert!(out.status.success(), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
