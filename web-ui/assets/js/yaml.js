// YAML for the spec editor's JSON/YAML switch: toYaml() writes a spec as YAML (small leaf
// objects in flow style, as examples/jobs/errors-per-minute.yaml does) and fromYaml() reads
// the subset specs use (block mappings and sequences, flow collections, plain and quoted
// scalars, comments). Not a full YAML parser: anchors, tags and block scalars are refused.

const KEYWORDS = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(v) {
  if (v === null) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const s = String(v);
  const plain = /^[A-Za-z0-9_/][A-Za-z0-9_./@-]*(?: [A-Za-z0-9_./@()-]+)*$/.test(s)
    && !KEYWORDS.test(s) && !(/^[-+.\d]/.test(s) && !Number.isNaN(Number(s)));
  return plain ? s : JSON.stringify(s);
}

const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
const isLeafy = (v) => (Array.isArray(v) ? v : Object.values(v)).every((x) => x === null || typeof x !== 'object'
  || (isObj(x) && Object.keys(x).length === 0));

function flow(v) {
  if (Array.isArray(v)) return `[${v.map(flow).join(', ')}]`;
  if (isObj(v)) {
    const parts = Object.entries(v).map(([k, x]) => `${scalar(k)}: ${flow(x)}`);
    return parts.length ? `{ ${parts.join(', ')} }` : '{}';
  }
  return scalar(v);
}

const inline = (v) => (v === null || typeof v !== 'object'
  || (Object.keys(v).length === 0)
  || (isLeafy(v) && flow(v).length <= 64));

function block(v, indent) {
  const pad = ' '.repeat(indent);
  const lines = [];
  if (Array.isArray(v)) {
    for (const x of v) {
      if (inline(x)) lines.push(`${pad}- ${flow(x)}`);
      else {
        const inner = block(x, indent + 2);
        lines.push(`${pad}- ${inner[0].slice(indent + 2)}`, ...inner.slice(1));
      }
    }
  } else {
    for (const [k, x] of Object.entries(v)) {
      if (inline(x)) lines.push(`${pad}${scalar(k)}: ${flow(x)}`);
      else lines.push(`${pad}${scalar(k)}:`, ...block(x, indent + 2));
    }
  }
  return lines;
}

/** A spec (or any JSON value) as YAML text. */
export function toYaml(v) {
  if (inline(v)) return `${flow(v)}\n`;
  return `${block(v, 0).join('\n')}\n`;
}

// --- reading

class YamlError extends Error {}

function stripComment(t) {
  let q = null;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (q) { if (c === q) q = null; else if (c === '\\' && q === '"') i++; }
    else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(t[i - 1]))) return t.slice(0, i).trimEnd();
  }
  return t.trimEnd();
}

function plainScalar(s, line) {
  if (/^[&*!|>%@`]/.test(s)) throw new YamlError(`line ${line}: this YAML feature is not supported here: ${s}`);
  if (/^(null|~)$/i.test(s) || s === '') return null;
  if (/^true$/i.test(s)) return true;
  if (/^false$/i.test(s)) return false;
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

/** Reads a flow value (`{a: 1, b: [x, y]}`, a quoted or plain scalar) from s at i. */
function flowValue(s, i, line, inFlow) {
  const ws = () => { while (s[i] === ' ') i++; };
  ws();
  const c = s[i];
  if (c === '{' || c === '[') {
    const close = c === '{' ? '}' : ']';
    const out = c === '{' ? {} : [];
    i++;
    for (;;) {
      ws();
      if (s[i] === close) { i++; break; }
      if (c === '{') {
        const [k, j] = flowValue(s, i, line, true);
        i = j; ws();
        if (s[i] !== ':') throw new YamlError(`line ${line}: expected ':' in a flow mapping`);
        i++;
        const [v, j2] = flowValue(s, i, line, true);
        out[String(k)] = v; i = j2;
      } else {
        const [v, j] = flowValue(s, i, line, true);
        out.push(v); i = j;
      }
      ws();
      if (s[i] === ',') { i++; continue; }
      if (s[i] === close) { i++; break; }
      throw new YamlError(`line ${line}: expected ',' or '${close}'`);
    }
    return [out, i];
  }
  if (c === '"') {
    let j = i + 1;
    while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
    if (j >= s.length) throw new YamlError(`line ${line}: unterminated string`);
    return [JSON.parse(s.slice(i, j + 1)), j + 1];
  }
  if (c === "'") {
    let j = i + 1;
    let out = '';
    for (;;) {
      if (j >= s.length) throw new YamlError(`line ${line}: unterminated string`);
      if (s[j] === "'") { if (s[j + 1] === "'") { out += "'"; j += 2; continue; } break; }
      out += s[j++];
    }
    return [out, j + 1];
  }
  const stop = inFlow ? /[,}\]]|:(\s|$)/ : /$/;
  const rest = s.slice(i);
  const m = stop.exec(rest);
  const raw = rest.slice(0, m ? m.index : rest.length).trim();
  return [plainScalar(raw, line), i + (m ? m.index : rest.length)];
}

function inlineValue(s, line) {
  const [v, j] = flowValue(s, 0, line, false);
  if (s.slice(j).trim()) throw new YamlError(`line ${line}: unexpected text after the value`);
  return v;
}

function entries(text) {
  const out = [];
  const raw = text.split(/\r?\n/);
  for (let n = 0; n < raw.length; n++) {
    if (/^\s*\t/.test(raw[n])) throw new YamlError(`line ${n + 1}: tabs are not allowed for indentation`);
    let t = stripComment(raw[n]);
    if (!t.trim() || t.trim() === '---') continue;
    const indent = t.length - t.trimStart().length;
    // a flow collection over several lines: join them
    let depth = 0;
    const count = (x) => { for (const c of x.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, '')) { if ('{['.includes(c)) depth++; else if ('}]'.includes(c)) depth--; } };
    count(t);
    const line = n + 1;
    while (depth > 0 && n + 1 < raw.length) { n++; const more = stripComment(raw[n]).trim(); t += ` ${more}`; count(more); }
    out.push({ line, indent, text: t.trim() });
  }
  return out;
}

const keyRe = /^(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s:#'"{}[\],&*!|>%@`][^:#]*?))\s*:(?:\s+|$)/;

function parseBlock(es, k, indent) {
  const first = es[k];
  if (first.text === '-' || first.text.startsWith('- ')) {
    const arr = [];
    while (k < es.length && es[k].indent === indent && (es[k].text === '-' || es[k].text.startsWith('- '))) {
      const e = es[k];
      const content = e.text.replace(/^-\s*/, '');
      if (!content) {
        if (k + 1 < es.length && es[k + 1].indent > indent) { const [v, j] = parseBlock(es, k + 1, es[k + 1].indent); arr.push(v); k = j; }
        else { arr.push(null); k++; }
      } else if (keyRe.test(content) && !/^[{["']/.test(content)) {
        const col = e.indent + (e.text.length - content.length);
        const sub = [{ line: e.line, indent: col, text: content }];
        let j = k + 1;
        while (j < es.length && es[j].indent > indent) sub.push(es[j++]);
        const [v] = parseBlock(sub, 0, col);
        arr.push(v); k = j;
      } else { arr.push(inlineValue(content, e.line)); k++; }
    }
    return [arr, k];
  }
  const obj = {};
  while (k < es.length && es[k].indent === indent) {
    const e = es[k];
    const m = keyRe.exec(e.text);
    if (!m || e.text.startsWith('- ')) throw new YamlError(`line ${e.line}: expected "key: value"`);
    const key = m[1] !== undefined ? JSON.parse(`"${m[1]}"`) : m[2] !== undefined ? m[2].replace(/''/g, "'") : m[3];
    const rest = e.text.slice(m[0].length);
    k++;
    if (rest) obj[key] = inlineValue(rest, e.line);
    else if (k < es.length && (es[k].indent > indent || (es[k].indent === indent && /^-(\s|$)/.test(es[k].text)))) {
      const [v, j] = parseBlock(es, k, es[k].indent); obj[key] = v; k = j;
    } else obj[key] = null;
  }
  return [obj, k];
}

/** Reads YAML text (the subset above) into a JSON value; throws with the line on errors. */
export function fromYaml(text) {
  const es = entries(text);
  if (!es.length) return null;
  if (es.length === 1 && !keyRe.test(es[0].text) && !es[0].text.startsWith('- ')) return inlineValue(es[0].text, es[0].line);
  const [v, k] = parseBlock(es, 0, es[0].indent);
  if (k < es.length) throw new YamlError(`line ${es[k].line}: bad indentation`);
  return v;
}
