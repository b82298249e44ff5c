//! `sstreams demo smd --via-proxy`: the `_lws_smd` stream through an in-process proxy, and
//! through a separate `sstreams proxy` process

use std::process::Command;
use std::time::Duration;

mod support;

fn demo(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .args(["demo", "smd"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), text)
}

#[test]
fn via_an_in_process_proxy() {
    let (ok, text) = demo(&["--via-proxy", "--count", "40", "--interval-us", "0"]);
    assert!(ok && text.contains("Completed: OK"), "{text}");
    assert!(text.contains("via the SS proxy"), "{text}");
}

#[test]
fn via_a_proxy_process() {
    let name = format!("@sstreams-demo-proxy-{}", std::process::id());
    let (mut proxy, _) = support::spawn_proxy(&["--listen", &name]);
    let (ok, text) = demo(&[
        "--via-proxy",
        "--proxy",
        &name,
        "--count",
        "40",
        "--interval-us",
        "100",
    ]);
    let pid = rustix::process::Pid::from_raw(proxy.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(proxy.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("proxy stops")
        .unwrap();
    assert!(ok && text.contains("Completed: OK"), "{text}");
    assert!(status.success());
}

#[test]
fn multi_workers_exchange_messages_through_the_proxy() {
    let (ok, text) = demo(&["--via-proxy", "--multi", "--count", "100"]);
    assert!(ok && text.contains("Completed: OK"), "{text}");
    for k in 0..4 {
        assert!(
            text.contains(&format!(
                "worker {k}: received 100 messages from each of 4 workers, 0 out of order"
            )),
            "{text}"
        );
    }
}
