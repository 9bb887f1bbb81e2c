// Chromium performance trace for the benchmark: records the renderer's
// timeline through the DevTools protocol and sums where the main thread
// spent its time (script, style, layout, paint, garbage collection).
import { writeFileSync } from 'node:fs';

const CATEGORIES = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute'];

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
    return summarize(events);
  };
}

/** Milliseconds per event name on the renderer's main thread. */
function summarize(events) {
  const main = events.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  const totals = Object.fromEntries(SUMMED.map((name) => [name, 0]));
  for (const event of events) {
    if (main && (event.pid !== main.pid || event.tid !== main.tid)) continue;
    if (event.ph !== 'X' || !(event.name in totals)) continue;
    totals[event.name] += (event.dur ?? 0) / 1000;
  }
  return totals;
}
