// The statistics cards of SPEC §5, drawn from GET /stats.
import { h, stateIcon, STATE_WORDS, fmtNum, plural } from './dom.js';
import { dateTime, longDate } from './time.js';

const KNOWN = new Set(['ok', 'minor', 'major', 'non_applicable']);

function naReason(ctx) {
  if (ctx.type === 'all') return 'no threshold for all types together';
  if (ctx.model === 'named') return 'named licenses have no shared pool';
  if (!ctx.owned) return 'no seats owned';
  return '';
}

// Why a card is in its state, in a few words (shown next to the state word).
function reason(card, state, s, ctx) {
  if (state === 'non_applicable')
    return card === 'license_expiration' ? (ctx.type === 'all' ? 'pick one license type' : 'no expiry date') : naReason(ctx);
  const r = {
    average_daily_usage: { major: 'at or above the threshold', minor: 'close to the threshold', ok: 'below the threshold' },
    peak_usage: { major: 'all seats were in use', minor: 'the threshold was reached', ok: 'below the threshold' },
    days_over_threshold: { major: 'days at full capacity', minor: 'days over the threshold', ok: 'no day over the threshold' },
    users_denied: { major: 'users could not log in', ok: 'nobody was denied' },
    users_downgraded: { minor: 'users got a lesser license', ok: 'nobody was downgraded' },
    current_usage: { major: 'all seats are in use', minor: 'at or above the threshold', ok: 'below the threshold' },
    license_expiration: { major: 'expired or 30 days or less left', minor: '90 days or less left', ok: 'more than 90 days left' },
  }[card];
  return (r && r[state]) || '';
}

// The current-usage card has no state in the API: it follows the peak rule
// (full = major, threshold reached = minor) where a threshold applies.
function currentState(s, ctx) {
  const c = s.current_usage || {};
  if (c.state && KNOWN.has(c.state)) return c.state;
  if (ctx.type === 'all' || ctx.model === 'named' || !c.owned) return 'non_applicable';
  if (c.in_use >= c.owned) return 'major';
  if (s.threshold_count && c.in_use >= s.threshold_count) return 'minor';
  return 'ok';
}

function card(id, title, state, valueNode, details, why) {
  const st = KNOWN.has(state) ? state : 'non_applicable';
  const word = STATE_WORDS[st];
  return h('article', { class: `card state-${st}`, 'data-card': id, 'data-state': st, 'aria-label': `${title}: ${word}` },
    h('h3', {}, title),
    h('p', { class: 'value' }, valueNode),
    details.filter(Boolean).map((d) => h('p', { class: 'detail' }, d)),
    h('p', { class: 'state' }, stateIcon(st), h('span', { class: 'word' }, word),
      why ? h('span', { class: 'why' }, why) : null));
}

function value(v, unit) {
  return [h('span', { class: 'num' }, v), unit ? h('span', { class: 'unit' }, unit) : null];
}

function pct(x) {
  return x === undefined || x === null ? '' : `${fmtNum(x)}%`;
}

// Renders the six cards of stats s into container; ctx = {type, model, tz}.
export function renderCards(container, s, ctx) {
  const owned = s.owned;
  const c = { ...ctx, owned };
  const av = s.average_daily_usage || {};
  const pk = s.peak_usage || {};
  const dt = s.days_over_threshold || {};
  const dn = s.users_denied || {};
  const dg = s.users_downgraded || {};
  const cu = s.current_usage || {};
  // no capacity for all types together (app.js ownedFor: floating pools and
  // named seats added up are no capacity anybody can reach), as in the
  // report and the xlsx
  const ofOwned = owned && ctx.type !== 'all' ? ` of ${fmtNum(owned)} owned` : '';
  const cards = [
    card('average_daily_usage', 'Average daily license usage', av.state,
      value(fmtNum(av.value, 2), 'seats'), // 2 decimals, like the API, report and xlsx
      [av.pct !== undefined && av.state !== 'non_applicable' ? `${pct(av.pct)}${ofOwned}` : `mean of the daily peaks${ofOwned}`],
      reason('average_daily_usage', av.state, s, c)),
    card('peak_usage', 'Peak license usage', pk.state,
      value(fmtNum(pk.value), 'seats'),
      [pk.state !== 'non_applicable' && pk.pct !== undefined ? `${pct(pk.pct)}${ofOwned}` : ofOwned.trim(),
        pk.at !== undefined && pk.at !== null && pk.at !== -1 && pk.at !== '' ? `first reached ${dateTime(pk.at, ctx.tz)}` : null],
      reason('peak_usage', pk.state, s, c)),
    card('days_over_threshold', 'Days over license threshold', dt.state,
      value(fmtNum(dt.value), Number(dt.value) === 1 ? 'day' : 'days'),
      [dt.state !== 'non_applicable' ? `threshold ${fmtNum(s.threshold_pct)}% = ${plural(s.threshold_count, 'seat', 'seats')}` : null,
        dt.days_at_capacity !== undefined ? `${plural(dt.days_at_capacity, 'day', 'days')} at capacity` : null],
      reason('days_over_threshold', dt.state, s, c)),
    card('users_denied', 'Users denied access', dn.state,
      value(fmtNum(dn.users), Number(dn.users) === 1 ? 'user' : 'users'),
      [`${plural(dn.events, 'denial', 'denials')}`],
      reason('users_denied', dn.state, s, c)),
    card('users_downgraded', 'Users downgraded', dg.state,
      value(fmtNum(dg.users), Number(dg.users) === 1 ? 'user' : 'users'),
      [`${plural(dg.events, 'downgrade', 'downgrades')}`],
      reason('users_downgraded', dg.state, s, c)),
    card('current_usage', 'Current usage', currentState(s, c),
      value(fmtNum(cu.in_use), 'in use'),
      [cu.owned ? `of ${fmtNum(cu.owned)} owned, ${fmtNum(cu.free)} free` : null],
      reason('current_usage', currentState(s, c), s, c)),
  ];
  const ex = s.license_expiration;
  if (ex) {
    const left = Number(ex.days_left);
    let words = null;
    if (ex.days_left !== null && ex.days_left !== undefined)
      words = left < 0 ? `expired ${plural(-left, 'day', 'days')} ago` : `${plural(left, 'day', 'days')} left`;
    cards.push(card('license_expiration', 'License expiration', ex.state,
      value(ex.expires ? longDate(ex.expires) : '—'), [words],
      reason('license_expiration', ex.state, s, c)));
  }
  container.replaceChildren(...cards);
}

// Updates the current-usage card alone (periodic refresh from /licenses).
export function renderCurrent(container, s, ctx, current) {
  if (!s) return;
  const next = { ...s, current_usage: { ...(s.current_usage || {}), ...current } };
  renderCards(container, next, ctx);
  return next;
}
