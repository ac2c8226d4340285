// Technic dashboard: three views (scan, cache & performance, symbol) with hash routing.
// Plain JS, no dependencies; talks only to this server's /api/v1. Field names follow technic-http's dto.rs.
'use strict';

(function () {
  // ---------------------------------------------------------------- helpers
  const $ = (id) => document.getElementById(id);
  const SVG_NS = 'http://www.w3.org/2000/svg';

  function el(tag, attrs, children) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function svg(tag, attrs, children) {
    const e = document.createElementNS(SVG_NS, tag);
    setAttrs(e, attrs);
    append(e, children);
    return e;
  }

  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.setAttribute('class', v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, String(v));
    }
  }

  function append(e, children) {
    if (children === null || children === undefined) return;
    for (const c of Array.isArray(children) ? children : [children]) {
      if (c === null || c === undefined || c === false) continue;
      e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
    }
  }

  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }

  function show(e, visible) {
    e.classList.toggle('hidden', !visible);
  }

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const fmtInt = (n) => (isNum(n) ? String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',') : '—');
  const fmt = (n, d) => (isNum(n) ? n.toFixed(d === undefined ? 2 : d) : '—');
  const fmtPct = (ratio, d) => (isNum(ratio) ? (ratio * 100).toFixed(d === undefined ? 1 : d) + '%' : '—');
  const fmtMs = (ms) => (isNum(ms) ? (ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0)) + ' ms' : '—');

  function fmtBytes(b) {
    if (!isNum(b)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return (i === 0 ? b.toFixed(0) : b.toFixed(1)) + ' ' + units[i];
  }

  function fmtDuration(seconds) {
    if (!isNum(seconds)) return '—';
    const s = Math.max(0, Math.ceil(seconds));
    if (s < 60) return s + ' s';
    const m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + String(s % 60).padStart(2, '0') + ' s';
    return Math.floor(m / 60) + ' h ' + String(m % 60).padStart(2, '0') + ' min';
  }

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || ('HTTP ' + status));
      this.status = status;
      this.body = body || null;
    }
  }

  const ACTIONS = {
    retry: 'try again',
    skip: 'skip it',
    cancel: 'cancel',
    fix_config: 'check the server configuration',
    fix_request: 'correct the request',
    report: 'report a bug',
  };

  async function api(method, path, body) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, { status: 0, category: 'network', message: 'The server did not answer', detail: String(e), actions: ['retry'] });
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (!res.ok) {
      throw new ApiError(res.status, json && typeof json === 'object' ? json : { status: res.status, category: 'request', message: text || res.statusText, detail: '', actions: [] });
    }
    return json;
  }

  // Renders an error (ApiError or anything else) into `box`.
  function showError(box, err) {
    clear(box);
    if (!err) { show(box, false); return; }
    const b = err.body || {};
    const head = el('div', { class: 'error-title' }, [
      b.message || err.message || String(err),
      b.status || err.status ? el('span', { class: 'muted', text: '  (' + [b.category, b.status || err.status].filter(Boolean).join(' · ') + ')' }) : null,
    ]);
    append(box, head);
    if (b.detail && b.detail !== b.message) append(box, el('div', { class: 'error-detail', text: b.detail }));
    if (Array.isArray(b.actions) && b.actions.length) {
      append(box, el('div', { class: 'error-actions', text: 'What to do: ' + b.actions.map((a) => ACTIONS[a] || a).join(', ') }));
    }
    show(box, true);
  }

  // ---------------------------------------------------------------- routing
  const views = { scan: $('view-scan'), cache: $('view-cache'), symbol: $('view-symbol') };

  function route() {
    const hash = decodeURIComponent(location.hash.replace(/^#/, ''));
    let name = 'scan';
    let arg = null;
    if (hash.startsWith('cache')) name = 'cache';
    else if (hash.startsWith('symbol/')) { name = 'symbol'; arg = hash.slice('symbol/'.length).trim().toUpperCase(); }
    for (const [k, v] of Object.entries(views)) show(v, k === name);
    $('nav-scan').classList.toggle('active', name === 'scan' || name === 'symbol');
    $('nav-cache').classList.toggle('active', name === 'cache');
    if (name === 'cache') CacheView.start(); else CacheView.stop();
    if (name === 'symbol' && arg) SymbolView.load(arg);
  }

  // ---------------------------------------------------------------- scan view
  const STAGES = ['loading_universe', 'fetching_data', 'scanning', 'finalizing', 'complete'];

  const COLUMNS = [
    { key: 'rank', label: '#', num: true, get: (r) => r.rank },
    { key: 'symbol', label: 'Symbol', get: (r) => r.symbol },
    { key: 'name', label: 'Name', get: (r) => r.name, cls: 'name' },
    { key: 'sector', label: 'Sector', get: (r) => r.sector },
    { key: 'close', label: 'Close', num: true, get: (r) => r.close, fmt: (v) => fmt(v, 2) },
    { key: 'tech_rating', label: 'Rating', num: true, get: (r) => r.tech_rating, fmt: (v) => fmt(v, 1) },
    { key: 'signal', label: 'Signal', get: (r) => r.signal, signal: true },
    { key: 'rsi_14', label: 'RSI 14', num: true, get: (r) => ind(r, 'rsi_14'), fmt: (v) => fmt(v, 1) },
    { key: 'adx_14', label: 'ADX 14', num: true, get: (r) => ind(r, 'adx_14'), fmt: (v) => fmt(v, 1) },
    { key: 'macd_hist', label: 'MACD hist', num: true, get: (r) => ind(r, 'macd_hist'), fmt: (v) => fmt(v, 3) },
    { key: 'return_21', label: '1M return', num: true, get: (r) => ind(r, 'return_21'), fmt: (v) => fmtPct(v, 1), sign: true },
    { key: 'return_63', label: '3M return', num: true, get: (r) => ind(r, 'return_63'), fmt: (v) => fmtPct(v, 1), sign: true },
    { key: 'volume_ratio_20', label: 'Vol ratio', num: true, get: (r) => ind(r, 'volume_ratio_20'), fmt: (v) => fmt(v, 2) },
  ];

  function ind(r, name) {
    const v = r.indicators ? r.indicators[name] : null;
    return isNum(v) ? v : null;
  }

  function signalClass(s) {
    const k = String(s || '').toLowerCase();
    if (k.includes('strong')) return 'sig strong-long';
    if (k.includes('long')) return 'sig long';
    if (k.includes('avoid')) return 'sig avoid';
    return 'sig neutral';
  }

  const ScanView = {
    scanId: null,
    source: null,
    etaDeadline: null,
    etaTimer: null,
    results: [],
    sortKey: 'rank',
    sortDesc: false,

    init() {
      $('scan-form').addEventListener('submit', (e) => { e.preventDefault(); this.start(); });
      $('cancel-button').addEventListener('click', () => this.cancel());
      this.renderHeader();
      this.etaTimer = setInterval(() => this.tickEta(), 250);
      this.resume();
    },

    // Shows the most recent scan after a reload: follows it when running, loads its results when done.
    async resume() {
      try {
        const recent = await api('GET', '/api/v1/scans?limit=1');
        if (Array.isArray(recent) && recent.length && !this.scanId) {
          const s = recent[0];
          this.scanId = s.id;
          this.renderStatus(s);
          if (s.state === 'running') this.follow(s.id);
          else this.finish(s);
        }
      } catch (_) { /* nothing to resume */ }
    },

    body() {
      const symbols = $('f-symbols').value.split(/[\s,;]+/).map((s) => s.trim().toUpperCase()).filter(Boolean);
      const sector = $('f-sector').value.trim();
      const minPrice = $('f-min-price').value.trim();
      const top = $('f-top').value.trim();
      const body = { filters: {} };
      if (symbols.length) body.symbols = symbols;
      if (sector) body.filters.sectors = sector.split(',').map((s) => s.trim()).filter(Boolean);
      if (minPrice !== '') body.filters.min_price = Number(minPrice);
      if (top !== '') body.top = Math.max(0, Math.floor(Number(top)));
      return body;
    },

    async start() {
      const btn = $('start-button');
      showError($('scan-error'), null);
      btn.disabled = true;
      btn.classList.add('busy');
      btn.textContent = 'Starting…';
      this.stopFollowing();
      show($('results-card'), false);
      try {
        const created = await api('POST', '/api/v1/scans', this.body());
        this.scanId = created.id;
        this.results = [];
        this.resetProgress();
        this.follow(created.id, created.events_url);
      } catch (e) {
        showError($('scan-error'), e);
        this.setRunning(false);
      } finally {
        btn.classList.remove('busy');
        btn.textContent = 'Start scan';
      }
    },

    follow(id, url) {
      this.stopFollowing();
      this.setRunning(true);
      const es = new EventSource(url || '/api/v1/scans/' + encodeURIComponent(id) + '/events');
      this.source = es;
      const onStatus = (ev) => {
        let s;
        try { s = JSON.parse(ev.data); } catch (_) { return; }
        if (s.id !== this.scanId) return;
        this.renderStatus(s);
        if (s.state !== 'running') {
          this.stopFollowing();
          this.finish(s);
        }
      };
      for (const name of ['progress', 'complete', 'cancelled', 'failed']) es.addEventListener(name, onStatus);
      es.onerror = () => {
        // The browser reconnects by itself; the server answers with the current status first.
        if (this.source === es) $('progress-message').textContent = 'Connection lost; reconnecting…';
      };
    },

    stopFollowing() {
      if (this.source) { this.source.close(); this.source = null; }
    },

    async cancel() {
      if (!this.scanId) return;
      const btn = $('cancel-button');
      btn.disabled = true;
      btn.textContent = 'Cancelling…';
      try {
        const s = await api('POST', '/api/v1/scans/' + encodeURIComponent(this.scanId) + '/cancel');
        this.renderStatus(s);
      } catch (e) {
        showError($('scan-error'), e);
      } finally {
        btn.textContent = 'Cancel';
      }
    },

    setRunning(running) {
      $('start-button').disabled = running;
      $('cancel-button').disabled = !running;
    },

    resetProgress() {
      show($('progress-card'), true);
      $('progress-bar').style.width = '0%';
      $('progress-percent').textContent = '0%';
      $('progress-stage-percent').textContent = '0%';
      $('progress-count').textContent = '0 / 0';
      $('progress-stage').textContent = 'Starting…';
      $('progress-message').textContent = '';
      $('eta').textContent = '—';
      this.etaDeadline = null;
    },

    renderStatus(s) {
      show($('progress-card'), true);
      const pct = isNum(s.overall_percent) ? Math.max(0, Math.min(100, s.overall_percent)) : 0;
      const bar = $('progress-bar');
      bar.style.width = pct.toFixed(1) + '%';
      bar.className = 'progress-fill ' + s.state;
      bar.parentElement.setAttribute('aria-valuenow', pct.toFixed(0));
      $('progress-percent').textContent = (pct >= 100 || pct === 0 ? pct.toFixed(0) : pct.toFixed(1)) + '%';
      $('progress-stage-percent').textContent = fmt(s.stage_percent, 0) + '%';
      $('progress-count').textContent = fmtInt(s.processed) + ' / ' + fmtInt(s.total);
      $('progress-stage').textContent = s.stage_label || s.stage;
      $('progress-message').textContent = s.message || '';
      const pill = $('progress-state');
      pill.textContent = s.state;
      pill.className = 'pill ' + s.state;
      if (s.state === 'running' && isNum(s.eta_seconds)) this.etaDeadline = Date.now() + s.eta_seconds * 1000;
      else if (s.state !== 'running') this.etaDeadline = null;
      if (s.state !== 'running') $('eta').textContent = s.state === 'complete' ? 'done' : '—';
      else this.tickEta();
      // Steps: done before the current stage, active at it.
      const idx = STAGES.indexOf(s.stage);
      for (const li of $('stage-steps').children) {
        const i = STAGES.indexOf(li.dataset.stage);
        li.className = s.state === 'complete' || (idx >= 0 && i < idx) ? 'done' : i === idx ? 'active' : '';
        if (s.state !== 'running' && s.state !== 'complete' && i === idx) li.className = 'stopped';
      }
    },

    tickEta() {
      if (this.etaDeadline === null) return;
      $('eta').textContent = fmtDuration((this.etaDeadline - Date.now()) / 1000);
    },

    async finish(s) {
      this.setRunning(false);
      if (s.state === 'failed') {
        showError($('scan-error'), s.error ? { body: s.error, message: s.error.message } : new Error('The scan failed'));
        return;
      }
      if (s.state === 'cancelled') $('progress-message').textContent = 'Scan cancelled; partial results (if any) below.';
      show($('results-card'), true);
      show($('results-loading'), true);
      try {
        const res = await api('GET', '/api/v1/scans/' + encodeURIComponent(s.id) + '/results?limit=500');
        if (s.id !== this.scanId) return;
        this.results = res.results || [];
        show($('demo-banner'), !!res.demo || !$('demo-banner').classList.contains('hidden'));
        this.renderSummary(res, s);
        this.renderSkipped(res.skipped || []);
        this.renderRows();
      } catch (e) {
        if (s.state === 'cancelled' && e.status === 409) show($('results-card'), false);
        else showError($('scan-error'), e);
      } finally {
        show($('results-loading'), false);
      }
    },

    renderSummary(res, s) {
      const parts = [fmtInt(res.total) + ' ranked'];
      if (res.total > res.results.length) parts.push('showing ' + fmtInt(res.results.length));
      if (s.counts) parts.push(fmtInt(s.counts.scanned) + ' scanned of ' + fmtInt(s.counts.universe_size), fmtInt(s.counts.filtered) + ' filtered out');
      if (res.timing) parts.push('in ' + fmtMs(res.timing.total_ms));
      if (res.cache) parts.push('cache hit rate ' + fmtPct(res.cache.hit_rate));
      $('results-summary').textContent = parts.join(' · ');
    },

    renderHeader() {
      const tr = $('results-table').tHead.rows[0];
      clear(tr);
      for (const c of COLUMNS) {
        const arrow = this.sortKey === c.key ? (this.sortDesc ? ' ▼' : ' ▲') : '';
        const th = el('th', { class: (c.num ? 'num ' : '') + 'sortable', 'data-key': c.key, title: 'Sort by ' + c.label, text: c.label + arrow });
        th.addEventListener('click', () => this.sortBy(c.key));
        tr.appendChild(th);
      }
    },

    sortBy(key) {
      if (this.sortKey === key) this.sortDesc = !this.sortDesc;
      else {
        this.sortKey = key;
        const col = COLUMNS.find((c) => c.key === key);
        this.sortDesc = !!(col && col.num && key !== 'rank');
      }
      this.renderHeader();
      this.renderRows();
    },

    renderRows() {
      const col = COLUMNS.find((c) => c.key === this.sortKey) || COLUMNS[0];
      const dir = this.sortDesc ? -1 : 1;
      const rows = this.results.slice().sort((a, b) => {
        const x = col.get(a);
        const y = col.get(b);
        if (x === null || x === undefined) return y === null || y === undefined ? a.rank - b.rank : 1;
        if (y === null || y === undefined) return -1;
        const c = typeof x === 'number' ? x - y : String(x).localeCompare(String(y));
        return c !== 0 ? c * dir : a.rank - b.rank;
      });
      const tbody = $('results-table').tBodies[0];
      clear(tbody);
      const frag = document.createDocumentFragment();
      for (const r of rows) {
        const tr = el('tr', { 'data-symbol': r.symbol });
        for (const c of COLUMNS) {
          const v = c.get(r);
          let content = c.fmt ? c.fmt(v) : v === null || v === undefined || v === '' ? '—' : String(v);
          let cls = c.num ? 'num' : '';
          if (c.key === 'symbol') content = el('a', { href: '#symbol/' + encodeURIComponent(r.symbol), text: r.symbol });
          if (c.signal) content = el('span', { class: signalClass(v), text: v });
          if (c.sign && isNum(v)) cls += v > 0 ? ' pos' : v < 0 ? ' neg' : '';
          if (c.cls) cls += ' ' + c.cls;
          tr.appendChild(el('td', { class: cls.trim() || null }, content));
        }
        frag.appendChild(tr);
      }
      tbody.appendChild(frag);
      if (!rows.length) tbody.appendChild(el('tr', null, el('td', { colspan: COLUMNS.length, class: 'muted', text: 'No results' })));
    },

    renderSkipped(skipped) {
      const box = $('skipped-box');
      show(box, skipped.length > 0);
      $('skipped-summary').textContent = 'Skipped symbols (' + fmtInt(skipped.length) + ')';
      const tbody = $('skipped-table').tBodies[0];
      clear(tbody);
      for (const s of skipped.slice(0, 1000)) {
        tbody.appendChild(el('tr', null, [el('td', { text: s.symbol }), el('td', { text: s.category }), el('td', { text: s.reason })]));
      }
    },
  };

  // ---------------------------------------------------------------- cache view
  const CacheView = {
    timer: null,
    inFlight: false,

    start() {
      if (this.timer) return;
      this.refresh();
      this.timer = setInterval(() => this.refresh(), 2000);
    },

    stop() {
      if (this.timer) { clearInterval(this.timer); this.timer = null; }
    },

    async refresh() {
      if (this.inFlight) return;
      this.inFlight = true;
      try {
        const [cur, hist, warm] = await Promise.all([
          api('GET', '/api/v1/metrics/current'),
          api('GET', '/api/v1/metrics/history?minutes=60'),
          api('GET', '/api/v1/warmer'),
        ]);
        showError($('cache-error'), null);
        this.render(cur, hist);
        this.renderWarmer(warm);
        $('cache-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      } catch (e) {
        showError($('cache-error'), e);
      } finally {
        this.inFlight = false;
      }
    },

    renderWarmer(w) {
      const state = !w.enabled ? 'disabled' : w.paused ? 'paused' : w.running ? 'running' : 'stopped';
      $('warmer-state').textContent = state + (w.pause_reason ? ' — ' + w.pause_reason : '');
      $('warmer-last-run').textContent = w.last_run ? new Date(w.last_run).toLocaleTimeString() : '—';
      $('warmer-next-run').textContent = w.next_run ? new Date(w.next_run).toLocaleTimeString() : '—';
      $('warmer-warmed').textContent = fmtInt(w.total_warmed);
      $('warmer-failures').textContent = fmtInt(w.total_failures);
      $('warmer-top-n').textContent = fmtInt(w.top_n);
      const ul = $('warmer-popular');
      clear(ul);
      const popular = Array.isArray(w.popular) ? w.popular : [];
      if (!popular.length) ul.appendChild(el('li', { class: 'muted', text: 'No symbol lookups yet' }));
      for (const p of popular.slice(0, 10)) {
        ul.appendChild(el('li', {}, [el('a', { href: '#symbol/' + encodeURIComponent(p.symbol), text: p.symbol }), ' ' + fmt(p.score, 1)]));
      }
    },

    render(cur, hist) {
      const c = cur.cache || {};
      $('hit-rate-value').textContent = fmtPct(c.hit_rate, 1);
      drawGauge($('hit-rate-gauge'), c.hit_rate);
      $('cache-requests').textContent = fmtInt(c.requests);
      $('cache-entries').textContent = fmtInt(c.entries);
      $('cache-bytes').textContent = fmtBytes(c.bytes);
      $('cache-ttl').textContent = fmtDuration(c.ttl_seconds);
      $('cache-hits').textContent = fmtInt(c.hits);
      $('cache-misses').textContent = fmtInt(c.misses);
      const total = (c.hits || 0) + (c.misses || 0);
      $('hits-bar').style.width = (total ? (100 * c.hits) / total : 0).toFixed(2) + '%';
      $('misses-bar').style.width = (total ? (100 * c.misses) / total : 0).toFixed(2) + '%';

      const rt = cur.response_times || {};
      drawResponseBars($('response-chart'), rt.avg_cached_ms, rt.avg_uncached_ms);
      $('speedup').textContent = isNum(rt.speedup) && rt.speedup > 0 ? rt.speedup.toFixed(1) + '×' : '—';
      $('p50').textContent = fmtMs(rt.p50_ms);
      $('p95').textContent = fmtMs(rt.p95_ms);
      $('p99').textContent = fmtMs(rt.p99_ms);
      $('rpm').textContent = fmt(cur.requests_per_minute, 1);
      $('error-rate').textContent = fmtPct(cur.error_rate, 2);
      $('scans-running').textContent = fmtInt(cur.scans_running);

      const p = cur.provider_calls || {};
      $('pool-active').textContent = fmtInt(p.in_flight);
      $('pool-peak').textContent = fmtInt(p.peak_in_flight);
      $('pool-requests').textContent = fmtInt(p.total);
      $('pool-active-bar').style.width = (p.peak_in_flight ? (100 * (p.in_flight || 0)) / p.peak_in_flight : 0).toFixed(2) + '%';

      const ul = $('alerts');
      clear(ul);
      const alerts = Array.isArray(cur.alerts) ? cur.alerts : [];
      if (!alerts.length) ul.appendChild(el('li', { class: 'muted', text: 'No alerts' }));
      for (const a of alerts) {
        ul.appendChild(el('li', { class: 'alert ' + (a.severity === 'error' ? 'sev-error' : 'sev-warning') }, [
          el('strong', { text: a.rule }),
          ' — ' + a.message + ' ',
          el('span', { class: 'muted small', text: '(value ' + fmt(a.value, 3) + ', threshold ' + fmt(a.threshold, 3) + ', since ' + new Date(a.since).toLocaleTimeString() + ')' }),
        ]));
      }

      drawHistory($('hit-rate-chart'), (hist && hist.samples) || []);
    },
  };

  function arcPath(cx, cy, r, a0, a1) {
    // Angles in radians, 0 = pointing left (start of the gauge), PI = right.
    const p = (a) => [cx - r * Math.cos(a), cy - r * Math.sin(a)];
    const [x0, y0] = p(a0);
    const [x1, y1] = p(a1);
    return 'M' + x0.toFixed(2) + ' ' + y0.toFixed(2) + ' A' + r + ' ' + r + ' 0 ' + (a1 - a0 > Math.PI ? 1 : 0) + ' 1 ' + x1.toFixed(2) + ' ' + y1.toFixed(2);
  }

  function drawGauge(node, rate) {
    clear(node);
    const v = isNum(rate) ? Math.max(0, Math.min(1, rate)) : 0;
    node.appendChild(svg('path', { d: arcPath(100, 100, 80, 0, Math.PI), class: 'gauge-track' }));
    if (v > 0) {
      const cls = v >= 0.9 ? 'gauge-good' : v >= 0.6 ? 'gauge-ok' : 'gauge-low';
      node.appendChild(svg('path', { d: arcPath(100, 100, 80, 0, Math.max(0.01, v * Math.PI)), class: 'gauge-value ' + cls }));
    }
    node.appendChild(svg('text', { x: 20, y: 116, class: 'axis', 'text-anchor': 'middle', text: '0%' }));
    node.appendChild(svg('text', { x: 180, y: 116, class: 'axis', 'text-anchor': 'middle', text: '100%' }));
  }

  function drawResponseBars(node, cached, uncached) {
    clear(node);
    const items = [
      { label: 'cached', v: cached, cls: 'bar-cached' },
      { label: 'uncached', v: uncached, cls: 'bar-uncached' },
    ];
    const max = Math.max(isNum(cached) ? cached : 0, isNum(uncached) ? uncached : 0) || 1;
    const x0 = 70;
    const w = 200;
    items.forEach((it, i) => {
      const y = 20 + i * 60;
      const len = isNum(it.v) && it.v > 0 ? Math.max(2, (w * it.v) / max) : 0;
      node.appendChild(svg('text', { x: x0 - 8, y: y + 22, class: 'axis', 'text-anchor': 'end', text: it.label }));
      node.appendChild(svg('rect', { x: x0, y, width: w, height: 34, rx: 4, class: 'bar-track' }));
      if (len) node.appendChild(svg('rect', { x: x0, y, width: len.toFixed(2), height: 34, rx: 4, class: it.cls }));
      node.appendChild(svg('text', { x: x0 + 8, y: y + 22, class: 'bar-label', text: isNum(it.v) && it.v > 0 ? fmtMs(it.v) : 'no data' }));
    });
  }

  function drawHistory(node, samples) {
    clear(node);
    const W = 1200, H = 200, L = 44, R = 10, T = 10, B = 26;
    const pw = W - L - R, ph = H - T - B;
    for (const g of [0, 0.25, 0.5, 0.75, 1]) {
      const y = T + ph * (1 - g);
      node.appendChild(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'gridline' }));
      node.appendChild(svg('text', { x: L - 6, y: y + 4, class: 'axis', 'text-anchor': 'end', text: (g * 100).toFixed(0) + '%' }));
    }
    const pts = samples.filter((s) => isNum(s.hit_rate)).map((s) => ({ t: Date.parse(s.timestamp), v: s.hit_rate }));
    if (!pts.length) {
      node.appendChild(svg('text', { x: L + pw / 2, y: T + ph / 2, class: 'axis', 'text-anchor': 'middle', text: 'Waiting for samples…' }));
      return;
    }
    const t0 = pts[0].t;
    const t1 = pts[pts.length - 1].t;
    const span = Math.max(1, t1 - t0);
    const xy = pts.map((p) => [pts.length === 1 ? L + pw : L + (pw * (p.t - t0)) / span, T + ph * (1 - Math.max(0, Math.min(1, p.v)))]);
    if (xy.length === 1) xy.unshift([L, xy[0][1]]);
    const line = xy.map((p, i) => (i ? 'L' : 'M') + p[0].toFixed(1) + ' ' + p[1].toFixed(1)).join(' ');
    const area = line + ' L' + xy[xy.length - 1][0].toFixed(1) + ' ' + (T + ph) + ' L' + xy[0][0].toFixed(1) + ' ' + (T + ph) + ' Z';
    node.appendChild(svg('path', { d: area, class: 'area' }));
    node.appendChild(svg('path', { d: line, class: 'line' }));
    const last = xy[xy.length - 1];
    node.appendChild(svg('circle', { cx: last[0], cy: last[1], r: 3.5, class: 'dot' }));
    const timeLabel = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    node.appendChild(svg('text', { x: L, y: H - 6, class: 'axis', text: timeLabel(t0) }));
    node.appendChild(svg('text', { x: W - R, y: H - 6, class: 'axis', 'text-anchor': 'end', text: timeLabel(t1) + ' · ' + pts.length + ' samples' }));
  }

  // ---------------------------------------------------------------- symbol view
  function sma(values, n) {
    const out = new Array(values.length).fill(null);
    let sum = 0;
    for (let i = 0; i < values.length; i++) {
      sum += values[i];
      if (i >= n) sum -= values[i - n];
      if (i >= n - 1) out[i] = sum / n;
    }
    return out;
  }

  function bollinger(values, n, k) {
    const mid = sma(values, n);
    const up = new Array(values.length).fill(null);
    const lo = new Array(values.length).fill(null);
    for (let i = n - 1; i < values.length; i++) {
      let ss = 0;
      for (let j = i - n + 1; j <= i; j++) ss += (values[j] - mid[i]) ** 2;
      const sd = Math.sqrt(ss / n); // population standard deviation
      up[i] = mid[i] + k * sd;
      lo[i] = mid[i] - k * sd;
    }
    return { mid, up, lo };
  }

  // Wilder's RSI: seeded with the mean gain and loss of the first n changes (first value at index n).
  function rsi(values, n) {
    const out = new Array(values.length).fill(null);
    if (values.length <= n) return out;
    let gain = 0, loss = 0;
    for (let i = 1; i <= n; i++) {
      const d = values[i] - values[i - 1];
      if (d > 0) gain += d; else loss -= d;
    }
    gain /= n; loss /= n;
    const val = () => (gain + loss === 0 ? 0 : (100 * gain) / (gain + loss));
    out[n] = val();
    for (let i = n + 1; i < values.length; i++) {
      const d = values[i] - values[i - 1];
      gain = (gain * (n - 1) + (d > 0 ? d : 0)) / n;
      loss = (loss * (n - 1) + (d < 0 ? -d : 0)) / n;
      out[i] = val();
    }
    return out;
  }

  function linePath(series, xOf, yOf) {
    let d = '';
    let pen = false;
    series.forEach((v, i) => {
      if (!isNum(v)) { pen = false; return; }
      d += (pen ? 'L' : 'M') + xOf(i).toFixed(1) + ' ' + yOf(v).toFixed(1) + ' ';
      pen = true;
    });
    return d.trim();
  }

  const SymbolView = {
    current: null,

    async load(sym) {
      this.current = sym;
      $('symbol-title').textContent = sym;
      showError($('symbol-error'), null);
      show($('symbol-loading'), true);
      clear($('symbol-summary'));
      clear($('price-chart'));
      clear($('rsi-chart'));
      try {
        const enc = encodeURIComponent(sym);
        const [snap, bars] = await Promise.all([api('GET', '/api/v1/symbols/' + enc), api('GET', '/api/v1/symbols/' + enc + '/bars')]);
        if (this.current !== sym) return;
        $('symbol-title').textContent = snap.symbol + (snap.name ? ' — ' + snap.name : '');
        $('symbol-source').textContent = (snap.cached ? 'served from cache' : 'loaded from the provider') + ' · ' + fmtInt(bars.bars ? bars.bars.length : 0) + ' bars';
        if (snap.demo) show($('demo-banner'), true);
        this.renderSummary(snap);
        this.renderCharts(bars.bars || []);
      } catch (e) {
        if (this.current === sym) showError($('symbol-error'), e);
      } finally {
        if (this.current === sym) show($('symbol-loading'), false);
      }
    },

    renderSummary(s) {
      const box = $('symbol-summary');
      const i = s.indicators || {};
      const item = (label, value, cls) => el('div', { class: 'kv' }, [el('div', { class: 'label', text: label }), el('div', { class: 'value ' + (cls || ''), text: value })]);
      append(box, [
        item('Close', fmt(s.close, 2)),
        item('Date', s.date),
        item('Sector', s.sector || '—'),
        item('Rating', fmt(s.tech_rating, 1)),
        el('div', { class: 'kv' }, [el('div', { class: 'label', text: 'Signal' }), el('div', { class: 'value' }, el('span', { class: signalClass(s.signal), text: s.signal }))]),
        item('RSI 14', fmt(i.rsi_14, 1)),
        item('ADX 14', fmt(i.adx_14, 1)),
        item('MACD hist', fmt(i.macd_hist, 3)),
        item('1M return', fmtPct(i.return_21, 1), isNum(i.return_21) ? (i.return_21 >= 0 ? 'pos' : 'neg') : ''),
      ]);
    },

    renderCharts(bars) {
      const price = $('price-chart');
      const rsiNode = $('rsi-chart');
      clear(price);
      clear(rsiNode);
      if (!bars.length) {
        price.appendChild(svg('text', { x: 600, y: 160, class: 'axis', 'text-anchor': 'middle', text: 'No bars' }));
        return;
      }
      const closes = bars.map((b) => b.close);
      const s20 = sma(closes, 20), s50 = sma(closes, 50), s200 = sma(closes, 200);
      const bb = bollinger(closes, 20, 2);
      const r = rsi(closes, 14);
      // Show about the last year; indicators use the whole history.
      const from = Math.max(0, bars.length - 252);
      const win = (a) => a.slice(from);
      const n = bars.length - from;
      const W = 1200, L = 56, R = 10;
      const pw = W - L - R;
      const xOf = (i) => L + (n <= 1 ? pw : (pw * i) / (n - 1));

      // Price panel.
      const H = 320, T = 10, B = 24, ph = H - T - B;
      const visible = [win(closes), win(s20), win(s50), win(s200), win(bb.up), win(bb.lo)].flat().filter(isNum);
      let lo = Math.min(...visible), hi = Math.max(...visible);
      if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
      const pad = (hi - lo) * 0.05;
      lo -= pad; hi += pad;
      const yOf = (v) => T + ph * (1 - (v - lo) / (hi - lo));
      for (let g = 0; g <= 4; g++) {
        const v = lo + ((hi - lo) * g) / 4;
        const y = yOf(v);
        price.appendChild(svg('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'gridline' }));
        price.appendChild(svg('text', { x: L - 6, y: y + 4, class: 'axis', 'text-anchor': 'end', text: v.toFixed(v < 10 ? 2 : 0) }));
      }
      // Bollinger band as a filled area between upper and lower.
      const up = win(bb.up), dn = win(bb.lo);
      const idx = up.map((v, i) => i).filter((i) => isNum(up[i]) && isNum(dn[i]));
      if (idx.length > 1) {
        const d = idx.map((i, k) => (k ? 'L' : 'M') + xOf(i).toFixed(1) + ' ' + yOf(up[i]).toFixed(1)).join(' ') + ' ' +
          idx.slice().reverse().map((i) => 'L' + xOf(i).toFixed(1) + ' ' + yOf(dn[i]).toFixed(1)).join(' ') + ' Z';
        price.appendChild(svg('path', { d, class: 'bb-area' }));
        price.appendChild(svg('path', { d: linePath(up, xOf, yOf), class: 'bb-line' }));
        price.appendChild(svg('path', { d: linePath(dn, xOf, yOf), class: 'bb-line' }));
      }
      for (const [series, cls] of [[s200, 'sma200'], [s50, 'sma50'], [s20, 'sma20'], [closes, 'close']]) {
        const d = linePath(win(series), xOf, yOf);
        if (d) price.appendChild(svg('path', { d, class: 'series ' + cls }));
      }
      const dates = win(bars.map((b) => b.date));
      price.appendChild(svg('text', { x: L, y: H - 6, class: 'axis', text: dates[0] }));
      price.appendChild(svg('text', { x: W - R, y: H - 6, class: 'axis', 'text-anchor': 'end', text: dates[dates.length - 1] }));

      // RSI panel.
      const RH = 120, RT = 8, RB = 8, rph = RH - RT - RB;
      const ry = (v) => RT + rph * (1 - v / 100);
      rsiNode.appendChild(svg('rect', { x: L, y: ry(70), width: pw, height: ry(30) - ry(70), class: 'rsi-band' }));
      for (const g of [30, 50, 70]) {
        rsiNode.appendChild(svg('line', { x1: L, x2: W - R, y1: ry(g), y2: ry(g), class: g === 50 ? 'gridline' : 'gridline strong' }));
        rsiNode.appendChild(svg('text', { x: L - 6, y: ry(g) + 4, class: 'axis', 'text-anchor': 'end', text: String(g) }));
      }
      const rd = linePath(win(r), xOf, ry);
      if (rd) rsiNode.appendChild(svg('path', { d: rd, class: 'series rsi' }));
    },
  };

  // ---------------------------------------------------------------- start
  async function loadHealth() {
    try {
      const h = await api('GET', '/healthz');
      $('server-info').textContent = 'provider ' + h.provider + ' · v' + h.version;
      if (h.demo) show($('demo-banner'), true);
    } catch (_) {
      $('server-info').textContent = 'server unreachable';
    }
  }

  ScanView.init();
  loadHealth();
  window.addEventListener('hashchange', route);
  route();
})();
