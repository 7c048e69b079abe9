// #/tenants (admins): tenants with their quotas; create one (its token shown once), make a
// new token for one (shown once), set a tenant's quotas (PATCH; empty = the default).

import { h, put, field, table, scroller, showError, showOk, markReady } from '../dom.js';
import { get, post, api } from '../api.js';
import { fmtNum } from '../format.js';

async function copy(text, btn) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = h('textarea', { class: 'visually-hidden', readOnly: true }, text);
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  btn.textContent = 'Copied';
  setTimeout(() => { btn.textContent = 'Copy'; }, 2000);
}

export function tenantsPage(app) {
  document.title = 'Tenants · Sluice';
  const nameInput = h('input', { id: 'tenant-name', type: 'text', pattern: '[a-z][a-z0-9_\\-]{0,63}', autocomplete: 'off', spellcheck: 'false' });
  const createBtn = h('button', { id: 'tenant-create', type: 'submit', class: 'button primary' }, 'Create tenant');
  const createMsg = h('div', { 'aria-live': 'polite' });
  const tokenBox = h('div', { class: 'token-slot', 'aria-live': 'polite' });
  const createForm = h('form', { class: 'card', novalidate: true }, h('h2', null, 'New tenant'),
    h('div', { class: 'inline-form' }, field('Tenant name', nameInput, 'a-z, 0-9, - and _, starting with a letter'),
      h('div', { class: 'field field-button' }, createBtn)), createMsg);
  const listMsg = h('div', { 'aria-live': 'polite' });
  const tbl = table('tenants-table', ['Id', 'Name', 'Admin', 'Quotas set', ''], 'Tenants');
  const quotaSlot = h('div');
  app.append(h('div', { class: 'page-head' }, h('h1', null, 'Tenants')), createForm, tokenBox,
    h('section', { class: 'panel' }, h('h2', null, 'Tenants'), listMsg, scroller(tbl)), quotaSlot);

  function showToken(what, token) {
    const btn = h('button', { type: 'button', id: 'tenant-token-copy', class: 'button small' }, 'Copy');
    btn.addEventListener('click', () => copy(token, btn));
    put(tokenBox, h('div', { class: 'msg msg-ok token-once' },
      h('p', null, h('strong', null, what), ' Copy it now: it is shown this once.'),
      h('div', { class: 'token-row' }, h('code', { id: 'tenant-token' }, token), btn)));
  }

  createForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = nameInput.value.trim();
    if (!name) { showError(createMsg, 'Give the tenant a name.'); nameInput.focus(); return; }
    createBtn.disabled = true;
    try {
      const r = await post('/tenants', { name });
      put(createMsg);
      nameInput.value = '';
      showToken(`Tenant “${r.tenant.name}” (id ${r.tenant.id}) created with its token:`, r.token);
      load();
    } catch (err) {
      showError(createMsg, err, 'Not created:');
    }
    createBtn.disabled = false;
  });

  async function newToken(t, btn) {
    btn.disabled = true;
    try {
      const r = await post(`/tenants/${t.id}/tokens`);
      showToken(`A new token for “${t.name}”:`, r.token);
      put(listMsg);
    } catch (err) {
      showError(listMsg, err, `No new token for “${t.name}”:`);
    }
    btn.disabled = false;
  }

  function quotaForm(t) {
    const keys = Object.keys(t.quotas || {});
    const overrides = t.quota_overrides || {};
    const inputs = keys.map((k) => h('input', {
      id: `quota-${k}`, type: 'number', min: '0', step: '1', inputmode: 'numeric',
      value: overrides[k] != null ? String(overrides[k]) : '', placeholder: `${fmtNum(t.quotas[k])} (default)`,
    }));
    const msg = h('div', { 'aria-live': 'polite' });
    const save = h('button', { id: 'quota-save', type: 'submit', class: 'button primary' }, 'Save quotas');
    const cancel = h('button', { type: 'button', class: 'button' }, 'Close');
    const form = h('form', { class: 'card quota-form', id: 'quota-form' },
      h('h2', null, `Quotas of “${t.name}”`),
      h('p', { class: 'hint' }, 'Empty fields use the server\'s default. Running jobs keep the quotas they started with.'),
      h('div', { class: 'quota-grid' }, keys.map((k, i) => field(k, inputs[i]))),
      h('div', { class: 'buttons' }, save, cancel), msg);
    cancel.addEventListener('click', () => put(quotaSlot));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {};
      keys.forEach((k, i) => {
        const v = inputs[i].value.trim();
        const had = overrides[k] != null;
        if (v === '' && had) body[k] = null;
        else if (v !== '' && Number(v) !== overrides[k]) body[k] = Number(v);
      });
      if (!Object.keys(body).length) { showOk(msg, 'Nothing changed.'); return; }
      save.disabled = true;
      try {
        const updated = await api('PATCH', `/tenants/${t.id}`, { json: body });
        showOk(msg, `Saved: ${Object.keys(body).join(', ')}.`);
        load();
        Object.assign(overrides, updated.quota_overrides || {});
        for (const k of Object.keys(body)) if (body[k] === null) delete overrides[k];
      } catch (err) {
        showError(msg, err, 'Not saved:');
      }
      save.disabled = false;
    });
    put(quotaSlot, form);
    inputs[0]?.focus();
  }

  async function load() {
    try {
      const tenants = await get('/tenants');
      put(listMsg);
      put(tbl.tbody, tenants.map((t) => {
        const tokenBtn = h('button', { type: 'button', class: 'button small tenant-new-token', 'aria-label': `New token for ${t.name}` }, 'New token');
        tokenBtn.addEventListener('click', () => newToken(t, tokenBtn));
        const quotaBtn = h('button', { type: 'button', class: 'button small tenant-quotas', 'aria-label': `Set quotas of ${t.name}` }, 'Quotas…');
        quotaBtn.addEventListener('click', () => quotaForm(t));
        const set = Object.entries(t.quota_overrides || {});
        return h('tr', { dataset: { tenantId: String(t.id) } },
          h('td', null, String(t.id)), h('td', null, t.name), h('td', null, t.is_admin ? 'yes' : 'no'),
          h('td', null, set.length ? set.map(([k, v]) => h('code', { class: 'chip' }, `${k}=${v}`)) : h('span', { class: 'muted' }, 'defaults')),
          h('td', { class: 'actions' }, tokenBtn, ' ', quotaBtn));
      }));
    } catch (err) {
      showError(listMsg, err, 'Could not load the tenants:');
    }
  }

  load().finally(markReady);
  return null;
}
