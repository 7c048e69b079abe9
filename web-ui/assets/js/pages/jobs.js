// #/jobs: every job with its status, input rate, last batch and UDF versions; start/stop.
// Refreshed every 2 s; rows are updated in place so focus stays on their buttons.

import { h, put, table, scroller, showError, showOk, markReady } from '../dom.js';
import { get, post } from '../api.js';
import { poll } from '../poll.js';
import { fmtNum, fmtTime } from '../format.js';
import { statusView, canStart, canStop, udfsInUse, intervalMs, inputRates } from '../job-util.js';
import { sparkline } from '../sparkline.js';

const SPARK_BATCHES = 30;

export function jobsPage(app) {
  document.title = 'Jobs · Sluice';
  const notice = h('div', { class: 'notice', 'aria-live': 'polite' });
  const errBox = h('div', { 'aria-live': 'polite' });
  const tbl = table('jobs-table', ['Name', 'Status', 'Input rate', 'Last batch', 'UDF versions', 'Actions'], 'Jobs');
  const wrap = scroller(tbl);
  const empty = h('div', { id: 'jobs-empty', class: 'empty', hidden: true },
    h('p', null, h('strong', null, 'No jobs yet.')),
    h('p', null, h('a', { href: '#/new' }, 'Create a job from a template'),
      ' (visits per user, ERROR lines per minute, clicks per user).'));
  app.append(
    h('div', { class: 'page-head' }, h('h1', null, 'Jobs'), h('a', { href: '#/new', class: 'button primary' }, 'New job')),
    notice, errBox, wrap, empty);

  const rows = new Map();
  const details = new Map(); // id -> {batches, run}
  let first = true;

  async function action(job, verb) {
    const row = rows.get(job.id);
    row.start.disabled = true;
    row.stop.disabled = true;
    put(notice, h('p', { class: 'msg' }, `${verb === 'start' ? 'Starting' : 'Stopping'} “${job.name}”…`));
    try {
      const j = await post(`/jobs/${job.id}/${verb}`);
      showOk(notice, `Job “${job.name}” is ${j && j.status ? j.status : (verb === 'start' ? 'started' : 'stopped')}.`);
    } catch (e) {
      showError(notice, e, `Could not ${verb} “${job.name}”:`);
    }
    p.now();
  }

  function rowFor(job) {
    let r = rows.get(job.id);
    if (r) return r;
    r = {
      link: h('a', { href: `#/jobs/${job.id}` }),
      status: h('td', { class: 'cell-status' }),
      rate: h('td', { class: 'cell-rate' }),
      last: h('td'),
      udfs: h('td'),
      start: h('button', { type: 'button', class: 'button small job-start' }, 'Start'),
      stop: h('button', { type: 'button', class: 'button small job-stop' }, 'Stop'),
    };
    r.start.addEventListener('click', () => action(r.job, 'start'));
    r.stop.addEventListener('click', () => action(r.job, 'stop'));
    r.tr = h('tr', { dataset: { jobId: String(job.id) } },
      h('td', null, r.link), r.status, r.rate, r.last, r.udfs,
      h('td', { class: 'actions' }, r.start, ' ', r.stop));
    rows.set(job.id, r);
    return r;
  }

  function update(r, job) {
    r.job = job;
    r.link.textContent = job.name;
    r.link.setAttribute('aria-label', `Job ${job.name}`);
    put(r.status, statusView({ ...job, run: details.get(job.id)?.run }));
    const d = details.get(job.id);
    const batches = (d && d.batches) || [];
    if (batches.length) {
      const rates = inputRates(batches.slice(-SPARK_BATCHES), intervalMs(job));
      const recent = rates.slice(-5);
      const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
      put(r.rate, h('span', { class: 'rate' }, `${fmtNum(mean)} rec/s`), ' ', sparkline(rates));
      const last = batches[batches.length - 1];
      put(r.last, fmtTime(last.time_ms), h('span', { class: 'muted' }, ` (#${last.batch_id})`));
    } else {
      put(r.rate, h('span', { class: 'muted' }, '—'));
      put(r.last, h('span', { class: 'muted' }, '—'));
    }
    const udfs = udfsInUse(job);
    put(r.udfs, udfs.length ? udfs.map((u) => h('code', { class: 'chip' }, u)) : h('span', { class: 'muted' }, 'none'));
    r.start.disabled = !canStart(job.status);
    r.stop.disabled = !canStop(job.status);
    r.start.setAttribute('aria-label', `Start job ${job.name}`);
    r.stop.setAttribute('aria-label', `Stop job ${job.name}`);
  }

  async function loadDetails(job) {
    const live = ['running', 'starting', 'paused', 'stopping'].includes(job.status);
    const d = details.get(job.id);
    if (d && !live && d.status === job.status) return;
    const [batches, full] = await Promise.all([
      get(`/jobs/${job.id}/batches?limit=${SPARK_BATCHES}`).catch(() => (d ? d.batches : [])),
      job.status === 'paused' ? get(`/jobs/${job.id}`).catch(() => null) : null,
    ]);
    details.set(job.id, { batches: (batches || []).slice(-SPARK_BATCHES), run: full && full.run, status: job.status });
  }

  const p = poll(async () => {
    try {
      const jobs = await get('/jobs');
      put(errBox);
      await Promise.all(jobs.map(loadDetails));
      const seen = new Set();
      jobs.forEach((job, i) => {
        const r = rowFor(job);
        update(r, job);
        seen.add(job.id);
        if (tbl.tbody.children[i] !== r.tr) tbl.tbody.insertBefore(r.tr, tbl.tbody.children[i] || null);
      });
      for (const [id, r] of rows) if (!seen.has(id)) { r.tr.remove(); rows.delete(id); details.delete(id); }
      wrap.hidden = jobs.length === 0;
      empty.hidden = jobs.length !== 0;
    } catch (e) {
      showError(errBox, e, 'Could not load the jobs:');
    }
    if (first) { first = false; markReady(); }
  }, 2000);

  return () => p.stop();
}
