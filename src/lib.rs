//! The umbrella crate: re-exports [`technic_core`] so programs can depend on `technic` alone.
//! It also owns the workspace's examples, benches and cross-crate tests.

pub use technic_core::*;
