//! The PostgreSQL schema and its migrations, tracked in the table `technic_schema_version` (one row per
//! applied migration).
//!
//! Version 1 holds what the SQLite store holds at its version 5 (version 2 adds its version 6: results in
//! binary blocks): bar blocks per (source, symbol, year) in
//! the same codec, the per-symbol extents, scan runs with their results and skipped symbols, metric
//! samples with every field, alerts, symbol access counts and saved screens. Pending migrations run in
//! one transaction holding an advisory lock keyed by the schema's name: servers that start together
//! queue, the first migrates and the others find the work done. A schema written by a newer Technic is
//! refused, never changed.

use deadpool_postgres::{GenericClient, Object};

use super::Inner;
use crate::error::{Error, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 2;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: [&str; 2] = [
    r#"
-- Bars in blocks of one symbol-year, column-wise (codec.rs), exactly as the SQLite store keeps them.
-- Loading the window of many symbols is `source = $1 AND symbol = ANY($2) AND year BETWEEN $3 AND $4`
-- on the primary key. Blocks are dense binary: kept out of line without (useless) compression.
CREATE TABLE bar_blocks (
    source    TEXT COLLATE "C" NOT NULL,
    symbol    TEXT COLLATE "C" NOT NULL,
    year      INTEGER NOT NULL,
    n_bars    INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day  INTEGER NOT NULL,
    data      BYTEA   NOT NULL,
    PRIMARY KEY (source, symbol, year)
);
ALTER TABLE bar_blocks ALTER COLUMN data SET STORAGE EXTERNAL;

-- One row per source and symbol: what is stored and which dates the provider was asked for (days since
-- 0001-01-01, the codec's numbering). Read before every fetch to decide what to ask the provider for.
CREATE TABLE symbols (
    source       TEXT COLLATE "C" NOT NULL,
    symbol       TEXT COLLATE "C" NOT NULL,
    first_day    INTEGER NOT NULL,
    last_day     INTEGER NOT NULL,
    n_bars       INTEGER NOT NULL,
    fetched_from INTEGER NOT NULL,
    fetched_to   INTEGER NOT NULL,
    updated_ms   BIGINT  NOT NULL,
    PRIMARY KEY (source, symbol)
);

-- Scan runs, from any server. Times are milliseconds since the epoch, as in the SQLite store.
CREATE TABLE scan_runs (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    started_ms    BIGINT  NOT NULL,
    finished_ms   BIGINT  NOT NULL,
    state         TEXT    NOT NULL,
    error         TEXT,
    provider      TEXT    NOT NULL,
    demo          BOOLEAN NOT NULL,
    range_from    INTEGER NOT NULL,
    range_to      INTEGER NOT NULL,
    universe_size BIGINT  NOT NULL,
    scanned       BIGINT  NOT NULL,
    n_results     BIGINT  NOT NULL,
    n_skipped     BIGINT  NOT NULL,
    total_ms      DOUBLE PRECISION NOT NULL,
    request       JSONB,
    timing        JSONB   NOT NULL,
    filtered      JSONB   NOT NULL,
    cache         JSONB   NOT NULL,
    extra         JSONB   NOT NULL
);
-- Recent runs: newest first, read backwards.
CREATE INDEX scan_runs_by_start ON scan_runs (started_ms, id);

-- Results by run (the only way they are read), in rank order.
CREATE TABLE scan_results (
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    rank        BIGINT NOT NULL,
    symbol      TEXT   NOT NULL,
    tech_rating DOUBLE PRECISION NOT NULL,
    signal      TEXT   NOT NULL,
    result      JSONB  NOT NULL,
    PRIMARY KEY (run_id, rank)
);

CREATE TABLE scan_skipped (
    run_id   TEXT COLLATE "C" NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    idx      BIGINT NOT NULL,
    symbol   TEXT   NOT NULL,
    category TEXT   NOT NULL,
    reason   TEXT   NOT NULL,
    PRIMARY KEY (run_id, idx)
);

-- Metric samples and alerts are read by time (`since`), oldest first.
CREATE TABLE metric_samples (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms              BIGINT NOT NULL,
    cache_hit_rate     DOUBLE PRECISION NOT NULL,
    avg_response_ms    DOUBLE PRECISION NOT NULL,
    active_connections BIGINT NOT NULL,
    error_rate         DOUBLE PRECISION NOT NULL,
    requests           BIGINT NOT NULL,
    p95_cached_ms      DOUBLE PRECISION NOT NULL,
    p95_uncached_ms    DOUBLE PRECISION NOT NULL,
    avg_cached_ms      DOUBLE PRECISION,
    avg_uncached_ms    DOUBLE PRECISION,
    http_requests      BIGINT NOT NULL DEFAULT 0,
    http_avg_ms        DOUBLE PRECISION NOT NULL DEFAULT 0,
    http_error_rate    DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX metric_samples_by_time ON metric_samples (at_ms, id);

CREATE TABLE alerts (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms     BIGINT NOT NULL,
    rule      TEXT   NOT NULL,
    severity  TEXT   NOT NULL,
    value     DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    message   TEXT   NOT NULL
);
CREATE INDEX alerts_by_time ON alerts (at_ms, id);

CREATE TABLE symbol_access (
    symbol         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    count          BIGINT NOT NULL,
    last_access_ms BIGINT NOT NULL
);
-- The warmer reads the most accessed symbols first.
CREATE INDEX symbol_access_by_count ON symbol_access (count DESC, symbol);

-- Saved screens (name -> expression and sort), listed by name.
CREATE TABLE screens (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    expression TEXT,
    sort       TEXT,
    saved_ms   BIGINT NOT NULL
);
"#,
    r#"
-- v2: results in binary blocks of up to 128 ranks (see result_block.rs), as the SQLite store keeps them
-- since its version 6: about 440 bytes per result where a row of JSONB took about 2 KB. The JSONB rows of
-- runs saved before are kept as they are, under a new name (a rename copies nothing); they read back as
-- before and go with their runs. Blocks are dense binary: kept out of line without (useless) compression.
ALTER TABLE scan_results RENAME TO scan_results_json;
ALTER INDEX scan_results_pkey RENAME TO scan_results_json_pkey;
ALTER TABLE scan_results_json RENAME CONSTRAINT scan_results_run_id_fkey TO scan_results_json_run_id_fkey;
CREATE TABLE scan_results (
    run_id    TEXT COLLATE "C" NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    block     INTEGER NOT NULL,
    n_results INTEGER NOT NULL,
    data      BYTEA   NOT NULL,
    PRIMARY KEY (run_id, block)
);
ALTER TABLE scan_results ALTER COLUMN data SET STORAGE EXTERNAL;
"#,
];

/// The schema tables are created in, and whether its own version table exists (not one of another schema
/// further along the search_path).
const SQL_CURRENT_SCHEMA: &str = "SELECT current_schema()::text, \
     to_regclass(quote_ident(current_schema()) || '.technic_schema_version') IS NOT NULL";
const SQL_VERSION: &str = "SELECT coalesce(max(version), 0) FROM technic_schema_version";
/// One lock per schema: fleets sharing a database in different schemas do not wait for each other.
const SQL_LOCK: &str = "SELECT pg_advisory_xact_lock(hashtextextended('technic schema ' || $1::text, 0))";
const SQL_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS technic_schema_version (
    version    INTEGER PRIMARY KEY,
    applied_ms BIGINT  NOT NULL,
    applied_by TEXT    NOT NULL
)";
const SQL_RECORD_VERSION: &str = "INSERT INTO technic_schema_version (version, applied_ms, applied_by) \
     VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, $2)";

/// The schema in use and whether it has a version table yet.
async fn current_schema(inner: &Inner, c: &impl GenericClient) -> Result<(String, bool)> {
    let rows = inner.query(c, "schema_version", SQL_CURRENT_SCHEMA, &[]).await?;
    let row = rows.first().ok_or_else(|| Error::Store {
        detail: format!("PostgreSQL at {}: current_schema() returned no row", inner.server),
    })?;
    let schema: Option<String> = inner.get("schema_version", row, 0)?;
    let schema = schema.ok_or_else(|| Error::Store {
        detail: format!(
            "PostgreSQL at {}: no schema of the search_path exists; create it or fix the URL's \
             options=-c search_path=…",
            inner.server
        ),
    })?;
    Ok((schema, inner.get("schema_version", row, 1)?))
}

/// The highest migration applied, refusing a schema newer than this build's.
async fn applied(inner: &Inner, c: &impl GenericClient, schema: &str) -> Result<i32> {
    let rows = inner.query(c, "schema_version", SQL_VERSION, &[]).await?;
    let version: i32 = match rows.first() {
        Some(row) => inner.get("schema_version", row, 0)?,
        None => 0,
    };
    if version > SCHEMA_VERSION {
        return Err(Error::Store {
            detail: format!(
                "PostgreSQL at {} (schema {schema}) has Technic schema version {version}, newer than the \
                 {SCHEMA_VERSION} this Technic understands; upgrade Technic or use another database or \
                 schema (nothing was changed)",
                inner.server
            ),
        });
    }
    Ok(version)
}

/// The schema version stored on the server (0 for an empty schema).
pub(super) async fn version(inner: &Inner, c: &impl GenericClient) -> Result<i32> {
    let (schema, exists) = current_schema(inner, c).await?;
    if !exists {
        return Ok(0);
    }
    applied(inner, c, &schema).await
}

/// Brings the schema up to [`SCHEMA_VERSION`].
pub(super) async fn migrate(inner: &Inner, client: &mut Object) -> Result<()> {
    // Fast path: a current schema needs neither the lock nor any DDL.
    if version(inner, &*client).await? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = inner.timed("migrate_begin", client.transaction()).await?;
    let (schema, _) = current_schema(inner, &tx).await?;
    inner.query(&tx, "migrate_lock", SQL_LOCK, &[&schema]).await?;
    inner
        .timed("migrate", tx.batch_execute(SQL_VERSION_TABLE))
        .await?;
    let from = applied(inner, &tx, &schema).await?;
    let by = format!("technic {}", env!("CARGO_PKG_VERSION"));
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let to = done as i32 + 1;
        tx.batch_execute(sql).await.map_err(|e| Error::Store {
            detail: format!(
                "PostgreSQL at {} (schema {schema}): migrating to version {to} failed: {}",
                inner.server,
                super::describe(&e)
            ),
        })?;
        inner
            .execute(&tx, "migrate", SQL_RECORD_VERSION, &[&to, &by])
            .await?;
        tracing::info!(server = %inner.server, schema, version = to, "PostgreSQL store schema migrated");
    }
    inner.timed("migrate_commit", tx.commit()).await
}
