// The live build graph: SVG drawn from the server's layout. Node
// components are memoized on the node object, which the store replaces on
// every change, so a state change re-renders one node, not 500.

import { memo } from 'preact/compat';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { formatDuration } from '../store';
import type { DagNode, Layout, NodeBox } from '../types';

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

const NodeView = memo(function NodeView(props: {
  node: DagNode | undefined;
  box: NodeBox;
  selected: boolean;
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
      transform={`translate(${box.x},${box.y})`}
      onClick={() => props.onSelect(box.id)}
    >
      <rect width={box.width} height={box.height} rx={6} fill={STATE_COLOURS[state]} />
      <text x={8} y={18} class="node-name">
        {box.name.length > 30 ? `${box.name.slice(0, 29)}…` : box.name}
      </text>
      <text x={8} y={35} class="node-meta">
        {state}
        {duration != null ? ` · ${formatDuration(duration)}` : ''}
      </text>
    </g>
  );
});

const Edges = memo(function Edges(props: { layout: Layout }) {
  return (
    <g class="edges">
      {props.layout.edges.map((edge) => (
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

function fitView(layout: Layout, width: number, height: number): View {
  if (!layout.width || !layout.height) return { x: 0, y: 0, scale: 1 };
  const scale = Math.min(1.5, Math.max(0.05, Math.min(width / (layout.width + 40), height / (layout.height + 40))));
  return { x: (width - layout.width * scale) / 2, y: 20, scale };
}

export function DagView(props: {
  layout: Layout;
  nodes: Map<string, DagNode>;
  version: number;
  selected: string | null;
  onSelect: (id: string) => void;
}) {
  const { layout, nodes } = props;
  const host = useRef<HTMLDivElement>(null);
  const [view, setView] = useState<View>({ x: 0, y: 0, scale: 1 });
  const [follow, setFollow] = useState(false);
  const drag = useRef<{ x: number; y: number } | null>(null);

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
  }, [props.version]);

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
          <g transform={`translate(${view.x},${view.y}) scale(${view.scale})`}>
            <Edges layout={layout} />
            {layout.nodes.map((box) => (
              <NodeView
                key={box.id}
                box={box}
                node={nodes.get(box.id)}
                selected={props.selected === box.id}
                onSelect={props.onSelect}
              />
            ))}
          </g>
        </svg>
        {layout.nodes.length === 0 && <p class="hint">No build yet: open a project and press Build.</p>}
      </div>
    </div>
  );
}

/** Details of one step: instruction, Dockerfile line, cache key, error, and why it ran. */
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
