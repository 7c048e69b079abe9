// #/udfs: upload a .wasm (file picker or drag and drop), list module versions with their
// functions and the jobs that use them, delete unused versions.

import { h, put, field, table, scroller, showError, showOk, markReady } from '../dom.js';
import { get, api } from '../api.js';
import { fmtBytes, fmtTime } from '../format.js';

/** A module name from a file name: "my_udfs.wasm" -> "my_udfs" (fit to ^[a-z][a-z0-9_-]{0,63}$). */
export function nameFromFile(fileName) {
  let n = fileName.replace(/\.wasm$/i, '').toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^[^a-z]+/, '');
  n = n.slice(0, 64);
  return n;
}

function usersOf(jobs, name, version) {
  const tag = `${name}@${version}`;
  return jobs.filter((j) => (j.udfs || []).some((p) => p.module === name && p.version === version)
    || (j.stage_udfs || []).some((s) => s.udf === tag));
}

export function udfsPage(app) {
  document.title = 'UDFs · Sluice';
  const fileInput = h('input', { id: 'udf-file', type: 'file', accept: '.wasm,application/wasm' });
  const nameInput = h('input', { id: 'udf-name', type: 'text', pattern: '[a-z][a-z0-9_\\-]{0,63}', spellcheck: 'false', autocomplete: 'off', placeholder: 'my_udfs' });
  const uploadBtn = h('button', { id: 'udf-upload', type: 'submit', class: 'button primary' }, 'Upload');
  const result = h('div', { id: 'udf-result', 'aria-live': 'polite' });
  const drop = h('div', { id: 'udf-drop', class: 'drop-zone', tabindex: '0', role: 'button', 'aria-label': 'Drop a .wasm file here to upload it, or press Enter to choose one' },
    h('strong', null, 'Drop a .wasm file here'), h('span', null, ' to upload it (or press Enter to choose one)'));
  const form = h('form', { class: 'card upload', novalidate: true },
    h('h2', null, 'Upload a module'),
    h('div', { class: 'inline-form' },
      field('WebAssembly file (.wasm)', fileInput),
      field('Module name', nameInput, 'Defaults to the file name; each upload of a name is its next version.'),
      h('div', { class: 'field field-button' }, uploadBtn)),
    drop, result);
  const listMsg = h('div', { 'aria-live': 'polite' });
  const tbl = table('udfs-table', ['Module', 'Version', 'SHA-256', 'Size', 'Functions', 'Used by', 'Uploaded', ''], 'UDF module versions');
  const wrap = scroller(tbl);
  const empty = h('div', { id: 'udfs-empty', class: 'empty', hidden: true },
    h('p', null, h('strong', null, 'No UDF modules yet.')),
    h('p', null, 'Build a UDF crate (see docs/udf-guide.md) with'),
    h('pre', null, h('code', null, 'cargo build --release --target wasm32-unknown-unknown')),
    h('p', null, 'then upload ', h('code', null, 'target/wasm32-unknown-unknown/release/NAME.wasm'), ' here. The job templates use a module named ',
      h('code', null, 'examples'), ' (the repository\'s udfs/examples crate).'));
  app.append(h('div', { class: 'page-head' }, h('h1', null, 'UDFs')), form,
    h('section', { class: 'panel' }, h('h2', null, 'Modules'), listMsg, wrap, empty));

  let file = null;
  let autoName = '';

  function choose(f) {
    file = f || null;
    if (f && (!nameInput.value || nameInput.value === autoName)) {
      autoName = nameFromFile(f.name);
      nameInput.value = autoName;
    }
  }

  async function upload() {
    if (!file) { showError(result, 'Choose a .wasm file first.'); fileInput.focus(); return; }
    const name = nameInput.value.trim();
    if (!name) { showError(result, 'Give the module a name.'); nameInput.focus(); return; }
    uploadBtn.disabled = true;
    put(result, h('p', { class: 'muted' }, `Uploading ${file.name} as “${name}” (validated and compiled by the server)…`));
    try {
      const m = await api('POST', `/udfs/${encodeURIComponent(name)}`, { body: file, type: 'application/wasm' });
      showOk(result, `Uploaded ${m.name} version ${m.version}: ${m.udfs.length} function${m.udfs.length === 1 ? '' : 's'} (${m.udfs.map((u) => `${u.name} (${u.kind})`).join(', ')}).`);
      load();
    } catch (e) {
      showError(result, e, 'Upload refused:');
    }
    uploadBtn.disabled = false;
  }

  fileInput.addEventListener('change', () => choose(fileInput.files[0]));
  form.addEventListener('submit', (e) => { e.preventDefault(); upload(); });
  drop.addEventListener('click', () => fileInput.click());
  drop.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); fileInput.click(); } });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (!f) { showError(result, 'Drop a file (a .wasm module).'); return; }
    choose(f);
    upload();
  });

  async function remove(m, btn) {
    btn.disabled = true;
    try {
      await api('DELETE', `/udfs/${encodeURIComponent(m.name)}/${m.version}`);
      showOk(listMsg, `Deleted ${m.name}@${m.version}.`);
      load();
    } catch (e) {
      showError(listMsg, e, `Could not delete ${m.name}@${m.version}:`);
      btn.disabled = false;
    }
  }

  async function load() {
    try {
      const [mods, jobs] = await Promise.all([get('/udfs'), get('/jobs')]);
      mods.sort((a, b) => a.name.localeCompare(b.name) || b.version - a.version);
      put(tbl.tbody, mods.map((m) => {
        const users = usersOf(jobs, m.name, m.version);
        const del = h('button', { type: 'button', class: 'button small danger udf-delete', 'aria-label': `Delete ${m.name} version ${m.version}` }, 'Delete');
        del.addEventListener('click', () => remove(m, del));
        return h('tr', { dataset: { module: m.name, version: String(m.version) } },
          h('td', null, h('strong', null, m.name)), h('td', null, String(m.version)),
          h('td', null, h('code', { class: 'hash', title: m.sha256 }, `${m.sha256.slice(0, 16)}…`)),
          h('td', { class: 'num' }, fmtBytes(m.size_bytes)),
          h('td', null, h('ul', { class: 'plain' }, m.udfs.map((u) => h('li', null, h('code', null, u.name), ` ${u.kind}${u.has_inverse ? ' (with inverse)' : ''}`)))),
          h('td', null, users.length ? h('ul', { class: 'plain' }, users.map((j) => h('li', null, h('a', { href: `#/jobs/${j.id}` }, j.name)))) : h('span', { class: 'muted' }, 'unused')),
          h('td', null, fmtTime(m.created_ms)),
          h('td', null, del));
      }));
      wrap.hidden = mods.length === 0;
      empty.hidden = mods.length !== 0;
    } catch (e) {
      showError(listMsg, e, 'Could not load the modules:');
    }
  }

  load().finally(markReady);
  return null;
}
