/**
 * The Studio's REST client: one typed function per route of `/prophecy/api/v1`.
 *
 * Requests go through JupyterLab's `ServerConnection`, so they carry the user's token or
 * login cookie and XSRF header like every other JupyterLab request.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { readSse } from './ai/sse';
import { readPipelineDiff } from './git/marks';
import { IRunFilters, runsQuery } from './observe/history';
import {
  IAIMessage,
  IAIProposal,
  IAIStatus,
  IAutomateRun,
  ICompiled,
  IDeployment,
  IFabric,
  IFabricTest,
  IFileDiff,
  IGemKind,
  IIssue,
  ILogLine,
  IMergeResolution,
  IMergeResult,
  IPipelineDocument,
  IPipelineSummary,
  IPreview,
  IProjectSummary,
  IRelease,
  IRun,
  IRunRequest,
  ISchedule,
  IValidation,
  IVcsBranches,
  IVcsCommit,
  IVcsRemote,
  IVcsStatus
} from './types';

const PREFIX = 'prophecy/api/v1';

/** The code view's choice for PySpark DataFrame code instead of SQL. */
export const PYSPARK = 'pyspark';

/** An answer other than 2xx, with the JSON error body's code, message and issues. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: IIssue[] = [],
    readonly gemId?: string
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The request was cancelled by a newer one or by the user. */
  get cancelled(): boolean {
    return this.code === 'cancelled';
  }
}

interface IResponse<T> {
  data: T;
  etag: string | null;
}

async function request<T>(
  path: string,
  init: RequestInit & { project?: string | null } = {}
): Promise<IResponse<T>> {
  const settings = ServerConnection.makeSettings();
  let url = URLExt.join(settings.baseUrl, PREFIX, path);
  if (init.project) {
    url += `?project=${encodeURIComponent(init.project)}`;
  }
  const headers = new Headers(init.headers);
  if (init.body !== undefined && !headers.has('Content-Type')) {
    headers.set('Content-Type', 'application/json');
  }
  let response: Response;
  try {
    // 'no-cache' revalidates without the timestamp query argument that JupyterLab adds
    // for 'no-store', which the API would refuse as an unknown argument.
    response = await ServerConnection.makeRequest(
      url,
      { cache: 'no-cache', ...init, headers },
      settings
    );
  } catch (error) {
    throw new ApiError(0, 'network', `cannot reach the server: ${error}`);
  }
  const text = await response.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  if (!response.ok) {
    const error = (body as { error?: Record<string, unknown> } | null)?.error;
    throw new ApiError(
      response.status,
      String(error?.code ?? 'http_error'),
      String(
        error?.message ?? (response.statusText || `HTTP ${response.status}`)
      ),
      (error?.issues as IIssue[] | undefined) ?? [],
      error?.gem_id as string | undefined
    );
  }
  return { data: body as T, etag: response.headers.get('ETag') };
}

function json(body: unknown): string {
  return JSON.stringify(body);
}

const pipelinePath = (name: string, action = ''): string =>
  `pipelines/${encodeURIComponent(name)}${action ? `/${action}` : ''}`;

export async function gems(): Promise<IGemKind[]> {
  return (await request<{ gems: IGemKind[] }>('gems')).data.gems;
}

export async function projects(): Promise<IProjectSummary[]> {
  return (await request<{ projects: IProjectSummary[] }>('projects')).data
    .projects;
}

export async function pipelines(project: string): Promise<IPipelineSummary[]> {
  return (
    await request<{ pipelines: IPipelineSummary[] }>('pipelines', { project })
  ).data.pipelines;
}

export async function createPipeline(
  project: string,
  name: string
): Promise<IPipelineDocument> {
  const document = { version: 1, name, gems: [], connections: [] };
  return (
    await request<IPipelineDocument>('pipelines', {
      project,
      method: 'POST',
      body: json(document)
    })
  ).data;
}

export async function readPipeline(
  project: string,
  name: string
): Promise<IResponse<IPipelineDocument>> {
  return request<IPipelineDocument>(pipelinePath(name), { project });
}

export async function renamePipeline(
  project: string,
  name: string,
  newName: string
): Promise<IPipelineDocument> {
  const { etag } = await readPipeline(project, name);
  return (
    await request<IPipelineDocument>(pipelinePath(name, 'rename'), {
      project,
      method: 'POST',
      headers: { 'If-Match': etag ?? '*' },
      body: json({ name: newName })
    })
  ).data;
}

export async function deletePipeline(
  project: string,
  name: string
): Promise<void> {
  const { etag } = await readPipeline(project, name);
  await request<null>(pipelinePath(name), {
    project,
    method: 'DELETE',
    headers: { 'If-Match': etag ?? '*' }
  });
}

/** What the editor sends about the pipeline it shows: its unsaved draft and parameters. */
export interface IDraft {
  project: string;
  name: string;
  pipeline: IPipelineDocument;
  parameters?: Record<string, unknown>;
}

export async function validate(draft: IDraft): Promise<IValidation> {
  return (
    await request<IValidation>(pipelinePath(draft.name, 'validate'), {
      project: draft.project,
      method: 'POST',
      body: json({
        pipeline: draft.pipeline,
        parameters: draft.parameters ?? {}
      })
    })
  ).data;
}

export async function compile(
  draft: IDraft,
  dialect: string,
  gem?: string
): Promise<ICompiled> {
  // 'pyspark' is not a SQL dialect: it asks for the pipeline as DataFrame code.
  const body: Record<string, unknown> = {
    pipeline: draft.pipeline,
    parameters: draft.parameters ?? {},
    ...(dialect === PYSPARK ? { format: 'pyspark' } : { dialect })
  };
  if (gem) {
    body.gem = gem;
  }
  return (
    await request<ICompiled>(pipelinePath(draft.name, 'compile'), {
      project: draft.project,
      method: 'POST',
      body: json(body)
    })
  ).data;
}

export async function preview(
  draft: IDraft,
  gem: string,
  limit: number,
  fabric?: string
): Promise<IPreview> {
  const body: Record<string, unknown> = {
    pipeline: draft.pipeline,
    parameters: draft.parameters ?? {},
    gem,
    limit
  };
  if (fabric) {
    body.fabric = fabric;
  }
  return (
    await request<IPreview>(pipelinePath(draft.name, 'preview'), {
      project: draft.project,
      method: 'POST',
      body: json(body)
    })
  ).data;
}

export async function cancelPreview(
  project: string,
  name: string
): Promise<boolean> {
  return (
    await request<{ cancelled: boolean }>(pipelinePath(name, 'preview'), {
      project,
      method: 'DELETE'
    })
  ).data.cancelled;
}

export async function startRun(
  project: string,
  pipeline: string,
  options: {
    mode?: string;
    parameters?: Record<string, unknown>;
    fabric?: string;
  } = {}
): Promise<IRun> {
  const body: Record<string, unknown> = {
    pipeline,
    mode: options.mode ?? 'staged',
    parameters: options.parameters ?? {}
  };
  if (options.fabric) {
    body.fabric = options.fabric;
  }
  return (
    await request<IRun>('runs', { project, method: 'POST', body: json(body) })
  ).data;
}

export async function getRun(id: string): Promise<IRun> {
  return (await request<IRun>(`runs/${encodeURIComponent(id)}`)).data;
}

export async function listRuns(project: string): Promise<IRun[]> {
  return (await request<{ runs: IRun[] }>('runs', { project })).data.runs;
}

export async function cancelRun(id: string): Promise<IRun> {
  return (
    await request<IRun>(`runs/${encodeURIComponent(id)}/cancel`, {
      method: 'POST'
    })
  ).data;
}

export async function fabrics(project: string): Promise<IFabric[]> {
  return (await request<{ fabrics: IFabric[] }>('fabrics', { project })).data
    .fabrics;
}

export async function putFabric(
  project: string,
  fabric: IFabric
): Promise<IFabric> {
  const { name, ...rest } = fabric;
  return (
    await request<IFabric>(`fabrics/${encodeURIComponent(name)}`, {
      project,
      method: 'PUT',
      body: json(rest)
    })
  ).data;
}

export async function deleteFabric(
  project: string,
  name: string
): Promise<void> {
  await request<null>(`fabrics/${encodeURIComponent(name)}`, {
    project,
    method: 'DELETE'
  });
}

export async function testFabric(
  project: string,
  name: string
): Promise<IFabricTest> {
  return (
    await request<IFabricTest>(`fabrics/${encodeURIComponent(name)}/test`, {
      project,
      method: 'POST',
      body: '{}'
    })
  ).data;
}

// Automate: the runs it recorded, its schedules and the project's deployments.

const automateRun = (id: string, action = ''): string =>
  `automate/runs/${encodeURIComponent(id)}${action ? `/${action}` : ''}`;

const automateSchedule = (name: string, action: string): string =>
  `automate/schedules/${encodeURIComponent(name)}/${action}`;

/** One page of a project's run history, newest first: the runs older than `before`. */
export async function automateRuns(
  project: string,
  filters: IRunFilters,
  before: string | null = null,
  limit?: number
): Promise<IAutomateRun[]> {
  const query = runsQuery(project, filters, before, limit);
  return (await request<{ runs: IAutomateRun[] }>(`automate/runs${query}`)).data
    .runs;
}

export async function automateRunDetail(id: string): Promise<IAutomateRun> {
  return (await request<IAutomateRun>(automateRun(id))).data;
}

export async function automateRunLogs(id: string): Promise<ILogLine[]> {
  return (await request<{ lines: ILogLine[] }>(automateRun(id, 'logs'))).data
    .lines;
}

/** The notebook a notebook run executed, with its outputs, as nbformat JSON. */
export async function automateRunNotebook(
  id: string
): Promise<Record<string, unknown>> {
  return (await request<Record<string, unknown>>(automateRun(id, 'notebook')))
    .data;
}

export async function startAutomateRun(
  run: IRunRequest
): Promise<IAutomateRun> {
  return (
    await request<IAutomateRun>('automate/runs', {
      method: 'POST',
      body: json(run)
    })
  ).data;
}

export async function cancelAutomateRun(id: string): Promise<IAutomateRun> {
  return (
    await request<IAutomateRun>(automateRun(id, 'cancel'), { method: 'POST' })
  ).data;
}

export async function schedules(project: string): Promise<ISchedule[]> {
  return (
    await request<{ schedules: ISchedule[] }>('automate/schedules', {
      project
    })
  ).data.schedules;
}

export async function setScheduleEnabled(
  project: string,
  name: string,
  enabled: boolean
): Promise<ISchedule> {
  const action = enabled ? 'enable' : 'disable';
  return (
    await request<ISchedule>(automateSchedule(name, action), {
      project,
      method: 'POST'
    })
  ).data;
}

/** Start a schedule's job now, as its next fire would. */
export async function triggerSchedule(
  project: string,
  name: string
): Promise<IAutomateRun> {
  return (
    await request<IAutomateRun>(automateSchedule(name, 'trigger'), {
      project,
      method: 'POST',
      body: '{}'
    })
  ).data;
}

export async function deployments(project: string): Promise<IDeployment[]> {
  return (
    await request<{ deployments: IDeployment[] }>('automate/deployments', {
      project
    })
  ).data.deployments;
}

export async function deploy(
  project: string,
  fabric: string
): Promise<IDeployment> {
  return (
    await request<IDeployment>('automate/deployments', {
      method: 'POST',
      body: json({ project, fabric })
    })
  ).data;
}

// Version control: the project's Git repository.

/** A POST on a `/vcs/…` route of the project, answering what the route answers. */
async function vcsPost<T>(
  project: string,
  action: string,
  body: Record<string, unknown> = {}
): Promise<T> {
  return (
    await request<T>(`vcs/${action}`, {
      project,
      method: 'POST',
      body: json(body)
    })
  ).data;
}

/** Branch, ahead/behind and changed files; a 404 when the project has no repository. */
export async function vcsStatus(project: string): Promise<IVcsStatus> {
  return (await request<IVcsStatus>('vcs/status', { project })).data;
}

/** What changed in `path` (every changed file when not given) since `rev` (the last commit). */
export async function vcsDiff(
  project: string,
  path?: string,
  rev?: string
): Promise<IFileDiff[]> {
  const query = new URLSearchParams({ project });
  if (path) {
    query.set('path', path);
  }
  if (rev) {
    query.set('rev', rev);
  }
  const files = (await request<{ files: IFileDiff[] }>(`vcs/diff?${query}`))
    .data.files;
  return files.map(file =>
    file.kind === 'pipeline'
      ? { ...file, diff: readPipelineDiff(file.diff) }
      : file
  );
}

/** Make the project folder a repository; answers its status. */
export async function vcsInit(project: string): Promise<IVcsStatus> {
  return vcsPost<IVcsStatus>(project, 'init');
}

/** Set a remote; the token is stored on the server and never sent back. */
export async function vcsSetRemote(
  project: string,
  remote: { url: string; name?: string; username?: string; token?: string }
): Promise<IVcsRemote> {
  const body: Record<string, unknown> = { url: remote.url };
  for (const key of ['name', 'username', 'token'] as const) {
    if (remote[key]) {
      body[key] = remote[key];
    }
  }
  return vcsPost(project, 'remote', body);
}

export async function vcsCommit(
  project: string,
  message: string,
  paths: string[]
): Promise<IVcsCommit> {
  return vcsPost<IVcsCommit>(project, 'commit', { message, paths });
}

export async function vcsBranches(project: string): Promise<IVcsBranches> {
  return (await request<IVcsBranches>('vcs/branches', { project })).data;
}

/** A new branch at `start` (the current commit by default), not switched to. */
export async function vcsCreateBranch(
  project: string,
  name: string,
  start?: string
): Promise<{ name: string; commit: string }> {
  return vcsPost(project, 'branches', start ? { name, start } : { name });
}

export async function vcsSwitch(
  project: string,
  name: string
): Promise<{ current: string | null; commit: string | null }> {
  return vcsPost(project, 'switch', { name });
}

/** Fetch and merge the upstream: merged, or stopped on conflicts like a merge. */
export async function vcsPull(project: string): Promise<IMergeResult> {
  return vcsPost<IMergeResult>(project, 'pull');
}

export async function vcsPush(
  project: string
): Promise<{ remote: string; branch: string; commit: string }> {
  return vcsPost(project, 'push');
}

/** Merge `branch` into the current one: merged, or the conflicts to settle. */
export async function vcsMerge(
  project: string,
  branch: string
): Promise<IMergeResult> {
  return vcsPost<IMergeResult>(project, 'merge', { branch });
}

/** The merge in progress and its conflicts (a 409 when there is none). */
export async function vcsMergeState(project: string): Promise<IMergeResult> {
  return (await request<IMergeResult>('vcs/merge', { project })).data;
}

export async function vcsResolveMerge(
  project: string,
  resolution: IMergeResolution
): Promise<IMergeResult> {
  return vcsPost<IMergeResult>(project, 'merge/resolve', {
    choices: resolution.choices,
    text: resolution.text
  });
}

export async function vcsAbortMerge(
  project: string
): Promise<{ aborted: boolean; branch: string | null }> {
  return vcsPost(project, 'merge/abort');
}

export async function vcsReleases(project: string): Promise<IRelease[]> {
  return (await request<{ releases: IRelease[] }>('vcs/releases', { project }))
    .data.releases;
}

export async function vcsRelease(
  project: string,
  version: string,
  notes: string,
  push = false
): Promise<IRelease> {
  return vcsPost<IRelease>(project, 'releases', { version, notes, push });
}

/** Deploy a release to a fabric (`rollback`: make an earlier release the active one). */
export async function vcsDeployRelease(
  project: string,
  version: string,
  fabric: string,
  rollback = false
): Promise<IDeployment> {
  const action = rollback ? 'rollback' : 'deploy';
  return vcsPost<IDeployment>(
    project,
    `releases/${encodeURIComponent(version)}/${action}`,
    { fabric }
  );
}

/** Whether the AI copilot can be used for `project`, and if not why. */
export async function aiStatus(project: string): Promise<IAIStatus> {
  return (await request<IAIStatus>('ai/status', { project })).data;
}

/** What the copilot is asked about: the pipeline (its unsaved draft) and the question. */
export interface IAIRequest {
  project: string;
  name: string;
  pipeline: IPipelineDocument;
  prompt?: string;
  history?: IAIMessage[];
  gem?: string;
  error?: string;
  /** Send the first rows of each gem with this request (never by default). */
  sampleRows?: boolean;
}

/** How an AI request ended: a proposal (build, describe, fix) or a text answer (explain). */
export type AIResult =
  | { event: 'proposal'; proposal: IAIProposal }
  | { event: 'answer'; text: string };

/**
 * Ask the copilot (`build`, `explain`, `describe` or `fix`), reading its answer as Server-Sent Events:
 * `onText` gets the model's words as they come. Aborting `signal` closes the connection,
 * which cancels the model call on the server; the promise then rejects with `cancelled`.
 */
export async function aiAsk(
  action: 'build' | 'explain' | 'describe' | 'fix',
  ask: IAIRequest,
  onText: (text: string) => void,
  signal?: AbortSignal
): Promise<AIResult> {
  const settings = ServerConnection.makeSettings();
  const url =
    URLExt.join(settings.baseUrl, PREFIX, 'ai', action) +
    `?project=${encodeURIComponent(ask.project)}`;
  const body: Record<string, unknown> = {
    name: ask.name,
    pipeline: ask.pipeline
  };
  if (action === 'build') {
    body.prompt = ask.prompt ?? '';
    body.history = ask.history ?? [];
  }
  if (ask.gem) {
    body.gem = ask.gem;
  }
  if (action === 'fix') {
    body.error = ask.error ?? '';
  } else if (ask.sampleRows) {
    body.sample_rows = true;
  }
  const stopped = (): ApiError =>
    new ApiError(0, 'cancelled', 'Stopped: the request was cancelled.');
  let result: AIResult | null = null;
  try {
    const response = await ServerConnection.makeRequest(
      url,
      {
        method: 'POST',
        body: json(body),
        cache: 'no-cache',
        signal,
        headers: {
          'Content-Type': 'application/json',
          Accept: 'text/event-stream'
        }
      },
      settings
    );
    if (!response.ok || !response.body) {
      let error: Record<string, unknown> | undefined;
      try {
        error = ((await response.json()) as { error?: Record<string, unknown> })
          .error;
      } catch {
        error = undefined;
      }
      throw new ApiError(
        response.status,
        String(error?.code ?? 'http_error'),
        String(error?.message ?? `HTTP ${response.status}`),
        (error?.issues as IIssue[] | undefined) ?? []
      );
    }
    await readSse(response.body, event => {
      const data = JSON.parse(event.data) as Record<string, unknown>;
      if (event.event === 'text') {
        onText(String(data.text ?? ''));
      } else if (event.event === 'proposal') {
        const proposal = data as unknown as IAIProposal;
        result = {
          event: 'proposal',
          proposal: { ...proposal, diff: readPipelineDiff(proposal.diff) }
        };
      } else if (event.event === 'answer') {
        result = { event: 'answer', text: String(data.text ?? '') };
      } else if (event.event === 'error') {
        throw new ApiError(
          200,
          String(data.code ?? 'error'),
          String(data.message ?? 'the AI request failed')
        );
      }
    });
  } catch (error) {
    if (error instanceof ApiError) {
      throw error;
    }
    if (signal?.aborted) {
      throw stopped();
    }
    throw new ApiError(0, 'network', `cannot reach the server: ${error}`);
  }
  if (result === null) {
    throw signal?.aborted
      ? stopped()
      : new ApiError(0, 'incomplete', 'The answer ended before its result.');
  }
  return result;
}

/**
 * SQL expressions for one field of a gem, best first, from its input columns (only
 * candidates that parse in the project's dialect). `field` is a property name or a JSON
 * pointer into the gem's properties; `ask` says what the expression should compute.
 */
export async function aiSuggest(
  at: { project: string; name: string },
  pipeline: IPipelineDocument,
  gem: string,
  field: string,
  ask: string,
  signal?: AbortSignal
): Promise<string[]> {
  const answer = await request<{ suggestions: string[] }>('ai/suggest', {
    project: at.project,
    method: 'POST',
    body: json({ name: at.name, pipeline, gem, field, request: ask }),
    signal
  });
  return answer.data.suggestions;
}
