// What the pages show about a job: its status with the reason, its UDF versions, its rates.

import { h } from './dom.js';
import { parseDuration } from './format.js';

/** The status word (class job-status) and, when failed or paused, why. */
export function statusView(job, id) {
  const status = job.status || 'unknown';
  let reason = null;
  if (status === 'failed' && job.last_error) reason = job.last_error;
  if (status === 'paused') {
    const p = job.run && job.run.paused;
    reason = p ? `${p.reason} (${p.code})` : 'storage failed; it resumes by itself once storage works again';
  }
  return [
    h('span', { id, class: ['job-status', `status-${status}`], dataset: { status } }, status),
    reason ? h('span', { class: 'status-reason' }, reason) : null,
  ];
}

export const canStart = (status) => ['created', 'stopped', 'failed'].includes(status);
export const canStop = (status) => ['running', 'starting', 'paused'].includes(status);

/** "module@version" strings a job runs (its stages' versions, else its pins). */
export function udfsInUse(job) {
  const out = new Set((job.stage_udfs || []).map((s) => s.udf));
  if (!out.size) for (const p of job.udfs || []) out.add(`${p.module}@${p.version}`);
  return [...out];
}

/** Whether a job reads from an `http` source (itself or in a union). */
export function hasHttpSource(spec) {
  const src = spec && spec.source;
  if (!src) return false;
  if (src.http) return true;
  return Array.isArray(src.union) && src.union.some((s) => s && s.http);
}

export function intervalMs(job) {
  return parseDuration(job && job.spec && job.spec.batch_interval) || 1000;
}

/** records/s of each batch (records_in over the batch interval). */
export function inputRates(batches, intervalMsValue) {
  const secs = intervalMsValue / 1000;
  return batches.map((b) => b.records_in / secs);
}
