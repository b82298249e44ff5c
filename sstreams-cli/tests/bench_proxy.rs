//! `sstreams bench proxy` runs every measurement and prints one row each (figures not asserted)

mod support;

#[test]
fn bench_proxy_reports_every_row() {
    support::expect_bench_rows(
        &[
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
        ],
        &[
            "bare Unix-socket copy",
            "bare relay, two Unix sockets",
            "direct stream",
            "through the proxy",
            "added p50 latency, µs",
            "SMD msgs/s, proxy bus → client",
        ],
    );
}
