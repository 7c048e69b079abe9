// Who the token belongs to: GET /api/v1/me, with a fallback for servers without it
// (GET /jobs checks the token, GET /tenants tells an admin).

import { get } from './api.js';

export async function whoAmI(token) {
  try {
    return await get('/me', { token });
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  await get('/jobs', { token });
  let isAdmin = false;
  try {
    await get('/tenants', { token });
    isAdmin = true;
  } catch (e) {
    if (e.status !== 403) throw e;
  }
  return { id: null, name: isAdmin ? 'admin' : 'tenant', is_admin: isAdmin, quotas: null, quota_overrides: null };
}
