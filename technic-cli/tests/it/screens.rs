//! Screens end to end: `--where` on a CSV directory selects exactly the symbols whose values — computed
//! here, independently of the engine, from the same files — satisfy the expression; crossings on the last
//! session; errors with carets and exit 2; presets; saved screens; `explain`.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::{stderr, stdout, technic};

/// Closes and volumes of one generated symbol, as written to (and read back from) its file.
pub struct Series {
    pub close: Vec<f64>,
    pub volume: Vec<f64>,
}

/// A deterministic generator: xorshift, so the files are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// 160 symbols of 260 sessions: random walks with different drifts (another one for the last 8 sessions) and
/// volatilities, and volume that varies, so every condition below holds for some symbols and not for others.
pub fn write_universe(dir: &Path) -> Vec<(String, Series)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let d0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut out = Vec::new();
    for k in 0..160 {
        let sym = format!("S{k:03}");
        // A trend, then 8 sessions that may pull back: dips above a rising average are common enough.
        let drift = rng.next() * 0.008 - 0.002;
        let late = rng.next() * 0.02 - 0.015;
        let vol = 0.005 + rng.next() * 0.015;
        let mut close = 20.0 + rng.next() * 80.0;
        let mut text = String::from("date,open,high,low,close,volume\n");
        let mut s = Series {
            close: Vec::new(),
            volume: Vec::new(),
        };
        for day in 0..260u64 {
            let open = close;
            let d = if day < 252 { drift } else { late };
            close = (close * (1.0 + d + vol * (rng.next() - 0.5) * 3.4)).max(1.0);
            let (c, o) = ((close * 100.0).round() / 100.0, (open * 100.0).round() / 100.0);
            let high = c.max(o) + 0.05;
            let low = (c.min(o) - 0.05).max(0.5);
            let v = (1e5 * (0.5 + rng.next() * 1.5)).round();
            let date = d0 + chrono::Days::new(day);
            text += &format!("{date},{o},{high},{low},{c},{v}\n");
            s.close.push(c);
            s.volume.push(v);
        }
        std::fs::write(dir.join(format!("{sym}.csv")), text).unwrap();
        out.push((sym, s));
    }
    out
}

fn sma_at(v: &[f64], n: usize, end: usize) -> f64 {
    v[end - n..end].iter().sum::<f64>() / n as f64
}

/// Wilder's RSI(14) at the last close: the first averages are plain means of the first 14 changes.
fn rsi_14(close: &[f64]) -> f64 {
    let changes: Vec<f64> = close.windows(2).map(|w| w[1] - w[0]).collect();
    let (mut gain, mut loss) = (0.0, 0.0);
    for &d in &changes[..14] {
        if d > 0.0 {
            gain += d;
        } else {
            loss -= d;
        }
    }
    gain /= 14.0;
    loss /= 14.0;
    for &d in &changes[14..] {
        gain = (gain * 13.0 + d.max(0.0)) / 14.0;
        loss = (loss * 13.0 + (-d).max(0.0)) / 14.0;
    }
    100.0 - 100.0 / (1.0 + gain / loss)
}

fn scan_symbols(dir: &Path, extra: &[&str]) -> (Vec<Value>, Value) {
    let provider = format!("csv:{}", dir.display());
    let mut args = vec![
        "scan",
        "--provider",
        &provider,
        "--no-store",
        "--top",
        "0",
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = technic(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    (report["results"].as_array().unwrap().clone(), report)
}

fn names(results: &[Value]) -> BTreeSet<String> {
    results
        .iter()
        .map(|r| r["symbol"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn where_selects_exactly_the_symbols_whose_values_satisfy_it() {
    let dir = tempfile::tempdir().unwrap();
    let universe = write_universe(dir.path());
    let expected: BTreeSet<String> = universe
        .iter()
        .filter(|(_, s)| {
            let n = s.close.len();
            let ratio = s.volume[n - 1] / sma_at(&s.volume, 20, n);
            rsi_14(&s.close) < 45.0 && s.close[n - 1] > sma_at(&s.close, 50, n) && ratio >= 0.9
        })
        .map(|(sym, _)| sym.clone())
        .collect();
    assert!(
        expected.len() >= 3 && expected.len() < universe.len() / 2,
        "the crafted universe must both pass and fail the screen: {} pass",
        expected.len()
    );
    let (results, report) = scan_symbols(
        dir.path(),
        &[
            "--where",
            "rsi_14 < 45 and close > sma_50 and volume_ratio_20 >= 0.9",
        ],
    );
    assert_eq!(names(&results), expected);
    assert_eq!(report["matched"], expected.len());
    assert_eq!(report["scanned"], universe.len());
    assert_eq!(report["filtered"]["screen"], universe.len() - expected.len());

    // A crossing on the last session: close was at or below its 20-day average and is now above it.
    let crossed: BTreeSet<String> = universe
        .iter()
        .filter(|(_, s)| {
            let n = s.close.len();
            s.close[n - 2] <= sma_at(&s.close, 20, n - 1) && s.close[n - 1] > sma_at(&s.close, 20, n)
        })
        .map(|(sym, _)| sym.clone())
        .collect();
    assert!(
        !crossed.is_empty() && crossed.len() < universe.len() / 3,
        "{} crossed",
        crossed.len()
    );
    let (results, _) = scan_symbols(dir.path(), &["--where", "crosses_above(close, sma_20)"]);
    assert_eq!(names(&results), crossed);

    // Sorting by a field orders the results by it.
    let (results, _) = scan_symbols(dir.path(), &["--where", "close > 0", "--sort", "change_pct:asc"]);
    let changes: Vec<f64> = results
        .iter()
        .map(|r| r["change_pct"].as_f64().unwrap())
        .collect();
    assert!(changes.windows(2).all(|w| w[0] <= w[1]), "ascending change_pct");
    assert_eq!(results.len(), universe.len());
    let last = &universe
        .iter()
        .find(|(s, _)| s == results[0]["symbol"].as_str().unwrap())
        .unwrap()
        .1
        .close;
    let n = last.len();
    assert!((changes[0] - (last[n - 1] / last[n - 2] - 1.0) * 100.0).abs() < 1e-9);
}

#[test]
fn results_carry_plans_explanations_and_trader_fields() {
    let dir = tempfile::tempdir().unwrap();
    write_universe(dir.path());
    let (results, report) = scan_symbols(dir.path(), &["--account", "50000", "--risk-pct", "0.5"]);
    assert!(
        report["regime"]["benchmark"]
            .as_str()
            .unwrap()
            .contains("equal-weight")
    );
    for r in &results {
        let rating = r["tech_rating"].as_f64().unwrap();
        let sum = r["explain"]
            .as_array()
            .unwrap()
            .iter()
            .fold(0.0, |a, p| a + p["points"].as_f64().unwrap());
        assert_eq!(sum, rating, "{}: parts sum exactly", r["symbol"]);
        for key in [
            "change_pct",
            "volume",
            "dollar_volume_20",
            "atr_pct",
            "bb_width",
            "rs_63",
            "as_of",
        ] {
            assert!(!r[key].is_null(), "{key} in {}", r["symbol"]);
        }
        if r["signal"] != "Avoid" {
            let p = &r["trade_plan"];
            let (entry, stop, target) = (
                p["entry"].as_f64().unwrap(),
                p["stop"].as_f64().unwrap(),
                p["target"].as_f64().unwrap(),
            );
            assert!(stop < entry && entry < target, "{p}");
            assert!(
                p["risk_amount"].as_f64().unwrap() <= 250.0 + 1e-9,
                "0.5 % of 50,000"
            );
        } else {
            assert!(r["trade_plan"].is_null(), "no short plan unless allowed");
        }
    }
}

#[test]
fn bad_expressions_exit_2_with_a_caret_and_close_names() {
    let o = technic(&[
        "scan",
        "--no-store",
        "--demo-symbols",
        "5",
        "--where",
        "rsi < 30",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("unknown field \"rsi\"") && err.contains("rsi_14"),
        "{err}"
    );
    assert!(err.contains("  rsi < 30\n  ^^^"), "{err}");

    let o = technic(&[
        "scan",
        "--no-store",
        "--demo-symbols",
        "5",
        "--where",
        "close > sma_50 and",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ends too early"), "{}", stderr(&o));

    let o = technic(&[
        "scan",
        "--no-store",
        "--demo-symbols",
        "5",
        "--sort",
        "rsi:asc",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--sort") && stderr(&o).contains("rsi_14"),
        "{}",
        stderr(&o)
    );

    let o = technic(&[
        "scan",
        "--no-store",
        "--demo-symbols",
        "5",
        "--preset",
        "golden",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("golden_cross"), "{}", stderr(&o));

    let o = technic(&[
        "scan",
        "--no-store",
        "--demo-symbols",
        "5",
        "--risk-pct",
        "0",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("risk_pct"), "{}", stderr(&o));
}

#[test]
fn presets_are_listed_one_a_line() {
    let o = technic(&["presets"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 15, "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("golden_cross ") && l.contains("crosses_above(sma_50, sma_200)"))
    );
    // Every preset runs.
    for line in lines {
        let name = line.split_whitespace().next().unwrap();
        let o = technic(&[
            "scan",
            "--no-store",
            "--demo-symbols",
            "30",
            "--preset",
            name,
            "--quiet",
            "--json",
        ]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
}

#[test]
fn saved_screens_live_in_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("t.db");
    let store = store.to_str().unwrap();
    let o = technic(&[
        "screen",
        "save",
        "dips",
        "--where",
        "rsi_14 < 50",
        "--sort",
        "rsi_14:asc",
        "--store",
        store,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = technic(&["screen", "save", "bad", "--where", "rsi_14 <", "--store", store]);
    assert_eq!(o.status.code(), Some(2));
    let o = technic(&["screen", "list", "--store", store]);
    assert_eq!(stdout(&o).trim(), "dips  where rsi_14 < 50  sort rsi_14:asc");
    let o = technic(&[
        "scan",
        "--store",
        store,
        "--demo-symbols",
        "40",
        "--screen",
        "dips",
        "--top",
        "0",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rsi: Vec<f64> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["indicators"]["rsi_14"].as_f64().unwrap())
        .collect();
    assert!(!rsi.is_empty() && rsi.iter().all(|r| *r < 50.0));
    assert!(rsi.windows(2).all(|w| w[0] <= w[1]), "the saved sort applies");
    let o = technic(&["screen", "rm", "dips", "--store", store]);
    assert!(o.status.success());
    let o = technic(&["screen", "rm", "dips", "--store", store]);
    assert_eq!(
        o.status.code(),
        Some(4),
        "deleting a screen that is not there: not found"
    );
    let o = technic(&[
        "scan",
        "--store",
        store,
        "--demo-symbols",
        "5",
        "--screen",
        "dips",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(4), "not found");
    assert!(stderr(&o).contains("no saved screen called \"dips\""));
}

#[test]
fn explain_shows_the_parts_and_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    write_universe(dir.path());
    let provider = format!("csv:{}", dir.path().display());
    let o = technic(&[
        "explain",
        "S001",
        "--provider",
        &provider,
        "--no-store",
        "--json",
        "--allow-shorts",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let parts = r["explain"].as_array().unwrap();
    assert_eq!(parts.len(), 7);
    let sum = parts.iter().fold(0.0, |a, p| a + p["points"].as_f64().unwrap());
    assert_eq!(sum, r["tech_rating"].as_f64().unwrap());
    assert!(
        r["trade_plan"].is_object(),
        "long or short plan with --allow-shorts"
    );
    let o = technic(&["explain", "S001", "--provider", &provider, "--no-store"]);
    let text = stdout(&o);
    assert!(text.contains("= tech_rating") && text.contains("trend"), "{text}");
    let o = technic(&["explain", "NOPE", "--provider", &provider, "--no-store"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("NOPE"), "{}", stderr(&o));
}

#[test]
fn a_long_operator_chain_is_refused_with_the_limit_not_a_crash() {
    for op in ["+", "*", "-", "/"] {
        let chain = format!("close > 1{}", format!("{op}1").repeat(1500));
        for command in [
            vec![
                "scan",
                "--no-store",
                "--demo-symbols",
                "5",
                "--quiet",
                "--where",
                &chain,
            ],
            vec!["backtest", "--no-store", "--demo-symbols", "5", "--where", &chain],
        ] {
            let o = technic(&command);
            assert_eq!(o.status.code(), Some(2), "{op} {}: {}", command[0], stderr(&o));
            assert!(stderr(&o).contains("64 levels deep"), "{}", stderr(&o));
        }
    }
}
