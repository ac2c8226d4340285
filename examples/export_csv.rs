//! Writes the synthetic demo universe as a CSV directory (`SYMBOL.csv` files plus `universe.csv`) that
//! `technic scan --provider csv:DIR` reads. Useful to try the CSV provider and to benchmark it.
//!
//! `cargo run --release --example export_csv -- DIR [N_SYMBOLS] [N_BARS]`

use std::io::Write;
use std::path::PathBuf;

use technic::{CsvDirProvider, SyntheticConfig, SyntheticProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: export_csv DIR [N_SYMBOLS] [N_BARS]")?);
    let n_symbols = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    let n_bars = args.next().map(|s| s.parse()).transpose()?.unwrap_or(504);
    let provider = SyntheticProvider::new(SyntheticConfig {
        n_symbols,
        n_bars,
        ..SyntheticConfig::default()
    });
    let written = CsvDirProvider::export(&provider, provider.data_range(), &dir).await?;
    writeln!(std::io::stdout(), "wrote {written} symbols to {}", dir.display())?;
    Ok(())
}
