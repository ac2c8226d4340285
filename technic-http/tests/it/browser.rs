//! The dashboard in a real browser: headless Chromium driven over WebDriver (chromedriver + fantoccini).
//!
//! Starts the server in-process on `127.0.0.1:0` over a synthetic universe that is slowed down so the
//! progress can be watched, loads the dashboard, starts a scan, watches the progress bar advance and the
//! results table fill, generates some cached traffic, opens the cache page and reads a non-zero hit rate
//! that agrees with `/api/v1/metrics/current`; then every screener flow (expression with caret errors and
//! completion, preset, sort, page, CSV export, saved screen reproduced from its URL, watchlist), cancel
//! within a second, the candlestick chart's crosshair against the API, the backtest view, the phone layout
//! without sideways scrolling, axe-core accessibility checks, and the router nested under a prefix.
//! Screenshots go to `target/tmp/screenshots/`; `TECHNIC_REFRESH_DOCS_IMG=1` copies them to `docs/img/`.
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

/// The token of the server in `dashboard_asks_for_the_admin_token_once`.
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
            // One browser drives every flow of the dashboard within seconds: no per-client write budget.
            writes_per_minute_per_client: 0,
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
    // Chromium's own scratch folders (`org.chromium.Chromium.scoped_dir.*`) go inside the profile
    // directory too, so the test leaves nothing in the system temp directory.
    let scratch = profile.join("tmp");
    std::fs::create_dir_all(&scratch).expect("create Chromium's temp directory");
    let driver = Command::new(&chromedriver)
        .env("TMPDIR", &scratch)
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

    // The same router nested under `/technic` in another axum application, as a library user mounts it;
    // its cache is a fleet server's (memory in front of Redis, in a namespace of its own) when Redis
    // answers on 127.0.0.1:6379, so the cache page's tier list is checked too.
    let tiered = tiered_cache().await;
    let nested_cache: Arc<dyn technic_core::Cache> = match &tiered {
        Some((cache, _, _)) => cache.clone(),
        None => Arc::new(MemoryCache::default()),
    };
    let nested_state = AppState::new(
        Deps::new(
            Arc::new(SyntheticProvider::new(SyntheticConfig {
                n_symbols: 60,
                ..Default::default()
            })),
            nested_cache,
        ),
        ServerConfig::default(),
    );
    let app = axum::Router::new().nest("/technic", technic_http::router(nested_state));
    let nested_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the nested server");
    let nested_base = format!("http://{}", nested_listener.local_addr().expect("nested addr"));
    let nested = tokio::spawn(async move { axum::serve(nested_listener, app).await });

    let client = connect(port, &profile).await.expect("connect to chromedriver");
    let outcome = tokio::time::timeout(Duration::from_secs(300), async {
        flow(&client, &base).await?;
        nested_flow(&client, &nested_base, tiered.is_some()).await
    })
    .await
    .unwrap_or_else(|_| Err(anyhow!("the browser flow took longer than 300 s")));
    nested.abort();
    #[cfg(feature = "redis")]
    if let Some((_, link, ns)) = &tiered {
        delete_namespace(link, ns).await;
    }
    if outcome.is_ok() && std::env::var_os("TECHNIC_REFRESH_DOCS_IMG").is_some() {
        refresh_docs_img().expect("copy the screenshots to docs/img");
    }
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

/// `TECHNIC_REFRESH_DOCS_IMG=1 cargo test -p technic-http --test it browser` copies this run's screenshots
/// to `docs/img/` (the README's pictures); a plain test run never writes there.
fn refresh_docs_img() -> anyhow::Result<()> {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img");
    for name in [
        "dashboard-scan.png",
        "dashboard-symbol.png",
        "dashboard-backtest.png",
        "dashboard-phone.png",
        "dashboard-phone-symbol.png",
        "dashboard-cache.png",
    ] {
        std::fs::copy(screenshot_dir().join(name), docs.join(name))
            .with_context(|| format!("copy {name}"))?;
        println!("refreshed docs/img/{name}");
    }
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

/// Clicks the element matching `selector`, scrolled to the middle of the window first (the sticky header
/// would take a click at the top).
async fn click(client: &Client, selector: &str) -> anyhow::Result<()> {
    js(
        client,
        &format!(
            "document.querySelector({}).scrollIntoView({{ block: 'center' }}); return true;",
            json!(selector)
        ),
    )
    .await?;
    client
        .find(Locator::Css(selector))
        .await
        .with_context(|| format!("find {selector}"))?
        .click()
        .await
        .with_context(|| format!("click {selector}"))?;
    Ok(())
}

/// Sets an input's value the way typing would (and fires `input`).
async fn type_into(client: &Client, selector: &str, text: &str) -> anyhow::Result<()> {
    js(
        client,
        &format!(
            "const e = document.querySelector({}); e.value = {}; e.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             e.dispatchEvent(new Event('change', {{ bubbles: true }})); return true;",
            json!(selector),
            json!(text)
        ),
    )
    .await?;
    Ok(())
}

/// Waits until a scan ends on the page and returns its final stage label.
async fn wait_scan_end(client: &Client) -> anyhow::Result<String> {
    wait_text(client, "#progress-state", "the scan to end", |t| {
        matches!(t, "complete" | "cancelled" | "failed")
    })
    .await?;
    Ok(text_of(client, "#progress-stage").await?.unwrap_or_default())
}

/// The symbols in the results table, in order.
async fn table_symbols(client: &Client) -> anyhow::Result<Vec<String>> {
    let v = js(
        client,
        "return Array.from(document.querySelectorAll('#results-table tbody tr[data-symbol]')).map(r => r.getAttribute('data-symbol'));",
    )
    .await?;
    Ok(v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect())
}

/// Waits for the results table to show rows (or the "no symbol matched" line) after a scan.
async fn wait_results(client: &Client) -> anyhow::Result<()> {
    wait_text(client, "#page-info", "the results pager", |t| !t.is_empty()).await?;
    Ok(())
}

/// The id of the scan the page shows (from the CSV link, which names it).
async fn shown_scan_id(client: &Client) -> anyhow::Result<String> {
    let href = js(
        client,
        "return document.getElementById('export-csv').getAttribute('href');",
    )
    .await?;
    let href = href.as_str().unwrap_or_default();
    let id = href
        .strip_prefix("api/v1/scans/")
        .and_then(|r| r.split('/').next())
        .with_context(|| format!("the CSV link names the scan: {href}"))?;
    Ok(id.to_owned())
}

/// The ids of the scans the server lists, newest first.
async fn listed_scans(client: &Client) -> anyhow::Result<Vec<String>> {
    let v = fetch_json(client, "api/v1/scans?limit=200").await?;
    let list = v
        .as_array()
        .with_context(|| format!("GET /api/v1/scans is a list: {v}"))?;
    Ok(list
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect())
}

/// How a link is opened: in a fresh page load, or from the dashboard already open (a hash change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Load,
    HashChange,
}

/// Opens `url` (a dashboard link holding a screen), waits until the form holds `where`, then gives the
/// page a second more to do anything it would do on its own. Checks that it started no scan: the
/// server lists the same scans as before, no progress is shown, and the page says how to start it.
async fn open_link_expecting_no_scan(
    client: &Client,
    url: &str,
    r#where: &str,
    how: Open,
) -> anyhow::Result<()> {
    let before = listed_scans(client).await?;
    if how == Open::Load {
        client.goto("about:blank").await?;
    }
    client.goto(url).await.with_context(|| format!("open {url}"))?;
    let deadline = Instant::now() + WAIT;
    loop {
        let v = js(
            client,
            "const e = document.getElementById('f-where'); return e ? e.value : null;",
        )
        .await?;
        if v == json!(r#where) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the link did not fill the expression: read {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = listed_scans(client).await?;
    ensure!(
        after == before,
        "opening {url} started a scan: the server listed {before:?}, now {after:?}"
    );
    if how == Open::Load {
        // A fresh page has shown no scan yet; after a hash change the last scan the user ran stays.
        let progress_hidden = js(
            client,
            "return document.getElementById('progress-card').classList.contains('hidden');",
        )
        .await?;
        ensure!(
            progress_hidden == json!(true),
            "opening {url} shows a scan's progress"
        );
    }
    let note = js(
        client,
        "const n = document.getElementById('link-note'); return n.classList.contains('hidden') ? null : n.textContent;",
    )
    .await?;
    ensure!(
        note.as_str().is_some_and(|t| t.contains("Run screen")),
        "the page says that the link's screen starts with Run screen: {note}"
    );
    Ok(())
}

/// Clicks Run screen and checks that exactly one scan started (the one the page then shows).
async fn run_and_expect_one_scan(client: &Client) -> anyhow::Result<()> {
    let before = listed_scans(client).await?;
    click(client, "#start-button").await?;
    wait_scan_end(client).await?;
    wait_results(client).await?;
    let after = listed_scans(client).await?;
    let new: Vec<&String> = after.iter().filter(|id| !before.contains(id)).collect();
    let shown = shown_scan_id(client).await?;
    ensure!(
        new == [&shown],
        "Run screen starts one scan, the one shown ({shown}); new on the server: {new:?}"
    );
    let note_hidden = js(
        client,
        "return document.getElementById('link-note').classList.contains('hidden');",
    )
    .await?;
    ensure!(
        note_hidden == json!(true),
        "the link note goes once the screen runs"
    );
    Ok(())
}

/// Runs axe-core (vendored for this test) on the page; fails on serious or critical violations.
async fn accessibility(client: &Client, page: &str) -> anyhow::Result<()> {
    const AXE: &str = include_str!("../vendor/axe.min.js");
    js(client, &format!("{AXE}\n;return true;"))
        .await
        .context("load axe-core")?;
    let result = js_async(
        client,
        "const done = arguments[arguments.length - 1];
         axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations.map(v => ({
             id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))),
           e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
        Vec::new(),
    )
    .await?;
    let bad: Vec<&Value> = result
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    ensure!(
        bad.is_empty(),
        "accessibility ({page}): {}",
        serde_json::to_string_pretty(&bad)?
    );
    let minor = result.as_array().map_or(0, Vec::len);
    println!("axe on {page}: no serious or critical violations ({minor} minor or moderate)");
    Ok(())
}

/// No horizontal scrolling: the page is no wider than the window.
async fn no_horizontal_scroll(client: &Client, page: &str) -> anyhow::Result<()> {
    let v = js(
        client,
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
    )
    .await?;
    let (scroll, width) = (v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0));
    ensure!(
        scroll <= width,
        "{page} scrolls sideways at phone width: {scroll} px wide in {width} px"
    );
    Ok(())
}

async fn flow(client: &Client, base: &str) -> anyhow::Result<()> {
    // Links never act: a screen link (even one a hostile page points at) fills the form and starts
    // nothing, and a backtest link starts no backtest; only a click runs them.
    client
        .goto(&format!("{base}/"))
        .await
        .context("open the dashboard")?;
    ensure!(
        listed_scans(client).await?.is_empty(),
        "a fresh server lists no scan"
    );
    open_link_expecting_no_scan(
        client,
        &format!("{base}/#scan?where=close%20%3E%201%20and%20rsi_14%20%3C%2070&top=7&sort=-rsi_14"),
        "close > 1 and rsi_14 < 70",
        Open::Load,
    )
    .await?;
    let top = js(client, "return document.getElementById('f-top').value;").await?;
    ensure!(top == json!("7"), "the link fills Top N too: {top}");
    client
        .goto(&format!(
            "{base}/#backtest?where=close%20%3E%201&preset=strong_long"
        ))
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let backtests = fetch_json(client, "api/v1/backtests").await?;
    ensure!(
        backtests.as_array().is_some_and(Vec::is_empty),
        "a backtest link started a backtest: {backtests}"
    );
    ensure!(
        listed_scans(client).await?.is_empty(),
        "a backtest link started a scan"
    );

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
    type_into(client, "#f-symbols", "B@D!").await?;
    click(client, "#start-button").await?;
    let shown = wait_text(client, "#scan-error", "the API error message", |t| {
        t.contains("B@D!") && t.contains("422")
    })
    .await?;
    println!("error shown: {shown}");
    type_into(client, "#f-symbols", "").await?;

    // A malformed expression shows the engine's caret message and starts nothing.
    type_into(client, "#f-where", "close > sma_5O").await?;
    click(client, "#start-button").await?;
    let caret = wait_text(client, "#where-error", "the caret message", |t| t.contains('^')).await?;
    ensure!(
        caret.contains("sma_50"),
        "the caret message suggests sma_50: {caret}"
    );

    // Completion: typing part of a field name offers the names it starts.
    type_into(client, "#f-where", "rsi_1").await?;
    wait_text(client, "#where-suggest", "completion", |t| t.contains("rsi_14")).await?;
    type_into(client, "#f-where", "").await?;

    // Cancel (fresh cache, slow provider): the page says Cancelled within a second of the click.
    click(client, "#start-button").await?;
    let deadline = Instant::now() + WAIT;
    while text_of(client, "#progress-percent")
        .await?
        .as_deref()
        .and_then(number_in)
        .unwrap_or(0.0)
        < 1.0
    {
        ensure!(Instant::now() < deadline, "the scan did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    click(client, "#cancel-button").await?;
    let clicked = Instant::now();
    let deadline = clicked + Duration::from_secs(1);
    loop {
        let stage = text_of(client, "#progress-stage").await?.unwrap_or_default();
        if stage == "Cancelled" {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "1 s after Cancel the page still reads {stage:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!("cancelled shown after {:?}", clicked.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = text_of(client, "#progress-state").await?.unwrap_or_default();
    ensure!(
        state == "cancelled",
        "a late answer turned the pill back to {state:?}"
    );
    let stopped = js(
        client,
        "return document.querySelectorAll('#stage-steps li.stopped, #stage-steps li.done').length;",
    )
    .await?;
    ensure!(
        stopped.as_u64().unwrap_or(0) >= 1,
        "a cancelled scan keeps its stage marks"
    );

    // A full scan: the progress advances, the table fills, the final stage reads Complete!.
    click(client, "#start-button").await?;
    let pill = text_of(client, "#progress-state").await?.unwrap_or_default();
    ensure!(
        pill != "complete" && pill != "cancelled",
        "a new scan shows the previous one's state: {pill:?}"
    );
    let deadline = Instant::now() + WAIT;
    let mut seen: Vec<f64> = Vec::new();
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
        if text_of(client, "#progress-state").await?.as_deref() != Some("running") {
            break;
        }
        ensure!(Instant::now() < deadline, "the scan did not finish: saw {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ensure!(
        seen.len() >= 2,
        "the progress should advance while the scan runs: {seen:?}"
    );
    ensure!(
        wait_scan_end(client).await? == "Complete!",
        "the scan should complete"
    );
    wait_results(client).await?;
    let first = table_symbols(client).await?;
    ensure!(first.len() == 50, "a page holds 50 rows, read {}", first.len());
    let page = js(client, "return document.body.innerText;").await?;
    ensure!(
        !page.as_str().unwrap_or_default().contains("NaN")
            && !page.as_str().unwrap_or_default().contains("undefined"),
        "the screener shows NaN or undefined"
    );

    // Paging: the next page continues the ranking.
    click(client, "#next-page").await?;
    wait_text(client, "#page-info", "page 2", |t| t.starts_with("51")).await?;
    let second = table_symbols(client).await?;
    ensure!(second.iter().all(|s| !first.contains(s)), "page 2 repeats page 1");

    // Sorting by a column (a keyboard-reachable button in its header) asks the server for that order.
    js(
        client,
        "document.querySelector('#colsets [data-set=\"technical\"]').click(); return true;",
    )
    .await?;
    wait_text(client, "#results-table thead", "the technical columns", |t| {
        t.contains("RSI 14")
    })
    .await?;
    js(
        client,
        "document.querySelector('#results-table thead button[data-key=\"rsi_14\"]').focus(); return true;",
    )
    .await?;
    let focused = js(client, "return document.activeElement.getAttribute('data-key');").await?;
    ensure!(
        focused == json!("rsi_14"),
        "the RSI header is reachable by keyboard focus"
    );
    click(client, "#results-table thead button[data-key=\"rsi_14\"]").await?;
    wait_text(client, "#results-table thead", "the sort mark", |t| {
        t.contains("RSI 14 ▼")
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = shown_scan_id(client).await?;
    let api = fetch_json(
        client,
        &format!("api/v1/scans/{id}/results?limit=50&sort=-rsi_14"),
    )
    .await?;
    let want: Vec<String> = api["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["symbol"].as_str().map(str::to_owned))
        .collect();
    ensure!(
        table_symbols(client).await? == want,
        "the table follows the server's RSI order"
    );

    // Export: the CSV of the current screen downloads from the server.
    let csv = js_async(
        client,
        "const done = arguments[arguments.length - 1];
         fetch(document.getElementById('export-csv').getAttribute('href')).then(r => r.text().then(t => done([r.status, r.headers.get('content-type'), t.split('\\n').length, t.slice(0, 40)])), e => done(String(e)));",
        Vec::new(),
    )
    .await?;
    ensure!(
        csv[0] == json!(200) && csv[1].as_str().is_some_and(|t| t.starts_with("text/csv")),
        "CSV export: {csv}"
    );
    ensure!(
        csv[3].as_str().is_some_and(|t| t.starts_with("rank,symbol")),
        "CSV header: {csv}"
    );
    save_screenshot(client, "dashboard-scan.png").await?;

    // A preset, then an expression: the table holds exactly what the API says matched.
    js(client, "const s = document.getElementById('f-preset'); s.value = 'strong_long'; s.dispatchEvent(new Event('change')); return s.value;").await?;
    click(client, "#start-button").await?;
    wait_scan_end(client).await?;
    wait_results(client).await?;
    let id = shown_scan_id(client).await?;
    let api = fetch_json(client, &format!("api/v1/scans/{id}/results?limit=1")).await?;
    let matched = api["matched"].as_u64().context("matched")?;
    let info = text_of(client, "#page-info").await?.unwrap_or_default();
    ensure!(
        info.ends_with(&format!("of {matched}")) || (matched == 0 && info == "0 results"),
        "pager {info:?} vs API matched {matched}"
    );
    js(
        client,
        "const s = document.getElementById('f-preset'); s.value = ''; return true;",
    )
    .await?;

    // Save a screen, then reproduce it from the page's URL in a fresh load.
    type_into(client, "#f-where", "rsi_14 > 55 and close > sma_50").await?;
    type_into(client, "#f-screen-name", "momentum-test").await?;
    click(client, "#save-screen").await?;
    wait_text(client, "#save-status", "saved", |t| t.contains("Saved")).await?;
    let saved = fetch_json(client, "api/v1/screens").await?;
    ensure!(
        saved.as_array().is_some_and(|a| a
            .iter()
            .any(|s| s["name"] == "momentum-test" && s["where"] == "rsi_14 > 55 and close > sma_50")),
        "saved: {saved}"
    );
    click(client, "#start-button").await?;
    wait_scan_end(client).await?;
    wait_results(client).await?;
    let url = client.current_url().await?.to_string();
    ensure!(url.contains("where="), "the URL holds the screen: {url}");
    let before = table_symbols(client).await?;
    client.goto(&format!("{base}/#cache")).await?;
    open_link_expecting_no_scan(client, &url, "rsi_14 > 55 and close > sma_50", Open::Load).await?;
    run_and_expect_one_scan(client).await?;
    ensure!(
        table_symbols(client).await? == before,
        "the URL reproduces the screen's results"
    );

    // Watchlist: star two symbols, scan only those.
    js(client, "const b = document.querySelectorAll('#results-table tbody button.star'); b[0].click(); b[1].click(); return true;").await?;
    let starred: Vec<String> = before.iter().take(2).cloned().collect();
    type_into(client, "#f-where", "").await?;
    js(
        client,
        "document.getElementById('f-watchlist').checked = true; return true;",
    )
    .await?;
    click(client, "#start-button").await?;
    wait_scan_end(client).await?;
    wait_results(client).await?;
    let mut got = table_symbols(client).await?;
    got.sort();
    let mut want = starred.clone();
    want.sort();
    ensure!(
        got == want,
        "the watchlist scan covers the starred symbols: {got:?} vs {want:?}"
    );
    js(
        client,
        "document.getElementById('f-watchlist').checked = false; return true;",
    )
    .await?;
    accessibility(client, "screener").await?;

    // Scan history outlives the page: the list names the scans.
    wait_text(client, "#history", "the scan history", |t| t.contains("complete")).await?;

    // The symbol page: a candlestick chart whose crosshair legend matches the API's bar.
    let symbol = before.first().cloned().context("a symbol to open")?;
    client.goto(&format!("{base}/#symbol/{symbol}")).await?;
    wait_text(client, "#symbol-title", "the symbol page title", |t| {
        t.contains(symbol.as_str())
    })
    .await?;
    let deadline = Instant::now() + WAIT;
    while js(
        client,
        "return document.querySelectorAll('#price-chart canvas').length;",
    )
    .await?
    .as_u64()
    .unwrap_or(0)
        < 2
    {
        ensure!(Instant::now() < deadline, "the candlestick chart was not drawn");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let chart = client.find(Locator::Css("#price-chart")).await?;
    use fantoccini::actions::{InputSource, MouseActions, PointerAction};
    let mouse = MouseActions::new("mouse".to_owned())
        .then(PointerAction::MoveToElement {
            element: chart.clone(),
            duration: None,
            x: -120.0,
            y: -80.0,
        })
        .then(PointerAction::MoveToElement {
            element: chart,
            duration: Some(Duration::from_millis(50)),
            x: -100.0,
            y: -60.0,
        });
    client
        .perform_actions(mouse)
        .await
        .context("move over the chart")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let date = text_of(client, "#legend-date")
        .await?
        .context("the legend's date")?;
    let close = text_of(client, "#chart-legend [data-name=\"C\"]")
        .await?
        .context("the legend's close")?;
    let bars = fetch_json(client, &format!("api/v1/symbols/{symbol}/bars")).await?;
    let last = bars["bars"]
        .as_array()
        .and_then(|b| b.last())
        .cloned()
        .unwrap_or_default();
    ensure!(
        last["date"] != json!(date),
        "the crosshair should name a bar inside the chart, not the last one ({date})"
    );
    let bar = bars["bars"]
        .as_array()
        .and_then(|b| b.iter().find(|x| x["date"] == json!(date)))
        .with_context(|| format!("the API has the bar under the crosshair ({date})"))?;
    let api_close = format!("{:.2}", bar["close"].as_f64().unwrap_or(f64::NAN));
    ensure!(
        close == api_close,
        "crosshair close {close} vs API {api_close} on {date}"
    );
    println!("crosshair: {date} close {close} (API {api_close})");
    let parts = js(
        client,
        "return document.querySelectorAll('#explain-table tbody tr').length;",
    )
    .await?;
    ensure!(
        parts.as_u64() == Some(8),
        "the explanation lists base, six parts and the total: {parts}"
    );
    save_screenshot(client, "dashboard-symbol.png").await?;
    accessibility(client, "symbol").await?;

    // A 404 symbol: one message, no empty chart.
    client.goto(&format!("{base}/#symbol/NOPE")).await?;
    let err = wait_text(client, "#symbol-error", "the not-found message", |t| {
        t.contains("NOPE")
    })
    .await?;
    ensure!(
        err.matches("NOPE").count() == 1,
        "the message is said once: {err:?}"
    );
    let hidden = js(
        client,
        "return document.getElementById('symbol-body').classList.contains('hidden');",
    )
    .await?;
    ensure!(hidden == json!(true), "no empty chart frame under the error");

    // Backtest the screen: progress, then the summary, the equity curve and the per-year table.
    client.goto(&format!("{base}/#backtest")).await?;
    js(
        client,
        "const s = document.getElementById('bt-preset'); s.value = 'strong_long'; return true;",
    )
    .await?;
    type_into(client, "#bt-horizons", "5,21").await?;
    click(client, "#bt-run").await?;
    wait_text(client, "#bt-heading", "the backtest results", |t| {
        t.contains("sessions")
    })
    .await?;
    let cols = js(
        client,
        "return document.querySelectorAll('#bt-summary thead th').length;",
    )
    .await?;
    ensure!(cols.as_u64() == Some(3), "one column per horizon: {cols}");
    let years = js(
        client,
        "return document.querySelectorAll('#bt-years tbody tr').length;",
    )
    .await?;
    ensure!(years.as_u64().unwrap_or(0) >= 1, "a per-year row");
    let curve = js(
        client,
        "return document.querySelectorAll('#bt-chart canvas').length;",
    )
    .await?;
    ensure!(curve.as_u64().unwrap_or(0) >= 1, "the equity curve is drawn");
    save_screenshot(client, "dashboard-backtest.png").await?;

    // Phone width: no sideways scrolling, results as cards, a chart at least 240 px tall.
    client.set_window_size(390, 844).await.context("phone size")?;
    open_link_expecting_no_scan(
        client,
        &format!("{base}/#scan?where=rsi_14%20%3E%2050&top=20"),
        "rsi_14 > 50",
        Open::HashChange,
    )
    .await?;
    run_and_expect_one_scan(client).await?;
    no_horizontal_scroll(client, "the screener").await?;
    let header = js(
        client,
        "const h = document.querySelector('.topbar'); return h.getBoundingClientRect().height;",
    )
    .await?;
    ensure!(
        header.as_f64().unwrap_or(999.0) < 60.0,
        "the header stays on one line at phone width: {header} px"
    );
    save_screenshot(client, "dashboard-phone.png").await?;
    client.goto(&format!("{base}/#symbol/{symbol}")).await?;
    wait_text(client, "#symbol-title", "the phone symbol page", |t| {
        t.contains(symbol.as_str())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    no_horizontal_scroll(client, "the symbol page").await?;
    let h = js(
        client,
        "return document.getElementById('price-chart').getBoundingClientRect().height;",
    )
    .await?;
    ensure!(
        h.as_f64().unwrap_or(0.0) >= 240.0,
        "the phone chart is at least 240 px tall: {h}"
    );
    save_screenshot(client, "dashboard-phone-symbol.png").await?;
    client.set_window_size(1280, 900).await?;

    // The cache page shows a non-zero hit rate that agrees with the API.
    client.goto(&format!("{base}/#cache")).await?;
    let shown = wait_text(client, "#hit-rate-value", "a non-zero hit rate", |t| {
        t.ends_with('%') && number_in(t).is_some_and(|p| p > 0.0)
    })
    .await?;
    wait_text(client, "#warmer-state", "the warmer running", |t| {
        t.starts_with("running") || t.starts_with("paused")
    })
    .await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let api = fetch_json(client, "api/v1/metrics/current").await?;
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
    save_screenshot(client, "dashboard-cache.png").await?;
    accessibility(client, "cache").await?;
    Ok(())
}

/// The router mounted under `/technic` in another axum application: the dashboard loads its assets and
/// calls the API under the prefix, and a screen runs.
/// Memory in front of the machine's Redis (a namespace of this run's own), or `None` with a note when
/// Redis does not answer (with `CI` set, Redis must answer).
#[cfg(feature = "redis")]
async fn tiered_cache() -> Option<(
    Arc<dyn technic_core::Cache>,
    Arc<technic_core::fleet::RedisLink>,
    String,
)> {
    let ns = format!("browser-{}:", uuid::Uuid::now_v7());
    let link = technic_core::fleet::RedisLink::open("redis://127.0.0.1:6379", &ns)
        .await
        .ok()
        .filter(|l| l.degraded().is_none());
    let Some(link) = link else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but Redis does not answer on 127.0.0.1:6379");
        }
        println!("SKIPPED the cache-tier check: Redis does not answer on 127.0.0.1:6379");
        return None;
    };
    let cache = technic_core::cache::TieredCache::new(MemoryCache::default(), link.clone(), "synthetic");
    Some((Arc::new(cache), link, ns))
}

/// Without the `redis` feature there is no tiered cache to show.
#[cfg(not(feature = "redis"))]
async fn tiered_cache() -> Option<(Arc<dyn technic_core::Cache>, (), String)> {
    None
}

/// Deletes the keys the run wrote under `ns`, so the machine's Redis is left as it was.
#[cfg(feature = "redis")]
async fn delete_namespace(link: &technic_core::fleet::RedisLink, ns: &str) {
    let mut cursor = 0u64;
    loop {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(format!("{ns}*"))
            .arg("COUNT")
            .arg(1000);
        let Some((next, keys)) = link.run::<(u64, Vec<String>)>(&scan).await else {
            return;
        };
        if !keys.is_empty() {
            let mut del = redis::cmd("DEL");
            del.arg(keys);
            let _ = link.run::<u64>(&del).await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

async fn nested_flow(client: &Client, base: &str, tiered: bool) -> anyhow::Result<()> {
    client
        .goto(&format!("{base}/technic"))
        .await
        .context("open the nested dashboard")?;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#start-button"))
        .await
        .context("the nested page loads")?;
    type_into(client, "#f-where", "close > 0").await?;
    click(client, "#start-button").await?;
    wait_text(client, "#progress-state", "the nested scan", |t| t == "complete").await?;
    wait_results(client).await?;
    ensure!(
        !table_symbols(client).await?.is_empty(),
        "the nested dashboard shows results"
    );
    let href = js(client, "return new URL(document.getElementById('export-csv').getAttribute('href'), document.baseURI).pathname;").await?;
    ensure!(
        href.as_str()
            .is_some_and(|p| p.starts_with("/technic/api/v1/scans/")),
        "API links resolve under the prefix: {href}"
    );
    let server = text_of(client, "#server-info").await?.unwrap_or_default();
    ensure!(
        server.contains("provider"),
        "the health check answered under the prefix: {server:?}"
    );
    if tiered {
        // A fleet server's cache page lists its tiers with their own counts, as the API reports them.
        client.goto(&format!("{base}/technic/#cache")).await?;
        let shown = wait_text(client, "#cache-tiers", "the cache tiers", |t| {
            t.contains("memory") && t.contains("redis")
        })
        .await?;
        let api = js_async(
            client,
            "const done = arguments[arguments.length - 1];
             fetch('api/v1/metrics/current').then(r => r.json()).then(done, e => done(String(e)));",
            Vec::new(),
        )
        .await?;
        let tiers = api["cache"]["tiers"]
            .as_array()
            .context("cache.tiers in the API")?;
        ensure!(tiers.len() == 2, "two tiers in the API: {api}");
        let memory_misses = tiers[0]["misses"].as_u64().context("memory misses")?;
        ensure!(
            memory_misses > 0,
            "the nested scan loaded bars through the memory tier: {api}"
        );
        println!("cache tiers: {shown}");
    }
    Ok(())
}

/// A server started with an admin token: the first state change (running a screen) answers 401, the page
/// asks for the token in a labelled modal form, keeps it in sessionStorage for the tab and retries; a
/// wrong token is refused and asked for again; later state changes send it without asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_asks_for_the_admin_token_once() {
    let Some(chromedriver) = find_on_path("chromedriver") else {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `chromedriver` is not on PATH: install `chromium chromium-driver`");
        }
        println!("SKIPPED browser test: `chromedriver` is not on PATH");
        return;
    };
    let deps = Deps::new(
        Arc::new(SyntheticProvider::new(SyntheticConfig {
            n_symbols: 40,
            ..Default::default()
        })),
        Arc::new(MemoryCache::default()),
    );
    let state = AppState::new(
        deps,
        ServerConfig {
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            warm: None,
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
    let port = free_port();
    let profile = std::env::temp_dir().join(format!("technic-browser-token-{}", std::process::id()));
    let scratch = profile.join("tmp");
    std::fs::create_dir_all(&scratch).expect("create the Chromium profile directory");
    let driver = Command::new(&chromedriver)
        .env("TMPDIR", &scratch)
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
    let outcome = tokio::time::timeout(Duration::from_secs(120), token_flow(&client, &base))
        .await
        .unwrap_or_else(|_| Err(anyhow!("the token flow took longer than 120 s")));
    let _ = tokio::time::timeout(Duration::from_secs(15), client.close()).await;
    drop(harness);
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    if let Err(e) = outcome {
        panic!("browser token test failed: {e:#}");
    }
}

/// Waits until the admin-token dialog is open (or fails after `WAIT`).
async fn wait_token_dialog(client: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let open = js(
            client,
            "const d = document.getElementById('admin-token-dialog'); return !!(d && d.open);",
        )
        .await?;
        if open == Value::Bool(true) {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the admin-token form did not open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Scans the server knows.
async fn scan_count(client: &Client) -> anyhow::Result<usize> {
    let scans = fetch_json(client, "api/v1/scans").await?;
    Ok(scans.as_array().map_or(0, Vec::len))
}

async fn token_flow(client: &Client, base: &str) -> anyhow::Result<()> {
    client.goto(&format!("{base}/")).await?;
    client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("#start-button"))
        .await
        .context("find #start-button")?;
    ensure!(scan_count(client).await? == 0, "a scan ran before any click");

    // First state change: refused, so the page asks (a labelled password field in a modal dialog).
    click(client, "#start-button").await?;
    wait_token_dialog(client).await?;
    let form = js(
        client,
        "const i = document.getElementById('admin-token-input'); const l = document.querySelector('label[for=admin-token-input]'); \
         return { type: i.type, label: l ? l.textContent : null, focused: document.activeElement === i, \
                  labelledby: document.getElementById('admin-token-dialog').getAttribute('aria-labelledby') };",
    )
    .await?;
    ensure!(form["type"] == "password", "token field: {form}");
    ensure!(
        form["label"].as_str().is_some_and(|l| l.contains("Admin token")),
        "token field label: {form}"
    );
    ensure!(form["focused"] == true, "the token field has focus: {form}");
    ensure!(form["labelledby"] == "admin-token-title", "dialog label: {form}");
    save_screenshot(client, "dashboard-admin-token.png").await?;

    // A wrong token is refused: nothing starts and the error says why.
    type_into(client, "#admin-token-input", "not-the-token").await?;
    click(client, "#admin-token-submit").await?;
    wait_text(client, "#scan-error", "the refusal", |t| {
        t.contains("admin token")
    })
    .await?;
    ensure!(scan_count(client).await? == 0, "a wrong token started a scan");
    let kept = js(client, "return sessionStorage.getItem('technic.adminToken');").await?;
    ensure!(kept.is_null(), "a refused token was kept: {kept}");

    // Asked again; the right one starts the scan and is kept for the tab.
    click(client, "#start-button").await?;
    wait_token_dialog(client).await?;
    let help = text_of(client, "#admin-token-help").await?.unwrap_or_default();
    ensure!(
        help.contains("refused"),
        "the form says the last token was refused: {help}"
    );
    type_into(client, "#admin-token-input", ADMIN_TOKEN).await?;
    click(client, "#admin-token-submit").await?;
    wait_scan_end(client).await?;
    ensure!(
        scan_count(client).await? == 1,
        "the scan did not start with the token"
    );
    let kept = js(client, "return sessionStorage.getItem('technic.adminToken');").await?;
    ensure!(kept == ADMIN_TOKEN, "the token is kept for the tab: {kept}");

    // Later state changes send it without asking.
    click(client, "#start-button").await?;
    let deadline = Instant::now() + WAIT;
    while scan_count(client).await? < 2 {
        let asked = js(client, "return !!document.getElementById('admin-token-dialog');").await?;
        ensure!(asked == false, "asked for the token twice");
        ensure!(Instant::now() < deadline, "the second scan did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
