// A job's pipeline as boxes: source -> stages -> sink, each stage with its records in, out
// and refused in the last batch (its `stages` entry by index) and its UDF version.

import { h, put } from './dom.js';
import { fmtNum } from './format.js';

const UDF_OPS = new Set(['map', 'flat_map', 'filter']);

function describe(kind, cfg) {
  if (cfg == null || typeof cfg !== 'object') return cfg == null ? '' : String(cfg);
  if (kind === 'generator') return [cfg.format, cfg.rate_per_s ? `${fmtNum(cfg.rate_per_s)}/s` : null].filter(Boolean).join(', ');
  if (kind === 'nexmark') return `Nexmark, ${fmtNum(cfg.events_per_s || 10000)} events/s`;
  if (kind === 'http') return 'POST …/ingest';
  if (kind === 'socket') return `${cfg.host}:${cfg.port}`;
  if (kind === 'union') return `${cfg.length} sources`;
  const parts = [];
  if (cfg.function) parts.push(cfg.function);
  if (cfg.length) parts.push(`window ${cfg.length}${cfg.slide ? ` / ${cfg.slide}` : ''}`);
  const red = cfg.reduce || (cfg.builtin || cfg.udf ? cfg : null);
  if (red && red !== cfg) parts.push(red.builtin ? red.builtin : red.function);
  else if (cfg.builtin) parts.push(cfg.builtin);
  if (cfg.table) parts.push(`table ${cfg.table}`);
  if (cfg.records) parts.push(`first ${cfg.records}`);
  return parts.join(', ');
}

const one = (obj) => {
  const k = obj && typeof obj === 'object' ? Object.keys(obj)[0] : String(obj);
  return [k, obj && obj[k]];
};

function counts(...pairs) {
  return h('dl', { class: 'counts' }, pairs.filter(Boolean).map(([k, v, cls]) =>
    h('div', { class: cls || null }, h('dt', null, k), h('dd', null, v == null ? '—' : fmtNum(v)))));
}

/** Renders into `el` (an <ol>): the spec's boxes, with figures from `report`. */
export function renderPipeline(el, spec, stageUdfs, report) {
  const boxes = [];
  const [srcKind, srcCfg] = one(spec.source);
  boxes.push(h('li', { class: 'node node-source' },
    h('div', { class: 'node-kind' }, 'source'),
    h('div', { class: 'node-title' }, srcKind),
    h('div', { class: 'node-detail' }, describe(srcKind, srcCfg)),
    counts(['out', report ? report.records_in : null])));
  (spec.stages || []).forEach((stage, i) => {
    const [op, cfg] = one(stage);
    const c = report && report.stages ? report.stages[i] : null;
    const version = (stageUdfs || []).find((s) => s.stage === i);
    const isUdf = version || UDF_OPS.has(op) || (cfg && cfg.udf) || (cfg && cfg.reduce && cfg.reduce.udf);
    boxes.push(h('li', { class: ['node', 'node-stage', isUdf ? 'node-udf' : null], dataset: { stage: String(i) } },
      h('div', { class: 'node-kind' }, `stage ${i}`),
      h('div', { class: 'node-title' }, op),
      h('div', { class: 'node-detail' }, describe(op, cfg)),
      version ? h('code', { class: 'chip node-udf-version' }, version.udf) : null,
      counts(['in', c ? c.records_in : null], ['out', c ? c.records_out : null],
        ['refused', c ? c.errors : null, c && c.errors ? 'bad' : null])));
  });
  const [sinkKind, sinkCfg] = one(spec.sink);
  boxes.push(h('li', { class: 'node node-sink' },
    h('div', { class: 'node-kind' }, 'sink'),
    h('div', { class: 'node-title' }, sinkKind),
    h('div', { class: 'node-detail' }, describe(sinkKind, sinkCfg)),
    counts(['in', report ? report.records_out : null])));
  put(el, boxes);
}
