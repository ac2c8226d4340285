//! One import for programs that use the library: `use technic_core::prelude::*;` brings what running a
//! scan, implementing a [`DataProvider`] or building [`Bars`] needs, including the items of other crates
//! that appear in those signatures ([`async_trait`](macro@async_trait), [`NaiveDate`], [`CancellationToken`]), so a program
//! does not have to add those crates itself to name them.
//!
//! ```
//! use technic_core::prelude::*;
//!
//! /// A provider of one symbol with three bars, written against the prelude alone.
//! #[derive(Debug)]
//! struct Three;
//!
//! #[async_trait]
//! impl DataProvider for Three {
//!     fn name(&self) -> &str {
//!         "three"
//!     }
//!     async fn universe(&self) -> Result<Universe> {
//!         Ok(vec![UniverseEntry::bare(Symbol::new("ABC"))])
//!     }
//!     async fn daily_bars(&self, _symbol: &Symbol, _range: DateRange) -> Result<Bars> {
//!         let mut bars = Bars::default();
//!         for (day, close) in [(2, 10.0), (3, 10.5), (4, 10.2)] {
//!             let date = NaiveDate::from_ymd_opt(2024, 1, day).expect("a date");
//!             bars.push(Bar { date, open: close, high: close + 0.5, low: close - 0.5, close, volume: 1e5 });
//!         }
//!         Ok(bars)
//!     }
//! }
//! ```

pub use std::sync::Arc;

pub use async_trait::async_trait;
pub use chrono::NaiveDate;
pub use tokio_util::sync::CancellationToken;

pub use crate::error::{Error, Result};
pub use crate::model::{Bar, Bars, DateRange, Symbol, Universe, UniverseEntry};
pub use crate::progress::{NoopSink, ProgressEvent, ProgressSink, Stage};
pub use crate::provider::{CsvDirProvider, DataProvider, SyntheticConfig, SyntheticProvider};
pub use crate::scan::{Deps, ScanReport, ScanRequest, ScanResult, scan};
pub use crate::screen::ScreenSpec;
pub use crate::{MemoryCache, MemoryStore, Signal, Snapshot};
