//! `technic warm`: one warming pass from the command line. Popularity comes from the store's symbol
//! access counts (recorded by scans and by the server); the most popular symbols are fetched through the
//! scan pipeline with the store attached, so their bars are written to the store (only missing dates
//! are asked for) and the next scan reads them locally.

use std::io::Write;

use technic_core::scan::UniverseSelection;
use technic_core::{Deps, ScanRequest, ScanState, scan};

use crate::args::WarmArgs;
use crate::{progress, wire};

pub async fn run(args: &WarmArgs) -> anyhow::Result<u8> {
    let store = wire::open_any_store(&args.store).await?.0;
    let popular = store.access_counts(args.top).await?;
    let mut out = std::io::stdout().lock();
    if popular.is_empty() {
        writeln!(
            out,
            "Nothing to warm yet: popularity is recorded by scans and symbol lookups that use the store."
        )?;
        return Ok(0);
    }
    let provider = wire::provider(&args.source)?;
    if provider.live_source().is_none() {
        writeln!(
            out,
            "Nothing to warm: {} is read directly on every scan (only a live market-data source's bars are stored).",
            provider.name()
        )?;
        return Ok(0);
    }
    let deps = Deps::on_market(provider, crate::wire::market()?).with_store(store);
    let request = ScanRequest {
        universe: UniverseSelection::Symbols(popular.iter().map(|(s, _)| s.clone()).collect()),
        top: None,
        ..ScanRequest::default()
    };
    let cancel = crate::cancel_on_ctrl_c();
    let sink = progress::TerminalSink::new(args.quiet);
    let report = scan(&request, &deps, &sink, cancel).await;
    sink.finish();
    let report = report?;
    let shown: Vec<String> = popular
        .iter()
        .take(10)
        .map(|(s, n)| format!("{s} ({n})"))
        .collect();
    writeln!(
        out,
        "Most popular: {}{}",
        shown.join(", "),
        if popular.len() > 10 { ", …" } else { "" }
    )?;
    writeln!(
        out,
        "Warmed {} of {} popular symbols into the store in {:.0} ms ({} skipped).",
        report.scanned,
        popular.len(),
        report.timing.total_ms,
        report.skipped.len()
    )?;
    for s in report.skipped.iter().take(10) {
        writeln!(out, "  skipped {}: {}", s.symbol, s.reason)?;
    }
    Ok(if report.state == ScanState::Cancelled {
        130
    } else {
        0
    })
}
