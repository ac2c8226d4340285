//! The command's edges: a closed pipe, spreadsheet-safe CSV, Ctrl-C from the first milliseconds, `--as-of`
//! past today, bars that cannot be rated (too few, dated in the future, absurd values), the dates a
//! local scan reports, and rates as plans write them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{command, stderr, stdout, technic};

/// `n` plain daily bars of `sym` from 2024-01-02, one a calendar day.
fn write_bars(dir: &Path, sym: &str, n: usize, edit: impl Fn(usize, &mut String)) {
    let mut text = String::from("date,open,high,low,close,volume\n");
    for day in 0..n {
        let date = chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap() + chrono::Days::new(day as u64);
        let c = 50.0 + (day as f64 * 0.3).sin() * 3.0 + day as f64 * 0.05;
        let mut line = format!(
            "{date},{c:.2},{:.2},{:.2},{c:.2},{}\n",
            c + 1.0,
            c - 1.0,
            10_000 + day
        );
        edit(day, &mut line);
        text += &line;
    }
    std::fs::write(dir.join(format!("{sym}.csv")), text).unwrap();
}

#[test]
fn a_closed_pipe_ends_quietly_with_exit_0() {
    for format in ["--csv", "--json"] {
        let mut child = command()
            .args([
                "scan",
                "--no-store",
                "--demo-symbols",
                "2000",
                "--top",
                "0",
                "--quiet",
                format,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read one line, then go away as `head -1` does.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {err}");
        assert!(
            !err.contains("error") && !err.contains("Broken pipe"),
            "{format}: {err}"
        );
    }
}

#[test]
fn csv_cells_that_look_like_formulas_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    write_bars(dir.path(), "AAA", 80, |_, _| {});
    write_bars(dir.path(), "BBB", 80, |_, _| {});
    std::fs::write(
        dir.path().join("universe.csv"),
        "symbol,name,sector,industry\nAAA,Alpha,=1+2,Tools\nBBB,Beta,@SUM(A1),Tools\n",
    )
    .unwrap();
    let provider = format!("csv:{}", dir.path().display());
    let o = technic(&["scan", "--no-store", "--provider", &provider, "--csv", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(",\"'=1+2\","), "{out}");
    assert!(out.contains(",\"'@SUM(A1)\","), "{out}");
    assert!(!out.contains(",=1+2,") && !out.contains(",@SUM"), "{out}");
}

#[test]
fn ctrl_c_in_the_first_milliseconds_is_honoured() {
    let mut honoured = 0;
    for delay_ms in [5, 20, 60, 150] {
        let child = command()
            .args(["scan", "--no-store", "--demo-symbols", "100000", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let sent = Instant::now();
        let kill = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        let took = sent.elapsed();
        // Never lost: the scan does not run on and exit 0. Before the handler is registered (the
        // process still starting) the default action ends it, which is also an honoured Ctrl-C.
        assert!(
            !out.status.success(),
            "Ctrl-C after {delay_ms} ms was lost: {out:?}"
        );
        if out.status.code() == Some(130) {
            honoured += 1;
            assert!(
                took < Duration::from_secs(5),
                "took {took:?} to stop after {delay_ms} ms"
            );
        }
    }
    assert!(honoured > 0, "no run got as far as its own handler");
}

#[test]
fn as_of_after_today_is_a_configuration_error() {
    let o = technic(&[
        "scan",
        "--no-store",
        "--demo-symbols",
        "20",
        "--as-of",
        "2999-01-04",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("after today"), "{}", stderr(&o));
}

#[test]
fn bars_that_cannot_be_rated_are_skipped_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    write_bars(dir.path(), "GOOD", 120, |_, _| {});
    write_bars(dir.path(), "ONE", 1, |_, _| {});
    write_bars(dir.path(), "TEN", 10, |_, _| {});
    // The last bar dated in 2999.
    write_bars(dir.path(), "FUTURE", 120, |day, line| {
        if day == 119 {
            *line = line.replacen("2024-", "2999-", 1);
        }
    });
    write_bars(dir.path(), "HUGE", 120, |day, line| {
        if day == 60 {
            *line = "2024-03-02,50,1e300,49,1e300,100\n".to_owned();
        }
    });
    write_bars(dir.path(), "INVERTED", 120, |day, line| {
        if day == 30 {
            *line = "2024-02-01,50,49,51,50,100\n".to_owned();
        }
    });
    let provider = format!("csv:{}", dir.path().display());
    let o = technic(&["scan", "--no-store", "--provider", &provider, "--json", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ranked: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(ranked, ["GOOD"], "{v}");
    let reason = |sym: &str| {
        v["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["symbol"] == sym)
            .and_then(|s| s["reason"].as_str())
            .unwrap_or_else(|| panic!("{sym} not skipped: {v}"))
            .to_owned()
    };
    assert!(
        reason("ONE").contains("only 1 bars") && reason("ONE").contains("34"),
        "{}",
        reason("ONE")
    );
    assert!(reason("TEN").contains("only 10 bars"), "{}", reason("TEN"));
    assert!(
        reason("FUTURE").contains("2999-") && reason("FUTURE").contains("after today"),
        "{}",
        reason("FUTURE")
    );
    assert!(reason("HUGE").contains("1e12"), "{}", reason("HUGE"));
    assert!(reason("INVERTED").contains("below low"), "{}", reason("INVERTED"));
    // The regime and the reported dates come from the good data only, never from 2999.
    assert!(!v["regime"].to_string().contains("2999"), "{}", v["regime"]);
    assert_eq!(v["range"]["from"], "2024-01-02", "{}", v["range"]);
    assert_eq!(v["range"]["to"], "2024-04-30", "{}", v["range"]);
    for r in v["results"].as_array().unwrap() {
        for (_, x) in r["indicators"].as_object().unwrap() {
            assert!(x.is_null() || x.as_f64().is_some_and(f64::is_finite), "{r}");
        }
    }
}

#[test]
fn rates_are_written_as_plans_state_them() {
    for ok in ["5/min", "100/h", "0.5", "25/day", "5/min,500/day", "0"] {
        let o = technic(&[
            "scan",
            "--no-store",
            "--demo-symbols",
            "5",
            "--quiet",
            "--rate-limit",
            ok,
        ]);
        assert!(o.status.success(), "{ok}: {}", stderr(&o));
    }
    let o = technic(&[
        "scan",
        "--no-store",
        "--demo-symbols",
        "5",
        "--quiet",
        "--rate-limit",
        "5/week",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("5/min"),
        "the error shows the forms: {}",
        stderr(&o)
    );
}

#[test]
fn commands_that_keep_nothing_take_no_keeping_flags() {
    for args in [
        ["report", "--keep-scans", "3"],
        ["report", "--retention-days", "3"],
        ["screen", "list", "--keep-scans"],
    ] {
        let o = technic(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?} is refused: {}", stderr(&o));
    }
    let o = technic(&["scan", "--help"]);
    assert!(stdout(&o).contains("--keep-scans") && stdout(&o).contains("--retention-days"));
}

#[test]
fn one_exit_code_per_kind_of_fault() {
    // A symbol spelled wrong is a bad argument wherever it is typed.
    let o = technic(&["scan", "--no-store", "--symbols", "A$B", "--quiet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = technic(&["explain", "--no-store", "a$b"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A symbol that does not exist is "not found", said once.
    let o = technic(&["explain", "--no-store", "NOPE"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("Not found").count(), 1, "{err}");
    assert!(err.contains("NOPE"), "{err}");
}
