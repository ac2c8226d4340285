//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver + fantoccini).
//!
//! Starts the server in-process on `127.0.0.1:0` over a synthetic universe that is slowed down so the
//! progress can be watched, loads the dashboard, starts a scan, watches the progress bar advance and the
//! results table fill, generates some cached traffic, opens the cache page and reads a non-zero hit rate
//! that agrees with `/api/v1/metrics/current`. Screenshots go to `target/tmp/screenshots/` (copy them to `docs/img/` to refresh the README's).
//!
//! Without `chromedriver` on `PATH` the test prints why and passes, unless `CI` is set: then it must run.

use std::future::Future;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use technic_core::{
    Bars, DataProvider, DateRange, Deps, MemoryCache, Symbol, SyntheticConfig, SyntheticProvider, Universe,
};
use technic_http::{AppState, ServerConfig};

/// Symbols in the synthetic universe.
const N_SYMBOLS: usize = 3000;
/// Delay of each `daily_bars` call. Scans fetch 32 symbols at a time, so 3000 symbols take about
/// 3000 / 32 × 40 ms ≈ 4 s: long enough to watch the progress bar move, short enough for a test.
const BAR_DELAY: Duration = Duration::from_millis(40);
/// Longest any single wait may take.
const WAIT: Duration = Duration::from_secs(60);

/// The synthetic provider, slowed down per `daily_bars` call so that progress is observable.
#[derive(Debug)]
struct SlowProvider {
    inner: SyntheticProvider,
    delay: Duration,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

// `DataProvider` is an `async_trait`; these are its methods written out, so this crate needs no
// async-trait dependency for one test double.
impl DataProvider for SlowProvider {
    fn name(&self) -> &str {
        "synthetic (slowed)"
    }

    fn is_demo(&self) -> bool {
        self.inner.is_demo()
    }

    fn default_range(&self, expected: chrono::NaiveDate) -> DateRange {
        self.inner.default_range(expected)
    }

    fn universe<'life0, 'async_trait>(&'life0 self) -> BoxFuture<'async_trait, technic_core::Result<Universe>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        self.inner.universe()
    }

    fn daily_bars<'life0, 'life1, 'async_trait>(
        &'life0 self,
        symbol: &'life1 Symbol,
        range: DateRange,
    ) -> BoxFuture<'async_trait, technic_core::Result<Bars>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.inner.daily_bars(symbol, range).await
        })
    }
}

/// chromedriver, its Chromium profile directory and the server's shutdown; all cleaned up on drop,
/// whether the test passed or not.
#[derive(Debug)]
struct Harness {
    driver: Child,
    profile: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn chromium_binary() -> String {
    std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".to_owned())
}

fn capabilities(profile: &Path) -> fantoccini::wd::Capabilities {
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium_binary(),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
                "--window-size=1280,900",
            ],
        },
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// Lets the test clear the cache, so symbol lookups measure uncached responses too.
const ADMIN_TOKEN: &str = "browser-test-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let Some(chromedriver) = find_on_path("chromedriver") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `chromedriver` is not on PATH: install `chromium chromium-driver`");
        }
        println!(
            "SKIPPED browser test: `chromedriver` is not on PATH (install `chromium chromium-driver`; \
             with CI set this test fails instead of skipping)"
        );
        return;
    };

    // The server, in-process.
    let provider = SlowProvider {
        inner: SyntheticProvider::new(SyntheticConfig {
            n_symbols: N_SYMBOLS,
            ..Default::default()
        }),
        delay: BAR_DELAY,
    };
    let deps = Deps::new(Arc::new(provider), Arc::new(MemoryCache::default()));
    let state = AppState::new(
        deps,
        ServerConfig {
            sample_interval: Duration::from_millis(500),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the server");
    let base = format!("http://{}", listener.local_addr().expect("server addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(technic_http::serve(listener, state, async move {
        let _ = rx.await;
    }));

    // chromedriver, on a free port, with a fresh profile directory for Chromium.
    let port = free_port();
    let profile = std::env::temp_dir().join(format!(
        "technic-browser-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&profile).expect("create the Chromium profile directory");
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
    let harness = Harness {
        driver,
        profile: profile.clone(),
        shutdown: Some(tx),
    };

    let client = connect(port, &profile).await.expect("connect to chromedriver");
    let outcome = tokio::time::timeout(Duration::from_secs(240), flow(&client, &base))
        .await
        .unwrap_or_else(|_| Err(anyhow!("the browser flow took longer than 240 s")));
    if outcome.is_err() {
        // Keep what the page showed when it went wrong.
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::create_dir_all(screenshot_dir());
            let path = screenshot_dir().join("technic-dashboard-failure.png");
            if std::fs::write(&path, png).is_ok() {
                eprintln!("failure screenshot: {}", path.display());
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(15), client.close()).await;
    drop(harness);
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    if let Err(e) = outcome {
        panic!("browser test failed: {e:#}");
    }
}

/// Connects once chromedriver answers (it takes a moment to start).
async fn connect(port: u16, profile: &Path) -> anyhow::Result<Client> {
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        ensure!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(capabilities(profile));
    let mut last = None;
    while Instant::now() < deadline {
        match builder.connect(&url).await {
            Ok(c) => return Ok(c),
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    bail!("could not open a WebDriver session: {}", last.unwrap_or_default())
}

/// Runs `script` in the page and returns its value.
async fn js(client: &Client, script: &str) -> anyhow::Result<Value> {
    client
        .execute(script, Vec::new())
        .await
        .with_context(|| format!("run script: {script}"))
}

/// Runs an asynchronous `script` (its last argument is the callback) and returns what it passed.
async fn js_async(client: &Client, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
    client
        .execute_async(script, args)
        .await
        .with_context(|| format!("run async script: {script}"))
}

/// Text of the element matching `selector`, or `None` when there is none.
async fn text_of(client: &Client, selector: &str) -> anyhow::Result<Option<String>> {
    let v = js(
        client,
        &format!(
            "const e = document.querySelector({}); return e ? e.textContent : null;",
            json!(selector)
        ),
    )
    .await?;
    Ok(v.as_str().map(str::to_owned))
}

/// The first number in `text` ("42.5%" → 42.5).
fn number_in(text: &str) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Polls `selector`'s text until `accept` returns true (≤ `WAIT`).
async fn wait_text(
    client: &Client,
    selector: &str,
    what: &str,
    accept: impl Fn(&str) -> bool,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    let mut last = None;
    loop {
        if let Some(t) = text_of(client, selector).await? {
            if accept(&t) {
                return Ok(t);
            }
            last = Some(t);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {WAIT:?} waiting for {what} (`{selector}` last read {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows of the results table.
async fn result_rows(client: &Client) -> anyhow::Result<u64> {
    let v = js(
        client,
        "return document.querySelectorAll('#results-table tbody tr').length;",
    )
    .await?;
    Ok(v.as_u64().unwrap_or(0))
}

async fn wait_rows(client: &Client) -> anyhow::Result<u64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let n = result_rows(client).await?;
        if n > 0 {
            return Ok(n);
        }
        if Instant::now() >= deadline {
            let err = text_of(client, "#scan-error").await?.unwrap_or_default();
            bail!("timed out after {WAIT:?} waiting for result rows (error shown: {err:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Under `target/` (build output), so a test run changes no tracked file; copy the pictures to
/// `docs/img/` to refresh the README's.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

async fn save_screenshot(client: &Client, name: &str) -> anyhow::Result<()> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let png = client.screenshot().await.context("take a screenshot")?;
    let path = dir.join(name);
    std::fs::write(&path, png).with_context(|| format!("write {}", path.display()))?;
    println!("screenshot: {}", path.display());
    Ok(())
}

/// `GET path` from the page, as JSON.
async fn fetch_json(client: &Client, path: &str) -> anyhow::Result<Value> {
    let v = js_async(
        client,
        "const done = arguments[arguments.length - 1];
         fetch(arguments[0]).then(r => r.json()).then(done, e => done({ __error: String(e) }));",
        vec![json!(path)],
    )
    .await?;
    if let Some(e) = v.get("__error") {
        bail!("fetch {path}: {e}");
    }
    Ok(v)
}

async fn flow(client: &Client, base: &str) -> anyhow::Result<()> {
    client
        .goto(&format!("{base}/"))
        .await
        .context("open the dashboard")?;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#start-button"))
        .await
        .context("find #start-button")?;

    // A bad request is shown as a readable error from the API's JSON body.
    let symbols_input = client.find(Locator::Css("#f-symbols")).await?;
    symbols_input
        .send_keys("B@D!")
        .await
        .context("type a bad symbol")?;
    client
        .find(Locator::Css("#start-button"))
        .await?
        .click()
        .await
        .context("click start")?;
    let shown = wait_text(client, "#scan-error", "the API error message", |t| {
        t.contains("B@D!") && t.contains("422")
    })
    .await?;
    println!("error shown: {shown}");
    symbols_input.clear().await.context("clear the symbols field")?;

    // Start a scan and watch the progress advance.
    client
        .find(Locator::Css("#start-button"))
        .await?
        .click()
        .await
        .context("click start")?;
    let deadline = Instant::now() + WAIT;
    let mut seen: Vec<f64> = Vec::new();
    let mut stages: Vec<String> = Vec::new();
    loop {
        let percent = text_of(client, "#progress-percent")
            .await?
            .as_deref()
            .and_then(number_in);
        if let Some(p) = percent.filter(|&p| p > 0.0)
            && seen.last().is_none_or(|&last| p > last)
        {
            seen.push(p);
        }
        let stage = text_of(client, "#progress-stage").await?.unwrap_or_default();
        if !stage.is_empty() && stages.last() != Some(&stage) {
            stages.push(stage);
        }
        let increases = seen.windows(2).filter(|w| w[1] > w[0]).count();
        if increases >= 2 && seen.last().is_some_and(|&p| p < 100.0) {
            break;
        }
        if result_rows(client).await? > 0 || Instant::now() >= deadline {
            bail!(
                "the progress did not advance twice before the scan ended: saw {seen:?}, stages {stages:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("progress seen: {seen:?}; stages: {stages:?}");
    let count = text_of(client, "#progress-count").await?.unwrap_or_default();
    ensure!(
        count.contains('/'),
        "#progress-count should read processed / total, read {count:?}"
    );

    let rows = wait_rows(client).await?;
    let done = wait_text(client, "#progress-percent", "100 %", |t| {
        number_in(t) == Some(100.0)
    })
    .await?;
    let stage = text_of(client, "#progress-stage").await?.unwrap_or_default();
    ensure!(
        stage.contains("Complete"),
        "the final stage should read Complete!, read {stage:?} ({done})"
    );
    println!("results table: {rows} rows");
    let page = js(client, "return document.body.innerText;").await?;
    let page = page.as_str().unwrap_or_default();
    ensure!(
        !page.contains("NaN") && !page.contains("undefined"),
        "the scan page shows NaN or undefined"
    );
    save_screenshot(client, "dashboard-scan.png").await?;

    // Traffic: look up the top symbols a few times each (their bars are now cached).
    let symbols = js(
        client,
        "return Array.from(document.querySelectorAll('#results-table tbody tr'))
            .slice(0, 8).map(r => r.getAttribute('data-symbol'));",
    )
    .await?;
    let symbols: Vec<String> = symbols
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    ensure!(
        !symbols.is_empty(),
        "result rows should carry data-symbol attributes"
    );
    // Empty the cache first (admin token), so each symbol's first lookup loads from the provider
    // (uncached) and the next four are served from memory (cached).
    let cleared = js_async(
        client,
        "const [token, done] = [arguments[0], arguments[arguments.length - 1]];
         fetch('/api/v1/cache', { method: 'DELETE', headers: { 'Authorization': 'Bearer ' + token } })
           .then(r => r.status).then(done, e => done(String(e)));",
        vec![json!(ADMIN_TOKEN)],
    )
    .await?;
    ensure!(
        cleared.as_u64() == Some(200),
        "clearing the cache answered {cleared}"
    );
    let statuses = js_async(
        client,
        "const [symbols, done] = [arguments[0], arguments[arguments.length - 1]];
         const urls = [];
         const get = u => fetch(u).then(r => r.status);
         const once = () => Promise.all(symbols.map(s => get('/api/v1/symbols/' + encodeURIComponent(s))));
         const rounds = [];
         once().then(first => { rounds.push(...first); return once(); })
           .then(r => { rounds.push(...r); return Promise.all([once(), once(), once()]); })
           .then(rs => { rs.forEach(r => rounds.push(...r)); done(rounds); }, e => done(String(e)));",
        vec![json!(symbols)],
    )
    .await?;
    let ok = statuses
        .as_array()
        .is_some_and(|a| a.iter().all(|s| s.as_u64() == Some(200)));
    ensure!(ok, "symbol lookups should all answer 200, got {statuses}");

    // Two more scans: the first reloads what the clear dropped, the second is served from the cache,
    // so the hit rate climbs well above zero.
    for round in 0..2 {
        let created = js_async(
            client,
            "const done = arguments[arguments.length - 1];
             fetch('/api/v1/scans', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })
               .then(r => r.json()).then(done, e => done({ __error: String(e) }));",
            Vec::new(),
        )
        .await?;
        let id = created["id"]
            .as_str()
            .with_context(|| format!("POST /api/v1/scans answered {created}"))?
            .to_owned();
        let deadline = Instant::now() + WAIT;
        loop {
            let status = fetch_json(client, &format!("/api/v1/scans/{id}")).await?;
            match status["state"].as_str() {
                Some("complete") => break,
                Some("running") => {}
                other => bail!("scan {round} ended as {other:?}: {status}"),
            }
            ensure!(
                Instant::now() < deadline,
                "scan {round} did not complete within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The symbol page draws a chart for one of them.
    client.goto(&format!("{base}/#symbol/{}", symbols[0])).await?;
    wait_text(client, "#symbol-title", "the symbol page title", |t| {
        t.contains(symbols[0].as_str())
    })
    .await?;
    let deadline = Instant::now() + WAIT;
    while js(
        client,
        "return document.querySelectorAll('#price-chart path').length;",
    )
    .await?
    .as_u64()
    .unwrap_or(0)
        < 3
    {
        ensure!(Instant::now() < deadline, "the price chart was not drawn");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    save_screenshot(client, "dashboard-symbol.png").await?;

    // The cache page shows a non-zero hit rate that agrees with the API.
    client.goto(&format!("{base}/#cache")).await?;
    let shown = wait_text(client, "#hit-rate-value", "a non-zero hit rate", |t| {
        t.ends_with('%') && number_in(t).is_some_and(|p| p > 0.0)
    })
    .await?;
    // The warmer runs inside the server and its panel says so, with the looked-up symbols as popular.
    wait_text(client, "#warmer-state", "the warmer running", |t| {
        t.starts_with("running") || t.starts_with("paused")
    })
    .await?;
    wait_text(client, "#warmer-popular", "popular symbols", |t| {
        t.contains(symbols[0].as_str())
    })
    .await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let api = fetch_json(client, "/api/v1/metrics/current").await?;
        let rate = api["cache"]["hit_rate"]
            .as_f64()
            .context("cache.hit_rate in /api/v1/metrics/current")?;
        let hits = api["cache"]["hits"].as_u64().context("cache.hits")?;
        let ui_rate = text_of(client, "#hit-rate-value")
            .await?
            .as_deref()
            .and_then(number_in);
        let ui_hits = text_of(client, "#cache-hits")
            .await?
            .map(|t| t.replace(',', ""))
            .as_deref()
            .and_then(number_in);
        let agree = ui_rate.is_some_and(|p| (p - rate * 100.0).abs() < 0.5) && ui_hits == Some(hits as f64);
        if agree {
            println!("cache page: hit rate {shown} (API {rate:.4}), hits {hits}");
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "the cache page disagrees with the API: page {ui_rate:?} % / {ui_hits:?} hits, API {rate} / {hits}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let the history chart gather a few samples before the screenshot.
    let deadline = Instant::now() + WAIT;
    while js(
        client,
        "return document.querySelectorAll('#hit-rate-chart path.line').length;",
    )
    .await?
    .as_u64()
    .unwrap_or(0)
        == 0
    {
        ensure!(
            Instant::now() < deadline,
            "the hit-rate history chart was not drawn"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let page = js(client, "return document.body.innerText;").await?;
    let page = page.as_str().unwrap_or_default();
    ensure!(
        !page.contains("NaN") && !page.contains("undefined"),
        "the cache page shows NaN or undefined"
    );
    save_screenshot(client, "dashboard-cache.png").await?;
    Ok(())
}
