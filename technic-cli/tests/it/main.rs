//! End-to-end tests of the `technic` binary: output formats, CSV directories with bad files, friendly
//! errors with exit codes, and Ctrl-C; [`polygon`] runs the HTTP provider against a local mock API.

mod auth;
mod backtest;
mod edges;
mod firstrun;
mod live;
mod polygon;
mod readme;
mod screens;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary with its default store redirected away from the user's data directory.
pub(crate) fn command() -> Command {
    // Under target/ (build output), not the system temp directory, so test runs leave nothing there.
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("technic-cli-it-{}", std::process::id()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_technic"));
    c.env("XDG_DATA_HOME", data).env_remove("TECHNIC_STORE");
    c
}

pub(crate) fn technic(args: &[&str]) -> Output {
    command().args(args).output().expect("technic runs")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn default_scan_prints_a_ranked_table_and_summary() {
    let o = technic(&["scan", "--demo-symbols", "120"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("DEMO DATA"), "{out}");
    assert!(out.contains("Rating") && out.contains("Signal"), "{out}");
    assert!(out.contains("Scan complete: 120 scanned of 120 symbols"), "{out}");
    assert!(out.contains("cache:") && out.contains("time:"), "{out}");
    // Plain progress lines on stderr when it is not a terminal.
    let err = stderr(&o);
    assert!(
        err.contains("Fetching data…") && err.contains("Complete!"),
        "{err}"
    );
}

#[test]
fn json_output_has_every_field() {
    let o = technic(&["scan", "--json", "--top", "5", "--demo-symbols", "60", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["demo"], true);
    assert_eq!(v["state"], "complete");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["rank"], i + 1);
        for field in ["symbol", "sector", "close", "tech_rating", "signal"] {
            assert!(!r[field].is_null(), "{field} missing in {r}");
        }
        let ind = r["indicators"].as_object().unwrap();
        for name in technic_core::indicators::INDICATOR_NAMES {
            assert!(ind.contains_key(name), "indicator {name} missing");
        }
        assert!(ind["rsi_14"].as_f64().is_some_and(|x| (0.0..=100.0).contains(&x)));
    }
    for key in ["skipped", "filtered", "timing", "cache"] {
        assert!(!v[key].is_null(), "{key} missing");
    }
    assert_eq!(v["cache"]["misses"], 60);
}

#[test]
fn csv_output_has_header_and_rows() {
    let o = technic(&["scan", "--csv", "--top", "3", "--demo-symbols", "40", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(
        &header[..7],
        [
            "rank",
            "symbol",
            "sector",
            "date",
            "close",
            "tech_rating",
            "signal"
        ]
    );
    assert_eq!(*header.last().unwrap(), "demo");
    assert!(lines[1].starts_with("1,") && lines[1].ends_with(",true"));
    assert!(lines[1].split(',').count() >= header.len(), "{}", lines[1]);
    // The summary goes to stderr so stdout stays machine-readable.
    assert!(stderr(&o).contains("Scan complete"));
}

fn write_csv_dir(dir: &Path) {
    let header = "date,open,high,low,close,volume\n";
    for (sym, drift) in [("AAA", 0.3), ("BBB", -0.2), ("CCC", 0.05)] {
        let mut text = String::from(header);
        let mut close: f64 = 50.0;
        for day in 0..300 {
            close = (close + drift + (day as f64 * 0.7).sin()).max(5.0);
            let date = chrono::NaiveDate::from_ymd_opt(2023, 1, 2).unwrap() + chrono::Days::new(day);
            text += &format!(
                "{date},{:.2},{:.2},{:.2},{close:.2},{}\n",
                close,
                close + 1.0,
                close - 1.0,
                1000 + day
            );
        }
        std::fs::write(dir.join(format!("{sym}.csv")), text).unwrap();
    }
    let bad = format!("{header}2024-01-02,10,11,9,10,100\n2024-01-03,10,11,9,oops,100\n");
    std::fs::write(dir.join("BAD.csv"), bad).unwrap();
}

#[test]
fn csv_directory_with_a_corrupt_file_scans_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    write_csv_dir(dir.path());
    let provider = format!("csv:{}", dir.path().display());
    let o = technic(&["scan", "--provider", &provider, "--json", "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["demo"], false);
    let symbols: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols.len(), 3);
    assert!(["AAA", "BBB", "CCC"].iter().all(|s| symbols.contains(s)));
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["symbol"], "BAD");
    let reason = skipped[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("BAD.csv") && reason.contains("line 3") && reason.contains("oops"),
        "{reason}"
    );

    // The table's summary names the file and line too.
    let o = technic(&["scan", "--provider", &provider, "--quiet"]);
    let out = stdout(&o);
    assert!(
        out.contains("skipped BAD: invalid data in BAD.csv: line 3"),
        "{out}"
    );
}

#[test]
fn symbols_sector_and_universe_file_choose_what_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    write_csv_dir(dir.path());
    let provider = format!("csv:{}", dir.path().display());
    let o = technic(&[
        "scan",
        "--provider",
        &provider,
        "--symbols",
        "aaa,ccc",
        "--json",
        "--quiet",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["universe_size"], 2);

    let universe = dir.path().join("my-universe.csv");
    std::fs::write(
        &universe,
        "symbol,name,sector,industry\nAAA,Alpha,Energy,Oil\nBBB,Beta,Utilities,Water\n",
    )
    .unwrap();
    let u = universe.display().to_string();
    let o = technic(&[
        "scan",
        "--provider",
        &provider,
        "--universe",
        &u,
        "--sector",
        "energy",
        "--json",
        "--quiet",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["filtered"]["sector"], 1);
    assert_eq!(v["results"][0]["symbol"], "AAA");
    assert_eq!(v["results"][0]["sector"], "Energy");
}

#[test]
fn bad_input_gets_a_friendly_error_and_exit_code() {
    // A value typed wrong is 2; a provider, folder or file that cannot be used is 3.
    let cases: [(&[&str], &str, i32); 4] = [
        (&["scan", "--provider", "nope"], "unknown provider `nope`", 3),
        (
            &["scan", "--provider", "csv:/definitely/not/here"],
            "does not exist",
            3,
        ),
        (&["scan", "--symbols", "AA;PL"], "contains `;`", 2),
        (
            &["scan", "--min-price", "-5"],
            "--min-price must be a non-negative number",
            2,
        ),
    ];
    for (args, expected, code) in cases {
        let o = technic(args);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = technic(&["scan", "--top", "many"]);
    assert_eq!(o.status.code(), Some(2), "clap usage errors exit 2");
}

#[test]
fn ctrl_c_cancels_with_a_partial_summary_and_exit_130() {
    let mut child = command()
        .args(["scan", "--demo-symbols", "40000", "--no-store"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the scan is fetching data, then interrupt it.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut seen = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        seen += &line;
        if line.contains("— Fetched ") {
            break;
        }
        line.clear();
    }
    assert!(seen.contains("Fetching data…"), "{seen}");
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    assert_eq!(out.status.code(), Some(130), "stderr: {rest}");
    assert!(took < Duration::from_secs(1), "took {took:?} to stop");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("CANCELLED"), "{summary}");
    assert!(rest.contains("Cancelled"), "{rest}");
}

/// The long flags a `--help` text lists, in order.
fn long_flags(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(',').split('=').next().unwrap_or(w).to_owned())
        .collect()
}

#[test]
fn technic_http_takes_the_flags_of_technic_serve() {
    let serve = technic(&["serve", "--help"]);
    let server = Command::new(env!("CARGO_BIN_EXE_technic-http"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(serve.status.success() && server.status.success());
    // Every flag but `--version` (a program's, not a subcommand's), in any order.
    let flags = |o: &Output| {
        let mut f = long_flags(&stdout(o));
        f.retain(|f| f != "--version");
        f.sort();
        f
    };
    let (a, b) = (flags(&serve), flags(&server));
    assert!(a.len() > 10, "{a:?}");
    assert_eq!(a, b, "technic serve and technic-http list the same flags");
    // A wrong value is refused the same way by both (exit 2, clap's usage error).
    let bad = Command::new(env!("CARGO_BIN_EXE_technic-http"))
        .args(["--port", "http"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--port"), "{}", stderr(&bad));
}

#[test]
fn serve_answers_on_loopback_and_stops_on_sigterm() {
    serves_and_stops(command().args(["serve"]));
    // The `technic-http` binary is the same server.
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("technic-http-it-{}", std::process::id()));
    let mut server = Command::new(env!("CARGO_BIN_EXE_technic-http"));
    server.env("XDG_DATA_HOME", &data).env_remove("TECHNIC_STORE");
    serves_and_stops(&mut server);
    let _ = std::fs::remove_dir_all(data);
}

fn serves_and_stops(cmd: &mut Command) {
    use std::io::{Read, Write};
    let mut child = cmd
        .args(["--port", "0", "--demo-symbols", "30", "--no-warm"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // The first run may say where it created the store first.
    while err.read_line(&mut line).unwrap() > 0 && !line.contains("http://") {
        line.clear();
    }
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "binds loopback by default: {addr}"
    );
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"status\":\"ok\""), "{response}");
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    assert!(rest.contains("Stopped."), "{rest}");
}

#[test]
fn store_keeps_scans_and_metrics_and_report_summarises_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    for _ in 0..2 {
        let o = technic(&["scan", "--store", db, "--demo-symbols", "50", "--quiet", "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let csv = std::fs::read_to_string(dir.path().join("logs/performance_metrics.csv")).unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "Timestamp,CacheHitRate,AvgResponseTime,ActiveConnections,ErrorRate"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    // Demo data is generated on every scan, never stored: no lookup is answered by a cache or the store.
    assert_eq!(lines[1].split(',').nth(1), Some("0.0000"), "{csv}");
    assert_eq!(lines[2].split(',').nth(1), Some("0.0000"), "{csv}");

    let md = dir.path().join("report.md");
    let o = technic(&[
        "report",
        "--store",
        db,
        "--since",
        "1h",
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("2 samples, 2 scans"), "{out}");
    assert!(out.contains("Cache hit rate") && out.contains("0.00%"), "{out}");
    // Local data is read once per scan, not through a cache: a 0 % hit rate there is no alert.
    assert!(!out.contains("low_cache_hit_rate"), "{out}");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("| Cache hit rate | 0.00% | 0.00% | 0.00% |"), "{md}");
}

/// `--keep-scans N` bounds the scans the store keeps: the oldest go when a new one is saved.
#[test]
fn keep_scans_bounds_the_scans_the_store_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let db = db.to_str().unwrap();
    for _ in 0..3 {
        let o = technic(&[
            "scan",
            "--store",
            db,
            "--keep-scans",
            "2",
            "--demo-symbols",
            "20",
            "--quiet",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = technic(&["report", "--store", db, "--since", "1h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 samples, 2 scans"), "{}", stdout(&o));
}

#[test]
fn a_store_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "not a database at all\n".repeat(100)).unwrap();
    let o = technic(&["scan", "--store", db.to_str().unwrap(), "--quiet"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not a Technic store"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&db).unwrap(),
        "not a database at all\n".repeat(100)
    );
    let o = technic(&["report", "--store", dir.path().join("none.db").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("no store at"), "{}", stderr(&o));
}

#[test]
fn default_store_lives_in_the_data_directory_and_no_store_writes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_technic"));
        c.env("XDG_DATA_HOME", data.path()).env_remove("TECHNIC_STORE");
        c.args(["scan", "--demo-symbols", "20", "--quiet"]).args(extra);
        c.output().unwrap()
    };
    let o = run(&["--no-store"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!data.path().join("technic").exists());
    let o = run(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(data.path().join("technic/technic.db").exists());
}

#[test]
fn warm_says_demo_data_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let db = db.to_str().unwrap();
    let o = technic(&["warm", "--store", db, "--demo-symbols", "40"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Nothing to warm yet"), "{}", stdout(&o));
    // A scan records every scanned symbol as accessed, but demo data is generated, not stored.
    let o = technic(&[
        "scan",
        "--store",
        db,
        "--demo-symbols",
        "40",
        "--quiet",
        "--json",
        "--top",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scanned"], 40);
    let o = technic(&[
        "warm",
        "--store",
        db,
        "--demo-symbols",
        "40",
        "--top",
        "5",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Nothing to warm: synthetic is read directly"),
        "{out}"
    );
}
