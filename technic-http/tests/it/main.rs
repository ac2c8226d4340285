mod api;
mod auth;
mod browser;
mod contract;
mod e2e;
#[cfg(all(feature = "redis", feature = "postgres"))]
mod fleet;
#[cfg(feature = "postgres")]
mod pg;
