// #/jobs/ID: a job's status and actions, live charts with event markers, its pipeline,
// hot-swap, test records, batches, refused records, logs, checkpoints and live output.
// Polled every second.

import { h, put, showError, showOk, markReady } from '../dom.js';
import { get, post, api } from '../api.js';
import { poll } from '../poll.js';
import { go } from '../router.js';
import { fmtTime, fmtNum, fmtMs } from '../format.js';
import { statusView, canStart, canStop, hasHttpSource, intervalMs, inputRates } from '../job-util.js';
import { createChart, MARKER_COLORS } from '../charts.js';
import { renderPipeline } from '../pipeline.js';
import { batchesPanel, deadLettersPanel, logsPanel, checkpointsPanel } from './job-tables.js';
import { outputTail } from './job-output.js';
import { swapForm, ingestForm } from './job-forms.js';
import { TEMPLATES } from '../templates.js';

const WINDOW_BATCHES = 300;
const WINDOW_MS = 10 * 60 * 1000;

const shortNum = (v) => (Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e4 ? `${(v / 1e3).toFixed(0)}k` : Math.abs(v) >= 1000 ? `${(v / 1e3).toFixed(1)}k` : `${+v.toFixed(1)}`);

const CHARTS = [
  { id: 'chart-input-rate', title: 'Input rate', label: 'records/s', color: '#2563eb', fmt: shortNum, y: (b, ctx) => ctx.rates[ctx.i] },
  { id: 'chart-processing', title: 'Processing time', label: 'processing', color: '#059669', fmt: fmtMs, y: (b) => b.processing_ms },
  { id: 'chart-scheduling', title: 'Scheduling delay', label: 'scheduling delay', color: '#d97706', fmt: fmtMs, y: (b) => b.scheduling_delay_ms },
  { id: 'chart-total-delay', title: 'Total delay', label: 'total delay', color: '#dc2626', fmt: fmtMs, y: (b) => b.total_delay_ms },
];

/** Events from the server's /events, or (older servers) from the job's swaps and run. */
function eventsFallback(job, batches) {
  const out = (job.swaps || []).map((s) => ({ kind: 'swapped', batch: s.batch, time_ms: null, message: `stage ${s.stage} -> ${s.udf}` }));
  if (job.run && job.run.restored_from_batch != null) out.push({ kind: 'restored', batch: job.run.restored_from_batch + 1, time_ms: null });
  const last = batches[batches.length - 1];
  if (job.status === 'failed' && last) out.push({ kind: 'failed', batch: last.batch_id, time_ms: last.time_ms });
  if (job.status === 'paused' && last) out.push({ kind: 'paused', batch: last.batch_id, time_ms: last.time_ms });
  return out;
}

function markersFrom(events, all, recent, interval) {
  const byBatch = new Map(all.map((b) => [b.batch_id, b.time_ms]));
  if (!recent.length) return [];
  const first = recent[0].time_ms;
  const last = recent[recent.length - 1].time_ms;
  const slack = 2 * interval + 5000;
  const out = [];
  for (const ev of events) {
    let t = ev.batch != null && byBatch.has(ev.batch) ? byBatch.get(ev.batch) : ev.time_ms;
    if (t == null) continue;
    if (t > last && t - last <= slack) t = last;
    if (t < first && first - t <= slack && recent[0] === all[0]) t = first;
    out.push({ x: t / 1000, kind: ev.kind, label: ev.batch != null ? `${ev.kind} (batch ${ev.batch})` : ev.kind });
  }
  return out;
}

export function jobPage(app, { id }) {
  document.title = `Job ${id} · Sluice`;
  const title = h('h1', null, `Job ${id}`);
  const statusBox = h('span', { class: 'status-box' }, h('span', { id: 'job-status', class: 'job-status' }, '…'));
  const startBtn = h('button', { id: 'job-start', type: 'button', class: 'button primary', disabled: true }, 'Start');
  const stopBtn = h('button', { id: 'job-stop', type: 'button', class: 'button', disabled: true }, 'Stop');
  const deleteBtn = h('button', { type: 'button', class: 'button danger', disabled: true }, 'Delete');
  const actionMsg = h('div', { 'aria-live': 'polite' });
  const loadMsg = h('div', { 'aria-live': 'polite' });
  const facts = h('dl', { class: 'facts' });
  const chartBoxes = CHARTS.map((c) => h('div', { id: c.id, class: 'chart', role: 'img', 'aria-label': `${c.title} per batch over the last minutes` }));
  const legend = h('p', { class: 'marker-legend' }, 'Markers: ', Object.keys(MARKER_COLORS).map((k) => h('span', { class: `mk mk-${k}` }, k)));
  const pipeline = h('ol', { id: 'pipeline', class: 'pipeline', 'aria-label': 'Pipeline: source, stages, sink' });
  const batches = batchesPanel();
  const deadLetters = deadLettersPanel();
  const logs = logsPanel();
  const checkpoints = checkpointsPanel();
  const output = outputTail(id);
  const swap = swapForm(id, () => p.now());
  const forms = h('div', { class: 'two-col' }, swap.el);

  app.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, '← Jobs')),
    h('div', { class: 'page-head' }, title, h('div', { class: 'actions' }, startBtn, stopBtn, deleteBtn)),
    h('p', { class: 'status-line' }, 'Status: ', statusBox),
    actionMsg, loadMsg, facts,
    h('section', { class: 'panel' }, h('h2', null, 'Batches over the last minutes'), legend,
      h('div', { class: 'charts' }, CHARTS.map((c, i) => h('figure', { class: 'chart-fig' }, h('figcaption', null, c.title), chartBoxes[i])))),
    h('section', { class: 'panel' }, h('h2', null, 'Pipeline (last batch)'), h('div', { class: 'pipeline-scroll' }, pipeline)),
    forms, batches.el, deadLetters.el, logs.el, checkpoints.el, output.el);

  const charts = CHARTS.map((c, i) => createChart(chartBoxes[i], c));
  let job = null;
  let modules = null;
  let ingestAdded = false;
  let tick = 0;
  let first = true;
  let deleteArmed = null;

  async function act(verb) {
    startBtn.disabled = true;
    stopBtn.disabled = true;
    put(actionMsg, h('p', { class: 'muted' }, verb === 'start' ? 'Starting…' : 'Stopping…'));
    try {
      const j = await post(`/jobs/${id}/${verb}`);
      showOk(actionMsg, `The job is ${j && j.status ? j.status : verb === 'start' ? 'started' : 'stopped'}.`);
    } catch (e) {
      showError(actionMsg, e, `Could not ${verb} the job:`);
    }
    p.now();
  }
  startBtn.addEventListener('click', () => act('start'));
  stopBtn.addEventListener('click', () => act('stop'));
  deleteBtn.addEventListener('click', async () => {
    if (!deleteArmed) {
      deleteBtn.textContent = 'Click again to delete';
      deleteArmed = setTimeout(() => { deleteArmed = null; deleteBtn.textContent = 'Delete'; }, 4000);
      return;
    }
    clearTimeout(deleteArmed);
    deleteArmed = null;
    deleteBtn.textContent = 'Delete';
    try {
      await api('DELETE', `/jobs/${id}`);
      go('#/jobs');
    } catch (e) {
      showError(actionMsg, e, 'Could not delete the job:');
    }
  });

  function showJob(j, allBatches, events) {
    job = j;
    title.textContent = j.name;
    document.title = `${j.name} · Sluice`;
    put(statusBox, statusView(j, 'job-status'));
    startBtn.disabled = !canStart(j.status);
    stopBtn.disabled = !canStop(j.status);
    deleteBtn.disabled = !canStart(j.status);
    const run = j.run || {};
    const interval = intervalMs(j);
    const fact = (k, v) => h('div', null, h('dt', null, k), h('dd', null, v));
    const lastB = allBatches[allBatches.length - 1];
    put(facts,
      fact('Batch interval', String(j.spec.batch_interval)),
      fact('Created', fmtTime(j.created_ms)),
      fact('Last batch', lastB ? `#${lastB.batch_id} at ${fmtTime(lastB.time_ms)}` : '—'),
      fact('Refused (this run)', fmtNum(run.dead_letters_total ?? 0)),
      run.restored_from_batch != null ? fact('Restored from', `batch ${run.restored_from_batch}`) : null,
      run.last_checkpoint ? fact('Last checkpoint', `batch ${run.last_checkpoint.batch_id}`) : null);

    const recent = allBatches.filter((b) => !lastB || b.time_ms > lastB.time_ms - WINDOW_MS).slice(-WINDOW_BATCHES);
    const xs = recent.map((b) => b.time_ms / 1000);
    const ctx = { rates: inputRates(recent, interval), i: 0 };
    const marks = markersFrom(events || eventsFallback(j, allBatches), allBatches, recent, interval);
    CHARTS.forEach((c, n) => {
      const ys = recent.map((b, i) => { ctx.i = i; return c.y(b, ctx); });
      charts[n].update(xs, ys, marks);
    });
    renderPipeline(pipeline, j.spec, j.stage_udfs, lastB);
    swap.update(j, modules);
    if (!ingestAdded && hasHttpSource(j.spec)) {
      ingestAdded = true;
      const name = j.spec.stages && JSON.stringify(j.spec.stages);
      const t = TEMPLATES.find((x) => x.sample && JSON.stringify(x.spec.stages) === name);
      forms.append(ingestForm(id, t && t.sample));
    }
    output.setRunning(j.status === 'running' || j.status === 'paused');
  }

  // The batches seen so far (the newest WINDOW_BATCHES); each poll asks only for newer ones.
  let seen = [];
  const newBatches = async () => {
    const last = seen[seen.length - 1];
    const q = last ? `after=${last.batch_id}&limit=${WINDOW_BATCHES}` : `limit=${WINDOW_BATCHES}`;
    const fresh = await get(`/jobs/${id}/batches?${q}`);
    seen = seen.concat(fresh).slice(-WINDOW_BATCHES);
    return seen;
  };

  const p = poll(async () => {
    tick++;
    const want = [
      get(`/jobs/${id}`), newBatches(), get(`/jobs/${id}/events`), get(`/jobs/${id}/logs`),
      get(`/jobs/${id}/dead-letters`), get(`/jobs/${id}/checkpoints`),
      modules == null || tick % 10 === 0 ? get('/udfs') : Promise.resolve(null),
    ];
    const [j, b, ev, lg, dl, cp, mods] = await Promise.allSettled(want);
    if (mods.status === 'fulfilled' && mods.value) modules = mods.value;
    if (j.status === 'rejected') {
      showError(loadMsg, j.reason, j.reason.status === 404 ? `No job ${id}:` : 'Could not load the job:');
    } else {
      put(loadMsg);
      const allBatches = b.status === 'fulfilled' ? b.value : [];
      const events = ev.status === 'fulfilled' ? ev.value : null;
      showJob(j.value, allBatches, events);
    }
    if (b.status === 'fulfilled') batches.update(b.value); else batches.error(b.reason);
    if (lg.status === 'fulfilled') logs.update(lg.value); else logs.error(lg.reason);
    if (dl.status === 'fulfilled') deadLetters.update(dl.value); else deadLetters.error(dl.reason);
    if (cp.status === 'fulfilled') checkpoints.update(cp.value); else checkpoints.error(cp.reason);
    if (first) { first = false; markReady(); }
  }, 1000);

  return () => {
    p.stop();
    output.destroy();
    charts.forEach((c) => c.destroy());
    clearTimeout(deleteArmed);
  };
}
