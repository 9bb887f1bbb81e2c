// A step's log: virtualized so a log of any length renders only the lines
// on screen, searchable, copyable, with stderr lines marked. While it follows
// the end, the window of lines comes from the line count, not from a scroll
// event, so a new line costs one render and no scroll event round trip.
//
// The window is one block moved by a single transform, and its line
// elements are keyed by their slot in the window, not by line number. At
// 10,000 lines per second the whole window changes every frame, and this
// way Preact rewrites the text of the same elements instead of removing and
// creating them, and the compositor updates one transform instead of
// one per line. The stderr mark is a CSS ::before, so each line is one
// element with one text node.

import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type LogLine, LogSearch } from '../store';

export const LINE_HEIGHT = 18;
/**
 * Lines rendered above and below the visible ones, so a scroll shows no gap
 * before the next render. Scroll events run before the frame's render, so a
 * few lines are enough, and each one costs layout in every frame of a fast log.
 */
export const OVERSCAN_LINES = 8;

/** Range `[first, last)` of line indexes to render for a scroll offset and viewport height, in pixels. */
export function logWindow(count: number, top: number, height: number): { first: number; last: number } {
  const first = Math.max(0, Math.min(count, Math.floor(top / LINE_HEIGHT) - OVERSCAN_LINES));
  const last = Math.max(first, Math.min(count, Math.ceil((top + height) / LINE_HEIGHT) + OVERSCAN_LINES));
  return { first, last };
}

export function LogView(props: { lines: LogLine[]; version: number; title?: string }) {
  const { lines } = props;
  const host = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(300);
  const [query, setQuery] = useState('');
  const [stick, setStick] = useState(true);
  // One search per view: new lines are scanned once, not the whole log per frame.
  const search = useMemo(() => new LogSearch(), []);
  const hits = search.update(lines, query);

  useLayoutEffect(() => {
    const element = host.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setHeight(element.clientHeight || 300));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);

  const bottom = Math.max(0, lines.length * LINE_HEIGHT - height);
  const top = stick ? bottom : scrollTop;
  useLayoutEffect(() => {
    const element = host.current;
    if (stick && element && Math.abs(element.scrollTop - bottom) >= 1) element.scrollTop = bottom;
  }, [props.version, stick, bottom]);

  const { first, last } = logWindow(lines.length, top, height);

  const jumpTo = (index: number) => {
    setStick(false);
    if (host.current) host.current.scrollTop = index * LINE_HEIGHT - height / 2;
  };

  const rows = [];
  for (let index = first; index < last; index++) {
    const line = lines[index];
    rows.push(
      <div key={index - first} class={`log-line${line.stderr ? ' stderr' : ''}${hits.has(index) ? ' hit' : ''}`}>
        {line.text}
      </div>,
    );
  }

  return (
    <div class="log">
      <div class="toolbar">
        {props.title && <strong>{props.title}</strong>}
        <input
          placeholder="Search log"
          value={query}
          onInput={(e) => setQuery(e.currentTarget.value)}
          onKeyDown={(e) => e.key === 'Enter' && hits.size > 0 && jumpTo(search.first())}
        />
        {query && <span data-testid="log-hits">{hits.size} matches</span>}
        <button onClick={() => navigator.clipboard?.writeText(lines.map((l) => l.text).join('\n'))}>Copy</button>
        <span class="log-count">{lines.length} lines</span>
      </div>
      <div class="log-body">
        <div
          class="log-lines"
          ref={host}
          data-testid="log-lines"
          onScroll={(e) => {
            const element = e.currentTarget;
            // The scroll that follows the end sets scrollTop to `bottom`; only a user's scroll changes the window.
            const atEnd = element.scrollTop >= bottom - LINE_HEIGHT;
            if (atEnd !== stick) setStick(atEnd);
            if (!atEnd) setScrollTop(element.scrollTop);
          }}
        >
          <div class="log-spacer" style={{ height: `${lines.length * LINE_HEIGHT}px` }}>
            <div class="log-window" style={{ transform: `translateY(${first * LINE_HEIGHT}px)` }}>
              {rows}
            </div>
          </div>
        </div>
      </div>
    </div>
  );
}
