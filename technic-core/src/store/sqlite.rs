//! [`SqliteStore`]: the [`Store`] in one SQLite file (bundled SQLite, WAL, a writer and a reader
//! connection).
//!
//! Every call runs on a blocking thread (`spawn_blocking`) so SQLite never stalls the async runtime. Writes
//! go through one connection behind a mutex (SQLite has one writer at a time anyway) and every write
//! transaction is `BEGIN IMMEDIATE`: it takes the write lock first, waiting up to the busy timeout, so
//! several processes writing one file queue instead of failing with "database is locked" (a deferred
//! transaction that upgrades from read to write gets SQLITE_BUSY at once, without waiting). Reads use
//! their own connection, so in WAL mode they never queue behind a bar write. Every statement is
//! parameterised and prepared through rusqlite's statement cache; every batch of writes is one
//! transaction; every query is timed in a [`QueryProfile`] under its name. The schema is in `schema.rs`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use self::runs::{load_run, save_run};
use self::sql::*;
use super::codec;
use super::profile::{QueryProfile, QueryStats};
use super::schema;
use super::{BarExtent, BarsUpdate, Pruned, RunLimit, RunSummary, Store, merge_bars};
use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol};
use crate::monitor::{Alert, MetricSample, MetricSummary, Severity};
use crate::scan::{ScanReport, ScanRequest};
use crate::screen::{SavedScreen, ScreenSpec};

/// Symbols per `IN (…)` list: one statement shape for all full chunks (so it stays in the statement
/// cache), well under SQLite's limit of 32766 parameters.
const IN_CHUNK: usize = 500;

/// How long a computed [`MetricSummary`] is served from memory. Writes through this store clear the
/// cache at once; the TTL bounds staleness when another process writes the same file.
pub const SUMMARY_TTL: Duration = Duration::from_secs(30);

/// A [`Store`] in a SQLite file. Cheap to clone (clones share the connection).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: Mutex<Connection>,
    reader: Mutex<Connection>,
    path: String,
    profile: QueryProfile,
    summaries: Mutex<HashMap<i64, (Instant, MetricSummary)>>,
    /// See [`SqliteStore::set_max_runs`].
    max_runs: RunLimit,
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent folders) the store at `path` and migrates its schema.
    ///
    /// A file that is not a SQLite database, or was written by a newer schema, is an [`Error::Store`]
    /// saying so; the file is left untouched.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|e| Error::internal(format!("store open task failed: {e}")))?
    }

    /// [`SqliteStore::open`] on the calling thread, for code outside an async runtime.
    pub fn open_blocking(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::Store {
                detail: format!("cannot create the folder of store {shown}: {e}"),
            })?;
        }
        let mut conn = Connection::open(path).map_err(|e| Error::Store {
            detail: format!("cannot open store {shown}: {e}"),
        })?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::prepare(&mut conn, &shown)?;
        let mut reader = Connection::open(path).map_err(|e| Error::Store {
            detail: format!("cannot open store {shown}: {e}"),
        })?;
        reader.set_prepared_statement_cache_capacity(64);
        schema::prepare(&mut reader, &shown)?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                reader: Mutex::new(reader),
                path: shown,
                profile: QueryProfile::default(),
                summaries: Mutex::new(HashMap::new()),
                max_runs: RunLimit::default(),
            }),
        })
    }

    /// Keeps at most `max` scan runs: saving a run then deletes the oldest beyond it (by start, with
    /// their results and skipped symbols), so the store's size is bounded whatever the scan rate, on top
    /// of the time retention of [`Store::prune`]. `None` keeps every run; the default is
    /// [`DEFAULT_MAX_RUNS`](crate::store::DEFAULT_MAX_RUNS).
    pub fn set_max_runs(&self, max: Option<usize>) {
        self.inner.max_runs.set(max);
    }

    /// The file's path, as given.
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// The per-query timings.
    pub fn profile(&self) -> &QueryProfile {
        &self.inner.profile
    }

    /// Runs `PRAGMA integrity_check`; `Ok` with SQLite's answer (`"ok"` when the file is sound).
    pub async fn integrity_check(&self) -> Result<String> {
        self.call(|conn, p| {
            timed(p, "integrity_check", || {
                conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            })
        })
        .await
    }

    /// Runs `f` with the writer connection on a blocking thread.
    async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &QueryProfile) -> Result<T> + Send + 'static,
    {
        self.on(false, f).await
    }

    /// Runs `f` with the reader connection on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &QueryProfile) -> Result<T> + Send + 'static,
    {
        self.on(true, f).await
    }

    async fn on<T, F>(&self, reader: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &QueryProfile) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let lock = if reader { &inner.reader } else { &inner.conn };
            let mut conn = lock.lock().map_err(|_| Error::Store {
                detail: "store connection lock poisoned by an earlier panic".to_owned(),
            })?;
            f(&mut conn, &inner.profile)
        })
        .await
        .map_err(|e| Error::internal(format!("store task failed: {e}")))?
    }

    /// Deletes scan runs (with their results), metric samples and alerts older than `before`, then
    /// checkpoints the WAL into the main file and truncates it. Returns what was deleted.
    async fn prune_older(&self, before: DateTime<Utc>) -> Result<Pruned> {
        let cutoff = ms(before);
        let pruned = self
            .call(move |conn, p| {
                let tx = begin(conn)?;
                let n = |name, sql| timed(p, name, || tx.prepare_cached(sql)?.execute(params![cutoff]));
                let pruned = Pruned {
                    runs: n("prune_runs", SQL_PRUNE_RUNS)?,
                    samples: n("prune_samples", SQL_PRUNE_SAMPLES)?,
                    alerts: n("prune_alerts", SQL_PRUNE_ALERTS)?,
                };
                timed(p, "commit", || tx.commit())?;
                // A checkpoint that cannot finish now (readers in other processes) is retried next time.
                timed(p, "wal_checkpoint", || {
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                })?;
                Ok(pruned)
            })
            .await?;
        self.forget_summaries();
        Ok(pruned)
    }

    fn forget_summaries(&self) {
        self.inner
            .summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// `BEGIN IMMEDIATE`: the write lock is taken (waiting up to the busy timeout) before anything is read.
fn begin(conn: &mut Connection) -> Result<Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| store_err("begin", e))
}

/// Times `f` as query `name` and turns its error into an [`Error::Store`] naming the query.
fn timed<T>(p: &QueryProfile, name: &'static str, f: impl FnOnce() -> rusqlite::Result<T>) -> Result<T> {
    p.time(name, f).map_err(|e| store_err(name, e))
}

fn store_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Store {
        detail: format!("{what}: {e}"),
    }
}

/// `?, ?, …` with `n` placeholders, substituted for `{in}` in a query template.
pub(super) fn with_in_list(template: &str, n: usize) -> String {
    let marks = vec!["?"; n].join(", ");
    template.replace("{in}", &marks)
}

fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn date_of(day: i64, what: &str) -> rusqlite::Result<NaiveDate> {
    codec::date(day).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            format!("bad {what} day {day}").into(),
        )
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::internal(format!("cannot encode for the store: {e}")))
}

fn unjson<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| store_err(what, format!("unreadable stored value: {e}")))
}

/// Writes one symbol's new bars into its year blocks and refreshes its `symbols` row.
fn write_update(
    tx: &Transaction<'_>,
    p: &QueryProfile,
    source: &str,
    u: &BarsUpdate,
    now_ms: i64,
) -> Result<()> {
    let symbol = u.symbol.as_str();
    let (fetched_from, fetched_to) = (codec::day(u.fetched_from), codec::day(u.fetched_to));
    if u.replace {
        timed(p, "delete_symbol_blocks", || {
            tx.prepare_cached(SQL_DELETE_SYMBOL_BLOCKS)?
                .execute(params![source, symbol])
        })?;
        timed(p, "delete_symbol", || {
            tx.prepare_cached(SQL_DELETE_SYMBOL)?
                .execute(params![source, symbol])
        })?;
    }
    if u.bars.is_empty() {
        return timed(p, "touch_symbol", || {
            tx.prepare_cached(SQL_TOUCH_SYMBOL)?.execute(params![
                symbol,
                fetched_from,
                fetched_to,
                now_ms,
                source
            ])
        })
        .map(drop);
    }
    let mut start = 0;
    while start < u.bars.len() {
        let year = u.bars.date[start].year();
        let end = start + u.bars.date[start..].partition_point(|d| d.year() == year);
        let existing: Option<Vec<u8>> = timed(p, "load_block", || {
            tx.prepare_cached(SQL_BLOCK)?
                .query_row(params![symbol, year, source], |r| r.get(0))
                .optional()
        })?;
        let new = Bars::from_bars(&(start..end).filter_map(|i| u.bars.get(i)).collect::<Vec<_>>());
        let block = match existing {
            Some(bytes) => {
                let mut old = Bars::default();
                codec::decode_into(&bytes, &mut old).map_err(|e| store_err("load_block", e))?;
                merge_bars(&old, &new)
            }
            None => new,
        };
        let (first, last) = match (block.date.first(), block.date.last()) {
            (Some(f), Some(l)) => (codec::day(*f), codec::day(*l)),
            _ => break,
        };
        let data = codec::encode(&block, 0, block.len());
        timed(p, "upsert_block", || {
            tx.prepare_cached(SQL_UPSERT_BLOCK)?.execute(params![
                symbol,
                year,
                block.len() as i64,
                first,
                last,
                data,
                source
            ])
        })?;
        start = end;
    }
    let (first, last, n): (i64, i64, i64) = timed(p, "symbol_span", || {
        tx.prepare_cached(SQL_SYMBOL_SPAN)?
            .query_row(params![symbol, source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
    })?;
    timed(p, "upsert_symbol", || {
        tx.prepare_cached(SQL_UPSERT_SYMBOL)?.execute(params![
            symbol,
            first,
            last,
            n,
            fetched_from.min(first),
            fetched_to.max(last),
            now_ms,
            source
        ])
    })?;
    Ok(())
}

fn load_blocks(
    conn: &Connection,
    p: &QueryProfile,
    source: &str,
    symbols: &[Symbol],
    range: DateRange,
) -> Result<HashMap<Symbol, Bars>> {
    let mut out = HashMap::with_capacity(symbols.len());
    let by_name: HashMap<&str, &Symbol> = symbols.iter().map(|s| (s.as_str(), s)).collect();
    for chunk in symbols.chunks(IN_CHUNK) {
        let sql = with_in_list(SQL_LOAD_BLOCKS, chunk.len());
        let mut values: Vec<Value> = vec![Value::Text(source.to_owned())];
        values.extend(chunk.iter().map(|s| Value::Text(s.as_str().to_owned())));
        values.push(Value::Integer(i64::from(range.from.year())));
        values.push(Value::Integer(i64::from(range.to.year())));
        timed(p, "load_bar_blocks", || {
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(values.iter()))?;
            let mut current: Option<(Symbol, Bars)> = None;
            while let Some(row) = rows.next()? {
                let name = row.get_ref(0)?.as_str()?;
                if current.as_ref().is_none_or(|(s, _)| s.as_str() != name) {
                    if let Some((s, b)) = current.take() {
                        out.insert(s, b.into_range(range));
                    }
                    let symbol = by_name
                        .get(name)
                        .map_or_else(|| Symbol::new(name), |s| (*s).clone());
                    current = Some((symbol, Bars::with_capacity(512)));
                }
                let data = row.get_ref(1)?.as_blob()?;
                if let Some((_, bars)) = current.as_mut() {
                    codec::decode_into(data, bars).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, e.into())
                    })?;
                }
            }
            if let Some((s, b)) = current.take() {
                out.insert(s, b.into_range(range));
            }
            Ok(())
        })?;
    }
    out.retain(|_, b: &mut Bars| !b.is_empty());
    Ok(out)
}

/// Deletes the runs beyond the `max` newest (with a limit), their results and skips going with them.
fn keep_latest_runs(tx: &Transaction<'_>, p: &QueryProfile, max: Option<usize>) -> Result<()> {
    if let Some(max) = max {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        timed(p, "keep_latest_runs", || {
            tx.prepare_cached(SQL_KEEP_LATEST_RUNS)?.execute(params![max])
        })?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn save_bars(&self, source: &str, symbol: &Symbol, bars: &Bars) -> Result<()> {
        let update = BarsUpdate {
            symbol: symbol.clone(),
            replace: false,
            bars: bars.clone(),
            fetched_from: bars.date.first().copied().unwrap_or(NaiveDate::MAX),
            fetched_to: bars.date.last().copied().unwrap_or(NaiveDate::MIN),
        };
        self.save_bars_batch(source, vec![update]).await
    }

    async fn save_bars_batch(&self, source: &str, updates: Vec<BarsUpdate>) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let source = source.to_owned();
        self.call(move |conn, p| {
            let now_ms = ms(Utc::now());
            let tx = begin(conn)?;
            for u in &updates {
                write_update(&tx, p, &source, u, now_ms)?;
            }
            timed(p, "commit", || tx.commit())
        })
        .await
    }

    async fn load_bars(
        &self,
        source: &str,
        symbols: &[Symbol],
        range: DateRange,
    ) -> Result<HashMap<Symbol, Bars>> {
        let (source, symbols) = (source.to_owned(), symbols.to_vec());
        self.read(move |conn, p| load_blocks(conn, p, &source, &symbols, range))
            .await
    }

    async fn bar_extents(&self, source: &str, symbols: &[Symbol]) -> Result<HashMap<Symbol, BarExtent>> {
        let (source, symbols) = (source.to_owned(), symbols.to_vec());
        self.read(move |conn, p| {
            let mut out = HashMap::with_capacity(symbols.len());
            let by_name: HashMap<&str, &Symbol> = symbols.iter().map(|s| (s.as_str(), s)).collect();
            for chunk in symbols.chunks(IN_CHUNK) {
                let sql = with_in_list(SQL_EXTENTS, chunk.len());
                timed(p, "bar_extents", || {
                    let mut stmt = conn.prepare_cached(&sql)?;
                    let args = std::iter::once(source.as_str()).chain(chunk.iter().map(Symbol::as_str));
                    let mut rows = stmt.query(params_from_iter(args))?;
                    while let Some(r) = rows.next()? {
                        let name: String = r.get(0)?;
                        let extent = BarExtent {
                            first: date_of(r.get(1)?, "first")?,
                            last: date_of(r.get(2)?, "last")?,
                            n_bars: r.get::<_, i64>(3)? as usize,
                            fetched_from: date_of(r.get(4)?, "fetched_from")?,
                            fetched_to: date_of(r.get(5)?, "fetched_to")?,
                        };
                        let symbol = by_name
                            .get(name.as_str())
                            .map_or_else(|| Symbol::new(&name), |s| (*s).clone());
                        out.insert(symbol, extent);
                    }
                    Ok(())
                })?;
            }
            Ok(out)
        })
        .await
    }

    async fn save_scan(&self, report: &ScanReport) -> Result<()> {
        let report = report.clone();
        let max_runs = self.inner.max_runs.get();
        self.call(move |conn, p| {
            let tx = begin(conn)?;
            save_run(&tx, p, None, &report)?;
            keep_latest_runs(&tx, p, max_runs)?;
            timed(p, "commit", || tx.commit())
        })
        .await
    }

    async fn save_scan_run(&self, request: &ScanRequest, report: &ScanReport) -> Result<()> {
        let (request, report) = (request.clone(), report.clone());
        let max_runs = self.inner.max_runs.get();
        self.call(move |conn, p| {
            let tx = begin(conn)?;
            save_run(&tx, p, Some(&request), &report)?;
            keep_latest_runs(&tx, p, max_runs)?;
            timed(p, "commit", || tx.commit())
        })
        .await
    }

    async fn scan(&self, id: &str) -> Result<Option<ScanReport>> {
        let id = id.to_owned();
        self.read(move |conn, p| load_run(conn, p, &id)).await
    }

    async fn recent_scans(&self, limit: usize) -> Result<Vec<ScanReport>> {
        self.read(move |conn, p| {
            let ids: Vec<String> = timed(p, "recent_runs", || {
                conn.prepare_cached(SQL_RECENT_RUNS)?
                    .query_map(params![limit as i64], |r| r.get(0))?
                    .collect()
            })?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.extend(load_run(conn, p, &id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn recent_runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        let rows: Vec<(String, String, i64, String, i64, i64, i64, String)> = self
            .read(move |conn, p| {
                timed(p, "recent_summaries", || {
                    conn.prepare_cached(SQL_RECENT_SUMMARIES)?
                        .query_map(params![limit as i64], |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                                r.get(6)?,
                                r.get(7)?,
                            ))
                        })?
                        .collect()
                })
            })
            .await?;
        rows.into_iter()
            .map(
                |(id, state, started, timing, universe, scanned, skipped, filtered)| {
                    let filtered: crate::scan::FilterCounts = unjson(&filtered, "filter counts")?;
                    Ok(RunSummary {
                        id,
                        state: unjson(&format!("\"{state}\""), "scan state")?,
                        started_at: from_ms(started),
                        timing: unjson(&timing, "stage timings")?,
                        universe_size: universe as usize,
                        scanned: scanned as usize,
                        skipped: skipped as usize,
                        filtered: filtered.total(),
                    })
                },
            )
            .collect()
    }

    async fn save_metric_sample(&self, s: &MetricSample) -> Result<()> {
        let s = s.clone();
        self.call(move |conn, p| {
            timed(p, "insert_sample", || {
                conn.prepare_cached(SQL_INSERT_SAMPLE)?.execute(params![
                    ms(s.at),
                    s.cache_hit_rate,
                    s.avg_response_ms,
                    s.active_connections as i64,
                    s.error_rate,
                    s.requests as i64,
                    s.p95_cached_ms,
                    s.p95_uncached_ms,
                    s.avg_cached_ms,
                    s.avg_uncached_ms,
                    s.http_requests as i64,
                    s.http_avg_ms,
                    s.http_error_rate
                ])
            })
        })
        .await?;
        self.forget_summaries();
        Ok(())
    }

    async fn metric_samples(&self, since: DateTime<Utc>) -> Result<Vec<MetricSample>> {
        self.read(move |conn, p| {
            timed(p, "metric_samples", || {
                conn.prepare_cached(SQL_SAMPLES)?
                    .query_map(params![ms(since)], |r| {
                        Ok(MetricSample {
                            at: from_ms(r.get(0)?),
                            cache_hit_rate: r.get(1)?,
                            avg_response_ms: r.get(2)?,
                            active_connections: r.get::<_, i64>(3)? as u64,
                            error_rate: r.get(4)?,
                            requests: r.get::<_, i64>(5)? as u64,
                            p95_cached_ms: r.get(6)?,
                            p95_uncached_ms: r.get(7)?,
                            avg_cached_ms: r.get(8)?,
                            avg_uncached_ms: r.get(9)?,
                            http_requests: r.get::<_, i64>(10)? as u64,
                            http_avg_ms: r.get(11)?,
                            http_error_rate: r.get(12)?,
                        })
                    })?
                    .collect()
            })
        })
        .await
    }

    async fn save_alert(&self, a: &Alert) -> Result<()> {
        let a = a.clone();
        self.call(move |conn, p| {
            timed(p, "insert_alert", || {
                conn.prepare_cached(SQL_INSERT_ALERT)?.execute(params![
                    ms(a.at),
                    a.rule,
                    a.severity.as_str(),
                    a.value,
                    a.threshold,
                    a.message
                ])
            })
        })
        .await?;
        self.forget_summaries();
        Ok(())
    }

    async fn alerts(&self, since: DateTime<Utc>) -> Result<Vec<Alert>> {
        self.read(move |conn, p| {
            timed(p, "alerts", || {
                conn.prepare_cached(SQL_ALERTS)?
                    .query_map(params![ms(since)], |r| {
                        let severity: String = r.get(2)?;
                        Ok(Alert {
                            at: from_ms(r.get(0)?),
                            rule: r.get(1)?,
                            severity: Severity::parse(&severity).unwrap_or(Severity::Error),
                            value: r.get(3)?,
                            threshold: r.get(4)?,
                            message: r.get(5)?,
                        })
                    })?
                    .collect()
            })
        })
        .await
    }

    async fn metric_summary(&self, since: DateTime<Utc>) -> Result<MetricSummary> {
        let key = ms(since);
        {
            let cached = self.inner.summaries.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, summary)) = cached.get(&key)
                && at.elapsed() < SUMMARY_TTL
            {
                return Ok(summary.clone());
            }
        }
        let started = Instant::now();
        let samples = self.metric_samples(since).await?;
        let alerts = self.alerts(since).await?;
        let summary = MetricSummary::compute(since, &samples, &alerts);
        self.inner
            .profile
            .record("metric_summary", started.elapsed(), false);
        let mut cached = self.inner.summaries.lock().unwrap_or_else(|e| e.into_inner());
        cached.retain(|_, (at, _)| at.elapsed() < SUMMARY_TTL);
        cached.insert(key, (Instant::now(), summary.clone()));
        Ok(summary)
    }

    async fn record_access(&self, symbols: &[Symbol]) -> Result<()> {
        if symbols.is_empty() {
            return Ok(());
        }
        let symbols = symbols.to_vec();
        self.call(move |conn, p| {
            let now_ms = ms(Utc::now());
            let tx = begin(conn)?;
            for s in &symbols {
                timed(p, "record_access", || {
                    tx.prepare_cached(SQL_RECORD_ACCESS)?
                        .execute(params![s.as_str(), now_ms])
                })?;
            }
            timed(p, "commit", || tx.commit())
        })
        .await
    }

    async fn access_counts(&self, limit: usize) -> Result<Vec<(Symbol, u64)>> {
        self.read(move |conn, p| {
            timed(p, "access_counts", || {
                conn.prepare_cached(SQL_ACCESS_COUNTS)?
                    .query_map(params![limit as i64], |r| {
                        Ok((Symbol::new(r.get::<_, String>(0)?), r.get::<_, i64>(1)? as u64))
                    })?
                    .collect()
            })
        })
        .await
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned> {
        self.prune_older(before).await
    }

    async fn save_screen(&self, screen: &SavedScreen) -> Result<()> {
        let s = screen.clone();
        self.call(move |conn, p| {
            timed(p, "save_screen", || {
                conn.prepare_cached(SQL_SAVE_SCREEN)?.execute(params![
                    s.name,
                    s.spec.where_,
                    s.spec.sort,
                    ms(s.saved_at)
                ])
            })
            .map(|_| ())
        })
        .await
    }

    async fn screens(&self) -> Result<Vec<SavedScreen>> {
        self.read(move |conn, p| {
            timed(p, "screens", || {
                conn.prepare_cached(SQL_SCREENS)?
                    .query_map([], |r| {
                        Ok(SavedScreen {
                            name: r.get(0)?,
                            spec: ScreenSpec {
                                where_: r.get(1)?,
                                sort: r.get(2)?,
                            },
                            saved_at: from_ms(r.get(3)?),
                        })
                    })?
                    .collect()
            })
        })
        .await
    }

    async fn delete_screen(&self, name: &str) -> Result<bool> {
        let name = name.to_owned();
        self.call(move |conn, p| {
            timed(p, "delete_screen", || {
                conn.prepare_cached(SQL_DELETE_SCREEN)?.execute(params![name])
            })
            .map(|n| n > 0)
        })
        .await
    }

    fn query_stats(&self) -> Vec<QueryStats> {
        self.inner.profile.stats()
    }
}

mod runs;
mod sql;

#[cfg(test)]
mod tests;
