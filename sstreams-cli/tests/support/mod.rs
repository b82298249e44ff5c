//! Helpers shared by the CLI's integration tests
#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};

/// Starts `sstreams proxy ARGS` and returns it once it says it listens, with the address it
/// listens on; its log is drained from then on so that it never blocks on a full pipe
pub(crate) fn spawn_proxy(args: &[&str]) -> (Child, String) {
    let mut proxy = Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .arg("proxy")
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = proxy.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    let marker = "listening on ";
    loop {
        // Bounded: the read fails or returns 0 once the process has exited.
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "proxy exited: {}",
            String::from_utf8_lossy(&seen)
        );
        if byte[0] == b'\n' && String::from_utf8_lossy(&seen).contains(marker) {
            break;
        }
        seen.push(byte[0]);
    }
    let line = String::from_utf8_lossy(&seen).into_owned();
    let addr = line[line.find(marker).unwrap() + marker.len()..].to_owned();
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (proxy, addr)
}

/// Runs `sstreams ARGS`, expects success and, for each of `rows`, a line starting with it
/// followed by at least one figure
pub(crate) fn expect_bench_rows(args: &[&str], rows: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in rows {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{row} missing:\n{text}"));
        let figures = line[row.len()..]
            .split_whitespace()
            .filter(|w| w.trim_end_matches('%').parse::<f64>().is_ok())
            .count();
        assert!(figures >= 1, "no figures in {line:?}");
    }
}
