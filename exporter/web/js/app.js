// licmon dashboard: the page an organization admin opens to watch license
// usage. Built only on the public HTTP API (API.md §3), so it is also the
// living example for the dashboard service.
import { ApiError, listOrgs as getOrgs, orgApi, request, orgPath, session } from './api.js';
import { $, h, announce, stateIcon, STATE_WORDS, fmtNum, plural } from './dom.js';
import {
  todayIn, isDate, periodRange, longDate, shortDate, dateTime, offsetLabel, duration,
  clockOf, offsetOf, daysBetween,
} from './time.js';
import { renderCards, renderCurrent } from './cards.js';
import { UsageChart } from './usagechart.js';

const USER_TIMEOUTS_MIN = [5, 10, 15, 30, 45, 60, 90, 120];
const LICENSE_TIMEOUTS_MIN = [5, 10, 15, 30, 45, 60, 90, 120, 180, 240, 480, 720, 1440];
const REFRESH_MS = 30000;
const PERIOD_NAMES = {
  today: 'Today', 7: 'Last 7 days', 30: 'Last 30 days', 90: 'Last 90 days',
  180: 'Last 180 days', 365: 'Last 365 days', custom: 'Custom range',
};

const st = {
  org: '',
  orgs: null, // [{org, timezone}] of GET /v1/orgs; null: not known, the org is typed
  api: null,
  tz: 'UTC', // the zone times are shown in
  tzAsked: '', // the org's zone as the API named it (tz is UTC when the browser knows it not)
  licenses: [], // rows of GET /licenses
  inUseAll: 0,
  dupHours: new Set(), // the clock times the day shown has twice (a fall-back day)
  clamped: false, // the usage answer shown covers fewer dates than asked
  integrations: [],
  settings: null,
  applied: null, // {type, period, from, to}
  failed: false, // not all of the applied selection could be loaded
  stats: null,
  statsFor: null, // the applied selection stats answers (null: none yet)
  level: 'days', // days | hours | minutes
  day: null,
  hourLabel: null,
  rows: [],
  seq: 0,
  refreshTimer: 0,
};

const chart = new UsageChart($('#usage-chart'), (i) => pick(i));

// ---------------------------------------------------------------- helpers

function errorText(e, what) {
  if (e instanceof ApiError) {
    if (e.status === 401) return 'Your token is no longer accepted: please sign in again.';
    if (e.status === 404) return `${what}: no organization "${st.org}" for this token.`;
    if (e.status === 403) return `${what}: this token may not do that.`;
    if (e.status === 501) return `${what}: this licmon server does not provide it yet.`;
    if (e.status === 0) return `${what}: the licmon server did not answer.`;
    return `${what}: ${e.message}`;
  }
  return `${what}: ${e && e.message ? e.message : e}`;
}

function showBanner(msg, kind = 'error') {
  const b = $('#banner');
  b.className = kind === 'error' ? 'banner' : 'banner info';
  b.textContent = msg;
  b.hidden = !msg;
}

function fail(e, what) {
  if (e && e.name === 'AbortError') return;
  if (e instanceof ApiError && e.status === 401) {
    signOut('Your token is no longer accepted: please sign in again.');
    return;
  }
  showBanner(errorText(e, what));
}

function license(type) {
  return st.licenses.find((l) => l.type === type);
}

function modelOf(type) {
  if (type === 'all') return 'all';
  const l = license(type);
  return l ? l.model : 'floating';
}

function typeName(type) {
  return type === 'all' ? 'all license types' : type;
}

function rangeText(from, to) {
  if (from === to) return longDate(from);
  return `${longDate(from)} – ${longDate(to)} (${daysBetween(from, to)} days)`;
}

// The org and the selection live in the address (never the token), so a
// reload or a shared link shows the same view.
function setUrl() {
  const u = new URL(window.location.href);
  u.searchParams.set('org', st.org);
  if (st.applied) {
    u.searchParams.set('type', st.applied.type);
    u.searchParams.set('period', st.applied.period);
    for (const k of ['from', 'to'])
      if (st.applied.period === 'custom') u.searchParams.set(k, st.applied[k]);
      else u.searchParams.delete(k);
  }
  window.history.replaceState(null, '', u.pathname + u.search);
}

function periodFromUrl() {
  const q = new URL(window.location.href).searchParams;
  const period = q.get('period');
  if (!period || !Object.hasOwn(PERIOD_NAMES, period)) return;
  if (period === 'custom') {
    const from = q.get('from');
    const to = q.get('to');
    if (!isDate(from) || !isDate(to) || from > to) return;
    $('#from-input').value = from;
    $('#to-input').value = to;
  }
  $('#period-select').value = period;
  $('#custom-range').hidden = period !== 'custom';
}

// ---------------------------------------------------------------- sign-in

function urlOrg() {
  return new URL(window.location.href).searchParams.get('org') || '';
}

// The orgs a token may see ([{org, timezone}], GET /v1/orgs), or null when
// the server cannot tell (then the org is typed). A 401 is thrown.
async function listOrgs(token) {
  try {
    const r = await getOrgs({ token });
    const orgs = Array.isArray(r.orgs) ? r.orgs.filter((o) => o && typeof o.org === 'string') : [];
    return orgs.length ? orgs : null;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) throw e;
    return null;
  }
}

// The org to open from a list: the first wanted one it has (the link's,
// then the remembered ones), else its first.
function chooseOrg(orgs, wanted) {
  const names = orgs.map((o) => o.org);
  return wanted.find((o) => o && names.includes(o)) || names[0];
}

function wantedOrgs() {
  return [urlOrg(), session.org, ...session.orgs()];
}

// The sign-in's org field: only when the list of orgs cannot be had.
function showSigninOrg(show) {
  $('#signin-org-field').hidden = !show;
  $('#signin-org').required = show;
}

function showSignin(msg, org) {
  clearInterval(st.refreshTimer);
  $('#dashboard').hidden = true;
  $('#org-form').hidden = true;
  $('#sign-out').hidden = true;
  $('#tz-note').hidden = true;
  $('#signin').hidden = false;
  $('#signin-error').textContent = msg || '';
  if (org) $('#signin-org').value = org;
  showSigninOrg(false);
  fillOrgList();
  $('#token-input').focus();
}

function fillOrgList() {
  $('#org-list').replaceChildren(...session.orgs().map((o) => h('option', { value: o })));
}

function signOut(msg) {
  const org = st.org || session.org;
  session.clear();
  st.org = '';
  if (chart.chart) { chart.chart.destroy(); chart.chart = null; }
  showBanner('');
  $('#token-input').value = '';
  showSignin(msg, org);
}

async function onSignin(ev) {
  ev.preventDefault();
  const token = $('#token-input').value.trim();
  const field = $('#signin-org');
  const typing = !$('#signin-org-field').hidden;
  const err = $('#signin-error');
  if (!token) { err.textContent = 'Enter your token.'; $('#token-input').focus(); return; }
  const badOrg = () => {
    err.textContent = 'Enter the organization id (letters, digits, ".", "_" or "-").';
    field.focus();
  };
  if (typing && (!field.value.trim() || !field.checkValidity())) { badOrg(); return; }
  err.textContent = 'Signing in…';
  let org = field.value.trim();
  try {
    // the token's orgs: several get a picker, one is simply opened
    const orgs = typing ? null : await listOrgs(token);
    if (orgs) {
      org = chooseOrg(orgs, wantedOrgs());
    } else if (!typing) {
      showSigninOrg(true); // the list is not available: the org is typed
      if (!org || !field.checkValidity()) {
        err.textContent = 'The list of organizations is not available: enter the organization id.';
        field.focus();
        return;
      }
    }
    const lic = await request(orgPath(org, 'licenses'), { token });
    session.set(token, org);
    st.orgs = orgs;
    err.textContent = '';
    await openOrg(org, lic);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) err.textContent = 'This token was not accepted.';
    else if (e instanceof ApiError && e.status === 404) err.textContent = `This token cannot see an organization "${org}".`;
    else err.textContent = errorText(e, 'Sign-in failed');
  }
}

// ---------------------------------------------------------------- org

// The header's org picker: a select of the token's orgs when it sees
// several, nothing when it sees one, the typed field when the list of orgs
// could not be had.
function renderOrgPicker() {
  const orgs = st.orgs;
  const pick = Array.isArray(orgs) && orgs.length > 0;
  $('#org-pick').hidden = !pick;
  $('#org-type').hidden = pick;
  $('#org-input').required = !pick;
  $('#org-form').hidden = pick && orgs.length < 2;
  if (pick) {
    const sel = $('#org-select');
    const names = orgs.map((o) => o.org);
    if (!names.includes(st.org)) names.unshift(st.org);
    sel.replaceChildren(...names.map((o) => h('option', { value: o }, o)));
    sel.value = st.org;
  } else {
    $('#org-input').value = st.org;
  }
}

async function switchOrg(org, revert) {
  if (org === st.org) return;
  try {
    const lic = await orgApi(org).licenses();
    session.setOrg(org);
    await openOrg(org, lic);
  } catch (e) {
    revert();
    fail(e, `Organization "${org}"`);
  }
}

async function onOrgSwitch(ev) {
  ev.preventDefault();
  if (!$('#org-pick').hidden) return;
  const input = $('#org-input');
  const org = input.value.trim();
  if (!input.checkValidity() || !org) { showBanner('Enter an organization id (letters, digits, ".", "_" or "-").'); return; }
  await switchOrg(org, () => { input.value = st.org; });
}

async function onOrgSelect() {
  const sel = $('#org-select');
  await switchOrg(sel.value, () => { sel.value = st.org; });
}

async function openOrg(org, lic) {
  st.org = org;
  st.api = orgApi(org);
  st.applied = null;
  st.stats = null;
  showBanner('');
  $('#signin').hidden = true;
  $('#dashboard').hidden = false;
  $('#sign-out').hidden = false;
  renderOrgPicker();
  $('#org-name').textContent = org;
  document.title = `licmon — ${org}`;
  fillOrgList();
  applyLicenses(lic);
  fillTypes();
  periodFromUrl();
  await Promise.all([loadSettings(), apply(), loadCurrent()]);
  clearInterval(st.refreshTimer);
  st.refreshTimer = setInterval(refresh, REFRESH_MS);
  $('#main').focus({ preventScroll: true });
}

// ---------------------------------------------------------------- licenses

function applyLicenses(lic) {
  st.licenses = lic.licenses || [];
  st.inUseAll = lic.in_use_all || 0;
  st.integrations = lic.integrations || [];
  setTz(lic.timezone || 'UTC');
  renderLicenses();
}

// The org's zone, or UTC when this browser does not know its name (the
// server refuses such names now; one saved before is shown in UTC, said so).
function setTz(tz) {
  let known = true;
  try { new Intl.DateTimeFormat('en-US', { timeZone: tz }); } catch (e) { known = false; }
  st.tz = known ? tz : 'UTC';
  const note = $('#tz-note');
  note.textContent = known ? `Times in ${tz} (${offsetLabel(tz)})`
    : `Times in UTC: this browser does not know the organization's time zone "${tz}"`;
  note.hidden = false;
  st.tzAsked = tz;
}

function expiryCell(l) {
  if (!l.expires) {
    return h('span', { class: 'expiry state-non_applicable', 'data-state': 'non_applicable' },
      stateIcon('non_applicable'), h('span', { class: 'word' }, 'No expiry date'));
  }
  const state = l.expiration_state || 'ok';
  const left = Number(l.days_left);
  let words;
  if (left < 0) words = `Expired ${plural(-left, 'day', 'days')} ago`;
  else if (left === 0) words = 'Expires today';
  else words = `${plural(left, 'day', 'days')} left`;
  const label = { major: 'Major', minor: 'Minor', ok: 'OK' }[state] || STATE_WORDS[state] || state;
  return h('span', { class: `expiry state-${state}`, 'data-state': state },
    h('span', {}, longDate(l.expires)), ' ', stateIcon(state),
    h('span', { class: 'word' }, `${label}: ${words}`));
}

function renderLicenses() {
  const body = $('#licenses-table tbody');
  if (!st.licenses.length) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No licenses are configured for this organization.')));
  } else {
    body.replaceChildren(...st.licenses.map((l) => h('tr', { 'data-type': l.type },
      h('th', { scope: 'row' }, l.type),
      h('td', {}, l.model === 'named' ? 'Named' : 'Floating'),
      h('td', { class: 'num' }, fmtNum(l.owned)),
      h('td', { class: 'num' }, fmtNum(l.in_use)),
      h('td', {}, expiryCell(l)))));
  }
  $('#integrations').replaceChildren(h('strong', {}, 'Integrations purchased: '),
    st.integrations.length ? st.integrations.join(', ') : 'none');
}

function fillTypes() {
  const sel = $('#type-select');
  const want = new URL(window.location.href).searchParams.get('type');
  const previous = sel.value;
  const opts = [h('option', { value: 'all' }, 'All license types')];
  for (const l of st.licenses)
    opts.push(h('option', { value: l.type }, `${l.type} (${l.model}, ${fmtNum(l.owned)} owned)`));
  sel.replaceChildren(...opts);
  const types = ['all', ...st.licenses.map((l) => l.type)];
  const firstFloating = st.licenses.find((l) => l.model === 'floating' && l.owned > 0);
  sel.value = [want, previous].find((t) => t && types.includes(t))
    || (firstFloating ? firstFloating.type : 'all');
}

// ---------------------------------------------------------------- selection

function pendingSelection() {
  const type = $('#type-select').value;
  const period = $('#period-select').value;
  if (period === 'custom') {
    const from = $('#from-input').value;
    const to = $('#to-input').value;
    return { type, period, from, to, valid: isDate(from) && isDate(to) && from <= to };
  }
  return { type, period, ...periodRange(period, st.tz), valid: true };
}

// The same type, period and dates: "today" or "last 7 days" after midnight in
// the org's zone are other dates, so a new selection.
// A stats answer that counted none of the dates asked: a clamped answer with
// no date left gives the asked ones back.
function noneKept(s, a) {
  return s.clamped && s.from === a.from && s.to === a.to;
}

function sameSelection(a, b) {
  if (!a || !b) return false;
  return a.type === b.type && a.period === b.period && a.from === b.from && a.to === b.to;
}

function updateApply() {
  const p = pendingSelection();
  const custom = p.period === 'custom';
  $('#custom-range').hidden = !custom;
  const btn = $('#apply-btn');
  btn.disabled = !p.valid || (sameSelection(p, st.applied) && !st.failed);
  const note = $('#selection-note');
  if (custom && !p.valid && ($('#from-input').value || $('#to-input').value))
    note.textContent = 'Choose a start date on or before the end date.';
  else if (!btn.disabled && st.failed && sameSelection(p, st.applied))
    note.textContent = 'Not everything could be loaded: press Apply to try again.';
  else if (!btn.disabled) note.textContent = 'Press Apply to show the new selection.';
  else note.textContent = '';
}

function onPeriodChange() {
  if ($('#period-select').value === 'custom' && !$('#from-input').value) {
    const r = st.applied || periodRange('30', st.tz);
    $('#from-input').value = r.from;
    $('#to-input').value = r.to;
    $('#to-input').max = todayIn(st.tz);
    $('#from-input').max = todayIn(st.tz);
  }
  updateApply();
}

async function apply(ev) {
  if (ev) ev.preventDefault();
  const p = pendingSelection();
  if (!p.valid) { updateApply(); return; }
  st.applied = { type: p.type, period: p.period, from: p.from, to: p.to };
  st.failed = false;
  updateApply();
  setUrl();
  $('#apply-btn').disabled = true;
  const what = `${typeName(p.type)}, ${PERIOD_NAMES[p.period].toLowerCase()}`;
  $('#stats-note').textContent = `${typeName(p.type)} · ${rangeText(p.from, p.to)}`;
  const [statsOk, daysOk] = await Promise.all([loadStats(), showDays()]);
  // one day alone: straight to its hours (the breadcrumb leads back)
  const chartOk = daysOk && (p.from !== p.to || !sameSelection(st.applied, p) || await showHours(p.from));
  if (statsOk && chartOk) {
    showBanner('');
    announce(`Showing ${what}.`);
  } else if (sameSelection(st.applied, p)) {
    st.failed = true; // Apply (and the next refresh) tries again
    updateApply();
  }
  return statsOk && chartOk;
}

// ---------------------------------------------------------------- stats

function cardCtx(type) {
  return { type, model: modelOf(type), tz: st.tz };
}

async function loadStats() {
  const a = st.applied;
  const box = $('#cards');
  box.setAttribute('aria-busy', 'true');
  try {
    const s = await st.api.stats(a.type, a.from, a.to);
    // an answer for an earlier selection or another org (each apply and each
    // org makes a new st.applied) is dropped
    if (a !== st.applied) return false;
    if (s.timezone && s.timezone !== st.tzAsked) setTz(s.timezone);
    st.stats = s;
    st.statsFor = a;
    // the dates counted, when they are fewer than the dates asked (retention,
    // or dates that have not begun)
    $('#stats-note').textContent = noneKept(s, a)
      ? `${typeName(a.type)} · ${rangeText(a.from, a.to)}: no data, these dates are past their retention or have not begun`
      : s.clamped && s.from && s.to
        ? `${typeName(a.type)} · ${rangeText(s.from, s.to)} counted: the rest of ${rangeText(a.from, a.to)} is past its retention or has not begun`
        : `${typeName(a.type)} · ${rangeText(a.from, a.to)}`;
    renderCards(box, s, cardCtx(a.type));
    return true;
  } catch (e) {
    if (a !== st.applied) return false;
    st.stats = null;
    box.replaceChildren(h('p', { class: 'note' }, errorText(e, 'Statistics')));
    fail(e, 'Statistics');
    return false;
  } finally {
    box.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------- chart

function thresholdFor(type) {
  if (type === 'all' || modelOf(type) === 'named') return { count: 0, pct: 0 };
  // the stats of this very selection: those of the one before may still be
  // there while the chart's rows come first (another type's threshold)
  if (st.stats && st.statsFor === st.applied && st.applied.type === type && st.stats.threshold_count)
    return { count: st.stats.threshold_count, pct: st.stats.threshold_pct };
  const l = license(type);
  if (!l || !l.owned) return { count: 0, pct: 0 };
  const pct = l.threshold_pct || 80;
  return { count: Math.ceil((l.owned * pct) / 100), pct };
}

// No seats-owned line for all types together: floating pools and named
// seats added up are no capacity anybody can reach.
function ownedFor(type) {
  if (type === 'all') return 0;
  const l = license(type);
  return l ? l.owned : 0;
}

function setBusy(busy) {
  $('#chart-box').setAttribute('aria-busy', busy ? 'true' : 'false');
}

async function loadRows(level, fn) {
  const seq = ++st.seq;
  setBusy(true);
  try {
    const r = await fn();
    if (seq !== st.seq) return null;
    if (r.timezone && r.timezone !== st.tzAsked) setTz(r.timezone);
    st.clamped = !!r.clamped;
    return r.rows || [];
  } catch (e) {
    if (seq === st.seq) {
      fail(e, 'License usage');
      clearChart(errorText(e, 'License usage'));
    }
    return null;
  } finally {
    if (seq === st.seq) setBusy(false);
  }
}

// The chart and its table emptied, saying why: what they showed was of
// another selection (or org) than the one asked for.
function clearChart(why) {
  st.rows = [];
  if (chart.chart) { chart.chart.destroy(); chart.chart = null; }
  $('#chart-table tbody').replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, why)));
  $('#chart-hint').textContent = '';
  $('#crumbs').replaceChildren();
}

async function showDays() {
  const a = st.applied;
  const rows = await loadRows('days', () => st.api.usageDays(a.type, a.from, a.to));
  if (!rows) return false;
  st.level = 'days';
  st.day = null;
  st.hourLabel = null;
  st.rows = rows;
  const years = rows.length > 1 && rows[0].date.slice(0, 4) !== rows[rows.length - 1].date.slice(0, 4);
  const labels = rows.map((r) => (rows.length > 1 ? shortDate(r.date, years) : longDate(r.date)));
  draw({
    labels, titles: rows.map((r) => longDate(r.date)), rowsKey: 'date',
    xTitle: `Day (${st.tz})`, drillable: true,
    unit: 'day', what: `Daily peak seats in use and distinct users, ${rangeText(a.from, a.to)}`,
  });
  return true;
}

async function showHours(date) {
  const a = st.applied;
  const rows = await loadRows('hours', () => st.api.usageHours(a.type, date));
  if (!rows) return false;
  st.level = 'hours';
  st.day = date;
  st.hourLabel = null;
  st.rows = rows;
  // a day with a repeated hour (the end of daylight saving time) shows offsets
  const clocks = rows.map((r) => clockOf(r.hour));
  st.dupHours = new Set(clocks.filter((c, i) => clocks.indexOf(c) !== i));
  const labels = rows.map((r) => hourName(r.hour));
  draw({
    labels, titles: labels.map((l) => `${longDate(date)}, ${l}`), rowsKey: 'hour',
    xTitle: `Hour of ${longDate(date)} (${st.tz})`, drillable: true,
    unit: 'hour', what: `Hourly peak seats in use and distinct users on ${longDate(date)}`,
  });
  announce(`Showing the hours of ${longDate(date)}.`);
  return true;
}

// An hour by its clock time, with its UTC offset when the day repeats that
// hour (the end of daylight saving time), as the hour chart labels it.
function hourName(hourLabel) {
  const c = clockOf(hourLabel);
  return st.dupHours.has(c) ? `${c} (${offsetOf(hourLabel)})` : c;
}

async function showMinutes(date, hourLabel) {
  const a = st.applied;
  // the label, not its hour number: on a fall-back day the number names the
  // first of the two 02:00s, the label (with its offset) the one clicked
  const rows = await loadRows('minutes', () => st.api.usageMinutes(a.type, date, hourLabel));
  if (!rows) return false;
  st.level = 'minutes';
  st.day = date;
  st.hourLabel = hourLabel;
  st.rows = rows;
  const labels = rows.map((r) => clockOf(r.minute));
  const hour = hourName(hourLabel);
  draw({
    labels, titles: labels.map((l) => `${longDate(date)}, ${l}`), rowsKey: 'minute',
    xTitle: `Minute of ${longDate(date)} ${hour} (${st.tz})`, drillable: false,
    unit: 'minute', what: `Peak seats in use and distinct users per minute, ${longDate(date)} ${hour}`,
  });
  announce(`Showing the minutes of ${hour} on ${longDate(date)}.`);
  return true;
}

function draw(v) {
  const type = st.applied.type;
  const th = thresholdFor(type);
  const owned = ownedFor(type);
  const peak = st.rows.map((r) => Number(r.peak) || 0);
  const users = st.rows.map((r) => Number(r.users) || 0);
  let maxI = -1;
  peak.forEach((p, i) => { if (maxI < 0 || p > peak[maxI]) maxI = i; });
  const aria = st.rows.length
    ? `${v.what}, ${typeName(type)}. Highest peak: ${maxI >= 0 ? peak[maxI] : 0} seats (${v.titles[maxI]}). The same data is in the table below the chart.`
    : `${v.what}: no data.`;
  try {
    chart.show({
      labels: v.labels, titles: v.titles, peak, users, owned,
      thresholdCount: th.count, thresholdPct: th.pct, drillable: v.drillable, xTitle: v.xTitle, aria,
    });
  } catch (e) {
    showBanner(errorText(e, 'Chart'));
  }
  $('#chart-hint').textContent = v.drillable
    ? `Click ${v.unit === 'hour' ? 'an' : 'a'} ${v.unit} in the chart (or in the table below it) to see its ${v.unit === 'day' ? 'hours' : 'minutes'}.`
    : 'Minute by minute: the most detailed view.';
  renderCrumbs();
  renderTable(v);
}

function renderTable(v) {
  $('#chart-table-when').textContent = { day: 'Day', hour: 'Hour', minute: 'Minute' }[v.unit];
  $('#chart-table-caption').textContent = v.what;
  const body = $('#chart-table tbody');
  if (!st.rows.length) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, st.clamped
      ? 'No data for these dates: they are past their retention (hours and minutes are kept for fewer days than daily usage) or have not begun.'
      : 'No usage in this period.')));
    return;
  }
  body.replaceChildren(...st.rows.map((r, i) => h('tr', {},
    h('th', { scope: 'row' }, v.drillable
      ? h('button', { type: 'button', class: 'link', 'data-index': i, onclick: () => pick(i) }, v.titles[i])
      : v.titles[i]),
    h('td', { class: 'num' }, fmtNum(r.peak)),
    h('td', { class: 'num' }, fmtNum(r.users)),
    h('td', { class: 'num' }, fmtNum(r.logins)),
    h('td', { class: 'num' }, fmtNum(r.denials)),
    h('td', { class: 'num' }, fmtNum(r.downgrades)))));
}

async function pick(i) {
  const r = st.rows[i];
  if (!r) return;
  // a drill-down from the table replaces the button that had the focus:
  // the focus goes to where the breadcrumb says we are now
  const fromTable = $('#chart-table').contains(document.activeElement);
  let ok = false;
  if (st.level === 'days') ok = await showHours(r.date);
  else if (st.level === 'hours') ok = await showMinutes(st.day, r.hour);
  if (ok && fromTable) $('#crumbs [aria-current]').focus();
}

function renderCrumbs() {
  const a = st.applied;
  const items = [];
  const crumb = (label, current, go, id) => h('li', {},
    current
      ? h('span', { 'aria-current': 'location', 'data-crumb': id, tabindex: -1 }, label)
      : h('button', { type: 'button', class: 'link', 'data-crumb': id, onclick: go }, label));
  const years = a.from.slice(0, 4) !== a.to.slice(0, 4);
  items.push(crumb(`${PERIOD_NAMES[a.period]}: ${a.from === a.to ? shortDate(a.from) : `${shortDate(a.from, years)} – ${shortDate(a.to, years)}`}`,
    st.level === 'days', () => showDays().then((ok) => ok && $('[data-crumb="days"]').focus()), 'days'));
  if (st.day)
    items.push(crumb(longDate(st.day), st.level === 'hours',
      () => showHours(st.day).then((ok) => ok && $('[data-crumb="hours"]').focus()), 'hours'));
  if (st.hourLabel)
    items.push(crumb(hourName(st.hourLabel), true, null, 'minutes'));
  $('#crumbs').replaceChildren(...items);
}

// ---------------------------------------------------------------- sessions

async function loadCurrent() {
  const api = st.api;
  try {
    const c = await api.current();
    if (api !== st.api) return false; // another org was opened meanwhile
    renderSessions(c.sessions || []);
    return true;
  } catch (e) {
    if (api === st.api) fail(e, 'Current sessions');
    return false;
  }
}

function renderSessions(rows) {
  const body = $('#sessions-table tbody');
  const sorted = rows.slice().sort((x, y) => Date.parse(x.login) - Date.parse(y.login));
  if (!sorted.length) {
    body.replaceChildren(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'Nobody is logged in.')));
  } else {
    body.replaceChildren(...sorted.map((s) => h('tr', {},
      h('td', {}, s.user),
      h('td', {}, s.license_type || '—'),
      h('td', {}, dateTime(s.login, st.tz)),
      h('td', {}, duration(s.session_length_s)),
      h('td', {}, dateTime(s.last_activity, st.tz, { seconds: true })))));
  }
  $('#sessions-note').textContent =
    `${plural(sorted.length, 'user', 'users')} logged in · updated ${dateTime(Date.now(), st.tz, { seconds: true, date: false })}`;
}

async function refresh() {
  if (!st.org || document.hidden) return;
  const api = st.api;
  // "today" and the last N days move on at midnight in the org's zone: a
  // page left open follows them (unless the admin is choosing another). An
  // answer that left out the end of such a period (or all of it) is asked
  // again too: a browser clock a little ahead of the server's asks for
  // "today" before it has begun there.
  const p = pendingSelection();
  const s = st.stats;
  const early = s && s.clamped && st.applied && (s.to < st.applied.to || noneKept(s, st.applied));
  let ok = true;
  if (st.applied && st.applied.period !== 'custom' && p.type === st.applied.type
      && p.period === st.applied.period && (!sameSelection(p, st.applied) || early)) ok = await apply();
  else if (st.applied && st.failed && sameSelection(p, st.applied)) ok = await apply();
  else if (st.applied && st.applied.to >= todayIn(st.tz)) {
    // a period with today in it moves on while the page is open: its cards
    // and the chart shown (when it has today in it) follow, not the
    // current-usage card alone
    ok = await loadStats();
    if (ok && (st.level === 'days' || st.day === todayIn(st.tz))) ok = await redraw();
  }
  if (api !== st.api) return;
  try {
    const lic = await api.licenses();
    if (api !== st.api) return; // another org was opened meanwhile
    applyLicenses(lic);
    if (st.stats && st.applied) {
      const t = st.applied.type;
      const cur = t === 'all'
        ? (() => { // free = owned − in use, as the aggregator counts it
          const o = (st.stats.current_usage || {}).owned;
          return o ? { in_use: st.inUseAll, free: Math.max(0, o - st.inUseAll) } : { in_use: st.inUseAll };
        })()
        : (() => { const l = license(t); return l ? { in_use: l.in_use, owned: l.owned, free: l.free } : {}; })();
      st.stats = renderCurrent($('#cards'), st.stats, cardCtx(t), cur) || st.stats;
    }
  } catch (e) {
    ok = false;
    if (api === st.api) fail(e, 'Licenses');
  }
  if (await loadCurrent() && ok && api === st.api) showBanner(''); // all is current again
}

// The chart level shown, asked again.
function redraw() {
  if (st.level === 'days') return showDays();
  if (st.level === 'hours') return showHours(st.day);
  return showMinutes(st.day, st.hourLabel);
}

// ---------------------------------------------------------------- settings

// A timeout for people: "5 minutes", "2 hours", or, for one that is no
// whole number of minutes, exactly: "1 min 30 s".
function timeoutText(seconds) {
  if (seconds % 60 === 0) {
    const m = seconds / 60;
    if (m >= 120 && m % 60 === 0) return `${m / 60} hours`;
    return m === 1 ? '1 minute' : `${m} minutes`;
  }
  const hh = Math.floor(seconds / 3600), mm = Math.floor((seconds % 3600) / 60), ss = seconds % 60;
  return [hh && `${hh} h`, mm && `${mm} min`, ss && `${ss} s`].filter(Boolean).join(' ');
}

// The drop-down's choices (minutes), plus the value in force when it is
// none of them, as an option of its own marked "(current)". The API takes
// any number of seconds in its range (90 s, say): the option shows it
// exactly, never rounded to a neighbour it is not. Each option carries its
// seconds; the values of the choices stay their minutes.
function fillTimeout(sel, choices, seconds) {
  const cur = Math.round(Number(seconds) || 0);
  const opts = choices.map((m) => ({ value: String(m), seconds: m * 60, current: false }));
  if (cur > 0 && !choices.some((m) => m * 60 === cur))
    opts.push({ value: cur % 60 ? `${cur}s` : String(cur / 60), seconds: cur, current: true });
  opts.sort((x, y) => x.seconds - y.seconds);
  sel.replaceChildren(...opts.map((o) => h('option', { value: o.value, 'data-seconds': o.seconds },
    `${timeoutText(o.seconds)}${o.current ? ' (current)' : ''}`)));
  const now = opts.find((o) => o.seconds === cur);
  sel.value = now ? now.value : '120';
  sel.dataset.saved = sel.value;
}

async function loadSettings() {
  const api = st.api;
  try {
    const s = await api.settings();
    if (api !== st.api) return false; // another org was opened meanwhile
    st.settings = s;
    if (s.timezone && s.timezone !== st.tzAsked) setTz(s.timezone);
    fillTimeout($('#user-timeout'), USER_TIMEOUTS_MIN, s.user_inactivity_timeout_s);
    fillTimeout($('#license-timeout'), LICENSE_TIMEOUTS_MIN, s.license_inactivity_timeout_s);
    $('#user-timeout').disabled = false;
    $('#license-timeout').disabled = false;
    $('#gear-btn').disabled = false;
    return true;
  } catch (e) {
    if (api !== st.api) return false;
    st.settings = null;
    $('#user-timeout').disabled = true;
    $('#license-timeout').disabled = true;
    $('#gear-btn').disabled = true;
    $('#user-timeout-status').textContent = errorText(e, 'Settings');
    if (!(e instanceof ApiError && e.status === 403)) fail(e, 'Settings');
    return false;
  }
}

async function saveTimeout(sel, field, choices, statusEl, what) {
  const seconds = Number(sel.selectedOptions[0].dataset.seconds);
  statusEl.className = 'status';
  statusEl.textContent = 'Saving…';
  sel.setAttribute('aria-busy', 'true');
  try {
    const s = await st.api.putSettings({ [field]: seconds });
    st.settings = s;
    fillTimeout(sel, choices, s[field]); // the value saved, exactly
    statusEl.textContent = `Saved: ${what} is ${timeoutText(s[field])}.`;
  } catch (e) {
    sel.value = sel.dataset.saved;
    statusEl.className = 'status bad';
    statusEl.textContent = errorText(e, 'Not saved');
  } finally {
    sel.removeAttribute('aria-busy');
  }
}

// ---------------------------------------------------------------- threshold dialog

let previewTimer = 0;
let previewAbort = null;
let thOpened = null; // {notify, emails} as the dialog opened

function thType() {
  return $('#th-type').value;
}

function thresholdOf(type) {
  const s = st.settings && (st.settings.licenses || []).find((l) => l.type === type);
  if (s && s.threshold_pct) return s.threshold_pct;
  const l = license(type);
  return (l && l.threshold_pct) || 80;
}

function thCount() {
  const l = license(thType());
  const p = parseInt($('#th-pct').value, 10);
  const el = $('#th-count');
  if (!l || !Number.isInteger(p) || p < 1 || p > 100) { el.textContent = 'A whole number from 1 to 100.'; return; }
  if (l.model === 'named' || !l.owned) { el.textContent = 'Thresholds apply to floating licenses with seats owned.'; return; }
  const n = Math.ceil((l.owned * p) / 100);
  el.textContent = `${p}% of ${fmtNum(l.owned)} owned = ${plural(n, 'seat', 'seats')}.`;
}

function openThreshold() {
  if (!st.settings) return;
  const sel = $('#th-type');
  const types = st.licenses.slice().sort((x, y) => (x.model === y.model ? 0 : x.model === 'floating' ? -1 : 1));
  sel.replaceChildren(...types.map((l) => h('option', { value: l.type }, `${l.type} (${l.model})`)));
  const applied = st.applied && st.applied.type;
  const first = types.find((l) => l.model === 'floating') || types[0];
  sel.value = applied && applied !== 'all' && license(applied) ? applied : first ? first.type : '';
  setThresholdInputs(thresholdOf(sel.value));
  $('#th-notify').checked = st.settings.notify_enabled !== false;
  $('#th-emails').value = (st.settings.notify_emails || []).join(', ');
  // what the dialog showed: only what the admin changed is saved
  thOpened = { notify: $('#th-notify').checked, emails: parseEmails($('#th-emails').value) };
  $('#th-emails').disabled = !$('#th-notify').checked;
  $('#th-error').textContent = '';
  $('#th-preview').replaceChildren();
  $('#th-save').disabled = !types.length;
  $('#threshold-dialog').showModal();
  $('#th-pct').focus();
  preview();
}

function setThresholdInputs(p) {
  $('#th-pct').value = p;
  $('#th-range').value = p;
  thCount();
}

function schedulePreview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(preview, 250);
}

async function preview() {
  const type = thType();
  const p = parseInt($('#th-pct').value, 10);
  const box = $('#th-preview');
  if (!type || !st.applied || !Number.isInteger(p) || p < 1 || p > 100) return;
  if (previewAbort) previewAbort.abort();
  previewAbort = new AbortController();
  const a = st.applied;
  box.setAttribute('aria-busy', 'true');
  try {
    const s = await st.api.stats(type, a.from, a.to, p, { signal: previewAbort.signal });
    box.dataset.thresholdPct = String(p);
    renderCards(box, s, cardCtx(type));
    const word = (c) => STATE_WORDS[c && c.state] || '';
    $('#th-live').textContent = `At ${p}% (${plural(s.threshold_count, 'seat', 'seats')}): `
      + `peak usage ${word(s.peak_usage)}, ${plural((s.days_over_threshold || {}).value, 'day', 'days')} over the threshold, `
      + `average usage ${word(s.average_daily_usage)}.`;
    $('#th-error').textContent = '';
  } catch (e) {
    if (e.name !== 'AbortError') $('#th-error').textContent = errorText(e, 'Preview');
  } finally {
    box.removeAttribute('aria-busy');
  }
}

function onPctInput(ev) {
  const v = ev.target.value;
  if (ev.target.id === 'th-range') $('#th-pct').value = v;
  else if (v !== '') $('#th-range').value = v;
  thCount();
  schedulePreview();
}

function parseEmails(text) {
  return text.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);
}

async function saveThreshold(ev) {
  ev.preventDefault();
  const err = $('#th-error');
  const type = thType();
  const p = Number($('#th-pct').value);
  if (!Number.isInteger(p) || p < 1 || p > 100) {
    err.textContent = 'The threshold must be a whole number from 1 to 100.';
    $('#th-pct').focus();
    return;
  }
  const notify = $('#th-notify').checked;
  const emails = parseEmails($('#th-emails').value);
  const bad = emails.find((e) => !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(e));
  if (bad) { err.textContent = `"${bad}" is not an email address.`; $('#th-emails').focus(); return; }
  err.textContent = 'Saving…';
  $('#th-save').disabled = true;
  try {
    // a PUT replaces the whole license list: start from the list as it is
    // now, not as it was when the page opened (an operator may have changed
    // owned or added a type since)
    st.settings = await st.api.settings();
    const licenses = (st.settings.licenses || []).map((l) => ({ ...l }));
    let entry = licenses.find((l) => l.type === type);
    if (!entry) {
      const l = license(type);
      entry = { type, model: l.model, owned: l.owned };
      if (l.expires) entry.expires = l.expires;
      licenses.push(entry);
    }
    entry.threshold_pct = p;
    // notifications are the org's (every threshold, the expiry reminders,
    // the webhooks): sent only when changed here, so a threshold saved by
    // an admin never turns them off or drops an address set meanwhile
    const body = { licenses };
    if (notify !== thOpened.notify) body.notify_enabled = notify;
    if (emails.join(',') !== thOpened.emails.join(',')) body.notify_emails = emails;
    st.settings = await st.api.putSettings(body);
    err.textContent = '';
    $('#threshold-dialog').close();
    const to = (st.settings.notify_emails || []).join(', ');
    const hooks = (st.settings.webhooks || []).length;
    const where = [to, hooks && plural(hooks, 'webhook', 'webhooks')].filter(Boolean).join(' and ');
    announce(`Saved: the threshold of ${type} is ${p}%${st.settings.notify_enabled === false
      ? ', notifications are off' : where ? `, notifications go to ${where}` : ', notifications are on but go to no address yet'}.`);
    try { applyLicenses(await st.api.licenses()); } catch (e) { fail(e, 'Licenses'); }
    if (st.applied && (st.applied.type === type || st.applied.type === 'all')) {
      await loadStats();
      await redraw();
    }
  } catch (e) {
    err.textContent = e instanceof ApiError && e.status === 400
      ? `Not saved: ${e.detail || e.error}`
      : errorText(e, 'Not saved');
  } finally {
    $('#th-save').disabled = false;
  }
}

// ---------------------------------------------------------------- export, print

function fileName(resp, fallback) {
  const cd = resp.headers.get('Content-Disposition') || '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(cd);
  return m ? decodeURIComponent(m[1]) : fallback;
}

async function onExport() {
  const a = st.applied;
  if (!a) return;
  const fmt = $('#export-format').value;
  const btn = $('#export-btn');
  btn.disabled = true;
  announce('Preparing the export…');
  try {
    const r = await st.api.exportFile(fmt, a.type, a.from, a.to);
    const blob = await r.blob();
    const name = fileName(r, `licmon-${st.org}-${a.type}-${a.from}-${a.to}.${fmt}`);
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    announce(`Downloaded ${name}.`);
  } catch (e) {
    fail(e, 'Export');
  } finally {
    btn.disabled = false;
  }
}

async function onPrint() {
  const a = st.applied;
  if (!a) return;
  // opened now, while the click still counts, so no pop-up blocker stops it;
  // the report needs the token, so it is fetched and written into the window
  const w = window.open('', '_blank');
  if (!w) { showBanner('The report opens in a new window: allow pop-ups for this page.'); return; }
  w.document.title = 'Preparing the report…';
  w.document.body.textContent = 'Preparing the report…';
  try {
    const r = await st.api.report(a.type, a.from, a.to);
    const html = await r.text();
    w.document.open();
    w.document.write(html);
    w.document.close();
    w.focus();
    if (!navigator.webdriver) setTimeout(() => w.print(), 300);
    announce('The print report opened in a new window.');
  } catch (e) {
    w.close();
    fail(e, 'Print report');
  }
}

// ---------------------------------------------------------------- start

function wire() {
  $('#signin-form').addEventListener('submit', onSignin);
  $('#org-form').addEventListener('submit', onOrgSwitch);
  $('#org-select').addEventListener('change', onOrgSelect);
  $('#sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('#filter-form').addEventListener('submit', apply);
  $('#type-select').addEventListener('change', updateApply);
  $('#period-select').addEventListener('change', onPeriodChange);
  $('#from-input').addEventListener('input', updateApply);
  $('#to-input').addEventListener('input', updateApply);
  $('#user-timeout').addEventListener('change', (e) =>
    saveTimeout(e.target, 'user_inactivity_timeout_s', USER_TIMEOUTS_MIN,
      $('#user-timeout-status'), 'the user inactivity timeout'));
  $('#license-timeout').addEventListener('change', (e) =>
    saveTimeout(e.target, 'license_inactivity_timeout_s', LICENSE_TIMEOUTS_MIN,
      $('#license-timeout-status'), 'the license inactivity timeout'));
  $('#gear-btn').addEventListener('click', openThreshold);
  $('#th-type').addEventListener('change', () => { setThresholdInputs(thresholdOf(thType())); preview(); });
  $('#th-pct').addEventListener('input', onPctInput);
  $('#th-range').addEventListener('input', onPctInput);
  $('#th-notify').addEventListener('change', () => { $('#th-emails').disabled = !$('#th-notify').checked; });
  $('#threshold-form').addEventListener('submit', saveThreshold);
  $('#th-cancel').addEventListener('click', () => $('#threshold-dialog').close());
  $('#threshold-dialog').addEventListener('close', () => {
    clearTimeout(previewTimer);
    if (previewAbort) previewAbort.abort();
    $('#gear-btn').focus();
  });
  $('#export-btn').addEventListener('click', onExport);
  $('#print-btn').addEventListener('click', onPrint);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
}

async function start() {
  wire();
  if (!session.token) { showSignin('', urlOrg() || session.org); return; }
  let orgs;
  try {
    orgs = await listOrgs(session.token);
  } catch (e) {
    signOut('Your token is no longer accepted: please sign in again.');
    return;
  }
  const org = orgs ? chooseOrg(orgs, wantedOrgs()) : urlOrg() || session.org;
  if (!org) { showSignin('', ''); return; }
  st.orgs = orgs;
  try {
    const lic = await orgApi(org).licenses();
    session.setOrg(org);
    await openOrg(org, lic);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) signOut('Your token is no longer accepted: please sign in again.');
    else showSignin(errorText(e, `Organization "${org}"`), org);
  }
}

// for tests and the curious: what the chart shows
// for the browser tests: the chart's data, the state, and the 30 s refresh now
window.licmonDashboard = { chartData: () => chart.data(), state: st, refresh: () => refresh() };

start();
