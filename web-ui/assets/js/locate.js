// Finds the editor line of a spec problem's path (`stages[2].window.slide`,
// `source.generator.rate_per_s`; empty = the whole spec) in JSON or YAML text.
// Pure functions (no DOM): tested with `node --test web-ui/test/`.

/** "stages[2].window.slide" -> ["stages", 2, "window", "slide"]. */
export function parsePath(path) {
  const segs = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m;
  while ((m = re.exec(path || ''))) segs.push(m[2] !== undefined ? Number(m[2]) : m[1]);
  return segs;
}

/** The line of a "... at line 3 column 5" message (serde's parse errors), else null. */
export function lineFromMessage(message) {
  const m = /\bline (\d+)/.exec(message || '');
  return m ? Number(m[1]) : null;
}

/**
 * The 1-based line of `path` in `text`: {line, exact}. When the path is not found whole, the
 * line of its longest prefix that is (exact: false); the top (line 1) when none is.
 */
export function locate(text, path, format) {
  const segs = parsePath(path);
  if (!segs.length) return { line: 1, exact: false };
  const found = format === 'yaml' ? yamlWalk(text, segs) : jsonWalk(text, segs);
  if (found.line == null) return { line: 1, exact: false };
  return { line: found.line, exact: found.depth === segs.length };
}

// --- JSON: a tolerant recursive-descent walk that keeps the line of every value on the path.

function jsonWalk(text, want) {
  let i = 0;
  let line = 1;
  const best = { depth: 0, line: null };
  const note = (path, ln) => {
    if (path.length <= best.depth || path.length > want.length) return;
    for (let k = 0; k < path.length; k++) if (path[k] !== want[k]) return;
    best.depth = path.length;
    best.line = ln;
  };
  const onPath = (path) => path.length <= want.length && path.every((p, k) => p === want[k]);
  const ws = () => {
    for (; i < text.length; i++) {
      const c = text[i];
      if (c === '\n') line++;
      else if (c !== ' ' && c !== '\t' && c !== '\r') break;
    }
  };
  const fail = () => { throw new Error('stop'); };
  const str = () => {
    if (text[i] !== '"') fail();
    let out = '';
    for (i++; i < text.length; i++) {
      const c = text[i];
      if (c === '"') { i++; return out; }
      if (c === '\n') fail();
      if (c === '\\') {
        const n = text[++i];
        if (n === 'u') { out += String.fromCharCode(parseInt(text.slice(i + 1, i + 5), 16)); i += 4; }
        else out += { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' }[n] ?? n;
      } else out += c;
    }
    fail();
  };
  const value = (path) => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') { i++; return; }
      for (;;) {
        ws();
        const keyLine = line;
        const key = str();
        const p = path.concat([key]);
        note(p, keyLine);
        ws();
        if (text[i] !== ':') fail();
        i++;
        // Only paths that can still match need their inner lines; others are just skipped.
        value(onPath(p) ? p : ['\u0000']);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return; }
        fail();
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') { i++; return; }
      for (let n = 0; ; n++) {
        ws();
        const p = path.concat([n]);
        note(p, line);
        value(onPath(p) ? p : ['\u0000']);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return; }
        fail();
      }
    } else if (c === '"') {
      str();
    } else {
      const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
      if (!m) fail();
      i += m[0].length;
    }
  };
  try { value([]); } catch { /* a broken document: keep what was found */ }
  return best;
}

// --- YAML: an indentation-based key walk over block mappings and sequences (flow
// collections `{...}`/`[...]` on one line count as that line).

function yamlEntries(text) {
  const out = [];
  text.split(/\r?\n/).forEach((raw, idx) => {
    const t = raw.replace(/\t/g, '    ');
    const body = t.trim();
    if (!body || body.startsWith('#') || body === '---' || body === '...') return;
    out.push({ line: idx + 1, indent: t.length - t.trimStart().length, text: body });
  });
  return out;
}

const isDash = (t) => t === '-' || t.startsWith('- ');

/** The key of a `key: value` line, or null. */
export function yamlKey(t) {
  const m = /^(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s:#'"{}[\],&*!|>%@`-][^:#]*?|-[^\s:#][^:#]*?))\s*:(?:\s|$)/.exec(t);
  if (!m) return null;
  return m[1] ?? (m[2] !== undefined ? m[2].replace(/''/g, "'") : m[3]);
}

function yamlWalk(text, want) {
  const best = { depth: 0, line: null };
  let scope = yamlEntries(text);
  for (let d = 0; d < want.length; d++) {
    if (!scope.length) break;
    const base = scope[0].indent;
    const seg = want[d];
    const last = d === want.length - 1;
    if (typeof seg === 'number') {
      const items = [];
      scope.forEach((e, k) => { if (e.indent === base && isDash(e.text)) items.push(k); });
      if (seg >= items.length) break;
      const k = items[seg];
      const end = seg + 1 < items.length ? items[seg + 1] : scope.length;
      const e = scope[k];
      best.depth = d + 1;
      best.line = e.line;
      if (last) break;
      const content = e.text.replace(/^-\s*/, '');
      if (content === '') { scope = scope.slice(k + 1, end); continue; }
      if (/^[{[]/.test(content)) break; // a flow collection: its line
      scope = [{ line: e.line, indent: e.indent + (e.text.length - content.length), text: content }]
        .concat(scope.slice(k + 1, end));
    } else {
      const k = scope.findIndex((e) => e.indent === base && yamlKey(e.text) === seg);
      if (k < 0) break;
      const e = scope[k];
      best.depth = d + 1;
      best.line = e.line;
      if (last) break;
      const rest = e.text.slice(e.text.indexOf(':') + 1).trim();
      if (rest && !rest.startsWith('#')) break; // an inline value: its line
      let end = k + 1;
      while (end < scope.length && (scope[end].indent > base || (scope[end].indent === base && isDash(scope[end].text)))) end++;
      scope = scope.slice(k + 1, end);
    }
  }
  return best;
}
