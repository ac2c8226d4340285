//! `SqliteStore` tests: round trips, batched reads, query plans, corrupt and newer files, summaries.

use chrono::{Duration as ChronoDuration, NaiveDate};

use super::*;
use crate::scan::{ScanRequest, ScanResult, ScanState, Skipped, StageTimings};
use crate::testing::sample_bars;

fn all() -> DateRange {
    DateRange {
        from: NaiveDate::MIN,
        to: NaiveDate::MAX,
    }
}

async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    (dir, store)
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
async fn sqlite_store_keeps_the_contract() {
    let (_dir, store) = temp_store().await;
    crate::testing::store_contract(&store).await;
}

#[tokio::test]
async fn bars_round_trip_across_years_and_upsert_by_date() {
    let (_dir, store) = temp_store().await;
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
    // A range inside one year.
    let r = DateRange::new(bars.date[10], bars.date[19]).unwrap();
    assert_eq!(
        store
            .load_bars("test", std::slice::from_ref(&a), r)
            .await
            .unwrap()[&a],
        bars.slice_range(r)
    );
    let ext = store.bar_extents("test", std::slice::from_ref(&a)).await.unwrap()[&a];
    assert_eq!(
        (ext.first, ext.last, ext.n_bars),
        (bars.date[0], bars.date[399], 400)
    );
}

#[tokio::test]
async fn batched_load_uses_one_query_per_chunk_of_symbols() {
    let (_dir, store) = temp_store().await;
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
    assert_eq!(
        store.profile().count("commit"),
        1,
        "one transaction for the batch"
    );
    let got = store.load_bars("test", &symbols, all()).await.unwrap();
    assert_eq!(got.len(), 1200);
    assert_eq!(got[&symbols[700]], updates[700].bars);
    // 1200 symbols in chunks of 500: three queries, not 1200.
    assert_eq!(store.profile().count("load_bar_blocks"), 3);
    let extents = store.bar_extents("test", &symbols).await.unwrap();
    assert_eq!(extents.len(), 1200);
    assert_eq!(store.profile().count("bar_extents"), 3);
}

#[tokio::test]
async fn fetched_range_is_remembered_even_without_new_bars() {
    let (_dir, store) = temp_store().await;
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
}

#[tokio::test]
async fn scans_round_trip_with_request_results_and_skips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let first = report("scan-1", 3);
    let mut second = report("scan-2", 2);
    second.started_at += ChronoDuration::seconds(5);
    store.save_scan(&first).await.unwrap();
    store
        .save_scan_run(&ScanRequest::default(), &second)
        .await
        .unwrap();
    // Saving again replaces (results are not duplicated).
    store.save_scan(&first).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.scan("scan-1").await.unwrap().unwrap(), first);
    assert!(store.scan("nope").await.unwrap().is_none());
    let recent = store.recent_scans(10).await.unwrap();
    assert_eq!(
        recent.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["scan-2", "scan-1"]
    );
    assert_eq!(recent[0], second);
    // Summaries read no results but say the same.
    let summaries: Vec<RunSummary> = recent.iter().map(RunSummary::of).collect();
    assert_eq!(store.recent_runs(10).await.unwrap(), summaries);
    assert_eq!(summaries[1].skipped, 1);
}

#[tokio::test]
async fn metrics_alerts_access_counts_and_cached_summary() {
    let (_dir, store) = temp_store().await;
    let t0 = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
    for (i, hit) in [0.9, 0.4, 0.7].into_iter().enumerate() {
        let sample = MetricSample {
            at: t0 + ChronoDuration::minutes(5 * i as i64),
            cache_hit_rate: hit,
            avg_response_ms: 10.0 * (i + 1) as f64,
            active_connections: i as u64,
            error_rate: 0.0,
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
    let samples = store
        .metric_samples(t0 + ChronoDuration::minutes(5))
        .await
        .unwrap();
    assert_eq!(samples.len(), 2);

    let summary = store.metric_summary(t0).await.unwrap();
    assert_eq!(summary.n_samples, 3);
    let hit = summary.cache_hit_rate.unwrap();
    assert_eq!((hit.min, hit.max, hit.first, hit.last), (0.4, 0.9, 0.9, 0.7));
    assert!((hit.avg - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(summary.alerts.len(), 1);
    assert_eq!(summary.alerts[0].count, 1);
    // Served from the TTL cache: no new query.
    let queries = store.profile().count("metric_samples");
    assert_eq!(store.metric_summary(t0).await.unwrap(), summary);
    assert_eq!(store.profile().count("metric_samples"), queries);
    // A write clears the cache.
    store.save_alert(&alert).await.unwrap();
    assert_eq!(store.metric_summary(t0).await.unwrap().alerts[0].count, 2);
    assert_eq!(store.profile().count("metric_samples"), queries + 1);

    let (a, b) = (Symbol::new("A"), Symbol::new("B"));
    store.record_access(&[a.clone(), b.clone()]).await.unwrap();
    store.record_access(std::slice::from_ref(&b)).await.unwrap();
    assert_eq!(store.access_counts(10).await.unwrap(), vec![(b, 2), (a, 1)]);
    assert!(
        store
            .query_stats()
            .iter()
            .any(|q| q.name == "record_access" && q.count == 3)
    );
}

/// The plan SQLite picks for `sql`, one detail line per step.
fn plan(conn: &Connection, sql: &str, params: &[Value]) -> String {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = stmt
        .query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn hot_queries_use_their_indexes() {
    let (_dir, store) = temp_store().await;
    let conn = store.inner.conn.lock().unwrap();
    let text = |s: &str| Value::Text(s.to_owned());
    let int = Value::Integer;
    let cases: Vec<(String, Vec<Value>, &str)> = vec![
        (
            with_in_list(SQL_LOAD_BLOCKS, 2),
            vec![text("src"), text("A"), text("B"), int(2023), int(2024)],
            "SEARCH bar_blocks USING PRIMARY KEY (source=? AND symbol=? AND year>? AND year<?)",
        ),
        (
            with_in_list(SQL_EXTENTS, 2),
            vec![text("src"), text("A"), text("B")],
            "SEARCH symbols USING PRIMARY KEY (source=? AND symbol=?)",
        ),
        (
            SQL_SYMBOL_SPAN.to_owned(),
            vec![text("A"), text("src")],
            "SEARCH bar_blocks USING PRIMARY KEY (source=? AND symbol=?)",
        ),
        (
            SQL_RESULTS.to_owned(),
            vec![text("scan-1")],
            "SEARCH scan_results USING PRIMARY KEY (run_id=?)",
        ),
        (
            SQL_RESULTS_JSON.to_owned(),
            vec![text("scan-1")],
            "SEARCH scan_results_json USING PRIMARY KEY (run_id=?)",
        ),
        (
            SQL_RECENT_RUNS.to_owned(),
            vec![int(10)],
            "SCAN scan_runs USING INDEX scan_runs_by_start",
        ),
        (
            SQL_SAMPLES.to_owned(),
            vec![int(0)],
            "SEARCH metric_samples USING INDEX metric_samples_by_time (at_ms>?)",
        ),
        (
            SQL_ALERTS.to_owned(),
            vec![int(0)],
            "SEARCH alerts USING INDEX alerts_by_time (at_ms>?)",
        ),
        (
            SQL_ACCESS_COUNTS.to_owned(),
            vec![int(10)],
            "SCAN symbol_access USING COVERING INDEX symbol_access_by_count",
        ),
    ];
    for (sql, params, expected) in cases {
        let got = plan(&conn, &sql, &params);
        assert!(
            got.contains(expected),
            "{sql}\nplan:\n{got}\nexpected: {expected}"
        );
        assert!(!got.contains("USE TEMP B-TREE"), "{sql} sorts:\n{got}");
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let content = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, Error::Store { .. }), "{err:?}");
    assert!(err.to_string().contains("not a Technic store"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(err.to_string().contains("schema version 99, newer"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn reopening_keeps_the_schema_version_and_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/folder/s.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let store = SqliteStore::open(&path).await.unwrap();
    {
        let conn = store.inner.conn.lock().unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[test]
fn concurrent_first_opens_migrate_once() {
    // SQLite refuses some of several simultaneous first opens at once ("database is locked", without
    // waiting); each must still succeed. Several rounds, each on a new file.
    let dir = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let path = dir.path().join(format!("shared-{round}.db"));
        let opened: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || SqliteStore::open_blocking(&path).map(drop))
            })
            .collect();
        for t in opened {
            t.join().unwrap().unwrap();
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::SCHEMA_VERSION, "round {round}");
    }
}

#[tokio::test]
async fn a_run_keeps_retries_stale_warnings_and_freshness() {
    let (_dir, store) = temp_store().await;
    let mut r = report("extras", 2);
    r.retries = 7;
    r.stale = 1;
    r.provider_calls.attempts = 40;
    r.provider_calls.short_circuited = 3;
    r.warnings = vec!["Cache unavailable — running without caching".into()];
    r.expected_session = NaiveDate::from_ymd_opt(2026, 11, 25);
    r.adjustments = 2;
    r.freshness = Some("as of the 2026-11-25 session (up to date)".into());
    store.save_scan(&r).await.unwrap();
    assert_eq!(store.scan("extras").await.unwrap().unwrap(), r);
}

/// Three stores on one fresh file, as three processes would open it, each writing bars and scans at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn three_writers_on_one_fresh_file_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let mut tasks = Vec::new();
    for w in 0..3 {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let store = SqliteStore::open(&path).await.unwrap();
            for i in 0..15 {
                let updates: Vec<BarsUpdate> = (0..40)
                    .map(|s| BarsUpdate {
                        symbol: Symbol::new(format!("W{w}S{s}")),
                        replace: false,
                        bars: sample_bars(60 + i, 10.0 + s as f64),
                        fetched_from: NaiveDate::MIN,
                        fetched_to: NaiveDate::MIN,
                    })
                    .collect();
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
        t.await.expect("no writer failed (database is locked)");
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.recent_scans(1000).await.unwrap().len(),
        45,
        "every run kept"
    );
    assert_eq!(store.access_counts(1).await.unwrap()[0].1, 45);
    let symbols: Vec<Symbol> = (0..3)
        .flat_map(|w| (0..40).map(move |s| Symbol::new(format!("W{w}S{s}"))))
        .collect();
    assert_eq!(store.bar_extents("src", &symbols).await.unwrap().len(), 120);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_version_1_file_is_upgraded_keeping_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(crate::store::schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let bars = sample_bars(5, 10.0);
        conn.execute(
            "INSERT INTO bar_blocks (symbol, year, n_bars, first_day, last_day, data) VALUES ('OLD', 2024, 5, ?1, ?2, ?3)",
            params![codec::day(bars.date[0]), codec::day(bars.date[4]), codec::encode(&bars, 0, 5)],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO symbols VALUES ('OLD', ?1, ?2, 5, ?1, ?2, 0)",
            params![codec::day(bars.date[0]), codec::day(bars.date[4])],
        )
        .unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        // A v1 run row: no `extra` column yet.
        tx.execute(
            "INSERT INTO scan_runs (id, started_ms, finished_ms, state, error, provider, demo, range_from, \
             range_to, universe_size, scanned, n_results, n_skipped, total_ms, request, timing, filtered, cache) \
             VALUES ('old-run', 1700000000000, 1700000001000, 'complete', NULL, 'polygon', 0, 738000, 738100, \
             0, 0, 0, 0, 1.0, NULL, ?1, ?2, ?3)",
            params![
                serde_json::to_string(&StageTimings::default()).unwrap(),
                serde_json::to_string(&crate::scan::FilterCounts::default()).unwrap(),
                serde_json::to_string(&crate::cache::CacheStats::default()).unwrap()
            ],
        )
        .unwrap();
        // A v1 metric sample: no lookup means, no API figures yet.
        tx.execute(
            "INSERT INTO metric_samples (at_ms, cache_hit_rate, avg_response_ms, active_connections, error_rate, \
             requests, p95_cached_ms, p95_uncached_ms) VALUES (1700000000000, 0.5, 3.0, 1, 0.0, 10, 1.0, 9.0)",
            [],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let version: i64 = {
        let conn = store.inner.reader.lock().unwrap();
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version, schema::SCHEMA_VERSION);
    // The v1 bars are kept under a source no provider names; the run reads back with zero extras.
    let old = [Symbol::new("OLD")];
    assert!(
        store
            .load_bars("polygon:x", &old, all())
            .await
            .unwrap()
            .is_empty()
    );
    let kept = store.load_bars("unknown (schema v1)", &old, all()).await.unwrap();
    assert_eq!(kept[&old[0]], sample_bars(5, 10.0));
    let run = store.scan("old-run").await.unwrap().expect("run kept");
    assert_eq!((run.retries, run.warnings.len()), (0, 0));
    let samples = store.metric_samples(DateTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(
        samples,
        vec![MetricSample {
            at: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            cache_hit_rate: 0.5,
            avg_response_ms: 3.0,
            active_connections: 1,
            error_rate: 0.0,
            requests: 10,
            p95_cached_ms: 1.0,
            p95_uncached_ms: 9.0,
            ..MetricSample::default()
        }],
        "a v1 sample reads back with no means and no API requests"
    );
}

#[tokio::test]
async fn retention_prunes_old_runs_samples_and_alerts() {
    let (_dir, store) = temp_store().await;
    let old = report("old", 2);
    let mut new = report("new", 2);
    new.started_at += ChronoDuration::days(40);
    store.save_scan(&old).await.unwrap();
    store.save_scan(&new).await.unwrap();
    for days in [0, 40] {
        let at = old.started_at + ChronoDuration::days(days);
        store
            .save_metric_sample(&MetricSample {
                at,
                cache_hit_rate: 1.0,
                avg_response_ms: 1.0,
                active_connections: 0,
                error_rate: 0.0,
                requests: 1,
                p95_cached_ms: 1.0,
                p95_uncached_ms: 1.0,
                ..MetricSample::default()
            })
            .await
            .unwrap();
    }
    let pruned = store
        .prune(old.started_at + ChronoDuration::days(10))
        .await
        .unwrap();
    assert_eq!((pruned.runs, pruned.samples, pruned.alerts), (1, 1, 0));
    assert!(store.scan("old").await.unwrap().is_none());
    assert!(store.scan("new").await.unwrap().is_some());
    let results_left: i64 = store
        .inner
        .reader
        .lock()
        .unwrap()
        .query_row("SELECT coalesce(sum(n_results), 0) FROM scan_results", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(results_left, 2, "the old run's results went with it");
}

/// With a limit on runs, saving a run deletes the oldest beyond it (by start), their results with them;
/// re-saving a kept run deletes nothing else.
#[tokio::test]
async fn max_runs_keeps_only_the_newest_runs() {
    let (_dir, store) = temp_store().await;
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
    let results_left = |store: &SqliteStore| -> i64 {
        store
            .inner
            .reader
            .lock()
            .unwrap()
            .query_row("SELECT coalesce(sum(n_results), 0) FROM scan_results", [], |r| {
                r.get(0)
            })
            .unwrap()
    };
    assert_eq!(
        results_left(&store),
        6,
        "the deleted runs' results went with them"
    );
    let mut again = report("r3", 2);
    again.started_at = base + ChronoDuration::minutes(3);
    store.save_scan(&again).await.unwrap();
    assert_eq!(store.recent_runs(10).await.unwrap().len(), 3);
    // Without a limit, runs accumulate again.
    store.set_max_runs(None);
    let mut r = report("r5", 2);
    r.started_at = base + ChronoDuration::minutes(5);
    store.save_scan(&r).await.unwrap();
    assert_eq!(store.recent_runs(10).await.unwrap().len(), 4);
}

/// Bytes the b-tree `name` takes in the file (its pages and overflow pages), from `dbstat`.
fn btree_bytes(store: &SqliteStore, name: &str) -> i64 {
    let conn = store.inner.reader.lock().unwrap();
    conn.query_row(
        "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn a_5000_symbol_scan_stores_at_most_600_bytes_per_result() {
    let (_dir, store) = temp_store().await;
    let mut run = report("0190a0b2-7c3e-7d11-9a2b-3c4d5e6f7a8b", 0);
    run.results = crate::testing::demo_results(5000).await;
    assert_eq!(run.results.len(), 5000);
    store.save_scan(&run).await.unwrap();
    let per_result = btree_bytes(&store, "scan_results") as f64 / 5000.0;
    eprintln!("scan_results: {per_result:.0} bytes per result");
    assert_eq!(store.scan(&run.id).await.unwrap().unwrap(), run);
    assert!(per_result <= 600.0, "{per_result:.0} bytes per result");
}

/// A store of schema version 5 (results as JSON rows) opens at the current version with its runs readable
/// as saved; saving such a run again moves its results into blocks, and pruning it deletes its JSON rows.
#[tokio::test]
async fn a_version_5_file_is_upgraded_keeping_its_runs_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v5.db");
    let old = report("old-run", 3);
    {
        let conn = Connection::open(&path).unwrap();
        for sql in &crate::store::schema::MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        let extra = serde_json::json!({ "matched": old.matched, "regime": old.regime });
        conn.execute(
            "INSERT INTO scan_runs (id, started_ms, finished_ms, state, error, provider, demo, range_from, \
             range_to, universe_size, scanned, n_results, n_skipped, total_ms, request, timing, filtered, cache, \
             extra) VALUES (?1, ?2, ?2, 'complete', NULL, 'test', 0, ?3, ?4, ?5, ?6, 3, 1, 12.5, NULL, ?7, ?8, \
             ?9, ?10)",
            params![
                old.id,
                ms(old.started_at),
                codec::day(old.range.from),
                codec::day(old.range.to),
                old.universe_size as i64,
                old.scanned as i64,
                serde_json::to_string(&old.timing).unwrap(),
                serde_json::to_string(&old.filtered).unwrap(),
                serde_json::to_string(&old.cache).unwrap(),
                extra.to_string()
            ],
        )
        .unwrap();
        for r in &old.results {
            conn.execute(
                "INSERT INTO scan_results (run_id, rank, symbol, tech_rating, signal, result) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    old.id,
                    r.rank as i64,
                    r.symbol.as_str(),
                    r.tech_rating,
                    r.signal.as_str(),
                    serde_json::to_string(r).unwrap()
                ],
            )
            .unwrap();
        }
        let s = &old.skipped[0];
        conn.execute(
            "INSERT INTO scan_skipped VALUES (?1, 0, ?2, 'data', ?3)",
            params![old.id, s.symbol.as_str(), s.reason],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let count = |sql: &str| -> i64 {
        let conn = store.inner.reader.lock().unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    assert_eq!(count("PRAGMA user_version"), schema::SCHEMA_VERSION, "migrated");
    assert_eq!(store.scan("old-run").await.unwrap().unwrap(), old);
    // A new run beside it is stored in blocks; both read back.
    let mut new = report("new-run", 2);
    new.started_at += ChronoDuration::minutes(1);
    store.save_scan(&new).await.unwrap();
    assert_eq!(store.scan("new-run").await.unwrap().unwrap(), new);
    assert_eq!(store.scan("old-run").await.unwrap().unwrap(), old);
    // Saving the old run again replaces its JSON rows with a block.
    store.save_scan(&old).await.unwrap();
    assert_eq!(count("SELECT count(*) FROM scan_results_json"), 0);
    assert_eq!(store.scan("old-run").await.unwrap().unwrap(), old);
    assert_eq!(count("SELECT sum(n_results) FROM scan_results"), 5);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}
