mod api;
mod auth;
mod browser;
mod contract;
mod e2e;
mod fairness;
#[cfg(all(feature = "redis", feature = "postgres"))]
mod fleet;
mod hostile;
#[cfg(feature = "postgres")]
mod pg;
