//! `sstreams demo smd` end to end

use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

/// Run the binary with `args`, failing the test if it takes longer than a minute
fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sstreams"));
    cmd.args(args);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(cmd.output()));
    rx.recv_timeout(Duration::from_secs(60))
        .expect("demo did not finish in 60 s")
        .unwrap()
}

fn assert_ok(out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "exit {:?}\n{stdout}", out.status);
    assert_eq!(stdout.lines().last(), Some("Completed: OK"), "{stdout}");
    assert!(stdout.contains("rx_interaction: 0"), "{stdout}");
}

#[test]
fn demo_smd_defaults_complete_ok() {
    let out = run(&["demo", "smd"]);
    assert_ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // C-style summary line: stream rx, direct rx, stream tx.
    assert!(stdout.lines().any(|l| l == "52 116 100"), "{stdout}");
}

#[test]
fn demo_smd_flat_out_survives_full_queue() {
    let out = run(&["demo", "smd", "--count", "5000", "--interval-us", "0"]);
    assert_ok(&out);
}

#[test]
fn demo_smd_rejects_bad_arguments() {
    let out = run(&["demo", "smd", "--count", "many"]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Completed: OK"));
}
