// The empty state (demos, open a folder), the project view (Dockerfiles,
// stages, arguments, one-click build) and the Dockerfile with its warnings
// and the failed step marked on their lines.

import { useState } from 'preact/hooks';
import type { Warning } from '../store';
import type { DagNode, Demo, DockerfileInfo, OpenedProject, ProjectSettings } from '../types';

export function EmptyState(props: { demos: Demo[]; onOpen: (path: string) => void }) {
  const [path, setPath] = useState('');
  return (
    <section class="empty">
      <h2>Open a project</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (path.trim()) props.onOpen(path.trim());
        }}
      >
        <input
          data-testid="open-path"
          placeholder="/path/to/folder with a Dockerfile"
          value={path}
          onInput={(e) => setPath(e.currentTarget.value)}
        />
        <button type="submit">Open</button>
      </form>
      {props.demos.length > 0 && <h3>Or try a demo</h3>}
      <ul class="demos">
        {props.demos.map((demo) => (
          <li key={demo.path}>
            <button data-testid={`demo-${demo.name}`} onClick={() => props.onOpen(demo.path)}>
              {demo.name}
            </button>
            <span>{demo.summary}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function ProjectView(props: {
  opened: OpenedProject;
  running: boolean;
  onBuild: (settings: ProjectSettings) => void;
  onCancel: () => void;
}) {
  const { project } = props.opened;
  const [settings, setSettings] = useState<ProjectSettings>(() => ({
    ...props.opened.settings,
    dockerfile: props.opened.settings.dockerfile ?? project.dockerfiles[0]?.path ?? null,
  }));
  const file = project.dockerfiles.find((f) => f.path === settings.dockerfile) ?? project.dockerfiles[0];
  const update = (change: Partial<ProjectSettings>) => setSettings((s) => ({ ...s, ...change }));

  return (
    <section class="project">
      <h2>{project.name}</h2>
      <p class="mono">{project.path}</p>
      {project.dockerfiles.length === 0 && <p class="error">No Dockerfile in this folder.</p>}
      {file && (
        <div class="build-form">
          <label>
            Dockerfile
            <select value={file.path} onChange={(e) => update({ dockerfile: e.currentTarget.value })}>
              {project.dockerfiles.map((f) => (
                <option key={f.path} value={f.path}>
                  {f.path}
                </option>
              ))}
            </select>
          </label>
          <label>
            Target
            <select
              data-testid="target"
              value={settings.target ?? ''}
              onChange={(e) => update({ target: e.currentTarget.value || null })}
            >
              <option value="">last stage</option>
              {file.stages
                .filter((s) => s.name)
                .map((s) => (
                  <option key={s.index} value={s.name!}>
                    {s.name}
                  </option>
                ))}
            </select>
          </label>
          <label>
            Tag
            <input
              data-testid="tag"
              placeholder="app:dev"
              value={settings.tag ?? ''}
              onInput={(e) => update({ tag: e.currentTarget.value || null })}
            />
          </label>
          <label>
            <input type="checkbox" checked={settings.no_cache} onChange={(e) => update({ no_cache: e.currentTarget.checked })} />{' '}
            No cache
          </label>
          {props.running ? (
            <button data-testid="cancel" onClick={props.onCancel}>
              Cancel
            </button>
          ) : (
            <button data-testid="build" class="primary" onClick={() => props.onBuild({ ...settings, dockerfile: file.path })}>
              Build
            </button>
          )}
        </div>
      )}
      {file?.error && <pre class="error">{file.error}</pre>}
      {file && (
        <>
          <h3>Stages</h3>
          <ul class="stages">
            {file.stages.map((stage) => (
              <li key={stage.index}>
                <strong>{stage.name ?? `#${stage.index}`}</strong> from <code>{stage.base}</code> (line {stage.line})
                {stage.description && <div class="description">{stage.description}</div>}
              </li>
            ))}
          </ul>
          {file.args.length > 0 && <h3>Build arguments</h3>}
          {file.args.map((arg) => (
            <label key={`${arg.stage}-${arg.name}`} class="arg">
              <code>{arg.name}</code>
              <input
                placeholder={arg.default ?? ''}
                value={settings.build_args[arg.name] ?? ''}
                onInput={(e) => {
                  const value = e.currentTarget.value;
                  const build_args = { ...settings.build_args };
                  if (value) build_args[arg.name] = value;
                  else delete build_args[arg.name];
                  update({ build_args });
                }}
              />
            </label>
          ))}
        </>
      )}
    </section>
  );
}

/** A failed step's source lines, marked in the Dockerfile view. */
export interface FailureMark {
  startLine: number;
  endLine: number;
  name: string;
  error: string | null;
}

/** Failed steps that carry a location in `file`, from the live or recorded build. */
export function failureMarks(nodes: Iterable<DagNode>, file: string): FailureMark[] {
  const marks: FailureMark[] = [];
  for (const node of nodes) {
    if (node.state !== 'failed' || !node.location) continue;
    // Locations name the Dockerfile as the build read it; only its base name is comparable.
    const base = (path: string) => path.split('/').pop();
    if (base(node.location.file) !== base(file)) continue;
    marks.push({ startLine: node.location.start_line, endLine: node.location.end_line, name: node.name, error: node.error });
  }
  return marks;
}

export function DockerfileView(props: { file: DockerfileInfo; warnings: Warning[]; failures: FailureMark[]; highlight?: number }) {
  const byLine = new Map<number, string[]>();
  for (const warning of [...props.file.warnings, ...props.warnings]) {
    if (warning.line == null) continue;
    const messages = byLine.get(warning.line) ?? [];
    // The parser's warnings and the build's check warnings repeat each other.
    if (!messages.includes(warning.message)) messages.push(warning.message);
    byLine.set(warning.line, messages);
  }
  const failedAt = (line: number) => props.failures.find((f) => line >= f.startLine && line <= f.endLine);
  return (
    <pre class="dockerfile" data-testid="dockerfile">
      {props.file.text.split('\n').map((text, index) => {
        const line = index + 1;
        const messages = byLine.get(line);
        const failure = failedAt(line);
        const classes = [messages && 'warned', failure && 'failed', props.highlight === line && 'highlight'].filter(Boolean);
        return (
          <div key={line} class={classes.join(' ')} data-line={line}>
            <span class="gutter">{line}</span>
            {text}
            {failure?.startLine === line && (
              <span class="failure" data-testid="failure-mark">
                {' '}✖ {failure.error ?? `${failure.name} failed`}
              </span>
            )}
            {messages?.map((m) => (
              <span key={m} class="warning" data-testid="warning-mark">
                {' '}⚠ {m}
              </span>
            ))}
          </div>
        );
      })}
    </pre>
  );
}
