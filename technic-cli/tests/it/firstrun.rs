//! A newcomer's first commands: the table fits a 120-column terminal, `technic demo export` writes a CSV
//! folder that scans as the demo does, every output says when it shows demo data, and the first run names
//! the store it created.

use std::process::Output;

use crate::{command, stderr, stdout, technic};

/// Removes the ANSI escape sequences a progress bar draws with.
#[cfg(target_os = "linux")]
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters, then one final letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() || c == '~' {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `technic ARGS` in a pseudo-terminal `cols` wide (util-linux `script`), stdout and stderr together as
/// the terminal shows them, with `data` as the user's data directory.
#[cfg(target_os = "linux")]
fn in_terminal(cols: u16, args: &str, data: &std::path::Path) -> Output {
    use std::process::{Command, Stdio};
    let shell = format!(
        "stty cols {cols} rows 50; exec '{}' {args}",
        env!("CARGO_BIN_EXE_technic")
    );
    Command::new("script")
        .args(["-qfec", &shell, "/dev/null"])
        .env("XDG_DATA_HOME", data)
        .env_remove("TECHNIC_STORE")
        .env_remove("COLUMNS")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs (it gives the test a pseudo-terminal)")
}

/// Every line as a terminal would show it: split at line feeds and carriage returns, escapes removed.
#[cfg(target_os = "linux")]
fn screen_lines(o: &Output) -> Vec<String> {
    strip_ansi(&String::from_utf8_lossy(&o.stdout))
        .split(['\n', '\r'])
        .map(str::to_owned)
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn the_default_scan_fits_a_120_column_terminal() {
    let data = tempfile::tempdir().unwrap();
    // A fresh data directory: the first-run line about the store is part of what the terminal shows.
    let o = in_terminal(120, "scan", data.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let lines = screen_lines(&o);
    let text = lines.join("\n");
    assert!(
        text.contains("DEMO DATA") && text.contains("Created the store"),
        "{text}"
    );
    assert!(
        text.contains("Rating") && text.contains("Scan complete"),
        "{text}"
    );
    for line in &lines {
        assert!(
            line.chars().count() <= 120,
            "{} characters: {line}\n{text}",
            line.chars().count()
        );
    }
    // The narrow table still ranks: rank, symbol and rating are there.
    let header = lines.iter().find(|l| l.contains("Symbol")).unwrap();
    assert!(header.contains('#') && header.contains("Rating"), "{header}");
    assert!(!header.contains("MACD hist"), "{header}");

    // --wide shows every column however narrow the terminal.
    let o = in_terminal(120, "scan --wide --no-store --quiet", data.path());
    assert!(o.status.success());
    let lines = screen_lines(&o);
    let header = lines.iter().find(|l| l.contains("Symbol")).unwrap();
    assert!(
        header.contains("MACD hist") && header.contains("Sector"),
        "{header}"
    );
    assert!(header.chars().count() > 120);
}

#[test]
fn piped_output_keeps_every_column_and_columns_picks_them() {
    let o = technic(&["scan", "--no-store", "--quiet", "--demo-symbols", "60"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().find(|l| l.contains("Symbol")).unwrap();
    for column in ["Sector", "MACD hist", "Vol×", "Shares"] {
        assert!(header.contains(column), "{column} missing: {header}");
    }
    // COLUMNS alone does not narrow a table going to a pipe.
    let o = command()
        .args(["scan", "--no-store", "--quiet", "--demo-symbols", "60"])
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert_eq!(stdout(&o).lines().find(|l| l.contains("Symbol")).unwrap(), header);

    let o = technic(&[
        "scan",
        "--no-store",
        "--quiet",
        "--demo-symbols",
        "60",
        "--columns",
        "symbol,tech_rating,rsi_14",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().find(|l| l.contains("Symbol")).unwrap();
    let cells: Vec<&str> = header.trim_matches('│').split('┆').map(str::trim).collect();
    assert_eq!(cells, ["Symbol", "Rating", "RSI"], "{header}");

    let o = technic(&["scan", "--no-store", "--columns", "symbol,price"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("`price`") && err.contains("tech_rating") && err.contains("change_pct"),
        "{err}"
    );
}

/// `rank,symbol,tech_rating` of the top 20 of a `--csv` scan.
fn top_20(o: &Output) -> Vec<String> {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o)
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(6).collect::<Vec<_>>())
        .map(|f| format!("{},{},{}", f[0], f[1], f[5]))
        .collect()
}

#[test]
fn demo_export_writes_a_folder_that_scans_as_the_demo_does() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("demo-csv");
    let folder_arg = folder.to_str().unwrap();
    let o = technic(&["demo", "export", folder_arg, "--demo-symbols", "80"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Wrote 80 demo symbols"), "{}", stdout(&o));
    let files = std::fs::read_dir(&folder).unwrap().count();
    assert_eq!(files, 81, "80 SYMBOL.csv files and universe.csv");

    let demo = technic(&["scan", "--no-store", "--quiet", "--csv", "--demo-symbols", "80"]);
    let csv = technic(&[
        "scan",
        "--no-store",
        "--quiet",
        "--csv",
        "--provider",
        &format!("csv:{folder_arg}"),
    ]);
    let (demo_top, csv_top) = (top_20(&demo), top_20(&csv));
    assert_eq!(demo_top.len(), 20);
    assert_eq!(csv_top, demo_top);
    // The same universe: every symbol the demo scans is in the folder.
    let all = technic(&[
        "scan",
        "--no-store",
        "--quiet",
        "--csv",
        "--top",
        "0",
        "--demo-symbols",
        "80",
    ]);
    for line in stdout(&all).lines().skip(1) {
        let symbol = line.split(',').nth(1).unwrap();
        assert!(folder.join(format!("{symbol}.csv")).is_file(), "{symbol}");
    }

    // A second export refuses to overwrite, writing nothing; --force replaces.
    let universe = folder.join("universe.csv");
    std::fs::write(&universe, "symbol\nKEEP\n").unwrap();
    let o = technic(&["demo", "export", folder_arg, "--demo-symbols", "80"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&universe).unwrap(), "symbol\nKEEP\n");
    let o = technic(&["demo", "export", folder_arg, "--demo-symbols", "80", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&universe).unwrap().lines().count() == 81);
}

/// The best symbol of a small demo scan.
fn a_demo_symbol() -> String {
    let o = technic(&[
        "scan",
        "--no-store",
        "--quiet",
        "--csv",
        "--top",
        "1",
        "--demo-symbols",
        "40",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(1)
        .unwrap()
        .to_owned()
}

#[test]
fn explain_says_when_it_shows_demo_data() {
    let symbol = a_demo_symbol();
    let o = technic(&["explain", &symbol, "--no-store", "--demo-symbols", "40"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("DEMO DATA: synthetic prices"),
        "{}",
        stdout(&o)
    );
    let o = technic(&["explain", &symbol, "--no-store", "--demo-symbols", "40", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["demo"], true);
    assert_eq!(v["symbol"], symbol.as_str());
    assert!(v["explain"].as_array().is_some_and(|e| !e.is_empty()));
}

#[test]
fn backtest_says_when_it_shows_demo_data() {
    let args = [
        "backtest",
        "--no-store",
        "--quiet",
        "--demo-symbols",
        "5",
        "--preset",
        "gap_up",
        "--horizon",
        "1,5",
    ];
    let o = technic(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("DEMO DATA: synthetic prices"),
        "{}",
        stdout(&o)
    );
    let o = technic(&[&args[..], &["--csv"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = stdout(&o);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",demo"), "{csv}");
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.ends_with(",true")), "{csv}");
    let o = technic(&[&args[..], &["--json"]].concat());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["demo"], true);
}

#[test]
fn the_first_run_names_the_store_it_created_once() {
    let data = tempfile::tempdir().unwrap();
    let run = || {
        command()
            .args(["scan", "--demo-symbols", "20"])
            .env("XDG_DATA_HOME", data.path())
            .output()
            .unwrap()
    };
    let store = data.path().join("technic").join("technic.db");
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let err = stderr(&first);
    let notices: Vec<&str> = err.lines().filter(|l| l.contains("Created the store")).collect();
    assert_eq!(notices.len(), 1, "{err}");
    let logs = data.path().join("technic").join("logs");
    assert!(
        notices[0].contains(store.to_str().unwrap()) && notices[0].contains(logs.to_str().unwrap()),
        "{}",
        notices[0]
    );
    assert!(notices[0].contains("--no-store"), "{}", notices[0]);
    assert!(store.is_file() && logs.join("performance_metrics.csv").is_file());
    // Nothing on the second run, nor in the stdout a script reads.
    assert!(!stdout(&first).contains("Created the store"));
    let second = run();
    assert!(second.status.success());
    assert!(
        !stderr(&second).contains("Created the store"),
        "{}",
        stderr(&second)
    );

    // --quiet keeps it off stderr even on a first run.
    let quiet_data = tempfile::tempdir().unwrap();
    let o = command()
        .args(["scan", "--demo-symbols", "20", "--quiet"])
        .env("XDG_DATA_HOME", quiet_data.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(!stderr(&o).contains("Created the store"), "{}", stderr(&o));
    assert!(quiet_data.path().join("technic").join("technic.db").is_file());
}
