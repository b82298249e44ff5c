//! Interop with the C implementation (libwebsockets): our proxy serving unmodified C clients,
//! and our client using the C proxy
//!
//! These need binaries from a local libwebsockets build (CI has none), so they are ignored by
//! default. One way to build them (from a libwebsockets checkout in `$LWS`):
//!
//! ```sh
//! cmake -S $LWS -B lws-build -DLWS_WITH_SECURE_STREAMS=1 -DLWS_WITH_SECURE_STREAMS_PROXY_API=1 \
//!     -DLWS_WITH_SSL=OFF -DLWS_WITHOUT_TESTAPPS=1
//! make -C lws-build -j2 websockets websockets_shared && cmake --install lws-build --prefix lws-inst
//! for ex in minimal-secure-streams-smd minimal-secure-streams-proxy; do
//!     cmake -S $LWS/minimal-examples-lowlevel/secure-streams/$ex -B ex-$ex \
//!         -DCMAKE_PREFIX_PATH=$PWD/lws-inst -DLWS_WITH_SECURE_STREAMS_PROXY_API=1
//!     make -C ex-$ex -j2 && cp ex-$ex/lws-* lws-bin/
//! done
//! # lws-minimal-secure-streams-client is minimal-secure-streams.c built with -DLWS_SS_USE_SSPC.
//! # Its CMakeLists wants LWS_WITH_TLS (only the proxy does TLS), and the source declares an
//! # unused `struct lws_genhash_ctx` member, which is incomplete without TLS: build it directly
//! # with a one-line definition of that struct forced in.
//! echo 'struct lws_genhash_ctx { char unused; };' > genhash-shim.h
//! cc -O2 -DLWS_SS_USE_SSPC -include genhash-shim.h -I lws-inst/include \
//!     $LWS/minimal-examples-lowlevel/secure-streams/minimal-secure-streams/minimal-secure-streams.c \
//!     -L lws-inst/lib -lwebsockets -o lws-bin/lws-minimal-secure-streams-client
//! LD_LIBRARY_PATH=$PWD/lws-inst/lib LWS_BIN_DIR=$PWD/lws-bin \
//!     cargo test -p sstreams-cli --test interop_lws -- --ignored --test-threads=1
//! ```
//!
//! The C smd binaries and the C proxy use the default abstract socket `@proxy.ss.lws`, so the
//! tests run one at a time and nothing else may listen there meanwhile. The minimal client
//! test needs nginx (`nginx-light`) too, and uses sockets of its own.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;

fn lws_bin(name: &str) -> PathBuf {
    let dir =
        std::env::var_os("LWS_BIN_DIR").expect("LWS_BIN_DIR names the libwebsockets bin directory");
    let p = PathBuf::from(dir).join(name);
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// `sstreams proxy` on the default socket, once it listens
fn our_proxy() -> Child {
    our_proxy_with(&["--listen", "@proxy.ss.lws"]).0
}

/// `sstreams proxy` with `args`, once it listens; and the address it says it listens on
fn our_proxy_with(args: &[&str]) -> (Child, String) {
    support::spawn_proxy(args)
}

fn stop(mut proxy: Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(proxy.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    );
    let _ = proxy.wait();
}

/// Runs `cmd` to completion within `limit`; its output (stderr captured)
fn run(mut cmd: Command, limit: Duration) -> std::process::Output {
    let child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            );
            panic!("process {pid} did not finish within {limit:?}");
        }
    }
}

#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_proxy_serves_the_c_smd_client() {
    // Without arguments the C example only prints its help.
    for args in [&["--count", "100"][..], &["--multi"][..]] {
        let proxy = our_proxy();
        let mut cmd = Command::new(lws_bin("lws-minimal-secure-streams-smd-client"));
        cmd.args(args);
        let out = run(cmd, Duration::from_secs(60));
        stop(proxy);
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "C smd client {args:?}: {:?}\n{log}",
            out.status
        );
        if args[0] != "--multi" {
            assert!(log.contains("Completed: OK"), "{log}");
        }
    }
}

/// The C proxy (`lws-minimal-secure-streams-proxy -c POLICY -i @NAME`), once it listens on
/// its abstract socket `@NAME`; its log goes to `log`. Killed on drop.
struct CProxy(Child);

impl CProxy {
    fn start(policy: &std::path::Path, name: &str, log: &std::path::Path) -> Self {
        let mut child = Command::new(lws_bin("lws-minimal-secure-streams-proxy"))
            .arg("-c")
            .arg(policy)
            .args(["-i", &format!("@{name}")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        // It says nothing when it listens: watch for its socket.
        let wanted = format!(" @{name}\n");
        for _ in 0..500 {
            let unix = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
            if unix.contains(&wanted) {
                return Self(child);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the C proxy does not listen on @{name}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

impl Drop for CProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The C proxy's policy for the SMD tests (`_lws_smd` needs none; one streamtype anyway)
const SMD_POLICY: &str = r#"{ "release": "1", "product": "interop", "schema-version": 1,
     "retry": [{ "default": { "backoff": [1000], "conceal": 5 } }],
     "s": [{ "echo": { "endpoint": "127.0.0.1", "port": 1, "protocol": "raw",
                       "retry": "default" } }] }"#;

/// `sstreams demo smd --via-proxy --count 100` with `extra` arguments, through a C proxy that
/// already listens; the demo's stdout and the C proxy's log
fn demo_smd_via_c_proxy(tag: &str, extra: &[&str]) -> (std::process::Output, String) {
    let dir = std::env::temp_dir();
    let base = format!("sstreams-interop-smd-{tag}-{}", std::process::id());
    let policy = dir.join(format!("{base}.json"));
    let log = dir.join(format!("{base}.log"));
    std::fs::write(&policy, SMD_POLICY).unwrap();
    let c_proxy = CProxy::start(&policy, &base, &log);
    let mut demo = Command::new(env!("CARGO_BIN_EXE_sstreams"));
    demo.args(["demo", "smd", "--via-proxy", "--proxy", &format!("@{base}")])
        .args(["--count", "100"])
        .args(extra);
    let out = run(demo, Duration::from_secs(60));
    drop(c_proxy);
    let c_log = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&policy);
    let _ = std::fs::remove_file(&log);
    (out, c_log)
}

/// Our `_lws_smd` client through the C proxy, paced as the C example is (a message every
/// millisecond), with the proxy listening before the demo starts.
///
/// The C proxy has a bug a burst triggers (see [`our_client_bursts_into_the_c_proxy`]). Two
/// things made the earlier version of this test burst: the demo started with the C proxy
/// not yet listening, so its link waited for its 1 s retry, and the demo's message timer
/// (`next_tx += interval` from the start) then caught up with every missed tick at once, i.e.
/// all 100 messages back to back. Waiting for the socket avoids that.
#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_client_uses_the_c_proxy() {
    let (out, c_log) = demo_smd_via_c_proxy("paced", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Completed: OK"),
        "{text}\n--- C proxy log:\n{c_log}"
    );
}

/// Known C proxy bug, reproduced: with all 100 messages sent back to back
/// (`--interval-us 0`), the C proxy falls more than 4096 bytes behind, and hands an
/// `_lws_smd` TX_PAYLOAD that straddles two of its 4096-byte socket reads to its bus as two
/// messages (its log says "smd message undersize" when the tail is under 16 bytes; a longer
/// tail is posted with bytes of the message as its class, so the demo counts one message too
/// many). About half of the runs fail that way; our client writes one frame per write, as a
/// C client does, so it is the rate, not the framing, that triggers it.
///
/// So this passes when the run completes, or fails in the known way: the C proxy logged
/// the undersize tail (whatever the demo then saw: counts off, or a timeout when the split
/// message was the end marker), or without that log only message counts are off (the link
/// and the stream otherwise fine); anything else (a hang or a link error with no split
/// logged, other failures) fails it.
#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_client_bursts_into_the_c_proxy() {
    let (out, c_log) = demo_smd_via_c_proxy("burst", &["--interval-us", "0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.contains("Completed: OK") {
        return;
    }
    let failures: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL:")).collect();
    let known = |l: &&str| l.contains(" rx count: ") || l.contains("saw no INTERACTION");
    let split_logged = c_log.contains("smd message undersize");
    assert!(
        text.contains("Completed: FAIL")
            && (split_logged || !failures.is_empty() && failures.iter().all(known)),
        "not the known C proxy bug:\n{text}\n--- C proxy log:\n{c_log}"
    );
    eprintln!(
        "known C proxy bug reproduced ({}): {failures:?}",
        if split_logged {
            "its log says \"smd message undersize\""
        } else {
            "a tail of 16 bytes or more, posted as a message"
        }
    );
}

/// nginx on loopback for the minimal client: `/big.bin` ([`big_body`]) on a plain and a TLS
/// port, with a certificate for `localhost` from a CA of its own; stopped on drop
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
    tls_port: u16,
    /// The CA certificate, base64 DER as a policy's `certs` wants it
    ca_b64: String,
}

/// The body nginx serves as `/big.bin`: large enough to take many RX_PAYLOAD frames
fn big_body() -> Vec<u8> {
    (0..300_000u32).map(|i| (i % 251) as u8).collect()
}

impl Nginx {
    fn start() -> Self {
        use std::os::fd::AsRawFd;
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("nginx is installed (apt-get install nginx-light)");
        let dir =
            std::env::temp_dir().join(format!("sstreams-interop-nginx-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::write(dir.join("www/big.bin"), big_body()).unwrap();
        std::fs::write(
            dir.join("www/index.html"),
            "<html>hello from nginx</html>\n",
        )
        .unwrap();

        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "interop test ca");
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca, rcgen::KeyPair::generate().unwrap()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let ca_b64: String = ca
            .pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();

        // Ports chosen by the OS, inherited by nginx (its NGINX variable): no race, no wait.
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tls = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = plain.local_addr().unwrap().port();
        let tls_port = tls.local_addr().unwrap().port();
        for l in [&plain, &tls] {
            rustix::io::fcntl_setfd(l, rustix::io::FdFlags::empty()).unwrap();
        }
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
worker_processes 1;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    log_format hdr "$request uptag=[$http_x_upload_tag]";
    access_log {d}/access.log hdr;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl;
        server_name localhost;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        root {d}/www;
    }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .env(
                "NGINX",
                format!("{};{};", plain.as_raw_fd(), tls.as_raw_fd()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx starts");
        // nginx has its copies now (the kernel queues connections until it accepts).
        drop((plain, tls));
        Self {
            child,
            dir,
            port,
            tls_port,
            ca_b64,
        }
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker too.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(self.child.id() as i32).unwrap(),
            rustix::process::Signal::TERM,
        );
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The payload a C minimal client logged with `-d 1039`: its `myss_rx` hexdumps (lines
/// `I: 0000: 3C 68 ...`; the metadata dumps carry a `[handle]` tag instead), concatenated
fn hexdumped_rx(log: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(i) = line.find("] I: ") else {
            continue;
        };
        let rest = &line[i + 5..];
        // "%04X: " then 16 columns of "%02X " (blank-padded), then the ASCII column
        let is_dump = rest.len() > 6
            && rest.as_bytes()[4] == b':'
            && rest[..4].bytes().all(|b| b.is_ascii_hexdigit());
        if !is_dump {
            continue;
        }
        let hex = &rest[6..rest.len().min(6 + 16 * 3)];
        out.extend(
            hex.split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).expect("hexdump byte")),
        );
    }
    out
}

#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_proxy_serves_the_c_minimal_client() {
    let ngx = Nginx::start();
    // A server that accepts (the kernel does) and never answers, for the timeout case.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    // The streamtypes the example asks for (the C example policy's, on loopback): "mintest"
    // over TLS with our CA, "mintest_local" (--local) plain, "respmap" (--respmap) mapping
    // 404 to a user state, "mintest-ots" (--ots) at the silent server.
    let (ca, port, tls_port) = (&ngx.ca_b64, ngx.port, ngx.tls_port);
    let policy =
        std::env::temp_dir().join(format!("sstreams-interop-min-{}.json", std::process::id()));
    std::fs::write(
        &policy,
        format!(
            r#"{{ "release": "1", "product": "interop", "schema-version": 1,
  "retry": [{{ "default": {{ "backoff": [1000, 2000], "conceal": 5, "jitterpc": 20 }} }}],
  "certs": [{{ "interop_ca": "{ca}" }}],
  "trust_stores": [{{ "name": "interop", "stack": ["interop_ca"] }}],
  "s": [
    {{ "mintest": {{ "endpoint": "localhost", "port": {tls_port}, "protocol": "h1",
        "http_method": "GET", "http_url": "big.bin?uptag=${{uptag}}",
        "metadata": [{{ "uptag": "X-Upload-Tag:" }}, {{ "ctype": "Content-Type:" }},
                     {{ "xctype": "X-Content-Type:" }}],
        "tls": true, "tls_trust_store": "interop", "opportunistic": true,
        "retry": "default" }} }},
    {{ "mintest_local": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
        "http_method": "GET", "http_url": "index.html", "opportunistic": true,
        "retry": "default" }} }},
    {{ "respmap": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
        "http_method": "GET", "http_url": "missing.html", "http_resp_map": [{{ "404": 1001 }}],
        "retry": "default" }} }},
    {{ "mintest-ots": {{ "endpoint": "127.0.0.1", "port": {silent_port}, "protocol": "h1",
        "http_method": "GET", "http_url": "x", "retry": "default" }} }}
  ] }}"#
        ),
    )
    .unwrap();
    let policy_arg = policy.to_str().unwrap().to_owned();
    let name = format!("sstreams-interop-min-{}", std::process::id());
    let (unix_proxy, _) =
        our_proxy_with(&["--policy", &policy_arg, "--listen", &format!("@{name}")]);
    let (tcp_proxy, tcp_addr) =
        our_proxy_with(&["--policy", &policy_arg, "--listen", "tcp:127.0.0.1:0"]);
    let tcp_port = tcp_addr.rsplit(':').next().unwrap().to_owned();
    let unix = ["-i".to_owned(), format!("+@{name}")];
    let tcp = [
        "-p".to_owned(),
        tcp_port,
        "-a".to_owned(),
        "127.0.0.1".to_owned(),
    ];

    let client = |link: &[String], args: &[&str]| {
        let mut cmd = Command::new(lws_bin("lws-minimal-secure-streams-client"));
        cmd.args(link).args(args);
        let out = run(cmd, Duration::from_secs(30));
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() && log.contains("Completed: OK"),
            "C minimal client {link:?} {args:?}: {:?}\n{log}",
            out.status
        );
        log
    };

    // The whole body, byte for byte, through the proxy's TLS onward connection, on either
    // kind of link.
    for link in [&unix[..], &tcp[..]] {
        let log = client(link, &["-d", "1039"]);
        let got = hexdumped_rx(&log);
        assert_eq!(got.len(), big_body().len(), "{link:?}: payload length");
        assert!(got == big_body(), "{link:?}: payload differs");
        // (Not QOS_ACK_REMOTE: the example stops at EOM, so it sees the verdict only when
        // that arrives in the same read.)
    }
    let log = client(&unix, &["--local"]);
    assert!(log.contains("myss_rx: len 30, flags: 1"), "{log}");
    let log = client(&unix, &["--respmap"]);
    assert!(log.contains("myss_state: user state (1001)"), "{log}");
    // No answer within --timeout_ms: the client's timeout, which it expects here (exit 3).
    let log = client(
        &tcp,
        &["--ots", "--timeout_ms", "500", "--expected-exit", "3"],
    );
    assert!(log.contains("myss_state: LWSSSCS_TIMEOUT"), "{log}");

    stop(unix_proxy);
    stop(tcp_proxy);
    drop(silent);
    let _ = std::fs::remove_file(&policy);
    // The example sets uptag when CONNECTING, after the request line is made, so (as with the
    // C proxy) it reaches neither the url nor the headers of this first request.
    let access = ngx.access_log();
    assert_eq!(
        access.matches("GET /big.bin?uptag= HTTP/1.1").count(),
        2,
        "{access}"
    );
}

/// Serves one http POST on loopback: reads the request and its `content-length` body, answers
/// `200` with "got N bytes\n"; returns the port and (request head, body)
fn serve_one_post() -> (u16, std::thread::JoinHandle<(String, Vec<u8>)>) {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 16384];
        let head_end = loop {
            if let Some(i) = req.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "request ended early");
            req.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&req[..head_end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .expect("a content-length");
        let mut body = req[head_end..].to_vec();
        while body.len() < len {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "body ended early");
            body.extend_from_slice(&buf[..n]);
        }
        let answer = format!("got {} bytes\n", body.len());
        s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            )
            .as_bytes(),
        )
        .unwrap();
        (head, body)
    });
    (port, t)
}

/// Where each of `states` first appears in a `sstreams get` log, asserting they come in
/// that order
fn assert_states_in_order(log: &str, streamtype: &str, states: &[&str]) {
    let mut from = 0;
    for s in states {
        let needle = format!("{streamtype}: LWSSSCS_{s}\n");
        let at = log[from..]
            .find(&needle)
            .unwrap_or_else(|| panic!("no {s} after byte {from}:\n{log}"));
        from += at + needle.len();
    }
}

/// Our client, ordinary (non-SMD) h1 streams, through the C proxy (`sstreams get --proxy`):
/// a 300 kB body from nginx byte for byte with a mapped response header, a 404 as
/// `QOS_NACK_REMOTE`, and a POST whose body our client sends after the proxy's CONNECTED.
#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_get_uses_the_c_proxy() {
    let ngx = Nginx::start();
    let (post_port, post_server) = serve_one_post();
    let port = ngx.port;
    let base = format!("sstreams-interop-get-{}", std::process::id());
    let dir = std::env::temp_dir();
    let policy = dir.join(format!("{base}.json"));
    let log = dir.join(format!("{base}.log"));
    // The C policy parser matches well-known header names case-sensitively (lws'
    // lowercase table): "Content-Type:" would be taken for a custom header and not mapped.
    // Without rx flow control the C proxy buffers onward rx up to `proxy_buflen` (32 KiB)
    // and, when nginx outpaces its writes to us, drops the connection ("dropping SS dsh due
    // to OOM") and retries: "big" asks it to pause the onward rx instead.
    std::fs::write(
        &policy,
        format!(
            r#"{{ "release": "1", "product": "interop", "schema-version": 1,
  "retry": [{{ "default": {{ "backoff": [1000], "conceal": 2 }} }}],
  "s": [
    {{ "big": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
        "http_method": "GET", "http_url": "big.bin", "retry": "default",
        "proxy_buflen": 65536, "proxy_buflen_rxflow_on_above": 32768,
        "proxy_buflen_rxflow_off_below": 8192,
        "metadata": [{{ "ctype": "content-type:" }}] }} }},
    {{ "missing": {{ "endpoint": "127.0.0.1", "port": {port}, "protocol": "h1",
        "http_method": "GET", "http_url": "missing.html", "retry": "default" }} }},
    {{ "upload": {{ "endpoint": "127.0.0.1", "port": {post_port}, "protocol": "h1",
        "http_method": "POST", "http_url": "up", "retry": "default",
        "proxy_buflen": 131072 }} }}
  ] }}"#
        ),
    )
    .unwrap();
    let c_proxy = CProxy::start(&policy, &base, &log);
    let addr = format!("@{base}");
    let get = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sstreams"));
        cmd.args(["get", "--proxy", &addr, "--timeout-s", "20"])
            .args(args);
        let out = run(cmd, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, err)
    };

    let (out, err) = get(&["big"]);
    assert!(out.status.success(), "{err}");
    assert_eq!(out.stdout.len(), big_body().len(), "payload length\n{err}");
    assert!(out.stdout == big_body(), "payload differs");
    assert_states_in_order(
        &err,
        "big",
        &["CREATING", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"],
    );
    assert!(
        err.contains("big: metadata ctype=application/octet-stream\n"),
        "{err}"
    );

    let (out, err) = get(&["missing"]);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("404"),
        "nginx's 404 page"
    );
    assert_states_in_order(&err, "missing", &["CONNECTED", "QOS_NACK_REMOTE"]);

    // Larger than the C proxy's 4096-byte reads, so it arrives in several. At most 65519
    // bytes (65535 less the 16 of the payload fields): our client sends an async-face payload
    // as one TX_PAYLOAD, and a larger one does not fit a frame (the link is dropped and the
    // body lost). The C proxy holds what the client sends until the onward connection takes
    // it, in at most `proxy_buflen` (default 32 KiB, over which it drops the link): "upload"
    // raises that.
    let body: String = (0..60_000u32)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let (out, err) = get(&["upload", "--data", &body]);
    let (head, got) = post_server.join().unwrap();
    assert!(head.starts_with("POST /up HTTP/1.1\r\n"), "{head}");
    assert!(
        got == body.as_bytes(),
        "POST body differs ({} bytes)",
        got.len()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got 60000 bytes\n");
    assert!(out.status.success(), "{err}");
    assert_states_in_order(&err, "upload", &["CONNECTED", "QOS_ACK_REMOTE"]);

    drop(c_proxy);
    let _ = std::fs::remove_file(&policy);
    let _ = std::fs::remove_file(&log);
    assert_eq!(ngx.access_log().matches("GET /big.bin HTTP/1.1").count(), 1);
}
