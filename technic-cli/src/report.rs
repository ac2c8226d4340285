//! `technic report`: a summary of the performance samples, alerts and scans kept in the store, with
//! trends (min/avg/max per metric), as text and optionally as Markdown.

use std::fmt::Write as _;
use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use technic_core::ScanReport;
use technic_core::monitor::{MetricSummary, Trend};

use crate::args::ReportArgs;
use crate::wire;

/// Runs `technic report`.
pub async fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    let period = parse_period(&args.since)?;
    if !wire::is_postgres(&args.store) {
        let path = wire::store_path(&args.store)?;
        if !path.exists() {
            return Err(anyhow::Error::new(wire::ConfigError(format!(
                "no store at {}; run `technic scan` first or pass --store PATH",
                path.display()
            ))));
        }
    }
    let store = wire::open_any_store(&args.store).await?.0;
    let since = wire::market()?.now() - period;
    let summary = store.metric_summary(since).await?;
    // Scans are few per day; a generous limit covers any period a person asks for.
    let scans: Vec<ScanReport> = store
        .recent_scans(10_000)
        .await?
        .into_iter()
        .filter(|s| s.started_at >= since)
        .collect();
    let text = render(&summary, &scans, &args.since, false);
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if let Some(file) = &args.markdown {
        std::fs::write(file, render(&summary, &scans, &args.since, true))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    }
    Ok(0)
}

/// The longest period a report covers: 100 years.
const MAX_PERIOD_DAYS: i64 = 36_500;

/// Parses `30m`, `24h`, `7d`, `2w` (at most 100 years).
pub fn parse_period(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let bad = || {
        anyhow::Error::new(wire::ConfigError(format!(
            "--since `{s}`: use a number and a unit, e.g. 30m, 24h, 7d, 2w (at most 100 years)"
        )))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    match unit {
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
    .filter(|d| *d > Duration::zero() && *d <= Duration::days(MAX_PERIOD_DAYS))
    .ok_or_else(bad)
}

fn trend_row(name: &str, unit: &str, t: Option<Trend>, scale: f64) -> [String; 5] {
    let f = |v: f64| format!("{:.2}{unit}", v * scale);
    match t {
        Some(t) => [name.to_owned(), f(t.min), f(t.avg), f(t.max), arrow(&t)],
        None => [name.to_owned(), "-".into(), "-".into(), "-".into(), "-".into()],
    }
}

/// Last sample against the first: up, down or flat (within 5 % of the range).
fn arrow(t: &Trend) -> String {
    let span = (t.max - t.min).abs();
    let delta = t.last - t.first;
    if span == 0.0 || delta.abs() <= 0.05 * span {
        "flat".into()
    } else if delta > 0.0 {
        "up".into()
    } else {
        "down".into()
    }
}

/// The report as plain text or Markdown.
pub fn render(s: &MetricSummary, scans: &[ScanReport], period: &str, markdown: bool) -> String {
    let mut out = String::new();
    let since = s.since.format("%Y-%m-%d %H:%M UTC");
    let h = if markdown { "## " } else { "" };
    let _ = writeln!(
        out,
        "{h}Technic performance report: last {period} (since {since})"
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "{} samples, {} scans", s.n_samples, scans.len());
    let _ = writeln!(out);
    let rows = [
        trend_row("Cache hit rate", "%", s.cache_hit_rate, 100.0),
        trend_row("Avg response", " ms", s.avg_response_ms, 1.0),
        trend_row("Active connections", "", s.active_connections, 1.0),
        trend_row("Error rate", "%", s.error_rate, 100.0),
    ];
    table(
        &mut out,
        &["Metric", "Min", "Avg", "Max", "Trend"],
        &rows,
        markdown,
    );
    let _ = writeln!(out);
    if s.alerts.is_empty() {
        let _ = writeln!(out, "Alerts fired: none");
    } else {
        let _ = writeln!(out, "Alerts fired:");
        let _ = writeln!(out);
        let rows: Vec<[String; 4]> = s
            .alerts
            .iter()
            .map(|a| {
                [
                    a.rule.clone(),
                    a.severity.as_str().to_owned(),
                    a.count.to_string(),
                    a.last_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &["Rule", "Severity", "Count", "Last fired (UTC)"],
            &rows,
            markdown,
        );
    }
    if let Some(t) = Trend::of(&scans.iter().rev().map(|r| r.timing.total_ms).collect::<Vec<_>>()) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Scan time: min {:.0} ms, avg {:.0} ms, max {:.0} ms; last scan {}",
            t.min,
            t.avg,
            t.max,
            scans.first().map_or_else(String::new, |r| fmt_time(r.started_at))
        );
    }
    out
}

fn fmt_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn table<const N: usize>(out: &mut String, header: &[&str; N], rows: &[[String; N]], markdown: bool) {
    if markdown {
        let _ = writeln!(out, "| {} |", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(N));
        for r in rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
        return;
    }
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(out, "{}", line(header.to_vec()).trim_end());
    for r in rows {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()).trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_period("24h").unwrap(), Duration::hours(24));
        assert_eq!(parse_period("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_period("30m").unwrap(), Duration::minutes(30));
        for bad in ["", "h", "24", "0h", "3y", "-1h"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    use proptest::prelude::*;

    proptest! {
        /// Any number with any unit parses to a period within 100 years or is refused: never a panic,
        /// and "now minus the period" is always a valid instant.
        #[test]
        fn any_period_is_accepted_or_refused(n in any::<u64>(), unit in "[mhdwyx]?") {
            let text = format!("{n}{unit}");
            if let Ok(p) = parse_period(&text) {
                prop_assert!(p > Duration::zero() && p <= Duration::days(MAX_PERIOD_DAYS));
                prop_assert!(Utc::now().checked_sub_signed(p).is_some());
            }
        }
    }

    #[test]
    fn huge_and_malformed_periods_are_refused() {
        for bad in ["99999999w", "0h", "-1d", "h", "", "1y", "9223372036854775807m"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_period("2w").unwrap(), Duration::weeks(2));
    }
}
