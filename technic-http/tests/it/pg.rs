//! A PostgreSQL store in a schema of its own, for tests that share the server.

use std::sync::Arc;
use std::time::Duration;

/// A store in a fresh schema, and what it takes to drop it.
pub struct FreshPg {
    pub store: Arc<dyn technic_core::Store>,
    url: String,
    schema: String,
}

fn url() -> String {
    std::env::var("TECHNIC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn client(url: &str) -> Option<tokio_postgres::Client> {
    let (client, conn) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .ok()?
    .ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// `None` when the server is not reachable.
pub async fn fresh_store() -> Option<FreshPg> {
    let url = url();
    let admin = client(&url).await?;
    let schema = format!("t_http_{}", uuid::Uuid::now_v7().simple());
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .ok()?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let store = technic_core::PostgresStore::connect(&store_url)
        .await
        .expect("connect to the test schema");
    Some(FreshPg {
        store: Arc::new(store),
        url,
        schema,
    })
}

impl FreshPg {
    /// Drops the schema and everything in it.
    pub async fn drop_schema(&self) {
        if let Some(admin) = client(&self.url).await {
            let _ = admin
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .await;
        }
    }
}
