//! [`PostgresStore`]: the [`Store`] on a PostgreSQL server, shared by every Technic server of a fleet.
//!
//! Connections come from a [`deadpool_postgres`] pool (8 by default, see [`PostgresOptions`]); each
//! statement is parameterised and prepared once per connection (the pool's statement cache). Bars are kept
//! exactly as the SQLite store keeps them: one `BYTEA` block per (source, symbol, calendar year) in the
//! column-wise codec of `codec.rs`, plus a `symbols` row per (source, symbol) with what is stored and how
//! far the provider was asked. A batch of bar updates is one transaction with a constant number of
//! statements, whatever its size: the touched blocks are read with one `unnest` join, merged in memory,
//! and written back with one `INSERT … SELECT FROM unnest(…) ON CONFLICT` per thousand blocks. Writers of
//! the same symbols (several servers refreshing one universe) queue on per-symbol advisory locks, so no
//! merge is lost.
//!
//! The schema (in `postgres/schema.rs`) is versioned in the table `technic_schema_version`; pending
//! migrations run in one transaction under an advisory lock keyed by the schema name, so servers starting
//! together migrate once. Every failure is an [`Error::Store`] naming the operation and the server
//! (`user@host:port/database`, never the password). Connecting is bounded by
//! [`PostgresOptions::connect_timeout`] (5 s), each statement by a server-side `statement_timeout` and each
//! store call by [`PostgresOptions::operation_timeout`], so a server that is down or unreachable makes
//! calls fail within seconds instead of hanging; the pool replaces broken connections once it is back.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use tokio_postgres::config::Host;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{NoTls, Row};

use self::sql::*;
use super::codec;
use super::profile::{QueryProfile, QueryStats};
use super::{BarExtent, BarsUpdate, Pruned, RunSummary, Store};
use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol};
use crate::monitor::{Alert, MetricSample, MetricSummary, Severity};
use crate::scan::{ScanReport, ScanRequest};
use crate::screen::{SavedScreen, ScreenSpec};

mod bars;
mod runs;
mod schema;
mod sql;

#[cfg(test)]
mod tests;

pub use schema::SCHEMA_VERSION;

/// Symbols per bar read (`symbol = ANY($2)`): bounds the rows one answer holds in memory.
const READ_CHUNK: usize = 1000;

/// How long a computed [`MetricSummary`] is served from memory. Writes through this store clear it at
/// once; the TTL bounds staleness when other servers write samples.
const SUMMARY_TTL: Duration = Duration::from_secs(30);

/// How a [`PostgresStore`] connects: pool size and time limits. [`Default`] suits one Technic server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections kept in the pool at most (default 8). Each store call holds one while it runs.
    pub max_connections: usize,
    /// Time allowed to open one connection, TCP and startup included (default 5 s). A `connect_timeout`
    /// in the URL wins.
    pub connect_timeout: Duration,
    /// The server-side `statement_timeout` of every connection (default 15 s).
    pub statement_timeout: Duration,
    /// Time allowed for one whole store call, waiting for a pooled connection included (default 30 s).
    pub operation_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(15),
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// A [`Store`] on a PostgreSQL server. Cheap to clone (clones share the pool).
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// `user@host:port/database`: how errors and logs name the server (no password).
    server: String,
    options: PostgresOptions,
    /// The connect timeout in force (the URL's or [`PostgresOptions::connect_timeout`]).
    connect_timeout: Duration,
    profile: QueryProfile,
    /// Set once the schema is known to be current (migrated by this process or another).
    migrated: tokio::sync::OnceCell<()>,
    summaries: Mutex<HashMap<i64, (Instant, MetricSummary)>>,
    /// See [`PostgresStore::set_max_runs`].
    max_runs: super::RunLimit,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.inner.pool.status();
        f.debug_struct("PostgresStore")
            .field("server", &self.inner.server)
            .field("max_connections", &self.inner.options.max_connections)
            .field("open_connections", &status.size)
            .field("idle_connections", &status.available)
            .field("migrated", &self.inner.migrated.initialized())
            .finish()
    }
}

impl PostgresStore {
    /// Connects to the server at `url` (`postgres://user:password@host:port/database?options`, or the
    /// `key=value` form) with [`PostgresOptions::default`] and brings the schema up to
    /// [`SCHEMA_VERSION`].
    ///
    /// A server that cannot be reached, refuses the login or holds a newer schema is an [`Error::Store`]
    /// naming the server (never the password), within [`PostgresOptions::connect_timeout`] when it does
    /// not answer at all.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, PostgresOptions::default()).await
    }

    /// [`PostgresStore::connect`] with other pool size or time limits.
    pub async fn connect_with(url: &str, options: PostgresOptions) -> Result<Self> {
        let store = Self::connect_lazy(url, options)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store that connects on first use: nothing is sent to the server until a call needs it, and the
    /// first call that reaches the server migrates the schema. For a process that must start while the
    /// server is down: calls fail with [`Error::Store`] until it is back. Only a malformed `url` fails here.
    pub fn connect_lazy(url: &str, options: PostgresOptions) -> Result<Self> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| Error::Store {
            detail: format!(
                "the PostgreSQL URL is not valid: {}; expected postgres://user@host:port/database",
                describe(&e)
            ),
        })?;
        let server = describe_server(&config);
        let connect_timeout = match config.get_connect_timeout() {
            Some(t) => *t,
            None => {
                config.connect_timeout(options.connect_timeout);
                options.connect_timeout
            }
        };
        // Session settings first, so settings the URL's own `options` make later win. Besides the time
        // limits: plan for SSD-backed, mostly cached storage (`random_page_cost` 1.1 instead of the
        // spinning-disk default of 4). With the default, loading 500 of 20 000 symbols reads the whole
        // bar table (8.5 ms) instead of the primary key (1.9 ms); see the plan test.
        let limits = format!(
            "-c statement_timeout={} -c idle_in_transaction_session_timeout={} -c random_page_cost=1.1",
            options.statement_timeout.as_millis(),
            options.operation_timeout.as_millis().max(1000) * 2
        );
        let merged = match config.get_options() {
            Some(own) if !own.trim().is_empty() => format!("{limits} {own}"),
            _ => limits,
        };
        config.options(merged);
        if config.get_application_name().is_none() {
            config.application_name("technic");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            // An empty query before reuse: a connection broken by a restart or a timeout is replaced.
            ManagerConfig {
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(connect_timeout + Duration::from_secs(1)))
            .recycle_timeout(Some(connect_timeout))
            .wait_timeout(Some(options.operation_timeout))
            .build()
            .map_err(|e| Error::Store {
                detail: format!("cannot set up the connection pool for PostgreSQL at {server}: {e}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                server,
                options,
                connect_timeout,
                profile: QueryProfile::default(),
                migrated: tokio::sync::OnceCell::new(),
                summaries: Mutex::new(HashMap::new()),
                max_runs: super::RunLimit::default(),
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

    /// Deletes the runs beyond the newest `max_runs` in `tx` (nothing without a limit).
    async fn keep_latest_runs(&self, tx: &deadpool_postgres::Transaction<'_>) -> Result<()> {
        if let Some(max) = self.inner.max_runs.get() {
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            self.inner
                .execute(tx, "keep_latest_runs", SQL_KEEP_LATEST_RUNS, &[&max])
                .await?;
        }
        Ok(())
    }

    /// The server as errors name it: `user@host:port/database`, without the password.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The per-query timings.
    pub fn profile(&self) -> &QueryProfile {
        &self.inner.profile
    }

    /// Checks that the server answers (and migrates the schema if no call has yet); for health checks.
    pub async fn ping(&self) -> Result<()> {
        self.op("ping", async {
            let client = self.inner.client().await?;
            self.inner
                .timed("ping", client.simple_query("SELECT 1"))
                .await
                .map(drop)
        })
        .await
    }

    /// The schema version stored on the server (the highest migration applied).
    pub async fn schema_version(&self) -> Result<i32> {
        self.op("schema_version", async {
            let client = self.inner.client().await?;
            schema::version(&self.inner, &client).await
        })
        .await
    }

    /// Brings the schema up to [`SCHEMA_VERSION`] unless that is already known to be done.
    async fn migrate(&self) -> Result<()> {
        self.op("migrate", self.inner.ready()).await
    }

    /// Runs one store call within [`PostgresOptions::operation_timeout`].
    async fn op<T>(&self, what: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.inner.options.operation_timeout;
        let started = Instant::now();
        match tokio::time::timeout(limit, fut).await {
            Ok(result) => result,
            Err(_) => {
                self.inner.profile.record(what, started.elapsed(), true);
                Err(Error::Store {
                    detail: format!(
                        "PostgreSQL at {}: {what} did not finish within {} s; gave up",
                        self.inner.server,
                        limit.as_secs_f64()
                    ),
                })
            }
        }
    }

    fn forget_summaries(&self) {
        self.inner
            .summaries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Inner {
    /// A pooled connection, after making sure the schema is current.
    async fn client(&self) -> Result<Object> {
        self.ready().await?;
        self.connection().await
    }

    /// Brings the schema up to date once per store (a failed attempt is retried by the next call).
    async fn ready(&self) -> Result<()> {
        if self.migrated.initialized() {
            return Ok(());
        }
        self.migrated
            .get_or_try_init(|| async {
                let mut client = self.connection().await?;
                schema::migrate(self, &mut client).await
            })
            .await
            .map(drop)
    }

    /// A pooled connection as it is.
    async fn connection(&self) -> Result<Object> {
        let started = Instant::now();
        let got = self.pool.get().await;
        self.profile
            .record("get_connection", started.elapsed(), got.is_err());
        got.map_err(|e| self.pool_error(&e))
    }

    fn pool_error(&self, e: &PoolError) -> Error {
        let server = &self.server;
        let detail = match e {
            PoolError::Timeout(TimeoutType::Wait) => format!(
                "PostgreSQL at {server}: all {} pooled connections stayed busy for {} s",
                self.options.max_connections,
                self.options.operation_timeout.as_secs_f64()
            ),
            PoolError::Timeout(_) => format!(
                "cannot reach PostgreSQL at {server}: no connection within {} s",
                self.connect_timeout.as_secs_f64()
            ),
            PoolError::Backend(e) => format!("cannot reach PostgreSQL at {server}: {}", describe(e)),
            other => format!("cannot reach PostgreSQL at {server}: {other}"),
        };
        Error::Store { detail }
    }

    /// An [`Error::Store`] for `e` while running `what`.
    fn error(&self, what: &str, e: &tokio_postgres::Error) -> Error {
        let reach = if e.is_closed() { " (connection lost)" } else { "" };
        Error::Store {
            detail: format!(
                "PostgreSQL at {}: {what} failed{reach}: {}",
                self.server,
                describe(e)
            ),
        }
    }

    /// Awaits `fut` as query `name`: timed in the profile, its error named.
    async fn timed<T>(
        &self,
        name: &'static str,
        fut: impl Future<Output = std::result::Result<T, tokio_postgres::Error>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = fut.await;
        self.profile.record(name, started.elapsed(), result.is_err());
        result.map_err(|e| self.error(name, &e))
    }

    /// Runs the cached statement `sql` as query `name` and returns its rows.
    async fn query(
        &self,
        c: &impl GenericClient,
        name: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.timed(name, async {
            let stmt = c.prepare_cached(sql).await?;
            c.query(&stmt, params).await
        })
        .await
    }

    /// Runs the cached statement `sql` as query `name` and returns the rows it changed.
    async fn execute(
        &self,
        c: &impl GenericClient,
        name: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.timed(name, async {
            let stmt = c.prepare_cached(sql).await?;
            c.execute(&stmt, params).await
        })
        .await
    }

    /// Column `idx` of `row`, read by query `name`.
    fn get<'a, T: FromSql<'a>>(&self, name: &str, row: &'a Row, idx: usize) -> Result<T> {
        row.try_get(idx).map_err(|e| self.error(name, &e))
    }
}

/// `user@host:port/database` of `config`, without the password.
fn describe_server(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let hosts = if hosts.is_empty() {
        config
            .get_hostaddrs()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    } else {
        hosts.join(",")
    };
    let ports: Vec<String> = config.get_ports().iter().map(ToString::to_string).collect();
    let port = if ports.is_empty() {
        "5432".to_owned()
    } else {
        ports.join(",")
    };
    let user = config.get_user().unwrap_or("(default user)");
    let db = config.get_dbname().unwrap_or(user);
    let hosts = if hosts.is_empty() {
        "localhost".to_owned()
    } else {
        hosts
    };
    format!("{user}@{hosts}:{port}/{db}")
}

/// A driver error with everything it knows: the server's message, code and detail, or the chain of
/// causes of a connection failure.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut out = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            out.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            out.push_str(&format!("; hint: {hint}"));
        }
        return out;
    }
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}

/// Milliseconds since the epoch, as stored.
fn ms(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A date's day number as stored (days since 0001-01-01, the codec's numbering; chrono's dates are
/// within ±262 143 years, so it always fits an `INTEGER`).
fn day(d: NaiveDate) -> i32 {
    i32::try_from(codec::day(d)).unwrap_or(i32::MAX)
}

fn date_of(day: i32, what: &str) -> Result<NaiveDate> {
    codec::date(i64::from(day)).ok_or_else(|| Error::Store {
        detail: format!("PostgreSQL store holds an invalid {what} day number {day}"),
    })
}

fn unjson<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Store {
        detail: format!("unreadable stored {what}: {e}"),
    })
}

/// An enum's serde name (`"complete"` → `complete`), as stored in text columns.
fn serde_name<T: serde::Serialize>(v: &T) -> Result<String> {
    let text =
        serde_json::to_string(v).map_err(|e| Error::internal(format!("cannot encode for the store: {e}")))?;
    Ok(text.trim_matches('"').to_owned())
}

#[async_trait]
impl Store for PostgresStore {
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
        self.op("save_bars_batch", async {
            let mut client = self.inner.client().await?;
            let tx = self.inner.timed("begin", client.transaction()).await?;
            bars::save_batch(&self.inner, &tx, source, &updates, ms(Utc::now())).await?;
            self.inner.timed("commit", tx.commit()).await
        })
        .await
    }

    async fn load_bars(
        &self,
        source: &str,
        symbols: &[Symbol],
        range: DateRange,
    ) -> Result<HashMap<Symbol, Bars>> {
        if symbols.is_empty() {
            return Ok(HashMap::new());
        }
        self.op("load_bars", async {
            let client = self.inner.client().await?;
            bars::load(&self.inner, &client, source, symbols, range).await
        })
        .await
    }

    async fn bar_extents(&self, source: &str, symbols: &[Symbol]) -> Result<HashMap<Symbol, BarExtent>> {
        if symbols.is_empty() {
            return Ok(HashMap::new());
        }
        self.op("bar_extents", async {
            let client = self.inner.client().await?;
            bars::extents(&self.inner, &client, source, symbols).await
        })
        .await
    }

    async fn save_scan(&self, report: &ScanReport) -> Result<()> {
        self.op("save_scan", async {
            let mut client = self.inner.client().await?;
            let tx = self.inner.timed("begin", client.transaction()).await?;
            runs::save(&self.inner, &tx, None, report).await?;
            self.keep_latest_runs(&tx).await?;
            self.inner.timed("commit", tx.commit()).await
        })
        .await
    }

    async fn save_scan_run(&self, request: &ScanRequest, report: &ScanReport) -> Result<()> {
        self.op("save_scan", async {
            let mut client = self.inner.client().await?;
            let tx = self.inner.timed("begin", client.transaction()).await?;
            runs::save(&self.inner, &tx, Some(request), report).await?;
            self.keep_latest_runs(&tx).await?;
            self.inner.timed("commit", tx.commit()).await
        })
        .await
    }

    async fn scan(&self, id: &str) -> Result<Option<ScanReport>> {
        self.op("scan", async {
            let mut client = self.inner.client().await?;
            let tx = runs::snapshot(&self.inner, &mut client).await?;
            let run = runs::load(&self.inner, &tx, id).await?;
            self.inner.timed("commit", tx.commit()).await?;
            Ok(run)
        })
        .await
    }

    async fn recent_scans(&self, limit: usize) -> Result<Vec<ScanReport>> {
        self.op("recent_scans", async {
            let mut client = self.inner.client().await?;
            let tx = runs::snapshot(&self.inner, &mut client).await?;
            let limit = limit.min(i64::MAX as usize) as i64;
            let rows = self
                .inner
                .query(&tx, "recent_runs", SQL_RECENT_RUNS, &[&limit])
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: &str = self.inner.get("recent_runs", row, 0)?;
                out.extend(runs::load(&self.inner, &tx, id).await?);
            }
            self.inner.timed("commit", tx.commit()).await?;
            Ok(out)
        })
        .await
    }

    async fn recent_runs(&self, limit: usize) -> Result<Vec<RunSummary>> {
        self.op("recent_runs", async {
            let client = self.inner.client().await?;
            runs::summaries(&self.inner, &client, limit).await
        })
        .await
    }

    async fn save_metric_sample(&self, s: &MetricSample) -> Result<()> {
        self.op("save_metric_sample", async {
            let client = self.inner.client().await?;
            let (active, requests, http) = (
                s.active_connections as i64,
                s.requests as i64,
                s.http_requests as i64,
            );
            self.inner
                .execute(
                    &client,
                    "insert_sample",
                    SQL_INSERT_SAMPLE,
                    &[
                        &ms(s.at),
                        &s.cache_hit_rate,
                        &s.avg_response_ms,
                        &active,
                        &s.error_rate,
                        &requests,
                        &s.p95_cached_ms,
                        &s.p95_uncached_ms,
                        &s.avg_cached_ms,
                        &s.avg_uncached_ms,
                        &http,
                        &s.http_avg_ms,
                        &s.http_error_rate,
                    ],
                )
                .await
        })
        .await?;
        self.forget_summaries();
        Ok(())
    }

    async fn metric_samples(&self, since: DateTime<Utc>) -> Result<Vec<MetricSample>> {
        self.op("metric_samples", async {
            let client = self.inner.client().await?;
            let rows = self
                .inner
                .query(&client, "metric_samples", SQL_SAMPLES, &[&ms(since)])
                .await?;
            let g = |row, i| self.inner.get::<f64>("metric_samples", row, i);
            let n = |row, i| {
                self.inner
                    .get::<i64>("metric_samples", row, i)
                    .map(|v| v.max(0) as u64)
            };
            let opt = |row, i| self.inner.get::<Option<f64>>("metric_samples", row, i);
            rows.iter()
                .map(|row| {
                    Ok(MetricSample {
                        at: from_ms(self.inner.get("metric_samples", row, 0)?),
                        cache_hit_rate: g(row, 1)?,
                        avg_response_ms: g(row, 2)?,
                        active_connections: n(row, 3)?,
                        error_rate: g(row, 4)?,
                        requests: n(row, 5)?,
                        p95_cached_ms: g(row, 6)?,
                        p95_uncached_ms: g(row, 7)?,
                        avg_cached_ms: opt(row, 8)?,
                        avg_uncached_ms: opt(row, 9)?,
                        http_requests: n(row, 10)?,
                        http_avg_ms: g(row, 11)?,
                        http_error_rate: g(row, 12)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn save_alert(&self, a: &Alert) -> Result<()> {
        self.op("save_alert", async {
            let client = self.inner.client().await?;
            self.inner
                .execute(
                    &client,
                    "insert_alert",
                    SQL_INSERT_ALERT,
                    &[
                        &ms(a.at),
                        &a.rule,
                        &a.severity.as_str(),
                        &a.value,
                        &a.threshold,
                        &a.message,
                    ],
                )
                .await
        })
        .await?;
        self.forget_summaries();
        Ok(())
    }

    async fn alerts(&self, since: DateTime<Utc>) -> Result<Vec<Alert>> {
        self.op("alerts", async {
            let client = self.inner.client().await?;
            let rows = self
                .inner
                .query(&client, "alerts", SQL_ALERTS, &[&ms(since)])
                .await?;
            rows.iter()
                .map(|row| {
                    let get = |i| self.inner.get::<f64>("alerts", row, i);
                    let severity: &str = self.inner.get("alerts", row, 2)?;
                    Ok(Alert {
                        at: from_ms(self.inner.get("alerts", row, 0)?),
                        rule: self.inner.get("alerts", row, 1)?,
                        severity: Severity::parse(severity).unwrap_or(Severity::Error),
                        value: get(3)?,
                        threshold: get(4)?,
                        message: self.inner.get("alerts", row, 5)?,
                    })
                })
                .collect()
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
        self.op("record_access", async {
            let client = self.inner.client().await?;
            let names: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
            self.inner
                .execute(
                    &client,
                    "record_access",
                    SQL_RECORD_ACCESS,
                    &[&names, &ms(Utc::now())],
                )
                .await
                .map(drop)
        })
        .await
    }

    async fn access_counts(&self, limit: usize) -> Result<Vec<(Symbol, u64)>> {
        self.op("access_counts", async {
            let client = self.inner.client().await?;
            let limit = limit.min(i64::MAX as usize) as i64;
            let rows = self
                .inner
                .query(&client, "access_counts", SQL_ACCESS_COUNTS, &[&limit])
                .await?;
            rows.iter()
                .map(|row| {
                    let name: &str = self.inner.get("access_counts", row, 0)?;
                    let count: i64 = self.inner.get("access_counts", row, 1)?;
                    Ok((Symbol::new(name), count.max(0) as u64))
                })
                .collect()
        })
        .await
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<Pruned> {
        let pruned = self
            .op("prune", async {
                let mut client = self.inner.client().await?;
                let tx = self.inner.timed("begin", client.transaction()).await?;
                let cutoff = ms(before);
                let runs = self
                    .inner
                    .execute(&tx, "prune_runs", SQL_PRUNE_RUNS, &[&cutoff])
                    .await?;
                let samples = self
                    .inner
                    .execute(&tx, "prune_samples", SQL_PRUNE_SAMPLES, &[&cutoff])
                    .await?;
                let alerts = self
                    .inner
                    .execute(&tx, "prune_alerts", SQL_PRUNE_ALERTS, &[&cutoff])
                    .await?;
                self.inner.timed("commit", tx.commit()).await?;
                // Space is reclaimed by the server's autovacuum; nothing to compact by hand.
                Ok(Pruned {
                    runs: runs as usize,
                    samples: samples as usize,
                    alerts: alerts as usize,
                })
            })
            .await?;
        self.forget_summaries();
        Ok(pruned)
    }

    async fn save_screen(&self, screen: &SavedScreen) -> Result<()> {
        self.op("save_screen", async {
            let client = self.inner.client().await?;
            self.inner
                .execute(
                    &client,
                    "save_screen",
                    SQL_SAVE_SCREEN,
                    &[
                        &screen.name,
                        &screen.spec.where_,
                        &screen.spec.sort,
                        &ms(screen.saved_at),
                    ],
                )
                .await
                .map(drop)
        })
        .await
    }

    async fn screens(&self) -> Result<Vec<SavedScreen>> {
        self.op("screens", async {
            let client = self.inner.client().await?;
            let rows = self.inner.query(&client, "screens", SQL_SCREENS, &[]).await?;
            rows.iter()
                .map(|row| {
                    Ok(SavedScreen {
                        name: self.inner.get("screens", row, 0)?,
                        spec: ScreenSpec {
                            where_: self.inner.get("screens", row, 1)?,
                            sort: self.inner.get("screens", row, 2)?,
                        },
                        saved_at: from_ms(self.inner.get("screens", row, 3)?),
                    })
                })
                .collect()
        })
        .await
    }

    async fn delete_screen(&self, name: &str) -> Result<bool> {
        self.op("delete_screen", async {
            let client = self.inner.client().await?;
            self.inner
                .execute(&client, "delete_screen", SQL_DELETE_SCREEN, &[&name])
                .await
                .map(|n| n > 0)
        })
        .await
    }

    fn query_stats(&self) -> Vec<QueryStats> {
        self.inner.profile.stats()
    }
}
