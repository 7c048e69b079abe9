// Polling that never overlaps: run fn, wait `ms` after it ends, run again; until stopped.

export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  let running = false;
  let again = false;
  const tick = async () => {
    if (stopped) return;
    if (running) { again = true; return; }
    running = true;
    clearTimeout(timer);
    try { await fn(); } catch (e) { console.error(e); }
    running = false;
    if (stopped) return;
    if (again) { again = false; tick(); } else timer = setTimeout(tick, ms);
  };
  tick();
  return {
    stop() { stopped = true; clearTimeout(timer); },
    /** Runs fn again now (e.g. after an action), then goes on every `ms`. */
    now() { tick(); },
  };
}
