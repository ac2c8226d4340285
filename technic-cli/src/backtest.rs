//! `technic backtest`: a screen's picks every session of a period and their forward returns, as a summary
//! table (one column per horizon), a per-year table, JSON, CSV, and an SVG equity curve.

use std::fmt::Write as _;
use std::io::Write;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Table};
use technic_core::backtest::{BacktestReport, BacktestRequest, EquityPoint, HorizonSummary, backtest};
use technic_core::{Filters, ScanState, Symbol, UniverseSelection};

use crate::args::BacktestArgs;
use crate::wire::{self, usage_error as usage};

/// Runs `technic backtest`.
pub async fn run(args: &BacktestArgs) -> anyhow::Result<u8> {
    let provider = wire::provider(&args.source)?;
    let mut deps = technic_core::Deps::on_market(provider, wire::market()?);
    let store = if args.no_store {
        None
    } else {
        Some(wire::open_any_store(&args.store).await?.0)
    };
    if let Some(s) = &store {
        deps = deps.with_store(s.clone());
    }
    let screen = wire::screen_spec(
        args.where_.as_deref(),
        args.preset.as_deref(),
        args.screen.as_deref(),
        args.sort.as_deref(),
        store.as_deref(),
    )
    .await?;
    if screen.where_.is_none() && (screen.sort.is_none() || args.top == 0) {
        return Err(usage(
            "a backtest needs a screen: --where EXPR, --preset NAME or --screen NAME (or --sort with --top)"
                .to_owned(),
        ));
    }
    if let Some(bad) = args
        .horizon
        .iter()
        .find(|h| **h == 0 || **h > technic_core::backtest::MAX_HORIZON)
    {
        return Err(usage(format!(
            "--horizon {bad}: horizons are 1 to {} sessions",
            technic_core::backtest::MAX_HORIZON
        )));
    }
    if let (Some(f), Some(t)) = (args.from, args.to)
        && f > t
    {
        return Err(usage(format!("--from {f} is after --to {t}")));
    }
    let symbols = args
        .symbols
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| Symbol::parse(s).map_err(|e| usage(format!("--symbols: {e}"))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let benchmark = args
        .benchmark
        .as_deref()
        .map(|s| Symbol::parse(s).map_err(|e| usage(format!("--benchmark: {e}"))))
        .transpose()?;
    let req = BacktestRequest {
        universe: if symbols.is_empty() {
            UniverseSelection::Provider
        } else {
            UniverseSelection::Symbols(symbols)
        },
        filters: Filters {
            max_symbols: args.max_symbols,
            ..Filters::default()
        },
        screen,
        top: (args.top > 0).then_some(args.top),
        horizons: args.horizon.clone(),
        from: args.from,
        to: args.to,
        benchmark,
        ..BacktestRequest::default()
    };
    let sink = crate::progress::TerminalSink::new(args.quiet);
    let report = backtest(&req, &deps, &sink, crate::cancel_on_ctrl_c()).await;
    sink.finish();
    let report = report.map_err(|e| anyhow::Error::new(e).context("the backtest could not run"))?;
    if let Some(path) = &args.chart {
        std::fs::write(path, svg(&report))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let mut out = crate::stdout();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else if args.csv {
        out.write_all(csv(&report).as_bytes())?;
    } else {
        out.write_all(text(&report).as_bytes())?;
    }
    out.flush()?;
    if args.json || args.csv {
        eprint!("{}", text(&report));
    }
    if let Some(path) = &args.chart {
        eprintln!("Equity curve written to {}", path.display());
    }
    Ok(match report.state {
        ScanState::Complete => 0,
        _ => 130,
    })
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |v| format!("{:+.2} %", v * 100.0))
}

fn share(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

/// How one row of the summary table reads a horizon's summary.
type Figure = fn(&HorizonSummary) -> String;

/// The summary table (a column per horizon), the per-year table of the first horizon, and caveats.
pub fn text(r: &BacktestReport) -> String {
    let mut s = String::new();
    if r.demo {
        let _ = writeln!(s, "{}", crate::render::DEMO_NOTICE);
    }
    let screen = r.where_.as_deref().unwrap_or("(every symbol)");
    let _ = writeln!(
        s,
        "Backtest of {screen}{}{} over {} sessions, {} to {} ({} symbols, {})",
        r.sort
            .as_deref()
            .map_or(String::new(), |o| format!(" sorted by {o}")),
        r.top.map_or(String::new(), |k| format!(", best {k} a session")),
        r.days.len(),
        r.from,
        r.to,
        r.universe_size,
        r.provider
    );
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec![Cell::new("")];
    header.extend(
        r.summaries
            .iter()
            .map(|h| Cell::new(format!("{} sessions", h.horizon))),
    );
    t.set_header(header);
    let rows: [(&str, Figure); 12] = [
        ("sessions measured", |h| h.sessions.to_string()),
        ("sessions without future", |h| {
            h.sessions_without_future.to_string()
        }),
        ("picks per session", |h| format!("{:.1}", h.picks_per_session)),
        ("hit rate (share of picks up)", |h| share(h.hit_rate)),
        ("mean return, per pick", |h| pct(h.mean_return)),
        ("median return, per pick", |h| pct(h.median_return)),
        ("universe mean, per session", |h| pct(h.universe_mean_return)),
        ("excess per session (picks − universe)", |h| pct(h.excess_return)),
        ("portfolio total return", |h| pct(Some(h.portfolio.total_return))),
        ("universe total return", |h| {
            pct(Some(h.portfolio.universe_total_return))
        }),
        ("portfolio max drawdown", |h| {
            share(Some(h.portfolio.max_drawdown))
        }),
        ("portfolio trades", |h| h.portfolio.trades.to_string()),
    ];
    for (name, f) in rows {
        let mut row = vec![Cell::new(name)];
        row.extend(
            r.summaries
                .iter()
                .map(|h| Cell::new(f(h)).set_alignment(CellAlignment::Right)),
        );
        t.add_row(row);
    }
    let _ = writeln!(s, "{t}");
    let h = &r.summary;
    if !h.per_year.is_empty() {
        let mut y = Table::new();
        y.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            format!("year ({} sessions ahead)", h.horizon),
            "sessions".into(),
            "picks".into(),
            "hit rate".into(),
            "mean".into(),
            "universe".into(),
            "excess".into(),
        ]);
        for row in &h.per_year {
            y.add_row(vec![
                Cell::new(row.year),
                Cell::new(row.sessions).set_alignment(CellAlignment::Right),
                Cell::new(row.picks).set_alignment(CellAlignment::Right),
                Cell::new(share(row.hit_rate)).set_alignment(CellAlignment::Right),
                Cell::new(pct(row.mean_return)).set_alignment(CellAlignment::Right),
                Cell::new(pct(row.universe_mean_return)).set_alignment(CellAlignment::Right),
                Cell::new(pct(row.excess_return)).set_alignment(CellAlignment::Right),
            ]);
        }
        let _ = writeln!(s, "{y}");
    }
    let _ = writeln!(
        s,
        "Close-to-close returns, no costs or slippage, today's universe throughout (survivorship); see the user \
         guide's \"Backtesting a screen\". {} symbols skipped; {:.0} ms.",
        r.skipped.len(),
        r.elapsed_ms
    );
    if r.state == ScanState::Cancelled {
        let _ = writeln!(
            s,
            "CANCELLED: the figures cover the sessions finished before Ctrl-C."
        );
    }
    s
}

/// One row a session: date, universe, picks, the picks' symbols, then the picks' and the universe's mean
/// forward return per horizon, then `demo` (whether the prices were demo data).
pub fn csv(r: &BacktestReport) -> String {
    let mut s = String::from("date,universe,picks,symbols");
    for h in &r.horizons {
        let _ = write!(s, ",forward_return_{h},universe_forward_return_{h}");
    }
    s.push_str(",demo\n");
    for d in &r.days {
        let symbols: Vec<&str> = d.symbols.iter().map(Symbol::as_str).collect();
        let _ = write!(
            s,
            "{},{},{},{}",
            d.date,
            d.universe,
            d.symbols.len(),
            symbols.join(" ")
        );
        for h in &r.horizons {
            let k = h.to_string();
            let v = |m: &std::collections::BTreeMap<String, Option<f64>>| {
                m.get(&k)
                    .copied()
                    .flatten()
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            };
            let _ = write!(s, ",{},{}", v(&d.forward_returns), v(&d.universe_forward_returns));
        }
        let _ = writeln!(s, ",{}", r.demo);
    }
    s
}

/// The first horizon's equity curve: the portfolio and the equal-weight universe, as an SVG line chart.
pub fn svg(r: &BacktestReport) -> String {
    let points: &[EquityPoint] = &r.summary.portfolio.equity;
    let (w, h, l, rt, t, b) = (900.0, 420.0, 70.0, 20.0, 40.0, 50.0);
    let (pw, ph) = (w - l - rt, h - t - b);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"##
    );
    let _ = writeln!(s, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);
    let title = format!(
        "{} — equal-weight picks, rebalanced every {} sessions{}",
        xml(r.where_.as_deref().unwrap_or("every symbol")),
        r.summary.horizon,
        if r.demo { " (demo data)" } else { "" }
    );
    let _ = writeln!(
        s,
        r##"<text x="{l}" y="22" font-size="14" fill="#222">{title}</text>"##
    );
    if points.len() < 2 {
        let _ = writeln!(
            s,
            r##"<text x="{l}" y="{}" fill="#666">Not enough sessions for a curve.</text></svg>"##,
            t + ph / 2.0
        );
        return s;
    }
    let lo = points
        .iter()
        .flat_map(|p| [p.portfolio, p.universe])
        .fold(f64::INFINITY, f64::min);
    let hi = points
        .iter()
        .flat_map(|p| [p.portfolio, p.universe])
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if hi - lo < 1e-9 {
        (lo - 0.05, hi + 0.05)
    } else {
        (lo, hi)
    };
    let d0 = points[0].date;
    let span = (points[points.len() - 1].date - d0).num_days().max(1) as f64;
    let x = |p: &EquityPoint| l + pw * (p.date - d0).num_days() as f64 / span;
    let y = |v: f64| t + ph * (1.0 - (v - lo) / (hi - lo));
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end" fill="#555">{:+.0} %</text>"##,
            l + pw,
            l - 6.0,
            yy + 4.0,
            (v - 1.0) * 100.0
        );
    }
    let line = |f: fn(&EquityPoint) -> f64| {
        points
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p), y(f(p))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#9aa4b2" stroke-width="2" points="{}"/>"##,
        line(|p| p.universe)
    );
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#2563eb" stroke-width="2.5" points="{}"/>"##,
        line(|p| p.portfolio)
    );
    let last = &points[points.len() - 1];
    let _ = writeln!(
        s,
        r##"<text x="{l}" y="{}" fill="#555">{}</text><text x="{}" y="{}" text-anchor="end" fill="#555">{}</text>"##,
        h - 18.0,
        points[0].date,
        l + pw,
        h - 18.0,
        last.date
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{}" fill="#2563eb">picks {:+.1} %</text><text x="{}" y="{}" fill="#7a8494">universe {:+.1} %</text>"##,
        l + 10.0,
        t + 16.0,
        (last.portfolio - 1.0) * 100.0,
        l + 140.0,
        t + 16.0,
        (last.universe - 1.0) * 100.0
    );
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
