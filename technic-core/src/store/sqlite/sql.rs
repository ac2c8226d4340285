//! Every SQL statement of the SQLite store, parameterised; `{in}` marks an `IN` list filled by
//! `with_in_list`. The hot ones are checked against their query plans in the tests.

pub(super) const SQL_LOAD_BLOCKS: &str = "SELECT symbol, data FROM bar_blocks WHERE source = ? AND symbol IN ({in}) AND year BETWEEN ? AND ? ORDER BY symbol, year";
pub(super) const SQL_EXTENTS: &str = "SELECT symbol, first_day, last_day, n_bars, fetched_from, fetched_to FROM symbols WHERE source = ? AND symbol IN ({in})";
pub(super) const SQL_BLOCK: &str =
    "SELECT data FROM bar_blocks WHERE source = ?3 AND symbol = ?1 AND year = ?2";
pub(super) const SQL_UPSERT_BLOCK: &str = "INSERT INTO bar_blocks (source, symbol, year, n_bars, first_day, last_day, data) \
     VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (source, symbol, year) DO UPDATE SET \
     n_bars = excluded.n_bars, first_day = excluded.first_day, last_day = excluded.last_day, data = excluded.data";
pub(super) const SQL_SYMBOL_SPAN: &str =
    "SELECT min(first_day), max(last_day), sum(n_bars) FROM bar_blocks WHERE source = ?2 AND symbol = ?1";
pub(super) const SQL_UPSERT_SYMBOL: &str = "INSERT INTO symbols (source, symbol, first_day, last_day, n_bars, fetched_from, fetched_to, \
     updated_ms) VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (source, symbol) DO UPDATE SET first_day = excluded.first_day, \
     last_day = excluded.last_day, n_bars = excluded.n_bars, \
     fetched_from = min(symbols.fetched_from, excluded.fetched_from), \
     fetched_to = max(symbols.fetched_to, excluded.fetched_to), updated_ms = excluded.updated_ms";
pub(super) const SQL_TOUCH_SYMBOL: &str = "UPDATE symbols SET fetched_from = min(fetched_from, ?2), \
     fetched_to = max(fetched_to, ?3), updated_ms = ?4 WHERE source = ?5 AND symbol = ?1";
pub(super) const SQL_DELETE_SYMBOL_BLOCKS: &str = "DELETE FROM bar_blocks WHERE source = ?1 AND symbol = ?2";
pub(super) const SQL_DELETE_SYMBOL: &str = "DELETE FROM symbols WHERE source = ?1 AND symbol = ?2";
pub(super) const SQL_DELETE_RUN: &str = "DELETE FROM scan_runs WHERE id = ?1";
pub(super) const SQL_INSERT_RUN: &str = "INSERT INTO scan_runs (id, started_ms, finished_ms, state, error, provider, demo, \
     range_from, range_to, universe_size, scanned, n_results, n_skipped, total_ms, request, timing, filtered, cache, \
     extra) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)";
pub(super) const SQL_INSERT_RESULTS: &str =
    "INSERT INTO scan_results (run_id, block, n_results, data) VALUES (?1, ?2, ?3, ?4)";
pub(super) const SQL_INSERT_SKIPPED: &str =
    "INSERT INTO scan_skipped (run_id, idx, symbol, category, reason) VALUES (?1, ?2, ?3, ?4, ?5)";
pub(super) const SQL_RUN: &str = "SELECT id, started_ms, state, error, provider, demo, range_from, range_to, universe_size, \
     scanned, timing, filtered, cache, extra FROM scan_runs WHERE id = ?1";
pub(super) const SQL_RESULTS: &str = "SELECT data FROM scan_results WHERE run_id = ?1 ORDER BY block";
/// Results of runs saved before schema version 6, one JSON row each.
pub(super) const SQL_RESULTS_JSON: &str =
    "SELECT result FROM scan_results_json WHERE run_id = ?1 ORDER BY rank";
pub(super) const SQL_SKIPPED: &str =
    "SELECT symbol, category, reason FROM scan_skipped WHERE run_id = ?1 ORDER BY idx";
pub(super) const SQL_RECENT_RUNS: &str = "SELECT id FROM scan_runs ORDER BY started_ms DESC LIMIT ?1";
pub(super) const SQL_INSERT_SAMPLE: &str = "INSERT INTO metric_samples (at_ms, cache_hit_rate, avg_response_ms, \
     active_connections, error_rate, requests, p95_cached_ms, p95_uncached_ms, avg_cached_ms, avg_uncached_ms, \
     http_requests, http_avg_ms, http_error_rate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
pub(super) const SQL_SAMPLES: &str = "SELECT at_ms, cache_hit_rate, avg_response_ms, active_connections, error_rate, \
     requests, p95_cached_ms, p95_uncached_ms, avg_cached_ms, avg_uncached_ms, http_requests, http_avg_ms, \
     http_error_rate FROM metric_samples WHERE at_ms >= ?1 ORDER BY at_ms";
pub(super) const SQL_INSERT_ALERT: &str = "INSERT INTO alerts (at_ms, rule, severity, value, threshold, message) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
pub(super) const SQL_ALERTS: &str = "SELECT at_ms, rule, severity, value, threshold, message FROM alerts \
     WHERE at_ms >= ?1 ORDER BY at_ms";
pub(super) const SQL_RECORD_ACCESS: &str = "INSERT INTO symbol_access (symbol, count, last_access_ms) VALUES (?1, 1, ?2) \
     ON CONFLICT (symbol) DO UPDATE SET count = count + 1, last_access_ms = excluded.last_access_ms";
pub(super) const SQL_ACCESS_COUNTS: &str =
    "SELECT symbol, count FROM symbol_access ORDER BY count DESC, symbol LIMIT ?1";
pub(super) const SQL_PRUNE_RUNS: &str = "DELETE FROM scan_runs WHERE started_ms < ?1";
pub(super) const SQL_KEEP_LATEST_RUNS: &str = "DELETE FROM scan_runs WHERE id NOT IN \
     (SELECT id FROM scan_runs ORDER BY started_ms DESC, id DESC LIMIT ?1)";
pub(super) const SQL_PRUNE_SAMPLES: &str = "DELETE FROM metric_samples WHERE at_ms < ?1";
pub(super) const SQL_PRUNE_ALERTS: &str = "DELETE FROM alerts WHERE at_ms < ?1";
pub(super) const SQL_RECENT_SUMMARIES: &str = "SELECT id, state, started_ms, timing, universe_size, scanned, n_skipped, \
     filtered FROM scan_runs ORDER BY started_ms DESC LIMIT ?1";
pub(super) const SQL_SAVE_SCREEN: &str = "INSERT INTO screens (name, expression, sort, saved_ms) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (name) DO UPDATE SET expression = excluded.expression, sort = excluded.sort, saved_ms = excluded.saved_ms";
pub(super) const SQL_SCREENS: &str = "SELECT name, expression, sort, saved_ms FROM screens ORDER BY name";
pub(super) const SQL_DELETE_SCREEN: &str = "DELETE FROM screens WHERE name = ?1";
