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
  properties: Record<string, unknown>;
  position?: IPosition;
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
