// A spec as editor text, JSON or YAML, and back.

import { toYaml, fromYaml } from './yaml.js';

/** One-line JSON with spaces: { "a": 1, "b": [1, 2] }. */
function compact(v) {
  if (Array.isArray(v)) return `[${v.map(compact).join(', ')}]`;
  if (v && typeof v === 'object') {
    const parts = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${compact(x)}`);
    return parts.length ? `{ ${parts.join(', ')} }` : '{}';
  }
  return JSON.stringify(v);
}

/** JSON with small objects on one line, like the files in examples/jobs/. */
export function prettyJson(v, indent = 0) {
  const one = compact(v);
  if (v === null || typeof v !== 'object' || one.length + indent <= 90) return one;
  const pad = ' '.repeat(indent + 2);
  const end = ' '.repeat(indent);
  if (Array.isArray(v)) return `[\n${v.map((x) => pad + prettyJson(x, indent + 2)).join(',\n')}\n${end}]`;
  const parts = Object.entries(v).map(([k, x]) => `${pad}${JSON.stringify(k)}: ${prettyJson(x, indent + 2)}`);
  return `{\n${parts.join(',\n')}\n${end}}`;
}

export function specToText(spec, format) {
  return format === 'yaml' ? toYaml(spec) : `${prettyJson(spec)}\n`;
}

/** Parses editor text (throws an Error saying where). */
export function specFromText(text, format) {
  return format === 'yaml' ? fromYaml(text) : JSON.parse(text);
}
