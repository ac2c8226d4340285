//! Scan runs in PostgreSQL: a run row, its ranked results in binary blocks (`result_block.rs`) and its
//! skipped symbols, written in the caller's transaction (a statement per [`WRITE_CHUNK`] results or skips)
//! and read back into a [`ScanReport`] from one snapshot.

use chrono::Utc;
use deadpool_postgres::{GenericClient, Object, Transaction};
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::Json;

use super::sql::*;
use super::{Inner, date_of, day, from_ms, ms, serde_name, unjson};
use crate::error::{Error, Result};
use crate::model::{DateRange, Symbol};
use crate::scan::{FilterCounts, ScanReport, ScanRequest, ScanResult, Skipped, StageTimings};
use crate::store::RunSummary;
use crate::store::result_block::{self, BLOCK_RESULTS};

/// Results or skipped symbols per insert statement.
const WRITE_CHUNK: usize = 1000;

/// The figures of a run kept as one JSON column, in the same shape as the SQLite store's.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
struct RunExtra {
    retries: u64,
    stale: usize,
    provider_calls: crate::provider::ProviderStats,
    warnings: Vec<String>,
    expected_session: Option<chrono::NaiveDate>,
    adjustments: usize,
    freshness: Option<String>,
    store_hits: usize,
    matched: Option<usize>,
    regime: Option<crate::screen::Regime>,
}

/// A read-only transaction that sees one snapshot: a run and its results as they were committed together.
pub(super) async fn snapshot<'a>(inner: &Inner, client: &'a mut Object) -> Result<Transaction<'a>> {
    inner
        .timed(
            "begin",
            client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start(),
        )
        .await
}

/// Saves `r` (replacing a run saved before with its id) in `tx`.
pub(super) async fn save(
    inner: &Inner,
    tx: &Transaction<'_>,
    request: Option<&ScanRequest>,
    r: &ScanReport,
) -> Result<()> {
    let state = serde_name(&r.state)?;
    let extra = RunExtra {
        retries: r.retries,
        stale: r.stale,
        provider_calls: r.provider_calls,
        warnings: r.warnings.clone(),
        expected_session: r.expected_session,
        adjustments: r.adjustments,
        freshness: r.freshness.clone(),
        store_hits: r.store_hits,
        matched: Some(r.matched),
        regime: r.regime.clone(),
    };
    let (n_results, n_skipped) = (r.results.len() as i64, r.skipped.len() as i64);
    let (universe, scanned) = (r.universe_size as i64, r.scanned as i64);
    let (from, to) = (day(r.range.from), day(r.range.to));
    // The run row first: a concurrent save of the same id waits on its lock, then replaces everything.
    inner
        .execute(
            tx,
            "upsert_run",
            SQL_UPSERT_RUN,
            &[
                &r.id,
                &ms(r.started_at),
                &ms(Utc::now()),
                &state,
                &r.error,
                &r.provider,
                &r.demo,
                &from,
                &to,
                &universe,
                &scanned,
                &n_results,
                &n_skipped,
                &r.timing.total_ms,
                &request.map(Json),
                &Json(&r.timing),
                &Json(&r.filtered),
                &Json(&r.cache),
                &Json(&extra),
            ],
        )
        .await?;
    inner
        .execute(tx, "delete_results", SQL_DELETE_RESULTS, &[&r.id])
        .await?;
    inner
        .execute(tx, "delete_results_json", SQL_DELETE_RESULTS_JSON, &[&r.id])
        .await?;
    inner
        .execute(tx, "delete_skipped", SQL_DELETE_SKIPPED, &[&r.id])
        .await?;
    // A statement per WRITE_CHUNK results, each a few blocks.
    let blocks: Vec<&[ScanResult]> = r.results.chunks(BLOCK_RESULTS).collect();
    let per_statement = (WRITE_CHUNK / BLOCK_RESULTS).max(1);
    for (i, chunk) in blocks.chunks(per_statement).enumerate() {
        let first = (i * per_statement) as i32;
        let numbers: Vec<i32> = (first..).take(chunk.len()).collect();
        let counts: Vec<i32> = chunk.iter().map(|b| b.len() as i32).collect();
        let data: Vec<Vec<u8>> = chunk.iter().map(|b| result_block::encode(b)).collect();
        inner
            .execute(
                tx,
                "insert_results",
                SQL_INSERT_RESULTS,
                &[&r.id, &numbers, &counts, &data],
            )
            .await?;
    }
    let offsets: Vec<usize> = (0..r.skipped.len()).step_by(WRITE_CHUNK).collect();
    for (start, chunk) in offsets.iter().zip(r.skipped.chunks(WRITE_CHUNK)) {
        let idx: Vec<i64> = (0..chunk.len()).map(|i| (start + i) as i64).collect();
        let symbols: Vec<&str> = chunk.iter().map(|s| s.symbol.as_str()).collect();
        let categories = chunk
            .iter()
            .map(|s| serde_name(&s.category))
            .collect::<Result<Vec<_>>>()?;
        let reasons: Vec<&str> = chunk.iter().map(|s| s.reason.as_str()).collect();
        inner
            .execute(
                tx,
                "insert_skipped",
                SQL_INSERT_SKIPPED,
                &[&r.id, &idx, &symbols, &categories, &reasons],
            )
            .await?;
    }
    Ok(())
}

/// The run `id` with its results and skipped symbols: three queries sent together.
pub(super) async fn load(inner: &Inner, c: &impl GenericClient, id: &str) -> Result<Option<ScanReport>> {
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
    let (runs, blocks, json_results, skipped) = futures::try_join!(
        inner.query(c, "load_run", SQL_RUN, &params),
        inner.query(c, "load_results", SQL_RESULTS, &params),
        inner.query(c, "load_results_json", SQL_RESULTS_JSON, &params),
        inner.query(c, "load_skipped", SQL_SKIPPED, &params),
    )?;
    let Some(row) = runs.first() else {
        return Ok(None);
    };
    let g = "load_run";
    let state: &str = inner.get(g, row, 2)?;
    let scanned: i64 = inner.get(g, row, 9)?;
    let universe: i64 = inner.get(g, row, 8)?;
    let timing: Json<StageTimings> = inner.get(g, row, 10)?;
    let filtered: Json<FilterCounts> = inner.get(g, row, 11)?;
    let cache: Json<crate::cache::CacheStats> = inner.get(g, row, 12)?;
    let extra: Json<RunExtra> = inner.get(g, row, 13)?;
    let extra = extra.0;
    let scanned = scanned.max(0) as usize;
    let mut results = Vec::new();
    for row in &blocks {
        let data: &[u8] = inner.get("load_results", row, 0)?;
        result_block::decode_into(data, &mut results).map_err(|e| Error::Store {
            detail: format!("load_results: unreadable stored value: {e}"),
        })?;
    }
    // Runs saved before schema version 2 have their results as JSONB rows.
    for row in &json_results {
        results.push(inner.get::<Json<ScanResult>>("load_results_json", row, 0)?.0);
    }
    Ok(Some(ScanReport {
        id: inner.get(g, row, 0)?,
        started_at: from_ms(inner.get(g, row, 1)?),
        state: unjson(&format!("\"{state}\""), "scan state")?,
        error: inner.get(g, row, 3)?,
        provider: inner.get(g, row, 4)?,
        demo: inner.get(g, row, 5)?,
        range: DateRange {
            from: date_of(inner.get(g, row, 6)?, "range")?,
            to: date_of(inner.get(g, row, 7)?, "range")?,
        },
        universe_size: universe.max(0) as usize,
        scanned,
        results,
        skipped: skipped
            .iter()
            .map(|r| {
                let category: &str = inner.get("load_skipped", r, 1)?;
                Ok(Skipped {
                    symbol: Symbol::new(inner.get::<&str>("load_skipped", r, 0)?),
                    category: unjson(&format!("\"{category}\""), "skip category")?,
                    reason: inner.get("load_skipped", r, 2)?,
                })
            })
            .collect::<Result<_>>()?,
        filtered: filtered.0,
        timing: timing.0,
        cache: cache.0,
        retries: extra.retries,
        stale: extra.stale,
        provider_calls: extra.provider_calls,
        warnings: extra.warnings,
        expected_session: extra.expected_session,
        adjustments: extra.adjustments,
        freshness: extra.freshness,
        store_hits: extra.store_hits,
        matched: extra.matched.unwrap_or(scanned),
        regime: extra.regime,
    }))
}

/// Summaries of the `limit` most recent runs, newest first, from the run table alone.
pub(super) async fn summaries(
    inner: &Inner,
    c: &impl GenericClient,
    limit: usize,
) -> Result<Vec<RunSummary>> {
    let limit = limit.min(i64::MAX as usize) as i64;
    let g = "recent_summaries";
    let rows = inner.query(c, g, SQL_RECENT_SUMMARIES, &[&limit]).await?;
    rows.iter()
        .map(|row| {
            let state: &str = inner.get(g, row, 1)?;
            let timing: Json<StageTimings> = inner.get(g, row, 3)?;
            let filtered: Json<FilterCounts> = inner.get(g, row, 7)?;
            let n = |i| inner.get::<i64>(g, row, i).map(|v| v.max(0) as usize);
            Ok(RunSummary {
                id: inner.get(g, row, 0)?,
                state: unjson(&format!("\"{state}\""), "scan state")?,
                started_at: from_ms(inner.get(g, row, 2)?),
                timing: timing.0,
                universe_size: n(4)?,
                scanned: n(5)?,
                skipped: n(6)?,
                filtered: filtered.0.total(),
            })
        })
        .collect()
}
