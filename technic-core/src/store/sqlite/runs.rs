//! Scan runs in SQLite: a run row, its ranked results in binary blocks (`result_block.rs`) and its skipped
//! symbols, written in the caller's transaction and read back into a [`ScanReport`].

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::sql::*;
use super::{date_of, from_ms, json, ms, store_err, timed, unjson};
use crate::error::Result;
use crate::model::{DateRange, Symbol};
use crate::scan::{ScanReport, ScanRequest, ScanResult, Skipped};
use crate::store::codec;
use crate::store::profile::QueryProfile;
use crate::store::result_block::{self, BLOCK_RESULTS};

/// The figures of a run kept as one JSON column (schema version 3).
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

pub(super) fn load_run(conn: &Connection, p: &QueryProfile, id: &str) -> Result<Option<ScanReport>> {
    type RunRow = (
        String,
        i64,
        String,
        Option<String>,
        String,
        bool,
        i64,
        i64,
        i64,
        i64,
        String,
        String,
        String,
        Option<String>,
    );
    let row: Option<RunRow> = timed(p, "load_run", || {
        conn.prepare_cached(SQL_RUN)?
            .query_row(params![id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                    r.get(13)?,
                ))
            })
            .optional()
    })?;
    let Some((
        id,
        started,
        state,
        error,
        provider,
        demo,
        from,
        to,
        universe_size,
        scanned,
        timing,
        filtered,
        cache,
        extra,
    )) = row
    else {
        return Ok(None);
    };
    let extra: RunExtra = match extra.as_deref() {
        Some(text) => unjson(text, "run figures")?,
        None => RunExtra::default(),
    };
    let mut results = Vec::new();
    timed(p, "load_results", || {
        let mut stmt = conn.prepare_cached(SQL_RESULTS)?;
        let mut rows = stmt.query(params![id])?;
        while let Some(row) = rows.next()? {
            result_block::decode_into(row.get_ref(0)?.as_blob()?, &mut results).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
            })?;
        }
        Ok(())
    })?;
    // Runs saved before schema version 6 have their results as JSON rows (and no blocks).
    if results.is_empty() {
        let json_results: Vec<String> = timed(p, "load_results_json", || {
            conn.prepare_cached(SQL_RESULTS_JSON)?
                .query_map(params![id], |r| r.get(0))?
                .collect()
        })?;
        for text in &json_results {
            results.push(unjson::<ScanResult>(text, "scan result")?);
        }
    }
    let skipped: Vec<(String, String, String)> = timed(p, "load_skipped", || {
        conn.prepare_cached(SQL_SKIPPED)?
            .query_map(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    })?;
    let range = DateRange {
        from: date_of(from, "range").map_err(|e| store_err("load_run", e))?,
        to: date_of(to, "range").map_err(|e| store_err("load_run", e))?,
    };
    Ok(Some(ScanReport {
        state: unjson(&format!("\"{state}\""), "scan state")?,
        error,
        provider,
        demo,
        started_at: from_ms(started),
        range,
        universe_size: universe_size as usize,
        scanned: scanned as usize,
        results,
        skipped: skipped
            .into_iter()
            .map(|(symbol, category, reason)| {
                Ok(Skipped {
                    symbol: Symbol::new(symbol),
                    reason,
                    category: unjson(&format!("\"{category}\""), "skip category")?,
                })
            })
            .collect::<Result<_>>()?,
        filtered: unjson(&filtered, "filter counts")?,
        timing: unjson(&timing, "stage timings")?,
        cache: unjson(&cache, "cache stats")?,
        // Runs saved before schema version 3 have no extras: zero and empty.
        retries: extra.retries,
        stale: extra.stale,
        provider_calls: extra.provider_calls,
        warnings: extra.warnings,
        expected_session: extra.expected_session,
        adjustments: extra.adjustments,
        freshness: extra.freshness,
        store_hits: extra.store_hits,
        // Runs saved before screens existed matched everything they scanned.
        matched: extra.matched.unwrap_or(scanned as usize),
        regime: extra.regime,
        id,
    }))
}

pub(super) fn save_run(
    tx: &Transaction<'_>,
    p: &QueryProfile,
    request: Option<&ScanRequest>,
    r: &ScanReport,
) -> Result<()> {
    let state = json(&r.state)?;
    let request = request.map(json).transpose()?;
    let (timing, filtered, cache) = (json(&r.timing)?, json(&r.filtered)?, json(&r.cache)?);
    let extra = json(&RunExtra {
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
    })?;
    // Replacing a run deletes its old results and skips through the foreign keys' ON DELETE CASCADE.
    timed(p, "delete_run", || {
        tx.prepare_cached(SQL_DELETE_RUN)?.execute(params![r.id])
    })?;
    timed(p, "insert_run", || {
        tx.prepare_cached(SQL_INSERT_RUN)?.execute(params![
            r.id,
            ms(r.started_at),
            ms(Utc::now()),
            state.trim_matches('"'),
            r.error,
            r.provider,
            r.demo,
            codec::day(r.range.from),
            codec::day(r.range.to),
            r.universe_size as i64,
            r.scanned as i64,
            r.results.len() as i64,
            r.skipped.len() as i64,
            r.timing.total_ms,
            request,
            timing,
            filtered,
            cache,
            extra
        ])
    })?;
    for (block, results) in r.results.chunks(BLOCK_RESULTS).enumerate() {
        let data = result_block::encode(results);
        timed(p, "insert_results", || {
            tx.prepare_cached(SQL_INSERT_RESULTS)?.execute(params![
                r.id,
                block as i64,
                results.len() as i64,
                data
            ])
        })?;
    }
    for (idx, s) in r.skipped.iter().enumerate() {
        let category = json(&s.category)?;
        timed(p, "insert_skipped", || {
            tx.prepare_cached(SQL_INSERT_SKIPPED)?.execute(params![
                r.id,
                idx as i64,
                s.symbol.as_str(),
                category.trim_matches('"'),
                s.reason
            ])
        })?;
    }
    Ok(())
}
