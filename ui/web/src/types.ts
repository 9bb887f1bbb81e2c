// Shapes the workbench server sends; they mirror `strata-ui-model` and
// `strata-history` types serialized with serde.

export type NodeState = 'queued' | 'running' | 'cached' | 'done' | 'failed' | 'canceled';

export interface SourceLocation {
  file: string;
  start_line: number;
  end_line: number;
}

export interface DagNode {
  id: string;
  name: string;
  stage: string | null;
  location: SourceLocation | null;
  inputs: string[];
  state: NodeState;
  started_ms: number | null;
  finished_ms: number | null;
  cache_key: string | null;
  error: string | null;
  reasons: string[];
  log_bytes: number;
  /** Long tasks of the step, such as the context transfer. */
  progress: ProgressItem[];
}

/** One long task: `strata_ui_model::ProgressItem`. */
export interface ProgressItem {
  id: string;
  label: string;
  current: number;
  /** Null while the size is unknown, such as a layer still compressing. */
  total: number | null;
  /** `B` for bytes. */
  unit: string;
  done: boolean;
}

export type TransferKind = 'pull' | 'context' | 'export' | 'other';

/** A build-level transfer: `strata_ui_model::Transfer`, its item fields flattened. */
export interface Transfer extends ProgressItem {
  /** Unique within the build. */
  key: string;
  kind: TransferKind;
  /** Id of the phase, such as `pull-busybox:latest` or `export-0`; null for a context transfer. */
  phase: string | null;
  phase_name: string | null;
  /** The vertex of a context transfer. */
  vertex: string | null;
}

export interface DagModel {
  build_id: string | null;
  nodes: DagNode[];
  finished: boolean | null;
  duration_ms: number | null;
  transfers: Transfer[];
  version: number;
}

export interface NodeBox {
  id: string;
  name: string;
  layer: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface EdgePath {
  from: string;
  to: string;
  points: [number, number][];
}

export interface Layout {
  nodes: NodeBox[];
  edges: EdgePath[];
  width: number;
  height: number;
}

export interface Counts {
  total: number;
  running: number;
  cached: number;
  done: number;
  failed: number;
}

export interface StampedEvent {
  v: number;
  time: string;
  type: string;
  [field: string]: unknown;
}

/** One message of a WebSocket frame (a frame is an array of these). */
export type LiveMessage =
  | { type: 'snapshot'; running: boolean; model: DagModel; layout: Layout; counts: Counts }
  | { type: 'event'; event: StampedEvent }
  | { type: 'node'; node: DagNode }
  | { type: 'transfer'; transfer: Transfer }
  | { type: 'layout'; layout: Layout }
  | { type: 'counts'; counts: Counts; finished: boolean | null }
  | { type: 'idle' };

export interface Status {
  version: string;
  worker: string;
  store_root: string;
  store_bytes: number;
  running_build: string | null;
  features: { cache: boolean; watch: boolean };
}

export interface Demo {
  name: string;
  path: string;
  summary: string;
}

export interface StageInfo {
  index: number;
  name: string | null;
  base: string;
  line: number;
  description: string;
}

export interface ArgInfo {
  name: string;
  default: string | null;
  stage: number | null;
  line: number;
}

export interface DockerfileInfo {
  path: string;
  text: string;
  stages: StageInfo[];
  args: ArgInfo[];
  warnings: { line: number; message: string }[];
  error: string | null;
}

export interface ProjectSettings {
  dockerfile: string | null;
  target: string | null;
  build_args: Record<string, string>;
  no_cache: boolean;
  /** Image name to store the result under; the server does not remember it. */
  tag?: string | null;
}

export interface OpenedProject {
  project: { path: string; name: string; dockerfiles: DockerfileInfo[] };
  settings: ProjectSettings;
}

export interface BuildParameters {
  project: string;
  dockerfile?: string | null;
  target?: string | null;
  build_args?: Record<string, string>;
  no_cache?: boolean;
  /** Image name to store the result under, such as `app:dev`; the export then reports progress per layer. */
  tag?: string | null;
}

export interface HistoryEntry {
  id: string;
  started: string;
  status: string;
  duration_ms: number | null;
  steps_total: number;
  steps_cached: number;
  cached_share: number;
  context: string;
  dockerfile: string;
  target: string | null;
  pinned: boolean;
  error: string | null;
}

export interface LogChunk {
  vertex: string;
  stderr: boolean;
  data: string;
}

export interface Bar {
  id: string;
  name: string;
  lane: number;
  start_ms: number;
  end_ms: number;
  kind: string;
  cached: boolean;
  failed: boolean;
  critical: boolean;
}

export interface Waterfall {
  bars: Bar[];
  lanes: number;
  total_ms: number;
  split: [string, number][];
}

export interface Layer {
  snapshot: string;
  kind: string;
  size: number;
  created: string;
  blob: string | null;
  compressed_size: number | null;
}

/** A record of `GET /api/cache/du`, as `strata du --format json` prints it. */
export interface CacheRecord {
  id: string;
  parent: string | null;
  type: string;
  size: number;
  shared: boolean;
  in_use: string | null;
  pinned: boolean;
  created: string;
  last_used: string;
  use_count: number;
  images: string[];
  builds: string[];
}

export interface CacheUsage {
  records: CacheRecord[];
  total: number;
  reclaimable: number;
}

/** Why prune keeps a record: `strata_store::KeepReason` as serde tags it. */
export interface KeepReason {
  reason:
    | 'in_use'
    | 'pinned'
    | 'used_by_image'
    | 'not_matched'
    | 'layer_without_all'
    | 'within_keep_duration'
    | 'under_storage_limit'
    | 'parent_of';
  detail?: string;
}

/** Options of `POST /api/cache/prune`, in the CLI's syntax (`48h`, `10GB`, `10%`). */
export interface PruneRequest {
  dry_run: boolean;
  all?: boolean;
  filters?: string[];
  keep_duration?: string;
  keep_storage?: string;
  min_free_space?: string;
}

export interface PruneReport {
  dry_run: boolean;
  deleted: CacheRecord[];
  kept: (CacheRecord & { kept: KeepReason })[];
  reclaimed: number;
  blobs_deleted: number;
  blob_bytes: number;
}

/** The error body every failed API request carries. */
export interface ApiErrorBody {
  code: string;
  message: string;
}
