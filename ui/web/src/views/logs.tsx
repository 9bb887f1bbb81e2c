// A step's log: virtualized so a log of any length renders only the lines
// on screen, searchable, copyable, with stderr lines marked. While it follows
// the end, the window of lines comes from the line count, not from a scroll
// event, so a new line costs one render and no forced layout.

import { useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type LogLine, searchLines } from '../store';

const LINE_HEIGHT = 18;

export function LogView(props: { lines: LogLine[]; version: number; title?: string }) {
  const { lines } = props;
  const host = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(300);
  const [query, setQuery] = useState('');
  const [stick, setStick] = useState(true);
  const hits = useMemo(() => searchLines(lines, query), [lines, lines.length, query]);

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

  const first = Math.max(0, Math.floor(top / LINE_HEIGHT) - 20);
  const last = Math.min(lines.length, Math.ceil((top + height) / LINE_HEIGHT) + 20);
  const hitSet = useMemo(() => new Set(hits), [hits]);

  const jumpTo = (index: number) => {
    setStick(false);
    if (host.current) host.current.scrollTop = index * LINE_HEIGHT - height / 2;
  };

  return (
    <div class="log">
      <div class="toolbar">
        {props.title && <strong>{props.title}</strong>}
        <input
          placeholder="Search log"
          value={query}
          onInput={(e) => setQuery(e.currentTarget.value)}
          onKeyDown={(e) => e.key === 'Enter' && hits.length > 0 && jumpTo(hits[0])}
        />
        {query && <span data-testid="log-hits">{hits.length} matches</span>}
        <button onClick={() => navigator.clipboard?.writeText(lines.map((l) => l.text).join('\n'))}>Copy</button>
        <span>{lines.length} lines</span>
      </div>
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
        <div style={{ height: `${lines.length * LINE_HEIGHT}px`, position: 'relative' }}>
          {lines.slice(first, last).map((line, offset) => {
            const index = first + offset;
            return (
              <div
                key={index}
                class={`log-line${line.stderr ? ' stderr' : ''}${hitSet.has(index) ? ' hit' : ''}`}
                style={{ transform: `translateY(${index * LINE_HEIGHT}px)` }}
              >
                <span class="gutter">{line.stderr ? 'err' : ''}</span>
                {line.text}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
