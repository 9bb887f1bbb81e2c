// Benchmark of the web UI in headless Chromium: a synthetic 500-step
// build whose steps run one after another while a log streams 10,000 lines
// per second into the open step's log view. Frames go into the page's live
// store through `enqueue`, the path WebSocket frames take after parsing,
// so the numbers measure rendering, not the network or the engine.
//
// Run: npm run build && node bench/run.mjs   (prints a Markdown table)
// BENCH_DIST=DIR measures the UI built into DIR (relative to ui/web) instead
// of dist.
// BENCH_TRACE=FILE also records a Chromium performance trace of the run
// into FILE (open it in DevTools' Performance panel) and prints the main
// thread's time per activity.
import { spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { launch } from '../tests/e2e/browser.mjs';
import { startTrace } from './trace.mjs';

const STEPS = 500;
const SECONDS = 10;
const LINES_PER_SECOND = Number(process.env.BENCH_LINES ?? 10_000);
const PORT = 47000 + Math.floor(Math.random() * 1000);

// BENCH_DIST serves another build of the UI, such as a baseline to compare with.
const DIST = process.env.BENCH_DIST ?? 'dist';
// Vite runs in this Node directly, not through npx, so that `preview.kill()`
// stops the server itself: killing npx left the server running.
const VITE = fileURLToPath(new URL('../node_modules/vite/bin/vite.js', import.meta.url));
const preview = spawn(process.execPath, [VITE, 'preview', '--outDir', DIST, '--port', String(PORT), '--strictPort'], {
  cwd: fileURLToPath(new URL('..', import.meta.url)),
  stdio: 'ignore',
});
// Waits for the preview server, which takes seconds to start on a loaded machine.
for (let attempt = 0; ; attempt++) {
  try {
    await fetch(`http://127.0.0.1:${PORT}/`);
    break;
  } catch (error) {
    if (attempt === 300) throw new Error(`\`vite preview\` did not listen on port ${PORT} within 30 s: ${error.message}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const { context, close } = await launch();
try {
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  await page.goto(`http://127.0.0.1:${PORT}/?token=bench`);
  await page.waitForFunction(() => window.__strata);
  await page.click('[data-testid="tab-build"]');
  const load = loadavg()[0];
  const stopTrace = process.env.BENCH_TRACE ? await startTrace(context, page) : null;

  const result = await page.evaluate(
    async ({ STEPS, SECONDS, LINES_PER_SECOND }) => {
      const { store } = window.__strata;
      const node = (i, state) => ({
        id: `sha256:${String(i).padStart(64, '0')}`,
        name: `[stage${Math.floor(i / 50)} ${i % 50}/50] RUN step ${i}`,
        stage: `stage${Math.floor(i / 50)}`,
        location: null,
        inputs: i % 50 === 0 ? [] : [`sha256:${String(i - 1).padStart(64, '0')}`],
        state,
        started_ms: state === 'queued' ? null : i * 10,
        finished_ms: state === 'done' ? i * 10 + 5 : null,
        cache_key: null,
        error: null,
        reasons: [],
        log_bytes: 0,
      });
      // A grid like the server's layout: ten stages side by side.
      const boxes = Array.from({ length: STEPS }, (_, i) => ({
        id: node(i).id, name: node(i).name, layer: i % 50,
        x: Math.floor(i / 50) * 250, y: (i % 50) * 94, width: 220, height: 44,
      }));
      const edges = boxes.filter((_, i) => i % 50 !== 0).map((b, k) => ({
        from: boxes[boxes.indexOf(b) - 1].id, to: b.id,
        points: [[b.x + 110, b.y - 50], [b.x + 110, b.y]],
      }));
      store.apply([
        { type: 'event', event: { v: 1, time: '', type: 'build_started', build_id: 'bench' } },
        ...Array.from({ length: STEPS }, (_, i) => ({ type: 'node', node: node(i, 'queued') })),
        { type: 'layout', layout: { nodes: boxes, edges, width: 2500, height: 4700 } },
      ]);
      await new Promise((r) => setTimeout(r, 500));
      if (!document.querySelector('[data-node-id]')) return { error: document.body.innerHTML.slice(0, 500) };
      document.querySelector(`[data-node-id="${boxes[0].id}"]`).dispatchEvent(new MouseEvent('click', { bubbles: true }));
      await new Promise((r) => setTimeout(r, 200));

      const frames = [];
      const work = [];
      const latencies = [];
      let last = performance.now();
      let running = true;
      // A message posted from an animation frame callback runs after that
      // frame's callbacks, style, layout and paint on the main thread, so
      // its arrival minus the frame's start is the main thread's time for
      // the frame. Unlike the interval between frames, which vsync rounds
      // to multiples of 16.7 ms, it shows how much of the budget is left.
      const channel = new MessageChannel();
      let frameStart = 0;
      channel.port1.onmessage = () => work.push(performance.now() - frameStart);
      const tick = (now) => {
        frames.push(now - last);
        last = now;
        frameStart = now;
        channel.port2.postMessage(null);
        if (running) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);

      const start = performance.now();
      let step = 0;
      let line = 0;
      const logVertex = boxes[0].id;
      await new Promise((resolve) => {
        const interval = setInterval(() => {
          const elapsed = (performance.now() - start) / 1000;
          const due = Math.floor(elapsed * LINES_PER_SECOND);
          const text = [];
          while (line < due) text.push(`line ${line++} of the synthetic log, some padding to look like compiler output`);
          const messages = [{ type: 'event', event: { v: 1, time: '', type: 'log', vertex: logVertex, stream: line % 7 ? 'stdout' : 'stderr', data: text.join('\n') + '\n' } }];
          const i = step++;
          if (i < STEPS) {
            const id = boxes[i].id;
            const element = document.querySelector(`[data-node-id="${id}"]`);
            const sent = performance.now();
            const observer = new MutationObserver(() => {
              if (element.getAttribute('data-state') === 'done') {
                latencies.push(performance.now() - sent);
                observer.disconnect();
              }
            });
            observer.observe(element, { attributes: true, attributeFilter: ['data-state'] });
            messages.push({ type: 'node', node: node(i, 'done') });
          }
          store.enqueue(messages);
          if (elapsed >= SECONDS) {
            clearInterval(interval);
            resolve();
          }
        }, 10);
      });
      await new Promise((r) => setTimeout(r, 300));
      running = false;
      const sorted = (values) => [...values].sort((a, b) => a - b);
      const pct = (values, p) => sorted(values)[Math.min(values.length - 1, Math.floor(values.length * p))];
      const steady = frames.slice(5);
      const steadyWork = work.slice(5);
      channel.port1.close();
      return {
        frames: steady.length,
        frameMedian: pct(steady, 0.5),
        frameP95: pct(steady, 0.95),
        frameMax: pct(steady, 1),
        workMedian: pct(steadyWork, 0.5),
        workP95: pct(steadyWork, 0.95),
        longFrames: steady.filter((ms) => ms > 20).length,
        latencyMedian: pct(latencies, 0.5),
        latencyP95: pct(latencies, 0.95),
        latencies: latencies.length,
        lines: line,
        heapMiB: performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null,
        domNodes: document.getElementsByTagName('*').length,
      };
    },
    { STEPS, SECONDS, LINES_PER_SECOND },
  );
  if (result.error) throw new Error(`The graph did not render: ${result.error}`);
  if (stopTrace) {
    const { totals, functions, cpu } = await stopTrace(process.env.BENCH_TRACE);
    const ms = (n) => (n == null ? 'n/a' : `${n.toFixed(1)} ms`);
    console.log(
      `Main-thread CPU per frame (${cpu.frames} frames): median ${ms(cpu.median)}, p95 ${ms(cpu.p95)}, max ${ms(cpu.max)}; ` +
        `total ${cpu.total.toFixed(0)} ms`,
    );
    console.log(`Main thread time during the run (ms), trace in ${process.env.BENCH_TRACE}:`);
    for (const [name, ms] of Object.entries(totals)) console.log(`  ${name.padEnd(20)} ${ms.toFixed(0)}`);
    console.log('JavaScript self time (ms) of the hottest functions:');
    for (const [name, ms] of functions) console.log(`  ${ms.toFixed(0).padStart(6)}  ${name}`);
  }
  const f = (n) => (n == null ? 'n/a' : n.toFixed(1));
  console.log(`| metric | value | target |
| --- | --- | --- |
| frame time, median | ${f(result.frameMedian)} ms | |
| frame time, p95 | ${f(result.frameP95)} ms | one vsync interval (16.7 ms at 60 Hz) |
| frame time, max | ${f(result.frameMax)} ms | |
| frames longer than 20 ms | ${result.longFrames} of ${result.frames} | |
| main thread per frame, median | ${f(result.workMedian)} ms | |
| main thread per frame, p95 | ${f(result.workP95)} ms | < 16 ms |
| event to colour change, median | ${f(result.latencyMedian)} ms (${result.latencies} changes) | |
| event to colour change, p95 | ${f(result.latencyP95)} ms | < 50 ms |
| log lines streamed | ${result.lines} in ${SECONDS} s | 10,000/s |
| JS heap after the stream | ${f(result.heapMiB)} MiB | |
| DOM elements | ${result.domNodes} | |
| load average (1 min) at start | ${load.toFixed(1)} on ${availableParallelism()} cores | |`);
} finally {
  await close();
  preview.kill();
}
