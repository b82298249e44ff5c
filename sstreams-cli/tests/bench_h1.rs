//! `sstreams bench h1` runs every measurement and prints one row each (figures not asserted)

mod support;

#[test]
fn bench_h1_reports_every_row() {
    support::expect_bench_rows(
        &[
            "bench",
            "h1",
            "--requests",
            "20",
            "--bulk-mib",
            "2",
            "--rounds",
            "1",
        ],
        &[
            "GETs/s, new connection each",
            "bulk MB/s",
            "GETs/s, hyper keep-alive",
        ],
    );
}
