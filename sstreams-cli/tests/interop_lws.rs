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
//! LD_LIBRARY_PATH=$PWD/lws-inst/lib LWS_BIN_DIR=$PWD/lws-bin \
//!     cargo test -p sstreams-cli --test interop_lws -- --ignored --test-threads=1
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

#[test]
#[ignore = "needs a local libwebsockets build: set LWS_BIN_DIR (see the module docs)"]
fn our_client_uses_the_c_proxy() {
    let policy = std::env::temp_dir().join(format!("sstreams-interop-{}.json", std::process::id()));
    std::fs::write(
        &policy,
        r#"{ "release": "1", "product": "interop", "schema-version": 1,
             "retry": [{ "default": { "backoff": [1000], "conceal": 5 } }],
             "s": [{ "echo": { "endpoint": "127.0.0.1", "port": 1, "protocol": "raw",
                               "retry": "default" } }] }"#,
    )
    .unwrap();
    let mut c_proxy = Command::new(lws_bin("lws-minimal-secure-streams-proxy"))
        .arg("-c")
        .arg(&policy)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The C proxy gives no readiness signal: our client retries its link every second until
    // the proxy listens, so no wait is needed here.
    let mut demo = Command::new(env!("CARGO_BIN_EXE_sstreams"));
    demo.args([
        "demo",
        "smd",
        "--via-proxy",
        "--proxy",
        "@proxy.ss.lws",
        "--count",
        "100",
    ]);
    let out = run(demo, Duration::from_secs(60));
    let _ = c_proxy.kill();
    let _ = c_proxy.wait();
    let _ = std::fs::remove_file(&policy);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("Completed: OK"),
        "{text}"
    );
}
