// Live uPlot charts of a job's batches (x = batch time), with a labelled vertical marker at
// each job event, drawn by a uPlot draw hook. The container gets data-points and
// data-markers (what was plotted) on every redraw.

import { h } from './dom.js';

export const MARKER_COLORS = {
  swapped: '#7c3aed', restored: '#0891b2', started: '#15803d', resumed: '#15803d',
  failed: '#dc2626', paused: '#d97706', stopped: '#475569',
};

const HEIGHT = 160;

function markerPlugin(state, container) {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx, bbox } = u;
        const px = window.uPlot.pxRatio || 1;
        ctx.save();
        ctx.font = `${11 * px}px system-ui, sans-serif`;
        ctx.textBaseline = 'top';
        ctx.textAlign = 'left';
        let n = 0;
        for (const m of state.markers) {
          const x = Math.round(u.valToPos(m.x, 'x', true));
          if (x < bbox.left - 1 || x > bbox.left + bbox.width + 1) continue;
          const color = MARKER_COLORS[m.kind] || '#334155';
          ctx.strokeStyle = color;
          ctx.fillStyle = color;
          ctx.lineWidth = 1.5 * px;
          ctx.setLineDash([4 * px, 3 * px]);
          ctx.beginPath();
          ctx.moveTo(x + 0.5, bbox.top);
          ctx.lineTo(x + 0.5, bbox.top + bbox.height);
          ctx.stroke();
          const label = m.label;
          const w = ctx.measureText(label).width;
          const tx = x + 3 * px + w > bbox.left + bbox.width ? x - 3 * px - w : x + 3 * px;
          ctx.fillText(label, tx, bbox.top + 2 * px + (n % 3) * 13 * px);
          n++;
        }
        ctx.restore();
        container.dataset.markers = String(n);
        container.dataset.points = String(u.data[0].length);
      }],
    },
  };
}

/**
 * A chart in `container`: {update(xsSeconds, ys, markers), destroy()}; markers are
 * {x (seconds), kind, label}.
 */
export function createChart(container, { label, color, fmt }) {
  container.dataset.points = '0';
  container.dataset.markers = '0';
  if (!window.uPlot) {
    container.append(h('p', { class: 'msg msg-error' }, 'The chart library did not load.'));
    return { update() {}, destroy() {} };
  }
  const state = { markers: [] };
  const width = () => Math.max(240, container.clientWidth || 480);
  const opts = {
    width: width(),
    height: HEIGHT,
    scales: { x: { time: true } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [
      { value: (u, v) => (v == null ? '—' : new Date(v * 1000).toLocaleTimeString()) },
      { label, stroke: color, width: 1.5, fill: `${color}1f`, points: { show: false }, value: (u, v) => (v == null ? '—' : fmt(v)) },
    ],
    axes: [
      { stroke: '#475569', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' } },
      { stroke: '#475569', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' }, size: 64, values: (u, vals) => vals.map((v) => fmt(v)) },
    ],
    plugins: [markerPlugin(state, container)],
  };
  const u = new window.uPlot(opts, [[], []], container);
  const ro = new ResizeObserver(() => {
    const w = width();
    if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: HEIGHT });
  });
  ro.observe(container);
  return {
    update(xs, ys, markers) {
      const lo = xs.length ? xs[0] : 0;
      const hi = xs.length ? xs[xs.length - 1] : -1;
      state.markers = markers.filter((m) => m.x >= lo && m.x <= hi);
      container.dataset.points = String(xs.length);
      container.dataset.markers = String(state.markers.length);
      u.setData([xs, ys]);
      // When the page's first chart was drawn, in ms since the page began to load (measured
      // by the console bench).
      if (xs.length && !document.body.dataset.firstChartMs) {
        document.body.dataset.firstChartMs = String(Math.round(performance.now()));
      }
    },
    destroy() { ro.disconnect(); u.destroy(); },
  };
}
