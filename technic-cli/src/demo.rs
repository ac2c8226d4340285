//! `technic demo export DIR`: the built-in demo universe written as a CSV folder (one `SYMBOL.csv` per
//! symbol plus `universe.csv`), so `--provider csv:DIR` can be tried on the demo data without building
//! anything else.

use std::io::Write;
use std::path::PathBuf;

use technic_core::DataProvider;
use technic_core::provider::{CsvDirProvider, SyntheticConfig, SyntheticProvider};

use crate::args::DemoExportArgs;
use crate::wire::ConfigError;

/// The index file the CSV provider reads the universe from.
const UNIVERSE_FILE: &str = "universe.csv";

/// Writes the demo universe into `args.dir`; refuses, before writing anything, when a file it would write
/// is already there (unless `--force`).
pub async fn export(args: &DemoExportArgs) -> anyhow::Result<u8> {
    let provider = SyntheticProvider::new(SyntheticConfig {
        n_symbols: args.demo_symbols,
        ..SyntheticConfig::default()
    });
    let dir = &args.dir;
    if !args.force {
        let universe = provider.universe().await?;
        let existing: Vec<PathBuf> = universe
            .iter()
            .map(|e| dir.join(format!("{}.csv", e.symbol)))
            .chain([dir.join(UNIVERSE_FILE)])
            .filter(|p| p.exists())
            .collect();
        if let Some(first) = existing.first() {
            return Err(anyhow::Error::new(ConfigError(format!(
                "{} already exists{}; nothing was written. Pass --force to replace the files, or choose \
                 another folder",
                first.display(),
                match existing.len() {
                    1 => String::new(),
                    n => format!(" (and {} more files the export would replace)", n - 1),
                }
            ))));
        }
    }
    let written = CsvDirProvider::export(&provider, provider.data_range(), dir)
        .await
        .map_err(|e| anyhow::Error::new(ConfigError(e.detail())))?;
    let range = provider.data_range();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Wrote {written} demo symbols ({} to {}, synthetic prices) to {}: one SYMBOL.csv each, plus {UNIVERSE_FILE}.",
        range.from,
        range.to,
        dir.display()
    )?;
    writeln!(
        out,
        "Scan them with: technic scan --provider csv:{}",
        dir.display()
    )?;
    Ok(0)
}
