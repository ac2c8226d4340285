//! The binary layout of a block of scan results: up to [`BLOCK_RESULTS`] ranked results of one run in one
//! value, so a 5000-symbol scan is 40 stored rows of a few hundred bytes per result instead of 5000 rows
//! of JSON (about 4.7 KB per result in SQLite, with its field names, decimal floats and overflow pages).
//!
//! A block is a version byte ([`VERSION`]), a varint count, then each result:
//!
//! - varint rank; the symbol, name, sector and industry as varint length + UTF-8;
//! - a flags byte ([`STALE`], [`AS_OF`], [`AS_OF_DAY`], [`PLAN`], [`PLAN_SHORT`], [`PLAN_LIQUIDITY`],
//!   [`EXPLAIN`]) and the signal as one byte (0 Strong Long … 3 Avoid);
//! - the date as a zigzag varint day number (days since 0001-01-01, the bar codec's numbering), then the
//!   `as_of` day the same way when it is present and differs from the date;
//! - a 5-byte little-endian bitmap of which of the [`OPTIONAL`] values are present;
//! - `close` and `tech_rating`, then each present optional value, as little-endian `f64` (bit for bit:
//!   NaN payloads, infinities and −0 come back as saved);
//! - with a plan: entry, stop, target, reward/risk, position value and risk amount as `f64`, the shares
//!   as a varint;
//! - with a non-empty explanation (a scan leaves it empty): a varint count of parts, each its component,
//!   points, weight, optional score, a varint count of inputs (each a name and an optional value) and its
//!   rule. An optional `f64` here is a byte (0 absent, 1 present) and the value.
//!
//! Decoding refuses an unknown version, a truncated block and trailing bytes. A new field means a new
//! version; blocks of older versions stay readable.

use chrono::NaiveDate;

use crate::model::Symbol;
use crate::scan::ScanResult;
use crate::score::{ExplainInput, ExplainPart, Signal, SubScores};
use crate::screen::TradePlan;
use crate::screen::plan::Side;

/// Results per block: a 5000-symbol scan is 40 blocks of about 55 KB.
pub(crate) const BLOCK_RESULTS: usize = 128;

/// The layout this build writes.
const VERSION: u8 = 1;

/// `stale` is true.
const STALE: u8 = 1;
/// `as_of` is present.
const AS_OF: u8 = 1 << 1;
/// `as_of` differs from `date` and follows it.
const AS_OF_DAY: u8 = 1 << 2;
/// A trade plan follows the values.
const PLAN: u8 = 1 << 3;
/// The plan is short (else long).
const PLAN_SHORT: u8 = 1 << 4;
/// The plan's size was cut for liquidity.
const PLAN_LIQUIDITY: u8 = 1 << 5;
/// The explanation ends the result.
const EXPLAIN: u8 = 1 << 6;

/// Bytes of the presence bitmap.
const BITMAP_BYTES: usize = 5;

/// Declares the optional `f64` fields in stored order (never reorder: append, with a new version).
macro_rules! optional_fields {
    ($($($field:ident).+),* $(,)?) => {
        /// The names of the optional values, in stored order (bit `i` of the bitmap is `OPTIONAL[i]`).
        pub(crate) const OPTIONAL: &[&str] = &[$(stringify!($($field).+)),*];

        fn read_optional(r: &ScanResult) -> [Option<f64>; OPTIONAL.len()] {
            [$(r.$($field).+),*]
        }

        fn write_optional(r: &mut ScanResult, values: [Option<f64>; OPTIONAL.len()]) {
            let mut values = values.into_iter();
            $(r.$($field).+ = values.next().flatten();)*
        }
    };
}

optional_fields!(
    change_pct,
    volume,
    dollar_volume_20,
    atr_pct,
    bb_width,
    rs_21,
    rs_63,
    rs_126,
    rs_252,
    sub_scores.trend,
    sub_scores.momentum,
    sub_scores.volume,
    sub_scores.volatility,
    sub_scores.oscillator,
    sub_scores.breakout,
    indicators.sma_20,
    indicators.sma_50,
    indicators.sma_200,
    indicators.ema_12,
    indicators.ema_26,
    indicators.macd,
    indicators.macd_signal,
    indicators.macd_hist,
    indicators.rsi_14,
    indicators.atr_14,
    indicators.adx_14,
    indicators.bb_upper,
    indicators.bb_middle,
    indicators.bb_lower,
    indicators.bb_percent_b,
    indicators.high_252_dist,
    indicators.low_252_dist,
    indicators.volume_ratio_20,
    indicators.return_21,
    indicators.return_63,
    indicators.return_126,
    indicators.return_252,
);

const _: () = assert!(OPTIONAL.len() <= 8 * BITMAP_BYTES);

/// Encodes `results` as one block.
pub(crate) fn encode(results: &[ScanResult]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + results.len() * 480);
    out.push(VERSION);
    put_varint(&mut out, results.len() as u64);
    for r in results {
        encode_one(&mut out, r);
    }
    out
}

/// Appends the results of a block to `out`. Returns an error message when the block is malformed.
pub(crate) fn decode_into(block: &[u8], out: &mut Vec<ScanResult>) -> Result<(), String> {
    let mut input = Reader { bytes: block };
    let version = input.byte()?;
    if version != VERSION {
        return Err(format!(
            "result block has layout version {version}; this build reads version {VERSION}"
        ));
    }
    let n = input.varint()?;
    // Every result takes at least 20 bytes: a corrupt count cannot make this reserve much.
    out.reserve(usize::try_from(n).unwrap_or(0).min(block.len() / 20));
    for _ in 0..n {
        out.push(decode_one(&mut input)?);
    }
    if !input.bytes.is_empty() {
        return Err(format!(
            "result block has {} bytes after its last result",
            input.bytes.len()
        ));
    }
    Ok(())
}

fn encode_one(out: &mut Vec<u8>, r: &ScanResult) {
    put_varint(out, r.rank as u64);
    for text in [r.symbol.as_str(), &r.name, &r.sector, &r.industry] {
        put_str(out, text);
    }
    let date = day(r.date);
    let as_of = r.as_of.map(day).filter(|&d| d != date);
    let mut flags = 0;
    let mut set = |on: bool, flag: u8| {
        if on {
            flags |= flag;
        }
    };
    set(r.stale, STALE);
    set(r.as_of.is_some(), AS_OF);
    set(as_of.is_some(), AS_OF_DAY);
    set(r.trade_plan.is_some(), PLAN);
    if let Some(plan) = &r.trade_plan {
        set(plan.side == Side::Short, PLAN_SHORT);
        set(plan.liquidity_limited, PLAN_LIQUIDITY);
    }
    set(!r.explain.is_empty(), EXPLAIN);
    out.push(flags);
    out.push(signal_code(r.signal));
    put_ivarint(out, date);
    if let Some(d) = as_of {
        put_ivarint(out, d);
    }
    let values = read_optional(r);
    let bitmap = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_some())
        .fold(0u64, |bits, (i, _)| bits | (1 << i));
    out.extend_from_slice(&bitmap.to_le_bytes()[..BITMAP_BYTES]);
    for v in [r.close, r.tech_rating]
        .into_iter()
        .chain(values.into_iter().flatten())
    {
        out.extend_from_slice(&v.to_le_bytes());
    }
    if let Some(p) = &r.trade_plan {
        for v in [
            p.entry,
            p.stop,
            p.target,
            p.reward_risk,
            p.position_value,
            p.risk_amount,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        put_varint(out, p.shares);
    }
    if !r.explain.is_empty() {
        put_explain(out, &r.explain);
    }
}

fn put_explain(out: &mut Vec<u8>, parts: &[ExplainPart]) {
    put_varint(out, parts.len() as u64);
    for part in parts {
        put_str(out, &part.component);
        out.extend_from_slice(&part.points.to_le_bytes());
        out.extend_from_slice(&part.weight.to_le_bytes());
        put_option(out, part.score);
        put_varint(out, part.inputs.len() as u64);
        for input in &part.inputs {
            put_str(out, &input.name);
            put_option(out, input.value);
        }
        put_str(out, &part.rule);
    }
}

fn read_explain(input: &mut Reader<'_>) -> Result<Vec<ExplainPart>, String> {
    let n = input.usize()?;
    let mut parts = Vec::with_capacity(n.min(input.bytes.len()));
    for _ in 0..n {
        let component = input.string()?;
        let (points, weight, score) = (input.f64()?, input.f64()?, input.option()?);
        let n_inputs = input.usize()?;
        let mut inputs = Vec::with_capacity(n_inputs.min(input.bytes.len()));
        for _ in 0..n_inputs {
            inputs.push(ExplainInput {
                name: input.string()?,
                value: input.option()?,
            });
        }
        parts.push(ExplainPart {
            component,
            points,
            weight,
            score,
            inputs,
            rule: input.string()?,
        });
    }
    Ok(parts)
}

fn decode_one(input: &mut Reader<'_>) -> Result<ScanResult, String> {
    let rank = input.usize()?;
    let symbol = Symbol::new(input.str()?);
    let (name, sector, industry) = (input.string()?, input.string()?, input.string()?);
    let flags = input.byte()?;
    let signal = signal_of(input.byte()?)?;
    let date = date(input.ivarint()?)?;
    let as_of = match (flags & AS_OF != 0, flags & AS_OF_DAY != 0) {
        (false, _) => None,
        (true, false) => Some(date),
        (true, true) => Some(self::date(input.ivarint()?)?),
    };
    let mut bitmap = [0; 8];
    bitmap[..BITMAP_BYTES].copy_from_slice(input.take(BITMAP_BYTES)?);
    let bitmap = u64::from_le_bytes(bitmap);
    let close = input.f64()?;
    let tech_rating = input.f64()?;
    let mut values = [None; OPTIONAL.len()];
    for (i, v) in values.iter_mut().enumerate() {
        if bitmap & (1 << i) != 0 {
            *v = Some(input.f64()?);
        }
    }
    let trade_plan = if flags & PLAN != 0 {
        let side = if flags & PLAN_SHORT != 0 {
            Side::Short
        } else {
            Side::Long
        };
        let (entry, stop, target) = (input.f64()?, input.f64()?, input.f64()?);
        let (reward_risk, position_value, risk_amount) = (input.f64()?, input.f64()?, input.f64()?);
        Some(TradePlan {
            side,
            entry,
            stop,
            target,
            reward_risk,
            shares: input.varint()?,
            position_value,
            risk_amount,
            liquidity_limited: flags & PLAN_LIQUIDITY != 0,
        })
    } else {
        None
    };
    let explain = if flags & EXPLAIN != 0 {
        read_explain(input)?
    } else {
        Vec::new()
    };
    let mut r = ScanResult {
        rank,
        symbol,
        name,
        sector,
        industry,
        date,
        as_of,
        close,
        change_pct: None,
        volume: None,
        dollar_volume_20: None,
        atr_pct: None,
        bb_width: None,
        rs_21: None,
        rs_63: None,
        rs_126: None,
        rs_252: None,
        tech_rating,
        signal,
        sub_scores: SubScores::default(),
        indicators: Default::default(),
        stale: flags & STALE != 0,
        trade_plan,
        explain,
    };
    write_optional(&mut r, values);
    Ok(r)
}

fn signal_code(s: Signal) -> u8 {
    match s {
        Signal::StrongLong => 0,
        Signal::Long => 1,
        Signal::Neutral => 2,
        Signal::Avoid => 3,
    }
}

fn signal_of(code: u8) -> Result<Signal, String> {
    Ok(match code {
        0 => Signal::StrongLong,
        1 => Signal::Long,
        2 => Signal::Neutral,
        3 => Signal::Avoid,
        _ => return Err(format!("result block holds an unknown signal code {code}")),
    })
}

fn day(d: NaiveDate) -> i64 {
    super::codec::day(d)
}

fn date(day: i64) -> Result<NaiveDate, String> {
    super::codec::date(day).ok_or_else(|| format!("result block holds an invalid day number {day}"))
}

/// LEB128: 7 bits a byte, low first.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A signed varint, zigzag-mapped so small negative numbers stay short.
fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_option(out: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(&v.to_le_bytes());
        }
        None => out.push(0),
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The unread rest of a block.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.bytes.len() {
            return Err("result block ends inside a result".to_owned());
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("result block holds a varint longer than 64 bits".to_owned())
    }

    fn ivarint(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn usize(&mut self) -> Result<usize, String> {
        let v = self.varint()?;
        usize::try_from(v).map_err(|_| format!("result block holds a count too large: {v}"))
    }

    fn f64(&mut self) -> Result<f64, String> {
        let b = self.take(8)?;
        Ok(f64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
    }

    fn option(&mut self) -> Result<Option<f64>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.f64().map(Some),
            b => Err(format!("result block holds a bad option tag {b}")),
        }
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.usize()?;
        std::str::from_utf8(self.take(n)?).map_err(|e| format!("result block holds bad UTF-8: {e}"))
    }

    fn string(&mut self) -> Result<String, String> {
        self.str().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests;
