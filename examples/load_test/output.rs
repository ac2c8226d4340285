//! The terminal table, the CSV files and the SVG charts (written by hand: a polyline per series on
//! plain axes).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use crate::record::{ResSample, RunSummary};
use crate::scenarios::Report;

/// A text table with aligned columns (numbers right-aligned).
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let numeric = |s: &str| s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            if i > 0 && numeric(cell) {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = line(&headers.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>());
    out.push_str(&line(&widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>()));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn lat(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

/// The report of one scenario as text.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {}: {}", r.name, r.setup);
    let mut rows = Vec::new();
    for run in &r.runs {
        let kinds = run.kinds.iter().chain((run.kinds.len() > 1).then_some(&run.all));
        for k in kinds {
            let l = &k.latency;
            rows.push(vec![
                run.label.clone(),
                k.kind.clone(),
                l.count.to_string(),
                format!("{:.0}", run.rate(k)),
                lat(l.p50),
                lat(l.p90),
                lat(l.p99),
                lat(l.p999),
                lat(l.max),
                k.errors.to_string(),
                k.busy.to_string(),
            ]);
        }
    }
    if !rows.is_empty() {
        out.push_str("latency in ms (fixed-rate runs: from the intended send time)\n");
        out.push_str(&table(
            &[
                "run", "kind", "count", "per s", "p50", "p90", "p99", "p99.9", "max", "errors", "429",
            ],
            &rows,
        ));
    }
    for (name, value) in &r.facts {
        let _ = writeln!(out, "  {name}: {value}");
    }
    if !r.goals.is_empty() {
        let rows: Vec<Vec<String>> = r
            .goals
            .iter()
            .map(|g| {
                vec![
                    g.what.clone(),
                    g.goal.clone(),
                    g.measured.clone(),
                    match g.met {
                        Some(true) => "met".to_owned(),
                        Some(false) => "NOT MET".to_owned(),
                        None => "not judged".to_owned(),
                    },
                ]
            })
            .collect();
        out.push_str(&table(&["goal", "target", "measured", "verdict"], &rows));
    }
    for run in &r.runs {
        for e in &run.errors {
            let _ = writeln!(out, "  error ({}): {e}", run.label);
        }
    }
    for f in &r.failures {
        let _ = writeln!(out, "  FAILURE: {f}");
    }
    out
}

/// Starts `resources.csv` in `dir` (replacing an earlier one): its header.
pub fn start_resources(dir: &Path) -> std::io::Result<()> {
    std::fs::write(
        dir.join("resources.csv"),
        "scenario,t_s,rss_kb,hwm_kb,open_files,store_bytes\n",
    )
}

/// Appends `report`'s resource samples to `resources.csv` in `dir`.
pub fn write_resources(dir: &Path, report: &Report) -> std::io::Result<()> {
    let path = dir.join("resources.csv");
    let mut f = std::io::BufWriter::new(std::fs::OpenOptions::new().append(true).open(path)?);
    let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    for s in &report.resources {
        writeln!(
            f,
            "{},{:.3},{},{},{},{}",
            report.name,
            s.t,
            opt(s.rss_kb),
            opt(s.hwm_kb),
            opt(s.open_files),
            opt(s.store_bytes)
        )?;
    }
    f.flush()
}

fn file_name(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Writes the charts of `report` into `dir`: latency over time per run, RSS over time (and, for the
/// soak, open files and store size). Returns the files written.
pub fn write_charts(dir: &Path, report: &Report) -> std::io::Result<Vec<String>> {
    let mut written = Vec::new();
    for run in &report.runs {
        if run.windows.len() < 2 {
            continue;
        }
        let name = format!("{}-latency.svg", file_name(&run.label));
        std::fs::write(dir.join(&name), latency_chart(run))?;
        written.push(name);
    }
    let rss: Vec<(f64, f64)> = report
        .resources
        .iter()
        .filter_map(|s| s.rss_kb.map(|kb| (s.t, kb as f64 / 1024.0)))
        .collect();
    if rss.len() >= 2 {
        let name = format!("{}-rss.svg", file_name(&report.name));
        let chart = Chart {
            title: format!("{}: resident memory (VmRSS)", report.name),
            y_label: "MB".to_owned(),
            log_y: false,
            series: vec![Series {
                name: "RSS".to_owned(),
                color: "#1f77b4",
                points: rss,
            }],
        };
        std::fs::write(dir.join(&name), chart.svg())?;
        written.push(name);
    }
    if report.name == "soak" {
        let series = |f: fn(&ResSample) -> Option<f64>| -> Vec<(f64, f64)> {
            report
                .resources
                .iter()
                .filter_map(|s| f(s).map(|v| (s.t, v)))
                .collect()
        };
        let files = series(|s| s.open_files.map(|n| n as f64));
        let store = series(|s| s.store_bytes.map(|b| b as f64 / 1e6));
        if files.len() >= 2 || store.len() >= 2 {
            let chart = Chart {
                title: "soak: open files and store size".to_owned(),
                y_label: "files / MB".to_owned(),
                log_y: false,
                series: vec![
                    Series {
                        name: "open files".to_owned(),
                        color: "#2ca02c",
                        points: files,
                    },
                    Series {
                        name: "store MB".to_owned(),
                        color: "#9467bd",
                        points: store,
                    },
                ],
            };
            std::fs::write(dir.join("soak-files.svg"), chart.svg())?;
            written.push("soak-files.svg".to_owned());
        }
    }
    Ok(written)
}

fn latency_chart(run: &RunSummary) -> String {
    let pts = |f: fn(&crate::record::Window) -> f64| -> Vec<(f64, f64)> {
        run.windows
            .iter()
            .filter(|w| w.count > 0)
            .map(|w| (w.second as f64 + 0.5, f(w).max(0.001)))
            .collect()
    };
    Chart {
        title: format!("{}: latency per second", run.label),
        y_label: "ms (log)".to_owned(),
        log_y: true,
        series: vec![
            Series {
                name: "p50".to_owned(),
                color: "#1f77b4",
                points: pts(|w| w.p50),
            },
            Series {
                name: "p99".to_owned(),
                color: "#ff7f0e",
                points: pts(|w| w.p99),
            },
            Series {
                name: "max".to_owned(),
                color: "#d62728",
                points: pts(|w| w.max),
            },
        ],
    }
    .svg()
}

struct Series {
    name: String,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

/// Series drawn dashed (the max, so the p99 under it stays visible).
const DASHED: &str = "max";

struct Chart {
    title: String,
    y_label: String,
    log_y: bool,
    series: Vec<Series>,
}

/// Round tick steps: 1, 2 or 5 times a power of ten, about `n` ticks over `span`.
fn nice_step(span: f64, n: f64) -> f64 {
    let raw = (span / n).max(f64::MIN_POSITIVE);
    let pow = 10f64.powf(raw.log10().floor());
    let m = raw / pow;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * pow
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn num(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v.abs() >= 1.0 {
        let s = format!("{v:.1}");
        s.trim_end_matches(".0").to_owned()
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

impl Chart {
    fn svg(&self) -> String {
        let (w, h) = (760.0, 320.0);
        let (left, right, top, bottom) = (64.0, 110.0, 34.0, 42.0);
        let (pw, ph) = (w - left - right, h - top - bottom);
        let all: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .collect();
        let x_max = all.iter().map(|p| p.0).fold(0.0, f64::max).max(1.0);
        let (y_lo, y_hi) = if self.log_y {
            let lo = all.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).max(0.001);
            let hi = all.iter().map(|p| p.1).fold(0.0, f64::max).max(lo * 10.0);
            (lo.log10().floor(), hi.log10().ceil())
        } else {
            let hi = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0);
            let step = nice_step(hi, 5.0);
            (0.0, (hi / step).ceil() * step)
        };
        let y_of = |v: f64| {
            let v = if self.log_y { v.max(1e-9).log10() } else { v };
            top + ph - (v - y_lo) / (y_hi - y_lo).max(1e-9) * ph
        };
        let x_of = |t: f64| left + t / x_max * pw;
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r##"<rect width="{w}" height="{h}" fill="#ffffff"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
            left + pw / 2.0,
            esc(&self.title)
        );
        // Y grid and labels.
        let y_ticks: Vec<f64> = if self.log_y {
            (y_lo as i32..=y_hi as i32).map(|e| 10f64.powi(e)).collect()
        } else {
            let step = nice_step(y_hi, 5.0);
            (0..=((y_hi / step).round() as i32))
                .map(|i| f64::from(i) * step)
                .collect()
        };
        for v in y_ticks {
            let y = y_of(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dddddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0,
                num(v)
            );
        }
        // X grid and labels (seconds).
        let step = nice_step(x_max, 8.0);
        let mut t = 0.0;
        while t <= x_max + 1e-9 {
            let x = x_of(t);
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#eeeeee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + ph,
                top + ph + 16.0,
                num(t)
            );
            t += step;
        }
        let _ = writeln!(
            s,
            r##"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888888"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">seconds since start</text>"#,
            left + pw / 2.0,
            h - 6.0
        );
        let _ = writeln!(
            s,
            r#"<text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">{}</text>"#,
            top + ph / 2.0,
            top + ph / 2.0,
            esc(&self.y_label)
        );
        for (i, series) in self.series.iter().enumerate() {
            if series.points.is_empty() {
                continue;
            }
            let pts: Vec<String> = series
                .points
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x_of(*t), y_of(*v)))
                .collect();
            let dash = if series.name == DASHED {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5"{dash} points="{}"/>"#,
                series.color,
                pts.join(" ")
            );
            let ly = top + 14.0 + i as f64 * 18.0;
            let lx = left + pw + 12.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{ly:.1}">{}</text>"#,
                ly - 4.0,
                lx + 18.0,
                ly - 4.0,
                series.color,
                lx + 24.0,
                esc(&series.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}
