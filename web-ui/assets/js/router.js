// Hash routes: #/jobs, #/jobs/ID, #/new, #/udfs, #/tenants.

const ROUTES = [
  [/^#\/jobs\/(\d+)$/, (m) => ({ name: 'job', id: Number(m[1]) })],
  [/^#\/jobs\/?$/, () => ({ name: 'jobs' })],
  [/^#\/new\/?$/, () => ({ name: 'new' })],
  [/^#\/udfs\/?$/, () => ({ name: 'udfs' })],
  [/^#\/tenants\/?$/, () => ({ name: 'tenants' })],
];

/** The route of a hash (`#/jobs/3` -> {name: 'job', id: 3}); unknown ones: null. */
export function parseRoute(hash) {
  const hsh = (hash || '').split('?')[0];
  if (hsh === '' || hsh === '#' || hsh === '#/') return { name: 'jobs' };
  for (const [re, make] of ROUTES) {
    const m = re.exec(hsh);
    if (m) return make(m);
  }
  return null;
}

export function onRouteChange(fn) {
  window.addEventListener('hashchange', () => fn(parseRoute(location.hash)));
}

export function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}
