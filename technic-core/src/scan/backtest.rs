//! Screen backtests: what a screen picked on each session of a period, and what happened next.
//!
//! For each session D from `from` to `to`, the screen is evaluated on each symbol's bars dated ≤ D only, as
//! `scan --as-of D` would; the forward return of a pick is `close[D+h] ÷ close[D] − 1`, `h` sessions of that
//! symbol later. The whole period is computed in one pass per symbol: the bars are cut after `to` (nothing
//! later is read for any day), the fields the screen reads are computed for every session of the period at
//! once ([`Snapshot::recent_masked`] steps the recursive indicators through the history once), and the
//! screen reads them at each day's offset. Only the forward returns look past D, by design.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::reporter::Reporter;
use super::{Deps, Filters, ScanRequest, ScanState, Skipped, UniverseSelection};
use crate::error::{Error, Result};
use crate::indicators::{ALL_WINDOW_INDICATORS, Snapshot};
use crate::model::{Bars, DateRange, Symbol, UniverseEntry};
use crate::progress::{ProgressSink, Stage};
use crate::score::Signal;
use crate::screen::fields::{N_NUMERIC, idx};
use crate::screen::regime::{EQUAL_WEIGHT, IndexAccumulator};
use crate::screen::{Features, Row, Screen, ScreenSpec, SortKey};

/// Sessions of history before `from` that every indicator needs (SMA 200, 252-session extremes and
/// returns, five sessions of look back).
pub const WARM_UP_SESSIONS: usize = 260;

/// The longest horizon, in sessions.
pub const MAX_HORIZON: usize = 252;

/// The longest period a backtest covers, in calendar days (30 years): every session of it is in the report.
pub const MAX_SPAN_DAYS: i64 = 30 * 365;

/// What to backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestRequest {
    /// The symbols.
    pub universe: UniverseSelection,
    /// Universe filters (sector, `max_symbols`).
    pub filters: Filters,
    /// The screen: an expression and an order.
    pub screen: ScreenSpec,
    /// Keep the best `top` picks a day by the sort (default: all picks).
    pub top: Option<usize>,
    /// Forward horizons in sessions (the first is the main one).
    pub horizons: Vec<usize>,
    /// First session (default: the first with a year of history before it).
    pub from: Option<NaiveDate>,
    /// Last session (default: the last with the longest horizon after it).
    pub to: Option<NaiveDate>,
    /// The benchmark of `rs_*` (default: the equal-weight index of the universe).
    pub benchmark: Option<Symbol>,
    /// Fetches in flight at once.
    pub fetch_concurrency: usize,
}

impl Default for BacktestRequest {
    fn default() -> Self {
        Self {
            universe: UniverseSelection::Provider,
            filters: Filters::default(),
            screen: ScreenSpec::default(),
            top: None,
            horizons: vec![21],
            from: None,
            to: None,
            benchmark: None,
            fetch_concurrency: 32,
        }
    }
}

/// One session of a backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestDay {
    /// The session.
    pub date: NaiveDate,
    /// What the screen picked (best first when sorted or cut to `top`).
    pub symbols: Vec<Symbol>,
    /// Mean forward return of the picks at the first horizon (`None`: no picks, or no future yet).
    pub forward_return_mean: Option<f64>,
    /// Mean forward return of every symbol trading that day, at the first horizon.
    pub universe_forward_return_mean: Option<f64>,
    /// The picks' mean forward return per horizon (`"21"` → …).
    pub forward_returns: BTreeMap<String, Option<f64>>,
    /// The universe's mean forward return per horizon.
    pub universe_forward_returns: BTreeMap<String, Option<f64>>,
    /// Symbols trading that day (the day's universe).
    pub universe: usize,
}

/// Figures of one calendar year at one horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct YearSummary {
    /// The year.
    pub year: i32,
    /// Sessions with forward returns.
    pub sessions: usize,
    /// Picks.
    pub picks: usize,
    /// Share of picks with a positive forward return.
    pub hit_rate: Option<f64>,
    /// Mean forward return of the picks.
    pub mean_return: Option<f64>,
    /// Mean forward return of the universe (over the same sessions).
    pub universe_mean_return: Option<f64>,
    /// Mean over sessions with picks of (picks' mean − universe mean).
    pub excess_return: Option<f64>,
}

/// One point of an equity curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    /// The session.
    pub date: NaiveDate,
    /// The portfolio's value (1 at the start).
    pub portfolio: f64,
    /// The equal-weight universe's value (1 at the start).
    pub universe: f64,
}

/// An equal-weight portfolio of each rebalance day's picks, held `horizon` sessions, then replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Portfolio {
    /// Rebalances (every `horizon` sessions from the first).
    pub rebalances: usize,
    /// Positions opened.
    pub trades: usize,
    /// Final value ÷ 1 − 1 (cash, 0 %, when a rebalance had no picks).
    pub total_return: f64,
    /// The same for holding the whole universe equally weighted.
    pub universe_total_return: f64,
    /// Largest fall from a peak of the portfolio's value, as a fraction (0.2 = −20 %).
    pub max_drawdown: f64,
    /// The values at each rebalance, and at the end.
    pub equity: Vec<EquityPoint>,
}

/// The summary at one horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonSummary {
    /// Sessions ahead.
    pub horizon: usize,
    /// Sessions with forward returns at this horizon.
    pub sessions: usize,
    /// Sessions left out: not `horizon` sessions of data after them yet.
    pub sessions_without_future: usize,
    /// Picks over those sessions.
    pub picks: usize,
    /// Mean picks a session.
    pub picks_per_session: f64,
    /// Share of picks with a positive forward return.
    pub hit_rate: Option<f64>,
    /// Mean forward return of the picks.
    pub mean_return: Option<f64>,
    /// Median forward return of the picks.
    pub median_return: Option<f64>,
    /// Mean forward return of the universe (every symbol, every session).
    pub universe_mean_return: Option<f64>,
    /// Mean over sessions with picks of (picks' mean − universe mean).
    pub excess_return: Option<f64>,
    /// Per calendar year.
    pub per_year: Vec<YearSummary>,
    /// The equal-weight portfolio rebalanced every `horizon` sessions.
    pub portfolio: Portfolio,
}

/// Everything a backtest produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestReport {
    /// Its id.
    pub id: String,
    /// Complete or cancelled.
    pub state: ScanState,
    /// Provider name.
    pub provider: String,
    /// True for synthetic demo data.
    pub demo: bool,
    /// The expression (`None`: every symbol, ordered by the sort).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// The order of picks.
    pub sort: Option<String>,
    /// Picks kept per session.
    pub top: Option<usize>,
    /// First and last session.
    pub from: NaiveDate,
    /// Last session.
    pub to: NaiveDate,
    /// The horizons, in sessions.
    pub horizons: Vec<usize>,
    /// The benchmark of `rs_*`.
    pub benchmark: String,
    /// Symbols in the universe.
    pub universe_size: usize,
    /// Symbols that could not be loaded.
    pub skipped: Vec<Skipped>,
    /// Each session.
    pub days: Vec<BacktestDay>,
    /// The first horizon's summary.
    pub summary: HorizonSummary,
    /// One summary per horizon.
    pub summaries: Vec<HorizonSummary>,
    /// Wall time in milliseconds.
    pub elapsed_ms: f64,
}

/// What one symbol brings to a backtest, computed once.
struct Prepared {
    entry: UniverseEntry,
    /// Its fields for every session from `first` to `last` (plus the look back before `first`).
    features: Features,
    /// Dates of bars `first..=last`.
    dates: Vec<NaiveDate>,
    /// Closes of bars `first..` up to `last + the longest horizon`.
    closes: Vec<f64>,
}

impl Prepared {
    /// Index into `dates` of the bar dated `day`.
    fn at(&self, day: NaiveDate) -> Option<usize> {
        self.dates.binary_search(&day).ok()
    }

    fn forward(&self, i: usize, h: usize) -> f64 {
        match (self.closes.get(i), self.closes.get(i + h)) {
            (Some(&c0), Some(&c1)) if c0 > 0.0 => c1 / c0 - 1.0,
            _ => f64::NAN,
        }
    }
}

/// The fields a backtest computes every session: what the screen reads, the sort key, the rating when it
/// orders picks or the screen reads `signal`.
fn field_mask(screen: Option<&Screen>, sort: Option<SortKey>, top: Option<usize>) -> u64 {
    let mut mask = screen.map_or(0, |s| s.needs().0.iter().fold(0, |a, b| a | b));
    match sort {
        Some(k) => mask |= 1 << k.field,
        None if top.is_some() => mask |= 1 << idx::TECH_RATING,
        None => {}
    }
    if screen.is_some_and(|s| s.uses_text("signal")) {
        mask |= 1 << idx::TECH_RATING;
    }
    mask
}

/// The window indicators the fields in `mask` need (all of them for the rating).
fn snapshot_mask(mask: u64) -> u32 {
    if (idx::TECH_RATING..=idx::BREAKOUT_SCORE).any(|i| mask & (1 << i) != 0) {
        return ALL_WINDOW_INDICATORS;
    }
    let mut m = ((mask >> (idx::HIGH_10 + 1)) as u32) & ALL_WINDOW_INDICATORS;
    if mask & (1 << 9) != 0 {
        m |= 0b1111 << 11;
    }
    m
}

/// Prepares one symbol for the sessions `days`: `None` when it has no bar in the period.
fn prepare(
    entry: &UniverseEntry,
    bars: &Bars,
    days: &[NaiveDate],
    look_back: usize,
    max_h: usize,
    mask: u64,
    bench: Option<&HashMap<NaiveDate, [f64; 4]>>,
) -> Option<Prepared> {
    let (&from, &to) = (days.first()?, days.last()?);
    let first = bars.date.partition_point(|d| *d < from);
    let end = bars.date.partition_point(|d| *d <= to);
    if first >= end {
        return None;
    }
    let last = end - 1;
    // Cut after `to`: nothing later is read for any day's fields.
    let cut = Bars {
        date: bars.date[..end].to_vec(),
        open: bars.open[..end].to_vec(),
        high: bars.high[..end].to_vec(),
        low: bars.low[..end].to_vec(),
        close: bars.close[..end].to_vec(),
        volume: bars.volume[..end].to_vec(),
    };
    let depth = (last - first + 1 + look_back).min(end);
    let smask = snapshot_mask(mask);
    let snaps = Snapshot::recent_masked(&cut, depth, |_| smask);
    let mut features = Features::compute_uniform(&cut, &snaps, mask);
    drop(snaps);
    if let Some(bench) = bench {
        let returns: Vec<[f64; 4]> = (0..depth)
            .map(|k| bench.get(&cut.date[last - k]).copied().unwrap_or([f64::NAN; 4]))
            .collect();
        features.set_relative_strength(&returns);
    }
    let close_end = (last + 1 + max_h).min(bars.len());
    Some(Prepared {
        entry: entry.clone(),
        features,
        dates: bars.date[first..=last].to_vec(),
        closes: bars.close[first..close_end].to_vec(),
    })
}

/// The benchmark's 21/63/126/252-session returns by date.
fn returns_by_date(bars: &Bars) -> HashMap<NaiveDate, [f64; 4]> {
    let snaps = Snapshot::recent_masked(bars, bars.len(), |_| 0);
    snaps
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let r = [s.return_21, s.return_63, s.return_126, s.return_252].map(|r| r.unwrap_or(f64::NAN));
            (bars.date[bars.len() - 1 - k], r)
        })
        .collect()
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// What [`evaluate`] runs: the screen, which picks are kept, on which sessions, how far ahead.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'a> {
    /// The screen (`None`: every symbol).
    pub screen: Option<&'a Screen>,
    /// The order of picks.
    pub sort: Option<SortKey>,
    /// Picks kept per session.
    pub top: Option<usize>,
    /// Forward horizons in sessions.
    pub horizons: &'a [usize],
    /// The sessions, ascending.
    pub days: &'a [NaiveDate],
    /// The benchmark's bars (`None`: the equal-weight index of `data`).
    pub benchmark: Option<&'a Bars>,
}

/// The pure part of a backtest: screens `data` on every session of `e.days` and measures what followed.
/// Deterministic; reads no bar after a day for that day's picks. `progress` hears how many symbols are
/// prepared.
pub fn evaluate(
    data: &[(UniverseEntry, Arc<Bars>)],
    e: &Evaluation<'_>,
    cancel: &CancellationToken,
    progress: &(dyn Fn(usize) + Sync),
) -> Vec<BacktestDay> {
    let Evaluation {
        screen,
        sort,
        top,
        horizons,
        days,
        benchmark,
    } = *e;
    let mask = field_mask(screen, sort, top);
    let look_back = screen.map_or(1, Screen::depth);
    let max_h = horizons.iter().copied().max().unwrap_or(0);
    // Relative strength needs the benchmark's returns by date; only when the screen reads `rs_*`.
    let reads_rs = (idx::RS_21..idx::RS_21 + 4).any(|i| mask & (1 << i) != 0);
    let bench = reads_rs.then(|| match benchmark {
        Some(b) => returns_by_date(b),
        None => {
            let to = days.last().copied().unwrap_or(NaiveDate::MIN);
            let mut acc = IndexAccumulator::default();
            for (_, b) in data {
                let end = b.date.partition_point(|d| *d <= to);
                acc.add_range(b, 1, end);
            }
            acc.finish().map(|i| returns_by_date(&i)).unwrap_or_default()
        }
    });
    // Per symbol, on every core.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = data.len().div_ceil(threads).max(1);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let prepared: Vec<Prepared> = std::thread::scope(|s| {
        let handles: Vec<_> = data
            .chunks(chunk)
            .map(|part| {
                let (bench, done) = (bench.as_ref(), &done);
                s.spawn(move || {
                    let mut out = Vec::with_capacity(part.len());
                    for (e, b) in part {
                        if cancel.is_cancelled() {
                            break;
                        }
                        if let Some(p) = prepare(e, b, days, look_back, max_h, mask, bench) {
                            out.push(p);
                        }
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if n % 256 == 0 {
                            progress(n);
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    progress(data.len());
    let mut out = Vec::with_capacity(days.len());
    let mut rows_at: Vec<(usize, usize)> = Vec::with_capacity(prepared.len());
    for &day in days {
        if cancel.is_cancelled() {
            break;
        }
        // The day's universe: symbols with a bar on that day, read that many sessions before their last.
        rows_at.clear();
        for (p_idx, p) in prepared.iter().enumerate() {
            if let Some(i) = p.at(day) {
                rows_at.push((p_idx, i));
            }
        }
        let signals: Vec<&'static str> = rows_at
            .iter()
            .map(|&(p, i)| {
                let r = prepared[p]
                    .features
                    .get(idx::TECH_RATING, prepared[p].dates.len() - 1 - i);
                if r.is_nan() {
                    ""
                } else {
                    Signal::from_rating(r).as_str()
                }
            })
            .collect();
        let rows: Vec<Row<'_>> = rows_at
            .iter()
            .zip(&signals)
            .map(|(&(p, _), sig)| {
                let e = &prepared[p].entry;
                Row {
                    features: &prepared[p].features,
                    text: [e.symbol.as_str(), &e.name, &e.sector, &e.industry, sig],
                }
            })
            .collect();
        let shift = |r: usize| {
            let (p, i) = rows_at[r];
            prepared[p].dates.len() - 1 - i
        };
        let keep = match screen {
            Some(s) => s.select_at(&rows, shift),
            None => vec![true; rows.len()],
        };
        let mut picks: Vec<usize> = (0..rows.len()).filter(|&r| keep[r]).collect();
        if sort.is_some() || top.is_some() {
            let field = sort.map_or(idx::TECH_RATING, |k| k.field);
            let descending = sort.is_none_or(|k| k.descending);
            let value = |r: usize| rows[r].features.get(field, shift(r));
            picks.sort_by(|&a, &b| {
                let (x, y) = (value(a), value(b));
                let by = match (x.is_nan(), y.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if descending => y.total_cmp(&x),
                    _ => x.total_cmp(&y),
                };
                by.then_with(|| rows[a].text[0].cmp(rows[b].text[0]))
            });
        }
        if let Some(k) = top {
            picks.truncate(k);
        }
        let mut forward_returns = BTreeMap::new();
        let mut universe_forward_returns = BTreeMap::new();
        for &h in horizons {
            let fwd = |r: usize| {
                let (p, i) = rows_at[r];
                prepared[p].forward(i, h)
            };
            let picked: Vec<f64> = picks.iter().map(|&r| fwd(r)).filter(|v| !v.is_nan()).collect();
            let all: Vec<f64> = (0..rows.len()).map(fwd).filter(|v| !v.is_nan()).collect();
            // A day whose picks have no future at this horizon is left out of it entirely.
            let (pm, um) = if all.is_empty() {
                (None, None)
            } else {
                (mean(&picked), mean(&all))
            };
            forward_returns.insert(h.to_string(), pm);
            universe_forward_returns.insert(h.to_string(), um);
        }
        let first = horizons.first().map(ToString::to_string).unwrap_or_default();
        out.push(BacktestDay {
            date: day,
            symbols: picks
                .iter()
                .map(|&r| prepared[rows_at[r].0].entry.symbol.clone())
                .collect(),
            forward_return_mean: forward_returns.get(&first).copied().flatten(),
            universe_forward_return_mean: universe_forward_returns.get(&first).copied().flatten(),
            forward_returns,
            universe_forward_returns,
            universe: rows.len(),
        });
    }
    // The per-pick returns for hit rates and medians are recomputed in `summarise` from these picks.
    out
}

/// Per-pick forward returns of each day at horizon `h` (for hit rates and medians).
fn pick_returns(data: &HashMap<Symbol, Arc<Bars>>, day: &BacktestDay, h: usize) -> Vec<f64> {
    day.symbols
        .iter()
        .filter_map(|s| {
            let b = data.get(s)?;
            let i = b.date.binary_search(&day.date).ok()?;
            let (c0, c1) = (b.close[i], *b.close.get(i + h)?);
            (c0 > 0.0).then(|| c1 / c0 - 1.0)
        })
        .collect()
}

/// One year's sessions, picks' returns, universe means and excesses.
#[derive(Default)]
struct YearAcc {
    sessions: usize,
    picks: Vec<f64>,
    universe: Vec<f64>,
    excess: Vec<f64>,
}

/// The summary of `days` at horizon `h`.
pub fn summarise(
    days: &[BacktestDay],
    h: usize,
    data: &HashMap<Symbol, Arc<Bars>>,
    calendar: &crate::calendar::MarketCalendar,
) -> HorizonSummary {
    let key = h.to_string();
    let with_future: Vec<&BacktestDay> = days
        .iter()
        .filter(|d| d.universe_forward_returns.get(&key).copied().flatten().is_some())
        .collect();
    let mut all_picks = Vec::new();
    let mut excess = Vec::new();
    let mut universe = Vec::new();
    let mut years: BTreeMap<i32, YearAcc> = BTreeMap::new();
    for d in &with_future {
        let picks = pick_returns(data, d, h);
        let u = d.universe_forward_returns[&key].unwrap_or(f64::NAN);
        universe.push(u);
        let y = years.entry(d.date.year()).or_default();
        y.sessions += 1;
        y.universe.push(u);
        if let Some(m) = d.forward_returns[&key] {
            excess.push(m - u);
            y.excess.push(m - u);
        }
        y.picks.extend(&picks);
        all_picks.extend(picks);
    }
    let hit =
        |v: &[f64]| (!v.is_empty()).then(|| v.iter().filter(|r| **r > 0.0).count() as f64 / v.len() as f64);
    let per_year = years
        .into_iter()
        .map(|(year, y)| YearSummary {
            year,
            sessions: y.sessions,
            picks: y.picks.len(),
            hit_rate: hit(&y.picks),
            mean_return: mean(&y.picks),
            universe_mean_return: mean(&y.universe),
            excess_return: mean(&y.excess),
        })
        .collect();
    let sessions = with_future.len();
    HorizonSummary {
        horizon: h,
        sessions,
        sessions_without_future: days.len() - sessions,
        picks: all_picks.len(),
        picks_per_session: if sessions == 0 {
            0.0
        } else {
            all_picks.len() as f64 / sessions as f64
        },
        hit_rate: hit(&all_picks),
        mean_return: mean(&all_picks),
        median_return: median(&mut all_picks.clone()),
        universe_mean_return: mean(&universe),
        excess_return: mean(&excess),
        per_year,
        portfolio: portfolio(&with_future, h, calendar),
    }
}

/// Equal weight in each rebalance day's picks (cash when none), held `h` sessions; the universe likewise.
fn portfolio(days: &[&BacktestDay], h: usize, calendar: &crate::calendar::MarketCalendar) -> Portfolio {
    let key = h.to_string();
    let (mut value, mut uni, mut peak, mut max_dd) = (1.0f64, 1.0f64, 1.0f64, 0.0f64);
    let mut equity = Vec::new();
    let mut trades = 0;
    let mut rebalances = 0;
    let rebalance: Vec<&&BacktestDay> = days.iter().step_by(h.max(1)).collect();
    for d in &rebalance {
        equity.push(EquityPoint {
            date: d.date,
            portfolio: value,
            universe: uni,
        });
        rebalances += 1;
        trades += d.symbols.len();
        value *= 1.0 + d.forward_returns[&key].unwrap_or(0.0);
        uni *= 1.0 + d.universe_forward_returns[&key].unwrap_or(0.0);
        peak = peak.max(value);
        max_dd = max_dd.max(1.0 - value / peak);
    }
    if let Some(last) = rebalance.last() {
        // The value after the last holding period, `h` sessions after it began.
        let mut end = last.date;
        for _ in 0..h {
            end = calendar.next_session(end);
        }
        equity.push(EquityPoint {
            date: end,
            portfolio: value,
            universe: uni,
        });
    }
    Portfolio {
        rebalances,
        trades,
        total_return: value - 1.0,
        universe_total_return: uni - 1.0,
        max_drawdown: max_dd,
        equity,
    }
}

/// Runs a backtest: loads the universe's bars the way a scan does (cache, store), then [`evaluate`]s.
pub async fn backtest(
    req: &BacktestRequest,
    deps: &Deps,
    sink: &dyn ProgressSink,
    cancel: CancellationToken,
) -> Result<BacktestReport> {
    let started = Instant::now();
    let (screen, sort) = req.screen.compile().map_err(|e| Error::config(e.to_string()))?;
    if screen.is_none() && sort.is_none() && req.top.is_none() {
        return Err(Error::config(
            "a backtest needs a screen: --where, --preset or --screen (or --sort with --top)",
        ));
    }
    let mut horizons = req.horizons.clone();
    horizons.dedup();
    if horizons.is_empty() || horizons.iter().any(|h| *h == 0 || *h > MAX_HORIZON) {
        return Err(Error::config(format!(
            "horizons must be 1 to {MAX_HORIZON} sessions, got {:?}",
            req.horizons
        )));
    }
    let max_h = horizons.iter().copied().max().unwrap_or(1);
    let calendar = deps.market.calendar;
    // Enough calendar days before `from` for the warm-up, after `to` for the longest horizon.
    let default = deps.default_range();
    let range = match (req.from, req.to) {
        (Some(f), Some(t)) if f > t => {
            return Err(Error::config(format!("--from {f} is after --to {t}")));
        }
        (Some(f), Some(t)) if (t - f).num_days() > MAX_SPAN_DAYS => {
            return Err(Error::config(format!(
                "a backtest covers at most {} years; {f} to {t} is longer: split it",
                MAX_SPAN_DAYS / 365
            )));
        }
        (from, to) => {
            let warm_up = chrono::Days::new(WARM_UP_SESSIONS as u64 * 3 / 2 + 14);
            let ahead = chrono::Days::new(max_h as u64 * 3 / 2 + 10);
            let start = from.map_or(default.from, |f| f.checked_sub_days(warm_up).unwrap_or(f));
            let end = to.map_or(default.to, |t| {
                t.checked_add_days(ahead).unwrap_or(t).min(default.to.max(t))
            });
            DateRange::new(start, end.max(start)).map_err(Error::config)?
        }
    };
    let id = super::new_scan_id();
    let scan_req = ScanRequest {
        id: Some(id.clone()),
        universe: req.universe.clone(),
        filters: req.filters.clone(),
        top: None,
        range: Some(range),
        fetch_concurrency: req.fetch_concurrency,
        background: true,
        ..ScanRequest::default()
    };
    let loaded = super::pipeline::load(&scan_req, deps, sink, cancel.clone(), range).await?;
    let mut reporter = Reporter::new(id.clone(), sink, deps.stage_weights);
    if loaded.cancelled {
        reporter.finish(
            Stage::Cancelled,
            0,
            loaded.universe_size,
            "Backtest cancelled while loading",
        );
        return Err(Error::Cancelled);
    }
    let data = loaded.fetched;
    // The sessions: the calendar's, between the first with a year of history and the last with a future.
    let (first_bar, last_bar) =
        data.iter()
            .fold((None::<NaiveDate>, None::<NaiveDate>), |(lo, hi), (_, b)| {
                let (f, l) = (b.date.first().copied(), b.date.last().copied());
                (lo.min(f).or(lo).or(f), hi.max(l))
            });
    let (Some(first_bar), Some(last_bar)) = (first_bar, last_bar) else {
        return Err(Error::not_found(
            "bars for any symbol of the universe in the backtest's range",
        ));
    };
    let from = req.from.unwrap_or_else(|| {
        let mut d = first_bar;
        for _ in 0..WARM_UP_SESSIONS {
            d = calendar.next_session(d);
        }
        d
    });
    let to = req.to.unwrap_or_else(|| {
        let mut d = calendar.session_on_or_before(last_bar);
        for _ in 0..max_h {
            d = calendar.previous_session(d);
        }
        d
    });
    if from > to {
        return Err(Error::config(format!(
            "no sessions to backtest: the data runs from {first_bar} to {last_bar}, which leaves none between a \
             year of warm-up and {max_h} sessions of future; pass --from and --to"
        )));
    }
    if (to - from).num_days() > MAX_SPAN_DAYS {
        return Err(Error::config(format!(
            "a backtest covers at most {} years; {from} to {to} is longer: split it",
            MAX_SPAN_DAYS / 365
        )));
    }
    let days = calendar.sessions(from, to);
    let bench_bars = req
        .benchmark
        .as_ref()
        .and_then(|b| data.iter().find(|(e, _)| &e.symbol == b))
        .map(|(_, b)| b.clone());
    let benchmark = match (&req.benchmark, &bench_bars) {
        (Some(b), Some(_)) => b.to_string(),
        _ => EQUAL_WEIGHT.to_owned(),
    };
    let total = data.len();
    reporter.begin(
        Stage::Scanning,
        total,
        format!("Screening {} sessions of {total} symbols…", days.len()),
    );
    let (tick_tx, mut tick_rx) = tokio::sync::watch::channel(0usize);
    let work = {
        let (data, screen, horizons, days, cancel) = (
            data.clone(),
            screen.clone(),
            horizons.clone(),
            days.clone(),
            cancel.clone(),
        );
        let top = req.top;
        tokio::task::spawn_blocking(move || {
            let progress = |n: usize| {
                let _ = tick_tx.send(n);
            };
            let e = Evaluation {
                screen: screen.as_ref(),
                sort,
                top,
                horizons: &horizons,
                days: &days,
                benchmark: bench_bars.as_deref(),
            };
            evaluate(&data, &e, &cancel, &progress)
        })
    };
    tokio::pin!(work);
    let days_out = loop {
        tokio::select! {
            joined = &mut work => break joined.map_err(|e| Error::internal(format!("backtest worker failed: {e}")))?,
            changed = tick_rx.changed() => {
                if changed.is_ok() {
                    let n = *tick_rx.borrow();
                    reporter.advance(n, total, || format!("Prepared {n}/{total} symbols"));
                }
            }
        }
    };
    let state = if cancel.is_cancelled() {
        ScanState::Cancelled
    } else {
        ScanState::Complete
    };
    reporter.begin(Stage::Finalizing, 1, "Summarising…");
    let by_symbol: HashMap<Symbol, Arc<Bars>> =
        data.iter().map(|(e, b)| (e.symbol.clone(), b.clone())).collect();
    let summaries: Vec<HorizonSummary> = horizons
        .iter()
        .map(|&h| summarise(&days_out, h, &by_symbol, &calendar))
        .collect();
    let report = BacktestReport {
        id,
        state,
        provider: deps.provider.name().to_owned(),
        demo: deps.provider.is_demo(),
        where_: req.screen.where_.clone(),
        sort: req.screen.sort.clone(),
        top: req.top,
        from,
        to,
        horizons: horizons.clone(),
        benchmark,
        universe_size: loaded.universe_size,
        skipped: loaded.skipped,
        summary: summaries[0].clone(),
        summaries,
        days: days_out,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    match state {
        ScanState::Complete => reporter.finish(
            Stage::Complete,
            total,
            total,
            format!("Backtest complete: {} sessions", report.days.len()),
        ),
        _ => reporter.finish(Stage::Cancelled, 0, total, "Backtest cancelled"),
    }
    Ok(report)
}

/// Fields per session held for each symbol (for sizing: the compact layout stores only these).
pub fn fields_held(screen: Option<&Screen>, sort: Option<SortKey>, top: Option<usize>) -> usize {
    (field_mask(screen, sort, top) & ((1u64 << N_NUMERIC) - 1)).count_ones() as usize
}

#[cfg(test)]
mod tests;
