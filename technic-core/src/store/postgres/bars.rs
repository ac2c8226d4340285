//! Bars in PostgreSQL: year blocks in the codec of `codec.rs`, written a batch at a time.
//!
//! A batch is one transaction with a constant number of statements: lock the batch's symbols, read the
//! blocks it touches, merge in memory, delete what replacing updates drop, upsert the merged blocks (a
//! statement per [`WRITE_CHUNK`] blocks) and refresh the symbols' rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use deadpool_postgres::{GenericClient, Transaction};

use super::sql::*;
use super::{Inner, READ_CHUNK, date_of, day};
use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol};
use crate::store::{BarExtent, BarsUpdate, codec, merge_bars};

/// Blocks per upsert statement: bounds one message (a block of a year is about 11 KB).
const WRITE_CHUNK: usize = 1000;

/// A stable 64-bit key for the write lock of one source's symbol (FNV-1a: the same in every build, so
/// servers of different versions lock the same key).
pub(super) fn lock_key(source: &str, symbol: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in b"technic bars\x1f"
        .iter()
        .chain(source.as_bytes())
        .chain(b"\x1f")
        .chain(symbol.as_bytes())
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// What a batch leaves for one symbol.
struct Pending {
    /// A replacing update dropped what was stored before.
    cleared: bool,
    /// The blocks this batch changes, by year.
    blocks: BTreeMap<i32, Bars>,
    /// The dates the provider was asked for.
    fetched: (NaiveDate, NaiveDate),
}

fn bad_block(what: &str, e: String) -> Error {
    Error::Store {
        detail: format!("PostgreSQL store: {what}: {e}"),
    }
}

/// Writes `updates` of `source` in `tx`, in order (a later update of a symbol sees the earlier ones).
pub(super) async fn save_batch(
    inner: &Inner,
    tx: &Transaction<'_>,
    source: &str,
    updates: &[BarsUpdate],
    now_ms: i64,
) -> Result<()> {
    let mut keys: Vec<i64> = updates
        .iter()
        .map(|u| lock_key(source, u.symbol.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    inner
        .query(tx, "lock_symbols", SQL_LOCK_SYMBOLS, &[&keys])
        .await?;

    // The stored blocks the batch merges into (a replacing update ignores them).
    let mut pairs: BTreeSet<(&str, i32)> = BTreeSet::new();
    for u in updates.iter().filter(|u| !u.replace) {
        pairs.extend(u.bars.date.iter().map(|d| (u.symbol.as_str(), d.year())));
    }
    let (names, years): (Vec<&str>, Vec<i32>) = pairs.iter().copied().unzip();
    let rows = if pairs.is_empty() {
        Vec::new()
    } else {
        inner
            .query(
                tx,
                "load_existing_blocks",
                SQL_EXISTING_BLOCKS,
                &[&source, &names, &years],
            )
            .await?
    };
    let mut existing: HashMap<(&str, i32), &[u8]> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let key = (
            inner.get("load_existing_blocks", row, 0)?,
            inner.get("load_existing_blocks", row, 1)?,
        );
        existing.insert(key, inner.get("load_existing_blocks", row, 2)?);
    }

    let mut pending: BTreeMap<&str, Pending> = BTreeMap::new();
    for u in updates {
        let symbol = u.symbol.as_str();
        let p = pending.entry(symbol).or_insert_with(|| Pending {
            cleared: false,
            blocks: BTreeMap::new(),
            fetched: (u.fetched_from, u.fetched_to),
        });
        if u.replace {
            p.cleared = true;
            p.blocks.clear();
            p.fetched = (u.fetched_from, u.fetched_to);
        } else {
            p.fetched = (p.fetched.0.min(u.fetched_from), p.fetched.1.max(u.fetched_to));
        }
        let mut start = 0;
        while start < u.bars.len() {
            let year = u.bars.date[start].year();
            let end = start + u.bars.date[start..].partition_point(|d| d.year() == year);
            let mut new = Bars::with_capacity(end - start);
            for i in start..end {
                new.extend_one(&u.bars, i);
            }
            let base = match p.blocks.remove(&year) {
                Some(block) => block,
                None if p.cleared => Bars::default(),
                None => match existing.get(&(symbol, year)) {
                    Some(bytes) => {
                        let mut old = Bars::default();
                        codec::decode_into(bytes, &mut old)
                            .map_err(|e| bad_block("load_existing_blocks", e))?;
                        old
                    }
                    None => Bars::default(),
                },
            };
            p.blocks.insert(year, merge_bars(&base, &new));
            start = end;
        }
    }

    let cleared: Vec<&str> = pending
        .iter()
        .filter(|(_, p)| p.cleared)
        .map(|(s, _)| *s)
        .collect();
    if !cleared.is_empty() {
        inner
            .execute(
                tx,
                "delete_symbol_blocks",
                SQL_DELETE_SYMBOLS_BLOCKS,
                &[&source, &cleared],
            )
            .await?;
        inner
            .execute(tx, "delete_symbols", SQL_DELETE_SYMBOLS, &[&source, &cleared])
            .await?;
    }

    let blocks: Vec<(&str, i32, &Bars)> = pending
        .iter()
        .flat_map(|(s, p)| p.blocks.iter().map(move |(y, b)| (*s, *y, b)))
        .filter(|(_, _, b)| !b.is_empty())
        .collect();
    for chunk in blocks.chunks(WRITE_CHUNK) {
        let mut cols = BlockColumns::with_capacity(chunk.len());
        for (symbol, year, bars) in chunk {
            cols.push(symbol, *year, bars);
        }
        inner
            .execute(
                tx,
                "upsert_blocks",
                SQL_UPSERT_BLOCKS,
                &[
                    &source,
                    &cols.symbols,
                    &cols.years,
                    &cols.n_bars,
                    &cols.first,
                    &cols.last,
                    &cols.data,
                ],
            )
            .await?;
    }

    let symbols: Vec<&str> = pending.keys().copied().collect();
    let from: Vec<i32> = pending.values().map(|p| day(p.fetched.0)).collect();
    let to: Vec<i32> = pending.values().map(|p| day(p.fetched.1)).collect();
    inner
        .execute(
            tx,
            "upsert_symbols",
            SQL_UPSERT_SYMBOLS,
            &[&source, &symbols, &from, &to, &now_ms],
        )
        .await?;
    Ok(())
}

/// The columns of an upsert of blocks, as arrays.
struct BlockColumns<'a> {
    symbols: Vec<&'a str>,
    years: Vec<i32>,
    n_bars: Vec<i32>,
    first: Vec<i32>,
    last: Vec<i32>,
    data: Vec<Vec<u8>>,
}

impl<'a> BlockColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            symbols: Vec::with_capacity(n),
            years: Vec::with_capacity(n),
            n_bars: Vec::with_capacity(n),
            first: Vec::with_capacity(n),
            last: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, symbol: &'a str, year: i32, bars: &Bars) {
        let (Some(first), Some(last)) = (bars.date.first(), bars.date.last()) else {
            return;
        };
        self.symbols.push(symbol);
        self.years.push(year);
        self.n_bars.push(i32::try_from(bars.len()).unwrap_or(i32::MAX));
        self.first.push(day(*first));
        self.last.push(day(*last));
        self.data.push(codec::encode(bars, 0, bars.len()));
    }
}

/// Bars of `symbols` from `source` within `range`; symbols with none are absent.
pub(super) async fn load(
    inner: &Inner,
    c: &impl GenericClient,
    source: &str,
    symbols: &[Symbol],
    range: DateRange,
) -> Result<HashMap<Symbol, Bars>> {
    let by_name: HashMap<&str, &Symbol> = symbols.iter().map(|s| (s.as_str(), s)).collect();
    let (from, to) = (range.from.year(), range.to.year());
    let mut out = HashMap::with_capacity(symbols.len());
    for chunk in symbols.chunks(READ_CHUNK) {
        let names: Vec<&str> = chunk.iter().map(Symbol::as_str).collect();
        let rows = inner
            .query(
                c,
                "load_bar_blocks",
                SQL_LOAD_BLOCKS,
                &[&source, &names, &from, &to],
            )
            .await?;
        let mut per_symbol: HashMap<&str, Vec<(i32, &[u8])>> = HashMap::new();
        for row in &rows {
            let name: &str = inner.get("load_bar_blocks", row, 0)?;
            let year: i32 = inner.get("load_bar_blocks", row, 1)?;
            let data: &[u8] = inner.get("load_bar_blocks", row, 2)?;
            per_symbol.entry(name).or_default().push((year, data));
        }
        for (name, mut blocks) in per_symbol {
            blocks.sort_unstable_by_key(|(year, _)| *year);
            let mut bars = Bars::with_capacity(blocks.len() * 262);
            for (_, data) in blocks {
                codec::decode_into(data, &mut bars).map_err(|e| bad_block("load_bar_blocks", e))?;
            }
            let bars = bars.into_range(range);
            if !bars.is_empty() {
                let symbol = by_name
                    .get(name)
                    .map_or_else(|| Symbol::new(name), |s| (*s).clone());
                out.insert(symbol, bars);
            }
        }
    }
    Ok(out)
}

/// What is stored from `source` for each of `symbols`.
pub(super) async fn extents(
    inner: &Inner,
    c: &impl GenericClient,
    source: &str,
    symbols: &[Symbol],
) -> Result<HashMap<Symbol, BarExtent>> {
    let by_name: HashMap<&str, &Symbol> = symbols.iter().map(|s| (s.as_str(), s)).collect();
    let mut out = HashMap::with_capacity(symbols.len());
    for chunk in symbols.chunks(READ_CHUNK) {
        let names: Vec<&str> = chunk.iter().map(Symbol::as_str).collect();
        let rows = inner
            .query(c, "bar_extents", SQL_EXTENTS, &[&source, &names])
            .await?;
        for row in &rows {
            let name: &str = inner.get("bar_extents", row, 0)?;
            let day_at = |i: usize, what: &str| -> Result<NaiveDate> {
                date_of(inner.get("bar_extents", row, i)?, what)
            };
            let n: i32 = inner.get("bar_extents", row, 3)?;
            let extent = BarExtent {
                first: day_at(1, "first")?,
                last: day_at(2, "last")?,
                n_bars: n.max(0) as usize,
                fetched_from: day_at(4, "fetched_from")?,
                fetched_to: day_at(5, "fetched_to")?,
            };
            let symbol = by_name
                .get(name)
                .map_or_else(|| Symbol::new(name), |s| (*s).clone());
            out.insert(symbol, extent);
        }
    }
    Ok(out)
}
