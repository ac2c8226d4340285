//! Keeping popular symbols hot: [`SymbolTracker`] learns which symbols are asked for (with time decay),
//! and [`CacheWarmer`] fetches the popular ones before anyone asks and refreshes them before they expire.

mod tracker;
mod warmer;

pub use tracker::{AccessRecord, SymbolTracker, TrackerConfig};
pub use warmer::{CacheWarmer, WarmPass, WarmerConfig, WarmerStatus};

#[cfg(test)]
mod tests;
