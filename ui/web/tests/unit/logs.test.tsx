// @vitest-environment happy-dom
import { render } from 'preact';
import { act } from 'preact/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LogSearch, type LogLine } from '../../src/store';
import { LINE_HEIGHT, LogView, OVERSCAN_LINES, logWindow } from '../../src/views/logs';

const makeLines = (count: number, from = 0): LogLine[] =>
  Array.from({ length: count }, (_, i) => ({ text: `line ${from + i}`, stderr: (from + i) % 10 === 0 }));

describe('logWindow', () => {
  it('covers the viewport plus the overscan', () => {
    expect(logWindow(1000, 0, 10 * LINE_HEIGHT)).toEqual({ first: 0, last: 10 + OVERSCAN_LINES });
    expect(logWindow(1000, 500 * LINE_HEIGHT, 10 * LINE_HEIGHT)).toEqual({
      first: 500 - OVERSCAN_LINES,
      last: 510 + OVERSCAN_LINES,
    });
  });

  it('clamps to the lines that exist', () => {
    expect(logWindow(0, 0, 300)).toEqual({ first: 0, last: 0 });
    expect(logWindow(5, 0, 300)).toEqual({ first: 0, last: 5 });
    // A scroll offset past the end, as a shrinking log can leave it.
    expect(logWindow(30, 100 * LINE_HEIGHT, 300)).toEqual({ first: 30, last: 30 });
  });

  it('rounds a partly visible line in', () => {
    expect(logWindow(1000, 100 * LINE_HEIGHT + 5, 10 * LINE_HEIGHT)).toEqual({
      first: 100 - OVERSCAN_LINES,
      last: 111 + OVERSCAN_LINES,
    });
  });
});

describe('LogSearch', () => {
  it('finds lines case-insensitively', () => {
    const search = new LogSearch();
    const lines = [
      { text: 'Error here', stderr: true },
      { text: 'fine', stderr: false },
      { text: 'another error', stderr: false },
    ];
    expect([...search.update(lines, 'ERROR')]).toEqual([0, 2]);
    expect(search.first()).toBe(0);
    expect(search.update(lines, '').size).toBe(0);
    expect(search.first()).toBe(-1);
  });

  it('scans only lines appended since the last update', () => {
    const search = new LogSearch();
    const lines = makeLines(3);
    expect([...search.update(lines, 'line 1')]).toEqual([1]);
    // A line that was already scanned is not scanned again, so changing
    // its text in place shows that only the new lines were read.
    lines[0] = { text: 'line 1 rewritten', stderr: false };
    lines.push({ text: 'line 10', stderr: false }, { text: 'line 11', stderr: false });
    expect([...search.update(lines, 'line 1')]).toEqual([1, 3, 4]);
  });

  it('starts over for another log or another query', () => {
    const search = new LogSearch();
    const first = makeLines(20);
    expect(search.update(first, 'line 1').size).toBe(11);
    expect([...search.update(first, 'line 19')]).toEqual([19]);
    const other = makeLines(3, 100);
    expect([...search.update(other, 'line 10')]).toEqual([0, 1, 2]);
    expect(search.first()).toBe(0);
  });
});

describe('LogView', () => {
  let host: HTMLElement;
  beforeEach(() => {
    host = document.createElement('div');
    document.body.appendChild(host);
  });
  afterEach(() => {
    render(null, host);
    host.remove();
  });

  const renderedTexts = () => [...host.querySelectorAll('.log-line')].map((line) => line.textContent);

  it('renders the last lines while it follows the end', () => {
    const lines = makeLines(1000);
    act(() => render(<LogView lines={lines} version={1} />, host));
    // happy-dom does no layout, so the view keeps its default height of 300 px.
    const { first, last } = logWindow(1000, 1000 * LINE_HEIGHT - 300, 300);
    expect(last).toBe(1000);
    expect(renderedTexts()).toEqual(lines.slice(first, last).map((l) => l.text));
    const window = host.querySelector<HTMLElement>('.log-window')!;
    expect(window.style.transform).toBe(`translateY(${first * LINE_HEIGHT}px)`);
    const spacer = host.querySelector<HTMLElement>('.log-spacer')!;
    expect(spacer.style.height).toBe(`${1000 * LINE_HEIGHT}px`);
  });

  it('marks stderr lines', () => {
    const lines = makeLines(20);
    act(() => render(<LogView lines={lines} version={1} />, host));
    expect(renderedTexts()).toHaveLength(20);
    const marked = [...host.querySelectorAll('.log-line.stderr')].map((line) => line.textContent);
    expect(marked).toEqual(['line 0', 'line 10']);
  });

  it('reuses line elements when lines arrive', () => {
    const lines = makeLines(1000);
    act(() => render(<LogView lines={lines} version={1} />, host));
    const before = [...host.querySelectorAll('.log-line')];
    lines.push(...makeLines(500, 1000));
    act(() => render(<LogView lines={lines} version={2} />, host));
    const after = [...host.querySelectorAll('.log-line')];
    expect(after).toHaveLength(before.length);
    after.forEach((element, slot) => expect(element).toBe(before[slot]));
    expect(after[after.length - 1].textContent).toBe('line 1499');
    expect(host.textContent).toContain('1500 lines');
  });

  it('counts and marks search hits', () => {
    const lines = makeLines(60);
    act(() => render(<LogView lines={lines} version={1} />, host));
    const input = host.querySelector<HTMLInputElement>('input')!;
    act(() => {
      input.value = 'line 5';
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
    expect(host.querySelector('[data-testid="log-hits"]')!.textContent).toBe('11 matches');
    // Line 5 is above the rendered window, which follows the end.
    const hits = [...host.querySelectorAll('.log-line.hit')].map((line) => line.textContent);
    expect(hits).toEqual(['line 50', 'line 51', 'line 52', 'line 53', 'line 54', 'line 55', 'line 56', 'line 57', 'line 58', 'line 59']);

    // Lines that arrive later are searched too.
    lines.push({ text: 'line 5 again', stderr: false });
    act(() => render(<LogView lines={lines} version={2} />, host));
    expect(host.querySelector('[data-testid="log-hits"]')!.textContent).toBe('12 matches');
  });
});
