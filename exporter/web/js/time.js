// Dates and times in the org's reporting time zone (an IANA name from the API).

const ymdCache = new Map();
function ymdFormat(tz) {
  if (!ymdCache.has(tz))
    ymdCache.set(tz, new Intl.DateTimeFormat('en-CA', {
      timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit',
    }));
  return ymdCache.get(tz);
}

// Today's local date (YYYY-MM-DD) in tz.
export function todayIn(tz, now = Date.now()) {
  const p = Object.fromEntries(ymdFormat(tz).formatToParts(new Date(now)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day}`;
}

export function isDate(s) {
  return /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(`${s}T00:00:00Z`));
}

// A local date plus n days (calendar arithmetic, no zone involved).
export function addDays(date, n) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function daysBetween(from, to) {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86400000) + 1;
}

// The [from, to] of a period choice ("today", "7", … or custom dates).
export function periodRange(period, tz, customFrom, customTo) {
  const today = todayIn(tz);
  if (period === 'today') return { from: today, to: today };
  if (period === 'custom') return { from: customFrom, to: customTo };
  const n = parseInt(period, 10);
  return { from: addDays(today, -(n - 1)), to: today };
}

// "Wed 20 Nov 2026" for a local date (no zone: it already is local).
export function longDate(date) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
  }).format(new Date(`${date}T00:00:00Z`));
}

// "Nov 20", or "Nov 20, 25" when withYear (labels of a range over a new year).
export function shortDate(date, withYear = false) {
  const opts = { timeZone: 'UTC', day: 'numeric', month: 'short' };
  if (withYear) opts.year = '2-digit';
  return new Intl.DateTimeFormat(undefined, opts).format(new Date(`${date}T00:00:00Z`));
}

// An instant (ms or RFC 3339) as local date and time in tz.
export function dateTime(instant, tz, { seconds = false, date = true } = {}) {
  const ms = typeof instant === 'number' ? instant : Date.parse(instant);
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const opts = { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (seconds) opts.second = '2-digit';
  if (date) Object.assign(opts, { day: 'numeric', month: 'short', year: 'numeric' });
  return new Intl.DateTimeFormat(undefined, opts).format(new Date(ms));
}

// The zone's current UTC offset, "UTC+01:00".
export function offsetLabel(tz, now = Date.now()) {
  try {
    const p = new Intl.DateTimeFormat('en-US', { timeZone: tz, timeZoneName: 'longOffset' })
      .formatToParts(new Date(now)).find((x) => x.type === 'timeZoneName');
    const v = p ? p.value.replace('GMT', 'UTC') : 'UTC';
    return v === 'UTC' ? 'UTC+00:00' : v;
  } catch {
    return '';
  }
}

// "1 h 05 min", "12 min", "40 s".
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

// The "HH:MM" of a local bucket label such as "2026-11-20T14:00+01:00".
export function clockOf(label) {
  const m = /T(\d{2}):(\d{2})/.exec(label || '');
  return m ? `${m[1]}:${m[2]}` : String(label || '');
}

export function offsetOf(label) {
  const m = /(Z|[+-]\d{2}:\d{2})$/.exec(label || '');
  return m ? (m[1] === 'Z' ? '+00:00' : m[1]) : '';
}
