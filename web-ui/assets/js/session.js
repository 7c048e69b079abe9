// The signed-in tenant: its token (localStorage `sluice.token`, never in a URL) and who it is.

const KEY = 'sluice.token';

export function getToken() {
  try { return localStorage.getItem(KEY); } catch { return null; }
}

export function setToken(token) {
  localStorage.setItem(KEY, token);
}

export function clearToken() {
  try { localStorage.removeItem(KEY); } catch { /* ignore */ }
}

/** The caller's tenant (`GET /api/v1/me`), set once signed in. */
export const session = { me: null };
