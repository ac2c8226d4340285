//! `technic scan --provider polygon` with a store across Thanksgiving week, run as a user in Tokyo would
//! (`TZ=Asia/Tokyo`), at instants fixed with `TECHNIC_NOW`, against a mock API whose data moves with the
//! same instant (the core's `mock_market`, shared with its tests).

use std::process::{Command, Output};
use std::sync::Arc;

use serde_json::Value;
use technic_core::ManualClock;

#[path = "../../../technic-core/tests/it/mock_market.rs"]
#[allow(dead_code)]
mod mock_market;

use mock_market::{KEY, MockMarket, Split, at};

fn technic(now: &str, tz: &str, store: Option<&str>, base: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_technic"));
    cmd.args([
        "scan",
        "--provider",
        "polygon",
        "--base-url",
        base,
        "--json",
        "--top",
        "0",
        "--quiet",
    ]);
    match store {
        Some(s) => cmd.args(["--store", s]),
        None => cmd.arg("--no-store"),
    };
    cmd.env("TECHNIC_NOW", now)
        .env("TZ", tz)
        .env("POLYGON_API_KEY", KEY)
        .env_remove("TECHNIC_STORE")
        .env_remove("RUST_LOG");
    cmd.output().expect("technic runs")
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

fn closes(v: &Value) -> Vec<(String, String, f64, f64)> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["symbol"].as_str().unwrap().to_owned(),
                r["date"].as_str().unwrap().to_owned(),
                r["close"].as_f64().unwrap(),
                r["indicators"]["sma_50"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn thanksgiving_week_from_tokyo() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let wed = "2026-11-25T20:00:00-05:00";
    let clock = ManualClock::new(at(wed));
    let mut market = MockMarket::new(12);
    market.split = Some(Split {
        symbol_idx: 2,
        effective: chrono::NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
        ratio: 4.0,
    });
    let (server, api) = rt.block_on(mock_market::start(market, Arc::new(clock.clone())));
    let base = server.uri();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();

    // Wednesday 20:00 New York is Thursday 10:00 in Tokyo: the scan is as of Wednesday.
    let v = json(&technic(wed, "Asia/Tokyo", Some(db), &base));
    assert_eq!(
        (v["scanned"].as_u64(), v["skipped"].as_array().map(Vec::len)),
        (Some(12), Some(0))
    );
    assert!(
        closes(&v).iter().all(|(_, date, _, _)| date == "2026-11-25"),
        "{v}"
    );
    let wed_closes = closes(&v);
    api.take_log();

    // Thanksgiving: nothing asked, nothing changed, every symbol scanned.
    let thu = "2026-11-26T20:00:00-05:00";
    clock.set(at(thu));
    let v = json(&technic(thu, "Asia/Tokyo", Some(db), &base));
    assert_eq!(v["scanned"].as_u64(), Some(12));
    assert_eq!(closes(&v), wed_closes);
    let note = v["freshness"].as_str().unwrap_or_default();
    assert!(
        note.contains("2026-11-25") && note.contains("Thanksgiving"),
        "{note}"
    );
    assert!(
        api.take_log().iter().all(|p| !p.starts_with("/v2/aggs/")),
        "bars asked for on a holiday"
    );

    // Friday evening, from Tokyo and from Los Angeles without a store: the same values, split included.
    let fri = "2026-11-27T18:00:00-05:00";
    clock.set(at(fri));
    let stored = json(&technic(fri, "Asia/Tokyo", Some(db), &base));
    assert_eq!(stored["scanned"].as_u64(), Some(12));
    assert_eq!(stored["adjustments"].as_u64(), Some(1), "{}", stored["warnings"]);
    let plain = json(&technic(fri, "America/Los_Angeles", None, &base));
    let (a, b) = (closes(&stored), closes(&plain));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        assert_eq!(x.1, "2026-11-27");
        assert!((x.2 - y.2).abs() <= 1e-9 * x.2.abs(), "{x:?} {y:?}");
        assert!((x.3 - y.3).abs() <= 1e-9 * x.3.abs(), "{x:?} {y:?}");
    }
    // And on a UTC machine the same again, from the store.
    let utc = json(&technic(fri, "UTC", Some(db), &base));
    assert_eq!(closes(&utc), a);
}

#[test]
fn a_malformed_technic_now_is_a_clear_error() {
    let o = technic("next tuesday", "UTC", None, "http://127.0.0.1:9");
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TECHNIC_NOW") && err.contains("RFC 3339"), "{err}");
}

#[test]
fn a_bad_publication_delay_is_a_clear_error() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_technic"));
    let o = cmd
        .args(["scan", "--no-store", "--quiet"])
        .env("TECHNIC_PUBLICATION_DELAY_MIN", "-5")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("TECHNIC_PUBLICATION_DELAY_MIN"), "{err}");
}
