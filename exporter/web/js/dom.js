// Small DOM helpers: elements are built with text nodes, never with HTML
// strings, so no API value can inject markup.

export const $ = (sel, root = document) => root.querySelector(sel);

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// The state icons: the shape and the mark differ as well as the colour.
export function stateIcon(state) {
  const root = svg('svg', { viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false', class: 'icon' });
  if (state === 'minor') { // yellow triangle with an exclamation mark
    root.append(svg('path', { d: 'M12 2.5 23 21.5H1z', fill: '#f2b705', stroke: '#7a5a00', 'stroke-width': '1.2', 'stroke-linejoin': 'round' }));
    root.append(svg('rect', { x: '10.9', y: '8.5', width: '2.2', height: '7', rx: '1', fill: '#1d2430' }));
    root.append(svg('circle', { cx: '12', cy: '18.3', r: '1.3', fill: '#1d2430' }));
  } else if (state === 'major') { // red circle with an exclamation mark
    root.append(svg('circle', { cx: '12', cy: '12', r: '11', fill: '#c62828' }));
    root.append(svg('rect', { x: '10.8', y: '5.5', width: '2.4', height: '8.5', rx: '1.1', fill: '#fff' }));
    root.append(svg('circle', { cx: '12', cy: '17.6', r: '1.5', fill: '#fff' }));
  } else if (state === 'ok') { // green circle with a check mark
    root.append(svg('circle', { cx: '12', cy: '12', r: '11', fill: '#1e7d3a' }));
    root.append(svg('path', { d: 'M6.5 12.5l3.6 3.6 7.4-7.6', fill: 'none', stroke: '#fff', 'stroke-width': '2.4', 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
  } else if (state === 'info') { // blue circle with an "i"
    root.append(svg('circle', { cx: '12', cy: '12', r: '11', fill: '#1f5fbf' }));
    root.append(svg('rect', { x: '10.9', y: '10', width: '2.2', height: '8', rx: '1', fill: '#fff' }));
    root.append(svg('circle', { cx: '12', cy: '6.8', r: '1.4', fill: '#fff' }));
  } else { // grey circle with a dash: non-applicable
    root.append(svg('circle', { cx: '12', cy: '12', r: '10.5', fill: 'none', stroke: '#6b7280', 'stroke-width': '2' }));
    root.append(svg('rect', { x: '6.5', y: '10.8', width: '11', height: '2.4', rx: '1.1', fill: '#6b7280' }));
  }
  return root;
}

export const STATE_WORDS = {
  ok: 'OK',
  minor: 'Minor',
  major: 'Major',
  non_applicable: 'Non-applicable',
  info: 'Information',
};

let liveTimer = 0;
// Says msg through the page's polite live region.
export function announce(msg) {
  const live = $('#live');
  clearTimeout(liveTimer);
  live.textContent = '';
  liveTimer = setTimeout(() => { live.textContent = msg; }, 60);
}

export function fmtNum(x, digits = 1) {
  if (x === undefined || x === null || Number.isNaN(Number(x))) return '—';
  const n = Number(x);
  return Number.isInteger(n) ? n.toLocaleString() : n.toLocaleString(undefined, { maximumFractionDigits: digits });
}

export function plural(n, one, many) {
  return `${fmtNum(n)} ${Number(n) === 1 ? one : many}`;
}
