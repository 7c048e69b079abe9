// The spec editor: a textarea with a line-number gutter, problem markers in the gutter and
// highlighted problem lines behind the text (positions set from JS; no inline styles).

import { h, put } from './dom.js';

export function specEditor({ id, label }) {
  const textarea = h('textarea', { id, class: 'editor-text', wrap: 'off', spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', rows: '22' });
  const numbers = h('div', { class: 'gutter-lines' });
  const bands = h('div', { class: 'editor-bands' });
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' }, numbers);
  const el = h('div', { class: 'editor' },
    h('label', { for: id, class: 'visually-hidden' }, label), gutter,
    h('div', { class: 'editor-main' }, h('div', { class: 'editor-bands-clip', 'aria-hidden': 'true' }, bands), textarea));
  let problems = new Map(); // line -> messages
  let count = 0;

  const lineHeight = () => parseFloat(getComputedStyle(textarea).lineHeight) || 20;
  const padTop = () => parseFloat(getComputedStyle(textarea).paddingTop) || 0;

  function renderGutter() {
    const n = textarea.value.split('\n').length;
    if (n !== count || numbers.dataset.problems !== [...problems.keys()].join(',')) {
      count = n;
      numbers.dataset.problems = [...problems.keys()].join(',');
      const rows = [];
      for (let i = 1; i <= n; i++) {
        rows.push(h('div', { class: ['ln', problems.has(i) ? 'ln-problem' : null], title: problems.has(i) ? problems.get(i).join('\n') : null }, String(i)));
      }
      put(numbers, rows);
      const lh = lineHeight();
      put(bands, [...problems.keys()].filter((l) => l <= n).map((l) => {
        const band = h('div', { class: 'band' });
        band.style.top = `${padTop() + (l - 1) * lh}px`;
        band.style.height = `${lh}px`;
        return band;
      }));
    }
    sync();
  }

  function sync() {
    const y = -textarea.scrollTop;
    numbers.style.transform = `translateY(${y}px)`;
    bands.style.transform = `translate(${-textarea.scrollLeft}px, ${y}px)`;
  }

  textarea.addEventListener('input', renderGutter);
  textarea.addEventListener('scroll', sync);

  return {
    el,
    textarea,
    get value() { return textarea.value; },
    set value(v) { textarea.value = v; renderGutter(); textarea.scrollTop = 0; },
    /** Marks problem lines: [{line, message}]. */
    setProblems(list) {
      problems = new Map();
      for (const p of list) problems.set(p.line, [...(problems.get(p.line) || []), p.message]);
      count = -1;
      renderGutter();
    },
    /** Selects a line and scrolls it into view. */
    goToLine(line) {
      const lines = textarea.value.split('\n');
      const l = Math.min(Math.max(1, line), lines.length);
      let start = 0;
      for (let i = 0; i < l - 1; i++) start += lines[i].length + 1;
      textarea.focus();
      textarea.setSelectionRange(start, start + lines[l - 1].length);
      textarea.scrollTop = Math.max(0, (l - 1) * lineHeight() - textarea.clientHeight / 2);
      sync();
    },
    refresh: renderGutter,
  };
}
