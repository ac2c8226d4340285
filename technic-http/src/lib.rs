//! Technic's embeddable HTTP server. The JSON API, live progress and dashboard arrive with their own issue;
//! until then this crate only re-exports the core so the workspace layout is complete.

pub use technic_core as core;
