//! Deterministic synthetic market data: the embedded default, so Technic works offline.
//!
//! Prices follow geometric Brownian motion driven by a market factor, a sector factor and a stock's own
//! noise, with regimes (bull, bear, sideways) that switch at random. Volume is lognormal and rises with
//! the size of the day's move. Everything derives from one seed: the same configuration gives the same
//! universe and bars on every machine. Every output built on it is labelled demo data.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::NaiveDate;

use super::DataProvider;
use super::rng::SplitMix64;
use crate::calendar::MarketCalendar;
use crate::error::{Error, Result};
use crate::model::{Bar, Bars, DateRange, Symbol, Universe, UniverseEntry};

/// The 11 GICS sectors, with a few industries each.
pub const SECTORS: [(&str, [&str; 3]); 11] = [
    (
        "Information Technology",
        ["Software", "Semiconductors", "IT Services"],
    ),
    (
        "Health Care",
        ["Pharmaceuticals", "Biotechnology", "Health Care Equipment"],
    ),
    ("Financials", ["Banks", "Insurance", "Capital Markets"]),
    (
        "Consumer Discretionary",
        ["Retail", "Automobiles", "Hotels & Leisure"],
    ),
    (
        "Communication Services",
        ["Media", "Telecom Services", "Interactive Media"],
    ),
    (
        "Industrials",
        ["Aerospace & Defense", "Machinery", "Transportation"],
    ),
    (
        "Consumer Staples",
        ["Food Products", "Beverages", "Household Products"],
    ),
    ("Energy", ["Oil & Gas", "Energy Equipment", "Renewables"]),
    (
        "Utilities",
        ["Electric Utilities", "Gas Utilities", "Water Utilities"],
    ),
    (
        "Real Estate",
        ["REITs", "Real Estate Services", "Real Estate Development"],
    ),
    (
        "Materials",
        ["Chemicals", "Metals & Mining", "Construction Materials"],
    ),
];

/// Settings of the synthetic provider.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticConfig {
    /// Seed for everything generated.
    pub seed: u64,
    /// Number of symbols in the universe (at most [`super::MAX_DEMO_SYMBOLS`]; more are capped).
    pub n_symbols: usize,
    /// Trading days of history per symbol.
    pub n_bars: usize,
    /// Last trading day generated (moved back to the session before it if the market is closed that day).
    pub end_date: NaiveDate,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            n_symbols: 500,
            n_bars: 504,
            end_date: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap_or(NaiveDate::MIN),
        }
    }
}

/// Deterministic, realistic demo data. See the module docs.
#[derive(Debug)]
pub struct SyntheticProvider {
    config: SyntheticConfig,
    universe: Universe,
    index: HashMap<Symbol, usize>,
    dates: Vec<NaiveDate>,
    /// Daily log-return of the market and of each sector, per date.
    market: Vec<f64>,
    sectors: Vec<Vec<f64>>,
}

impl Default for SyntheticProvider {
    fn default() -> Self {
        Self::new(SyntheticConfig::default())
    }
}

impl SyntheticProvider {
    /// Builds the universe and the market and sector factors for `config`.
    pub fn new(config: SyntheticConfig) -> Self {
        let dates = trading_days(config.end_date, config.n_bars);
        let mut rng = SplitMix64::new(config.seed);
        let universe = make_universe(&mut rng, config.n_symbols);
        let index = universe
            .iter()
            .enumerate()
            .map(|(i, e)| (e.symbol.clone(), i))
            .collect();
        let market = factor(&mut rng, dates.len(), 0.0003, 0.009);
        let sectors = (0..SECTORS.len())
            .map(|_| factor(&mut rng, dates.len(), 0.0001, 0.006))
            .collect();
        Self {
            config,
            universe,
            index,
            dates,
            market,
            sectors,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// The dates the demo data covers (its default range).
    pub fn data_range(&self) -> DateRange {
        let first = self.dates.first().copied().unwrap_or(self.config.end_date);
        let last = self.dates.last().copied().unwrap_or(self.config.end_date);
        DateRange {
            from: first,
            to: last,
        }
    }

    /// The whole generated history of one symbol.
    pub fn full_history(&self, symbol: &Symbol) -> Result<Bars> {
        let idx = *self.index.get(symbol).ok_or_else(|| {
            Error::not_found(format!(
                "symbol {symbol} (the synthetic demo universe has no such symbol)"
            ))
        })?;
        let sector = SECTORS
            .iter()
            .position(|(s, _)| *s == self.universe[idx].sector)
            .unwrap_or(0);
        Ok(self.generate(idx, sector))
    }

    fn generate(&self, idx: usize, sector: usize) -> Bars {
        let mut rng =
            SplitMix64::new(self.config.seed ^ (idx as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let beta = 0.6 + rng.next_f64() * 0.9;
        let sector_beta = 0.5 + rng.next_f64();
        let idio_vol = 0.008 + rng.next_f64() * 0.022;
        let mut price = (8.0 + rng.next_f64() * 300.0f64).round();
        let base_volume = 10f64.powf(5.0 + rng.next_f64() * 2.5);
        // Regimes: drift per day; switch with a small daily probability.
        const REGIMES: [f64; 3] = [0.0009, -0.0008, 0.0];
        let mut regime = rng.below(3) as usize;
        let mut bars = Bars::with_capacity(self.dates.len());
        for (t, &date) in self.dates.iter().enumerate() {
            if rng.next_f64() < 0.01 {
                regime = rng.below(3) as usize;
            }
            let ret = REGIMES[regime]
                + beta * self.market[t]
                + sector_beta * self.sectors[sector][t]
                + idio_vol * rng.normal();
            let gap = 0.25 * idio_vol * rng.normal();
            let open = price * gap.exp();
            let close = price * ret.exp();
            let wick = idio_vol * 0.6;
            let high = open.max(close) * (wick * rng.normal().abs()).exp();
            let low = open.min(close) * (-wick * rng.normal().abs()).exp();
            let surprise = (ret.abs() / (idio_vol + 0.005)).min(4.0);
            let volume = (base_volume * (0.35 * rng.normal()).exp() * (1.0 + 0.5 * surprise))
                .round()
                .max(1.0);
            bars.push(Bar {
                date,
                open: round2(open),
                high: round2(high),
                low: round2(low),
                close: round2(close),
                volume,
            });
            price = close;
        }
        // Rounding to cents can put open/close a hair outside high/low; widen the range to contain them.
        for i in 0..bars.len() {
            bars.high[i] = bars.high[i].max(bars.open[i]).max(bars.close[i]);
            bars.low[i] = bars.low[i].min(bars.open[i]).min(bars.close[i]).max(0.01);
        }
        bars
    }
}

fn round2(x: f64) -> f64 {
    ((x * 100.0).round() / 100.0).max(0.01)
}

/// `n` NYSE sessions ending at `end` (or the session before it): no bars on weekends or market holidays,
/// as real daily data has none.
fn trading_days(end: NaiveDate, n: usize) -> Vec<NaiveDate> {
    let calendar = MarketCalendar::nyse();
    let mut out = Vec::with_capacity(n);
    let mut d = end;
    while out.len() < n {
        if calendar.is_session(d) {
            out.push(d);
        }
        match d.pred_opt() {
            Some(p) => d = p,
            None => break,
        }
    }
    out.reverse();
    out
}

fn factor(rng: &mut SplitMix64, n: usize, drift: f64, vol: f64) -> Vec<f64> {
    (0..n).map(|_| drift + vol * rng.normal()).collect()
}

fn make_universe(rng: &mut SplitMix64, n: usize) -> Universe {
    const FIRST: [&str; 12] = [
        "Apex", "Blue", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iron", "Juniper",
        "Keystone", "Lumen",
    ];
    const LAST: [&str; 8] = [
        "Holdings",
        "Corp",
        "Group",
        "Inc",
        "Partners",
        "Systems",
        "Industries",
        "Labs",
    ];
    // Tickers of 2–4 letters allow 475,228 names; more would never finish.
    let n = n.min(super::MAX_DEMO_SYMBOLS);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let len = 2 + rng.below(3) as usize;
        let ticker: String = (0..len).map(|_| char::from(b'A' + rng.below(26) as u8)).collect();
        if !seen.insert(ticker.clone()) {
            continue;
        }
        let sector_idx = out.len() % SECTORS.len();
        let (sector, industries) = SECTORS[sector_idx];
        let industry = industries[rng.below(3) as usize];
        let name = format!(
            "{} {} {} (demo)",
            FIRST[rng.below(FIRST.len() as u64) as usize],
            industry.split_whitespace().next().unwrap_or("Demo"),
            LAST[rng.below(LAST.len() as u64) as usize]
        );
        out.push(UniverseEntry {
            symbol: Symbol::new(&ticker),
            name,
            sector: sector.to_owned(),
            industry: industry.to_owned(),
        });
    }
    out
}

#[async_trait]
impl DataProvider for SyntheticProvider {
    fn name(&self) -> &str {
        "synthetic"
    }

    fn is_demo(&self) -> bool {
        true
    }

    /// The whole generated history, whatever the date: demo data is a fixed data set.
    fn default_range(&self, _expected: NaiveDate) -> DateRange {
        self.data_range()
    }

    async fn universe(&self) -> Result<Universe> {
        Ok(self.universe.clone())
    }

    async fn daily_bars(&self, symbol: &Symbol, range: DateRange) -> Result<Bars> {
        let full = self.full_history(symbol)?;
        if range == self.data_range() {
            Ok(full)
        } else {
            Ok(full.slice_range(range))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deterministic_valid_and_sector_balanced() {
        let a = SyntheticProvider::default();
        let b = SyntheticProvider::default();
        let universe = a.universe().await.unwrap();
        assert_eq!(universe.len(), 500);
        assert_eq!(universe, b.universe().await.unwrap());
        for (sector, _) in SECTORS {
            let n = universe.iter().filter(|e| e.sector == sector).count();
            assert!(n >= 45, "{sector}: {n}");
        }
        let range = a.data_range();
        for e in universe.iter().take(50) {
            let bars = a.daily_bars(&e.symbol, range).await.unwrap();
            assert_eq!(bars.len(), 504);
            bars.validate().unwrap();
            assert!(bars.volume.iter().all(|v| *v > 0.0));
            assert_eq!(bars, b.daily_bars(&e.symbol, range).await.unwrap());
        }
    }

    #[tokio::test]
    async fn unknown_symbol_and_ranges() {
        let p = SyntheticProvider::new(SyntheticConfig {
            n_symbols: 20,
            n_bars: 300,
            ..SyntheticConfig::default()
        });
        let err = p
            .daily_bars(&Symbol::new("NOPE12"), p.data_range())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        let sym = p.universe().await.unwrap()[0].symbol.clone();
        let full = p.daily_bars(&sym, p.data_range()).await.unwrap();
        assert_eq!(full.len(), 300);
        assert_eq!(
            *full.date.last().unwrap(),
            NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
        );
        // Sessions only: no weekend, no holiday (Thanksgiving 2026, Good Friday 2026, 4 July 2025).
        let cal = MarketCalendar::nyse();
        assert!(full.date.iter().all(|d| cal.is_session(*d)));
        for (y, m, d) in [(2026, 11, 26), (2026, 4, 3), (2025, 7, 4)] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert!(!full.date.contains(&day), "a bar on the {day} holiday");
        }
        assert!(full.date.windows(2).all(|w| w[0] < w[1]));
        let part = DateRange::new(full.date[100], full.date[199]).unwrap();
        let sliced = p.daily_bars(&sym, part).await.unwrap();
        assert_eq!(sliced.len(), 100);
        assert_eq!(sliced.close[0], full.close[100]);
    }

    #[test]
    fn seeds_differ() {
        let a = SyntheticProvider::new(SyntheticConfig {
            seed: 1,
            ..SyntheticConfig::default()
        });
        let b = SyntheticProvider::new(SyntheticConfig {
            seed: 2,
            ..SyntheticConfig::default()
        });
        assert_ne!(a.universe[0].symbol, b.universe[0].symbol);
    }
}
