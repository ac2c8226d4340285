//! Hostile expressions over real HTTP on 127.0.0.1:0: a 1,500-term chain of each operator, sent to every
//! route that takes an expression, is a 422 naming the limit, and the server keeps answering.

use std::time::Duration;

use serde_json::{Value, json};

use crate::e2e::{http, start};

#[tokio::test]
async fn a_long_operator_chain_is_a_422_and_the_server_lives_on() {
    let (addr, _stop, _server) = start(20, Duration::ZERO).await;
    for op in ["+", "*", "-", "/"] {
        // 3 KB: under the 4,096-byte expression limit; once it overflowed a worker's stack.
        let chain = format!("close > 1{}", format!("{op}1").repeat(1500));
        assert!(chain.len() < 4096);
        let bodies = [
            ("/api/v1/scans", json!({ "where": chain })),
            ("/api/v1/screens", json!({ "name": "chain", "where": chain })),
            (
                "/api/v1/backtests",
                json!({ "where": chain, "from": "2025-01-02", "to": "2025-06-30" }),
            ),
        ];
        for (path, body) in bodies {
            let (status, text) = http(&addr, "POST", path, &body.to_string()).await;
            assert_eq!(status, 422, "{path} {op}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let message = v.to_string();
            assert!(
                message.contains("64 levels deep"),
                "{path} {op}: the limit is named: {message}"
            );
        }
        let (status, _) = http(&addr, "GET", "/healthz", "").await;
        assert_eq!(status, 200, "the server still answers after {op}");
    }
}
