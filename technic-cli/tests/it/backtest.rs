//! `technic backtest` and `technic scan --as-of` on CSV files: no look-ahead (a scan as of a day equals a
//! scan of the files cut at that day), picks equal the as-of scan, forward returns equal those computed
//! from the files.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::screens::write_universe;
use crate::{stderr, stdout, technic};

const EXPR: &str = "rsi_14 < 50 and close > sma_50";

fn json(args: &[&str]) -> Value {
    let o = technic(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

fn symbols(report: &Value) -> BTreeSet<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["symbol"].as_str().unwrap().to_owned())
        .collect()
}

/// Copies every file of `from` into `to`, keeping only the rows dated on or before `day`.
fn cut_files(from: &Path, to: &Path, day: &str) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, l)| *i == 0 || l[..10] <= *day)
            .map(|(_, l)| l)
            .collect();
        std::fs::write(to.join(path.file_name().unwrap()), kept.join("\n") + "\n").unwrap();
    }
}

#[test]
fn as_of_scans_equal_scans_of_files_cut_at_that_day() {
    let full = tempfile::tempdir().unwrap();
    let cut = tempfile::tempdir().unwrap();
    write_universe(full.path());
    let day = "2024-08-13";
    cut_files(full.path(), cut.path(), day);
    let (pf, pc) = (
        format!("csv:{}", full.path().display()),
        format!("csv:{}", cut.path().display()),
    );
    let common = ["--no-store", "--top", "0", "--json", "--quiet", "--where", EXPR];
    let mut a = vec!["scan", "--provider", &pf, "--as-of", day];
    a.extend(common);
    let mut b = vec!["scan", "--provider", &pc];
    b.extend(common);
    let (x, y) = (json(&a), json(&b));
    assert!(!symbols(&x).is_empty());
    assert_eq!(x["results"], y["results"], "every field of every result");
    assert!(x["results"].as_array().unwrap().iter().all(|r| r["date"] == day));
}

#[test]
fn backtest_picks_equal_as_of_scans_and_returns_equal_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let universe = write_universe(dir.path());
    let provider = format!("csv:{}", dir.path().display());
    let report = json(&[
        "backtest",
        "--provider",
        &provider,
        "--no-store",
        "--where",
        EXPR,
        "--from",
        "2024-06-03",
        "--to",
        "2024-08-30",
        "--horizon",
        "1,5,10",
        "--json",
        "--quiet",
    ]);
    let days = report["days"].as_array().unwrap();
    assert!(days.len() > 40, "{} sessions", days.len());
    assert_eq!(report["summaries"].as_array().unwrap().len(), 3);
    assert_eq!(report["summary"]["horizon"], 1);
    // Forward returns from the files: close ten sessions later over close on the day.
    let d0 = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut picks = 0;
    for day in days {
        let date: chrono::NaiveDate = day["date"].as_str().unwrap().parse().unwrap();
        let i = (date - d0).num_days() as usize;
        let picked: Vec<&str> = day["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        picks += picked.len();
        let rets: Vec<f64> = picked
            .iter()
            .map(|s| {
                let c = &universe.iter().find(|(n, _)| n == s).unwrap().1.close;
                c[i + 10] / c[i] - 1.0
            })
            .collect();
        let got = day["forward_returns"]["10"].as_f64();
        if rets.is_empty() {
            assert!(got.is_none(), "{date}");
        } else {
            let want = rets.iter().sum::<f64>() / rets.len() as f64;
            assert!((got.unwrap() - want).abs() < 1e-9, "{date}: {got:?} vs {want}");
        }
    }
    assert!(picks > 0);
    // Picks on a few days equal the scan as of that day.
    for k in [0, 17, days.len() - 1] {
        let date = days[k]["date"].as_str().unwrap();
        let scan = json(&[
            "scan",
            "--provider",
            &provider,
            "--no-store",
            "--as-of",
            date,
            "--where",
            EXPR,
            "--top",
            "0",
            "--json",
            "--quiet",
        ]);
        let picked: BTreeSet<String> = days[k]["symbols"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(picked, symbols(&scan), "{date}");
    }
}

#[test]
fn backtest_prints_a_summary_writes_a_chart_and_refuses_bad_input() {
    let chart =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bt-{}.svg", std::process::id()));
    let o = technic(&[
        "backtest",
        "--no-store",
        "--demo-symbols",
        "60",
        "--preset",
        "golden_cross",
        "--chart",
        chart.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "hit rate",
        "mean return, per pick",
        "universe mean, per session",
        "excess per session (picks − universe)",
        "portfolio max drawdown",
        "survivorship",
        "DEMO DATA",
    ] {
        assert!(out.contains(needle), "{needle} in {out}");
    }
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{svg}");
    std::fs::remove_file(&chart).unwrap();

    let o = technic(&["backtest", "--no-store", "--demo-symbols", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("needs a screen"), "{}", stderr(&o));
    let o = technic(&[
        "backtest",
        "--no-store",
        "--demo-symbols",
        "5",
        "--preset",
        "gap_up",
        "--horizon",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = technic(&[
        "backtest",
        "--no-store",
        "--demo-symbols",
        "5",
        "--preset",
        "gap_up",
        "--from",
        "2026-05-01",
        "--to",
        "2026-01-01",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = technic(&[
        "backtest",
        "--no-store",
        "--demo-symbols",
        "5",
        "--preset",
        "gap_up",
        "--csv",
        "--horizon",
        "1,5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = stdout(&o);
    assert!(
        csv.starts_with(
            "date,universe,picks,symbols,forward_return_1,universe_forward_return_1,forward_return_5"
        ),
        "{csv}"
    );
}
