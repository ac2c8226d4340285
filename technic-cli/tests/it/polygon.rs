//! `technic scan --provider polygon` end to end against a wiremock server on 127.0.0.1: results, a
//! skipped unknown symbol, a retried 503, the summary, a bad key, a missing key, and the key absent from
//! every byte the command prints, even with trace logging.

use std::process::{Command, Output};

use serde_json::{Value, json};
use wiremock::matchers::{header, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "cli-key-5d2e8a41-secret";
const BEARER: &str = "Bearer cli-key-5d2e8a41-secret";

fn bars(n: usize, seed: usize) -> Vec<Value> {
    // Daily bars ending yesterday, so they fall inside the provider's default range (the last ~800 days).
    let today = chrono::Utc::now().timestamp() / 86_400;
    let start_ms = (today - n as i64) * 86_400_000;
    (0..n)
        .map(|i| {
            let c = 20.0 + seed as f64 + (i as f64 * 0.2).sin() + i as f64 * 0.03;
            json!({"t": start_ms + i as i64 * 86_400_000, "o": c, "h": c + 0.5, "l": c - 0.5, "c": c, "v": 5000})
        })
        .collect()
}

/// A mock API: four listed tickers, ZZZZ unknown, BBB failing once with 503. The runtime is returned
/// so the server keeps running while the test blocks on the command.
fn mock_api() -> (tokio::runtime::Runtime, MockServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path("/v3/reference/tickers"))
            .and(header("authorization", BEARER))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"status": "OK", "results": [
                    {"ticker": "AAA", "name": "Alpha"}, {"ticker": "BBB", "name": "Beta"},
                    {"ticker": "CCC", "name": "Gamma"}, {"ticker": "ZZZZ", "name": "Gone"}
                ]})),
            )
            .mount(&server)
            .await;
        for (i, sym) in ["AAA", "BBB", "CCC"].iter().enumerate() {
            Mock::given(path_regex(format!("^/v2/aggs/ticker/{sym}/range/1/day/")))
                .and(header("authorization", BEARER))
                .respond_with(
                    ResponseTemplate::new(200)
                        .set_body_json(json!({"status": "OK", "results": bars(120, i)})),
                )
                .mount(&server)
                .await;
        }
        Mock::given(path_regex("^/v2/aggs/ticker/BBB/"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(path_regex("^/v2/aggs/ticker/ZZZZ/"))
            .respond_with(ResponseTemplate::new(404).set_body_json(json!({"status": "NOT_FOUND"})))
            .mount(&server)
            .await;
        server
    });
    (rt, server)
}

fn technic(key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_technic"));
    let data = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("technic-cli-polygon-{}", std::process::id()));
    cmd.args(args)
        .env("XDG_DATA_HOME", data)
        .env_remove("TECHNIC_STORE")
        .env_remove("POLYGON_BASE_URL")
        .env_remove("RUST_LOG");
    match key {
        Some(k) => cmd.env("POLYGON_API_KEY", k),
        None => cmd.env_remove("POLYGON_API_KEY"),
    };
    cmd.output().expect("technic runs")
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn polygon_scan_against_a_local_mock() {
    let (_rt, server) = mock_api();
    let uri = server.uri();
    let o = technic(
        Some(KEY),
        &[
            "scan",
            "--provider",
            "polygon",
            "--base-url",
            &uri,
            "--json",
            "--top",
            "0",
        ],
    );
    let printed = all_output(&o);
    assert!(o.status.success(), "{printed}");
    assert!(!printed.contains(KEY), "key printed:\n{printed}");
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["provider"], "polygon");
    assert_eq!(v["demo"], false);
    let mut symbols: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["symbol"].as_str().unwrap())
        .collect();
    symbols.sort_unstable();
    assert_eq!(symbols, ["AAA", "BBB", "CCC"]);
    let names: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Alpha"), "{names:?}");
    assert_eq!(v["skipped"][0]["symbol"], "ZZZZ");
    assert!(
        v["skipped"][0]["reason"].as_str().unwrap().contains("Not found"),
        "{}",
        v["skipped"]
    );
    assert_eq!(v["retries"], 1);
    assert_eq!(v["stale"], 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("skipped ZZZZ"), "{err}");
    assert!(err.contains("1 retries"), "summary lists retries: {err}");
}

#[test]
fn trace_logs_never_show_the_key() {
    let (_rt, server) = mock_api();
    let uri = server.uri();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_technic"));
    let o = cmd
        .args([
            "-vv",
            "scan",
            "--no-store",
            "--provider",
            "polygon",
            "--base-url",
            &uri,
        ])
        .env("POLYGON_API_KEY", KEY)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let printed = all_output(&o);
    assert!(o.status.success(), "{printed}");
    assert!(
        printed.contains("GET http://127.0.0.1") && !printed.contains("apiKey"),
        "trace logs show the URLs, which hold no key:\n{printed}"
    );
    assert!(!printed.contains(KEY), "key in the output");
}

#[test]
fn a_bad_or_missing_key_says_so_in_one_line() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path_regex("^/v"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_json(json!({"status": "ERROR", "error": "Unknown API Key"})),
            )
            .mount(&server)
            .await;
        server
    });
    let uri = server.uri();
    let o = technic(
        Some(KEY),
        &["scan", "--provider", "polygon", "--base-url", &uri, "--quiet"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    let errors: Vec<_> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors, ["error: Invalid API key: set POLYGON_API_KEY"], "{err}");
    assert!(!all_output(&o).contains(KEY));
    let sent = rt.block_on(server.received_requests()).unwrap().len();
    assert_eq!(sent, 1, "a rejected key is not retried");

    let o = technic(None, &["scan", "--provider", "polygon", "--base-url", &uri]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("POLYGON_API_KEY is not set"), "{err}");
}

/// Requests the mock received for daily bars, as (symbol, from, to) from their paths.
fn aggs_requests(rt: &tokio::runtime::Runtime, server: &MockServer) -> Vec<(String, String, String)> {
    let requests = rt.block_on(server.received_requests()).unwrap_or_default();
    requests
        .iter()
        .filter_map(|r| {
            let parts: Vec<&str> = r.url.path().split('/').collect();
            // /v2/aggs/ticker/{SYM}/range/1/day/{from}/{to}
            (parts.len() == 10 && parts[2] == "aggs")
                .then(|| (parts[4].to_owned(), parts[8].to_owned(), parts[9].to_owned()))
        })
        .collect()
}

#[test]
fn a_second_scan_with_a_store_asks_the_api_for_no_bar_it_has() {
    let (rt, server) = mock_api();
    let uri = server.uri();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("delta.db");
    let args = [
        "scan",
        "--store",
        db.to_str().unwrap(),
        "--provider",
        "polygon",
        "--base-url",
        &uri,
        "--json",
    ];
    let o = technic(Some(KEY), &args);
    assert!(o.status.success(), "{}", all_output(&o));
    let first = aggs_requests(&rt, &server);
    assert!(first.iter().any(|(s, _, _)| s == "AAA"), "{first:?}");

    // The mock's bars end yesterday, so the store is current: the second scan asks for no bars at all.
    let o = technic(Some(KEY), &args);
    assert!(o.status.success(), "{}", all_output(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["results"].as_array().unwrap().len(),
        3,
        "answered from the store"
    );
    let all = aggs_requests(&rt, &server);
    let second: Vec<_> = all[first.len()..]
        .iter()
        .filter(|(s, _, _)| s != "ZZZZ")
        .collect();
    assert!(second.is_empty(), "bars asked for again: {second:?}");
}

#[test]
fn a_key_with_reserved_characters_never_reaches_the_output() {
    // A server that answers 500 with everything it was sent, the key in its spellings included.
    const RESERVED: &str = "s3cr+t/K=y&x";
    let spellings = ["s3cr+t/K=y&x", "s3cr%2Bt%2FK%3Dy%26x", "s3cr%2bt%2fK%3dy%26x"];
    struct Echo(Vec<&'static str>);
    impl wiremock::Respond for Echo {
        fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
            let auth = request
                .headers
                .get("authorization")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .unwrap_or_default();
            ResponseTemplate::new(500).set_body_string(format!("{} {} {auth}", self.0.join(" "), request.url))
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        Mock::given(path_regex("^/"))
            .respond_with(Echo(spellings.to_vec()))
            .mount(&server)
            .await;
        server
    });
    let uri = server.uri();
    for format in ["--json", "--csv"] {
        let mut cmd_args = vec![
            "scan",
            "--no-store",
            format,
            "--symbols",
            "AAA,BBB",
            "--provider",
            "polygon",
            "--base-url",
            &uri,
        ];
        cmd_args.push("--quiet");
        let o = Command::new(env!("CARGO_BIN_EXE_technic"))
            .args(&cmd_args)
            .env("POLYGON_API_KEY", RESERVED)
            .env("RUST_LOG", "trace")
            .env_remove("TECHNIC_STORE")
            .output()
            .unwrap();
        let printed = all_output(&o);
        assert!(printed.contains("500"), "the failure is reported: {printed}");
        for spelled in spellings {
            assert!(!printed.contains(spelled), "{spelled} in the output:\n{printed}");
        }
        assert!(
            !printed.to_lowercase().contains("s3cr"),
            "a spelling in the output:\n{printed}"
        );
    }
}
