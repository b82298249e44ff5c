//! `sstreams bench smd` runs, delivers everything and allocates nothing per message

use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sstreams"));
    cmd.args(args);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(cmd.output()));
    rx.recv_timeout(Duration::from_secs(120))
        .expect("bench did not finish in 120 s")
        .unwrap()
}

#[test]
fn bench_smd_reports_every_row_without_per_message_allocations() {
    let out = run(&["bench", "smd", "--messages", "20000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() == 6 && w[0].parse::<u32>().is_ok())
        .collect();
    let participants: Vec<&str> = rows.iter().map(|w| w[0]).collect();
    assert_eq!(participants, ["1", "4", "16", "1"], "{stdout}");
    for row in &rows {
        let msgs_per_s: f64 = row[2].parse().unwrap();
        let allocs_per_msg: f64 = row[4].parse().unwrap();
        assert!(msgs_per_s > 0.0, "{stdout}");
        assert!(allocs_per_msg < 0.01, "allocations per message: {stdout}");
    }
}
