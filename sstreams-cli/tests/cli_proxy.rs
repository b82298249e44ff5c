//! `sstreams proxy` as a daemon: listens where asked with the asked mode, serves a link,
//! and shuts down cleanly on SIGTERM

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

mod support;

#[test]
fn proxy_serves_then_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("sstreams-cli-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("proxy.sock");
    let (mut child, _) =
        support::spawn_proxy(&["--listen", sock.to_str().unwrap(), "--socket-mode", "660"]);
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o660
    );

    // STREAMTYPE `_lws_smd` (pid 0x51, mask 4) → CREATE_RESULT ok ",(null)".
    let mut link = UnixStream::connect(&sock).unwrap();
    link.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    link.write_all(&[
        0xaa, 0x00, 0x11, 0x01, 0, 0, 0, 0x51, 0, 0, 0, 4, b'_', b'l', b'w', b's', b'_', b's',
        b'm', b'd',
    ])
    .unwrap();
    let mut reply = [0u8; 15];
    link.read_exact(&mut reply).unwrap();
    assert_eq!(
        reply,
        [
            0x56, 0x00, 0x0c, 0, 0, 0, 0, 0, b',', b'(', b'n', b'u', b'l', b'l', b')'
        ]
    );

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("proxy stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!sock.exists(), "the socket file is removed on shutdown");
    // The link was closed by the shutdown.
    let mut rest = Vec::new();
    let _ = link.read_to_end(&mut rest);
    std::fs::remove_dir_all(&dir).unwrap();
}
