/**
 * Shapes shared by the Studio's parts: the pipeline document as the Python model writes it
 * (`prophecy_jupyter/model/pipeline.py`) and the REST API's answers (`server/openapi.yaml`).
 */

export interface IPosition {
  x: number;
  y: number;
}

export interface IGem {
  id: string;
  kind: string;
  label?: string;
  description?: string;
  /** Documentation of the gem's output columns, keyed by column name. */
  columns?: Record<string, IColumnDoc>;
  properties: Record<string, unknown>;
  position?: IPosition;
}

export interface IColumnDoc {
  description: string;
}

export interface IConnection {
  from: string;
  to: string;
  port: string;
}

export interface IParameter {
  name: string;
  type?: string;
  default?: string | number | boolean | null;
  description?: string;
}

export interface IPipelineDocument {
  version: number;
  name: string;
  description?: string;
  parameters?: IParameter[];
  gems: IGem[];
  connections: IConnection[];
}

/** One gem kind of the catalog (`GET /gems`). */
export interface IGemKind {
  kind: string;
  category: string;
  summary: string;
  inputs: { min: number; max: number | null };
  has_output: boolean;
  properties_schema: Record<string, unknown>;
}

/** A validation problem: the same shape in the CLI, the API and on the canvas. */
export interface IIssue {
  code: string;
  message: string;
  gem_id?: string;
  field?: string;
  line?: number;
  column?: number;
  severity?: 'error' | 'warning';
}

export interface IColumn {
  name: string;
  type: string;
}

export interface IValidation {
  valid: boolean;
  issues: IIssue[];
  columns?: Record<string, IColumn[]>;
}

export interface IPreview {
  columns: IColumn[];
  rows: unknown[][];
  truncated: boolean;
}

export interface ICompiled {
  format: 'sql' | 'pyspark';
  dialect?: string;
  statements?: { gem_id: string; sql: string; columns: IColumn[] }[];
  /** With format pyspark: the pipeline as PySpark DataFrame code. */
  code?: string;
}

export type RunStatus =
  'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface IGemRun {
  gem_id: string;
  kind: string;
  status: string;
  rows: number | null;
  seconds: number | null;
  error: string | null;
}

export interface IRun {
  id: string;
  project: string;
  pipeline: string;
  mode: string;
  fabric?: string;
  parameters: Record<string, unknown>;
  status: RunStatus;
  created: string | null;
  started: string | null;
  finished: string | null;
  seconds: number | null;
  gems: IGemRun[];
  error: string | null;
  issues: IIssue[];
}

export interface IFabric {
  name: string;
  kind: string;
  description?: string;
  options: Record<string, unknown>;
  /** Each secret the fabric uses: the mask when a value is stored, null when none is. */
  secrets: Record<string, string | null>;
}

export interface IFabricTest {
  ok: boolean;
  message: string;
  seconds: number;
}

export interface IProjectSummary {
  path: string;
  name: string;
  [key: string]: unknown;
}

export interface IPipelineSummary {
  name: string;
  [key: string]: unknown;
}

export const TERMINAL_RUN_STATUSES: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'cancelled'
]);

/** What started an Automate run. */
export type TriggerType =
  'manual' | 'api' | 'schedule' | 'file' | 'upstream' | 'retry';

/** What Automate runs: a pipeline (by name) or a notebook (by path in the project). */
export type JobKind = 'pipeline' | 'notebook';

export interface IRunTrigger {
  type: TriggerType;
  schedule: string | null;
  fire_time: string | null;
  detail: string | null;
}

/** A run recorded by Automate (`GET /automate/runs`). */
export interface IAutomateRun {
  id: string;
  project: string;
  kind: JobKind;
  target: string;
  fabric: string;
  parameters: Record<string, unknown>;
  trigger: IRunTrigger;
  status: RunStatus;
  attempt: number;
  created: string;
  started: string | null;
  finished: string | null;
  seconds: number | null;
  error: string | null;
  issues: IIssue[];
  gems: IGemRun[];
  output_notebook: boolean;
  deployment: string | null;
}

export interface ILogLine {
  time: string;
  level: string;
  message: string;
}

/** A schedule's event trigger: a file arriving, or another job finishing. */
export type ScheduleTrigger =
  | { type: 'file'; path: string }
  | { type: 'upstream'; pipeline?: string | null; schedule?: string | null };

export interface ISchedule {
  project: string;
  name: string;
  kind: JobKind;
  target: string;
  fabric: string;
  cron: string | null;
  timezone: string;
  enabled: boolean;
  triggers: ScheduleTrigger[];
  next_fire: string | null;
  last_run: { id: string; status: RunStatus; finished: string | null } | null;
  deployment: string | null;
}

export interface IDeployment {
  id: string;
  project: string;
  fabric: string;
  created: string;
  active: boolean;
  /** The release deployed (a Git tag's version), when it came from one. */
  release: string | null;
  /** The Git commit deployed, when it came from a release. */
  commit: string | null;
  pipelines: string[];
  schedules: string[];
  notebooks: string[];
}

/** What `POST /automate/runs` starts: one pipeline or one notebook of a project. */
export interface IRunRequest {
  project: string;
  pipeline?: string;
  notebook?: string;
  fabric?: string;
  parameters?: Record<string, unknown>;
}

// Version control (`/vcs/…`): the project's Git repository as the Git panel shows it.

/** One changed file of the working tree, relative to the project. */
export interface IVcsChange {
  path: string;
  /** added, modified, deleted, renamed, untracked, conflicted… */
  status: string;
  /** What kind of file it is: pipelines, schedules, fabrics, notebooks, … */
  group: string;
  /** The pipeline's name, when the file is one. */
  pipeline: string | null;
}

export interface IVcsStatus {
  branch: string | null;
  /** The remote branch it tracks (`origin/main`), if any. */
  upstream?: string | null;
  ahead: number;
  behind: number;
  /** A merge waits for its conflicts to be resolved. */
  merging?: boolean;
  changes: IVcsChange[];
}

/** A gem of a pipeline diff: added, removed or with `fields` changed (and maybe moved). */
export interface IGemDiff {
  id: string;
  status: 'added' | 'removed' | 'changed';
  kind: string;
  /** The changed fields, as JSON pointers into the gem (`/properties/condition`). */
  fields: string[];
  /** Its position changed (a move is not an edit of its fields). */
  moved: boolean;
}

/** A connection on one side only (a connection has no content to change). */
export interface IConnectionDiff {
  status: 'added' | 'removed';
  from: string;
  to: string;
  port: string;
}

/** What changed in a pipeline document, gem by gem. */
export interface IPipelineDiff {
  name: string;
  gems: IGemDiff[];
  connections: IConnectionDiff[];
  /** Changed fields of the document itself (description, parameters). */
  fields: string[];
}

export type IFileDiff =
  | { path: string; kind: 'pipeline'; diff: IPipelineDiff }
  | { path: string; kind: 'text'; patch: string };

/** One conflict of a pipeline merge: a property both sides changed differently. */
export interface IPipelineConflict {
  /** The property's path in the document; how the choice of a side names it. */
  path: string;
  gem_id: string | null;
  reason: string;
  base: unknown;
  ours: unknown;
  theirs: unknown;
}

export interface IFileConflicts {
  path: string;
  pipeline: string | null;
  conflicts: IPipelineConflict[];
}

export interface IMergeResult {
  merged: boolean;
  commit: string | null;
  conflicts: IFileConflicts[];
  /** Files that are not pipelines and conflict as text: one side is kept whole. */
  text_conflicts: string[];
  fast_forward?: boolean;
  up_to_date?: boolean;
  /** A pull's remote branch, which it merged. */
  source?: string;
}

export type MergeSide = 'ours' | 'theirs';

/** How a merge in progress ends: a side per pipeline conflict and per text file. */
export interface IMergeResolution {
  choices: Record<string, Record<string, MergeSide>>;
  text: Record<string, MergeSide>;
}

export interface IVcsBranch {
  name: string;
  commit: string;
  /** Whether it is a remote-tracking branch (`origin/main`). */
  remote: boolean;
  /** What a local branch tracks. */
  upstream?: string | null;
}

export interface IVcsBranches {
  current: string | null;
  branches: IVcsBranch[];
}

export interface IVcsCommit {
  commit: string;
  message: string;
  files: string[];
}

/** A remote as the server shows it: which credentials it has, never their values. */
export interface IVcsRemote {
  name: string;
  url: string;
  credentials: { username: string | null; token: boolean; ssh_key: boolean };
}

export interface IRelease {
  version: string;
  tag: string;
  commit: string;
  notes: string;
  created: string | null;
  /** Set when just released: whether the tag went to the remote. */
  pushed?: boolean;
}

/** Whether the AI copilot can be used, as `ai/status` answers. */
export interface IAIStatus {
  enabled: boolean;
  configured: boolean;
  model: string;
  base_url: string;
  /** Why the copilot is off (null when it is on). */
  reason: string | null;
}

/** One message of a conversation with the copilot. */
export interface IAIMessage {
  role: 'user' | 'assistant';
  content: string;
}

/** A change the copilot proposes: never applied until the user accepts it. */
export interface IAIProposal {
  summary: string;
  document: IPipelineDocument;
  diff: IPipelineDiff;
  /** What the server found wrong with the proposed document. */
  issues: IIssue[];
  /** The model was asked again to repair its first answer. */
  repaired: boolean;
  /** The model's words around the proposal, as streamed. */
  text?: string;
}
