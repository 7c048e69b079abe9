// The DOM helper: h(tag, attrs, ...children) builds elements with text as text nodes
// (never innerHTML), so data from the API is always rendered as text.

const PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'hidden', 'multiple', 'readOnly']);

/** Appends children: strings and numbers become text nodes; null/false are skipped. */
function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'style') throw new Error('h(): style attributes are refused by the CSP; use a class');
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/** h('a', {href: '#/jobs', class: 'x', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The same for SVG elements (attributes only). */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

/** Replaces an element's children. */
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled control: <div class="field"><label for=id>text</label>control</div>. */
export function field(labelText, control, hint) {
  return h('div', { class: 'field' },
    h('label', { for: control.id }, labelText), control,
    hint ? h('p', { class: 'hint' }, hint) : null);
}

/** A table with a head row; body rows go in its tbody (returned as .tbody). */
export function table(id, headers, caption) {
  const tbody = h('tbody');
  const t = h('table', { id, class: 'data' },
    caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
    tbody);
  t.tbody = tbody;
  return t;
}

/** Wraps a table so it scrolls sideways on narrow screens. */
export function scroller(t, tall) {
  return h('div', { class: ['table-scroll', tall ? 'tall' : null], tabindex: '0', role: 'region', 'aria-label': t.querySelector('caption')?.textContent || 'table' }, t);
}

/** Shows an error (an ApiError or any Error) in `el`, with its problems if any. */
export function showError(el, err, prefix) {
  const problems = err && err.problems && err.problems.length
    ? h('ul', { class: 'problems' }, err.problems.map((p) => h('li', null, p.path ? h('code', null, p.path) : null, p.path ? ': ' : '', p.message)))
    : null;
  put(el, h('div', { class: 'msg msg-error', role: 'alert' },
    prefix ? h('strong', null, prefix, ' ') : null,
    String(err && err.message ? err.message : err), problems));
}

/** Shows a success/info message in `el`. */
export function showOk(el, ...children) {
  put(el, h('div', { class: 'msg msg-ok', role: 'status' }, ...children));
}

/** Marks the page as rendered for the browser tests. */
export function markReady() {
  document.body.dataset.ready = '1';
}
