// The console's entry point: sign-in state, navigation and the page of the current route.

import { h, put, markReady, showError } from './dom.js';
import { setUnauthorizedHandler } from './api.js';
import { getToken, clearToken, session } from './session.js';
import { whoAmI } from './auth.js';
import { parseRoute, onRouteChange } from './router.js';
import { signInPage } from './pages/sign-in.js';
import { jobsPage } from './pages/jobs.js';
import { jobPage } from './pages/job.js';
import { newJobPage } from './pages/new-job.js';
import { udfsPage } from './pages/udfs.js';
import { tenantsPage } from './pages/tenants.js';

const PAGES = { jobs: jobsPage, job: jobPage, new: newJobPage, udfs: udfsPage, tenants: tenantsPage };
const NAV = [
  ['nav-jobs', '#/jobs', 'Jobs', (r) => r.name === 'jobs' || r.name === 'job'],
  ['nav-new', '#/new', 'New job', (r) => r.name === 'new'],
  ['nav-udfs', '#/udfs', 'UDFs', (r) => r.name === 'udfs'],
];

const app = document.getElementById('app');
const errorArea = document.getElementById('error');
let cleanup = null;

function stopPage() {
  if (cleanup) { try { cleanup(); } catch (e) { console.error(e); } }
  cleanup = null;
}

function renderChrome(route) {
  const nav = document.getElementById('nav');
  const who = document.getElementById('who');
  if (!session.me) { put(nav); put(who); return; }
  const items = NAV.slice();
  if (session.me.is_admin) items.push(['nav-tenants', '#/tenants', 'Tenants', (r) => r.name === 'tenants']);
  put(nav, h('ul', null, items.map(([id, href, text, active]) =>
    h('li', null, h('a', { id, href, 'aria-current': route && active(route) ? 'page' : null }, text)))));
  put(who,
    h('span', { class: 'who-name' }, session.me.name, session.me.is_admin ? ' (admin)' : ''),
    h('button', { id: 'sign-out', type: 'button', class: 'button small', onclick: () => signOut() }, 'Sign out'));
}

function showPage() {
  stopPage();
  put(errorArea);
  delete document.body.dataset.ready;
  if (!session.me) {
    renderChrome(null);
    cleanup = signInPage(app, { onSignedIn });
    return;
  }
  const route = parseRoute(location.hash);
  renderChrome(route);
  put(app);
  if (!route) {
    app.append(h('h1', null, 'Not found'), h('p', null, 'No such page. ', h('a', { href: '#/jobs' }, 'Go to the jobs.')));
    markReady();
    return;
  }
  if (route.name === 'tenants' && !session.me.is_admin) {
    app.append(h('h1', null, 'Tenants'), h('p', { class: 'msg msg-error' }, 'Only admins manage tenants.'));
    markReady();
    return;
  }
  cleanup = PAGES[route.name](app, route) || null;
}

function onSignedIn(me) {
  session.me = me;
  if (!parseRoute(location.hash)) location.hash = '#/jobs';
  showPage();
}

function signOut(message) {
  clearToken();
  session.me = null;
  session.signOutMessage = message || null;
  showPage();
}

function reportUnexpected(message) {
  put(errorArea, h('div', { class: 'msg msg-error' },
    h('span', null, `Something went wrong: ${message}`), ' ',
    h('button', { type: 'button', class: 'button small', onclick: () => put(errorArea) }, 'Dismiss')));
}

async function boot() {
  setUnauthorizedHandler(() => { if (session.me) signOut('The server no longer accepts your token: sign in again.'); });
  window.addEventListener('error', (e) => reportUnexpected(e.message));
  window.addEventListener('unhandledrejection', (e) => reportUnexpected(e.reason && e.reason.message ? e.reason.message : String(e.reason)));
  onRouteChange(() => { if (session.me) showPage(); });
  const token = getToken();
  if (token) {
    try {
      session.me = await whoAmI(token);
    } catch (e) {
      if (e.status === 401) {
        clearToken();
        session.signOutMessage = 'The saved token is not accepted: sign in again.';
      } else {
        put(app, h('h1', null, 'Sluice console'));
        const box = h('div');
        app.append(box, h('button', { type: 'button', class: 'button', onclick: () => location.reload() }, 'Retry'));
        showError(box, e, 'Cannot sign in:');
        markReady();
        return;
      }
    }
  }
  showPage();
}

boot();
