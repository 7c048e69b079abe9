// The live output tail: the job's last records, then new ones from the SSE stream
// (read with fetch, as EventSource cannot send the token). Pausable; keeps the last lines.

import { h, put, showError } from '../dom.js';
import { get, readEvents } from '../api.js';
import { fmtTime, valueText } from '../format.js';

const KEEP = 200;

function recordLine(r) {
  return h('div', { class: 'output-line' },
    h('span', { class: 'out-batch' }, `#${r.batch}`), ' ',
    h('span', { class: 'out-time' }, fmtTime(r.time)), ' ',
    r.key != null ? h('span', { class: 'out-key' }, r.key) : null, r.key != null ? ' ' : null,
    h('span', { class: 'out-value' }, valueText(r.value)),
    r.value_cut_from_bytes ? h('span', { class: 'muted' }, ` (cut from ${r.value_cut_from_bytes} bytes)`) : null);
}

export function outputTail(jobId) {
  const tail = h('div', { id: 'output-tail', class: 'output-tail', role: 'log', 'aria-live': 'off', tabindex: '0', 'aria-label': 'Output records, newest last' });
  const pause = h('button', { id: 'output-pause', type: 'button', class: 'button small', 'aria-pressed': 'false' }, 'Pause');
  const status = h('span', { class: 'muted', 'aria-live': 'polite' });
  const msg = h('div');
  const el = h('section', { class: 'panel' },
    h('div', { class: 'panel-head' }, h('h2', null, 'Live output'), pause, status), msg, tail);

  let paused = false;
  let pending = [];
  let missed = 0;
  let running = false;
  let controller = null;
  let destroyed = false;
  let lastInitialBatch = -1;
  let retry = null;

  const nearBottom = () => tail.scrollHeight - tail.scrollTop - tail.clientHeight < 40;

  function append(nodes) {
    if (!nodes.length) return;
    const stick = nearBottom();
    tail.append(...nodes);
    while (tail.childElementCount > KEEP) tail.firstElementChild.remove();
    if (stick) tail.scrollTop = tail.scrollHeight;
  }

  function add(node) {
    if (paused) {
      pending.push(node);
      if (pending.length > KEEP) { pending.shift(); missed++; }
      pause.textContent = `Resume (${pending.length} new)`;
    } else append([node]);
  }

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    if (paused) { pause.textContent = 'Resume'; return; }
    pause.textContent = 'Pause';
    if (missed) append([h('div', { class: 'output-note' }, `… ${missed} records not kept while paused`)]);
    append(pending);
    pending = [];
    missed = 0;
  });

  async function connect() {
    if (controller || destroyed || !running) return;
    controller = new AbortController();
    status.textContent = 'live';
    put(msg);
    try {
      await readEvents(`/jobs/${jobId}/output/stream`, {
        signal: controller.signal,
        onEvent(event, data) {
          if (event === 'record') {
            let r;
            try { r = JSON.parse(data); } catch { return; }
            if (r.batch <= lastInitialBatch) return;
            lastInitialBatch = -1;
            add(recordLine(r));
          } else if (event === 'lagged') {
            add(h('div', { class: 'output-note' }, `… ${data} records missed (the reader was too slow)`));
          }
        },
      });
      status.textContent = 'stream ended';
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 409) status.textContent = 'the job does not run';
      else { status.textContent = ''; showError(msg, e, 'Output stream:'); }
    } finally {
      controller = null;
    }
    if (!destroyed && running) retry = setTimeout(connect, 2000);
  }

  async function loadLast() {
    try {
      const records = await get(`/jobs/${jobId}/output`);
      const last = records.slice(-KEEP);
      append(last.map(recordLine));
      if (last.length) lastInitialBatch = last[last.length - 1].batch;
      if (!last.length) status.textContent = 'no output yet';
    } catch (e) {
      showError(msg, e, 'Output:');
    }
  }

  const ready = loadLast();

  return {
    el,
    /** Connects while the job runs; a stopped job keeps its last lines. */
    async setRunning(isRunning) {
      running = isRunning;
      await ready;
      if (running) connect();
      else if (!controller) status.textContent = 'not running';
    },
    destroy() {
      destroyed = true;
      clearTimeout(retry);
      if (controller) controller.abort();
    },
  };
}
