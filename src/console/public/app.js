// The Stampede operator console (docs/console.md). Plain ES modules, no build step: Preact + htm
// for the views, uPlot for the chart, all served by Stampede itself. The partner's API key lives in
// sessionStorage only and travels in the X-API-Key header (the live stream is read with fetch, not
// EventSource, precisely so that the key never goes into a URL).
import { h, render } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
const KEY_STORE = 'stampede.console.apiKey';
const JOBS_STORE = 'stampede.console.jobs';
const CHART_POINTS = 120;
const OUTCOME_SERIES = [
  { key: 'issued', label: 'issued', stroke: '#1a7f37' },
  { key: 'sold_out', label: 'sold out', stroke: '#b42318' },
  { key: 'limit_reached', label: 'limit reached', stroke: '#9a6700' },
  { key: 'paused', label: 'paused', stroke: '#8250df' },
  { key: 'refused_other', label: 'not open / closed / other', stroke: '#57606a' },
];

// ---- API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORE);
}

async function api(path, { method = 'GET', body, key = apiKey() } = {}) {
  const headers = { 'x-api-key': key ?? '', accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    if (response.status === 401 && key === apiKey()) signOut();
    throw new ApiError(response.status, json?.error?.code ?? `HTTP_${response.status}`, json?.error?.message ?? response.statusText);
  }
  return json;
}

function signOut() {
  sessionStorage.removeItem(KEY_STORE);
  location.hash = '#/';
  window.dispatchEvent(new Event('stampede-auth'));
}

/** Reads GET /v1/coupon-templates/{id}/live: one `stats` frame a second, reconnecting after a drop. */
function useLiveStream(templateId) {
  const [frame, setFrame] = useState(undefined);
  const [state, setState] = useState('connecting');
  const [error, setError] = useState(undefined);
  useEffect(() => {
    const abort = new AbortController();
    let retry;
    const connect = async () => {
      try {
        const response = await fetch(`/v1/coupon-templates/${encodeURIComponent(templateId)}/live`, {
          headers: { 'x-api-key': apiKey() ?? '', accept: 'text/event-stream' }, signal: abort.signal,
        });
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          if (response.status === 401) return signOut();
          throw new ApiError(response.status, body?.error?.code ?? `HTTP_${response.status}`, body?.error?.message ?? '');
        }
        setState('live');
        setError(undefined);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data += line.slice(5).trim();
            }
            if (event === 'stats' && data) setFrame({ ...JSON.parse(data), receivedAt: Date.now() });
          }
        }
      } catch (caught) {
        if (abort.signal.aborted) return;
        setError(caught instanceof ApiError ? `${caught.code}: ${caught.message}` : 'connection lost');
      }
      if (abort.signal.aborted) return;
      setState('reconnecting');
      retry = setTimeout(connect, 2_000);
    };
    void connect();
    return () => {
      abort.abort();
      clearTimeout(retry);
    };
  }, [templateId]);
  return { frame, state, error };
}

// ---- formatting ---------------------------------------------------------------------------

const number = new Intl.NumberFormat('en');
const fmt = (value) => (value === null || value === undefined ? '—' : number.format(value));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
const duration = (seconds) => {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5_400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3_600).toFixed(1)} h`;
};

function templateStatus(t, now = Date.now()) {
  if (now < Date.parse(t.claimStartsAt)) return 'scheduled';
  if (now >= Date.parse(t.claimEndsAt)) return 'ended';
  if (t.paused) return 'paused';
  if (t.totalQuantity !== null && t.issuedCount >= t.totalQuantity) return 'sold_out';
  return 'open';
}

const Badge = ({ status }) => html`<span class=${`badge ${status}`}>${String(status).replace('_', ' ')}</span>`;

// ---- routing ------------------------------------------------------------------------------

function useHashRoute() {
  const [hash, setHash] = useState(location.hash || '#/events');
  useEffect(() => {
    const onChange = () => setHash(location.hash || '#/events');
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
}

// ---- pages --------------------------------------------------------------------------------

function SignIn() {
  const [key, setKey] = useState('');
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await api('/v1/coupon-templates?limit=1', { key: key.trim() });
      sessionStorage.setItem(KEY_STORE, key.trim());
      if (!location.hash || location.hash === '#/') location.hash = '#/events';
      window.dispatchEvent(new Event('stampede-auth'));
    } catch (caught) {
      setError(caught instanceof ApiError && caught.status === 401 ? 'This API key is not valid.' : `Sign-in failed: ${caught.message}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <h1>Stampede console</h1>
    <p class="muted">Sign in with a partner API key. It is kept in this tab only (sessionStorage) and forgotten when the tab closes.</p>
    <form onSubmit=${submit}>
      <label for="api-key">API key</label>
      <input id="api-key" type="password" autocomplete="off" spellcheck="false" required value=${key} onInput=${(e) => setKey(e.currentTarget.value)} />
      <p><button class="primary" type="submit" disabled=${busy || !key.trim()}>Sign in</button></p>
      ${error && html`<p class="message error" role="alert">${error}</p>`}
    </form>
  </main>`;
}

function EventsPage() {
  const [items, setItems] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [error, setError] = useState(undefined);
  const load = useCallback(async (after) => {
    try {
      const page = await api(`/v1/coupon-templates?limit=50${after ? `&cursor=${encodeURIComponent(after)}` : ''}`);
      setItems((previous) => (after ? [...previous, ...page.items] : page.items));
      setCursor(page.nextCursor ?? undefined);
      setError(undefined);
    } catch (caught) {
      setError(caught.message);
    }
  }, []);
  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), 10_000);
    return () => clearInterval(timer);
  }, [load]);
  return html`<section aria-labelledby="events-title">
    <h1 id="events-title">Events</h1>
    ${error && html`<p class="message error" role="alert">${error}</p>`}
    <div class="table-wrap"><table>
      <caption class="visually-hidden">Coupon events, newest first</caption>
      <thead><tr><th scope="col">Event</th><th scope="col">Status</th><th scope="col" class="num">Issued / total</th><th scope="col">Window</th></tr></thead>
      <tbody>
        ${items.map((t) => html`<tr key=${t.id}>
          <td><a href=${`#/events/${t.id}`}>${t.name}</a></td>
          <td><${Badge} status=${templateStatus(t)} /></td>
          <td class="num">${fmt(t.issuedCount)} / ${t.totalQuantity === null ? '∞' : fmt(t.totalQuantity)}</td>
          <td>${when(t.claimStartsAt)} – ${when(t.claimEndsAt)}</td>
        </tr>`)}
        ${items.length === 0 && html`<tr><td colspan="4" class="muted">No events yet.</td></tr>`}
      </tbody>
    </table></div>
    ${cursor && html`<p><button type="button" onClick=${() => load(cursor)}>Load more</button></p>`}
  </section>`;
}

function ClaimsChart({ points }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(280, box.current.clientWidth - 8);
    plot.current = new uPlot({
      width, height: 220,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(5, max * 1.1)] } },
      axes: [{}, { label: 'claims / s', size: 60 }],
      series: [{}, ...OUTCOME_SERIES.map((s) => ({ label: s.label, stroke: s.stroke, width: 2, points: { show: false } }))],
      legend: { show: true },
    }, [[], ...OUTCOME_SERIES.map(() => [])], box.current);
    const resize = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(280, box.current.clientWidth - 8), height: 220 }));
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData([points.map((p) => p.t), ...OUTCOME_SERIES.map((s) => points.map((p) => p[s.key]))]);
  }, [points]);
  return html`<figure class="chart-figure">
    <div class="chart" ref=${box} role="img" aria-label="Claims per second by outcome over the last two minutes"></div>
  </figure>`;
}

/** The pause / resume / stock / end-now controls; every change goes through a confirmation step. */
function EventControls({ template, live, onChanged }) {
  const [pending, setPending] = useState(undefined);
  const [stock, setStock] = useState('');
  const [message, setMessage] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const confirmButton = useRef(null);
  const paused = live?.paused ?? template.paused ?? false;
  useEffect(() => { if (pending) confirmButton.current?.focus(); }, [pending]);

  const ask = (action) => { setMessage(undefined); setPending(action); };
  const apply = async () => {
    setBusy(true);
    try {
      await api(`/v1/coupon-templates/${template.id}`, { method: 'PATCH', body: pending.body });
      setMessage({ ok: true, text: pending.done });
      onChanged();
    } catch (caught) {
      setMessage({ ok: false, text: `${caught.code ?? 'ERROR'}: ${caught.message}` });
    } finally {
      setBusy(false);
      setPending(undefined);
    }
  };
  const stockValue = Number.parseInt(stock, 10);
  return html`<section aria-labelledby="controls-title">
    <h2 id="controls-title">Controls</h2>
    <div class="controls">
      ${paused
        ? html`<button type="button" class="primary" onClick=${() => ask({ body: { paused: false }, question: `Resume claims for “${template.name}”?`, done: 'Claims resumed.', label: 'Resume' })}>Resume claims</button>`
        : html`<button type="button" onClick=${() => ask({ body: { paused: true }, question: `Pause claims for “${template.name}”? Claims will be refused with CLAIM_PAUSED until you resume.`, done: 'Claims paused.', label: 'Pause' })}>Pause claims</button>`}
      <form class="inline" onSubmit=${(e) => {
        e.preventDefault();
        if (Number.isInteger(stockValue) && stockValue >= 0) ask({ body: { totalQuantity: stockValue }, question: `Set the total stock of “${template.name}” to ${fmt(stockValue)}?`, done: `Stock set to ${fmt(stockValue)}.`, label: 'Set stock' });
      }}>
        <div>
          <label for="stock-input">Total stock</label>
          <input id="stock-input" type="number" min="0" step="1" inputmode="numeric" placeholder=${live?.totalQuantity ?? template.totalQuantity ?? ''} value=${stock} onInput=${(e) => setStock(e.currentTarget.value)} />
        </div>
        <button type="submit" disabled=${!(Number.isInteger(stockValue) && stockValue >= 0)}>Set stock</button>
      </form>
      <button type="button" class="danger" onClick=${() => ask({ body: { claimEndsAt: new Date().toISOString() }, question: `End “${template.name}” now? The claim window closes at once and cannot be reopened from here without a new end time.`, done: 'Event ended.', label: 'End now', fresh: true })}>End now</button>
    </div>
    ${pending && html`<div class="confirm" role="alertdialog" aria-modal="false" aria-labelledby="confirm-question"
        onKeyDown=${(e) => { if (e.key === 'Escape') setPending(undefined); }}>
      <p id="confirm-question"><strong>${pending.question}</strong></p>
      <div class="actions">
        <button type="button" class="primary" ref=${confirmButton} disabled=${busy}
          onClick=${() => { if (pending.fresh) pending.body = { claimEndsAt: new Date().toISOString() }; void apply(); }}>Confirm: ${pending.label}</button>
        <button type="button" onClick=${() => setPending(undefined)}>Cancel</button>
      </div>
    </div>`}
    ${message && html`<p class=${message.ok ? 'message' : 'message error'} role="status">${message.text}</p>`}
  </section>`;
}

function EventPage({ id }) {
  const [template, setTemplate] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [points, setPoints] = useState([]);
  const { frame, state, error: streamError } = useLiveStream(id);
  const [, tick] = useState(0);
  const reload = useCallback(async () => {
    try {
      setTemplate(await api(`/v1/coupon-templates/${encodeURIComponent(id)}`));
    } catch (caught) {
      setError(`${caught.code}: ${caught.message}`);
    }
  }, [id]);
  useEffect(() => { void reload(); }, [reload]);
  useEffect(() => {
    const timer = setInterval(() => tick((n) => n + 1), 1_000);
    return () => clearInterval(timer);
  }, []);
  useEffect(() => {
    if (!frame) return;
    const c = frame.claimsPerSecond;
    const point = { t: Date.parse(frame.at) / 1000, issued: c.issued, sold_out: c.sold_out, limit_reached: c.limit_reached, paused: c.paused, refused_other: c.not_open + c.closed + c.other };
    setPoints((previous) => [...previous.slice(-(CHART_POINTS - 1)), point]);
  }, [frame]);

  if (error) return html`<section><h1>Event</h1><p class="message error" role="alert">${error}</p><p><a href="#/events">Back to events</a></p></section>`;
  if (!template) return html`<section><h1>Event</h1><p class="muted">Loading…</p></section>`;
  const stale = !frame || Date.now() - frame.receivedAt > 5_000;
  const c = frame?.claimsPerSecond;
  const refusedPerSecond = c ? c.sold_out + c.limit_reached + c.not_open + c.closed + c.paused + c.other : undefined;
  return html`<section aria-labelledby="event-title">
    <p><a href="#/events">← Events</a></p>
    <h1 id="event-title">${template.name} ${frame && html`<${Badge} status=${frame.status} />`}</h1>
    <p class=${`connection ${stale ? 'stale' : 'live'}`} role="status">${stale ? (streamError ?? (state === 'live' ? 'waiting for data…' : `${state}…`)) : 'live, updated every second'}</p>
    <dl class="stats">
      <div class="stat"><dt>Remaining</dt><dd data-testid="remaining">${frame ? (frame.remaining === null ? '∞' : fmt(frame.remaining)) : '—'}</dd></div>
      <div class="stat"><dt>Issued / total</dt><dd data-testid="issued">${fmt(frame?.issued)} <small>/ ${frame?.totalQuantity === null ? '∞' : fmt(frame?.totalQuantity)}</small></dd></div>
      <div class="stat"><dt>Claims / s issued</dt><dd data-testid="issued-rate">${fmt(c?.issued)}</dd></div>
      <div class="stat"><dt>Claims / s refused</dt><dd data-testid="refused-rate">${fmt(refusedPerSecond)} ${c?.paused ? html`<small>(${fmt(c.paused)} paused)</small>` : ''}</dd></div>
      <div class="stat"><dt>p99 claim latency</dt><dd data-testid="p99">${frame?.p99Ms === null || !frame ? '—' : `${fmt(frame.p99Ms)} ms`}</dd></div>
      <div class="stat"><dt>Persisted</dt><dd data-testid="persisted">${fmt(frame?.persisted)} <small>lag ${frame ? `${fmt(frame.persisterLag.pending)} · ${frame.persisterLag.seconds.toFixed(1)} s` : '—'}</small></dd></div>
    </dl>
    <p class="muted">Window: ${when(frame?.claimStartsAt ?? template.claimStartsAt)} – ${when(frame?.claimEndsAt ?? template.claimEndsAt)}. Rates and p99 are those of the process serving this page.</p>
    <${ClaimsChart} points=${points} />
    <${EventControls} template=${template} live=${frame} onChanged=${reload} />
  </section>`;
}

function JobCard({ id, onForget }) {
  const [job, setJob] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [failures, setFailures] = useState(undefined);
  const samples = useRef([]);
  useEffect(() => {
    let timer;
    let stopped = false;
    const poll = async () => {
      try {
        const next = await api(`/v1/jobs/${encodeURIComponent(id)}`);
        samples.current = [...samples.current.slice(-9), { at: Date.now(), processed: next.processed }];
        setJob(next);
        setError(undefined);
        if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(next.status)) return;
      } catch (caught) {
        setError(`${caught.code}: ${caught.message}`);
        if (caught.status === 404) return;
      }
      if (!stopped) timer = setTimeout(poll, 1_000);
    };
    void poll();
    return () => { stopped = true; clearTimeout(timer); };
  }, [id]);
  const showFailures = async () => {
    try {
      setFailures((await api(`/v1/jobs/${encodeURIComponent(id)}/failures?limit=50`)).items);
    } catch (caught) {
      setError(`${caught.code}: ${caught.message}`);
    }
  };
  const first = samples.current[0];
  const last = samples.current.at(-1);
  const rate = first && last && last.at > first.at ? ((last.processed - first.processed) * 1000) / (last.at - first.at) : undefined;
  const total = job?.total ?? null;
  const percent = job && total ? Math.min(100, Math.floor((job.processed / total) * 100)) : job?.status === 'SUCCEEDED' ? 100 : 0;
  const eta = job && total && rate ? (total - job.processed) / rate : undefined;
  return html`<article class="job" aria-labelledby=${`job-${id}`}>
    <header>
      <strong id=${`job-${id}`}>${job?.type ?? 'Job'} <code>${id}</code></strong>
      ${job && html`<${Badge} status=${job.status} />`}
      <button type="button" onClick=${onForget} aria-label=${`Stop watching job ${id}`}>Forget</button>
    </header>
    ${error && html`<p class="message error" role="alert">${error}</p>`}
    ${job && html`<div class="progress">
      <progress max="100" value=${percent} aria-label=${`Progress of job ${id}`} aria-valuetext=${`${percent}%`}></progress>
      <span data-testid="job-percent">${percent}%</span>
    </div>
    <ul class="facts">
      <li>${fmt(job.processed)} / ${total === null ? '?' : fmt(total)} processed</li>
      <li>rate ${rate === undefined ? '—' : `${fmt(Math.round(rate))}/s`}</li>
      <li>ETA ${['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(job.status) ? 'done' : eta === undefined ? '—' : duration(eta)}</li>
      <li>${fmt(job.succeeded)} succeeded</li><li>${fmt(job.skipped)} skipped</li><li>${fmt(job.failed)} failed</li>
      ${job.notServed ? html`<li>${fmt(job.notServed)} not served</li>` : ''}
    </ul>
    ${job.error && html`<p class="message error">${job.error}</p>`}
    ${job.failed > 0 && html`<p><button type="button" onClick=${showFailures}>Show failures</button></p>`}
    ${failures && html`<div class="table-wrap"><table>
      <caption class="visually-hidden">Failed items of job ${id}</caption>
      <thead><tr><th scope="col" class="num">Line</th><th scope="col">Item</th><th scope="col">Reason</th></tr></thead>
      <tbody>${failures.map((f) => html`<tr key=${f.position}><td class="num">${f.position}</td><td>${f.item}</td><td>${f.reason}</td></tr>`)}</tbody>
    </table></div>`}`}
  </article>`;
}

function JobsPage() {
  const [ids, setIds] = useState(() => JSON.parse(sessionStorage.getItem(JOBS_STORE) ?? '[]'));
  const [input, setInput] = useState('');
  const save = (next) => { setIds(next); sessionStorage.setItem(JOBS_STORE, JSON.stringify(next)); };
  const add = (event) => {
    event.preventDefault();
    const id = input.trim();
    if (id && !ids.includes(id)) save([id, ...ids].slice(0, 20));
    setInput('');
  };
  return html`<section aria-labelledby="jobs-title">
    <h1 id="jobs-title">Jobs</h1>
    <form class="inline" onSubmit=${add}>
      <div><label for="job-id">Job id</label><input id="job-id" value=${input} size="38" spellcheck="false" onInput=${(e) => setInput(e.currentTarget.value)} /></div>
      <button type="submit" class="primary" disabled=${!input.trim()}>Watch job</button>
    </form>
    <p class="muted">Job ids are answered by the distribution and accrual routes (202 <code>jobId</code>).</p>
    ${ids.map((id) => html`<${JobCard} key=${id} id=${id} onForget=${() => save(ids.filter((other) => other !== id))} />`)}
  </section>`;
}

function UsersPage() {
  const [input, setInput] = useState('');
  const [result, setResult] = useState(undefined);
  const [error, setError] = useState(undefined);
  const look = async (event) => {
    event.preventDefault();
    const userId = input.trim();
    if (!userId) return;
    setError(undefined);
    try {
      const user = encodeURIComponent(userId);
      const [coupons, points, history] = await Promise.all([
        api(`/v1/users/${user}/coupons?limit=50`),
        api(`/v1/users/${user}/points`),
        api(`/v1/users/${user}/points/transactions?limit=50`),
      ]);
      setResult({ userId, coupons: coupons.items, points, history: history.items });
    } catch (caught) {
      setResult(undefined);
      setError(`${caught.code}: ${caught.message}`);
    }
  };
  return html`<section aria-labelledby="users-title">
    <h1 id="users-title">User look-up</h1>
    <form class="inline" onSubmit=${look}>
      <div><label for="user-id">User id</label><input id="user-id" value=${input} spellcheck="false" onInput=${(e) => setInput(e.currentTarget.value)} /></div>
      <button type="submit" class="primary" disabled=${!input.trim()}>Look up</button>
    </form>
    ${error && html`<p class="message error" role="alert">${error}</p>`}
    ${result && html`<div>
      <h2>Points of ${result.userId}</h2>
      <p>Balance: <strong data-testid="balance">${fmt(result.points.balance)}</strong>
        ${result.points.expiring.length > 0 && html` · next expiry ${fmt(result.points.expiring[0].amount)} on ${when(result.points.expiring[0].expiresAt)}`}</p>
      <div class="table-wrap"><table>
        <caption class="visually-hidden">Point history</caption>
        <thead><tr><th scope="col">When</th><th scope="col">Type</th><th scope="col" class="num">Amount</th><th scope="col">Order</th><th scope="col">Reason</th></tr></thead>
        <tbody>${result.history.map((tx) => html`<tr key=${tx.id}><td>${when(tx.createdAt)}</td><td>${tx.type}</td><td class="num">${fmt(tx.amount)}</td><td>${tx.orderId ?? ''}</td><td>${tx.reason ?? ''}</td></tr>`)}
        ${result.history.length === 0 && html`<tr><td colspan="5" class="muted">No point history.</td></tr>`}</tbody>
      </table></div>
      <h2>Coupons</h2>
      <div class="table-wrap"><table>
        <caption class="visually-hidden">Coupons of the user</caption>
        <thead><tr><th scope="col">Coupon</th><th scope="col">Status</th><th scope="col">Valid until</th><th scope="col">Used on order</th></tr></thead>
        <tbody>${result.coupons.map((c) => html`<tr key=${c.id}><td>${c.template.name}</td><td><${Badge} status=${c.status} /></td><td>${when(c.validUntil)}</td><td>${c.orderId ?? ''}</td></tr>`)}
        ${result.coupons.length === 0 && html`<tr><td colspan="4" class="muted">No coupons.</td></tr>`}</tbody>
      </table></div>
    </div>`}
  </section>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(apiKey()));
  const route = useHashRoute();
  useEffect(() => {
    const onAuth = () => setSignedIn(Boolean(apiKey()));
    window.addEventListener('stampede-auth', onAuth);
    return () => window.removeEventListener('stampede-auth', onAuth);
  }, []);
  if (!signedIn) return html`<${SignIn} />`;
  const [page, id] = route;
  const link = (href, label, current) => html`<li><a href=${href} aria-current=${current ? 'page' : undefined}>${label}</a></li>`;
  let content;
  if (page === 'jobs') content = html`<${JobsPage} />`;
  else if (page === 'users') content = html`<${UsersPage} />`;
  else if (page === 'events' && id) content = html`<${EventPage} key=${id} id=${id} />`;
  else content = html`<${EventsPage} />`;
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); document.getElementById('main')?.focus(); }}>Skip to content</a>
    <header class="top">
      <span class="brand">Stampede console</span>
      <nav aria-label="Console"><ul>
        ${link('#/events', 'Events', page !== 'jobs' && page !== 'users')}
        ${link('#/jobs', 'Jobs', page === 'jobs')}
        ${link('#/users', 'Users', page === 'users')}
      </ul></nav>
      <button type="button" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main" tabindex="-1">${content}</main>`;
}

const root = document.getElementById('app');
root.textContent = ''; // the boot message: render() would keep it beside the app
render(html`<${App} />`, root);
