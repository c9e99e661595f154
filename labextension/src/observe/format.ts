/**
 * How the Observe views put runs, schedules and deployments into words: times in the user's
 * own zone and relative to now, durations, triggers. No JupyterLab here, so it is
 * unit-tested on its own.
 */
import {
  IAutomateRun,
  IDeployment,
  IRunTrigger,
  ScheduleTrigger
} from '../types';

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

function parse(iso: string | null): Date | null {
  if (!iso) {
    return null;
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "in 3 min", "2 h ago", "in 1 day": how far `iso` is from `now`. */
export function formatRelative(iso: string | null, now = new Date()): string {
  const date = parse(iso);
  if (!date) {
    return '';
  }
  const seconds = (date.getTime() - now.getTime()) / 1000;
  const distance = Math.abs(seconds);
  let amount: string;
  if (distance < 45) {
    return seconds >= 0 ? 'in less than a minute' : 'just now';
  } else if (distance < 90 * MINUTE) {
    amount = `${Math.max(1, Math.round(distance / MINUTE))} min`;
  } else if (distance < 36 * HOUR) {
    amount = `${Math.round(distance / HOUR)} h`;
  } else {
    amount = plural(Math.round(distance / DAY), 'day');
  }
  return seconds >= 0 ? `in ${amount}` : `${amount} ago`;
}

function sameDay(a: Date, b: Date): boolean {
  return a.toDateString() === b.toDateString();
}

function shiftDays(date: Date, days: number): Date {
  const shifted = new Date(date);
  shifted.setDate(shifted.getDate() + days);
  return shifted;
}

/**
 * A moment in the user's time zone: the time alone today, with the day otherwise; to the
 * second when `seconds` is set.
 */
export function formatLocal(
  iso: string | null,
  now = new Date(),
  seconds = false
): string {
  const date = parse(iso);
  if (!date) {
    return iso ?? '—';
  }
  const time = date.toLocaleTimeString(undefined, {
    hour: 'numeric',
    minute: '2-digit',
    ...(seconds ? { second: '2-digit' } : {})
  });
  if (sameDay(date, now)) {
    return time;
  }
  if (sameDay(date, shiftDays(now, 1))) {
    return `tomorrow ${time}`;
  }
  if (sameDay(date, shiftDays(now, -1))) {
    return `yesterday ${time}`;
  }
  const day = date.toLocaleDateString(undefined, {
    month: 'short',
    day: 'numeric',
    ...(date.getFullYear() === now.getFullYear() ? {} : { year: 'numeric' })
  });
  return `${day} ${time}`;
}

/** The time of day of a log line, to the second, on a 24-hour clock. */
export function formatClock(iso: string): string {
  const date = parse(iso);
  if (!date) {
    return iso;
  }
  return date.toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hour12: false
  });
}

/** A moment in full, with the user's time zone: for tooltips. */
export function formatFull(iso: string | null): string {
  const date = parse(iso);
  if (!date) {
    return iso ?? '';
  }
  return date.toLocaleString(undefined, {
    dateStyle: 'full',
    timeStyle: 'long'
  });
}

/** "5 ms", "2.42 s", "12.3 s", "2 min 5 s", "1 h 3 min". */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 10) {
    return `${seconds.toFixed(2)} s`;
  }
  if (seconds < MINUTE) {
    return `${seconds.toFixed(1)} s`;
  }
  const whole = Math.round(seconds);
  if (whole < HOUR) {
    const rest = whole % MINUTE;
    return `${Math.floor(whole / MINUTE)} min${rest ? ` ${rest} s` : ''}`;
  }
  const minutes = Math.floor((whole % HOUR) / MINUTE);
  return `${Math.floor(whole / HOUR)} h${minutes ? ` ${minutes} min` : ''}`;
}

/** How long the run took, or has been running so far; null before it started. */
export function runSeconds(run: IAutomateRun, now = new Date()): number | null {
  if (run.seconds !== null) {
    return run.seconds;
  }
  const started = parse(run.started);
  if (!started) {
    return null;
  }
  const end = parse(run.finished) ?? now;
  return Math.max(0, (end.getTime() - started.getTime()) / 1000);
}

const TRIGGER_WORDS: Record<IRunTrigger['type'], string> = {
  manual: 'manual',
  api: 'API',
  schedule: 'schedule',
  file: 'file',
  upstream: 'upstream',
  retry: 'retry'
};

/**
 * What started a run, in a few words: the trigger's own detail ("file data/in.csv",
 * "after run 5f3c…") or its type, and the schedule it fired for.
 */
export function triggerLabel(trigger: IRunTrigger): string {
  if (trigger.type === 'schedule') {
    return `schedule ${trigger.schedule ?? ''}`.trim();
  }
  const what = trigger.detail || TRIGGER_WORDS[trigger.type] || trigger.type;
  return trigger.schedule ? `${what} · ${trigger.schedule}` : what;
}

/** An event a schedule waits for, in a few words. */
export function scheduleTriggerLabel(trigger: ScheduleTrigger): string {
  if (trigger.type === 'file') {
    return `when ${trigger.path} arrives`;
  }
  const what = [
    trigger.pipeline ? `pipeline ${trigger.pipeline}` : '',
    trigger.schedule ? `schedule ${trigger.schedule}` : ''
  ].filter(Boolean);
  return `after ${what.join(', ') || 'upstream'} succeeds`;
}

/** What a deployment holds: "2 pipelines · 1 schedule", or "nothing". */
export function deploymentContents(deployment: IDeployment): string {
  const parts = [
    [deployment.pipelines.length, 'pipeline'],
    [deployment.schedules.length, 'schedule'],
    [deployment.notebooks.length, 'notebook']
  ] as const;
  const held = parts
    .filter(([count]) => count > 0)
    .map(([count, word]) => plural(count, word));
  return held.length ? held.join(' · ') : 'nothing';
}

/** A parameter's value as typed on a command line: strings bare, the rest as JSON. */
export function parameterText(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The file name a run's output notebook is saved under: the notebook's, with the run's id. */
export function notebookFileName(run: IAutomateRun): string {
  const base = run.target.split('/').pop() ?? run.target;
  const stem = base.replace(/\.ipynb$/i, '') || 'notebook';
  const id = run.id.replace(/[^\w.-]+/g, '_');
  return `${stem}-run-${id}.ipynb`;
}
