// app.js: the page's only script. It is loaded in the head, before htmx (at
// the end of the body), so that its listeners are in place before the first
// request.
//
// - The tab id lives in sessionStorage under "tab-id" and goes out as X-Tab-ID
//   on every htmx request. A duplicated tab ("Duplicate tab" copies
//   sessionStorage) is detected without a round trip: "tab-open" is set while
//   the page is up and cleared on pagehide, so a page that starts and finds
//   it still set is a copy. The copy takes a new id and asks the server, with
//   X-Tab-Copy-From on its first tab request, to copy the original's rows.
// - The client id is new on every page load and goes out as X-Client-ID.
// - Bound fields show editing, saving, saved or the error beside them, and
//   follow pushed values unless they hold an unsaved edit. Each save names
//   the version it is based on (If-Match); when someone changed the value
//   first, the server refuses (412) and the field offers theirs or mine. A
//   save that gets no answer waits, and is sent again by itself (below).
// - The live connection's state, and the storage's while it has a fault,
//   are shown by #live.
// - What the server drew without knowing which tab looks ("by Tab 2") reads
//   "by this tab" in Tab 2; times read "12 s ago" and stay current; the
//   activity feed stays in order; a change that arrives live is marked
//   for a moment; the tab's name leads the document title.
(() => {
  'use strict';

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // crypto.randomUUID needs a secure context; plain http on a LAN address
    // is not one, but getRandomValues works everywhere.
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = [...b].map(x => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  let tabID = sessionStorage.getItem('tab-id');
  let copyFrom = null;
  if (tabID && sessionStorage.getItem('tab-open')) {
    copyFrom = tabID; // a duplicated tab: the original is still open
    tabID = uuid();
  }
  if (!tabID) tabID = uuid();
  sessionStorage.setItem('tab-id', tabID);
  sessionStorage.setItem('tab-open', '1');
  addEventListener('pagehide', () => sessionStorage.removeItem('tab-open'));
  addEventListener('pageshow', () => sessionStorage.setItem('tab-open', '1'));

  const clientID = uuid();

  document.addEventListener('htmx:config:request', e => {
    const req = e.detail.ctx.request;
    req.headers['X-Tab-ID'] = tabID;
    req.headers['X-Client-ID'] = clientID;
    const f = fieldOf(e.detail.ctx.sourceElement);
    if (f) req.headers['If-Match'] = '"' + (f.dataset.version || '0') + '"';
    if (copyFrom && String(req.action).includes('/scopes/tab/visit')) {
      req.headers['X-Tab-Copy-From'] = copyFrom;
      copyFrom = null;
    }
  });

  // Bound fields. A field is dirty while it holds an edit the server does
  // not have yet (editing, saving, or failed): a push never touches a dirty
  // field (setField, below), so it never clobbers what a person is typing.
  // A clean field shows the server's value as soon as it comes, even while
  // it has focus.
  function fieldOf(el) {
    return el && el.dataset && el.dataset.bound !== undefined ? el.closest('.field') : null;
  }
  // What a control shows, and setting it or what the server last gave it
  // (the default: the value attribute, the checked attribute, the selected
  // option), whatever kind of control it is.
  function shown(el) { return el.type === 'checkbox' ? String(el.checked) : el.value; }
  function give(el, v) {
    if (el.type === 'checkbox') el.defaultChecked = v === 'true';
    else if (el.tagName === 'SELECT') for (const o of el.options) o.defaultSelected = o.value === v;
    else el.defaultValue = v;
  }
  function show(el, v) {
    if (el.type === 'checkbox') el.checked = v === 'true';
    else el.value = v;
    following(el);
  }
  // A range shows its number, and the page's font follows the Font size
  // range as it moves (the stylesheet reads its value attribute).
  function following(el) {
    if (el.type !== 'range') return;
    el.setAttribute('value', el.value);
    const n = el.closest('.field').querySelector('.range-value');
    if (n) n.textContent = el.value;
  }
  function setState(field, state, text) {
    const status = field.querySelector('.status');
    status.dataset.state = state;
    if (text !== undefined) status.textContent = text;
    field.toggleAttribute('data-dirty', state !== 'saved' && state !== 'idle');
    field.toggleAttribute('data-conflict', state === 'conflict');
  }
  document.addEventListener('input', e => {
    const f = fieldOf(e.target);
    if (!f) return;
    following(e.target);
    setState(f, 'editing', 'Editing…');
  });
  document.addEventListener('htmx:before:request', e => {
    const f = fieldOf(e.detail.ctx.sourceElement);
    if (!f) return;
    sending.add(f.id);
    if (!pending.has(f.id)) setState(f, 'saving', 'Saving…'); // a waiting edit says so until it is saved
  });
  document.addEventListener('htmx:finally:request', e => {
    const ctx = e.detail.ctx;
    const el = ctx.sourceElement;
    const f = fieldOf(el);
    if (f) {
      sending.delete(f.id);
      if (ctx.request.signal?.aborted && ctx.request.signal.reason !== 'timeout') return; // a newer request follows
      const status = ctx.response ? ctx.response.status : 0;
      if (status === 0 || status === 502 || status === 503 || status === 504) {
        // A proxy's or the server's words, if it answered, are kept in the status.
        wait(f, el, ctx.response && ctx.response.headers.get('Retry-After'), ctx.response && f.querySelector('.status').textContent.trim());
        return;
      }
      forget(f);
      const ok = ctx.status === 'swapped' && status < 400;
      if (status === 412) {
        // Changed by someone else while this page typed (or waited): the
        // status holds who, with "Take theirs" and "Keep mine"; the text
        // stays.
        setState(f, 'conflict');
        return;
      }
      if (!ok) {
        setState(f, 'error'); // the server's message is in the status
        return;
      }
      const tag = ctx.response.headers && ctx.response.headers.get('ETag');
      if (tag) {
        // The field now shows this version: a push of an older one that
        // arrives late must not replace it.
        f.dataset.version = tag.replace(/"/g, '');
        f.dataset.v = String(Math.max(Number(f.dataset.v || 0), Number(f.dataset.version)));
      }
      // The body is FormData, or URLSearchParams once encoded: both have get.
      const body = ctx.request.body;
      let sent = body && typeof body.get === 'function' ? body.get('value') : null;
      if (el.type === 'checkbox') sent = String(sent === 'true');
      give(el, sent ?? '');
      setState(f, shown(el) === sent ? 'saved' : 'editing');
      return;
    }
    // The inspector's set form empties itself after a success. Its writes
    // are not queued: one that gets no answer says so, and the form keeps
    // what was typed.
    if (el && el.matches && el.matches('form[data-reset-on-success]') && ctx.response && ctx.response.status < 400) {
      el.reset();
    }
    const inspector = el && el.closest && el.closest('.inspector');
    if (inspector && !ctx.response) {
      const out = inspector.querySelector('.inspector-actions .status');
      if (out) out.textContent = 'Not done: the server did not answer. Nothing was changed that this page knows of; try again.';
    }
  });
  document.addEventListener('htmx:after:swap', () => tint());

  // Waiting edits. A save that gets no answer (the server away, the network
  // cut) or a 502, 503 or 504 waits: the field says so, keeps its text and
  // stays dirty (no push replaces it), and the page sends it again by
  // itself, at least once a second (later if Retry-After says so), as the
  // same conditional write: based on the version the edit began from, so a
  // change made meanwhile is a conflict, never overwritten. The waiting
  // edits are kept in sessionStorage, so a reload puts them back into their
  // fields; a page load's own (the client scope) go with the page, and a
  // duplicated tab leaves its original's to the original.
  const pendingKey = 'pending-edits';
  const pending = new Map(copyFrom ? [] : JSON.parse(sessionStorage.getItem(pendingKey) || '[]')); // field id → {value, version}
  const sending = new Set(); // fields whose save is under way
  let retryAt = 0;
  function keepPending() {
    sessionStorage.setItem(pendingKey, JSON.stringify([...pending].filter(([id]) => !id.startsWith('field-client-'))));
    setLive();
  }
  const waitingText = 'Not saved yet: waiting for the server. Your edit is kept and sent again by itself.';
  function wait(f, el, retryAfter, said) {
    said = (said || '').replace(/\s+/g, ' ').slice(0, 160);
    pending.set(f.id, {value: shown(el), version: f.dataset.version || '0'});
    keepPending();
    setState(f, 'pending', said ? `Not saved yet: waiting for the server (${said}). Your edit is kept and sent again by itself.` : waitingText);
    const s = Number(retryAfter);
    if (s > 0) retryAt = Math.max(retryAt, Date.now() + s * 1000);
  }
  function forget(f) {
    if (pending.delete(f.id)) keepPending();
  }
  // restore puts the waiting edits back into the fields on the page that
  // have not taken them yet (a lazy panel's come when it loads).
  function restore() {
    for (const [id, p] of pending) {
      const f = document.getElementById(id);
      const el = f && f.querySelector('[data-bound]');
      if (!el || f.querySelector('.status').dataset.state === 'pending') continue;
      f.dataset.version = p.version;
      show(el, p.value);
      setState(f, 'pending', waitingText);
    }
    setLive();
  }
  function retry() {
    if (Date.now() < retryAt) return;
    for (const [id, p] of pending) {
      const f = document.getElementById(id);
      const el = f && f.querySelector('[data-bound]');
      if (!el || sending.has(id) || f.querySelector('.status').dataset.state !== 'pending') continue;
      if (shown(el) !== p.value) continue; // typed again meanwhile: that edit's own save goes
      htmx.trigger(el, 'save');
    }
  }
  document.addEventListener('DOMContentLoaded', () => { restore(); setInterval(retry, 1000); });
  document.addEventListener('htmx:after:swap', restore);
  // Leaving a page whose edits wait asks first (a reload too: the browser
  // cannot tell the two apart); with nothing waiting, nothing asks.
  addEventListener('beforeunload', e => {
    if (pending.size === 0) return;
    e.preventDefault();
    e.returnValue = '';
  });

  // The inspector's rows. A change is drawn once for every page that sees
  // it, so each page places a pushed row itself (hx-swap="upsert"): over the
  // row of its key if it shows one, else where the key falls among the rows
  // it shows (in key order, under its filter), unless it falls after them
  // and more keys follow; then only the key count moves. A delete or a
  // clear removes rows older than itself. A list the page asks for (its
  // filter, "Show more", its join) replaces the rows or adds to them
  // (hx-swap="entries"), and the changes newer than that list that arrived
  // meanwhile are placed again.
  const pushed = new Map(); // scope -> the latest pushed rows, oldest first
  const pushedMax = 200;
  // matches and byKey are the server's rules (store.Matches; keys sort in
  // code point order, which is Go's byte order of UTF-8).
  function matches(key, filter) { return !filter || key.toLowerCase().includes(filter.toLowerCase()); }
  function byKey(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a.charCodeAt(i) !== b.charCodeAt(i)) return a.codePointAt(i) < b.codePointAt(i) ? -1 : 1;
    }
    return a.length - b.length;
  }
  function scopeOf(list) { return list.id.replace(/^entries-/, ''); }
  // Never an older state over a newer one: every part carries the version
  // it shows (data-v), and one older than what the page has is dropped (a
  // push read before this page's own write, an answer that comes late).
  function older(incoming, current) { return Number(incoming.dataset.v) < Number(current.dataset.v); }
  function upsert(list, row) {
    if (older(row, list)) return []; // the list already holds it
    const tbody = list.querySelector('tbody');
    const v = Number(row.dataset.v);
    if (row.hasAttribute('data-cleared')) {
      for (const tr of [...tbody.rows]) if (Number(tr.dataset.v) < v) tr.remove();
      return [];
    }
    const key = row.dataset.key;
    const rows = [...tbody.rows];
    const old = rows.find(tr => tr.dataset.key === key);
    if (old) {
      if (Number(old.dataset.v) >= v) return [];
      if (row.hasAttribute('data-deleted')) old.remove();
      else old.replaceWith(row);
      return row.isConnected ? [row] : [];
    }
    if (row.hasAttribute('data-deleted') || !matches(key, list.dataset.q)) return [];
    const next = rows.find(tr => byKey(tr.dataset.key, key) > 0);
    if (!next && list.querySelector('.more')) return []; // after the rows shown
    tbody.insertBefore(row, next || null);
    return [row];
  }
  function remember(scope, row) {
    let rows = pushed.get(scope);
    if (!rows) pushed.set(scope, rows = []);
    rows.push(row.cloneNode(true));
    if (rows.length > pushedMax) rows.shift();
  }
  function replay(list, since) {
    const placed = [];
    for (const row of pushed.get(scopeOf(list)) || []) {
      if (Number(row.dataset.v) > since) placed.push(...upsert(list, row.cloneNode(true)));
    }
    return placed;
  }
  function entries(list, incoming) {
    if (older(incoming, list)) return [];
    const since = Number(incoming.dataset.v);
    if (!incoming.hasAttribute('data-append')) {
      list.replaceWith(incoming);
      const filter = document.getElementById('filter-' + scopeOf(incoming));
      // A list drawn for another filter (a join that crossed a new one):
      // ask for this one.
      if (filter && filter.value !== (incoming.dataset.q || '')) htmx.trigger(filter, 'search');
      return [incoming, ...replay(incoming, since)];
    }
    const tbody = list.querySelector('tbody');
    const added = [];
    for (const tr of [...incoming.querySelector('tbody').rows]) {
      const old = [...tbody.rows].find(r => r.dataset.key === tr.dataset.key);
      if (old && Number(old.dataset.v) >= Number(tr.dataset.v)) continue;
      if (old) old.replaceWith(tr); else tbody.append(tr);
      added.push(tr);
    }
    list.querySelector('.more')?.remove();
    const more = incoming.querySelector('.more');
    if (more) { list.append(more); added.push(more); }
    return [...added, ...replay(list, since)];
  }
  // A bound control's new value (hx-swap="field"): a <data> with the value
  // and its versions, then who set it. A control that holds an unsaved edit
  // takes none of it: its save still names the version the edit began
  // from, so a change made meanwhile is a conflict, not lost.
  function setField(field, fragment) {
    const data = fragment.firstElementChild;
    if (field.hasAttribute('data-dirty') || older(data, field)) return;
    const input = field.querySelector('[data-bound]');
    field.dataset.v = data.dataset.v;
    field.dataset.version = data.dataset.version;
    give(input, data.value);
    if (shown(input) !== data.value) show(input, data.value);
    data.remove();
    field.querySelector('.origin-slot').replaceChildren(...fragment.childNodes);
  }
  let api = null; // htmx's, for its morph
  document.addEventListener('DOMContentLoaded', () => {
    if (!window.htmx) return;
    htmx.registerExtension('scopes', {
      init(internal) { api = internal; },
      handle_swap(style, target, fragment) {
        const el = fragment.firstElementChild;
        if (style === 'newer') { // a counter, a key count, the greeting
          if (el && !older(el, target)) api.morph(target, fragment, false);
          return [target];
        }
        if (style === 'field') {
          if (el) setField(target, fragment);
          return [];
        }
        if (style === 'upsert') {
          if (!el) return [];
          remember(scopeOf(target), el);
          return upsert(target, el);
        }
        if (style === 'entries') return el ? entries(target, el) : [];
        return false;
      },
    });
  });

  // The url scope: values in the page's own address, one query parameter
  // per key. The server drew the page from it; a change replaces the
  // address (debounced like a save, no history entry per keystroke), within
  // the bound the panel names.
  function statusOf(el, state, text) {
    const out = el.closest('.field').querySelector('.status');
    out.dataset.state = state;
    out.textContent = text;
  }
  const debounced = new Map();
  function later(el, fn) {
    clearTimeout(debounced.get(el));
    debounced.set(el, setTimeout(fn, 250));
  }
  document.addEventListener('input', e => {
    const el = e.target;
    if (el.dataset && el.dataset.urlKey) {
      statusOf(el, 'editing', 'Editing…');
      later(el, () => {
        const q = new URLSearchParams(location.search);
        if (el.value === '') q.delete(el.dataset.urlKey); else q.set(el.dataset.urlKey, el.value);
        const query = q.toString();
        const max = Number(document.getElementById('panel-url').dataset.max);
        if (query.length > max) {
          statusOf(el, 'error', `Too long: a link holds at most ${max} bytes of query; the address was not changed.`);
          return;
        }
        history.replaceState(history.state, '', location.pathname + (query ? '?' + query : '') + location.hash);
        statusOf(el, 'saved', 'In the address.');
      });
    } else if (el.dataset && el.dataset.localKey) {
      statusOf(el, 'editing', 'Editing…');
      later(el, () => setLocal(el));
    }
  });

  // The local scope: values in this browser's localStorage, under a prefix
  // of their own, never sent to the server. The page draws them itself, by
  // the rules the server sent with the panel (a value's size, the keys a
  // scope holds); the browser's other tabs follow through the storage event
  // (which fires in them only, and with no key on a clear), server or not.
  const localPanel = () => document.getElementById('panel-local');
  function localKeys() {
    const prefix = localPanel().dataset.prefix;
    const keys = [];
    for (let i = 0; i < localStorage.length; i++) {
      const k = localStorage.key(i);
      if (k.startsWith(prefix)) keys.push(k.slice(prefix.length));
    }
    return keys.sort(byKey);
  }
  function setLocal(el) {
    const panel = localPanel();
    const key = el.dataset.localKey, json = JSON.stringify(el.value);
    if (new TextEncoder().encode(json).length > Number(panel.dataset.valueBytes)) {
      statusOf(el, 'error', `Too large: a value holds at most ${panel.dataset.valueBytes} bytes; not saved.`);
      return;
    }
    if (!localStorage.getItem(panel.dataset.prefix + key) && localKeys().length >= Number(panel.dataset.keys)) {
      statusOf(el, 'error', 'Too many keys in this scope: delete some first.');
      return;
    }
    try {
      localStorage.setItem(panel.dataset.prefix + key, json);
    } catch (err) {
      statusOf(el, 'error', "This browser's storage is full: not saved.");
      return;
    }
    statusOf(el, 'saved', 'Saved in this browser.');
    drawLocal(false);
  }
  function drawLocal(fields) {
    const panel = localPanel();
    if (!panel) return;
    const prefix = panel.dataset.prefix;
    if (fields) {
      for (const el of panel.querySelectorAll('[data-local-key]')) {
        if (el.closest('.field').querySelector('.status').dataset.state === 'editing') continue; // typed, not yet saved
        let v = '';
        try { v = JSON.parse(localStorage.getItem(prefix + el.dataset.localKey) ?? '""'); } catch (err) { v = ''; }
        el.value = typeof v === 'string' ? v : JSON.stringify(v);
      }
    }
    const rows = localKeys().map(key => {
      const tr = document.createElement('tr');
      tr.dataset.key = key;
      const th = document.createElement('th');
      th.scope = 'row';
      th.className = 'key';
      th.textContent = key;
      const td = document.createElement('td');
      const code = document.createElement('code');
      code.className = 'json';
      code.textContent = localStorage.getItem(prefix + key);
      td.append(code);
      const act = document.createElement('td');
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'delete';
      del.dataset.localDelete = key;
      del.setAttribute('aria-label', 'Delete ' + key);
      del.textContent = 'Delete';
      act.append(del);
      tr.append(th, td, act);
      return tr;
    });
    panel.querySelector('tbody').replaceChildren(...rows);
    document.getElementById('count-local').textContent = `(${rows.length} ${rows.length === 1 ? 'key' : 'keys'})`;
  }
  document.addEventListener('click', e => {
    const panel = localPanel();
    const del = e.target.closest('[data-local-delete]');
    if (del) {
      localStorage.removeItem(panel.dataset.prefix + del.dataset.localDelete);
      document.getElementById('inspector-status-local').textContent = `Deleted "${del.dataset.localDelete}".`;
      drawLocal(true);
    } else if (e.target.closest('[data-local-clear]')) {
      if (!confirm('Delete every key of the Local scope?')) return;
      const keys = localKeys();
      for (const k of keys) localStorage.removeItem(panel.dataset.prefix + k);
      document.getElementById('inspector-status-local').textContent = `Cleared ${keys.length} keys.`;
      drawLocal(true);
    }
  });
  addEventListener('storage', e => {
    const panel = localPanel();
    if (panel && (e.key === null || e.key.startsWith(panel.dataset.prefix))) drawLocal(true);
  });
  document.addEventListener('DOMContentLoaded', () => drawLocal(true));

  // The Tab color tints this tab's favicon too, in the stylesheet's color.
  let tinted = null;
  function tint() {
    const color = getComputedStyle(document.documentElement).getPropertyValue('--tab-tint').trim();
    if (color === tinted) return;
    tinted = color;
    const icon = document.querySelector('link[rel="icon"]');
    if (!icon) return;
    icon.dataset.plain ??= icon.href;
    icon.href = color ? 'data:image/svg+xml,' + encodeURIComponent(
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="2" y="2" width="28" height="28" rx="6" fill="${color}"/></svg>`) : icon.dataset.plain;
  }
  document.addEventListener('change', tint);

  // A conflict's buttons: take their value, or save mine over it, knowingly.
  document.addEventListener('click', e => {
    const button = e.target.closest('[data-take-theirs], [data-keep-mine]');
    const f = button && button.closest('.field');
    if (!f) return;
    const input = f.querySelector('[data-bound]');
    f.dataset.version = button.dataset.version;
    if (button.hasAttribute('data-take-theirs')) {
      give(input, button.dataset.value);
      show(input, button.dataset.value);
      setState(f, 'saved', 'Took theirs.');
    } else {
      setState(f, 'saving', 'Saving…');
      htmx.trigger(input, 'save'); // unchanged since the refusal: "change changed" would not fire
    }
    input.focus();
  });

  // What the server drew without knowing the tab, and the times, the feed
  // and the title, after every swap and every few seconds.
  function tabName() {
    const el = document.getElementById('tab-name');
    return el && /^Tab \d+$/.test(el.textContent) ? el.textContent : null;
  }
  function ago(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 48 * 3600) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' days ago';
  }
  function refresh() {
    const mine = tabName();
    if (mine) {
      for (const el of document.querySelectorAll('[data-origin="other-tab"][data-tab-name]')) {
        if (el.dataset.tabName !== mine) continue;
        el.dataset.origin = 'this-tab';
        const who = el.querySelector('.who');
        if (who) who.textContent = 'by this tab';
      }
      const title = document.querySelector('title');
      const want = mine + ' · ' + title.dataset.page + ' · Storage scopes';
      if (document.title !== want) document.title = want;
    }
    const now = Date.now();
    for (const t of document.querySelectorAll('time[data-relative]')) {
      const text = ago(now - Date.parse(t.getAttribute('datetime')));
      if (t.textContent !== text) t.textContent = text;
    }
    const feed = document.getElementById('activity');
    if (feed) {
      const seen = new Set();
      const items = [...feed.children].filter(li => !seen.has(li.id) && seen.add(li.id));
      items.sort((a, b) => Number(b.dataset.at) - Number(a.dataset.at));
      const keep = items.slice(0, Number(feed.dataset.max) || 20);
      if (keep.length !== feed.children.length || keep.some((li, i) => feed.children[i] !== li)) feed.replaceChildren(...keep);
    }
  }
  document.addEventListener('htmx:after:swap', refresh);
  document.addEventListener('DOMContentLoaded', refresh);
  setInterval(refresh, 5000);

  // A change that arrives live is marked for a moment: the controls and
  // inspector rows whose version went up, made elsewhere.
  let before = null;
  function versions() {
    const v = new Map();
    for (const el of document.querySelectorAll('.field[data-version], tr[data-version]')) {
      v.set(el.id || el.closest('[id]').id + '/' + el.dataset.key, el.dataset.version);
    }
    return v;
  }
  document.addEventListener('htmx:ws:before:message:incoming', () => { before = versions(); });
  document.addEventListener('htmx:ws:after:message:incoming', () => {
    if (!before) return;
    for (const el of document.querySelectorAll('.field[data-version], tr[data-version]')) {
      const id = el.id || el.closest('[id]').id + '/' + el.dataset.key;
      const was = before.get(id);
      if (was === undefined || Number(el.dataset.version) <= Number(was)) continue;
      if (el.querySelector('[data-origin="this-tab"]')) continue;
      el.classList.remove('arrived');
      void el.offsetWidth; // restart the mark
      el.classList.add('arrived');
      setTimeout(() => el.classList.remove('arrived'), 1200);
    }
    before = null;
  });

  // The live connection: connected / reconnecting, and, while connected,
  // the storage's state the server pushes into #storage-health
  // (data-state "unavailable" and its words when it has a fault).
  let socket = 'reconnecting';
  function setLive(state) {
    if (state) socket = state;
    const live = document.getElementById('live');
    if (!live) return;
    const health = document.getElementById('storage-health');
    const fault = socket === 'connected' && health && health.dataset.health !== 'ok';
    live.dataset.state = fault ? 'unavailable' : socket;
    let text = fault ? health.textContent : socket === 'connected' ? 'Live' : 'Reconnecting…';
    live.dataset.pending = String(pending.size);
    if (pending.size) text += ` · ${pending.size} ${pending.size === 1 ? 'edit' : 'edits'} waiting`;
    const said = live.querySelector('.live-text');
    if (said.textContent !== text) said.textContent = text; // else the observer below would loop
  }
  document.addEventListener('DOMContentLoaded', () => {
    const live = document.getElementById('live');
    if (live) new MutationObserver(() => setLive()).observe(live, {subtree: true, attributeFilter: ['data-health'], childList: true, characterData: true});
  });
  // The boot this page loaded on: a reconnect names it, and the server says
  // when it started again since (the client scope is gone then).
  let bootAtLoad = null;
  document.addEventListener('htmx:ws:before:connection', e => {
    if (bootAtLoad === null) bootAtLoad = document.getElementById('boot-number')?.textContent || '';
    const u = new URL(e.detail.connection.url);
    u.searchParams.set('tab', tabID);
    u.searchParams.set('client', clientID);
    if (bootAtLoad) u.searchParams.set('boot', bootAtLoad);
    // What the inspectors show, so that the join draws just that.
    for (const list of document.querySelectorAll('.entries')) {
      const scope = scopeOf(list), rows = list.querySelector('tbody').rows.length;
      u.searchParams.delete('q-' + scope);
      u.searchParams.delete('n-' + scope);
      if (list.dataset.q) u.searchParams.set('q-' + scope, list.dataset.q);
      if (rows > Number(list.dataset.window)) u.searchParams.set('n-' + scope, String(rows));
    }
    e.detail.connection.url = u.href;
  });
  document.addEventListener('htmx:ws:after:connection', () => setLive('connected'));
  document.addEventListener('htmx:ws:close', () => setLive('reconnecting'));
  document.addEventListener('htmx:ws:error', () => setLive('reconnecting'));
  // Restored from the back/forward cache: hx-ws closed the socket on
  // pagehide, so open it again (the server then sends a fresh snapshot).
  addEventListener('pageshow', e => {
    const live = document.getElementById('live');
    if (e.persisted && live && window.htmx) {
      setLive('reconnecting');
      htmx.process(live, true);
    }
  });
})();
