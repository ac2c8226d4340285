mod api;
mod browser;
mod e2e;
