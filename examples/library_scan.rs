//! Runs a scan from your own program: the synthetic demo provider, a memory cache, progress printed as
//! it happens, then the top ten. `cargo run --release --example library_scan`

use std::sync::Arc;

use technic::{
    CancellationToken, Deps, MemoryCache, ProgressEvent, ScanRequest, Stage, SyntheticProvider, scan,
};

#[tokio::main]
async fn main() -> Result<(), technic::Error> {
    let deps = Deps::new(
        Arc::new(SyntheticProvider::default()),
        Arc::new(MemoryCache::default()),
    );
    let on_progress = |e: &ProgressEvent| {
        if e.stage != Stage::FetchingData && e.stage != Stage::Scanning || e.processed == e.total {
            eprintln!("{:>5.1}% {}", e.overall_percent, e.message);
        }
    };
    let request = ScanRequest {
        top: Some(10),
        ..ScanRequest::default()
    };
    let report = scan(&request, &deps, &on_progress, CancellationToken::new()).await?;
    println!("demo data: {}", report.demo);
    for r in &report.results {
        println!(
            "{:>2}. {:<6} {:>6.1} {:<12} RSI {:.1}",
            r.rank,
            // `as_str`: Symbol's and Signal's Display write the text as is, without padding.
            r.symbol.as_str(),
            r.tech_rating,
            r.signal.as_str(),
            r.indicators.rsi_14.unwrap_or(f64::NAN)
        );
    }
    // A second scan in the same process reads every symbol from the memory cache.
    let again = scan(&request, &deps, &technic::NoopSink, CancellationToken::new()).await?;
    println!(
        "second scan: {:.0} ms, cache hit rate {:.0}%",
        again.timing.total_ms,
        again.cache.hit_rate * 100.0
    );
    Ok(())
}
