//! The scan's stages, in order: universe → fetch → compute and score → rank and save.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::fetch::{CACHE_DOWN, CacheHealth, Fetch, fetch_symbol};
use super::history::StoredHistory;
use super::rank::{plan_for, rank_scored};
use super::reporter::Reporter;
use super::scoring::Scoring;
use super::{
    Deps, FilterCounts, Filters, ScanReport, ScanRequest, ScanState, Scored, Skipped, StageTimings,
    UniverseSelection, score_with_features,
};
use crate::cache::BarsKey;
use crate::error::{Error, Result};
use crate::model::{Bars, DateRange, Symbol, Universe, UniverseEntry};
use crate::progress::{ProgressSink, Stage};
use crate::provider::ProviderStats;
use crate::screen::regime::{EQUAL_WEIGHT, IndexAccumulator};
use crate::screen::{Needs, Regime, Row, Screen, SortKey};

/// Runs one scan. See the [module docs](super).
///
/// Returns `Ok` for a complete or cancelled scan (a cancelled one has `state: Cancelled` and the results
/// of what finished), and `Err` when the scan as a whole cannot proceed (e.g. the universe cannot be
/// loaded); a `Failed` progress event is sent first. Per-symbol failures never fail the scan.
pub async fn scan(
    req: &ScanRequest,
    deps: &Deps,
    sink: &dyn ProgressSink,
    cancel: CancellationToken,
) -> Result<ScanReport> {
    let id = req.id.clone().unwrap_or_else(new_scan_id);
    let span = info_span!("scan", id = %id, provider = deps.provider.name());
    let mut run = Run::new(id, req, deps, sink, cancel);
    match run.execute().instrument(span).await {
        Ok(report) => Ok(report),
        Err(e) => {
            let msg = e.final_message();
            run.reporter
                .finish(Stage::Failed, 0, 0, format!("Scan failed: {msg}"));
            Err(e)
        }
    }
}

/// A universe's bars, loaded the way a scan loads them.
pub(crate) struct Loaded {
    pub fetched: Vec<(UniverseEntry, Arc<Bars>)>,
    pub skipped: Vec<Skipped>,
    pub universe_size: usize,
    pub cancelled: bool,
}

/// Loads `req`'s universe and its bars over `range` as a scan does (universe filters, cache, store,
/// grouped fetches, validation), for work that is not a scan (backtests). Per-symbol failures are skips.
pub(crate) async fn load(
    req: &ScanRequest,
    deps: &Deps,
    sink: &dyn ProgressSink,
    cancel: CancellationToken,
    range: DateRange,
) -> Result<Loaded> {
    let id = req.id.clone().unwrap_or_else(new_scan_id);
    let mut run = Run::new(id, req, deps, sink, cancel);
    if deps.provider.live_source().is_some() {
        let expected = deps.market.expected_session();
        run.target = Some(deps.market.calendar.session_on_or_before(range.to.min(expected)));
    }
    let Some((universe, universe_size)) = run.load_universe().await? else {
        return Ok(Loaded {
            fetched: Vec::new(),
            skipped: Vec::new(),
            universe_size: 0,
            cancelled: true,
        });
    };
    let mut keeping = Scoring::keeping(universe.len());
    let cancelled = run.fetch(universe, range, &mut keeping).await?;
    Ok(Loaded {
        fetched: keeping.kept.unwrap_or_default(),
        skipped: std::mem::take(&mut run.skipped),
        universe_size,
        cancelled,
    })
}

/// A new scan id: a UUIDv7 (time-ordered, random in its low bits), unique across processes and machines
/// that share a store, and sortable by start time.
pub fn new_scan_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// How long a scan cancelled while fetching may spend scoring what it had fetched.
const CANCEL_SCORING_BUDGET: std::time::Duration = std::time::Duration::from_millis(50);

/// Registers a fetch as waiting until it ends (or its future is dropped).
struct Waiting<'a> {
    map: &'a std::sync::Mutex<HashMap<usize, Instant>>,
    idx: usize,
}

impl<'a> Waiting<'a> {
    fn enter(map: &'a std::sync::Mutex<HashMap<usize, Instant>>, idx: usize, at: Instant) -> Self {
        map.lock().unwrap_or_else(|e| e.into_inner()).insert(idx, at);
        Self { map, idx }
    }

    /// How many fetches wait now and the longest wait.
    fn now(map: &std::sync::Mutex<HashMap<usize, Instant>>) -> (usize, std::time::Duration) {
        let map = map.lock().unwrap_or_else(|e| e.into_inner());
        let longest = map.values().map(Instant::elapsed).max().unwrap_or_default();
        (map.len(), longest)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.idx);
    }
}

/// What a scan's fetch has seen so far.
#[derive(Default)]
struct Tally {
    total: usize,
    done: usize,
    bench_symbol: Option<Symbol>,
    with_history: bool,
    fetched: Vec<Symbol>,
    stale: Vec<Symbol>,
    skipped: Vec<Skipped>,
    last_unavailable: Option<Error>,
    n_unavailable: usize,
    cache_warned: bool,
}

struct Run<'a> {
    id: String,
    req: &'a ScanRequest,
    deps: &'a Deps,
    reporter: Reporter<'a>,
    cancel: CancellationToken,
    skipped: Vec<Skipped>,
    filtered: FilterCounts,
    timing: StageTimings,
    /// Shared with the fetches in flight.
    cache_health: Arc<CacheHealth>,
    /// Symbols served from stale cached bars because the provider failed.
    stale: std::collections::HashSet<crate::model::Symbol>,
    provider_before: ProviderStats,
    /// For a live source, the newest session whose bar should be in the range (see `history`).
    target: Option<NaiveDate>,
    /// Symbols whose stored history was replaced (split, re-adjustment).
    adjusted: Vec<Symbol>,
    /// Symbols the store answered without asking the provider (and the memory cache did not hold).
    store_hits: usize,
    /// The compiled screen expression and sort key.
    screen: Option<Screen>,
    sort: Option<SortKey>,
    /// The fields each symbol needs: what results read, plus the screen's and the sort's.
    needs: Needs,
    /// The benchmark's name and bars, when it is a symbol that loaded.
    benchmark: Option<(String, Arc<Bars>)>,
    /// The equal-weight index of the scored symbols (used without a benchmark symbol).
    index: IndexAccumulator,
    /// Why the benchmark symbol could not be used.
    bench_warning: Option<String>,
    /// Whether the provider's universe (when it was loaded) lists SPY, the default benchmark.
    provider_lists_spy: bool,
    /// Warnings found before the report is assembled.
    notes: Vec<String>,
    /// The first and last dates of the bars that loaded, to report instead of an open-ended range.
    extent: Option<(NaiveDate, NaiveDate)>,
    /// The market date (New York) when the scan started: no bar may be dated after it.
    today: NaiveDate,
}

impl<'a> Run<'a> {
    fn new(
        id: String,
        req: &'a ScanRequest,
        deps: &'a Deps,
        sink: &'a dyn ProgressSink,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            reporter: Reporter::new(id.clone(), sink, deps.stage_weights),
            id,
            req,
            deps,
            cancel,
            skipped: Vec::new(),
            filtered: FilterCounts::default(),
            timing: StageTimings::default(),
            cache_health: Arc::default(),
            stale: std::collections::HashSet::new(),
            provider_before: deps.provider.stats(),
            target: None,
            adjusted: Vec::new(),
            store_hits: 0,
            screen: None,
            sort: None,
            needs: Needs::base(),
            benchmark: None,
            index: IndexAccumulator::default(),
            bench_warning: None,
            provider_lists_spy: false,
            notes: Vec::new(),
            extent: None,
            today: deps.market.calendar.market_date(deps.market.now()),
        }
    }

    async fn execute(&mut self) -> Result<ScanReport> {
        let started_at = self.deps.market.now();
        let cache_before = self.deps.cache.stats();
        let mut range = self.req.range.unwrap_or_else(|| self.deps.default_range());
        if let Some(day) = self.req.as_of {
            // A point-in-time scan: the same span of history, ending at `day`; no bar after it is read.
            let today = self.today;
            if day > today {
                return Err(Error::config(format!(
                    "--as-of {day} is after today ({today} in New York): a point-in-time scan shows what the \
                     data said on a past day; leave --as-of out for the latest bars"
                )));
            }
            if day < range.from {
                return Err(Error::config(format!(
                    "--as-of {day} is before the history this scan reads ({} to {})",
                    range.from, range.to
                )));
            }
            let span = chrono::Days::new((range.to - range.from).num_days().max(0) as u64);
            let to = day.min(range.to);
            range = DateRange {
                // A provider whose range starts at the dawn of time (local files) keeps that start.
                from: to.checked_sub_days(span).unwrap_or(range.from).max(range.from),
                to,
            };
        }
        // A bad expression or plan setting fails before any work (frontends check them first too).
        let (screen, sort) = self
            .req
            .screen
            .compile()
            .map_err(|e| Error::config(e.to_string()))?;
        self.req.plan.validate().map_err(Error::config)?;
        let mut needs = screen
            .as_ref()
            .map_or_else(Needs::base, |s| Needs::base().union(&s.needs()));
        if let Some(key) = &sort {
            needs.add(key.field, 0);
        }
        self.needs = needs;
        (self.screen, self.sort) = (screen, sort);
        if self.deps.provider.live_source().is_some() {
            let calendar = self.deps.market.calendar;
            let expected = self.deps.market.expected_session();
            self.target = Some(calendar.session_on_or_before(range.to.min(expected)));
        }
        self.reporter.begin(Stage::Initializing, 0, "Initializing…");

        let t = Instant::now();
        let (universe, universe_size) = match self.load_universe().await? {
            Some(u) => u,
            None => {
                return self
                    .finish(
                        started_at,
                        range,
                        0,
                        Vec::new(),
                        cache_before,
                        ScanState::Cancelled,
                    )
                    .await;
            }
        };
        self.timing.loading_universe_ms = ms(t);

        // Symbols are scored as their bars arrive (see `scoring`): the fetch stage's time includes the
        // scoring it overlaps; the scanning stage is what is left once the last bars are in.
        let t = Instant::now();
        let mut scoring = Scoring::new(self.needs, universe.len());
        let cancelled = self.fetch(universe, range, &mut scoring).await?;
        self.timing.fetching_ms = ms(t);
        if cancelled {
            // Keep what finished: the symbols already fetched are scored, within a time budget so a
            // cancel still ends the scan promptly (a thousand symbols take a few milliseconds).
            let t = Instant::now();
            scoring.finish_by(t + CANCEL_SCORING_BUDGET).await;
            let scored = self.take_scored(scoring);
            self.timing.scanning_ms = ms(t);
            return self
                .finish(
                    started_at,
                    range,
                    universe_size,
                    scored,
                    cache_before,
                    ScanState::Cancelled,
                )
                .await;
        }

        self.load_benchmark(range).await;
        let t = Instant::now();
        let cancelled = self.compute(&mut scoring).await;
        let scored = self.take_scored(scoring);
        self.timing.scanning_ms = ms(t);
        let state = if cancelled {
            ScanState::Cancelled
        } else {
            ScanState::Complete
        };
        self.finish(started_at, range, universe_size, scored, cache_before, state)
            .await
    }

    /// Loads and filters the universe; `None` when cancelled.
    async fn load_universe(&mut self) -> Result<Option<(Universe, usize)>> {
        self.reporter
            .begin(Stage::LoadingUniverse, 1, "Loading universe…");
        let provider = &self.deps.provider;
        let spy = Symbol::new("SPY");
        let lists_spy = std::sync::atomic::AtomicBool::new(false);
        let lists = |u: &Universe| {
            if u.iter().any(|e| e.symbol == spy) {
                lists_spy.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let load = async {
            match &self.req.universe {
                UniverseSelection::Entries(entries) => Ok(entries.clone()),
                UniverseSelection::Provider => provider.universe().await.inspect(|u| lists(u)),
                UniverseSelection::Symbols(symbols) => {
                    // Names and sectors come from the provider's list when it has one; a provider that
                    // cannot list its universe still serves the symbols bare.
                    let known: HashMap<_, _> = match provider.universe().await {
                        Ok(u) => {
                            lists(&u);
                            u.into_iter().map(|e| (e.symbol.clone(), e)).collect()
                        }
                        // A rejected key fails every later call too: say so now, once.
                        Err(e @ Error::Rejected { .. }) => return Err(e),
                        Err(e) => {
                            warn!(error = %e, "provider universe unavailable; scanning the symbols given without names");
                            HashMap::new()
                        }
                    };
                    Ok(symbols
                        .iter()
                        .map(|s| {
                            known
                                .get(s)
                                .cloned()
                                .unwrap_or_else(|| UniverseEntry::bare(s.clone()))
                        })
                        .collect())
                }
            }
        };
        let mut universe = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Ok(None),
            u = load => u?,
        };
        self.provider_lists_spy = lists_spy.load(std::sync::atomic::Ordering::Relaxed);
        dedup(&mut universe);
        let universe_size = universe.len();
        let sectors_here: std::collections::BTreeSet<String> = if self.req.filters.sectors.is_empty() {
            Default::default()
        } else {
            universe
                .iter()
                .map(|e| e.sector.clone())
                .filter(|s| !s.is_empty())
                .collect()
        };
        apply_universe_filters(&mut universe, &self.req.filters, &mut self.filtered);
        if universe.is_empty() && universe_size > 0 && !self.req.filters.sectors.is_empty() {
            // A sector nobody is in filters out everything: name the ones there are.
            self.notes.push(format!(
                "No symbol is in sector {}; the sectors of this universe are: {}",
                self.req.filters.sectors.join(", "),
                if sectors_here.is_empty() {
                    "none (the provider names no sectors)".to_owned()
                } else {
                    sectors_here.into_iter().collect::<Vec<_>>().join(", ")
                }
            ));
        }
        info!(universe_size, kept = universe.len(), "universe loaded");
        self.reporter
            .advance(1, 1, || format!("Loaded {universe_size} symbols"));
        Ok(Some((universe, universe_size)))
    }

    /// Fetches bars for the universe. With a store, reads the stored history first (batched), asks the
    /// provider only for missing dates and writes new bars back in one transaction; see [`Run::fetch_all`]
    /// for the rest.
    /// Fetches every symbol's bars into `scoring`; true when cancelled.
    async fn fetch(&mut self, universe: Universe, range: DateRange, scoring: &mut Scoring) -> Result<bool> {
        // Only a live source's bars are stored; local files and demo data are read directly.
        let source = self.deps.provider.live_source();
        let history = match (&self.deps.store, source, self.target) {
            (Some(store), Some(source), Some(target)) => {
                // Symbols the memory cache holds fresh are not read from the store: a long-running server
                // with a warm cache should not copy every bar out of SQLite on every scan. (Should such an
                // entry expire mid-scan, that symbol is fetched from the provider, which is correct, only
                // slower.)
                let symbols: Vec<Symbol> = universe
                    .iter()
                    .map(|e| e.symbol.clone())
                    .filter(|s| {
                        self.deps
                            .cache
                            .time_to_live(&BarsKey::new(s.clone(), range))
                            .is_none()
                    })
                    .collect();
                let calendar = self.deps.market.calendar;
                let load = StoredHistory::load(store.as_ref(), &source, &symbols, range, target, calendar);
                let loaded = tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => return Ok(true),
                    loaded = load => loaded,
                };
                match loaded {
                    Ok(mut h) => {
                        if self.prefetch_grouped(&mut h, &symbols, range).await {
                            return Ok(true);
                        }
                        Some(h)
                    }
                    Err(e) => {
                        warn!(error = %e, "store unreadable; fetching everything from the provider");
                        None
                    }
                }
            }
            _ => None,
        };
        let (accessed, cancelled) = self.fetch_all(universe, range, history.as_ref(), scoring).await?;
        if let Some(h) = &history {
            self.adjusted = h.adjusted();
        }
        // A cancelled scan leaves at once; what it fetched is asked for again next time.
        if let (false, Some(store), Some(history)) = (cancelled, &self.deps.store, &history) {
            let updates = history.take_updates();
            let n_updates = updates.len();
            if let Err(e) = store.save_bars_batch(history.source(), updates).await {
                warn!(error = %e, "could not store fetched bars");
            }
            debug!(n_updates, "fetched bars written to the store");
        }
        if let (false, false, Some(store)) = (cancelled, self.req.background, &self.deps.store)
            && let Err(e) = store.record_access(&accessed).await
        {
            warn!(error = %e, "could not record symbol access counts");
        }
        Ok(cancelled)
    }

    /// Fetches the sessions many symbols miss once for the whole market (see `history`); true when
    /// cancelled meanwhile.
    async fn prefetch_grouped(
        &mut self,
        h: &mut StoredHistory,
        symbols: &[Symbol],
        range: DateRange,
    ) -> bool {
        let dates = h.grouped_sessions(symbols, range);
        if dates.is_empty() {
            return false;
        }
        let n = dates.len();
        self.reporter.begin(
            Stage::FetchingData,
            symbols.len(),
            format!("Fetching whole-market bars for {n} sessions…"),
        );
        let provider = self.deps.provider.as_ref();
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => true,
            fetched = h.prefetch_grouped(provider, symbols, &dates) => {
                info!(sessions = fetched, of = n, "whole-market bars fetched");
                false
            }
        }
    }

    /// Fetches bars (see [`fetch_symbol`] for the fallbacks) with bounded concurrency, handing each
    /// symbol's to `scoring` as it arrives (the benchmark's are also kept). Symbols the memory cache
    /// holds fresh are handed over first, without a future each. Returns the symbols that arrived and
    /// whether the scan was cancelled; fails the scan when the provider rejects the key or nothing could
    /// be fetched because the provider is down.
    async fn fetch_all(
        &mut self,
        universe: Universe,
        range: DateRange,
        history: Option<&StoredHistory>,
        scoring: &mut Scoring,
    ) -> Result<(Vec<Symbol>, bool)> {
        let total = universe.len();
        self.reporter.begin(
            Stage::FetchingData,
            total,
            format!("Fetching data for {total} symbols…"),
        );
        let mut tally = Tally {
            total,
            bench_symbol: self.benchmark_symbol(),
            with_history: history.is_some(),
            fetched: Vec::with_capacity(total),
            ..Tally::default()
        };
        let deps = self.deps;
        // Warm symbols first: a server's scans mostly find every symbol in memory, and a lookup here
        // costs a fraction of a future through the stream below.
        let mut rest = Vec::new();
        if self.cache_health.ok() {
            for entry in universe {
                if self.cancel.is_cancelled() {
                    break;
                }
                let started = Instant::now();
                match deps.cache.get_held(&BarsKey::new(entry.symbol.clone(), range)) {
                    Some(bars) => {
                        if let Some(m) = &deps.monitor {
                            m.record_lookup(started.elapsed(), true, None);
                        }
                        let fetch = Fetch {
                            bars,
                            stale: false,
                            asked_provider: false,
                            memory_hit: true,
                        };
                        self.take(&mut tally, entry, Ok(fetch), scoring).await?;
                    }
                    None => rest.push(entry),
                }
            }
        } else {
            rest = universe;
        }
        self.fetch_rest(rest, range, history, scoring, &mut tally).await?;
        let cancelled = self.cancel.is_cancelled() && tally.done < total;
        self.stale.extend(tally.stale);
        self.skipped.extend(tally.skipped);
        if !cancelled
            && tally.fetched.is_empty()
            && tally.n_unavailable == total
            && let Some(e) = tally.last_unavailable
        {
            // Nothing arrived and the provider is the reason: one clear line beats N skipped symbols.
            return Err(e);
        }
        Ok((tally.fetched, cancelled))
    }

    /// Fetches the symbols the memory cache did not hold, `fetch_concurrency` at a time, until done or
    /// cancelled.
    async fn fetch_rest(
        &mut self,
        rest: Universe,
        range: DateRange,
        history: Option<&StoredHistory>,
        scoring: &mut Scoring,
        tally: &mut Tally,
    ) -> Result<()> {
        if rest.is_empty() {
            return Ok(());
        }
        let health = self.cache_health.clone();
        let (deps, health, target) = (self.deps, health.as_ref(), self.target);
        // Fetches waiting now, by when they started: the progress shows how many and the longest wait.
        let waiting: std::sync::Mutex<HashMap<usize, Instant>> = std::sync::Mutex::new(HashMap::new());
        let waiting = &waiting;
        let mut stream = futures::stream::iter(rest.into_iter().enumerate())
            .map(|(idx, entry)| async move {
                let started = Instant::now();
                let _waiting = Waiting::enter(waiting, idx, started);
                let result = fetch_symbol(deps, health, history, &entry.symbol, range, target).await;
                if let Some(m) = &deps.monitor {
                    // Cached: answered by the memory cache or the store without asking the provider.
                    let cached = result.as_ref().is_ok_and(|f| !f.asked_provider);
                    m.record_lookup(started.elapsed(), cached, result.as_ref().err());
                }
                (entry, result)
            })
            .buffer_unordered(self.req.fetch_concurrency.max(1));
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let next = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Ok(()),
                next = stream.next() => next,
                _ = tick.tick() => {
                    // Nothing finished for a second: say what is being waited for.
                    let (n, longest) = Waiting::now(waiting);
                    if n > 0 {
                        let (done, total) = (tally.done, tally.total);
                        self.reporter.tick(done, total, format!(
                            "Fetched {done}/{total}; {n} requests in flight, the slowest waiting {:.1} s",
                            longest.as_secs_f64()
                        ));
                    }
                    continue;
                }
            };
            let Some((entry, result)) = next else {
                return Ok(());
            };
            self.take(tally, entry, result, scoring).await?;
        }
    }

    /// Takes one symbol's fetch: scored (and kept when it is the benchmark) or skipped with the reason,
    /// and the progress advanced. Fails the scan on a rejected key.
    async fn take(
        &mut self,
        tally: &mut Tally,
        entry: UniverseEntry,
        result: Result<Fetch>,
        scoring: &mut Scoring,
    ) -> Result<()> {
        tally.done += 1;
        match result {
            Ok(f) => match self.unusable(&f.bars) {
                Some(reason) => tally.skipped.push(Skipped {
                    symbol: entry.symbol,
                    reason,
                    category: crate::error::Category::Data,
                }),
                None => {
                    if let (Some(&first), Some(&last)) = (f.bars.date.first(), f.bars.date.last()) {
                        self.extent = Some(match self.extent {
                            Some((a, b)) => (a.min(first), b.max(last)),
                            None => (first, last),
                        });
                    }
                    if f.stale {
                        tally.stale.push(entry.symbol.clone());
                    }
                    if !f.asked_provider && !f.memory_hit && tally.with_history {
                        self.store_hits += 1;
                    }
                    tally.fetched.push(entry.symbol.clone());
                    if tally.bench_symbol.as_ref() == Some(&entry.symbol) {
                        self.benchmark = Some((entry.symbol.to_string(), f.bars.clone()));
                    }
                    scoring
                        .push(entry, f.bars, &self.req.filters, &mut self.filtered)
                        .await;
                }
            },
            // A bad key fails every call: stop at the first instead of skipping every symbol.
            Err(e @ Error::Rejected { .. }) => return Err(e),
            Err(e) => {
                debug!(symbol = %entry.symbol, error = %e, "symbol skipped");
                if e.is_transient() || matches!(e, Error::CircuitOpen { .. }) {
                    // An open breaker says it best ("too many failures, pausing requests"): keep it
                    // over the transient errors of calls that were in flight when it opened.
                    let keep = matches!(tally.last_unavailable, Some(Error::CircuitOpen { .. }));
                    if !keep {
                        tally.last_unavailable = Some(e.clone());
                    }
                    tally.n_unavailable += 1;
                }
                tally.skipped.push(skip(&entry, &e));
            }
        }
        let (done, total, n_skipped) = (tally.done, tally.total, tally.skipped.len());
        let retries = self.deps.provider.stats().since(&self.provider_before).retries;
        let cache_down = !self.cache_health.ok() && !std::mem::replace(&mut tally.cache_warned, true);
        self.reporter.advance(done, total, || {
            if cache_down {
                CACHE_DOWN.to_owned()
            } else if retries > 0 {
                format!("Fetched {done}/{total} ({n_skipped} skipped, {retries} retries)")
            } else {
                format!("Fetched {done}/{total} ({n_skipped} skipped)")
            }
        });
        Ok(())
    }

    /// Waits for the scoring of every fetched symbol (most of it ran during the fetch); true when
    /// cancelled meanwhile.
    async fn compute(&mut self, scoring: &mut Scoring) -> bool {
        let total = scoring.submitted;
        self.reporter
            .begin(Stage::Scanning, total, format!("Scanning {total} symbols…"));
        let reporter = &mut self.reporter;
        scoring
            .finish(&self.cancel, |done, total| {
                reporter.advance(done, total, || format!("Scanned {done}/{total}"));
            })
            .await
    }

    /// The scored symbols; the skipped ones and the equal-weight index go to the run.
    fn take_scored(&mut self, scoring: Scoring) -> Vec<Scored> {
        self.skipped.extend(scoring.skipped);
        self.index = scoring.index;
        scoring.scored
    }

    async fn finish(
        &mut self,
        started_at: chrono::DateTime<Utc>,
        range: DateRange,
        universe_size: usize,
        scored: Vec<Scored>,
        cache_before: crate::cache::CacheStats,
        state: ScanState,
    ) -> Result<ScanReport> {
        let t = Instant::now();
        if state == ScanState::Complete {
            self.reporter.begin(Stage::Finalizing, 1, "Finalizing results…");
        }
        // A provider that reads everything (local files) asks for an open-ended range: report the
        // dates the bars actually span, never the calendar's limits.
        let (first, last) = self.extent.unwrap_or_else(|| {
            let end = if range.to == NaiveDate::MAX {
                self.today
            } else {
                range.to
            };
            (end, end)
        });
        let range = DateRange {
            from: if range.from == NaiveDate::MIN {
                first
            } else {
                range.from
            },
            to: if range.to == NaiveDate::MAX {
                last
            } else {
                range.to
            },
        };
        let mut scored = scored;
        let mut behind = 0;
        for s in &mut scored {
            let r = &mut s.result;
            let old = self.target.is_some_and(|t| r.date < t);
            behind += usize::from(old);
            r.stale = old || self.stale.contains(&r.symbol);
        }
        let n_stale = scored.iter().filter(|s| s.result.stale).count();
        let scanned = scored.len();
        let mut warnings = std::mem::take(&mut self.notes);
        let regime = self.relative_strength(&mut scored, &mut warnings);
        let scored = self.apply_screen(scored);
        let matched = scored.len();
        let results: Vec<_> = rank_scored(scored, self.req.top, self.sort)
            .into_iter()
            .map(|s| {
                let plan = plan_for(&s, &self.req.plan);
                let mut r = s.result;
                r.trade_plan = plan;
                r
            })
            .collect();
        let provider_calls = self.deps.provider.stats().since(&self.provider_before);
        if !self.cache_health.ok() {
            warnings.push(CACHE_DOWN.to_owned());
        }
        if let Some(target) = self.target.filter(|_| behind > 0) {
            warnings.push(format!(
                "{behind} results are older than the {target} session and marked stale: the provider has \
                 not published their newest bar yet ({})",
                self.deps.market.why_no_newer_bar()
            ));
        }
        if !self.adjusted.is_empty() {
            let names: Vec<&str> = self.adjusted.iter().take(10).map(Symbol::as_str).collect();
            let more = self.adjusted.len().saturating_sub(names.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            warnings.push(format!(
                "Stored history of {} symbols replaced after a split or price re-adjustment: {}{more}",
                self.adjusted.len(),
                names.join(", ")
            ));
        }
        self.timing.finalizing_ms = ms(t);
        self.timing.total_ms = self.reporter.elapsed().as_secs_f64() * 1e3;
        let report = ScanReport {
            id: self.id.clone(),
            state,
            error: None,
            provider: self.deps.provider.name().to_owned(),
            demo: self.deps.provider.is_demo(),
            started_at,
            range,
            universe_size,
            scanned,
            results,
            skipped: std::mem::take(&mut self.skipped),
            filtered: self.filtered,
            timing: self.timing,
            cache: self.deps.cache.stats().since(&cache_before),
            retries: provider_calls.retries,
            stale: n_stale,
            provider_calls,
            warnings,
            expected_session: self.target,
            adjustments: self.adjusted.len(),
            freshness: self.target.map(|t| self.freshness(t, n_stale, scanned)),
            store_hits: self.store_hits,
            matched,
            regime,
        };
        if let Some(store) = self.deps.store.as_ref().filter(|_| !self.req.background)
            && let Err(e) = store.save_scan_run(self.req, &report).await
        {
            warn!(error = %e, "could not save the scan");
        }
        let (n_skipped, n_results) = (report.skipped.len(), report.results.len());
        match state {
            ScanState::Complete => self.reporter.finish(
                Stage::Complete,
                scanned,
                scanned,
                format!("Complete! {scanned} scanned, {n_skipped} skipped, top {n_results} ranked"),
            ),
            _ => self.reporter.finish(
                Stage::Cancelled,
                scanned,
                universe_size,
                format!("Cancelled after {scanned} symbols scanned"),
            ),
        }
        info!(
            ?state,
            scanned,
            skipped = n_skipped,
            total_ms = report.timing.total_ms,
            "scan finished"
        );
        Ok(report)
    }
}

impl Run<'_> {
    /// Loads the benchmark symbol's bars: the one asked for, or SPY for a live source. A symbol of the
    /// universe is reused; one that fails leaves the equal-weight index in its place, with a warning.
    /// The benchmark symbol: the request's, or SPY when a live provider lists it (a local or demo
    /// universe is its own benchmark: `None`).
    fn benchmark_symbol(&self) -> Option<Symbol> {
        match &self.req.benchmark {
            Some(s) => Some(s.clone()),
            None if self.deps.provider.live_source().is_some() && self.provider_lists_spy => {
                Some(Symbol::new("SPY"))
            }
            None => None,
        }
    }

    /// Loads the benchmark's bars unless they came with the universe's.
    async fn load_benchmark(&mut self, range: DateRange) {
        let Some(symbol) = self.benchmark_symbol() else {
            return;
        };
        if self.benchmark.is_some() {
            return;
        }
        let load = fetch_symbol(self.deps, &self.cache_health, None, &symbol, range, self.target);
        let loaded = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return,
            loaded = load => loaded,
        };
        match loaded {
            Ok(f) if !f.bars.is_empty() => self.benchmark = Some((symbol.to_string(), f.bars)),
            Ok(_) => self.bench_warning = Some(format!("Benchmark {symbol} has no bars in the range")),
            Err(e) => {
                self.bench_warning = Some(format!(
                    "Benchmark {symbol} could not be loaded ({})",
                    e.user_message()
                ))
            }
        }
    }

    /// The regime of the benchmark (or the equal-weight index) and every symbol's `rs_*`.
    fn relative_strength(&mut self, scored: &mut [Scored], warnings: &mut Vec<String>) -> Option<Regime> {
        let (name, bars) = match self.benchmark.clone() {
            Some((name, bars)) => (name, bars),
            None => {
                if let Some(why) = self.bench_warning.take() {
                    warnings.push(format!(
                        "{why}: relative strength and the regime use the {EQUAL_WEIGHT} instead"
                    ));
                }
                (EQUAL_WEIGHT.to_owned(), Arc::new(self.index.finish()?))
            }
        };
        let depth = scored.iter().map(|s| s.features.depth).max().unwrap_or(1);
        let returns: Vec<[f64; 4]> = crate::indicators::Snapshot::recent(&bars, depth)
            .iter()
            .map(|s| [s.return_21, s.return_63, s.return_126, s.return_252].map(|r| r.unwrap_or(f64::NAN)))
            .collect();
        for s in scored.iter_mut() {
            s.features.set_relative_strength(&returns);
            let f = &s.features;
            let r = &mut s.result;
            (r.rs_21, r.rs_63, r.rs_126, r.rs_252) = (
                f.value("rs_21"),
                f.value("rs_63"),
                f.value("rs_126"),
                f.value("rs_252"),
            );
        }
        Regime::of(&name, &bars)
    }

    /// Keeps the symbols the screen selects (all without one), counting the others.
    fn apply_screen(&mut self, scored: Vec<Scored>) -> Vec<Scored> {
        let Some(screen) = &self.screen else {
            return scored;
        };
        let signals: Vec<&'static str> = scored.iter().map(|s| s.result.signal.as_str()).collect();
        let rows: Vec<Row<'_>> = scored
            .iter()
            .zip(&signals)
            .map(|(s, signal)| Row {
                features: &s.features,
                text: [
                    s.result.symbol.as_str(),
                    &s.result.name,
                    &s.result.sector,
                    &s.result.industry,
                    signal,
                ],
            })
            .collect();
        let keep = screen.select(&rows);
        drop(rows);
        let before = scored.len();
        let kept: Vec<Scored> = scored
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(s, _)| s)
            .collect();
        self.filtered.screen = before - kept.len();
        kept
    }

    /// "as of the 2026-11-25 session (market closed today (Thanksgiving Day))".
    /// Why bars that loaded cannot be rated, if they cannot: too few of them, or a bar dated after today
    /// (a typo in a file would otherwise move the whole scan, its regime included, into the future).
    fn unusable(&self, bars: &Bars) -> Option<String> {
        if bars.len() < crate::score::MIN_BARS {
            return Some(format!(
                "only {} bars: a rating needs at least {} sessions of history",
                bars.len(),
                crate::score::MIN_BARS
            ));
        }
        match bars.date.last() {
            Some(last) if *last > self.today => Some(format!(
                "invalid data: a bar is dated {last}, after today ({} in New York); correct the date",
                self.today
            )),
            _ => None,
        }
    }

    /// One line on how fresh the results are; never "up to date" while some are stale.
    fn freshness(&self, target: NaiveDate, n_stale: usize, scanned: usize) -> String {
        let market = &self.deps.market;
        if n_stale > 0 {
            format!(
                "as of the {target} session, but {n_stale} of {scanned} results are stale (older bars; \
                 see the warnings)"
            )
        } else if target < market.calendar.market_date(market.now()) {
            format!("as of the {target} session ({})", market.why_no_newer_bar())
        } else {
            format!("as of the {target} session (up to date)")
        }
    }
}

/// Scores one symbol, turning a panic in the maths into an error naming it, so one bad symbol costs
/// exactly that symbol.
pub(super) fn score_caught(
    entry: &UniverseEntry,
    bars: &Bars,
    needs: &Needs,
) -> std::result::Result<Option<Scored>, String> {
    caught(|| score_with_features(entry, bars, needs))
}

/// Runs `f`, turning a panic into its message.
fn caught<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned())
    })
}

/// The skipped record for `entry`: what went wrong in words, then the detail (each said once).
fn skip(entry: &UniverseEntry, e: &Error) -> Skipped {
    let reason = match e {
        Error::InvalidData { subject, detail } => format!("invalid data in {subject}: {detail}"),
        // The message already names what was not found.
        Error::NotFound { .. } => e.user_message(),
        // "Connection issue — retrying…" is right while retrying, not once the retries are spent.
        Error::Unavailable { .. } | Error::Throttled { .. } => {
            format!("{}: {}", e.final_message(), e.detail())
        }
        other => format!("{}: {}", other.user_message(), other.detail()),
    };
    Skipped {
        symbol: entry.symbol.clone(),
        reason,
        category: e.category(),
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Removes repeated symbols, keeping the first.
fn dedup(universe: &mut Universe) {
    let mut seen = std::collections::HashSet::new();
    universe.retain(|e| seen.insert(e.symbol.clone()));
}

fn apply_universe_filters(universe: &mut Universe, filters: &Filters, counts: &mut FilterCounts) {
    if !filters.sectors.is_empty() {
        let before = universe.len();
        universe.retain(|e| filters.sectors.iter().any(|s| s.eq_ignore_ascii_case(&e.sector)));
        counts.sector = before - universe.len();
    }
    if let Some(max) = filters.max_symbols
        && universe.len() > max
    {
        counts.max_symbols = universe.len() - max;
        universe.truncate(max);
    }
}

/// Mean of close × volume over the last `n` bars (fewer when the history is shorter).
pub(crate) fn avg_dollar_volume(bars: &Bars, n: usize) -> Option<f64> {
    let len = bars.len();
    let start = len.saturating_sub(n);
    (len > 0).then(|| {
        bars.close[start..]
            .iter()
            .zip(&bars.volume[start..])
            .map(|(c, v)| c * v)
            .sum::<f64>()
            / (len - start) as f64
    })
}

#[cfg(test)]
mod caught_tests {
    use super::caught;

    #[test]
    fn a_panic_becomes_its_message_and_values_pass_through() {
        assert_eq!(caught(|| 7), Ok(7));
        let index = 9;
        let v: Vec<u8> = Vec::new();
        let e = caught(|| v[index]).unwrap_err();
        assert!(e.contains("index out of bounds"), "{e}");
        assert_eq!(caught(|| -> u8 { panic!("bad {}", 1) }), Err("bad 1".to_owned()));
    }
}
