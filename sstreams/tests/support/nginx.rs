//! A real nginx on loopback, started per test with a generated config and TLS certificate
//!
//! The listening sockets are made here (ports chosen by the OS) and inherited by nginx through
//! its `NGINX` environment variable, so there is no port race and no readiness wait: a client
//! may connect at once and the kernel queues it until nginx accepts.
//!
//! Endpoints (plain on `port`, TLS + h2 on `tls_port`):
//! `/status/<200|204|403|404|429|503|530>`, `/redirect` (302 to `/status/200`),
//! `/redirect-loop`, `/hops/` (302 to `/hops/x`, then `/hops/xx`, ... until `/hops/xxxxxxxx`,
//! which answers 200 "eight hops": 8 redirects), `/endless/` (the same, never ending),
//! `/headers` (echoes `x-test` and sets `x-reply`), `/post` (echoes the request body),
//! `/chunked` (a chunked response), `/parts` ([`PARTS_BODY`] as multipart/related),
//! `/big.bin` (100 MiB, sparse), `/small.txt`, `/cookie/set` (sets `sid=abc` for `/cookie`),
//! `/cookie/echo` (echoes the `cookie` header), `/cookie/redirect` (sets `hop=1`, 302 to
//! `/cookie/echo`), `/blobs` (echoes `authorization`, `x-dsn`, `x-fwv` and `x-type`).

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{ca, leaf};

/// The body of `/parts`, served as `multipart/related; boundary="sep"`
pub const PARTS_BODY: &str = "preamble\r\n--sep\r\nContent-Type: application/json\r\n\r\n\
    {\"a\":1}\r\n--sep\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--sep--\r\nepilogue\r\n";

/// Size of `/big.bin`, in bytes
pub const BIG_LEN: u64 = 100 * 1024 * 1024;

/// A running nginx (a master and one worker; nginx 1.22 crashes with inherited sockets and
/// `master_process off`), stopped on drop
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    /// Plain HTTP/1.1 port
    pub port: u16,
    /// TLS port (h1 and h2)
    pub tls_port: u16,
    /// DER of the CA that signed the server certificate (for `localhost`)
    pub ca_der: Vec<u8>,
    // Kept open until nginx has them (it inherits the descriptors).
    _listeners: [TcpListener; 2],
}

impl Nginx {
    /// Starts nginx, or returns `None` (with a message) when it is not installed and
    /// `SSTREAMS_REQUIRE_PEERS` is not set
    pub fn start() -> Option<Self> {
        let Some(bin) = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
        else {
            assert!(
                std::env::var_os("SSTREAMS_REQUIRE_PEERS").is_none(),
                "nginx is required (SSTREAMS_REQUIRE_PEERS is set) but not installed"
            );
            eprintln!("SKIP: nginx is not installed (apt-get install nginx-light)");
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "sstreams-nginx-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("www")).unwrap();

        let ca = ca("nginx test ca");
        let server = leaf(&ca, "localhost", false);
        let cert_pem = pem("CERTIFICATE", &server.cert);
        let key_pem = pem("PRIVATE KEY", &server.key);
        std::fs::write(dir.join("cert.pem"), cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), key_pem).unwrap();
        std::fs::write(dir.join("www/small.txt"), "hello from nginx\n").unwrap();
        std::fs::write(dir.join("www/parts"), PARTS_BODY).unwrap();
        let big = std::fs::File::create(dir.join("www/big.bin")).unwrap();
        big.set_len(BIG_LEN).unwrap();

        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let tls = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = plain.local_addr().unwrap().port();
        let tls_port = tls.local_addr().unwrap().port();
        for l in [&plain, &tls] {
            rustix::io::fcntl_setfd(l, rustix::io::FdFlags::empty()).unwrap();
        }
        let d = dir.display();
        let echo = "/usr/lib/nginx/modules/ngx_http_echo_module.so";
        let load_echo = if std::path::Path::new(echo).exists() {
            format!("load_module {echo};")
        } else {
            String::new()
        };
        let conf = format!(
            r#"{load_echo}
daemon off;
worker_processes 1;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    client_max_body_size 200m;
    client_body_buffer_size 1m;
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tls_port} ssl http2;
        server_name localhost;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        root {d}/www;
        location = /status/200 {{ return 200 "ok\n"; }}
        location = /status/204 {{ return 204; }}
        location = /status/403 {{ return 403 "forbidden\n"; }}
        location = /status/404 {{ return 404 "missing\n"; }}
        location = /status/429 {{ add_header Retry-After 3 always; return 429 "slow down\n"; }}
        location = /status/503 {{ add_header Retry-After 2 always; return 503 "busy\n"; }}
        location = /status/530 {{ return 530 "custom\n"; }}
        location = /redirect {{ return 302 /status/200; }}
        location = /redirect-loop {{ return 302 /redirect-loop; }}
        location ~ ^/hops/(?<xs>x*)$ {{ return 302 /hops/${{xs}}x; }}
        location = /hops/xxxxxxxx {{ return 200 "eight hops\n"; }}
        location ~ ^/endless/(?<xs>x*)$ {{ return 302 /endless/${{xs}}x; }}
        location = /headers {{
            add_header x-reply "from-nginx" always;
            return 200 "x-test=$http_x_test method=$request_method uri=$request_uri\n";
        }}
        location = /post {{
            echo_read_request_body;
            echo_request_body;
        }}
        location = /cookie/set {{ add_header Set-Cookie "sid=abc; Path=/cookie" always; return 200 "set\n"; }}
        location = /cookie/echo {{ return 200 "cookie=$http_cookie\n"; }}
        location = /cookie/redirect {{
            add_header Set-Cookie "hop=1; Path=/" always;
            return 302 /cookie/echo;
        }}
        location = /blobs {{
            return 200 "auth=$http_authorization dsn=$http_x_dsn fwv=$http_x_fwv type=$http_x_type\n";
        }}
        location = /parts {{ types {{ }} default_type 'multipart/related; boundary="sep"'; }}
        location = /chunked {{
            echo "chunk one";
            echo_flush;
            echo "chunk two";
        }}
    }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let inherited = format!("{};{};", plain.as_raw_fd(), tls.as_raw_fd());
        let child = Command::new(bin)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .env("NGINX", inherited)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        Some(Self {
            child,
            dir,
            port,
            tls_port,
            ca_der: ca.der().to_vec(),
            _listeners: [plain, tls],
        })
    }

    /// nginx's error log so far, for failure messages
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker too (SIGKILL would orphan the worker).
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        match pid {
            Some(pid) => {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            None => {
                let _ = self.child.kill();
            }
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
