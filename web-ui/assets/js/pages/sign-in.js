// Sign in with a tenant's API token (kept in localStorage until sign-out).

import { h, field, showError, markReady } from '../dom.js';
import { setToken, session } from '../session.js';
import { whoAmI } from '../auth.js';

export function signInPage(app, { onSignedIn }) {
  document.title = 'Sign in · Sluice';
  const input = h('input', { id: 'token-input', type: 'password', autocomplete: 'current-password', required: true, spellcheck: 'false', placeholder: 'sl_…' });
  const button = h('button', { id: 'sign-in', type: 'submit', class: 'button primary' }, 'Sign in');
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const form = h('form', { class: 'card signin', novalidate: true },
    h('h1', null, 'Sign in'),
    h('p', null, 'Paste your tenant\'s API token. It stays in this browser until you sign out.'),
    field('API token', input), button, result);
  if (session.signOutMessage) showError(result, session.signOutMessage);
  session.signOutMessage = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) { showError(result, 'Enter a token.'); input.focus(); return; }
    button.disabled = true;
    try {
      const me = await whoAmI(token);
      setToken(token);
      onSignedIn(me);
    } catch (err) {
      showError(result, err, err.status === 401 ? 'That token is not accepted:' : 'Cannot sign in:');
      button.disabled = false;
      input.focus();
    }
  });
  app.replaceChildren(form);
  input.focus();
  markReady();
  return null;
}
