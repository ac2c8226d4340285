// Technic dashboard: screener, symbol chart, backtest, cache & performance, with hash routing.
// Plain JS plus the vendored Lightweight Charts; talks only to this server's API through URLs relative to
// the page's <base href> (where the router is mounted). Field names follow technic-http's dto.rs.
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
  const fmtSignedPct = (ratio, d) => (isNum(ratio) ? (ratio > 0 ? '+' : '') + (ratio * 100).toFixed(d === undefined ? 1 : d) + '%' : '—');
  const fmtMs = (ms) => (isNum(ms) ? (ms < 1 ? ms.toFixed(3) : ms < 100 ? ms.toFixed(2) : ms.toFixed(0)) + ' ms' : '—');

  function fmtBig(n) {
    if (!isNum(n)) return '—';
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(2) + 'B';
    if (a >= 1e6) return (n / 1e6).toFixed(2) + 'M';
    if (a >= 1e3) return (n / 1e3).toFixed(1) + 'K';
    return n.toFixed(0);
  }

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

  // The admin token of a server started with one: every state change needs it. Asked for on the first
  // 401, kept in sessionStorage (this tab only, gone when it closes) and sent on state changes only.
  const AdminToken = {
    key: 'technic.adminToken',
    pending: null,
    refused: false,
    get() {
      try { return sessionStorage.getItem(this.key) || ''; } catch (_) { return ''; }
    },
    set(token) {
      try {
        if (token) sessionStorage.setItem(this.key, token);
        else sessionStorage.removeItem(this.key);
      } catch (_) { /* storage disabled: asked again next time */ }
    },
    // One modal form at a time; resolves with the token typed, or '' when dismissed.
    ask(wasWrong) {
      if (this.pending) return this.pending;
      this.pending = new Promise((resolve) => {
        const input = el('input', { id: 'admin-token-input', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'admin-token-help' });
        const form = el('form', { method: 'dialog', class: 'admin-token-form' }, [
          el('h2', { id: 'admin-token-title', text: 'Admin token needed' }),
          el('p', { id: 'admin-token-help', class: 'muted small', text: (wasWrong ? 'That token was refused. ' : '')
            + 'This server was started with an admin token: starting, cancelling or saving anything needs it. It is kept for this tab only.' }),
          el('label', { for: 'admin-token-input' }, ['Admin token', input]),
          el('div', { class: 'form-actions' }, [
            el('button', { id: 'admin-token-submit', type: 'submit', class: 'primary', value: 'ok', text: 'Continue' }),
            el('button', { id: 'admin-token-cancel', type: 'submit', value: 'cancel', formnovalidate: true, text: 'Cancel' }),
          ]),
        ]);
        const dialog = el('dialog', { id: 'admin-token-dialog', class: 'card', 'aria-labelledby': 'admin-token-title' }, form);
        dialog.addEventListener('close', () => {
          const token = dialog.returnValue === 'ok' ? input.value.trim() : '';
          dialog.remove();
          resolve(token);
        });
        document.body.appendChild(dialog);
        dialog.showModal();
        input.focus();
      }).finally(() => { this.pending = null; });
      return this.pending;
    },
  };

  const CHANGES_STATE = ['POST', 'PUT', 'PATCH', 'DELETE'];

  // Paths are relative ("api/v1/…"): they resolve against <base href>, where the router is mounted.
  async function api(method, path, body, retried) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const changes = CHANGES_STATE.includes(method);
    const token = changes ? AdminToken.get() : '';
    if (token) init.headers.Authorization = 'Bearer ' + token;
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      Health.down();
      throw new ApiError(0, { status: 0, category: 'network', message: 'The server did not answer', detail: String(e), actions: ['retry'] });
    }
    Health.up();
    if (res.status === 401 && changes && !retried) {
      // Ask once, then try the same request again with the token.
      AdminToken.set('');
      const typed = await AdminToken.ask(AdminToken.refused || Boolean(token));
      if (typed) {
        AdminToken.set(typed);
        return api(method, path, body, true);
      }
    } else if (res.status === 401 && changes) {
      // The token typed was refused: forget it, and say so when asking next time.
      AdminToken.set('');
      AdminToken.refused = true;
    } else if (token) {
      AdminToken.refused = false;
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (!res.ok) {
      throw new ApiError(res.status, json && typeof json === 'object' ? json : { status: res.status, category: 'request', message: text || res.statusText, detail: '', actions: [] });
    }
    return json;
  }

  // Renders an error (ApiError or anything else) into `box`, each sentence once.
  function showError(box, err) {
    clear(box);
    if (!err) { show(box, false); return; }
    const b = err.body || {};
    const message = b.message || err.message || String(err);
    append(box, el('div', { class: 'error-title' }, [
      message,
      b.status || err.status ? el('span', { class: 'muted', text: '  (' + [b.category, b.status || err.status].filter(Boolean).join(' · ') + ')' }) : null,
    ]));
    // The detail only when it says more than the message (often it is the message again, lower-cased).
    if (b.detail && !message.toLowerCase().includes(String(b.detail).toLowerCase())) append(box, el('div', { class: 'error-detail', text: b.detail }));
    if (Array.isArray(b.actions) && b.actions.length) {
      append(box, el('div', { class: 'error-actions', text: 'What to do: ' + b.actions.map((a) => ACTIONS[a] || a).join(', ') }));
    }
    show(box, true);
  }

  // The server-down notice: shown when a request fails to connect, cleared by the next answer.
  const Health = {
    timer: null,
    down() {
      show($('offline-banner'), true);
      if (!this.timer) this.timer = setInterval(() => loadHealth(), 3000);
    },
    up() {
      show($('offline-banner'), false);
      if (this.timer) { clearInterval(this.timer); this.timer = null; }
    },
  };

  // ---------------------------------------------------------------- watchlist (this browser)
  const Watchlist = {
    key: 'technic.watchlist',
    all() {
      try { return JSON.parse(localStorage.getItem(this.key) || '[]').filter((s) => typeof s === 'string'); } catch (_) { return []; }
    },
    has(s) { return this.all().includes(s); },
    toggle(s) {
      const list = this.all();
      const i = list.indexOf(s);
      if (i >= 0) list.splice(i, 1); else list.push(s);
      try { localStorage.setItem(this.key, JSON.stringify(list)); } catch (_) { /* private mode */ }
      this.render();
      return i < 0;
    },
    render() {
      const n = this.all().length;
      $('watch-count').textContent = n ? '(' + n + ')' : '(empty: star symbols in the results)';
    },
  };

  // ---------------------------------------------------------------- routing
  const views = { scan: $('view-scan'), backtest: $('view-backtest'), cache: $('view-cache'), symbol: $('view-symbol') };

  function parseHash() {
    const raw = location.hash.replace(/^#/, '');
    const q = raw.indexOf('?');
    const path = decodeURIComponent(q >= 0 ? raw.slice(0, q) : raw);
    const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
    return { path, params };
  }

  function route() {
    const { path, params } = parseHash();
    let name = 'scan';
    let arg = null;
    if (path.startsWith('cache')) name = 'cache';
    else if (path.startsWith('backtest')) name = 'backtest';
    else if (path.startsWith('symbol/')) { name = 'symbol'; arg = path.slice('symbol/'.length).trim().toUpperCase(); }
    for (const [k, v] of Object.entries(views)) show(v, k === name);
    $('nav-scan').classList.toggle('active', name === 'scan' || name === 'symbol');
    $('nav-backtest').classList.toggle('active', name === 'backtest');
    $('nav-cache').classList.toggle('active', name === 'cache');
    for (const id of ['nav-scan', 'nav-backtest', 'nav-cache']) {
      if ($(id).classList.contains('active')) $(id).setAttribute('aria-current', 'page'); else $(id).removeAttribute('aria-current');
    }
    if (name === 'cache') CacheView.start(); else CacheView.stop();
    if (name === 'symbol' && arg) SymbolView.load(arg);
    if (name === 'backtest') BacktestView.enter();
    if (name === 'scan') ScanView.fromUrl(params);
  }

  // ---------------------------------------------------------------- screener
  const STAGES = ['loading_universe', 'fetching_data', 'scanning', 'finalizing', 'complete'];
  const PAGE = 50;

  const ind = (name) => (r) => {
    const v = r.indicators ? r.indicators[name] : null;
    return isNum(v) ? v : null;
  };
  const rs = (name) => (r) => {
    const v = r.relative_strength ? r.relative_strength[name] : null;
    return isNum(v) ? v : null;
  };
  const plan = (name) => (r) => (r.trade_plan && isNum(r.trade_plan[name]) ? r.trade_plan[name] : null);

  const COL = {
    rank: { label: '#', num: true, get: (r) => r.rank },
    symbol: { label: 'Symbol', get: (r) => r.symbol },
    name: { label: 'Name', get: (r) => r.name, cls: 'name' },
    sector: { label: 'Sector', get: (r) => r.sector },
    close: { label: 'Close', num: true, get: (r) => r.close, fmt: (v) => fmt(v, 2) },
    change_pct: { label: 'Chg %', num: true, get: (r) => r.change_pct, fmt: (v) => (isNum(v) ? (v > 0 ? '+' : '') + v.toFixed(2) : '—'), sign: true },
    volume: { label: 'Volume', num: true, get: (r) => r.volume, fmt: fmtBig },
    dollar_volume_20: { label: '$ vol 20d', num: true, get: (r) => r.dollar_volume_20, fmt: fmtBig },
    tech_rating: { label: 'Rating', num: true, get: (r) => r.tech_rating, fmt: (v) => fmt(v, 1) },
    signal: { label: 'Signal', get: (r) => r.signal, signal: true },
    rsi_14: { label: 'RSI 14', num: true, get: ind('rsi_14'), fmt: (v) => fmt(v, 1) },
    adx_14: { label: 'ADX 14', num: true, get: ind('adx_14'), fmt: (v) => fmt(v, 1) },
    macd_hist: { label: 'MACD hist', num: true, get: ind('macd_hist'), fmt: (v) => fmt(v, 3), sign: true },
    bb_percent_b: { label: '%B', num: true, get: ind('bb_percent_b'), fmt: (v) => fmt(v, 2) },
    atr_pct: { label: 'ATR %', num: true, get: (r) => r.atr_pct, fmt: (v) => fmt(v, 2) },
    bb_width: { label: 'BB width', num: true, get: (r) => r.bb_width, fmt: (v) => fmt(v, 3) },
    volume_ratio_20: { label: 'Vol ×', num: true, get: ind('volume_ratio_20'), fmt: (v) => fmt(v, 2) },
    return_21: { label: '1M', num: true, get: ind('return_21'), fmt: (v) => fmtSignedPct(v, 1), sign: true },
    return_63: { label: '3M', num: true, get: ind('return_63'), fmt: (v) => fmtSignedPct(v, 1), sign: true },
    return_126: { label: '6M', num: true, get: ind('return_126'), fmt: (v) => fmtSignedPct(v, 1), sign: true },
    return_252: { label: '1Y', num: true, get: ind('return_252'), fmt: (v) => fmtSignedPct(v, 1), sign: true },
    rs_63: { label: 'RS 3M', num: true, get: rs('rs_63'), fmt: (v) => fmtSignedPct(v, 1), sign: true },
    high_252_dist: { label: 'From 52w high', num: true, get: ind('high_252_dist'), fmt: (v) => fmtSignedPct(v, 1), sign: true },
    entry: { label: 'Entry', num: true, get: plan('entry'), fmt: (v) => fmt(v, 2) },
    stop: { label: 'Stop', num: true, get: plan('stop'), fmt: (v) => fmt(v, 2) },
    target: { label: 'Target', num: true, get: plan('target'), fmt: (v) => fmt(v, 2) },
    shares: { label: 'Shares', num: true, get: plan('shares'), fmt: fmtInt },
    risk_amount: { label: 'Risk', num: true, get: plan('risk_amount'), fmt: (v) => fmt(v, 0) },
  };
  const SETS = {
    overview: ['rank', 'symbol', 'name', 'sector', 'close', 'change_pct', 'volume', 'tech_rating', 'signal'],
    technical: ['rank', 'symbol', 'close', 'rsi_14', 'adx_14', 'macd_hist', 'bb_percent_b', 'atr_pct', 'bb_width', 'volume_ratio_20'],
    performance: ['rank', 'symbol', 'change_pct', 'return_21', 'return_63', 'return_126', 'return_252', 'rs_63', 'high_252_dist'],
    plan: ['rank', 'symbol', 'close', 'signal', 'entry', 'stop', 'target', 'shares', 'risk_amount'],
  };

  function signalClass(s) {
    const k = String(s || '').toLowerCase();
    if (k.includes('strong')) return 'sig strong-long';
    if (k.includes('long')) return 'sig long';
    if (k.includes('avoid')) return 'sig avoid';
    return 'sig neutral';
  }

  // Field names for completion, from the server (one list, the engine's).
  let FIELD_NAMES = [];

  const ScanView = {
    scanId: null,
    ended: false,
    source: null,
    etaDeadline: null,
    set: 'overview',
    sortKey: 'rank',
    sortDesc: false,
    offset: 0,
    total: 0,
    lastUrl: null,
    suggestIndex: -1,

    init() {
      $('scan-form').addEventListener('submit', (e) => { e.preventDefault(); this.start(); });
      $('cancel-button').addEventListener('click', () => this.cancel());
      $('backtest-button').addEventListener('click', () => {
        BacktestView.prefill(this.formState());
        location.hash = '#backtest';
      });
      for (const b of $('colsets').querySelectorAll('button')) b.addEventListener('click', () => this.useSet(b.dataset.set));
      $('prev-page').addEventListener('click', () => this.page(this.offset - PAGE));
      $('next-page').addEventListener('click', () => this.page(this.offset + PAGE));
      $('f-saved').addEventListener('change', () => this.loadSaved());
      $('save-screen').addEventListener('click', () => this.saveScreen());
      $('delete-screen').addEventListener('click', () => this.deleteScreen());
      this.initSuggest();
      this.renderHeader();
      setInterval(() => this.tickEta(), 250);
      Watchlist.render();
      this.listsReady = this.loadLists();
      this.history();
    },

    async loadLists() {
      try {
        const [presets, fields] = await Promise.all([api('GET', 'api/v1/presets'), api('GET', 'api/v1/fields')]);
        for (const sel of [$('f-preset'), $('bt-preset')]) {
          for (const p of presets) sel.appendChild(el('option', { value: p.name, title: p.description + ' — ' + p.expression, text: p.name.replace(/_/g, ' ') }));
        }
        FIELD_NAMES = fields.numeric.map((f) => ({ name: f.name, doc: f.description }))
          .concat(fields.text.map((f) => ({ name: f.name, doc: f.description })))
          .concat(fields.functions.map((f) => ({ name: f.name + '(', doc: f.description })));
        // A URL naming a preset loads before the list did: select it now.
        const p = parseHash().params.get('preset');
        if (p) $('f-preset').value = p;
      } catch (_) { /* shown elsewhere */ }
      this.loadSaved(true);
    },

    async loadSaved(listOnly) {
      const sel = $('f-saved');
      if (listOnly) {
        try {
          const screens = await api('GET', 'api/v1/screens');
          const keep = sel.value;
          clear(sel);
          sel.appendChild(el('option', { value: '', text: '— none —' }));
          for (const s of screens) sel.appendChild(el('option', { value: s.name, text: s.name, 'data-where': s.where || '', 'data-sort': s.sort || '' }));
          sel.value = keep;
        } catch (_) { /* nothing saved */ }
        $('delete-screen').disabled = !sel.value;
        return;
      }
      const opt = sel.selectedOptions[0];
      $('delete-screen').disabled = !sel.value;
      if (!sel.value || !opt) return;
      $('f-where').value = opt.dataset.where || '';
      $('f-preset').value = '';
      $('f-screen-name').value = sel.value;
      const sort = opt.dataset.sort || '';
      if (sort) {
        const [k, dir] = sort.split(':');
        this.sortKey = k;
        this.sortDesc = dir !== 'asc';
      }
    },

    async saveScreen() {
      const name = $('f-screen-name').value.trim();
      const st = this.formState();
      $('save-status').textContent = '';
      showError($('scan-error'), null);
      try {
        const body = { name, where: st.where || undefined, preset: st.preset || undefined };
        if (this.sortKey !== 'rank') body.sort = this.sortKey + (this.sortDesc ? ':desc' : ':asc');
        await api('POST', 'api/v1/screens', body);
        $('save-status').textContent = 'Saved “' + name + '”.';
        await this.loadSaved(true);
        $('f-saved').value = name;
        $('delete-screen').disabled = false;
      } catch (e) {
        this.showScreenError(e);
      }
    },

    async deleteScreen() {
      const name = $('f-saved').value;
      if (!name) return;
      try {
        await api('DELETE', 'api/v1/screens/' + encodeURIComponent(name));
        $('save-status').textContent = 'Deleted “' + name + '”.';
        await this.loadSaved(true);
      } catch (e) {
        showError($('scan-error'), e);
      }
    },

    // ---- expression completion
    initSuggest() {
      const input = $('f-where');
      const list = $('where-suggest');
      input.addEventListener('input', () => this.suggest());
      input.addEventListener('blur', () => setTimeout(() => this.closeSuggest(), 150));
      input.addEventListener('keydown', (e) => {
        if (list.classList.contains('hidden')) return;
        const items = list.children;
        if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
          e.preventDefault();
          this.suggestIndex = (this.suggestIndex + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % items.length;
          for (let i = 0; i < items.length; i++) items[i].setAttribute('aria-selected', String(i === this.suggestIndex));
          input.setAttribute('aria-activedescendant', items[this.suggestIndex].id);
        } else if ((e.key === 'Enter' || e.key === 'Tab') && this.suggestIndex >= 0) {
          e.preventDefault();
          this.accept(items[this.suggestIndex].dataset.name);
        } else if (e.key === 'Escape') {
          this.closeSuggest();
        }
      });
    },

    currentWord() {
      const input = $('f-where');
      const upto = input.value.slice(0, input.selectionStart || input.value.length);
      const m = upto.match(/[A-Za-z_][A-Za-z_0-9]*$/);
      return m ? { word: m[0], start: upto.length - m[0].length, end: upto.length } : null;
    },

    suggest() {
      const list = $('where-suggest');
      const w = this.currentWord();
      clear(list);
      this.suggestIndex = -1;
      if (!w || !FIELD_NAMES.length) { this.closeSuggest(); return; }
      const lower = w.word.toLowerCase();
      const hits = FIELD_NAMES.filter((f) => f.name.startsWith(lower) && f.name !== lower).slice(0, 8);
      if (!hits.length) { this.closeSuggest(); return; }
      hits.forEach((f, i) => {
        const li = el('li', { id: 'sugg-' + i, role: 'option', 'aria-selected': 'false', 'data-name': f.name }, [el('code', { text: f.name }), ' ', el('span', { class: 'muted small', text: f.doc })]);
        li.addEventListener('mousedown', (e) => { e.preventDefault(); this.accept(f.name); });
        list.appendChild(li);
      });
      show(list, true);
      $('f-where').setAttribute('aria-expanded', 'true');
    },

    accept(name) {
      const input = $('f-where');
      const w = this.currentWord();
      if (!w) return;
      input.value = input.value.slice(0, w.start) + name + input.value.slice(w.end);
      const pos = w.start + name.length;
      input.setSelectionRange(pos, pos);
      this.closeSuggest();
      input.focus();
    },

    closeSuggest() {
      show($('where-suggest'), false);
      $('f-where').setAttribute('aria-expanded', 'false');
      $('f-where').removeAttribute('aria-activedescendant');
      this.suggestIndex = -1;
    },

    // ---- the screen's state, in the form and in the URL
    formState() {
      return {
        where: $('f-where').value.trim(),
        preset: $('f-preset').value,
        sector: $('f-sector').value,
        min_price: $('f-min-price').value.trim(),
        min_dv: $('f-min-dv').value.trim(),
        symbols: $('f-symbols').value.trim(),
        top: $('f-top').value.trim(),
        wl: $('f-watchlist').checked ? '1' : '',
      };
    },

    toUrl() {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(this.formState())) if (v) p.set(k, v);
      if (this.sortKey !== 'rank' || this.sortDesc) p.set('sort', (this.sortDesc ? '-' : '') + this.sortKey);
      if (this.set !== 'overview') p.set('cols', this.set);
      const hash = '#scan' + (p.toString() ? '?' + p.toString() : '');
      this.lastUrl = hash;
      if (location.hash !== hash) history.replaceState(null, '', hash);
    },

    // A link with a screen in it fills the form (once per distinct link, once the presets are known) and
    // starts nothing: a link can come from anywhere, so only the user's click on Run screen starts a scan.
    async fromUrl(params) {
      const hash = location.hash || '#scan';
      if (hash === this.lastUrl || hash === '#scan' || hash === '#' || ![...params.keys()].length) return;
      this.lastUrl = hash;
      if (this.listsReady) await this.listsReady;
      $('f-where').value = params.get('where') || '';
      $('f-preset').value = params.get('preset') || '';
      $('f-sector').value = params.get('sector') || '';
      $('f-min-price').value = params.get('min_price') || '';
      $('f-min-dv').value = params.get('min_dv') || '';
      $('f-symbols').value = params.get('symbols') || '';
      $('f-top').value = params.get('top') || '0';
      $('f-watchlist').checked = params.get('wl') === '1';
      const sort = params.get('sort') || 'rank';
      this.sortDesc = sort.startsWith('-');
      this.sortKey = sort.replace(/^-/, '');
      if (params.get('cols') && SETS[params.get('cols')]) this.set = params.get('cols');
      this.markSet();
      show($('link-note'), true);
    },

    body() {
      const st = this.formState();
      const body = { filters: {} };
      let symbols = st.symbols.split(/[\s,;]+/).map((s) => s.trim().toUpperCase()).filter(Boolean);
      if (st.wl) symbols = Watchlist.all();
      if (symbols.length) body.symbols = symbols;
      if (st.sector) body.filters.sectors = [st.sector];
      if (st.min_price !== '') body.filters.min_price = Number(st.min_price);
      if (st.min_dv !== '') body.filters.min_dollar_volume = Number(st.min_dv);
      body.top = st.top === '' ? 0 : Math.max(0, Math.floor(Number(st.top)));
      if (st.where) body.where = st.where;
      if (st.preset) body.preset = st.preset;
      return body;
    },

    showScreenError(e) {
      const ex = e && e.body && e.body.expression;
      const box = $('where-error');
      if (ex) {
        box.textContent = ex.message + '\n' + ex.caret;
        show(box, true);
      } else {
        show(box, false);
        showError($('scan-error'), e);
      }
    },

    async start() {
      const btn = $('start-button');
      show($('link-note'), false);
      showError($('scan-error'), null);
      show($('where-error'), false);
      if ($('f-watchlist').checked && !Watchlist.all().length) {
        showError($('scan-error'), new Error('The watchlist is empty: star symbols in the results first'));
        return;
      }
      btn.disabled = true;
      btn.textContent = 'Starting…';
      this.stopFollowing();
      show($('results-card'), false);
      // Nothing of the previous scan stays on screen while this one runs.
      clear($('results-table').tBodies[0]);
      $('page-info').textContent = '';
      $('results-summary').textContent = '';
      this.toUrl();
      // The previous scan's state leaves the screen at once, not when the server has answered.
      this.scanId = null;
      this.resetProgress();
      try {
        const created = await api('POST', 'api/v1/scans', this.body());
        this.scanId = created.id;
        this.ended = false;
        this.offset = 0;
        this.follow(created.id);
      } catch (e) {
        show($('progress-card'), false);
        this.showScreenError(e);
        this.setRunning(false);
      } finally {
        btn.textContent = 'Run screen';
      }
    },

    follow(id) {
      this.stopFollowing();
      this.setRunning(true);
      const es = new EventSource('api/v1/scans/' + encodeURIComponent(id) + '/events');
      this.source = es;
      const onStatus = (ev) => {
        let s;
        try { s = JSON.parse(ev.data); } catch (_) { return; }
        this.onStatus(s);
      };
      for (const name of ['progress', 'complete', 'cancelled', 'failed']) es.addEventListener(name, onStatus);
      es.onerror = () => {
        if (this.source === es && !this.ended) $('progress-message').textContent = 'Connection lost; reconnecting…';
      };
    },

    // One place for every status (events, the cancel answer, polls): once a scan has ended, a late
    // "running" status of it is ignored.
    onStatus(s) {
      if (!s || s.id !== this.scanId) return;
      if (this.ended && s.state === 'running') return;
      this.renderStatus(s);
      if (s.state !== 'running' && !this.ended) {
        this.ended = true;
        this.stopFollowing();
        this.finish(s);
      }
    },

    stopFollowing() {
      if (this.source) { this.source.close(); this.source = null; }
    },

    async cancel() {
      if (!this.scanId || this.ended) return;
      const id = this.scanId;
      const btn = $('cancel-button');
      btn.disabled = true;
      btn.textContent = 'Cancelling…';
      try {
        this.onStatus(await api('POST', 'api/v1/scans/' + encodeURIComponent(id) + '/cancel'));
        // The events stream says when it has stopped; poll as well in case it is slow to.
        for (let i = 0; i < 50 && !this.ended && this.scanId === id; i++) {
          await new Promise((r) => setTimeout(r, 150));
          this.onStatus(await api('GET', 'api/v1/scans/' + encodeURIComponent(id)));
        }
      } catch (e) {
        if (!this.ended) showError($('scan-error'), e);
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
      const bar = $('progress-bar');
      bar.style.width = '0%';
      bar.className = 'progress-fill running';
      $('progress-percent').textContent = '0%';
      $('progress-stage-percent').textContent = '0%';
      $('progress-count').textContent = '0 / 0';
      $('progress-stage').textContent = 'Starting…';
      $('progress-message').textContent = '';
      const pill = $('progress-state');
      pill.textContent = 'starting';
      pill.className = 'pill running';
      for (const li of $('stage-steps').children) li.className = '';
      this.lastStage = null;
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
      const label = { complete: 'Complete!', cancelled: 'Cancelled', failed: 'Failed' }[s.state];
      $('progress-stage').textContent = label || s.stage_label || s.stage;
      $('progress-message').textContent = s.message || '';
      const pill = $('progress-state');
      pill.textContent = s.state;
      pill.className = 'pill ' + s.state;
      if (s.state === 'running' && isNum(s.eta_seconds)) this.etaDeadline = Date.now() + s.eta_seconds * 1000;
      else if (s.state !== 'running') this.etaDeadline = null;
      if (s.state !== 'running') $('eta').textContent = s.state === 'complete' ? 'done' : '—';
      else this.tickEta();
      // Stages before the current one are done; the current one is active, or where it stopped (a
      // cancelled or failed scan reports its own stage: mark the last one it was in).
      let idx = STAGES.indexOf(s.stage);
      if (idx >= 0 && s.state === 'running') this.lastStage = idx;
      else if (idx < 0 && s.state !== 'complete') idx = isNum(this.lastStage) ? this.lastStage : 0;
      for (const li of $('stage-steps').children) {
        const i = STAGES.indexOf(li.dataset.stage);
        let cls = '';
        if (s.state === 'complete' || (idx >= 0 && i < idx)) cls = 'done';
        else if (i === idx) cls = s.state === 'running' ? 'active' : 'stopped';
        li.className = cls;
      }
    },

    tickEta() {
      if (this.etaDeadline === null) return;
      $('eta').textContent = fmtDuration((this.etaDeadline - Date.now()) / 1000);
    },

    async finish(s) {
      this.setRunning(false);
      this.history();
      if (s.state === 'failed') {
        showError($('scan-error'), s.error ? { body: s.error, message: s.error.message } : new Error('The scan failed'));
        return;
      }
      if (s.state === 'cancelled') $('progress-message').textContent = 'Scan cancelled; partial results (if any) below.';
      this.offset = 0;
      await this.page(0, s);
    },

    async page(offset, status) {
      if (!this.scanId) return;
      const id = this.scanId;
      offset = Math.max(0, Math.min(offset, Math.max(0, this.total - 1)));
      show($('results-card'), true);
      show($('results-loading'), true);
      const sort = (this.sortDesc ? '-' : '') + this.sortKey;
      try {
        const res = await api('GET', 'api/v1/scans/' + encodeURIComponent(id) + '/results?limit=' + PAGE + '&offset=' + offset + '&sort=' + encodeURIComponent(sort));
        if (id !== this.scanId) return;
        this.offset = offset;
        this.total = res.total;
        if (res.demo) show($('demo-banner'), true);
        this.renderSummary(res);
        this.renderSkipped(res.skipped || []);
        this.renderRows(res.results || []);
        $('page-info').textContent = res.total ? fmtInt(offset + 1) + '–' + fmtInt(Math.min(offset + PAGE, res.total)) + ' of ' + fmtInt(res.total) : '0 results';
        $('prev-page').disabled = offset === 0;
        $('next-page').disabled = offset + PAGE >= res.total;
        $('export-csv').setAttribute('href', 'api/v1/scans/' + encodeURIComponent(id) + '/results.csv?sort=' + encodeURIComponent(sort));
      } catch (e) {
        if (status && status.state === 'cancelled' && e.status === 409) show($('results-card'), false);
        else showError($('scan-error'), e);
      } finally {
        show($('results-loading'), false);
      }
    },

    renderSummary(res) {
      const parts = [fmtInt(res.total) + ' results'];
      if (isNum(res.matched) && isNum(res.scanned)) parts.push(fmtInt(res.matched) + ' matched of ' + fmtInt(res.scanned) + ' scanned');
      if (res.timing) parts.push('in ' + fmtMs(res.timing.total_ms));
      if (res.state === 'cancelled') parts.push('cancelled: partial');
      $('results-summary').textContent = parts.join(' · ');
      const g = res.regime;
      $('regime').textContent = g ? 'Market regime: ' + regimeText(g) : '';
    },

    useSet(set) {
      if (!SETS[set]) return;
      this.set = set;
      this.markSet();
      this.toUrl();
      this.page(this.offset);
    },

    markSet() {
      for (const b of $('colsets').querySelectorAll('button')) {
        const on = b.dataset.set === this.set;
        b.classList.toggle('active', on);
        b.setAttribute('aria-pressed', String(on));
      }
      this.renderHeader();
    },

    renderHeader() {
      const tr = $('results-table').tHead.rows[0];
      clear(tr);
      tr.appendChild(el('th', { scope: 'col', class: 'star-col' }, el('span', { class: 'sr-only', text: 'Watchlist' })));
      for (const key of SETS[this.set]) {
        const c = COL[key];
        const sorted = this.sortKey === key;
        const th = el('th', { scope: 'col', class: c.num ? 'num' : null, 'aria-sort': sorted ? (this.sortDesc ? 'descending' : 'ascending') : 'none' });
        const b = el('button', { type: 'button', class: 'sort', 'data-key': key, text: c.label + (sorted ? (this.sortDesc ? ' ▼' : ' ▲') : '') });
        b.addEventListener('click', () => this.sortBy(key));
        th.appendChild(b);
        tr.appendChild(th);
      }
    },

    sortBy(key) {
      if (this.sortKey === key) this.sortDesc = !this.sortDesc;
      else {
        this.sortKey = key;
        this.sortDesc = !!(COL[key].num && key !== 'rank');
      }
      this.renderHeader();
      this.toUrl();
      this.page(0);
    },

    renderRows(rows) {
      const tbody = $('results-table').tBodies[0];
      clear(tbody);
      const frag = document.createDocumentFragment();
      for (const r of rows) {
        const tr = el('tr', { 'data-symbol': r.symbol });
        const starred = Watchlist.has(r.symbol);
        const star = el('button', { type: 'button', class: 'star', 'aria-pressed': String(starred), 'aria-label': (starred ? 'Remove ' : 'Add ') + r.symbol + (starred ? ' from' : ' to') + ' the watchlist', text: starred ? '★' : '☆' });
        star.addEventListener('click', () => {
          const on = Watchlist.toggle(r.symbol);
          star.textContent = on ? '★' : '☆';
          star.setAttribute('aria-pressed', String(on));
        });
        tr.appendChild(el('td', { class: 'star-col' }, star));
        for (const key of SETS[this.set]) {
          const c = COL[key];
          const v = c.get(r);
          let content = c.fmt ? c.fmt(v) : v === null || v === undefined || v === '' ? '—' : String(v);
          let cls = c.num ? 'num' : '';
          if (key === 'symbol') content = el('a', { href: '#symbol/' + encodeURIComponent(r.symbol), text: r.symbol + (r.stale ? '*' : '') });
          if (c.signal) content = el('span', { class: signalClass(v), text: v });
          if (c.sign && isNum(v)) cls += v > 0 ? ' pos' : v < 0 ? ' neg' : '';
          if (c.cls) cls += ' ' + c.cls;
          tr.appendChild(el('td', { class: cls.trim() || null, 'data-label': c.label }, content));
        }
        frag.appendChild(tr);
      }
      tbody.appendChild(frag);
      if (!rows.length) tbody.appendChild(el('tr', null, el('td', { colspan: SETS[this.set].length + 1, class: 'muted', text: 'No symbol matched this screen' })));
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

    // Recent scans, from this server and the store (they outlive restarts).
    async history() {
      try {
        const scans = await api('GET', 'api/v1/scans?limit=8');
        const ul = $('history');
        clear(ul);
        if (!scans.length) ul.appendChild(el('li', { class: 'muted', text: 'No scans yet' }));
        for (const s of scans) {
          const when = s.started_at ? new Date(s.started_at).toLocaleString() : '';
          const b = el('button', { type: 'button', class: 'link', text: when + ' · ' + s.state + (s.counts ? ' · ' + fmtInt(s.counts.scanned) + ' scanned' : '') });
          b.addEventListener('click', () => {
            this.stopFollowing();
            this.scanId = s.id;
            this.ended = s.state !== 'running';
            this.renderStatus(s);
            if (s.state === 'running') { this.ended = false; this.follow(s.id); } else this.finish(s);
          });
          ul.appendChild(el('li', null, b));
        }
      } catch (_) { /* the offline notice says it */ }
    },
  };

  function regimeText(g) {
    const trend = { up: 'up trend', down: 'down trend', sideways: 'sideways' }[g.trend] || g.trend;
    return trend + ', ' + (g.volatility === 'high' ? 'high' : 'normal') + ' volatility (' + g.benchmark + ' as of ' + g.as_of + ')';
  }

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
          api('GET', 'api/v1/metrics/current'),
          api('GET', 'api/v1/metrics/history?minutes=60'),
          api('GET', 'api/v1/warmer'),
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
      // A pass due (or running) now has its next time at or before the last: say "now", not a past time.
      const next = w.next_run ? new Date(w.next_run) : null;
      const last = w.last_run ? new Date(w.last_run) : null;
      $('warmer-next-run').textContent = !next ? '—' : last && next <= last ? 'now' : next.toLocaleTimeString();
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
      // A fleet server's cache has tiers (this server's memory in front of Redis): each tier's own figures.
      const tiers = Array.isArray(c.tiers) ? c.tiers : [];
      const tl = $('cache-tiers');
      clear(tl);
      tl.classList.toggle('hidden', !tiers.length);
      for (const t of tiers) {
        const asked = (t.hits || 0) + (t.misses || 0);
        tl.appendChild(el('li', { class: t.up ? '' : 'tier-down' }, [
          el('strong', { text: t.name }),
          ' ' + (asked ? fmtPct(t.hits / asked, 1) + ' hits' : 'no lookups yet') + ' · ' + fmtInt(t.hits) + ' / ' + fmtInt(asked),
          t.up ? '' : el('span', { class: 'bad', text: ' — unreachable' }),
        ]));
      }
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


  // ---------------------------------------------------------------- charts (Lightweight Charts)
  const LWC = window.LightweightCharts;
  const THEME = {
    layout: { background: { type: 'solid', color: '#171e26' }, textColor: '#c7d0db', fontSize: 12, attributionLogo: false },
    grid: { vertLines: { color: '#222c37' }, horzLines: { color: '#222c37' } },
    rightPriceScale: { borderColor: '#2a3441' },
    timeScale: { borderColor: '#2a3441' },
  };
  const COLORS = { sma_20: '#f5a623', sma_50: '#b57bff', sma_200: '#ff6fa8', ema_12: '#4dd0e1', ema_26: '#80cbc4', bb: '#4da3ff', rsi: '#e3e8ee', macd: '#4da3ff', signal: '#f5a623', adx: '#b57bff' };
  const SERIES_NAMES = 'sma_20,sma_50,sma_200,ema_12,ema_26,bb_upper,bb_middle,bb_lower,rsi_14,macd,macd_signal,macd_hist,adx_14';

  function points(dates, values) {
    const out = [];
    for (let i = 0; i < dates.length; i++) if (isNum(values[i])) out.push({ time: dates[i], value: values[i] });
    return out;
  }

  const SymbolView = {
    current: null,
    chart: null,
    data: null,
    range: 252,

    init() {
      for (const b of document.querySelectorAll('#view-symbol [data-range]')) {
        b.addEventListener('click', () => {
          this.range = Number(b.dataset.range);
          for (const o of document.querySelectorAll('#view-symbol [data-range]')) o.classList.toggle('active', o === b);
          this.applyRange();
        });
      }
      for (const c of document.querySelectorAll('#view-symbol .toggles input')) c.addEventListener('change', () => this.draw());
      $('symbol-star').addEventListener('click', () => {
        if (!this.current) return;
        const on = Watchlist.toggle(this.current);
        this.renderStar(on);
      });
      window.addEventListener('resize', () => this.resize());
    },

    renderStar(on) {
      const b = $('symbol-star');
      b.textContent = on ? '★' : '☆';
      b.setAttribute('aria-pressed', String(on));
      b.setAttribute('aria-label', (on ? 'Remove ' : 'Add ') + this.current + (on ? ' from' : ' to') + ' the watchlist');
    },

    async load(sym) {
      this.current = sym;
      $('symbol-title').textContent = sym;
      this.renderStar(Watchlist.has(sym));
      showError($('symbol-error'), null);
      show($('symbol-body'), false);
      show($('symbol-loading'), true);
      const enc = encodeURIComponent(sym);
      try {
        const [bars, series, ex] = await Promise.all([
          api('GET', 'api/v1/symbols/' + enc + '/bars'),
          api('GET', 'api/v1/symbols/' + enc + '/series?names=' + SERIES_NAMES),
          api('GET', 'api/v1/symbols/' + enc + '/explain'),
        ]);
        if (this.current !== sym) return;
        this.data = { bars: bars.bars || [], series };
        const r = ex.result;
        $('symbol-title').textContent = r.symbol + (r.name ? ' — ' + r.name : '');
        $('symbol-source').textContent = fmtInt(this.data.bars.length) + ' bars · as of ' + r.as_of;
        if (ex.demo) show($('demo-banner'), true);
        show($('symbol-body'), true);
        this.renderSummary(r);
        this.renderExplain(r);
        this.renderPlan(r);
        this.draw();
        this.regime();
      } catch (e) {
        if (this.current === sym) showError($('symbol-error'), e);
      } finally {
        if (this.current === sym) show($('symbol-loading'), false);
      }
    },

    async regime() {
      const box = $('symbol-regime');
      box.textContent = '—';
      try {
        const scans = await api('GET', 'api/v1/scans?limit=5');
        const done = scans.find((s) => s.state === 'complete');
        if (!done) { box.textContent = 'Run a scan to see the regime of its benchmark.'; return; }
        const res = await api('GET', 'api/v1/scans/' + encodeURIComponent(done.id) + '/results?limit=1');
        box.textContent = res.regime ? regimeText(res.regime) : 'No benchmark data in the last scan.';
      } catch (_) { /* leave the dash */ }
    },

    renderSummary(s) {
      const box = $('symbol-summary');
      clear(box);
      const i = s.indicators || {};
      const item = (label, value, cls) => el('div', { class: 'kv' }, [el('div', { class: 'label', text: label }), el('div', { class: 'value ' + (cls || ''), text: value })]);
      append(box, [
        item('Close', fmt(s.close, 2)),
        item('Change', isNum(s.change_pct) ? (s.change_pct > 0 ? '+' : '') + s.change_pct.toFixed(2) + '%' : '—', isNum(s.change_pct) ? (s.change_pct >= 0 ? 'pos' : 'neg') : ''),
        item('Sector', s.sector || '—'),
        item('Rating', fmt(s.tech_rating, 1)),
        el('div', { class: 'kv' }, [el('div', { class: 'label', text: 'Signal' }), el('div', { class: 'value' }, el('span', { class: signalClass(s.signal), text: s.signal }))]),
        item('RSI 14', fmt(i.rsi_14, 1)),
        item('ATR %', fmt(s.atr_pct, 2)),
        item('1M return', fmtSignedPct(i.return_21, 1), isNum(i.return_21) ? (i.return_21 >= 0 ? 'pos' : 'neg') : ''),
      ]);
    },

    renderExplain(r) {
      const tbody = $('explain-table').tBodies[0];
      clear(tbody);
      for (const p of r.explain || []) {
        tbody.appendChild(el('tr', null, [
          el('th', { scope: 'row', text: p.component }),
          el('td', { class: 'num ' + (p.points > 0 && p.component !== 'base' ? 'pos' : p.points < 0 ? 'neg' : ''), text: (p.component === 'base' ? '' : p.points > 0 ? '+' : '') + p.points.toFixed(2) }),
          el('td', { class: 'small muted', text: p.rule }),
        ]));
      }
      tbody.appendChild(el('tr', { class: 'total' }, [el('th', { scope: 'row', text: 'rating' }), el('td', { class: 'num', text: fmt(r.tech_rating, 2) }), el('td', { class: 'small muted', text: 'the sum of the parts above' })]));
    },

    renderPlan(r) {
      const box = $('trade-plan');
      clear(box);
      const p = r.trade_plan;
      if (!p) { box.textContent = r.signal === 'Avoid' ? 'No long plan for an Avoid signal.' : 'Not enough history for ATR(14).'; return; }
      const row = (k, v) => el('div', { class: 'kv' }, [el('div', { class: 'label', text: k }), el('div', { class: 'value', text: v })]);
      append(box, el('div', { class: 'summary-grid' }, [
        row('Side', p.side), row('Entry', fmt(p.entry, 2)), row('Stop', fmt(p.stop, 2)), row('Target', fmt(p.target, 2)),
        row('Shares', fmtInt(p.shares)), row('Position', fmt(p.position_value, 0)), row('At risk', fmt(p.risk_amount, 0)),
        row('Reward : risk', fmt(p.reward_risk, 1)),
      ]));
      if (p.liquidity_limited) append(box, el('div', { class: 'small muted', text: 'Size cut to 5 % of the 20-session dollar volume.' }));
    },

    enabled(attr, name) {
      const c = document.querySelector('#view-symbol [' + attr + '="' + name + '"]');
      return !!(c && c.checked);
    },

    draw() {
      if (!this.data || !LWC) return;
      const node = $('price-chart');
      if (this.chart) { this.chart.remove(); this.chart = null; }
      clear(node);
      const bars = this.data.bars;
      const dates = bars.map((b) => b.date);
      const S = this.data.series.series || {};
      const sDates = this.data.series.dates || [];
      const panes = ['rsi', 'macd', 'adx'].filter((p) => this.enabled('data-pane', p));
      const narrow = window.innerWidth <= 480;
      const priceH = narrow ? 260 : 380;
      const paneH = narrow ? 90 : 110;
      node.style.height = priceH + panes.length * paneH + 'px';
      const chart = LWC.createChart(node, Object.assign({}, THEME, {
        autoSize: true,
        crosshair: { mode: LWC.CrosshairMode.Normal },
        timeScale: Object.assign({}, THEME.timeScale, { rightOffset: 2 }),
      }));
      this.chart = chart;
      const candles = chart.addSeries(LWC.CandlestickSeries, { upColor: '#3fb97c', downColor: '#f0605d', borderVisible: false, wickUpColor: '#3fb97c', wickDownColor: '#f0605d' });
      candles.setData(bars.map((b) => ({ time: b.date, open: b.open, high: b.high, low: b.low, close: b.close })));
      const volume = chart.addSeries(LWC.HistogramSeries, { priceFormat: { type: 'volume' }, priceScaleId: 'volume', lastValueVisible: false, priceLineVisible: false });
      chart.priceScale('volume').applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
      volume.setData(bars.map((b) => ({ time: b.date, value: b.volume, color: b.close >= b.open ? 'rgba(63,185,124,.45)' : 'rgba(240,96,93,.45)' })));
      const lines = {};
      const line = (name, color, pane, opts) => {
        const s = chart.addSeries(LWC.LineSeries, Object.assign({ color, lineWidth: 1.5, lastValueVisible: false, priceLineVisible: false, crosshairMarkerVisible: false }, opts || {}), pane);
        s.setData(points(sDates, S[name] || []));
        lines[name] = s;
        return s;
      };
      for (const name of ['sma_20', 'sma_50', 'sma_200', 'ema_12', 'ema_26']) if (this.enabled('data-overlay', name)) line(name, COLORS[name], 0);
      if (this.enabled('data-overlay', 'bb')) {
        line('bb_upper', COLORS.bb, 0, { lineStyle: 2 });
        line('bb_middle', COLORS.bb, 0, { lineStyle: 1 });
        line('bb_lower', COLORS.bb, 0, { lineStyle: 2 });
      }
      panes.forEach((p, k) => {
        const pane = k + 1;
        if (p === 'rsi') {
          const s = line('rsi_14', COLORS.rsi, pane);
          s.createPriceLine({ price: 70, color: '#8a96a6', lineStyle: 2, lineWidth: 1, axisLabelVisible: false });
          s.createPriceLine({ price: 30, color: '#8a96a6', lineStyle: 2, lineWidth: 1, axisLabelVisible: false });
        } else if (p === 'macd') {
          const h = chart.addSeries(LWC.HistogramSeries, { lastValueVisible: false, priceLineVisible: false }, pane);
          h.setData(points(sDates, S.macd_hist || []).map((d) => Object.assign(d, { color: d.value >= 0 ? 'rgba(63,185,124,.6)' : 'rgba(240,96,93,.6)' })));
          lines.macd_hist = h;
          line('macd', COLORS.macd, pane);
          line('macd_signal', COLORS.signal, pane);
        } else if (p === 'adx') {
          line('adx_14', COLORS.adx, pane);
        }
      });
      // The price pane keeps most of the height; each indicator pane a fixed share.
      const allPanes = chart.panes();
      allPanes.forEach((pane, i) => pane.setStretchFactor(i === 0 ? priceH : paneH));
      this.candles = candles;
      this.volume = volume;
      this.lines = lines;
      chart.subscribeCrosshairMove((param) => this.legend(param));
      this.legend(null);
      this.applyRange();
      // Dates on the axis: the library places them; the legend names the bar under the crosshair.
      void dates;
    },

    legend(param) {
      const box = $('chart-legend');
      const bars = this.data ? this.data.bars : [];
      if (!bars.length) { box.textContent = ''; return; }
      let bar = bars[bars.length - 1];
      if (param && param.time && this.candles) {
        const d = param.seriesData.get(this.candles);
        const v = param.seriesData.get(this.volume);
        const t = typeof param.time === 'string' ? param.time : (param.time.year ? param.time.year + '-' + String(param.time.month).padStart(2, '0') + '-' + String(param.time.day).padStart(2, '0') : null);
        if (d && t) bar = { date: t, open: d.open, high: d.high, low: d.low, close: d.close, volume: v ? v.value : null };
      }
      clear(box);
      const item = (label, value, cls) => el('span', { class: 'lg-item ' + (cls || '') }, [el('span', { class: 'muted', text: label + ' ' }), el('span', { class: 'lg-value', 'data-name': label, text: value })]);
      append(box, [
        el('strong', { id: 'legend-date', text: bar.date }),
        item('O', fmt(bar.open, 2)), item('H', fmt(bar.high, 2)), item('L', fmt(bar.low, 2)), item('C', fmt(bar.close, 2)),
        item('V', fmtBig(bar.volume)),
      ]);
      const S = this.data.series.series || {};
      const i = (this.data.series.dates || []).indexOf(bar.date);
      const label = { sma_20: 'SMA 20', sma_50: 'SMA 50', sma_200: 'SMA 200', ema_12: 'EMA 12', ema_26: 'EMA 26', rsi_14: 'RSI', macd: 'MACD', adx_14: 'ADX' };
      for (const name of Object.keys(this.lines || {})) {
        if (!label[name] || i < 0) continue;
        append(box, item(label[name], fmt(S[name][i], 2), 'lg-' + name));
      }
    },

    applyRange() {
      if (!this.chart || !this.data) return;
      const n = this.data.bars.length;
      this.chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, n - this.range), to: n + 1 });
    },

    resize() {
      if (this.chart && this.data) this.draw();
    },
  };

  // ---------------------------------------------------------------- backtest
  const BacktestView = {
    id: null,
    timer: null,
    chart: null,

    init() {
      $('bt-form').addEventListener('submit', (e) => { e.preventDefault(); this.run(); });
      $('bt-cancel').addEventListener('click', () => this.cancel());
    },

    prefill(st) {
      $('bt-where').value = st.where || '';
      $('bt-preset').value = st.preset || '';
      $('bt-top').value = st.top || '0';
    },

    enter() { /* the form keeps what was there */ },

    body() {
      const horizons = $('bt-horizons').value.split(/[\s,;]+/).map(Number).filter((h) => Number.isInteger(h) && h > 0);
      const body = { horizons };
      const where = $('bt-where').value.trim();
      if (where) body.where = where;
      if ($('bt-preset').value) body.preset = $('bt-preset').value;
      const top = Number($('bt-top').value);
      if (top > 0) body.top = Math.floor(top);
      if ($('bt-from').value) body.from = $('bt-from').value;
      if ($('bt-to').value) body.to = $('bt-to').value;
      return body;
    },

    async run() {
      showError($('bt-error'), null);
      show($('bt-caret'), false);
      show($('bt-results'), false);
      try {
        const created = await api('POST', 'api/v1/backtests', this.body());
        this.id = created.id;
        $('bt-run').disabled = true;
        $('bt-cancel').disabled = false;
        show($('bt-progress'), true);
        $('bt-bar').style.width = '0%';
        $('bt-message').textContent = 'Starting…';
        this.poll();
      } catch (e) {
        const ex = e.body && e.body.expression;
        if (ex) { $('bt-caret').textContent = ex.message + '\n' + ex.caret; show($('bt-caret'), true); } else showError($('bt-error'), e);
      }
    },

    async poll() {
      if (!this.id) return;
      const id = this.id;
      try {
        const s = await api('GET', 'api/v1/backtests/' + encodeURIComponent(id));
        if (id !== this.id) return;
        $('bt-bar').style.width = Math.min(100, s.percent || 0).toFixed(1) + '%';
        $('bt-bar').parentElement.setAttribute('aria-valuenow', (s.percent || 0).toFixed(0));
        $('bt-message').textContent = s.state === 'running' ? s.message : s.state === 'complete' ? 'Complete' : s.state === 'cancelled' ? 'Cancelled' : 'Failed';
        if (s.state === 'running') { this.timer = setTimeout(() => this.poll(), 300); return; }
        $('bt-run').disabled = false;
        $('bt-cancel').disabled = true;
        if (s.state === 'failed') { showError($('bt-error'), { body: s.error, message: s.error ? s.error.message : 'The backtest failed' }); return; }
        if (s.report) this.render(s.report);
      } catch (e) {
        showError($('bt-error'), e);
        $('bt-run').disabled = false;
        $('bt-cancel').disabled = true;
      }
    },

    async cancel() {
      if (!this.id) return;
      try { await api('POST', 'api/v1/backtests/' + encodeURIComponent(this.id) + '/cancel'); } catch (e) { if (e.status !== 409) showError($('bt-error'), e); }
    },

    render(r) {
      show($('bt-results'), true);
      $('bt-heading').textContent = (r.where || 'every symbol') + ' · ' + r.days.length + ' sessions, ' + r.from + ' to ' + r.to;
      const t = $('bt-summary');
      clear(t.tHead); clear(t.tBodies[0]);
      const head = el('tr', null, [el('th', { scope: 'col', text: '' })].concat(r.summaries.map((h) => el('th', { scope: 'col', class: 'num', text: h.horizon + ' sessions' }))));
      t.tHead.appendChild(head);
      const rows = [
        ['Sessions measured', (h) => fmtInt(h.sessions)],
        ['Without future', (h) => fmtInt(h.sessions_without_future)],
        ['Picks per session', (h) => fmt(h.picks_per_session, 1)],
        ['Hit rate', (h) => fmtPct(h.hit_rate, 1)],
        ['Mean forward return', (h) => fmtSignedPct(h.mean_return, 2)],
        ['Median', (h) => fmtSignedPct(h.median_return, 2)],
        ['Universe mean', (h) => fmtSignedPct(h.universe_mean_return, 2)],
        ['Excess over universe', (h) => fmtSignedPct(h.excess_return, 2)],
        ['Portfolio total return', (h) => fmtSignedPct(h.portfolio.total_return, 1)],
        ['Universe total return', (h) => fmtSignedPct(h.portfolio.universe_total_return, 1)],
        ['Max drawdown', (h) => fmtPct(h.portfolio.max_drawdown, 1)],
        ['Trades', (h) => fmtInt(h.portfolio.trades)],
      ];
      for (const [name, f] of rows) {
        t.tBodies[0].appendChild(el('tr', null, [el('th', { scope: 'row', text: name })].concat(r.summaries.map((h) => el('td', { class: 'num', text: f(h) })))));
      }
      const y = $('bt-years');
      clear(y.tHead); clear(y.tBodies[0]);
      y.tHead.appendChild(el('tr', null, ['Year', 'Sessions', 'Picks', 'Hit rate', 'Mean', 'Universe', 'Excess'].map((h) => el('th', { scope: 'col', text: h }))));
      for (const row of r.summary.per_year) {
        y.tBodies[0].appendChild(el('tr', null, [
          el('td', { text: String(row.year) }), el('td', { class: 'num', text: fmtInt(row.sessions) }), el('td', { class: 'num', text: fmtInt(row.picks) }),
          el('td', { class: 'num', text: fmtPct(row.hit_rate, 1) }), el('td', { class: 'num', text: fmtSignedPct(row.mean_return, 2) }),
          el('td', { class: 'num', text: fmtSignedPct(row.universe_mean_return, 2) }), el('td', { class: 'num', text: fmtSignedPct(row.excess_return, 2) }),
        ]));
      }
      this.drawEquity(r.summary.portfolio.equity || []);
    },

    drawEquity(points) {
      const node = $('bt-chart');
      if (this.chart) { this.chart.remove(); this.chart = null; }
      clear(node);
      if (!LWC || points.length < 2) { node.textContent = 'Not enough sessions for a curve.'; return; }
      const chart = LWC.createChart(node, Object.assign({}, THEME, { autoSize: true }));
      this.chart = chart;
      const pct = (v) => (v - 1) * 100;
      const fmtP = { type: 'custom', formatter: (v) => (v > 0 ? '+' : '') + v.toFixed(1) + '%' };
      const u = chart.addSeries(LWC.LineSeries, { color: '#8a96a6', lineWidth: 2, priceFormat: fmtP, title: 'universe' });
      const p = chart.addSeries(LWC.LineSeries, { color: '#4da3ff', lineWidth: 2, priceFormat: fmtP, title: 'picks' });
      const seen = new Set();
      const uniq = points.filter((q) => (seen.has(q.date) ? false : seen.add(q.date)));
      u.setData(uniq.map((q) => ({ time: q.date, value: pct(q.universe) })));
      p.setData(uniq.map((q) => ({ time: q.date, value: pct(q.portfolio) })));
      chart.timeScale().fitContent();
    },
  };

  // ---------------------------------------------------------------- start
  async function loadHealth() {
    try {
      const h = await api('GET', 'healthz');
      const info = 'provider ' + h.provider + ' · v' + h.version;
      $('server-info').textContent = info;
      $('server-info').setAttribute('title', info);
      if (h.demo) show($('demo-banner'), true);
    } catch (_) {
      $('server-info').textContent = 'server unreachable';
    }
  }

  ScanView.init();
  SymbolView.init();
  BacktestView.init();
  loadHealth();
  window.addEventListener('hashchange', route);
  route();
})();
