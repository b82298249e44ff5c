//! Interop with the C implementation (libwebsockets): our proxy serving unmodified C clients,
//! and our client using the C proxy
//!
//! These need binaries from a local libwebsockets build (CI has none), so they are ignored by
//! default. Build libwebsockets with `-DLWS_WITH_SECURE_STREAMS=1
//! -DLWS_WITH_SECURE_STREAMS_PROXY_API=1 -DLWS_WITH_MINIMAL_EXAMPLES=1`, then run
//!
//! ```sh
//! LWS_BIN_DIR=/path/to/lws-build/bin cargo test -p sstreams-cli --test interop_lws -- --ignored --test-threads=1
//! ```
//!
//! The C binaries use the default abstract socket `@proxy.ss.lws`, so the tests run one at a
//! time and nothing else may listen there meanwhile.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn lws_bin(name: &str) -> PathBuf {
    let dir =
        std::env::var_os("LWS_BIN_DIR").expect("LWS_BIN_DIR names the libwebsockets bin directory");
    let p = PathBuf::from(dir).join(name);
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// Waits for `child` to exit within `limit`; its exit status
fn wait(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let (tx, rx) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).unwrap(),
                rustix::process::Signal::KILL,
            );
            panic!("process {pid} did not finish within {limit:?}");
        }
    }
}

/// `sstreams proxy` on the default socket, once it listens
fn our_proxy() -> Child {
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .args(["proxy", "--listen", "@proxy.ss.lws"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = proxy.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("listening on") {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "proxy exited: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.push(byte[0]);
    }
    proxy
}

fn stop(mut proxy: Child) {
    let _ = rustix::process::kill_process(
        rustix::process::Pid::from_raw(proxy.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    );
    let _ = proxy.wait();
}

#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_proxy_serves_the_c_smd_client() {
    for args in [&[][..], &["--multi"][..]] {
        let proxy = our_proxy();
        let client = Command::new(lws_bin("lws-minimal-secure-streams-smd-client"))
            .args(args)
            .spawn()
            .unwrap();
        let status = wait(client, Duration::from_secs(60));
        stop(proxy);
        assert!(status.success(), "C smd client {args:?}: {status:?}");
    }
}

#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_client_uses_the_c_proxy() {
    let policy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sstreams-core/testdata/sstreams/kitchen-sink.json"
    );
    let mut c_proxy = Command::new(lws_bin("lws-minimal-secure-streams-proxy"))
        .args(["-c", policy])
        .spawn()
        .unwrap();
    // The C proxy gives no readiness signal: our client retries its link every second until
    // the proxy listens, so no wait is needed here.
    let demo = Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .args([
            "demo",
            "smd",
            "--via-proxy",
            "--proxy",
            "@proxy.ss.lws",
            "--count",
            "40",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = demo.wait_with_output().unwrap();
    let _ = c_proxy.kill();
    let _ = c_proxy.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Completed: OK"),
        "{text}"
    );
}
