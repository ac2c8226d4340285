//! Golden tests: our indicators against TA-Lib 0.8.2 (C 0.8.1), the numerical oracle.
//!
//! The fixtures in `tests/fixtures/*.json` hold the inputs and the FULL output series TA-Lib (and numpy, for
//! the non-TA-Lib fields) computed for them; `tests/fixtures/gen_talib.py` regenerates them. Every series
//! must be `None` exactly where the fixture has `null` and within [`crate::tolerance`] elsewhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use technic_core::indicators::{INDICATOR_NAMES, Snapshot};
use technic_core::model::Bars;

use crate::{check, full_series, snapshot_vs_last, true_range_series};

/// The fixture files the generator writes; a missing one fails the tests instead of shrinking them.
const FIXTURES: [&str; 5] = [
    "gbm_600",
    "flat_stretches",
    "short_40",
    "trend_gaps_520",
    "penny_300",
];

/// Prefix lengths where the fused path changes behaviour: first outputs and seeds of every indicator
/// (EMA 12 at 12, RSI/ATR at 15, EMA 26 and MACD's seed at 26, ADX at 28, MACD at 34, the windows at
/// 20/50/200/252 and the returns at k + 1), with their neighbours.
const EDGE_LENGTHS: [usize; 43] = [
    0, 1, 2, 11, 12, 13, 14, 15, 16, 19, 20, 21, 22, 25, 26, 27, 28, 29, 32, 33, 34, 35, 49, 50, 51, 63, 64,
    65, 126, 127, 128, 199, 200, 201, 251, 252, 253, 254, 300, 400, 503, 504, 600,
];

#[derive(Debug, Deserialize)]
struct Fixture {
    name: String,
    inputs: Inputs,
    outputs: BTreeMap<String, Vec<Option<f64>>>,
}

#[derive(Debug, Deserialize)]
struct Inputs {
    date: Vec<NaiveDate>,
    open: Vec<f64>,
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    volume: Vec<f64>,
}

impl Fixture {
    fn bars(&self) -> Bars {
        let i = &self.inputs;
        Bars {
            date: i.date.clone(),
            open: i.open.clone(),
            high: i.high.clone(),
            low: i.low.clone(),
            close: i.close.clone(),
            volume: i.volume.clone(),
        }
    }

    fn output(&self, name: &str) -> &[Option<f64>] {
        self.outputs
            .get(name)
            .unwrap_or_else(|| panic!("{}: fixture has no output `{name}`", self.name))
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
}

fn load(name: &str) -> Fixture {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; regenerate with `python3 technic-core/tests/fixtures/gen_talib.py`",
            path.display()
        )
    });
    let f: Fixture = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(f.name, name, "{}: name field", path.display());
    f
}

fn all_fixtures() -> Vec<Fixture> {
    FIXTURES.iter().map(|n| load(n)).collect()
}

/// First bars of `bars`, as a new series.
fn prefix(bars: &Bars, len: usize) -> Bars {
    Bars {
        date: bars.date[..len].to_vec(),
        open: bars.open[..len].to_vec(),
        high: bars.high[..len].to_vec(),
        low: bars.low[..len].to_vec(),
        close: bars.close[..len].to_vec(),
        volume: bars.volume[..len].to_vec(),
    }
}

/// Compares one full series with the fixture's; returns one line per differing bar.
fn compare_series(
    fixture: &str,
    name: &str,
    expected: &[Option<f64>],
    got: &[Option<f64>],
    close: &[f64],
) -> Vec<String> {
    if expected.len() != got.len() {
        return vec![format!(
            "{fixture}/{name}: length {} but the fixture has {}",
            got.len(),
            expected.len()
        )];
    }
    (0..expected.len())
        .filter_map(|i| {
            check(name, expected[i], got[i], close[i])
                .err()
                .map(|e| format!("{fixture}/{name}[{i}]: {e}"))
        })
        .collect()
}

/// Panics listing how many mismatches each fixture/indicator has, then the first few in full.
fn fail_if_any(what: &str, mismatches: &[String]) {
    if !mismatches.is_empty() {
        let mut per_series: BTreeMap<&str, usize> = BTreeMap::new();
        for m in mismatches {
            let key = m.split(['[', ':']).next().unwrap_or(m);
            *per_series.entry(key).or_default() += 1;
        }
        let counts: Vec<String> = per_series.iter().map(|(k, n)| format!("  {k}: {n}")).collect();
        let shown: Vec<&str> = mismatches.iter().take(30).map(String::as_str).collect();
        panic!(
            "{what}: {} mismatches\nper series:\n{}\nfirst ones:\n{}",
            mismatches.len(),
            counts.join("\n"),
            shown.join("\n")
        );
    }
}

#[test]
fn fixtures_are_complete_and_consistent() {
    for f in all_fixtures() {
        let n = f.inputs.close.len();
        assert!(n > 0, "{}: no bars", f.name);
        let i = &f.inputs;
        for (col, v) in [
            ("date", i.date.len()),
            ("open", i.open.len()),
            ("high", i.high.len()),
        ]
        .into_iter()
        .chain([("low", i.low.len()), ("volume", i.volume.len())])
        {
            assert_eq!(v, n, "{}: input `{col}` length", f.name);
        }
        f.bars()
            .validate()
            .unwrap_or_else(|e| panic!("{}: invalid input bars: {e}", f.name));
        for name in INDICATOR_NAMES.iter().copied().chain(["true_range"]) {
            assert_eq!(f.output(name).len(), n, "{}: output `{name}` length", f.name);
        }
    }
    // The fixtures must exercise what they claim to, or the golden tests prove little.
    let gbm = load("gbm_600");
    assert!(gbm.output("return_252").iter().filter(|v| v.is_some()).count() > 300);
    let flat = load("flat_stretches");
    assert_eq!(
        flat.output("rsi_14")[20],
        Some(0.0),
        "flat start: RSI 0 when gain and loss are both 0"
    );
    assert_eq!(
        flat.output("adx_14")[27],
        Some(0.0),
        "flat start: ADX 0 when no DX is defined"
    );
    assert_eq!(
        flat.output("bb_percent_b")[19],
        Some(0.5),
        "flat start: %B 0.5 when the bands touch"
    );
    assert_eq!(
        flat.output("volume_ratio_20")[19],
        None,
        "zero volume: ratio undefined"
    );
    // Bars 260..590 are flat: Wilder's averages decay far below 1e-8 (13/14 per bar), yet TA-Lib 0.8 keeps
    // RSI at its last value; a fixed 1e-8 zero band (TA-Lib 0.4's) would report 0 here.
    assert!(
        flat.inputs.close[265..585]
            .iter()
            .all(|c| *c == flat.inputs.close[265])
    );
    assert!(
        flat.output("rsi_14")[584].is_some_and(|v| v > 1.0),
        "RSI kept through a long flat run"
    );
    let short = load("short_40");
    assert!(short.output("adx_14")[26].is_none() && short.output("adx_14")[27].is_some());
    assert!(short.output("macd")[33].is_some() && short.output("macd")[32].is_none());
    assert!(short.output("sma_50").iter().all(Option::is_none));
}

#[test]
fn full_series_match_talib() {
    let mut mismatches = Vec::new();
    for f in all_fixtures() {
        let bars = f.bars();
        for (name, got) in full_series(&bars) {
            mismatches.extend(compare_series(&f.name, name, f.output(name), &got, &bars.close));
        }
        let tr = true_range_series(&bars);
        mismatches.extend(compare_series(
            &f.name,
            "true_range",
            f.output("true_range"),
            &tr,
            &bars.close,
        ));
    }
    fail_if_any("full series vs TA-Lib", &mismatches);
}

/// The fused path on every prefix of every fixture equals TA-Lib's value at the prefix's last bar.
///
/// Every indicator is causal (its value at bar i depends on bars 0..=i only), so TA-Lib's full series over
/// the whole fixture holds the expected last-bar value of every prefix.
#[test]
fn snapshot_matches_talib_at_every_prefix_length() {
    let mut mismatches = Vec::new();
    for f in all_fixtures() {
        let bars = f.bars();
        for len in 0..=bars.len() {
            let snap = Snapshot::compute(&prefix(&bars, len));
            for (name, got) in snap.fields() {
                let expected = len.checked_sub(1).and_then(|i| f.output(name)[i]);
                let close = len.checked_sub(1).map_or(0.0, |i| bars.close[i]);
                if let Err(e) = crate::check(name, expected, got, close) {
                    mismatches.push(format!("{}/{name}[len {len}]: {e}", f.name));
                }
            }
        }
    }
    fail_if_any("Snapshot::compute vs TA-Lib", &mismatches);
}

/// The fused path equals the last element of our own full series: on every fixture, and on prefixes of the
/// longest fixture (every 7th length plus [`EDGE_LENGTHS`]).
#[test]
fn snapshot_equals_last_of_full_series() {
    let mut mismatches = Vec::new();
    let mut check_one = |label: String, bars: &Bars| {
        let snap = Snapshot::compute(bars);
        let close = bars.close.last().copied().unwrap_or(0.0);
        for line in snapshot_vs_last(&snap, &full_series(bars), close) {
            mismatches.push(format!("{label}: {line}"));
        }
    };
    for f in all_fixtures() {
        check_one(f.name.clone(), &f.bars());
    }
    let gbm = load("gbm_600").bars();
    let mut lengths: Vec<usize> = (1..=gbm.len()).step_by(7).chain(EDGE_LENGTHS).collect();
    lengths.sort_unstable();
    lengths.dedup();
    for &must in &[12, 15, 26, 27, 28, 33, 34, 200, 252, 253] {
        assert!(lengths.contains(&must), "edge length {must} missing");
    }
    for len in lengths {
        check_one(format!("gbm_600[..{len}]"), &prefix(&gbm, len));
    }
    fail_if_any("Snapshot::compute vs last of full series", &mismatches);
}

/// The comparison itself must be able to fail: a value moved by a few times the tolerance, or turned from a
/// number into `null` (or back), is reported.
#[test]
fn comparison_detects_perturbations() {
    let f = load("gbm_600");
    let bars = f.bars();
    let series = full_series(&bars);
    for (name, got) in &series {
        let expected = f.output(name);
        let i = expected.iter().rposition(Option::is_some).unwrap();
        let e = expected[i].unwrap();
        let close = bars.close[i];
        let nudged = e + 5.0 * crate::tolerance(name, e, close).max(f64::MIN_POSITIVE);
        let mut moved = got.clone();
        moved[i] = Some(nudged);
        assert!(
            !compare_series("perturbed", name, expected, &moved, &bars.close).is_empty(),
            "{name}: moved value"
        );
        let mut dropped = got.clone();
        dropped[i] = None;
        assert!(
            !compare_series("perturbed", name, expected, &dropped, &bars.close).is_empty(),
            "{name}: dropped value"
        );
        let mut invented = got.clone();
        invented[0] = Some(e);
        if expected[0].is_none() {
            assert!(
                !compare_series("perturbed", name, expected, &invented, &bars.close).is_empty(),
                "{name}: invented value"
            );
        }
        let mut nan = got.clone();
        nan[i] = Some(f64::NAN);
        assert!(
            !compare_series("perturbed", name, expected, &nan, &bars.close).is_empty(),
            "{name}: NaN value"
        );
    }
}
