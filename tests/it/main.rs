//! Cross-crate tests through the umbrella crate: the same data through two providers gives the same scan,
//! and a scan in one process reads the second time from the cache.

use std::sync::Arc;

use technic::progress::RecordingSink;
use technic::{
    CancellationToken, CsvDirProvider, Deps, MemoryCache, NoopSink, ScanRequest, ScanState, Stage,
    SyntheticConfig, SyntheticProvider, scan,
};

fn demo(n_symbols: usize) -> SyntheticProvider {
    SyntheticProvider::new(SyntheticConfig {
        n_symbols,
        n_bars: 320,
        ..SyntheticConfig::default()
    })
}

#[tokio::test]
async fn csv_export_scans_exactly_like_the_synthetic_provider() {
    let dir = tempfile::tempdir().unwrap();
    let synthetic = Arc::new(demo(80));
    CsvDirProvider::export(synthetic.as_ref(), synthetic.data_range(), dir.path())
        .await
        .unwrap();
    let csv = Arc::new(CsvDirProvider::new(dir.path()).unwrap());

    let req = ScanRequest {
        top: None,
        ..ScanRequest::default()
    };
    let a = scan(
        &req,
        &Deps::new(synthetic, Arc::new(MemoryCache::default())),
        &NoopSink,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let b = scan(
        &req,
        &Deps::new(csv, Arc::new(MemoryCache::default())),
        &NoopSink,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(a.state, ScanState::Complete);
    assert_eq!(a.results.len(), 80);
    assert!(a.demo && !b.demo);
    // Same bars, same indicators, same scores, same order: the CSV round trip loses nothing.
    assert_eq!(a.results, b.results);
}

#[tokio::test]
async fn progress_is_monotonic_and_finishes_with_every_symbol_processed() {
    let deps = Deps::new(Arc::new(demo(300)), Arc::new(MemoryCache::default()));
    let sink = RecordingSink::default();
    let report = scan(&ScanRequest::default(), &deps, &sink, CancellationToken::new())
        .await
        .unwrap();
    let events = sink.events();
    assert!(
        events
            .windows(2)
            .all(|w| w[1].overall_percent >= w[0].overall_percent)
    );
    let scanning: Vec<_> = events.iter().filter(|e| e.stage == Stage::Scanning).collect();
    assert!(scanning.len() >= 2, "scanning progress is reported as it happens");
    assert!(scanning.windows(2).all(|w| w[1].processed >= w[0].processed));
    let last = events.last().unwrap();
    assert_eq!((last.stage, last.overall_percent), (Stage::Complete, 100.0));
    assert_eq!(last.processed, report.scanned);
    assert!(events.iter().all(|e| e.scan_id == report.id));
}
