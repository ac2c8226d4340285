//! The `technic-http` binary: serves the API and dashboard over the synthetic or CSV provider.
//! (`technic serve` does the same from the main command.)

use std::net::SocketAddr;

use clap::Parser;
use technic_core::{Deps, provider};
use technic_http::{AppState, DEFAULT_BIND, ServerConfig};

/// Technic's HTTP server: JSON API, live scan progress, metrics and dashboard.
#[derive(Debug, Parser)]
#[command(name = "technic-http", version)]
struct Args {
    /// Address to bind (loopback by default; expose deliberately).
    #[arg(long, default_value = DEFAULT_BIND)]
    bind: SocketAddr,
    /// Data source: `synthetic`, `csv:DIR` or `polygon` (key in POLYGON_API_KEY, URL in POLYGON_BASE_URL).
    #[arg(long, default_value = "synthetic")]
    provider: String,
    /// Token for admin endpoints (clearing the cache); without one they are refused.
    #[arg(long, env = "TECHNIC_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Another host name the server answers for (besides loopback names and the bind address).
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let options = provider::ProviderOptions {
        api_key: std::env::var("POLYGON_API_KEY")
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(provider::ApiKey::new),
        base_url: std::env::var("POLYGON_BASE_URL").unwrap_or_else(|_| provider::DEFAULT_BASE_URL.to_owned()),
        ..provider::ProviderOptions::default()
    };
    let provider =
        provider::from_spec(&args.provider, &options).map_err(|e| anyhow::anyhow!(e.user_message()))?;
    let market = technic_core::Market::from_env().map_err(|e| anyhow::anyhow!(e.detail()))?;
    let deps = Deps::on_market(provider, market);
    let mut config = ServerConfig {
        admin_token: args.admin_token,
        ..ServerConfig::default()
    };
    for host in &args.allowed_hosts {
        config.allow_host(host.trim());
    }
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    println!("Technic dashboard: http://{}/", listener.local_addr()?);
    technic_http::serve(
        listener,
        AppState::new(deps, config),
        technic_http::shutdown_signal(),
    )
    .await?;
    Ok(())
}
