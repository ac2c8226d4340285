//! `technic presets`, `technic screen save|list|rm` and `technic explain`.

use std::io::Write;

use technic_core::screen::{PRESETS, SavedScreen, ScreenSpec, check_name, resolve};
use technic_core::{ScanRequest, ScanState, Symbol, UniverseSelection};

use crate::args::{ExplainArgs, ScreenCommand, StoreArgs};
use crate::wire::{self, usage_error as usage};

/// One preset a line: name, then description and expression.
pub fn presets() -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    let width = PRESETS.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in PRESETS {
        writeln!(out, "{:width$}  {} — {}", p.name, p.description, p.expression)?;
    }
    Ok(0)
}

async fn store(args: &StoreArgs) -> anyhow::Result<std::sync::Arc<dyn technic_core::Store>> {
    Ok(wire::open_any_store(args).await?.0)
}

/// `technic screen save|list|rm`.
pub async fn screen(cmd: ScreenCommand) -> anyhow::Result<u8> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ScreenCommand::Save {
            name,
            where_,
            preset,
            sort,
            store: store_args,
        } => {
            check_name(&name).map_err(usage)?;
            if where_.is_none() && preset.is_none() && sort.is_none() {
                return Err(usage("a screen needs --where, --preset or --sort".to_owned()));
            }
            let spec: ScreenSpec = resolve(where_.as_deref(), preset.as_deref(), None, sort.as_deref())
                .map_err(|e| {
                    let flag = if sort.as_deref() == Some(e.source.as_str()) {
                        "--sort"
                    } else if preset.as_deref() == Some(e.source.as_str()) {
                        "--preset"
                    } else {
                        "--where"
                    };
                    wire::usage(&e, flag)
                })?;
            let store = store(&store_args).await?;
            let saved = SavedScreen {
                name: name.clone(),
                spec,
                saved_at: wire::market()?.now(),
            };
            store.save_screen(&saved).await?;
            writeln!(out, "Saved screen {name}: {}", describe(&saved.spec))?;
        }
        ScreenCommand::List { store: store_args } => {
            let screens = store(&store_args).await?.screens().await?;
            if screens.is_empty() {
                writeln!(
                    out,
                    "No saved screens. Save one with: technic screen save NAME --where \"EXPR\""
                )?;
            }
            for s in screens {
                writeln!(out, "{}  {}", s.name, describe(&s.spec))?;
            }
        }
        ScreenCommand::Rm {
            name,
            store: store_args,
        } => {
            if !store(&store_args).await?.delete_screen(&name).await? {
                return Err(anyhow::Error::new(technic_core::Error::not_found(format!(
                    "no saved screen called \"{name}\"; `technic screen list` shows them"
                ))));
            }
            writeln!(out, "Deleted screen {name}")?;
        }
    }
    Ok(0)
}

fn describe(spec: &ScreenSpec) -> String {
    let mut parts = Vec::new();
    if let Some(w) = &spec.where_ {
        parts.push(format!("where {w}"));
    }
    if let Some(s) = &spec.sort {
        parts.push(format!("sort {s}"));
    }
    parts.join("  ")
}

/// `technic explain SYMBOL`: the rating's parts and the trade plan of one symbol.
pub async fn explain(args: &ExplainArgs) -> anyhow::Result<u8> {
    let symbol = Symbol::parse(&args.symbol).map_err(|e| usage(format!("symbol: {e}")))?;
    let provider = wire::provider(&args.source)?;
    let mut deps = technic_core::Deps::on_market(provider, wire::market()?);
    if !args.no_store {
        deps = deps.with_store(wire::open_any_store(&args.store).await?.0);
    }
    let request = ScanRequest {
        universe: UniverseSelection::Symbols(vec![symbol.clone()]),
        top: None,
        plan: wire::plan(&args.plan)?,
        benchmark: wire::benchmark(&args.plan)?,
        background: true,
        ..ScanRequest::default()
    };
    let report = technic_core::scan(
        &request,
        &deps,
        &technic_core::NoopSink,
        crate::cancel_on_ctrl_c(),
    )
    .await?;
    if report.state == ScanState::Cancelled {
        return Ok(130);
    }
    let Some(result) = report.results.first() else {
        let why = report
            .skipped
            .first()
            .map_or_else(|| "no bars".to_owned(), |s| s.reason.clone());
        // The reason names the symbol already when it was not found; say it once.
        let error = match why.strip_prefix("Not found: ") {
            Some(what) => technic_core::Error::not_found(what),
            None => technic_core::Error::invalid_data(symbol.as_str(), why),
        };
        return Err(anyhow::Error::new(error));
    };
    let mut result = result.clone();
    result.fill_explain();
    let result = &result;
    let mut out = std::io::stdout().lock();
    if args.json {
        let labelled = Labelled {
            result,
            demo: report.demo,
        };
        serde_json::to_writer_pretty(&mut out, &labelled)?;
        writeln!(out)?;
        return Ok(0);
    }
    if report.demo {
        writeln!(out, "{}", crate::render::DEMO_NOTICE)?;
    }
    writeln!(
        out,
        "{} — rating {:.1} ({}) as of {}, close {:.2}",
        result.symbol, result.tech_rating, result.signal, result.date, result.close
    )?;
    writeln!(out)?;
    for part in &result.explain {
        let score = part.score.map_or("—".to_owned(), |s| format!("{s:+.2}"));
        writeln!(
            out,
            "{:>+7.2}  {:<10} score {:>5}  weight {:>4.1}  {}",
            part.points, part.component, score, part.weight, part.rule
        )?;
    }
    let total: f64 = result.explain.iter().fold(0.0, |a, p| a + p.points);
    writeln!(out, "{total:>7.2}  = tech_rating")?;
    writeln!(out)?;
    match &result.trade_plan {
        Some(p) => {
            let side = match p.side {
                technic_core::screen::plan::Side::Long => "long",
                technic_core::screen::plan::Side::Short => "short",
            };
            writeln!(
                out,
                "Trade plan ({side}): entry {:.2}, stop {:.2}, target {:.2} ({:.1}R); {} shares = {:.0} at risk {:.0}{}",
                p.entry,
                p.stop,
                p.target,
                p.reward_risk,
                p.shares,
                p.position_value,
                p.risk_amount,
                if p.liquidity_limited {
                    " (cut to 5 % of 20-day dollar volume)"
                } else {
                    ""
                }
            )?;
        }
        None => writeln!(
            out,
            "No trade plan: {}",
            if result.signal == technic_core::Signal::Avoid && !args.plan.allow_shorts {
                "the signal is Avoid (pass --allow-shorts for a short plan)"
            } else {
                "not enough history for ATR(14)"
            }
        )?,
    }
    Ok(0)
}

/// One explained result as `explain --json` prints it: the result's fields, then whether it was made
/// from demo data (as every JSON output says).
#[derive(serde::Serialize)]
struct Labelled<'a> {
    #[serde(flatten)]
    result: &'a technic_core::ScanResult,
    demo: bool,
}
