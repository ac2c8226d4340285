mod api;
mod browser;
mod e2e;
mod fairness;
#[cfg(all(feature = "redis", feature = "postgres"))]
mod fleet;
#[cfg(feature = "postgres")]
mod pg;
