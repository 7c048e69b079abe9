// The job page's tables: recent batches, refused records, UDF logs and checkpoints.
// Each is {el, update(data), error(err)}; rows are rebuilt only when the data changed.

import { h, put, table, scroller, showError } from '../dom.js';
import { fmtTime, fmtMs, fmtNum, fmtBytes } from '../format.js';

const MAX_ROWS = 100;

function section(title, ...body) {
  return h('section', { class: 'panel' }, h('h2', null, title), ...body);
}

function changed(state, key) {
  if (state.key === key) return false;
  state.key = key;
  return true;
}

export function batchesPanel() {
  const t = table('batches-table', ['Batch', 'Time', 'Records in', 'Records out', 'Processing', 'Scheduling delay', 'Total delay', 'Refused'], 'Recent batches');
  const msg = h('div', { 'aria-live': 'polite' });
  const state = {};
  return {
    el: section('Recent batches', msg, scroller(t, true)),
    update(batches) {
      put(msg);
      const last = batches[batches.length - 1];
      if (!changed(state, `${batches.length}:${last ? last.batch_id : ''}`)) return;
      if (!batches.length) { put(msg, h('p', { class: 'muted' }, 'No batches yet.')); }
      put(t.tbody, batches.slice(-MAX_ROWS).reverse().map((b) => h('tr', { dataset: { batchId: String(b.batch_id) } },
        h('td', null, String(b.batch_id)), h('td', null, fmtTime(b.time_ms)),
        h('td', { class: 'num' }, fmtNum(b.records_in)), h('td', { class: 'num' }, b.records_out == null ? '—' : fmtNum(b.records_out)),
        h('td', { class: 'num' }, fmtMs(b.processing_ms)), h('td', { class: 'num' }, fmtMs(b.scheduling_delay_ms)),
        h('td', { class: 'num' }, fmtMs(b.total_delay_ms)),
        h('td', { class: ['num', b.dead_letters ? 'bad' : null] }, fmtNum(b.dead_letters)))));
    },
    error(e) { showError(msg, e, 'Batches:'); },
  };
}

export function deadLettersPanel() {
  const t = table('dead-letters-table', ['Stage', 'Batch', 'Record', 'Error'], 'Refused records');
  const msg = h('div', { 'aria-live': 'polite' });
  const summary = h('p', { class: 'muted' });
  const state = {};
  return {
    el: section('Refused records (dead letters)', summary, msg, scroller(t, true)),
    update(dl) {
      put(msg);
      const list = dl.dead_letters || [];
      if (!changed(state, `${dl.total}:${dl.dropped}:${list.length}`)) return;
      summary.textContent = `${fmtNum(dl.total)} refused${dl.dropped ? `, ${fmtNum(dl.dropped)} oldest not kept` : ''}.`;
      put(t.tbody, list.slice(-MAX_ROWS * 2).reverse().map((d) => h('tr', null,
        h('td', null, h('code', null, d.stage)), h('td', null, String(d.batch_id)),
        h('td', { class: 'record' }, d.key != null ? h('span', { class: 'key' }, d.key, ': ') : null,
          h('span', null, d.value), d.cut ? h('span', { class: 'muted' }, ' (cut)') : null),
        h('td', { class: 'error-text' }, d.error))));
    },
    error(e) { showError(msg, e, 'Refused records:'); },
  };
}

export function logsPanel() {
  const list = h('ol', { id: 'logs-list', class: 'log-list', 'aria-label': 'UDF errors and log lines, newest first' });
  const msg = h('div', { 'aria-live': 'polite' });
  const summary = h('p', { class: 'muted' });
  const state = {};
  return {
    el: section('UDF errors and logs', summary, msg, list),
    update(logs) {
      put(msg);
      const lines = logs.lines || [];
      if (!changed(state, `${logs.total}:${logs.dropped}:${lines.length}`)) return;
      summary.textContent = lines.length
        ? `${fmtNum(logs.total)} lines${logs.dropped ? `, ${fmtNum(logs.dropped)} oldest not kept` : ''}; newest first.`
        : 'No log lines or UDF errors.';
      put(list, lines.slice(-MAX_ROWS * 3).reverse().map((l) => h('li', { class: ['log-line', `level-${l.level}`, `kind-${l.kind}`] },
        h('span', { class: 'log-time' }, fmtTime(l.time_ms)), ' ',
        h('span', { class: 'log-level' }, l.kind === 'error' ? 'error' : l.level), ' ',
        h('span', { class: 'log-where' }, [l.batch ? `batch ${l.batch}` : 'before the first batch', l.stage || 'job', l.udf].filter(Boolean).join(' · ')), ' ',
        h('span', { class: 'log-message' }, l.message))));
    },
    error(e) {
      if (e.status === 404 && e.code === 'not_found' && /route/.test(e.message)) {
        state.key = null;
        put(list);
        summary.textContent = '';
        put(msg, h('p', { class: 'muted' }, 'This server does not offer UDF logs (GET /jobs/ID/logs answered 404).'));
      } else showError(msg, e, 'Logs:');
    },
  };
}

export function checkpointsPanel() {
  const t = table('checkpoints-table', ['Written', 'Batch', 'Batch time', 'Bytes', 'Write time'], 'Checkpoints');
  const msg = h('div', { 'aria-live': 'polite' });
  const state = {};
  return {
    el: section('Checkpoints', msg, scroller(t)),
    update(cps) {
      put(msg);
      if (!changed(state, cps.map((c) => c.id).join(','))) return;
      if (!cps.length) put(msg, h('p', { class: 'muted' }, 'No checkpoints yet.'));
      put(t.tbody, cps.map((c) => h('tr', null,
        h('td', null, fmtTime(c.created_ms)), h('td', null, String(c.batch_id)), h('td', null, fmtTime(c.time_ms)),
        h('td', { class: 'num' }, fmtBytes(c.bytes)), h('td', { class: 'num' }, fmtMs(c.write_ms)))));
    },
    error(e) { showError(msg, e, 'Checkpoints:'); },
  };
}
