//! The SQLite schema and its migrations, tracked in `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] moves the schema one version up; pending ones run in one transaction. A file
//! whose `user_version` is above [`SCHEMA_VERSION`] was written by a newer Technic and is refused, never
//! downgraded; a file that is not a SQLite database is refused and left untouched.

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use crate::error::{Error, Result};

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 6;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: [&str; 6] = [
    r"
-- Bars in blocks of one symbol-year, column-wise (see codec.rs). Keyed by (symbol, year): loading the
-- lazy window of many symbols is `symbol IN (…) AND year BETWEEN ? AND ?` on the primary key.
CREATE TABLE bar_blocks (
    symbol   TEXT    NOT NULL,
    year     INTEGER NOT NULL,
    n_bars   INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day INTEGER NOT NULL,
    data     BLOB    NOT NULL,
    PRIMARY KEY (symbol, year)
) WITHOUT ROWID;

-- (v1) One row per symbol: what is stored and which dates the provider was asked for. Read before every fetch to
-- decide what to ask the provider for (the delta).
CREATE TABLE symbols (
    symbol     TEXT    NOT NULL PRIMARY KEY,
    first_day  INTEGER NOT NULL,
    last_day   INTEGER NOT NULL,
    n_bars     INTEGER NOT NULL,
    fetched_from INTEGER NOT NULL,
    fetched_to INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE scan_runs (
    id            TEXT    NOT NULL PRIMARY KEY,
    started_ms    INTEGER NOT NULL,
    finished_ms   INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    error         TEXT,
    provider      TEXT    NOT NULL,
    demo          INTEGER NOT NULL,
    range_from    INTEGER NOT NULL,
    range_to      INTEGER NOT NULL,
    universe_size INTEGER NOT NULL,
    scanned       INTEGER NOT NULL,
    n_results     INTEGER NOT NULL,
    n_skipped     INTEGER NOT NULL,
    total_ms      REAL    NOT NULL,
    request       TEXT,
    timing        TEXT    NOT NULL,
    filtered      TEXT    NOT NULL,
    cache         TEXT    NOT NULL
);
-- `recent_scans` orders by start time, newest first.
CREATE INDEX scan_runs_by_start ON scan_runs (started_ms);

-- Results by run (the only way they are read), in rank order.
CREATE TABLE scan_results (
    run_id      TEXT    NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    rank        INTEGER NOT NULL,
    symbol      TEXT    NOT NULL,
    tech_rating REAL    NOT NULL,
    signal      TEXT    NOT NULL,
    result      TEXT    NOT NULL,
    PRIMARY KEY (run_id, rank)
) WITHOUT ROWID;

CREATE TABLE scan_skipped (
    run_id   TEXT    NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    idx      INTEGER NOT NULL,
    symbol   TEXT    NOT NULL,
    category TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    PRIMARY KEY (run_id, idx)
) WITHOUT ROWID;

-- Metric samples and alerts are read by time range (`technic report --since`).
CREATE TABLE metric_samples (
    id                 INTEGER PRIMARY KEY,
    at_ms              INTEGER NOT NULL,
    cache_hit_rate     REAL    NOT NULL,
    avg_response_ms    REAL    NOT NULL,
    active_connections INTEGER NOT NULL,
    error_rate         REAL    NOT NULL,
    requests           INTEGER NOT NULL,
    p95_cached_ms      REAL    NOT NULL,
    p95_uncached_ms    REAL    NOT NULL
);
CREATE INDEX metric_samples_by_time ON metric_samples (at_ms);

CREATE TABLE alerts (
    id        INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    rule      TEXT    NOT NULL,
    severity  TEXT    NOT NULL,
    value     REAL    NOT NULL,
    threshold REAL    NOT NULL,
    message   TEXT    NOT NULL
);
CREATE INDEX alerts_by_time ON alerts (at_ms);

CREATE TABLE symbol_access (
    symbol         TEXT    NOT NULL PRIMARY KEY,
    count          INTEGER NOT NULL,
    last_access_ms INTEGER NOT NULL
) WITHOUT ROWID;
-- The warmer reads the most accessed symbols first.
CREATE INDEX symbol_access_by_count ON symbol_access (count DESC, symbol);
",
    r"
-- v2: bars belong to a source (provider kind and base URL). v1 stored bars per symbol only, so a store filled
-- from one source answered another. Which source wrote a v1 bar is not recorded anywhere, so v1 rows are
-- kept, unchanged, under the source 'unknown (schema v1)', which no provider names: no scan reads them, and
-- each source fetches its own history afresh. Nothing is deleted.
CREATE TABLE bar_blocks_v2 (
    source    TEXT    NOT NULL,
    symbol    TEXT    NOT NULL,
    year      INTEGER NOT NULL,
    n_bars    INTEGER NOT NULL,
    first_day INTEGER NOT NULL,
    last_day  INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (source, symbol, year)
) WITHOUT ROWID;
INSERT INTO bar_blocks_v2 (source, symbol, year, n_bars, first_day, last_day, data)
    SELECT 'unknown (schema v1)', symbol, year, n_bars, first_day, last_day, data FROM bar_blocks;
DROP TABLE bar_blocks;
ALTER TABLE bar_blocks_v2 RENAME TO bar_blocks;

CREATE TABLE symbols_v2 (
    source       TEXT    NOT NULL,
    symbol       TEXT    NOT NULL,
    first_day    INTEGER NOT NULL,
    last_day     INTEGER NOT NULL,
    n_bars       INTEGER NOT NULL,
    fetched_from INTEGER NOT NULL,
    fetched_to   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    PRIMARY KEY (source, symbol)
) WITHOUT ROWID;
INSERT INTO symbols_v2 (source, symbol, first_day, last_day, n_bars, fetched_from, fetched_to, updated_ms)
    SELECT 'unknown (schema v1)', symbol, first_day, last_day, n_bars, fetched_from, fetched_to, updated_ms
    FROM symbols;
DROP TABLE symbols;
ALTER TABLE symbols_v2 RENAME TO symbols;
",
    r"
-- v3: a run's provider-call counters, stale count, warnings and freshness, as one JSON object. Runs saved
-- before have NULL here and read back with zeros, as they always did.
ALTER TABLE scan_runs ADD COLUMN extra TEXT;
",
    r"
-- v4: samples also carry the cached/uncached lookup means and the API's requests, mean response time and
-- server-error rate (the monitor is the one metrics source of server and CLI). Older samples read back
-- with no means and no API requests.
ALTER TABLE metric_samples ADD COLUMN avg_cached_ms REAL;
ALTER TABLE metric_samples ADD COLUMN avg_uncached_ms REAL;
ALTER TABLE metric_samples ADD COLUMN http_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE metric_samples ADD COLUMN http_avg_ms REAL NOT NULL DEFAULT 0;
ALTER TABLE metric_samples ADD COLUMN http_error_rate REAL NOT NULL DEFAULT 0;
",
    r"
-- v5: saved screens (name -> expression and sort), listed by name.
CREATE TABLE screens (
    name       TEXT    PRIMARY KEY,
    expression TEXT,
    sort       TEXT,
    saved_ms   INTEGER NOT NULL
) WITHOUT ROWID;
",
    r"
-- v6: results in binary blocks of up to 128 ranks (see result_block.rs): about 440 bytes per result where
-- a row of JSON took about 4.7 KB. The JSON rows of runs saved before are kept as they are, under a new
-- name (a rename copies nothing, so opening a large store stays instant); they read back as before and
-- go with their runs, by retention or by the run limit.
ALTER TABLE scan_results RENAME TO scan_results_json;
CREATE TABLE scan_results (
    run_id    TEXT    NOT NULL REFERENCES scan_runs (id) ON DELETE CASCADE,
    block     INTEGER NOT NULL,
    n_results INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (run_id, block)
) WITHOUT ROWID;
",
];

/// Sets the connection's pragmas and brings the schema up to [`SCHEMA_VERSION`].
///
/// Several processes may open one new file at once: the migration runs in an IMMEDIATE transaction
/// (one writer at a time) and re-reads the version inside it, so only the first process migrates.
pub(super) fn prepare(conn: &mut Connection, path: &str) -> Result<()> {
    // Wait for other processes' locks instead of failing at once, from the first statement on.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| open_error(path, &e))?;
    // SQLite answers "database is locked" at once, without waiting, where waiting could deadlock: when
    // several processes open a new file together, all but one fail to switch it to WAL. Such an open is
    // tried again after a short pause until the others are done (6 threads opening one new file failed
    // in 5 runs of 7 before this).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut pause = std::time::Duration::from_millis(5);
    loop {
        match prepare_once(conn, path) {
            Err(Failed::Busy(e)) if std::time::Instant::now() < deadline => {
                tracing::debug!(path, error = %e, "store busy while opening; trying again");
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            Err(Failed::Busy(e)) => return Err(open_error(path, &e)),
            Err(Failed::Other(e)) => return Err(e),
            Ok(()) => return Ok(()),
        }
    }
}

/// Why an attempt to open failed: a lock held elsewhere (worth another try) or anything else.
enum Failed {
    Busy(rusqlite::Error),
    Other(Error),
}

impl Failed {
    fn of(path: &str) -> impl Fn(rusqlite::Error) -> Failed + '_ {
        move |e| match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Failed::Busy(e),
            _ => Failed::Other(open_error(path, &e)),
        }
    }
}

impl From<Error> for Failed {
    fn from(e: Error) -> Self {
        Failed::Other(e)
    }
}

fn prepare_once(conn: &mut Connection, path: &str) -> std::result::Result<(), Failed> {
    // The first read of the header tells a non-database apart before anything is written.
    let version = user_version(conn, path).map_err(Failed::from)?;
    // WAL lets readers run beside a writer and survives a killed process; NORMAL sync is durable across
    // process crashes in WAL mode (only an OS crash can lose the last commits).
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(Failed::of(path))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path, mode, "store could not switch to WAL mode");
    }
    let set = |name: &str, value: &dyn rusqlite::ToSql| {
        conn.pragma_update(None, name, value).map_err(Failed::of(path))
    };
    set("synchronous", &"NORMAL")?;
    set("foreign_keys", &true)?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Failed::of(path))?;
    let version = user_version(&tx, path)?;
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = from as i64 + 1;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", to))
            .map_err(|e| {
                Failed::Other(Error::Store {
                    detail: format!("{path}: migrating the schema to version {to} failed: {e}"),
                })
            })?;
        tracing::info!(path, version = to, "store schema migrated");
    }
    tx.commit().map_err(Failed::of(path))
}

/// The file's schema version; refuses versions newer than this build's.
fn user_version(conn: &Connection, path: &str) -> Result<i64> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| open_error(path, &e))?;
    if version > SCHEMA_VERSION {
        return Err(Error::Store {
            detail: format!(
                "{path} has schema version {version}, newer than the {SCHEMA_VERSION} this Technic \
                 understands; upgrade Technic or point --store at another file (the file was not changed)"
            ),
        });
    }
    Ok(version)
}

fn open_error(path: &str, e: &rusqlite::Error) -> Error {
    let detail = match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => format!(
            "{path} is not a Technic store (not a SQLite database); it was left untouched — \
             point --store at another file or move this one away"
        ),
        Some(ErrorCode::DatabaseCorrupt) => {
            format!("{path} is corrupt ({e}); it was left untouched — move it away to start a new store")
        }
        _ => format!("cannot open store {path}: {e}"),
    };
    Error::Store { detail }
}
