// Chromium performance trace for the benchmark: records the renderer's
// timeline through the DevTools protocol and sums where the main thread
// spent its time (script, style, layout, paint, garbage collection).
import { writeFileSync } from 'node:fs';

const CATEGORIES = [
  'devtools.timeline',
  'disabled-by-default-devtools.timeline',
  'v8.execute',
  'disabled-by-default-v8.cpu_profiler',
];

/** Timeline events worth summing; nested ones are counted inside their parents too. */
const SUMMED = [
  'FireAnimationFrame',
  'FunctionCall',
  'TimerFire',
  'RunMicrotasks',
  'UpdateLayoutTree',
  'Layout',
  'PrePaint',
  'Paint',
  'Layerize',
  'Commit',
  'HitTest',
  'MinorGC',
  'MajorGC',
];

export async function startTrace(context, page) {
  const session = await context.newCDPSession(page);
  const events = [];
  session.on('Tracing.dataCollected', ({ value }) => events.push(...value));
  await session.send('Tracing.start', { categories: CATEGORIES.join(','), transferMode: 'ReportEvents' });
  return async function stop(path) {
    const done = new Promise((resolve) => session.once('Tracing.tracingComplete', resolve));
    await session.send('Tracing.end');
    await done;
    if (path) writeFileSync(path, JSON.stringify({ traceEvents: events }));
    return { totals: summarize(events), functions: hottestFunctions(events, 12), cpu: cpuPerFrame(events) };
  };
}

/** Timeline events that only occur in the task that renders a frame. */
const RENDERING = new Set(['FireAnimationFrame', 'PrePaint', 'Paint', 'Layerize', 'Commit']);

/**
 * Main-thread CPU time per displayed frame, from the trace's thread
 * durations (`tdur`): every top-level task from the end of one rendering
 * task to the end of the next counts for the second frame, so the log
 * producer, the store's apply and the render are all included. Unlike wall
 * time, CPU time does not grow while other processes hold the cores.
 */
function cpuPerFrame(events) {
  const mains = mainThreads(events);
  const onMain = events
    .filter((e) => e.ph === 'X' && (!mains.size || mains.has(`${e.pid}:${e.tid}`)))
    .sort((a, b) => a.ts - b.ts);
  const tasks = [];
  for (const event of onMain) {
    const last = tasks[tasks.length - 1];
    if (event.name === 'ThreadControllerImpl::RunTask' || event.name === 'RunTask') {
      if (!last || event.ts >= last.end) tasks.push({ end: event.ts + (event.dur ?? 0), cpu: (event.tdur ?? 0) / 1000, renders: false });
    } else if (last && RENDERING.has(event.name) && event.ts < last.end) {
      last.renders = true;
    }
  }
  const frames = [];
  let sum = 0;
  for (const task of tasks) {
    sum += task.cpu;
    if (!task.renders) continue;
    frames.push(sum);
    sum = 0;
  }
  // The first frames include the page's setup before the stream.
  const steady = frames.slice(5).sort((a, b) => a - b);
  const pct = (p) => steady[Math.min(steady.length - 1, Math.floor(steady.length * p))] ?? null;
  return { frames: steady.length, median: pct(0.5), p95: pct(0.95), max: pct(1), total: tasks.reduce((t, x) => t + x.cpu, 0) };
}

function mainThreads(events) {
  return new Set(
    events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`),
  );
}

/** Self time of the JavaScript functions with the most samples, from the trace's CPU profile. */
function hottestFunctions(events, count) {
  const frames = new Map();
  const selfMs = new Map();
  for (const event of events) {
    if (event.name !== 'ProfileChunk') continue;
    const profile = event.args?.data?.cpuProfile ?? {};
    for (const node of profile.nodes ?? []) {
      const { functionName, url = '', lineNumber = -1 } = node.callFrame;
      frames.set(`${event.id}:${node.id}`, `${functionName || '(anonymous)'} ${url.split('/').pop()}:${lineNumber + 1}`);
    }
    const deltas = event.args.data.timeDeltas ?? [];
    (profile.samples ?? []).forEach((id, index) => {
      const key = `${event.id}:${id}`;
      selfMs.set(key, (selfMs.get(key) ?? 0) + (deltas[index] ?? 0) / 1000);
    });
  }
  const byName = new Map();
  for (const [key, ms] of selfMs) {
    const name = frames.get(key) ?? key;
    byName.set(name, (byName.get(name) ?? 0) + ms);
  }
  return [...byName].sort((a, b) => b[1] - a[1]).slice(0, count);
}

/** Milliseconds per event name on the renderer's main thread. */
function summarize(events) {
  // Every renderer's main thread counts: the page's is the only busy one.
  const mains = mainThreads(events);
  const totals = Object.fromEntries(SUMMED.map((name) => [name, 0]));
  for (const event of events) {
    if (mains.size && !mains.has(`${event.pid}:${event.tid}`)) continue;
    if (event.ph !== 'X' || !(event.name in totals)) continue;
    totals[event.name] += (event.dur ?? 0) / 1000;
  }
  return totals;
}
