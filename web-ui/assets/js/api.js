// The API client: fetch with the bearer token, errors as ApiError (the API's
// {"error": {code, message, problems}}), and a Server-Sent Events reader on fetch
// (EventSource cannot send an Authorization header).

import { getToken } from './session.js';

const BASE = '/api/v1';

export class ApiError extends Error {
  constructor(status, code, message, problems) {
    super(message);
    this.status = status;
    this.code = code;
    this.problems = problems || null;
  }
}

let onUnauthorized = null;
/** Called with the error when an answer is 401 (the token is no longer good). */
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

async function errorFrom(res) {
  let text = '';
  try { text = await res.text(); } catch { /* ignore */ }
  try {
    const body = JSON.parse(text);
    if (body && body.error && body.error.message) {
      return new ApiError(res.status, body.error.code, body.error.message, body.error.problems);
    }
  } catch { /* not JSON */ }
  const msg = text && text.length < 500 ? text : `${res.status} ${res.statusText || 'error'}`;
  return new ApiError(res.status, `http_${res.status}`, `The server answered ${res.status}: ${msg}`);
}

async function send(method, path, opts = {}) {
  const headers = { Accept: 'application/json' };
  const token = opts.token ?? getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.body !== undefined) {
    headers['Content-Type'] = opts.type || 'text/plain';
    body = opts.body;
  }
  let res;
  try {
    res = await fetch(BASE + path, { method, headers, body, signal: opts.signal, cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `Cannot reach the server (${e.message}).`);
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && onUnauthorized && !opts.token) onUnauthorized(err);
    throw err;
  }
  return res;
}

/** A JSON request: api('GET', '/jobs'), api('POST', '/jobs', {json}), {body, type}. */
export async function api(method, path, opts) {
  const res = await send(method, path, opts);
  if (res.status === 204) return null;
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch {
    throw new ApiError(res.status, 'bad_answer', `The server's answer is not JSON: ${text.slice(0, 200)}`);
  }
}

export const get = (path, opts) => api('GET', path, opts);
export const post = (path, json, opts = {}) => api('POST', path, json === undefined ? opts : { ...opts, json });

/**
 * Reads a Server-Sent Events stream: onEvent(event, data) per event. Returns a promise that
 * ends with the stream (resolves), or rejects with an ApiError; abort with `signal`.
 */
export async function readEvents(path, { signal, onEvent }) {
  const res = await send('GET', path, { signal });
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  let event = 'message';
  let data = [];
  const line = (l) => {
    if (l === '') {
      if (data.length) onEvent(event, data.join('\n'));
      event = 'message';
      data = [];
    } else if (l.startsWith(':')) {
      // a comment (keep-alive)
    } else {
      const i = l.indexOf(':');
      const name = i < 0 ? l : l.slice(0, i);
      let value = i < 0 ? '' : l.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (name === 'event') event = value;
      else if (name === 'data') data.push(value);
    }
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
        const l = buf.slice(0, nl);
        buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
        line(l);
      }
    }
  } finally {
    reader.releaseLock?.();
  }
}
