// The workbench shell: navigation, the live store wired to the event
// stream, and the status bar. WebSocket frames are applied and rendered
// once per animation frame however many arrive.

import { useEffect, useMemo, useState } from 'preact/hooks';
import type { Client } from './client';
import { LiveStore, formatBytes, formatDuration } from './store';
import type { Demo, OpenedProject, ProjectSettings, Status } from './types';
import { DagView, NodePanel } from './views/dag';
import { CacheView } from './views/cache';
import { HistoryView, LayersView, WaterfallView } from './views/history';
import { LogView } from './views/logs';
import { TransfersStrip } from './views/progress';
import { DockerfileView, EmptyState, ProjectView, failureMarks } from './views/project';

type Tab = 'project' | 'build' | 'waterfall' | 'history' | 'layers' | 'cache' | 'dockerfile';
const TABS: Tab[] = ['project', 'build', 'waterfall', 'history', 'layers', 'cache', 'dockerfile'];

export function useFrameVersion(store: LiveStore): number {
  const [version, setVersion] = useState(store.version);
  useEffect(() => {
    let pending = 0;
    const off = store.onChange(() => {
      // Frames queued by `enqueue` are already applied in an animation
      // frame: render in this one instead of waiting for the next.
      if (store.inAnimationFrame) {
        cancelAnimationFrame(pending);
        pending = 0;
        setVersion(store.version);
      } else if (!pending) {
        pending = requestAnimationFrame(() => {
          pending = 0;
          setVersion(store.version);
        });
      }
    });
    return () => {
      off();
      cancelAnimationFrame(pending);
    };
  }, [store]);
  return version;
}

export function App(props: { client: Client; store: LiveStore }) {
  const { client, store } = props;
  const version = useFrameVersion(store);
  const [tab, setTab] = useState<Tab>('project');
  const [demos, setDemos] = useState<Demo[]>([]);
  const [opened, setOpened] = useState<OpenedProject | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [connected, setConnected] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [viewedBuild, setViewedBuild] = useState<string | null>(null);

  useEffect(() => client.subscribe((frame) => store.enqueue(frame), setConnected), [client, store]);
  useEffect(() => {
    client.demos().then(setDemos, (e: Error) => setMessage(e.message));
  }, [client]);
  // Status and lists refresh when a build ends.
  const finishedKey = `${store.buildId}:${store.finished}`;
  useEffect(() => {
    client.status().then(setStatus, (e: Error) => setMessage(e.message));
  }, [client, finishedKey]);

  const open = (path: string) =>
    client.openProject(path).then(
      (result) => {
        setOpened(result);
        setMessage(null);
        setTab('project');
      },
      (e: Error) => setMessage(e.message),
    );

  const build = (settings: ProjectSettings) => {
    if (!opened) return;
    setSelected(null);
    setViewedBuild(null);
    client
      .startBuild({ project: opened.project.path, ...settings })
      .then(() => setTab('build'), (e: Error) => setMessage(e.message));
  };

  const buildId = viewedBuild ?? store.buildId;
  const node = selected ? store.nodes.get(selected) : undefined;
  const allLines = useMemo(() => (node ? store.linesOf(node.id) : []), [node?.id, version]);
  const file = opened?.project.dockerfiles[0];

  return (
    <div class="app">
      <nav>
        <strong class="brand">Strata</strong>
        {TABS.map((name) => (
          <button key={name} data-testid={`tab-${name}`} class={tab === name ? 'active' : ''} onClick={() => setTab(name)}>
            {name[0].toUpperCase() + name.slice(1)}
          </button>
        ))}
      </nav>
      {message && (
        <div class="banner error" data-testid="message">
          {message} <button onClick={() => setMessage(null)}>×</button>
        </div>
      )}
      <main>
        {tab === 'project' &&
          (opened ? (
            <ProjectView
              key={opened.project.path}
              opened={opened}
              running={store.running}
              onBuild={build}
              onCancel={() => client.cancelBuild().catch((e: Error) => setMessage(e.message))}
            />
          ) : (
            <EmptyState demos={demos} onOpen={open} />
          ))}
        {tab === 'build' && (
          <div class="build-tab">
            <TransfersStrip transfers={store.transfers} version={store.transfersVersion} />
            <div class="build-view">
              <DagView
                layout={store.layout}
                nodes={store.nodes}
                nodesVersion={store.nodesVersion}
                selected={selected}
                onSelect={setSelected}
              />
              {node && (
                <NodePanel node={node} onClose={() => setSelected(null)}>
                  <LogView lines={allLines} version={version} title="Log" />
                </NodePanel>
              )}
            </div>
          </div>
        )}
        {tab === 'waterfall' && <WaterfallView client={client} buildId={store.running ? null : buildId} version={version && store.finished === null ? 0 : 1} />}
        {tab === 'history' && (
          <HistoryView
            client={client}
            version={store.finished === null ? 0 : 1}
            onOpen={(id) => {
              setViewedBuild(id);
              client.historyModel(id).then((snapshot) => {
                store.apply([snapshot]);
                return client.logs(id).then((chunks) => {
                  store.apply(chunks.map((c) => ({ type: 'event', event: { v: 1, time: '', type: 'log', vertex: c.vertex, stream: c.stderr ? 'stderr' : 'stdout', data: c.data } })));
                  store.flushPartial();
                  setTab('build');
                });
              }, (e: Error) => setMessage(e.message));
            }}
          />
        )}
        {tab === 'layers' && <LayersView client={client} buildId={store.running ? null : buildId} version={store.finished ? 1 : 0} />}
        {tab === 'cache' && <CacheView client={client} />}
        {tab === 'dockerfile' &&
          (file ? <DockerfileView
              file={file}
              warnings={store.warnings}
              failures={failureMarks(store.nodes.values(), file.path)}
              highlight={node?.location?.start_line}
            /> : <p class="hint">Open a project first.</p>)}
      </main>
      <footer class="status" data-testid="status-bar">
        <span class={connected ? 'ok' : 'bad'}>{connected ? 'connected' : 'disconnected'}</span>
        <span>worker: {status?.worker ?? '…'}</span>
        <span>store: {formatBytes(status?.store_bytes)}</span>
        <span data-testid="counts">
          {store.counts.done + store.counts.cached}/{store.counts.total} steps · {store.counts.cached} cached · {store.counts.running} running ·{' '}
          {store.counts.failed} failed
        </span>
        {store.finished !== null && (
          <span data-testid="build-result">{store.finished ? 'succeeded' : `failed${store.error ? `: ${store.error}` : ''}`}</span>
        )}
        {store.running && <span>building…</span>}
        <span>{formatDuration(null)}</span>
      </footer>
    </div>
  );
}
