//! `sstreams bench proxy` runs every measurement and prints one row each (figures not asserted)

use std::process::Command;

#[test]
fn bench_proxy_reports_every_row() {
    let out = Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .args([
            "bench",
            "proxy",
            "--bulk-mib",
            "2",
            "--round-trips",
            "50",
            "--smd-messages",
            "200",
            "--rounds",
            "1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "bare Unix-socket copy",
        "direct stream",
        "through the proxy",
        "added p50 latency, µs",
        "SMD msgs/s, proxy bus → client",
    ] {
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
