//! `PostgresStore` tests against a real server: the store contract, round trips, batches, concurrent
//! writers, migrations, query plans, and a server that is down or goes away.
//!
//! The server is `postgres://postgres@127.0.0.1:5432/test` unless `TECHNIC_TEST_POSTGRES_URL` says
//! otherwise. Each test works in a schema of its own (`t_…`, dropped at the end even when the test
//! fails), so tests run in parallel and leave nothing behind. Without a reachable server a test prints
//! `SKIPPED: …` and passes, unless `CI` is set: then it fails.

use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as ChronoDuration, NaiveDate, Utc};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use tokio_postgres::types::Json;

use super::*;
use crate::scan::{ScanRequest, ScanResult, ScanState, Skipped, StageTimings};
use crate::testing::sample_bars;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn base_url() -> String {
    std::env::var("TECHNIC_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

/// The base URL as messages may show it (no password).
fn shown(url: &str) -> String {
    tokio_postgres::Config::from_str(url)
        .map(|c| describe_server(&c))
        .unwrap_or_else(|_| "(unparsable TECHNIC_TEST_POSTGRES_URL)".to_owned())
}

/// A plain connection to the test server, bounded to 5 s.
async fn admin(url: &str) -> std::result::Result<tokio_postgres::Client, String> {
    let connecting = tokio_postgres::connect(url, NoTls);
    let (client, conn) = tokio::time::timeout(Duration::from_secs(5), connecting)
        .await
        .map_err(|_| "no answer within 5 s".to_owned())?
        .map_err(|e| describe(&e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// `url` with `options=-c search_path=<schema>` added.
fn with_search_path(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// A fresh schema on the test server, dropped (with everything in it) when this is dropped, also when
/// the test panics.
struct TestSchema {
    name: String,
    base: String,
}

impl TestSchema {
    /// `None`, after printing why, when the server is not reachable and `CI` is unset.
    async fn new() -> Option<Self> {
        let base = base_url();
        let client = match admin(&base).await {
            Ok(c) => c,
            Err(e) => {
                let msg = format!("PostgreSQL not reachable at {}: {e}", shown(&base));
                assert!(std::env::var_os("CI").is_none(), "{msg} (CI is set: failing)");
                eprintln!("SKIPPED: {msg}");
                return None;
            }
        };
        let name = format!("t_{}", uuid::Uuid::now_v7().simple());
        client
            .batch_execute(&format!("CREATE SCHEMA \"{name}\""))
            .await
            .expect("create the test schema");
        Some(Self { name, base })
    }

    fn url(&self) -> String {
        with_search_path(&self.base, &self.name)
    }

    async fn store(&self) -> PostgresStore {
        PostgresStore::connect(&self.url())
            .await
            .expect("connect to the test schema")
    }

    /// A plain connection whose search_path is this schema.
    async fn client(&self) -> tokio_postgres::Client {
        admin(&self.url()).await.expect("connect")
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let (name, base) = (self.name.clone(), self.base.clone());
        // A runtime of its own: this runs inside the test's runtime, possibly while it unwinds.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let client = admin(&base).await?;
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                    .await
                    .map_err(|e| describe(&e))
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

/// Sets up a schema or returns from the test (skipped).
macro_rules! schema_or_skip {
    () => {
        match TestSchema::new().await {
            Some(s) => s,
            None => return,
        }
    };
}

fn all() -> DateRange {
    DateRange {
        from: NaiveDate::MIN,
        to: NaiveDate::MAX,
    }
}

fn report(id: &str, n_results: usize) -> ScanReport {
    let bars = sample_bars(300, 50.0);
    let entry = crate::model::UniverseEntry::bare(Symbol::new("AAA"));
    let result = crate::scan::score_symbol(&entry, &bars).unwrap();
    ScanReport {
        expected_session: None,
        adjustments: 0,
        freshness: None,
        store_hits: 0,
        matched: n_results,
        regime: crate::screen::Regime::of("SPY", &bars),
        id: id.to_owned(),
        state: ScanState::Complete,
        error: None,
        provider: "test".into(),
        demo: false,
        started_at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
        range: DateRange::new(bars.date[0], *bars.date.last().unwrap()).unwrap(),
        universe_size: n_results + 1,
        scanned: n_results,
        results: (0..n_results)
            .map(|i| ScanResult {
                rank: i + 1,
                symbol: Symbol::new(format!("S{i}")),
                ..result.clone()
            })
            .collect(),
        skipped: vec![Skipped {
            symbol: Symbol::new("BAD"),
            reason: "invalid data in BAD.csv: line 3".into(),
            category: crate::error::Category::Data,
        }],
        filtered: crate::scan::FilterCounts {
            sector: 2,
            ..Default::default()
        },
        timing: StageTimings {
            total_ms: 12.5,
            ..Default::default()
        },
        cache: crate::cache::CacheStats::from_counts(3, 1),
        retries: 0,
        stale: 0,
        provider_calls: Default::default(),
        warnings: Vec::new(),
    }
}

#[tokio::test]
async fn postgres_store_keeps_the_contract() {
    let db = schema_or_skip!();
    let store = db.store().await;
    crate::testing::store_contract(&store).await;
}

#[tokio::test]
async fn bars_round_trip_across_years_and_upsert_by_date() {
    let db = schema_or_skip!();
    let store = db.store().await;
    let a = Symbol::new("A");
    // 400 daily bars from 2024-01-01 span two calendar years (two blocks).
    let bars = sample_bars(400, 10.0);
    store.save_bars("test", &a, &bars).await.unwrap();
    let mut changed = bars.tail(5);
    changed.close.iter_mut().for_each(|c| *c += 1.0);
    store.save_bars("test", &a, &changed).await.unwrap();
    let got = store
        .load_bars("test", &[a.clone(), Symbol::new("B")], all())
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[&a].len(), 400);
    assert_eq!(got[&a].date, bars.date);
    assert_eq!(&got[&a].close[395..], &changed.close[..]);
    assert_eq!(got[&a].close[..395], bars.close[..395]);
    let r = DateRange::new(bars.date[10], bars.date[19]).unwrap();
    let part = store
        .load_bars("test", std::slice::from_ref(&a), r)
        .await
        .unwrap();
    assert_eq!(part[&a], bars.slice_range(r));
    // A range in the second year only reads that year's block.
    let r2 = DateRange::new(bars.date[370], bars.date[380]).unwrap();
    let part = store
        .load_bars("test", std::slice::from_ref(&a), r2)
        .await
        .unwrap();
    assert_eq!(part[&a], bars.slice_range(r2));
    let ext = store.bar_extents("test", std::slice::from_ref(&a)).await.unwrap()[&a];
    assert_eq!(
        (ext.first, ext.last, ext.n_bars),
        (bars.date[0], bars.date[399], 400)
    );
    let blocks: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM bar_blocks WHERE symbol = 'A'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(blocks, 2, "one block per symbol and year");
}

#[tokio::test]
async fn a_batch_is_one_transaction_with_a_few_statements() {
    let db = schema_or_skip!();
    let store = db.store().await;
    let symbols: Vec<Symbol> = (0..1200).map(|i| Symbol::new(format!("S{i:04}"))).collect();
    let updates: Vec<BarsUpdate> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let bars = sample_bars(30, 10.0 + i as f64);
            BarsUpdate {
                replace: false,
                symbol: s.clone(),
                fetched_from: bars.date[0],
                fetched_to: bars.date[29],
                bars,
            }
        })
        .collect();
    store.save_bars_batch("test", updates.clone()).await.unwrap();
    let p = store.profile();
    assert_eq!(p.count("commit"), 1, "one transaction for the batch");
    assert_eq!(p.count("load_existing_blocks"), 1);
    assert_eq!(p.count("upsert_blocks"), 2, "1200 blocks in statements of 1000");
    assert_eq!(p.count("upsert_symbols"), 1);
    let got = store.load_bars("test", &symbols, all()).await.unwrap();
    assert_eq!(got.len(), 1200);
    assert_eq!(got[&symbols[700]], updates[700].bars);
    assert_eq!(p.count("load_bar_blocks"), 2, "1200 symbols in reads of 1000");
    let extents = store.bar_extents("test", &symbols).await.unwrap();
    assert_eq!(extents.len(), 1200);
    assert_eq!(extents[&symbols[3]].n_bars, 30);
    // Writing the same batch again merges into what is there: nothing doubles.
    store.save_bars_batch("test", updates).await.unwrap();
    let again = store.load_bars("test", &symbols[..3], all()).await.unwrap();
    assert_eq!(again[&symbols[1]].len(), 30);
}

#[tokio::test]
async fn updates_of_one_symbol_in_one_batch_apply_in_order() {
    let db = schema_or_skip!();
    let store = db.store().await;
    let a = Symbol::new("A");
    let bars = sample_bars(40, 20.0);
    store.save_bars("src", &a, &bars).await.unwrap();
    let adjusted = sample_bars(10, 3.0);
    let later = sample_bars(20, 3.0).tail(10);
    let update = |replace, bars: &Bars| BarsUpdate {
        symbol: a.clone(),
        replace,
        bars: bars.clone(),
        fetched_from: bars.date[0],
        fetched_to: *bars.date.last().unwrap(),
    };
    // Some new bars, then a replacement, then more bars: the replacement drops everything before it.
    store
        .save_bars_batch(
            "src",
            vec![
                update(false, &bars.tail(3)),
                update(true, &adjusted),
                update(false, &later),
            ],
        )
        .await
        .unwrap();
    let got = store
        .load_bars("src", std::slice::from_ref(&a), all())
        .await
        .unwrap();
    assert_eq!(got[&a], sample_bars(20, 3.0));
    let e = store.bar_extents("src", std::slice::from_ref(&a)).await.unwrap()[&a];
    assert_eq!(
        (e.n_bars, e.fetched_from, e.fetched_to),
        (20, adjusted.date[0], later.date[9])
    );
    // A replacement with no bars leaves nothing.
    store
        .save_bars_batch(
            "src",
            vec![BarsUpdate {
                symbol: a.clone(),
                replace: true,
                bars: Bars::default(),
                fetched_from: bars.date[0],
                fetched_to: bars.date[0],
            }],
        )
        .await
        .unwrap();
    assert!(
        store
            .load_bars("src", std::slice::from_ref(&a), all())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .bar_extents("src", std::slice::from_ref(&a))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn fetched_range_is_remembered_even_without_new_bars() {
    let db = schema_or_skip!();
    let store = db.store().await;
    let a = Symbol::new("A");
    let bars = sample_bars(10, 5.0);
    store.save_bars("test", &a, &bars).await.unwrap();
    let later = bars.date[9] + ChronoDuration::days(3);
    let update = BarsUpdate {
        replace: false,
        symbol: a.clone(),
        bars: Bars::default(),
        fetched_from: bars.date[0],
        fetched_to: later,
    };
    store.save_bars_batch("test", vec![update]).await.unwrap();
    let ext = store.bar_extents("test", std::slice::from_ref(&a)).await.unwrap()[&a];
    assert_eq!(ext.last, bars.date[9]);
    assert_eq!(ext.fetched_to, later);
    // Extreme dates (a caller's "everything") are stored and read back.
    let update = BarsUpdate {
        replace: false,
        symbol: a.clone(),
        bars: Bars::default(),
        fetched_from: NaiveDate::MIN,
        fetched_to: NaiveDate::MAX,
    };
    store.save_bars_batch("test", vec![update]).await.unwrap();
    let ext = store.bar_extents("test", std::slice::from_ref(&a)).await.unwrap()[&a];
    assert_eq!(
        (ext.fetched_from, ext.fetched_to),
        (NaiveDate::MIN, NaiveDate::MAX)
    );
}

#[tokio::test]
async fn runs_round_trip_and_are_seen_by_every_server() {
    let db = schema_or_skip!();
    let (one, other) = (db.store().await, db.store().await);
    let first = report("scan-1", 3);
    let mut second = report("scan-2", 2);
    second.started_at += ChronoDuration::seconds(5);
    second.retries = 7;
    second.warnings = vec!["Cache unavailable — running without caching".into()];
    second.expected_session = NaiveDate::from_ymd_opt(2026, 11, 25);
    second.freshness = Some("as of the 2026-11-25 session (up to date)".into());
    one.save_scan(&first).await.unwrap();
    one.save_scan_run(&ScanRequest::default(), &second).await.unwrap();
    // Saving again replaces (results are not duplicated).
    one.save_scan(&first).await.unwrap();
    // Another server (another pool) sees the same history.
    assert_eq!(other.scan("scan-1").await.unwrap().unwrap(), first);
    assert!(other.scan("nope").await.unwrap().is_none());
    let recent = other.recent_scans(10).await.unwrap();
    assert_eq!(
        recent.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["scan-2", "scan-1"]
    );
    assert_eq!(recent[0], second);
    let summaries: Vec<RunSummary> = recent.iter().map(RunSummary::of).collect();
    assert_eq!(other.recent_runs(10).await.unwrap(), summaries);
    assert_eq!(other.recent_runs(1).await.unwrap(), summaries[..1]);
    let counts: (i64, i64) = {
        let row = db
            .client()
            .await
            .query_one(
                "SELECT (SELECT coalesce(sum(n_results), 0) FROM scan_results), \
                 (SELECT count(*) FROM scan_skipped)",
                &[],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(counts, (5, 2));
    // A large run goes in statements of at most a thousand results (whole blocks of 128).
    let big = report("big", 2500);
    one.save_scan(&big).await.unwrap();
    assert_eq!(one.profile().count("insert_results"), 1 + 1 + 1 + 3);
    assert_eq!(other.scan("big").await.unwrap().unwrap(), big);
}

#[tokio::test]
async fn metrics_alerts_access_counts_and_cached_summary() {
    let db = schema_or_skip!();
    let store = db.store().await;
    let t0 = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    for (i, hit) in [0.9, 0.4, 0.7].into_iter().enumerate() {
        let sample = MetricSample {
            at: t0 + ChronoDuration::minutes(5 * i as i64),
            cache_hit_rate: hit,
            avg_response_ms: 10.0 * (i + 1) as f64,
            active_connections: i as u64,
            requests: 100,
            p95_cached_ms: 1.0,
            p95_uncached_ms: 20.0,
            ..MetricSample::default()
        };
        store.save_metric_sample(&sample).await.unwrap();
    }
    let alert = Alert {
        at: t0 + ChronoDuration::minutes(5),
        rule: "low_cache_hit_rate".into(),
        severity: Severity::Warning,
        value: 0.4,
        threshold: 0.5,
        message: "Cache hit rate 40.0% is below 50%".into(),
    };
    store.save_alert(&alert).await.unwrap();
    assert_eq!(store.alerts(t0).await.unwrap(), vec![alert.clone()]);
    assert!(
        store
            .alerts(t0 + ChronoDuration::minutes(6))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .metric_samples(t0 + ChronoDuration::minutes(5))
            .await
            .unwrap()
            .len(),
        2
    );
    // The earliest and latest instants a caller may pass are fine.
    assert_eq!(
        store
            .metric_samples(DateTime::<Utc>::MIN_UTC)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(
        store
            .metric_samples(DateTime::<Utc>::MAX_UTC)
            .await
            .unwrap()
            .is_empty()
    );

    let summary = store.metric_summary(t0).await.unwrap();
    assert_eq!(summary.n_samples, 3);
    let queries = store.profile().count("metric_samples");
    assert_eq!(
        store.metric_summary(t0).await.unwrap(),
        summary,
        "served from memory"
    );
    assert_eq!(store.profile().count("metric_samples"), queries);
    store.save_alert(&alert).await.unwrap();
    assert_eq!(
        store.metric_summary(t0).await.unwrap().alerts[0].count,
        2,
        "a write clears it"
    );

    let (a, b) = (Symbol::new("A"), Symbol::new("B"));
    store
        .record_access(&[a.clone(), b.clone(), b.clone()])
        .await
        .unwrap();
    store.record_access(std::slice::from_ref(&a)).await.unwrap();
    store.record_access(std::slice::from_ref(&b)).await.unwrap();
    assert_eq!(store.access_counts(10).await.unwrap(), vec![(b, 3), (a, 2)]);
    assert!(
        store
            .query_stats()
            .iter()
            .any(|q| q.name == "record_access" && q.count == 3)
    );
}

#[tokio::test]
async fn retention_prunes_old_runs_samples_and_alerts() {
    let db = schema_or_skip!();
    let store = db.store().await;
    let old = report("old", 2);
    let mut new = report("new", 2);
    new.started_at += ChronoDuration::days(40);
    store.save_scan(&old).await.unwrap();
    store.save_scan(&new).await.unwrap();
    for days in [0, 40] {
        let at = old.started_at + ChronoDuration::days(days);
        let sample = MetricSample {
            at,
            ..MetricSample::default()
        };
        store.save_metric_sample(&sample).await.unwrap();
    }
    let pruned = store
        .prune(old.started_at + ChronoDuration::days(10))
        .await
        .unwrap();
    assert_eq!((pruned.runs, pruned.samples, pruned.alerts), (1, 1, 0));
    assert!(store.scan("old").await.unwrap().is_none());
    assert!(store.scan("new").await.unwrap().is_some());
    let left: i64 = db
        .client()
        .await
        .query_one("SELECT coalesce(sum(n_results), 0) FROM scan_results", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 2, "the old run's results went with it");
}

/// The dates of `full` that server `w` writes for the shared symbols (the third crosses a year).
fn window(full: &Bars, w: usize) -> DateRange {
    DateRange::new(full.date[w * 130], full.date[w * 130 + 110]).unwrap()
}

/// Three servers (three pools) on one fresh schema, migrating and writing at once: bars of their own
/// symbols and of shared ones (each server a different window of dates), runs and access counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn three_servers_writing_at_once_lose_nothing() {
    let db = schema_or_skip!();
    let url = db.url();
    let full = sample_bars(400, 10.0);
    let shared: Vec<Symbol> = (0..10).map(|s| Symbol::new(format!("SHARED{s}"))).collect();
    let mut tasks = Vec::new();
    for w in 0..3 {
        let (url, full, shared) = (url.clone(), full.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let store = PostgresStore::connect(&url).await.unwrap();
            for i in 0..10 {
                let mut updates: Vec<BarsUpdate> = (0..30)
                    .map(|s| BarsUpdate {
                        symbol: Symbol::new(format!("W{w}S{s}")),
                        replace: false,
                        bars: sample_bars(60 + i, 10.0 + s as f64),
                        fetched_from: NaiveDate::MIN,
                        fetched_to: NaiveDate::MIN,
                    })
                    .collect();
                let mine = full.slice_range(window(&full, w));
                updates.extend(shared.iter().map(|s| BarsUpdate {
                    symbol: s.clone(),
                    replace: false,
                    bars: mine.clone(),
                    fetched_from: mine.date[0],
                    fetched_to: *mine.date.last().unwrap(),
                }));
                store.save_bars_batch("src", updates).await.unwrap();
                store
                    .save_scan(&report(&crate::scan::new_scan_id(), 20))
                    .await
                    .unwrap();
                store.record_access(&[Symbol::new("AAA")]).await.unwrap();
                let _ = store.recent_scans(5).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.expect("no server failed");
    }
    let store = db.store().await;
    assert_eq!(store.recent_runs(1000).await.unwrap().len(), 30, "every run kept");
    assert_eq!(store.recent_scans(1000).await.unwrap().len(), 30);
    assert_eq!(store.access_counts(1).await.unwrap()[0].1, 30);
    let own: Vec<Symbol> = (0..3)
        .flat_map(|w| (0..30).map(move |s| Symbol::new(format!("W{w}S{s}"))))
        .collect();
    let extents = store.bar_extents("src", &own).await.unwrap();
    assert_eq!(extents.len(), 90);
    assert!(
        extents.values().all(|e| e.n_bars == 69),
        "the last and longest write won"
    );
    // Every server's window of the shared symbols is there: no merge was lost.
    let mut expected: Vec<NaiveDate> = (0..3)
        .flat_map(|w| full.slice_range(window(&full, w)).date)
        .collect();
    expected.sort_unstable();
    expected.dedup();
    let got = store.load_bars("src", &shared, all()).await.unwrap();
    assert_eq!(got.len(), 10);
    for bars in got.values() {
        assert_eq!(bars.date, expected);
    }
}

#[tokio::test]
async fn concurrent_first_connects_migrate_once() {
    let db = schema_or_skip!();
    let url = db.url();
    let connects = (0..4).map(|_| PostgresStore::connect(&url));
    for store in futures::future::join_all(connects).await {
        assert_eq!(store.unwrap().schema_version().await.unwrap(), SCHEMA_VERSION);
    }
    let client = db.client().await;
    let rows = client
        .query("SELECT version FROM technic_schema_version ORDER BY version", &[])
        .await
        .unwrap();
    let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        versions,
        (1..=SCHEMA_VERSION).collect::<Vec<_>>(),
        "each migration once"
    );
    // Connecting again changes nothing and takes no lock.
    let store = db.store().await;
    assert_eq!(store.profile().count("migrate_lock"), 0);
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let db = schema_or_skip!();
    drop(db.store().await);
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO technic_schema_version VALUES (99, 0, 'technic 99'); \
             CREATE TABLE future (x int)",
        )
        .await
        .unwrap();
    let err = PostgresStore::connect(&db.url()).await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(err.to_string().contains("schema version 99, newer"), "{err}");
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 12, "nothing created or dropped");
}

#[tokio::test]
async fn a_missing_schema_is_a_clear_error() {
    let Some(db) = TestSchema::new().await else {
        return;
    };
    let url = with_search_path(&db.base, "t_no_such_schema");
    let err = PostgresStore::connect(&url).await.unwrap_err();
    assert!(
        err.to_string().contains("no schema of the search_path exists"),
        "{err}"
    );
}

/// The plan PostgreSQL picks for `sql` with `args` (SQL literals), one line per node.
async fn plan(client: &tokio_postgres::Client, sql: &str, args: &str) -> String {
    client
        .batch_execute(&format!("PREPARE technic_plan AS {sql}"))
        .await
        .unwrap();
    let rows = client
        .query(&format!("EXPLAIN EXECUTE technic_plan({args})"), &[])
        .await
        .unwrap();
    client.batch_execute("DEALLOCATE technic_plan").await.unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn hot_queries_use_their_indexes() {
    let db = schema_or_skip!();
    let store = db.store().await;
    // The store's own sessions, with the settings it gives them.
    let client = store.inner.connection().await.unwrap();
    // A store of realistic shape: 20 000 symbols over three years, 2 000 runs of 20 results (in a
    // block, and as JSON rows of an older schema), two weeks
    // of samples and alerts, 20 000 access counts. Then fresh statistics, as autovacuum would keep.
    client
        .batch_execute(
            "INSERT INTO bar_blocks SELECT 'src', 'S' || lpad(i::text, 5, '0'), y, 1, 0, 0, decode(repeat('00', 18), 'hex') \
               FROM generate_series(1, 20000) i, generate_series(2022, 2024) y;
             INSERT INTO symbols SELECT 'src', 'S' || lpad(i::text, 5, '0'), 0, 0, 3, 0, 0, 0 \
               FROM generate_series(1, 20000) i;
             INSERT INTO scan_runs SELECT 'run-' || i, 1700000000000 + i * 60000, 0, 'complete', NULL, 'p', false, \
               0, 0, 0, 0, 20, 0, 1.0, NULL, '{}', '{}', '{}', '{}' FROM generate_series(1, 2000) i;
             INSERT INTO scan_results SELECT 'run-' || i, 0, 20, decode('0100', 'hex') \
               FROM generate_series(1, 2000) i;
             INSERT INTO scan_results_json SELECT 'run-' || i, r, 'S' || r, 50, 'buy', '{}' \
               FROM generate_series(1, 2000) i, generate_series(1, 20) r;
             INSERT INTO metric_samples (at_ms, cache_hit_rate, avg_response_ms, active_connections, error_rate, \
               requests, p95_cached_ms, p95_uncached_ms) SELECT 1700000000000 + i * 60000, 0.5, 1, 0, 0, 1, 1, 1 \
               FROM generate_series(1, 20000) i;
             INSERT INTO alerts (at_ms, rule, severity, value, threshold, message) \
               SELECT 1700000000000 + i * 60000, 'r', 'warning', 1, 1, 'm' FROM generate_series(1, 20000) i;
             INSERT INTO symbol_access SELECT 'S' || i, i % 977, 0 FROM generate_series(1, 20000) i;
             ANALYZE",
        )
        .await
        .unwrap();
    let symbols = |n: usize, step: usize| {
        let names: Vec<String> = (0..n).map(|i| format!("'S{:05}'", 1 + i * step)).collect();
        format!("ARRAY[{}]::text[]", names.join(","))
    };
    let ints = |n: usize, v: i32| format!("ARRAY[{}]::int4[]", vec![v.to_string(); n].join(","));
    let many = symbols(500, 37);
    let pairs = format!("{}, {}", symbols(300, 53), ints(300, 2024));
    let spans = format!("{}, {}, {}", symbols(300, 53), ints(300, 0), ints(300, 0));
    let since = 1_700_000_000_000i64 + 19_970 * 60_000;
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "load_bar_blocks (500 of 20 000 symbols, two years)",
            SQL_LOAD_BLOCKS,
            format!("'src', {many}, 2023, 2024"),
            "bar_blocks_pkey",
        ),
        (
            "bar_extents (500 symbols)",
            SQL_EXTENTS,
            format!("'src', {many}"),
            "symbols_pkey",
        ),
        (
            "load_existing_blocks (300 pairs)",
            SQL_EXISTING_BLOCKS,
            format!("'src', {pairs}"),
            "bar_blocks_pkey",
        ),
        (
            "upsert_symbols (spans from the blocks)",
            SQL_UPSERT_SYMBOLS,
            format!("'src', {spans}, 0"),
            "bar_blocks_pkey",
        ),
        (
            "recent_runs",
            SQL_RECENT_RUNS,
            "20".to_owned(),
            "scan_runs_by_start",
        ),
        (
            "recent_summaries",
            SQL_RECENT_SUMMARIES,
            "20".to_owned(),
            "Index Scan Backward using scan_runs_by_start",
        ),
        (
            "load_results",
            SQL_RESULTS,
            "'run-1500'".to_owned(),
            "scan_results_pkey",
        ),
        (
            "load_results_json",
            SQL_RESULTS_JSON,
            "'run-1500'".to_owned(),
            "scan_results_json_pkey",
        ),
        (
            "metric_samples (the last half hour)",
            SQL_SAMPLES,
            since.to_string(),
            "Index Scan using metric_samples_by_time",
        ),
        (
            "alerts (the last half hour)",
            SQL_ALERTS,
            since.to_string(),
            "Index Scan using alerts_by_time",
        ),
        (
            "access_counts",
            SQL_ACCESS_COUNTS,
            "10".to_owned(),
            "symbol_access_by_count",
        ),
    ];
    let mut report = String::new();
    for (name, sql, args, expected) in cases {
        let got = plan(&client, sql, &args).await;
        report.push_str(&format!("-- {name}\n{got}\n"));
        assert!(
            got.contains(expected),
            "{name}\nplan:\n{got}\nexpected: {expected}"
        );
        assert!(!got.contains("Seq Scan on"), "{name} reads a whole table:\n{got}");
        if !name.starts_with("load_bar_blocks") && !name.starts_with("upsert_symbols") {
            assert!(!got.contains("Sort"), "{name} sorts:\n{got}");
        }
    }
    eprintln!("{report}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_store_error_soon() {
    let url = "postgres://technic:s3cret-pw@127.0.0.1:1/test";
    let started = Instant::now();
    let err = PostgresStore::connect(url).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    let Error::Store { detail } = &err else {
        panic!("expected a store error, got {err:?}");
    };
    assert!(
        detail.contains("cannot reach PostgreSQL at technic@127.0.0.1:1/test"),
        "{detail}"
    );
    assert!(!detail.contains("s3cret"), "{detail}");

    // A store made while the server is down answers every call with the same error, and no panic.
    let store = PostgresStore::connect_lazy(url, PostgresOptions::default()).unwrap();
    assert!(!format!("{store:?}").contains("s3cret"), "{store:?}");
    assert_eq!(store.server(), "technic@127.0.0.1:1/test");
    let a = [Symbol::new("A")];
    let t0 = DateTime::UNIX_EPOCH;
    let errors = vec![
        store.load_bars("src", &a, all()).await.map(drop),
        store.bar_extents("src", &a).await.map(drop),
        store.save_bars("src", &a[0], &sample_bars(3, 1.0)).await,
        store.save_scan(&report("r", 1)).await,
        store.scan("r").await.map(drop),
        store.recent_runs(5).await.map(drop),
        store.recent_scans(5).await.map(drop),
        store.save_metric_sample(&MetricSample::default()).await,
        store.metric_samples(t0).await.map(drop),
        store.metric_summary(t0).await.map(drop),
        store.record_access(&a).await,
        store.access_counts(5).await.map(drop),
        store.prune(t0).await.map(drop),
        store.screens().await.map(drop),
        store.delete_screen("x").await.map(drop),
        store.ping().await,
    ];
    for e in errors {
        let e = e.unwrap_err();
        assert!(
            matches!(&e, Error::Store { detail } if detail.contains("127.0.0.1:1") && !detail.contains("s3cret")),
            "{e:?}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        PostgresStore::connect("mysql://nope").await.is_err(),
        "a URL that is not PostgreSQL's is refused"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    // Accepts connections and says nothing, like a server behind a dead network path.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let options = PostgresOptions {
        connect_timeout: Duration::from_secs(1),
        ..PostgresOptions::default()
    };
    let started = Instant::now();
    let url = format!("postgres://postgres@127.0.0.1:{port}/test");
    let err = PostgresStore::connect_with(&url, options).await.unwrap_err();
    let took = started.elapsed();
    silent.abort();
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// A TCP relay to the test server that can be stopped and started again on the same port, standing in
/// for a PostgreSQL server that goes down and comes back.
struct Relay {
    port: u16,
    target: String,
    tasks: Vec<JoinHandle<()>>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: String, port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Default::default();
        let held = conns.clone();
        let to = target.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = to.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock().unwrap().push(conn);
            }
        });
        Self {
            port,
            target,
            tasks: vec![accept],
            conns,
        }
    }

    /// Stops listening and cuts every relayed connection.
    fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn the_server_going_away_and_back_loses_nothing() {
    let db = schema_or_skip!();
    let config = tokio_postgres::Config::from_str(&db.base).unwrap();
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let target = format!("{host}:{}", config.get_ports().first().copied().unwrap_or(5432));
    let mut relay = Relay::start(target, 0).await;
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| {
            let hex: String = p.iter().map(|b| format!("%{b:02X}")).collect();
            format!(":{hex}")
        })
        .unwrap_or_default();
    let dbname = config.get_dbname().unwrap_or(user);
    let url = with_search_path(
        &format!("postgres://{user}{password}@127.0.0.1:{}/{dbname}", relay.port),
        &db.name,
    );
    let options = PostgresOptions {
        connect_timeout: Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect_with(&url, options).await.unwrap();
    let a = Symbol::new("A");
    let bars = sample_bars(50, 10.0);
    store.save_bars("src", &a, &bars).await.unwrap();
    store.save_scan(&report("before", 3)).await.unwrap();

    relay.stop();
    let started = Instant::now();
    let err = store
        .load_bars("src", std::slice::from_ref(&a), all())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{}", relay.port)),
        "{err}"
    );
    assert!(store.save_scan(&report("during", 3)).await.is_err());
    assert!(store.recent_runs(5).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    let port = relay.port;
    let target = relay.target.clone();
    drop(relay);
    let _relay = Relay::start(target, port).await;
    // The pool drops the broken connections and opens new ones: everything stored before is there.
    let got = store
        .load_bars("src", std::slice::from_ref(&a), all())
        .await
        .unwrap();
    assert_eq!(got[&a], bars);
    assert!(store.scan("before").await.unwrap().is_some());
    store.save_scan(&report("after", 3)).await.unwrap();
    assert_eq!(store.recent_runs(10).await.unwrap().len(), 2);
}

#[test]
fn lock_keys_are_stable_and_distinct() {
    // Fixed across builds and machines: servers of different versions must agree.
    assert_eq!(bars::lock_key("src", "AAPL"), bars::lock_key("src", "AAPL"));
    assert_ne!(bars::lock_key("src", "AAPL"), bars::lock_key("src2", "AAPL"));
    assert_ne!(bars::lock_key("srcA", "B"), bars::lock_key("src", "AB"));
    assert_eq!(bars::lock_key("", ""), 4_435_421_587_626_583_983);
}

/// With a limit on runs, saving a run deletes the oldest beyond it (by start), their results with them.
#[tokio::test]
async fn max_runs_keeps_only_the_newest_runs() {
    let db = schema_or_skip!();
    let store = db.store().await;
    store.set_max_runs(Some(3));
    let base = report("r0", 2).started_at;
    for i in 0..5i64 {
        let mut r = report(&format!("r{i}"), 2);
        r.started_at = base + ChronoDuration::minutes(i);
        if i == 4 {
            store.save_scan_run(&ScanRequest::default(), &r).await.unwrap();
        } else {
            store.save_scan(&r).await.unwrap();
        }
    }
    let ids: Vec<String> = store
        .recent_runs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["r4", "r3", "r2"]);
    assert!(store.scan("r1").await.unwrap().is_none());
    let left: i64 = db
        .client()
        .await
        .query_one("SELECT coalesce(sum(n_results), 0) FROM scan_results", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 6, "the deleted runs' results went with them");
}

/// A 5000-symbol scan takes at most 600 bytes per result on the server: the result table with its TOAST
/// table, indexes and free-space map (`pg_total_relation_size`).
#[tokio::test]
async fn a_5000_symbol_scan_stores_at_most_600_bytes_per_result() {
    let db = schema_or_skip!();
    let store = db.store().await;
    let mut run = report("0190a0b2-7c3e-7d11-9a2b-3c4d5e6f7a8b", 0);
    run.results = crate::testing::demo_results(5000).await;
    assert_eq!(run.results.len(), 5000);
    store.save_scan(&run).await.unwrap();
    let client = db.client().await;
    let bytes: i64 = client
        .query_one("SELECT pg_total_relation_size('scan_results')", &[])
        .await
        .unwrap()
        .get(0);
    let per_result = bytes as f64 / 5000.0;
    eprintln!("scan_results: {per_result:.0} bytes per result ({bytes} bytes)");
    assert_eq!(store.scan(&run.id).await.unwrap().unwrap(), run);
    assert!(per_result <= 600.0, "{per_result:.0} bytes per result");
}

/// A schema of version 1 (results as JSONB rows) migrates to the current version with its runs readable
/// as saved; saving such a run again moves its results into blocks.
#[tokio::test]
async fn a_version_1_schema_is_upgraded_keeping_its_runs_readable() {
    let db = schema_or_skip!();
    let old = report("old-run", 3);
    let client = db.client().await;
    client.batch_execute(schema::MIGRATIONS[0]).await.unwrap();
    client
        .batch_execute(
            "CREATE TABLE technic_schema_version (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL, \
             applied_by TEXT NOT NULL); INSERT INTO technic_schema_version VALUES (1, 0, 'technic 0.1')",
        )
        .await
        .unwrap();
    let extra = serde_json::json!({ "matched": old.matched, "regime": old.regime });
    client
        .execute(
            "INSERT INTO scan_runs VALUES ($1, $2, $2, 'complete', NULL, 'test', false, $3, $4, $5, $6, 3, 1, \
             12.5, NULL, $7, $8, $9, $10)",
            &[
                &old.id,
                &ms(old.started_at),
                &day(old.range.from),
                &day(old.range.to),
                &(old.universe_size as i64),
                &(old.scanned as i64),
                &Json(&old.timing),
                &Json(&old.filtered),
                &Json(&old.cache),
                &Json(&extra),
            ],
        )
        .await
        .unwrap();
    for r in &old.results {
        client
            .execute(
                "INSERT INTO scan_results VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &old.id,
                    &(r.rank as i64),
                    &r.symbol.as_str(),
                    &r.tech_rating,
                    &r.signal.as_str(),
                    &Json(r),
                ],
            )
            .await
            .unwrap();
    }
    let s = &old.skipped[0];
    client
        .execute(
            "INSERT INTO scan_skipped VALUES ($1, 0, $2, 'data', $3)",
            &[&old.id, &s.symbol.as_str(), &s.reason],
        )
        .await
        .unwrap();
    let store = db.store().await;
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.scan("old-run").await.unwrap().unwrap(), old);
    let mut new = report("new-run", 2);
    new.started_at += ChronoDuration::minutes(1);
    store.save_scan(&new).await.unwrap();
    assert_eq!(store.scan("new-run").await.unwrap().unwrap(), new);
    assert_eq!(store.scan("old-run").await.unwrap().unwrap(), old);
    store.save_scan(&old).await.unwrap();
    assert_eq!(store.scan("old-run").await.unwrap().unwrap(), old);
    let counts = client
        .query_one(
            "SELECT (SELECT count(*) FROM scan_results_json), \
             (SELECT coalesce(sum(n_results), 0) FROM scan_results)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((counts.get::<_, i64>(0), counts.get::<_, i64>(1)), (0, 5));
}
