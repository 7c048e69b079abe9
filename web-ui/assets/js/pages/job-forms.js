// The job page's forms: hot-swap a UDF stage's version, and send test records to an
// `http`-source job.

import { h, put, field, showError, showOk } from '../dom.js';
import { post, api } from '../api.js';

function setOptions(select, options) {
  const sig = JSON.stringify(options);
  if (select.dataset.sig === sig) return;
  const keep = select.value;
  select.dataset.sig = sig;
  put(select, options.map((o) => h('option', { value: o.value, disabled: o.disabled || false }, o.text)));
  const again = options.find((o) => o.value === keep && !o.disabled);
  const pick = again || options.find((o) => o.preferred) || options.find((o) => !o.disabled);
  if (pick) select.value = pick.value;
}

/** The hot-swap form: {el, update(job, modules)}; onDone() after a swap. */
export function swapForm(jobId, onDone) {
  const stage = h('select', { id: 'swap-stage' });
  const version = h('select', { id: 'swap-version' });
  const apply = h('button', { id: 'swap-apply', type: 'submit', class: 'button primary' }, 'Apply');
  const result = h('div', { id: 'swap-result', 'aria-live': 'polite' });
  const hint = h('p', { class: 'hint' });
  const form = h('form', { class: 'inline-form' },
    field('UDF stage', stage), field('Version', version), h('div', { class: 'field field-button' }, apply));
  const el = h('section', { class: 'panel' }, h('h2', null, 'Hot-swap a UDF'),
    h('p', { class: 'hint' }, 'A running job runs the new version from its next batch (map, flat_map, filter); a stopped one from its next start.'),
    form, hint, result);
  let job = null;
  let modules = [];

  function refreshVersions() {
    const su = job && (job.stage_udfs || []).find((s) => String(s.stage) === stage.value);
    if (!su) { setOptions(version, []); apply.disabled = true; return; }
    const [mod] = su.udf.split('@');
    const versions = modules.filter((m) => m.name === mod).map((m) => m.version).sort((a, b) => b - a);
    const opts = versions.map((v) => {
      const udf = `${mod}@${v}`;
      return { value: udf, text: udf === su.udf ? `${udf} (runs now)` : udf, preferred: udf !== su.udf };
    });
    if (!opts.some((o) => o.value === su.udf)) opts.push({ value: su.udf, text: `${su.udf} (runs now)` });
    setOptions(version, opts);
    hint.textContent = versions.length < 2 ? `Upload another version of “${mod}” on the UDFs page to swap to it.` : '';
    apply.disabled = false;
  }

  stage.addEventListener('change', refreshVersions);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    apply.disabled = true;
    put(result, h('p', { class: 'muted' }, 'Swapping…'));
    try {
      const r = await post(`/jobs/${jobId}/swap`, { stage: Number(stage.value), udf: version.value });
      showOk(result, `Stage ${r.stage} now runs ${r.udf}: took effect from batch ${r.effective_batch}.`);
      onDone();
    } catch (err) {
      showError(result, err, 'Swap refused:');
    }
    apply.disabled = false;
  });

  return {
    el,
    update(j, mods) {
      job = j;
      if (mods) modules = mods;
      const spec = j.spec || {};
      const opts = (j.stage_udfs || []).map((s) => {
        const st = (spec.stages || [])[s.stage] || {};
        const op = Object.keys(st)[0] || 'stage';
        const fn = st[op] && (st[op].function || (st[op].reduce && st[op].reduce.function));
        return { value: String(s.stage), text: `stage ${s.stage}: ${op}${fn ? ` ${fn}` : ''} (${s.udf})` };
      });
      setOptions(stage, opts);
      stage.disabled = !opts.length;
      version.disabled = !opts.length;
      if (!opts.length) hint.textContent = 'This job has no UDF stages.';
      refreshVersions();
    },
  };
}

/** "Send test records" for an http-source job. */
export function ingestForm(jobId, sample) {
  const text = h('textarea', { id: 'ingest-text', rows: '5', spellcheck: 'false', placeholder: sample || 'one record per line' });
  const send = h('button', { id: 'ingest-send', type: 'submit', class: 'button primary' }, 'Send');
  const result = h('div', { id: 'ingest-result', 'aria-live': 'polite' });
  const form = h('form', null, field('Records, one per line', text), send, result);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!text.value.trim()) { showError(result, 'Type at least one line.'); text.focus(); return; }
    send.disabled = true;
    try {
      const r = await api('POST', `/jobs/${jobId}/ingest`, { body: text.value, type: 'text/plain' });
      showOk(result, `Accepted ${r.accepted} record${r.accepted === 1 ? '' : 's'}: they go into the next batch.`);
    } catch (err) {
      showError(result, err, 'Not sent:');
    }
    send.disabled = false;
  });
  return h('section', { class: 'panel' }, h('h2', null, 'Send test records'),
    h('p', { class: 'hint' }, 'Lines go to this job\'s http source (POST /api/v1/jobs/ID/ingest) and into its next batch.'), form);
}
