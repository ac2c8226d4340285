//! Every SQL statement of the PostgreSQL store, parameterised. Batches travel as arrays unpacked by
//! `unnest`, so one statement writes a whole batch. The hot reads are checked against their query plans
//! in the tests.

/// Per-symbol write locks, taken in the order given (sorted, so two writers never wait on each other in a
/// cycle); released at commit.
pub(super) const SQL_LOCK_SYMBOLS: &str =
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS t(k)";
/// The stored blocks of the given (symbol, year) pairs.
pub(super) const SQL_EXISTING_BLOCKS: &str = "SELECT b.symbol, b.year, b.data \
     FROM unnest($2::text[], $3::int4[]) AS k(symbol, year) \
     JOIN bar_blocks b ON b.source = $1::text AND b.symbol = k.symbol AND b.year = k.year";
pub(super) const SQL_DELETE_SYMBOLS_BLOCKS: &str =
    "DELETE FROM bar_blocks WHERE source = $1::text AND symbol = ANY($2::text[])";
pub(super) const SQL_DELETE_SYMBOLS: &str =
    "DELETE FROM symbols WHERE source = $1::text AND symbol = ANY($2::text[])";
pub(super) const SQL_UPSERT_BLOCKS: &str = "INSERT INTO bar_blocks (source, symbol, year, n_bars, first_day, last_day, data) \
     SELECT $1::text, * FROM unnest($2::text[], $3::int4[], $4::int4[], $5::int4[], $6::int4[], $7::bytea[]) \
     ON CONFLICT (source, symbol, year) DO UPDATE SET n_bars = excluded.n_bars, first_day = excluded.first_day, \
     last_day = excluded.last_day, data = excluded.data";
/// Refreshes each symbol's row from its blocks (after they were written in the same transaction) and
/// widens the range the provider was asked for. Symbols with no block left get no row.
pub(super) const SQL_UPSERT_SYMBOLS: &str = "INSERT INTO symbols (source, symbol, first_day, last_day, n_bars, fetched_from, \
     fetched_to, updated_ms) \
     SELECT $1::text, u.symbol, s.first_day, s.last_day, s.n_bars, least(u.fetched_from, s.first_day), \
     greatest(u.fetched_to, s.last_day), $5::int8 \
     FROM unnest($2::text[], $3::int4[], $4::int4[]) AS u(symbol, fetched_from, fetched_to) \
     CROSS JOIN LATERAL (SELECT min(b.first_day) AS first_day, max(b.last_day) AS last_day, \
     sum(b.n_bars)::int4 AS n_bars FROM bar_blocks b WHERE b.source = $1::text AND b.symbol = u.symbol) s \
     WHERE s.n_bars IS NOT NULL ORDER BY u.symbol \
     ON CONFLICT (source, symbol) DO UPDATE SET first_day = excluded.first_day, last_day = excluded.last_day, \
     n_bars = excluded.n_bars, fetched_from = least(symbols.fetched_from, excluded.fetched_from), \
     fetched_to = greatest(symbols.fetched_to, excluded.fetched_to), updated_ms = excluded.updated_ms";
/// Blocks of many symbols within a span of years; rows come in no particular order (sorting 100 MB of
/// blocks is the client's cheaper job).
pub(super) const SQL_LOAD_BLOCKS: &str = "SELECT symbol, year, data FROM bar_blocks \
     WHERE source = $1::text AND symbol = ANY($2::text[]) AND year BETWEEN $3::int4 AND $4::int4";
pub(super) const SQL_EXTENTS: &str = "SELECT symbol, first_day, last_day, n_bars, fetched_from, fetched_to FROM symbols \
     WHERE source = $1::text AND symbol = ANY($2::text[])";

pub(super) const SQL_UPSERT_RUN: &str = "INSERT INTO scan_runs (id, started_ms, finished_ms, state, error, provider, demo, \
     range_from, range_to, universe_size, scanned, n_results, n_skipped, total_ms, request, timing, filtered, cache, \
     extra) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
     ON CONFLICT (id) DO UPDATE SET started_ms = excluded.started_ms, finished_ms = excluded.finished_ms, \
     state = excluded.state, error = excluded.error, provider = excluded.provider, demo = excluded.demo, \
     range_from = excluded.range_from, range_to = excluded.range_to, universe_size = excluded.universe_size, \
     scanned = excluded.scanned, n_results = excluded.n_results, n_skipped = excluded.n_skipped, \
     total_ms = excluded.total_ms, request = excluded.request, timing = excluded.timing, \
     filtered = excluded.filtered, cache = excluded.cache, extra = excluded.extra";
pub(super) const SQL_DELETE_RESULTS: &str = "DELETE FROM scan_results WHERE run_id = $1";
pub(super) const SQL_DELETE_RESULTS_JSON: &str = "DELETE FROM scan_results_json WHERE run_id = $1";
pub(super) const SQL_DELETE_SKIPPED: &str = "DELETE FROM scan_skipped WHERE run_id = $1";
pub(super) const SQL_INSERT_RESULTS: &str = "INSERT INTO scan_results (run_id, block, n_results, data) \
     SELECT $1::text, * FROM unnest($2::int4[], $3::int4[], $4::bytea[])";
pub(super) const SQL_INSERT_SKIPPED: &str = "INSERT INTO scan_skipped (run_id, idx, symbol, category, reason) \
     SELECT $1::text, * FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[])";
pub(super) const SQL_RUN: &str = "SELECT id, started_ms, state, error, provider, demo, range_from, range_to, universe_size, \
     scanned, timing, filtered, cache, extra FROM scan_runs WHERE id = $1";
pub(super) const SQL_RESULTS: &str = "SELECT data FROM scan_results WHERE run_id = $1 ORDER BY block";
/// Results of runs saved before schema version 2, one JSONB row each.
pub(super) const SQL_RESULTS_JSON: &str =
    "SELECT result FROM scan_results_json WHERE run_id = $1 ORDER BY rank";
pub(super) const SQL_SKIPPED: &str =
    "SELECT symbol, category, reason FROM scan_skipped WHERE run_id = $1 ORDER BY idx";
pub(super) const SQL_RECENT_RUNS: &str =
    "SELECT id FROM scan_runs ORDER BY started_ms DESC, id DESC LIMIT $1";
pub(super) const SQL_RECENT_SUMMARIES: &str = "SELECT id, state, started_ms, timing, universe_size, scanned, n_skipped, \
     filtered FROM scan_runs ORDER BY started_ms DESC, id DESC LIMIT $1";

pub(super) const SQL_INSERT_SAMPLE: &str = "INSERT INTO metric_samples (at_ms, cache_hit_rate, avg_response_ms, \
     active_connections, error_rate, requests, p95_cached_ms, p95_uncached_ms, avg_cached_ms, avg_uncached_ms, \
     http_requests, http_avg_ms, http_error_rate) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";
pub(super) const SQL_SAMPLES: &str = "SELECT at_ms, cache_hit_rate, avg_response_ms, active_connections, error_rate, \
     requests, p95_cached_ms, p95_uncached_ms, avg_cached_ms, avg_uncached_ms, http_requests, http_avg_ms, \
     http_error_rate FROM metric_samples WHERE at_ms >= $1 ORDER BY at_ms, id";
pub(super) const SQL_INSERT_ALERT: &str = "INSERT INTO alerts (at_ms, rule, severity, value, threshold, message) \
     VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const SQL_ALERTS: &str = "SELECT at_ms, rule, severity, value, threshold, message FROM alerts \
     WHERE at_ms >= $1 ORDER BY at_ms, id";
/// Counts each symbol of the batch once per occurrence; rows are locked in symbol order so concurrent
/// batches never deadlock.
pub(super) const SQL_RECORD_ACCESS: &str = "INSERT INTO symbol_access (symbol, count, last_access_ms) \
     SELECT s, count(*), $2::int8 FROM unnest($1::text[]) AS t(s) GROUP BY s ORDER BY s \
     ON CONFLICT (symbol) DO UPDATE SET count = symbol_access.count + excluded.count, \
     last_access_ms = excluded.last_access_ms";
pub(super) const SQL_ACCESS_COUNTS: &str =
    "SELECT symbol, count FROM symbol_access ORDER BY count DESC, symbol LIMIT $1";
pub(super) const SQL_PRUNE_RUNS: &str = "DELETE FROM scan_runs WHERE started_ms < $1";
pub(super) const SQL_KEEP_LATEST_RUNS: &str = "DELETE FROM scan_runs WHERE id NOT IN \
     (SELECT id FROM scan_runs ORDER BY started_ms DESC, id DESC LIMIT $1)";
pub(super) const SQL_PRUNE_SAMPLES: &str = "DELETE FROM metric_samples WHERE at_ms < $1";
pub(super) const SQL_PRUNE_ALERTS: &str = "DELETE FROM alerts WHERE at_ms < $1";
pub(super) const SQL_SAVE_SCREEN: &str = "INSERT INTO screens (name, expression, sort, saved_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET expression = excluded.expression, sort = excluded.sort, saved_ms = excluded.saved_ms";
pub(super) const SQL_SCREENS: &str = "SELECT name, expression, sort, saved_ms FROM screens ORDER BY name";
pub(super) const SQL_DELETE_SCREEN: &str = "DELETE FROM screens WHERE name = $1";
