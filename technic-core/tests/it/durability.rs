//! Durability: a writer killed with SIGKILL in the middle of writing scans leaves a store that opens,
//! passes `PRAGMA integrity_check` and holds every scan whose save had returned.
//!
//! The test binary runs itself as the writer: the parent starts `writer_child` (this same test, with
//! `TECHNIC_KILL_TEST_STORE` set) which saves scans and their bars in a loop and prints `saved ID` after
//! each save returns; the parent kills it mid-loop with `kill -KILL` and checks the file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use technic_core::DataProvider;
use technic_core::store::BarsUpdate;
use technic_core::{
    CancellationToken, Deps, MemoryCache, NoopSink, ScanRequest, SqliteStore, Store, SyntheticConfig,
    SyntheticProvider, scan,
};

const STORE_ENV: &str = "TECHNIC_KILL_TEST_STORE";

/// The writer. Does nothing unless started by [`killed_writer_leaves_a_sound_store`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_child() {
    let Ok(path) = std::env::var(STORE_ENV) else {
        return;
    };
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let provider = Arc::new(SyntheticProvider::new(SyntheticConfig {
        n_symbols: 300,
        n_bars: 300,
        ..SyntheticConfig::default()
    }));
    let deps = Deps::new(provider.clone(), Arc::new(MemoryCache::default()));
    let report = scan(
        &ScanRequest {
            top: None,
            ..ScanRequest::default()
        },
        &deps,
        &NoopSink,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    let universe = provider.universe().await.unwrap();
    for i in 0.. {
        let mut r = report.clone();
        r.id = format!("kill-{i}");
        store.save_scan(&r).await.unwrap();
        // Bars too, so that the kill can land in a large bar transaction as well.
        let updates: Vec<BarsUpdate> = universe
            .iter()
            .take(100)
            .map(|e| {
                let mut bars = provider.full_history(&e.symbol).unwrap();
                bars.close.iter_mut().for_each(|c| *c += i as f64);
                BarsUpdate {
                    replace: false,
                    symbol: e.symbol.clone(),
                    fetched_from: bars.date[0],
                    fetched_to: *bars.date.last().unwrap(),
                    bars,
                }
            })
            .collect();
        store.save_bars_batch("test", updates).await.unwrap();
        println!("saved {}", r.id);
    }
}

#[tokio::test]
async fn killed_writer_leaves_a_sound_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "durability::writer_child",
            "--exact",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(STORE_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut saved = Vec::new();
    let mut line = String::new();
    while saved.len() < 4 {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the writer stopped early");
        if let Some(id) = line.trim().strip_prefix("saved ") {
            saved.push(id.to_owned());
        }
    }
    // Kill it while it is writing the next scan or its bars.
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(!exit.success(), "the writer was killed, not finished");
    // Lines printed before the kill are still in the pipe.
    for rest in out.lines() {
        if let Some(id) = rest.unwrap().trim().strip_prefix("saved ") {
            saved.push(id.to_owned());
        }
    }

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    for id in &saved {
        let r = store.scan(id).await.unwrap();
        assert!(r.is_some_and(|r| r.results.len() == 300), "scan {id} lost");
    }
    // A partly written scan is either whole or absent, never half.
    let next = format!("kill-{}", saved.len());
    if let Some(r) = store.scan(&next).await.unwrap() {
        assert_eq!(r.results.len(), 300);
    }
}
