// #/new: write a job spec (JSON or YAML) from a template, validate it (each problem at its
// line) and create it, or create and start it.

import { h, put, field, showError, showOk, markReady } from '../dom.js';
import { api } from '../api.js';
import { go } from '../router.js';
import { TEMPLATES, template } from '../templates.js';
import { specToText, specFromText } from '../spec-text.js';
import { locate, lineFromMessage } from '../locate.js';
import { specEditor } from '../editor.js';

const TYPES = { json: 'application/json', yaml: 'application/yaml' };

export function newJobPage(app) {
  document.title = 'New job · Sluice';
  const tplSelect = h('select', { id: 'spec-template' },
    h('option', { value: '' }, 'Choose a template…'),
    TEMPLATES.map((t) => h('option', { value: t.id }, t.label)));
  const fmtSelect = h('select', { id: 'spec-format' }, h('option', { value: 'json' }, 'JSON'), h('option', { value: 'yaml' }, 'YAML'));
  const editor = specEditor({ id: 'spec-editor', label: 'Job spec' });
  const validateBtn = h('button', { id: 'spec-validate', type: 'button', class: 'button' }, 'Validate');
  const createBtn = h('button', { id: 'spec-create', type: 'button', class: 'button' }, 'Create');
  const createStartBtn = h('button', { id: 'spec-create-start', type: 'button', class: 'button primary' }, 'Create and start');
  const result = h('div', { id: 'spec-result', 'aria-live': 'polite' });
  const problems = h('ol', { id: 'spec-problems', class: 'problem-list', 'aria-label': 'Problems of the spec' });
  let format = 'json';

  app.append(
    h('div', { class: 'page-head' }, h('h1', null, 'New job')),
    h('p', { class: 'hint' }, 'Start from a template (they use the ', h('code', null, 'examples'),
      ' UDF module: upload it on the UDFs page if the tenant has none), edit, validate, create. Fields: docs/job-spec.md.'),
    h('div', { class: 'toolbar' }, field('Template', tplSelect), field('Format', fmtSelect)),
    h('div', { class: 'editor-layout' },
      editor.el,
      h('div', { class: 'editor-side' },
        h('div', { class: 'buttons' }, validateBtn, createBtn, createStartBtn),
        result, problems)));

  function clearProblems() {
    put(problems);
    editor.setProblems([]);
  }

  function loadTemplate(id) {
    const t = template(id);
    if (!t) return;
    editor.value = specToText(t.spec, format);
    clearProblems();
    put(result);
  }

  tplSelect.addEventListener('change', () => loadTemplate(tplSelect.value));
  fmtSelect.addEventListener('change', () => {
    const to = fmtSelect.value;
    if (to === format) return;
    if (!editor.value.trim()) { format = to; return; }
    try {
      const spec = specFromText(editor.value, format);
      format = to;
      editor.value = specToText(spec, format);
      clearProblems();
      put(result);
    } catch (e) {
      fmtSelect.value = format;
      showError(result, `Cannot convert to ${to.toUpperCase()}: the ${format.toUpperCase()} does not parse (${e.message}). Fix it or validate to see where.`);
    }
  });

  function showProblems(err) {
    const text = editor.value;
    const list = err.problems.map((pr) => {
      const line = pr.path ? locate(text, pr.path, format).line : (lineFromMessage(pr.message) || 1);
      return { ...pr, line };
    }).sort((a, b) => a.line - b.line);
    editor.setProblems(list.map((x) => ({ line: x.line, message: x.message })));
    put(problems, list.map((x) => h('li', { class: 'problem', dataset: { path: x.path, line: String(x.line) } },
      h('button', { type: 'button', class: 'linkish', onclick: () => editor.goToLine(x.line), 'aria-label': `Go to line ${x.line}` }, `Line ${x.line}`),
      ' ', x.path ? h('code', null, x.path) : h('span', { class: 'muted' }, '(whole spec)'), ' ',
      h('span', { class: 'problem-message' }, x.message))));
    showError(result, `${list.length} problem${list.length === 1 ? '' : 's'} in the spec (marked in the margin):`);
  }

  function failed(e, what) {
    if (e.problems && e.problems.length) showProblems(e);
    else {
      const line = lineFromMessage(e.message);
      if (line) editor.setProblems([{ line, message: e.message }]);
      showError(result, e, what);
    }
  }

  const send = (path) => api('POST', path, { body: editor.value, type: TYPES[format] });

  function busy(on) {
    for (const b of [validateBtn, createBtn, createStartBtn]) b.disabled = on;
  }

  validateBtn.addEventListener('click', async () => {
    clearProblems();
    busy(true);
    try {
      const v = await send('/jobs/validate');
      const pins = (v.udfs || []).map((u) => `${u.module}@${u.version}`).join(', ');
      showOk(result, `Valid: “${v.name}”${pins ? `, pinning ${pins}` : ''}.`);
    } catch (e) {
      failed(e, 'Not valid:');
    }
    busy(false);
  });

  async function create(start) {
    clearProblems();
    busy(true);
    let job;
    try {
      job = await send('/jobs');
    } catch (e) {
      failed(e, 'Not created:');
      busy(false);
      return;
    }
    if (!start) {
      showOk(result, `Created job ${job.id} “${job.name}”. `, h('a', { href: `#/jobs/${job.id}` }, 'Open it'), '.');
      busy(false);
      return;
    }
    try {
      await api('POST', `/jobs/${job.id}/start`);
      go(`#/jobs/${job.id}`);
    } catch (e) {
      showError(result, e, `Created job ${job.id}, but it did not start:`);
      result.append(h('p', null, h('a', { href: `#/jobs/${job.id}` }, 'Open the job')));
      busy(false);
    }
  }
  createBtn.addEventListener('click', () => create(false));
  createStartBtn.addEventListener('click', () => create(true));

  tplSelect.value = TEMPLATES[0].id;
  loadTemplate(TEMPLATES[0].id);
  markReady();
  return null;
}
