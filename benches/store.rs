//! Store benches (issue 5): 5000 symbols × 504 bars in a `SqliteStore` on a temporary file.
//! - `load_batched_5000x504`: `load_bars` for all symbols at once (chunked `IN` lists over year blocks).
//! - `load_per_symbol_5000x504`: the N+1 pattern, one `load_bars` call per symbol, for comparison.
//! - `row_per_bar_batched_5000x504`: the same batched read from a row-per-bar table
//!   (`PRIMARY KEY (symbol, date)`), the layout the block layout replaced.
//! - `warm_scan_from_store_5000x504`: a whole `scan()` with a fresh memory cache, every bar from the
//!   store, the provider asked for nothing (goal: under 1 s).
//!
//! `cargo bench --bench store`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use chrono::Datelike;
use criterion::{Criterion, criterion_group, criterion_main};
use rusqlite::{Connection, params};
use technic::store::BarsUpdate;
use technic::{
    Bars, CancellationToken, DataProvider, DateRange, Deps, ManualClock, Market, MemoryCache, NoopSink,
    ScanRequest, SqliteStore, Store, Symbol, SyntheticConfig, SyntheticProvider, scan,
};

const N_SYMBOLS: usize = 5000;
const N_BARS: usize = 504;

fn provider() -> SyntheticProvider {
    SyntheticProvider::new(SyntheticConfig {
        n_symbols: N_SYMBOLS,
        n_bars: N_BARS,
        ..SyntheticConfig::default()
    })
}

/// The demo data as if it came from a live market-data source, so a scan keeps its bars in the store
/// (local and demo data are read directly, never stored).
#[derive(Debug)]
struct LiveSynthetic(SyntheticProvider);

#[async_trait::async_trait]
impl DataProvider for LiveSynthetic {
    fn name(&self) -> &str {
        "live-synthetic"
    }
    fn live_source(&self) -> Option<String> {
        Some(SOURCE.to_owned())
    }
    fn default_range(&self, _expected: chrono::NaiveDate) -> DateRange {
        self.0.data_range()
    }
    async fn universe(&self) -> technic::Result<technic::Universe> {
        self.0.universe().await
    }
    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> technic::Result<Bars> {
        self.0.daily_bars(symbol, range).await
    }
}

const SOURCE: &str = "bench";

/// Friday 27 November 2026, 18:00 New York: the demo data's last session is the newest due.
fn market() -> Market {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-27T18:00:00-05:00").unwrap();
    Market::new(Arc::new(ManualClock::new(at.with_timezone(&chrono::Utc))))
}

/// Every symbol's bars from the provider.
async fn all_bars(p: &SyntheticProvider) -> Vec<(Symbol, Bars)> {
    let mut out = Vec::new();
    for e in p.universe().await.unwrap() {
        let bars = p.daily_bars(&e.symbol, p.data_range()).await.unwrap();
        out.push((e.symbol, bars));
    }
    out
}

/// The same bars in a row-per-bar table.
fn row_per_bar(path: &std::path::Path, bars: &[(Symbol, Bars)]) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE bars (symbol TEXT NOT NULL, day INTEGER NOT NULL, open REAL NOT NULL,
           high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
           PRIMARY KEY (symbol, day)) WITHOUT ROWID;",
    )
    .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO bars VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .unwrap();
        for (s, b) in bars {
            for i in 0..b.len() {
                insert
                    .execute(params![
                        s.as_str(),
                        b.date[i].num_days_from_ce(),
                        b.open[i],
                        b.high[i],
                        b.low[i],
                        b.close[i],
                        b.volume[i]
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    conn
}

/// Batched read of the row-per-bar table: chunks of 500 symbols, rows decoded into `Bars`.
fn load_rows(conn: &Connection, symbols: &[Symbol]) -> usize {
    let mut n = 0;
    for chunk in symbols.chunks(500) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT symbol, day, open, high, low, close, volume FROM bars WHERE symbol IN ({marks}) ORDER BY symbol, day"
        );
        let mut stmt = conn.prepare_cached(&sql).unwrap();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(chunk.iter().map(Symbol::as_str)))
            .unwrap();
        let mut current = String::new();
        let mut bars = Bars::default();
        while let Some(r) = rows.next().unwrap() {
            let s = r.get_ref(0).unwrap().as_str().unwrap();
            if s != current {
                n += bars.len();
                bars = Bars::with_capacity(N_BARS);
                current = s.to_owned();
            }
            let day: i32 = r.get(1).unwrap();
            bars.date
                .push(chrono::NaiveDate::from_num_days_from_ce_opt(day).unwrap());
            bars.open.push(r.get(2).unwrap());
            bars.high.push(r.get(3).unwrap());
            bars.low.push(r.get(4).unwrap());
            bars.close.push(r.get(5).unwrap());
            bars.volume.push(r.get(6).unwrap());
        }
        n += bars.len();
    }
    n
}

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(provider());
    let range = p.data_range();
    let live = Arc::new(LiveSynthetic(provider()));
    let bars = rt.block_on(all_bars(&p));
    let symbols: Vec<Symbol> = bars.iter().map(|(s, _)| s.clone()).collect();
    let store = rt.block_on(async {
        let store = SqliteStore::open(dir.path().join("store.db")).await.unwrap();
        let updates: Vec<BarsUpdate> = bars
            .iter()
            .map(|(s, b)| BarsUpdate {
                replace: false,
                symbol: s.clone(),
                bars: b.clone(),
                fetched_from: range.from,
                fetched_to: range.to,
            })
            .collect();
        store.save_bars_batch(SOURCE, updates).await.unwrap();
        Arc::new(store)
    });
    let rows = row_per_bar(&dir.path().join("rows.db"), &bars);
    drop(bars);

    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("load_batched_5000x504", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(store.load_bars(SOURCE, &symbols, range).await.unwrap().len()) });
    });
    g.bench_function("load_per_symbol_5000x504", |b| {
        b.to_async(&rt).iter(|| async {
            let mut n = 0;
            for s in &symbols {
                n += store
                    .load_bars(SOURCE, std::slice::from_ref(s), range)
                    .await
                    .unwrap()
                    .len();
            }
            black_box(n)
        });
    });
    g.bench_function("row_per_bar_batched_5000x504", |b| {
        b.iter(|| black_box(load_rows(&rows, &symbols)));
    });
    g.bench_function("warm_scan_from_store_5000x504", |b| {
        b.to_async(&rt).iter(|| async {
            let deps = Deps::new(live.clone(), Arc::new(MemoryCache::default()))
                .with_store(store.clone() as Arc<dyn Store>)
                .with_market(market());
            let req = ScanRequest {
                range: Some(DateRange::new(range.from, range.to).unwrap()),
                ..ScanRequest::default()
            };
            let report = scan(&req, &deps, &NoopSink, CancellationToken::new())
                .await
                .unwrap();
            assert_eq!(report.scanned, N_SYMBOLS);
            black_box(report.results.len())
        });
    });
    g.finish();
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
