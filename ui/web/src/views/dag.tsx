// The live build graph: SVG drawn from the server's layout. Node
// components are memoized on the node object, which the store replaces on
// every change, so a state change re-renders one node, not 500. Only boxes
// inside the viewport are in the DOM, and below a readable zoom the boxes
// are drawn without text, because painting SVG text dominated frame time
// (see the benchmark in docs/benchmarks.md). Boxes are placed by their x
// and y attributes, not by a transform per group: Chromium gives every
// transformed SVG element its own paint property node, and 500 of them
// made each repaint's layerize and commit steps slow.

import { memo } from 'preact/compat';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { formatDuration } from '../store';
import type { DagNode, Layout, NodeBox } from '../types';
import { NodeProgress } from './progress';

export const STATE_COLOURS: Record<string, string> = {
  queued: '#c9ced6',
  running: '#3b82f6',
  cached: '#8b5cf6',
  done: '#22a06b',
  failed: '#e5484d',
  canceled: '#8a8f98',
};

interface View {
  x: number;
  y: number;
  scale: number;
}

export const NodeView = memo(function NodeView(props: {
  node: DagNode | undefined;
  box: NodeBox;
  selected: boolean;
  /** Whether to draw the name and state text. */
  detailed: boolean;
  onSelect: (id: string) => void;
}) {
  const { node, box, selected } = props;
  const state = node?.state ?? 'queued';
  const duration = node?.finished_ms != null && node.started_ms != null ? node.finished_ms - node.started_ms : null;
  return (
    <g
      class={`node node-${state}${selected ? ' selected' : ''}`}
      data-node-id={box.id}
      data-state={state}
      onClick={() => props.onSelect(box.id)}
    >
      <rect x={box.x} y={box.y} width={box.width} height={box.height} rx={6} fill={STATE_COLOURS[state]} />
      {props.detailed ? (
        <>
          <text x={box.x + 8} y={box.y + 18} class="node-name">
            {box.name.length > 30 ? `${box.name.slice(0, 29)}…` : box.name}
          </text>
          <text x={box.x + 8} y={box.y + 35} class="node-meta">
            {state}
            {duration != null ? ` · ${formatDuration(duration)}` : ''}
          </text>
        </>
      ) : (
        <title>{`${box.name} (${state})`}</title>
      )}
    </g>
  );
});

const Edges = memo(function Edges(props: { edges: Layout['edges'] }) {
  return (
    <g class="edges">
      {props.edges.map((edge) => (
        <polyline
          key={`${edge.from}>${edge.to}`}
          points={edge.points.map(([x, y]) => `${x},${y}`).join(' ')}
          fill="none"
          stroke="#9aa3ae"
        />
      ))}
    </g>
  );
});

/** Zoom below which node text is smaller than about 6 px and is not drawn. */
const TEXT_MIN_SCALE = 0.45;
/** Screen pixels around the viewport that are still rendered, so panning shows no gaps. */
const OVERSCAN = 200;

interface Viewport {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** The layout coordinates the canvas shows, with the overscan margin. */
function visibleArea(view: View, width: number, height: number): Viewport {
  return {
    left: (-OVERSCAN - view.x) / view.scale,
    top: (-OVERSCAN - view.y) / view.scale,
    right: (width + OVERSCAN - view.x) / view.scale,
    bottom: (height + OVERSCAN - view.y) / view.scale,
  };
}

/** Boxes and edges that intersect `area`; an edge counts when any of its points does. */
export function cullLayout(layout: Layout, area: Viewport): { boxes: NodeBox[]; edges: Layout['edges'] } {
  const inside = (x: number, y: number) => x >= area.left && x <= area.right && y >= area.top && y <= area.bottom;
  const boxes = layout.nodes.filter(
    (b) => b.x + b.width >= area.left && b.x <= area.right && b.y + b.height >= area.top && b.y <= area.bottom,
  );
  if (boxes.length === layout.nodes.length) return { boxes, edges: layout.edges };
  const edges = layout.edges.filter((e) => e.points.some(([x, y]) => inside(x, y)));
  return { boxes, edges };
}

function fitView(layout: Layout, width: number, height: number): View {
  if (!layout.width || !layout.height) return { x: 0, y: 0, scale: 1 };
  const scale = Math.min(1.5, Math.max(0.05, Math.min(width / (layout.width + 40), height / (layout.height + 40))));
  return { x: (width - layout.width * scale) / 2, y: 20, scale };
}

/**
 * The graph canvas with its toolbar. It is memoized, so a frame that only
 * adds log lines does not render it: pass `nodesVersion` from the store,
 * which changes whenever a node in `nodes` is replaced.
 */
export const DagView = memo(function DagView(props: {
  layout: Layout;
  nodes: Map<string, DagNode>;
  nodesVersion: number;
  selected: string | null;
  onSelect: (id: string) => void;
}) {
  const { layout, nodes } = props;
  const host = useRef<HTMLDivElement>(null);
  const [view, setView] = useState<View>({ x: 0, y: 0, scale: 1 });
  const [follow, setFollow] = useState(false);
  const [size, setSize] = useState({ width: 1200, height: 800 });
  const drag = useRef<{ x: number; y: number } | null>(null);

  useEffect(() => {
    const element = host.current;
    if (!element) return;
    const measure = () => setSize({ width: element.clientWidth, height: element.clientHeight });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  const visible = useMemo(
    () => cullLayout(layout, visibleArea(view, size.width, size.height)),
    [layout, view, size],
  );
  const detailed = view.scale >= TEXT_MIN_SCALE;

  const fit = () => {
    const element = host.current;
    if (element) setView(fitView(layout, element.clientWidth, element.clientHeight));
  };
  // Fit once per new layout size, so a growing graph stays in view until
  // the user pans.
  useEffect(fit, [layout.width, layout.height]);

  const running = useMemo(() => {
    let latest: DagNode | undefined;
    for (const node of nodes.values()) {
      if (node.state === 'running' && (!latest || (node.started_ms ?? 0) > (latest.started_ms ?? 0))) latest = node;
    }
    return latest?.id;
  }, [nodes, props.nodesVersion]);

  useEffect(() => {
    const element = host.current;
    if (!follow || !running || !element) return;
    const box = layout.nodes.find((b) => b.id === running);
    if (!box) return;
    setView((v) => ({
      scale: v.scale,
      x: element.clientWidth / 2 - (box.x + box.width / 2) * v.scale,
      y: element.clientHeight / 2 - (box.y + box.height / 2) * v.scale,
    }));
  }, [follow, running]);

  const onWheel = (event: WheelEvent) => {
    event.preventDefault();
    const factor = event.deltaY < 0 ? 1.1 : 1 / 1.1;
    const rect = host.current!.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const py = event.clientY - rect.top;
    setView((v) => {
      const scale = Math.min(4, Math.max(0.05, v.scale * factor));
      return { scale, x: px - ((px - v.x) * scale) / v.scale, y: py - ((py - v.y) * scale) / v.scale };
    });
  };

  return (
    <div class="dag">
      <div class="toolbar">
        <button onClick={fit}>Fit</button>
        <button onClick={() => setView((v) => ({ ...v, scale: v.scale * 1.2 }))}>+</button>
        <button onClick={() => setView((v) => ({ ...v, scale: v.scale / 1.2 }))}>−</button>
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow running step
        </label>
      </div>
      <div
        class="dag-canvas"
        ref={host}
        onWheel={onWheel}
        onMouseDown={(e) => (drag.current = { x: e.clientX, y: e.clientY })}
        onMouseMove={(e) => {
          if (!drag.current) return;
          const dx = e.clientX - drag.current.x;
          const dy = e.clientY - drag.current.y;
          drag.current = { x: e.clientX, y: e.clientY };
          setView((v) => ({ ...v, x: v.x + dx, y: v.y + dy }));
        }}
        onMouseUp={() => (drag.current = null)}
        onMouseLeave={() => (drag.current = null)}
      >
        <svg width="100%" height="100%">
          <g class="dag-world" style={{ transform: `translate(${view.x}px, ${view.y}px) scale(${view.scale})` }}>
            <Edges edges={visible.edges} />
            {visible.boxes.map((box) => (
              <NodeView
                key={box.id}
                box={box}
                node={nodes.get(box.id)}
                selected={props.selected === box.id}
                detailed={detailed}
                onSelect={props.onSelect}
              />
            ))}
          </g>
        </svg>
        {layout.nodes.length === 0 && <p class="hint">No build yet: open a project and press Build.</p>}
      </div>
    </div>
  );
});

/** Details of one step: instruction, Dockerfile line, cache key, progress bars, error, and why it ran. */
export function NodePanel(props: { node: DagNode; onClose: () => void; children?: preact.ComponentChildren }) {
  const { node } = props;
  return (
    <aside class="panel" data-testid="node-panel">
      <header>
        <strong>{node.name}</strong>
        <button onClick={props.onClose} aria-label="Close">×</button>
      </header>
      <dl>
        <dt>State</dt>
        <dd data-testid="panel-state">{node.state}</dd>
        <dt>Stage</dt>
        <dd>{node.stage ?? '[internal]'}</dd>
        {node.location && (
          <>
            <dt>Dockerfile</dt>
            <dd>
              {node.location.file}:{node.location.start_line}
            </dd>
          </>
        )}
        <dt>Duration</dt>
        <dd>{formatDuration(node.finished_ms != null && node.started_ms != null ? node.finished_ms - node.started_ms : null)}</dd>
        <dt>Cache key</dt>
        <dd class="mono">{node.cache_key ?? '—'}</dd>
        <dt>Inputs</dt>
        <dd class="mono">{node.inputs.map((i) => i.slice(7, 19)).join(', ') || '—'}</dd>
      </dl>
      <NodeProgress items={node.progress} />
      {node.error && <pre class="error">{node.error}</pre>}
      {node.reasons.length > 0 && (
        <>
          <h4>Why it missed the cache</h4>
          <ul>
            {node.reasons.map((reason) => (
              <li key={reason}>{reason}</li>
            ))}
          </ul>
        </>
      )}
      {props.children}
    </aside>
  );
}
