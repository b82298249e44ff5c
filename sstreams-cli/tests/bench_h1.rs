//! `sstreams bench h1` runs every measurement and prints one row each (figures not asserted)

use std::process::Command;

#[test]
fn bench_h1_reports_every_row() {
    let out = Command::new(env!("CARGO_BIN_EXE_sstreams"))
        .args([
            "bench",
            "h1",
            "--requests",
            "20",
            "--bulk-mib",
            "2",
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
        "GETs/s, new connection each",
        "bulk MB/s",
        "GETs/s, hyper keep-alive",
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("{row} missing:\n{text}"));
        let numbers = line[row.len()..]
            .split_whitespace()
            .filter(|w| w.trim_end_matches('%').parse::<f64>().is_ok())
            .count();
        assert!(numbers >= 1, "no figures in {line:?}");
    }
}
